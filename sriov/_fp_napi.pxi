# The receive poll and NAPI's poll cycle (twins: sriov/golden/napi.py, which reads as the spec).
# RxRingState is the base of sriov.drivers.rings.RxRing and NapiCore the base of
# sriov.drivers.napi.Napi: the state a poll touches lives in C fields. NAPI's steps are events of
# the engine (sriov/_fp_engine.pxi): an interrupt's delivery starts a cycle, a poll's end is a
# data-plane event, so a cycle runs without a Python call unless the guest's stack is Python
# (a callback, the backlog). The ring work is RxRingCore's (its cdef internals, one GIL release
# per poll); everything rare (an unbound tail, the frame that wraps round the ring, new views,
# traces, the backlog) goes back to the subclass's Python methods.


if any(_R.VTEITR(v) != _R.VTEITR(0) + 4 * v for v in range(_R.VF_MSIX_VECTORS)):
    raise ImportError("sriov._fastpath: VTEITR(v) is no longer VTEITR(0) + 4 v; update _fp_napi.pxi")


cdef class RxRingState:
    """The per-poll state of a receive ring (`sriov.drivers.rings.RxRing` derives from this).

    ``_ntu``/``_ntc``: next_to_use / next_to_clean; ``running``; ``last_bytes``: frame bytes of
    the last poll; ``frames``: frames taken in all; ``last_frames``: frames the last poll
    returned; ``_view_frames``/``_views``: the last poll's (batch, vlans) views, reused by polls
    that take as many frames (``_view_cache``: every size made so far); ``last_vlan``.
    Twin: ``sriov.golden.napi.RxRingState``.
    """

    cdef public object _core, fn, _regs, _views, last_vlan
    cdef public dict _view_cache  # frames -> (batch, vlans): NAPI's cycle alternates 64 and the rest
    cdef public Py_ssize_t _ntu, _ntc, _view_frames, last_frames
    cdef public bint running
    cdef public uint64_t last_bytes
    cdef public int64_t frames

    def __cinit__(self):
        self._regs = ()
        self._views = ()
        self._view_frames = -1
        self._view_cache = {}

    def poll(self, budget=64):
        """Up to ``budget`` received frames as zero-copy views (valid until the next poll).

        The offsets/lengths arrays of the returned `Batch` are the ring's own (reused by the next
        poll), so a poll allocates no per-frame object; ``last_vlan`` holds each frame's VLAN tag
        (0 when the descriptor had no VP).
        """
        if not isinstance(budget, int) or budget < 0:
            raise _ConfigError(f"budget must be a non-negative int, got {budget!r}")
        return self._poll(budget)

    def release(self):
        """Give the buffers of the last poll back to the hardware now (their views become invalid)."""
        self._release()

    def discard(self, budget=None):
        """Take completed frames and give their buffers straight back (a driver that drops
        everything, XDP_DROP-style); returns how many frames there were (at most ``budget``,
        default the whole ring)."""
        cdef RxRingCore rc
        cdef Recycle r
        if budget is not None and (not isinstance(budget, int) or budget < 0):
            raise _ConfigError(f"budget must be a non-negative int or None, got {budget!r}")
        if not self.running:
            return 0
        core = self._core
        r.ntc = self._ntc
        if type(core) is not RxRingCore:  # another implementation's ring core: its recycle
            r.limit = core.count - 1 if budget is None else budget
            r.ntu, r.unwritten, r.frames, r.used, r.wrap = core.recycle(self._ntu, r.ntc, r.limit)
            r.nbytes = core.last_bytes
            return self._recycled(&r, core.count)
        # release + scan + release in one GIL release, one tail write (RxRingCore.recycle)
        rc = <RxRingCore>core
        self._check_indices(rc)
        r.ntu = self._ntu
        r.limit = rc.count - 1 if budget is None else budget
        with nogil:
            rc._recycle(&r)
        rc.last_bytes = r.nbytes
        return self._recycled(&r, rc.count)

    cdef _check_indices(self, RxRingCore rc):
        if not (0 <= self._ntu < rc.count and 0 <= self._ntc < rc.count):
            raise _ConfigError(f"next_to_use {self._ntu} / next_to_clean {self._ntc} outside the "
                               f"{rc.count}-descriptor ring")

    cdef Py_ssize_t _recycled(self, Recycle* r, Py_ssize_t count) except -1:
        """The driver's side of a recycle (``r``): next_to_use, the tail write when it could not
        be stored directly, next_to_clean (the wrapping frame's bounce copy first), counters."""
        self._ntu = r.ntu
        if r.unwritten:
            self.fn.write32(self._regs[4], r.ntu)
            self._bind_tail()
        if r.wrap >= 0:
            self._took(r.used, r.wrap)
        else:
            self._ntc = (r.ntc + r.used) % count
        self.last_bytes = r.nbytes
        self.frames += r.frames
        return r.frames

    cdef _release(self):
        cdef RxRingCore rc
        cdef Py_ssize_t ntu = self._ntu, ntc = self._ntc, count, stop
        cdef bint written
        core = self._core
        if type(core) is not RxRingCore:
            self._refill_to((ntc - 1) % core.count)
            return
        rc = <RxRingCore>core
        count = rc.count
        if not (0 <= ntu < count and 0 <= ntc < count):
            raise _ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        stop = ntc - 1 if ntc > 0 else count - 1
        if stop == ntu:
            return
        with nogil:  # re-post up to next_to_clean, header address 0 clears DD; one tail write
            ntu = rc._repost(ntu, stop)
            written = rc._tail(<uint32_t>ntu)
        self._ntu = ntu
        if not written:
            self.fn.write32(self._regs[4], ntu)
            self._bind_tail()

    cdef object _poll(self, Py_ssize_t budget):
        cdef Py_ssize_t frames
        cdef tuple views
        if budget == 0 or not self.running:
            self.last_frames = 0
            return self._poll_idle()
        frames = self._take(budget)
        if frames != self._view_frames:  # NAPI polls take the same number most of the time
            cached = self._view_cache.get(frames)
            if cached is None:
                self._make_views(frames)
            else:
                self._views = cached
                self._view_frames = frames
        views = self._views
        self.last_vlan = views[1]
        return views[0]

    cdef Py_ssize_t _take(self, Py_ssize_t budget) except -1:
        """`_poll`'s work without the views (a running ring, budget > 0): refill, scan, the
        indices and counters; the frames' offsets, lengths, VLANs and times are in the ring's
        output arrays. What a stack that drops the frames (`sink`) needs."""
        cdef RxRingCore rc
        cdef Py_ssize_t ntu = self._ntu, ntc = self._ntc, count, stop, frames, used = 0, wrap = -1
        cdef uint64_t nbytes = 0
        cdef bint unwritten = False
        # refill (the last poll's buffers), tail, scan: one call (ixgbevf_clean_rx_irq's order)
        core = self._core
        if type(core) is RxRingCore:
            rc = <RxRingCore>core
            count = rc.count
            if not (0 <= ntu < count and 0 <= ntc < count):
                raise _ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
            stop = ntc - 1 if ntc > 0 else count - 1
            with nogil:
                if stop != ntu:
                    ntu = rc._repost(ntu, stop)
                    unwritten = not rc._tail(<uint32_t>ntu)
                frames = rc._scan_nogil(ntc, budget, &used, &wrap, &nbytes)
            rc.last_bytes = nbytes
        else:  # another implementation's ring core (the golden twin's): its cycle
            ntu, unwritten, frames, used, wrap = core.cycle(ntu, ntc, budget)
            nbytes = core.last_bytes
            count = core.count
        self._ntu = ntu
        if unwritten:
            self.fn.write32(self._regs[4], ntu)
            self._bind_tail()
        if wrap >= 0:
            self._took(used, wrap)
        else:
            self._ntc = (ntc + used) % count
        self.last_bytes = nbytes
        self.frames += frames
        self.last_frames = frames
        return frames


