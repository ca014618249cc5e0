"""MSI-X vectors of one PCI function: cause, mask and moderation registers (spec §4.5, §5.10).

Each vector has one `VectorModerator` (EITR state machine on the simulation clock);
this module is the register side around it, as ixgbe/ixgbevf program it:

* **VF** (3 vectors: two queue vectors and the mailbox vector). One cause bit per
  vector in VTEICR (read-to-clear, write-1-to-clear), set through VTEICS or by the
  device; VTEIMS/VTEIMC enable/disable vectors; VTEIAC bits auto-clear the cause and
  VTEIAM bits auto-mask the vector when it fires (ixgbevf sets both to every vector it
  uses and re-enables through VTEIMS after its NAPI poll). VTIVAR(x) maps queue pair x
  to vectors (queue 2x: RX entry bits 7:0, TX 15:8; queue 2x+1: bits 23:16 and 31:24;
  ALLOC_VAL bit 7 of each entry); VTIVAR_MISC bits 7:0 name the mailbox vector.
  VTEITR(v) is the vector's interval (bits 11:3, 2.048 us units).
* **PF** (64 vectors). Queue-vector causes 0..15 are EICR bits 15:0 (vectors 16..63
  have no readable cause bit); EIMS/EIMC bits 15:0 and EIMS_EX/EIMC_EX(0..1) enable and
  disable vectors, EICS/EICS_EX set causes, EIAM bits 15:0 and EIAM_EX auto-mask, EIAC
  bits 15:0 auto-clear (a vector >= 16 always clears its invisible cause when it fires).
  IVAR(i) maps PF queues 2i, 2i+1 as VTIVAR does. The "other" causes (EICR bits 31:16:
  mailbox, link) are masked per cause by EIMS/EIMC bits 31:16 and go out on the vector
  IVAR_MISC bits 15:8 name, moderated by that vector's EITR through a state machine of
  their own, so a busy queue vector never delays the mailbox (model decision).

Register values live in the device's numpy register arrays (the VF's private row of
``vf_regs``, the PF's ``regs``); the moderators hold only timing state.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from sriov import kernels
from sriov.golden import irq as golden_irq
from sriov.hw import regs as R
from sriov.hw.armed import ARMED_HELD, new_armed_table
from sriov.hw.eitr import VectorModerator, interval_ns_from_eitr

if TYPE_CHECKING:
    from sriov.hw.device import PciFunction

WORD = 4
U32 = 0xFFFFFFFF
LOW16 = 0x0000FFFF  # EICR/EIMS/EIAM/EIAC bits of PF queue vectors 0..15
EITR_STORED = U32 & ~R.EITR_CNT_WDIS  # CNT_WDIS is write-only: it qualifies the write


def ivar_entry(ivar: int, queue: int, tx: bool = False) -> int | None:
    """The vector an (V)IVAR register routes ``queue``'s RX (or TX) cause to, or None if not valid.

    ``ivar`` is the register covering the queue pair ``queue >> 1`` (the layout of
    ``ixgbevf_set_ivar`` / ``ixgbe_set_ivar``: entry at bit ``16 * (queue & 1) + 8 * tx``).
    """
    entry = (ivar >> (16 * (queue & 1) + 8 * int(tx))) & 0xFF
    return entry & R.IVAR_VECTOR_MASK if entry & R.IVAR_ALLOC_VAL else None


VfFire = kernels.impl.VfFire  # what a VF vector does when it fires (module-level: tests swap twins)
_W_VTEICR = R.VTEICR // WORD  # register words the per-interrupt paths use
_W_VTEIMS = R.VTEIMS // WORD
_W_VTEIAC = R.VTEIAC // WORD
_W_VTEIAM = R.VTEIAM // WORD
_VTEITR0 = R.VTEITR(0)
_W_VTEITR0 = _VTEITR0 // WORD
_VTEIMS = R.VTEIMS
_VTEICR_MASK = R.VTEICR_MASK

QueueVector = kernels.impl.QueueVector  # compiled; the plain-Python twin: sriov.golden.irq
VectorWrites = kernels.impl.VectorWrites  # VTEIMS / VTEITR writes (compiled; twin in sriov.golden.irq)
VfRxRaise = kernels.impl.VfRxRaise  # a VF receive completion's cause (compiled; twin in sriov.golden.irq)


class _Vectors:
    """What VF and PF vectors share: one moderator per vector, fire counts, EITR decoding."""

    num_vectors: int
    _ivar: Callable[[int], int]
    _rx_route: list[int]

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        self.fn = fn
        self.regs = regs  # a view of the device's register words (stays valid across resets)
        # the same words as a memoryview: item get/set without numpy scalars (per-interrupt paths)
        self.words = memoryview(regs) if regs.flags.c_contiguous and regs.dtype == np.uint32 else regs
        clock = fn.device.clock
        armed = getattr(fn.device, "rx_armed", None)
        if armed is None:
            armed = new_armed_table()
        tx_armed = getattr(fn.device, "tx_armed", None)
        self.vectors = [
            QueueVector(clock, partial(self._fired, v), armed, tx_armed) for v in range(self.num_vectors)
        ]
        self.unrouted = 0  # causes whose (V)IVAR entry was invalid or named a vector that does not exist

    def disarm_all(self) -> None:
        """A routing change (VTIVAR/IVAR write): no queue of this function stays armed."""
        for m in self.vectors:
            m.disarm()

    def _get(self, offset: int) -> int:
        return int(self.words[offset // WORD])

    def _route(self, queue: int, tx: bool) -> int:
        """The vector the (V)IVAR entry of ``queue`` names, or -1 when the entry is not valid or
        names a vector that does not exist. Receive routes are decoded once per (V)IVAR write."""
        if not tx:
            return self._rx_route[queue]
        v = ivar_entry(self._get(self._ivar(queue >> 1)), queue, True)
        return -1 if v is None or v >= self.num_vectors else v

    def _put(self, offset: int, value: int) -> None:
        self.words[offset // WORD] = value & U32

    def _fired(self, v: int) -> None:
        raise NotImplementedError

    @staticmethod
    def _eitr_write(moderator: VectorModerator, value: int) -> None:
        moderator.reprogram(interval_ns_from_eitr(value), reset_counter=not value & R.EITR_CNT_WDIS)

    def last_fire_ns(self, v: int) -> int:
        """When vector ``v`` last fired (simulation ns), or -1 if never."""
        last = self.vectors[v].last_fire
        return -1 if last == VectorModerator.NEVER else last


class VfInterrupts(_Vectors):
    """The three MSI-X vectors of a VF and its VTE* registers."""

    num_vectors = R.VF_MSIX_VECTORS
    _ivar = staticmethod(R.VTIVAR)  # the register of queue pair i's IVAR entries
    REGISTERS = frozenset(
        {R.VTEICR, R.VTEICS, R.VTEIMS, R.VTEIMC, R.VTEIAC, R.VTEIAM}
        | {R.VTEITR(v) for v in range(R.VF_MSIX_VECTORS)}
        | {R.VTIVAR(x) for x in range(R.VF_MAX_QUEUES // 2)}
    )
    num_queues = R.VF_MAX_QUEUES

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        super().__init__(fn, regs)
        # the per-interrupt paths in one call each, compiled when the registers are C-contiguous
        # uint32 words (always, from the device); otherwise their golden twins over ``words``
        compiled = isinstance(self.words, memoryview)
        words = regs if compiled else self.words
        if compiled:  # firing (VfFire is `_fired`)
            for v, m in enumerate(self.vectors):
                m.send = VfFire(regs, v, fn, _W_VTEICR, _W_VTEIMS, _W_VTEIAC, _W_VTEIAM)
        # VTEIMS / VTEITR writes (NAPI's re-enable and adaptive ITR call them directly, as `write`)
        writes = VectorWrites if compiled else golden_irq.VectorWrites
        self.vector_writes = writes(words, _W_VTEIMS, _W_VTEICR, _W_VTEITR0, _VTEICR_MASK, self.vectors)
        # the receive hook's path (the device calls it for every queue a burst wrote to); it reads
        # _rx_route, which reset and the VTIVAR writes update in place
        self._rx_route = [-1] * self.num_queues
        raiser = VfRxRaise if compiled else golden_irq.VfRxRaise
        self.rx_raise = raiser(words, _W_VTEICR, self._rx_route, self.vectors, self)
        self.reset()

    def reset(self) -> None:
        """After the device zeroed the VF's registers: every vector masked, idle."""
        for m in self.vectors:
            m.reset()
        self._rx_route[:] = [-1] * self.num_queues  # in place: rx_raise reads this list

    # -- causes -----------------------------------------------------------------------------
    def raise_causes(self, causes: int) -> None:
        """Set VTEICR bits; each raised vector fires now, at its interval's end, or on unmask."""
        causes &= R.VTEICR_MASK
        if not causes:
            return
        self._put(R.VTEICR, self._get(R.VTEICR) | causes)
        for v in range(self.num_vectors):
            if causes >> v & 1:
                self.vectors[v].raise_cause()

    def raise_queue(self, vf_queue: int, tx: bool = False) -> None:
        """A receive (or transmit) completion on VF queue ``vf_queue``: its VTIVAR vector's cause."""
        v = self._route(vf_queue, tx)
        if v < 0:
            self.unrouted += 1
            return
        word = R.VTEICR // WORD
        self.regs[word] = self.regs.item(word) | 1 << v
        self.vectors[v].raise_cause()

    def raise_rx(self, vf_queue: int, pf_queue: int) -> None:
        """`raise_queue` for a receive completion, then record PF queue ``pf_queue`` as armed when
        the vector now holds the cause (the datapath's hook path)."""
        self.rx_raise(vf_queue, pf_queue)

    def raise_tx(self, vf_queue: int, pf_queue: int) -> None:
        """`raise_queue` for a transmit completion, then record PF queue ``pf_queue`` as TX-armed
        when the vector now holds the cause (the transmit engine's hook path)."""
        v = self._route(vf_queue, True)
        if v < 0:
            self.unrouted += 1
            return
        word = R.VTEICR // WORD
        self.regs[word] = self.regs.item(word) | 1 << v
        m = self.vectors[v]
        m.raise_cause()
        m.arm(pf_queue, True)

    def mailbox_vector(self) -> int | None:
        """The vector VTIVAR_MISC names for the mailbox ("other") cause, or None if not valid."""
        misc = self._get(R.VTIVAR_MISC)
        v = misc & R.IVAR_VECTOR_MASK
        return v if misc & R.IVAR_ALLOC_VAL and v < self.num_vectors else None

    def raise_mailbox(self) -> None:
        """The PF wrote to this VF's mailbox (STS/ACK) or reset it."""
        v = self.mailbox_vector()
        if v is None:
            self.unrouted += 1
            return
        self.raise_causes(1 << v)

    def _fired(self, v: int) -> None:
        """Vector ``v`` fired (its moderator's ``send``; `VfFire` does the same in one call)."""
        bit = 1 << v
        words = self.words
        if words[_W_VTEIAC] & bit:
            words[_W_VTEICR] &= ~bit
        if words[_W_VTEIAM] & bit:
            words[_W_VTEIMS] &= ~bit
        self.fn.signal_msix(v)

    # -- registers --------------------------------------------------------------------------
    def read(self, offset: int) -> int:
        """A read of one of `REGISTERS`, with its side effects."""
        if offset == R.VTEICR:
            value = self._get(R.VTEICR)
            self._clear(value)  # read-to-clear
            return value
        if offset == R.VTEICS:
            return self._get(R.VTEICR)
        if offset == R.VTEIMC:
            return 0
        return self._get(offset)

    def write(self, offset: int, value: int) -> None:
        """A write to one of `REGISTERS`, with its side effects."""
        bits = value & _VTEICR_MASK
        if offset == _VTEIMS:  # NAPI's re-enable after every poll cycle: first
            self.vector_writes(bits)
        elif offset >= _VTEITR0:  # VTEITR(v): adaptive ITR writes it after most poll cycles
            self.vector_writes.eitr((offset - _VTEITR0) // WORD, value)
        elif offset == R.VTEICR:
            self._clear(bits)  # write-1-to-clear
        elif offset == R.VTEICS:
            self.raise_causes(bits)
        elif offset == R.VTEIMC:
            self._put(R.VTEIMS, self._get(R.VTEIMS) & ~bits)
            for v in range(self.num_vectors):
                if bits >> v & 1:
                    self.vectors[v].mask()
        elif offset in (R.VTEIAC, R.VTEIAM):
            self._put(offset, bits)
            if offset == R.VTEIAM:
                for v, m in enumerate(self.vectors):
                    m.auto_mask = bool(bits >> v & 1)
        else:  # VTIVAR(x): plain storage, its RX entries decoded for the datapath hook
            self.disarm_all()
            self._put(offset, value)
            x = (offset - R.VTIVAR(0)) // WORD
            for q in (2 * x, 2 * x + 1):
                v = ivar_entry(value, q)
                self._rx_route[q] = -1 if v is None or v >= self.num_vectors else v

    def _clear(self, bits: int) -> None:
        self._put(R.VTEICR, self._get(R.VTEICR) & ~bits)
        for v in range(self.num_vectors):
            if bits >> v & 1:
                self.vectors[v].clear_cause()

    # -- /proc/interrupts -------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Interrupts each vector sent, named as ixgbevf names them (``<netdev>-TxRx-<n>``, mailbox)."""
        prefix = f"{self.fn.device.name}-vf{self.fn.index}"  # type: ignore[attr-defined]
        mbx = self.mailbox_vector()
        if mbx is None:
            mbx = R.VF_MSIX_VECTORS - 1  # ixgbevf's other vector follows the queue vectors
        out: dict[str, int] = {}
        k = 0
        for v, m in enumerate(self.vectors):
            if v == mbx:
                out[f"{prefix}-mbx"] = m.fired
            else:
                out[f"{prefix}-TxRx-{k}"] = m.fired
                k += 1
        return out


class PfInterrupts(_Vectors):
    """The PF's 64 MSI-X vectors plus its "other" causes, and the EI* / EITR / IVAR registers."""

    num_vectors = R.PF_MSIX_VECTORS
    _ivar = staticmethod(R.IVAR)  # the register of queue pair i's IVAR entries

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        super().__init__(fn, regs)
        self.other = VectorModerator(fn.device.clock, self._fired_other)
        self.reset()

    def reset(self) -> None:
        """After a PF reset zeroed the registers: every vector disabled, idle."""
        for m in self.vectors:
            m.reset()
        self._rx_route = [-1] * R.MAX_QUEUES
        self.other.reset()
        self.other.masked = False  # the other causes are masked per cause (EIMS bits 31:16)

    def handlers(self) -> tuple[dict[int, Callable[[], int]], dict[int, Callable[[int], None]]]:
        """(read handlers, write handlers) by register word, for the device's dispatch tables."""
        rd: dict[int, Callable[[], int]] = {
            R.EICR // WORD: self._read_eicr,
            R.EICS // WORD: lambda: self._get(R.EICR),
            R.EIMS // WORD: lambda: self._get(R.EIMS) & ~LOW16 | self._get(R.EIMS_EX(0)) & LOW16,
            R.EIMC // WORD: lambda: 0,
            R.EIAM // WORD: lambda: self._get(R.EIAM) & ~LOW16 | self._get(R.EIAM_EX(0)) & LOW16,
        }
        wr: dict[int, Callable[[int], None]] = {
            R.EICR // WORD: self._clear_causes,
            R.EICS // WORD: self._write_eics,
            R.EIMS // WORD: self._write_eims,
            R.EIMC // WORD: self._write_eimc,
            R.EIAM // WORD: self._write_eiam,
            R.EIAC // WORD: lambda v: self._put(R.EIAC, v & LOW16),
            R.IVAR_MISC // WORD: self._write_ivar_misc,
        }
        for i in range(2):
            rd[R.EICS_EX(i) // WORD] = lambda: 0
            rd[R.EIMC_EX(i) // WORD] = lambda: 0
            wr[R.EICS_EX(i) // WORD] = lambda v, i=i: self.raise_vectors(v << (32 * i))
            wr[R.EIMS_EX(i) // WORD] = lambda v, i=i: self._enable(v << (32 * i))
            wr[R.EIMC_EX(i) // WORD] = lambda v, i=i: self._disable(v << (32 * i))
            wr[R.EIAM_EX(i) // WORD] = lambda v, i=i: self._set_auto_mask(i, v)
        for v in range(self.num_vectors):
            wr[R.EITR(v) // WORD] = partial(self._write_eitr, v)
        for i in range(R.NUM_IVAR):
            wr[R.IVAR(i) // WORD] = partial(self._write_ivar, i)
        return rd, wr

    # -- queue vectors ----------------------------------------------------------------------
    def raise_vectors(self, vectors: int) -> None:
        """Set the causes of queue vectors (bit v = vector v); each fires as its moderation allows."""
        if not vectors:
            return
        self._put(R.EICR, self._get(R.EICR) | vectors & LOW16)
        for v in range(self.num_vectors):
            if vectors >> v & 1:
                self.vectors[v].raise_cause()

    def raise_queue(self, queue: int, tx: bool = False) -> None:
        """A completion on PF queue ``queue``: the cause of the vector its IVAR entry names."""
        v = self._route(queue, tx)
        if v < 0:
            self.unrouted += 1
            return
        self.raise_vectors(1 << v)

    def raise_rx(self, queue: int) -> None:
        """`raise_queue` for a receive completion, then record the queue as armed when its vector
        now holds the cause (the datapath's hook path)."""
        v = self._rx_route[queue]
        if v < 0:
            self.unrouted += 1
            return
        self.raise_vectors(1 << v)
        self.vectors[v].arm(queue)  # EICR bit (vectors 0..15) set just now unless firing cleared it

    def raise_tx(self, queue: int) -> None:
        """`raise_queue` for a transmit completion, then record the queue as TX-armed when its
        vector now holds the cause (the transmit engine's hook path)."""
        v = self._route(queue, True)
        if v < 0:
            self.unrouted += 1
            return
        self.raise_vectors(1 << v)
        self.vectors[v].arm(queue, True)

    def _write_ivar(self, i: int, value: int) -> None:
        self.disarm_all()
        self._put(R.IVAR(i), value)
        for q in (2 * i, 2 * i + 1):
            v = ivar_entry(value, q)
            self._rx_route[q] = -1 if v is None or v >= self.num_vectors else v

    def _fired(self, v: int) -> None:
        bit = 1 << v
        if v >= 16 or self._get(R.EIAC) & bit:
            self._put(R.EICR, self._get(R.EICR) & ~(bit & LOW16))
        if self.vectors[v].auto_mask:
            i, b = divmod(v, 32)
            self._put(R.EIMS_EX(i), self._get(R.EIMS_EX(i)) & ~(1 << b))
        self.fn.signal_msix(v)

    def _enable(self, vectors: int) -> None:
        for i in range(2):
            self._put(R.EIMS_EX(i), self._get(R.EIMS_EX(i)) | (vectors >> (32 * i)) & U32)
        causes = self._get(R.EICR)
        for v in range(self.num_vectors):
            if vectors >> v & 1:
                m = self.vectors[v]
                m.pending = m.pending or (v < 16 and bool(causes >> v & 1))
                m.unmask()

    def _disable(self, vectors: int) -> None:
        for i in range(2):
            self._put(R.EIMS_EX(i), self._get(R.EIMS_EX(i)) & ~((vectors >> (32 * i)) & U32))
        for v in range(self.num_vectors):
            if vectors >> v & 1:
                self.vectors[v].mask()

    def _set_auto_mask(self, i: int, value: int) -> None:
        self._put(R.EIAM_EX(i), value)
        for b in range(32):
            self.vectors[32 * i + b].auto_mask = bool(value >> b & 1)

    def _write_eitr(self, v: int, value: int) -> None:
        self._put(R.EITR(v), value & EITR_STORED)
        self._eitr_write(self.vectors[v], value)
        if v == self.other_vector():
            self._eitr_write(self.other, value)

    # -- EICR/EICS/EIMS/EIMC/EIAM: queue bits 15:0 and other causes 31:16 --------------------
    def _read_eicr(self) -> int:
        value = self._get(R.EICR)
        self._clear_causes(value)  # read-to-clear
        return value

    def _clear_causes(self, value: int) -> None:
        self._put(R.EICR, self._get(R.EICR) & ~value)
        for v in range(16):
            if value >> v & 1:
                self.vectors[v].clear_cause()
        if not self._get(R.EICR) & self._get(R.EIMS) & R.EICR_OTHER_CAUSES:
            self.other.clear_cause()

    def _write_eics(self, value: int) -> None:
        self.raise_vectors(value & LOW16)
        self.raise_other(value & R.EICR_OTHER_CAUSES)

    def _write_eims(self, value: int) -> None:
        self._enable(value & LOW16)
        other = value & R.EICR_OTHER_CAUSES
        self._put(R.EIMS, self._get(R.EIMS) | other)
        if self._get(R.EICR) & other:  # unmasking a latched cause raises it now
            self.other.raise_cause()

    def _write_eimc(self, value: int) -> None:
        self._disable(value & LOW16)
        self._put(R.EIMS, self._get(R.EIMS) & ~(value & R.EICR_OTHER_CAUSES))

    def _write_eiam(self, value: int) -> None:
        self._put(R.EIAM, value & R.EICR_OTHER_CAUSES)
        ex0 = self._get(R.EIAM_EX(0)) & ~LOW16 | value & LOW16
        self._set_auto_mask(0, ex0)

    # -- the other causes ---------------------------------------------------------------------
    def other_vector(self) -> int:
        """The vector IVAR_MISC bits 15:8 name for the other causes (0 until the driver sets it)."""
        ivar = self._get(R.IVAR_MISC)
        return (ivar >> 8) & R.IVAR_VECTOR_MASK if ivar & (R.IVAR_ALLOC_VAL << 8) else 0

    def _write_ivar_misc(self, value: int) -> None:
        self._put(R.IVAR_MISC, value)
        v = self.other_vector()
        if v < self.num_vectors:
            self._eitr_write(self.other, self._get(R.EITR(v)) | R.EITR_CNT_WDIS)

    def raise_other(self, causes: int) -> None:
        """Set other-cause bits of EICR (mailbox, link); enabled ones fire the other vector."""
        causes &= R.EICR_OTHER_CAUSES
        if not causes:
            return
        self._put(R.EICR, self._get(R.EICR) | causes)
        if self._get(R.EIMS) & causes:
            self.other.raise_cause()

    def _fired_other(self) -> None:
        auto = self._get(R.EIAM) & self._get(R.EICR) & R.EICR_OTHER_CAUSES
        if auto:
            self._put(R.EIMS, self._get(R.EIMS) & ~auto)
        self.other.masked = False  # masking of other causes is per cause, never per vector
        v = self.other_vector()
        if v < self.num_vectors:
            self.fn.signal_msix(v)

    # -- /proc/interrupts -------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Interrupts sent per vector in use, named as ixgbe names them (``eth0-TxRx-<v>``, other)."""
        name = self.fn.device.name
        mapped = 0
        for i in range(R.NUM_IVAR):
            ivar = self._get(R.IVAR(i))
            for q in (2 * i, 2 * i + 1):
                for tx in (False, True):
                    v = ivar_entry(ivar, q, tx)
                    if v is not None and v < self.num_vectors:
                        mapped |= 1 << v
        out = {f"{name}-TxRx-{v}": m.fired for v, m in enumerate(self.vectors) if m.fired or mapped >> v & 1}
        out[f"{name}-other"] = self.other.fired
        return out


__all__ = ["ARMED_HELD", "PfInterrupts", "QueueVector", "VfInterrupts", "ivar_entry", "new_armed_table"]
