"""Interrupt delivery into the VM and the VF driver's NAPI, on the full model (issue 6).

Every test here runs the whole chain: frames offered at their arrival times by
`Host.run_traffic`, the L2 switch and DMA into the VF's ring, the device's EITR moderation,
the hypervisor's injection latency, the VF driver's interrupt handler and NAPI poll cycle,
and the guest stack. The Numba timeline (`sriov.timeline`) is the oracle where the two
models' assumptions match.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov.batch import Batch
from sriov.drivers import coalesce
from sriov.drivers.napi import NapiConfig
from sriov.errors import ConfigError
from sriov.host import INJECTION_PRESETS, Host
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.hw.eitr import eitr_from_usecs, interval_ns_from_eitr
from sriov.interrupt_report import VF_MAC, full_model, line_rate_batch, measure_full
from sriov.timeline import ModerationSettings, simulate
from sriov.wire import assert_rx_conserved

T0 = 50_000_000  # first arrival: well after bring-up (full_model leaves the clock at ~25 ms)
QV = 0  # the VF driver's queue vector (the mailbox vector comes after it)


def rig(
    rx_usecs: int = 0, latency: int = 1_000, budget: int = 64, overhead: int = 1_000, per_frame: int = 50
):
    s = ModerationSettings(
        rx_usecs=rx_usecs,
        injection_latency_ns=latency,
        budget=budget,
        poll_overhead_ns=overhead,
        per_frame_ns=per_frame,
    )
    host, port, nic = full_model(s)
    assert host.clock.now < T0
    return host, port, nic, s


def frames_at(times: list[int] | np.ndarray, size: int = 60) -> Batch:
    """One frame to the VF per arrival time; frame i carries i in its last bytes."""
    ts = np.asarray(times, dtype=np.int64)
    dst = bytes.fromhex(VF_MAC.replace(":", ""))
    head = dst + bytes.fromhex("020000000099") + b"\x08\x00"
    frames = [head + bytes(size - len(head) - 4) + i.to_bytes(4, "big") for i in range(len(ts))]
    return Batch.from_frames(frames, timestamps_ns=ts)


def queue_irqs(nic) -> int:
    return nic.interrupts()[f"{nic.name}-TxRx-0"]


# -- the rules of the issue ----------------------------------------------------------------------------
def test_rx_usecs_0_every_completion_interrupts_and_is_handed_over_one_cycle_later() -> None:
    host, port, nic, s = rig(rx_usecs=0)
    ts = T0 + np.arange(10) * 20_000  # further apart than one interrupt + poll cycle
    host.run_traffic(port, frames_at(ts))
    host.clock.advance(100_000)
    trace = nic.napi.trace
    assert queue_irqs(nic) == 10
    assert list(trace.irq.view()) == list(ts + s.injection_latency_ns)  # delivered after the injection
    assert list(trace.handed.view()) == list(
        ts + s.injection_latency_ns + s.poll_overhead_ns + s.per_frame_ns
    )
    assert nic.stats()["napi_completes"] == 10
    assert sum(v for k, v in port.vf(0).interrupt_counts().items() if "TxRx" in k) == 10  # the device's count


@pytest.mark.parametrize("rx_usecs", [2, 10, 50, 333])
def test_two_interrupts_are_never_closer_than_the_interval(rx_usecs: int) -> None:
    host, port, nic, _ = rig(rx_usecs=rx_usecs, per_frame=20)
    interval = interval_ns_from_eitr(eitr_from_usecs(rx_usecs))
    rng = np.random.default_rng(rx_usecs)
    gaps = rng.choice([67, 500, 3_000, 40_000], size=3_000, p=[0.7, 0.15, 0.1, 0.05])
    ts = T0 + np.cumsum(gaps)
    host.run_traffic(port, frames_at(ts))
    host.clock.advance(2_000_000)
    irq = nic.napi.trace.irq.view()
    assert len(irq) > 10
    assert np.diff(irq).min() >= interval
    assert np.diff(irq).min() == interval or rx_usecs == 333  # the interval binds somewhere
    assert nic.napi.trace.handed.n + port.stats()["rx_no_dma_resources"] == len(ts)


def test_a_frame_arriving_inside_the_interval_is_delivered_at_its_end() -> None:
    host, port, nic, s = rig(rx_usecs=10)
    interval = interval_ns_from_eitr(eitr_from_usecs(10))
    assert interval == 10_240
    host.run_traffic(port, frames_at([T0, T0 + 3_000]))
    host.clock.advance(50_000)
    cost = s.injection_latency_ns + s.poll_overhead_ns + s.per_frame_ns
    assert list(nic.napi.trace.handed.view()) == [T0 + cost, T0 + interval + cost]
    assert list(nic.napi.trace.irq.view()) == [
        T0 + s.injection_latency_ns,
        T0 + interval + s.injection_latency_ns,
    ]


def test_a_masked_vector_does_not_fire_and_its_latched_cause_fires_on_unmask() -> None:
    host, port, nic, s = rig(rx_usecs=0)
    fn = nic.function
    fn.write32(R.VTEIMC, 1 << QV)
    host.run_traffic(port, frames_at(T0 + np.arange(5) * 10_000))
    host.clock.advance(500_000)
    assert queue_irqs(nic) == 0 and nic.napi.trace.irq.n == 0
    assert nic.rx_ring.pending() == 5  # received, waiting in the ring
    assert fn.read32(R.VTEICS) & 1 << QV  # the cause is latched (VTEICS reads VTEICR without clearing)
    now = host.clock.now
    fn.write32(R.VTEIMS, 1 << QV)
    host.clock.advance(s.injection_latency_ns)
    assert list(nic.napi.trace.irq.view()) == [now + s.injection_latency_ns]
    host.clock.advance(100_000)
    assert nic.napi.trace.handed.n == 5 and nic.rx_ring.pending() == 0


@pytest.mark.parametrize("case", ["held by moderation", "NAPI busy polling"])
def test_the_mailbox_vector_is_independent_of_the_queue_vector(case: str) -> None:
    if case == "held by moderation":
        host, port, nic, s = rig(rx_usecs=1022, per_frame=20)
    else:  # a guest slower than line rate: NAPI never completes, the queue vector stays masked
        host, port, nic, s = rig(rx_usecs=0, per_frame=80)
    taken: list[tuple[int, int]] = []
    handler = nic._msix_other  # the mailbox vector's handler (ixgbevf_msix_other)
    nic._msix_other = lambda v: (taken.append((v, host.clock.now)), handler(v))  # type: ignore[method-assign]
    host.run_traffic(port, line_rate_batch(3_000), start_ns=T0)
    queue = port.vf(0).msix.vectors[QV]
    assert queue.pending if case == "held by moderation" else queue.masked  # the receive side is busy
    queue_before = queue.fired
    port.pf.ping_vf(0)  # PF_CONTROL_MSG: the VF's mailbox cause
    sent = host.clock.now
    host.run_traffic(port, line_rate_batch(3_000), start_ns=sent + 67)
    mbx = [t for v, t in taken if v == nic._mbx_vector]
    assert mbx == [sent + s.injection_latency_ns]  # delivered after the injection latency, not held
    assert queue.fired == queue_before or case == "NAPI busy polling"
    assert nic.get_link_status is False  # its service task ran and re-read the link
    assert nic.function.read32(R.VTEIMS) & 1 << nic._mbx_vector  # re-enabled by its handler
    # The link check busy-waits 500 us on the clock inside that task: frames it jumped over came late.
    assert host.late_frames > 0


def test_napi_polls_while_the_budget_is_used_up_and_reenables_on_drain() -> None:
    host, port, nic, s = rig(rx_usecs=0, budget=64, overhead=1_000, per_frame=50)
    fn = nic.function
    ts = T0 + np.arange(200)  # 200 frames within 200 ns: one interrupt, four polls (64, 64, 64, 8)
    host.run_traffic(port, frames_at(ts))
    assert not fn.read32(R.VTEIMS) & 1 << QV  # auto-masked by the interrupt
    start = T0 + s.injection_latency_ns
    end = start + 4 * s.poll_overhead_ns + 200 * s.per_frame_ns
    host.clock.run_until(end - 1)
    assert not fn.read32(R.VTEIMS) & 1 << QV  # still polling: the vector stays masked
    assert nic.stats()["napi_polls"] == 4 and nic.stats()["napi_completes"] == 0
    host.clock.run_until(end)
    # Drained: VTEIMS written. The 199 frames that arrived after the interrupt latched the cause
    # again while the vector was masked, so it fires at once (the 82599 does this; ixgbevf then
    # polls an empty ring and re-enables).
    assert nic.stats()["napi_completes"] == 1 and port.vf(0).msix.vectors[QV].fired == 2
    host.clock.run_until(end + s.injection_latency_ns + s.poll_overhead_ns)
    assert fn.read32(R.VTEIMS) & 1 << QV  # and now it stays enabled
    assert nic.stats()["napi_completes"] == 2 and nic.stats()["napi_polls"] == 5 and queue_irqs(nic) == 2
    host.clock.advance(1_000_000)
    assert queue_irqs(nic) == 2
    assert nic.napi.trace.handed.n == 200
    handed = nic.napi.trace.handed.view()
    assert handed[63] == start + s.poll_overhead_ns + 64 * s.per_frame_ns  # the first poll's last frame
    assert handed[64] == handed[63] + s.poll_overhead_ns + s.per_frame_ns  # the second poll starts after it


def test_adaptive_mode_converges_to_the_bulk_setting_under_line_rate_load() -> None:
    host, port, nic, _ = rig(rx_usecs=coalesce.ADAPTIVE, per_frame=20)
    assert nic.napi.itr_state.itr == coalesce.ITR_20K
    batch = line_rate_batch(150_000)  # 10 ms at 14.88 Mpps
    host.run_traffic(port, batch, start_ns=T0)
    state = nic.napi.itr_state
    assert state.rx_range == coalesce.BULK_LATENCY
    # The driver's smoothing (10 * new * old / (9 * new + old), in integers) climbs from 200 to the
    # first value it cannot leave: 326, within 3 % of the bulk setting (336, 12 K interrupts/s).
    assert coalesce.adaptive_itr(state, 10**6, 10**4) == state
    assert abs(state.itr - coalesce.ITR_12K) <= 0.03 * coalesce.ITR_12K
    vteitr = nic.function.read32(R.VTEITR(QV))
    assert vteitr & R.EITR_ITR_INT_MASK == state.itr & R.EITR_ITR_INT_MASK
    interval = interval_ns_from_eitr(vteitr)
    irq = nic.napi.trace.irq.view()
    late = irq[irq > irq[-1] - 2_000_000]
    assert np.diff(late).min() >= interval
    assert abs(np.mean(np.diff(late)) - interval) < 0.02 * interval  # ~12 K interrupts/s


def test_adaptive_mode_goes_to_the_lowest_latency_setting_under_light_load() -> None:
    host, port, nic, _ = rig(rx_usecs=coalesce.ADAPTIVE)
    host.run_traffic(port, frames_at(T0 + np.arange(60) * 200_000))
    state = nic.napi.itr_state
    assert state.rx_range == coalesce.LOWEST_LATENCY
    assert coalesce.ITR_100K <= state.itr <= coalesce.ITR_100K + 4
    nic.set_coalesce(rx_usecs=50)  # a fixed setting stops the updates
    itr = nic.function.read32(R.VTEITR(QV)) & R.EITR_ITR_INT_MASK
    host.run_traffic(port, line_rate_batch(20_000), start_ns=host.clock.now + 1_000)
    assert nic.function.read32(R.VTEITR(QV)) & R.EITR_ITR_INT_MASK == itr == 200


# -- the full model against the Numba timeline ------------------------------------------------------------
def _compare(arrivals: np.ndarray, s: ModerationSettings, oracle: ModerationSettings | None = None) -> None:
    host, port, nic = full_model(s)
    nic.on_receive = lambda batch: None
    host.run_traffic(port, frames_at(arrivals))
    host.clock.advance(s.interval_ns + 2_000_000)
    trace = nic.napi.trace
    tl = simulate(arrivals, replace(oracle or s, ring_size=nic.rx_ring.count - 1))
    assert np.array_equal(trace.irq.view() - s.injection_latency_ns, tl.irq_times_ns)
    assert np.array_equal(trace.handed.view(), tl.handed_ns[tl.handed_ns >= 0])
    assert np.array_equal(trace.arrival.view(), arrivals[tl.handed_ns >= 0])
    dropped = int(port.device.state.pool_counters[0, C.POOL["rx_dropped"]])
    assert dropped == tl.dropped == port.stats()["rx_no_dma_resources"]
    assert_rx_conserved(port.device)


arrival_gaps = st.lists(
    st.one_of(st.integers(0, 100), st.integers(100, 5_000), st.integers(5_000, 200_000)),
    min_size=1,
    max_size=400,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gaps=arrival_gaps,
    burst=st.integers(0, 900),
    rx_usecs=st.sampled_from([0, 0, 2, 3, 10, 25, 50, 100, 400, 1022]),
    latency=st.one_of(st.sampled_from(sorted(INJECTION_PRESETS.values())), st.integers(0, 6_000)),
    budget=st.integers(1, 64),
    overhead=st.integers(0, 2_000),
    per_frame=st.integers(0, 120),
)
def test_full_model_agrees_with_the_timeline(
    gaps, burst, rx_usecs, latency, budget, overhead, per_frame
) -> None:
    ts = np.cumsum(np.asarray(gaps, dtype=np.int64))
    if burst:  # a line-rate burst in the middle (long enough to overflow the ring)
        mid = int(ts[len(ts) // 2])
        ts = np.sort(np.concatenate([ts, mid + np.floor(np.arange(burst) * 67.2).astype(np.int64)]))
    s = ModerationSettings(rx_usecs=rx_usecs, injection_latency_ns=latency, budget=budget,
                           poll_overhead_ns=overhead, per_frame_ns=per_frame)  # fmt: skip
    _compare(T0 + ts, s)


@pytest.mark.parametrize("rx_usecs", [0, 10, 50])
def test_full_model_agrees_with_the_timeline_at_line_rate(rx_usecs: int) -> None:
    s = ModerationSettings(rx_usecs=rx_usecs, injection_latency_ns=2_000, per_frame_ns=25)
    row = measure_full(line_rate_batch(20_000), s)
    assert row.agrees and row.interrupts == row.timeline_interrupts and row.dropped == row.timeline_dropped


def test_two_vfs_each_agree_with_their_own_timeline() -> None:
    # Two VFs with different moderation share the port: every clock event of either splits the
    # offered frames, and each VF's interrupts and hand-offs are its own queue's timeline.
    host = Host(seed=1, injection_latency_ns="posted")
    port = host.add_port("eth0")
    port.pf.set_numvfs(2)
    macs = ["02:00:00:00:00:10", "02:00:00:00:00:20"]
    nics = []
    for vf, usecs in enumerate((0, 25)):
        port.pf.set_vf(vf, mac=macs[vf])
        nic = host.assign(port.vf(vf), host.add_vm(f"vm{vf}", memory=8 << 20))
        nic.up()
        nic.set_coalesce(usecs)
        nic.on_receive = lambda batch: None
        nics.append(nic)
    host.clock.advance(10_000_000)
    assert host.clock.now < T0
    rng = np.random.default_rng(3)
    n = 6_000
    ts = T0 + np.cumsum(rng.choice([67, 300, 5_000], size=n, p=[0.8, 0.15, 0.05]))
    owner = rng.integers(0, 2, n)
    frames = [
        bytes.fromhex(macs[o].replace(":", "")) + bytes.fromhex("020000000099") + bytes(48) for o in owner
    ]
    host.run_traffic(port, Batch.from_frames(frames, timestamps_ns=ts))
    host.clock.advance(2_000_000)
    for vf, usecs in enumerate((0, 25)):
        s = ModerationSettings(
            rx_usecs=usecs, injection_latency_ns=1_000, ring_size=nics[vf].rx_ring.count - 1
        )
        tl = simulate(ts[owner == vf], s)
        trace = nics[vf].napi.trace
        assert np.array_equal(trace.irq.view() - 1_000, tl.irq_times_ns)
        assert np.array_equal(trace.handed.view(), tl.handed_ns[tl.handed_ns >= 0])
        summary = trace.summary()
        assert summary["interrupts"] == tl.interrupts and summary["frames"] == tl.delivered
        assert summary["latency_p99_ns"] == pytest.approx(tl.latency_percentiles((99,))[99])
    assert_rx_conserved(port.device)


@pytest.mark.xfail(strict=True, reason="planted: the oracle's guest is 1 ns per frame slower")
def test_the_comparison_can_fail() -> None:
    s = ModerationSettings(rx_usecs=10, injection_latency_ns=1_000, per_frame_ns=30)
    _compare(T0 + np.arange(300) * 700, s, replace(s, per_frame_ns=31))


def test_offering_frame_by_frame_gives_the_same_answer_as_one_batch() -> None:
    rng = np.random.default_rng(7)
    ts = T0 + np.cumsum(rng.choice([67, 68, 2_000, 30_000], size=4_000, p=[0.8, 0.1, 0.08, 0.02]))
    out = []
    for one_at_a_time in (True, False):
        host, port, nic, _ = rig(rx_usecs=10, per_frame=30)
        batch = frames_at(ts)
        if one_at_a_time:
            for k in range(len(batch)):
                host.run_traffic(port, batch[k : k + 1])
        else:
            host.run_traffic(port, batch)
        host.clock.advance(1_000_000)
        out.append((nic.napi.trace.irq.view().copy(), nic.napi.trace.handed.view().copy()))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


# -- line rate: the arithmetic of the interval ------------------------------------------------------------
@pytest.mark.parametrize("rx_usecs", [10, 50, 100, 1022])
def test_line_rate_interrupt_rate_and_ring_overflow_follow_the_interval(rx_usecs: int) -> None:
    # A fast guest (it drains an interval's frames well inside the interval): the interval alone
    # decides the interrupt rate, and the ring (511 usable descriptors) overflows exactly when an
    # interval brings more frames than it holds.
    s = ModerationSettings(
        rx_usecs=rx_usecs, injection_latency_ns=1_000, poll_overhead_ns=500, per_frame_ns=10
    )
    row = measure_full(line_rate_batch(60_000), s)
    assert row.agrees
    expected = 1e9 / (row.interval_us * 1000)
    assert abs(row.interrupts_per_s - expected) < 0.05 * expected + 2e9 / (60_000 * 67.2)
    assert (row.dropped > 0) == row.overflow_expected == (row.interval_us * 1000 / 67.2 > 511)
    if not row.overflow_expected:
        assert abs(row.frames_per_interrupt - row.frames_per_interval) < 0.05 * row.frames_per_interval
    elif rx_usecs < 1022:  # (1022: only four intervals in 60,000 frames)
        # ring-bound: the ring's 511 plus what arrives while the guest drains it
        assert (
            abs(row.frames_per_interrupt - row.expected_frames_per_interrupt) < 0.1 * row.frames_per_interrupt
        )


def test_a_guest_slower_than_line_rate_overflows_the_ring_even_without_moderation() -> None:
    s = ModerationSettings(rx_usecs=0, injection_latency_ns=1_000, poll_overhead_ns=1_000, per_frame_ns=100)
    row = measure_full(line_rate_batch(30_000), s)
    assert row.agrees and row.dropped > 0
    # The guest takes a frame every 100 + 1000/64 ns while one arrives every 67.2 ns.
    assert abs(row.dropped / row.frames - (1 - 67.2 / (100 + 1000 / 64))) < 0.05


# -- the hypervisor's delivery and the guest stack --------------------------------------------------------
def test_injection_latency_presets_per_host_and_per_vm() -> None:
    host = Host(seed=0, injection_latency_ns="vm-exit")
    assert host.add_vm("a").injection_latency_ns == INJECTION_PRESETS["vm-exit"] == 5_000
    assert host.add_vm("b", injection_latency_ns="posted").injection_latency_ns == 1_000
    assert host.add_vm("c", injection_latency_ns=2_500).injection_latency_ns == 2_500
    with pytest.raises(ConfigError, match="posted"):
        host.add_vm("d", injection_latency_ns="fast")
    with pytest.raises(ConfigError, match="non-negative"):
        Host(injection_latency_ns=-1)
    assert "d" not in host.vms
    for preset in ("posted", "vm-exit"):
        host, port, nic, _s = rig(rx_usecs=0, latency=INJECTION_PRESETS[preset])
        host.run_traffic(port, frames_at([T0]))
        host.clock.advance(100_000)
        assert list(nic.napi.trace.irq.view()) == [T0 + INJECTION_PRESETS[preset]]
        assert port.vf(0).irq_latency_ns == INJECTION_PRESETS[preset]


def test_unassign_restores_the_host_interrupt_latency() -> None:
    host = Host(seed=0, irq_latency_ns=700, injection_latency_ns=4_000)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    nic = host.assign(port.vf(0), host.add_vm("vm"))
    assert port.vf(0).irq_latency_ns == 4_000
    host.unassign(nic)
    assert port.vf(0).irq_latency_ns == 700


def test_frames_reach_on_receive_or_the_backlog_that_rx_poll_returns() -> None:
    host, port, nic, _ = rig(rx_usecs=0)
    batch = frames_at(T0 + np.arange(300) * 100)
    got: list[bytes] = []
    nic.on_receive = lambda b: got.extend(b.to_list())
    host.run_traffic(port, batch[:150])
    host.clock.advance(10_000)
    assert got == batch[:150].to_list()
    nic.on_receive = None  # no stack callback: NAPI keeps copies for rx_poll
    rest = batch[150:]
    host.run_traffic(port, rest, start_ns=host.clock.now + 100)
    host.clock.advance(100_000)
    assert nic.rx_ring.pending() == 0 and nic.napi.backlog_frames() == 150
    polled: list[bytes] = []
    while len(b := nic.rx_poll(64)):
        assert len(b) <= 64
        polled += b.to_list()
    assert polled == rest.to_list()
    stats = nic.stats()
    assert stats["rx_stack_packets"] == 300 and stats["rx_packets"] == 300
    assert stats["rx_stack_bytes"] == 300 * 60


def test_a_stack_callback_that_raises_does_not_wedge_napi() -> None:
    host, port, nic, _ = rig(rx_usecs=0)
    calls = []

    def stack(batch) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("guest stack bug")

    nic.on_receive = stack
    host.run_traffic(port, frames_at([T0]))
    with pytest.raises(RuntimeError, match="guest stack bug"):
        host.clock.advance(10_000)  # the interrupt arrives, NAPI hands the frame over
    host.run_traffic(port, frames_at([0]), start_ns=host.clock.now + 50_000)
    host.clock.advance(100_000)
    assert calls == [1, 1] and nic.stats()["napi_completes"] == 2


def test_a_full_backlog_drops_and_counts() -> None:
    host, port, nic, _ = rig(rx_usecs=0)
    nic.napi.configure(NapiConfig(backlog=100))
    host.run_traffic(port, frames_at(T0 + np.arange(300) * 100))
    host.clock.advance(100_000)
    assert nic.stats()["rx_backlog_dropped"] == 200
    total = 0
    while len(b := nic.rx_poll(1000)):
        total += len(b)
    assert total == 100


def test_rx_poll_without_interrupts_still_works_and_napi_can_be_disabled() -> None:
    host, port, nic, _ = rig(rx_usecs=0)
    nic.napi.enabled = False
    batch = frames_at(T0 + np.arange(20) * 1_000)
    host.run_traffic(port, batch)
    host.clock.advance(100_000)
    assert queue_irqs(nic) == 1  # fired once, then stays auto-masked: nobody re-enables it
    assert nic.rx_poll(64).to_list() == batch.to_list()


def test_run_traffic_refuses_bad_input() -> None:
    host, port, _nic, _ = rig()
    with pytest.raises(ConfigError, match="arrival order"):
        host.run_traffic(port, frames_at([T0 + 10, T0]))
    with pytest.raises(ConfigError, match="before the clock"):
        host.run_traffic(port, frames_at([5]))
    with pytest.raises(ConfigError, match="port"):
        Host().run_traffic(port, frames_at([T0]))
    with pytest.raises(ConfigError, match="Batch"):
        host.run_traffic(port, [b"x"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="budget"):
        NapiConfig(budget=0)
    assert port.stats()["rx_frames_in"] == 0  # nothing was offered
