"""MSI-X vectors and EITR moderation of the device (issue 6), driven only through BAR0 registers,
the simulation clock and the datapath's `Device82599.rx_queue_written` hook."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov.drivers import coalesce
from sriov.drivers.coalesce import (
    BULK_LATENCY,
    ITR_12K,
    ITR_20K,
    ITR_100K,
    LOW_LATENCY,
    LOWEST_LATENCY,
    ItrState,
    adaptive_itr,
    queue_vectors,
    set_coalesce,
    update_latency_range,
)
from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599, PciFunction
from sriov.hw.eitr import eitr_from_usecs, interval_ns_from_eitr
from sriov.hw.iommu import Iommu
from sriov.timeline import ModerationSettings, simulate

LATENCY = 1_000
NUM_VFS = 4


# -- what ixgbevf writes (the driver side, rewritten from its documented behaviour) ---------------
def set_ivar(fn: PciFunction, direction: int, queue: int, vector: int) -> None:
    """ixgbevf_set_ivar / ixgbe_set_ivar: -1 = other causes, 0 = RX, 1 = TX."""
    vf = fn.device_id == R.DEV_ID_82599_VF
    entry = vector | R.IVAR_ALLOC_VAL
    if direction == -1:
        reg, shift = (R.VTIVAR_MISC, 0) if vf else (R.IVAR_MISC, 8)
    else:
        reg = R.VTIVAR(queue >> 1) if vf else R.IVAR(queue >> 1)
        shift = 16 * (queue & 1) + 8 * direction
    value = fn.read32(reg) & ~(0xFF << shift)
    fn.write32(reg, value | entry << shift)


def vf_open(fn: PciFunction, eitr: int = 0, auto: bool = True) -> None:
    """ixgbevf_configure_msix + ixgbevf_irq_enable for two queue pairs."""
    for q in range(2):
        set_ivar(fn, 0, q, q)
        set_ivar(fn, 1, q, q)
        fn.write32(R.VTEITR(q), eitr | R.EITR_CNT_WDIS)
    set_ivar(fn, -1, 1, 2)
    mask = 0b111
    fn.write32(R.VTEIAM, mask if auto else 0)
    fn.write32(R.VTEIAC, mask)
    fn.write32(R.VTEIMS, mask)


class Recorder:
    """MSI-X handlers of one function: (vector, device fire time) per delivered message."""

    def __init__(self, fn: PciFunction, vectors: range, unmask: int | None = None) -> None:
        self.fn = fn
        self.got: list[tuple[int, int]] = []
        self.unmask = unmask  # re-enable register the handler writes (auto-mask off otherwise)
        for v in vectors:
            fn.set_msix_handler(v, self.handle)

    def handle(self, v: int) -> None:
        self.got.append((v, self.fn.device.clock.now - self.fn.irq_latency_ns))
        if self.unmask is not None:
            self.fn.write32(self.unmask, 1 << v)

    def times(self, v: int) -> list[int]:
        return [t for vec, t in self.got if vec == v]


@pytest.fixture
def dev() -> Device82599:
    d = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=LATENCY)
    d.sriov_enable(NUM_VFS)
    d.pf.write32(R.CTRL_EXT, R.CTRL_EXT_PFRSTD)
    return d


def completion(dev: Device82599, *queues: int) -> None:
    counts = np.zeros(R.MAX_QUEUES, np.uint16)
    counts[list(queues)] = 1
    dev.rx_queue_written(counts)


# -- rx-usecs 0 ------------------------------------------------------------------------------------
def test_rx_usecs_0_every_completion_interrupts(dev: Device82599) -> None:
    vf = dev.vf(1)
    vf_open(vf, eitr=0, auto=False)
    rec = Recorder(vf, range(3))
    times = [0, 1, 2_500, 2_501, 9_000, 9_000]
    for t in times:
        dev.clock.run_until(t)
        completion(dev, dev.vf_queue(1, 0))
    dev.clock.advance(10 * LATENCY)
    assert vf.interrupt_counts()["eth0-vf1-TxRx-0"] == len(times), "one message per completion"
    # deliveries of a vector already in flight coalesce (the message is pending in the APIC)
    assert rec.times(0) == [0, 2_500, 9_000]


def test_rx_usecs_0_with_auto_mask_interrupts_again_as_soon_as_the_driver_unmasks(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf_open(vf, eitr=0)
    rec = Recorder(vf, range(2), unmask=R.VTEIMS)
    for t in (0, 5_000, 5_000 + LATENCY + 1):
        dev.clock.run_until(t)
        completion(dev, dev.vf_queue(0, 0))
    dev.clock.advance(5 * LATENCY)
    assert rec.times(0) == [0, 5_000, 5_000 + LATENCY + 1]


# -- the interval ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 120_000), min_size=1, max_size=60),
    usecs=st.sampled_from([2, 3, 10, 50, 100, 1022]),
    auto=st.booleans(),
)
def test_two_interrupts_on_a_vector_are_never_closer_than_the_interval(gaps, usecs, auto) -> None:
    d = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=LATENCY)
    d.sriov_enable(2)
    vf = d.vf(1)
    vf_open(vf, eitr=usecs << 2, auto=auto)
    rec = Recorder(vf, range(3), unmask=R.VTEIMS if auto else None)
    interval = interval_ns_from_eitr(usecs << 2)
    times = np.cumsum(gaps).tolist()
    for t in times:
        d.clock.run_until(t)
        completion(d, d.vf_queue(1, 1))
    d.clock.advance(interval + 2 * LATENCY)
    fired = rec.times(1)
    assert rec.times(0) == [] and rec.times(2) == []
    assert len(fired) == vf.interrupt_counts()["eth0-vf1-TxRx-1"]
    assert np.all(np.diff(fired) >= interval)
    for t in times:  # every completion is signalled, at the latest when the interval allows
        later = [f for f in fired if f >= t]
        assert later and later[0] <= max(t, LATENCY + t) + interval


def test_frame_arriving_during_the_interval_is_signalled_at_its_end(dev: Device82599) -> None:
    vf = dev.vf(2)
    vf_open(vf, eitr=eitr_from_usecs(50))
    rec = Recorder(vf, range(3), unmask=R.VTEIMS)
    completion(dev, dev.vf_queue(2, 0))
    dev.clock.run_until(7_000)
    completion(dev, dev.vf_queue(2, 0))
    dev.clock.run_until(51_199)
    assert rec.times(0) == [0]
    dev.clock.advance(LATENCY + 1)
    assert rec.times(0) == [0, 50 // 2 * 2048], "the pending cause fires when 25 x 2.048 us expire"


def test_eitr_write_without_cnt_wdis_restarts_the_counter(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf_open(vf, eitr=eitr_from_usecs(1022), auto=False)
    rec = Recorder(vf, range(3))
    completion(dev, 0)
    dev.clock.run_until(10_000)
    completion(dev, 0)
    dev.clock.run_until(20_000)
    vf.write32(R.VTEITR(0), eitr_from_usecs(1022) | R.EITR_CNT_WDIS)  # keeps counting: still waits
    dev.clock.run_until(30_000)
    assert rec.times(0) == [0]
    vf.write32(R.VTEITR(0), eitr_from_usecs(1022))  # counter reset: the held cause goes now
    dev.clock.advance(LATENCY)
    assert rec.times(0) == [0, 30_000]
    assert vf.read32(R.VTEITR(0)) == eitr_from_usecs(1022), "CNT_WDIS is not stored"


# -- masks, auto-mask, causes ----------------------------------------------------------------------
def test_masked_vector_does_not_fire_and_fires_on_unmask_if_pending(dev: Device82599) -> None:
    vf = dev.vf(3)
    vf_open(vf, eitr=0, auto=False)
    rec = Recorder(vf, range(3))
    vf.write32(R.VTEIMC, 0b001)
    assert vf.read32(R.VTEIMS) == 0b110
    completion(dev, dev.vf_queue(3, 0))
    dev.clock.run_until(100_000)
    assert rec.got == [] and vf.interrupt_counts()["eth0-vf3-TxRx-0"] == 0
    assert vf.read32(R.VTEICS) & 1, "the cause is latched"
    vf.write32(R.VTEIMS, 0b001)
    dev.clock.advance(LATENCY)
    assert rec.times(0) == [100_000]
    vf.write32(R.VTEIMC, 0b001)  # masked, nothing pending: unmask sends nothing
    vf.write32(R.VTEIMS, 0b001)
    dev.clock.advance(10 * LATENCY)
    assert rec.times(0) == [100_000]


def test_unmask_inside_the_interval_waits_for_its_end(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf_open(vf, eitr=eitr_from_usecs(100))
    rec = Recorder(vf, range(3))  # the handler does not unmask
    completion(dev, 0)
    dev.clock.run_until(5_000)
    completion(dev, 0)
    dev.clock.run_until(60_000)
    vf.write32(R.VTEIMS, 1)
    dev.clock.run_until(200_000)
    assert rec.times(0) == [0, 50 * 2048]


def test_auto_mask_masks_the_vector_when_it_fires(dev: Device82599) -> None:
    vf = dev.vf(1)
    vf_open(vf, eitr=0, auto=True)
    rec = Recorder(vf, range(3))
    completion(dev, dev.vf_queue(1, 0))
    assert vf.read32(R.VTEIMS) == 0b110, "VTEIAM cleared vector 0's enable as it fired"
    dev.clock.run_until(50_000)
    completion(dev, dev.vf_queue(1, 0))
    completion(dev, dev.vf_queue(1, 1))  # the other queue vector is unaffected
    dev.clock.advance(LATENCY)
    assert rec.got == [(0, 0), (1, 50_000)]
    vf.write32(R.VTEIMS, 0b001)  # NAPI done: the latched cause fires at once
    dev.clock.advance(LATENCY)
    assert rec.times(0) == [0, 50_000 + LATENCY]
    vf.write32(R.VTEIAM, 0)
    vf.write32(R.VTEIMS, 0b111)
    completion(dev, dev.vf_queue(1, 1))
    assert vf.read32(R.VTEIMS) == 0b111, "no auto-mask without VTEIAM"


def test_vteicr_read_to_clear_write_1_to_clear_and_auto_clear(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf_open(vf, eitr=0, auto=False)
    vf.write32(R.VTEIAC, 0)
    vf.write32(R.VTEIMC, 0b111)
    vf.write32(R.VTEICS, 0b101)
    assert vf.read32(R.VTEICR) == 0b101
    assert vf.read32(R.VTEICR) == 0, "read-to-clear"
    vf.write32(R.VTEICS, 0b111)
    vf.write32(R.VTEICR, 0b010)
    assert vf.read32(R.VTEICR) == 0b101, "write-1-to-clear"
    rec = Recorder(vf, range(3))
    vf.write32(R.VTEICR, 0b111)
    vf.write32(R.VTEIMS, 0b111)  # nothing latched any more: nothing fires
    dev.clock.advance(LATENCY)
    assert rec.got == []
    vf.write32(R.VTEIAC, 0b001)
    completion(dev, 0, 1)  # queue 0 -> vector 0 (auto-clear), queue 1 -> vector 1 (kept)
    assert vf.read32(R.VTEICR) == 0b010


def test_mailbox_vector_is_independent_of_queue_vectors(dev: Device82599) -> None:
    vf = dev.vf(2)
    vf_open(vf, eitr=eitr_from_usecs(1022), auto=True)
    rec = Recorder(vf, range(3))
    completion(dev, dev.vf_queue(2, 0), dev.vf_queue(2, 1))  # both queue vectors fire and auto-mask
    dev.clock.run_until(10_000)
    completion(dev, dev.vf_queue(2, 0), dev.vf_queue(2, 1))  # held: masked, and inside 1 ms
    dev.pf.write32(R.PFMAILBOX(2), R.PFMAILBOX_STS)  # the PF writes to the VF's mailbox
    dev.clock.advance(LATENCY)
    assert rec.times(2) == [10_000], "the mailbox vector fires at once"
    assert rec.times(0) == [0] and rec.times(1) == [0]
    assert vf.interrupt_counts() == {"eth0-vf2-TxRx-0": 1, "eth0-vf2-TxRx-1": 1, "eth0-vf2-mbx": 1}
    # and a busy mailbox does not disturb the queue vectors' moderation
    vf.write32(R.VTEIMS, 0b011)
    dev.clock.run_until(1022 // 2 * 2048 + LATENCY)
    assert rec.times(0) == [0, 511 * 2048] and rec.times(1) == [0, 511 * 2048]


def test_vtivar_routes_rx_entries_only_and_unrouted_causes_are_counted(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf.write32(R.VTIVAR(0), (R.IVAR_ALLOC_VAL | 1) << 8 | (R.IVAR_ALLOC_VAL | 0) << 16)  # q0 TX, q1 RX
    vf.write32(R.VTEIMS, 0b111)
    completion(dev, 0)  # queue 0 has no RX entry
    completion(dev, 1)
    assert vf.read32(R.VTEICR) == 0b001
    assert vf.msix.unrouted == 1
    vf.write32(R.VTIVAR(0), R.IVAR_ALLOC_VAL | 5)  # a vector the VF does not have
    completion(dev, 0)
    assert vf.msix.unrouted == 2 and vf.read32(R.VTEICR) == 0


def test_queues_route_to_their_pool_owner(dev: Device82599) -> None:
    """VF pools through their VTIVAR, every other queue through the PF's IVAR."""
    for n in range(NUM_VFS):
        vf_open(dev.vf(n), auto=False)
    pf = dev.pf
    pf_queue = dev.vf_queue(NUM_VFS, 1)  # the PF's pool is the one after the VFs
    set_ivar(pf, 0, pf_queue, 40)
    pf.write32(R.EIMS_EX(1), 1 << (40 - 32))
    rec = Recorder(pf, range(64))
    completion(dev, dev.vf_queue(3, 1), pf_queue)
    dev.clock.advance(LATENCY)
    assert dev.vf(3).interrupt_counts() == {"eth0-vf3-TxRx-0": 0, "eth0-vf3-TxRx-1": 1, "eth0-vf3-mbx": 0}
    assert all(sum(dev.vf(n).interrupt_counts().values()) == 0 for n in range(3))
    assert rec.got == [(40, 0)]
    assert pf.interrupt_counts() == {"eth0-TxRx-40": 1, "eth0-other": 0}


