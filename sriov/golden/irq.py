"""A queue vector's moderator in plain Python: the twin of ``QueueVector`` in ``sriov/_fp_irq.pxi``.

`sriov.hw.interrupts` uses the compiled one (this one with ``SRIOV_NO_EXTENSIONS=1``). Its rules
are `sriov.hw.eitr.VectorModerator`'s (spec §5.10) plus the armed tables (`sriov.hw.armed`).
"""

from __future__ import annotations

import numpy as np

from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.hw.armed import ARMED_HELD, new_armed_table
from sriov.hw.eitr import VectorModerator, interval_ns_from_eitr

U32 = 0xFFFFFFFF


class QueueVector(VectorModerator):
    """A queue vector's moderator that tells the datapath when more completions change nothing.

    Raising a receive cause is a no-op while the vector already has it: the cause bit is set
    and the moderator's cause is pending, and either the vector is masked (the cause is latched
    until the driver unmasks it) or an interval timer is running that is not yet due. The
    device's hook records such queues in ``rx_armed[q]`` (`ARMED_HELD`, or the timer's due
    time: armed while the clock is before it) and the receive kernel then skips the hook when
    every queue a burst wrote to is armed, the hardware's "EICR is already set". Every change of
    this moderator's state other than raising its cause disarms its queues first, so a stale
    entry can only cost one unneeded hook call, never a missed interrupt.
    """

    def __init__(self, clock, send, armed: np.ndarray, tx_armed: np.ndarray | None = None) -> None:
        super().__init__(clock, send)
        self.armed_table = armed
        self.armed: list[int] = []  # PF queues whose rx_armed entry this vector's state justified
        # the same for transmit completions (the device's ``tx_armed``; the TX engine's hook skip)
        self.tx_armed_table = tx_armed if tx_armed is not None else new_armed_table()
        self.armed_tx: list[int] = []

    def disarm(self) -> None:
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

    def arm(self, queue: int, tx: bool = False) -> None:
        """After raising ``queue``'s cause (``tx``: its transmit cause): mark it armed if a further
        raise would change nothing."""
        if not self.pending:
            return
        if self.masked:
            until = ARMED_HELD
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

    def reset(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        super().reset()

    def reprogram(self, interval_ns: int, reset_counter: bool) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        # VectorModerator.reprogram, inline (adaptive ITR writes VTEITR after most poll cycles)
        if interval_ns < 0:
            raise ConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns
        if reset_counter:
            self.last_fire = self.NEVER
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        if self.pending and not self.masked:
            self._try_fire()

    def clear_cause(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        super().clear_cause()

    def set_interval_ns(self, interval_ns: int) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        super().set_interval_ns(interval_ns)

    def mask(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        super().mask()

    def unmask(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        self.masked = False  # VectorModerator.unmask, inline (NAPI's re-enable after every cycle)
        if self.pending:
            self._try_fire()

    def raise_rx(self, queue: int) -> None:
        """`raise_cause` then `arm` for receive queue ``queue``, in one call (the datapath hook's
        path: once per queue and burst)."""
        self.pending = True
        if self.masked:
            until = ARMED_HELD
        else:
            now = self.clock.now
            due = self.last_fire + self.interval_ns
            if now >= due:
                self._fire()
                if not self.pending:  # the usual case: fired, nothing left to hold
                    return
                self.arm(queue)
                return
            timer = self._timer
            if timer is None:
                timer = self._timer = self.clock.schedule(due - now, self._expire)
            until = timer.time
        self.armed_table[queue] = until
        self.armed.append(queue)

    def _expire(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        super()._expire()

    def _fire(self) -> None:
        if self.armed or self.armed_tx:
            self.disarm()
        # VectorModerator._fire, inline: this runs once per interrupt
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        self.pending = False
        self.masked = self.auto_mask  # auto-mask (EIAM) until the driver's NAPI poll re-enables it
        self.last_fire = self.clock.now
        self.fired += 1
        self.send()


class VectorWrites:
    """The two VF vector register writes NAPI makes after its poll cycles (``VfInterrupts.write``
    uses them too): ``enable(bits)`` (VTEIMS: the bits within ``mask`` set; each vector they name
    latches its cause from VTEICR and is unmasked) and ``eitr(v, value)`` (VTEITR(v): stored
    without the write-only CNT_WDIS bit; the moderator gets the interval, its counter reset
    unless CNT_WDIS). ``words``: the VF's register words; ``w_ims``/``w_icr``/``w_itr0``: word
    indices of VTEIMS, VTEICR, VTEITR(0); ``vectors``: the moderators."""

    def __init__(self, words, w_ims: int, w_icr: int, w_itr0: int, mask: int, vectors: list) -> None:
        n = len(words)
        if not (0 <= w_ims < n and 0 <= w_icr < n and w_itr0 >= 0 and w_itr0 + len(vectors) <= n):
            raise ConfigError(f"register words {w_ims}/{w_icr}/{w_itr0} outside the {n}-word registers")
        if len(vectors) < 32 and mask >> len(vectors):
            raise ConfigError(f"mask {mask:#x} names vectors beyond the {len(vectors)} given")
        self.words = words
        self.w_ims, self.w_icr, self.w_itr0 = w_ims, w_icr, w_itr0
        self.mask = mask
        self.vectors = vectors

    def __call__(self, bits: int) -> None:
        """`enable` (a VTEIMS write of ``bits``)."""
        self.enable(bits)

    def enable(self, bits: int) -> None:
        """A VTEIMS write of ``bits``."""
        bits &= self.mask
        words = self.words
        words[self.w_ims] = int(words[self.w_ims]) | bits
        pending = int(words[self.w_icr])
        for v, m in enumerate(self.vectors):
            if bits >> v & 1:
                m.pending = m.pending or bool(pending >> v & 1)  # a latched cause fires on unmask
                m.unmask()

    def eitr(self, v: int, value: int) -> None:
        """A VTEITR(``v``) write of ``value``."""
        if not 0 <= v < len(self.vectors):
            raise ConfigError(f"vector {v} outside the {len(self.vectors)} vectors")
        self.words[self.w_itr0 + v] = value & U32 & ~R.EITR_CNT_WDIS
        self.vectors[v].reprogram(interval_ns_from_eitr(value), not value & R.EITR_CNT_WDIS)


class VfRxRaise:
    """A receive completion on one of a VF's queues (``VfInterrupts.raise_rx``): the cause bit of
    the vector its VTIVAR entry routes the queue to is set in VTEICR and that vector's moderator
    raises it and records PF queue ``pf_queue`` as armed when it now holds the cause; a queue with
    no valid route counts in ``owner.unrouted``. ``route``: VF queue -> vector or -1."""

    def __init__(self, words, w_icr: int, route: list, vectors: list, owner) -> None:
        if not 0 <= w_icr < len(words):
            raise ConfigError(f"register word {w_icr} outside the {len(words)}-word registers")
        self.words = words
        self.w_icr = w_icr
        self.route = route
        self.vectors = vectors
        self.owner = owner

    def __call__(self, vf_queue: int, pf_queue: int) -> None:
        v = self.route[vf_queue]
        if not 0 <= v < len(self.vectors):
            self.owner.unrouted += 1
            return
        self.words[self.w_icr] = int(self.words[self.w_icr]) | 1 << v
        self.vectors[v].raise_rx(pf_queue)  # raise_cause + arm: firing (may clear it) holds nothing


def raise_rx_queues(queues: list, qpp: int, raisers: list, pf_raise_rx) -> None:
    """The receive hook's per-queue work: PF queue ``q`` belongs to pool ``q // qpp``; a VF's
    pool raises through ``raisers[pool]`` (VF queue ``q - pool * qpp``), any other queue through
    ``pf_raise_rx(q)``."""
    if qpp < 1:
        raise ConfigError(f"queues per pool must be >= 1, got {qpp}")
    for q in queues:
        pool = q // qpp
        if 0 <= pool < len(raisers):
            raisers[pool](q - pool * qpp, q)
        else:
            pf_raise_rx(q)


__all__ = ["QueueVector", "VectorWrites", "VfRxRaise", "raise_rx_queues"]
