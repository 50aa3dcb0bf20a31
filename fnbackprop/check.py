"""Checks that anyone's σ, cost and network compute the gradient they claim, in float64.

- `check_activation(σ)`: the hand-written σ′ (or `backward`, for a σ that is not elementwise)
  against `jax.grad` / `jax.vjp` of σ itself; that σ treats each example (column) alone; that it
  keeps float32 and runs under `jit`; then backprop through small networks with σ in the hidden
  layers, beside every built-in cost (or the one given).
- `check_cost(C)`: the hand-written ∇_a C against `jax.grad` of C; the contract that C sums over
  the neuron axis (axis 0) only, one cost per example, and that ∇_a C treats each example alone;
  every fused output error (BP1) and stable form against autodiff, for each output activation
  the cost accepts; float32 and `jit`; then small networks beside every built-in activation (or
  the one given).
- `check_network(net)`: `backprop`, `backprop_vmap`, `backprop_batch`, the alternate
  presentation (eqs. 33–35) and the sum over paths (eq. 53) against `jax.grad` of the cost, and
  backprop against central finite differences (eq. 46), on random parameters and inputs.
- `check_layer(layer)`: a layer's hand-written backward pass (`gradients`, `error_below`,
  `summed_gradients`) against `jax.vjp` of its forward pass and central differences; for a
  pooling layer also on inputs with ties, against the forward whose `jax.grad` follows its tie
  rule (`weighted_input_by_selection`). `check_layer_network(net)`: every gradient form that
  applies to a stack of layers (chapter 6's) against `jax.grad`, and central differences.

Every check returns rows with an `ok` flag, the worst relative error and where it is (which z,
which output, which weight); against a reference that is exactly 0 the error is the absolute
one, and `where` says so. When σ or C works across the examples (the wrong axis), the rows that
fail beside the axis row say that it is the likely cause. `fnbackprop check [--activation SPEC]
[--cost SPEC]` prints them, each once, and exits 1 if any row fails.
"""

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import activations, costs
from .activations import Activation
from .backward import backprop, backprop_batch, backprop_vmap, cost_with_backprop
from .conv import Conv2D, ConvPool, MaxPool
from .costs import Cost
from .errors import FnbackpropError
from .layers import Dense, Layer
from .network import Network, dropout_masks
from .references import (
    alternate_presentation_grad,
    autodiff_grad,
    finite_difference_grad,
    path_sum_grad,
)

__all__ = [
    "AUTODIFF_TOLERANCE",
    "FD_TOLERANCE",
    "NetworkRow",
    "Row",
    "cases",
    "check_activation",
    "check_contract",
    "check_cost",
    "check_layer",
    "check_layer_network",
    "check_network",
    "contract_shapes",
    "format_table",
    "layer_cases",
    "layer_rows",
    "relative_error",
    "run_check",
    "to_json",
]

#: Agreement required with jax.grad in float64, and with central differences.
AUTODIFF_TOLERANCE = 1e-9
FD_TOLERANCE = 1e-6

_TINY = float(np.finfo(np.float64).tiny)


@dataclasses.dataclass
class Row:
    """One comparison for an activation or a cost: `error` is the worst relative error (inf
    when a contract is broken), `where` says where it is or what broke."""

    subject: str
    test: str
    error: float
    tolerance: float = AUTODIFF_TOLERANCE
    where: str = ""

    @property
    def ok(self) -> bool:
        """The error under the tolerance (a NaN error is not under anything)."""
        return bool(self.error <= self.tolerance)

    @property
    def case(self) -> str:
        return f"{self.subject}: {self.test}"


@dataclasses.dataclass
class NetworkRow:
    """Every gradient form on one network against jax.grad (and backprop against finite
    differences); `error` is the worst of the forms against jax.grad, `where` its place."""

    case: str
    sizes: list[int]
    backprop: float
    vmap: float
    batch: float
    eq35: float
    eq53: float
    finite_difference: float
    where: str = ""

    @property
    def error(self) -> float:
        return max(self.backprop, self.vmap, self.batch, self.eq35, self.eq53)

    @property
    def ok(self) -> bool:
        """Every error under its tolerance (a NaN error is not under anything)."""
        exact = (self.backprop, self.vmap, self.batch, self.eq35, self.eq53)
        return all(e < AUTODIFF_TOLERANCE for e in exact) and self.finite_difference < FD_TOLERANCE


def relative_error(grads, reference) -> float:
    """max |g − r| / max |r| over every weight and bias (every leaf of two pytrees of the same
    shape), in float64 NumPy: nothing to compile.

    0 when both are exactly zero (a zero reference divides by the smallest float64 instead);
    entries that are NaN in both, or where the reference is not finite, are not counted; a NaN
    in `grads` alone makes it NaN; a shape mismatch makes it inf.
    """
    return _compare(grads, reference)[0]


