"""EITR interrupt moderation of one MSI-X vector, as the 82599 does it (spec §5.10): the units.

The interval register counts in 2.048 us units (EITR bits 11:3; the drivers write
``usecs << 2``). The rule the hardware follows, and the model with it:

* a cause raised on an unmasked vector whose last interrupt is at least one interval
  old fires at once; otherwise it stays pending and fires when the interval since the
  last interrupt expires;
* a cause raised on a masked vector is latched (EICR) and fires when the vector is
  unmasked, again no sooner than one interval after the last interrupt;
* firing clears the pending cause and, when ``auto_mask`` is on (the drivers set
  EIAM/VTEIAM for their vectors), masks the vector until the driver unmasks it.

Interval 0 means no moderation. All times are simulation-clock nanoseconds. The state
machine is the engine's `Vector` (`sriov.hw.clock`); this module holds the register's units.
"""

from __future__ import annotations

from sriov.errors import ConfigError
from sriov.hw import regs as R

EITR_UNIT_NS = 2048  # one EITR interval count = 2.048 us (IXGBE_MAX_INT_RATE = 488281/s)
EITR_FIELD_SHIFT = 3
EITR_FIELD_MAX = R.EITR_ITR_INT_MASK >> EITR_FIELD_SHIFT  # 511
MAX_RX_USECS = 1022  # ethtool -C rx-usecs upper bound in ixgbe


def eitr_from_usecs(usecs: int) -> int:
    """The EITR register value ixgbe writes for ``ethtool -C rx-usecs`` (``usecs << 2``)."""
    if not isinstance(usecs, int) or not 0 <= usecs <= MAX_RX_USECS:
        raise ConfigError(f"rx-usecs must be an int in 0..{MAX_RX_USECS}, got {usecs!r}")
    return (usecs << 2) & R.EITR_ITR_INT_MASK


def interval_ns_from_eitr(eitr: int) -> int:
    """Minimum gap between two interrupts of the vector, in ns, for an EITR register value."""
    return ((eitr & R.EITR_ITR_INT_MASK) >> EITR_FIELD_SHIFT) * EITR_UNIT_NS
