"""MSI-X vectors of one PCI function: cause, mask and moderation registers (spec §4.5, §5.10).

Each vector is one `Vector` of the simulation engine (`sriov.hw.clock`: EITR moderation and
the MSI-X message, with mask, cause and auto-mask read from these registers); this module is the
register side, as ixgbe/ixgbevf program it:

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
``vf_regs``, the PF's ``regs``) and nowhere else; a vector holds only timing state. Queue
completions reach the vectors through the device's `IrqRouter`, which reads the (VT)IVAR
entries at each raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sriov.hw import regs as R
from sriov.hw.regs import ivar_entry
from sriov.kernels import impl

if TYPE_CHECKING:
    from sriov.hw.device import PciFunction

WORD = 4
U32 = 0xFFFFFFFF
LOW16 = 0x0000FFFF  # EICR/EIMS/EIAM/EIAC bits of PF queue vectors 0..15
EITR_STORED = U32 & ~R.EITR_CNT_WDIS  # CNT_WDIS is write-only: it qualifies the write

Vector = impl.Vector  # one vector's moderation and message (the engine's; twin in sriov.golden.engine)


def _w(offset: int) -> int:
    return offset // WORD


class _Vectors:
    """What VF and PF vectors share: the register words, the vectors, unrouted causes."""

    num_vectors: int
    vectors: list

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        self.fn = fn
        self.regs = regs  # a view of the device's register words (stays valid across resets)
        self._unrouted_other = 0  # mailbox / other causes with no valid vector

    def _get(self, offset: int) -> int:
        return int(self.regs[offset // WORD])

    def _put(self, offset: int, value: int) -> None:
        self.regs[offset // WORD] = value & U32

    @property
    def unrouted(self) -> int:
        """Causes raised whose (V)IVAR entry was invalid or named a vector that does not exist."""
        return self._unrouted_other + self._unrouted_queues()

    def _unrouted_queues(self) -> int:
        raise NotImplementedError

    def set_latency(self, latency_ns: int) -> None:
        """How long this function's MSI-X messages take to reach their handler."""
        for v in self.vectors:
            v.latency_ns = latency_ns


