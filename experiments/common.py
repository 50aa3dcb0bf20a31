"""Plumbing shared by the experiment scripts: arguments, where results go, provenance, atomic
writes, seeded runs, and the small numeric helpers several scripts use (random pools, relative
errors, MNIST).

Every experiment is a module `experiments/NAME.py` with settings at the top and

    def run(quick: bool = False, data_dir: str | None = None) -> dict   # the measured figures
    def main(argv=None) -> dict                                         # the command line

`python -m experiments.NAME [--quick] [--out DIR] [--data-dir DIR]` runs it and writes
`DIR/NAME.json` (and `DIR/NAME.png` where a plot says more than numbers). The full run's DIR
defaults to `experiments/results/`; `--quick`, the seconds-long version the test suite runs,
writes to `runs/experiments-quick/` unless told otherwise, and is refused inside
`experiments/results/`, so that a quick run never overwrites a full result.

Every JSON carries a `provenance` record (`provenance()`): the commit and whether the tree had
uncommitted changes, the versions of Python and the libraries, the devices, the date, the command
that reproduces the file, `quick`, the seeds and the wall time; and what the results test checks
the result against: the numerics fingerprint (`experiments.fingerprint`, full runs only), the
SHA-256 of the experiment's own sources (`sources`: its script, the experiment modules it
imports, the configs it names) and of the MNIST files it read (`data`).
"""

import argparse
import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import fnbackprop
from fnbackprop import config as fconfig
from fnbackprop import sweeps
from fnbackprop._io import atomic_file, write_text_atomic
from fnbackprop.check import relative_error as relative_error  # the scripts' max|g − r|/max|r|
from fnbackprop.config import build_network
from fnbackprop.data import load_dataset, one_hot

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
QUICK_RESULTS = REPO / "runs" / "experiments-quick"
CONFIGS = REPO / "experiments" / "configs"

#: Changes under these folders do not make the tree dirty: results, the ladder's run folders
#: (committed so that long runs resume in another session) and scratch runs.
NOT_CODE = ("experiments/results/", "experiments/runs/", "runs/")
#: The libraries whose versions every result records (distribution names).
LIBRARIES = ("jax", "jaxlib", "optax", "equinox", "numpy")
#: What a complete provenance record holds (the results test checks every committed file).
PROVENANCE_KEYS = (
    "commit",
    "dirty",
    "dirty_paths",
    "git",
    "versions",
    "device",
    "date",
    "command",
    "argv",
    "quick",
    "seeds",
    "wall_seconds",
    "fingerprint",
    "sources",
    "data",
)


def parse_args(description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small version that runs in seconds")
    parser.add_argument(
        "--out",
        default=None,
        help=f"where to write NAME.json / NAME.png (default: {RESULTS.relative_to(REPO)}/, "
        f"with --quick {QUICK_RESULTS.relative_to(REPO)}/)",
    )
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $FNBACKPROP_DATA)")
    return parser.parse_args(argv)


