"""Interleaved timing: every case once per round, A B C A B C …, so slow spells hit all alike.

The order is shuffled from round to round (with a fixed seed), so that no case always follows the
same neighbour. On a shared machine the wall time of one call also counts the time spent waiting
for a core; the process's CPU time (all threads, `time.process_time`) is recorded beside it. A
warm-up round (it compiles) comes first and is not counted.
"""

import random
import statistics
import time
from collections.abc import Callable, Hashable
from typing import NamedTuple

import jax

from .stats import spread


class Samples(NamedTuple):
    """Seconds per call, wall clock and process CPU time, one entry per counted round."""

    wall: list[float]
    cpu: list[float]

    def summary(self, scale: float = 1.0) -> dict:
        """`median_s`, `min_s`, `max_s`, `cpu_s` (median) and `repeats`, each times `scale`."""
        return {**spread(self.wall, scale), "cpu_s": statistics.median(self.cpu) * scale}


def time_call(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `run()`, waiting for every JAX array it returns."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(run())
    return time.perf_counter() - wall, time.process_time() - cpu


def interleave(
    cases: dict[Hashable, Callable[[], object]],
    rounds: int,
    warmups: dict[Hashable, Callable[[], object] | None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[Hashable, Samples]:
    """Time every case once per round for `rounds` rounds, after one warm-up round.

    `warmups[key]` replaces case `key` in the warm-up round (None: no warm-up, for code that
    does not compile); by default the warm-up runs the case itself.
    """
    warmups = warmups or {}
    for key, run in cases.items():
        warm = warmups.get(key, run)
        if warm is not None:
            time_call(warm)
    samples = {key: Samples([], []) for key in cases}
    order = list(cases)
    shuffle = random.Random(0).shuffle
    for r in range(rounds):
        shuffle(order)
        for key in order:
            wall, cpu = time_call(cases[key])
            samples[key].wall.append(wall)
            samples[key].cpu.append(cpu)
        if progress is not None:
            progress(f"round {r + 1}/{rounds}")
    return samples
