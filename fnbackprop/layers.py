"""Layers: the seam between the chapter-2 algorithm and the shape of each layer's map.

The four equations are written for one layer shape, z^l = w^l a^{l−1} + b^l. Backpropagation
itself is more general (chapter 2, "The backpropagation algorithm"): feed forward, compute the
output error, and move the error backward one layer at a time. What a layer must say for that is
small, and each layer here says it as pure functions of its parameters p (a plain tuple of
arrays, weights first, then biases; `()` for a layer without parameters):

- `weighted_input(p, a)`: its z^l from the activation a^{l−1} below it; `forward(p, a)` adds
  a^l = σ(z^l), with the layer's own σ;
- `gradients(p, a_in, delta)`: ∂C/∂p from δ^l = ∂C/∂z^l and the a^{l−1} it met (for a dense
  layer, BP3 and BP4);
- `error_below(p, a_in, delta)`: ∂C/∂a^{l−1}, the error it sends down; for a dense layer
  (w^l)ᵀ δ^l, the bracket of BP2. The loop in `fnbackprop.backward` then applies the layer
  below's σ′: δ^{l−1} = σ′(z^{l−1}) ⊙ error_below (BP2, generalised);
- `backward(p, a_in, delta)` = (gradients, error_below): the classic pair, whose cache is the
  layer's input a^{l−1};
- `init(key, scheme, dtype)`, `in_shape`, `out_shape` (one example's a^{l−1} and z^l), and
  `parameter_shapes()`, which the boundary checks compare params with; `weight_mask()`, which of
  them are weights (by default those named "w"): what L2 and L1 regularise.

`Dense` is the book's layer and keeps BP1–BP4 where a reader looks for them. Chapter 6's
convolutional layers, `Conv2D`, `MaxPool` and network3's `ConvPool`, are in `fnbackprop.conv`
and exported here too. A dense layer above a layer of feature maps reads them as the vector of
their n_in numbers in row-major order, and sends its error back in their shape, so no separate
flattening layer is needed (one would be a hidden layer of its own, with its own dropout mask).
A layer whose
`columns` is true also works on the book's matrices, one example per column (axis −1), which
`backprop_batch` needs; the other forms (one example, vmapped, `cost_with_backprop`) work for any
stack of layers.
"""

import math
from typing import TYPE_CHECKING, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .activations import Activation

if TYPE_CHECKING:  # at run time by __getattr__ below: fnbackprop.conv itself imports Layer
    from .conv import Conv2D, ConvPool, MaxPool

__all__ = ["Conv2D", "ConvPool", "Dense", "Layer", "MaxPool"]


class Layer(eqx.Module):
    """A layer's static description: its shapes and its activation σ (see the module's doc).

    Subclasses define `in_shape`, `out_shape`, `parameter_shapes`, `init`, `weighted_input`,
    `gradients` and `error_below`; everything else follows.
    """

    sigma: Activation = eqx.field(static=True)
    #: Whether the layer also takes the book's matrices, one example per column.
    columns: ClassVar[bool] = False

    @property
    def in_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def in_size(self) -> int:
        """The number of numbers in one example's input a^{l−1}."""
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        """The number of neurons: numbers in one example's z^l and a^l."""
        return math.prod(self.out_shape)

    def parameter_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """(name, shape) of each array in p, in order; weights first, "w" among them."""
        raise NotImplementedError

    def weight_mask(self) -> tuple[bool, ...]:
        """Which of p's arrays are weights, the ones L2 and L1 regularisation act on (never the
        biases): by default those named "w" in `parameter_shapes`."""
        return tuple(name == "w" for name, _ in self.parameter_shapes())

    def init(self, key: PRNGKeyArray, scheme: str = "normal", dtype=jnp.float32) -> tuple:
        raise NotImplementedError

    def weighted_input(self, p: tuple, a: Array) -> Array:
        raise NotImplementedError

    def gradients(self, p: tuple, a_in: Array, delta: Array) -> tuple:
        """∂C/∂p for one example, from δ^l and the layer's input a^{l−1}."""
        raise NotImplementedError

    def error_below(self, p: tuple, a_in: Array, delta: Array) -> Array:
        """∂C/∂a^{l−1} for one example (before the layer below applies its σ′)."""
        raise NotImplementedError

    def forward(self, p: tuple, a: Array) -> tuple[Array, Array]:
        """(z^l, a^l = σ(z^l)) from a^{l−1}."""
        z = self.weighted_input(p, a)
        return z, self.sigma(z)

    def backward(self, p: tuple, a_in: Array, delta: Array) -> tuple[tuple, Array]:
        """(∂C/∂p, ∂C/∂a^{l−1}) from δ^l = ∂C/∂z^l; the cache is the input a^{l−1}."""
        return self.gradients(p, a_in, delta), self.error_below(p, a_in, delta)

    def summed_gradients(self, p: tuple, inputs: Array, deltas: Array) -> tuple:
        """Σ_x ∂C_x/∂p over m examples stacked on the last axis of `inputs` and `deltas`."""
        per_example = jax.vmap(self.gradients, in_axes=(None, -1, -1))(p, inputs, deltas)
        return jax.tree.map(lambda g: jnp.sum(g, axis=0), per_example)

    def example_parameters(self, p: tuple, m: int) -> tuple[tuple, tuple]:
        """(parameters, their vmap axes) to hand to `vmap` over m examples: by default `p` as it
        is, shared by every example."""
        return p, jax.tree.map(lambda _: None, p)


