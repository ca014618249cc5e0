"""The ring's per-poll fast paths: `RxRingCore` (compiled vs golden) and the tail-write shortcut.

`RxRing` re-posts buffers and scans the ring through a bound `RxRingCore`, and writes its tail
straight into the register word `Device82599.plain_register` names (guarded). Both must be
indistinguishable from the slow forms: the same ring bytes and outputs as the golden twin and
the old per-call `rx_harvest`, the same register file as ``fn.write32``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov import _fastpath, golden
from sriov.errors import ConfigError, RegisterAccessError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import Iommu


def _ring(count: int, words: list[tuple[int, int, int, int]]):
    ring = np.zeros((count, 4), np.uint32)
    for d, w in enumerate(words[:count]):
        ring[d] = w
    bufs = (np.arange(count, dtype=np.uint64) * np.uint64(2048)) + np.uint64(0x10000)
    return ring, bufs


DD, EOP = R.RXD_STAT_DD, R.RXD_STAT_EOP
DESC = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.sampled_from(
        [0, R.RXD_STAT_DD, R.RXD_STAT_DD | R.RXD_STAT_EOP, R.RXD_STAT_DD | R.RXD_STAT_EOP | R.RXD_STAT_VP]
    )
    | st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=150, deadline=None)
@given(
    count=st.sampled_from([2, 8, 16, 64]),
    words=st.lists(DESC, max_size=64),
    ops=st.lists(
        st.tuples(st.sampled_from(["repost", "harvest"]), st.integers(0, 70), st.integers(0, 70)), max_size=8
    ),
)
def test_compiled_and_golden_ring_cores_agree(count, words, ops) -> None:
    worlds = []
    for mod in (_fastpath, golden):
        ring, bufs = _ring(count, words)
        outs = (np.zeros(count, np.int64), np.zeros(count, np.uint32), np.zeros(count, np.uint16))
        worlds.append((mod.RxRingCore(ring, bufs, *outs), ring, outs))
    for kind, a, b in ops:
        results = []
        for core, _, _ in worlds:
            try:
                results.append(core.repost(a, b) if kind == "repost" else core.harvest(a, b))
            except ConfigError as e:
                results.append(type(e))
        assert results[0] == results[1]
        assert worlds[0][0].last_bytes == worlds[1][0].last_bytes
        (_, ra, oa), (_, rb, ob) = worlds
        assert np.array_equal(ra, rb)
        for x, y in zip(oa, ob, strict=True):
            assert np.array_equal(x, y)
        if kind == "harvest" and not isinstance(results[0], type):
            # and the same answer as the one-shot scan the ring used before
            outs = (np.zeros(count, np.int64), np.zeros(count, np.uint32), np.zeros(count, np.uint16))
            if 0 <= a < count:
                assert golden.rx_harvest(ra, worlds[1][0].bufs, a, min(b, count), *outs) == results[0]
                assert worlds[0][0].last_bytes == int(outs[1][: results[0][0]].sum())


def test_ring_core_refuses_bad_shapes() -> None:
    for mod in (_fastpath, golden):
        ring, bufs = _ring(8, [])
        small = (np.zeros(4, np.int64), np.zeros(8, np.uint32), np.zeros(8, np.uint16))
        with pytest.raises(ConfigError):
            mod.RxRingCore(ring, bufs, *small)
        with pytest.raises(ConfigError):
            mod.RxRingCore(
                ring, bufs[:4], np.zeros(8, np.int64), np.zeros(8, np.uint32), np.zeros(8, np.uint16)
            )


def _device(num_vfs: int = 4) -> Device82599:
    dev = Device82599("eth0", SimClock(), Iommu())
    dev.sriov_enable(num_vfs)
    dev.pf.write32(R.GCR_EXT, R.GCR_EXT_VT_MODE_32)
    return dev


OFFSETS = st.one_of(
    st.sampled_from(
        [R.VFRDT(q) for q in range(R.VF_MAX_QUEUES)] + [R.VFTDT(0), R.VFMAILBOX, R.VFCTRL, R.VTEIMS]
    ),
    st.integers(0, R.VF_BAR0_SIZE // 4 - 1).map(lambda w: 4 * w),
)


@settings(max_examples=200, deadline=None)
@given(vf=st.integers(0, 3), offset=OFFSETS, value=st.integers(0, 2**32 - 1), mode_after=st.booleans())
def test_a_plain_vf_register_store_is_the_same_write(vf, offset, value, mode_after) -> None:
    """Storing where `plain_register` says (while the guard holds) = ``write32`` on a twin device."""
    fast, slow = _device(), _device()
    slot = fast.plain_register(fast.vfs[vf], offset)
    if slot is None:
        return  # a register with side effects (or outside the PF file): write32 only
    if mode_after:  # the queues per pool change after the lookup: the guard must say so
        for d in (fast, slow):
            d.pf.write32(R.GCR_EXT, R.GCR_EXT_VT_MODE_64)
    word, guard_word, guard = slot
    if int(fast.regs[guard_word]) != guard:
        assert mode_after
        return
    fast.regs[word] = value
    slow.vfs[vf].write32(offset, value)
    assert np.array_equal(fast.regs, slow.regs) and np.array_equal(fast.vf_regs, slow.vf_regs)


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(0, R.PF_BAR0_SIZE // 4 - 1).map(lambda w: 4 * w), value=st.integers(0, 2**32 - 1))
def test_a_plain_pf_register_store_is_the_same_write(offset, value) -> None:
    fast, slow = _device(), _device()
    slot = fast.plain_register(fast.pf, offset)
    if slot is None:
        return
    word, _, _ = slot
    fast.regs[word] = value
    try:
        slow.pf.write32(offset, value)
    except RegisterAccessError:  # pragma: no cover - plain_register only names implemented words
        raise AssertionError(f"plain_register named {offset:#x}, which write32 refuses") from None
    assert np.array_equal(fast.regs, slow.regs)


def test_receive_tails_are_plain_and_side_effect_registers_are_not() -> None:
    dev = _device()
    assert dev.plain_register(dev.vfs[1], R.VFRDT(0)) is not None
    assert dev.plain_register(dev.pf, R.RDT(5)) is not None
    for offset in (R.VFTDT(0), R.VFMAILBOX, R.VFCTRL, R.VTEIMS, R.VTEICR):
        assert dev.plain_register(dev.vfs[1], offset) is None
    for offset in (R.TDT(0), R.EIMS, R.GCR_EXT):
        assert dev.plain_register(dev.pf, offset) is None
    assert dev.plain_register(dev.vfs[1], R.VFRDT(R.VF_MAX_QUEUES - 1)) is None  # beyond 4 queues per pool


@settings(max_examples=150, deadline=None)
@given(
    count=st.sampled_from([2, 8, 16]),
    words=st.lists(DESC, max_size=16),
    bound=st.booleans(),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["cycle", "cycle", "recycle", "guard", "store"]),
            st.integers(0, 17),
            st.integers(0, 17),
            st.integers(-2, 20),
        ),
        max_size=10,
    ),
)
def test_compiled_and_golden_poll_cycles_agree(count, words, bound, ops) -> None:
    """`cycle` (re-post, tail through the guarded slot, scan), `recycle` and `tail_store`, both twins."""
    worlds = []
    for mod in (_fastpath, golden):
        ring, bufs = _ring(count, words)
        regs = np.zeros(8, np.uint32)
        outs = (np.zeros(count, np.int64), np.zeros(count, np.uint32), np.zeros(count, np.uint16))
        core = mod.RxRingCore(ring, bufs, *outs)
        core.bind_tail(regs if bound else None, 3, 5, 0)
        worlds.append((core, ring, regs, outs))
    for kind, a, b, c in ops:
        results = []
        for core, _, regs, _ in worlds:
            try:
                if kind == "cycle":
                    results.append(core.cycle(a, b, c))
                elif kind == "recycle":
                    results.append((core.recycle(a, b, c), core.last_bytes))
                elif kind == "guard":
                    regs[5] = a % 2  # the guard register changes (a VF's queue window moved)
                    results.append(None)
                else:
                    results.append(core.tail_store(a))
            except ConfigError as e:
                results.append(type(e))
        assert results[0] == results[1], (kind, results)
        for x, y in zip(worlds[0][1:3], worlds[1][1:3], strict=True):
            assert np.array_equal(x, y)
        for x, y in zip(worlds[0][3], worlds[1][3], strict=True):
            assert np.array_equal(x, y)
    if bound:
        with pytest.raises(ConfigError):
            worlds[0][0].bind_tail(worlds[0][2], 8, 0, 0)


@settings(max_examples=100, deadline=None)
@given(
    count=st.sampled_from([2, 8, 16]),
    words=st.lists(DESC, max_size=16),
    ntu=st.integers(0, 15),
    ntc=st.integers(0, 15),
    budget=st.integers(0, 20),
)
def test_recycle_is_cycle_then_repost_to_the_new_next_to_clean(count, words, ntu, ntc, budget) -> None:
    """`recycle` (the discarding driver's one call) leaves the ring, outputs and tail as `cycle`
    followed by a re-post up to the new next_to_clean and a tail write do."""
    ntu, ntc = ntu % count, ntc % count
    worlds = []
    for _ in range(2):
        ring, bufs = _ring(count, words)
        regs = np.zeros(8, np.uint32)
        outs = (np.zeros(count, np.int64), np.zeros(count, np.uint32), np.zeros(count, np.uint16))
        core = _fastpath.RxRingCore(ring, bufs, *outs)
        core.bind_tail(regs, 3, 5, 0)
        worlds.append((core, ring, regs, outs))
    one, two = worlds
    got = one[0].recycle(ntu, ntc, budget)
    u, _, frames, used, wrap = two[0].cycle(ntu, ntc, budget)
    stop = (ntc + used - 1) % count
    if stop != u:
        u = two[0].repost(u, stop)
        two[0].tail_store(u)
    assert got == (u, False, frames, used, wrap)
    assert one[0].last_bytes == two[0].last_bytes
    assert np.array_equal(one[1], two[1]) and np.array_equal(one[2], two[2])
    for x, y in zip(one[3], two[3], strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_every_status_pattern_scans_alike(count: int) -> None:
    """Every pattern of descriptor states (not done, done, done + EOP, + VP) of small rings, from
    every next_to_clean, with several budgets: frames of one descriptor and of several, frames
    wrapping round the end of the ring, rings holding only an incomplete frame. The compiled scan
    (a one-descriptor loop beside the general one) agrees with the golden twin."""
    import itertools

    states = [0, DD, DD | EOP, DD | EOP | R.RXD_STAT_VP]
    for pattern in itertools.product(states, repeat=count):
        words = [(0, 0, s, (d + 1) * 100 | (0x0ABC + d) << 16) for d, s in enumerate(pattern)]
        cores = []
        for mod in (_fastpath, golden):
            ring, bufs = _ring(count, words)
            # the ring inside a larger array whose words after it look like done frames: a scan
            # that ran past the ring's end would take them
            backing = np.full((count + 4, 4), DD | EOP, np.uint32)
            backing[:count] = ring
            ring = backing[:count]
            outs = (np.zeros(count, np.int64), np.zeros(count, np.uint32), np.zeros(count, np.uint16))
            cores.append((mod.RxRingCore(ring, bufs, *outs), outs))
        for ntc in range(count):
            for budget in (1, 2, count):
                (a, oa), (b, ob) = cores
                assert a.harvest(ntc, budget) == b.harvest(ntc, budget), (pattern, ntc, budget)
                assert a.last_bytes == b.last_bytes
                for x, y in zip(oa, ob, strict=True):
                    assert np.array_equal(x, y)
