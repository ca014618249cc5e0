# A queue vector's moderator (sriov.hw.interrupts.QueueVector), compiled: every receive completion
# hook, every interrupt and every NAPI re-enable goes through it. Twin: sriov/golden/irq.py, which
# reads as the spec with sriov.hw.eitr.VectorModerator (EITR rules, spec §5.10) and the armed
# tables of sriov.hw.armed. State in C fields (public: the device, the host and tests read them);
# the firing goes straight to a VfFire (compiled) and the timers to the compiled clock.

cdef int64_t _QV_NEVER = -(1 << 62)
cdef int64_t _QV_HELD = 0x7FFFFFFFFFFFFFFF


cdef class QueueVector:
    """A queue vector's moderator that tells the datapath when more completions change nothing.

    The EITR rules of `sriov.hw.eitr.VectorModerator`: a cause raised on an unmasked vector whose
    last interrupt is at least one interval old fires at once, otherwise when the interval
    expires; on a masked vector it is latched until unmasked; firing clears the pending cause,
    auto-masks (``auto_mask``) and calls ``send``. Raising a receive cause is a no-op while the
    vector already holds it (masked, or a timer running): the device's hook records such queues
    in ``armed_table[q]`` (``ARMED_HELD`` or the timer's due time) so the receive kernel can skip
    the hook; every other change of state disarms them first. Twin: ``sriov.golden.irq``.
    """

    NEVER = _QV_NEVER

    cdef public object clock, send, _timer, armed_table, tx_armed_table
    cdef public list armed, armed_tx
    cdef public int64_t interval_ns, last_fire, fired
    cdef public bint masked, pending, auto_mask

    def __init__(self, clock, send, armed, tx_armed=None):
        self.clock = clock
        self.send = send
        self.interval_ns = 0
        self.masked = False
        self.pending = False
        self.auto_mask = True  # EIAM: the device follows the register, the timeline model always masks
        self.last_fire = _QV_NEVER
        self.fired = 0
        self._timer = None
        self.armed_table = armed
        self.armed = []  # PF queues whose rx_armed entry this vector's state justified
        # the same for transmit completions (the device's ``tx_armed``; the TX engine's hook skip)
        if tx_armed is None:
            tx_armed = _np.zeros(_R.MAX_QUEUES + 2, _np.int64)
            tx_armed[_R.MAX_QUEUES] = -1
        self.tx_armed_table = tx_armed
        self.armed_tx = []

    cdef inline int64_t _now(self) except? -1:
        clock = self.clock
        if type(clock) is SimClock:
            return (<SimClock>clock)._now
        return clock.now

    # -- the armed tables -------------------------------------------------------------------------
    cpdef disarm(self):
        """Forget the armed entries this vector justified (its state is about to change)."""
        if self.armed:
            table = self.armed_table
            for q in self.armed:
                table[q] = 0
            self.armed.clear()
        if self.armed_tx:
            table = self.tx_armed_table
            for q in self.armed_tx:
                table[q] = 0
            self.armed_tx.clear()

    cpdef arm(self, queue, bint tx=False):
        """After raising ``queue``'s cause (``tx``: its transmit cause): mark it armed if a further
        raise would change nothing."""
        cdef int64_t until
        if not self.pending:
            return
        if self.masked:
            until = _QV_HELD
        elif self._timer is not None:
            until = self._timer.time
        else:
            return
        if tx:
            self.tx_armed_table[queue] = until
            self.armed_tx.append(queue)
        else:
            self.armed_table[queue] = until
            self.armed.append(queue)

    # -- register-driven changes ------------------------------------------------------------------
    cpdef reset(self):
        """Reset values: masked, nothing pending, no interval, counter expired. ``fired`` is kept."""
        if self.armed or self.armed_tx:
            self.disarm()
        self._cancel_timer()
        self.masked = True
        self.pending = False
        self.auto_mask = False
        self.interval_ns = 0
        self.last_fire = _QV_NEVER

    cpdef reprogram(self, int64_t interval_ns, bint reset_counter):
        """An EITR write: new interval now; without CNT_WDIS the interval counter restarts expired.
        A cause waiting for the old interval is re-decided against the new one."""
        if self.armed or self.armed_tx:
            self.disarm()
        if interval_ns < 0:
            raise _ConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns
        if reset_counter:
            self.last_fire = _QV_NEVER
        self._cancel_timer()
        if self.pending and not self.masked:
            self._try_fire()

    cpdef clear_cause(self):
        """The cause was cleared (EICR read or write-1-to-clear) before the vector fired."""
        if self.armed or self.armed_tx:
            self.disarm()
        self.pending = False
        self._cancel_timer()

    cpdef set_interval_ns(self, int64_t interval_ns):
        """A new EITR interval (takes effect from the next decision)."""
        if self.armed or self.armed_tx:
            self.disarm()
        if interval_ns < 0:
            raise _ConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns

    cpdef raise_cause(self):
        """A cause of this vector becomes set (a receive completion, a mailbox message)."""
        self.pending = True
        if not self.masked:
            self._try_fire()

    cpdef mask(self):
        """EIMC: the vector may not fire; causes are latched."""
        if self.armed or self.armed_tx:
            self.disarm()
        self.masked = True
        self._cancel_timer()

    cpdef unmask(self):
        """EIMS: the vector may fire again; a latched cause fires (subject to the interval)."""
        if self.armed or self.armed_tx:
            self.disarm()
        self.masked = False
        if self.pending:
            self._try_fire()

    cpdef raise_rx(self, queue):
        """`raise_cause` then `arm` for receive queue ``queue``, in one call (the datapath hook's
        path: once per queue and burst)."""
        cdef int64_t now, due, until
        self.pending = True
        if self.masked:
            until = _QV_HELD
        else:
            now = self._now()
            due = self.last_fire + self.interval_ns
            if now >= due:
                self._fire()
                if not self.pending:  # the usual case: fired, nothing left to hold
                    return
                self.arm(queue)
                return
            timer = self._timer
            if timer is None:
                timer = self._timer = self._schedule(due - now)
            until = timer.time
        self.armed_table[queue] = until
        self.armed.append(queue)

    # -- the state machine --------------------------------------------------------------------------
    cdef object _schedule(self, int64_t delay):
        clock = self.clock
        if type(clock) is SimClock:
            return (<SimClock>clock)._new(delay, self._expire)
        return clock.schedule(delay, self._expire)

    cpdef _try_fire(self):
        cdef int64_t due = self.last_fire + self.interval_ns, now = self._now()
        if now >= due:
            self._fire()
        elif self._timer is None:
            self._timer = self._schedule(due - now)

    def _expire(self):
        if self.armed or self.armed_tx:
            self.disarm()
        self._timer = None
        if self.pending and not self.masked:
            self._fire()

    cdef _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    cpdef _fire(self):
        if self.armed or self.armed_tx:
            self.disarm()
        self._cancel_timer()
        self.pending = False
        self.masked = self.auto_mask  # auto-mask (EIAM) until the driver's NAPI poll re-enables it
        self.last_fire = self._now()
        self.fired += 1
        send = self.send
        if type(send) is VfFire:
            (<VfFire>send).fire()
        else:
            send()


