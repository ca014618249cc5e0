"""The receive kernel's store fast paths, held to the golden model where they are taken.

The compiled kernel writes whole 64-byte lines of a line-aligned receive buffer with streaming
stores (sriov/_fp_simd.h). Whether that path runs depends on where the host buffer behind the
guest memory happens to start, so the differential test of test_rx_kernel.py reaches it only
by chance; here every guest memory starts on a line (and on a line + 16, the usual malloc
offset, for the other path), and compiled and golden must still agree byte for byte.
"""

from __future__ import annotations

import numpy as np
import test_rx_kernel as rxk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


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
