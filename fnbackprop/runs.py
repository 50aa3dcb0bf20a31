"""A training run from a config: data, network, SGD, and the files it leaves behind.

`run_training(config, out_dir)` trains as the config says and writes into `out_dir`:

- `config.toml`: the resolved config, every key spelled out;
- `metrics.jsonl`: one JSON object per epoch (`epoch`, `eta`, `validation_accuracy`,
  `test_accuracy`, their `_correct`, `_total` and `_cost`, `training_*` when monitored,
  `best_epoch`, `seconds`, and `stopped` with the reason in an epoch that ends the run early);
- `checkpoint.eqx`: parameters, optimizer state, PRNG key, epoch and metrics, after every epoch;
- `best.eqx`: the same for the epoch with the best validation accuracy so far;
- `learning_curve.png`: accuracy and cost per epoch.

Every file is written atomically, so a run killed at any moment leaves the files of its last
complete epoch, and `run_training(config, out_dir, resume=True)` continues from there to the same
parameters an uninterrupted run reaches (early stopping and the learning-rate schedule continue
from the saved metrics).

**A run folder is never lost by accident.** A folder holds a run once an epoch of it is saved
(`checkpoint.eqx`, or `best.eqx`): such a folder is refused unless `overwrite=True` (replace it)
or `resume=True` (continue it). A run holds an exclusive lock (`fcntl.flock` on `.lock` in the
folder) for its whole life, so a second run started into a folder in use fails at once with one
line; the operating system releases the lock when a process dies, even by SIGKILL, so a killed
run never leaves it stuck. Overwriting deletes the old run's checkpoints first, then its
metrics and curve, and writes the new config last: a crash half-way leaves what a run killed
before its first epoch leaves, never one run's checkpoint beside another's config.

**Before the folder is written**, everything that can be checked is: the config, the data
(present, and fitting `network.sizes` and `data.train_size`), and every σ and cost that is not
built in (`check_plugins`: the shapes it gives, and with `check=True` its contract against
`jax.grad`). A run that fails before its first epoch is saved (an error, Ctrl-C) removes what it
wrote, and the folder if it made it; one killed harder leaves its `config.toml`, and a folder
without a saved epoch is not a run: the next run into it replaces what is there without
`overwrite`.
"""

import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import activations, checkpoint, costs, sharding
from ._io import atomic_file, write_text_atomic
from .check import check_contract, contract_shapes
from .config import Config, build_network, dumps, load, parse
from .config import dropout as config_dropout
from .data import DATASETS, Split, Splits, expanded, load_dataset, one_hot
from .errors import ConfigError, FnbackpropError
from .network import Network, Params
from .optimizers import make_optimizer
from .schedules import is_length_free, make_schedule
from .training import DivergenceError, FitOptions, TrainState, fit

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None

__all__ = [
    "BEST",
    "CHECKPOINT",
    "CONFIG",
    "CURVE",
    "LOCK",
    "METRICS",
    "Run",
    "RunLock",
    "RunResult",
    "book_line",
    "check_plugins",
    "claim_folder",
    "default_out",
    "fit_options",
    "holds_run",
    "last_good",
    "load_run",
    "plot_learning_curve",
    "prepare_data",
    "prepare_run",
    "resumed_config",
    "run_training",
    "save_curve",
    "save_epoch",
    "saved_metrics",
]

CONFIG, METRICS, CHECKPOINT, BEST, CURVE, LOCK = (
    "config.toml",
    "metrics.jsonl",
    "checkpoint.eqx",
    "best.eqx",
    "learning_curve.png",
    ".lock",
)
#: The files that make a folder hold a run: the state after a finished epoch. (A `config.toml`
#: alone, or an empty `metrics.jsonl`, is what a run that failed before its first epoch left.)
RUN_MARKERS = (CHECKPOINT, BEST)
#: Everything a run writes, in the order an overwrite deletes it: state first, config last.
RUN_FILES = (CHECKPOINT, BEST, METRICS, CURVE, CONFIG)


class RunResult(NamedTuple):
    net: Network
    params: Params
    metrics: list[dict]


def _dtype(config: Config):
    if config.training.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError(
            "training.dtype = float64 needs 64-bit JAX: the CLI switches it on; in Python wrap "
            "the call in `with jax.enable_x64(True):`"
        )
    return jnp.dtype(config.training.dtype)


