"""Cost functions C_x(a, y), each with its hand-written gradient ∇_a C, and the door for yours.

Both of the book's assumptions hold for every cost here: C = (1/n) Σ_x C_x is an average over
examples, and C_x depends on the network only through the output activations a = a^L.

**The contract** (what every cost here keeps, and what yours must keep):

- a subclass of `Cost` with a class attribute `name` (lowercase letters, digits, `_`);
- `__call__(self, a, y)`: C_x, summed over the *neuron axis*, axis 0, only. a and y are (n,)
  for one example, giving a scalar, or (n, m) with one example per column (the matrix form of
  `backprop_batch`), giving one cost per example, shape (m,) — never a sum over the examples;
- `gradient(self, a, y)`: ∇_a C, the vector of ∂C_x/∂a_j^L, the shape of a, written by hand;
- optionally `output_activations`, the names of the output activations whose range fits the
  cost's domain (None: any), and the fused BP1 `output_error` / stable `from_weighted_input`;
- no arrays among its fields.

BP1, `output_error`, is δ^L = ∇_a C ⊙ σ′(z^L) in general. For every output activation a cost with
a logarithm accepts there is a closed form, cheaper and numerically stable when the output
saturates (where ∇_a C is infinite and σ′ is zero): cross-entropy with sigmoid outputs and
log-likelihood with softmax outputs, where δ^L = a − y, and the less common pairs below. The cost
itself is then computed from z^L (`from_weighted_input`) so that it too stays finite.

`fnbackprop.check_cost(C)` compares a hand-written ∇_a C (and any fused δ^L) with `jax.grad`.
"""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy
from jaxtyping import Array, Float

from .activations import (
    Activation,
    Neuronwise,
    Sigmoid,
    Softmax,
    Softplus,
    _check_static,
    _instance_of,
)
from .errors import FnbackpropError
from .registry import Registry

__all__ = [
    "COSTS",
    "Cost",
    "CrossEntropy",
    "LogLikelihood",
    "Quadratic",
    "as_cost",
    "get",
    "names",
    "register",
]


def _ratio(num, den):
    """num / den, with 0/0 taken as 0 (the derivative of 0·ln a is 0, whatever a is)."""
    return jnp.where(num == 0, jnp.zeros_like(num), num / den)


def _others(z):
    """m_i = ln Σ_{k≠i} e^{z_k} over the neuron axis: ln(1 − softmax(z)_i) = m_i − lse(z)."""
    n = z.shape[0]
    off = ~jnp.eye(n, dtype=bool).reshape((n, n) + (1,) * (z.ndim - 1))  # off[i, k]: k ≠ i
    return jax.nn.logsumexp(jnp.where(off, z[None], -jnp.inf), axis=1), off


def _log_softplus(z):
    """ln softplus(z), finite for any z: z − e^z/2 where softplus(z) = ln(1 + e^z) ≈ e^z."""
    small = z < -20
    # each branch sees only the inputs it is used for, so neither has an infinite gradient
    tail = jnp.where(small, z, jnp.full_like(z, -20))
    direct = jnp.log(jax.nn.softplus(jnp.where(small, jnp.zeros_like(z), z)))
    return jnp.where(small, tail - jnp.exp(tail) / 2, direct)


