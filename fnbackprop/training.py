"""Mini-batch stochastic gradient descent, one compiled epoch at a time (chapter 1, §1.6).

Each epoch shuffles the training data on the device with an explicit key, cuts it into
mini-batches of m examples and applies one update per mini-batch; the whole epoch is a single
jitted call, a `jax.lax.scan` over the mini-batches. With plain SGD the update is the book's rule

    w → w − (η/m) Σ_x ∇C_x,    b → b − (η/m) Σ_x ∇C_x   (eqs. 20, 21)

fed by the mean gradient of the chosen method:

- "backprop": the hand-written per-example `backprop`, vmapped over the mini-batch;
- "backprop_batch": the fully matrix-based form;
- "autodiff": `jax.grad` of the mean cost.

The update is an optax transformation: "sgd", "momentum" or "adam", with L2 weight decay on the
weights only (not the biases) when λ > 0, as in chapter 3: w → (1 − ηλ/n) w − (η/m) Σ_x ∇C_x.
"""

import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import sharding
from .backprop import backprop_batch, backprop_vmap
from .config import GRADIENTS, OPTIMIZERS
from .errors import FnbackpropError, ShapeError
from .network import Network, Params, check_example, cost, feedforward
from .references import autodiff_grad_batch

__all__ = [
    "GRADIENT_FUNCTIONS",
    "DivergenceError",
    "TrainState",
    "evaluate",
    "fit",
    "gradient_function",
    "make_epoch",
    "make_optimizer",
    "weights_only",
]

#: Examples gathered from the shuffled training set at once, as k whole mini-batches of m. XLA's
#: CPU backend runs every gather from the whole training set on two threads; for the 10 rows of
#: one mini-batch that hand-off cost more than the SGD step itself (see benchmarks/README.md).
GATHER_SIZE = 1024

GRADIENT_FUNCTIONS: dict[str, Callable] = {
    "backprop": backprop_vmap,
    "backprop_batch": backprop_batch,
    "autodiff": autodiff_grad_batch,
}
assert tuple(GRADIENT_FUNCTIONS) == GRADIENTS


class DivergenceError(FnbackpropError):
    """The cost or the parameters stopped being finite."""


class TrainState(NamedTuple):
    """Everything training needs to continue: parameters, optimizer state, epochs done."""

    params: Params
    opt_state: optax.OptState
    epoch: int


def gradient_function(name: "str | Callable") -> Callable:
    """The mean-gradient function `(net, params, X, Y) -> grads` called `name`.

    A function of that signature is returned as it is, so any gradient can drive an epoch.
    """
    if callable(name):
        return name
    if name not in GRADIENT_FUNCTIONS:
        raise FnbackpropError(
            f"unknown gradient method {name!r}; valid methods: {', '.join(GRADIENT_FUNCTIONS)}"
        )
    return GRADIENT_FUNCTIONS[name]


def weights_only(params: Params):
    """The mask that selects every w and no b (L2 regularisation leaves the biases alone)."""
    return tuple((True, False) for _ in params)


def make_optimizer(
    name: str = "sgd",
    eta: float = 3.0,
    *,
    lmbda: float = 0.0,
    n: int = 50_000,
    momentum: float = 0.9,
) -> optax.GradientTransformation:
    """The update rule: `sgd` (w → w − η ∇C), `momentum` or `adam`, plus λ/n · w on weights."""
    if name == "sgd":
        rule = optax.sgd(eta)
    elif name == "momentum":
        rule = optax.sgd(eta, momentum=momentum)
    elif name == "adam":
        rule = optax.adam(eta)
    else:
        raise FnbackpropError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    if lmbda:
        return optax.chain(optax.add_decayed_weights(lmbda / n, mask=weights_only), rule)
    return rule


