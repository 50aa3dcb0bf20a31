"""Mini-batch stochastic gradient descent, one compiled epoch at a time (chapters 1 and 3).

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

The update is an optax transformation from `fnbackprop.optimizers` ("sgd", "momentum", "adam",
anything by import path), after chapter 3's L2 and L1 terms on the weights only.

Chapter 3's other controls are fields of `FitOptions`, the one value that tells `fit` how to
train: dropout on the hidden layers (masks drawn per mini-batch from an explicit key, entering
BP2 and BP4, see `fnbackprop.backward`), monitoring the cost and accuracy on the training data
(network2's `monitor_training_*`), early stopping, and learning-rate schedules
(`fnbackprop.schedules`: the chapter's "halve η on a plateau" exercise, and optax's schedules by
name, stepped once per epoch). What happens after every epoch (the metrics, the divergence
check, the best epoch, the reason to stop) is `record_epoch`, which a sweep's vmapped runs call
too, so that every run records its epochs the same way.

**One compile serves many runs.** η, λ/n, λ₁/n and the momentum are not constants baked into the
compiled epoch: `optimizers.make_optimizer` injects them into the optimizer
state (`optax.inject_hyperparams`), the dropout probability is an argument of the epoch, and
`make_epoch` keeps the compiled epoch of each structure (network, optimizer rule, which terms
are present, gradient method, mini-batch size). Runs that differ only in those numbers or in the
seed share one program, and a schedule changes η between epochs without compiling anything.

Examples are rows throughout: X (n, n_in), one-hot Y (n, n_out), integer labels (n,).
"""

import collections
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import sharding
from .backward import backprop_batch, backprop_vmap, cost_with_backprop
from .errors import FnbackpropError, ShapeError
from .network import Network, Params, _check_dropout, cost, dropout_masks, feedforward
from .optimizers import hyperparameters, regularization, with_hyperparameters
from .references import autodiff_grad
from .registry import Registry, functions
from .schedules import HalveOnPlateau, best_epoch, stop_reason
from .speeds import learning_speeds
from .validation import check_inputs, check_labels, check_mini_batch_size

__all__ = [
    "GRADIENTS",
    "DivergenceError",
    "FitOptions",
    "TrainState",
    "epoch_compiles",
    "evaluate",
    "fit",
    "gradient_function",
    "make_epoch",
    "make_vmapped_epoch",
    "record_epoch",
    "score_many",
]

#: Examples gathered from the shuffled training set at once, as k whole mini-batches of m. XLA's
#: CPU backend runs every gather from the whole training set on two threads; for the 10 rows of
#: one mini-batch that hand-off cost more than the SGD step itself (see benchmarks/README.md).
GATHER_SIZE = 1024

#: Folded into an epoch's key to draw the dropout masks, so that the shuffle (the key itself)
#: is the same with and without dropout.
DROPOUT_STREAM = 0x64726F70  # "drop"


def backprop_vjp(net: Network, params: Params, X, Y, masks=None) -> Params:
    """`jax.grad` of `cost_with_backprop(net)`: the hand-written pass, called by JAX's grad."""
    return jax.grad(cost_with_backprop(net))(params, X, Y, masks)


#: Mean-gradient methods by name: functions (net, params, X, Y, masks=None) -> grads shaped like
#: params. A function of your own needs the `masks` parameter only for dropout.
GRADIENTS: Registry[Callable] = Registry(
    "gradient method",
    functions("a gradient method is a function (net, params, X, Y, masks=None) -> mean gradient"),
    {
        "backprop": backprop_vmap,
        "backprop_batch": backprop_batch,
        "autodiff": autodiff_grad,
        "backprop_vjp": backprop_vjp,
    },
    name_of=lambda f: f.__name__,
)


class DivergenceError(FnbackpropError):
    """The cost or the parameters stopped being finite."""


class TrainState(NamedTuple):
    """Everything training needs to continue: parameters, optimizer state, epochs done."""

    params: Params
    opt_state: optax.OptState
    epoch: int


