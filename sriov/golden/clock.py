"""The simulation clock in plain Python: the twin of ``SimClock`` in ``sriov/_fp_clock.pxi``.

``sriov.hw.clock`` exports the compiled one (this one with ``SRIOV_NO_EXTENSIONS=1``).
Everything that takes time in the model (interrupt delivery, the PF driver's
mailbox task, driver waits and timeouts) runs there, never on the host's clock.
Events due at the same instant run in the order they were scheduled.

The queue is a heap of ``[time, seq, action]`` lists: compared element by element in C (the
sequence numbers are unique, so the action is never compared), which is what makes an event
cheap enough for one per NAPI poll. A cancelled or run event has its action set to None.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush

from sriov.errors import ConfigError

_TIME, _SEQ, _ACTION = 0, 1, 2  # the slots of a queue entry


class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    __slots__ = ("_entry",)

    def __init__(self, entry: list) -> None:
        self._entry = entry

    @property
    def time(self) -> int:
        """When the event is due, in ns."""
        return self._entry[_TIME]

    def cancel(self) -> None:
        """Drop the event if it has not run yet."""
        self._entry[_ACTION] = None


class SimClock:
    """Simulated time in integer nanoseconds with an event queue.

    ``advance(ns)`` may be called from inside an event (a driver waiting on the
    mailbox inside an interrupt handler does): time never goes backwards, and
    an inner advance that overshoots the outer target simply leaves the clock
    later than the outer call asked for.

    For a component that runs a sequence of timed steps itself instead of one event per step
    (NAPI's poll chain), `run_target` and `take` say what it may do inside an event.
    """

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ConfigError(f"clock start must be >= 0 ns, got {start_ns}")
        self._now = int(start_ns)
        self._queue: list[list] = []
        self._seq = 0
        self._target = -1  # the innermost running run_until's target; -1: none running
        self.events_run = 0

    @property
    def now(self) -> int:
        """Current simulated time, ns."""
        return self._now

    @property
    def run_target(self) -> int:
        """The time the innermost running `run_until` (`advance`, `run_before`) moves the clock
        to; -1 outside any. An event may take the clock no further than this by itself."""
        return self._target

    def schedule(self, delay_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` ``delay_ns`` ns from now (0 = at the next advance)."""
        if delay_ns < 0:
            raise ConfigError(f"event delay must be >= 0 ns, got {delay_ns}")
        entry = [self._now + int(delay_ns), self._seq, action]
        self._seq += 1
        heappush(self._queue, entry)
        return EventHandle(entry)

    def schedule_at(self, time_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` at absolute time ``time_ns`` (not earlier than now)."""
        return self.schedule(max(0, int(time_ns) - self._now), action)

    def next_event_time(self) -> int | None:
        """Time of the earliest pending event, or None."""
        queue = self._queue
        while queue and queue[0][_ACTION] is None:
            heappop(queue)
        return queue[0][_TIME] if queue else None

    def take(self, handle: EventHandle) -> bool:
        """From the tail of a running event: run ``handle``'s event now, inline, if it is the one
        the running `run_until` would run next (the earliest pending event, due within
        `run_target`). Then the clock moves to its time, the event counts as run (its handle's
        cancel() does nothing any more) and True is returned: the caller runs the event's work
        itself and returns, exactly as if the loop had popped it. False changes nothing.

        What a chain of timed steps (NAPI's polls) uses to run its next step without a trip
        through the queue; the history (times, order, sequence numbers, ``events_run``) is the
        same as with one event per step. Only valid as the last thing an event does: whatever
        the event's caller would still do comes after the inline work.
        """
        entry = handle._entry
        if entry[_ACTION] is None or entry[_TIME] > self._target:
            return False
        queue = self._queue
        while queue[0][_ACTION] is None:  # cancelled heads (the entry itself is live, so one stays)
            heappop(queue)
        if queue[0] is not entry:
            return False
        heappop(queue)
        entry[_ACTION] = None
        if entry[_TIME] > self._now:
            self._now = entry[_TIME]
        self.events_run += 1
        return True

    def pending(self) -> int:
        """Number of events not yet run (cancelled ones excluded)."""
        return sum(1 for e in self._queue if e[_ACTION] is not None)

    def advance(self, ns: int) -> None:
        """Let ``ns`` nanoseconds pass, running every event due, in (time, order) order."""
        if ns < 0:
            raise ConfigError(f"cannot advance by a negative time ({ns} ns)")
        self.run_until(self._now + int(ns))

    def run_until(self, time_ns: int) -> None:
        """Run every event due at or before ``time_ns`` and move the clock there."""
        target = int(time_ns)
        queue = self._queue
        outer = self._target
        self._target = target
        try:
            while queue and queue[0][_TIME] <= target:
                entry = heappop(queue)
                action = entry[_ACTION]
                if action is None:
                    continue
                entry[_ACTION] = None  # ran: a later cancel() through its handle changes nothing
                if entry[_TIME] > self._now:
                    self._now = entry[_TIME]
                self.events_run += 1
                action()
        finally:
            self._target = outer
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
