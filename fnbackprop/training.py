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

from .backprop import backprop_batch, backprop_vmap
from .config import GRADIENTS, OPTIMIZERS
from .errors import FnbackpropError
from .network import Network, Params, cost, feedforward
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


def gradient_function(name: str) -> Callable:
    """The mean-gradient function `(net, params, X, Y) -> grads` called `name`."""
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
    gradient: str = "backprop",
    mini_batch_size: int = 10,
) -> Callable:
    """One epoch of mini-batch SGD as one compiled function.

    Returns `epoch(params, opt_state, key, X, Y) -> (params, opt_state)`, with X (n, n_in) and
    Y (n, n_out) one example per row. The n examples are shuffled with `key`, split into
    ⌊n/m⌋ mini-batches of m and, when m does not divide n, a last smaller one, as in the book.
    """
    mean_gradient = gradient_function(gradient)
    m = mini_batch_size

    def update(params, opt_state, X, Y):
        grads = mean_gradient(net, params, X, Y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def epoch(params, opt_state, key, X, Y):
        n = X.shape[0]
        order = jax.random.permutation(key, n)
        full = n // m

        def step(carry, batch):
            return update(*carry, X[batch], Y[batch]), None

        (params, opt_state), _ = jax.lax.scan(
            step, (params, opt_state), order[: full * m].reshape(full, m)
        )
        if n % m:
            rest = order[full * m :]
            params, opt_state = update(params, opt_state, X[rest], Y[rest])
        return params, opt_state

    return epoch


@jax.jit
def _evaluate(net: Network, params: Params, X, labels):
    outputs = feedforward(net, params, X.T)  # examples as columns
    correct = jnp.sum(jnp.argmax(outputs, axis=0) == labels)
    Y = jax.nn.one_hot(labels, net.sizes[-1], dtype=X.dtype)
    return correct, cost(net, params, X.T, Y.T)


def evaluate(net: Network, params: Params, X, labels) -> tuple[int, float]:
    """(number classified correctly, mean cost C) on X (n, n_in) with integer labels (n,).

    The network's answer is the index of the most active output neuron, as in the book.
    """
    correct, mean_cost = _evaluate(net, params, jnp.asarray(X), jnp.asarray(labels))
    return int(correct), float(mean_cost)


def fit(
    net: Network,
    state: TrainState,
    train: tuple,
    evaluation: dict[str, tuple],
    *,
    epochs: int,
    mini_batch_size: int,
    optimizer: optax.GradientTransformation,
    gradient: str,
    key: jax.Array,
) -> Iterator[tuple[TrainState, dict]]:
    """Train from `state` up to `epochs` epochs, yielding `(state, metrics)` after each epoch.

    `train` is `(X, Y)` (one-hot Y), `evaluation` maps a name ("validation", "test") to
    `(X, labels)`. Epoch e shuffles with `fold_in(key, e)`, so a run resumed from a saved state
    repeats exactly what an uninterrupted run would have done. Raises `DivergenceError` at the end
    of the first epoch whose cost or parameters are not finite, before yielding that state.
    """
    run_epoch = make_epoch(net, optimizer, gradient=gradient, mini_batch_size=mini_batch_size)
    X, Y = train
    for e in range(state.epoch, epochs):
        start = time.perf_counter()
        params, opt_state = run_epoch(
            state.params, state.opt_state, jax.random.fold_in(key, e), X, Y
        )
        metrics: dict = {"epoch": e}
        for name, (X_eval, labels) in evaluation.items():
            correct, mean_cost = evaluate(net, params, X_eval, labels)
            metrics |= {
                f"{name}_correct": correct,
                f"{name}_total": len(labels),
                f"{name}_accuracy": correct / len(labels),
                f"{name}_cost": mean_cost,
            }
        metrics["seconds"] = time.perf_counter() - start
        finite_params = all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params))
        costs_ok = all(np.isfinite(v) for k, v in metrics.items() if k.endswith("_cost"))
        if not (finite_params and costs_ok):
            what = "the parameters" if not finite_params else "the cost"
            raise DivergenceError(
                f"training diverged in epoch {e}: {what} became NaN or infinite; "
                "try a smaller learning rate (training.eta)"
            )
        state = TrainState(params, opt_state, e + 1)
        yield state, metrics