def make_epoch(
    net: Network,
    optimizer: optax.GradientTransformation,
    *,
    gradient: "str | Callable" = "backprop",
    mini_batch_size: int = 10,
    devices: int = 1,
) -> Callable:
    """One epoch of mini-batch SGD as one compiled function.

    Returns `epoch(params, opt_state, key, X, Y) -> (params, opt_state)`, with X (n, n_in) and
    Y (n, n_out) one example per row. The n examples are shuffled with `key`, split into
    ⌊n/m⌋ mini-batches of m and, when m does not divide n, a last smaller one, as in the book.
    On one device the examples of k mini-batches (about `GATHER_SIZE` examples) are gathered at
    once and an inner scan steps through them; the run is the same as one gather per step.

    With `devices` d > 1 each mini-batch is split into d shards of m/d examples (see
    `fnbackprop.sharding`); m must be a multiple of d. The last smaller mini-batch is split too
    when d divides it, else every device computes it whole; either way the run equals the
    one-device run.
    """
    mean_gradient = gradient_function(gradient)
    m = mini_batch_size
    d = devices
    sharding.check_divisible(m, d)
    mesh = sharding.data_mesh(d) if d > 1 else None

    def split(batch):  # the mini-batch's examples spread across the devices
        return batch if mesh is None else sharding.shard_batch(batch, mesh)

    def update(params, opt_state, X, Y):
        grads = mean_gradient(net, params, X, Y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def step(carry, batch):  # one SGD step on the examples of one mini-batch
        X_batch, Y_batch = batch
        return update(*carry, X_batch, Y_batch), None

    def epoch(params, opt_state, key, X, Y):
        n = X.shape[0]
        order = jax.random.permutation(key, n)
        full = n // m
        batches = order[: full * m].reshape(full, m)

        def gather_and_step(carry, indices):  # k mini-batches' examples gathered at once
            return jax.lax.scan(step, carry, (X[indices], Y[indices]))[0], None

        def sharded_step(carry, batch):  # each device gathers its own share of the rows
            batch = split(batch)
            return step(carry, (X[batch], Y[batch]))

        if mesh is None:
            k = _batches_per_gather(full, m)
            (params, opt_state), _ = jax.lax.scan(
                gather_and_step, (params, opt_state), batches.reshape(full // k, k, m)
            )
        else:
            (params, opt_state), _ = jax.lax.scan(sharded_step, (params, opt_state), batches)
        if n % m:
            rest = order[full * m :]
            if (n % m) % d == 0:  # else each device computes the whole last mini-batch
                rest = split(rest)
            params, opt_state = update(params, opt_state, X[rest], Y[rest])
        return params, opt_state

    if mesh is None:
        return jax.jit(epoch)
    return sharding.replicated_jit(epoch, mesh)


def _batches_per_gather(full: int, m: int) -> int:
    """How many of the `full` mini-batches of m examples one gather fetches: k ≤ GATHER_SIZE / m.

    The largest such k that divides `full`, so that the epoch is ⌊n/m⌋/k gathers of k·m rows.
    """
    k = max(1, min(full, GATHER_SIZE // m))
    while full % k:
        k -= 1
    return k


@jax.jit
def _evaluate(net: Network, params: Params, X, labels):
    outputs = feedforward(net, params, X.T)  # examples as columns
    correct = jnp.sum(jnp.argmax(outputs, axis=0) == labels)
    Y = jax.nn.one_hot(labels, net.sizes[-1], dtype=X.dtype)
    return correct, cost(net, params, X.T, Y.T)


def evaluate(net: Network, params: Params, X, labels) -> tuple[int, float]:
    """(number classified correctly, mean cost C) on X (n, n_in) with integer labels (n,).

    The network's answer is the index of the most active output neuron, as in the book.
    Raises `ShapeError` naming the argument if X or the labels do not fit the network.
    """
    _check_evaluation_set(net, params, X, labels)
    return _score(net, params, X, labels)


def _score(net: Network, params: Params, X, labels) -> tuple[int, float]:
    correct, mean_cost = _evaluate(net, params, jnp.asarray(X), jnp.asarray(labels))
    return int(correct), float(mean_cost)


def _check_evaluation_set(net: Network, params: Params, X, labels, name: str = "") -> None:
    """X (n, n_in) finite floats and labels (n,) integers in 0..n_out − 1."""
    where = f"{name}: " if name else ""
    try:
        check_example(net, params, X, batch=True)
    except ShapeError as err:
        raise ShapeError(f"{where}{err}") from None
    n, n_out = np.shape(X)[0], net.sizes[-1]
    if np.shape(labels) != (n,) or not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ShapeError(
            f"{where}labels have shape {np.shape(labels)} {jnp.result_type(labels)}, expected "
            f"({n},) integers: one class index per row of X (not one-hot)"
        )
    if not isinstance(labels, jax.core.Tracer):
        labels = np.asarray(labels)
        if labels.min() < 0 or labels.max() >= n_out:
            raise ShapeError(
                f"{where}labels must lie in 0..{n_out - 1} for {n_out} output neurons, found "
                f"{labels.min()}..{labels.max()}"
            )


def fit(
    net: Network,
    state: TrainState,
    train: tuple,
    evaluation: dict[str, tuple],
    *,
    epochs: int,
    mini_batch_size: int,
    optimizer: optax.GradientTransformation,
    gradient: "str | Callable",
    key: jax.Array,
    devices: int = 1,
) -> Iterator[tuple[TrainState, dict]]:
    """Train from `state` up to `epochs` epochs, yielding `(state, metrics)` after each epoch.

    `train` is `(X, Y)` (one-hot Y), `evaluation` maps a name ("validation", "test") to
    `(X, labels)`. Epoch e shuffles with `fold_in(key, e)`, so a run resumed from a saved state
    repeats exactly what an uninterrupted run would have done. With `devices` > 1 every
    mini-batch is split across that many devices (see `make_epoch`). Raises `DivergenceError` at
    the end of the first epoch whose cost or parameters are not finite, before yielding that state.
    Raises `ShapeError` before the first epoch if the arrays do not fit the network.
    """
    _check_fit_arguments(net, state, train, evaluation, mini_batch_size)
    run_epoch = make_epoch(
        net, optimizer, gradient=gradient, mini_batch_size=mini_batch_size, devices=devices
    )
    X, Y = train
    for e in range(state.epoch, epochs):
        start = time.perf_counter()
        params, opt_state = run_epoch(
            state.params, state.opt_state, jax.random.fold_in(key, e), X, Y
        )
        metrics: dict = {"epoch": e}
        for name, (X_eval, labels) in evaluation.items():
            correct, mean_cost = _score(net, params, X_eval, labels)
            metrics |= {
                f"{name}_correct": correct,
                f"{name}_total": len(labels),
                f"{name}_accuracy": correct / len(labels),
                f"{name}_cost": mean_cost,
            }
        metrics["seconds"] = time.perf_counter() - start
        costs = [v for k, v in metrics.items() if k.endswith("_cost")]
        bad = [
            what
            for what, ok in (
                ("the parameters", _all_finite(params)),
                ("the optimizer state", _all_finite(opt_state)),
                ("the cost", all(np.isfinite(costs))),
            )
            if not ok
        ]
        if bad:
            raise DivergenceError(
                f"training diverged in epoch {e}: {' and '.join(bad)} became NaN or infinite; "
                "try a smaller learning rate (training.eta)"
            )
        state = TrainState(params, opt_state, e + 1)
        yield state, metrics


def _all_finite(tree) -> bool:
    """Whether every float leaf of `tree` (parameters, optimizer state) is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    return bool(jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves])))


def _check_fit_arguments(
    net: Network, state: TrainState, train: tuple, evaluation: dict, mini_batch_size: int
) -> None:
    if not isinstance(train, tuple | list) or len(train) != 2:
        raise ShapeError(f"train must be a pair (X, Y), got {type(train).__name__}")
    X, Y = train
    try:
        check_example(net, state.params, X, Y, batch=True)
    except ShapeError as err:
        raise ShapeError(f"train: {err}") from None
    n = np.shape(X)[0]
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int | np.integer):
        raise FnbackpropError(f"mini_batch_size must be an integer, got {mini_batch_size!r}")
    if not 1 <= mini_batch_size <= n:
        raise FnbackpropError(
            f"mini_batch_size must be 1..{n} (the number of training examples), "
            f"got {mini_batch_size}"
        )
    for name, pair in evaluation.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ShapeError(f"evaluation[{name!r}] must be a pair (X, labels)")
        _check_evaluation_set(net, state.params, *pair, name=name)