class FitOptions(NamedTuple):
    """How `fit` trains (`fnbackprop.runs.fit_options` builds it from a config).

    - `epochs`: train up to this many epochs in all; `mini_batch_size` m; `optimizer` (from
      `fnbackprop.optimizers.make_optimizer`, or any optax transformation); `gradient` (a name in
      `GRADIENTS`, an import path or a function); `devices` d > 1 splits every mini-batch across
      d devices (see `make_epoch`).
    - `dropout` p: each hidden neuron is dropped with probability p in every mini-batch, the
      kept ones scaled by 1/(1 − p); evaluation uses no mask. A tuple gives each hidden layer
      its own p (`fnbackprop.config.dropout`: a layer stack's per-layer dropout).
    - `monitor_training_cost`, `monitor_training_accuracy`: also score the training data after
      each epoch (`training_cost` with the regularization terms, `training_correct`, `_total`,
      `_accuracy`), as network2's monitor_training_* flags.
    - `monitor_layer_speed`: also record chapter 5's speed of learning of every layer after each
      epoch, `layer_speeds` = ‖∂C/∂b^l‖ for l = 2, …, L (output last) of the mean cost over the
      first `SPEED_PROBE` training examples, from the hand-written pass (`fnbackprop.speeds`).
    - `early_stopping` n > 0: stop after n epochs without a better validation accuracy.
    - `schedule`: called before each epoch with the metrics so far, it gives η for that epoch
      (set in the optimizer state, no recompiling) and may stop the run
      (`fnbackprop.schedules.make_schedule`, `HalveOnPlateau`).
    """

    epochs: int
    optimizer: optax.GradientTransformation
    mini_batch_size: int = 10
    gradient: "str | Callable" = "backprop"
    devices: int = 1
    dropout: "float | tuple[float, ...]" = 0.0
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    early_stopping: int = 0
    schedule: Callable | None = None
    monitor_layer_speed: bool = False

    @property
    def monitor_training(self) -> bool:
        """Whether the training data is scored after each epoch (for its cost, accuracy or both)."""
        return self.monitor_training_cost or self.monitor_training_accuracy


def gradient_function(spec: "str | Callable") -> Callable:
    """The mean-gradient function `(net, params, X, Y) -> grads` that `spec` names.

    A name in `GRADIENTS`, an import path, or a function of that signature (returned as it is),
    so any gradient can drive an epoch.
    """
    return GRADIENTS.get(spec)


# -- the compiled epoch -------------------------------------------------------------------------

#: Compiled epochs by structure (see `make_epoch`); the oldest are forgotten past this many.
_EPOCH_CACHE_SIZE = 32
_EPOCHS: "collections.OrderedDict[tuple, Callable]" = collections.OrderedDict()
#: How many times an epoch program has been traced (so built and compiled, or read back from
#: the persistent cache) in this process: see `epoch_compiles`.
_TRACES = [0]


def epoch_compiles() -> int:
    """How many epoch programs this process has built so far (each trace of an epoch, one-device,
    sharded or vmapped, for a new structure or new shapes). The difference over a sweep is the
    number of programs the sweep compiled: 1 for runs of one structure."""
    return _TRACES[0]


