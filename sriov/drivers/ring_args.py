"""What a descriptor ring (receive or transmit) may be: the checks both ring drivers share."""

from __future__ import annotations

import sys

import numpy as np

from sriov.errors import ConfigError
from sriov.hw import regs as R

MIN_RING = R.REQ_RX_DESCRIPTOR_MULTIPLE  # small rings are allowed for tests; ixgbevf uses 64..4096


def check_ring_args(fn: object, queue: object, count: object, buffer_size: object) -> bool:
    """Validate a ring's arguments (RX or TX) with a clear error; returns whether ``fn`` is a VF."""
    if not isinstance(count, int) or not MIN_RING <= count <= R.MAX_RXD or count % MIN_RING:
        raise ConfigError(
            f"ring size must be a multiple of {MIN_RING} in {MIN_RING}..{R.MAX_RXD}, got {count!r}"
        )
    if not isinstance(buffer_size, int) or buffer_size % 1024 or not 1024 <= buffer_size <= 16384:
        raise ConfigError(f"buffer size must be a multiple of 1024 in 1024..16384, got {buffer_size!r}")
    is_vf = getattr(fn, "device_id", None) == R.DEV_ID_82599_VF
    limit = R.VF_MAX_QUEUES if is_vf else R.MAX_QUEUES
    if not isinstance(queue, int) or not 0 <= queue < limit:
        raise ConfigError(f"queue must be in 0..{limit - 1} for {getattr(fn, 'name', fn)}, got {queue!r}")
    return is_vf


def poll_budget(budget: object) -> int:
    """A poll's budget: an int >= 0 (numpy ints too; a bool is refused). A budget above what any
    ring holds takes what the ring has; it is capped so that both kernels take it (the compiled
    one counts in a C ssize_t)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ConfigError(f"budget must be a non-negative int, got {budget!r}")
    return min(int(budget), sys.maxsize)
