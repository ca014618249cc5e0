"""The receive kernel's store fast paths, held to the golden model where they are taken.

The compiled kernel writes whole 64-byte lines of a line-aligned receive buffer with streaming
stores (sriov/_fp_simd.h). Whether that path runs depends on where the host buffer behind the
guest memory happens to start, so the differential test of test_rx_kernel.py reaches it only
by chance; here every guest memory starts on a line (and on a line + 16, the usual malloc
offset, for the other path), and compiled and golden must still agree byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_rx_kernel as rxk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov import _fastpath, golden
from sriov.hw import regs as R


class _NumpyWithAlignedMemory:
    """``numpy`` as test_rx_kernel sees it, except that guest memories start ``offset`` bytes
    past a 64-byte boundary."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __getattr__(self, name: str):
        return getattr(np, name)

    def zeros(self, shape, dtype=float):
        if shape == rxk.MEM and np.dtype(dtype) == np.uint8:
            raw = np.zeros(shape + 128, np.uint8)
            start = (-raw.ctypes.data) % 64 + self.offset
            return raw[start : start + shape]
        return np.zeros(shape, dtype)


SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(
    offset=st.sampled_from([0, 0, 16]),
    cfg=rxk.device_config(sane=True),
    frames1=st.lists(rxk.frame(), max_size=24),
    frames2=st.lists(rxk.frame(), max_size=12),
)
def test_compiled_and_golden_agree_on_line_aligned_memory(offset, cfg, frames1, frames2) -> None:
    saved = rxk.np
    rxk.np = _NumpyWithAlignedMemory(offset)
    try:
        rxk.test_compiled_and_golden_agree.hypothesis.inner_test(cfg, frames1, frames2)
    finally:
        rxk.np = saved


def _patchy_rig(impl):
    """VF 0's receive buffers behind a patchy mapping: pages mapped out of order (not contiguous
    with their neighbours), a page of another memory, then a read-only page and a hole."""
    from conftest import RxRig

    from sriov.hw.iommu import PAGE_SIZE

    rig = RxRig(impl, num_vfs=2, ring=128, mem=1 << 20)
    for vf in range(2):
        rig.set_mac(vf, bytes([0x02, 0, 0, 0, 9, vf]))
    ring, mem, dom = rig.rings[0], rig.memories[0], rig.dev.vfs[0].domain
    first = ring.buffers_addr // PAGE_SIZE
    # a fault stops the queue at that descriptor (head not advanced), so the pages that still
    # translate come first: buffers 0-13 are written, the 15th faults on page 7
    for k, how in ((2, "swap"), (4, "other"), (5, "swap"), (7, "ro"), (9, "hole")):
        iova = (first + k) * PAGE_SIZE
        dom.unmap(iova, PAGE_SIZE)
        if how == "ro":
            dom.map(iova, mem.buffer, iova, PAGE_SIZE, writable=False)
        elif how == "swap":  # the host page of a far part of the same memory
            dom.map(iova, mem.buffer, (first + 60 + k) * PAGE_SIZE, PAGE_SIZE)
        elif how == "other":
            dom.map(iova, rig.memories[1].buffer, iova, PAGE_SIZE)
    return rig


def test_buffer_windows_stop_at_every_mapping_change() -> None:
    """Compiled (buffer windows over contiguous mappings) and golden (a page walk per buffer)
    deliver, fault and count the same frames into a patchy mapping."""
    from conftest import eth

    from sriov import _fastpath, golden
    from sriov.batch import Batch

    rigs = [_patchy_rig(impl) for impl in (_fastpath, golden)]
    sizes = [64, 60, 1514, 128, 64, 700, 2048]
    # VF 0 takes 64-byte frames in every buffer first (the one-descriptor path, each page of its
    # ring in turn), then the mix; VF 1 the mix
    frames = [eth(bytes([0x02, 0, 0, 0, 9, 0]), 64) for _ in range(100)]
    frames += [eth(bytes([0x02, 0, 0, 0, 9, k % 3 % 2]), sizes[k % len(sizes)]) for k in range(300)]
    batch = Batch.from_frames(frames)
    results = [rig.wire.receive(batch) for rig in rigs]
    a, b = results
    assert np.array_equal(a.delivered, b.delivered) and np.array_equal(a.reasons, b.reasons)
    assert a.counts().get("DMA_FAULT", 0) > 0, "the patchy pages must fault some copies"
    for x, y in zip(rigs[0].memories, rigs[1].memories, strict=True):
        assert np.array_equal(x.buffer, y.buffer)
    assert np.array_equal(rigs[0].dev.state.pool_counters, rigs[1].dev.state.pool_counters)
    assert rigs[0].iommu.faults() == rigs[1].iommu.faults()


