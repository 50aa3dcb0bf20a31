"""Mini-batch stochastic gradient descent, one compiled epoch at a time (chapter 1, §1.6).

Each epoch shuffles the training data on the device with an explicit key, cuts it into
mini-batches of m examples and applies one update per mini-batch; the whole epoch is a single
jitted call, a `jax.lax.scan` over the mini-batches. With plain SGD the update is the book's rule

    w → w − (η/m) Σ_x ∇C_x,    b → b − (η/m) Σ_x ∇C_x   (eqs. 20, 21)

fed by the mean gradient of the chosen method (`GRADIENTS`, a name or any function
`(net, params, X, Y) -> grads`):

- "backprop": the hand-written per-example `backprop`, vmapped over the mini-batch;
- "backprop_batch": the fully matrix-based form;
- "autodiff": `jax.grad` of the mean cost;
- "backprop_vjp": `jax.grad` of `cost_with_backprop(net)`, the hand-written pass as JAX's rule.

The update is an optax transformation (`OPTIMIZERS`: "sgd", "momentum", "adam", or any function
`learning_rate -> optax.GradientTransformation` by import path, e.g. "optax:rmsprop"), with L2
weight decay on the weights only (not the biases) when λ > 0, as in chapter 3:
w → (1 − ηλ/n) w − (η/m) Σ_x ∇C_x.

Examples are rows throughout: X (n, n_in), one-hot Y (n, n_out), integer labels (n,).
"""

import inspect
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import sharding
from .backward import backprop_batch, backprop_vmap, cost_with_backprop
from .errors import FnbackpropError, ShapeError
from .network import Network, Params, cost, feedforward
from .references import autodiff_grad
from .registry import Registry
from .validation import check_inputs, check_labels, check_mini_batch_size