def make_epoch(
    net: Network,
    optimizer: optax.GradientTransformation,
    *,
    gradient: "str | Callable" = "backprop",
    mini_batch_size: int = 10,
    devices: int = 1,
    dropout: "bool | float | tuple[float, ...]" = False,
) -> Callable:
    """One epoch of mini-batch SGD as one compiled function.

    Returns `epoch(params, opt_state, key, X, Y, dropout=p) -> (params, opt_state)`, with X
    (n, n_in) and Y (n, n_out) one example per row. The n examples are shuffled with `key`,
    split into ⌊n/m⌋ mini-batches of m and, when m does not divide n, a last smaller one, as in
    the book. On one device the examples of k mini-batches (about `GATHER_SIZE` examples) are
    gathered at once and an inner scan steps through them; the run is the same as one gather per
    step.

    With `dropout` true (or a probability p > 0), every mini-batch draws fresh masks for the
    hidden layers from `fold_in(key, DROPOUT_STREAM)` and the gradient method gets them (its
    fifth argument); the probability is the epoch's `dropout` argument (default: the p given
    here), an input of the program, not a constant in it: one p for every hidden layer, or a
    tuple of one per hidden layer.

    The function is kept, so another call with the same structure (network, `optimizer.update`,
    gradient method, m, devices, dropout on or off) returns the very same compiled epoch: runs
    that differ only in numbers held in the optimizer state (η, λ, momentum) or in the seed
    share one compile (`epoch_compiles` counts them).

    With `devices` d > 1 each mini-batch is split into d shards of m/d examples (see
    `fnbackprop.sharding`); m must be a multiple of d. The last smaller mini-batch is split too
    when d divides it, else every device computes it whole; either way the run equals the
    one-device run.
    """
    m, d = mini_batch_size, devices
    sharding.check_divisible(m, d)
    p_default = 0.0 if isinstance(dropout, bool) else dropout
    with_dropout = dropping(dropout)
    mean_gradient = gradient_function(gradient)
    if with_dropout:
        _check_takes_masks(gradient, mean_gradient)
    key = (net, optimizer.update, mean_gradient, m, d, with_dropout)
    try:
        compiled = _EPOCHS.get(key)
    except TypeError:  # something unhashable: no sharing, but it still works
        key, compiled = None, None
    if compiled is None:
        update = sgd_update(net, optimizer, mean_gradient)
        draw = _mask_drawer(net) if with_dropout else None
        if d == 1:
            compiled = jax.jit(_one_device_epoch(update, m, draw))
        else:
            mesh = sharding.data_mesh(d)
            compiled = sharding.replicated_jit(_sharded_epoch(update, m, mesh, draw), mesh)
        if key is not None:
            _EPOCHS[key] = compiled
            while len(_EPOCHS) > _EPOCH_CACHE_SIZE:
                _EPOCHS.popitem(last=False)
    elif key is not None:
        _EPOCHS.move_to_end(key)

    @functools.wraps(compiled)
    def epoch(params, opt_state, key, X, Y, dropout=p_default):
        p = jnp.asarray(dropout, jnp.result_type(X))
        return compiled(params, opt_state, key, X, Y, p)

    epoch.lower = lambda params, opt_state, key, X, Y, dropout=p_default: compiled.lower(
        params, opt_state, key, X, Y, jnp.asarray(dropout, jnp.result_type(X))
    )
    epoch.compiled = compiled
    return epoch


def make_vmapped_epoch(
    net: Network,
    optimizer: optax.GradientTransformation,
    *,
    gradient: "str | Callable" = "backprop",
    mini_batch_size: int = 10,
    dropout: bool = False,
) -> Callable:
    """K runs' epochs as one compiled program: `epoch(P, S, key, X, Y, p) -> (P, S)`, with the
    K runs' parameters P and optimizer states S stacked on a leading axis (and their dropout
    probabilities p, shape (K,)), all sharing one mini-batch order (one `key`).

    Sharing the order is what makes it pay: the first layer's products of all K runs,
    w²_k · xᵀ for the same mini-batch x, become one product with K times the rows, which XLA's CPU
    kernels run faster than K small ones (benchmarks/README.md, "Sweeps": 1.35 × at K = 8,
    1.43 × at K = 16, no gain at K = 4). Runs that share their seed share their order anyway,
    so each gets what it would get alone, up to float rounding (the products are blocked
    differently). Kept like `make_epoch`'s, so one compile serves every such group.
    """
    mean_gradient = gradient_function(gradient)
    if dropout:
        _check_takes_masks(gradient, mean_gradient)
    key = ("vmap", net, optimizer.update, mean_gradient, mini_batch_size, bool(dropout))
    compiled = _EPOCHS.get(key)
    if compiled is None:
        update = sgd_update(net, optimizer, mean_gradient)
        one = _one_device_epoch(update, mini_batch_size, _mask_drawer(net) if dropout else None)
        compiled = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None, 0)))
        _EPOCHS[key] = compiled
        while len(_EPOCHS) > _EPOCH_CACHE_SIZE:
            _EPOCHS.popitem(last=False)
    return compiled


