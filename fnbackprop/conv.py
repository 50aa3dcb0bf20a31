"""Chapter 6's layers with their backward pass written by hand: convolution and max-pooling.

The book's network3.py builds a convolutional network from a `ConvPoolLayer`, fully connected
layers and a softmax layer, and lets Theano differentiate it. Here each layer says, as every
`fnbackprop.layers.Layer` does, its weighted input z from the activation a below it, and its
backward pass from δ = ∂C/∂z: the gradients of its parameters and the error ∂C/∂a it sends down.
One example's feature maps have the shape (channels, height, width); a layer given the flat row
of an image (the network's input, (784,)) reads it in row-major order as its `in_shape`.

- `Conv2D(in_shape=(C, H, W), filters=F, kernel=(kh, kw), sigma)`: F feature maps, each from one
  shared set of weights and one shared bias (the book's "local receptive fields" and "shared
  weights and biases"), a valid correlation with stride 1:

      z[f, i, j] = Σ_c Σ_{u,v} w[f, c, u, v] a[c, i+u, j+v] + b[f]

  and its backward pass

      ∂C/∂w[f, c, u, v] = Σ_{i,j} δ[f, i, j] a[c, i+u, j+v]    (the correlation of a with δ)
      ∂C/∂b[f]          = Σ_{i,j} δ[f, i, j]
      ∂C/∂a[c, x, y]    = Σ_f Σ_{u,v} w[f, c, u, v] δ[f, x−u, y−v]   (δ zero off its map)

  the last one the full convolution of δ with the kernel: δ zero-padded by k − 1 on every side
  and correlated with the kernel turned by 180°.
- `MaxPool(in_shape, pool=p)`: each feature map cut into non-overlapping p × p windows, z the
  maximum of each; no parameters, and σ the identity (a = z). Its backward pass routes each
  window's δ to the position of the maximum, and nothing to the others. **Ties**: where several
  positions of a window share the maximum, the first of them in row-major order (top row first,
  left to right) gets all of δ. (`jax.grad` of the forward pass, a max, shares δ out among the
  tied positions instead: at a tie the max has no derivative, and both choices are valid
  subgradients; `weighted_input_by_selection` is the forward whose `jax.grad` follows this
  module's rule, the reference the hand-written pass is tested against.)
- `ConvPool(in_shape, filters, kernel, pool, sigma)`: network3's `ConvPoolLayer`, convolution
  (no bias), max-pooling, then the bias and σ, z = pool(conv(a, w)) + b; its backward pass is the
  two above composed: δ routed from the pooled map to the convolution's map, then the
  convolution's gradients and error from there, and ∂C/∂b[f] = Σ δ[f] over the pooled map.

Initialisation: "network3" is network3's, w ~ N(0, 1/n_out) with n_out = F·kh·kw / p² (p the
pool that follows), b ~ N(0, 1); any other scheme of `fnbackprop.network.INITS` draws the
(F, C·kh·kw) matrix of the filters as it would a dense layer's ("normal": N(0, 1); "scaled":
N(0, 1/n_in), n_in = C·kh·kw). Every draw is in float32, then cast, so a seed's float32 and
float64 runs start from the same parameters.

**How it is computed.** Each correlation has two written-out formulations (`Formulation`):
`IM2COL`, one matrix product as a dense layer's — the windows of the input unrolled as the
columns of a (C·kh·kw, H′·W′) matrix, times the filters as an (F, C·kh·kw) matrix; ∂C/∂w is δ
times the same windows, transposed; ∂C/∂a the products wᵀ δ, each put back at the place of the
input it came from (col2im), the full convolution above summed in another order — and `LAX`,
XLA's convolution (`lax.conv_general_dilated`). Every function takes one example, or m examples
on a last axis, so that `summed_gradients` sums a mini-batch's gradients in one call. The layers
use `FASTEST`: XLA's convolution for z and for ∂C/∂w, col2im for ∂C/∂a, the combination that
ran fastest for chapter 6's network on the two CPUs this was written on (benchmarks/README.md,
"Convolutional layers").
"""