class Dense(Layer):
    """The book's fully connected layer: z^l = w^l a^{l−1} + b^l (eq. 25), a^l = σ(z^l).

    w^l has shape (n_out, n_in) (w^l_jk joins neuron k below to neuron j), b^l (n_out,). One
    example's a^{l−1} may have any shape with n_in numbers (the feature maps of a convolutional
    layer below): it is read as their vector, in row-major order.
    """

    n_in: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    columns: ClassVar[bool] = True

    def __init__(self, n_in: int, n_out: int, sigma: Activation):
        self.n_in, self.n_out, self.sigma = int(n_in), int(n_out), sigma

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (self.n_in,)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n_out,)

    def parameter_shapes(self):
        return (("w", (self.n_out, self.n_in)), ("b", (self.n_out,)))

    def init(self, key, scheme="normal", dtype=jnp.float32):
        from .network import INITS

        return tuple(INITS.get(scheme)(key, self.n_out, self.n_in, dtype))

    def _vector(self, a: Array) -> Array:
        """a^{l−1} as (n_in,), or as the book's columns (n_in, m) when given so."""
        columns = a.ndim == 1 or (a.ndim == 2 and a.shape[0] == self.n_in)
        return a if columns else a.reshape(self.n_in)

    def weighted_input(self, p, a: Float[Array, "n_in ..."]) -> Float[Array, "n_out ..."]:
        w, b = p
        a = self._vector(a)
        return w @ a + b.reshape(b.shape + (1,) * (a.ndim - 1))  # z^l = w^l a^{l−1} + b^l

    def gradients(self, p, a_in, delta):
        # BP4: a^{l−1}_k δ^l_j (jnp.outer reads maps below as their vector); BP3: δ^l_j
        return (jnp.outer(delta, a_in), delta)

    def error_below(self, p, a_in, delta):
        w, _ = p
        return (w.T @ delta).reshape(a_in.shape)  # (w^l)ᵀ δ^l, the bracket of BP2 one layer down

    def summed_gradients(self, p, inputs, deltas):
        # BP4 and BP3 summed over the examples (the columns): Σ_x δ^{x,l} (a^{x,l−1})ᵀ is the
        # single product δ^l (a^{l−1})ᵀ, not m outer products. (Maps below: (n_in, m) first.)
        return (deltas @ inputs.reshape(self.n_in, -1).T, jnp.sum(deltas, axis=1))

    def example_parameters(self, p, m):
        # b^l repeated once per example and mapped like them: with one b^l shared by all
        # examples, vmap moves the examples to the rows of z^l, and XLA's CPU products are then
        # about 20 % slower for mini-batches of 100 or more (benchmarks/README.md).
        w, b = p
        return (w, jnp.broadcast_to(b[:, None], (*b.shape, m))), (None, 1)


_CONV = ("Conv2D", "ConvPool", "MaxPool")


def __getattr__(name: str):
    """Chapter 6's layers, from `fnbackprop.conv` (which builds on `Layer` above)."""
    if name in _CONV:
        from . import conv

        return getattr(conv, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