@jax.jit
def _evaluate_many(net: Network, P, X, labels):
    return jax.vmap(lambda params: _evaluate(net, params, X, labels))(P)


@jax.jit
def _evaluate_targets_many(net: Network, P, X, Y):
    return jax.vmap(lambda params: _evaluate_targets(net, params, X, Y))(P)


def score_many(
    net: Network,
    P,
    evaluation: dict[str, tuple],
    train: tuple | None = None,
    *,
    speeds_on: tuple | None = None,
):
    """`score_sets` for K stacked parameter sets at once: one dict per run. With `train`, the
    training scores too (`training_correct`, `_total`, `_accuracy`, and the unregularized
    `training_cost`, to which the caller adds each run's `regularization`); with `speeds_on`,
    the training pair, each run's `layer_speeds` (`score_layer_speeds`)."""
    K = jax.tree.leaves(P)[0].shape[0]
    found: list[dict] = [{} for _ in range(K)]
    sets = dict(evaluation)
    for name, (X, labels) in sets.items():
        correct, costs = _evaluate_many(net, P, jnp.asarray(X), jnp.asarray(labels))
        for k in range(K):
            found[k] |= _scores(name, int(correct[k]), len(labels), float(costs[k]))
    if train is not None:
        X, Y = train
        correct, costs = _evaluate_targets_many(net, P, X, Y)
        for k in range(K):
            found[k] |= _scores("training", int(correct[k]), int(X.shape[0]), float(costs[k]))
    if speeds_on is not None:
        X, Y = (a[:SPEED_PROBE] for a in speeds_on)
        for k, speeds in enumerate(np.asarray(_speeds_many(net, P, X, Y))):
            found[k]["layer_speeds"] = speeds.tolist()
    return found


#: How many training examples (the first ones) `monitor_layer_speed` measures the speeds on:
#: chapter 5's figures use the first 1,000 training images.
SPEED_PROBE = 1000


@jax.jit
def _speeds(net: Network, params: Params, X, Y):
    return learning_speeds(net, params, X, Y)


@jax.jit
def _speeds_many(net: Network, P, X, Y):
    return jax.vmap(lambda params: learning_speeds(net, params, X, Y))(P)


def score_layer_speeds(net: Network, params: Params, train: tuple) -> dict:
    """`layer_speeds`: ‖∂C/∂b^l‖ of every layer l = 2, …, L (output last) for the mean cost over
    the first `SPEED_PROBE` examples of the training pair, by the hand-written pass."""
    X, Y = (a[:SPEED_PROBE] for a in train)
    return {"layer_speeds": np.asarray(_speeds(net, params, X, Y)).tolist()}


def _check_takes_masks(spec, fn: Callable) -> None:
    try:
        inspect.signature(fn).bind(None, None, None, None, None)
    except TypeError:
        name = spec if isinstance(spec, str) else getattr(fn, "__name__", repr(fn))
        raise FnbackpropError(
            f"gradient method {name!r} takes no dropout masks: give it a fifth parameter "
            "(net, params, X, Y, masks=None), or train without dropout"
        ) from None
    except ValueError:  # no signature to read: trust it
        pass


def sgd_update(net: Network, optimizer: optax.GradientTransformation, gradient) -> Callable:
    """One SGD step, `(params, opt_state, X, Y, masks=None) -> (params, opt_state)`: the mean
    gradient of the mini-batch (X, Y) by `gradient` (with dropout masks when given), turned into
    an update by the optimizer (eqs. 20, 21)."""
    mean_gradient = gradient_function(gradient)

    def update(params, opt_state, X, Y, masks=None):
        if masks is None:
            grads = mean_gradient(net, params, X, Y)
        else:
            grads = mean_gradient(net, params, X, Y, masks)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return update


