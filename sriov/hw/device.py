"""One 82599 port: its register file, its PCI functions and the hardware's side effects.

Device state lives in numpy arrays owned by the device:

* ``regs``: the PF's BAR0 register file, one uint32 per 4 bytes. Every PF register
  lives here at its canonical offset (the 82598-compatible aliases of RAL/RAH and
  SRRCTL fold onto the 82599 homes), and the tables the datapath reads (RAR, MPSAR,
  MTA, UTA, VFTA, VLVF/VLVFB, VMOLR, VFRE/VFTE, queue registers...) are named numpy
  *views* of it (see `DeviceState`), so a register write is visible to the kernels
  with no copy and no sync step.
* ``vf_regs``: registers private to each VF (VFCTRL, interrupt registers...).
* ``mbx``: each VF's mailbox lock/status bits (VFU, PFU, PFSTS, PFACK, RSTI, RSTD),
  kept once and shown through VFMAILBOX (VF view) and PFMAILBOX(n) (PF view).

As in QEMU's igbvf, a VF holds no copy of anything: its BAR is a window onto the
PF register file (its queues, its mailbox memory) plus its private registers.
Registers with side effects get named handlers; all others are plain storage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from sriov.errors import ConfigError, RegisterAccessError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.interrupts import PfInterrupts, VfInterrupts
from sriov.hw.iommu import MAX_DOMAINS, Domain, Iommu
from sriov.hw.state import DeviceState
from sriov.kernels import impl as _kernels

WORD = 4
U32 = 0xFFFFFFFF
_QUEUE_RX_FIELDS = (R.Q_RDBAL, R.Q_RDBAH, R.Q_RDLEN, R.Q_RDH, R.Q_SRRCTL, R.Q_RDT, R.Q_RXDCTL)
_QUEUE_TX_FIELDS = (R.Q_TDBAL, R.Q_TDBAH, R.Q_TDLEN, R.Q_TDH, R.Q_TDT, R.Q_TXDCTL, R.Q_TDWBAL, R.Q_TDWBAH)
_MBX_VF_VISIBLE = (
    R.VFMAILBOX_VFU
    | R.VFMAILBOX_PFU
    | R.VFMAILBOX_PFSTS
    | R.VFMAILBOX_PFACK
    | R.VFMAILBOX_RSTI
    | R.VFMAILBOX_RSTD
)
_QUEUES_PER_POOL = {R.GCR_EXT_VT_MODE_16: 8, R.GCR_EXT_VT_MODE_32: 4}  # VT_Mode -> queues per pool
VF_RID_OFFSET = 0x80  # SR-IOV First VF Offset (model decision; 82599 value unverified)
VF_RID_STRIDE = 2  # SR-IOV VF Stride (model decision)

MsixHandler = Callable[[int], None]


_VF_IRQ_REGISTERS = VfInterrupts.REGISTERS
#: per PF queue, one arrival time per descriptor: enough for the largest ring RDLEN describes
RX_ARRIVAL_SLOTS = 65536
_NO_VALUE = object()  # a read: no value to check (None is a bad value, not "no value")


def _check_access(offset: object, bar_size: int, value: object = _NO_VALUE) -> int:
    if not isinstance(offset, (int, np.integer)) or isinstance(offset, bool):
        raise RegisterAccessError(f"register offset must be an int, got {type(offset).__name__}")
    offset = int(offset)
    if offset < 0 or offset >= bar_size or offset % WORD:
        raise RegisterAccessError(
            f"register offset {offset:#x} is outside BAR0 or unaligned "
            f"(allowed: multiples of 4 in [0, {bar_size:#x}))"
        )
    if value is not _NO_VALUE:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise RegisterAccessError(f"register value must be an int, got {type(value).__name__}")
        if not 0 <= int(value) <= U32:
            raise RegisterAccessError(f"register value {value} does not fit 32 bits")
    return offset


class PciFunction:
    """A PCI function of the port: identity, BAR0 access and MSI-X delivery."""

    vendor_id = R.PCI_VENDOR_ID_INTEL
    device_id: int
    bar_size: int
    msix: PfInterrupts | VfInterrupts  # the function's MSI-X vectors and their registers

    def __init__(self, device: Device82599, name: str, rid: int) -> None:
        self.device = device
        self.name = name
        self.rid = rid
        self.domain: Domain = device.iommu.new_domain(name)
        self._irq_latency_ns = device.irq_latency_ns
        self.bad_accesses = 0

    # -- BAR0 ---------------------------------------------------------------------------------
    def read32(self, offset: int) -> int:
        """BAR0 register read, with the hardware's side effects; unimplemented offsets read 0."""
        raise NotImplementedError

    def write32(self, offset: int, value: int) -> None:
        """BAR0 register write, with the hardware's side effects."""
        raise NotImplementedError

    # -- MSI-X: each vector's message is its engine `Vector`'s (sriov.hw.interrupts) ------------
    @property
    def irq_latency_ns(self) -> int:
        """How long an MSI-X message takes to reach its handler (the host's, or the VM's after
        the hypervisor's injection when the function is assigned)."""
        return self._irq_latency_ns

    @irq_latency_ns.setter
    def irq_latency_ns(self, value: int) -> None:
        self._irq_latency_ns = value
        self.msix.set_latency(value)

    def set_msix_handler(self, vector: int, handler: MsixHandler | None) -> None:
        """Route MSI-X ``vector`` to ``handler`` (a host driver's interrupt handler), or unroute it."""
        self.msix.vectors[vector].handler = handler

    def set_msix_guest(self, vector: int, nic: object | None) -> None:
        """Route MSI-X ``vector`` into a VM: the hypervisor injects it into guest driver ``nic``
        (its ``_msix(vector)``), or unroute it (None)."""
        self.msix.vectors[vector].nic = nic

    def signal_msix(self, vector: int) -> None:
        """The function sends MSI-X ``vector``; it arrives after ``irq_latency_ns``.

        A vector already in flight is not sent twice (its message is coalesced).
        """
        self.msix.vectors[vector].signal()

    @property
    def msix_delivered(self) -> dict[int, int]:
        """Messages delivered per vector (those that were delivered at least once)."""
        return {v: m.delivered for v, m in enumerate(self.msix.vectors) if m.delivered}

    def interrupt_counts(self) -> dict[str, int]:
        """Interrupts each MSI-X vector sent, by the name /proc/interrupts gives it."""
        return self.msix.counts()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.vendor_id:04x}:{self.device_id:04x}>"


