"""Activation functions σ, each with its hand-written derivative σ′.

Every activation acts along the *neuron axis*, axis 0, as in the book: a weighted input z of shape
(n,) is one example, and (n, m) holds m examples as columns (the matrix X = [x₁ x₂ … x_m] of the
chapter-2 problem on fully matrix-based backpropagation).

The one operation backpropagation needs from σ is `backward(z, nabla_a)`: it moves an error
∂C/∂a back through the activation function to ∂C/∂z.

- For an elementwise σ it is the Hadamard product `nabla_a ⊙ σ′(z)` of BP1 and BP2.
- For softmax, whose Jacobian is not diagonal, it is the Jacobian-transpose product `J(z)ᵀ nabla_a`.

So BP1 and BP2 are written once, in `fnbackprop.backprop`, for every activation here.

`jacobian(z)` gives the full matrix J[k, j] = ∂a_k/∂z_j for one example: the Σ′(z) of the
alternate presentation (eqs. 33–35) is its transpose, diagonal for an elementwise σ.
"""

from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._registry import lookup
from .errors import FnbackpropError

__all__ = [
    "Activation",
    "LeakyReLU",
    "Linear",
    "Neuronwise",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Step",
    "Tanh",
    "get",
    "names",
    "neuronwise",
]


class Activation(eqx.Module):
    """An activation function σ and its derivative σ′.

    Subclasses define `__call__` (σ) and `prime` (σ′, elementwise). An activation that is not
    elementwise (softmax) overrides `backward` and `jacobian` instead of `prime`.
    """

    name: ClassVar[str]
    elementwise: ClassVar[bool] = True

    def __call__(self, z: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        raise NotImplementedError

    def prime(self, z: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """σ′(z), elementwise."""
        raise NotImplementedError

    def backward(
        self, z: Float[Array, "n ..."], nabla_a: Float[Array, "n ..."]
    ) -> Float[Array, "n ..."]:
        """∂C/∂z from ∂C/∂a: the Hadamard product `nabla_a ⊙ σ′(z)` (BP1, BP2)."""
        return nabla_a * self.prime(z)

    def jacobian(self, z: Float[Array, " n"]) -> Float[Array, "n n"]:
        """J[k, j] = ∂a_k/∂z_j for one example; diagonal, diag(σ′(z)), for an elementwise σ."""
        return jnp.diag(self.prime(z))


class Sigmoid(Activation):
    """The logistic function σ(z) = 1/(1 + e^{−z}) (eq. 3); σ′ = σ(1 − σ).

    Computed without overflow for any z (|z| = 1e4 gives exactly 0 or 1, never NaN).
    """

    name: ClassVar[str] = "sigmoid"

    def __call__(self, z):
        return jax.nn.sigmoid(z)

    def prime(self, z):
        s = jax.nn.sigmoid(z)
        return s * (1 - s)


class Tanh(Activation):
    """σ(z) = tanh z = 2σ(2z) − 1; σ′ = 1 − tanh² z."""

    name: ClassVar[str] = "tanh"

    def __call__(self, z):
        return jnp.tanh(z)

    def prime(self, z):
        return 1 - jnp.tanh(z) ** 2


class Linear(Activation):
    """σ(z) = z, the linear neuron of the chapter-2 exercise; σ′ = 1."""

    name: ClassVar[str] = "linear"

    def __call__(self, z):
        return z

    def prime(self, z):
        return jnp.ones_like(z)


class ReLU(Activation):
    """σ(z) = max(0, z); σ′ = 1 for z > 0 and 0 otherwise (0 at the kink, as jax.grad gives)."""

    name: ClassVar[str] = "relu"

    def __call__(self, z):
        return jnp.where(z > 0, z, jnp.zeros_like(z))

    def prime(self, z):
        return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


class LeakyReLU(Activation):
    """σ(z) = z for z > 0 and αz otherwise; σ′ = 1 or α. Its σ′ never reaches zero."""

    alpha: float = eqx.field(static=True, default=0.01)
    name: ClassVar[str] = "leaky_relu"

    def __call__(self, z):
        return jnp.where(z > 0, z, self.alpha * z)

    def prime(self, z):
        return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, self.alpha))