import functools
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from . import activations as _activations
from .errors import ShapeError
from .layers import Layer

__all__ = [
    "FASTEST",
    "IM2COL",
    "LAX",
    "Conv2D",
    "ConvPool",
    "Formulation",
    "MaxPool",
    "correlate",
    "filter_gradient",
    "first_max_pool",
    "full_convolution",
    "max_pool",
    "route_to_max",
]


# -- the operations, for one example (C, H, W) or m examples on a last axis (C, H, W, m) ------


def _windows(a: Float[Array, "C H W *m"], kh: int, kw: int) -> Float[Array, "C kh kw Ho Wo *m"]:
    """im2col: P[c, u, v, i, j] = a[c, i+u, j+v], the window under each output position (i, j);
    as a matrix, (C·kh·kw, H′·W′), one column per window."""
    Ho, Wo = a.shape[1] - kh + 1, a.shape[2] - kw + 1
    rows = [jnp.stack([a[:, u : u + Ho, v : v + Wo] for v in range(kw)], axis=1) for u in range(kh)]
    return jnp.stack(rows, axis=1)


def correlate(
    a: Float[Array, "C H W *m"], w: Float[Array, "F C kh kw"]
) -> Float[Array, "F Ho Wo *m"]:
    """z[f, i, j] = Σ_c Σ_{u,v} w[f, c, u, v] a[c, i+u, j+v]: the filters as an (F, C·kh·kw)
    matrix times the windows of a, (C·kh·kw, H′·W′)."""
    return jnp.tensordot(w, _windows(a, *w.shape[2:]), axes=3)


def filter_gradient(
    a: Float[Array, "C H W *m"], delta: Float[Array, "F Ho Wo *m"], kernel: tuple[int, int]
) -> Float[Array, "F C kh kw"]:
    """∂C/∂w[f, c, u, v] = Σ_{i,j} δ[f, i, j] a[c, i+u, j+v] (summed over the examples too, when
    they are on a last axis): δ, (F, H′·W′), times the windows of a, transposed."""
    windows = _windows(a, *kernel)
    summed = tuple(range(1, delta.ndim))  # i, j (and the examples)
    return jnp.tensordot(delta, windows, axes=(summed, tuple(range(3, windows.ndim))))


def full_convolution(
    delta: Float[Array, "F Ho Wo *m"], w: Float[Array, "F C kh kw"]
) -> Float[Array, "C H W *m"]:
    """∂C/∂a[c, x, y] = Σ_f Σ_{u,v} w[f, c, u, v] δ[f, x−u, y−v]: the full convolution of δ with
    the kernel (δ padded by k − 1, correlated with the kernel turned by 180°).

    Computed as the products g[c, u, v, i, j] = Σ_f w[f, c, u, v] δ[f, i, j] (one product wᵀ δ,
    as a dense layer's (w^l)ᵀ δ^l), each sent back to the input a[c, i+u, j+v] it multiplied in
    the forward pass (col2im): a sum over (u, v) of g[:, u, v] shifted by (u, v)."""
    kh, kw = w.shape[2:]
    g = jnp.tensordot(w, delta, axes=(0, 0))  # (C, kh, kw, H′, W′, *m)
    others = ((0, 0),) * (delta.ndim - 3)
    nabla_a = None
    for u in range(kh):
        for v in range(kw):  # the products of w[:, :, u, v] back at rows u.., columns v..
            placed = jnp.pad(g[:, u, v], ((0, 0), (u, kh - 1 - u), (v, kw - 1 - v), *others))
            nabla_a = placed if nabla_a is None else nabla_a + placed
    return nabla_a


def _pool_positions(c: Array, pool: int) -> list[Array]:
    """The entries at row r, column s of every pool × pool window, (C, H/p, W/p, *m), for each
    position (r, s) of a window in row-major order."""
    return [c[:, r::pool, s::pool] for r in range(pool) for s in range(pool)]


