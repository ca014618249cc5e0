# The simulation engine (sriov.hw.clock.SimClock): simulated time, every MSI-X vector's moderation
# and message, NAPI's poll events and the time-exact receive loop. Twin: sriov/golden/engine.py,
# which reads as the specification.
#
# One queue of events in (time, seq) order. Control-plane events (mailbox, watchdogs, link, user
# callbacks) are Python callables in a heap of EventHandle objects; data-plane events (an EITR
# interval's end, an MSI-X message's arrival, a NAPI poll's end) are C structs in a second heap
# that shares the sequence numbers, so the two heaps pop in exactly the order one queue would.
# A data-plane event runs without a Python call unless what it drives is Python (a stack callback).
# No GIL release here except around the receive kernel: every other step may call Python.

from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.mem cimport PyMem_Realloc, PyMem_Free

from sriov.errors import ConfigError as _EngineConfigError

cdef int64_t _CLOCK_MAX = 0x7FFFFFFFFFFFFFFF
# Bumped whenever the engine hands control to Python (an event, a callback, a handler): Python may
# change registers, tables or mappings, so a receive kernel's kept state is valid only while this
# has not moved since its last run.
cdef uint64_t _python_epoch = 0
cdef int64_t _NEVER = -(1 << 62)  # "last fired": long enough ago that any interval has passed

cdef enum:
    _EV_VECTOR_DUE = 1  # a vector's EITR interval ends with its cause pending
    _EV_DELIVER = 2     # a vector's MSI-X message reaches its handler
    _EV_POLL_END = 3    # a NAPI poll's guest time is over

cdef struct DEvent:
    int64_t time
    int64_t seq
    int64_t gen      # the target's generation when scheduled: a later one means cancelled
    PyObject* target  # a Vector or a NapiCore, referenced while the event is queued
    int kind


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


cdef inline bint _dev_before(DEvent* a, DEvent* b) noexcept nogil:
    return a.time < b.time or (a.time == b.time and a.seq < b.seq)


