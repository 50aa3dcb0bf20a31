"""The network as functions: the layer map f(p)(a) = σ(w a + b), feedforward, and the cost.

A network is split in two, as in Gordon's notes, where the net computes f_N p x:

- `Network`, a static description: the layer sizes, one activation per layer and the cost;
- `params`, a plain pytree: a tuple with one `(w, b)` pair per layer l = 2, …, L, `w` of shape
  (n_out, n_in) and `b` of shape (n_out,), the book's orientation, a^l = σ(w^l a^{l−1} + b^l).

Arrays follow the book's convention that the neuron axis comes first: x is (n_in,) for one
example, or (n_in, m) for m examples stored as the columns of a matrix.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import activations as _activations
from . import costs as _costs
from .activations import Activation, Neuronwise
from .costs import Cost
from .errors import FnbackpropError, ShapeError

__all__ = [
    "INIT_SCHEMES",
    "Network",
    "Params",
    "check_columns",
    "check_example",
    "check_params",
    "cost",
    "feedforward",
    "forward_pass",
    "layer",
    "weighted_input",
]

Params = tuple[tuple[Float[Array, "n_out n_in"], Float[Array, " n_out"]], ...]

#: "normal": w, b ~ N(0, 1) as in chapter 1; "scaled": w ~ N(0, 1/n_in), b ~ N(0, 1) (chapter 3).
INIT_SCHEMES = ("normal", "scaled")


class Network(eqx.Module):
    """The static description of a fully connected feedforward network.

    **Arguments:**

    - `sizes`: neurons per layer, input first, e.g. `[784, 30, 10]`.
    - `activation`: a name, an `Activation`, or a sequence with one per layer l = 2, …, L.
    - `cost`: a name or a `Cost`.
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    activations: tuple[Activation, ...] = eqx.field(static=True)
    cost: Cost = eqx.field(static=True)

    def __init__(
        self,
        sizes: Sequence[int],
        activation: "str | Activation | Sequence[str | Activation]" = "sigmoid",
        cost: "str | Cost" = "quadratic",
    ):
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in sizes
        ):
            raise FnbackpropError(
                f"sizes must list at least two positive integers (input and output), got {sizes}"
            )
        sizes = tuple(int(n) for n in sizes)
        n_layers = len(sizes) - 1
        if isinstance(activation, str | Activation):
            sigmas = (_activations.get(activation),) * n_layers
        else:
            sigmas = tuple(_activations.get(a) for a in activation)
            if len(sigmas) != n_layers:
                raise FnbackpropError(
                    f"{len(sigmas)} activations given for {n_layers} layers of sizes "
                    f"{list(sizes)}: give one name, or one per layer after the input"
                )
        for l, (sigma, n) in enumerate(zip(sigmas, sizes[1:], strict=True), start=2):
            if isinstance(sigma, Neuronwise) and sigma.size_needed > n:
                raise FnbackpropError(
                    f"layer {l} has {n} neurons, but its activation overrides neuron "
                    f"{sigma.size_needed - 1}"
                )
        the_cost = _costs.get(cost)
        if not the_cost.accepts(sigmas[-1]):
            raise FnbackpropError(
                f"the {the_cost.name} cost needs output activations in its domain: one of "
                f"{', '.join(the_cost.output_activations)}, got {sigmas[-1].name}"
            )
        self.sizes = sizes
        self.activations = sigmas
        self.cost = the_cost

    @property
    def num_layers(self) -> int:
        """L, the number of layers, the input layer included."""
        return len(self.sizes)

    def init(
        self, key: PRNGKeyArray, scheme: str = "normal", dtype: jnp.dtype = jnp.float32
    ) -> Params:
        """Random parameters: a tuple of `(w, b)`, `w` (n_out, n_in), `b` (n_out,).

        `scheme="normal"` draws every weight and bias from N(0, 1) (chapter 1);
        `scheme="scaled"` draws weights from N(0, 1/n_in), biases from N(0, 1).
        """
        if scheme not in INIT_SCHEMES:
            raise FnbackpropError(
                f"unknown init scheme {scheme!r}; valid schemes: {', '.join(INIT_SCHEMES)}"
            )
        params = []
        for k, n_in, n_out in zip(
            jax.random.split(key, len(self.sizes) - 1), self.sizes[:-1], self.sizes[1:], strict=True
        ):
            kw, kb = jax.random.split(k)
            w = jax.random.normal(kw, (n_out, n_in), dtype)
            if scheme == "scaled":
                w = w / jnp.sqrt(jnp.asarray(n_in, dtype))
            params.append((w, jax.random.normal(kb, (n_out,), dtype)))
        return tuple(params)