class Cost(eqx.Module):
    """A cost C_x(a, y) and its gradient ∇_a C with respect to the output activations.

    Subclasses define `name`, `__call__` (C_x, summed over axis 0 only) and `gradient` (∇_a C).
    """

    name: ClassVar[str]
    #: Output activations whose range fits the cost's domain; None means any.
    output_activations: ClassVar[tuple[str, ...] | None] = None

    def __call__(self, a: Float[Array, "n ..."], y: Float[Array, "n ..."]) -> Float[Array, "..."]:
        raise NotImplementedError(f"{type(self).__name__} defines no __call__ (C_x itself)")

    def gradient(self, a: Float[Array, "n ..."], y: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """∇_a C, the vector of ∂C/∂a_j^L."""
        raise NotImplementedError(f"{type(self).__name__} defines no gradient (∇_a C)")

    def from_weighted_input(self, sigma: Activation, z, y):
        """C_x as a function of the output weighted input z^L: C(σ(z), y), stable where we can."""
        return self(sigma(z), y)

    def output_error(self, sigma: Activation, z, a, y):
        """δ^L = ∇_a C ⊙ σ′(z^L) (BP1); for softmax the Jacobian-transpose product."""
        return sigma.backward(z, self.gradient(a, y))

    def accepts(self, sigma: Activation) -> bool:
        """Whether outputs of `sigma` lie in this cost's domain."""
        if self.output_activations is None:
            return True
        parts = (
            (sigma.default, *(f for _, f in sigma.overrides))
            if isinstance(sigma, Neuronwise)
            else (sigma,)
        )
        return all(p.name in self.output_activations for p in parts)

    def output_names(self) -> str:
        """The output activations this cost accepts, for messages."""
        return "any" if self.output_activations is None else ", ".join(self.output_activations)


class Quadratic(Cost):
    """C_x = ½‖y − a^L‖² (eqs. 26, 27); ∇_a C = a − y."""

    name: ClassVar[str] = "quadratic"

    def __call__(self, a, y):
        return 0.5 * jnp.sum((y - a) ** 2, axis=0)

    def gradient(self, a, y):
        return a - y


class CrossEntropy(Cost):
    """C_x = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]; ∇_a C = (a − y) / (a(1 − a)).

    With sigmoid outputs the σ′ = a(1 − a) cancels and BP1 becomes δ^L = a − y: the output
    neurons no longer learn slowly when they saturate. With softmax outputs BP1 is
    δ_j = a_j (Σ_i y_i + 1 − y_j) − y_j − Σ_{i≠j} (1 − y_i) a_j a_i / (1 − a_i), with each
    a_j a_i / (1 − a_i) formed from logarithms: it stays finite (at most a_i) when outputs saturate.
    """

    name: ClassVar[str] = "cross_entropy"
    output_activations: ClassVar[tuple[str, ...] | None] = ("sigmoid", "softmax")

    def __call__(self, a, y):
        return -jnp.sum(xlogy(y, a) + xlogy(1 - y, 1 - a), axis=0)

    def gradient(self, a, y):
        return _ratio(1 - y, 1 - a) - _ratio(y, a)

    def from_weighted_input(self, sigma, z, y):
        if isinstance(sigma, Sigmoid):
            # −ln σ(z) = softplus(−z) and −ln(1 − σ(z)) = softplus(z): finite for any z.
            return jnp.sum(y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z), axis=0)
        if isinstance(sigma, Softmax):
            lse = jax.nn.logsumexp(z, axis=0, keepdims=True)
            others, _ = _others(z)
            return -jnp.sum(y * (z - lse) + (1 - y) * (others - lse), axis=0)
        return super().from_weighted_input(sigma, z, y)

    def output_error(self, sigma, z, a, y):
        if isinstance(sigma, Sigmoid):
            return a - y
        if isinstance(sigma, Softmax):
            others, off = _others(z)
            log_a = jax.nn.log_softmax(z, axis=0)
            # a_j a_i / (1 − a_i) = exp(ln a_j + z_i − m_i), for i ≠ j (rows j, columns i)
            cross = jnp.exp(jnp.where(off, log_a[:, None] + (z - others)[None], -jnp.inf))
            total = jnp.sum(y, axis=0, keepdims=True)
            return a * (total + 1 - y) - y - jnp.sum(cross * (1 - y)[None], axis=1)
        return super().output_error(sigma, z, a, y)