class PfFunction(PciFunction):
    """The physical function: BAR0 is the whole device's register file."""

    device_id = R.DEV_ID_82599_SFP
    bar_size = R.PF_BAR0_SIZE

    def __init__(self, device: Device82599, name: str, rid: int) -> None:
        super().__init__(device, name, rid)
        self.msix = PfInterrupts(self, device.regs)
        self.msix.set_latency(self.irq_latency_ns)

    def read32(self, offset: int) -> int:
        offset = _check_access(offset, self.bar_size)
        return self.device.pf_read(offset)

    def write32(self, offset: int, value: int) -> None:
        offset = _check_access(offset, self.bar_size, value)
        self.device.pf_write(offset, int(value))


class VfFunction(PciFunction):
    """A virtual function: its own registers, its queues and its mailbox, nothing else."""

    device_id = R.DEV_ID_82599_VF
    bar_size = R.VF_BAR0_SIZE

    def __init__(self, device: Device82599, index: int) -> None:
        super().__init__(
            device, f"{device.name}/vf{index}", device.pf.rid + VF_RID_OFFSET + VF_RID_STRIDE * index
        )
        self.index = index
        self.msix = VfInterrupts(self, device.vf_regs[index])
        self.msix.set_latency(self.irq_latency_ns)

    def read32(self, offset: int) -> int:
        offset = _check_access(offset, self.bar_size)
        return self.device.vf_read(self.index, offset)

    def write32(self, offset: int, value: int) -> None:
        # the common case (plain ints, aligned, in range) checked inline; anything else through
        # _check_access, which says what is wrong
        if not (
            type(offset) is int
            and type(value) is int
            and 0 <= offset < self.bar_size
            and not offset & 3
            and 0 <= value <= U32
        ):
            try:
                offset = _check_access(offset, self.bar_size, value)
            except RegisterAccessError:
                self.bad_accesses += 1
                raise
            value = int(value)
        if offset in _VF_IRQ_REGISTERS:  # vf_write's first case, without the trip through it
            self.msix.write(offset, value)  # (NAPI re-enables its vector after every poll cycle)
            return
        self.device.vf_write(self.index, offset, value)


