"""Cost functions C_x(a, y), each with its hand-written gradient ∇_a C.

Both of the book's assumptions hold for every cost here: C = (1/n) Σ_x C_x is an average over
examples, and C_x depends on the network only through the output activations a = a^L.

As with activations, the neuron axis is axis 0: a is (n,) for one example or (n, m) for m examples
as columns, and C_x sums over axis 0.

BP1, `output_error`, is δ^L = ∇_a C ⊙ σ′(z^L) in general. For every output activation a cost with
a logarithm accepts there is a closed form, cheaper and numerically stable when the output
saturates (where ∇_a C is infinite and σ′ is zero): cross-entropy with sigmoid outputs and
log-likelihood with softmax outputs, where δ^L = a − y, and the less common pairs below. The cost
itself is then computed from z^L (`from_weighted_input`) so that it too stays finite.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy
from jaxtyping import Array, Float

from ._registry import lookup
from .activations import Activation, Neuronwise, Sigmoid, Softmax, Softplus

__all__ = ["Cost", "CrossEntropy", "LogLikelihood", "Quadratic", "get", "names"]


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
    """A cost C_x(a, y) and its gradient ∇_a C with respect to the output activations."""

    name: ClassVar[str]
    #: Output activations whose range fits the cost's domain; None means any.
    output_activations: ClassVar[tuple[str, ...] | None] = None

    def __call__(self, a: Float[Array, "n ..."], y: Float[Array, "n ..."]) -> Float[Array, "..."]:
        raise NotImplementedError

    def gradient(self, a: Float[Array, "n ..."], y: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """∇_a C, the vector of ∂C/∂a_j^L."""
        raise NotImplementedError

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


_REGISTRY: dict[str, Cost] = {c.name: c for c in (Quadratic(), CrossEntropy(), LogLikelihood())}


def names() -> tuple[str, ...]:
    """The names of every registered cost."""
    return tuple(_REGISTRY)


def get(name: "str | Cost") -> Cost:
    """The cost called `name` (a `Cost` is returned as it is).

    Raises `ValueError` (an `FnbackpropError`) naming the valid names for an unknown name.
    """
    return lookup(_REGISTRY, "cost", name, Cost)