def max_pool(c: Float[Array, "C H W *m"], pool: int) -> Float[Array, "C Hp Wp *m"]:
    """The maximum of every non-overlapping pool × pool window of each map."""
    return functools.reduce(jnp.maximum, _pool_positions(c, pool))


def route_to_max(
    c: Float[Array, "C H W *m"], delta: Float[Array, "C Hp Wp *m"], pool: int
) -> Float[Array, "C H W *m"]:
    """∂C/∂c from δ = ∂C/∂z for z = max_pool(c): each window's δ goes to the position of its
    maximum, 0 to the others. Ties: the first maximum in row-major order gets all of δ."""
    top = max_pool(c, pool)
    taken = jnp.zeros(top.shape, bool)  # whether an earlier position already took the window's δ
    zero = jnp.zeros((), delta.dtype)
    others = ((0, 0, 0),) * (delta.ndim - 3)
    nabla_c = None
    for k, entries in enumerate(_pool_positions(c, pool)):  # in row-major order
        first = (entries == top) & ~taken
        taken = taken | first
        routed = jnp.where(first, delta, zero)
        r, s = divmod(k, pool)  # back to rows r, r + p, …, columns s, s + p, …
        spread = ((0, 0, 0), (r, pool - 1 - r, pool - 1), (s, pool - 1 - s, pool - 1), *others)
        placed = lax.pad(routed, zero, spread)
        nabla_c = placed if nabla_c is None else nabla_c + placed
    return nabla_c


def first_max_pool(c: Float[Array, "C H W *m"], pool: int) -> Float[Array, "C Hp Wp *m"]:
    """`max_pool` by selection: each window's entry at its first maximum in row-major order
    (`jnp.argmax`). The same numbers; under `jax.grad` each window's derivative goes to that one
    entry, so this is the forward whose autodiff follows `route_to_max`'s tie rule."""
    positions = jnp.stack(_pool_positions(c, pool))  # (p², C, H/p, W/p, *m)
    first = jnp.argmax(lax.stop_gradient(positions), axis=0, keepdims=True)
    return jnp.take_along_axis(positions, first, axis=0)[0]


class Formulation(NamedTuple):
    """How the three correlations are computed; each takes one example or m on a last axis."""

    name: str
    correlate: Callable
    filter_gradient: Callable
    full_convolution: Callable


#: im2col and matrix products, col2im for ∂C/∂a.
IM2COL = Formulation("im2col", correlate, filter_gradient, full_convolution)


def _with_examples(a: Array) -> tuple[Array, bool]:
    """a with a last axis of examples (one added for a single example)."""
    return (a[..., None], True) if a.ndim == 3 else (a, False)


# XLA's CPU backend runs a convolution fast only in the layout (examples, height, width,
# channels) with kernels (height, width, in, out): inside a loop (an epoch's scan) it does not
# transpose to it by itself, and any other layout there was 20–50 × slower. So the transposes are
# written out.
_NHWC = ("NHWC", "HWIO", "NHWC")


def _lax_correlate(a, w):
    a, one = _with_examples(a)  # (C, H, W, m) → (m, H, W, C); w → (kh, kw, C, F)
    lhs, rhs = jnp.transpose(a, (3, 1, 2, 0)), jnp.transpose(w, (2, 3, 1, 0))
    z = lax.conv_general_dilated(lhs, rhs, (1, 1), "VALID", dimension_numbers=_NHWC)
    z = jnp.transpose(z, (3, 1, 2, 0))
    return z[..., 0] if one else z


def _lax_filter_gradient(a, delta, kernel):
    # the channels c as the batch, the examples as the summed input channels, δ as the kernel
    a, _ = _with_examples(a)  # (C, H, W, m): "NHWC" as it is
    delta, _ = _with_examples(delta)  # (F, H′, W′, m) → (H′, W′, m, F)
    rhs = jnp.transpose(delta, (1, 2, 3, 0))
    nabla_w = lax.conv_general_dilated(a, rhs, (1, 1), "VALID", dimension_numbers=_NHWC)
    return jnp.transpose(nabla_w, (3, 0, 1, 2))  # (C, kh, kw, F) → (F, C, kh, kw)


