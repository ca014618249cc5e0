# The receive poll and NAPI's poll cycle (twins: sriov/golden/napi.py, which reads as the spec).
# RxRingState is the base of sriov.drivers.rings.RxRing and NapiCore the base of
# sriov.drivers.napi.Napi: the state a poll touches lives in C fields, so one poll (ring refill +
# scan, counters, the end event on the compiled clock, the hand-off to the stack) costs one
# Python call: the stack's callback. The ring work is RxRingCore's (its cdef internals, one GIL
# release per poll); everything rare (an unbound tail, the frame that wraps round the ring, new
# views, completion, traces, the backlog) goes back to the subclass's Python methods.


cdef uint32_t _NAPI_VTEIMS = _R.VTEIMS
cdef uint32_t _NAPI_VTEITR0 = _R.VTEITR(0)
if any(_R.VTEITR(v) != _NAPI_VTEITR0 + 4 * v for v in range(_R.VF_MSIX_VECTORS)):
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
        cdef RxRingCore rc
        cdef Py_ssize_t ntu = self._ntu, ntc = self._ntc, count, stop, frames, used = 0, wrap = -1
        cdef uint64_t nbytes = 0
        cdef bint unwritten = False
        cdef tuple views
        if budget == 0 or not self.running:
            self.last_frames = 0
            return self._poll_idle()
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
        if frames != self._view_frames:  # NAPI polls take the same number most of the time
            cached = self._view_cache.get(frames)
            if cached is None:
                self._make_views(frames)
            else:
                self._views = cached
                self._view_frames = frames
        views = self._views
        self.last_vlan = views[1]
        self.frames += frames
        self.last_frames = frames
        return views[0]


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
    ``_mbx_vector``. Held in C fields so that a poll reads them without a dictionary lookup
    (four per poll, ~100 ns, were a third of a poll's own cost). Twin:
    ``sriov.golden.napi.NicState``."""

    cdef public object function, clock, rx_ring, on_receive, napi, rx_usecs, _mbx_vector
    cdef public list _irq_counts
    cdef public bint is_up

    def __cinit__(self):
        self._irq_counts = []

    def _msix(self, vector):
        """An MSI-X vector injected by the hypervisor: counted; the mailbox vector goes to
        ``_msix_other`` (``ixgbevf_msix_other``), a queue vector schedules NAPI
        (``ixgbevf_msix_clean_rings``: NAPI re-enables the vector when its cycle completes)."""
        counts = self._irq_counts
        if not 0 <= vector < len(counts):
            return
        counts[vector] += 1
        if vector == self._mbx_vector:
            self._msix_other(vector)
            return
        napi = self.napi
        if isinstance(napi, NapiCore):
            (<NapiCore>napi).interrupt(vector)
        else:
            napi.interrupt(vector)


# The nic's fields NAPI reads: straight from the C struct when the nic is a NicState.
cdef inline object _nic_ring(object nic, NicState ns):
    return ns.rx_ring if ns is not None else nic.rx_ring


cdef inline bint _nic_up(object nic, NicState ns) except -1:
    return ns.is_up if ns is not None else bool(nic.is_up)


cdef inline object _nic_clock(object nic, NicState ns):
    return ns.clock if ns is not None else nic.clock


cdef class NapiCore:
    """NAPI's per-poll state and work (`sriov.drivers.napi.Napi` derives from this).

    ``config`` (a `NapiConfig`: budget, guest costs); ``nic``; ``scheduled``; ``chain``: run a
    poll whose end is the clock's next event inline (`SimClock.take`); ``trace``; ``_event``:
    the pending poll end; ``_took``: frames that poll took; ``_polls``, ``_stack_packets``,
    ``_stack_bytes``, ``_completes``: counters; ``_cycle_packets``/``_cycle_bytes``: since the
    last ITR update. Twin: ``sriov.golden.napi.NapiCore``.
    """

    cdef public object trace, _event
    cdef object _nic
    cdef NicState _ns  # the nic when it is a NicState (its fields read directly), else None
    cdef object _vw_owner  # the nic's function's msix object _vw was taken from
    cdef VectorWrites _vw  # its VTEIMS/VTEITR writes (compiled), or None: then function.write32
    cdef public bint enabled, scheduled, chain
    cdef public Py_ssize_t vector, _took
    cdef public int64_t _polls, _stack_packets, _stack_bytes, _cycle_packets, _cycle_bytes, _completes
    cdef public int64_t adaptive_usecs  # the rx-usecs value that means adaptive ITR (set by the subclass)
    cdef public object itr_state  # adaptive ITR: this vector's coalesce.ItrState
    cdef public dict _itr_memo  # (itr, rx_range, tx_range, bytes, packets) -> (next state, VTEITR value)
    # the last two answers of _update_itr by (state object, bytes, packets): the adaptive rule
    # alternates between a few states under a steady load, so this skips the memo's tuple key
    cdef object _last_state0, _last_answer0, _last_state1, _last_answer1
    cdef int64_t _last_bytes0, _last_packets0, _last_bytes1, _last_packets1
    cdef bint _last_slot
    cdef object _config, _end_cb
    cdef Py_ssize_t _budget
    cdef int64_t _overhead, _per_frame

    def __cinit__(self):
        self.enabled = True
        self.chain = True

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

    cpdef interrupt(self, Py_ssize_t vector):
        """The queue vector's handler (``ixgbevf_msix_clean_rings``): schedule a poll cycle."""
        nic = self._nic
        ns = self._ns
        clock = _nic_clock(nic, ns)
        if self.trace is not None:
            self.trace.interrupt(clock.now)
        if not self.enabled or self.scheduled or not _nic_up(nic, ns):
            return
        ring = _nic_ring(nic, ns)
        if ring is None:
            return
        self.vector = vector
        self.scheduled = True
        self._poll_ring(nic, ring, clock)  # the softirq runs as the hard interrupt returns

    cpdef _poll(self):
        """One poll at the clock's time: take up to ``budget`` frames, put the poll's end on the
        clock, hand the frames to the stack."""
        self._event = None
        nic = self._nic
        ns = self._ns
        ring = _nic_ring(nic, ns)
        if ring is None or not _nic_up(nic, ns):
            self.scheduled = False
            return
        self._poll_ring(nic, ring, _nic_clock(nic, ns))

    cdef _poll_ring(self, nic, ring, clock):
        """`_poll` once the caller has read (and checked) the nic's ring and clock."""
        cdef Py_ssize_t took
        cdef uint64_t nbytes
        cdef int64_t delay
        self._event = None
        if isinstance(ring, RxRingState):
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
        delay = self._overhead + took * self._per_frame
        if self._end_cb is None:
            self._end_cb = self._end
        if type(clock) is SimClock:
            self._event = (<SimClock>clock)._new(delay, self._end_cb)
        else:
            self._event = clock.schedule(delay, self._end_cb)
        if took:
            self._stack_packets += took
            self._stack_bytes += nbytes
            self._cycle_packets += took
            self._cycle_bytes += nbytes
            if self.trace is not None:
                self._record_taken(clock.now + self._overhead, took)  # the poll took no clock time yet
            callback = self._ns.on_receive if self._ns is not None else nic.on_receive  # nic is self._nic
            if callback is not None:  # the guest stack's hand-off (the common case, inline)
                callback(batch)
            else:
                self._to_stack(batch)

    def _end(self):
        """A poll's end (a clock event): poll again if it used the whole budget, else complete.

        The chain: when the next poll's end is the event the clock would run next anyway
        (`SimClock.take`), it runs here at once instead of through the queue, and so on; the
        history is the one of an event per poll. Each step re-reads the state the stack callback
        may have changed (nic down, config, callback, ``chain``)."""
        clock = _nic_clock(self._nic, self._ns)
        while True:
            self._event = None
            nic = self._nic
            ns = self._ns
            ring = _nic_ring(nic, ns)
            if ring is None or not _nic_up(nic, ns):
                self.scheduled = False
                return
            if self._took < self._budget:
                self._complete(ring)
                return
            self._poll_ring(nic, ring, clock)  # budget used up: poll again, the vector stays masked
            event = self._event
            if event is None or not self.chain:
                return
            if type(clock) is SimClock and type(event) is EventHandle:
                if not (<SimClock>clock).take(<EventHandle>event):
                    return
            elif not clock.take(event):
                return

    cpdef _complete(self, ring):
        """The cycle's last poll took less than the budget: refill (the poll's buffers go back to
        the device, one tail write), ``napi_complete_done``, adaptive ITR (rx-usecs
        ``adaptive_usecs``), ``ixgbevf_irq_enable_queues`` (VTEIMS = the vector's bit)."""
        nic = self._nic
        ns = self._ns
        if isinstance(ring, RxRingState):
            (<RxRingState>ring)._release()
        else:
            ring.release()
        self.scheduled = False
        self._completes += 1
        fn = ns.function if ns is not None else nic.function
        writes = self._writes(fn)
        if (ns.rx_usecs if ns is not None else nic.rx_usecs) == self.adaptive_usecs:
            self._update_itr()
        if writes is not None:
            writes.enable(1u << self.vector)
        else:
            fn.write32(_NAPI_VTEIMS, 1 << self.vector)

    cdef VectorWrites _writes(self, fn):
        """The compiled VTEIMS/VTEITR writes of ``fn``'s interrupts, or None. What
        ``fn.write32`` does with those registers (VfFunction.write32 -> VfInterrupts.write ->
        its `VectorWrites`) without the trip through Python."""
        msix = getattr(fn, "msix", None)
        if msix is not self._vw_owner:
            self._vw_owner = msix
            vw = getattr(msix, "vector_writes", None)
            self._vw = <VectorWrites>vw if type(vw) is VectorWrites else None
        return self._vw

    cpdef _update_itr(self):
        """``ixgbevf_set_itr`` from what this vector's ring moved since the last update: the next
        adaptive state (``_itr_answer``, remembered in ``_itr_memo``: the rule is a pure function
        of the state and the load); VTEITR written when the ITR changes."""
        cdef int64_t nbytes = self._cycle_bytes, packets = self._cycle_packets
        state = self.itr_state
        # the same state object and load as one of the last two updates (the objects are held,
        # so their identity stays theirs)
        if self._last_state0 is state and self._last_bytes0 == nbytes and self._last_packets0 == packets:
            answer = self._last_answer0
        elif self._last_state1 is state and self._last_bytes1 == nbytes and self._last_packets1 == packets:
            answer = self._last_answer1
        else:
            key = (state.itr, state.rx_range, state.tx_range, nbytes, packets)
            answer = self._itr_memo.get(key)
            if answer is None:
                answer = self._itr_answer(key)
            if self._last_slot:
                self._last_state1, self._last_answer1 = state, answer
                self._last_bytes1, self._last_packets1 = nbytes, packets
            else:
                self._last_state0, self._last_answer0 = state, answer
                self._last_bytes0, self._last_packets0 = nbytes, packets
            self._last_slot = not self._last_slot
        new, eitr = answer
        self._cycle_bytes = 0
        self._cycle_packets = 0
        if new.itr != state.itr:  # coalesce.write_eitr for a VF vector (this one is valid)
            fn = self._ns.function if self._ns is not None else self._nic.function
            writes = self._writes(fn)
            if writes is not None:
                writes.eitr(self.vector, eitr)
            else:
                fn.write32(_NAPI_VTEITR0 + 4 * self.vector, eitr)
        self.itr_state = new


# -- the receive hook's queue list ------------------------------------------------------------------
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES

cdef object _WQ_U32 = _np.dtype(_np.uint32)
cdef object _WQ_I64 = _np.dtype(_np.int64)


def written_queues(counts, Py_ssize_t limit):
    """The queues ``q`` with ``counts[q] != 0`` (ascending) when ``counts`` is a 1-D C-contiguous
    numpy array of dtype uint32 or int64 (native order) with at most ``limit`` entries and no
    negative count; None for anything else (the caller then checks it the long way). What
    `Device82599.rx_queue_written` asks first, once per burst. Twin:
    ``sriov.golden.napi.written_queues``."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n
    cdef const uint32_t* u
    cdef const int64_t* s
    cdef list out
    if type(counts) is not _np.ndarray:
        return None
    dtype = counts.dtype
    if dtype is not _WQ_U32 and dtype is not _WQ_I64:
        return None
    PyObject_GetBuffer(counts, &view, PyBUF_STRIDES)
    try:
        if view.ndim != 1 or view.shape[0] > limit or (view.shape[0] > 1 and view.strides[0] != view.itemsize):
            return None
        n = view.shape[0]
        out = []
        if dtype is _WQ_U32:
            u = <const uint32_t*>view.buf
            for i in range(n):
                if u[i]:
                    out.append(i)
        else:
            s = <const int64_t*>view.buf
            for i in range(n):
                if s[i] < 0:
                    return None
                if s[i]:
                    out.append(i)
        return out
    finally:
        PyBuffer_Release(&view)


# -- a VF queue vector firing -----------------------------------------------------------------------
@cython.final
cdef class VfFire:
    """What VF vector ``vector`` does when its moderator fires it (``VfInterrupts._fired``): VTEIAC
    auto-clears its cause bit in VTEICR, VTEIAM auto-masks it in VTEIMS (``words``: the VF's
    register words; ``w_*``: their word indices), and the function sends the MSI-X message as
    ``PciFunction.signal_msix`` does: not while one of the vector is in flight, only to a routed
    handler, delivered ``fn.irq_latency_ns`` later on the device's clock. Once per interrupt: one
    call instead of three Python ones. Twin: ``sriov.golden.napi.VfFire``."""

    cdef uint32_t[::1] words
    cdef Py_ssize_t w_icr, w_ims, w_iac, w_iam
    cdef uint32_t bit
    cdef object vector, fn, clock
    cdef set pending
    cdef dict handlers, delivers

    def __init__(self, uint32_t[::1] words not None, Py_ssize_t vector, fn, Py_ssize_t w_icr,
                 Py_ssize_t w_ims, Py_ssize_t w_iac, Py_ssize_t w_iam):
        cdef Py_ssize_t n = words.shape[0]
        if not (0 <= vector < 32) or not all(0 <= w < n for w in (w_icr, w_ims, w_iac, w_iam)):
            raise _ConfigError(f"vector {vector} / register words outside the {n}-word registers")
        self.words = words
        self.w_icr, self.w_ims, self.w_iac, self.w_iam = w_icr, w_ims, w_iac, w_iam
        self.bit = 1u << vector
        self.vector = vector
        self.fn = fn
        self.clock = fn.device.clock
        # the function's MSI-X state: the containers live as long as the function (made once)
        self.pending = fn._msix_pending
        self.handlers = fn._msix_handlers
        self.delivers = fn._msix_deliver

    def __call__(self):
        self.fire()

    cdef fire(self):
        cdef uint32_t[::1] w = self.words
        cdef uint32_t bit = self.bit
        if w[self.w_iac] & bit:
            w[self.w_icr] &= ~bit
        if w[self.w_iam] & bit:
            w[self.w_ims] &= ~bit
        v = self.vector
        if v in self.pending or v not in self.handlers:
            return
        self.pending.add(v)
        deliver = self.delivers.get(v)
        if deliver is None:
            deliver = self.fn._msix_deliver_for(v)
        clock = self.clock
        if type(clock) is SimClock:
            (<SimClock>clock)._new(self.fn.irq_latency_ns, deliver)
        else:
            clock.schedule(self.fn.irq_latency_ns, deliver)


@cython.final
cdef class MsixDeliver:
    """The clock event that delivers MSI-X ``vector`` of function ``fn`` (``PciFunction``): the
    vector is no longer in flight, ``fn.msix_delivered`` counts it, its handler (if one is still
    routed) runs. One per vector, made once (``fn._msix_deliver_for``). Twin:
    ``sriov.golden.napi.MsixDeliver``."""

    cdef object vector
    cdef set pending
    cdef dict handlers, delivered

    def __init__(self, fn, Py_ssize_t vector):
        self.vector = vector
        # the function's MSI-X containers live as long as the function (made once)
        self.pending = fn._msix_pending
        self.handlers = fn._msix_handlers
        self.delivered = fn.msix_delivered

    def __call__(self):
        v = self.vector
        self.pending.discard(v)
        self.delivered[v] = self.delivered.get(v, 0) + 1
        target = self.handlers.get(v)
        if target is not None:
            target(v)


@cython.final
cdef class Inject:
    """A VF's MSI-X vector routed into its VM (``Vm._inject_as``): the hypervisor counts the
    injection under ``key`` in ``injected`` and runs the guest driver's handler
    (``nic._msix(vector)``). Twin: ``sriov.golden.napi.Inject``."""

    cdef dict injected
    cdef object key, nic

    def __init__(self, dict injected not None, key, nic):
        self.injected = injected
        self.key = key
        self.nic = nic

    def __call__(self, vector):
        self.injected[self.key] = self.injected.get(self.key, 0) + 1
        self.nic._msix(vector)
