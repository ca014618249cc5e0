"""The simulation clock: integer nanoseconds and a deterministic event queue.

Everything that takes time in the model (interrupt delivery, the PF driver's
mailbox task, driver waits and timeouts) runs here, never on the host's clock.
Events due at the same instant run in the order they were scheduled.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from sriov.errors import ConfigError


@dataclass(order=True)
class _Event:
    time: int
    seq: int
    action: Callable[[], object] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    __slots__ = ("_event",)

    def __init__(self, event: _Event) -> None:
        self._event = event

    @property
    def time(self) -> int:
        """When the event is due, in ns."""
        return self._event.time

    def cancel(self) -> None:
        """Drop the event if it has not run yet."""
        self._event.cancelled = True


class SimClock:
    """Simulated time in integer nanoseconds with an event queue.

    ``advance(ns)`` may be called from inside an event (a driver waiting on the
    mailbox inside an interrupt handler does): time never goes backwards, and
    an inner advance that overshoots the outer target simply leaves the clock
    later than the outer call asked for.
    """

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ConfigError(f"clock start must be >= 0 ns, got {start_ns}")
        self._now = int(start_ns)
        self._queue: list[_Event] = []
        self._seq = 0
        self.events_run = 0

    @property
    def now(self) -> int:
        """Current simulated time, ns."""
        return self._now

    def schedule(self, delay_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` ``delay_ns`` ns from now (0 = at the next advance)."""
        if delay_ns < 0:
            raise ConfigError(f"event delay must be >= 0 ns, got {delay_ns}")
        event = _Event(self._now + int(delay_ns), self._seq, action)
        self._seq += 1
        heapq.heappush(self._queue, event)
        return EventHandle(event)

    def schedule_at(self, time_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` at absolute time ``time_ns`` (not earlier than now)."""
        return self.schedule(max(0, int(time_ns) - self._now), action)

    def next_event_time(self) -> int | None:
        """Time of the earliest pending event, or None."""
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0].time if self._queue else None

    def pending(self) -> int:
        """Number of events not yet run (cancelled ones excluded)."""
        return sum(1 for e in self._queue if not e.cancelled)

    def advance(self, ns: int) -> None:
        """Let ``ns`` nanoseconds pass, running every event due, in (time, order) order."""
        if ns < 0:
            raise ConfigError(f"cannot advance by a negative time ({ns} ns)")
        self.run_until(self._now + int(ns))

    def run_until(self, time_ns: int) -> None:
        """Run every event due at or before ``time_ns`` and move the clock there."""
        target = int(time_ns)
        queue = self._queue
        while queue and queue[0].time <= target:
            event = heapq.heappop(queue)
            if event.cancelled:
                continue
            if event.time > self._now:
                self._now = event.time
            self.events_run += 1
            event.action()
        if target > self._now:
            self._now = target

    def run_before(self, time_ns: int) -> None:
        """Run every event due strictly before ``time_ns`` and move the clock there.

        Events due at ``time_ns`` itself stay queued, so whatever the caller does next happens
        ahead of them at that instant (frame arrivals come before the timers they race).
        """
        target = int(time_ns)
        self.run_until(target - 1)  # time is integer ns: "before t" is "at or before t - 1"
        if target > self._now:
            self._now = target

    def run_pending(self, limit_ns: int = 10**9) -> None:
        """Run events until the queue is empty or ``limit_ns`` of simulated time passed."""
        deadline = self._now + limit_ns
        while True:
            t = self.next_event_time()
            if t is None or t > deadline:
                return
            self.run_until(t)