def _mask_drawer(net: Network) -> Callable:
    """`draw(key, p, rows) -> masks`: fresh dropout masks for one mini-batch."""

    def draw(key, p, rows: int):
        return dropout_masks(key, net, p, rows, p.dtype)

    return draw


def shuffle(key, n: int, m: int) -> tuple[jax.Array, jax.Array]:
    """A random order of the n examples cut into mini-batches: ((⌊n/m⌋, m) indices, the rest)."""
    order = jax.random.permutation(key, n)
    full = n // m
    return order[: full * m].reshape(full, m), order[full * m :]


def _step_keys(key, steps: int):
    """One dropout key per SGD step of the epoch."""
    return jax.random.split(jax.random.fold_in(key, DROPOUT_STREAM), steps)


def _one_device_epoch(update: Callable, m: int, draw: Callable | None) -> Callable:
    def epoch(params, opt_state, key, X, Y, p):
        _TRACES[0] += 1  # runs when jit traces the epoch, not when the program runs

        def step(carry, batch):  # one SGD step on the examples of one mini-batch
            X, Y, step_key = batch
            masks = None if draw is None else draw(step_key, p, X.shape[0])
            return update(*carry, X, Y, masks), None

        batches, rest = shuffle(key, X.shape[0], m)
        full = batches.shape[0]
        k = _batches_per_gather(full, m)
        keys = _step_keys(key, full + 1) if draw is not None else None

        def gather_and_step(carry, chunk):  # k mini-batches' examples gathered at once
            indices, step_keys = chunk
            return jax.lax.scan(step, carry, (X[indices], Y[indices], step_keys))[0], None

        step_keys = None if keys is None else keys[:full].reshape(-1, k)
        carry, _ = jax.lax.scan(
            gather_and_step, (params, opt_state), (batches.reshape(-1, k, m), step_keys)
        )
        if rest.shape[0]:  # the book's last, smaller mini-batch
            carry, _ = step(carry, (X[rest], Y[rest], None if keys is None else keys[full]))
        return carry

    return epoch


def _sharded_epoch(update: Callable, m: int, mesh, draw: Callable | None) -> Callable:
    d = mesh.devices.size

    def epoch(params, opt_state, key, X, Y, p):
        _TRACES[0] += 1  # runs when jit traces the epoch, not when the program runs

        def sharded_update(carry, batch, step_key, split: bool):
            masks = None if draw is None else draw(step_key, p, batch.shape[0])
            if split:  # each device gathers its own share of the mini-batch's rows
                batch = sharding.shard_batch(batch, mesh)
                if masks is not None:
                    masks = tuple(sharding.shard_batch(mask, mesh) for mask in masks)
            return update(*carry, X[batch], Y[batch], masks)

        def step(carry, chunk):
            batch, step_key = chunk
            return sharded_update(carry, batch, step_key, True), None

        batches, rest = shuffle(key, X.shape[0], m)
        keys = _step_keys(key, batches.shape[0] + 1)
        carry, _ = jax.lax.scan(step, (params, opt_state), (batches, keys[:-1]))
        if rest.shape[0]:  # split when d divides it, else each device computes it whole
            carry = sharded_update(carry, rest, keys[-1], rest.shape[0] % d == 0)
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
    correct = jnp.sum(jnp.argmax(outputs, axis=1).astype(labels.dtype) == labels)
    Y = jax.nn.one_hot(labels, net.sizes[-1], dtype=X.dtype)
    return correct, cost(net, params, X, Y)


@jax.jit
def _evaluate_targets(net: Network, params: Params, X, Y):
    """Correct answers against the targets' largest entry, and the mean cost against Y itself."""
    outputs = feedforward(net, params, X)
    correct = jnp.sum(jnp.argmax(outputs, axis=1) == jnp.argmax(Y, axis=1))
    return correct, cost(net, params, X, Y)


