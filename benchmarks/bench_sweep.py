"""Sweeps on Dask (issue 16): a 64-point sweep of the default scenario on 1 worker and on 2 workers
in the same run (the ratio), and the scheduling overhead per point.

Run: python -m pytest benchmarks/bench_sweep.py --benchmark-only -q -s
Quick check that it still runs: SRIOV_BENCH_SWEEP_POINTS=2 python -m pytest benchmarks/bench_sweep.py
--benchmark-disable -q

The points are rx-usecs (0, 10, 50, 100) x VF count (4, 8, 32, 63) x 4 seeds on the built-in
default scenario (``sriov run``'s, 222k frames each). Each cluster is a `LocalCluster` of worker
processes (one thread each), started and warmed (sriov imported, one point run) before the
timing: what is timed is the sweep. The overhead per point is measured on a sweep of trivial
points (a port and nothing else): the sweep's elapsed time less the time the workers spent in
the points (``wall_s``), over the points; it covers pickling, scheduling, the result's trip back
and recording the row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from timing import best

from sriov import scenario
from sriov.sweep import execute, run_point

distributed = pytest.importorskip("distributed")

POINTS = int(os.environ.get("SRIOV_BENCH_SWEEP_POINTS", "64"))
TRIVIAL_POINTS = int(os.environ.get("SRIOV_BENCH_SWEEP_TRIVIAL", "200"))
_seconds: dict[int, float] = {}


def default_sweep(points: int) -> dict[str, Any]:
    """``points`` points (64: the full grid x 4 seeds; fewer: a random draw of the grid)."""
    spec: dict[str, Any] = {
        "scenario": "default",
        "axes": {"vm[0].nic[0].rx_usecs": [0, 10, 50, 100], "port[0].num_vfs": [4, 8, 32, 63]},
        "metrics": ["frames_delivered", "interrupts_per_s_mean", "latency_p99_us"],
    }
    if points % 16 == 0:
        spec["seeds"] = points // 16
    else:
        assert points < 16, "SRIOV_BENCH_SWEEP_POINTS: below 16, or a multiple of 16"
        spec.update(mode="random", samples=points)
    return spec


def trivial_sweep(folder: Path, points: int) -> dict[str, Any]:
    """``points`` points that build one port and offer nothing: almost all of it is overhead."""
    (folder / "port.toml").write_text('[[port]]\nname = "eth0"\n')
    return {"scenario": str(folder / "port.toml"), "axes": {"port[0].num_vfs": [0]}, "seeds": points,
            "metrics": ["frames_offered"]}  # fmt: skip


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"], scope="module")
def client(request) -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=request.param,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as c:
        warm = scenario.default()
        warm.traffic[0].generator = {**warm.traffic[0].generator, "frames": 2000}
        c.run(run_point, warm, 0)  # every worker imports sriov and runs a small point
        yield c


def test_sweep_default_scenario(benchmark, client: Any) -> None:
    workers = len(client.scheduler_info()["workers"])
    rows = benchmark.pedantic(lambda: execute(default_sweep(POINTS), client)[0], rounds=1, iterations=1)
    assert len(rows) == POINTS and all(r["status"] == "ok" for r in rows)
    _seconds[workers] = best(benchmark)
    benchmark.extra_info.update(points=POINTS, workers=workers, s_per_point=best(benchmark) / POINTS)
    if workers == 2 and 1 in _seconds:
        benchmark.extra_info["speedup_2_over_1"] = _seconds[1] / _seconds[2]
        print(f"\n{POINTS} points: 1 worker {_seconds[1]:.1f} s, 2 workers {_seconds[2]:.1f} s, "
              f"{_seconds[1] / _seconds[2]:.2f}x")  # fmt: skip


def test_scheduling_overhead_per_point(benchmark, client: Any, tmp_path: Path) -> None:
    result: dict[str, Any] = {}

    def sweep() -> None:
        import time

        t0 = time.perf_counter()
        rows, _ = execute(trivial_sweep(tmp_path, TRIVIAL_POINTS), client)
        result["elapsed"] = time.perf_counter() - t0
        result["in_points"] = sum(r["wall_s"] for r in rows)

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    workers = len(client.scheduler_info()["workers"])
    # with w workers the points' time runs w at a time: what is left of the elapsed time is overhead
    overhead = (result["elapsed"] - result["in_points"] / workers) / TRIVIAL_POINTS
    benchmark.extra_info.update(points=TRIVIAL_POINTS, workers=workers, overhead_ms_per_point=overhead * 1e3)
    print(f"\nscheduling overhead, {workers} worker(s): {overhead * 1e3:.2f} ms per point")