def _flat(tree) -> np.ndarray:
    """Every leaf of `tree` flattened and joined in order, in float64 (the order of
    `jax.flatten_util.ravel_pytree`)."""
    leaves = [np.ravel(np.asarray(leaf, np.float64)) for leaf in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def _compare(mine, reference) -> tuple[float, int]:
    """(max |g − r| / max |r|, flat index of the worst entry); a shape mismatch is inf."""
    g, r = _flat(mine), _flat(reference)
    if g.shape != r.shape:
        return float("inf"), -1
    diff = np.abs(g - r)
    diff = np.where(np.isnan(g) & np.isnan(r), 0.0, diff)  # undefined in both: no disagreement
    finite = np.isfinite(r)
    diff = np.where(finite, diff, 0.0)
    worst = int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0
    scale = max(float(np.max(np.abs(r[finite]), initial=0.0)), _TINY)
    error = float(diff[worst]) / scale if diff.size else 0.0
    if diff.size and np.isnan(g[worst]) and not np.isnan(r[worst]):
        error = float("nan")
    return error, worst


def _against(mine, reference) -> tuple[float, int, str]:
    """`_compare`'s (error, index) for a row, and a note for its `where`: against a reference
    that is exactly 0 everywhere a relative error means nothing (it would divide by the smallest
    float64 and print as 4e+307), so the error is then the absolute |g − r| and the note says so."""
    error, i = _compare(mine, reference)
    r = _flat(reference)
    if i < 0 or np.isnan(error) or np.any(r[np.isfinite(r)]):
        return error, i, ""
    g = _flat(mine)
    absolute = float(abs(g[i] - r[i])) if r.size and np.isfinite(r[i]) else 0.0
    return absolute, i, " (reference is 0: absolute error)" if absolute else ""


def _guard(subject: str, test: str, measure: Callable[[], tuple[float, str]], **kw) -> Row:
    """Run one comparison; a function that raises fails its row, with the error as `where`."""
    try:
        error, where = measure()
    except Exception as err:  # the user's σ or cost raised: that is the finding
        error, where = float("inf"), f"raised {type(err).__name__}: {' '.join(str(err).split())}"
    return Row(subject, test, error, where=where, **kw)


class _Probe(NamedTuple):
    """One row, in two steps: `compute(inputs)` (JAX only, so that every probe of a subject can
    run as one compiled program) and `compare(inputs, values)` → (error, where), in NumPy."""

    test: str
    compute: Callable[[dict], Any]
    compare: Callable[[dict, Any], tuple[float, str]]
    tolerance: float = AUTODIFF_TOLERANCE


def _run_probes(subject: str, inputs: dict, probes: list[_Probe], *, jit: bool) -> list[Row]:
    """The probes' rows on `inputs`. Eagerly, each probe alone, so one that raises fails its row
    only; with `jit`, every probe in one compiled program (one compile instead of one per
    operation: what makes the check before training fast), and eagerly after all if that
    program fails. The values are compared as NumPy arrays."""
    numpy = lambda tree: jax.tree.map(np.asarray, tree)  # noqa: E731
    if jit:
        try:
            values = numpy(jax.jit(lambda i: [p.compute(i) for p in probes])(inputs))
        except Exception:  # a σ or C that raises somewhere: find the rows it fails, one by one
            return _run_probes(subject, inputs, probes, jit=False)
        seen = numpy(inputs)
        return [
            _guard(subject, p.test, lambda p=p, v=v: p.compare(seen, v), tolerance=p.tolerance)
            for p, v in zip(probes, values, strict=True)
        ]
    seen = numpy(inputs)
    return [
        _guard(subject, p.test, lambda p=p: p.compare(seen, numpy(p.compute(inputs))),
               tolerance=p.tolerance)
        for p in probes
    ]  # fmt: skip


# -- activations --------------------------------------------------------------------------------


def _z_grid() -> np.ndarray:
    """Weighted inputs across σ's interesting range and into saturation, avoiding 0 (a kink)."""
    return np.concatenate([np.linspace(-6.0, 6.0, 48), [-14.0, -9.0, 9.0, 14.0]])


def _activation_inputs(key) -> dict:
    """z and g for one example, Z and G for 7 as columns, drawn from `key`; an integer `key` is
    a NumPy seed (the quick check: no random-number program to compile)."""
    if isinstance(key, int):
        rng = np.random.default_rng(key)
        return {
            "grid": _z_grid(),
            "z": rng.normal(size=5) * 2,
            "g": rng.normal(size=5),
            "Z": rng.normal(size=(5, 7)) * 2,
            "G": rng.normal(size=(5, 7)),
        }
    kz, kg, kc = jax.random.split(key, 3)
    return {
        "grid": _z_grid(),
        "z": jax.random.normal(kz, (5,), jnp.float64) * 2,
        "g": jax.random.normal(kg, (5,), jnp.float64),
        "Z": jax.random.normal(kc, (5, 7), jnp.float64) * 2,
        "G": jax.random.normal(kg, (5, 7), jnp.float64),
    }


def _activation_rows(act: Activation, key, *, jit: bool = False) -> list[Row]:
    """σ's own rows; `jit`: the values in one compiled program, and the float32 row from the
    traced dtypes alone (the quick check before training)."""
    probes = []
    if act.elementwise:

        def prime(i):
            reference = jax.vmap(jax.grad(lambda t: act(t[None])[0]))(i["grid"])
            return act.prime(i["grid"]), reference

        def compare_prime(i, values):
            (mine, reference), grid = values, i["grid"]
            if np.shape(mine) != np.shape(grid):
                return float("inf"), f"prime(z) has shape {np.shape(mine)} for z {grid.shape}"
            error, k, note = _against(mine, reference)
            return error, f"z = {float(grid[k]):.4g}: σ′ {float(mine[k]):.6g}, jax.grad " + (
                f"{float(reference[k]):.6g}{note}"
            )

        probes.append(_Probe("σ′ = jax.grad of σ", prime, compare_prime))

    def backward(z: str, g: str, shape: str) -> _Probe:
        def compute(i):
            _, pullback = jax.vjp(act, i[z])
            (reference,) = pullback(i[g])
            return act.backward(i[z], i[g]), reference

        def compare(i, values):
            error, k, note = _against(*values)
            return error, _place(i[z], k, "z") + note

        return _Probe(f"backward = jax.vjp of σ, {shape}", compute, compare)

    probes.append(backward("z", "g", "one example"))
    probes.append(backward("Z", "G", "examples as columns"))

    def columns(i):
        Z = i["Z"]
        return act(Z), jnp.stack([act(Z[:, j]) for j in range(Z.shape[1])], axis=1)

    def compare_columns(i, values):
        (together, alone), Z = values, i["Z"]
        if np.shape(together) != np.shape(Z):
            return float("inf"), f"σ(z) has shape {np.shape(together)} for z {Z.shape}"
        error, k, note = _against(together, alone)
        return error, f"column {k % Z.shape[1]} (σ must act on axis 0 only){note}"

    probes.append(_Probe(_SIGMA_PER_EXAMPLE, columns, compare_columns))
    subject = f"activation {act.name}"
    rows = _run_probes(subject, _activation_inputs(key), probes, jit=jit)
    return [*rows, _float32_row(subject, act, "σ", traced=jit)]


def _float32_row(subject: str, obj, what: str, *, traced: bool) -> Row:
    if traced:
        return _guard(subject, "keeps float32", lambda: _float32_traced(obj, what))
    measure = lambda: _float32_jit(obj, what)  # noqa: E731
    return _guard(subject, "keeps float32, runs under jit", measure, tolerance=FLOAT32_TOLERANCE)


def _place(z, i: int, symbol: str) -> str:
    """'z[3]' or 'z[3, example 2]' for the flat index i of an (n,) or (n, m) array."""
    if i < 0:
        return "shapes differ"
    if np.ndim(z) == 1:
        return f"{symbol}[{i}]"
    m = np.shape(z)[1]
    return f"neuron {i // m} of example {i % m}"


#: jit against eager in float32: the same operations, at most reordered by XLA.
FLOAT32_TOLERANCE = 1e-5


def _float32_call(obj):
    """σ and its backward, or C and ∇_a C, as one function of one or two arrays."""
    if isinstance(obj, Activation):
        return lambda z: (obj(z), obj.backward(z, jnp.ones_like(z)))
    return lambda a, y: (obj(a, y), obj.gradient(a, y))


def _float32_jit(obj, what: str) -> tuple[float, str]:
    """inf unless calling `obj` (σ, or C) on float32 inputs, eagerly and under jit, gives
    float32; else the relative difference of the two."""
    with jax.enable_x64(False):
        z = jnp.linspace(-3.0, 3.0, 6, dtype=jnp.float32).reshape(3, 2)
        y = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], jnp.float32)
        args = (z,) if isinstance(obj, Activation) else (jax.nn.sigmoid(z), y)
        call = _float32_call(obj)
        eager = call(*args)
        jitted = jax.jit(call)(*args)
    for out in (*eager, *jitted):
        if out.dtype != jnp.float32:
            return float("inf"), f"{what} gives {out.dtype} for float32 inputs"
    error, _, note = _against(jitted, eager)
    return error, "float32 in and out; jit against eager" + note