def test_pf_vectors_eims_ex_eiam_eiac_and_eitr(dev: Device82599) -> None:
    pf = dev.pf
    set_ivar(pf, 0, 100, 3)
    set_ivar(pf, 0, 101, 20)
    set_ivar(pf, -1, 1, 63)
    pf.write32(R.EIAM_EX(0), 0xFFFFFFFF)
    pf.write32(R.EIAM_EX(1), 0xFFFFFFFF)
    pf.write32(R.EIAC, R.EICR_RTX_QUEUE)
    pf.write32(R.EITR(20), eitr_from_usecs(10))
    pf.write32(R.EIMS_EX(0), 0xFFFFFFFF)
    pf.write32(R.EIMS, R.EICR_MAILBOX)
    assert pf.read32(R.EIMS) == 0xFFFF | R.EICR_MAILBOX
    rec = Recorder(pf, range(64), unmask=None)
    completion(dev, 100, 101)
    assert pf.read32(R.EIMS_EX(0)) == 0xFFFFFFFF & ~(1 << 3 | 1 << 20), "EIAM_EX auto-masked both"
    assert pf.read32(R.EICR) == 0, "EIAC auto-cleared vector 3's cause"
    pf.write32(R.EIMS_EX(0), 1 << 3 | 1 << 20)
    completion(dev, 100, 101)
    dev.clock.advance(20_000)
    assert rec.times(3) == [0], "two messages in flight together are delivered once"
    assert rec.times(20) == [0, 5 * 2048]
    dev.vf(0).write32(R.VFMAILBOX, R.VFMAILBOX_REQ)  # other cause: its own vector, unmoderated
    dev.clock.advance(LATENCY)
    assert rec.times(63) == [20_000]
    counts = pf.interrupt_counts()
    assert counts["eth0-TxRx-3"] == 2 and counts["eth0-TxRx-20"] == 2 and counts["eth0-other"] == 1