class LogLikelihood(Cost):
    """C_x = −Σ_j y_j ln a_j, which is −ln a_y^L for a one-hot y; ∇_a C = −y / a.

    With softmax outputs BP1 becomes δ^L = a Σ_j y_j − y, that is a − y for a one-hot y; with
    sigmoid outputs δ^L = y ⊙ (a − 1); with softplus outputs δ^L = −y ⊙ σ(z) / softplus(z),
    formed from logarithms so that it tends to −y, not 0/0, as z → −∞.
    """

    name: ClassVar[str] = "log_likelihood"
    output_activations: ClassVar[tuple[str, ...] | None] = ("softmax", "sigmoid", "softplus")

    def __call__(self, a, y):
        return -jnp.sum(xlogy(y, a), axis=0)

    def gradient(self, a, y):
        return -_ratio(y, a)

    def from_weighted_input(self, sigma, z, y):
        if isinstance(sigma, Softmax):
            # −ln a_j = logsumexp(z) − z_j
            return jnp.sum(y * (jax.nn.logsumexp(z, axis=0, keepdims=True) - z), axis=0)
        if isinstance(sigma, Sigmoid):
            return jnp.sum(y * jax.nn.softplus(-z), axis=0)
        if isinstance(sigma, Softplus):
            return -jnp.sum(y * _log_softplus(z), axis=0)
        return super().from_weighted_input(sigma, z, y)

    def output_error(self, sigma, z, a, y):
        if isinstance(sigma, Softmax):
            return a * jnp.sum(y, axis=0, keepdims=True) - y
        if isinstance(sigma, Sigmoid):
            return y * (a - 1)
        if isinstance(sigma, Softplus):
            # σ(z)/softplus(z) = exp(ln σ(z) − ln softplus(z)), with ln σ(z) = −softplus(−z)
            return -y * jnp.exp(-jax.nn.softplus(-z) - _log_softplus(z))
        return super().output_error(sigma, z, a, y)


# -- the door: checking what is given, and the names ------------------------------------------

_HOW = (
    "write a subclass: class Huber(fnbackprop.Cost): name = 'huber'; "
    "def __call__(self, a, y): ... (sum over axis 0); def gradient(self, a, y): ... "
    "(README: 'Your own σ and cost')"
)


def as_cost(obj: Any) -> Cost:
    """`obj` as a valid `Cost`, or one `FnbackpropError` line saying what to write instead.

    A subclass of `Cost` is built with no arguments. Checked: it is a `Cost` (not a plain
    function), it has a `name`, it defines C (`__call__`) and ∇_a C (`gradient`), its
    `output_activations` is None or a tuple of names, and it holds no arrays.
    """
    obj = _instance_of(obj, Cost, "cost", "∇_a C", _HOW, "huber")
    cls = type(obj)
    label = cls.__name__
    if cls.__call__ is Cost.__call__:
        raise FnbackpropError(f"cost {label} defines no __call__ (C_x itself); {_HOW}")
    if cls.gradient is Cost.gradient:
        raise FnbackpropError(
            f"cost {label} defines no gradient: define gradient(self, a, y) returning ∇_a C, "
            "the shape of a"
        )
    outs = cls.output_activations
    if outs is not None and not (isinstance(outs, tuple) and all(isinstance(o, str) for o in outs)):
        raise FnbackpropError(
            f"cost {label}: output_activations must be None (any) or a tuple of activation "
            f"names, e.g. ('sigmoid', 'softmax'), got {outs!r}"
        )
    _check_static(obj, "cost", "cost")
    return obj


#: Every cost by name: the built-ins, and yours once registered.
COSTS: Registry[Cost] = Registry("cost", as_cost, (Quadratic(), CrossEntropy(), LogLikelihood()))


def names() -> tuple[str, ...]:
    """The names of every cost usable now: built-in, then registered."""
    return COSTS.names()


def get(spec: "str | Cost") -> Cost:
    """The cost `spec` names: a name, `"package.module:Name"`, or a `Cost`.

    Raises `FnbackpropError` (a `ValueError`) naming the valid names for an unknown name.
    """
    return COSTS.get(spec)


def register(cost: "Cost | type", name: str | None = None, *, replace=False) -> Cost:
    """Make `cost` usable by its name (or `name`) everywhere a built-in cost name is.

    A built-in name is refused; see `fnbackprop.activations.register` for reaching the command
    line. Returns the checked cost.
    """
    return COSTS.register(cost, name, replace=replace)