from cpython.ref cimport PyObject

DEF _DISCARD_CHUNK = 64  # rings per GIL release in discard_rings (a port has at most 64 pools)


def discard_rings(rings, budget=None):
    """`RxRingState.discard` of every ring in ``rings`` (returns the frames taken in all), with
    the ring work of all of them in one GIL release: a driver that drops what it receives on many
    queues at once (a traffic sink, the two-port benchmark) crosses the GIL once per call instead
    of once per ring. The same effects as ``sum(ring.discard(budget) for ring in rings)``; a
    ring that is not a compiled one goes through its own ``discard``. Bad arguments (a budget
    that is not a non-negative int, a ring with indices outside it) raise before any ring is
    touched. Twin: ``sriov.golden.napi.discard_rings``."""
    cdef PyObject* cores[_DISCARD_CHUNK]
    cdef Recycle recs[_DISCARD_CHUNK]
    cdef Py_ssize_t i, k, m, total = 0
    cdef RxRingState rs
    cdef RxRingCore rc
    if budget is not None and (not isinstance(budget, int) or budget < 0):
        raise _ConfigError(f"budget must be a non-negative int or None, got {budget!r}")
    items = tuple(rings)
    fast = [isinstance(r, RxRingState) and (<RxRingState>r).running
            and type((<RxRingState>r)._core) is RxRingCore for r in items]
    for r, f in zip(items, fast):  # every index checked before any ring is touched
        if f:
            (<RxRingState>r)._check_indices(<RxRingCore>(<RxRingState>r)._core)
        elif not hasattr(r, "discard"):
            raise _ConfigError(f"discard_rings() takes receive rings, got {type(r).__name__}")
    i = 0
    while i < len(items):
        m = 0
        group = []  # the compiled rings of this chunk, in order (they keep the pointers valid)
        seen = set()
        while i < len(items) and m < _DISCARD_CHUNK:
            r = items[i]
            if id(r) in seen:  # the same ring again: its second discard starts after this chunk
                break
            i += 1
            if not fast[i - 1]:
                total += r.discard(budget)
                continue
            seen.add(id(r))
            rs = <RxRingState>r
            rc = <RxRingCore>rs._core
            group.append(rs)
            cores[m] = <PyObject*>rc
            recs[m].ntu, recs[m].ntc = rs._ntu, rs._ntc
            recs[m].limit = rc.count - 1 if budget is None else budget
            m += 1
        with nogil:
            for k in range(m):
                (<RxRingCore>cores[k])._recycle(&recs[k])
        for k in range(m):
            rs = <RxRingState>group[k]
            rc = <RxRingCore>rs._core
            rc.last_bytes = recs[k].nbytes
            total += rs._recycled(&recs[k], rc.count)
    return total