# -- RxKernel._run's two passes over blocks of frames ------------------------------------------
# The compiled kernel classifies a block of frames first (lengths, tag, flow-cache probe), then
# delivers in frame order the unicast one-pool frames whose queue is ready and whose buffer lies in
# the queue's window, and hands every other frame to the general path. A frame takes the fast way
# only once its flow is in the cache, i.e. from the second block of a batch on: these tests use
# batches of several blocks with few flows, so most frames take it, among frames that do not.


@st.composite
def _repeating_frames(draw, min_size: int = 33, max_size: int = 150):
    """A batch of a few flows repeated (so the flow cache answers), with one-off frames mixed in."""
    flows = draw(st.lists(rxk.frame(), min_size=1, max_size=6))
    picks = draw(
        st.lists(
            st.one_of(st.integers(0, len(flows) - 1), st.integers(0, len(flows) - 1), rxk.frame()),
            min_size=min_size,
            max_size=max_size,
        )
    )
    return [flows[k] if isinstance(k, int) else k for k in picks]


def _agree(cfg, batches, block: int = 32) -> None:
    fast, slow = rxk.World(cfg, _fastpath), rxk.World(cfg, golden)
    fast.kernel.block = block
    for frames in batches:
        arrays = rxk.as_arrays(frames)
        rxk.assert_same(fast, slow, fast.run(arrays), slow.run(arrays))
        for world in (fast, slow):
            assert rxk.rx_conservation_errors(world.dev) == []
        fast.later(cfg["later_writes"])
        slow.later(cfg["later_writes"])


BLOCKS = st.sampled_from([1, 2, 3, 5, 8, 32])


@settings(max_examples=80, deadline=None, suppress_health_check=SLOW_OK)
@given(
    sane=st.booleans(),
    data=st.data(),
    block=BLOCKS,
    frames1=_repeating_frames(min_size=1, max_size=60),
    frames2=_repeating_frames(max_size=80),
)
def test_blocks_of_fast_and_general_frames_agree_with_golden(sane, data, block, frames1, frames2) -> None:
    """Few flows, blocks of 1 to 32 frames (a frame takes the fast pass once its flow is known,
    i.e. from the next block on): compiled and golden agree on every verdict, byte, descriptor,
    register and counter, with rings that run dry mid-block (8-32 descriptors), faulting pages,
    disabled queues, VLAN strip and frames of every kind between the fast ones."""
    cfg = data.draw(rxk.device_config(sane=sane))
    _agree(cfg, (frames1, frames2), block)


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(
    offset=st.sampled_from([0, 16]),
    cfg=rxk.device_config(sane=True),
    block=BLOCKS,
    frames=_repeating_frames(min_size=1, max_size=120),
)
def test_blocks_agree_on_line_aligned_memory(offset, cfg, block, frames) -> None:
    """The same with guest memory on a line (the streaming one-line copy) and off it."""
    saved = rxk.np
    rxk.np = _NumpyWithAlignedMemory(offset)
    try:
        _agree(cfg, (frames,), block)
    finally:
        rxk.np = saved


def _rigs(block: int = 32, **kw):
    """A compiled and a golden `RxRig`, 4 VFs with their MACs; VF 3 strips VLAN tags."""
    from conftest import RxRig

    rigs = []
    for impl in (_fastpath, golden):
        rig = RxRig(impl, num_vfs=4, **kw)
        for vf in range(4):
            rig.set_mac(vf, bytes([0x02, 0, 0, 0, 7, vf]))
        rig.vlan(3, 100, True)
        vf3 = rig.dev.vfs[3]
        vf3.write32(R.VFRXDCTL(0), vf3.read32(R.VFRXDCTL(0)) | R.RXDCTL_VME)
        rigs.append(rig)
    rigs[0].wire._kernel.block = block
    return rigs


