"""`python -m experiments all`: every experiment's full run, one after another.

    python -m experiments all [--list] [--from NAME] [--data-dir DIR] [--allow-dirty]

Before it starts it prints the plan and an estimate of the total time: each experiment's wall
time as recorded in the provenance of its committed result, else the rough figure in `ESTIMATE`.
Then it runs `python -m experiments.NAME` for each in turn, in a process of its own, and stops at
the first failure, saying which and how to resume (`--from NAME`). `--list` prints the plan only.

The results should be regenerated from a committed tree: the results test rejects a file whose
provenance says `dirty`. So `all` refuses to start when `git status` shows changes outside
`experiments/results/`, `experiments/runs/` and `runs/`, unless `--allow-dirty`.
"""

import argparse
import json
import subprocess
import sys
import time

from experiments import common

#: Every experiment that writes `experiments/results/NAME.json`, the cheap ones first, with a
#: rough full-run time in seconds on the project's 2-core CPU, used where no committed result
#: has recorded its own.
ESTIMATE = {
    "gradient_descent": 60,  # measured: 40 s
    "chapter1_neurons": 90,
    "sum_over_paths": 240,
    "alternate_presentation": 240,
    "why_backprop_is_fast": 300,
    "gordon": 90,
    "modified_neuron": 150,
    "linear_neurons": 300,
    "learning_slowdown": 420,
    "matrix_minibatch": 300,
    "output_encoding": 300,  # 10 runs of 30 epochs
    "online_vs_minibatch": 600,  # 9 runs of 30 epochs, 9 of 10,000 epochs of 1,000 images
    "eta_sweep": 330,  # 21 runs of the chapter-1 network
    "chapter3_preview": 540,
    "chapter1_table": 660,  # the runs alone took 518 s
    "swap_activations": 1500,  # the runs alone took 1,401 s
    "chapter3_figures": 600,  # from measured epoch times: 0.03, 0.28 and 0.74 s
    "chapter5_unstable": 2400,  # 12 runs of 30 epochs and 32 of 10 on 50,000 images
    "chapter1_gap": 2700,  # the book's loop: 2.65 s per epoch at [784, 30, 10], 5.1 s at 100
    "svm_baseline": 2400,  # extrapolated from fits on 5,000 and 10,000 images
    # its run folders (experiments/runs/chapter6) are committed and finished: it resumes each
    # (seconds); from empty folders about 4 h (rung 5: 60 epochs of 63 s, rung 6: 40 of 102 s)
    "chapter6_ladder": 120,
}
EXPERIMENTS = tuple(ESTIMATE)


def recorded_seconds(name: str) -> float | None:
    """The wall time in the provenance of the committed full result, if there is one."""
    try:
        result = json.loads((common.RESULTS / f"{name}.json").read_text())
        record = result["provenance"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    seconds = record.get("wall_seconds")
    if record.get("quick") is not False or not isinstance(seconds, int | float):
        return None
    if result.get("report"):  # read from run folders (the ladder's --report): not training time
        return None
    return float(seconds)


def plan(names=EXPERIMENTS) -> list[tuple[str, float, str]]:
    """(name, estimated seconds, where the estimate comes from) for each experiment."""
    rows = []
    for name in names:
        seconds = recorded_seconds(name)
        rows.append(
            (name, seconds, "recorded")
            if seconds is not None
            else (name, float(ESTIMATE[name]), "estimate")
        )
    return rows


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def print_plan(rows) -> None:
    total = sum(seconds for _, seconds, _ in rows)
    print(
        f"python -m experiments all: {len(rows)} experiments, estimated {duration(total)} "
        "(wall times recorded in the committed results, else the rough figures in "
        "experiments/__main__.py)"
    )
    for name, seconds, source in rows:
        print(f"  {name:<24} {duration(seconds):>10}  ({source})")
    sys.stdout.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments", description=__doc__.splitlines()[0]
    )
    parser.add_argument("what", choices=["all"], help="`all`: every experiment's full run")
    parser.add_argument("--list", action="store_true", help="print the plan and its estimate only")
    parser.add_argument("--from", dest="start", choices=EXPERIMENTS, help="start at this one")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $FNBACKPROP_DATA)")
    parser.add_argument(
        "--allow-dirty", action="store_true", help="run although the tree has uncommitted changes"
    )
    args = parser.parse_args(argv)
    names = EXPERIMENTS[EXPERIMENTS.index(args.start) :] if args.start else EXPERIMENTS
    rows = plan(names)
    print_plan(rows)
    git = common.git_state()
    if git["dirty"]:
        shown = ", ".join(git["dirty_paths"][:5]) + (", …" if len(git["dirty_paths"]) > 5 else "")
        print(
            "the tree has uncommitted changes outside experiments/results/, experiments/runs/ "
            f"and runs/ ({shown}): "
            "results made now would record dirty = true, which the results test rejects",
            file=sys.stderr,
        )
        if not (args.list or args.allow_dirty):
            print("refused: commit first, or pass --allow-dirty", file=sys.stderr)
            return 2
    if args.list:
        return 0
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    started = time.perf_counter()
    for i, (name, estimate, _) in enumerate(rows):
        print(f"\n[{i + 1}/{len(rows)}] python -m experiments.{name}  (about {duration(estimate)})")
        sys.stdout.flush()
        begin = time.perf_counter()
        code = subprocess.call(
            [sys.executable, "-m", f"experiments.{name}", *extra], cwd=common.REPO
        )
        took = time.perf_counter() - begin
        if code:
            print(
                f"experiments all: {name} failed (exit code {code}) after {duration(took)}; "
                f"the {i} result(s) before it are written. Fix it and resume with "
                f"`python -m experiments all --from {name}`",
                file=sys.stderr,
            )
            return 1
        left = sum(seconds for _, seconds, _ in rows[i + 1 :])
        print(f"[{i + 1}/{len(rows)}] {name}: {duration(took)}; about {duration(left)} to go")
    print(
        f"\nexperiments all: {len(rows)} experiments in {duration(time.perf_counter() - started)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