cdef class NicState:
    """What NAPI reads of a VF driver's interface on every poll and interrupt
    (`sriov.drivers.vf.VfNic` derives from this): ``function``, ``clock``, ``rx_ring``,
    ``on_receive``, ``napi``, ``is_up``, ``rx_usecs``, ``_irq_counts`` (interrupts per vector),
    ``_mbx_vector``. Held in C fields so that a poll reads them without a dictionary lookup.
    Twin: ``sriov.golden.napi.NicState``."""

    cdef public object function, clock, rx_ring, on_receive, napi, rx_usecs, _mbx_vector
    cdef public list _irq_counts
    cdef public bint is_up

    def __cinit__(self):
        self._irq_counts = []

    def _msix(self, vector):
        """An MSI-X vector injected by the hypervisor: counted; the mailbox vector goes to
        ``_msix_other`` (``ixgbevf_msix_other``), a queue vector schedules NAPI
        (``ixgbevf_msix_clean_rings``: NAPI re-enables the vector when its cycle completes)."""
        self.msix_c(vector)

    # cdef, not cpdef: the engine calls it for every interrupt, and a cpdef method of a class that
    # Python subclasses looks itself up on the instance at each call (a bound method each time)
    cdef int msix_c(self, object vector) except -1:
        counts = self._irq_counts
        if not 0 <= vector < len(counts):
            return 0
        counts[vector] += 1
        if vector == self._mbx_vector:
            _bump_epoch()
            self._msix_other(vector)
            return 0
        napi = self.napi
        if isinstance(napi, NapiCore):
            (<NapiCore>napi).interrupt_c(vector)
        else:
            _bump_epoch()
            napi.interrupt(vector)
        return 0


def sink(batch):
    """The guest stack that drops what it receives (``nic.on_receive = sink``): NAPI's polls take
    the frames and give their buffers back; no Python call is made for it."""


cdef object _SINK = sink  # (a C global: compared on every poll)


cdef uint32_t _NAPI_VTEICR_W = _R.VTEICR // 4
cdef uint32_t _NAPI_VTEIMS_W = _R.VTEIMS // 4
cdef uint32_t _NAPI_VTEITR0_W = _R.VTEITR(0) // 4
cdef int _ITR_100K = 40, _ITR_20K = 200, _ITR_12K = 336  # sriov.drivers.coalesce's (a test holds them equal)
cdef uint32_t _NAPI_MAX_EITR = _R.MAX_EITR


cdef inline int _latency_range(int itr, int latency_range, int64_t nbytes, int64_t packets) noexcept:
    """``ixgbevf_update_itr`` for one ring (twin: ``sriov.drivers.coalesce.update_latency_range``)."""
    cdef int64_t timepassed_us = itr >> 2, bytes_per_us
    if packets == 0 or timepassed_us == 0:
        return latency_range
    bytes_per_us = nbytes // timepassed_us
    if latency_range == 0:
        return 1 if bytes_per_us > 10 else 0
    if latency_range == 1:
        if bytes_per_us > 20:
            return 2
        return 0 if bytes_per_us <= 10 else 1
    if latency_range == 2:
        return 1 if bytes_per_us <= 20 else 2
    return latency_range