def _same_outcome(rigs, frames) -> dict:
    from sriov.batch import Batch

    batch = Batch.from_frames(frames)
    a, b = (rig.wire.receive(batch) for rig in rigs)
    for name in ("selected", "delivered", "reasons", "queue_frames"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    x, y = rigs
    for mx, my in zip(x.memories, y.memories, strict=True):
        assert np.array_equal(mx.buffer, my.buffer), "guest memory differs"
    assert np.array_equal(x.dev.regs, y.dev.regs), "registers differ"
    assert np.array_equal(x.dev.state.port_counters, y.dev.state.port_counters)
    assert np.array_equal(x.dev.state.pool_counters, y.dev.state.pool_counters)
    assert x.iommu.faults() == y.iommu.faults()
    for rig in rigs:
        assert rxk.rx_conservation_errors(rig.dev) == []
    return a.counts()


@pytest.mark.parametrize("block", [1, 7, 32])
def test_a_queue_running_dry_mid_block(block: int) -> None:
    """Rings of 16 (15 buffers posted): VF 0 gets 40 frames in a row and VF 1 every other frame,
    so their queues run dry inside a block and the rest of it is dropped (no DMA resources)."""
    from conftest import eth

    rigs = _rigs(block, ring=16)
    frames = [eth(bytes([0x02, 0, 0, 0, 7, 0])) for _ in range(40)]
    frames += [eth(bytes([0x02, 0, 0, 0, 7, k % 2 + 1]), 64 + k) for k in range(60)]
    counts = _same_outcome(rigs, frames)
    assert counts["DELIVERED"] == 45 and counts["NO_DMA_RESOURCES"] + counts.get("MISSED", 0) == 55
    # the drivers refill, the next batch starts from the heads the last one left
    for rig in rigs:
        for ring in rig.rings:
            ring.poll(64)
            ring.release()
    counts = _same_outcome(rigs, frames)
    assert counts["DELIVERED"] == 45


@pytest.mark.parametrize("block", [1, 7, 32])
def test_blocks_mixing_every_kind_of_frame(block: int) -> None:
    """Fast frames with, in the same blocks: multicast, broadcast, unknown unicast (the PF's
    default pool), short and runt frames, over-long frames, tagged frames stripped by VF 3,
    VLAN-filtered frames, and the same queue many times over in one block."""
    from conftest import eth

    rigs = _rigs(block, ring=128)
    for rig in rigs:
        rig.mta("01:00:5e:00:00:01")
        rig.vmolr(2, R.VMOLR_BAM | R.VMOLR_AUPE | R.VMOLR_ROMPE)
    kinds = [
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, k % 3]), 64),
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 0]), 60 + k % 70),
        lambda k: eth("01:00:5e:00:00:01", 64),
        lambda k: eth("ff:ff:ff:ff:ff:ff", 64),
        lambda k: eth("02:00:00:00:0a:0b", 64),
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 1]), 64)[: 10 + k % 8],
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 2]), 1600),
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 3]), 64 + k % 5, vid=100),
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 1]), 64, vid=55),
        lambda k: eth(bytes([0x02, 0, 0, 0, 7, 1]), 1514),
    ]
    rng = np.random.default_rng(7)
    frames = [kinds[0](k) for k in range(40)]  # warm the flow cache: these then go the fast way
    frames += [kinds[int(rng.integers(len(kinds)))](k) for k in range(300)]
    counts = _same_outcome(rigs, frames)
    assert {"DELIVERED", "LENGTH_ERROR", "LONG_LENGTH", "VLAN_FILTERED"} <= set(counts)


