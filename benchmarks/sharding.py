"""Benchmark: one chapter-1 epoch, mini-batch size × device count, the mini-batch sharded.

The book's network ([784, 30, 10], quadratic cost, η = 3.0) trains one epoch on the 50,000
training images with each mini-batch split across d devices (`training.devices = d`). A
process's device count is fixed when it starts, so each d gets its own worker process (fake CPU
devices via `XLA_FLAGS=--xla_force_host_platform_device_count=d`; d = 1 is the unsharded path).
The workers stay up; one round asks every worker for every case once, so slow spells on this
shared machine hit all cases alike; round 0 compiles and is not counted; rows give medians.

On CPU, fake devices share the same cores: the rows show what sharding costs (an all-reduce
every step, per-device hand-offs), never a speed-up.

    python -m benchmarks.sharding [--quick]
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .stats import spread
from .tables import markdown_table

REPO = Path(__file__).resolve().parents[1]
SIZES = (784, 30, 10)
DEVICES = (1, 2, 4)
MINI_BATCHES = (100, 1000)
CPUS = "FNBACKPROP_BENCHMARK_CPUS"  # a worker's CPUs (its affinity), when set
CPU_NOTE = (
    "fake CPU devices sharing {cores} cores: shows the overhead of sharding (an all-reduce per "
    "step), not a speed-up"
)


def rows(quick: bool = False) -> list[dict]:
    """One row per (method, mini-batch size, device count): the median seconds of an epoch."""
    methods = ("backprop",) if quick else ("backprop", "backprop_batch", "autodiff")
    repeats = 3 if quick else 7
    cases = [(method, m) for method in methods for m in MINI_BATCHES]
    workers = {d: _Worker(d) for d in DEVICES}
    try:
        usable = [d for d, w in workers.items() if w.device_count >= d]
        times: dict[tuple, list[float]] = {}
        for r in range(repeats + 1):
            for method, m in cases:
                for d in usable:
                    seconds = workers[d].epoch(method, m)
                    if r:  # round 0 compiles
                        times.setdefault((method, m, d), []).append(seconds)
        platform = workers[1].platform
    finally:
        for w in workers.values():
            w.close()
    note = CPU_NOTE.format(cores=os.cpu_count()) if platform == "cpu" else f"{platform} devices"
    table = []
    for (method, m, d), seconds in times.items():
        summary = spread(seconds)
        table.append(
            {
                "case": "sharded epoch",
                "method": method,
                "mini_batch": m,
                "devices": d,
                **summary,
                "vs_1_device": summary["median_s"] / statistics.median(times[(method, m, 1)]),
                "platform": platform,
                "note": note,
            }
        )
    return table


class _Worker:
    """A process with `devices` devices that times epochs on request (one JSON line each).

    With `cpus`, the process runs on those CPUs only (its affinity), so XLA sizes its thread
    pool to them.
    """

    def __init__(self, devices: int, cpus: set[int] | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
        if devices > 1:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        if cpus is not None:
            env[CPUS] = ",".join(map(str, sorted(cpus)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sharding", "--worker"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.device_count, self.platform = hello["device_count"], hello["platform"]

    def epoch(self, method: str, mini_batch: int) -> float:
        self.process.stdin.write(json.dumps({"method": method, "mini_batch": mini_batch}) + "\n")
        self.process.stdin.flush()
        return self._read()["seconds"]

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited with code {self.process.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()


def _serve() -> None:
    """The worker: all its devices shard each mini-batch; answer each request with seconds."""
    if os.environ.get(CPUS):  # before JAX starts, so that XLA sizes its thread pool to them
        os.sched_setaffinity(0, {int(cpu) for cpu in os.environ[CPUS].split(",")})
    import jax

    from fnbackprop import sharding
    from fnbackprop.data import load_dataset, one_hot
    from fnbackprop.network import Network
    from fnbackprop.optimizers import make_optimizer
    from fnbackprop.training import make_epoch

    shared = REPO.parent / "shared" / "data" / "mnist"
    data_dir = os.environ.get("FNBACKPROP_DATA") or (shared if shared.is_dir() else None)
    splits = load_dataset("mnist", data_dir, progress=False)
    devices = jax.device_count()
    net = Network(SIZES)
    optimizer = make_optimizer("sgd", 3.0)
    params = net.init(jax.random.key(0))
    arrays = (params, optimizer.init(params), jax.random.key(1))
    arrays += (splits.train.images, one_hot(splits.train.labels, SIZES[-1]))
    if devices > 1:  # placed once, as `run_training` does
        arrays = sharding.replicate(arrays, sharding.data_mesh(devices))
    else:
        arrays = jax.device_put(arrays)
    epochs = {}
    print(json.dumps({"device_count": devices, "platform": jax.devices()[0].platform}))
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        case = (request["method"], request["mini_batch"])
        if case not in epochs:
            epochs[case] = make_epoch(
                net, optimizer, gradient=case[0], mini_batch_size=case[1], devices=devices
            )
        start = time.perf_counter()
        jax.block_until_ready(epochs[case](*arrays))
        print(json.dumps({"seconds": time.perf_counter() - start}))
        sys.stdout.flush()


def format_table(table: list[dict]) -> str:
    columns = ("method", "mini-batch:", "devices:", "median s/epoch:", "min s:", "vs 1 device:")
    cells = [
        (
            r["method"],
            r["mini_batch"],
            r["devices"],
            f"{r['median_s']:.3f}",
            f"{r['min_s']:.3f}",
            f"{r['vs_1_device']:.2f}×",
        )
        for r in table
    ]
    text = markdown_table(columns, cells)
    if table:
        text += f"\n\n{table[0]['platform']}: {table[0]['note']}; medians of {table[0]['repeats']}"
    return text


if __name__ == "__main__":
    if "--worker" in sys.argv[1:]:
        _serve()
    else:
        print(format_table(rows(quick="--quick" in sys.argv[1:])))