def evaluate(net: Network, params: Params, X, labels) -> tuple[int, float]:
    """(number classified correctly, mean cost C) on X (n, n_in) with integer labels (n,).

    The network's answer is the index of the most active output neuron, as in the book; no
    dropout mask is used (dropout's masks are scaled while training, so the network is
    evaluated as it is). Raises `ShapeError` naming the argument if X or the labels do not fit.
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
        metrics |= _scores(name, correct, len(labels), mean_cost)
    return metrics


def _scores(name: str, correct: int, total: int, mean_cost: float) -> dict:
    return {
        f"{name}_correct": correct,
        f"{name}_total": total,
        f"{name}_accuracy": correct / total,
        f"{name}_cost": mean_cost,
    }


def score_training(net: Network, params: Params, train: tuple) -> dict:
    """`training_correct`, `_total`, `_accuracy` and `training_cost` on the training pair (X, Y),
    the cost C₀ without the regularization terms (`record_epoch` adds them)."""
    X, Y = train
    correct, mean_cost = _evaluate_targets(net, params, X, Y)
    return _scores("training", int(correct), int(X.shape[0]), float(mean_cost))


# -- the training loop --------------------------------------------------------------------------


def fit(
    net: Network,
    state: TrainState,
    train: tuple,
    evaluation: dict[str, tuple],
    options: FitOptions,
    *,
    key: jax.Array,
    history: Sequence[dict] = (),
) -> Iterator[tuple[TrainState, dict]]:
    """Train from `state` up to `options.epochs` epochs, yielding `(state, metrics)` after each.

    `train` is `(X, Y)`, X (n, n_in) and one-hot Y (n, n_out); `evaluation` maps a name
    ("validation", "test") to `(X, labels)`; `options` says how (`FitOptions`: m, the optimizer,
    the gradient, devices, and chapter 3's controls). Epoch e shuffles with `fold_in(key, e)` (and
    draws its dropout masks from it), so a run resumed from a saved state repeats exactly what an
    uninterrupted run would have done. `history`: the metrics of the epochs already in `state`
    (for a resumed run), from which early stopping and the schedule continue exactly.

    Every epoch's metrics are `record_epoch`'s: `epoch`, `eta` (when the optimizer holds it), the
    scores of every set (and the training scores monitored), `seconds`, `best_epoch` (of the
    validation accuracy, when there is a validation set) and, in the epoch that ends the run
    early, `stopped` with the reason.

    Raises `ShapeError` before the first epoch if the arrays do not fit the network, and
    `DivergenceError` at the end of the first epoch whose cost or parameters are not finite,
    before yielding that state.
    """
    check_fit_arguments(net, state, train, evaluation, options.mini_batch_size)
    history = list(history)
    _check_controls(state, evaluation, options, history)
    _check_dropout(net, options.dropout)  # before tracing: one p, or one per hidden layer
    if history and history[-1].get("stopped"):
        return  # the run ended early; nothing more to do
    run_epoch = make_epoch(
        net,
        options.optimizer,
        gradient=options.gradient,
        mini_batch_size=options.mini_batch_size,
        devices=options.devices,
        dropout=dropping(options.dropout),
    )
    X, Y = train
    params, opt_state = state.params, state.opt_state
    for e in range(state.epoch, options.epochs):
        start = time.perf_counter()
        if options.schedule is not None:
            eta, _ = options.schedule(history)
            opt_state = with_hyperparameters(opt_state, learning_rate=eta)
        used = hyperparameters(opt_state).get("learning_rate")
        params, opt_state = run_epoch(
            params, opt_state, jax.random.fold_in(key, e), X, Y, dropout=options.dropout
        )
        scores = score_sets(net, params, evaluation)
        if options.monitor_training:
            scores |= score_training(net, params, train)
        if options.monitor_layer_speed:
            scores |= score_layer_speeds(net, params, train)
        metrics = record_epoch(
            history, options, epoch=e, eta=used, scores=scores, params=params,
            opt_state=opt_state, seconds=time.perf_counter() - start, weights=net.weight_mask,
        )  # fmt: skip
        yield TrainState(params, opt_state, e + 1), metrics
        if metrics.get("stopped"):
            return


def record_epoch(
    history: list[dict],
    options: FitOptions,
    *,
    epoch: int,
    eta: float | None,
    scores: dict,
    params: Params,
    opt_state,
    seconds: float,
    weights=None,
) -> dict:
    """What a run records after `epoch`, for `fit` and a sweep's vmapped runs alike: appended to
    `history` (the run's metrics so far) and returned.

    The metrics are `epoch`, `eta` (the η the epoch used, unless None), the `scores` (of
    `score_sets`, and `score_training` or `score_many`), of the training data only what the
    options monitor, and `seconds`. The training cost gets the regularization terms, as
    network2's `total_cost`: C = C₀ + (λ/2n) Σ w² + (λ₁/n) Σ |w| (eqs. 87, 95), λ/n and λ₁/n
    read from `opt_state`, over the arrays `weights` flags (`Network.weight_mask`; by default
    the first of each layer's); the validation and test costs are C₀. Then `best_epoch` (with a
    validation set) and, if the run ends here (early stopping, or the schedule), `stopped` with
    the reason.

    Raises `DivergenceError` (leaving `history` as it was) if the cost, the parameters or the
    optimizer state are not finite.
    """
    metrics: dict = {"epoch": epoch}
    if eta is not None:
        metrics["eta"] = eta
    metrics |= scores
    if "training_cost" in metrics:
        metrics["training_cost"] += float(regularization(params, opt_state, weights))
    metrics["seconds"] = seconds
    check_finite(epoch, params, opt_state, metrics)
    metrics = _monitored(metrics, options)
    history.append(metrics)
    if "validation_accuracy" in metrics:
        metrics["best_epoch"] = best_epoch(history)
    reason = stop_reason(history, options.early_stopping, options.schedule)
    if reason:
        metrics["stopped"] = reason
    return metrics


def _monitored(metrics: dict, options: FitOptions) -> dict:
    """The epoch's metrics without the training scores the options do not monitor."""
    drop = set()
    if not options.monitor_training_cost:
        drop.add("training_cost")
    if not options.monitor_training_accuracy:
        drop |= {"training_correct", "training_total", "training_accuracy"}
    return {k: v for k, v in metrics.items() if k not in drop}


def dropping(dropout: "bool | float | tuple[float, ...]") -> bool:
    """Whether `dropout` (a switch, one probability, or one per hidden layer) drops anything."""
    return bool(np.any(np.asarray(dropout) > 0))


def _probability(p) -> bool:
    return not isinstance(p, bool) and isinstance(p, int | float) and 0 <= p < 1


def _check_controls(state, evaluation, options: FitOptions, history) -> None:
    dropout, early_stopping = options.dropout, options.early_stopping
    each = dropout if isinstance(dropout, tuple) else (dropout,)
    if not all(_probability(p) for p in each):
        raise FnbackpropError(
            f"dropout must be a probability 0 ≤ p < 1, or a tuple of one per hidden layer, got "
            f"{dropout!r}"
        )
    if isinstance(early_stopping, bool) or not isinstance(early_stopping, int):
        raise FnbackpropError(f"early_stopping must be a number of epochs, got {early_stopping!r}")
    needs_validation = early_stopping > 0 or isinstance(options.schedule, HalveOnPlateau)
    if needs_validation and "validation" not in evaluation:
        raise FnbackpropError(
            "early stopping and halve_on_plateau watch the validation accuracy: give an "
            "evaluation set named 'validation'"
        )
    if history and len(history) != state.epoch:
        raise FnbackpropError(
            f"history holds {len(history)} epochs' metrics, but the state is after epoch "
            f"{state.epoch}: give the metrics of exactly the epochs done"
        )


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
