"""Interrupt timeline kernel (issue 6): frame-events per second of the Numba loop.

Run: python -m pytest benchmarks/bench_interrupts.py --benchmark-only -q
"""

from __future__ import annotations

import numpy as np
import pytest

from sriov.interrupt_report import line_rate_arrivals
from sriov.timeline import ModerationSettings, _simulate, simulate, simulate_golden

FRAMES = 4_000_000


@pytest.mark.parametrize("rx_usecs", [0, 50, 1022])
def test_timeline_kernel(benchmark, rx_usecs: int) -> None:
    arrivals = line_rate_arrivals(FRAMES)
    s = ModerationSettings(rx_usecs=rx_usecs, per_frame_ns=25)
    irq = np.empty(FRAMES, np.int64)
    handed = np.empty(FRAMES, np.int64)
    occupancy = np.empty(FRAMES, np.int32)
    args = (arrivals, s.interval_ns, s.injection_latency_ns, s.budget, s.ring_size, s.poll_overhead_ns,
            s.per_frame_ns, irq, handed, occupancy)  # fmt: skip
    _simulate(*args)  # compile
    benchmark.pedantic(_simulate, args=args, rounds=5, iterations=1)
    small = arrivals[:20_000]
    matched = np.array_equal(simulate(small, s).handed_ns, simulate_golden(small, s).handed_ns)
    benchmark.extra_info.update(
        frames=FRAMES,
        mframes_per_s=FRAMES / benchmark.stats.stats.min / 1e6,
        matched_event_driven_model=matched,
    )
