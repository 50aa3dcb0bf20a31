"""Sweeps: every combination of some config values, trained in one process, compiled once.

A `[sweep]` table naming any key by its dotted path, or a list where a number is expected, makes
a sweep (`fnbackprop.config.load_sweep`):

    fnbackprop train experiments/configs/chapter1.toml --set 'training.seed=[0,1,2]' --out OUT
    fnbackprop train experiments/configs/chapter1.toml --set 'training.eta=[0.1,0.5,3.0]' \\
        --set 'training.seed=[0,1]' --out OUT          # the product: 6 runs
    fnbackprop train experiments/configs/chapter1.toml --out OUT \\
        --set 'sweep.network.activation=["sigmoid","tanh"]'   # any key: one compile per σ

`run_sweep` trains the runs in this process. They share the data (loaded once) and the compiled
epoch: η, λ, λ₁, the momentum and the dropout probability are inputs of the compiled program
(`fnbackprop.training`), so a sweep over any of them, or over seeds, compiles the epoch once
(`summary.json` records how many programs were compiled). Two ways to run them, chosen by
measurement (benchmarks/README.md, "Sweeps"; 2-core CPU, chapter-1 epoch):

- one after another (`strategy="sequential"`): 2.3–3.0 × faster than K separate `fnbackprop
  train` processes at K = 4, 5.5–5.8 × at K = 16 (no start-up, data or compiling per run);
- as one vmapped program (`strategy="vmap"`): runs that differ only in η, λ, λ₁, the momentum or
  the dropout probability (the same seed, so the same initial weights and mini-batch order) train
  as one program whose first-layer products stack into one larger product: per run-epoch
  1.35 × faster than in sequence at K = 8, 1.43 × at K = 16, no gain at K = 4 (0.86–1.04 ×).
  Each run gets what it gets alone up to float rounding. (Runs of different seeds would have to
  share one mini-batch order, which changes them, or keep their own, which is slower:
  0.75–0.89 ×.)

`strategy="auto"` (the default, and the command's) vmaps every group of at least
`VMAP_MIN_RUNS` = 8 such runs and runs everything else in sequence; a resumed sweep runs in
sequence.

What a sweep leaves in OUT:

- `OUT/<name>/`, one normal run folder per run (`seed=0`, `eta=0.1,seed=2`,
  `activation=tanh`): its config with plain values, metrics, checkpoints and curve —
  `fnbackprop evaluate OUT/seed=0` and `--resume OUT/seed=0` work on it as on any run;
- `OUT/sweep.toml`: the config with its swept keys in `[sweep]`, from which `--resume OUT`
  continues the sweep;
- `OUT/summary.json`: the axes, each run's best and final accuracies, and for a sweep over seeds
  the book's line ("best of 3: 95.42 %") with the median and the runs that stalled, per
  combination of the other values; written after every run;
- `OUT/sweep.png`: every run's test accuracy and cost per epoch.

From Python, `run_sweep` takes a `Sweep` (`load_sweep`, `grid`), a dict of named configs, or a
list of configs, and returns every run's metrics:

    from fnbackprop import config, sweeps
    base = config.load("experiments/configs/chapter1.toml")
    result = sweeps.run_sweep(sweeps.grid(base, {"training.seed": [0, 1, 2]}))
    result.summary["book_lines"]          # ['best of 3: 95.21 % (median …)']
    result.runs["seed=1"].metrics         # the per-epoch metrics of one run
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import statistics
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import optimizers, training
from . import runs as _runs
from ._io import atomic_file, write_text_atomic
from .config import Config, Sweep, dumps, expand, lookup, run_name
from .errors import FnbackpropError
from .training import DivergenceError, epoch_compiles

__all__ = [
    "STALLED_BELOW",
    "SUMMARY",
    "SWEEP_CONFIG",
    "SWEEP_PLOT",
    "SweepResult",
    "SweepRun",
    "as_sweep",
    "book_lines",
    "grid",
    "over_seeds",
    "run_figures",
    "run_sweep",
    "summarize",
]

SUMMARY, SWEEP_CONFIG, SWEEP_PLOT = "summary.json", "sweep.toml", "sweep.png"
STRATEGIES = ("auto", "sequential", "vmap")
#: `strategy="auto"` vmaps groups of at least this many runs (below it, in sequence is faster)
VMAP_MIN_RUNS = 8
#: The values in which the runs of one vmapped group may differ: held in each run's optimizer
#: state, or (dropout) an argument of the epoch.
VALUE_KEYS = ("eta", "lmbda", "l1", "momentum", "dropout")
#: A run whose best test accuracy stays below this stalled (chapter 1: saturated outputs).
STALLED_BELOW = 0.90
SEED = "training.seed"


class SweepRun(NamedTuple):
    """One run of a sweep: its name, swept values, config, folder, per-epoch metrics, wall time,
    if it diverged, why (its metrics then end at its last good epoch), and its final parameters
    (None for a diverged one; `build_network(config)` is its network)."""

    name: str
    values: dict[str, Any]
    config: Config
    folder: Path | None
    metrics: list[dict]
    seconds: float
    diverged: str | None = None
    params: Any = None


class SweepResult(NamedTuple):
    axes: dict[str, list]
    runs: dict[str, SweepRun]
    summary: dict
    folder: Path | None


def grid(config: Config, axes: Mapping[str, Sequence]) -> Sweep:
    """The sweep of `config` over `axes` (`"training.seed": [0, 1, 2]`, …): every combination."""
    if not axes:
        return Sweep({}, {"": config})
    text = dumps(config, {k: list(v) for k, v in axes.items()})
    return expand(tomllib.loads(text), source="grid")


def as_sweep(spec: "Sweep | Config | Mapping[str, Config] | Sequence[Config]") -> Sweep:
    """A `Sweep` from a sweep, one config, named configs, or a list of configs (named by the
    keys in which they differ)."""
    if isinstance(spec, Sweep):
        return spec
    if isinstance(spec, Config):
        return Sweep({}, {"": spec})
    if isinstance(spec, Mapping):
        configs = dict(spec)
        return Sweep(_differences(list(configs.values())), configs)
    configs = list(spec)
    if not configs or not all(isinstance(c, Config) for c in configs):
        raise FnbackpropError("a sweep is a Sweep, a Config, or a non-empty list of Configs")
    axes = _differences(configs)
    names: dict[str, Config] = {}
    for i, c in enumerate(configs):
        name = run_name({k: lookup(c, k) for k in axes}) or f"run-{i}"
        names[name if name not in names else f"{name},run-{i}"] = c
    return Sweep(axes, names)


def _differences(configs: list[Config]) -> dict[str, list]:
    axes: dict[str, list] = {}
    for section in ("network", "training", "data"):
        for field in dataclasses.fields(getattr(configs[0], section)):
            key = f"{section}.{field.name}"
            values = []
            for c in configs:
                v = lookup(c, key)
                if v not in values:
                    values.append(v)
            if len(values) > 1:
                axes[key] = values
    return axes


def _values(sweep: Sweep, config: Config) -> dict[str, Any]:
    return {k: lookup(config, k) for k in sweep.axes}


def run_sweep(
    spec: "Sweep | Config | Mapping[str, Config] | Sequence[Config]",
    out_dir: "str | os.PathLike | None" = None,
    *,
    data_dir: "str | os.PathLike | None" = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
    overwrite: bool = False,
    resume: bool = False,
    label: str = "",
    strategy: str = "auto",
    check: bool = True,
) -> SweepResult:
    """Train every run of a sweep in this process, sharing data and compiled programs; with
    `out_dir`, each in its own folder `out_dir/<name>`, plus the summary and plot.

    `strategy`: "sequential" (one run after another), "vmap" (every group of runs that differ
    only in `VALUE_KEYS` trains as one vmapped program), or "auto" (vmap groups of at least
    `VMAP_MIN_RUNS`, the rest in sequence); see the module doc for the measurements.

    A run that diverges is recorded as such (its folder keeps its last good epoch) and the
    sweep goes on. `overwrite` replaces a sweep (or run) already in `out_dir`; `resume`
    continues it, in sequence: finished runs are kept, interrupted ones resumed, missing ones
    trained. Without either, a folder that holds a sweep (one of its runs saved an epoch) or a
    run is refused.

    Before anything is written, every run's data are loaded and its σ and cost that are not
    built in checked (`fnbackprop.runs.check_plugins`; `check=False`: their shapes only). A sweep
    that fails before any of its runs saved an epoch removes what it wrote.
    """
    if strategy not in STRATEGIES:
        raise FnbackpropError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    sweep = as_sweep(spec)
    out = Path(out_dir) if out_dir is not None else None
    writer = out is not None and jax.process_index() == 0
    before = epoch_compiles()
    start = time.perf_counter()
    done: dict[str, SweepRun] = {}
    created = writer and not out.exists()
    lock = _runs.RunLock(out) if writer else None
    if lock is not None:
        lock.acquire()
    try:
        if writer:
            _refuse_sweep_folder(out, overwrite=overwrite, resume=resume)
        data: dict[tuple, tuple] = {}
        load = functools.partial(_loaded, cache=data, data_dir=data_dir, progress=progress)
        checked: set = set()
        for config in sweep.runs.values():  # before anything is written: plug-ins and data
            _runs.check_plugins(config, full=check, checked=checked)
            load(config)
        if writer:
            _prepare_sweep_folder(out, sweep, overwrite=overwrite, resume=resume)
        groups = _groups(sweep, "sequential" if resume else strategy)
        count = 0
        for names in groups:
            items = [(n, _values(sweep, sweep.runs[n]), sweep.runs[n]) for n in names]
            folders = {n: out / n if out is not None else None for n in names}
            if echo is not None and len(sweep.runs) > 1:
                what = (
                    f"runs {count + 1}–{count + len(names)}"
                    if len(names) > 1
                    else (f"run {count + 1}")
                )
                how = " as one vmapped program" if len(names) > 1 else ""
                echo(f"{what} of {len(sweep.runs)}{how}: {', '.join(names)}")
            count += len(names)
            options = {"echo": echo, "overwrite": overwrite, "label": label}
            if len(names) > 1:
                runs_ = _vmapped_runs(items, folders, load, **options)
            else:
                (name, values, config) = items[0]
                folder = folders[name]
                runs_ = [
                    _one_run(name, values, config, folder, load, data_dir, progress=progress,
                             resume=resume, **options)
                ]  # fmt: skip
            for run in runs_:
                done[run.name] = run
            summary = summarize(sweep.axes, _in_order(sweep, done), before=before)
            summary["seconds"] = time.perf_counter() - start
            if writer:
                write_text_atomic(out / SUMMARY, json.dumps(_plain(summary), indent=1) + "\n")
        done = _in_order(sweep, done)
        if writer and done:
            plot_sweep(list(done.values()), out / SWEEP_PLOT, title=label)
    except BaseException:
        if writer and not resume:
            _discard_unfinished_sweep(out)
        raise
    finally:
        if lock is not None:
            lock.release()
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: a sweep that failed before any run saved an epoch
    summary = summarize(sweep.axes, done, before=before)
    summary["seconds"] = time.perf_counter() - start
    if echo is not None and len(done) > 1:
        for line in summary["book_lines"]:
            echo(line)
        if out is not None:
            echo(f"sweep of {len(done)} runs in {out} (summary.json, sweep.png)")
    return SweepResult(sweep.axes, done, summary, out)


def _in_order(sweep: Sweep, done: Mapping[str, SweepRun]) -> dict[str, SweepRun]:
    return {name: done[name] for name in sweep.runs if name in done}


def _structure(config: Config) -> Config:
    """What runs of one vmapped group share: everything but the values of `VALUE_KEYS`, of which
    only whether L2, L1 and dropout are on (the program's structure) counts."""
    t = config.training
    same = dataclasses.replace(
        t, eta=0.0, momentum=0.0, lmbda=float(t.lmbda > 0), l1=float(t.l1 > 0),
        dropout=float(t.dropout > 0),
    )  # fmt: skip
    return dataclasses.replace(config, training=same)


def _groups(sweep: Sweep, strategy: str) -> list[list[str]]:
    """The runs in the order they run: groups to vmap together, and single runs."""
    if strategy == "sequential":
        return [[name] for name in sweep.runs]
    by_structure: dict[Config, list[str]] = {}
    for name, config in sweep.runs.items():
        by_structure.setdefault(_structure(config), []).append(name)
    smallest = 2 if strategy == "vmap" else VMAP_MIN_RUNS
    groups, placed = [], set()
    for name, config in sweep.runs.items():
        if name in placed:
            continue
        group = by_structure[_structure(config)]
        if len(group) >= smallest and config.training.devices == 1:
            groups.append(group)
            placed.update(group)
        else:
            groups.append([name])
            placed.add(name)
    return groups


def _loaded(config: Config, *, cache: dict, data_dir, progress: bool) -> tuple:
    """The `(train, evaluation)` arrays of `config`, loaded once for all the runs that use the
    same data, dtype and numbers of inputs and outputs (each checked against the data)."""
    sizes = config.network.sizes
    key = (config.data, config.training.dtype, sizes[0], sizes[-1], str(data_dir))
    if key not in cache:
        train, evaluation, _ = _runs.prepare_data(config, data_dir, progress=progress)
        cache[key] = (train, evaluation)
    return cache[key]


def _vmapped_runs(items, folders, load, *, echo, overwrite, label):
    """Runs that differ only in `VALUE_KEYS`, trained as one vmapped program. Each is prepared,
    recorded and written as `run_training` does it (`prepare_run`, `record_epoch`, `save_epoch`,
    `save_curve`): its folder holds the same files. A run that stops early or diverges is frozen
    while the others go on."""
    names = [name for name, _, _ in items]
    configs = [config for _, _, config in items]
    started = [_runs.prepare_run(c, data=load(c)) for c in configs]  # one seed: the same start
    first = started[0]
    net, key_train, train, evaluation = first.net, first.key, first.train, first.evaluation
    options = [run.options for run in started]
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    P = stack([run.state.params for run in started])
    S = stack([run.state.opt_state for run in started])
    p = jnp.asarray([run.dropout for run in options], train[0].dtype)
    o = first.options  # the structure the group shares
    epoch = training.make_vmapped_epoch(
        net, o.optimizer, gradient=o.gradient, mini_batch_size=o.mini_batch_size,
        dropout=training.dropping(o.dropout),
    )  # fmt: skip
    histories: list[list[dict]] = [[] for _ in items]
    active = [True] * len(items)
    diverged: list[str | None] = [None] * len(items)
    started_at = time.perf_counter()
    with contextlib.ExitStack() as held:
        labels = [f"{label} {name}".strip() for name in names]
        for k, (name, config) in enumerate(zip(names, configs, strict=True)):
            if folders[name] is not None:
                claim = _runs.claim_folder(
                    folders[name], config, overwrite=overwrite, label=labels[k]
                )
                labels[k] = held.enter_context(claim)
        for e in range(o.epochs):
            if not any(active):
                break
            tick = time.perf_counter()
            etas = [run.schedule(h)[0] for run, h in zip(options, histories, strict=True)]
            S = optimizers.with_hyperparameters(S, learning_rate=jnp.asarray(etas))
            new_P, new_S = epoch(P, S, jax.random.fold_in(key_train, e), *train, p)
            train_scores = train if options[0].monitor_training else None
            speeds_on = train if options[0].monitor_layer_speed else None
            scores = training.score_many(net, new_P, evaluation, train_scores, speeds_on=speeds_on)
            seconds = (time.perf_counter() - tick) / sum(active)
            keep = list(active)
            for k in (k for k in range(len(items)) if active[k]):
                params_k = jax.tree.map(lambda x, k=k: x[k], new_P)
                state_k = jax.tree.map(lambda x, k=k: x[k], new_S)
                folder = folders[names[k]]
                try:
                    metrics = training.record_epoch(
                        histories[k], options[k], epoch=e, eta=etas[k], scores=scores[k],
                        params=params_k, opt_state=state_k, seconds=seconds,
                        weights=net.weight_mask,
                    )  # fmt: skip
                except DivergenceError as err:
                    err = _runs.last_good(err, folder, histories[k])
                    diverged[k], active[k], keep[k] = str(err), False, False
                    if echo is not None:
                        echo(f"[{names[k]}] diverged: {err}")
                    continue
                if metrics.get("stopped"):
                    active[k] = False
                if folder is not None:
                    state = training.TrainState(params_k, state_k, e + 1)
                    _runs.save_epoch(folder, net, state, key_train, histories[k])
                if echo is not None:
                    echo(f"[{names[k]}] {_runs.book_line(metrics)}")
            P, S = _keep(jnp.asarray(keep), (new_P, new_S), (P, S))
        for k, (name, config) in enumerate(zip(names, configs, strict=True)):
            if folders[name] is not None and histories[k]:
                _runs.save_curve(folders[name], config, histories[k], labels[k])
    seconds = (time.perf_counter() - started_at) / len(items)
    return [
        SweepRun(
            name, values, config, folders[name], history, seconds, why,
            None if why else jax.tree.map(lambda x, k=k: x[k], P),
        )
        for k, ((name, values, config), history, why) in enumerate(
            zip(items, histories, diverged, strict=True)
        )
    ]  # fmt: skip


def _keep(mask, new, old):
    """`new` for the runs where `mask` is true, `old` for the others (stopped or diverged)."""

    def where(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(where, new, old)


def _one_run(
    name, values, config, folder, load, data_dir, *, progress, echo, overwrite, resume, label
) -> SweepRun:
    prefix = f"[{name}] " if name else ""
    say = None if echo is None else (lambda line: echo(prefix + line))
    resume_this = bool(resume and folder is not None and (folder / _runs.CHECKPOINT).is_file())
    started = time.perf_counter()
    diverged, params = None, None
    try:
        result = _runs.run_training(
            config,
            folder,
            resume=resume_this,
            overwrite=overwrite or (resume and not resume_this),
            data_dir=data_dir,
            progress=progress,
            echo=say,
            data=load(config),
            label=f"{label} {name}".strip(),
            check=False,  # checked before the sweep began
        )
        metrics, params = result.metrics, result.params
    except DivergenceError as err:
        diverged = str(err)
        metrics = _runs.saved_metrics(folder)
        if say is not None:
            say(f"diverged: {err}")
    seconds = time.perf_counter() - started
    return SweepRun(name, values, config, folder, metrics, seconds, diverged, params)


def _old_runs(out: Path) -> list[Path]:
    """The run folders in `out` that hold a run (saved an epoch)."""
    return [p for p in out.iterdir() if p.is_dir() and _runs.holds_run(p)]


def _refuse_sweep_folder(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse a folder holding a single run, or a sweep one of whose runs saved an epoch (unless
    overwriting or resuming)."""
    if _runs.holds_run(out):
        raise FnbackpropError(
            f"{out} holds a single run, not a sweep: choose another --out for the sweep"
        )
    old_runs = _old_runs(out)
    if old_runs and not (overwrite or resume):
        raise FnbackpropError(
            f"{out} holds a sweep ({len(old_runs)} runs): give --overwrite to replace it, "
            f"--resume {out} to continue it, or choose another --out"
        )


def _prepare_sweep_folder(out: Path, sweep: Sweep, *, overwrite: bool, resume: bool) -> None:
    """Clear what an earlier sweep left (overwriting, or one with no saved epoch), and an
    unfinished single run's files; write the sweep's config with its lists."""
    _refuse_sweep_folder(out, overwrite=overwrite, resume=resume)
    if not resume:
        for name in (SUMMARY, SWEEP_PLOT, SWEEP_CONFIG, *_runs.RUN_FILES):
            (out / name).unlink(missing_ok=True)
    if overwrite:
        for folder in _old_runs(out):
            if folder.name not in sweep.runs:  # a run of the old sweep that the new one lacks
                with _runs.RunLock(folder):
                    for name in _runs.RUN_FILES:
                        (folder / name).unlink(missing_ok=True)
                try:
                    folder.rmdir()
                except OSError:
                    pass  # the user's own files stay
    first = next(iter(sweep.runs.values()))
    write_text_atomic(out / SWEEP_CONFIG, dumps(first, sweep.axes))


def _discard_unfinished_sweep(out: Path) -> None:
    """Remove the sweep's own files if none of its runs saved an epoch (each run removes its
    own files itself)."""
    if not out.is_dir() or _old_runs(out):
        return
    for name in (SUMMARY, SWEEP_PLOT, SWEEP_CONFIG):
        with contextlib.suppress(OSError):
            (out / name).unlink(missing_ok=True)


# -- the summary ----------------------------------------------------------------------------------


def run_figures(metrics: Sequence[dict]) -> dict:
    """A run's figures from its per-epoch metrics: the best test and validation accuracies and
    their epochs (the first, on a tie), the test accuracy at the best validation epoch, and the
    final accuracies; {} for a run without an epoch."""
    if not metrics:
        return {}
    test = [e["test_accuracy"] for e in metrics]
    validation = [e["validation_accuracy"] for e in metrics]
    best_val = max(range(len(metrics)), key=lambda i: (validation[i], -i))
    best_test = max(range(len(metrics)), key=lambda i: (test[i], -i))
    return {
        "best_test_accuracy": test[best_test],
        "best_test_epoch": metrics[best_test]["epoch"],
        "best_validation_accuracy": validation[best_val],
        "best_validation_epoch": metrics[best_val]["epoch"],
        "test_at_best_validation": test[best_val],
        "final_test_accuracy": test[-1],
        "final_validation_accuracy": validation[-1],
    }


def over_seeds(values: Sequence[float]) -> dict[str, float | None]:
    """`max`, `mean` and `median` of one figure over the runs (seeds) of a group; each None for
    no runs."""
    if not values:
        return {"max": None, "mean": None, "median": None}
    return {
        "max": max(values),
        "mean": float(np.mean(values)),
        "median": statistics.median(values),
    }


def _run_summary(run: SweepRun) -> dict:
    m = run.metrics
    record: dict = {
        "name": run.name,
        "values": run.values,
        "seed": run.config.training.seed,
        "folder": str(run.folder) if run.folder is not None else None,
        "epochs": len(m),
        "seconds": run.seconds,
        "diverged": run.diverged,
        "stopped": m[-1].get("stopped") if m else None,
    }
    return record | run_figures(m)


def summarize(axes: Mapping[str, list], runs: Mapping[str, SweepRun], before: int = 0) -> dict:
    """The sweep's summary: axes, one record per run, and per combination of the values other
    than the seed, the seeds' best, median and final figures and how many stalled.
    `epoch_programs_compiled` counts the programs compiled since the count was `before`."""
    compiled = epoch_compiles() - before
    records = [_run_summary(r) for r in runs.values()]
    groups: dict[str, dict] = {}
    for record in records:
        others = _others(record["values"])
        groups.setdefault(run_name(others), {"values": others, "runs": []})["runs"].append(record)
    summary: dict = {
        "axes": dict(axes),
        "runs": records,
        "groups": [],
        "epoch_programs_compiled": compiled,
    }
    for name, group in groups.items():
        trained = [r for r in group["runs"] if "best_test_accuracy" in r]
        entry: dict = {"name": name, "values": group["values"], "runs": len(group["runs"])}
        if trained:
            best = [r["best_test_accuracy"] for r in trained]
            best_test = over_seeds(best)
            final_test = over_seeds([r["final_test_accuracy"] for r in trained])
            best_validation = over_seeds([r["best_validation_accuracy"] for r in trained])
            entry |= {
                "seeds": [r["seed"] for r in trained],
                "best_test_max": best_test["max"],
                "best_test_median": best_test["median"],
                "final_test_median": final_test["median"],
                "best_validation_median": best_validation["median"],
                "stalled": sum(b < STALLED_BELOW for b in best),
                "diverged": sum(r["diverged"] is not None for r in group["runs"]),
            }
        summary["groups"].append(entry)
    summary["book_lines"] = book_lines(summary)
    return summary


def book_lines(summary: dict) -> list[str]:
    """The book's line per group: "best of 3: 95.42 %", then median, final and stalled runs; for
    a sweep without seeds, one line per run."""
    lines = []
    by_seed = SEED in summary["axes"]
    for group in summary["groups"]:
        prefix = f"{group['name']}: " if group["name"] else ""
        if "best_test_max" not in group:
            lines.append(f"{prefix}no run finished an epoch")
            continue
        if by_seed:
            n = group["runs"]
            lines.append(
                f"{prefix}best of {n}: {100 * group['best_test_max']:.2f} % (median "
                f"{100 * group['best_test_median']:.2f} %, final median "
                f"{100 * group['final_test_median']:.2f} %, stalled below "
                f"{100 * STALLED_BELOW:.0f} %: {group['stalled']} of {n}"
                + (f", diverged: {group['diverged']}" if group["diverged"] else "")
                + ")"
            )
        else:
            lines.append(
                f"{prefix}best test {100 * group['best_test_max']:.2f} %, final "
                f"{100 * group['final_test_median']:.2f} %"
                + (" (diverged)" if group["diverged"] else "")
            )
    return lines


def plot_sweep(runs: list[SweepRun], path: "str | os.PathLike", title: str = "") -> None:
    """Every run's test accuracy and cost per epoch, one colour per combination of the values
    other than the seed, as a PNG written atomically."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(12, 4.8))
    left, right = fig.subplots(1, 2)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    groups: list[str] = []
    for run in runs:
        if not run.metrics:
            continue
        group = _group(run)
        if group not in groups:
            groups.append(group)
        color = colors[groups.index(group) % len(colors)]
        epochs = [m["epoch"] for m in run.metrics]
        first = sum(1 for r in runs[: runs.index(run)] if _group(r) == group) == 0
        seeds = [str(r.values[SEED]) for r in runs if _group(r) == group and SEED in r.values]
        label = ", ".join(x for x in (group, "seeds " + ", ".join(seeds) if seeds else "") if x)
        label = (label or run.name or "run") if first else None
        left.plot(epochs, [100 * m["test_accuracy"] for m in run.metrics], color=color,
                  marker=".", lw=1, alpha=0.8, label=label)  # fmt: skip
        cost = "training_cost" if "training_cost" in run.metrics[0] else "validation_cost"
        right.plot(epochs, [m[cost] for m in run.metrics], color=color, marker=".", lw=1,
                   alpha=0.8, label=label)  # fmt: skip
        right.set_ylabel(cost.replace("_", " "))
    left.set_ylabel("test accuracy (%)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if any(run.metrics for run in runs):
        left.legend(fontsize=8)
    n_seeds = len({r.values.get(SEED) for r in runs})
    heading = f"{len(runs)} runs" + (f", {n_seeds} seeds per colour" if n_seeds > 1 else "")
    fig.suptitle(f"{title}  ({heading})" if title else heading, fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return fig


def _others(values: Mapping[str, Any]) -> dict[str, Any]:
    """The swept values but the seed: what the runs of one group share."""
    return {k: v for k, v in values.items() if k != SEED}


def _group(run: SweepRun) -> str:
    """The name of the run's group: its values but the seed."""
    return run_name(_others(run.values))


def _plain(value: Any) -> Any:
    """JSON-safe: non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
