"""The `fnbackprop` command: train, evaluate, data, check.

Every error a user can cause (a bad config, a missing or broken file, an unwritable folder, a
wrong shape, a diverging run) prints one line on stderr and exits with code 2, as argparse does for
a bad command line. Any other exception is a bug in fnbackprop: one line saying so, exit code 1.
`--debug` prints the traceback before the line.

`fnbackprop train` with a list where a number is expected (`--set 'training.seed=[0,1,2]'`) or a
`[sweep]` table (`--set 'sweep.network.activation=["sigmoid","tanh"]'`) runs a sweep
(`fnbackprop.sweeps`); without `--out` it saves under `runs/<config>-<time>/` and says where. A
folder that holds a run (a saved epoch) is refused unless `--overwrite` or `--resume` says
otherwise; `--resume DIR --set training.epochs=N` trains a finished run further. Before the first
epoch, every σ and cost that is not built in is checked against its contract (`--no-check`
skips that but for the shapes).
"""

import argparse
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import FnbackpropError

USER_ERROR = 2
INTERNAL_ERROR = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnbackprop",
        description="Backpropagation as pure functions in JAX, after Nielsen's chapters 1–2.",
    )
    parser.add_argument("--version", action="version", version=f"fnbackprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a network as a config file says")
    train.add_argument(
        "config", nargs="?", help="a TOML config, e.g. experiments/configs/chapter1.toml"
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a config value, e.g. --set training.eta=0.5 (repeatable); a list where a "
        "number is expected, --set 'training.seed=[0,1,2]', or any key under sweep., --set "
        '\'sweep.network.activation=["sigmoid","tanh"]\', makes a sweep of every combination',
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="write config, metrics, checkpoints, plot here (default: runs/CONFIG-TIME/); a "
        "sweep writes one folder per run here, plus summary.json and sweep.png",
    )
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run (or sweep) saved in DIR; --set training.epochs=N trains a "
        "finished one further",
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace the run (or sweep) already in --out"
    )
    train.add_argument(
        "--sweep-strategy",
        choices=("auto", "sequential", "vmap"),
        default="auto",
        help="how a sweep's runs train: one after another, or runs that differ only in eta, "
        "lmbda, l1, momentum, dropout as one vmapped program; auto (default): vmap groups of 8 "
        "or more such runs",
    )
    train.add_argument("--data-dir", metavar="DIR", help="where the data files are")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--no-check",
        action="store_true",
        help="skip the check of your own σ and cost against jax.grad before the first epoch "
        "(about 0.3 s each; built-ins are never checked); their shapes are checked anyway",
    )
    hosts = train.add_argument_group(
        "several hosts", "one process per host, all with the same arguments but --process-id"
    )
    hosts.add_argument(
        "--coordinator", metavar="HOST:PORT", help="process 0's address ($JAX_COORDINATOR_ADDRESS)"
    )
    hosts.add_argument(
        "--num-processes", type=int, metavar="N", help="processes in all ($JAX_NUM_PROCESSES)"
    )
    hosts.add_argument(
        "--process-id", type=int, metavar="I", help="this process, 0..N-1 ($JAX_PROCESS_ID)"
    )

    evaluate = commands.add_parser("evaluate", help="report a saved network's accuracy")
    evaluate.add_argument("checkpoint", help="a run folder or its checkpoint.eqx")
    evaluate.add_argument("--data-dir", metavar="DIR", help="where the data files are")
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    data = commands.add_parser("data", help="download or verify a data set")
    data.add_argument("action", choices=("download", "verify"))
    data.add_argument(
        "--dataset", default="mnist", help="mnist (default), fashion_mnist, mnist_pkl"
    )
    data.add_argument("--data-dir", metavar="DIR", help="the data folder (default: see README)")

    check = commands.add_parser(
        "check",
        help="compare every form of backprop with jax.grad and finite differences",
        description="Without --activation or --cost: every built-in σ and cost, and every form "
        "of backprop on small networks of them. With them: your σ′ or ∇C against jax.grad, "
        "the contract, and networks beside every built-in partner (or the other one given). "
        "Exit code 1 if anything disagrees.",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--seed", type=int, default=0, help="seed of the random networks")
    check.add_argument(
        "--activation", metavar="SPEC", help="a name or package.module:Name, e.g. my_sigmas:Swish"
    )
    check.add_argument("--cost", metavar="SPEC", help="a name or package.module:Name")
    return parser


def _train(args) -> int:
    import functools

    import jax

    from . import config as configs
    from . import runs, sharding, sweeps

    sharding.initialize(args.coordinator, args.num_processes, args.process_id)
    if args.resume:
        if args.config:
            raise FnbackpropError("--resume DIR continues DIR's own config: give no CONFIG")
        if args.overwrite:
            raise FnbackpropError("--resume continues a run and --overwrite replaces it: give one")
        out = Path(args.resume)
        sweep = _resumed(out, args.overrides)
    else:
        if not args.config:
            raise FnbackpropError("train needs a CONFIG file (or --resume DIR)")
        sweep = configs.load_sweep(args.config, args.overrides)
        out = args.out
        if out is None:
            out = runs.default_out(args.config)
            print(f"fnbackprop: no --out given: saving in {out}", flush=True)
    _enable_x64(jax, sweep.runs.values())
    how = {
        "resume": bool(args.resume),
        "overwrite": args.overwrite,
        "data_dir": args.data_dir,
        "progress": not args.quiet,
        "label": " ".join(f"--set {o}" for o in args.overrides),
        "check": not args.no_check,
        "echo": functools.partial(print, flush=True),  # one whole line per epoch, even in a pipe
    }
    try:
        if sweep.axes:
            sweeps.run_sweep(sweep, out, strategy=args.sweep_strategy, **how)
        else:
            (config,) = sweep.runs.values()
            runs.run_training(config, out, **how)
    except BaseException:
        if args.out is None and not args.resume:  # the folder we chose: leave nothing if
            _discard_unstarted(Path(out))  # no epoch was saved
        raise
    return 0


def _discard_unstarted(folder: Path) -> None:
    """Remove a run folder this command created if it holds no more than its config (the run
    failed before its first epoch); a sweep folder, if none of its runs saved an epoch."""
    import shutil

    from .runs import CHECKPOINT

    if not folder.is_dir() or any(folder.rglob(CHECKPOINT)):
        return
    shutil.rmtree(folder, ignore_errors=True)


def _enable_x64(jax, configs) -> None:
    if any(c.training.dtype == "float64" for c in configs):
        jax.config.update("jax_enable_x64", True)


def _resumed(folder: Path, overrides: list[str]):
    """The run or sweep saved in `folder` as a `Sweep` (a run: no axes, one run), with
    `--set training.epochs=N` applied to every run (nothing else may change: see
    `runs.resumed_config`)."""
    from .config import Sweep, load_sweep
    from .runs import resumed_config
    from .sweeps import SWEEP_CONFIG

    if not (folder / SWEEP_CONFIG).is_file():
        return Sweep({}, {"": resumed_config(folder, overrides)})
    sweep = load_sweep(folder / SWEEP_CONFIG)
    if not overrides:
        return sweep
    extended = {
        name: resumed_config(folder / name, overrides, saved=config)
        for name, config in sweep.runs.items()
    }
    return Sweep(sweep.axes, extended)


def _evaluate(args) -> int:
    import jax

    from . import config as configs
    from .runs import CONFIG, load_run, prepare_data
    from .training import evaluate

    folder = Path(args.checkpoint)
    folder = folder if folder.is_dir() else folder.parent
    if (folder / CONFIG).is_file() and configs.load(folder / CONFIG).training.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    config, net, params, header = load_run(args.checkpoint)
    unexpanded = dataclasses.replace(config, data=dataclasses.replace(config.data, expand=False))
    _, evaluation, _ = prepare_data(unexpanded, args.data_dir, progress=False)  # sets to score
    results = {"epoch": header["epoch"]}
    for name, (X, labels) in evaluation.items():
        correct, mean_cost = evaluate(net, params, X, labels)
        results[name] = {
            "correct": correct,
            "total": len(labels),
            "accuracy": correct / len(labels),
            "cost": mean_cost,
        }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"after {results['epoch']} epochs:")
        for name in ("validation", "test"):
            r = results[name]
            score = f"{r['correct']} / {r['total']} ({100 * r['accuracy']:.2f} %)"
            print(f"  {name}: {score}, cost {r['cost']:.4f}")
    return 0


