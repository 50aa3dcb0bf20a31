"""The suite's rows as markdown tables, and the issue's bars checked against them."""

import json
import sys
from pathlib import Path

from fnbackprop._io import write_text_atomic

from . import sharding
from .tables import markdown_table

#: (description, the backprop epoch row's field, mini-batch, the bar, True if the bar is a maximum)
BARS = (
    ("hand-written backprop / jax.grad epoch", "vs_autodiff", None, 1.0, True),
    ("epoch at mb 10, × FLOP limit", "flop_limit_multiple", 10, 3.0, True),
    ("epoch at mb 1000, × FLOP limit", "flop_limit_multiple", 1000, 1.5, True),
    ("speed-up over the per-example NumPy loop (mb 10)", "speedup_vs_numpy_loop", 10, 25.0, False),
)


def progress(text: str) -> None:
    """One line of progress on stderr, so that stdout holds only the tables."""
    print(f"  … {text}", file=sys.stderr, flush=True)


def write_rows(path: Path, rows: list[dict]) -> None:
    """The rows as a JSON list at `path` (its folder made if need be), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(rows, indent=1) + "\n")


def _range(r: dict, scale: float = 1.0, digits: int = 3) -> str:
    return f"{r['min_s'] * scale:.{digits}f}–{r['max_s'] * scale:.{digits}f}"


def _opt(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def tables(rows: list[dict]) -> str:
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    parts = []
    for r in by_case.get("peak", []):
        parts.append(
            f"Peak: {r['gflops']:.1f} GFLOP/s (jitted jnp.dot, float32 {r['n']}², median of "
            f"{r['repeats']}, {_range(r)} s); load average {r['load_average']}"
        )
    epochs = by_case.get("epoch", []) + by_case.get("numpy epoch", [])
    if epochs:
        parts.append(_epoch_table(epochs))
    for r in by_case.get("evaluation", []):
        parts.append(
            f"Evaluation after each epoch (validation + test, 20,000 images): "
            f"{r['median_s'] * 1e3:.1f} ms median ({_range(r, 1e3, 1)} ms)"
        )
    for r in by_case.get("epoch part", []):
        parts.append(
            f"Part of every epoch, {r['method']} of {r['examples']:,}: "
            f"{r['median_s'] * 1e3:.1f} ms median ({_range(r, 1e3, 1)} ms), "
            f"{r['of_flop_limit']:.2f} × the epoch's FLOP limit"
        )
    if "gradient" in by_case:
        parts.append(_gradient_table(by_case["gradient"]))
    vjp = by_case.get("vjp gradient", []) + by_case.get("vjp epoch", [])
    if vjp:
        parts.append(_vjp_table(vjp))
    for r in by_case.get("chapter-1 run", []):
        parts.append(
            f"Chapter-1 run (`fnbackprop train chapter1.toml --quiet` {' '.join(r['overrides'])}): "
            f"{r['median_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['epochs']} epochs, first "
            f"{r['first_epoch_s']:.2f} s (compiles), then {r['epoch_median_s']:.3f} s median "
            f"each (evaluation included); peak RSS {r['max_rss_mb']:.0f} MB; best test accuracy "
            f"{100 * r['best_test_accuracy']:.2f} %; load average {r['load_average']}"
        )
    if "one-CPU epoch" in by_case:
        parts.append(_one_cpu_table(by_case["one-CPU epoch"]))
    if "sharded epoch" in by_case:
        parts.append(sharding.format_table(by_case["sharded epoch"]))
    return "\n\n".join(parts)


def _epoch_table(rows: list[dict]) -> str:
    columns = (
        "epoch of [784, 30, 10]", "mini-batch:", "median s:", "min–max s:", "CPU s:",
        "examples/s:", "× FLOP limit:", "/ jax.grad:", "× faster than NumPy loop:",
        "× faster than NumPy matrix:",
    )  # fmt: skip
    cells = []
    for r in rows:
        name = r["method"] if r["case"] == "epoch" else f"NumPy {r['method']}"
        if r.get("note"):
            name += f" ({r['note']})"
        cells.append(
            (
                name,
                r["mini_batch"],
                f"{r['median_s']:.3f}",
                _range(r),
                f"{r['cpu_s']:.3f}",
                f"{r['examples_per_s']:,.0f}",
                f"{r['flop_limit_multiple']:.2f}",
                _opt(r.get("vs_autodiff"), ".2f"),
                _opt(r.get("speedup_vs_numpy_loop"), ".0f"),
                _opt(r.get("speedup_vs_numpy_matrix"), ".1f"),
            )
        )
    return markdown_table(columns, cells)


def _gradient_table(rows: list[dict]) -> str:
    columns = (
        "one mini-batch gradient", "sizes", "mini-batch:", "median µs:", "min–max µs:",
        "× FLOP limit:", "/ jax.grad:",
    )  # fmt: skip
    cells = [
        (
            r["method"],
            r["sizes"],
            r["mini_batch"],
            f"{r['median_s'] * 1e6:.1f}",
            _range(r, 1e6, 1),
            f"{r['flop_limit_multiple']:.2f}",
            f"{r['vs_autodiff']:.2f}",
        )
        for r in rows
    ]
    return markdown_table(columns, cells)


#: how the `vjp gradient` and `vjp epoch` rows' methods compute the gradient
VJP_LABELS = {
    "backprop_vjp": "jax.grad(cost_with_backprop(net)): BP1–BP4 as JAX's rule",
    "autodiff": "jax.grad(cost): JAX differentiates the forward pass",
}


def _vjp_table(rows: list[dict]) -> str:
    columns = (
        "[784, 30, 10], the hand-written pass inside jax.grad", "what", "mini-batch:",
        "median ms:", "min–max ms:", "× FLOP limit:", "/ jax.grad(cost):",
    )  # fmt: skip
    cells = [
        (
            VJP_LABELS.get(r["method"], r["method"]),
            "one mini-batch gradient" if r["case"] == "vjp gradient" else "one SGD epoch",
            r["mini_batch"],
            f"{r['median_s'] * 1e3:.3f}",
            _range(r, 1e3),
            f"{r['flop_limit_multiple']:.2f}",
            f"{r['vs_autodiff']:.2f}",
        )
        for r in rows
    ]
    return markdown_table(columns, cells)


def _one_cpu_table(rows: list[dict]) -> str:
    columns = (
        "chapter-1 epoch (backprop) in a worker", "mini-batch:", "CPUs:", "median s:",
        "min–max s:", "/ every CPU:",
    )  # fmt: skip
    cells = [
        (
            "restricted to one CPU" if r["cpus"] == 1 else "every CPU",
            r["mini_batch"],
            r["cpus"],
            f"{r['median_s']:.3f}",
            _range(r),
            f"{r['vs_every_cpu']:.2f}",
        )
        for r in rows
    ]
    return markdown_table(columns, cells)


def bars(rows: list[dict]) -> list[str]:
    """One line per bar: the measured ratio, the bar, met or not."""
    epochs = {
        r["mini_batch"]: r for r in rows if r["case"] == "epoch" and r["method"] == "backprop"
    }
    lines = []
    for text, field, m, bar, is_max in BARS:
        for size in sorted(epochs) if m is None else [m]:
            if size not in epochs or field not in epochs[size]:
                continue
            value = epochs[size][field]
            met = value <= bar if is_max else value >= bar
            where = f" (mb {size})" if m is None else ""
            sign = "≤" if is_max else "≥"
            verdict = "met" if met else "NOT met"
            lines.append(f"{text}{where}: {value:.2f} (bar {sign} {bar:g}): {verdict}")
    return lines
