"""Activation functions σ, each with its hand-written derivative σ′, and the door for your own.

**The contract** (what every activation here keeps, and what yours must keep):

- a subclass of `Activation` with a class attribute `name` (lowercase letters, digits, `_`);
- `__call__(self, z)`: σ along the *neuron axis*, axis 0. A weighted input z of shape (n,) is
  one example; `backprop_batch` also passes (n, m), the book's matrix with one example per
  column, so σ must treat every column alone (elementwise functions do so for free);
- `prime(self, z)`: σ′(z), elementwise, the same shape as z, written by hand — or, for a σ that
  is not elementwise (softmax), `elementwise = False` and `backward(self, z, nabla_a)` instead;
- no arrays among its fields: learnable σ parameters are not supported (a field is a plain,
  static Python value such as `beta: float = eqx.field(static=True, default=1.0)`).

The one operation backpropagation needs from σ is `backward(z, nabla_a)`: it moves an error
∂C/∂a back through the activation function to ∂C/∂z.

- For an elementwise σ it is the Hadamard product `nabla_a ⊙ σ′(z)` of BP1 and BP2.
- For softmax, whose Jacobian is not diagonal, it is the Jacobian-transpose product `J(z)ᵀ nabla_a`.

So BP1 and BP2 are written once, in `fnbackprop.backward`, for every activation, yours included.

`jacobian(z)` gives the full matrix J[k, j] = ∂a_k/∂z_j for one example: the Σ′(z) of the
alternate presentation (eqs. 33–35) is its transpose, diagonal for an elementwise σ.

Names: `get(spec)` takes a built-in name, a name given to `register`, or an import path
`"package.module:Name"` (see `fnbackprop.registry`); `names()` lists what is usable now.
`fnbackprop.check_activation(σ)` compares a hand-written σ′ with `jax.grad` of σ.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .errors import FnbackpropError
from .registry import Registry

__all__ = [
    "ACTIVATIONS",
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
    "as_activation",
    "get",
    "names",
    "neuronwise",
    "register",
]


class Activation(eqx.Module):
    """An activation function σ and its derivative σ′.

    Subclasses define `name`, `__call__` (σ) and `prime` (σ′, elementwise). An activation that
    is not elementwise (softmax) sets `elementwise = False` and overrides `backward` instead of
    `prime` (`jacobian` then follows from `backward`).
    """

    name: ClassVar[str]
    elementwise: ClassVar[bool] = True

    def __call__(self, z: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        raise NotImplementedError(f"{type(self).__name__} defines no __call__ (σ itself)")

    def prime(self, z: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """σ′(z), elementwise."""
        raise NotImplementedError(f"{type(self).__name__} defines no prime (σ′)")

    def backward(
        self, z: Float[Array, "n ..."], nabla_a: Float[Array, "n ..."]
    ) -> Float[Array, "n ..."]:
        """∂C/∂z from ∂C/∂a: the Hadamard product `nabla_a ⊙ σ′(z)` (BP1, BP2)."""
        return nabla_a * self.prime(z)

    def jacobian(self, z: Float[Array, " n"]) -> Float[Array, "n n"]:
        """J[k, j] = ∂a_k/∂z_j for one example; diagonal, diag(σ′(z)), for an elementwise σ.

        For a σ that is not elementwise, row k is `backward(z, e_k)` = Jᵀ e_k.
        """
        if self.elementwise:
            return jnp.diag(self.prime(z))
        return jax.vmap(lambda e: self.backward(z, e))(jnp.eye(z.shape[0], dtype=z.dtype))


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


# -- the door: checking what is given, and the names ------------------------------------------

_HOW = (
    "write a subclass: class Swish(fnbackprop.Activation): name = 'swish'; "
    "def __call__(self, z): ...; def prime(self, z): ... (README: 'Your own σ and cost')"
)


def as_activation(obj: Any) -> Activation:
    """`obj` as a valid `Activation`, or one `FnbackpropError` line saying what to write instead.

    A subclass of `Activation` is built with no arguments. Checked: it is an `Activation` (not a
    plain function such as `jax.nn.swish`), it has a `name`, it defines σ and σ′ (`prime`, or
    `backward` when `elementwise = False`), and it holds no arrays.
    """
    obj = _instance_of(obj, Activation, "activation", "σ′", _HOW, "swish")
    cls = type(obj)
    label = cls.__name__
    if cls.__call__ is Activation.__call__:
        raise FnbackpropError(f"activation {label} defines no __call__ (σ itself); {_HOW}")
    if cls.elementwise and cls.prime is Activation.prime:
        if cls.backward is not Activation.backward:
            raise FnbackpropError(
                f"activation {label} defines backward but not prime: if σ is not elementwise "
                "say so with elementwise = False (a class attribute), else define prime(self, z)"
            )
        raise FnbackpropError(
            f"activation {label} defines no prime: define prime(self, z) returning σ′(z) "
            "elementwise (or backward(self, z, nabla_a) with elementwise = False for a σ that "
            "mixes neurons, like softmax)"
        )
    if not cls.elementwise and cls.backward is Activation.backward:
        raise FnbackpropError(
            f"activation {label} sets elementwise = False but defines no backward(self, z, "
            "nabla_a) returning J(z)ᵀ nabla_a"
        )
    _check_static(obj, "activation", "σ")
    return obj


def _instance_of(obj: Any, base: type, kind: str, derivative: str, how: str, example: str):
    """`obj` as a named instance of `base` (a subclass is built with no arguments), or one
    `FnbackpropError` line saying what it is instead and what to write."""
    if isinstance(obj, type) and issubclass(obj, base):
        obj = _build(obj)
    if not isinstance(obj, base):
        what = f"fnbackprop.{base.__name__}"
        if isinstance(obj, type):
            raise FnbackpropError(
                f"{obj.__name__} (from {obj.__module__}) is a class but not a subclass of "
                f"{what}; {how}"
            )
        if callable(obj):
            label = getattr(obj, "__name__", type(obj).__name__)
            raise FnbackpropError(
                f"{label!r} is a plain function, not an {what}: {derivative} must be given by "
                f"hand too; {how}"
            )
        raise FnbackpropError(
            f"a{'n' if kind[0] in 'aeiou' else ''} {kind} is a name, 'package.module:Name' or "
            f"an {what}, not {type(obj).__name__} {obj!r}"
        )
    if not isinstance(getattr(type(obj), "name", None), str):
        raise FnbackpropError(
            f"{kind} {type(obj).__name__} has no name: give the class one, e.g. "
            f"name = {example!r} (lowercase letters, digits and _)"
        )
    return obj


def _build(cls: type) -> Any:
    try:
        return cls()
    except TypeError as err:
        raise FnbackpropError(
            f"{cls.__name__}() cannot be built with no arguments ({err}): give an instance, "
            "or defaults for every field"
        ) from None


def _check_static(obj: Any, kind: str, symbol: str) -> None:
    """No array fields (learnable parameters are not supported), and hashable (jit's static
    arguments must be)."""
    arrays = [
        f.name
        for f in getattr(obj, "__dataclass_fields__", {}).values()
        if any(isinstance(x, jax.Array | np.ndarray) for x in jax.tree.leaves(getattr(obj, f.name)))
    ]
    label = type(obj).__name__
    if arrays:
        raise FnbackpropError(
            f"{kind} {label} holds arrays (field {arrays[0]}): learnable {symbol} parameters "
            f"are not supported; make it a static Python number, e.g. "
            f"{arrays[0]}: float = eqx.field(static=True, default=1.0)"
        )
    try:
        hash(obj)
    except TypeError as err:
        raise FnbackpropError(
            f"{kind} {label} cannot be hashed ({err}): its fields must be plain, hashable "
            "Python values (numbers, strings, tuples)"
        ) from None


#: Every activation by name: the built-ins, and yours once registered.
ACTIVATIONS: Registry[Activation] = Registry(
    "activation",
    as_activation,
    (Sigmoid(), Tanh(), Linear(), ReLU(), LeakyReLU(), Softplus(), Step(), Softmax()),
)


def names() -> tuple[str, ...]:
    """The names of every activation usable now: built-in, then registered."""
    return ACTIVATIONS.names()


def get(spec: "str | Activation") -> Activation:
    """The activation `spec` names: a name, `"package.module:Name"`, or an `Activation`.

    Raises `FnbackpropError` (a `ValueError`) naming the valid names for an unknown name.
    """
    return ACTIVATIONS.get(spec)


def register(activation: "Activation | type", name: str | None = None, *, replace=False):
    """Make `activation` usable by its name (or `name`) in `Network`, configs, `--set` and
    `fnbackprop check`, exactly like a built-in. Returns the checked activation.

    A built-in name is refused. To reach the command line, the module that registers must be
    imported there: name it by import path instead, or declare an entry point in the group
    `fnbackprop.activations` of your package.
    """
    return ACTIVATIONS.register(activation, name, replace=replace)


def neuronwise(
    default: "str | Activation", overrides: Mapping[int, "str | Activation"]
) -> Neuronwise:
    """An activation that is `default` except at the neurons in `overrides` (index → function).

    `neuronwise(sigmoid, {3: tanh})`: neuron 3 of the layer (counting from 0) is a tanh neuron,
    the rest sigmoid. Every function involved must be elementwise (softmax couples its neurons,
    so it can't be split).
    """
    default = get(default)
    for j in overrides:
        if isinstance(j, bool) or not isinstance(j, int) or j < 0:
            raise FnbackpropError(
                f"neuron indices count from 0 and must be non-negative integers, got {j!r}"
            )
    pairs = [(j, get(f)) for j, f in sorted(overrides.items())]
    if not pairs:
        raise FnbackpropError("neuronwise() needs at least one overridden neuron")
    for f in (default, *(f for _, f in pairs)):
        if not f.elementwise or isinstance(f, Neuronwise):
            valid = ", ".join(n for n in names() if get(n).elementwise)
            raise FnbackpropError(
                f"neuronwise() needs plain elementwise activations; {f.name!r} is not one "
                f"(valid: {valid})"
            )
    return Neuronwise(default, tuple(pairs))