def _float32_traced(obj, what: str) -> tuple[float, str]:
    """inf unless `obj` (σ, or C) gives float32 for float32 inputs, from the traced dtypes
    (`jax.eval_shape`: nothing is computed)."""
    with jax.enable_x64(False):
        x = jax.ShapeDtypeStruct((3, 2), jnp.float32)
        args = (x,) if isinstance(obj, Activation) else (x, x)
        for out in jax.eval_shape(_float32_call(obj), *args):
            if out.dtype != jnp.float32:
                return float("inf"), f"{what} gives {out.dtype} for float32 inputs"
    return 0.0, "float32 in and out (traced)"


# -- costs --------------------------------------------------------------------------------------


def _cost_outputs(cost: Cost) -> tuple[Activation, ...]:
    names = cost.output_activations or ("sigmoid", "tanh", "linear")
    return tuple(activations.get(n) for n in names)


#: The rows that fail when σ or C works across the examples (the wrong axis): when one fails,
#: the rows that fail beside it say so, as that is the likely cause.
_SUMS_OVER_AXIS_0 = "C sums over axis 0 only"
_GRADIENT_PER_EXAMPLE = "∇_a C treats each example alone"
_SIGMA_PER_EXAMPLE = "σ treats each example alone"
_AXIS_ROWS = (_SIGMA_PER_EXAMPLE, _SUMS_OVER_AXIS_0, _GRADIENT_PER_EXAMPLE)


def _blame_the_axis(rows: list) -> list:
    """Rows, the failing ones beside a failing axis row saying that the axis is the likely
    cause (a C that sums over every axis, or a ∇_a C along axis 1, fails most other rows too)."""
    axis = next((r for r in rows if isinstance(r, Row) and r.test in _AXIS_ROWS and not r.ok), None)
    if axis is not None:
        for row in rows:
            if row is not axis and not row.ok:
                row.where += f" (fix the axis first: '{axis.test}' fails)"
    return rows


def _cost_inputs(key, n: int = 4, m: int = 5) -> dict:
    """Weighted inputs Z, one-hot and soft labels for m examples as columns, drawn from `key`
    (an integer: a NumPy seed, as for σ)."""
    if isinstance(key, int):
        rng = np.random.default_rng(key)
        soft = np.exp(rng.normal(size=(n, m)))
        return {
            "Z": rng.normal(size=(n, m)) * 2,
            "one-hot y": np.eye(n)[rng.integers(0, n, size=m)].T,
            "soft y": soft / soft.sum(axis=0),
        }
    kz, ky = jax.random.split(key)
    return {
        "Z": jax.random.normal(kz, (n, m), jnp.float64) * 2,
        "one-hot y": jax.nn.one_hot(jax.random.randint(ky, (m,), 0, n), n, dtype=jnp.float64).T,
        "soft y": jax.nn.softmax(jax.random.normal(ky, (n, m), jnp.float64), axis=0),
    }