cdef class NapiCore:
    """NAPI's per-poll state and work (`sriov.drivers.napi.Napi` derives from this).

    ``config`` (a `NapiConfig`: budget, guest costs); ``nic``; ``scheduled``; ``trace``;
    ``_took``: frames the last poll took; ``_polls``, ``_stack_packets``, ``_stack_bytes``,
    ``_completes``: counters; ``_cycle_packets``/``_cycle_bytes``: since the last ITR update;
    ``itr``, ``rx_range``, ``tx_range``: the adaptive ITR state. A poll's end is an engine event
    (cancelled by `_cancel_end`). Twin: ``sriov.golden.napi.NapiCore``.
    """

    cdef public object trace
    cdef object _nic
    cdef NicState _ns  # the nic when it is a NicState (its fields read directly), else None
    cdef object _msix_obj, _vectors, _regs_obj  # the function's vectors and register words
    cdef uint32_t* _words
    cdef public bint enabled, scheduled
    cdef public Py_ssize_t vector, _took
    cdef public int64_t _polls, _stack_packets, _stack_bytes, _cycle_packets, _cycle_bytes, _completes
    cdef public int64_t adaptive_usecs  # the rx-usecs value that means adaptive ITR (set by the subclass)
    cdef public int itr, rx_range, tx_range
    cdef public int64_t _end_gen
    cdef public bint _end_pending
    cdef object _config
    cdef Py_ssize_t _budget
    cdef int64_t _overhead, _per_frame

    def __cinit__(self):
        self.enabled = True
        self.itr = _ITR_20K

    @property
    def nic(self):
        """The driver's interface (a `NicState`, or any object with the same attributes)."""
        return self._nic

    @nic.setter
    def nic(self, value):
        self._nic = value
        self._ns = <NicState>value if isinstance(value, NicState) else None

    @property
    def config(self):
        """The `NapiConfig` (budget, guest costs) the next poll uses."""
        return self._config

    @config.setter
    def config(self, value):
        if value is not None:
            self._budget = value.budget
            self._overhead = value.poll_overhead_ns
            self._per_frame = value.per_frame_ns
        self._config = value

    def interrupt(self, Py_ssize_t vector):
        """The queue vector's handler (``ixgbevf_msix_clean_rings``): schedule a poll cycle."""
        self.interrupt_c(vector)

    cdef int interrupt_c(self, Py_ssize_t vector) except -1:
        nic = self._nic
        ns = self._ns
        clock = _nic_clock(nic, ns)
        if self.trace is not None:
            self.trace.interrupt(clock.now)
        if not self.enabled or self.scheduled or not _nic_up(nic, ns):
            return 0
        ring = _nic_ring(nic, ns)
        if ring is None:
            return 0
        self.vector = vector
        self.scheduled = True
        self._poll_ring(nic, ring, <SimClock?>clock)  # the softirq runs as the hard interrupt returns
        return 0

    cpdef _cancel_end(self):
        """Forget the pending poll end (the ring was reset or stopped)."""
        self._end_gen += 1
        self._end_pending = False

    cdef _poll_ring(self, nic, ring, SimClock clock):
        """One poll at the clock's time: take up to ``budget`` frames, put the poll's end on the
        clock, hand the frames to the stack."""
        cdef Py_ssize_t took
        cdef uint64_t nbytes
        callback = self._ns.on_receive if self._ns is not None else nic.on_receive
        batch = None
        if isinstance(ring, RxRingState):
            if callback is _SINK and (<RxRingState>ring).running and self._budget:
                (<RxRingState>ring)._take(self._budget)  # a stack that drops: no views needed
            else:
                batch = (<RxRingState>ring)._poll(self._budget)
            took = (<RxRingState>ring).last_frames
            nbytes = (<RxRingState>ring).last_bytes
        else:
            batch = ring.poll(self._budget)
            took = ring.last_frames
            nbytes = ring.last_bytes
        self._polls += 1
        # The poll's end is on the clock before the stack sees anything: a stack callback that
        # raises cannot leave NAPI scheduled forever.
        self._took = took
        self._end_gen += 1
        self._end_pending = True
        clock._dpush(clock._now + self._overhead + took * self._per_frame, _EV_POLL_END, self, self._end_gen)
        if took:
            self._stack_packets += took
            self._stack_bytes += nbytes
            self._cycle_packets += took
            self._cycle_bytes += nbytes
            if self.trace is not None:
                self._record_taken(clock._now + self._overhead, took)  # the poll took no clock time yet
            if callback is _SINK:
                return
            _bump_epoch()
            if callback is not None:  # the guest stack's hand-off
                callback(batch)
            else:
                self._to_stack(batch)

    cdef int _end(self) except -1:
        """A poll's end (an engine event): poll again if it used the whole budget, else complete."""
        self._end_pending = False
        nic = self._nic
        ns = self._ns
        ring = _nic_ring(nic, ns)
        if ring is None or not _nic_up(nic, ns):
            self.scheduled = False
            return 0
        if self._took < self._budget:
            self._complete_c(ring)
            return 0
        self._poll_ring(nic, ring, <SimClock?>_nic_clock(nic, ns))  # budget used up: the vector stays masked
        return 0

    cdef _bind_vectors(self, fn):
        """The function's engine vectors and register words (once: a driver keeps its function)."""
        cdef uint32_t[::1] mv
        if self._msix_obj is not None:
            return
        msix = fn.msix
        mv = msix.regs
        self._words = &mv[0]
        self._regs_obj = msix.regs
        self._vectors = msix.vectors
        self._msix_obj = msix

    cdef int _complete_c(self, ring) except -1:
        # The cycle's last poll took less than the budget: refill (the poll's buffers go back to the
        # device, one tail write), napi_complete_done, adaptive ITR (rx-usecs adaptive_usecs),
        # ixgbevf_irq_enable_queues (VTEIMS = the vector's bit).
        cdef Vector vec
        cdef uint32_t bit = 1u << self.vector
        nic = self._nic
        ns = self._ns
        if isinstance(ring, RxRingState):
            (<RxRingState>ring)._release()
        else:
            ring.release()
        self.scheduled = False
        self._completes += 1
        fn = ns.function if ns is not None else nic.function
        self._bind_vectors(fn)
        if (ns.rx_usecs if ns is not None else nic.rx_usecs) == self.adaptive_usecs:
            self._update_itr_c()
        # VTEIMS = bit: the register write's effect (VfInterrupts.write), without the trip through it
        self._words[_NAPI_VTEIMS_W] |= bit
        vec = <Vector>self._vectors[self.vector]
        if self._words[_NAPI_VTEICR_W] & bit:
            vec.pending = True
        vec.unmask()
        return 0

    def _update_itr(self):
        """``ixgbevf_set_itr`` from what this vector's ring moved since the last update (the rule
        of ``sriov.drivers.coalesce.adaptive_itr``, RX only); VTEITR written when the ITR changes."""
        self._update_itr_c()

    cdef int _update_itr_c(self) except -1:
        cdef int rx = _latency_range(self.itr, self.rx_range, self._cycle_bytes, self._cycle_packets)
        cdef int tx = _latency_range(self.itr, self.tx_range, 0, 0)
        cdef int worst = rx if rx > tx else tx
        cdef int target = _ITR_100K if worst == 0 else (_ITR_20K if worst == 1 else _ITR_12K)
        cdef int itr = self.itr
        cdef uint32_t value
        self._bind_vectors(self._ns.function if self._ns is not None else self._nic.function)
        if target != itr:
            itr = (10 * target * itr) // (9 * target + itr)  # exponential smoothing, as the driver does
        self._cycle_bytes = 0
        self._cycle_packets = 0
        self.rx_range = rx
        self.tx_range = tx
        if itr != self.itr:  # coalesce.write_eitr for a VF vector (this one is valid)
            self.itr = itr
            value = (itr & _NAPI_MAX_EITR) | _EITR_CNT_WDIS
            self._words[_NAPI_VTEITR0_W + self.vector] = value & ~_EITR_CNT_WDIS
            (<Vector>self._vectors[self.vector]).write_eitr(value)
        return 0

    # the subclass's part
    def _record_taken(self, start, took):  # pragma: no cover - Napi defines it
        raise NotImplementedError

    def _to_stack(self, batch):  # pragma: no cover - Napi defines it
        raise NotImplementedError


# The nic's fields NAPI reads: straight from the C struct when the nic is a NicState.
cdef inline object _nic_ring(object nic, NicState ns):
    return ns.rx_ring if ns is not None else nic.rx_ring


cdef inline bint _nic_up(object nic, NicState ns) except -1:
    return ns.is_up if ns is not None else bool(nic.is_up)


cdef inline object _nic_clock(object nic, NicState ns):
    return ns.clock if ns is not None else nic.clock

