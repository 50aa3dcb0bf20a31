"""Plumbing shared by the experiment scripts: arguments, where results go, atomic writes.

Every experiment is a module `experiments/NAME.py` with settings at the top and

    def run(quick: bool = False, data_dir: str | None = None) -> dict   # the measured figures
    def main(argv=None) -> dict                                         # the command line

`python -m experiments.NAME [--quick] [--out DIR] [--data-dir DIR]` runs it and writes
`DIR/NAME.json` (and `DIR/NAME.png` where a plot says more than numbers); DIR defaults to
`experiments/results/`. `--quick` is the seconds-long version the test suite runs.
"""

import argparse
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnbackprop._io import atomic_file, write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small version that runs in seconds")
    parser.add_argument("--out", default=str(RESULTS), help="where to write NAME.json / NAME.png")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $FNBACKPROP_DATA)")
    return parser.parse_args(argv)


def save_json(out_dir: "str | os.PathLike", name: str, results: dict) -> Path:
    """Write `results` as `out_dir/name.json`, atomically; NaN and inf become null."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    write_text_atomic(path, json.dumps(_plain(results), indent=2) + "\n")
    return path


def save_figure(fig, out_dir: "str | os.PathLike", name: str) -> Path:
    """Write a matplotlib figure as `out_dir/name.png`, atomically, and close it."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cli(name: str, description: str, run: Callable[..., dict], argv=None, plot=None) -> dict:
    """Parse the arguments, run, save `name.json` (and the plot, if `plot(results)` gives one)."""
    args = parse_args(description, argv)
    results = run(quick=args.quick, data_dir=args.data_dir)
    save_json(args.out, name, results)
    if plot is not None:
        fig = plot(results)
        if fig is not None:
            save_figure(fig, args.out, name)
    return results


def _plain(value: Any) -> Any:
    """JSON-safe: numpy and JAX scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