def prepare_data(
    config: Config, data_dir: "str | os.PathLike | None" = None, *, progress: bool = True
) -> tuple[tuple, dict[str, tuple], Splits]:
    """The training arrays `(X, Y)` and the evaluation sets `{name: (X, labels)}` on the device.

    The folder is `data_dir` (the CLI's --data-dir), else the config's `data.dir`, else
    `$FNBACKPROP_DATA` or the user cache (downloading there if needed). With `data.expand`, the
    first `data.train_size` images are followed each by its four one-pixel shifts
    (`fnbackprop.data.expanded`, chapter 6): 5 × train_size training examples, and n (in λ/n)
    counts them all.
    """
    dtype = _dtype(config)
    dataset = DATASETS.get(config.data.dataset)
    sizes = config.network.sizes
    if sizes[0] != dataset.inputs or sizes[-1] < dataset.classes:
        raise ConfigError(
            f"network.sizes = {list(sizes)} does not fit {dataset.name}: it needs "
            f"{dataset.inputs} inputs and at least {dataset.classes} outputs"
        )
    splits = load_dataset(dataset, data_dir or config.data.dir or None, progress=progress)
    n = config.data.train_size
    if n > len(splits.train.labels):
        raise ConfigError(
            f"data.train_size = {n:,} is more than the {len(splits.train.labels):,} training "
            f"images of {dataset.name} (the rest of its training file is the validation set)"
        )
    n_out = sizes[-1]
    images, labels = splits.train.images[:n], splits.train.labels[:n]
    if config.data.expand:
        images, labels = expanded(Split(images, labels), dataset.image_shape)
    train = (jnp.asarray(images, dtype), jnp.asarray(one_hot(labels, n_out), dtype))
    evaluation = {
        name: (jnp.asarray(split.images, dtype), jnp.asarray(split.labels))
        for name, split in (("validation", splits.validation), ("test", splits.test))
    }
    return train, evaluation, splits


def book_line(metrics: dict) -> str:
    """`Epoch 0: 9129 / 10000`, the book's progress line, then validation (and training) scores,
    η when it is scheduled, and the time."""
    extra = [
        f"validation {metrics['validation_correct']} / {metrics['validation_total']}",
        f"cost {metrics['validation_cost']:.4f}",
    ]
    if "training_correct" in metrics:
        extra.append(f"training {metrics['training_correct']} / {metrics['training_total']}")
    if "training_cost" in metrics:  # monitored on its own switch, with or without the accuracy
        extra.append(f"training cost {metrics['training_cost']:.4f}")
    if "eta" in metrics:
        extra.append(f"η {metrics['eta']:.4g}")
    extra.append(f"{metrics['seconds']:.2f} s")
    line = (
        f"Epoch {metrics['epoch']}: {metrics['test_correct']} / {metrics['test_total']}"
        f"  ({', '.join(extra)})"
    )
    if metrics.get("stopped"):
        line += f"\nstopped: {metrics['stopped']}"
    return line


def holds_run(folder: "str | os.PathLike") -> bool:
    """Whether `folder` holds a run: the checkpoint of a finished epoch (`checkpoint.eqx` or
    `best.eqx`). A folder with no finished epoch is not a run: a new run replaces what is there."""
    return any((Path(folder) / name).exists() for name in RUN_MARKERS)