@cython.final
cdef class SimClock:
    """Simulated time in integer nanoseconds and the one queue of events (twin:
    ``sriov.golden.engine.SimClock``).

    Events due at the same instant run in the order they were scheduled. ``advance(ns)`` may be
    called from inside an event (a driver waiting on the mailbox inside an interrupt handler
    does): time never goes backwards, and an inner advance that overshoots the outer target
    leaves the clock later than the outer call asked for. `run_frames` offers a batch of frames
    to a port at their arrival times with everything else that is due in between.
    """

    cdef int64_t _now
    cdef int64_t _seq
    cdef list _queue
    cdef DEvent* _dq
    cdef Py_ssize_t _dn, _dcap
    cdef public int64_t events_run
    cdef object _kept_kernel  # the receive kernel of the last run of frames, and the epoch then
    cdef uint64_t _kept_epoch

    def __init__(self, start_ns=0):
        if not isinstance(start_ns, int) or isinstance(start_ns, bool) or not 0 <= start_ns < _CLOCK_MAX:
            raise _EngineConfigError(f"clock start must be an int >= 0 ns, got {start_ns!r}")
        self._now = start_ns
        self._seq = 0
        self._queue = []
        self.events_run = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._dq != NULL:
            for i in range(self._dn):
                Py_DECREF(<object>self._dq[i].target)
            PyMem_Free(self._dq)

    @property
    def now(self):
        """Current simulated time, ns."""
        return self._now

    # -- the control-plane heap (EventHandle objects) ---------------------------------------------
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

    # -- the data-plane heap (DEvent structs) ------------------------------------------------------
    cdef int _dpush(self, int64_t time, int kind, object target, int64_t gen) except -1:
        cdef DEvent e
        cdef DEvent* grown
        cdef Py_ssize_t i, p
        if self._dn == self._dcap:
            grown = <DEvent*>PyMem_Realloc(self._dq, (2 * self._dcap + 64) * sizeof(DEvent))
            if grown == NULL:
                raise MemoryError()
            self._dq = grown
            self._dcap = 2 * self._dcap + 64
        e.time = time
        e.seq = self._seq
        self._seq += 1
        e.gen = gen
        e.kind = kind
        Py_INCREF(target)
        e.target = <PyObject*>target
        i = self._dn
        self._dn += 1
        while i > 0:
            p = (i - 1) >> 1
            if not _dev_before(&e, &self._dq[p]):
                break
            self._dq[i] = self._dq[p]
            i = p
        self._dq[i] = e
        return 0

    cdef DEvent _dpop(self) noexcept:
        """Remove the top (the heap is not empty); the caller owns the reference to its target."""
        cdef DEvent top = self._dq[0]
        cdef DEvent last
        cdef Py_ssize_t n, i = 0, c
        self._dn -= 1
        n = self._dn
        if n == 0:
            return top
        last = self._dq[n]
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and _dev_before(&self._dq[c + 1], &self._dq[c]):
                c += 1
            if not _dev_before(&self._dq[c], &last):
                break
            self._dq[i] = self._dq[c]
            i = c
        self._dq[i] = last
        return top

    cdef inline bint _dlive(self, DEvent* e) noexcept:
        """Whether a queued data-plane event is still wanted (its target was not re-armed since)."""
        if e.kind == _EV_VECTOR_DUE:
            return (<Vector>e.target).timer_gen == e.gen
        if e.kind == _EV_POLL_END:
            return (<NapiCore>e.target)._end_gen == e.gen
        return True

    cdef void _drop_stale(self):
        """Pop cancelled entries off the top of both heaps."""
        cdef DEvent e
        while self._dn and not self._dlive(&self._dq[0]):
            e = self._dpop()
            Py_DECREF(<object>e.target)
        while self._queue and (<EventHandle>self._queue[0]).action is None:
            self._pop()

    cdef int64_t _next_time(self):
        """The earliest live event's time, or _CLOCK_MAX when nothing is queued."""
        cdef int64_t t = _CLOCK_MAX, u
        self._drop_stale()
        if self._dn:
            t = self._dq[0].time
        if self._queue:
            u = (<EventHandle>self._queue[0]).time
            if u < t:
                t = u
        return t

    cdef int _run_next(self, int64_t limit) except -1:
        """Run the earliest event if it is due at or before ``limit``; 1 if one ran, else 0."""
        cdef DEvent e
        cdef EventHandle h
        cdef bint data_first
        cdef object action
        self._drop_stale()
        if self._dn and self._queue:
            h = <EventHandle>self._queue[0]
            data_first = self._dq[0].time < h.time or (self._dq[0].time == h.time and self._dq[0].seq < h.seq)
        elif self._dn:
            data_first = True
        elif self._queue:
            data_first = False
        else:
            return 0
        if data_first:
            if self._dq[0].time > limit:
                return 0
            e = self._dpop()
            if e.time > self._now:
                self._now = e.time
            self.events_run += 1
            target = <object>e.target
            Py_DECREF(target)  # `target` holds its own reference now
            if e.kind == _EV_VECTOR_DUE:
                (<Vector>target)._expire()
            elif e.kind == _EV_DELIVER:
                (<Vector>target)._deliver()
            else:
                (<NapiCore>target)._end()
            return 1
        h = <EventHandle>self._queue[0]
        if h.time > limit:
            return 0
        self._pop()
        action = h.action
        h.action = None  # ran: a later cancel() through its handle changes nothing
        if h.time > self._now:
            self._now = h.time
        self.events_run += 1
        _bump_epoch()
        action()
        return 1

    # -- scheduling ------------------------------------------------------------------------------
    cdef EventHandle _new(self, int64_t delay, object action):
        cdef EventHandle e
        if delay < 0:
            raise _EngineConfigError(f"event delay must be >= 0 ns, got {delay}")
        if delay > _CLOCK_MAX - self._now:
            raise _EngineConfigError(f"event delay {delay} ns overflows the clock")
        e = EventHandle.__new__(EventHandle)
        e.time = self._now + delay
        e.seq = self._seq
        e.action = action
        self._seq += 1
        self._push(e)
        return e

    def schedule(self, delay_ns, action):
        """Run ``action`` ``delay_ns`` ns from now (0 = at the next advance)."""
        cdef int64_t delay = _time_arg("delay_ns", delay_ns)
        if not callable(action):
            raise _EngineConfigError(f"an event's action must be callable, got {action!r}")
        return self._new(delay, action)

    def schedule_at(self, time_ns, action):
        """Run ``action`` at absolute time ``time_ns`` (not earlier than now)."""
        return self.schedule(max(0, _time_arg("time_ns", time_ns) - self._now), action)

    def next_event_time(self):
        """Time of the earliest pending event, or None."""
        cdef int64_t t = self._next_time()
        return None if t == _CLOCK_MAX else t

    def pending(self):
        """Number of events not yet run (cancelled ones excluded)."""
        cdef EventHandle e
        cdef Py_ssize_t n = 0, i
        for e in self._queue:
            if e.action is not None:
                n += 1
        for i in range(self._dn):
            if self._dlive(&self._dq[i]):
                n += 1
        return n

    # -- running ---------------------------------------------------------------------------------
    def advance(self, ns):
        """Let ``ns`` nanoseconds pass, running every event due, in (time, order) order."""
        cdef int64_t delay = _time_arg("ns", ns)
        if delay > _CLOCK_MAX - 1 - self._now:
            raise _EngineConfigError(f"advancing by {ns} ns overflows the clock (now {self._now} ns)")
        self._run_until(self._now + delay)

    def run_until(self, time_ns):
        """Run every event due at or before ``time_ns`` and move the clock there."""
        self._run_until(_time_arg("time_ns", time_ns))

    cdef int _run_until(self, int64_t time_ns) except -1:
        while self._run_next(time_ns):
            pass
        if time_ns > self._now:
            self._now = time_ns
        return 0

    def run_before(self, time_ns):
        """Run every event due strictly before ``time_ns`` and move the clock there.

        Events due at ``time_ns`` itself stay queued, so whatever the caller does next happens
        ahead of them at that instant (frame arrivals come before the timers they race).
        """
        cdef int64_t target = _time_arg("time_ns", time_ns)
        self._run_until(target - 1)  # time is integer ns: "before t" is "at or before t - 1"
        if target > self._now:
            self._now = target

    def run_pending(self, limit_ns=10**9):
        """Run events until the queue is empty or ``limit_ns`` of simulated time passed."""
        cdef int64_t deadline = self._now + _time_arg("limit_ns", limit_ns)
        while self._run_next(deadline):
            pass

    # -- frames at their arrival times -------------------------------------------------------------
    def run_frames(self, RxKernel kernel not None, IrqRouter router not None,
                   const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
                   const uint32_t[::1] lengths not None, const int64_t[::1] timestamps not None,
                   uint64_t[::1] selected not None, uint64_t[::1] delivered not None,
                   uint8_t[::1] reasons not None, int64_t[::1] queue_frames not None,
                   int64_t min_latency_ns, Py_ssize_t max_run=0):
        """Offer every frame to ``kernel``'s port at its timestamp (non-decreasing), with every
        event due before it run first and the events due at its instant after it (the order
        `sriov.timeline` uses). Each frame's receive completions raise their vectors' causes at
        its arrival time; ``queue_frames[q]`` counts the frames written to PF queue ``q``.
        Returns ``(frames delivered to >= 1 pool, frames that arrived late)``: a frame is late
        when an event moved the clock past its time (a driver's busy-wait).

        Frames go through the kernel in runs: a run ends before the next queued event and, while
        some vector could fire on a new cause and send a message (`IrqRouter.any_hot`), at most
        ``min_latency_ns`` (the port's shortest MSI-X latency) after its first frame, so nothing a
        run's interrupts set off (an MSI-X message, a poll) can happen before its last frame.
        ``max_run`` > 0 caps a run's frames (1: the event-by-event model; no answer depends on
        it: the tests hold the two to the same history)."""
        cdef Py_ssize_t n = offsets.shape[0], i = 0, j, k, bad, accepted = 0, late = 0
        cdef int64_t t, bound, tnext
        cdef const int64_t* ts
        if lengths.shape[0] != n or timestamps.shape[0] != n:
            raise _EngineConfigError(f"offsets, lengths and timestamps differ in length ({n}, {lengths.shape[0]})")
        if selected.shape[0] < n or delivered.shape[0] < n or reasons.shape[0] < n:
            raise _EngineConfigError(f"selected, delivered and reasons must each have >= {n} slots")
        if queue_frames.shape[0] < _MAX_QUEUES:
            raise _EngineConfigError(f"queue_frames must have >= {_MAX_QUEUES} slots")
        if min_latency_ns < 0 or max_run < 0:
            raise _EngineConfigError(f"min_latency_ns and max_run must be >= 0, got {min_latency_ns}, {max_run}")
        if n == 0:
            return 0, 0
        _bump_epoch()  # the caller was Python
        bad = _first_out_of_bounds(data.shape[0], &offsets[0], &lengths[0], n)
        if bad >= 0:
            raise _EngineConfigError(
                f"frame {bad} ([{offsets[bad]}, {offsets[bad] + lengths[bad]})) lies outside the "
                f"{data.shape[0]}-byte data buffer")
        ts = &timestamps[0]
        for j in range(1, n):
            if ts[j] < ts[j - 1]:
                raise _EngineConfigError(f"frame {j} arrives before frame {j - 1}: timestamps must not decrease")
        while i < n:
            t = ts[i]
            while self._run_next(t - 1):  # what is due before the frame
                pass
            if t > self._now:
                self._now = t
            else:
                t = self._now  # late (or on time at the clock's instant)
            tnext = self._next_time()
            bound = t + min_latency_ns
            if tnext <= bound or not router.any_hot():
                bound = tnext  # (no vector can send a message before some queued event)
            j = i + 1
            while j < n and ts[j] <= bound and (max_run == 0 or j - i < max_run):
                j += 1
            for k in range(i, j):
                if ts[k] < t:
                    late += 1
                else:
                    break
            accepted += self._run_chunk(kernel, router, &data[0] if data.shape[0] else NULL, &offsets[i],
                                        &lengths[i], ts + i, &selected[i], &delivered[i], &reasons[i], j - i,
                                        &queue_frames[0])
            # the run's last frame has arrived: what fell due before it (an interval that ended
            # inside the run) runs first, then the clock is at its instant
            while self._run_next(ts[j - 1] - 1):
                pass
            if ts[j - 1] > self._now:
                self._now = ts[j - 1]
            i = j
        return accepted, late

    cdef Py_ssize_t _run_chunk(self, RxKernel kernel, IrqRouter router, const uint8_t* data,
                               const int64_t* offs, const uint32_t* lens, const int64_t* ts,
                               uint64_t* sel, uint64_t* dlv, uint8_t* rsn, Py_ssize_t m,
                               int64_t* queue_frames) except -1:
        """One run of frames through the kernel, then their interrupt causes in arrival order."""
        cdef Py_ssize_t accepted, k
        cdef int w, q
        cdef uint64_t walk = 0, bits
        cdef Vector v
        if not router.link_is_up():
            return router.link_down(m, sel, dlv, rsn)
        if kernel is self._kept_kernel and self._kept_epoch == _python_epoch:
            kernel.keep = True  # nothing but the data path ran since its last run
        else:
            kernel._check_binding()
        if m >= 16:
            with nogil:
                accepted = kernel._run(data, offs, lens, ts, m, sel, dlv, rsn)
        else:  # a few frames: less work than handing the GIL over and back
            accepted = kernel._run(data, offs, lens, ts, m, sel, dlv, rsn)
        self._kept_kernel = kernel
        self._kept_epoch = _python_epoch
        if not accepted:
            return 0
        # A cause raised on a vector that is masked only latches (its time does not matter, and
        # nothing inside the run can unmask it), and so does one on a vector that owes an
        # interrupt already, its interval ending after the run: raised once. The others depend on
        # the instant: raised frame by frame, each after whatever fell due before it.
        router._refresh_qpp()
        for w in range(kernel.nwritten):
            q = kernel.written[w]
            queue_frames[q] += kernel._qframes[q]
            v = router.route(q, False)
            if v is None:
                router.count_unrouted(q)
            elif v.masked_now() or (v.pending and v.timer_due > ts[m - 1]):
                v.set_cause_bit()
                v.pending = True
            else:
                walk |= 1ULL << router.pool_of(q)
        if walk:
            for k in range(m):
                bits = dlv[k] & walk
                if not bits:
                    continue
                while self._run_next(ts[k] - 1):
                    pass
                if ts[k] > self._now:
                    self._now = ts[k]
                while bits:
                    q = router.first_queue(__builtin_ctzll(bits))
                    bits &= bits - 1
                    router.raise_queue(q, False)
        return accepted


