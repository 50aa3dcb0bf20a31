"""The `fnbackprop` command: train, evaluate, data, check.

Every error a user can cause (a bad config, a missing or broken file, an unwritable folder, a
wrong shape, a diverging run) prints one line on stderr and exits with code 2, as argparse does for
a bad command line. Any other exception is a bug in fnbackprop: one line saying so, exit code 1.
`--debug` prints the traceback before the line.
"""

import argparse
import json
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
        help="override a config value, e.g. --set training.eta=0.5 (repeatable)",
    )
    train.add_argument("--out", metavar="DIR", help="write config, metrics, checkpoint, plot here")
    train.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR")
    train.add_argument("--data-dir", metavar="DIR", help="where the data files are")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
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
    import jax

    from . import config as configs
    from . import sharding
    from .runs import CONFIG, run_training

    sharding.initialize(args.coordinator, args.num_processes, args.process_id)
    if args.resume:
        if args.config or args.overrides:
            raise FnbackpropError(
                "--resume DIR continues DIR's own config: give no CONFIG or --set"
            )
        if not (Path(args.resume) / CONFIG).is_file():
            raise FnbackpropError(
                f"nothing to resume in {args.resume}: no {CONFIG} there "
                "(give the --out folder of an earlier run)"
            )
        config = configs.load(Path(args.resume) / CONFIG)
        out = args.resume
    elif args.config:
        config = configs.load(args.config, args.overrides)
        out = args.out
    else:
        raise FnbackpropError("train needs a CONFIG file (or --resume DIR)")
    if config.training.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    run_training(
        config, out, resume=bool(args.resume), data_dir=args.data_dir, progress=not args.quiet
    )
    return 0


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
    _, evaluation, _ = prepare_data(config, args.data_dir, progress=False)
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
    from .check import format_table, run_check, to_json

    rows = []
    for row in run_check(args.seed, activation=args.activation, cost=args.cost):
        rows.append(row)
        if not args.json:
            print(f"  checked {row.case}", file=sys.stderr, flush=True)
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
