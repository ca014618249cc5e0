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
