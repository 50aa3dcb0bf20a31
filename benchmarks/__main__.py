"""`python -m benchmarks [--quick] [--json PATH] [--data-dir DIR] [--skip PART]`.

Prints the tables and the issue's bars; `--json PATH` writes the rows (a list of objects, each
with at least `case`, `method`, `mini_batch`, `median_s`, `min_s`, `max_s`).
"""

import argparse
import os
import sys
from pathlib import Path

from . import report, sharding, suite

PARTS = ("together", "chapter1", "one-cpu", "sharding")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small version that runs quickly")
    parser.add_argument("--json", type=Path, help="write the rows here as JSON")
    parser.add_argument("--data-dir", help="MNIST folder (default: $FNBACKPROP_DATA)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=PARTS,
        help="leave out a part: the interleaved timings, the chapter-1 run, the one-CPU epochs, "
        "the sharded epochs",
    )
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    settings = suite.QUICK if args.quick else suite.FULL
    folder = suite.data_dir(args.data_dir)

    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    progress = report.progress
    rows: list[dict] = []
    if "together" not in args.skip:
        progress("peak, epochs, NumPy baselines, evaluation, gradients (interleaved)")
        rows += suite.timed_together(settings, folder, progress)
    if "chapter1" not in args.skip:
        progress("the chapter-1 run in a subprocess")
        rows += suite.chapter1_run(settings, folder)
    if "one-cpu" not in args.skip:
        progress("the chapter-1 epoch on every CPU and on one (two worker processes)")
        rows += suite.one_cpu(settings)
    if "sharding" not in args.skip:
        progress("sharded epochs (one process per device count)")
        rows += sharding.rows(args.quick)
    print(report.tables(rows))
    print("\nBars:\n" + "\n".join(f"- {line}" for line in report.bars(rows)))
    if args.json is not None:
        report.write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
