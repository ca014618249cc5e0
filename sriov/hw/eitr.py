"""EITR interrupt moderation of one MSI-X vector, as the 82599 does it (spec §5.10).

The interval register counts in 2.048 us units (EITR bits 11:3; the drivers write
``usecs << 2``). The rule the hardware follows, and the model with it:

* a cause raised on an unmasked vector whose last interrupt is at least one interval
  old fires at once; otherwise it stays pending and fires when the interval since the
  last interrupt expires;
* a cause raised on a masked vector is latched (EICR) and fires when the vector is
  unmasked, again no sooner than one interval after the last interrupt;
* firing clears the pending cause and, when ``auto_mask`` is on (the drivers set
  EIAM/VTEIAM for their vectors), masks the vector until the driver unmasks it.

Interval 0 means no moderation. All times are simulation-clock nanoseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sriov.errors import ConfigError
from sriov.hw import regs as R

if TYPE_CHECKING:  # not at run time: the clock module imports the kernels, whose twins import this
    from sriov.hw.clock import EventHandle, SimClock

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


class VectorModerator:
    """One vector's moderation state machine on the simulation clock.

    ``send`` is called at the instant the vector fires (the MSI-X message leaves the
    device); delivery latency to the CPU or VM is the receiver's business.
    """

    NEVER = -(1 << 62)

    def __init__(self, clock: SimClock, send: Callable[[], None], interval_ns: int = 0) -> None:
        self.clock = clock
        self.send = send
        self.interval_ns = interval_ns
        self.masked = False
        self.pending = False
        self.auto_mask = True  # EIAM: the device follows the register, the timeline model always masks
        self.last_fire = self.NEVER
        self.fired = 0
        self._timer: EventHandle | None = None

    def reset(self) -> None:
        """Reset values: masked, nothing pending, no interval, counter expired. ``fired`` is kept."""
        self._cancel_timer()
        self.masked = True
        self.pending = False
        self.auto_mask = False
        self.interval_ns = 0
        self.last_fire = self.NEVER

    def reprogram(self, interval_ns: int, reset_counter: bool) -> None:
        """An EITR write: new interval now; without CNT_WDIS the interval counter restarts expired.

        A cause waiting for the old interval is re-decided against the new one.
        """
        self.set_interval_ns(interval_ns)
        if reset_counter:
            self.last_fire = self.NEVER
        self._cancel_timer()
        if self.pending and not self.masked:
            self._try_fire()

    def clear_cause(self) -> None:
        """The cause was cleared (EICR read or write-1-to-clear) before the vector fired."""
        self.pending = False
        self._cancel_timer()

    def set_interval_ns(self, interval_ns: int) -> None:
        """A new EITR interval (takes effect from the next decision)."""
        if interval_ns < 0:
            raise ConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns

    def raise_cause(self) -> None:
        """A cause of this vector becomes set (a receive completion, a mailbox message)."""
        self.pending = True
        if not self.masked:
            self._try_fire()

    def mask(self) -> None:
        """EIMC: the vector may not fire; causes are latched."""
        self.masked = True
        self._cancel_timer()

    def unmask(self) -> None:
        """EIMS: the vector may fire again; a latched cause fires (subject to the interval)."""
        self.masked = False
        if self.pending:
            self._try_fire()

    def _try_fire(self) -> None:
        due = self.last_fire + self.interval_ns
        now = self.clock.now
        if now >= due:
            self._fire()
        elif self._timer is None:
            self._timer = self.clock.schedule(due - now, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self.pending and not self.masked:
            self._fire()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._cancel_timer()
        self.pending = False
        self.masked = self.auto_mask  # auto-mask (EIAM) until the driver's NAPI poll re-enables it
        self.last_fire = self.clock.now
        self.fired += 1
        self.send()