__all__ = [
    "GRADIENTS",
    "OPTIMIZERS",
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


def backprop_vjp(net: Network, params: Params, X, Y) -> Params:
    """`jax.grad` of `cost_with_backprop(net)`: the hand-written pass, called by JAX's grad."""
    return jax.grad(cost_with_backprop(net))(params, X, Y)


def _as_gradient(obj) -> Callable:
    if not callable(obj):
        raise FnbackpropError(
            f"a gradient method is a function (net, params, X, Y) -> mean gradient, not {obj!r}"
        )
    return obj


def _as_optimizer(obj) -> Callable:
    if not callable(obj):
        raise FnbackpropError(
            "an optimizer is a function learning_rate -> optax.GradientTransformation "
            f"(e.g. optax.sgd), not {obj!r}"
        )
    return obj


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """w → w − η ∇C: the book's rule."""
    return optax.sgd(learning_rate)


def momentum(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """Momentum SGD (chapter 3): v → μv − η∇C, w → w + v."""
    return optax.sgd(learning_rate, momentum=momentum)


def adam(learning_rate: float) -> optax.GradientTransformation:
    """Adam."""
    return optax.adam(learning_rate)


#: Mean-gradient methods by name: functions (net, params, X, Y) -> grads shaped like params.
GRADIENTS: Registry[Callable] = Registry(
    "gradient method",
    _as_gradient,
    {
        "backprop": backprop_vmap,
        "backprop_batch": backprop_batch,
        "autodiff": autodiff_grad,
        "backprop_vjp": backprop_vjp,
    },
    name_of=lambda f: f.__name__,
)

#: Optimizers by name: functions learning_rate -> optax.GradientTransformation.
OPTIMIZERS: Registry[Callable] = Registry(
    "optimizer",
    _as_optimizer,
    {"sgd": sgd, "momentum": momentum, "adam": adam},
    name_of=lambda f: f.__name__,
)


class DivergenceError(FnbackpropError):
    """The cost or the parameters stopped being finite."""


class TrainState(NamedTuple):
    """Everything training needs to continue: parameters, optimizer state, epochs done."""

    params: Params
    opt_state: optax.OptState
    epoch: int


def gradient_function(spec: "str | Callable") -> Callable:
    """The mean-gradient function `(net, params, X, Y) -> grads` that `spec` names.

    A name in `GRADIENTS`, an import path, or a function of that signature (returned as it is),
    so any gradient can drive an epoch.
    """
    return GRADIENTS.get(spec)


def weights_only(params: Params):
    """The mask that selects every w and no b (L2 regularisation leaves the biases alone)."""
    return tuple((True, False) for _ in params)


def make_optimizer(
    name: "str | Callable" = "sgd",
    eta: float = 3.0,
    *,
    lmbda: float = 0.0,
    n: int = 50_000,
    momentum: float = 0.9,
) -> optax.GradientTransformation:
    """The update rule `name` at learning rate η, plus λ/n · w on the weights when λ > 0.

    `momentum` reaches the optimizers that take it (the built-in "momentum").
    """
    make = OPTIMIZERS.get(name)
    options = {"momentum": momentum} if "momentum" in _parameters(make) else {}
    rule = make(eta, **options)
    if not isinstance(rule, optax.GradientTransformation):
        raise FnbackpropError(
            f"optimizer {name!r} returned {type(rule).__name__}, "
            "not an optax.GradientTransformation"
        )
    if lmbda:
        return optax.chain(optax.add_decayed_weights(lmbda / n, mask=weights_only), rule)
    return rule


def _parameters(fn: Callable) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        return ()


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
    m, d = mini_batch_size, devices
    sharding.check_divisible(m, d)
    update = sgd_update(net, optimizer, gradient)
    if d == 1:
        return jax.jit(_one_device_epoch(update, m))
    mesh = sharding.data_mesh(d)
    return sharding.replicated_jit(_sharded_epoch(update, m, mesh), mesh)


def sgd_update(net: Network, optimizer: optax.GradientTransformation, gradient) -> Callable:
    """One SGD step, `(params, opt_state, X, Y) -> (params, opt_state)`: the mean gradient of the
    mini-batch (X, Y) by `gradient`, turned into an update by the optimizer (eqs. 20, 21)."""
    mean_gradient = gradient_function(gradient)

    def update(params, opt_state, X, Y):
        grads = mean_gradient(net, params, X, Y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return update


def shuffle(key, n: int, m: int) -> tuple[jax.Array, jax.Array]:
    """A random order of the n examples cut into mini-batches: ((⌊n/m⌋, m) indices, the rest)."""
    order = jax.random.permutation(key, n)
    full = n // m
    return order[: full * m].reshape(full, m), order[full * m :]


def _one_device_epoch(update: Callable, m: int) -> Callable:
    def step(carry, batch):  # one SGD step on the examples of one mini-batch
        return update(*carry, *batch), None

    def epoch(params, opt_state, key, X, Y):
        batches, rest = shuffle(key, X.shape[0], m)
        full = batches.shape[0]
        k = _batches_per_gather(full, m)

        def gather_and_step(carry, indices):  # k mini-batches' examples gathered at once
            return jax.lax.scan(step, carry, (X[indices], Y[indices]))[0], None

        carry, _ = jax.lax.scan(gather_and_step, (params, opt_state), batches.reshape(-1, k, m))
        if rest.shape[0]:  # the book's last, smaller mini-batch
            carry = update(*carry, X[rest], Y[rest])
        return carry

    return epoch


def _sharded_epoch(update: Callable, m: int, mesh) -> Callable:
    d = mesh.devices.size

    def epoch(params, opt_state, key, X, Y):
        def step(carry, batch):  # each device gathers its own share of the mini-batch's rows
            batch = sharding.shard_batch(batch, mesh)
            return update(*carry, X[batch], Y[batch]), None

        batches, rest = shuffle(key, X.shape[0], m)
        carry, _ = jax.lax.scan(step, (params, opt_state), batches)
        if rest.shape[0]:
            if rest.shape[0] % d == 0:  # else each device computes the whole last mini-batch
                rest = sharding.shard_batch(rest, mesh)
            carry = update(*carry, X[rest], Y[rest])
        return carry

    return epoch


def _batches_per_gather(full: int, m: int) -> int:
    """How many of the `full` mini-batches of m examples one gather fetches: k ≤ GATHER_SIZE / m.

    The largest such k that divides `full`, so that the epoch is ⌊n/m⌋/k gathers of k·m rows.
    """
    k = max(1, min(full, GATHER_SIZE // m))
    while full % k:
        k -= 1
    return k


# -- evaluation ---------------------------------------------------------------------------------


@jax.jit
def _evaluate(net: Network, params: Params, X, labels):
    outputs = feedforward(net, params, X)  # one row per example
    correct = jnp.sum(jnp.argmax(outputs, axis=1) == labels)
    Y = jax.nn.one_hot(labels, net.sizes[-1], dtype=X.dtype)
    return correct, cost(net, params, X, Y)


def evaluate(net: Network, params: Params, X, labels) -> tuple[int, float]:
    """(number classified correctly, mean cost C) on X (n, n_in) with integer labels (n,).

    The network's answer is the index of the most active output neuron, as in the book.
    Raises `ShapeError` naming the argument if X or the labels do not fit the network.
    """
    check_labels(net, params, X, labels)
    return _score(net, params, X, labels)


def _score(net: Network, params: Params, X, labels) -> tuple[int, float]:
    correct, mean_cost = _evaluate(net, params, jnp.asarray(X), jnp.asarray(labels))
    return int(correct), float(mean_cost)


def score_sets(net: Network, params: Params, evaluation: dict[str, tuple]) -> dict:
    """`{name}_correct`, `_total`, `_accuracy`, `_cost` for every evaluation set `name`."""
    metrics: dict = {}
    for name, (X, labels) in evaluation.items():
        correct, mean_cost = _score(net, params, X, labels)
        metrics |= {
            f"{name}_correct": correct,
            f"{name}_total": len(labels),
            f"{name}_accuracy": correct / len(labels),
            f"{name}_cost": mean_cost,
        }
    return metrics


# -- the training loop --------------------------------------------------------------------------


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

    `train` is `(X, Y)`, X (n, n_in) and one-hot Y (n, n_out); `evaluation` maps a name
    ("validation", "test") to `(X, labels)`. Epoch e shuffles with `fold_in(key, e)`, so a run
    resumed from a saved state repeats exactly what an uninterrupted run would have done. With
    `devices` > 1 every mini-batch is split across that many devices (see `make_epoch`).
    Raises `ShapeError` before the first epoch if the arrays do not fit the network, and
    `DivergenceError` at the end of the first epoch whose cost or parameters are not finite,
    before yielding that state.
    """
    check_fit_arguments(net, state, train, evaluation, mini_batch_size)
    run_epoch = make_epoch(
        net, optimizer, gradient=gradient, mini_batch_size=mini_batch_size, devices=devices
    )
    X, Y = train
    for e in range(state.epoch, epochs):
        start = time.perf_counter()
        params, opt_state = run_epoch(
            state.params, state.opt_state, jax.random.fold_in(key, e), X, Y
        )
        metrics = {"epoch": e, **score_sets(net, params, evaluation)}
        metrics["seconds"] = time.perf_counter() - start
        check_finite(e, params, opt_state, metrics)
        state = TrainState(params, opt_state, e + 1)
        yield state, metrics


def check_finite(epoch: int, params: Params, opt_state, metrics: dict) -> None:
    """Raise `DivergenceError` naming what stopped being finite in `epoch`."""
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
            f"training diverged in epoch {epoch}: {' and '.join(bad)} became NaN or infinite; "
            "try a smaller learning rate (training.eta)"
        )


def _all_finite(tree) -> bool:
    """Whether every float leaf of `tree` (parameters, optimizer state) is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    return bool(jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves])))


def check_fit_arguments(
    net: Network, state: TrainState, train: tuple, evaluation: dict, mini_batch_size: int
) -> None:
    """The training pair, the evaluation sets and the mini-batch size fit the network."""
    if not isinstance(train, tuple | list) or len(train) != 2:
        raise ShapeError(f"train must be a pair (X, Y), got {type(train).__name__}")
    X, Y = train
    try:
        check_inputs(net, state.params, X, Y)
        if np.ndim(X) != 2:
            raise ShapeError(f"X has shape {np.shape(X)}, expected (n, {net.sizes[0]})")
    except ShapeError as err:
        raise ShapeError(f"train: {err}") from None
    check_mini_batch_size(mini_batch_size, np.shape(X)[0])
    for name, pair in evaluation.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ShapeError(f"evaluation[{name!r}] must be a pair (X, labels)")
        check_labels(net, state.params, *pair, name=name)