def _cost_rows(
    cost: Cost, key, outputs: tuple[Activation, ...] | None = None, *, jit: bool = False
) -> list[Row]:
    """The cost's own rows; ∇_a C, δ^L and C from z^L for each of `outputs` (default: every
    output activation the cost accepts, or sigmoid, tanh and linear). `jit`: as for σ."""
    first = _cost_outputs(cost)[0]
    m = 5

    def sums_over_axis_0(i):
        A = first(i["Z"])
        return A, cost(A, i["one-hot y"]), [cost(A[:, j], i["one-hot y"][:, j]) for j in range(m)]

    def compare_sums(i, values):
        A, together, alone = values
        if np.shape(together) != (m,):
            return float("inf"), (
                f"C(a, y) for {m} examples as columns (a of shape {A.shape}) has shape "
                f"{np.shape(together)}, expected ({m},): sum over axis 0 only, one cost per example"
            )
        if any(np.shape(c) != () for c in alone):
            return float("inf"), f"C(a, y) for one example has shape {np.shape(alone[0])}, not ()"
        error, k, note = _against(together, np.stack(alone))
        return error, f"example {k} (C must sum over axis 0 only){note}"

    def gradient_per_example(i):
        A, soft = first(i["Z"]), i["soft y"]
        alone = [cost.gradient(A[:, j], soft[:, j]) for j in range(m)]
        return A, cost.gradient(A, soft), alone

    def compare_gradient_per_example(i, values):
        A, together, alone = values
        if np.shape(together) != A.shape:
            return float("inf"), f"∇_a C has shape {np.shape(together)} for a of shape {A.shape}"
        error, k, note = _against(together, np.stack(alone, axis=1))
        return error, f"example {k % m} (∇_a C must act on axis 0 only){note}"

    probes = [
        _Probe(_SUMS_OVER_AXIS_0, sums_over_axis_0, compare_sums),
        _Probe(_GRADIENT_PER_EXAMPLE, gradient_per_example, compare_gradient_per_example),
    ]
    for sigma in _cost_outputs(cost) if outputs is None else outputs:
        for label in ("one-hot y", "soft y"):

            def gradient(i, sigma=sigma, label=label):
                A, Y = sigma(i["Z"]), i[label]
                return cost.gradient(A, Y), jax.grad(lambda a: jnp.sum(cost(a, Y)))(A)

            def compare_gradient(i, values, sigma=sigma):
                error, k, note = _against(*values)
                return error, f"{sigma.name} outputs: output {_place(i['Z'], k, 'a')}{note}"

            def fused(i, sigma=sigma, label=label):
                Z, Y = i["Z"], i[label]
                mine = cost.output_error(sigma, Z, sigma(Z), Y)
                return mine, jax.grad(lambda z: jnp.sum(cost(sigma(z), Y)))(Z)

            def compare_fused(i, values):
                error, k, note = _against(*values)
                return error, f"output {_place(i['Z'], k, 'z')}{note}"

            def stable(i, sigma=sigma, label=label):
                Z, Y = i["Z"], i[label]
                return cost.from_weighted_input(sigma, Z, Y), cost(sigma(Z), Y)

            def compare_stable(i, values):
                error, k, note = _against(*values)
                return error, f"example {k}{note}"

            probes += [
                _Probe(f"∇_a C = jax.grad of C, {sigma.name}, {label}", gradient, compare_gradient),
                _Probe(f"δ^L (BP1) = jax.grad in z^L, {sigma.name}, {label}", fused, compare_fused),
                _Probe(f"C from z^L = C(σ(z^L)), {sigma.name}, {label}", stable, compare_stable),
            ]
    subject = f"cost {cost.name}"
    rows = _run_probes(subject, _cost_inputs(key), probes, jit=jit)
    return [*rows, _float32_row(subject, cost, "C", traced=jit)]


# -- networks -----------------------------------------------------------------------------------


def _sizes(seed: int) -> list[int]:
    """One small random architecture per seed: input, two hidden layers, output, 2–5 each."""
    return [int(n) for n in np.random.default_rng(seed).integers(2, 6, size=4)]


def _network(hidden: Activation, cost: Cost, sizes: list[int], out: Activation | None = None):
    """A net with `hidden` in both hidden layers and `out` (default: `hidden` if the cost accepts
    it, else the cost's first output activation) in the output layer."""
    if out is None:
        out = hidden if cost.accepts(hidden) else activations.get(cost.output_activations[0])
    label = f"{hidden.name} → {out.name}, {cost.name}"
    return label, Network(sizes, [hidden, hidden, out], cost)


