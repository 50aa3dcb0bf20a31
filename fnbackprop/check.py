"""`fnbackprop check`: every form of backprop against jax.grad and finite differences, in float64.

For every activation × cost (the output activation is the hidden one where the cost's domain
allows it, else the cost's natural output), every other output activation a cost accepts, a net
with one modified neuron and an all-linear net, on a random small network, it measures the
relative error of `backprop`, `backprop_vmap`, `backprop_batch`, the alternate presentation
(eqs. 33–35) and the sum over paths (eq. 53) against `autodiff_grad`, and of `backprop` against
central finite differences (eq. 46).
"""

import dataclasses
import json
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import activations, costs
from .backprop import backprop, backprop_batch, backprop_vmap
from .network import Network
from .references import (
    alternate_presentation_grad,
    autodiff_grad,
    autodiff_grad_batch,
    finite_difference_grad,
    path_sum_grad,
)

__all__ = ["AUTODIFF_TOLERANCE", "FD_TOLERANCE", "cases", "relative_error", "run_check"]

#: Agreement required with jax.grad in float64, and with central differences.
AUTODIFF_TOLERANCE = 1e-9
FD_TOLERANCE = 1e-6


def relative_error(grads, reference) -> float:
    """max |g − r| / max |r| over every weight and bias (0 when both are exactly zero)."""
    g, _ = ravel_pytree(grads)
    r, _ = ravel_pytree(reference)
    scale = max(float(jnp.max(jnp.abs(r))), float(np.finfo(np.float64).tiny))
    return float(jnp.max(jnp.abs(g - r))) / scale


def cases(seed: int = 0) -> Iterator[tuple[str, Network]]:
    """(label, network) for every case the check covers.

    One random architecture, input and two hidden layers and output of 2–5 neurons each, drawn
    from `seed`, serves every case, so the compiled kernels are shared and the check stays fast.
    """
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(2, 6, size=4)]
    covered = set()
    for c in costs.names():
        cost = costs.get(c)
        for a in activations.names():
            out = a if cost.accepts(activations.get(a)) else cost.output_activations[0]
            covered.add((a, out, c))
            yield f"{a} → {out}, {c}", Network(sizes, [a, a, out], c)
    # every other output activation a cost accepts, behind sigmoid hidden layers
    for c in costs.names():
        for out in costs.get(c).output_activations or ():
            if ("sigmoid", out, c) not in covered:
                yield f"sigmoid → {out}, {c}", Network(sizes, ["sigmoid", "sigmoid", out], c)
    j = int(rng.integers(0, sizes[2]))
    modified = activations.neuronwise("sigmoid", {j: "tanh"})
    yield f"modified neuron {j} (tanh)", Network(sizes, ["sigmoid", modified, "sigmoid"])
    yield "all linear", Network(sizes, "linear")


@dataclasses.dataclass
class Row:
    case: str
    sizes: list[int]
    backprop: float
    vmap: float
    batch: float
    eq35: float
    eq53: float
    finite_difference: float

    @property
    def ok(self) -> bool:
        """Every error under its tolerance (a NaN error is not under anything)."""
        exact = (self.backprop, self.vmap, self.batch, self.eq35, self.eq53)
        return all(e < AUTODIFF_TOLERANCE for e in exact) and self.finite_difference < FD_TOLERANCE


def _measure(label: str, net: Network, key) -> Row:
    kp, kx, ky = jax.random.split(key, 3)
    # scaled weights keep the outputs out of saturation, where C is flat to within rounding and
    # finite differences measure nothing but cancellation
    params = net.init(kp, scheme="scaled", dtype=jnp.float64)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X = jax.random.normal(kx, (5, n_in), jnp.float64)
    Y = jax.nn.one_hot(jax.random.randint(ky, (5,), 0, n_out), n_out, dtype=jnp.float64)
    x, y = X[0], Y[0]
    reference = autodiff_grad(net, params, x, y)
    batch_reference = autodiff_grad_batch(net, params, X, Y)
    mine = backprop(net, params, x, y)
    return Row(
        case=label,
        sizes=list(net.sizes),
        backprop=relative_error(mine, reference),
        vmap=relative_error(backprop_vmap(net, params, X, Y), batch_reference),
        batch=relative_error(backprop_batch(net, params, X, Y), batch_reference),
        eq35=relative_error(alternate_presentation_grad(net, params, x, y), reference),
        eq53=relative_error(path_sum_grad(net, params, x, y), reference),
        finite_difference=relative_error(
            mine, finite_difference_grad(net, params, x, y, central=True)
        ),
    )


def run_check(seed: int = 0) -> Iterator[Row]:
    """Measure every case in float64, yielding one row at a time (x64 is on only inside)."""
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        for i, (label, net) in enumerate(cases(seed)):
            yield _measure(label, net, jax.random.fold_in(key, i))


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table, with a verdict line."""
    head = ("case", "sizes", "backprop", "vmap", "batch", "eq.35", "eq.53", "fin.diff", "")
    body = [
        (
            r.case,
            str(r.sizes),
            *(f"{v:.1e}" for v in (r.backprop, r.vmap, r.batch, r.eq35, r.eq53)),
            f"{r.finite_difference:.1e}",
            "ok" if r.ok else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in (head, *body)
    ]
    failed = sum(not r.ok for r in rows)
    lines.append(
        f"max relative error vs jax.grad (float64) must be < {AUTODIFF_TOLERANCE:g}, "
        f"vs central differences < {FD_TOLERANCE:g}: "
        + ("all agree" if not failed else f"{failed} of {len(rows)} cases FAIL")
    )
    return "\n".join(lines)


def to_json(rows: list[Row]) -> str:
    """The rows as a JSON document with the tolerances and the verdict."""
    return json.dumps(
        {
            "autodiff_tolerance": AUTODIFF_TOLERANCE,
            "finite_difference_tolerance": FD_TOLERANCE,
            "ok": all(r.ok for r in rows),
            "rows": [dataclasses.asdict(r) | {"ok": r.ok} for r in rows],
        },
        indent=2,
    )