cdef inline void _bump_epoch() noexcept:
    global _python_epoch
    _python_epoch += 1


cdef int64_t _time_arg(str name, object value) except? -1:
    """A time or delay argument: an int (not bool) in 0 .. 2**63 - 1 ns."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _EngineConfigError(f"{name} must be an int number of ns, got {value!r}")
    if not 0 <= value < _CLOCK_MAX:
        raise _EngineConfigError(f"{name} must be in 0..{_CLOCK_MAX - 1} ns, got {value!r}")
    return value


cdef uint32_t _EITR_ITR_MASK = _R.EITR_ITR_INT_MASK
cdef uint32_t _EITR_CNT_WDIS = _R.EITR_CNT_WDIS
cdef int64_t _EITR_UNIT_NS = 2048  # sriov.hw.eitr.EITR_UNIT_NS (checked at import below)
cdef int _EITR_SHIFT = 3  # sriov.hw.eitr.EITR_FIELD_SHIFT

from sriov.hw import eitr as _eitr_mod
if (_eitr_mod.EITR_UNIT_NS, _eitr_mod.EITR_FIELD_SHIFT) != (_EITR_UNIT_NS, _EITR_SHIFT):
    raise ImportError("sriov._fastpath: the EITR unit or field shift changed; update _fp_engine.pxi")


@cython.final
cdef class Vector:
    """One MSI-X vector of a PCI function: its EITR moderation (spec §5.10) and its message.

    Mask, cause and auto-mask are the function's registers, read where they live: the vector is
    masked while its bit in ``ims`` is clear, ``icr`` holds its cause bit (none for PF vectors
    16..63), and when it fires ``iac`` auto-clears the cause and ``iam`` auto-masks it. The vector
    keeps only what no register holds: its interval, when it last fired, an interrupt owed since
    then (``pending``), the timer of the interval's end, and its message in flight.

    The rules: a cause raised on an unmasked vector whose last interrupt is at least one interval
    old fires at once; otherwise it fires when the interval since the last interrupt ends; on a
    masked vector it waits for the unmask. Firing sends the MSI-X message, which reaches its
    handler ``latency_ns`` later; a message already in flight is not sent twice. The handler is
    a guest driver (``nic``: the hypervisor injects it) or a callable (``handler(number)``).
    Twin: ``sriov.golden.engine.Vector``.
    """

    cdef SimClock clock
    cdef object _regs  # the register words (kept alive: ``w`` points into them)
    cdef uint32_t* w
    cdef Py_ssize_t nwords, icr, ims, iam, iac
    cdef uint32_t icr_bit, ims_bit, iac_bit
    cdef public Py_ssize_t number
    cdef public int64_t interval_ns, last_fire, fired, delivered, injected, latency_ns
    cdef public bint pending, in_flight
    cdef int64_t timer_gen
    cdef public int64_t timer_due  # -1: no timer
    cdef public object on_fire, handler, nic

    def __init__(self, SimClock clock not None, regs, Py_ssize_t number, Py_ssize_t icr=-1,
                 uint32_t icr_bit=0, Py_ssize_t ims=-1, uint32_t ims_bit=0, Py_ssize_t iam=-1,
                 Py_ssize_t iac=-1, uint32_t iac_bit=0, on_fire=None):
        cdef uint32_t[::1] mv = regs
        cdef Py_ssize_t n = mv.shape[0]
        if not all(-1 <= x < n for x in (icr, ims, iam, iac)):
            raise _EngineConfigError(f"register words {icr}/{ims}/{iam}/{iac} outside the {n}-word registers")
        self.clock = clock
        self._regs = regs
        self.w = &mv[0]
        self.nwords = n
        self.number = number
        self.icr, self.icr_bit = icr, icr_bit
        self.ims, self.ims_bit = ims, ims_bit
        self.iam = iam
        self.iac, self.iac_bit = iac, iac_bit
        self.on_fire = on_fire
        self.interval_ns = 0
        self.last_fire = _NEVER
        self.timer_due = -1
        self.latency_ns = 0

    # -- what the registers say ---------------------------------------------------------------------
    cdef inline void set_cause_bit(self) noexcept:
        """The cause bit in the cause register (none for a PF vector above 15)."""
        if self.icr >= 0:
            self.w[self.icr] |= self.icr_bit

    cdef inline bint masked_now(self) noexcept:
        return self.ims >= 0 and not (self.w[self.ims] & self.ims_bit)

    @property
    def masked(self):
        """The vector may not fire: its bit in the mask register (EIMS / VTEIMS) is clear."""
        return self.masked_now()

    @property
    def auto_mask(self):
        """Firing masks the vector: its bit in EIAM / VTEIAM is set."""
        return self.iam >= 0 and bool(self.w[self.iam] & self.ims_bit)

    # -- causes and register writes (the caller has written the register) ---------------------------
    cpdef raise_cause(self):
        """A cause of this vector becomes set (a receive completion, a mailbox message)."""
        self.pending = True
        if not self.masked_now():
            self._try_fire()

    cpdef unmask(self):
        """The mask bit was set (EIMS / VTEIMS): an interrupt owed fires, subject to the interval."""
        if self.pending and not self.masked_now():
            self._try_fire()

    cpdef mask(self):
        """The mask bit was cleared (EIMC / VTEIMC): causes wait for the unmask."""
        self._cancel_timer()

    cpdef clear_cause(self):
        """The cause was cleared (EICR read or write-1-to-clear) before the vector fired."""
        self.pending = False
        self._cancel_timer()

    cpdef reprogram(self, int64_t interval_ns, bint reset_counter):
        """An EITR write: the new interval now; without CNT_WDIS the interval counter restarts
        expired. An interrupt waiting for the old interval is re-decided against the new one."""
        if interval_ns < 0:
            raise _EngineConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns
        if reset_counter:
            self.last_fire = _NEVER
        self._cancel_timer()
        if self.pending and not self.masked_now():
            self._try_fire()

    cpdef write_eitr(self, uint32_t value):
        """An EITR / VTEITR write of ``value`` (the caller stores the register): interval = ITR
        field x 2.048 us; CNT_WDIS keeps the running interval's counter."""
        self.reprogram(<int64_t>((value & _EITR_ITR_MASK) >> _EITR_SHIFT) * _EITR_UNIT_NS,
                       not value & _EITR_CNT_WDIS)

    cpdef reset(self):
        """The function's reset: nothing owed, no interval, counter expired (counts are kept)."""
        self._cancel_timer()
        self.pending = False
        self.interval_ns = 0
        self.last_fire = _NEVER

    # -- the state machine -----------------------------------------------------------------------------
    cdef int _try_fire(self) except -1:
        cdef int64_t due = self.last_fire + self.interval_ns, now = self.clock._now
        if now >= due:
            self._fire()
        elif self.timer_due < 0:
            self.timer_due = due
            self.clock._dpush(due, _EV_VECTOR_DUE, self, self.timer_gen)
        return 0

    cdef int _expire(self) except -1:
        self.timer_due = -1
        self.timer_gen += 1
        if self.pending and not self.masked_now():
            self._fire()
        return 0

    cdef inline void _cancel_timer(self) noexcept:
        if self.timer_due >= 0:
            self.timer_due = -1
            self.timer_gen += 1

    cdef int _fire(self) except -1:
        cdef uint32_t* w = self.w
        self._cancel_timer()
        self.pending = False
        self.last_fire = self.clock._now
        self.fired += 1
        if self.on_fire is not None:  # a vector whose firing is register work of its own (PF other)
            _bump_epoch()
            self.on_fire()
            return 0
        if self.icr >= 0 and self.iac >= 0 and w[self.iac] & self.iac_bit:
            w[self.icr] &= ~self.icr_bit
        if self.iam >= 0 and w[self.iam] & self.ims_bit:
            w[self.ims] &= ~self.ims_bit
        self.signal()
        return 0

    # -- the MSI-X message ---------------------------------------------------------------------------
    cpdef signal(self):
        """Send the MSI-X message: not while one is in flight, only to a routed handler; it
        arrives ``latency_ns`` later."""
        if self.in_flight or (self.nic is None and self.handler is None):
            return
        self.in_flight = True
        self.clock._dpush(self.clock._now + self.latency_ns, _EV_DELIVER, self, 0)

    cdef int _deliver(self) except -1:
        self.in_flight = False
        self.delivered += 1
        nic = self.nic
        if nic is not None:
            self.injected += 1
            if isinstance(nic, NicState):
                (<NicState>nic).msix_c(self.number)
            else:
                _bump_epoch()
                nic._msix(self.number)
        elif self.handler is not None:
            _bump_epoch()
            self.handler(self.number)
        return 0


