"""The summary every benchmark row gives of its repeated timings (no JAX here: the parent
processes of the worker benchmarks import this before any XLA flag is set)."""

import statistics


def spread(seconds: list[float], scale: float = 1.0) -> dict:
    """`median_s`, `min_s`, `max_s` and `repeats` of the timings, each time times `scale`."""
    return {
        "median_s": statistics.median(seconds) * scale,
        "min_s": min(seconds) * scale,
        "max_s": max(seconds) * scale,
        "repeats": len(seconds),
    }