def test_resets_return_vectors_to_masked_and_idle(dev: Device82599) -> None:
    vf = dev.vf(1)
    vf_open(vf, eitr=eitr_from_usecs(100))
    rec = Recorder(vf, range(3))
    completion(dev, dev.vf_queue(1, 0))
    vf.write32(R.VTEIMS, 1)
    completion(dev, dev.vf_queue(1, 0))  # held for the interval
    vf.write32(R.VFCTRL, R.CTRL_RST)
    dev.clock.advance(1_000_000)
    assert rec.times(0) == [0], "a reset drops the held cause and its timer"
    assert vf.read32(R.VTEIMS) == 0 and vf.read32(R.VTEITR(0)) == 0
    completion(dev, dev.vf_queue(1, 0))
    dev.clock.advance(LATENCY)
    assert rec.times(0) == [0], "masked after reset"


def test_bad_queue_counts_are_refused_and_change_nothing(dev: Device82599) -> None:
    vf = dev.vf(0)
    vf_open(vf, auto=False)
    for bad in (np.zeros((2, 64), np.int32), np.zeros(129, np.int32), np.ones(8, np.float64)):
        with pytest.raises(ConfigError, match="queue_counts"):
            dev.rx_queue_written(bad)
    with pytest.raises(ConfigError, match="outside"):
        dev.rx_queues_raised([0, 128])
    dev.rx_queue_written(np.zeros(0, np.int64))  # nothing written: nothing raised
    assert sum(vf.interrupt_counts().values()) == 0
    dev.rx_queue_written(np.array([0, 3], np.uint32))  # a short array covers the first queues
    assert vf.interrupt_counts() == {"eth0-vf0-TxRx-0": 0, "eth0-vf0-TxRx-1": 1, "eth0-vf0-mbx": 0}
    dev.rx_queues_raised([0])  # the list form: the same routing
    assert vf.interrupt_counts() == {"eth0-vf0-TxRx-0": 1, "eth0-vf0-TxRx-1": 1, "eth0-vf0-mbx": 0}