def _lax_full_convolution(delta, w):
    kh, kw = w.shape[2:]
    delta, one = _with_examples(delta)  # (F, H′, W′, m) → (m, H′, W′, F)
    lhs = jnp.transpose(delta, (3, 1, 2, 0))
    turned = jnp.transpose(jnp.flip(w, (2, 3)), (2, 3, 0, 1))  # (kh, kw, F, C)
    padding = ((kh - 1, kh - 1), (kw - 1, kw - 1))
    nabla_a = lax.conv_general_dilated(lhs, turned, (1, 1), padding, dimension_numbers=_NHWC)
    nabla_a = jnp.transpose(nabla_a, (3, 1, 2, 0))
    return nabla_a[..., 0] if one else nabla_a


#: XLA's convolution (`lax.conv_general_dilated`) for all three, ∂C/∂a as the padded correlation
#: with the turned kernel: measured against IM2COL in benchmarks/conv.py.
LAX = Formulation("lax", _lax_correlate, _lax_filter_gradient, _lax_full_convolution)

#: What the layers use: XLA's convolution for z and ∂C/∂w, col2im for ∂C/∂a (the fastest
#: combination measured, benchmarks/README.md).
FASTEST = Formulation("lax+col2im", _lax_correlate, _lax_filter_gradient, full_convolution)


# -- the layers -----------------------------------------------------------------------------


def _positive(value, what: str, n: int | None = None) -> tuple[int, ...]:
    """`value` as a tuple of positive ints (n of them, an int repeated when n is given)."""
    items = (value,) * n if n is not None and isinstance(value, int) else value
    ok = isinstance(items, tuple | list) and (n is None or len(items) == n)
    ok = ok and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items)
    if not ok:
        count = f"{n} " if n is not None else ""
        raise ShapeError(f"{what} must be {count}positive integers, got {value!r}")
    return tuple(int(i) for i in items)


def _image_shape(in_shape) -> tuple[int, int, int]:
    shape = _positive(in_shape, "in_shape (channels, height, width)", 3)
    return shape  # type: ignore[return-value]


def _check_pool(pool: int, height: int, width: int, what: str) -> None:
    if height % pool or width % pool:
        raise ShapeError(
            f"a pool of {pool} × {pool} does not divide the {height} × {width} {what}: "
            f"pick a pool size that divides both"
        )


def _conv_out(in_shape, filters: int, kernel: tuple[int, int]) -> tuple[int, int, int]:
    _, H, W = in_shape
    kh, kw = kernel
    if kh > H or kw > W:
        raise ShapeError(
            f"a {kh} × {kw} kernel is larger than the {H} × {W} image of in_shape {in_shape}"
        )
    return filters, H - kh + 1, W - kw + 1


def _conv_init(key, scheme: str, dtype, shape: tuple[int, ...], pool: int):
    """network3's (`network3`), or any dense scheme on the (F, C·kh·kw) matrix of the filters
    (`normal`: N(0, 1); `scaled`: N(0, 1/n_in), n_in = C·kh·kw, each weight's fan-in)."""
    from .network import INITS, normal_init

    F, C, kh, kw = shape
    if scheme == "network3":  # w ~ N(0, 1/n_out), n_out = F·kh·kw / p²; b ~ N(0, 1)
        w, b = normal_init(key, F, C * kh * kw, dtype)
        w = w / jnp.sqrt(jnp.asarray(F * kh * kw / pool**2, dtype))
    else:
        w, b = INITS.get(scheme)(key, F, C * kh * kw, dtype)
    return w.reshape(shape), b


