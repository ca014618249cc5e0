"""What the benchmarks read back from pytest-benchmark."""

from __future__ import annotations


def best(benchmark) -> float:
    """Seconds of the fastest round, or NaN under ``--benchmark-disable`` (each benchmark then
    runs once, untimed: a quick check that they all still run)."""
    return benchmark.stats.stats.min if benchmark.stats else float("nan")