@pytest.mark.parametrize("block", [1, 7, 32])
def test_a_frame_of_a_block_faulting(block: int) -> None:
    """VF 0's 20th buffer page is unmapped: the frame DMA'd there faults in the middle of a block
    of fast frames (the queue stops at that descriptor, the frames after it fault the same way),
    VF 1's frames in the same blocks go on."""
    from conftest import eth

    from sriov.hw.iommu import PAGE_SIZE

    rigs = _rigs(block, ring=128)
    for rig in rigs:
        ring = rig.rings[0]
        iova = ring.buffers_addr + 20 * 2048
        rig.dev.vfs[0].domain.unmap(iova - iova % PAGE_SIZE, PAGE_SIZE)
    frames = [eth(bytes([0x02, 0, 0, 0, 7, k % 2]), 64) for k in range(200)]
    counts = _same_outcome(rigs, frames)
    assert counts["DMA_FAULT"] > 0 and counts["DELIVERED"] > 100


def test_the_block_size_is_checked() -> None:
    from conftest import RxRig

    from sriov.errors import ConfigError

    kernel = RxRig(_fastpath, num_vfs=1).wire._kernel
    assert kernel.block == 32
    for bad in (0, 33, -1):
        with pytest.raises(ConfigError):
            kernel.block = bad
    kernel.block = 5
    assert kernel.block == 5


def _one_vf_cfg(queue: dict, mapping: list[str] | None = None) -> dict:
    """A `test_rx_kernel.World` configuration: VT on, one VF (pool 0) with MACS[0] in a RAR, the
    PF (pool 1) beside it; ``queue`` overrides pool 0's queue settings."""
    q0 = {
        "rdbal": PAGE,
        "rdbah": 0,
        "rdlen": 32 * 16,
        "rdh": 0,
        "rdt": 31,
        "srrctl": 2 | R.SRRCTL_DROP_EN,
        "rxdctl": R.RXDCTL_ENABLE,
        "bufs": [0] * 32,
        "buf_base": 4 * PAGE,
        "random_bufs": False,
        "qde": False,
    }
    q0.update(queue)
    q1 = dict(q0, rdh=0, rdt=0)
    return {
        "vt": True,
        "num_vfs": 1,
        "gcr": R.GCR_EXT_VT_MODE_32,
        "dis_defpl": True,
        "vlnctrl": R.ETH_P_8021Q,
        "maxfrs": 9728,
        "fctrl": 0,
        "mo": 0,
        "rars": [(1, rxk.MACS[0], True, 1)],
        "mta": [],
        "uta": [],
        "vfta": [],
        "vlvf": [],
        "vmolr": [R.VMOLR_AUPE] * 64,
        "vfre": 2**64 - 1,
        "queues": [q0, q1],
        "mapping": [mapping or ["rw"] * rxk.MEM_PAGES] * 2,
        "later_writes": [],
    }


PAGE = rxk.PAGE_SIZE


@pytest.mark.parametrize("block", [1, 32])
def test_a_buffer_crossing_the_end_of_its_window(block: int) -> None:
    """Buffers 100 bytes past a page start, so 2 KiB frames cross pages; page 6 is read-only:
    a buffer that starts in the window of pages 4-5 and ends in page 6 faults, it is not
    written through the window."""
    from conftest import eth

    mapping = ["rw"] * rxk.MEM_PAGES
    mapping[6] = "ro"
    cfg = _one_vf_cfg({"buf_base": 4 * PAGE + 100}, mapping)
    frames = [eth(rxk.MACS[0], 64)] + [eth(rxk.MACS[0], 2048)] * 6
    fast, slow = rxk.World(cfg, _fastpath), rxk.World(cfg, golden)
    fast.kernel.block = block
    arrays = rxk.as_arrays(frames)
    ra = fast.run(arrays)
    rxk.assert_same(fast, slow, ra, slow.run(arrays))
    # buffer 1 crosses from page 4 into 5 (one window), buffer 3 from 5 into the read-only 6
    assert list(ra[3]) == [0, 0, 0] + [golden.DropReason.DMA_FAULT] * 4


