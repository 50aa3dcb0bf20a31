"""Checks at the boundary of every public function, so that a wrong argument is one clear line.

One layout holds everywhere: one example is a vector x of shape (n_in,), several are the rows of
a matrix X of shape (m, n_in), and their labels y (n_out,) or Y (m, n_out) match row for row.
Each check names the argument, the shape expected and the shape given. Shapes are static, so
under `jit` the checks run once, at trace time; values (NaN, Inf) are checked only when concrete.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .errors import FnbackpropError, ShapeError

__all__ = [
    "check_inputs",
    "check_labels",
    "check_masks",
    "check_mini_batch_size",
    "check_params",
    "shape_of",
]


def shape_of(x) -> tuple[int, ...]:
    """The shape of an array as plain ints."""
    return tuple(int(d) for d in np.shape(x))


def check_params(net, params) -> None:
    """Raise `ShapeError` unless `params` hold each layer's arrays in the shapes it gives
    (`(w, b)` pairs matching `net.sizes` for the book's network)."""
    expected = len(net.layers)
    if not isinstance(params, tuple | list) or len(params) != expected:
        got = len(params) if isinstance(params, tuple | list) else type(params).__name__
        what = "(w, b) pairs" if net.dense else "parameter tuples, one per layer,"
        raise ShapeError(f"params must be {expected} {what} for sizes {list(net.sizes)}, got {got}")
    for l, (p, layer) in enumerate(zip(params, net.layers, strict=True), start=2):
        shapes = layer.parameter_shapes()
        if not isinstance(p, tuple | list) or len(p) != len(shapes):
            names = ", ".join(name for name, _ in shapes)
            raise ShapeError(f"params for layer {l} must be a ({names}) {_tuple_kind(len(shapes))}")
        for (name, shape), arr in zip(shapes, p, strict=True):
            if shape_of(arr) != shape:
                raise ShapeError(
                    f"{name} of layer {l} has shape {shape_of(arr)}, expected {shape} "
                    f"for sizes {list(net.sizes)}"
                )
            if not jnp.issubdtype(jnp.result_type(arr), jnp.floating):
                raise ShapeError(
                    f"{name} of layer {l} has dtype {jnp.result_type(arr)}, expected a float"
                )


def _tuple_kind(n: int) -> str:
    return {0: "tuple (empty: the layer has no parameters)", 2: "pair"}.get(n, "tuple")


def check_inputs(
    net, params, x, y=None, *, one_example: bool = False, hint: str = "", masks=None
) -> None:
    """Raise `ShapeError` unless x (and y, and dropout masks) fit the network.

    x is one example (n_in,) or, unless `one_example`, the rows of X (m, n_in), m ≥ 1; y, when
    given, is (n_out,) or (m, n_out) to match. `hint` is added to the message for a batch given
    where one example is expected (which function to use instead). `masks`, when given, holds one
    dropout mask per hidden layer, (n_l,) or (m, n_l) like x.
    """
    check_params(net, params)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    _check_is_array("x", x)
    shape = shape_of(x)
    label = "X" if len(shape) == 2 else "x"
    expected = f"({n_in},)" if one_example else f"({n_in},) or (m, {n_in})"
    if one_example and len(shape) == 2 and shape[1] == n_in:
        raise ShapeError(f"X has shape {shape}, expected one example of shape ({n_in},){hint}")
    if len(shape) not in (1, 2) or shape[-1] != n_in:
        columns = len(shape) == 2 and shape[0] == n_in
        why = " (examples go in rows: pass X.T)" if columns else ""
        raise ShapeError(
            f"{label} has shape {shape}, expected {expected}: one example"
            f"{'' if one_example else ' or one example per row'} for sizes "
            f"{list(net.sizes)}{why}"
        )
    if shape[0] == 0:
        raise ShapeError(f"X has shape {shape}: it needs at least one example")
    if y is not None:
        _check_is_array("y", y)
        want = (*shape[:-1], n_out)
        if shape_of(y) != want:
            ylabel = "Y" if len(shape) == 2 else "y"
            if len(shape) == 2 and shape_of(y)[:1] != shape[:1] and len(shape_of(y)) == 2:
                raise ShapeError(
                    f"X has {shape[0]} examples but Y has {shape_of(y)[0]}: they must match "
                    "row for row"
                )
            raise ShapeError(
                f"{ylabel} has shape {shape_of(y)}, expected {want} to match {label} of shape "
                f"{shape} for sizes {list(net.sizes)} (one-hot encode labels with "
                "fnbackprop.data.one_hot)"
            )
    _check_values(label, x)
    if y is not None:
        _check_values("Y" if len(shape) == 2 else "y", y)
    if masks is not None:
        check_masks(net, shape[:-1], masks)


def check_masks(net, rows: tuple[int, ...], masks) -> None:
    """One float dropout mask per hidden layer l = 2, …, L−1, shaped (*rows, n_l) (for a layer
    of feature maps, (*rows, *its output shape))."""
    hidden = [layer.out_shape for layer in net.layers[:-1]]
    if not isinstance(masks, tuple | list) or len(masks) != len(hidden):
        got = len(masks) if isinstance(masks, tuple | list) else type(masks).__name__
        raise ShapeError(
            f"masks must hold one dropout mask per hidden layer ({len(hidden)} for sizes "
            f"{list(net.sizes)}), got {got}; draw them with fnbackprop.dropout_masks"
        )
    for l, (mask, shape) in enumerate(zip(masks, hidden, strict=True), start=2):
        _check_is_array(f"mask of layer {l}", mask)
        if shape_of(mask) != (*rows, *shape):
            raise ShapeError(
                f"the dropout mask of layer {l} has shape {shape_of(mask)}, expected "
                f"{(*rows, *shape)}: one mask row per example, one entry per neuron"
            )
        if not jnp.issubdtype(mask.dtype, jnp.floating):
            raise ShapeError(f"the dropout mask of layer {l} has dtype {mask.dtype}, not a float")


def check_labels(net, params, X, labels, name: str = "") -> None:
    """X (n, n_in) finite floats and integer labels (n,) in 0..n_out − 1 (not one-hot)."""
    where = f"{name}: " if name else ""
    try:
        check_inputs(net, params, X)
        if np.ndim(X) != 2:
            raise ShapeError(f"X has shape {shape_of(X)}, expected (n, {net.sizes[0]})")
    except ShapeError as err:
        raise ShapeError(f"{where}{err}") from None
    n, n_out = shape_of(X)[0], net.sizes[-1]
    if shape_of(labels) != (n,) or not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ShapeError(
            f"{where}labels have shape {shape_of(labels)} {jnp.result_type(labels)}, expected "
            f"({n},) integers: one class index per row of X (not one-hot)"
        )
    if not isinstance(labels, jax.core.Tracer):
        labels = np.asarray(labels)
        if labels.min() < 0 or labels.max() >= n_out:
            raise ShapeError(
                f"{where}labels must lie in 0..{n_out - 1} for {n_out} output neurons, found "
                f"{labels.min()}..{labels.max()}"
            )


def check_mini_batch_size(mini_batch_size, n: int) -> None:
    """An integer 1..n, n the number of training examples."""
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int | np.integer):
        raise FnbackpropError(f"mini_batch_size must be an integer, got {mini_batch_size!r}")
    if not 1 <= mini_batch_size <= n:
        raise FnbackpropError(
            f"mini_batch_size must be 1..{n} (the number of training examples), "
            f"got {mini_batch_size}"
        )


def _check_is_array(label: str, arr) -> None:
    if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
        raise ShapeError(f"{label} must be an array (jax or numpy), got {type(arr).__name__}")


def _check_values(label: str, arr) -> None:
    """A float array, and finite when concrete: NaN checks never run on tracers."""
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        hint = " (one-hot encode labels with fnbackprop.data.one_hot)" if label in "yY" else ""
        raise ShapeError(f"{label} has dtype {arr.dtype}, expected a float{hint}")
    if not isinstance(arr, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(arr))):
        raise ShapeError(f"{label} contains NaN or Inf")