class _Maps(Layer):
    """What the three layers share: an input of feature maps (C, H, W)."""

    image: tuple[int, int, int] = eqx.field(static=True)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.image

    def _maps(self, a: Array) -> Array:
        """One example's input as its maps (C, H, W), whatever its shape (a flat row too)."""
        return a.reshape(self.image)

    def _stacked(self, inputs: Array) -> Array:
        """m examples' inputs, on the last axis, as (C, H, W, m)."""
        return inputs.reshape(*self.image, inputs.shape[-1])


class _Filters(_Maps):
    """What the two layers with filters share: F filters of kh × kw over the C maps below, w
    (F, C, kh, kw) and one bias per filter, b (F,)."""

    filters: int = eqx.field(static=True)
    kernel: tuple[int, int] = eqx.field(static=True)
    ops: ClassVar[Formulation] = FASTEST

    def _set_filters(self, in_shape, filters, kernel, sigma) -> tuple[int, int, int]:
        """Check and keep the shapes and σ; the shape of w ⋆ a."""
        self.image = _image_shape(in_shape)
        (self.filters,) = _positive((filters,), "filters")
        self.kernel = _positive(kernel, "kernel (height, width)", 2)  # type: ignore[assignment]
        self.sigma = _activations.get(sigma)
        return _conv_out(self.image, self.filters, self.kernel)

    @property
    def _pool_after(self) -> int:
        """The side of the max-pool after the convolution (network3's initialisation)."""
        raise NotImplementedError

    def parameter_shapes(self):
        return (("w", (self.filters, self.image[0], *self.kernel)), ("b", (self.filters,)))

    def init(self, key, scheme="normal", dtype=jnp.float32):
        return _conv_init(key, scheme, dtype, self.parameter_shapes()[0][1], self._pool_after)


class Conv2D(_Filters):
    """A convolutional layer: z[f, i, j] = Σ_c Σ_{u,v} w[f, c, u, v] a[c, i+u, j+v] + b[f],
    a = σ(z), valid and with stride 1; w (F, C, kh, kw), b (F,).

    `pooled_by` is the side of the max-pool that follows, if any: only network3's initialisation
    ("network3") uses it.
    """

    pooled_by: int = eqx.field(static=True)

    def __init__(self, in_shape, filters: int, kernel, sigma="sigmoid", *, pooled_by: int = 1):
        self._set_filters(in_shape, filters, kernel, sigma)
        (self.pooled_by,) = _positive((pooled_by,), "pooled_by")

    @property
    def _pool_after(self) -> int:
        return self.pooled_by

    @property
    def out_shape(self) -> tuple[int, ...]:
        return _conv_out(self.image, self.filters, self.kernel)

    def weighted_input(self, p, a):
        w, b = p
        return self.ops.correlate(self._maps(a), w) + b[:, None, None]  # z = w ⋆ a + b

    def gradients(self, p, a_in, delta):
        # ∂C/∂w[f, c, u, v] = Σ_{i,j} δ[f, i, j] a[c, i+u, j+v];  ∂C/∂b[f] = Σ_{i,j} δ[f, i, j]
        return self.ops.filter_gradient(self._maps(a_in), delta, self.kernel), jnp.sum(
            delta, (1, 2)
        )

    def error_below(self, p, a_in, delta):
        w, _ = p
        # ∂C/∂a[c, x, y] = Σ_f Σ_{u,v} w[f, c, u, v] δ[f, x−u, y−v]: δ's full convolution with w
        return self.ops.full_convolution(delta, w).reshape(a_in.shape)

    def summed_gradients(self, p, inputs, deltas):
        # the same sums, over the examples too: one product for the whole mini-batch
        nabla_w = self.ops.filter_gradient(self._stacked(inputs), deltas, self.kernel)
        return nabla_w, jnp.sum(deltas, (1, 2, 3))