# -- the device agrees with the Numba timeline ------------------------------------------------------
def device_timeline(arrivals: np.ndarray, s: ModerationSettings) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The timeline model's scenario run on the device: a VF queue, its vector, a NAPI driver.

    Frames arrive on queue 0 of VF 0 (the ring modelled here as in the event-driven twin);
    the device moderates and delivers; the handler polls up to ``budget`` frames and
    re-enables the vector through VTEIMS when the ring is drained.
    """
    dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=s.injection_latency_ns)
    dev.sriov_enable(1)
    vf = dev.vf(0)
    vf_open(vf, eitr=eitr_from_usecs(s.rx_usecs), auto=True)
    clock = dev.clock
    n = len(arrivals)
    handed = np.full(n, -1, np.int64)
    occupancy = np.zeros(n, np.int32)
    irq: list[int] = []
    waiting: deque[int] = deque()
    occupied = [0]
    counts = np.zeros(2, np.int64)
    counts[0] = 1

    def poll() -> None:
        start = clock.now
        take = min(s.budget, len(waiting))
        for k in range(take):
            handed[waiting.popleft()] = start + s.poll_overhead_ns + (k + 1) * s.per_frame_ns
        clock.schedule(s.poll_overhead_ns + take * s.per_frame_ns, lambda: poll_end(take))

    def poll_end(took: int) -> None:
        occupied[0] -= took
        if took == s.budget:
            poll()
        else:
            vf.write32(R.VTEIMS, 1 << 0)

    def handler(v: int) -> None:
        irq.append(clock.now - s.injection_latency_ns)
        poll()

    vf.set_msix_handler(0, handler)

    def arrive(i: int) -> None:
        if occupied[0] == s.ring_size:
            occupancy[i] = occupied[0]
            return
        occupied[0] += 1
        occupancy[i] = occupied[0]
        waiting.append(i)
        dev.rx_queue_written(counts)

    for i, t in enumerate(arrivals.tolist()):
        clock.schedule_at(t, lambda i=i: arrive(i))
    clock.run_pending(limit_ns=1 << 62)
    return irq, handed, occupancy


@settings(max_examples=80, deadline=None)
@given(
    arrivals=st.lists(st.integers(0, 300_000), max_size=100).map(lambda xs: np.array(sorted(xs), np.int64)),
    usecs=st.sampled_from([0, 3, 10, 50, 100]),
    latency=st.sampled_from([0, 700, 2_000]),
    budget=st.integers(1, 16),
    ring=st.integers(1, 40),
    overhead=st.sampled_from([0, 100, 1_000]),
    per_frame=st.sampled_from([0, 50, 700]),
)
def test_device_moderation_agrees_with_the_numba_timeline(
    arrivals, usecs, latency, budget, ring, overhead, per_frame
) -> None:
    s = ModerationSettings(rx_usecs=usecs, injection_latency_ns=latency, budget=budget, ring_size=ring,
                           poll_overhead_ns=overhead, per_frame_ns=per_frame)  # fmt: skip
    irq, handed, occupancy = device_timeline(arrivals, s)
    fast = simulate(arrivals, s)
    assert irq == fast.irq_times_ns.tolist()
    assert np.array_equal(handed, fast.handed_ns)
    assert np.array_equal(occupancy, fast.occupancy)


def test_device_agrees_with_the_timeline_at_line_rate() -> None:
    arrivals = (np.arange(20_000) * 67.2).astype(np.int64)
    for usecs in (0, 10, 50):
        s = ModerationSettings(rx_usecs=usecs, per_frame_ns=25)
        irq, handed, _ = device_timeline(arrivals, s)
        fast = simulate(arrivals, s)
        assert irq == fast.irq_times_ns.tolist() and len(irq) > 5
        assert np.array_equal(handed, fast.handed_ns)


# -- ethtool -C rx-usecs and the adaptive rule (driver side) -----------------------------------------
@pytest.mark.parametrize(("usecs", "eitr"), [(0, 0), (1, ITR_20K), (2, 8), (50, 200), (1022, 0xFF8)])
def test_set_coalesce_writes_ixgbe_encoding(dev: Device82599, usecs: int, eitr: int) -> None:
    vf = dev.vf(0)
    vf_open(vf, eitr=0)
    assert set_coalesce(vf, usecs) == (usecs << 2 if usecs != 1 else ITR_20K)
    assert [vf.read32(R.VTEITR(v)) for v in range(3)] == [eitr, eitr, 0], "queue vectors only"
    assert vf.msix.vectors[0].interval_ns == (eitr >> 3) * 2048


def test_set_coalesce_refuses_bad_values_and_changes_nothing(dev: Device82599) -> None:
    vf = dev.vf(1)
    vf_open(vf, eitr=eitr_from_usecs(50))
    for bad in (-1, 1023, 5000, 2.5, True, "50"):
        with pytest.raises(ConfigError, match=r"0\.\.1022"):
            set_coalesce(vf, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="vectors"):
        set_coalesce(vf, 10, vectors=[0, 3])
    assert vf.read32(R.VTEITR(0)) == vf.read32(R.VTEITR(1)) == 200


def test_set_coalesce_on_the_pf_programs_the_vectors_its_ivar_uses(dev: Device82599) -> None:
    pf = dev.pf
    assert queue_vectors(pf) == [0]
    set_ivar(pf, 0, 8, 5)
    set_ivar(pf, 1, 8, 5)
    set_ivar(pf, 0, 127, 33)
    assert queue_vectors(pf) == [5, 33]
    set_coalesce(pf, 100)
    assert pf.read32(R.EITR(5)) == pf.read32(R.EITR(33)) == 400 and pf.read32(R.EITR(0)) == 0
    assert pf.msix.vectors[33].interval_ns == 50 * 2048


def test_vf_queue_vectors_default_skips_the_mailbox_vector(dev: Device82599) -> None:
    vf = dev.vf(2)
    set_ivar(vf, -1, 1, 1)  # one queue vector: ixgbevf puts the mailbox on vector 1
    assert queue_vectors(vf) == [0]
    set_ivar(vf, 0, 0, 0)
    set_ivar(vf, 0, 1, 0)
    assert queue_vectors(vf) == [0]


def test_latency_ranges_follow_ixgbevf_update_itr() -> None:
    # itr 200 = a 50 us timeslice; thresholds 10 and 20 bytes/us = 500 and 1000 bytes
    assert update_latency_range(200, LOWEST_LATENCY, 550, 5) == LOW_LATENCY
    assert update_latency_range(200, LOWEST_LATENCY, 549, 5) == LOWEST_LATENCY
    assert update_latency_range(200, LOW_LATENCY, 1050, 5) == BULK_LATENCY
    assert update_latency_range(200, LOW_LATENCY, 549, 5) == LOWEST_LATENCY
    assert update_latency_range(200, LOW_LATENCY, 700, 5) == LOW_LATENCY
    assert update_latency_range(200, BULK_LATENCY, 1049, 5) == LOW_LATENCY
    assert update_latency_range(200, BULK_LATENCY, 1050, 5) == BULK_LATENCY
    assert update_latency_range(200, BULK_LATENCY, 10**6, 0) == BULK_LATENCY, "no packets: no change"
    assert update_latency_range(3, LOW_LATENCY, 10**6, 9) == LOW_LATENCY, "a 0 us timeslice: no change"


def test_adaptive_itr_smooths_towards_the_range_target() -> None:
    s = ItrState()  # ixgbevf starts at 20K with both ranges at lowest
    s1 = adaptive_itr(s, rx_bytes=0, rx_packets=0)
    assert s1 == ItrState(itr=10 * ITR_100K * ITR_20K // (9 * ITR_100K + ITR_20K), rx_range=LOWEST_LATENCY)
    bulk = ItrState(itr=ITR_20K, rx_range=LOW_LATENCY)
    s2 = adaptive_itr(bulk, rx_bytes=64 * 1500, rx_packets=64)
    assert s2.rx_range == BULK_LATENCY and s2.itr == 10 * ITR_12K * ITR_20K // (9 * ITR_12K + ITR_20K)
    assert adaptive_itr(ItrState(itr=ITR_12K, rx_range=BULK_LATENCY), 10**6, 100).itr == ITR_12K
    tx_bulk = adaptive_itr(
        ItrState(itr=ITR_12K, rx_range=LOWEST_LATENCY, tx_range=BULK_LATENCY), 1, 1, 10**6, 50
    )
    assert tx_bulk.itr == ITR_12K, "the vector follows the busier of its RX and TX rings"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2_000)), max_size=60))
def test_adaptive_itr_stays_between_the_100k_and_12k_settings(traffic) -> None:
    s = ItrState()
    for rx_bytes, rx_packets in traffic:
        s = adaptive_itr(s, rx_bytes, rx_packets)
        assert ITR_100K <= s.itr <= ITR_12K
        assert s.rx_range in (LOWEST_LATENCY, LOW_LATENCY, BULK_LATENCY)


def test_adaptive_itr_converges_for_steady_traffic() -> None:
    s = ItrState()
    for _ in range(60):
        s = adaptive_itr(s, rx_bytes=200_000, rx_packets=150)  # line-rate bulk
    # the driver's integer smoothing settles just below the target on the way up (326 for 336)
    assert s.rx_range == BULK_LATENCY and ITR_12K - 12 <= s.itr <= ITR_12K
    for _ in range(60):
        s = adaptive_itr(s, rx_bytes=64, rx_packets=1)  # a ping now and then
    assert s.rx_range == LOWEST_LATENCY and s.itr == ITR_100K


# -- the driver-side MSI-X set-up helpers ------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.sampled_from([-1, 0, 1]), st.integers(0, 7), st.integers(0, 2)), min_size=1, max_size=12
    )
)
def test_set_ivar_helper_writes_what_ixgbevf_writes(writes) -> None:
    a = Device82599("a", SimClock(), Iommu())
    b = Device82599("b", SimClock(), Iommu())
    for d in (a, b):
        d.sriov_enable(1)
    for direction, queue, vector in writes:
        set_ivar(a.vf(0), direction, queue, vector)
        coalesce.set_ivar(b.vf(0), direction, queue, vector)
    for reg in [R.VTIVAR(x) for x in range(4)] + [R.VTIVAR_MISC]:
        assert a.vf(0).read32(reg) == b.vf(0).read32(reg)


@pytest.mark.parametrize(("queues", "mask", "mbx"), [(1, 0b011, 1), (2, 0b111, 2), (4, 0b111, 2)])
def test_configure_vf_msix_and_irq_enable(dev: Device82599, queues: int, mask: int, mbx: int) -> None:
    vf = dev.vf(0)
    assert coalesce.configure_vf_msix(vf, queues, rx_usecs=50) == (mask, mbx)
    coalesce.irq_enable(vf, mask)
    assert vf.read32(R.VTEIMS) == vf.read32(R.VTEIAM) == vf.read32(R.VTEIAC) == mask
    assert queue_vectors(vf) == list(range(mbx))
    rec = Recorder(vf, range(3))
    completion(dev, *range(queues))
    dev.pf.write32(R.PFMAILBOX(0), R.PFMAILBOX_STS)
    dev.clock.advance(LATENCY)
    assert sorted(v for v, _ in rec.got) == list(range(mbx + 1))
    names = vf.interrupt_counts()
    assert names["eth0-vf0-mbx"] == 1 and sum(names.values()) == mbx + 1 and len(names) == 3
    coalesce.irq_disable(vf)
    assert vf.read32(R.VTEIMS) == 0 and vf.read32(R.VTEIAM) == 0
    with pytest.raises(ConfigError):
        coalesce.configure_vf_msix(vf, 9)


def test_tx_completions_use_the_tx_entries(dev: Device82599) -> None:
    vf = dev.vf(1)
    set_ivar(vf, 1, 0, 1)  # queue 0: TX on vector 1, RX not routed
    vf.write32(R.VTEIMS, 0b111)
    dev.tx_queues_completed([dev.vf_queue(1, 0)])
    assert vf.read32(R.VTEICR) == 0b010
    completion(dev, dev.vf_queue(1, 0))
    assert vf.msix.unrouted == 1


def test_adaptive_mode_reprograms_the_interval_the_device_uses(dev: Device82599) -> None:
    """A driver loop: after each poll the adaptive rule may change VTEITR; the device follows."""
    vf = dev.vf(0)
    mask, _ = coalesce.configure_vf_msix(vf, 1, rx_usecs=coalesce.ADAPTIVE)
    coalesce.irq_enable(vf, mask)
    assert vf.msix.vectors[0].interval_ns == (ITR_20K >> 3) * 2048
    state = ItrState()
    for _ in range(40):  # bulk traffic: 64 full-size frames per poll
        state = adaptive_itr(state, rx_bytes=64 * 1514, rx_packets=64)
        coalesce.write_eitr(vf, 0, state.itr)
    assert vf.read32(R.VTEITR(0)) == state.itr & R.MAX_EITR
    assert vf.msix.vectors[0].interval_ns == (state.itr & R.MAX_EITR) >> 3 << 11
    assert state.itr > ITR_20K