cdef uint32_t _VW_ITR_MASK = _R.EITR_ITR_INT_MASK
cdef uint32_t _VW_CNT_WDIS = _R.EITR_CNT_WDIS
cdef int64_t _VW_UNIT_NS = 2048  # sriov.hw.eitr.EITR_UNIT_NS (checked at import below)
cdef int _VW_SHIFT = 3  # sriov.hw.eitr.EITR_FIELD_SHIFT


@cython.final
cdef class VectorWrites:
    """The two VF vector register writes NAPI makes after its poll cycles, in one call each
    (``VfInterrupts.write`` uses them too):

    - ``enable(bits)``: VTEIMS. The bits (within ``mask``) set in VTEIMS; each vector they name
      latches its cause from VTEICR (a cause raised while masked fires on unmask) and is unmasked.
    - ``eitr(v, value)``: VTEITR(v). Stored without the write-only CNT_WDIS bit; the vector's
      moderator gets the interval (ITR field x 2.048 us), its counter reset unless CNT_WDIS.

    ``words``: the VF's register words; ``w_ims``/``w_icr``/``w_itr0``: word indices of VTEIMS,
    VTEICR, VTEITR(0) (VTEITR(v) is the v-th word after it); ``vectors``: the moderators
    (`QueueVector`, or any object with ``pending``, ``unmask`` and ``reprogram``).
    Twin: ``sriov.golden.irq.VectorWrites``."""

    cdef uint32_t[::1] words
    cdef Py_ssize_t w_ims, w_icr, w_itr0
    cdef uint32_t mask
    cdef list vectors

    def __init__(self, uint32_t[::1] words not None, Py_ssize_t w_ims, Py_ssize_t w_icr,
                 Py_ssize_t w_itr0, uint32_t mask, list vectors not None):
        cdef Py_ssize_t n = words.shape[0]
        if not (0 <= w_ims < n and 0 <= w_icr < n and 0 <= w_itr0 and w_itr0 + len(vectors) <= n):
            raise _ConfigError(f"register words {w_ims}/{w_icr}/{w_itr0} outside the {n}-word registers")
        if len(vectors) < 32 and mask >> len(vectors):
            raise _ConfigError(f"mask {mask:#x} names vectors beyond the {len(vectors)} given")
        self.words = words
        self.w_ims, self.w_icr, self.w_itr0 = w_ims, w_icr, w_itr0
        self.mask = mask
        self.vectors = vectors

    def __call__(self, uint32_t bits):
        """`enable` (a VTEIMS write of ``bits``)."""
        self.enable(bits)

    cpdef eitr(self, Py_ssize_t v, uint32_t value):
        """A VTEITR(``v``) write of ``value``."""
        cdef int64_t interval
        if not 0 <= v < len(self.vectors):
            raise _ConfigError(f"vector {v} outside the {len(self.vectors)} vectors")
        self.words[self.w_itr0 + v] = value & ~_VW_CNT_WDIS
        interval = <int64_t>((value & _VW_ITR_MASK) >> _VW_SHIFT) * _VW_UNIT_NS
        m = self.vectors[v]
        if type(m) is QueueVector:
            (<QueueVector>m).reprogram(interval, not value & _VW_CNT_WDIS)
        else:
            m.reprogram(interval, not value & _VW_CNT_WDIS)

    cpdef enable(self, uint32_t bits):
        """A VTEIMS write of ``bits``."""
        cdef uint32_t[::1] w = self.words
        cdef uint32_t pending
        cdef Py_ssize_t v = 0
        cdef QueueVector qv
        bits &= self.mask
        w[self.w_ims] |= bits
        pending = w[self.w_icr]
        while bits:
            if bits & 1:
                m = self.vectors[v]
                if type(m) is QueueVector:
                    qv = <QueueVector>m
                    qv.pending = qv.pending or (pending >> v) & 1
                    qv.unmask()
                else:
                    m.pending = m.pending or bool(pending >> v & 1)
                    m.unmask()
            bits >>= 1
            v += 1