cdef uint32_t _ENG_VTEICR_W = _R.VTEICR // 4
cdef uint32_t _ENG_EICR_W = _R.EICR // 4
cdef uint32_t _ENG_GCR_EXT_W = _R.GCR_EXT // 4
cdef uint32_t _ENG_VT_CTL_W = _R.VT_CTL // 4
cdef uint32_t _ENG_VT_ENABLE = _R.VT_CTL_VT_ENABLE
cdef uint32_t _ENG_VFRE_W = _R.VFRE(0) // 4
if _R.VFRE(1) != _R.VFRE(0) + 4:
    raise ImportError("sriov._fastpath: VFRE(1) no longer follows VFRE(0); update _fp_engine.pxi")
cdef uint32_t _ENG_LINKS_W = _R.LINKS // 4
cdef uint32_t _ENG_LINKS_UP = _R.LINKS_UP
cdef uint32_t _ENG_VT_MODE_MASK = _R.GCR_EXT_VT_MODE_MASK
cdef uint32_t _ENG_VT_MODE_16 = _R.GCR_EXT_VT_MODE_16
cdef uint32_t _ENG_VT_MODE_32 = _R.GCR_EXT_VT_MODE_32
cdef uint32_t _ENG_ALLOC_VAL = _R.IVAR_ALLOC_VAL
cdef uint32_t _ENG_VECTOR_MASK = _R.IVAR_VECTOR_MASK
cdef Py_ssize_t _ENG_VTIVAR0_W = _R.VTIVAR(0) // 4
cdef Py_ssize_t _ENG_IVAR0_W = _R.IVAR(0) // 4
cdef Py_ssize_t _ENG_VF_WORDS = _R.VF_BAR0_SIZE // 4
cdef int _ENG_VF_VECTORS = _R.VF_MSIX_VECTORS
cdef int _ENG_PF_VECTORS = _R.PF_MSIX_VECTORS
if any(_R.VTIVAR(x) != _R.VTIVAR(0) + 4 * x for x in range(4)) or any(
        _R.IVAR(i) != _R.IVAR(0) + 4 * i for i in range(_R.NUM_IVAR)):
    raise ImportError("sriov._fastpath: (VT)IVAR registers are no longer consecutive; update _fp_engine.pxi")


