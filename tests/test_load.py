"""Load: the chapter-1 network [784, 30, 10] for 3 epochs, online and full-batch, memory flat.

Mini-batches of 1 make 150,000 updates in three compiled epochs; mini-batches of 50,000 make
three, each over the whole training set at once. Each run is a fresh process (as a user runs it),
writing its checkpoint every epoch. The child reports its resident memory after every epoch, so
a leak per epoch shows as growth, and its peak (`VmHWM`, the high-water mark of its own address
space: `ru_maxrss` from `os.wait4` would also count the parent's memory at the fork).

`python -m tests.test_load` (from the repository root) prints the figures for the README.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTER1 = REPO / "experiments" / "configs" / "chapter1.toml"
EPOCHS = 3
TRAIN = 50_000
MIB = 2**20


def _child(mini_batch_size: int, data_dir: str, out_dir: str) -> None:
    """Train as chapter1.toml says, but 3 epochs of `mini_batch_size`; print JSON figures."""
    import jax
    import numpy as np

    from fnbackprop import config, runs

    page = os.sysconf("SC_PAGE_SIZE")
    rss = []

    def after_epoch(line: str) -> None:
        with open("/proc/self/statm") as f:
            rss.append(int(f.read().split()[1]) * page / MIB)
        print(line, file=sys.stderr, flush=True)

    overrides = [f"training.epochs={EPOCHS}", f"training.mini_batch_size={mini_batch_size}"]
    c = config.load(CHAPTER1, overrides)
    result = runs.run_training(c, out_dir, data_dir=data_dir, progress=False, echo=after_epoch)
    finite = all(bool(np.all(np.isfinite(p))) for p in jax.tree.leaves(result.params))
    peak = _status_kib("VmHWM") / 1024
    figures = {"rss_mib": rss, "peak_rss_mib": peak, "metrics": result.metrics}
    print(json.dumps(figures | {"finite_params": finite}))


def _status_kib(field: str) -> int:
    """A `kB` field of /proc/self/status, e.g. VmHWM (peak resident set of this process)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def measure(mini_batch_size: int, data_dir, out_dir, spawn=None) -> dict:
    """Run `_child` in a fresh process (started by the suite's `spawn`, or here); its figures
    plus wall time and peak RSS (MiB)."""
    argv = ["-m", "tests.test_load", str(mini_batch_size), str(data_dir), str(out_dir)]
    pipes = {"cwd": REPO, "stdout": subprocess.PIPE, "stderr": None, "text": True}
    start = time.perf_counter()
    if spawn is None:
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        child = subprocess.Popen([sys.executable, *argv], env=env, **pipes)
    else:
        child = spawn(*argv, **pipes)
    stdout = child.stdout.read()
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    assert child.returncode == 0, f"the mini-batch {mini_batch_size} run failed"
    figures = json.loads(stdout.splitlines()[-1])
    steps = EPOCHS * math.ceil(TRAIN / mini_batch_size)
    return figures | {
        "mini_batch_size": mini_batch_size,
        "steps": steps,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # about the same on a busy machine
        "epoch_seconds": [m["seconds"] for m in figures["metrics"]],
    }


@pytest.mark.parametrize("mini_batch_size", [1, TRAIN])
def test_chapter1_net_trains_three_epochs_with_flat_memory(
    mini_batch_size, mnist_dir, tmp_path, spawn
):
    figures = measure(mini_batch_size, mnist_dir, tmp_path, spawn)
    metrics = figures["metrics"]
    assert [m["epoch"] for m in metrics] == [0, 1, 2]
    assert figures["finite_params"]
    assert all(math.isfinite(m[f"{s}_cost"]) for m in metrics for s in ("test", "validation"))
    if mini_batch_size == 1:  # 150,000 steps of η = 3 learn; three full-batch steps barely move
        assert metrics[-1]["test_accuracy"] > 0.7
    after_first, *_, after_last = figures["rss_mib"]
    # No growth from epoch to epoch beyond the allocator's drift (measured 3–20 MiB over the two
    # epochs); a leaked copy of the shuffled training set would add 150 MiB per epoch.
    assert after_last - after_first < 64, figures["rss_mib"]
    assert figures["peak_rss_mib"] < 2048


def main() -> None:
    import tempfile

    data_dir = os.environ.get("FNBACKPROP_DATA") or REPO.parent / "shared" / "data" / "mnist"
    print(
        "| mini-batch | steps | wall s | CPU s | s per epoch | peak RSS MiB | RSS per epoch MiB |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in (1, TRAIN):
        with tempfile.TemporaryDirectory() as out:
            f = measure(m, data_dir, out)
        per_epoch = ", ".join(f"{s:.2f}" for s in f["epoch_seconds"])
        rss = ", ".join(f"{r:.0f}" for r in f["rss_mib"])
        print(
            f"| {m} | {f['steps']:,} | {f['seconds']:.1f} | {f['cpu_seconds']:.1f} | {per_epoch} | "
            f"{f['peak_rss_mib']:.0f} | {rss} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    else:
        main()