def default_out(config_path: "str | os.PathLike", root: "str | os.PathLike" = "runs") -> Path:
    """A new folder `runs/<config stem>-<YYYYmmdd-HHMMSS>` (with `-2`, `-3`, … if that exists),
    created here, where a run without `--out` is saved. Creating it is what claims the name, so
    two commands started in the same second get two folders."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{Path(config_path).stem}-{stamp}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            folder = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
    except OSError as err:
        raise FnbackpropError(
            f"cannot create a run folder in {base.parent} ({err.strerror or err}): give --out"
        ) from None
    raise FnbackpropError(f"too many runs named {base} already: give --out")


def run_training(
    config: Config,
    out_dir: "str | os.PathLike | None" = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data_dir: "str | os.PathLike | None" = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
    data: tuple | None = None,
    label: str = "",
    check: bool = True,
) -> RunResult:
    """Train as `config` says; with `out_dir`, write the run's files there after every epoch.

    - `resume=True`: continue the run saved in `out_dir` (its checkpoint must exist). `config` may
      differ from the saved one in `training.epochs` only (see `resumed_config`). A finished run
      (all its epochs done, or stopped early) is returned as it is, with a line saying so.
    - `overwrite=True`: replace the run `out_dir` holds; without it (or `resume`) a folder that
      holds a run is refused (one without a saved epoch is not a run, and is reused).
    - `progress`: a progress bar with the last epoch's cost and accuracy when stderr is a
      terminal; else (or with `progress=False`) `echo` gets one plain line per epoch.
    - `data`: the `(train, evaluation)` arrays of `prepare_data`, when already loaded (a sweep
      loads them once for all its runs).
    - `label`: added to the curve's title (the CLI passes the `--set` items).
    - `check`: check every σ and cost that is not built in against its contract before the
      first epoch (`check_plugins`); False (the CLI's `--no-check`) checks their shapes only.

    The folder is written only once the data are loaded and the σ and cost checked; a run that
    fails before its first epoch is saved removes what it wrote (and the folder, if it made it).

    Raises `FnbackpropError` for a folder in use by another run (held lock) and for one that
    holds a run without `overwrite`/`resume`; `DivergenceError` (after writing the curve so
    far) if training diverges, leaving the checkpoint of the last good epoch as it was.
    """
    out = Path(out_dir) if out_dir is not None else None
    _check_config(config)
    if resume and (out is None or not (out / CHECKPOINT).is_file()):
        raise FnbackpropError(_nothing_to_resume(out))
    writer = out is not None and jax.process_index() == 0
    created = writer and not out.exists()
    wrote = False
    try:
        with RunLock(out) if writer else contextlib.nullcontext():
            if writer:
                _refuse(out, resume=resume, overwrite=overwrite)
            check_plugins(config, full=check)
            run = prepare_run(config, data_dir, progress=progress, data=data)
            if writer:
                wrote = True
                label = _prepare_folder(
                    out, config, resume=resume, overwrite=overwrite, label=label
                )
            try:
                metrics: list[dict] = []
                if resume:
                    run, metrics = _resume(run, out)
                    finished = _finished(config, metrics, run.state.epoch)
                    if finished:
                        if echo is not None:
                            echo(f"{out}: {finished}")
                        return RunResult(run.net, run.state.params, metrics)
                target = out if writer else None  # several processes: process 0 alone writes
                if target is not None:
                    _write_metrics(target, metrics)  # after a crash, the checkpoint's epochs
                state = _train(config, run, metrics, target, progress, echo, label)
            except BaseException:
                if wrote and not resume:
                    _discard_unfinished(out)
                raise
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: the folder this run made, and nothing else
        raise
    return RunResult(run.net, state.params, metrics)


def _nothing_to_resume(out: Path | None) -> str:
    """Why `out` cannot be resumed: no checkpoint; where it holds a config, how to start again."""
    if out is not None and (out / CONFIG).is_file():
        return (
            f"nothing to resume in {out}: its run saved no epoch (no {CHECKPOINT}); start it "
            f"again with `fnbackprop train {out / CONFIG} --out {out}`"
        )
    return f"nothing to resume: no {CHECKPOINT} in {out} (give the folder of an earlier run)"


def check_plugins(config: Config, *, full: bool = True, checked: set | None = None) -> None:
    """Refuse, in one line, a σ or cost of `config` that is not built in and breaks its contract.

    Always: the shapes it gives for its layer, one example (n,) and examples as columns (n, m),
    traced with `jax.eval_shape` (milliseconds). With `full`: its own rows of `fnbackprop check`
    (`fnbackprop.check.check_contract`: σ′ or ∇_a C against `jax.grad`, the axis contract,
    float32), in one compiled program each, about 0.3 s. The line names the plug-in by its
    spec, what failed, and the `fnbackprop check` command that shows every row. Built-in σ and
    costs are not checked (no time added to ordinary runs). `checked`: the plug-ins already
    checked (a sweep passes one set for all its runs).
    """
    checked = set() if checked is None else checked
    for kind, spec, obj, n, where, output in _plugins(config):
        key = (kind, spec, n, full, output)
        if key in checked:
            continue
        path = _import_path(spec, obj)
        name = spec if spec == path else f"{spec} ({path})"
        command = f"fnbackprop check --{kind} {path}"
        problem = contract_shapes(obj, n)
        if problem:
            raise FnbackpropError(
                f"{kind} {name!r} {where}: {problem}; a plug-in must keep the contract in "
                f"README 'Your own σ and cost': check it with `{command}`"
            )
        if full:
            rows = check_contract(obj, output=output)
            failed = [r for r in rows if not r.ok]
            if failed:
                row = failed[0]
                error = f"relative error {row.error:.1e} at " if math.isfinite(row.error) else ""
                raise FnbackpropError(
                    f"{kind} {name!r} fails its contract check before training "
                    f"({len(failed)} of {len(rows)} rows): {row.test}: {error}{row.where}; see "
                    f"every row with `{command}`, or give --no-check to train anyway"
                )
        checked.add(key)


def _plugins(config: Config):
    """(kind, spec, object, layer size, where it is, output σ) of every σ and cost of `config`
    that is not built in, in the order of the layers, the cost last."""
    n = config.network
    sizes = n.sizes
    builtin_sigmas = activations.ACTIVATIONS.builtin_names()
    layers = [n.activation] * (len(sizes) - 1) if isinstance(n.activation, str) else n.activation
    for layer, spec in enumerate(layers, start=2):
        if spec not in builtin_sigmas:
            where = f"in layer {layer} ({sizes[layer - 1]} neurons)"
            yield "activation", spec, activations.get(spec), sizes[layer - 1], where, None
    for o in n.override:
        if o.activation not in builtin_sigmas:
            where = f"on neuron {o.neuron} of layer {o.layer}"
            yield "activation", o.activation, activations.get(o.activation), 1, where, None
    if n.cost not in costs.COSTS.builtin_names():
        output = build_network(config).activations[-1]
        where = f"on the output layer ({sizes[-1]} neurons)"
        yield "cost", n.cost, costs.get(n.cost), sizes[-1], where, output


def _import_path(spec: str, obj) -> str:
    """The import path of a plug-in: `spec` itself if it is one, else its class's."""
    if ":" in spec:
        return spec
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _finished(config: Config, metrics: list[dict], epoch: int) -> str | None:
    """Why a saved run has nothing left to do, or None."""
    if metrics and metrics[-1].get("stopped"):
        return (
            f"finished: stopped early after epoch {metrics[-1]['epoch']} "
            f"({metrics[-1]['stopped']}); more epochs would change nothing"
        )
    if epoch >= config.training.epochs:
        best = max((m["test_accuracy"] for m in metrics), default=None)
        score = f" (best test accuracy {100 * best:.2f} %)" if best is not None else ""
        return (
            f"finished: all {config.training.epochs} epochs are done{score}; to train further, "
            f"resume with --set training.epochs=N, N > {config.training.epochs}"
        )
    return None


def resumed_config(
    folder: "str | os.PathLike", overrides: Iterable[str] = (), saved: Config | None = None
) -> Config:
    """The config of the run saved in `folder`, with `--set training.epochs=N` applied.

    Any other override is refused, saying why: it would make the resumed run differ from the one
    in `folder`. Once an epoch is done, more epochs are refused for a schedule that depends on
    the run's length (η of every epoch would change), and so are fewer epochs than are done.
    `saved`: the config to take where `folder` holds none yet (a sweep's run not started).
    """
    folder = Path(folder)
    if (folder / CONFIG).is_file():
        config = load(folder / CONFIG)
    elif saved is not None:
        config = saved
    else:
        raise FnbackpropError(
            f"nothing to resume in {folder}: no {CONFIG} there "
            "(give the --out folder of an earlier run)"
        )
    epochs = None
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() != "training.epochs":
            raise FnbackpropError(
                f"--set {item.strip()}: --resume continues the run in {folder} as it was "
                f"configured; only training.epochs may change (to train further): "
                f"{key.strip()} would make the resumed run differ from the one saved there"
            )
        try:
            epochs = int(value.strip())
        except ValueError:
            raise FnbackpropError(
                f"--set {item.strip()}: training.epochs must be an integer, got {value.strip()!r}"
            ) from None
    if epochs is None or epochs == config.training.epochs:
        return config
    t = config.training
    done = _epochs_done(folder)
    if epochs <= done:
        raise FnbackpropError(
            f"--set training.epochs={epochs}: the run in {folder} has {done} epochs done "
            f"already; give more than {done} to train further"
        )
    if done and not is_length_free(t.schedule):
        raise FnbackpropError(
            f"--set training.epochs={epochs}: the run in {folder} uses training.schedule = "
            f"{t.schedule!r}, whose η depends on the number of epochs: extending it would make "
            "it differ from a run of that length; start a new run instead"
        )
    return dataclasses.replace(config, training=dataclasses.replace(t, epochs=epochs))


def _epochs_done(folder: Path) -> int:
    try:
        return int(checkpoint.read_header(folder / CHECKPOINT)["epoch"])
    except FnbackpropError:
        return 0


class Run(NamedTuple):
    """What a run is made of before its first epoch (`prepare_run`)."""

    net: Network
    state: TrainState
    key: jax.Array  # the training key; epoch e shuffles with fold_in(key, e)
    options: FitOptions
    train: tuple
    evaluation: dict


def prepare_run(
    config: Config,
    data_dir: "str | os.PathLike | None" = None,
    *,
    progress: bool = True,
    data: tuple | None = None,
) -> Run:
    """The network, its initial state, the training key, the `FitOptions` and the data on the
    device(s) of the run `config` describes (`data`: the `(train, evaluation)` of `prepare_data`,
    when already loaded). The seed gives two keys: one draws the initial weights, the other
    shuffles every epoch."""
    dtype = _dtype(config)
    net = build_network(config)
    t = config.training
    key_init, key_train = jax.random.split(jax.random.key(t.seed))
    mesh = sharding.data_mesh(t.devices) if t.devices > 1 else None  # too many: fail here
    if data is None:
        train, evaluation, _ = prepare_data(config, data_dir, progress=progress)
    else:
        train, evaluation = data
    if mesh is not None:  # the data once on every device; each epoch splits every mini-batch
        train, evaluation = sharding.replicate((train, evaluation), mesh)
    options = fit_options(config, int(train[0].shape[0]))
    params = net.init(key_init, config.network.init, dtype)
    state = TrainState(params, options.optimizer.init(params), 0)
    return Run(net, state, key_train, options, train, evaluation)


def fit_options(config: Config, n: int) -> FitOptions:
    """How `fit` trains the run `config` describes on n training examples: its `[training]`
    section, with the optimizer (λ/n and λ₁/n for this n) and the schedule built."""
    t = config.training
    return FitOptions(
        epochs=t.epochs,
        optimizer=make_optimizer(
            t.optimizer,
            t.eta,
            lmbda=t.lmbda,
            n=n,
            momentum=t.momentum,
            l1=t.l1,
            weights=build_network(config).weight_mask,
        ),
        mini_batch_size=t.mini_batch_size,
        gradient=t.gradient,
        devices=t.devices,
        dropout=config_dropout(config),
        monitor_training_cost=t.monitor_training_cost,
        monitor_training_accuracy=t.monitor_training_accuracy,
        early_stopping=t.early_stopping,
        monitor_layer_speed=t.monitor_layer_speed,
        schedule=make_schedule(t.schedule, t.eta, t.epochs, **dict(t.schedule_args)),
    )


def _resume(run: Run, out: Path) -> tuple[Run, list[dict]]:
    """The run as its checkpoint in `out` left it, and the metrics of its epochs."""
    state, key, header = checkpoint.load(out / CHECKPOINT, run.net, run.state)
    return run._replace(state=state, key=key), list(header["metrics"])


def _train(config: Config, run: Run, metrics: list[dict], out, progress: bool, echo, label):
    """The epochs: each one's metrics appended, its files written, its line printed."""
    state = run.state
    bar = _Progress(run.options.epochs, state.epoch, progress, echo)
    try:
        for state, epoch_metrics in fit(
            run.net, run.state, run.train, run.evaluation, run.options, key=run.key,
            history=metrics,
        ):  # fmt: skip
            metrics.append(epoch_metrics)
            if out is not None:
                save_epoch(out, run.net, state, run.key, metrics)
            bar.epoch(epoch_metrics)
    except DivergenceError as err:
        if out is not None and metrics:
            save_curve(out, config, metrics, label)
        raise last_good(err, out, metrics) from None
    finally:
        bar.close()
    if out is not None and metrics:
        save_curve(out, config, metrics, label)
    return state


def save_epoch(
    out: "str | os.PathLike", net: Network, state: TrainState, key: jax.Array, metrics: list[dict]
) -> None:
    """A run's files after an epoch, each written atomically: `best.eqx` when the epoch is the
    best so far, `metrics.jsonl` (every epoch so far), `checkpoint.eqx` (`state`, the training
    `key` and the metrics)."""
    out = Path(out)
    if metrics[-1].get("best_epoch") == metrics[-1]["epoch"]:
        checkpoint.save(out / BEST, net, state, key, metrics)
    _write_metrics(out, metrics)
    checkpoint.save(out / CHECKPOINT, net, state, key, metrics)


def save_curve(
    out: "str | os.PathLike", config: Config, metrics: list[dict], label: str = ""
) -> None:
    """The run's `learning_curve.png`, titled by its config (and `label`, on a line of its
    own)."""
    plot_learning_curve(metrics, Path(out) / CURVE, title=_title(config, label))


def last_good(
    err: DivergenceError, out: "str | os.PathLike | None", metrics: list[dict]
) -> DivergenceError:
    """The error of a run that diverged, naming the checkpoint in `out` that keeps its last good
    epoch (`err` itself when no epoch was saved)."""
    if out is None or not metrics:
        return err
    return DivergenceError(
        f"{err}; {Path(out) / CHECKPOINT} keeps epoch {metrics[-1]['epoch']}, the last good one"
    )


class _Progress:
    """A tqdm bar with the last epoch's scores on a terminal; else one plain line per epoch.

    Piped or redirected output (stderr not a terminal) gets no bar, so no carriage returns: the
    book's line for each epoch goes to `echo`, nothing else.
    """

    def __init__(self, total: int, done: int, progress: bool, echo):
        self.echo = echo
        self.bar = None
        if progress and _is_terminal(sys.stderr):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="epochs", unit="epoch")

    def epoch(self, metrics: dict) -> None:
        if self.bar is not None:
            postfix = {
                "val": f"{100 * metrics['validation_accuracy']:.2f}%",
                "cost": f"{metrics['validation_cost']:.4f}",
            }
            if "training_cost" in metrics:
                postfix["train cost"] = f"{metrics['training_cost']:.4f}"
            if "training_accuracy" in metrics:
                postfix["train"] = f"{100 * metrics['training_accuracy']:.2f}%"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
            if self.echo is not None:
                self.bar.write(book_line(metrics))
        elif self.echo is not None:
            self.echo(book_line(metrics))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def load_run(
    run: "str | os.PathLike",
) -> tuple[Config, Network, Params, dict]:
    """The config, network, parameters and checkpoint header of a saved run.

    `run` is a run folder (its last checkpoint) or a checkpoint file inside one (`best.eqx`, say),
    with its `config.toml` beside it.
    """
    path = Path(run)
    folder, ckpt = (path, path / CHECKPOINT) if path.is_dir() else (path.parent, path)
    checkpoint.read_header(ckpt)  # a missing or foreign file is named as such, before the config
    if not (folder / CONFIG).is_file():
        raise FnbackpropError(f"no {CONFIG} beside the checkpoint in {folder}")
    config = load(folder / CONFIG)
    dtype = _dtype(config)
    net = build_network(config)
    params = net.init(jax.random.key(0), config.network.init, dtype)
    optimizer = fit_options(config, config.data.train_size).optimizer  # its state's structure
    state, _, header = checkpoint.load(ckpt, net, TrainState(params, optimizer.init(params), 0))
    return config, net, state.params, header