def output_folder(out: "str | os.PathLike | None", quick: bool) -> Path:
    """Where a run writes: `out`, else the results folder (full) or the quick folder.

    A quick run inside `experiments/results/` is refused with one line and exit code 2.
    """
    if out is None:
        return QUICK_RESULTS if quick else RESULTS
    path = Path(out).resolve()
    if quick and _inside_results(path):
        print(
            f"refused: --quick writes no results into {RESULTS} (those are full runs only); "
            "leave out --out, or give another folder",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return path


def _inside_results(path: "str | os.PathLike") -> bool:
    path = Path(path).resolve()
    return path == RESULTS or RESULTS in path.parents


# -- provenance ----------------------------------------------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
    return done.stdout


def git_state() -> dict:
    """The commit, and the uncommitted changes outside `NOT_CODE`, or why git could not say."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        lines = _git("status", "--porcelain", "--untracked-files=all").splitlines()
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        reason = str(err) or type(err).__name__
        return {"commit": None, "dirty": None, "dirty_paths": None, "git": f"unavailable: {reason}"}
    paths = []
    for line in lines:
        for path in line[3:].split(" -> "):  # a rename names both paths
            path = path.strip().strip('"')
            if not path.startswith(NOT_CODE):
                paths.append(path)
    paths = sorted(set(paths))
    return {"commit": commit, "dirty": bool(paths), "dirty_paths": paths, "git": "ok"}


def versions(extra: tuple[str, ...] = ()) -> dict:
    """Python, fnbackprop and the libraries' versions (None for one not installed)."""
    found = {"python": platform.python_version(), "fnbackprop": fnbackprop.__version__}
    for name in (*LIBRARIES, *extra):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def device() -> dict:
    """The default backend, its devices' kind and count, and the host's CPU count."""
    devices = jax.devices()
    return {
        "platform": jax.default_backend(),
        "kind": devices[0].device_kind,
        "count": len(devices),
        "cpu_count": os.cpu_count(),
    }


def command(name: str, quick: bool) -> str:
    """The command that writes this result again (its folder and data aside)."""
    return f"python -m experiments.{name}" + (" --quick" if quick else "")


def provenance(
    name: str,
    *,
    quick: bool,
    seeds: Any,
    wall_seconds: float | None,
    argv: list[str] | None = None,
    extra_versions: tuple[str, ...] = (),
    data_dir: "str | os.PathLike | None" = None,
) -> dict:
    """The record every results JSON carries: what ran, on which code, where, when and how long.

    `dirty` is whether `git status --porcelain` shows changes outside `NOT_CODE`, and
    `dirty_paths` lists them; where git cannot answer, `commit` and `dirty` are None and `git`
    says why. `fingerprint` is `experiments.fingerprint.compute()` for a full run (None for a
    quick one: it takes seconds, and quick results are never checked against it), `sources` the
    hashes of `sources(name)`, `data` those of the MNIST files in `data_dir` (None where absent).
    """
    from experiments import fingerprint

    return {
        **git_state(),
        "versions": versions(extra_versions),
        "device": device(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command(name, quick),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "quick": quick,
        "seeds": seeds,
        "wall_seconds": wall_seconds,
        "fingerprint": None if quick else fingerprint.compute(),
        "sources": sources(name),
        "data": data_hashes(data_dir),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sources(name: str) -> dict[str, str]:
    """{path from the repository root: SHA-256} of what is the experiment's own: its script
    `experiments/NAME.py`, every experiment module it imports (in turn, their imports), and every
    config in `experiments/configs/` whose name its sources mention. The package and this module
    are not among them: the numerics fingerprint stands for those."""
    shared = {"common", "fingerprint"}
    found: dict[str, str] = {}
    todo = [name]
    while todo:
        module = todo.pop()
        path = REPO / "experiments" / f"{module}.py"
        key = str(path.relative_to(REPO))
        if key in found or not path.is_file():
            continue
        text = path.read_text()
        found[key] = _sha256(path)
        imported = re.findall(r"^\s*from experiments(?:\.(\w+))? import ([\w, ]+)", text, re.M)
        for dotted, names in imported:
            candidates = [dotted] if dotted else [n.strip() for n in names.split(",")]
            todo += [c for c in candidates if c and c not in shared]
        for config in sorted(CONFIGS.glob("*.toml")):
            if re.search(rf"[\"'/]{re.escape(config.stem)}(\.toml)?[\"']", text):
                found[str(config.relative_to(REPO))] = _sha256(config)
    return dict(sorted(found.items()))


def data_hashes(data_dir: "str | os.PathLike | None" = None) -> dict[str, str] | None:
    """{file name: SHA-256} of the MNIST files in `data_dir` (else where fnbackprop looks for
    them), or None when they are not all there."""
    from fnbackprop.data import FILES, resolve_data_dir

    root = resolve_data_dir(data_dir, "mnist")
    paths = [root / name for name in FILES]
    if not all(path.is_file() for path in paths):
        return None
    return {path.name: _sha256(path) for path in paths}


def save_json(
    out_dir: "str | os.PathLike", name: str, results: dict, *, record: dict | None = None
) -> Path:
    """Write `results` as `out_dir/name.json` with its provenance `record`, atomically; NaN and
    inf become null.

    Without `record` one is built here (seeds and wall time unknown), so no JSON is ever written
    without provenance.
    """
    if record is None:
        quick = bool(results.get("quick", False))
        record = provenance(name, quick=quick, seeds=None, wall_seconds=None)
    out = Path(out_dir)
    if record.get("quick") and _inside_results(out):
        raise ValueError(f"a quick result is never written into {RESULTS}: {name}.json")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    write_text_atomic(path, json.dumps(_plain({**results, "provenance": record}), indent=2) + "\n")
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


def cli(
    name: str,
    description: str,
    run: Callable[..., dict],
    argv=None,
    plot=None,
    *,
    seeds: Any = None,
    extra_versions: tuple[str, ...] = (),
) -> dict:
    """Parse the arguments, run, save `name.json` with its provenance (and the plot, if
    `plot(results)` gives one). `seeds(quick)` (or a plain value) names the seeds the run used.
    """
    args = parse_args(description, argv)
    out = output_folder(args.out, args.quick)
    start = time.perf_counter()
    results = run(quick=args.quick, data_dir=args.data_dir)
    fig = plot(results) if plot is not None else None
    if fig is not None and args.quick:  # a quick figure must not pass for the full one
        fig.text(
            0.5,
            -0.01,
            f"quick run (--quick): a small version for the tests, not the full settings; "
            f"the full run is {RESULTS.relative_to(REPO)}/{name}.png",
            ha="center",
            va="top",
            color="C3",
        )
    record = provenance(
        name,
        quick=args.quick,
        seeds=seeds(args.quick) if callable(seeds) else seeds,
        wall_seconds=time.perf_counter() - start,
        argv=sys.argv[1:] if argv is None else list(argv),
        extra_versions=extra_versions,
        data_dir=args.data_dir,
    )
    path = save_json(out, name, results, record=record)
    if fig is not None:
        save_figure(fig, out, name)
    print(f"{name}: wrote {path}" + (" and its .png" if fig is not None else ""), flush=True)
    return {**results, "provenance": record}


def results_fingerprint(folder: "str | os.PathLike" = RESULTS) -> dict[str, str]:
    """{file name: SHA-256} of every file in `folder`: compare two to see whether it changed."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(folder).iterdir())
        if path.is_file()
    }


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


def train_seeds(
    config,
    seeds,
    data_dir=None,
    *,
    label: str = "",
    echo: bool = True,
    measure: Callable[..., dict] | None = None,
) -> dict:
    """Train `config` once per seed, as one sweep (`fnbackprop.sweeps`: one process, the data
    loaded and the epoch compiled once); per-run curves, best and final epochs, and the summary.

    `measure(net, params)`, if given, adds its figures of the trained network to each run's record.
    """
    sweep = sweeps.grid(config, {"training.seed": list(seeds)})
    say = functools.partial(_echo, f"{label}:") if echo else None
    result = sweeps.run_sweep(sweep, data_dir=data_dir, progress=False, echo=say, label=label)
    runs = []
    for run in result.runs.values():
        seed = run.values["training.seed"]
        extra = {}
        if measure is not None and run.params is not None and run.diverged is None:
            extra = measure(build_network(run.config), run.params)
        runs.append(run_record(seed, run.metrics, run.seconds, run.diverged) | extra)
    compiled = result.summary.get("epoch_programs_compiled")
    return {"runs": runs, "epoch_programs_compiled": compiled, **summarize(runs)}


def _echo(prefix: str, line: str) -> None:
    print(prefix, line, flush=True)


#: The experiments' names for the figures of `fnbackprop.sweeps.run_figures`.
RUN_FIGURES = {
    "best_epoch": "best_test_epoch",
    "best_test": "best_test_accuracy",
    "final_test": "final_test_accuracy",
    "best_validation": "best_validation_accuracy",
    "final_validation": "final_validation_accuracy",
}


def run_record(seed: int, metrics: list[dict], seconds: float, diverged: str | None) -> dict:
    """One run's record: its accuracies per epoch and, after an epoch, its best and final
    figures (`fnbackprop.sweeps.run_figures`, named as in `RUN_FIGURES`)."""
    figures = sweeps.run_figures(metrics)
    record = {
        "seed": seed,
        "seconds": seconds,  # wall time of the whole run: data, compilation, epochs, evaluation
        "epoch_seconds": [m["seconds"] for m in metrics],
        "test_accuracy": [m["test_accuracy"] for m in metrics],
        "validation_accuracy": [m["validation_accuracy"] for m in metrics],
        "test_correct": [m["test_correct"] for m in metrics],
        "diverged": diverged,
    }
    if figures:
        record |= {name: figures[key] for name, key in RUN_FIGURES.items()}
    return record


def summarize(runs: list[dict]) -> dict:
    """Best of the seeds, mean and median over seeds of each figure
    (`fnbackprop.sweeps.over_seeds`), mean wall time per run."""
    done = [r for r in runs if "best_test" in r]
    summary: dict = {"seconds_per_run": float(np.mean([r["seconds"] for r in runs]))}
    for key in ("best_test", "final_test", "best_validation", "final_validation"):
        figures = sweeps.over_seeds([r[key] for r in done])
        summary |= {f"{key}_{name}": value for name, value in figures.items()}
    return summary


# -- numbers shared by the gradient experiments ------------------------------------------------

POOL_SIZE = 2**17  # random numbers are cut from one draw of this many


def normal_pool(key, n: int) -> np.ndarray:
    """At least n N(0, 1) numbers in float64, from one draw.

    The shape is fixed for small n, so the draw compiles once per process whichever script asks.
    """
    with jax.enable_x64(True):
        return np.asarray(jax.random.normal(key, (max(n, POOL_SIZE),), jnp.float64))


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
