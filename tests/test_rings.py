"""The driver side of a receive queue (RxRing): programming, posting, polling, refill (issue 4)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from conftest import RxRig, eth
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov import _fastpath, golden
from sriov.drivers.rings import RxRing
from sriov.errors import ConfigError
from sriov.hw import regs as R

MAC0 = "02:00:00:00:00:10"


def test_up_programs_the_queue_through_the_vf_bar_only(impl) -> None:
    rig = RxRig(impl, num_vfs=2, ring=32)
    ring, pf = rig.rings[1], rig.dev.pf
    q = rig.dev.vf_queue(1, 0)
    assert pf.read32(R.RDBAL(q)) == ring.ring_addr and pf.read32(R.RDBAH(q)) == 0
    assert pf.read32(R.RDLEN(q)) == 32 * 16
    assert pf.read32(R.SRRCTL(q)) == R.SRRCTL_DROP_EN | R.SRRCTL_DESCTYPE_ADV_ONEBUF | 2
    assert pf.read32(R.RXDCTL(q)) & R.RXDCTL_ENABLE
    assert pf.read32(R.RDH(q)) == 0 and pf.read32(R.RDT(q)) == 31  # every descriptor but one posted
    desc = rig.memories[1].view(ring.ring_addr, 32 * 16).view("<u8").reshape(32, 2)
    assert desc[0, 0] == ring.buffers_addr and desc[1, 0] == ring.buffers_addr + 2048 and not desc[:, 1].any()


def test_poll_returns_zero_copy_views_and_refills_on_the_next_poll(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=16)
    rig.set_mac(0, MAC0)
    frames = [eth(MAC0, 60 + i) for i in range(5)]
    rig.receive(frames)
    batch = rig.rings[0].poll(3)
    assert batch.to_list() == frames[:3]
    assert batch.data is rig.memories[0].buffer  # views into guest memory, no copy
    q = rig.dev.vf_queue(0, 0)
    assert rig.dev.pf.read32(R.RDT(q)) == 15  # not refilled yet: the caller still owns the buffers
    assert rig.poll(0) == frames[3:]
    # the three buffers of the first poll went back: tail moved by 3, DD cleared on them
    assert rig.dev.pf.read32(R.RDT(q)) == 2
    assert rig.rings[0].pending() == 0


def test_ring_wraps_many_times_and_keeps_every_frame(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8)
    rig.set_mac(0, MAC0)
    got = []
    sent = []
    for burst in range(12):
        frames = [eth(MAC0, 64 + burst * 3 + i) for i in range(5)]
        sent += frames
        rig.receive(frames)
        got += rig.poll(0, 64)  # copies...
        rig.rings[0].release()  # ...so the buffers can go back at once
    assert got == sent
    assert rig.counter(0, "rx_dropped") == 0


def test_buffers_held_by_the_caller_are_not_reposted(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8)
    rig.set_mac(0, MAC0)
    rig.receive([eth(MAC0, 100 + i) for i in range(5)])
    held = rig.rings[0].poll(64)  # views: their buffers stay with the driver until the next poll
    result = rig.receive([eth(MAC0, 200 + i) for i in range(5)])
    assert held.to_list() == [eth(MAC0, 100 + i) for i in range(5)]  # not overwritten
    assert result.counts() == {"DELIVERED": 2, "NO_DMA_RESOURCES": 3}  # only the 2 still posted
    assert rig.counter(0, "rx_dropped") == 3 and rig.port("rx_no_dma_resources") == 3


def test_jumbo_frame_spans_buffers_and_comes_back_as_one_view(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8, buffer_size=2048)
    rig.w(R.MAXFRS, 9728 << R.MHADD_MFS_SHIFT)
    rig.set_mac(0, MAC0)
    big = [eth(MAC0, 9000), eth(MAC0, 3000), eth(MAC0, 5000)]
    for _ in range(3):  # the third round wraps a frame round the end of the ring
        result = rig.receive(big[:2])
        assert rig.poll(0) == big[:2], result.counts()
        rig.rings[0].release()
    assert rig.counter(0, "rx_packets") == 6 and rig.counter(0, "rx_bytes") == 6 * 6000


def test_bad_ring_parameters_are_refused(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8)
    fn, mem = rig.dev.vfs[0], rig.memories[0]
    for kw in ({"count": 12}, {"count": 8192}, {"buffer_size": 1000}, {"queue": 8}):
        with pytest.raises(ConfigError):
            RxRing(fn, mem, **kw)


def test_pf_ring_uses_pf_registers(impl) -> None:
    rig = RxRig(impl, num_vfs=2, ring=8)
    from sriov.memory import GuestMemory

    host = GuestMemory(1 << 20, "host")
    rig.dev.pf.domain.map(0, host.buffer, 0, 1 << 20)
    q = rig.dev.vf_queue(rig.pf_pool, 0)
    ring = RxRing(rig.dev.pf, host, q, 8)
    assert rig.dev.pf.read32(R.RDT(q)) == 7 and rig.dev.pf.read32(R.RDBAL(q)) == ring.ring_addr
    frame = eth("02:00:00:00:00:77")  # unknown unicast -> the default pool (the PF's)
    result = rig.receive([frame])
    assert result.pools(0) == [rig.pf_pool]
    assert ring.poll(8).to_list() == [frame]
    assert np.array_equal(ring.last_vlan, [0])


def test_discard_recycles_without_handing_out_frames(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8)
    rig.set_mac(0, MAC0)
    for _ in range(5):
        rig.receive([eth(MAC0)] * 7)
        assert rig.rings[0].discard() == 7
    assert rig.counter(0, "rx_packets") == 35 and rig.counter(0, "rx_dropped") == 0


descriptor = st.tuples(
    st.booleans(), st.booleans(), st.booleans(), st.integers(0, 4096), st.integers(0, 0xFFFF)
)


@settings(max_examples=150, deadline=None)
@given(
    descs=st.lists(descriptor, min_size=8, max_size=8).map(lambda d: d * 2),
    ntc=st.integers(0, 15),
    budget=st.integers(0, 20),
)
def test_harvest_compiled_matches_golden(descs, ntc, budget) -> None:
    count = len(descs)
    ring = np.zeros((count, 4), np.uint32)
    for d, (dd, eop, vp, length, vlan) in enumerate(descs):
        ring[d, 2] = (
            (R.RXD_STAT_DD if dd else 0) | (R.RXD_STAT_EOP if eop else 0) | (R.RXD_STAT_VP if vp else 0)
        )
        ring[d, 3] = length | vlan << 16
    bufs = np.arange(count, dtype=np.uint64) * np.uint64(2048) + np.uint64(1 << 20)
    outs = []
    for mod in (_fastpath, golden):
        o = (np.zeros(budget, np.int64), np.zeros(budget, np.uint32), np.zeros(budget, np.uint16))
        outs.append((mod.rx_harvest(ring, bufs, ntc, budget, *o), o))
    (ra, oa), (rb, ob) = outs
    assert ra == rb
    assert all(np.array_equal(x[: ra[0]], y[: ra[0]]) for x, y in zip(oa, ob, strict=True))
    assert ra[1] <= count - 1 and ra[0] <= budget


def _on_base(base: type) -> type:
    """`RxRing` with its base class (the compiled `RxRingState`) replaced by ``base``."""
    body = {k: v for k, v in vars(RxRing).items() if k not in ("__dict__", "__weakref__")}
    return type("RxRing", (base,), body)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 20),  # frames offered to the VF before the driver step
            st.sampled_from(["discard", "poll", "release"]),
            st.one_of(st.none(), st.integers(0, 20)),  # the step's budget (None: discard's default)
            st.integers(60, 5000),  # frame length: long ones span buffers, some wrap the ring
        ),
        min_size=1,
        max_size=12,
    )
)
def test_discard_compiled_and_golden_bases_agree(steps) -> None:
    """`RxRingState.discard` (compiled) against its golden twin, mixed with polls and releases:
    the same frame counts, descriptors, ring registers, driver indices and pool counters."""
    import conftest

    rigs = []
    for base in (_fastpath.RxRingState, golden.RxRingState):
        with mock.patch.object(conftest, "RxRing", _on_base(base)):
            rig = RxRig(_fastpath, num_vfs=1, ring=16, buffer_size=1024)
        rig.set_mac(0, MAC0)
        rigs.append(rig)
    assert type(rigs[0].rings[0]).__mro__[1] is _fastpath.RxRingState
    assert type(rigs[1].rings[0]).__mro__[1] is golden.RxRingState
    q = rigs[0].dev.vf_queue(0, 0)
    for offered, op, budget, length in steps:
        answers = []
        for rig in rigs:
            if offered:
                rig.receive([eth(MAC0, length)] * offered)
            ring = rig.rings[0]
            if op == "discard":
                answers.append(ring.discard(budget))
            elif op == "poll":
                answers.append(ring.poll(20 if budget is None else budget).to_list())
            else:
                ring.release()
                answers.append(None)
        assert answers[0] == answers[1], (op, budget)
        a, b = (rig.rings[0] for rig in rigs)
        assert (a._ntu, a._ntc, a.frames, a.last_bytes) == (b._ntu, b._ntc, b.frames, b.last_bytes)
        assert np.array_equal(a._words, b._words)
        for reg in (R.RDH(q), R.RDT(q)):
            assert rigs[0].dev.pf.read32(reg) == rigs[1].dev.pf.read32(reg)
        assert np.array_equal(rigs[0].dev.state.pool_counters, rigs[1].dev.state.pool_counters)


def test_discard_refuses_a_bad_budget_and_changes_nothing(impl) -> None:
    rig = RxRig(impl, num_vfs=1, ring=8)
    rig.set_mac(0, MAC0)
    rig.receive([eth(MAC0)] * 3)
    ring = rig.rings[0]
    before = (ring._ntu, ring._ntc, ring.frames, ring._words.copy())
    for bad in (-1, "3", 2.0):
        with pytest.raises(ConfigError):
            ring.discard(bad)
    assert (ring._ntu, ring._ntc, ring.frames) == before[:3] and np.array_equal(ring._words, before[3])
    assert ring.discard() == 3


MACS3 = ["02:00:00:00:00:a0", "02:00:00:00:00:a1", "02:00:00:00:00:a2"]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.lists(st.integers(0, 2), max_size=20),  # which VF each offered frame is for
            st.integers(60, 5000),  # frame length: long ones span buffers, some wrap the ring
            st.lists(st.integers(0, 2), min_size=0, max_size=5),  # the rings handed over, in order
            st.one_of(st.none(), st.integers(0, 20)),
            st.booleans(),  # a poll of VF 0 instead (mixed in)
        ),
        min_size=1,
        max_size=10,
    )
)
def test_discard_rings_agrees_with_one_discard_after_another(steps) -> None:
    """`discard_rings` (compiled: the ring work of all rings in one GIL release) against the
    golden twin (each ring's own discard in turn), rings repeated and mixed with polls: the same
    totals, descriptors, ring registers, driver indices and pool counters."""
    import conftest

    rigs = []
    for base in (_fastpath.RxRingState, golden.RxRingState):
        with mock.patch.object(conftest, "RxRing", _on_base(base)):
            rig = RxRig(_fastpath, num_vfs=3, ring=16, buffer_size=1024)
        for vf in range(3):
            rig.set_mac(vf, MACS3[vf])
        rigs.append(rig)
    discard = (_fastpath.discard_rings, golden.discard_rings)
    for vfs, length, order, budget, poll in steps:
        answers = []
        for rig, fn in zip(rigs, discard, strict=True):
            if vfs:
                rig.receive([eth(MACS3[vf], length) for vf in vfs])
            if poll:
                answers.append(rig.rings[0].poll(8).to_list())
            answers.append(fn([rig.rings[k] for k in order], budget))
        assert answers[: len(answers) // 2] == answers[len(answers) // 2 :]
        for vf in range(3):
            a, b = (rig.rings[vf] for rig in rigs)
            assert (a._ntu, a._ntc, a.frames, a.last_bytes) == (b._ntu, b._ntc, b.frames, b.last_bytes)
            assert np.array_equal(a._words, b._words)
            q = rigs[0].dev.vf_queue(vf, 0)
            for reg in (R.RDH(q), R.RDT(q)):
                assert rigs[0].dev.pf.read32(reg) == rigs[1].dev.pf.read32(reg)
        assert np.array_equal(rigs[0].dev.state.pool_counters, rigs[1].dev.state.pool_counters)


def test_discard_rings_refuses_bad_arguments_and_changes_nothing(impl) -> None:
    rig = RxRig(impl, num_vfs=2, ring=8)
    for vf in range(2):
        rig.set_mac(vf, MACS3[vf])
    rig.receive([eth(MACS3[0]), eth(MACS3[1])] * 3)
    before = [(r._ntu, r._ntc, r.frames, r._words.copy()) for r in rig.rings]
    for rings, budget in ((rig.rings, -1), (rig.rings, "3"), ([rig.rings[0], object()], None)):
        with pytest.raises(ConfigError):
            impl.discard_rings(rings, budget)
    for r, (ntu, ntc, frames, words) in zip(rig.rings, before, strict=True):
        assert (r._ntu, r._ntc, r.frames) == (ntu, ntc, frames) and np.array_equal(r._words, words)
    assert impl.discard_rings(rig.rings) == 6