def _write_metrics(out: Path, metrics: list[dict]) -> None:
    write_text_atomic(out / METRICS, "".join(json.dumps(m) + "\n" for m in metrics))


def saved_metrics(folder: "str | os.PathLike | None") -> list[dict]:
    """The metrics of the epochs a run folder holds (its `metrics.jsonl`, written with each
    checkpoint), one dict per epoch: [] for a folder that holds no epoch (or None)."""
    if folder is None or not (Path(folder) / METRICS).is_file():
        return []
    lines = (Path(folder) / METRICS).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _check_config(config: Config) -> None:
    """Check a `Config` as `load` checks a file, so one built in Python is checked too."""
    if not isinstance(config, Config):
        raise ConfigError(
            f"config must be a fnbackprop.config.Config (read one with fnbackprop.config.load), "
            f"got {type(config).__name__}"
        )
    try:
        text = dumps(config)
    except TypeError as err:
        raise ConfigError(f"config: {err}") from None
    parse(tomllib.loads(text), source="config")


# -- the run folder: lock, refusal, overwrite ----------------------------------------------------


class RunLock:
    """An exclusive lock on a run folder for the life of a run: `fcntl.flock` on `.lock` inside.

    Taking it fails at once (no waiting) with one line naming the process that holds it. The
    kernel drops a flock when its holder dies, so a killed run leaves no stale lock, only an
    unlocked `.lock` file that the next run takes over. Released, the file is removed; a process
    that opened it just before and then gets the lock checks that the path still names the file
    it holds, and starts again if not.
    """

    def __init__(self, folder: "str | os.PathLike"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if fcntl is None:  # pragma: no cover
                return
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise FnbackpropError(
                        f"{self.folder} is in use by another training run{holder}: wait for it "
                        "to finish, or choose another --out"
                    ) from None
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)  # released and removed meanwhile: take the new file
            os.ftruncate(fd, 0)
            now = datetime.datetime.now().isoformat(timespec="seconds")
            os.write(fd, f"{os.getpid()} {now}\n".encode())
            self.fd = fd
        except OSError as err:
            raise FnbackpropError(
                f"cannot write the run's files in {self.folder} ({err.strerror or err}): "
                "choose another --out"
            ) from None

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it, so no one locks a removed file
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
        return f" (process {text[0]}, started {text[1]})" if len(text) >= 2 else ""
    except OSError:
        return ""