class VfInterrupts(_Vectors):
    """The three MSI-X vectors of a VF and its VTE* registers."""

    num_vectors = R.VF_MSIX_VECTORS
    REGISTERS = frozenset(
        {R.VTEICR, R.VTEICS, R.VTEIMS, R.VTEIMC, R.VTEIAC, R.VTEIAM}
        | {R.VTEITR(v) for v in range(R.VF_MSIX_VECTORS)}
        | {R.VTIVAR(x) for x in range(R.VF_MAX_QUEUES // 2)}
    )

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        super().__init__(fn, regs)
        clock = fn.device.clock
        self.vectors = [
            Vector(clock, regs, v, icr=_w(R.VTEICR), icr_bit=1 << v, ims=_w(R.VTEIMS), ims_bit=1 << v,
                   iam=_w(R.VTEIAM), iac=_w(R.VTEIAC), iac_bit=1 << v)
            for v in range(self.num_vectors)
        ]  # fmt: skip
        self.reset()

    def _unrouted_queues(self) -> int:
        return int(self.fn.device.router.unrouted[self.fn.index])  # type: ignore[attr-defined]

    def reset(self) -> None:
        """After the device zeroed the VF's registers: every vector masked, idle."""
        for m in self.vectors:
            m.reset()

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

    def mailbox_vector(self) -> int | None:
        """The vector VTIVAR_MISC names for the mailbox ("other") cause, or None if not valid."""
        misc = self._get(R.VTIVAR_MISC)
        v = misc & R.IVAR_VECTOR_MASK
        return v if misc & R.IVAR_ALLOC_VAL and v < self.num_vectors else None

    def raise_mailbox(self) -> None:
        """The PF wrote to this VF's mailbox (STS/ACK) or reset it."""
        v = self.mailbox_vector()
        if v is None:
            self._unrouted_other += 1
            return
        self.raise_causes(1 << v)

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
        bits = value & R.VTEICR_MASK
        if offset == R.VTEIMS:  # each vector named latches its cause from VTEICR and is unmasked
            self._put(R.VTEIMS, self._get(R.VTEIMS) | bits)
            causes = self._get(R.VTEICR)
            for v in range(self.num_vectors):
                if bits >> v & 1:
                    m = self.vectors[v]
                    if causes >> v & 1:
                        m.pending = True
                    m.unmask()
        elif offset >= R.VTEITR(0):  # VTEITR(v)
            self._put(offset, value & EITR_STORED)
            self.vectors[(offset - R.VTEITR(0)) // WORD].write_eitr(value)
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
        else:  # VTIVAR(x): plain storage, read by the router at each raise
            self._put(offset, value)

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

    def __init__(self, fn: PciFunction, regs: np.ndarray) -> None:
        super().__init__(fn, regs)
        clock = fn.device.clock
        self.vectors = [
            Vector(clock, regs, v, icr=_w(R.EICR) if v < 16 else -1, icr_bit=(1 << v) & LOW16,
                   ims=_w(R.EIMS_EX(v >> 5)), ims_bit=1 << (v & 31), iam=_w(R.EIAM_EX(v >> 5)),
                   iac=_w(R.EIAC) if v < 16 else -1, iac_bit=(1 << v) & LOW16)
            for v in range(self.num_vectors)
        ]  # fmt: skip
        # the other causes are masked per cause (EIMS bits 31:16), never per vector: its own
        # moderation, so a busy queue vector never delays the mailbox (model decision)
        self.other = Vector(clock, regs, -1, on_fire=self._fired_other)
        self.reset()

    def _unrouted_queues(self) -> int:
        return int(self.fn.device.router.unrouted[64])

    def reset(self) -> None:
        """After a PF reset zeroed the registers: every vector disabled, idle."""
        for m in self.vectors:
            m.reset()
        self.other.reset()

    def handlers(self) -> tuple[dict, dict]:
        """(read handlers, write handlers) by register word, for the device's dispatch tables."""
        rd = {
            R.EICR // WORD: self._read_eicr,
            R.EICS // WORD: lambda: self._get(R.EICR),
            R.EIMS // WORD: lambda: self._get(R.EIMS) & ~LOW16 | self._get(R.EIMS_EX(0)) & LOW16,
            R.EIMC // WORD: lambda: 0,
            R.EIAM // WORD: lambda: self._get(R.EIAM) & ~LOW16 | self._get(R.EIAM_EX(0)) & LOW16,
        }
        wr = {
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
            wr[R.EIAM_EX(i) // WORD] = lambda v, i=i: self._put(R.EIAM_EX(i), v)
        for v in range(self.num_vectors):
            wr[R.EITR(v) // WORD] = lambda value, v=v: self._write_eitr(v, value)
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

    def _enable(self, vectors: int) -> None:
        for i in range(2):
            self._put(R.EIMS_EX(i), self._get(R.EIMS_EX(i)) | (vectors >> (32 * i)) & U32)
        causes = self._get(R.EICR)
        for v in range(self.num_vectors):
            if vectors >> v & 1:
                m = self.vectors[v]
                if v < 16 and causes >> v & 1:
                    m.pending = True
                m.unmask()

    def _disable(self, vectors: int) -> None:
        for i in range(2):
            self._put(R.EIMS_EX(i), self._get(R.EIMS_EX(i)) & ~((vectors >> (32 * i)) & U32))
        for v in range(self.num_vectors):
            if vectors >> v & 1:
                self.vectors[v].mask()

    def _write_eitr(self, v: int, value: int) -> None:
        self._put(R.EITR(v), value & EITR_STORED)
        self.vectors[v].write_eitr(value)
        if v == self.other_vector():
            self.other.write_eitr(value)

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
        self._put(R.EIAM_EX(0), self._get(R.EIAM_EX(0)) & ~LOW16 | value & LOW16)

    # -- the other causes ---------------------------------------------------------------------
    def other_vector(self) -> int:
        """The vector IVAR_MISC bits 15:8 name for the other causes (0 until the driver sets it)."""
        ivar = self._get(R.IVAR_MISC)
        return (ivar >> 8) & R.IVAR_VECTOR_MASK if ivar & (R.IVAR_ALLOC_VAL << 8) else 0

    def _write_ivar_misc(self, value: int) -> None:
        self._put(R.IVAR_MISC, value)
        v = self.other_vector()
        if v < self.num_vectors:
            self.other.write_eitr(self._get(R.EITR(v)) | R.EITR_CNT_WDIS)

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
        v = self.other_vector()
        if v < self.num_vectors:
            self.vectors[v].signal()

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


__all__ = ["PfInterrupts", "Vector", "VfInterrupts", "ivar_entry"]