def _data(args) -> int:
    from . import data

    dataset = data.DATASETS.get(args.dataset)
    if args.action == "download":
        root = data.resolve_data_dir(args.data_dir, dataset)
        for path in data.download(dataset, root):
            print(f"ok  {path}")
        return 0
    checks = data.verify(dataset, args.data_dir)
    for c in checks:
        print(f"{'ok ' if c.ok else 'BAD'} {c.file}: {c.reason}")
    bad = [c for c in checks if not c.ok]
    if bad:
        folder = bad[0].file.parent
        fix = (
            f"run `fnbackprop data download --dataset {dataset.name} --data-dir {folder}`"
            if dataset.mirrors
            else dataset.note
        )
        raise FnbackpropError(
            f"{len(bad)} of {len(checks)} {dataset.name} files in {folder} are missing or "
            f"damaged (see above): {fix}"
        )
    return 0


def _check(args) -> int:
    from tqdm import tqdm

    from .check import format_table, run_check, to_json

    # each row is printed once, in the table; a terminal sees a count while they are measured
    checking = run_check(args.seed, activation=args.activation, cost=args.cost)
    quiet = not sys.stderr.isatty()
    rows = list(tqdm(checking, "checking", unit=" rows", leave=False, disable=quiet))
    print(to_json(rows) if args.json else format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


COMMANDS = {"train": _train, "evaluate": _evaluate, "data": _data, "check": _check}


def _keep_compiled_programs() -> None:
    """Use JAX's persistent compilation cache, so a second run skips most XLA compilation.

    The cache lives in `$JAX_COMPILATION_CACHE_DIR` if set (JAX reads it itself), else in
    `~/.cache/fnbackprop/jax`; `FNBACKPROP_NO_COMPILATION_CACHE=1` turns it off.
    """
    import os

    import jax

    if os.environ.get("FNBACKPROP_NO_COMPILATION_CACHE") == "1":
        return
    if not os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # small ones add up
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
        jax.config.update("jax_compilation_cache_dir", str(cache / "fnbackprop" / "jax"))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _keep_compiled_programs()
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `fnbackprop … | head`: the reader has gone, as in other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # 128 + SIGPIPE, the shell's code for a closed pipe
    except (FnbackpropError, OSError) as err:  # the user's to fix: a config, a file, a folder
        return _fail(args, f"error: {err}", USER_ERROR)
    except KeyboardInterrupt:
        print("fnbackprop: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug in fnbackprop: one line, the traceback with --debug
        message = f"internal error: {type(err).__name__}: {err}; rerun with --debug for details"
        return _fail(args, message, INTERNAL_ERROR)


def _fail(args, message: str, code: int) -> int:
    """Print `message` as one line on stderr (after the traceback with --debug); return `code`."""
    if args.debug:
        traceback.print_exc()
    print("fnbackprop: " + " ".join(message.split()), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
