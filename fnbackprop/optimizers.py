"""The update rule: an optax optimizer after chapter 3's regularization terms, its numbers held
in its state so that one compiled epoch serves every learning rate.

`OPTIMIZERS` holds the rules by name — "sgd" (the book's w → w − η ∇C), "momentum", "adam" —
and any function `learning_rate -> optax.GradientTransformation` works by import path
("optax:rmsprop") or once registered. Before the rule, on the weights only (never the biases):

- L2, λ > 0: ∂C/∂w = ∂C₀/∂w + (λ/n) w, so plain SGD is w → (1 − ηλ/n) w − (η/m) Σ_x ∇C_x
  (eqs. 87, 93, network2's `lmbda`);
- L1, λ₁ > 0: ∂C/∂w = ∂C₀/∂w + (λ₁/n) sgn(w), w → w − (ηλ₁/n) sgn(w) − (η/m) Σ_x ∇C_x
  (eqs. 95–97, with sgn(0) = 0).

η, λ/n, λ₁/n and the momentum are not constants baked into the compiled epoch: `make_optimizer`
injects them into the optimizer state (`optax.inject_hyperparams`), where `hyperparameters`
reads them and `with_hyperparameters` changes them (a schedule, a sweep) without compiling
anything. A new optimizer goes into `OPTIMIZERS` (or is named by import path).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from .errors import FnbackpropError
from .network import Params
from .registry import Registry, functions, parameter_names

__all__ = [
    "OPTIMIZERS",
    "adam",
    "add_l1",
    "hyperparameters",
    "make_optimizer",
    "momentum",
    "regularization",
    "sgd",
    "weights_only",
    "with_hyperparameters",
]


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """w → w − η ∇C: the book's rule."""
    return optax.sgd(learning_rate)