@pytest.mark.parametrize("block", [1, 32])
def test_fast_frames_after_a_first_copy_dropped(block: int) -> None:
    """The first frame for the queue needs two descriptors and finds one (dropped, head not
    moved); the next frames are delivered: RDH is written back all the same."""
    from conftest import eth

    cfg = _one_vf_cfg({"rdt": 1})
    frames = [eth(rxk.MACS[0], 3000)] + [eth(rxk.MACS[0], 64)] * 40
    fast, slow = rxk.World(cfg, _fastpath), rxk.World(cfg, golden)
    fast.kernel.block = block
    arrays = rxk.as_arrays(frames)
    ra = fast.run(arrays)
    rxk.assert_same(fast, slow, ra, slow.run(arrays))
    assert ra[0] == 1 and fast.dev.pf.read32(R.RDH(0)) == 1


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(
    mode=st.sampled_from(["stream", "plain"]),
    offset=st.sampled_from([0, 16]),
    cfg=rxk.device_config(sane=True),
    block=BLOCKS,
    frames=_repeating_frames(min_size=1, max_size=80),
)
def test_every_store_mode_writes_what_golden_writes(mode, offset, cfg, block, frames) -> None:
    """Streaming or plain stores (`set_rx_stores`), on a line or off it: the same bytes,
    descriptors and counters as the golden model."""
    saved = rxk.np
    rxk.np = _NumpyWithAlignedMemory(offset)
    _fastpath.set_rx_stores(mode)
    try:
        _agree(cfg, (frames,), block)
    finally:
        rxk.np = saved
        _fastpath.set_rx_stores("stream")


def test_store_modes_are_checked_in_both_twins() -> None:
    from sriov import kernels
    from sriov.errors import ConfigError

    for impl in (_fastpath, golden):
        assert impl.rx_stores() == "stream"
        with pytest.raises(ConfigError):
            impl.set_rx_stores("temporal")
        assert impl.rx_stores() == "stream"
    kernels.set_rx_stores("plain")
    try:
        assert kernels.rx_stores() == "plain" and _fastpath.rx_stores() == "plain"
    finally:
        kernels.set_rx_stores("stream")


@pytest.mark.parametrize("mode", ["stream", "plain"])
def test_two_ports_receiving_on_two_threads_write_what_each_writes_alone(mode: str) -> None:
    """Two ports' kernels running at once, GIL released: every byte, descriptor and counter as
    when each port runs alone, in both store modes."""
    import threading

    from conftest import RxRig, eth

    from sriov.batch import Batch

    def port_with_frames(seed: int):
        """8 VFs with rings of 512; a round: one bound burst of 511 frames a VF (64 to 200
        bytes, payloads from ``seed``), then every driver takes its frames and re-posts."""
        rig = RxRig(_fastpath, num_vfs=8, ring=512, mem=2 << 20)
        macs = [bytes([0x02, 0, 0, 0, 9, vf]) for vf in range(8)]
        for vf in range(8):
            rig.set_mac(vf, macs[vf])
        rng = np.random.default_rng(seed)
        frames = []
        for k in range(511 * 8):
            frame = bytearray(eth(macs[k % 8], int(rng.integers(60, 200))))
            frame[14:] = rng.integers(0, 256, len(frame) - 14, dtype=np.uint8).tobytes()
            frames.append(bytes(frame))
        batch = Batch.from_frames(frames)
        bound = rig.wire.bind_burst(batch.data, batch.offsets, batch.lengths, batch.timestamps_ns)

        def burst() -> None:
            bound(len(batch))
            for ring in rig.rings:
                ring.discard()

        return rig, burst

    def outcome(rig) -> tuple:
        return (
            [m.buffer.copy() for m in rig.memories],
            rig.dev.state.port_counters.copy(),
            rig.dev.state.pool_counters.copy(),
        )

    alone = []
    for seed in (1, 2):
        rig, burst = port_with_frames(seed)
        for _ in range(40):
            burst()
        alone.append(outcome(rig))
    pairs = [port_with_frames(seed) for seed in (1, 2)]
    start = threading.Barrier(2)

    def loop(burst) -> None:
        start.wait()
        for _ in range(40):
            burst()

    threads = [threading.Thread(target=loop, args=(burst,)) for _, burst in pairs]
    _fastpath.set_rx_stores(mode)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _fastpath.set_rx_stores("stream")
    for (rig, _), want in zip(pairs, alone, strict=True):
        got = outcome(rig)
        assert all(np.array_equal(a, b) for a, b in zip(got[0], want[0], strict=True))
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])
        assert rxk.rx_conservation_errors(rig.dev) == []
