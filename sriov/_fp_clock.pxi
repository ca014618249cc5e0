# The simulation clock (sriov.hw.clock): integer ns and a deterministic event queue, compiled because
# every interrupt, poll end and timer of the model is one of its events. Same rules as the twin
# (sriov/golden/clock.py): events due at the same instant run in the order they were scheduled.
# The queue is a binary heap of EventHandle objects ordered by (time, seq) in C; a cancelled or run
# event has its action set to None and is dropped when it reaches the top.
# No GIL release here: every step calls Python (the events' actions).

from sriov.errors import ConfigError as _ClockConfigError

cdef int64_t _CLOCK_MAX = 0x7FFFFFFFFFFFFFFF


@cython.freelist(256)
@cython.final
cdef class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    cdef readonly int64_t time
    cdef int64_t seq
    cdef object action  # None: cancelled, or run

    def cancel(self):
        """Drop the event if it has not run yet."""
        self.action = None


cdef inline bint _ev_before(EventHandle a, EventHandle b) noexcept:
    return a.time < b.time or (a.time == b.time and a.seq < b.seq)


@cython.final
cdef class SimClock:
    """Simulated time in integer nanoseconds with an event queue (twin: ``sriov.golden.clock``).

    ``advance(ns)`` may be called from inside an event (a driver waiting on the mailbox inside an
    interrupt handler does): time never goes backwards, and an inner advance that overshoots the
    outer target simply leaves the clock later than the outer call asked for.

    For a component that runs a sequence of timed steps itself instead of one event per step
    (NAPI's poll chain), `run_target` and `take` say what it may do inside an event.
    """

    cdef int64_t _now
    cdef int64_t _seq
    cdef int64_t _target
    cdef list _queue
    cdef public int64_t events_run

    def __init__(self, start_ns=0):
        if start_ns < 0:
            raise _ClockConfigError(f"clock start must be >= 0 ns, got {start_ns}")
        self._now = start_ns
        self._seq = 0
        self._target = -1
        self._queue = []
        self.events_run = 0

    @property
    def now(self):
        """Current simulated time, ns."""
        return self._now

    @property
    def run_target(self):
        """The time the innermost running `run_until` (`advance`, `run_before`) moves the clock
        to; -1 outside any. An event may take the clock no further than this by itself."""
        return self._target

    # -- the heap --------------------------------------------------------------------------------
    cdef void _push(self, EventHandle e):
        cdef list q = self._queue
        cdef Py_ssize_t i, p
        cdef EventHandle parent
        q.append(e)
        i = len(q) - 1
        while i > 0:
            p = (i - 1) >> 1
            parent = <EventHandle>q[p]
            if not _ev_before(e, parent):
                break
            q[i] = parent
            i = p
        q[i] = e

    cdef EventHandle _pop(self):
        """Remove and return the top (the queue is not empty)."""
        cdef list q = self._queue
        cdef EventHandle top = <EventHandle>q[0]
        cdef EventHandle last = <EventHandle>q.pop()
        cdef Py_ssize_t n = len(q), i = 0, c
        cdef EventHandle child, other
        if n == 0:
            return top
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            child = <EventHandle>q[c]
            if c + 1 < n:
                other = <EventHandle>q[c + 1]
                if _ev_before(other, child):
                    c += 1
                    child = other
            if not _ev_before(child, last):
                break
            q[i] = child
            i = c
        q[i] = last
        return top

    cdef EventHandle _new(self, int64_t delay, object action):
        cdef EventHandle e
        if delay < 0:
            raise _ClockConfigError(f"event delay must be >= 0 ns, got {delay}")
        if delay > _CLOCK_MAX - self._now:
            raise _ClockConfigError(f"event delay {delay} ns overflows the clock")
        e = EventHandle.__new__(EventHandle)
        e.time = self._now + delay
        e.seq = self._seq
        e.action = action
        self._seq += 1
        self._push(e)
        return e

    # -- scheduling ------------------------------------------------------------------------------
    cpdef EventHandle schedule(self, int64_t delay_ns, object action):
        """Run ``action`` ``delay_ns`` ns from now (0 = at the next advance)."""
        return self._new(delay_ns, action)

    def schedule_at(self, time_ns, action):
        """Run ``action`` at absolute time ``time_ns`` (not earlier than now)."""
        return self._new(max(0, int(time_ns) - self._now), action)

    def next_event_time(self):
        """Time of the earliest pending event, or None."""
        cdef list q = self._queue
        while q and (<EventHandle>q[0]).action is None:
            self._pop()
        return (<EventHandle>q[0]).time if q else None

    def pending(self):
        """Number of events not yet run (cancelled ones excluded)."""
        cdef EventHandle e
        cdef Py_ssize_t n = 0
        for e in self._queue:
            if e.action is not None:
                n += 1
        return n

    cpdef bint take(self, EventHandle handle) except -1:
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
        cdef list q = self._queue
        if handle.action is None or handle.time > self._target:
            return False
        while (<EventHandle>q[0]).action is None:  # cancelled heads (the handle is live: one stays)
            self._pop()
        if q[0] is not handle:
            return False
        self._pop()
        handle.action = None
        if handle.time > self._now:
            self._now = handle.time
        self.events_run += 1
        return True

    # -- running ---------------------------------------------------------------------------------
    def advance(self, ns):
        """Let ``ns`` nanoseconds pass, running every event due, in (time, order) order."""
        if ns < 0:
            raise _ClockConfigError(f"cannot advance by a negative time ({ns} ns)")
        self.run_until(self._now + int(ns))

    cpdef run_until(self, int64_t time_ns):
        """Run every event due at or before ``time_ns`` and move the clock there."""
        cdef list q = self._queue
        cdef int64_t outer = self._target
        cdef EventHandle e
        cdef object action
        self._target = time_ns
        try:
            while q and (<EventHandle>q[0]).time <= time_ns:
                e = self._pop()
                action = e.action
                if action is None:
                    continue
                e.action = None  # ran: a later cancel() through its handle changes nothing
                if e.time > self._now:
                    self._now = e.time
                self.events_run += 1
                action()
        finally:
            self._target = outer
        if time_ns > self._now:
            self._now = time_ns

    def run_before(self, time_ns):
        """Run every event due strictly before ``time_ns`` and move the clock there.

        Events due at ``time_ns`` itself stay queued, so whatever the caller does next happens
        ahead of them at that instant (frame arrivals come before the timers they race).
        """
        cdef int64_t target = time_ns
        self.run_until(target - 1)  # time is integer ns: "before t" is "at or before t - 1"
        if target > self._now:
            self._now = target

    def run_pending(self, limit_ns=10**9):
        """Run events until the queue is empty or ``limit_ns`` of simulated time passed."""
        cdef int64_t deadline = self._now + limit_ns
        while True:
            t = self.next_event_time()
            if t is None or t > deadline:
                return
            self.run_until(t)