#: The first line of a run's config.toml when the run was given a label (the CLI's `--set`
#: items): a TOML comment, so the file still loads; a resumed run's curve keeps it in its title.
LABEL_LINE = "# label: "


def _saved_label(out: Path) -> str:
    try:
        first = (out / CONFIG).read_text().partition("\n")[0]
    except (OSError, UnicodeDecodeError):
        return ""
    return first.removeprefix(LABEL_LINE) if first.startswith(LABEL_LINE) else ""


@contextlib.contextmanager
def claim_folder(
    out: "str | os.PathLike",
    config: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    label: str = "",
) -> Iterator[str]:
    """Hold the folder `out` for a run while the `with` block lasts: lock it (`RunLock`), refuse
    it if it holds a run (unless `resume` or `overwrite`), clear what an unfinished run left, and
    write the config, with the label on its first line; gives the run's label (a resumed run's
    saved one first). If the block fails before an epoch is saved, what was written is removed
    (and the folder, if this made it)."""
    out = Path(out)
    created = not out.exists()
    try:
        with RunLock(out):
            _refuse(out, resume=resume, overwrite=overwrite)
            label = _prepare_folder(out, config, resume=resume, overwrite=overwrite, label=label)
            try:
                yield label
            except BaseException:
                if not resume:
                    _discard_unfinished(out)
                raise
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _refuse(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that holds a run, unless resuming or overwriting; the advice offers
    `--resume` only where there is a checkpoint to resume."""
    if resume or overwrite or not holds_run(out):
        return
    if (out / CHECKPOINT).is_file():
        raise FnbackpropError(
            f"{out} holds a run ({_describe_run(out)}): give --overwrite to replace it, "
            f"--resume {out} to continue it, or choose another --out"
        )
    raise FnbackpropError(
        f"{out} holds a run's {BEST} but no {CHECKPOINT} to resume from: give --overwrite to "
        "replace it, or choose another --out"
    )


def _discard_unfinished(out: Path) -> None:
    """Remove the files a run wrote into `out` if it saved no epoch (it failed before the end of
    its first): the folder then holds what it held before, less a replaced unfinished run."""
    if (out / CHECKPOINT).exists():
        return
    for name in RUN_FILES:
        with contextlib.suppress(OSError):
            (out / name).unlink(missing_ok=True)


def _prepare_folder(
    out: Path, config: Config, *, resume: bool, overwrite: bool, label: str = ""
) -> str:
    """Clear what a killed run left, and an earlier run's files (overwriting, or an unfinished
    run's: `_refuse` has refused a folder that holds a run), and write the config (its label, a
    resumed run's saved one first, on the first line); returns that label."""
    try:
        for name in (*RUN_FILES, "summary.json"):
            for part in out.glob(f".{name}.*.part"):  # atomic_file's names
                part.unlink()
        if resume:
            _check_same_run(out, config)
            label = _resumed_label(_saved_label(out), label)
        else:
            _refuse(out, resume=resume, overwrite=overwrite)
            for name in RUN_FILES:  # the state first, the config last (see the module doc)
                (out / name).unlink(missing_ok=True)
        head = f"{LABEL_LINE}{' '.join(label.split())}\n" if label else ""
        write_text_atomic(out / CONFIG, head + dumps(config))
        return label
    except OSError as err:
        raise FnbackpropError(
            f"cannot write the run's files in {out} ({err.strerror or err}): choose another --out"
        ) from None


def _resumed_label(saved: str, label: str) -> str:
    """A resumed run's label: the saved one, then the new one; a `--set training.epochs=N` in the
    new label replaces the saved one's (the run now has N epochs, not the number first given)."""
    if re.search(r"--set training\.epochs\s*=", label):
        saved = re.sub(r"\s*--set training\.epochs\s*=\s*\S*", "", saved).strip()
    words = label.split()
    named = words and (len(words) == 1 or words[-2] != "--set")
    if named and words[-1] in saved.split():
        label = " ".join(words[:-1])  # a sweep's run name, in both: kept once, where it was
    return " ".join(x for x in (saved, label) if x)


def _check_same_run(out: Path, config: Config) -> None:
    """A resumed run's config must be the saved one, but for `training.epochs`."""
    if not (out / CONFIG).is_file():
        return
    saved = load(out / CONFIG)
    same_length = dataclasses.replace(
        config, training=dataclasses.replace(config.training, epochs=saved.training.epochs)
    )
    if same_length != saved:
        differs = [
            f"{section}.{field.name}"
            for section in ("network", "training", "data")
            for field in dataclasses.fields(getattr(saved, section))
            if getattr(getattr(saved, section), field.name)
            != getattr(getattr(same_length, section), field.name)
        ]
        raise FnbackpropError(
            f"cannot resume {out} with another config ({', '.join(differs)} differ): only "
            "training.epochs may change; resume with the saved config (fnbackprop.runs."
            "resumed_config)"
        )


def _describe_run(out: Path) -> str:
    try:
        header = checkpoint.read_header(out / CHECKPOINT)
        total = load(out / CONFIG).training.epochs if (out / CONFIG).is_file() else "?"
        return f"{header['epoch']} of {total} epochs done"
    except FnbackpropError:
        return ", ".join(name for name in (*RUN_MARKERS, CONFIG) if (out / name).exists())


# -- the learning curve -------------------------------------------------------------------------


def _title(config: Config, label: str = "") -> str:
    n, t, d = config.network, config.training, config.data
    sigma = n.activation if isinstance(n.activation, str) else "/".join(n.activation)
    parts = [f"{list(n.sizes)} {sigma}, {n.cost}, η={t.eta:g}, λ={t.lmbda:g}"]
    if t.l1:
        parts.append(f"L1 λ={t.l1:g}")
    if p := config_dropout(config):
        each = p if isinstance(p, tuple) else (p,)
        parts.append("dropout " + "/".join(f"{q:g}" for q in each))
    if t.schedule != "constant":
        parts.append(f"schedule {t.schedule}")
    n_train = f"{5 * d.train_size:,} (expanded)" if d.expand else f"{d.train_size:,}"
    parts.append(f"m={t.mini_batch_size}, n={n_train}, seed {t.seed}")
    overrides = [f"L{o.layer}N{o.neuron}={o.activation}" for o in n.override]
    if overrides:
        parts.append("override " + " ".join(overrides))
    title = ", ".join(parts)
    if label:
        title += "\n" + label
    return title


def plot_learning_curve(metrics: list[dict], path: "str | os.PathLike", title: str = ""):
    """Accuracy and cost per epoch (validation, test, and training when monitored) as a PNG,
    written atomically; returns the matplotlib `Figure`. Whole-number epoch ticks (one or two
    epochs get a tick each and room either side); the best validation epoch is marked.

    Drawn on a bare `Figure` with fixed margins, not pyplot with `tight_layout`: 0.13 s instead
    of 0.22 s, which a sweep pays once per run.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if metrics[-1].get("stopped"):
        title = f"{title}\nstopped: {metrics[-1]['stopped']}" if title else metrics[-1]["stopped"]
    wrapped = "\n".join(textwrap.fill(line, 100) for line in title.splitlines())
    lines = wrapped.count("\n") + 1 if wrapped else 0
    speeds = "layer_speeds" in metrics[0]
    fig = Figure(figsize=(7, 8.5 if speeds else 6))
    axes = fig.subplots(3 if speeds else 2, 1, sharex=True)
    top, bottom = axes[0], axes[-1] if not speeds else axes[1]
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.08, top=0.97 - 0.025 * lines, hspace=0.08)
    epochs = [m["epoch"] for m in metrics]
    for name, color in (("training", "C2"), ("validation", "C0"), ("test", "C1")):  # one per set
        if f"{name}_accuracy" in metrics[0]:
            accuracy = [100 * m[f"{name}_accuracy"] for m in metrics]
            top.plot(epochs, accuracy, marker=".", color=color, label=name)
        if f"{name}_cost" in metrics[0]:
            cost = [m[f"{name}_cost"] for m in metrics]
            bottom.plot(epochs, cost, marker=".", color=color, label=name)
    best = metrics[-1].get("best_epoch")
    if best is not None:
        top.axvline(best, color="gray", ls=":", lw=1, label=f"best validation (epoch {best})")
        bottom.axvline(best, color="gray", ls=":", lw=1)
    top.set_ylabel("accuracy (%)")
    bottom.set_ylabel("mean cost C")
    if speeds:  # chapter 5: one line per layer, log scale
        per_layer = list(zip(*(m["layer_speeds"] for m in metrics), strict=True))
        for l, values in enumerate(per_layer, start=2):
            name = "output" if l == len(per_layer) + 1 else f"hidden {l - 1}"
            axes[2].plot(epochs, values, marker=".", label=f"layer {l} ({name})")
        axes[2].set_yscale("log")
        axes[2].set_ylabel("speed ‖∂C/∂b^l‖")
    last = axes[-1]
    last.set_xlabel("epoch")
    last.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) <= 2:  # one or two points: room either side, ticks on the epochs only
        last.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        last.set_xticks(epochs)
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if wrapped:
        top.set_title(wrapped, fontsize=8)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return fig