def cases(seed: int = 0) -> Iterator[tuple[str, Network]]:
    """(label, network) for every built-in case the plain `fnbackprop check` covers.

    Every activation × cost (the output activation is the hidden one where the cost's domain
    allows it, else the cost's natural output), every other output activation a cost accepts,
    a net with one modified neuron and an all-linear net, all on one random architecture drawn
    from `seed`, so the compiled kernels are shared and the check stays fast.
    """
    sizes = _sizes(seed)
    covered = set()
    for c in costs.COSTS.builtin_names():
        cost = costs.get(c)
        for a in activations.ACTIVATIONS.builtin_names():
            label, net = _network(activations.get(a), cost, sizes)
            covered.add((a, net.activations[-1].name, c))
            yield label, net
    for c in costs.COSTS.builtin_names():  # every other output a cost accepts, behind sigmoid
        for out in costs.get(c).output_activations or ():
            if ("sigmoid", out, c) not in covered:
                sigmoid = activations.get("sigmoid")
                yield _network(sigmoid, costs.get(c), sizes, activations.get(out))
    j = int(np.random.default_rng(seed).integers(0, sizes[2]))
    modified = activations.neuronwise("sigmoid", {j: "tanh"})
    yield f"modified neuron {j} (tanh)", Network(sizes, ["sigmoid", modified, "sigmoid"])
    yield "all linear", Network(sizes, "linear")


def check_network(net: Network, key=None, label: str = "") -> NetworkRow:
    """Every gradient form on `net` against jax.grad, and backprop against central differences,
    in float64 with random parameters (scaled init) and five random examples."""
    key = jax.random.key(0) if key is None else key
    with jax.enable_x64(True):
        return _measure(label or _describe(net), net, key)


def _describe(net: Network) -> str:
    return f"{' → '.join(s.name for s in net.activations)}, {net.cost.name}"


def _measure(label: str, net: Network, key) -> NetworkRow:
    kp, kx, ky = jax.random.split(key, 3)
    # scaled weights keep the outputs out of saturation, where C is flat to within rounding and
    # finite differences measure nothing but cancellation
    params = net.init(kp, scheme="scaled", dtype=jnp.float64)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X = jax.random.normal(kx, (5, n_in), jnp.float64)
    Y = jax.nn.one_hot(jax.random.randint(ky, (5,), 0, n_out), n_out, dtype=jnp.float64)
    x, y = X[0], Y[0]
    reference = autodiff_grad(net, params, x, y)
    batch_reference = autodiff_grad(net, params, X, Y)
    forms = {
        "backprop": (backprop(net, params, x, y), reference),
        "vmap": (backprop_vmap(net, params, X, Y), batch_reference),
        "batch": (backprop_batch(net, params, X, Y), batch_reference),
        "eq35": (alternate_presentation_grad(net, params, x, y), reference),
        "eq53": (path_sum_grad(net, params, x, y), reference),
    }
    errors = {name: _against(*pair) for name, pair in forms.items()}
    worst = max(errors, key=lambda name: np.nan_to_num(errors[name][0], nan=np.inf))
    fd, _, fd_note = _against(
        forms["backprop"][0], finite_difference_grad(net, params, x, y, central=True)
    )
    _, i, note = errors[worst]
    return NetworkRow(
        case=label,
        sizes=list(net.sizes),
        **{name: error for name, (error, _, _) in errors.items()},
        finite_difference=fd,
        where=f"{worst}: {_parameter(reference, i)}{note or fd_note}",
    )


def _parameter(params, i: int) -> str:
    """The name of the parameter at flat index i of `_flat(params)`: 'w³[1, 0]'."""
    if i < 0:
        return "shapes differ"
    supers = "⁰¹²³⁴⁵⁶⁷⁸⁹"
    for l, p in enumerate(params, start=2):  # (w, b), or () for a layer without parameters
        layer = "".join(supers[int(c)] for c in str(l))
        for name, arr in zip(("w", "b"), p, strict=False):
            if i < arr.size:
                index = ", ".join(map(str, np.unravel_index(i, arr.shape)))
                return f"{name}{layer}[{index}]"
            i -= arr.size
    return "?"


# -- layers beyond the dense one (chapter 6) ------------------------------------------------


def layer_cases() -> Iterator[tuple[str, Layer]]:
    """(label, layer) for chapter 6's layers on small maps, several of them in and out: a
    convolution, a max-pool and network3's ConvPool (with 3 × 3 windows)."""
    yield "Conv2D", Conv2D((2, 6, 5), 3, (3, 2), "tanh")
    yield "MaxPool", MaxPool((3, 4, 6), 2)
    yield "ConvPool", ConvPool((2, 7, 7), 3, (2, 2), 3, "sigmoid")


def layer_network() -> tuple[str, Network]:
    """A small convolutional network: ConvPool → Dense → Dense softmax, log-likelihood."""
    sigmoid, softmax = activations.get("sigmoid"), activations.get("softmax")
    layers = [ConvPool((1, 8, 8), 3, (3, 3), 2, "sigmoid"), Dense(27, 5, sigmoid)]
    net = Network([*layers, Dense(5, 4, softmax)], cost="log_likelihood")
    return "ConvPool → sigmoid → softmax, log_likelihood", net


def check_layer(layer: Layer, key=None, label: str = "") -> list[Row]:
    """Rows comparing a layer's hand-written backward pass with `jax.vjp` of its forward pass and
    with central differences, in float64 on random inputs (and, for a pooling layer, inputs with
    ties); `ok` on each."""
    key = jax.random.key(0) if key is None else key
    with jax.enable_x64(True):
        return _layer_rows(f"layer {label or type(layer).__name__}", layer, key)


def _integers(key, tree):
    """Integer-valued arrays shaped like `tree`'s: convolutions and maxima of them tie often."""
    leaves, structure = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    drawn = [
        jnp.round(2 * jax.random.normal(k, x.shape, x.dtype))
        for k, x in zip(keys, leaves, strict=False)
    ]
    return jax.tree.unflatten(structure, drawn)


