"""Interrupts (issue 6): the Numba timeline kernel, and the device-side EITR moderation per burst.

Run: python -m pytest benchmarks/bench_interrupts.py --benchmark-only -q
"""

from __future__ import annotations

import numpy as np
import pytest
from timing import best

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
        mframes_per_s=FRAMES / best(benchmark) / 1e6,
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
        ns_per_burst=best(benchmark) / BURSTS * 1e9,
        ns_per_completion_event=best(benchmark) / (BURSTS * vfs) * 1e9,
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
    benchmark.extra_info.update(ns_per_call=best(benchmark) * 1e9)


# -- the full receive path, interrupts on vs off (device + PF driver + VF drivers with NAPI) -------------
# 8 VFs in 8 VMs through `sriov.Host` (the drivers program everything over the mailbox), 64-byte
# frames interleaved over the VFs, 511 per VF per batch (one ring's worth), 10 GbE line-rate times.
#   off: the VFs' vectors disabled (ixgbevf_irq_disable), NAPI off; after each batch every guest
#        takes its ring with rx_poll(512) and gives the buffers back (busy polling, DPDK-style).
#   off64: the same with rx_poll(64) until empty: the polls NAPI makes, without interrupts.
#   on:  moderation (rx-usecs as given, 1 = adaptive) and NAPI (budget 64, guest costs 1 us per
#        poll + 50 ns per frame of simulated time) into a counting stack; after each batch the
#        clock runs over the batch's wire time plus 100 us, so every interrupt fires and drains.
#   exact: frames offered with `Host.run_traffic` at their arrival times (every clock event in
#        its place) (without latency traces).
VFS = 8
PER_VF = 511


def _mac(i: int) -> str:
    return f"02:00:00:00:01:{i:02x}"


def full_host(vfs: int, rx_usecs: int, napi: bool):
    from sriov.drivers.coalesce import irq_disable
    from sriov.host import Host

    host = Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(vfs)
    nics = []
    for i in range(vfs):
        port.pf.set_vf(i, mac=_mac(i))
        nic = host.assign(port.vf(i), host.add_vm(f"vm{i}", memory=8 << 20))
        nic.up()
        nic.set_coalesce(rx_usecs)
        nic.on_receive = _stack
        nic.napi.enabled = napi
        if not napi:
            irq_disable(nic.function)
        nics.append(nic)
    host.clock.advance(10_000_000)
    for vm in host.vms.values():  # fault the guest pages in before timing
        vm.memory.buffer[:] += 0
    return host, port, nics


def _stack(batch) -> None:
    """The guest stack: takes the frames, keeps nothing (XDP_DROP-like)."""


def full_batch(vfs: int, per_vf: int = PER_VF):
    from sriov.batch import Batch

    head = [
        bytes.fromhex(_mac(i).replace(":", "")) + bytes.fromhex("020000000099") + b"\x08\x00"
        for i in range(vfs)
    ]
    frames = [head[k % vfs] + bytes(46) for k in range(per_vf * vfs)]
    return Batch.from_frames(frames, timestamps_ns=line_rate_arrivals(per_vf * vfs))


def run_full(mode: str, host, port, nics, batch, rounds: int) -> int:
    """``rounds`` batches through the full path; returns the frames the guests got."""
    clock = host.clock
    span = int(batch.timestamps_ns[-1] - batch.timestamps_ns[0]) + 68
    got = 0
    before = sum(n.napi.counters["rx_stack_packets"] for n in nics)  # earlier (warm-up) rounds
    for _ in range(rounds):
        if mode == "off":
            port.wire.receive(batch)
            for nic in nics:
                got += len(nic.rx_poll(512))
                nic.rx_ring.release()
        elif mode == "off64":  # the polls NAPI makes (64 frames, refill after each), no interrupts
            port.wire.receive(batch)
            for nic in nics:
                while k := len(nic.rx_poll(64)):
                    got += k
                nic.rx_ring.release()
        elif mode == "on":
            now = clock.now
            port.wire.receive(batch)
            clock.run_until(now + span + 100_000)
        else:  # "exact": every frame at its time through the engine
            host.run_traffic(port, batch, start_ns=clock.now + 1, trace=False)
            clock.advance(100_000)
    if mode not in ("off", "off64"):
        got = sum(n.napi.counters["rx_stack_packets"] for n in nics) - before
    return got