def momentum(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    """Momentum SGD (chapter 3): v → μv − η∇C, w → w + v."""
    return optax.sgd(learning_rate, momentum=momentum)


def adam(learning_rate: float) -> optax.GradientTransformation:
    """Adam."""
    return optax.adam(learning_rate)


#: Optimizers by name: functions learning_rate -> optax.GradientTransformation.
OPTIMIZERS: Registry[Callable] = Registry(
    "optimizer",
    functions(
        "an optimizer is a function learning_rate -> optax.GradientTransformation (e.g. optax.sgd)"
    ),
    {"sgd": sgd, "momentum": momentum, "adam": adam},
    name_of=lambda f: f.__name__,
)


def weights_only(params: Params):
    """The mask that selects every w and no b (L2 and L1 regularisation leave the biases alone)
    when no network says which they are: the first array of each layer's parameters, as in the
    book's `(w, b)` (`()` for a layer without parameters). A network's own layers say it:
    `Network.weight_mask`, given to `make_optimizer(weights=…)`."""
    return tuple(tuple(i == 0 for i in range(len(p))) for p in params)


def add_l1(strength: "float | jax.Array", mask=weights_only) -> optax.GradientTransformation:
    """∇C → ∇C + strength · sgn(w) on the weights only: L1 regularisation (eq. 96).

    With strength = λ₁/n, plain SGD after it is w → w − (ηλ₁/n) sgn(w) − η ∂C₀/∂w (eq. 97).
    `jnp.sign(0) = 0`, the book's convention sgn(0) = 0.
    """

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_l1 needs the parameters: call update(grads, state, params)")
        return jax.tree.map(lambda g, w: g + strength * jnp.sign(w), updates, params), state

    inner = optax.GradientTransformation(lambda params: optax.EmptyState(), update)
    return optax.masked(inner, mask)


@functools.lru_cache(maxsize=64)
def _update_rule(make: Callable, takes_momentum: bool, l2: bool, l1: bool, mask=weights_only):
    """One `optax.inject_hyperparams` transformation per structure, its values in its state.

    Cached, so every run with the same structure shares one `update` function, and so one
    compiled epoch (`make_epoch` keys its cache on it).
    """

    def rule(learning_rate, momentum=None, l2=None, l1=None):
        parts = []
        if l2 is not None:  # λ/n · w  (eq. 87)
            parts.append(optax.add_decayed_weights(l2, mask=mask))
        if l1 is not None:  # λ₁/n · sgn(w)  (eq. 96)
            parts.append(add_l1(l1, mask))
        step = make(learning_rate, momentum=momentum) if takes_momentum else make(learning_rate)
        if not isinstance(step, optax.GradientTransformation):
            raise FnbackpropError(
                f"optimizer {getattr(make, '__name__', make)!r} returned "
                f"{type(step).__name__}, not an optax.GradientTransformation"
            )
        return optax.chain(*parts, step) if parts else step

    return optax.inject_hyperparams(rule)(
        learning_rate=1.0,
        momentum=0.9 if takes_momentum else None,
        l2=0.0 if l2 else None,
        l1=0.0 if l1 else None,
    )


def make_optimizer(
    name: "str | Callable" = "sgd",
    eta: float = 3.0,
    *,
    lmbda: float = 0.0,
    n: int = 50_000,
    momentum: float = 0.9,
    l1: float = 0.0,
    weights: "tuple[tuple[bool, ...], ...] | None" = None,
) -> optax.GradientTransformation:
    """The update rule `name` at learning rate η, after λ/n · w (L2) and λ₁/n · sgn(w) (L1) on
    the weights when λ > 0 and λ₁ > 0 (n: the number of training examples). `weights` says
    which arrays those are, one tuple of flags per layer (`Network.weight_mask`); by default
    the first of each layer's (`weights_only`).

    `momentum` reaches the optimizers that take it (the built-in "momentum"). The numbers are
    held in the optimizer state, not in the program: `hyperparameters(opt_state)` reads them
    (`learning_rate`, `momentum`, `l2` = λ/n, `l1` = λ₁/n) and `with_hyperparameters` changes
    them between epochs. Every optimizer of one structure (rule, L2 on or off, L1 on or off)
    shares one `update` function, so one compiled epoch.
    """
    make = OPTIMIZERS.get(name)
    mask = weights_only if weights is None else tuple(tuple(map(bool, m)) for m in weights)
    rule = _update_rule(make, "momentum" in parameter_names(make), bool(lmbda), bool(l1), mask)
    values = {"learning_rate": eta, "momentum": momentum, "l2": lmbda / n, "l1": l1 / n}

    def init(params):
        return with_hyperparameters(rule.init(params), **values, missing_ok=True)

    try:  # build the rule once now, so a broken optimizer fails here and not inside jit
        like = ((True, False),) if weights is None else weights  # one (w, b), or the mask's
        jax.eval_shape(rule.init, tuple(tuple(jnp.zeros(1) for _ in p) for p in like))
    except FnbackpropError:
        raise
    except TypeError as err:
        raise FnbackpropError(f"optimizer {name!r}: {err}") from None
    return optax.GradientTransformation(init, rule.update)


def _inject_state(opt_state):
    """The `inject_hyperparams` state inside `opt_state` (itself, or None for other rules)."""
    return opt_state if hasattr(opt_state, "hyperparams") else None


def hyperparameters(opt_state) -> dict[str, float]:
    """The numbers an optimizer of `make_optimizer` holds in its state: `learning_rate` (η),
    `momentum`, `l2` (λ/n) and `l1` (λ₁/n), as far as the rule has them; {} for another rule."""
    state = _inject_state(opt_state)
    if state is None:
        return {}
    return {k: float(v) for k, v in state.hyperparams.items()}


def with_hyperparameters(opt_state, *, missing_ok: bool = False, **values):
    """`opt_state` with some of its hyperparameters replaced (each keeps its dtype).

    Raises `FnbackpropError` for a name the rule does not hold, unless `missing_ok`.
    """
    state = _inject_state(opt_state)
    if state is None:
        if missing_ok:
            return opt_state
        raise FnbackpropError("this optimizer state holds no hyperparameters (not make_optimizer)")
    hyper = dict(state.hyperparams)
    for k, v in values.items():
        if k not in hyper:
            if missing_ok:
                continue
            raise FnbackpropError(f"the optimizer has no hyperparameter {k!r}: {sorted(hyper)}")
        hyper[k] = jnp.asarray(v, dtype=jnp.result_type(hyper[k]))
    return state._replace(hyperparams=hyper)


def regularization(params: Params, opt_state, weights=None) -> jax.Array:
    """The regularization terms of the cost: (λ/2n) Σ_w w² + (λ₁/n) Σ_w |w| (eqs. 87, 95),
    with λ/n and λ₁/n read from the optimizer state (0 for a rule without them), over the arrays
    `weights` flags (as in `make_optimizer`; by default `weights_only`)."""
    hyper = hyperparameters(opt_state)
    mask = weights_only(params) if weights is None else weights
    flagged = zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True)
    weights = [a for a, is_weight in flagged if is_weight]
    total = jnp.zeros((), jax.tree.leaves(params)[0].dtype)
    if hyper.get("l2"):
        total = total + hyper["l2"] / 2 * sum(jnp.sum(w**2) for w in weights)
    if hyper.get("l1"):
        total = total + hyper["l1"] * sum(jnp.sum(jnp.abs(w)) for w in weights)
    return total
