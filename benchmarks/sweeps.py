"""How to run a sweep of K chapter-1 runs fastest: K processes, one process, or vmapped.

    python -m benchmarks.sweeps [--quick] [--json PATH] [--data-dir DIR]

K runs of the chapter-1 network ([784, 30, 10], sigmoid, quadratic, mini-batch 10, the 50,000
MNIST training images), `EPOCHS` epochs each, evaluated on validation and test after every epoch
and saved as fnbackprop saves every run (metrics, checkpoints, curve), as whole `fnbackprop
train` commands timed from start to end (Python and JAX start-up, data, compiling, training,
files), interleaved round by round. Two sweeps of K runs:

- over seeds (seed = 0 … K−1, η = 3): `processes`, K separate `fnbackprop train CONFIG
  --set training.seed=i --out DIR/i` commands one after another (two at once would only share
  the same two cores), against `one process`, one `fnbackprop train CONFIG
  --set 'training.seed=[0,…,K−1]' --out DIR` (runs of different seeds run in sequence);
- over η (η = 3.00, 3.01, …, one seed): `processes` again, against one command run
  `--sweep-strategy sequential` and `--sweep-strategy vmap` (the K runs as one vmapped program
  sharing one mini-batch order).

Then, inside one process and interleaved (`epoch` rows), one chapter-1 epoch of K runs: in
sequence, vmapped with one shared mini-batch order, and vmapped with each run's own order (each
run gathers its own rows, so nothing stacks): the programs without start-up or files.

Every row: wall seconds (median, min, max over rounds), runs per minute and, for the epoch rows,
seconds per run-epoch. The persistent compilation cache is warmed first, as after any first use.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import report
from .stats import spread
from .tables import markdown_table

REPO = Path(__file__).resolve().parents[1]
CHAPTER1 = REPO / "experiments" / "configs" / "chapter1.toml"
EPOCHS = 1
FULL = {"runs": (4, 8, 16), "rounds": 3, "train_size": 50_000, "epoch_rounds": 5, "warm_up": True}
QUICK = {"runs": (2,), "rounds": 1, "train_size": 1_000, "epoch_rounds": 1, "warm_up": False}
#: (sweep, strategy) pairs timed as whole commands
STRATEGIES = (
    ("seeds", "processes"),
    ("seeds", "one process"),
    ("eta", "processes"),
    ("eta", "one process, in sequence"),
    ("eta", "one process, vmapped"),
)


def _env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "fnbackprop.cli", "train", *map(str, args)]


def _common(train_size: int, data_dir: str | None) -> list[str]:
    args = ["--set", f"training.epochs={EPOCHS}", "--set", f"data.train_size={train_size}"]
    args += ["--quiet"]
    return args + (["--data-dir", data_dir] if data_dir else [])


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")


def etas(k: int) -> list[float]:
    """K learning rates near the book's 3.0."""
    return [round(3.0 + 0.01 * i, 2) for i in range(k)]


def strategy_command(
    sweep: str, strategy: str, k: int, folder: Path, train_size: int, data_dir
) -> list[list]:
    """The commands that run the K runs of `sweep` by `strategy`, run in turn."""
    common = _common(train_size, data_dir)
    key, values = (
        ("training.seed", list(range(k))) if sweep == "seeds" else ("training.eta", etas(k))
    )
    if strategy == "processes":
        return [
            _cli(CHAPTER1, "--set", f"{key}={v}", "--out", folder / f"{i}", *common)
            for i, v in enumerate(values)
        ]
    listed = f"{key}=[{','.join(map(str, values))}]"
    how = {"one process": "auto", "one process, in sequence": "sequential"}.get(strategy, "vmap")
    return [_cli(CHAPTER1, "--set", listed, "--out", folder, "--sweep-strategy", how, *common)]


def time_strategies(settings: dict, data_dir: str | None, progress=None) -> list[dict]:
    """Whole-command wall times of every sweep, strategy and K, interleaved over rounds."""
    cases = [(sweep, s, k) for k in settings["runs"] for sweep, s in STRATEGIES]
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for sweep, s in STRATEGIES if settings["warm_up"] else ():  # fills the compile cache
            warm = Path(tmp) / "warm" / f"{sweep}-{s}".replace(" ", "_").replace(",", "")
            for cmd in strategy_command(sweep, s, 2, warm, settings["train_size"], data_dir):
                _run(cmd)
        order = list(cases)
        for r in range(settings["rounds"]):
            random.Random(r).shuffle(order)
            for sweep, s, k in order:
                name = f"r{r}-{sweep}-{s}-{k}".replace(" ", "_").replace(",", "")
                start = time.perf_counter()
                for cmd in strategy_command(
                    sweep, s, k, Path(tmp) / name, settings["train_size"], data_dir
                ):
                    _run(cmd)
                times[(sweep, s, k)].append(time.perf_counter() - start)
            if progress:
                progress(f"round {r + 1}/{settings['rounds']}")
    rows = []
    for (sweep, s, k), wall in times.items():
        summary = spread(wall)
        rows.append(
            {
                "case": "sweep",
                "sweep": sweep,
                "strategy": s,
                "runs": k,
                "epochs": EPOCHS,
                "train_size": settings["train_size"],
                **summary,
                "runs_per_minute": 60 * k / summary["median_s"],
            }
        )
    for row in rows:  # speed-up over K separate processes of the same sweep
        base = next(
            r
            for r in rows
            if (r["runs"], r["sweep"], r["strategy"]) == (row["runs"], row["sweep"], "processes")
        )
        row["vs_processes"] = base["median_s"] / row["median_s"]
    return rows


