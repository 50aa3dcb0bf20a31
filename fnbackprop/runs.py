"""A training run from a config: data, network, SGD, and the files it leaves behind.

`run_training(config, out_dir)` trains as the config says and writes into `out_dir`:

- `config.toml`: the resolved config, every key spelled out;
- `metrics.jsonl`: one JSON object per epoch (`epoch`, `validation_accuracy`, `test_accuracy`,
  their `_correct`, `_total` and `_cost`, and `seconds`);
- `checkpoint.eqx`: parameters, optimizer state, PRNG key, epoch and metrics, after every epoch;
- `learning_curve.png`: accuracy and cost per epoch.

Every file is written atomically, so a run killed at any moment leaves the files of its last
complete epoch, and `run_training(config, out_dir, resume=True)` continues from there to the same
parameters an uninterrupted run reaches.
"""

import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from tqdm import tqdm

from . import checkpoint, sharding
from ._io import atomic_file, write_text_atomic
from .config import Config, build_network, dumps, load, parse
from .data import DATASETS, Splits, load_dataset, one_hot
from .errors import ConfigError, FnbackpropError
from .network import Network, Params
from .training import DivergenceError, TrainState, fit, make_optimizer

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "CURVE",
    "METRICS",
    "RunResult",
    "book_line",
    "load_run",
    "prepare_data",
    "run_training",
]

CONFIG, METRICS, CHECKPOINT, CURVE = (
    "config.toml",
    "metrics.jsonl",
    "checkpoint.eqx",
    "learning_curve.png",
)


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
    `$FNBACKPROP_DATA` or the user cache (downloading there if needed).
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
    n = min(config.data.train_size, len(splits.train.labels))
    n_out = sizes[-1]
    train = (
        jnp.asarray(splits.train.images[:n], dtype),
        jnp.asarray(one_hot(splits.train.labels[:n], n_out), dtype),
    )
    evaluation = {
        name: (jnp.asarray(split.images, dtype), jnp.asarray(split.labels))
        for name, split in (("validation", splits.validation), ("test", splits.test))
    }
    return train, evaluation, splits


def book_line(metrics: dict) -> str:
    """`Epoch 0: 9129 / 10000`, the book's progress line, with the validation score after it."""
    return (
        f"Epoch {metrics['epoch']}: {metrics['test_correct']} / {metrics['test_total']}"
        f"  (validation {metrics['validation_correct']} / {metrics['validation_total']}, "
        f"{metrics['seconds']:.2f} s)"
    )


def run_training(
    config: Config,
    out_dir: "str | os.PathLike | None" = None,
    *,
    resume: bool = False,
    data_dir: "str | os.PathLike | None" = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
) -> RunResult:
    """Train as `config` says; with `out_dir`, write the run's files there after every epoch.

    With `resume=True`, continue the run saved in `out_dir` (its checkpoint must exist).
    Raises `DivergenceError` (after writing the curve so far) if training diverges; the
    checkpoint of the last good epoch is left as it was.
    """
    out = Path(out_dir) if out_dir is not None else None
    _check_config(config)
    if resume and (out is None or not (out / CHECKPOINT).is_file()):
        raise FnbackpropError(
            f"nothing to resume: no {CHECKPOINT} in {out} (give the folder of an earlier run)"
        )
    if out is not None and jax.process_index() == 0:
        _prepare_folder(out, config, fresh=not resume)
    run = _start(config, data_dir, progress)
    metrics: list[dict] = []
    if resume:
        run, metrics = _resume(run, out)
    if jax.process_index() > 0:  # several processes: process 0 alone writes the run's files
        out = None
    if out is not None:
        _write_metrics(out, metrics)  # after a crash, the metrics of the checkpoint's epochs
    state = _train(config, run, metrics, out, progress, echo)
    return RunResult(run.net, state.params, metrics)


class _Run(NamedTuple):
    """What a run is made of before its first epoch."""

    net: Network
    state: TrainState
    key: jax.Array  # the training key; epoch e shuffles with fold_in(key, e)
    optimizer: optax.GradientTransformation
    train: tuple
    evaluation: dict


def _start(config: Config, data_dir, progress: bool) -> _Run:
    """The network, optimizer, initial state and keys, and the data on the device(s)."""
    dtype = _dtype(config)
    net = build_network(config)
    t = config.training
    key_init, key_train = jax.random.split(jax.random.key(t.seed))
    mesh = sharding.data_mesh(t.devices) if t.devices > 1 else None  # too many: fail here
    train, evaluation, _ = prepare_data(config, data_dir, progress=progress)
    if mesh is not None:  # the data once on every device; each epoch splits every mini-batch
        train, evaluation = sharding.replicate((train, evaluation), mesh)
    optimizer = make_optimizer(
        t.optimizer, t.eta, lmbda=t.lmbda, n=int(train[0].shape[0]), momentum=t.momentum
    )
    params = net.init(key_init, config.network.init, dtype)
    state = TrainState(params, optimizer.init(params), 0)
    return _Run(net, state, key_train, optimizer, train, evaluation)