@cython.final
cdef class IrqRouter:
    """Where a port's queue completions go (spec §4.5): PF queue ``q`` belongs to pool
    ``q // queues_per_pool``; a VF's pool raises the cause of the vector its VTIVAR entry names
    for its queue ``q % queues_per_pool`` (VTEICR bit), any other queue the vector the PF's IVAR
    names (EICR bits 15:0 for vectors 0..15). The entries are read from the registers at each
    raise. A queue without a valid entry counts in ``unrouted[function]`` (index 64: the PF).
    Twin: ``sriov.golden.engine.IrqRouter``."""

    cdef object _regs, _vf_regs
    cdef uint32_t* regs
    cdef uint32_t* vf_regs
    cdef list _vf_vectors, _pf_vectors
    cdef Py_ssize_t nvfs
    cdef int qpp
    cdef public object unrouted
    cdef int64_t[::1] _unrouted
    cdef readonly object device

    def __init__(self, device):
        cdef uint32_t[::1] r = device.regs
        cdef uint32_t[:, ::1] vr = device.vf_regs
        if vr.shape[1] != _ENG_VF_WORDS or vr.shape[0] < 64:
            raise _EngineConfigError("vf_regs must be (64, VF BAR0 words)")
        self.device = device
        self._regs, self._vf_regs = device.regs, device.vf_regs
        self.regs = &r[0]
        self.vf_regs = &vr[0, 0]
        self.unrouted = _np.zeros(65, _np.int64)
        self._unrouted = self.unrouted
        self.attach([], [])
        self.qpp = 2

    def attach(self, list vf_vectors not None, list pf_vectors not None):
        """The vectors of the enabled VFs (one list of 3 per VF, in VF order) and the PF's 64."""
        if len(vf_vectors) > 63 or any(len(v) != _ENG_VF_VECTORS for v in vf_vectors):
            raise _EngineConfigError(f"vf_vectors: at most 63 VFs of {_ENG_VF_VECTORS} vectors each")
        if pf_vectors and len(pf_vectors) != _ENG_PF_VECTORS:
            raise _EngineConfigError(f"pf_vectors: {_ENG_PF_VECTORS} vectors")
        self._vf_vectors = [list(v) for v in vf_vectors]
        self._pf_vectors = list(pf_vectors)
        self.nvfs = len(vf_vectors)

    cdef bint any_hot(self) except -1:
        """Whether a frame received now could make some vector of the port send a message: a
        vector a pool's receive queue is routed to is unmasked, owes no interrupt (else its timer
        is queued) and has a handler. Otherwise new causes only latch until a queued event, and a
        run of frames may go up to that event."""
        cdef Vector v
        cdef int p, pools
        cdef uint64_t receiving
        self._refresh_qpp()
        pools = 64 if self.regs[_ENG_VT_CTL_W] & _ENG_VT_ENABLE else 1
        receiving = <uint64_t>self.regs[_ENG_VFRE_W] | (<uint64_t>self.regs[_ENG_VFRE_W + 1] << 32)
        for p in range(pools):
            if pools > 1 and not (receiving >> p) & 1:
                continue  # a pool with receive disabled gets no frame
            v = self.route(p * self.qpp if pools > 1 else 0, False)
            if (v is not None and not v.pending and (v.nic is not None or v.handler is not None)
                    and not v.masked_now()):
                return True
        return False

    cdef inline bint link_is_up(self) noexcept:
        return (self.regs[_ENG_LINKS_W] & _ENG_LINKS_UP) != 0

    cdef Py_ssize_t link_down(self, Py_ssize_t m, uint64_t* sel, uint64_t* dlv, uint8_t* rsn) except -1:
        """No carrier: the frames never enter the port (LINK_DOWN, counted in rx_link_down)."""
        cdef Py_ssize_t k
        for k in range(m):
            sel[k] = dlv[k] = 0
            rsn[k] = LINK_DOWN
        self.device.state.port_counters[_C.PORT["rx_link_down"]] += m
        return 0

    cdef inline void begin(self, int qpp) noexcept:
        self.qpp = qpp if qpp > 0 else 2

    cdef inline int pool_of(self, int q) noexcept:
        return q // self.qpp

    cdef inline int first_queue(self, int pool) noexcept:
        return pool * self.qpp

    cdef Vector route(self, int q, bint tx):
        """The vector queue ``q``'s RX (``tx``: TX) cause goes to, or None (unrouted): the entry
        of the owning function's (VT)IVAR, read now."""
        cdef int pool = q // self.qpp, vq, entry
        cdef uint32_t word
        if pool < self.nvfs:
            vq = q - pool * self.qpp
            word = self.vf_regs[pool * _ENG_VF_WORDS + _ENG_VTIVAR0_W + (vq >> 1)]
            entry = (word >> (16 * (vq & 1) + 8 * tx)) & 0xFF
            if not entry & _ENG_ALLOC_VAL or (entry & _ENG_VECTOR_MASK) >= _ENG_VF_VECTORS:
                return None
            return <Vector>(<list>self._vf_vectors[pool])[entry & _ENG_VECTOR_MASK]
        if not self._pf_vectors or q >= 128:
            return None
        word = self.regs[_ENG_IVAR0_W + (q >> 1)]
        entry = (word >> (16 * (q & 1) + 8 * tx)) & 0xFF
        if not entry & _ENG_ALLOC_VAL or (entry & _ENG_VECTOR_MASK) >= _ENG_PF_VECTORS:
            return None
        return <Vector>self._pf_vectors[entry & _ENG_VECTOR_MASK]

    cdef void count_unrouted(self, int q):
        cdef int pool = q // self.qpp
        self._unrouted[pool if pool < self.nvfs else 64] += 1

    cdef int raise_queue(self, int q, bint tx) except -1:
        """A completion on PF queue ``q`` (``tx``: a transmit completion): its vector's cause."""
        cdef Vector v = self.route(q, tx)
        if v is None:
            self.count_unrouted(q)
            return 0
        v.set_cause_bit()
        v.raise_cause()
        return 0

    def raise_queues(self, queues, bint tx=False):
        """Completions on PF queues ``queues`` (ascending), at the clock's instant: each raises
        its vector's cause (the device's hook after a batch, the transmit engine's completions)."""
        self._refresh_qpp()
        for q in queues:
            if not isinstance(q, int) or not 0 <= q < 128:
                raise _EngineConfigError(f"queue {q!r} outside 0..127")
        for q in queues:
            self.raise_queue(q, tx)

    cdef void _refresh_qpp(self):
        cdef uint32_t mode = self.regs[_ENG_GCR_EXT_W] & _ENG_VT_MODE_MASK
        self.qpp = 8 if mode == _ENG_VT_MODE_16 else (4 if mode == _ENG_VT_MODE_32 else 2)

    def raise_written(self, kernel):
        """The hook after a batch of ``kernel``'s: every queue it wrote to raises its cause."""
        cdef int w
        cdef RxKernel k
        self._refresh_qpp()
        if isinstance(kernel, RxKernel):
            k = <RxKernel>kernel
            for w in range(k.nwritten):
                self.raise_queue(k.written[w], False)
        else:  # another implementation's kernel (the golden twin's): its list
            for q in kernel.written:
                self.raise_queue(q, False)
