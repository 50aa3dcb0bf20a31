"""Where one compiled epoch spends its time: a `jax.profiler` trace, summed per XLA operation.

    python -m benchmarks.profile_epoch [--method backprop] [--mini-batch 10] [--hlo PATH]

Times one chapter-1 epoch ([784, 30, 10] on the 50,000 MNIST training images) under the
profiler, after a warm-up call that compiles it, and prints every operation of the compiled
program that took at least 0.5 % of the epoch: total milliseconds, calls, microseconds per call.
`--hlo PATH` writes the compiled program (`jit(epoch).lower(…).compile().as_text()`) there.
The profiler adds about a microsecond per operation, so the per-call figures are upper bounds.
"""

import os

# XLA's CPU runtime records each operation in the trace only with this flag, read at start-up.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_enable_xprof_traceme=true"

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax

from fnbackprop import optimizers, training
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.network import Network

from .suite import ETA, SEED, SIZES, data_dir, n_params

SHOWN = 0.005  # operations below this share of the epoch are summed as "other"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_epoch")
    parser.add_argument("--method", default="backprop", choices=training.GRADIENTS.names())
    parser.add_argument("--mini-batch", type=int, default=10)
    parser.add_argument("--hlo", type=Path, help="write the compiled program here")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    splits = load_dataset("mnist", data_dir(args.data_dir), progress=False)
    X = jax.device_put(splits.train.images)
    Y = jax.device_put(one_hot(splits.train.labels, SIZES[-1]))
    net = Network(SIZES)
    optimizer = optimizers.make_optimizer("sgd", ETA)
    params = net.init(jax.random.key(SEED))
    epoch = training.make_epoch(
        net, optimizer, gradient=args.method, mini_batch_size=args.mini_batch
    )
    call = (params, optimizer.init(params), jax.random.key(SEED + 1), X, Y)
    hlo = epoch.lower(*call).compile().as_text()
    if args.hlo is not None:
        args.hlo.write_text(hlo)
    jax.block_until_ready(epoch(*call))
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            start = time.perf_counter()
            jax.block_until_ready(epoch(*call))
            wall = time.perf_counter() - start
        events = _events(folder)
    names = set(re.findall(r"%([\w.\-]+) = ", hlo))
    print(
        f"{args.method}, mini-batch {args.mini_batch}: {wall * 1e3:.1f} ms under the profiler; "
        f"{6 * n_params(SIZES) * len(X) / 1e9:.2f} GFLOP at the FLOP limit's count"
    )
    print(_table(events, names, wall))


def _events(folder: str) -> list[dict]:
    (path,) = Path(folder).glob("**/*.trace.json.gz")
    with gzip.open(path) as f:
        return [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]


def _table(events: list[dict], names: set[str], wall: float) -> str:
    """Per operation of the compiled program: total ms, calls, µs per call, share of the epoch."""
    total, calls = collections.Counter(), collections.Counter()
    for e in events:
        if e["name"] in names and not e["name"].startswith("while"):  # loops contain the rest
            total[e["name"]] += e["dur"] / 1e6
            calls[e["name"]] += 1
    lines = [
        "| operation | ms | calls | µs per call | share of the epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    other = 0.0
    for name, seconds in total.most_common():
        if seconds < SHOWN * wall:
            other += seconds
            continue
        lines.append(
            f"| {name} | {seconds * 1e3:.1f} | {calls[name]} | {seconds / calls[name] * 1e6:.1f} "
            f"| {seconds / wall:.0%} |"
        )
    accounted = sum(total.values())
    lines.append(f"| other operations | {other * 1e3:.1f} | | | {other / wall:.0%} |")
    lines.append(
        f"| between operations (runtime, loop control) | {(wall - accounted) * 1e3:.1f} | | | "
        f"{(wall - accounted) / wall:.0%} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