def _resume(run: _Run, out: Path) -> tuple[_Run, list[dict]]:
    """The run as its checkpoint in `out` left it, and the metrics of its epochs."""
    state, key, header = checkpoint.load(out / CHECKPOINT, run.net, run.state)
    return run._replace(state=state, key=key), list(header["metrics"])


def _train(config: Config, run: _Run, metrics: list[dict], out, progress: bool, echo):
    """The epochs: each one's metrics appended, its files written, its line printed."""
    t = config.training
    state = run.state
    bar = tqdm(
        total=t.epochs, initial=state.epoch, desc="epochs", unit="epoch", disable=not progress
    )
    try:
        for epoch_state, epoch_metrics in fit(
            run.net,
            run.state,
            run.train,
            run.evaluation,
            epochs=t.epochs,
            mini_batch_size=t.mini_batch_size,
            optimizer=run.optimizer,
            gradient=t.gradient,
            key=run.key,
            devices=t.devices,
        ):
            state = epoch_state
            metrics.append(epoch_metrics)
            if out is not None:
                _write_metrics(out, metrics)
                checkpoint.save(out / CHECKPOINT, run.net, state, run.key, metrics)
            if progress:
                bar.write(book_line(epoch_metrics))
            elif echo is not None:
                echo(book_line(epoch_metrics))
            bar.update(1)
    except DivergenceError as err:
        if out is None or not metrics:
            raise
        plot_learning_curve(metrics, out / CURVE, title=_title(config))
        raise DivergenceError(
            f"{err}; {out / CHECKPOINT} keeps epoch {metrics[-1]['epoch']}, the last good one"
        ) from None
    finally:
        bar.close()
    if out is not None and metrics:
        plot_learning_curve(metrics, out / CURVE, title=_title(config))
    return state


def load_run(run: "str | os.PathLike") -> tuple[Config, Network, Params, dict]:
    """The config, network, parameters and checkpoint header of a saved run.

    `run` is a run folder or the checkpoint file inside one (its `config.toml` beside it).
    """
    path = Path(run)
    folder, ckpt = (path, path / CHECKPOINT) if path.is_dir() else (path.parent, path)
    checkpoint.read_header(ckpt)  # a missing or foreign file is named as such, before the config
    if not (folder / CONFIG).is_file():
        raise FnbackpropError(f"no {CONFIG} beside the checkpoint in {folder}")
    config = load(folder / CONFIG)
    dtype = _dtype(config)
    net = build_network(config)
    t = config.training
    params = net.init(jax.random.key(0), config.network.init, dtype)
    optimizer = make_optimizer(t.optimizer, t.eta, lmbda=t.lmbda, momentum=t.momentum)
    state, _, header = checkpoint.load(ckpt, net, TrainState(params, optimizer.init(params), 0))
    return config, net, state.params, header


def _write_metrics(out: Path, metrics: list[dict]) -> None:
    write_text_atomic(out / METRICS, "".join(json.dumps(m) + "\n" for m in metrics))


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


def _prepare_folder(out: Path, config: Config, fresh: bool) -> None:
    """Create `out`, remove temporary files a killed run left there, and write the config.

    A fresh run also removes an earlier run's checkpoint, so that the checkpoint in a folder
    always belongs to the config beside it, even if this run is killed before its first epoch.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, METRICS, CHECKPOINT, CURVE):
            for part in out.glob(f".{name}.*.part"):  # atomic_file's names
                part.unlink()
        if fresh:
            (out / CHECKPOINT).unlink(missing_ok=True)
        write_text_atomic(out / CONFIG, dumps(config))
    except OSError as err:
        raise FnbackpropError(
            f"cannot write the run's files in {out} ({err.strerror or err}): choose another --out"
        ) from None


def _title(config: Config) -> str:
    n, t = config.network, config.training
    sigma = n.activation if isinstance(n.activation, str) else "/".join(n.activation)
    return (
        f"{list(n.sizes)} {sigma}, {n.cost}, η={t.eta:g}, λ={t.lmbda:g}, "
        f"m={t.mini_batch_size}, seed {t.seed}"
    )


def plot_learning_curve(metrics: list[dict], path: "str | os.PathLike", title: str = "") -> None:
    """Accuracy and cost per epoch, validation and test, as a PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in metrics]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for name in ("validation", "test"):
        top.plot(epochs, [100 * m[f"{name}_accuracy"] for m in metrics], marker=".", label=name)
        bottom.plot(epochs, [m[f"{name}_cost"] for m in metrics], marker=".", label=name)
    top.set_ylabel("accuracy (%)")
    bottom.set_ylabel("mean cost C")
    bottom.set_xlabel("epoch")
    top.legend()
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    top.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