from sriov.hw import eitr as _eitr_mod
if (_eitr_mod.EITR_UNIT_NS, _eitr_mod.EITR_FIELD_SHIFT) != (_VW_UNIT_NS, _VW_SHIFT):
    raise ImportError("sriov._fastpath: the EITR unit or field shift changed; update _fp_irq.pxi")


@cython.final
cdef class VfRxRaise:
    """A receive completion on one of a VF's queues (``VfInterrupts.raise_rx``): the cause bit of
    the vector its VTIVAR entry routes the queue to is set in VTEICR and that vector's moderator
    raises it and records PF queue ``pf_queue`` as armed when it now holds the cause; a queue with
    no valid route counts in ``owner.unrouted``. ``words``: the VF's register words; ``w_icr``:
    VTEICR's word; ``route``: VF queue -> vector or -1 (the list the owner keeps decoded from the
    VTIVAR writes; updated in place); ``vectors``: the moderators. Twin:
    ``sriov.golden.irq.VfRxRaise``."""

    cdef uint32_t[::1] words
    cdef Py_ssize_t w_icr
    cdef list route, vectors
    cdef object owner

    def __init__(self, uint32_t[::1] words not None, Py_ssize_t w_icr, list route not None,
                 list vectors not None, owner):
        if not 0 <= w_icr < words.shape[0]:
            raise _ConfigError(f"register word {w_icr} outside the {words.shape[0]}-word registers")
        self.words = words
        self.w_icr = w_icr
        self.route = route
        self.vectors = vectors
        self.owner = owner

    def __call__(self, Py_ssize_t vf_queue, pf_queue):
        self.raise_rx(vf_queue, pf_queue)

    cdef raise_rx(self, Py_ssize_t vf_queue, pf_queue):
        cdef Py_ssize_t v = self.route[vf_queue]
        if v < 0 or v >= len(self.vectors):
            self.owner.unrouted += 1
            return
        self.words[self.w_icr] |= 1u << v
        m = self.vectors[v]
        if type(m) is QueueVector:
            (<QueueVector>m).raise_rx(pf_queue)
        else:
            m.raise_rx(pf_queue)


def raise_rx_queues(list queues not None, Py_ssize_t qpp, list raisers not None, pf_raise_rx):
    """The receive hook's per-queue work (``Device82599._raise_rx`` for receive completions): PF
    queue ``q`` belongs to pool ``q // qpp``; a VF's pool raises through that VF's `VfRxRaise`
    (``raisers[pool]``: VF queue ``q - pool * qpp``), any other queue through ``pf_raise_rx(q)``.
    Twin: ``sriov.golden.irq.raise_rx_queues``."""
    cdef Py_ssize_t nvfs = len(raisers), q, pool
    if qpp < 1:
        raise _ConfigError(f"queues per pool must be >= 1, got {qpp}")
    for item in queues:
        q = item
        pool = q // qpp
        if 0 <= pool < nvfs:
            r = raisers[pool]
            if type(r) is VfRxRaise:
                (<VfRxRaise>r).raise_rx(q - pool * qpp, item)
            else:
                r(q - pool * qpp, item)
        else:
            pf_raise_rx(item)
