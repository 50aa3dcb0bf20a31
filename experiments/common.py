"""Plumbing shared by the experiment scripts: arguments, where results go, atomic writes, seeded
runs, and the small numeric helpers several scripts use (random pools, relative errors, MNIST).

Every experiment is a module `experiments/NAME.py` with settings at the top and

    def run(quick: bool = False, data_dir: str | None = None) -> dict   # the measured figures
    def main(argv=None) -> dict                                         # the command line

`python -m experiments.NAME [--quick] [--out DIR] [--data-dir DIR]` runs it and writes
`DIR/NAME.json` (and `DIR/NAME.png` where a plot says more than numbers); DIR defaults to
`experiments/results/`. `--quick` is the seconds-long version the test suite runs.
"""

import argparse
import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnbackprop import config as fconfig
from fnbackprop._io import atomic_file, write_text_atomic
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.runs import run_training
from fnbackprop.training import DivergenceError

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parent / "configs"


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


# -- training runs over several seeds --------------------------------------------------------------


def load_config(name: str, **changes) -> fconfig.Config:
    """`experiments/configs/NAME.toml`, with `changes` as `section={key: value}` replacements."""
    return replace(fconfig.load(CONFIGS / f"{name}.toml"), **changes)


def replace(config: fconfig.Config, **changes) -> fconfig.Config:
    """`config` with `section={key: value}` replacements, e.g. `training={"seed": 1}`."""
    for section, values in changes.items():
        updated = dataclasses.replace(getattr(config, section), **values)
        config = dataclasses.replace(config, **{section: updated})
    return config


def train_seeds(config, seeds, data_dir=None, *, label: str = "", echo: bool = True) -> dict:
    """Train `config` once per seed; per-run curves, best and final epochs, and the summary."""
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        say = functools.partial(_echo, f"{label} seed {seed}:") if echo else None
        diverged = None
        try:
            seeded = replace(config, training={"seed": seed})
            metrics = run_training(seeded, data_dir=data_dir, progress=False, echo=say).metrics
        except DivergenceError as err:  # reported, not fatal: the table says which diverged
            metrics, diverged = [], str(err)
        runs.append(run_record(seed, metrics, time.perf_counter() - start, diverged))
    return {"runs": runs, **summarize(runs)}


def _echo(prefix: str, line: str) -> None:
    print(prefix, line, flush=True)


def run_record(seed: int, metrics: list[dict], seconds: float, diverged: str | None) -> dict:
    test = [m["test_accuracy"] for m in metrics]
    validation = [m["validation_accuracy"] for m in metrics]
    record = {
        "seed": seed,
        "seconds": seconds,  # wall time of the whole run: data, compilation, epochs, evaluation
        "epoch_seconds": [m["seconds"] for m in metrics],
        "test_accuracy": test,
        "validation_accuracy": validation,
        "test_correct": [m["test_correct"] for m in metrics],
        "diverged": diverged,
    }
    if test:
        best = int(np.argmax(test))
        record |= {
            "best_epoch": best,
            "best_test": test[best],
            "final_test": test[-1],
            "best_validation": max(validation),
            "final_validation": validation[-1],
        }
    return record


def summarize(runs: list[dict]) -> dict:
    """Best of the seeds, mean and median over seeds of each figure, mean wall time per run."""
    done = [r for r in runs if "best_test" in r]
    summary: dict = {"seconds_per_run": float(np.mean([r["seconds"] for r in runs]))}
    for key in ("best_test", "final_test", "best_validation", "final_validation"):
        values = [r[key] for r in done]
        summary[f"{key}_max"] = max(values) if values else None
        summary[f"{key}_mean"] = float(np.mean(values)) if values else None
        summary[f"{key}_median"] = float(np.median(values)) if values else None
    return summary


# -- numbers shared by the gradient experiments ------------------------------------------------

POOL_SIZE = 2**17  # random numbers are cut from one draw of this many


def normal_pool(key, n: int) -> np.ndarray:
    """At least n N(0, 1) numbers in float64, from one draw.

    The shape is fixed for small n, so the draw compiles once per process whichever script asks.
    """
    with jax.enable_x64(True):
        return np.asarray(jax.random.normal(key, (max(n, POOL_SIZE),), jnp.float64))


def relative_error(grads, reference) -> float:
    """max |g − r| / max |r| over every leaf, in float64 numpy (nothing to compile)."""
    g, r = (
        np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in jax.tree.leaves(t)])
        for t in (grads, reference)
    )
    return float(np.max(np.abs(g - r)) / np.max(np.abs(r)))


def mnist_arrays(data_dir, n_train: int, n_validation: int, n_out: int = 10) -> tuple:
    """(X, Y, X_val, labels_val): the first n_train training images with one-hot labels and the
    first n_validation validation images with their labels, as JAX arrays."""
    splits = load_dataset("mnist", data_dir, progress=False)
    return (
        jnp.asarray(splits.train.images[:n_train]),
        jnp.asarray(one_hot(splits.train.labels[:n_train], n_out)),
        jnp.asarray(splits.validation.images[:n_validation]),
        jnp.asarray(splits.validation.labels[:n_validation]),
    )


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