def _layer_rows(subject: str, layer: Layer, key) -> list[Row]:
    kp, ka, kg, kt, km = jax.random.split(key, 5)
    p = layer.init(kp, "scaled", jnp.float64)
    a = jax.random.normal(ka, layer.in_shape, jnp.float64)
    g = jax.random.normal(kg, layer.out_shape, jnp.float64)  # δ = ∂C/∂z for C = Σ g ⊙ z
    # for a pooling layer, the forward whose jax.grad sends a tie's δ where the layer does
    pools = hasattr(layer, "weighted_input_by_selection")
    forward = layer.weighted_input_by_selection if pools else layer.weighted_input
    has_parameters = bool(jax.tree.leaves(p))

    def against_vjp(p, a, which: int):
        @jax.jit  # one program to compile, not one per operation
        def both(p, a):
            _, pullback = jax.vjp(forward, p, a)
            mine = (layer.gradients if which == 0 else layer.error_below)(p, a, g)
            return mine, pullback(g)[which]

        def measure():
            mine, reference = both(p, a)
            error, i = _compare(mine, reference)
            return error, _entry(layer, reference, i, which)

        return measure

    def flat_input():
        mine = layer.error_below(p, a.reshape(-1), g)
        if np.shape(mine) != (a.size,):
            return float("inf"), f"error_below of a flat a gave shape {np.shape(mine)}"
        return _compare(mine, layer.error_below(p, a, g).reshape(-1))[0], "a as a row of X"

    @jax.jit
    def summed_and_each(p, a, g):
        A = jnp.stack([a, 2 * a, -a], axis=-1)  # three examples on the last axis
        G = jnp.stack([g, -g, 0.5 * g], axis=-1)
        each = [layer.gradients(p, A[..., k], G[..., k]) for k in range(3)]
        return layer.summed_gradients(p, A, G), jax.tree.map(_add3, *each)

    def summed():
        error, i = _compare(*summed_and_each(p, a, g))
        return error, _entry(layer, p, i, 0)

    @jax.jit
    def by_differences(p, a):
        flat, unravel = ravel_pytree((p, a))
        eps = float(jnp.finfo(jnp.float64).eps) ** (1 / 3)

        def c(v):
            return jnp.sum(g * layer.weighted_input(*unravel(v)))

        def partial(j):
            e_j = jnp.zeros_like(flat).at[j].set(eps)
            return (c(flat + e_j) - c(flat - e_j)) / (2 * eps)

        numeric = unravel(jax.lax.map(partial, jnp.arange(flat.size)))
        return (layer.gradients(p, a, g), layer.error_below(p, a, g)), numeric

    def central_differences():
        return _compare(*by_differences(p, a))[0], "∂(Σ g ⊙ z)/∂(p, a)"

    rows = []
    if has_parameters:
        rows.append(_guard(subject, "∂C/∂p = jax.vjp of z", against_vjp(p, a, 0)))
    rows.append(_guard(subject, "error_below = jax.vjp of z", against_vjp(p, a, 1)))
    if pools:
        p_t, a_t = _integers(kt, p), _integers(km, a)
        if has_parameters:
            rows.append(
                _guard(subject, "∂C/∂p = jax.vjp, windows with ties", against_vjp(p_t, a_t, 0))
            )
        rows.append(
            _guard(subject, "error_below = jax.vjp, windows with ties", against_vjp(p_t, a_t, 1))
        )
    rows.append(_guard(subject, "error_below keeps the shape of a flat input", flat_input))
    if has_parameters:
        rows.append(_guard(subject, "summed_gradients = Σ gradients", summed))
    rows.append(
        _guard(subject, "= central differences", central_differences, tolerance=FD_TOLERANCE)
    )
    return rows


def _add3(x, y, z):
    return x + y + z


def _entry(layer: Layer, reference, i: int, which: int) -> str:
    """'w[2, 0, 1, 1]' or 'a[1, 3, 0]': the entry at flat index i of ∂C/∂p or ∂C/∂a."""
    if i < 0:
        return "shapes differ"
    if which == 1:
        return f"a[{', '.join(map(str, np.unravel_index(i, np.shape(reference))))}]"
    for (name, shape), arr in zip(layer.parameter_shapes(), reference, strict=True):
        if i < np.size(arr):
            return f"{name}[{', '.join(map(str, np.unravel_index(i, shape)))}]"
        i -= np.size(arr)
    return "?"


def check_layer_network(net: Network, key=None, label: str = "") -> list[Row]:
    """Rows comparing every gradient form that applies to a stack of layers with `jax.grad` of
    the cost, and `backprop` with central differences, in float64 (scaled init, five random
    examples); `backprop_batch`, written for dense layers, must refuse in one line."""
    key = jax.random.key(0) if key is None else key
    with jax.enable_x64(True):
        return _layer_network_rows(f"network {label or _describe(net)}", net, key)