class Device82599:
    """The silicon of one 82599 port (PF plus up to 63 VFs)."""

    def __init__(
        self, name: str, clock: SimClock, iommu: Iommu, pf_rid: int = 0x0100, irq_latency_ns: int = 1000
    ) -> None:
        self.name = name
        self.clock = clock
        self.iommu = iommu
        self.irq_latency_ns = irq_latency_ns
        self.regs = np.zeros(R.PF_BAR0_SIZE // WORD, dtype=np.uint32)
        self.vf_regs = np.zeros((R.MAX_POOLS, R.VF_BAR0_SIZE // WORD), dtype=np.uint32)
        self.mbx = np.zeros(R.MAX_POOLS, dtype=np.uint32)
        self.qde = np.zeros(R.MAX_QUEUES, dtype=np.uint8)  # per-queue drop enable (QDE.ENABLE)
        self.state = DeviceState(self.regs, self.qde)
        # The port's datapath lock: one port is one piece of hardware, so its DMA engines run one
        # at a time. Held by every datapath entry (the wire's receive and bursts, the transmit
        # engine) for a whole batch, and by whatever unmaps or reprograms what the datapath reads
        # (VF unassign, SR-IOV enable/disable, resets) so that no DMA is in flight meanwhile.
        # Re-entrant: a receive may run a driver that transmits on the same port.
        self.dma_lock = threading.RLock()
        # Called with the PF queue index after a write to a TX queue's tail (TDT / VFTDT): the port's
        # wire (sriov.wire_tx) runs the transmit engine on that queue, as a tail write starts DMA.
        self.tx_doorbell: Callable[[int], None] | None = None
        # When each received frame arrived, per PF queue and descriptor (model metadata, what a
        # receive timestamp would carry): written by the receive kernels, read by the drivers'
        # rings so that received batches carry arrival times.
        self.rx_arrival = np.zeros((R.MAX_QUEUES, RX_ARRIVAL_SLOTS), np.int64)
        self._store(R.LINKS, R.LINKS_UP | R.LINKS_SPEED_10G_82599)  # the cable is in
        self.pf = PfFunction(self, f"{name}/pf", pf_rid)
        self.vfs: list[VfFunction] = []
        self._vf_pool: list[VfFunction] = []  # functions survive disable/enable, like PCI devices
        # queue completions -> the vectors their (V)IVAR entries name (the engine's)
        self.router = _kernels.IrqRouter(self)
        self.router.attach([], self.pf.msix.vectors)
        self._build_pf_map()
        self.power_on_reset()

    # ==========================================================================================
    # power-on / PF reset
    def power_on_reset(self) -> None:
        """Registers to their reset values; every VF sees RSTI until the PF writes PFRSTD. The
        link (LINKS) is the PHY's: a reset of the MAC keeps it."""
        with self.dma_lock:
            links = self._load(R.LINKS)
            self.regs[:] = 0
            self._store(R.LINKS, links)
            self.vf_regs[:] = 0
            self.qde[:] = 0
            self.mbx[:] = R.VFMAILBOX_RSTI
            self._store(R.MAXFRS, R.DEFAULT_MAX_FRAME << R.MHADD_MFS_SHIFT)
            self._store(R.VLNCTRL, R.ETH_P_8021Q)
            self._store(R.HLREG0, R.HLREG0_RXCRCSTRP)
            for fn in (self.pf, *self._vf_pool):
                fn.msix.reset()

    def _store(self, offset: int, value: int) -> None:
        self.regs[offset // WORD] = value & U32

    def _load(self, offset: int) -> int:
        return int(self.regs[offset // WORD])

    # ==========================================================================================
    # SR-IOV capability (PCI config space: NumVFs + VF Enable)
    @property
    def num_vfs(self) -> int:
        """VFs currently enabled in the SR-IOV capability."""
        return len(self.vfs)

    def sriov_enable(self, num_vfs: int) -> None:
        """Set NumVFs and VF Enable: VF functions 0..num_vfs-1 appear on the bus."""
        if not isinstance(num_vfs, int) or not 1 <= num_vfs <= R.MAX_VFS:
            raise ConfigError(f"num_vfs must be an int in 1..{R.MAX_VFS}, got {num_vfs!r}")
        with self.dma_lock:
            if self.vfs:
                raise ConfigError(f"{self.name}: SR-IOV already enabled with {len(self.vfs)} VFs")
            new = num_vfs - len(self._vf_pool)  # functions never enabled before need an IOMMU domain each
            left = MAX_DOMAINS - len(self.iommu.domains)
            if new > left:
                raise ConfigError(
                    f"{self.name}: {num_vfs} VFs need {new} more IOMMU domains, {left} left of "
                    f"{MAX_DOMAINS} on this host"
                )
            while len(self._vf_pool) < num_vfs:
                self._vf_pool.append(VfFunction(self, len(self._vf_pool)))
            self.vfs = self._vf_pool[:num_vfs]
            self.router.attach([vf.msix.vectors for vf in self.vfs], self.pf.msix.vectors)
            for vf in self.vfs:
                self.vf_regs[vf.index] = 0
                self._vf_reset_registers(vf.index)

    def sriov_disable(self) -> None:
        """Clear VF Enable: the VF functions disappear from the bus."""
        with self.dma_lock:
            for vf in self.vfs:
                self._vf_reset_registers(vf.index)
            self.vfs = []
            self.router.attach([], self.pf.msix.vectors)

    def vf(self, index: int) -> VfFunction:
        """VF function ``index`` (must be enabled)."""
        if not isinstance(index, int) or not 0 <= index < len(self.vfs):
            raise ConfigError(
                f"{self.name}: no VF {index!r}; {len(self.vfs)} VFs enabled (valid 0..{len(self.vfs) - 1})"
                if self.vfs
                else f"{self.name}: no VF {index!r}; SR-IOV is not enabled (set_numvfs first)"
            )
        return self.vfs[index]

    # ==========================================================================================
    # pool geometry
    def queues_per_pool(self) -> int:
        """Queues per pool from GCR_EXT.VT_Mode (64 pools x 2, 32 x 4, 16 x 8)."""
        return _QUEUES_PER_POOL.get(self.regs.item(R.GCR_EXT // WORD) & R.GCR_EXT_VT_MODE_MASK, 2)

    def vf_queue(self, vf: int, q: int) -> int:
        """The PF queue index behind VF ``vf``'s queue ``q``."""
        return vf * self.queues_per_pool() + q

    # ==========================================================================================
    # PF register file
    def _build_pf_map(self) -> None:
        words = R.PF_BAR0_SIZE // WORD
        implemented = np.zeros(words, dtype=bool)
        alias: dict[int, int] = {}
        read_h: dict[int, Callable[[], int]] = {}
        write_h: dict[int, Callable[[int], None]] = {}

        def mark(offset: int, count: int = 1, stride: int = WORD) -> None:
            for i in range(count):
                implemented[(offset + i * stride) // WORD] = True

        for off in (
            R.CTRL, R.STATUS, R.CTRL_EXT, R.LINKS, R.EICR, R.EICS, R.EIMS, R.EIMC, R.EIAC, R.EIAM,
            R.GPIE, R.GCR_EXT, R.IVAR_MISC, R.MCSTCTRL, R.VT_CTL, R.FCTRL, R.VLNCTRL, R.PFDTXGSWC,
            R.SSVPC, R.QDE, R.MAXFRS, R.HLREG0,
        ):  # fmt: skip
            mark(off)
        for i in range(64):
            mark(R.EITR(i))
            mark(R.IVAR(i))
            mark(R.PFMAILBOX(i))
            mark(R.PFMBMEM(i), R.VFMAILBOX_SIZE)
            mark(R.VLVF(i))
            mark(R.VMOLR(i))
            mark(R.VMVIR(i))
        for i in range(4):
            mark(R.MBVFICR(i))
            mark(R.MBVFIMR(i))
        for i in range(2):
            for reg in (R.EICS_EX, R.EIMS_EX, R.EIMC_EX, R.EIAM_EX):
                mark(reg(i))
            mark(R.VFLRE(i))
            mark(R.VFLREC(i))
            mark(R.VFRE(i))
            mark(R.VFTE(i))
            mark(R.VMECM(i))
        for i in range(8):
            mark(R.PFVFSPOOF(i))
        for i in range(128):
            mark(R.RAR_BASE + 8 * i, 2)
            mark(R.MPSAR_LO(i), 2)
            mark(R.MTA(i))
            mark(R.UTA(i))
            mark(R.VFTA(i))
            mark(R.VLVFB(i))
            for f in _QUEUE_RX_FIELDS:
                mark(R.RDBAL(i) + f)
            for f in _QUEUE_TX_FIELDS:
                mark(R.TDBAL(i) + f)
        for i in range(16):  # 82598-compatible aliases
            alias[R.RAL(i) // WORD] = (R.RAR_BASE + 8 * i) // WORD
            alias[R.RAH(i) // WORD] = (R.RAR_BASE + 8 * i + 4) // WORD
            alias[R.SRRCTL_82598_ALIAS(i) // WORD] = R.SRRCTL(i) // WORD
        for a in alias:
            implemented[a] = True

        # registers with side effects (interrupt registers: sriov.hw.interrupts)
        irq_read, irq_write = self.pf.msix.handlers()
        read_h.update(irq_read)
        write_h.update(irq_write)
        write_h[R.CTRL // WORD] = self._write_ctrl
        write_h[R.CTRL_EXT // WORD] = self._write_ctrl_ext
        write_h[R.STATUS // WORD] = lambda v: None  # read-only
        write_h[R.LINKS // WORD] = lambda v: None  # read-only
        read_h[R.SSVPC // WORD] = self._read_ssvpc
        write_h[R.SSVPC // WORD] = lambda v: None
        write_h[R.QDE // WORD] = self._write_qde
        for i in range(4):
            write_h[R.MBVFICR(i) // WORD] = self._w1c(R.MBVFICR(i))
        for i in range(2):
            write_h[R.VFLRE(i) // WORD] = lambda v: None  # read-only; cleared through VFLREC
            write_h[R.VFLREC(i) // WORD] = self._write_vflrec(i)
            read_h[R.VFLREC(i) // WORD] = lambda i=i: self._load(R.VFLRE(i))
        for n in range(64):
            read_h[R.PFMAILBOX(n) // WORD] = lambda n=n: (
                int(self.mbx[n]) & (R.PFMAILBOX_VFU | R.PFMAILBOX_PFU)
            )
            write_h[R.PFMAILBOX(n) // WORD] = lambda v, n=n: self._write_pfmailbox(n, v)
        for i in range(R.MAX_QUEUES):
            write_h[R.TDT(i) // WORD] = lambda v, i=i: self._write_tdt(i, v)
        self._pf_implemented = implemented
        self._pf_alias = alias
        self._pf_read_h = read_h
        self._pf_write_h = write_h

    def pf_implements(self, offset: int) -> bool:
        """Whether the PF's BAR0 has a register at ``offset``."""
        return (
            0 <= offset < R.PF_BAR0_SIZE and offset % WORD == 0 and bool(self._pf_implemented[offset // WORD])
        )

    def pf_read(self, offset: int) -> int:
        """A PF BAR0 read (offset already validated)."""
        word = offset // WORD
        if not self._pf_implemented[word]:
            return 0
        word = self._pf_alias.get(word, word)
        handler = self._pf_read_h.get(word)
        return handler() & U32 if handler is not None else int(self.regs[word])

    def pf_write(self, offset: int, value: int) -> None:
        """A PF BAR0 write (offset and value already validated)."""
        word = offset // WORD
        if not self._pf_implemented[word]:
            self.pf.bad_accesses += 1
            raise RegisterAccessError(
                f"{self.pf.name}: no register at offset {offset:#07x} (write of {value:#x})"
            )
        word = self._pf_alias.get(word, word)
        handler = self._pf_write_h.get(word)
        if handler is not None:
            handler(value)
        else:
            self.regs[word] = value

    def _w1c(self, offset: int) -> Callable[[int], None]:
        return lambda v: self._store(offset, self._load(offset) & ~v)

    # -- PF interrupt causes ------------------------------------------------------------------
    def raise_pf_cause(self, cause: int) -> None:
        """Set EICR cause bits; if unmasked, the PF's "other" MSI-X vector fires (moderated)."""
        self.pf.msix.raise_vectors(cause & 0xFFFF)
        self.pf.msix.raise_other(cause)

    def rx_queue_written(self, queue_counts: np.ndarray) -> None:
        """The datapath wrote ``queue_counts[q]`` frames to PF queue ``q`` in the last burst.

        Each queue that got frames raises its RX cause on the owning function's vector (the
        `router`): a VF's pool through that VF's VTIVAR (VF queue ``q % queues_per_pool``), any
        other queue (the PF's pool, or every queue with SR-IOV off) through the PF's IVAR.
        Moderation (EITR) decides when the vector fires; the message reaches its handler
        ``irq_latency_ns`` later on the simulation clock.
        """
        counts = np.asarray(queue_counts)
        if counts.ndim != 1 or counts.shape[0] > R.MAX_QUEUES or counts.dtype.kind not in "iu":
            raise ConfigError(
                f"queue_counts must be a 1-D integer array of at most {R.MAX_QUEUES} queues, "
                f"got shape {counts.shape} dtype {counts.dtype}"
            )
        self.router.raise_queues(counts.nonzero()[0].tolist())

    def rx_queues_raised(self, queues: list[int]) -> None:
        """`rx_queue_written` for a caller that already knows which PF queues got frames."""
        self.router.raise_queues(list(queues))

    def tx_queues_completed(self, queues: list[int]) -> None:
        """Transmit completions on PF queues ``queues``: their TX causes, as `rx_queues_raised`."""
        self.router.raise_queues(list(queues), tx=True)

    def plain_register(self, fn: PciFunction, offset: int) -> tuple[int, int, int] | None:
        """Where a BAR0 write by ``fn`` at ``offset`` lands when it is plain storage (no side
        effect beyond the stored value, e.g. a receive tail RDT/VFRDT): ``(word, guard_word,
        guard_value)``: ``regs[word] = value`` is the same write as ``fn.write32(offset, value)``
        (for a valid 32-bit value) while ``regs[guard_word] == guard_value`` (a VF's queue window
        moves with GCR_EXT's queues per pool). None when the write has side effects or does not
        land in the PF register file; then use ``fn.write32``. A driver's fast path for its
        per-poll tail write."""
        gcr = R.GCR_EXT // WORD
        where = self._pf_file_offset(fn, offset)
        if where is None or where // WORD == gcr:
            return None
        # what else has side effects: the PF's write handlers; through a VF window, the TX tail
        if (where // WORD in self._pf_write_h) if fn is self.pf else (where in _TDT_OFFSETS):
            return None
        return where // WORD, gcr, int(self.regs[gcr])

    def tx_tail_register(self, fn: PciFunction, offset: int) -> tuple[int, int, int, int] | None:
        """Where a transmit tail write (TDT / VFTDT) by ``fn`` at ``offset`` lands: ``(queue, word,
        guard_word, guard_value)``: ``regs[word] = value`` followed by ``tx_doorbell(queue)`` is the
        same write as ``fn.write32(offset, value)`` (for a valid 32-bit value) while ``regs[guard_word]
        == guard_value`` (a VF's queue window moves with GCR_EXT's queues per pool). None when
        ``offset`` is not a TX tail of ``fn``. A driver's fast path for its per-burst doorbell."""
        gcr = R.GCR_EXT // WORD
        where = self._pf_file_offset(fn, offset)
        queue = _TDT_OFFSETS.get(where) if where is not None else None
        if queue is None:
            return None
        return queue, where // WORD, gcr, int(self.regs[gcr])

    def _pf_file_offset(self, fn: PciFunction, offset: int) -> int | None:
        """The byte offset in the PF register file where a write by ``fn`` at ``offset`` lands
        (the PF's own aliases resolved, a VF's queue window followed), or None when it lands
        elsewhere (a VF's own registers, mailbox, reset, interrupts; an unimplemented word)."""
        offset = _check_access(offset, fn.bar_size)
        if fn is self.pf:
            word = offset // WORD
            if not self._pf_implemented[word]:
                return None
            return self._pf_alias.get(word, word) * WORD
        if not isinstance(fn, VfFunction) or fn.device is not self:
            return None
        if offset in (R.VFMAILBOX, R.VFCTRL) or offset in VfInterrupts.REGISTERS:
            return None
        kind, where = self._vf_window(fn.index, offset)
        return where if kind == "pf" else None

    def _write_tdt(self, queue: int, value: int) -> None:
        self._store(R.TDT(queue), value)
        if self.tx_doorbell is not None:
            self.tx_doorbell(queue)

    def _read_ssvpc(self) -> int:
        value = self._load(R.SSVPC)
        self._store(R.SSVPC, 0)
        return value

    def _write_qde(self, value: int) -> None:
        idx = (value & R.QDE_IDX_MASK) >> R.QDE_IDX_SHIFT
        if value & R.QDE_WRITE:
            self.qde[idx] = value & (R.QDE_ENABLE | R.QDE_HIDE_VLAN)
        self._store(R.QDE, (value & R.QDE_IDX_MASK) | int(self.qde[idx]))

    def _write_vflrec(self, i: int) -> Callable[[int], None]:
        return lambda v: self._store(R.VFLRE(i), self._load(R.VFLRE(i)) & ~v)

    # -- resets and link ----------------------------------------------------------------------
    def _write_ctrl(self, value: int) -> None:
        if value & R.CTRL_RST:
            self.pf_reset()
            return
        self._store(R.CTRL, value)

    def pf_reset(self) -> None:
        """A PF software reset (CTRL.RST): the whole port resets; VFs see RSTI until PFRSTD."""
        self.power_on_reset()

    def _write_ctrl_ext(self, value: int) -> None:
        old = self._load(R.CTRL_EXT)
        self._store(R.CTRL_EXT, value)
        if value & R.CTRL_EXT_PFRSTD and not old & R.CTRL_EXT_PFRSTD:
            # PF reset done: every VF's RSTI drops and RSTD (read-to-clear) rises.
            self.mbx[:] = (self.mbx & ~np.uint32(R.VFMAILBOX_RSTI)) | np.uint32(R.VFMAILBOX_RSTD)

    @property
    def link_up(self) -> bool:
        """The port has carrier: LINKS.UP."""
        return bool(self._load(R.LINKS) & R.LINKS_UP)

    def set_link(self, up: bool) -> None:
        """The physical link goes up or down (cable, peer): LINKS/VFLINKS follow, LSC is raised."""
        if bool(up) == self.link_up:
            return
        self._store(R.LINKS, (R.LINKS_UP | R.LINKS_SPEED_10G_82599) if up else 0)
        self.raise_pf_cause(R.EICR_LSC)

    def rx_arrivals(self, fn: PciFunction, queue: int) -> np.ndarray:
        """The arrival times per descriptor of ``fn``'s receive queue ``queue`` (a VF's queue:
        where it lies in the PF's queues now), for a driver's ring to read as timestamps."""
        q = queue if fn is self.pf else self.vf_queue(fn.index, queue)  # type: ignore[attr-defined]
        if not 0 <= q < R.MAX_QUEUES:
            raise ConfigError(f"{fn.name}: queue {queue} is outside the port's {R.MAX_QUEUES} queues")
        return self.rx_arrival[q]

    # -- the mailbox, PF side -----------------------------------------------------------------
    def _write_pfmailbox(self, n: int, value: int) -> None:
        state = int(self.mbx[n])
        if value & R.PFMAILBOX_RVFU:
            state &= ~R.VFMAILBOX_VFU
            icr = R.MBVFICR(n >> 4)
            bits = (R.MBVFICR_VFREQ_VF1 | R.MBVFICR_VFACK_VF1) << (n % 16)
            self._store(icr, self._load(icr) & ~bits)
        if value & R.PFMAILBOX_PFU:
            if not state & R.VFMAILBOX_VFU:
                state |= R.VFMAILBOX_PFU
        else:
            state &= ~R.VFMAILBOX_PFU
        notify = False
        if value & R.PFMAILBOX_STS:
            state |= R.VFMAILBOX_PFSTS
            notify = True
        if value & R.PFMAILBOX_ACK:
            state |= R.VFMAILBOX_PFACK
            notify = True
        self.mbx[n] = state
        if notify and n < len(self.vfs):
            self.raise_vf_misc_cause(n)

    # ==========================================================================================
    # VF register windows
    def _vf_window(self, n: int, offset: int) -> tuple[str, int]:
        """Classify a VF BAR0 offset: ('pf', pf offset) | ('vf', word) | ('mbx'|'ro'|'none', ...)."""
        if R.VFMBMEM <= offset < R.VFMBMEM + 4 * R.VFMAILBOX_SIZE:
            return "pf", R.PFMBMEM(n) + (offset - R.VFMBMEM)
        for base, pf_base_of in ((R.VF_RX_QUEUE_BASE, R.RDBAL), (R.VF_TX_QUEUE_BASE, R.TDBAL)):
            if base <= offset < base + R.VF_MAX_QUEUES * R.QUEUE_BLOCK:
                q, field = divmod(offset - base, R.QUEUE_BLOCK)
                fields = _QUEUE_RX_FIELDS if base == R.VF_RX_QUEUE_BASE else _QUEUE_TX_FIELDS
                if q == 0 and offset in _VF_STAT_REGS:
                    return "stat", offset
                if q < self.queues_per_pool() and field in fields:
                    return "pf", pf_base_of(self.vf_queue(n, q)) + field
                return "none", 0
        if offset in _VF_PRIVATE:
            return "vf", offset // WORD
        return "none", 0

    def vf_read(self, n: int, offset: int) -> int:
        """A read of VF ``n``'s BAR0 (offset already validated)."""
        if offset == R.VFMAILBOX:
            value = int(self.mbx[n]) & _MBX_VF_VISIBLE
            self.mbx[n] = int(self.mbx[n]) & ~R.VFMAILBOX_R2C_BITS
            return value
        if offset == R.VFLINKS:
            return self._load(R.LINKS)
        if offset in VfInterrupts.REGISTERS:
            return self._vf_pool[n].msix.read(offset)
        kind, where = self._vf_window(n, offset)
        if kind == "pf":
            return self._load(where)
        if kind == "vf":
            return int(self.vf_regs[n, where])
        if kind == "stat":
            return self.vf_stat(n, where)
        return 0

    def vf_write(self, n: int, offset: int, value: int) -> None:
        """A write to VF ``n``'s BAR0 (offset and value already validated)."""
        if offset in _VF_IRQ_REGISTERS:  # (VfFunction.write32 does this case itself, the same way)
            self._vf_pool[n].msix.write(offset, value)
            return
        if offset == R.VFMAILBOX:
            self._write_vfmailbox(n, value)
            return
        if offset == R.VFCTRL:
            if value & R.CTRL_RST:
                self.vf_function_reset(n)
            return
        kind, where = self._vf_window(n, offset)
        if kind == "pf":
            if where in _TDT_OFFSETS:
                self._write_tdt(_TDT_OFFSETS[where], value)
            else:
                self._store(where, value)
        elif kind == "vf":
            self.vf_regs[n, where] = value
        elif kind == "stat" or offset in (R.VFSTATUS, R.VFLINKS):
            return  # read-only
        else:
            vf = self.vfs[n]
            vf.bad_accesses += 1
            raise RegisterAccessError(f"{vf.name}: no register at offset {offset:#06x} (write of {value:#x})")

    def vf_stat(self, n: int, offset: int) -> int:
        """The VF statistics registers (VFGPRC...), from the device's per-pool counters."""
        return self.state.vf_stat_register(n, offset)

    # -- the mailbox, VF side -----------------------------------------------------------------
    def _write_vfmailbox(self, n: int, value: int) -> None:
        state = int(self.mbx[n])
        if value & R.VFMAILBOX_VFU:
            if not state & R.VFMAILBOX_PFU:
                state |= R.VFMAILBOX_VFU
        else:
            state &= ~R.VFMAILBOX_VFU
        self.mbx[n] = state
        cause = 0
        if value & R.VFMAILBOX_REQ:
            cause |= R.MBVFICR_VFREQ_VF1 << (n % 16)
        if value & R.VFMAILBOX_ACK:
            cause |= R.MBVFICR_VFACK_VF1 << (n % 16)
        if cause:
            icr = R.MBVFICR(n >> 4)
            self._store(icr, self._load(icr) | cause)
            self.raise_pf_cause(R.EICR_MAILBOX)

    # -- VF interrupt causes ------------------------------------------------------------------
    def raise_vf_misc_cause(self, n: int) -> None:
        """The mailbox ("other") cause of VF ``n``, on the vector VTIVAR_MISC names."""
        if n < len(self.vfs):
            self.vfs[n].msix.raise_mailbox()

    def raise_vf_cause(self, n: int, causes: int) -> None:
        """Set VTEICR bits of VF ``n`` (bit v = vector v); each vector fires as moderation allows."""
        if n < len(self.vfs):
            self.vfs[n].msix.raise_causes(causes)

    # -- VF function-level reset --------------------------------------------------------------
    def vf_function_reset(self, n: int) -> None:
        """VFCTRL.RST or FLR: queues stop, pool RX/TX disabled, VFLRE raised to the PF."""
        with self.dma_lock:
            self._vf_reset_registers(n)
            reg, bit = R.VFLRE(n >> 5), 1 << (n % 32)
            self._store(reg, self._load(reg) | bit)
        self.raise_pf_cause(R.EICR_MAILBOX)

    def _vf_reset_registers(self, n: int) -> None:
        qpp = self.queues_per_pool()
        for q in range(qpp):
            pq = self.vf_queue(n, q)
            if pq < R.MAX_QUEUES:
                self._store(R.RXDCTL(pq), self._load(R.RXDCTL(pq)) & ~R.RXDCTL_ENABLE)
                self._store(R.TXDCTL(pq), self._load(R.TXDCTL(pq)) & ~R.TXDCTL_ENABLE)
        for reg in (R.VFRE(n >> 5), R.VFTE(n >> 5)):
            self._store(reg, self._load(reg) & ~(1 << (n % 32)))
        rsti = int(self.mbx[n]) & R.VFMAILBOX_RSTI
        self.mbx[n] = (int(self.mbx[n]) & R.VFMAILBOX_PFU) | rsti
        self.vf_regs[n] = 0
        if n < len(self._vf_pool):
            self._vf_pool[n].msix.reset()


_VF_STAT_REGS = frozenset(
    {R.VFGPRC, R.VFGORC_LSB, R.VFGORC_MSB, R.VFMPRC, R.VFGPTC, R.VFGOTC_LSB, R.VFGOTC_MSB}
)
_VF_PRIVATE = frozenset(
    {R.VFCTRL, R.VFSTATUS, R.VFLINKS, R.VTEICR, R.VTEICS, R.VTEIMS, R.VTEIMC, R.VTEIAC, R.VTEIAM,
     R.VTIVAR_MISC, R.VFPSRTYPE, R.VFMAILBOX}
    | {R.VTIVAR(x) for x in range(4)}
    | {R.VTEITR(x) for x in range(3)}
)  # fmt: skip
_TDT_OFFSETS = {R.TDT(q): q for q in range(R.MAX_QUEUES)}  # PF offset of a TX tail -> its queue