class MaxPool(_Maps):
    """Max-pooling: z[c, i, j] = max of the window a[c, p·i : p·i+p, p·j : p·j+p], a = z.

    No parameters; δ goes back to each window's maximum, the first in row-major order on a tie.
    """

    pool: int = eqx.field(static=True)

    def __init__(self, in_shape, pool: int = 2):
        self.image = _image_shape(in_shape)
        (self.pool,) = _positive((pool,), "pool")
        self.sigma = _activations.Linear()
        _check_pool(self.pool, *self.image[1:], "feature maps")

    @property
    def out_shape(self) -> tuple[int, ...]:
        C, H, W = self.image
        return C, H // self.pool, W // self.pool

    def parameter_shapes(self):
        return ()

    def init(self, key, scheme="normal", dtype=jnp.float32):
        return ()

    def weighted_input(self, p, a):
        return max_pool(self._maps(a), self.pool)

    def weighted_input_by_selection(self, p, a):
        """z by `first_max_pool`: its `jax.grad` follows the tie rule of `error_below`."""
        return first_max_pool(self._maps(a), self.pool)

    def gradients(self, p, a_in, delta):
        return ()

    def error_below(self, p, a_in, delta):
        # ∂C/∂a = δ at each window's (first) maximum, 0 elsewhere
        return route_to_max(self._maps(a_in), delta, self.pool).reshape(a_in.shape)

    def summed_gradients(self, p, inputs, deltas):
        return ()


class ConvPool(_Filters):
    """network3's ConvPoolLayer: z = max_pool(w ⋆ a) + b, a′ = σ(z) (the bias after pooling);
    w (F, C, kh, kw), b (F,)."""

    pool: int = eqx.field(static=True)

    def __init__(self, in_shape, filters: int, kernel, pool: int = 2, sigma="sigmoid"):
        _, H, W = self._set_filters(in_shape, filters, kernel, sigma)
        (self.pool,) = _positive((pool,), "pool")
        _check_pool(self.pool, H, W, f"maps the {self.kernel[0]} × {self.kernel[1]} kernel gives")

    @property
    def _pool_after(self) -> int:
        return self.pool

    @property
    def out_shape(self) -> tuple[int, ...]:
        F, H, W = _conv_out(self.image, self.filters, self.kernel)
        return F, H // self.pool, W // self.pool

    def weighted_input(self, p, a):
        w, b = p
        return max_pool(self.ops.correlate(self._maps(a), w), self.pool) + b[:, None, None]

    def weighted_input_by_selection(self, p, a):
        """z with `first_max_pool`: its `jax.grad` follows the tie rule of the backward pass."""
        w, b = p
        return first_max_pool(self.ops.correlate(self._maps(a), w), self.pool) + b[:, None, None]

    def _conv_error(self, w, a, delta):
        """∂C/∂(w ⋆ a): δ routed from the pooled map to each window's (first) maximum."""
        return route_to_max(self.ops.correlate(a, w), delta, self.pool)

    def gradients(self, p, a_in, delta):
        w, _ = p
        a = self._maps(a_in)
        nabla_w = self.ops.filter_gradient(a, self._conv_error(w, a, delta), self.kernel)
        return nabla_w, jnp.sum(delta, (1, 2))  # ∂C/∂b[f] = Σ δ[f] over the pooled map

    def error_below(self, p, a_in, delta):
        w, _ = p
        conv_error = self._conv_error(w, self._maps(a_in), delta)
        return self.ops.full_convolution(conv_error, w).reshape(a_in.shape)

    def summed_gradients(self, p, inputs, deltas):
        w, _ = p
        # δ routed one example at a time, as in the forward pass, so that XLA computes each
        # example's convolution once for both; then one product for the whole mini-batch
        conv_errors = jax.vmap(
            lambda a_in, delta: self._conv_error(w, self._maps(a_in), delta),
            in_axes=-1,
            out_axes=-1,
        )(inputs, deltas)
        nabla_w = self.ops.filter_gradient(self._stacked(inputs), conv_errors, self.kernel)
        return nabla_w, jnp.sum(deltas, (1, 2, 3))