def weighted_input(p, a: Float[Array, "n_in ..."]) -> Float[Array, "n_out ..."]:
    """z^l = w^l a^{l−1} + b^l (eq. 25); with examples as columns, b is added to every column."""
    w, b = p
    return w @ a + b.reshape(b.shape + (1,) * (a.ndim - 1))


def layer(p, sigma: Activation):
    """Gordon's curried layer map: `layer(p, σ)` is the function a ↦ σ(w a + b)."""
    return lambda a: sigma(weighted_input(p, a))


def feedforward(net: Network, params: Params, x: Float[Array, "n_in ..."]) -> Float[Array, "..."]:
    """The network's output a^L = f_L(p_L)(… f_2(p_2)(x)) (eq. 25 applied layer by layer)."""
    check_columns(net, params, x)
    a = x
    for p, sigma in zip(params, net.activations, strict=True):
        a = layer(p, sigma)(a)
    return a


def forward_pass(net: Network, params: Params, x: Float[Array, "n_in ..."]):
    """Feedforward that keeps every weighted input and activation.

    Returns `(weighted_inputs, activations)`: `weighted_inputs[i]` is z^{i+2} and
    `activations[i]` is a^{i+1}, so `activations[0]` is the input x and `activations[-1]` the
    output a^L; there is one more activation than weighted inputs.
    """
    check_columns(net, params, x)
    return _forward_pass(net, params, x)


def _forward_pass(net: Network, params: Params, x):
    weighted_inputs, activations = [], [x]
    for p, sigma in zip(params, net.activations, strict=True):
        z = weighted_input(p, activations[-1])
        weighted_inputs.append(z)
        activations.append(sigma(z))
    return tuple(weighted_inputs), tuple(activations)


def cost(
    net: Network, params: Params, x: Float[Array, "n_in ..."], y: Float[Array, "n_out ..."]
) -> Float[Array, ""]:
    """C_x for one example; for examples as columns, the average C = (1/n) Σ_x C_x (eq. 26).

    Computed from the output weighted input z^L, so cross-entropy and log-likelihood stay finite
    when the output neurons saturate.
    """
    check_columns(net, params, x, y)
    weighted_inputs, _ = _forward_pass(net, params, x)
    return jnp.mean(net.cost.from_weighted_input(net.activations[-1], weighted_inputs[-1], y))


def _shape(x) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(x))


def check_params(net: Network, params: Params) -> None:
    """Raise `ShapeError` unless `params` are `(w, b)` pairs matching `net.sizes`."""
    expected = len(net.sizes) - 1
    if not isinstance(params, tuple | list) or len(params) != expected:
        got = len(params) if isinstance(params, tuple | list) else type(params).__name__
        raise ShapeError(
            f"params must be {expected} (w, b) pairs for sizes {list(net.sizes)}, got {got}"
        )
    for l, (p, n_in, n_out) in enumerate(
        zip(params, net.sizes[:-1], net.sizes[1:], strict=True), start=2
    ):
        if not isinstance(p, tuple | list) or len(p) != 2:
            raise ShapeError(f"params for layer {l} must be a (w, b) pair")
        w, b = p
        for name, arr, shape in (("w", w, (n_out, n_in)), ("b", b, (n_out,))):
            if _shape(arr) != shape:
                raise ShapeError(
                    f"{name} of layer {l} has shape {_shape(arr)}, expected {shape} "
                    f"for sizes {list(net.sizes)}"
                )
            if not jnp.issubdtype(jnp.result_type(arr), jnp.floating):
                raise ShapeError(
                    f"{name} of layer {l} has dtype {jnp.result_type(arr)}, expected a float"
                )