# -- the vmapped strategy ------------------------------------------------------------------------


def _setup(k: int, train_size: int, data_dir):
    import jax
    import jax.numpy as jnp

    from fnbackprop import config as fconfig
    from fnbackprop import optimizers, runs

    c = fconfig.load(CHAPTER1, [f"data.train_size={train_size}"])
    net = fconfig.build_network(c)
    (X, Y), evaluation, _ = runs.prepare_data(c, data_dir, progress=False)
    optimizer = optimizers.make_optimizer("sgd", c.training.eta)
    params, states = [], []
    for seed in range(k):
        key_init, _ = jax.random.split(jax.random.key(seed))
        p = net.init(key_init, c.network.init)
        params.append(p)
        states.append(optimizer.init(p))
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    keys = jnp.stack([jax.random.split(jax.random.key(s))[1] for s in range(k)])
    return c, net, optimizer, params, states, stack(params), stack(states), keys, X, Y, evaluation


def vmapped_epochs(net, optimizer, m: int, shared_order: bool):
    """K runs' epoch as one program: `epoch(P, S, key(s), X, Y, p)` over stacked params and
    states; one key (shared mini-batch order: fnbackprop's `make_vmapped_epoch`) or one per run."""
    import jax

    from fnbackprop import training

    if shared_order:
        return training.make_vmapped_epoch(net, optimizer, mini_batch_size=m)
    one = training._one_device_epoch(training.sgd_update(net, optimizer, "backprop"), m, None)
    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, None, None)))


def time_epochs(settings: dict, data_dir, progress=None) -> list[dict]:
    """One epoch of K runs in one process: in sequence, vmapped (shared order), vmapped (own
    orders); interleaved rounds."""
    rows = []
    for k in settings["runs"]:
        rows += _epoch_rows(k, settings, data_dir, progress)
    return rows


def _epoch_rows(k: int, settings: dict, data_dir, progress) -> list[dict]:
    import jax.numpy as jnp

    from fnbackprop import training

    from .timing import interleave

    c, net, optimizer, params, states, P, S, keys, X, Y, _ = _setup(
        k, settings["train_size"], data_dir
    )
    m = c.training.mini_batch_size
    one = training.make_epoch(net, optimizer, mini_batch_size=m)
    shared = vmapped_epochs(net, optimizer, m, shared_order=True)
    own = vmapped_epochs(net, optimizer, m, shared_order=False)
    p = jnp.zeros((), X.dtype)

    def in_sequence():
        return [
            one(a, b, keys[i], X, Y) for i, (a, b) in enumerate(zip(params, states, strict=True))
        ]

    cases = {
        "in sequence": in_sequence,
        "vmapped, shared order": lambda: shared(P, S, keys[0], X, Y, jnp.zeros(k, X.dtype)),
        "vmapped, own orders": lambda: own(P, S, keys, X, Y, p),
    }
    samples = interleave(cases, settings["epoch_rounds"], progress=progress)
    base = statistics.median(samples["in sequence"].wall)
    rows = []
    for name, sample in samples.items():
        summary = sample.summary()
        rows.append(
            {
                "case": "sweep epoch",
                "strategy": name,
                "runs": k,
                "train_size": settings["train_size"],
                **summary,
                "per_run_epoch_s": summary["median_s"] / k,
                "vs_in_sequence": base / summary["median_s"],
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    columns = (
        "K runs:", "sweep over", "strategy", "wall s (median):", "min–max s:",
        "runs per minute:", "× K processes:",
    )  # fmt: skip
    cells = [
        (
            r["runs"],
            r["sweep"],
            r["strategy"],
            f"{r['median_s']:.1f}",
            f"{r['min_s']:.1f}–{r['max_s']:.1f}",
            f"{r['runs_per_minute']:.1f}",
            f"{r['vs_processes']:.2f}",
        )
        for r in rows
        if r["case"] == "sweep"
    ]
    text = markdown_table(columns, cells)
    epoch_rows = [r for r in rows if r["case"] == "sweep epoch"]
    if epoch_rows:
        columns = (
            "K runs:", "one epoch of K runs, in one process", "s (median):", "s per run-epoch:",
            "× in sequence:",
        )  # fmt: skip
        cells = [
            (
                r["runs"],
                r["strategy"],
                f"{r['median_s']:.3f}",
                f"{r['per_run_epoch_s']:.3f}",
                f"{r['vs_in_sequence']:.2f}",
            )
            for r in epoch_rows
        ]
        text += "\n\n" + markdown_table(columns, cells)
    return text


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweeps", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="K = 2 on 2,000 images, one round")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--data-dir", help="MNIST folder (default: $FNBACKPROP_DATA)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL

    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    rows = time_strategies(settings, args.data_dir, report.progress)
    rows += time_epochs(settings, args.data_dir, report.progress)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    print(table(rows))
    if args.json is not None:
        report.write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