class Softplus(Activation):
    """σ(z) = ln(1 + e^z), a smooth ReLU; σ′ is the logistic function."""

    name: ClassVar[str] = "softplus"

    def __call__(self, z):
        return jax.nn.softplus(z)

    def prime(self, z):
        return jax.nn.sigmoid(z)


class Step(Activation):
    """The perceptron's step: 1 if z > 0, else 0 (chapter 1); σ′ = 0, so nothing learns."""

    name: ClassVar[str] = "step"

    def __call__(self, z):
        return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))

    def prime(self, z):
        return jnp.zeros_like(z)


class Softmax(Activation):
    """a_j = e^{z_j} / Σ_k e^{z_k} over the neurons of a layer; not elementwise.

    Its Jacobian J = diag(a) − a aᵀ is not diagonal, so the backward step is the product
    Jᵀ ∇_a C = a ⊙ (∇_a C − (a · ∇_a C)) rather than a Hadamard product.
    """

    name: ClassVar[str] = "softmax"
    elementwise: ClassVar[bool] = False

    def __call__(self, z):
        return jax.nn.softmax(z, axis=0)

    def prime(self, z):
        raise FnbackpropError(
            "softmax is not elementwise, so it has no σ′ vector: use backward() or jacobian()"
        )

    def backward(self, z, nabla_a):
        a = self(z)
        return a * (nabla_a - jnp.sum(a * nabla_a, axis=0, keepdims=True))

    def jacobian(self, z):
        a = self(z)
        return jnp.diag(a) - jnp.outer(a, a)


class Neuronwise(Activation):
    """A layer whose chosen neurons use their own function f (the single-modified-neuron exercise).

    Neuron j outputs f_j(z_j) and contributes f_j′(z_j) to σ′(z); backpropagation is unchanged
    in form: BP1 and BP2 use this σ′ vector.
    """

    default: Activation = eqx.field(static=True)
    overrides: tuple[tuple[int, Activation], ...] = eqx.field(static=True)
    name: ClassVar[str] = "neuronwise"

    def __call__(self, z):
        a = self.default(z)
        for j, f in self.overrides:
            a = a.at[j].set(f(z[j]))
        return a

    def prime(self, z):
        sp = self.default.prime(z)
        for j, f in self.overrides:
            sp = sp.at[j].set(f.prime(z[j]))
        return sp

    @property
    def size_needed(self) -> int:
        """The smallest layer this activation fits: one more than the largest overridden index."""
        return 1 + max(j for j, _ in self.overrides)


_REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in (Sigmoid(), Tanh(), Linear(), ReLU(), LeakyReLU(), Softplus(), Step(), Softmax())
}


def names() -> tuple[str, ...]:
    """The names of every registered activation."""
    return tuple(_REGISTRY)


def get(name: "str | Activation") -> Activation:
    """The activation called `name` (an `Activation` is returned as it is).

    Raises `ValueError` (an `FnbackpropError`) naming the valid names for an unknown name.
    """
    return lookup(_REGISTRY, "activation", name, Activation)


def neuronwise(
    default: "str | Activation", overrides: Mapping[int, "str | Activation"]
) -> Neuronwise:
    """An activation that is `default` except at the neurons in `overrides` (index → function).

    `neuronwise(sigmoid, {3: tanh})`: neuron 3 of the layer is a tanh neuron, the rest sigmoid.
    Every function involved must be elementwise (softmax couples its neurons, so it can't be split).
    """
    default = get(default)
    pairs = []
    for j, f in sorted(overrides.items()):
        f = get(f)
        if isinstance(j, bool) or not isinstance(j, int) or j < 0:
            raise FnbackpropError(f"neuron indices must be non-negative integers, got {j!r}")
        pairs.append((j, f))
    if not pairs:
        raise FnbackpropError("neuronwise() needs at least one overridden neuron")
    for f in (default, *(f for _, f in pairs)):
        if not f.elementwise or isinstance(f, Neuronwise):
            raise FnbackpropError(
                f"neuronwise() needs plain elementwise activations; {f.name!r} is not one "
                f"(valid: {', '.join(n for n, a in _REGISTRY.items() if a.elementwise)})"
            )
    return Neuronwise(default, tuple(pairs))