def check_example(net: Network, params: Params, x, y=None, *, batch: bool = False) -> None:
    """Raise `ShapeError` unless x (and y) fit the network.

    With `batch=False`, x is one example (n_in,) and y is (n_out,); with `batch=True`, X is
    (m, n_in) and Y is (m, n_out), one example per row, m ≥ 1. Concrete inputs (not traced
    under jit) are also checked to be finite.
    """
    check_params(net, params)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    for name, arr, n in (("x", x, n_in), ("y", y, n_out)):
        if arr is None:
            continue
        label = name.upper() if batch else name
        _check_is_array(label, arr)
        shape = _shape(arr)
        if batch:
            if len(shape) != 2 or shape[1] != n:
                raise ShapeError(
                    f"{label} has shape {shape}, expected (m, {n}): one example per row "
                    f"for sizes {list(net.sizes)}"
                )
            if shape[0] == 0:
                raise ShapeError(f"{label} is an empty batch: it needs at least one example")
        elif shape != (n,):
            hint = " (for a batch use backprop_batch)" if len(shape) == 2 else ""
            raise ShapeError(
                f"{label} has shape {shape}, expected ({n},) for sizes {list(net.sizes)}{hint}"
            )
        hint = " (one-hot encode labels with fnbackprop.data.one_hot)" if name == "y" else ""
        _check_values(label, arr, hint)
    if x is not None and y is not None and batch and _shape(x)[0] != _shape(y)[0]:
        raise ShapeError(
            f"X has {_shape(x)[0]} examples but Y has {_shape(y)[0]}: they must match row for row"
        )


def check_columns(net: Network, params: Params, x, y=None) -> None:
    """Raise `ShapeError` unless x (and y) fit the network as `feedforward` and `cost` take them.

    x is one example (n_in,) or examples as columns (n_in, m); y, if given, is (n_out,) or
    (n_out, m) to match. Shapes are static, so under jit this runs once, at trace time; concrete
    inputs are also checked to be finite.
    """
    check_params(net, params)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    _check_is_array("x", x)
    x_shape = _shape(x)
    if not x_shape or x_shape[0] != n_in:
        hint = " (examples go in columns: pass X.T)" if x_shape[-1:] == (n_in,) else ""
        raise ShapeError(
            f"x has shape {x_shape}, expected ({n_in},) or ({n_in}, m): one example or examples "
            f"as columns, for sizes {list(net.sizes)}{hint}"
        )
    if 0 in x_shape:
        raise ShapeError(f"x has shape {x_shape}: it needs at least one example")
    if y is not None:
        _check_is_array("y", y)
    if y is not None and _shape(y) != (n_out, *x_shape[1:]):
        raise ShapeError(
            f"y has shape {_shape(y)}, expected {(n_out, *x_shape[1:])} to match x of shape "
            f"{x_shape} for sizes {list(net.sizes)}"
        )
    for name, arr in (("x", x), ("y", y)):
        if arr is not None:
            _check_values(name, arr)


def _check_is_array(label: str, arr) -> None:
    if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
        raise ShapeError(f"{label} must be an array (jax or numpy), got {type(arr).__name__}")


def _check_values(label: str, arr, hint: str = "") -> None:
    """A float array, and finite when concrete: NaN checks never run on tracers."""
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ShapeError(f"{label} has dtype {arr.dtype}, expected a float{hint}")
    if not isinstance(arr, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(arr))):
        raise ShapeError(f"{label} contains NaN or Inf")