FULL_CASES = [("off", 0), ("off64", 0), ("on", 0), ("on", 50), ("on", 1), ("exact", 50)]


@pytest.mark.parametrize("vfs", [1, VFS])
@pytest.mark.parametrize(("mode", "rx_usecs"), FULL_CASES, ids=[f"{m}-{u}" for m, u in FULL_CASES])
def test_full_receive_path(benchmark, mode: str, rx_usecs: int, vfs: int) -> None:
    batch = full_batch(vfs)
    rounds = 4 if mode == "exact" else 20 if vfs > 1 else 100
    state = {}

    def setup():
        state["rig"] = full_host(vfs, rx_usecs, napi=mode != "off")
        run_full(mode, *state["rig"], batch, 1)  # warm: the first round faults rings and buffers in
        nics = state["rig"][2]
        state["before"] = (
            sum(n.napi.counters["rx_stack_packets"] for n in nics),
            sum(n.interrupts()[f"{n.name}-TxRx-0"] for n in nics),
            sum(n.napi.counters["napi_polls"] for n in nics),
        )
        return (mode, *state["rig"], batch, rounds), {}

    benchmark.pedantic(run_full, setup=setup, rounds=3, iterations=1)
    nics = state["rig"][2]
    frames = rounds * len(batch)
    packets0, irqs0, polls0 = state["before"]
    got = sum(n.napi.counters["rx_stack_packets"] for n in nics) - packets0
    benchmark.extra_info.update(
        vfs=vfs,
        frames=frames,
        mframes_per_s=frames / best(benchmark) / 1e6,
        delivered_to_guests=got if mode not in ("off", "off64") else frames,
        interrupts=sum(n.interrupts()[f"{n.name}-TxRx-0"] for n in nics) - irqs0,
        napi_polls=sum(n.napi.counters["napi_polls"] for n in nics) - polls0,
    )


def full_table(repeats: int = 3) -> str:
    """The on/off table for RESULTS.md (best of ``repeats`` runs per case).

    Each run starts with one untimed round: the first batch into a fresh host costs ~5x a steady
    one (first touch of the rings' and buffers' lines, the kernel's window and flow state, the
    interrupt objects), for every mode alike; the targets are about the steady state.
    """
    import time

    lines = [
        "| VFs | mode | rx-usecs | frames | delivered | interrupts | NAPI polls | best time | Mframes/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for vfs in (1, VFS):
        batch = full_batch(vfs)
        for mode, usecs in FULL_CASES:
            rounds = 4 if mode == "exact" else 20 if vfs > 1 else 100
            best = float("inf")
            for _ in range(repeats):
                host, port, nics = full_host(vfs, usecs, napi=mode != "off")
                run_full(mode, host, port, nics, batch, 1)  # warm-up round, not timed (see below)
                irqs0 = sum(n.interrupts()[f"{n.name}-TxRx-0"] for n in nics)
                polls0 = sum(n.napi.counters["napi_polls"] for n in nics)
                t = time.perf_counter()
                got = run_full(mode, host, port, nics, batch, rounds)
                best = min(best, time.perf_counter() - t)
            frames = rounds * len(batch)
            irqs = sum(n.interrupts()[f"{n.name}-TxRx-0"] for n in nics) - irqs0
            polls = sum(n.napi.counters["napi_polls"] for n in nics) - polls0
            lines.append(f"| {vfs} | {mode} | {usecs} | {frames:,} | {got:,} | {irqs:,} | {polls:,} "
                         f"| {best * 1e3:.1f} ms | {frames / best / 1e6:.2f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(full_table())