def _layer_network_rows(subject: str, net: Network, key) -> list[Row]:
    kp, kx, ky, km = jax.random.split(key, 4)
    params = net.init(kp, scheme="scaled", dtype=jnp.float64)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X = jax.random.normal(kx, (5, n_in), jnp.float64)
    Y = jax.nn.one_hot(jax.random.randint(ky, (5,), 0, n_out), n_out, dtype=jnp.float64)
    x, y = X[0], Y[0]
    masks = dropout_masks(km, net, 0.5, m=5, dtype=jnp.float64)

    def against(mine: Callable, reference: Callable):
        def measure():
            reference_grads = reference()
            error, i = _compare(mine(), reference_grads)
            return error, _parameter(reference_grads, i)

        return measure

    def jitted(form: Callable) -> Callable:  # one program to compile, not one per operation
        return jax.jit(form, static_argnums=0)

    def autodiff(*args):
        return lambda: jitted(autodiff_grad)(net, params, *args)

    def refuses():
        try:
            backprop_batch(net, params, X, Y)
        except FnbackpropError as err:
            one_line = "\n" not in str(err)
            return (0.0 if one_line else float("inf")), str(err)[:60] + "…"
        return float("inf"), "backprop_batch ran on layers it is not written for"

    forms = {
        "backprop = jax.grad, one example": (
            lambda: jitted(backprop)(net, params, x, y),
            autodiff(x, y),
        ),
        "backprop_vmap = jax.grad, 5 examples": (
            lambda: jitted(backprop_vmap)(net, params, X, Y),
            autodiff(X, Y),
        ),
        "jax.grad of cost_with_backprop = jax.grad": (
            lambda: jax.jit(jax.grad(cost_with_backprop(net)))(params, X, Y),
            autodiff(X, Y),
        ),
        "backprop_vmap = jax.grad, dropout masks": (
            lambda: jitted(backprop_vmap)(net, params, X, Y, masks),
            autodiff(X, Y, masks),
        ),
    }
    rows = [_guard(subject, test, against(*pair)) for test, pair in forms.items()]
    central = against(
        lambda: jitted(backprop)(net, params, x, y),
        lambda: jitted(_central_differences)(net, params, x, y),
    )
    rows.append(_guard(subject, "backprop = central differences", central, tolerance=FD_TOLERANCE))
    rows.append(_guard(subject, "backprop_batch refuses, in one line", refuses))
    return rows


def _central_differences(net: Network, params, x, y):
    return finite_difference_grad(net, params, x, y, central=True)


def layer_rows(seed: int = 0) -> Iterator[Row]:
    """The rows of `fnbackprop check` for chapter 6's layers: each of `layer_cases()`, then the
    small network of `layer_network()`."""
    key = jax.random.key(seed)
    for i, (label, layer) in enumerate(layer_cases()):
        yield from check_layer(layer, jax.random.fold_in(key, 300 + i), label)
    label, net = layer_network()
    yield from check_layer_network(net, jax.random.fold_in(key, 400), label)


# -- the public checks --------------------------------------------------------------------------


def check_activation(
    activation, *, cost=None, seed: int = 0, networks: bool = True
) -> list[Row | NetworkRow]:
    """Rows comparing a (hand-written) activation with autodiff; `ok` on each.

    `activation` is a name, an import path or an `Activation`. With `networks`, backprop runs
    through small networks with it in the hidden layers, beside `cost` if given, else beside
    every built-in cost. Runs in float64 (switched on only inside).
    """
    act = activations.get(activation)
    partners = [costs.get(cost)] if cost is not None else [costs.get(c) for c in _builtin_costs()]
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        rows: list = _activation_rows(act, jax.random.fold_in(key, 1))
        if networks:
            for i, c in enumerate(partners):
                rows.append(_network_row(act, c, seed, jax.random.fold_in(key, 100 + i)))
    return _blame_the_axis(rows)


def check_cost(cost, *, activation=None, seed: int = 0, networks: bool = True) -> list:
    """Rows comparing a (hand-written) cost with autodiff, and its contract; `ok` on each.

    `cost` is a name, an import path or a `Cost`. With `networks`, backprop runs through small
    networks with `activation` (or each built-in activation) in the hidden layers and the cost's
    own output activation where it needs one. Runs in float64 (switched on only inside).
    """
    the_cost = costs.get(cost)
    partners = (
        [activations.get(activation)]
        if activation is not None
        else [activations.get(a) for a in activations.ACTIVATIONS.builtin_names()]
    )
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        rows: list = _cost_rows(the_cost, jax.random.fold_in(key, 2))
        if networks:
            for i, a in enumerate(partners):
                rows.append(_network_row(a, the_cost, seed, jax.random.fold_in(key, 200 + i)))
    return _blame_the_axis(rows)


def check_contract(obj, *, output=None, seed: int = 0) -> list[Row]:
    """The fast part of the check, which `fnbackprop train` runs before the first epoch on every
    σ and cost that is not built in: `obj`'s own rows, without networks.

    For an activation: σ′ (or `backward`) against jax.grad / jax.vjp, each column alone,
    float32 under `jit`. For a cost: the two axis rows, float32 under `jit`, and ∇_a C, δ^L and
    C from z^L against autodiff for `output` alone (the network's output σ; default: the first
    output activation the cost accepts). Run `contract_shapes` first: a σ or C that gives the
    wrong shape fails these rows with less telling messages.
    """
    with jax.enable_x64(True):
        if isinstance(obj, Activation):
            rows = _activation_rows(activations.get(obj), seed, jit=True)
        else:
            the_cost = costs.get(obj)
            outputs = (activations.get(output),) if output is not None else None
            rows = _cost_rows(
                the_cost,
                seed,
                outputs or _cost_outputs(the_cost)[:1],
                jit=True,
            )
    return _blame_the_axis(rows)


