"""Interrupts (issue 6): the Numba timeline kernel, and the device-side EITR moderation per burst.

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


# -- device-side moderation: what one completion event costs on the event-driven device ---------------
BURSTS = 20_000
BURST_GAP_NS = 2_150  # 32 x 64-byte frames at 10 GbE line rate


def _device(rx_usecs: int, vfs: int):
    from sriov.drivers.coalesce import set_coalesce
    from sriov.hw import regs as R
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=2_000)
    dev.sriov_enable(max(vfs, 1))
    for n in range(vfs):
        vf = dev.vf(n)
        vf.write32(R.VTIVAR(0), (R.IVAR_ALLOC_VAL | 0) * 0x0101 | (R.IVAR_ALLOC_VAL | 1) * 0x01010000)
        vf.write32(R.VTIVAR_MISC, R.IVAR_ALLOC_VAL | 2)
        set_coalesce(vf, rx_usecs)
        vf.write32(R.VTEIAM, 0b111)
        vf.write32(R.VTEIAC, 0b111)
        vf.write32(R.VTEIMS, 0b111)
        # the guest's NAPI poll re-enables the vector 3 us after the interrupt arrives
        vf.set_msix_handler(
            0, lambda v, vf=vf: dev.clock.schedule(3_000, lambda: vf.write32(R.VTEIMS, 1 << v))
        )
    counts = np.zeros(R.MAX_QUEUES, np.int64)
    counts[[dev.vf_queue(n, 0) for n in range(vfs)]] = 32
    return dev, counts


def _run(dev, counts) -> None:
    clock = dev.clock
    t = clock.now
    for _ in range(BURSTS):
        t += BURST_GAP_NS
        clock.run_until(t)
        dev.rx_queue_written(counts)


@pytest.mark.parametrize("vfs", [1, 8])
@pytest.mark.parametrize("rx_usecs", [0, 50])
def test_device_moderation_per_burst(benchmark, rx_usecs: int, vfs: int) -> None:
    """rx_queue_written after each 32-frame burst plus the clock events it causes (one VF queue each)."""
    state = {}

    def setup():
        state["dev"], state["counts"] = _device(rx_usecs, vfs)
        return (state["dev"], state["counts"]), {}

    benchmark.pedantic(_run, setup=setup, rounds=5, iterations=1)
    dev = state["dev"]
    irqs = sum(sum(dev.vf(n).interrupt_counts().values()) for n in range(vfs))
    benchmark.extra_info.update(
        bursts=BURSTS,
        vfs=vfs,
        ns_per_burst=benchmark.stats.stats.min / BURSTS * 1e9,
        ns_per_completion_event=benchmark.stats.stats.min / (BURSTS * vfs) * 1e9,
        interrupts_last_round=irqs,
    )


@pytest.mark.parametrize("form", ["counts", "queue_list"])
def test_hook_call_on_a_held_vector(benchmark, form: str) -> None:
    """One hook call when moderation holds the vector (the common case at line rate): the fixed cost."""
    dev, counts = _device(1022, 1)
    dev.rx_queue_written(counts)  # fires and auto-masks; every later call only latches the cause
    if form == "counts":
        benchmark(dev.rx_queue_written, counts)
    else:
        benchmark(dev.rx_queues_raised, [0])
    benchmark.extra_info.update(ns_per_call=benchmark.stats.stats.min * 1e9)