def contract_shapes(obj, n: int, m: int = 3) -> str:
    """What is wrong with the shapes that `obj`, an `Activation` or a `Cost`, gives for a layer
    of `n` neurons, for one example (n,) and for `m` examples as columns (n, m); "" when nothing.

    Traced with `jax.eval_shape`, so nothing is computed: milliseconds. An error raised while
    tracing is reported as what was wrong.
    """
    is_sigma = isinstance(obj, Activation)
    for shape in ((n,), (n, m)):
        x = jax.ShapeDtypeStruct(shape, jnp.float32)
        if is_sigma:
            calls = [("σ(z)", obj, (x,), shape)]
            if obj.elementwise:
                calls.append(("σ′(z) (prime)", obj.prime, (x,), shape))
            else:
                calls.append(("backward(z, ∇_a C)", obj.backward, (x, x), shape))
            given = f"z of shape {shape}"
        else:
            calls = [
                ("C(a, y)", obj, (x, x), shape[1:]),
                ("∇_a C (gradient)", obj.gradient, (x, x), shape),
            ]
            given = f"a and y of shape {shape}"
        for what, fn, args, expected in calls:
            try:
                out = jax.eval_shape(fn, *args)
            except Exception as err:  # the user's σ or C raised: that is the finding
                return (
                    f"{what} for {given} raised {type(err).__name__}: {' '.join(str(err).split())}"
                )
            got = getattr(out, "shape", None)
            if got != expected:
                why = (
                    "σ acts on axis 0, the neurons, and keeps the shape"
                    if is_sigma
                    else "C sums over axis 0 only, one cost per example"
                    if what.startswith("C(")
                    else "∇_a C has the shape of a"
                )
                shown = got if got is not None else type(out).__name__
                return f"{what} returned shape {shown} for {given}, expected {expected} ({why})"
    return ""


def _builtin_costs() -> tuple[str, ...]:
    return costs.COSTS.builtin_names()


def _network_row(act: Activation, cost: Cost, seed: int, key) -> NetworkRow:
    try:
        label, net = _network(act, cost, _sizes(seed))
    except Exception as err:
        bad = float("inf")
        return NetworkRow(
            f"{act.name}, {cost.name}", [], bad, bad, bad, bad, bad, bad, f"raised {err}"
        )
    try:
        return _measure(label, net, key)
    except Exception as err:  # the user's σ or cost raised inside a network
        bad = float("inf")
        message = f"raised {type(err).__name__}: {' '.join(str(err).split())}"
        return NetworkRow(label, list(net.sizes), bad, bad, bad, bad, bad, bad, message)


def run_check(seed: int = 0, activation=None, cost=None) -> Iterator[Row | NetworkRow]:
    """The rows of `fnbackprop check`, one at a time (float64 is on only inside).

    With neither `activation` nor `cost`: every built-in activation and cost on its own, every
    case of `cases(seed)`, then chapter 6's layers and a small network of them (`layer_rows`).
    With one: its own rows and networks beside every built-in partner. With both: the rows of
    each and the network that joins them.
    """
    if activation is None and cost is None:
        for a in activations.ACTIVATIONS.builtin_names():
            yield from check_activation(a, seed=seed, networks=False)
        for c in _builtin_costs():
            yield from check_cost(c, seed=seed, networks=False)
        with jax.enable_x64(True):
            key = jax.random.key(seed)
            for i, (label, net) in enumerate(cases(seed)):
                yield _measure(label, net, jax.random.fold_in(key, i))
        yield from layer_rows(seed)
        return
    if activation is not None:
        yield from check_activation(activation, cost=cost, seed=seed, networks=cost is None)
    if cost is not None:
        yield from check_cost(cost, activation=activation, seed=seed)


# -- reporting ----------------------------------------------------------------------------------


def format_table(rows: list) -> str:
    """The rows as aligned text tables (σ and cost rows, then networks), with a verdict line."""
    units = [r for r in rows if isinstance(r, Row)]
    nets = [r for r in rows if isinstance(r, NetworkRow)]
    lines: list[str] = []
    if units:
        head = ("subject", "compared", "rel. error", "worst at", "")
        body = [
            (r.subject, r.test, f"{r.error:.1e}", r.where, "ok" if r.ok else "FAIL") for r in units
        ]
        lines += [*_aligned(head, body), ""]
    if nets:
        head = ("network", "sizes", "backprop", "vmap", "batch", "eq.35", "eq.53", "fin.diff")
        head += ("worst at", "")
        body = [
            (
                r.case,
                str(r.sizes),
                *(f"{v:.1e}" for v in (r.backprop, r.vmap, r.batch, r.eq35, r.eq53)),
                f"{r.finite_difference:.1e}",
                r.where,
                "ok" if r.ok else "FAIL",
            )
            for r in nets
        ]
        lines += _aligned(head, body)
    failed = [r for r in rows if not r.ok]
    verdict = (
        "all agree"
        if not failed
        else f"{len(failed)} of {len(rows)} rows FAIL; first: {failed[0].case} at {failed[0].where}"
    )
    lines.append(
        f"max relative error vs jax.grad (float64) must be < {AUTODIFF_TOLERANCE:g}, "
        f"vs central differences < {FD_TOLERANCE:g}: {verdict}"
    )
    return "\n".join(lines)


def _aligned(head: tuple, body: list[tuple]) -> list[str]:
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *body)
    ]


def to_json(rows: list) -> str:
    """The rows as a JSON document with the tolerances and the verdict."""

    def record(r):
        kind = "network" if isinstance(r, NetworkRow) else "unit"
        return {"kind": kind, **dataclasses.asdict(r), "error": r.error, "ok": r.ok}

    return json.dumps(
        {
            "autodiff_tolerance": AUTODIFF_TOLERANCE,
            "finite_difference_tolerance": FD_TOLERANCE,
            "ok": all(r.ok for r in rows),
            "rows": [record(r) for r in rows],
        },
        indent=2,
    )
