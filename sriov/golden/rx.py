"""Golden model of the receive flow (twin of ``sriov/_fp_classify.pxi`` + ``sriov/_fp_rx.pxi``).

Written to be read: each function is one paragraph of ``spec/MODEL.md`` ("Frames at the
port", "Pool selection", "Into the ring"). The compiled kernel must agree with it byte for
byte: verdicts, guest memory, descriptors, ring registers, counters and the IOMMU fault log.

Decisions the model makes where MODEL.md is silent (the compiled kernel makes the same):

* VT mode off (VT_CTL.VT_ENABLE clear): a plain NIC. Pool 0 is the PF, its queue is PF
  queue 0 in the PF's IOMMU domain. Broadcast is accepted with FCTRL.BAM; other frames
  when a valid RAR entry equals the destination (MPSAR ignored), unicast also with
  FCTRL.UPE, multicast also with FCTRL.MPE or its MTA bit set. The global VLAN filter
  (VLNCTRL.VFE + VFTA) applies; VLVF/VMOLR/VFRE/default pool do not.
* A tagged capture shorter than 18 bytes is malformed even though padding would make it
  60 bytes: the length check is on the bytes captured (counter ``rx_length_errors``).
* Queue registers are read as the hardware would: RDBAL bits 6:0 ignored (128-byte
  alignment), RDLEN bits 19:7, RDH/RDT bits 15:0; a ring of zero descriptors, or head or
  tail outside the ring, offers no descriptor. SRRCTL.BSIZEPKT = 0 means 2 KiB (the
  register's reset value on 82599).
* A queue without drop enable (neither SRRCTL.DROP_EN nor QDE) that has no descriptor
  drops the copy as ``rx_missed_errors`` (there is no packet buffer to hold it in a batch
  model); with drop enable it is ``rx_no_dma_resources``. Both count ``rx_dropped`` of the pool.
* On a DMA fault nothing is written and the head does not move: the descriptor stays with
  the hardware until the driver fixes it, so a broken ring hurts only its own function.
* VP and the VLAN tag are written on the EOP descriptor only (the one drivers read them from).
"""

from __future__ import annotations

import enum

import numpy as np

from sriov.errors import ConfigError
from sriov.golden.filters import mac_key, mta_vector
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.hw.iommu import (
    FAULT_NOT_MAPPED,
    FAULT_READ_ONLY,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_BUFFER_MASK,
    PTE_BUFFER_SHIFT,
    PTE_OFFSET_MASK,
    PTE_VALID,
    PTE_WRITABLE,
)

W = 4  # bytes per register word
U64 = (1 << 64) - 1
BROADCAST = b"\xff" * 6


class DropReason(enum.IntEnum):
    """Why a frame (or one pool's copy of it) was not delivered; DELIVERED when it was."""

    DELIVERED = 0
    LENGTH_ERROR = 1  # rx_length_errors: shorter than a header, or a truncated VLAN tag
    LONG_LENGTH = 2  # rx_long_length_errors: longer than MAXFRS (FCS included)
    VLAN_FILTERED = 3  # rx_vlan_filtered: tagged, VLAN filter on, VFTA bit clear
    NO_POOL = 4  # rx_no_pool: the switch selected no pool
    NO_DMA_RESOURCES = 5  # rx_no_dma_resources: the queue had no descriptor (drop enable on)
    DMA_FAULT = 6  # rx_dma_faults: ring or buffer address not mapped / not writable
    QUEUE_DISABLED = 7  # rx_queue_disabled: RXDCTL.ENABLE clear (or no such queue)
    MISSED = 8  # rx_missed_errors: no descriptor and drop enable off
    LINK_DOWN = 9  # rx_link_down: offered while the port's link was down; it never entered the port


#: The port counter each drop reason increments (one counter per reason).
DROP_COUNTERS = {
    DropReason.LENGTH_ERROR: "rx_length_errors",
    DropReason.LONG_LENGTH: "rx_long_length_errors",
    DropReason.VLAN_FILTERED: "rx_vlan_filtered",
    DropReason.NO_POOL: "rx_no_pool",
    DropReason.NO_DMA_RESOURCES: "rx_no_dma_resources",
    DropReason.DMA_FAULT: "rx_dma_faults",
    DropReason.QUEUE_DISABLED: "rx_queue_disabled",
    DropReason.MISSED: "rx_missed_errors",
    DropReason.LINK_DOWN: "rx_link_down",
}
# and the pool counter for the per-copy reasons
_POOL_DROP_COUNTERS = {
    DropReason.NO_DMA_RESOURCES: "rx_dropped",
    DropReason.MISSED: "rx_dropped",
    DropReason.DMA_FAULT: "rx_dma_faults",
    DropReason.QUEUE_DISABLED: "rx_queue_disabled",
}


_STORE_MODES = ("stream", "plain")
_rx_stores = "stream"


def set_rx_stores(mode: str) -> None:
    """The compiled kernels' store mode (streaming or plain stores of frame bytes; see
    ``sriov._fastpath.set_rx_stores``). Plain Python has one way to write bytes: the mode is
    checked and kept, and changes nothing here, as it changes no byte there."""
    global _rx_stores
    if mode not in _STORE_MODES:
        raise ConfigError(f"store mode must be one of {sorted(_STORE_MODES)}, got {mode!r}")
    _rx_stores = mode


def rx_stores() -> str:
    """The store mode `set_rx_stores` set."""
    return _rx_stores


def _bit(table: np.ndarray, index: int) -> bool:
    """Bit ``index`` of a bit table stored as 32-bit registers (MTA, UTA, VFTA)."""
    return bool(int(table[index >> 5]) >> (index & 31) & 1)


def _pools_with(vmolr: np.ndarray, flag: int) -> int:
    """Bitmap of the pools whose VMOLR has ``flag`` set."""
    return sum(1 << p for p, v in enumerate(vmolr.tolist()) if v & flag)


# ----------------------------------------------------------------------------------------------
# Pool selection (MODEL.md "Pool selection"); reused by the transmit side's VEB.
def select_pools(
    regs: np.ndarray, da: bytes, tagged: bool, vid: int, from_wire: bool = True
) -> tuple[int, int]:
    """The L2 switch: ``(DropReason, pool bitmap)`` for a frame's destination and VLAN.

    ``regs`` is the device's register file; ``from_wire`` False (a VEB frame) never falls
    back to the default pool.
    """
    reg = lambda off: int(regs[off // W])  # noqa: E731 - a register read, as the hardware does it
    vlnctrl = reg(R.VLNCTRL)
    vfe = bool(vlnctrl & R.VLNCTRL_VFE)
    mo = reg(R.MCSTCTRL) & R.MCSTCTRL_MO_MASK
    vfta = regs[R.VFTA(0) // W : R.VFTA(0) // W + R.NUM_VFTA]
    rar = regs[R.RAR_BASE // W : R.RAR_BASE // W + 2 * R.NUM_RAR].reshape(R.NUM_RAR, 2)
    mpsar = regs[R.MPSAR_LO(0) // W : R.MPSAR_LO(0) // W + 2 * R.NUM_RAR].view(np.uint64)
    broadcast = da == BROADCAST
    multicast = bool(da[0] & 1)

    # 1. global VLAN filter
    if tagged and vfe and not _bit(vfta, vid):
        return DropReason.VLAN_FILTERED, 0

    key = mac_key(da)
    rar_hit, rar_union = False, 0
    for (ral, rah), bitmap in zip(rar.tolist(), mpsar.tolist(), strict=True):
        if rah & R.RAH_AV and ((rah & 0xFFFF) << 32 | ral) == key:
            rar_hit, rar_union = True, rar_union | bitmap

    vt_ctl = reg(R.VT_CTL)
    if not vt_ctl & R.VT_CTL_VT_ENABLE:
        # Not in VT mode: a plain NIC whose only pool (0) is the PF.
        fctrl = reg(R.FCTRL)
        mta = regs[R.MTA(0) // W : R.MTA(0) // W + R.NUM_MTA]
        if broadcast:
            accept = bool(fctrl & R.FCTRL_BAM)
        elif multicast:
            accept = rar_hit or bool(fctrl & R.FCTRL_MPE) or _bit(mta, mta_vector(da, mo))
        else:
            accept = rar_hit or bool(fctrl & R.FCTRL_UPE)
        return (DropReason.DELIVERED, 1) if accept else (DropReason.NO_POOL, 0)

    vmolr = regs[R.VMOLR(0) // W : R.VMOLR(0) // W + R.MAX_POOLS]
    # 2. MAC stage
    if broadcast:
        pools = _pools_with(vmolr, R.VMOLR_BAM)
    else:
        pools = rar_union
        if not pools:
            if multicast:
                mta = regs[R.MTA(0) // W : R.MTA(0) // W + R.NUM_MTA]
                pools = _pools_with(vmolr, R.VMOLR_MPE)
                if _bit(mta, mta_vector(da, mo)):
                    pools |= _pools_with(vmolr, R.VMOLR_ROMPE)
            else:
                uta = regs[R.UTA(0) // W : R.UTA(0) // W + R.NUM_UTA]
                if _bit(uta, mta_vector(da, mo)):
                    pools = _pools_with(vmolr, R.VMOLR_ROPE)
    # 3. VLAN stage
    if vfe:
        if tagged:
            vlvf = regs[R.VLVF(0) // W : R.VLVF(0) // W + R.NUM_VLVF].tolist()
            vlvfb = regs[R.VLVFB(0) // W : R.VLVFB(0) // W + 2 * R.NUM_VLVF].view(np.uint64).tolist()
            members = 0
            for entry, bitmap in zip(vlvf, vlvfb, strict=True):
                if entry & R.VLVF_VIEN and entry & R.VLVF_VLANID_MASK == vid:
                    members |= bitmap
            pools &= members
        else:
            pools &= _pools_with(vmolr, R.VMOLR_AUPE)
    # 4. default pool
    if not pools and not multicast and from_wire and not vt_ctl & R.VT_CTL_DIS_DEFPL:
        pools = 1 << ((vt_ctl & R.VT_CTL_POOL_MASK) >> R.VT_CTL_POOL_SHIFT)
    # 5. receive enable
    pools &= int(regs[R.VFRE(0) // W : R.VFRE(0) // W + 2].view(np.uint64)[0])
    # 6.
    return (DropReason.DELIVERED, pools) if pools else (DropReason.NO_POOL, 0)


# ----------------------------------------------------------------------------------------------
# The port: length checks and the VLAN tag (MODEL.md "Frames at the port")
def parse_frame(frame: bytes, vet: int, max_frame: int) -> tuple[int, bytes, bool, int]:
    """``(DropReason, padded frame, tagged, TCI)`` of one captured frame."""
    if len(frame) < R.ETH_HLEN:
        return DropReason.LENGTH_ERROR, b"", False, 0
    tagged = int.from_bytes(frame[12:14], "big") == vet
    if tagged and len(frame) < R.ETH_HLEN + R.VLAN_HLEN:
        return DropReason.LENGTH_ERROR, b"", False, 0
    padded = frame + bytes(max(0, R.ETH_ZLEN - len(frame)))  # the sender's MAC pads to 60
    if len(padded) + R.ETH_FCS_LEN > max_frame:
        return DropReason.LONG_LENGTH, b"", False, 0
    tci = int.from_bytes(frame[14:16], "big") if tagged else 0
    return DropReason.DELIVERED, padded, tagged, tci


# ----------------------------------------------------------------------------------------------
# Into the ring (MODEL.md "Into the ring")
class _Dma:
    """DMA writes of one function through its IOMMU domain (page by page, as the IOMMU does)."""

    def __init__(self, iommu, domain) -> None:
        self.iommu = iommu
        self.domain = domain

    def translate(self, iova: int, size: int) -> tuple[np.ndarray, int] | tuple[None, int]:
        """Host view for a write of ``size`` bytes inside one page, or (None, fault kind)."""
        page = iova >> PAGE_SHIFT
        table = self.domain.page_table
        if page >= len(table):
            return None, FAULT_NOT_MAPPED
        pte = int(table[page])
        if not pte & int(PTE_VALID):
            return None, FAULT_NOT_MAPPED
        if not pte & int(PTE_WRITABLE):
            return None, FAULT_READ_ONLY
        buffer_id = (pte >> PTE_BUFFER_SHIFT) & PTE_BUFFER_MASK
        offset = (pte & PTE_OFFSET_MASK) + (iova & (PAGE_SIZE - 1))
        sizes = self.iommu.buffer_sizes
        if buffer_id >= len(sizes) or offset + size > int(sizes[buffer_id]):
            return None, FAULT_NOT_MAPPED  # a page table entry beyond its buffer: refuse, never write
        return self.iommu.buffer(buffer_id)[offset : offset + size], 0

    def pieces(self, iova: int, size: int):
        """Split ``[iova, iova+size)`` at page boundaries: (iova, length) pairs."""
        while size > 0:
            span = min(size, PAGE_SIZE - (iova & (PAGE_SIZE - 1)))
            yield iova, span
            iova = (iova + span) & U64
            size -= span

    def fault(self, iova: int, kind: int) -> None:
        self.iommu.record_fault(self.domain.id, iova, kind)


def queue_of_pool(regs: np.ndarray, pool: int) -> int:
    """The PF queue a pool's frames go to: its first queue (VT mode) or queue 0."""
    if not int(regs[R.VT_CTL // W]) & R.VT_CTL_VT_ENABLE:
        return 0
    mode = int(regs[R.GCR_EXT // W]) & R.GCR_EXT_VT_MODE_MASK
    qpp = {R.GCR_EXT_VT_MODE_16: 8, R.GCR_EXT_VT_MODE_32: 4}.get(mode, 2)
    return pool * qpp


ARRIVAL_SLOTS = 65536  # per queue: the largest ring RDLEN can describe (65528 descriptors)


def arrival_table() -> np.ndarray:
    """A device's arrival times: per PF queue and descriptor, when the frame that starts at that
    descriptor arrived (ns). Model metadata the driver reads as a hardware timestamp."""
    return np.zeros((R.MAX_QUEUES, ARRIVAL_SLOTS), np.int64)


def deliver(
    device, pool: int, frame: bytes, tagged: bool, tci: int, arrival_ns: int = 0
) -> tuple[int, int, int]:
    """One pool's copy into its queue: ``(DropReason, PF queue, bytes written)``.

    Writes guest memory (buffers, then descriptors), the frame's arrival time at its first
    descriptor (``device.rx_arrival``), and advances RDH.
    """
    regs = device.regs
    q = queue_of_pool(regs, pool)
    if q >= R.MAX_QUEUES:
        return DropReason.QUEUE_DISABLED, q, 0

    def reg(f):
        return int(regs[(R.RDBAL(q) + f) // W])

    rxdctl, srrctl = reg(R.Q_RXDCTL), reg(R.Q_SRRCTL)
    if not rxdctl & R.RXDCTL_ENABLE:
        return DropReason.QUEUE_DISABLED, q, 0
    base = (reg(R.Q_RDBAH) << 32) | (reg(R.Q_RDBAL) & 0xFFFFFF80)
    count = (reg(R.Q_RDLEN) & 0xFFF80) // R.RX_DESC_SIZE
    head, tail = reg(R.Q_RDH) & 0xFFFF, reg(R.Q_RDT) & 0xFFFF
    bufsize = ((srrctl & R.SRRCTL_BSIZEPKT_MASK) << R.SRRCTL_BSIZEPKT_SHIFT) or 2048
    strip = tagged and bool(rxdctl & R.RXDCTL_VME)
    drop_en = bool(srrctl & R.SRRCTL_DROP_EN) or bool(device.qde[q] & R.QDE_ENABLE)

    data = frame[:12] + frame[16:] if strip else frame  # VLAN strip (RXDCTL.VME)
    need = -(-len(data) // bufsize)
    avail = (tail - head) % count if count and head < count and tail < count else 0
    if avail < need:  # not enough descriptors: the whole frame is dropped, nothing taken
        return (DropReason.NO_DMA_RESOURCES if drop_en else DropReason.MISSED), q, 0

    owner = device.vfs[pool] if pool < len(device.vfs) and _vt(regs) else device.pf
    dma = _Dma(device.iommu, owner.domain)
    # Phase 1: translate every descriptor and buffer byte; the first fault stops the copy.
    descs: list[tuple[np.ndarray, int, int]] = []  # (descriptor view, buffer address, length)
    idx = head
    for d in range(need):
        daddr = (base + idx * R.RX_DESC_SIZE) & U64
        view, kind = dma.translate(daddr, R.RX_DESC_SIZE)
        if view is None:
            dma.fault(daddr, kind)
            return DropReason.DMA_FAULT, q, 0
        addr = int.from_bytes(view[:8].tobytes(), "little")
        length = min(bufsize, len(data) - d * bufsize)
        for piece, span in dma.pieces(addr, length):
            if dma.translate(piece, span)[0] is None:
                dma.fault(piece, dma.translate(piece, span)[1])
                return DropReason.DMA_FAULT, q, 0
        descs.append((view, addr, length))
        idx = (idx + 1) % count
    # Phase 2: the frame into the buffers, then the write-back descriptors.
    pos = 0
    for _view, addr, length in descs:
        for piece, span in dma.pieces(addr, length):
            dma.translate(piece, span)[0][:] = np.frombuffer(data[pos : pos + span], np.uint8)
            pos += span
    for d, (view, _addr, length) in enumerate(descs):
        last = d == need - 1
        status = R.RXD_STAT_DD | (R.RXD_STAT_EOP if last else 0) | (R.RXD_STAT_VP if last and tagged else 0)
        wb = (
            bytes(8)
            + status.to_bytes(4, "little")
            + length.to_bytes(2, "little")
            + (tci if last and tagged else 0).to_bytes(2, "little")
        )
        view[:] = np.frombuffer(wb, np.uint8)
    arrivals = getattr(device, "rx_arrival", None)
    if arrivals is not None:
        arrivals[q, head] = arrival_ns
    regs[R.RDH(q) // W] = idx
    return DropReason.DELIVERED, q, len(data)


def _vt(regs: np.ndarray) -> bool:
    return bool(int(regs[R.VT_CTL // W]) & R.VT_CTL_VT_ENABLE)


# ----------------------------------------------------------------------------------------------
def check_batch_arrays(data, offsets, lengths, timestamps, n: int) -> None:
    """The batch-boundary checks both implementations make (ConfigError, nothing changed)."""
    for name, arr, dtype in (
        ("data", data, np.uint8),
        ("offsets", offsets, np.int64),
        ("lengths", lengths, np.uint32),
        ("timestamps", timestamps, np.int64),
    ):
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
            raise ConfigError(f"{name} must be a 1-D numpy {np.dtype(dtype).name} array")
    if len(offsets) < n or len(lengths) < n or len(timestamps) < n:
        raise ConfigError(f"{n} frames asked but the arrays hold {min(len(offsets), len(lengths))}")
    for i in range(n):
        off, length = int(offsets[i]), int(lengths[i])
        if off < 0 or off + length > len(data):
            raise ConfigError(
                f"frame {i} ([{off}, {off + length})) lies outside the {len(data)}-byte data buffer"
            )


def check_out_arrays(selected, delivered, reasons, n: int) -> None:
    """The output arrays: uint64 selected and delivered bitmaps, uint8 reasons, n slots each."""
    for name, arr, dtype in (("selected", selected, np.uint64), ("delivered", delivered, np.uint64),
                             ("reasons", reasons, np.uint8)):  # fmt: skip
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1 or len(arr) < n:
            raise ConfigError(f"{name} must be a 1-D numpy {np.dtype(dtype).name} array of >= {n} slots")


class RxKernel:
    """The receive flow of one port (golden twin of the compiled ``RxKernel``).

    ``receive`` runs a whole batch; ``bind`` + ``burst(n)`` is the embedding entry point
    (arrays bound once, frames ``[0, n)`` of them run per call). ``queue_frames[q]`` holds
    the frames written to PF queue ``q`` by the last call, ``written`` those queues in ascending
    order (the interrupt causes to raise).
    """

    def __init__(self, device) -> None:
        self.device = device
        self.queue_frames = np.zeros(R.MAX_QUEUES, dtype=np.uint32)
        self.written: list[int] = []
        self._bound: tuple | None = None

    def receive(self, data, offsets, lengths, timestamps, selected, delivered, reasons) -> int:
        """Run every frame of the batch; returns the frames delivered to at least one pool."""
        n = len(offsets) if isinstance(offsets, np.ndarray) else 0
        check_batch_arrays(data, offsets, lengths, timestamps, n)
        check_out_arrays(selected, delivered, reasons, n)
        if len(lengths) != n or len(timestamps) != n:
            raise ConfigError(f"offsets, lengths and timestamps differ in length ({n}, {len(lengths)})")
        return self._run(data, offsets, lengths, timestamps, n, selected, delivered, reasons)

    def bind(self, data, offsets, lengths, timestamps, selected, delivered, reasons) -> None:
        """Bind the arrays `burst` works on (checked once here, their bounds again per burst)."""
        n = len(offsets) if isinstance(offsets, np.ndarray) else 0
        check_batch_arrays(data, offsets, lengths, timestamps, 0)
        check_out_arrays(selected, delivered, reasons, n)
        if len(lengths) != n or len(timestamps) != n:
            raise ConfigError(f"offsets, lengths and timestamps differ in length ({n}, {len(lengths)})")
        self._bound = (data, offsets, lengths, timestamps, selected, delivered, reasons)

    def burst(self, n: int) -> int:
        """Run frames ``[0, n)`` of the bound arrays; returns the frames delivered."""
        if self._bound is None:
            raise ConfigError("burst() before bind(): bind the preallocated arrays first")
        data, offsets, lengths, timestamps, selected, delivered, reasons = self._bound
        if not 0 <= n <= len(offsets):
            raise ConfigError(f"burst of {n} frames; the bound arrays hold 0..{len(offsets)}")
        check_batch_arrays(data, offsets, lengths, timestamps, n)
        return self._run(data, offsets, lengths, timestamps, n, selected, delivered, reasons)

    # ------------------------------------------------------------------------------------------
    def _run(self, data, offsets, lengths, timestamps, n, selected, delivered, reasons) -> int:
        device = self.device
        regs = device.regs
        port = device.state.port_counters
        pool_c = device.state.pool_counters
        self.queue_frames[:] = 0

        def count(name: str, by: int = 1) -> None:
            port[C.PORT[name]] += np.uint64(by)

        vet = int(regs[R.VLNCTRL // W]) & R.VLNCTRL_VET
        max_frame = (int(regs[R.MAXFRS // W]) & R.MHADD_MFS_MASK) >> R.MHADD_MFS_SHIFT
        accepted = 0
        for i in range(n):
            raw = data[int(offsets[i]) : int(offsets[i]) + int(lengths[i])].tobytes()
            count("rx_frames_in")
            selected[i] = delivered[i] = 0
            reason, frame, tagged, tci = parse_frame(raw, vet, max_frame)
            if reason == DropReason.DELIVERED:
                reason, pools = select_pools(regs, frame[:6], tagged, tci & R.VLAN_VID_MASK)
            if reason != DropReason.DELIVERED:
                reasons[i] = reason
                count(DROP_COUNTERS[reason])
                continue
            count("rx_classified")
            selected[i] = pools
            multicast = bool(frame[0] & 1) and frame[:6] != BROADCAST
            got, first_failure = 0, DropReason.DELIVERED
            for pool in range(R.MAX_POOLS):
                if not pools >> pool & 1:
                    continue
                count("rx_pool_copies")
                pool_c[pool, C.POOL["rx_copies"]] += np.uint64(1)
                why, q, written = deliver(device, pool, frame, tagged, tci, int(timestamps[i]))
                if why == DropReason.DELIVERED:
                    got |= 1 << pool
                    pool_c[pool, C.POOL["rx_packets"]] += np.uint64(1)
                    pool_c[pool, C.POOL["rx_bytes"]] += np.uint64(written)
                    if multicast:
                        pool_c[pool, C.POOL["rx_multicast"]] += np.uint64(1)
                    self.queue_frames[q] += np.uint32(1)
                else:
                    count(DROP_COUNTERS[why])
                    pool_c[pool, C.POOL[_POOL_DROP_COUNTERS[why]]] += np.uint64(1)
                    if first_failure == DropReason.DELIVERED:
                        first_failure = why
            delivered[i] = got
            if got:
                accepted += 1
                count("rx_packets")
                count("rx_bytes", len(frame))
                if frame[:6] == BROADCAST:
                    count("rx_broadcast")
                elif multicast:
                    count("rx_multicast")
                reasons[i] = DropReason.DELIVERED
            else:
                reasons[i] = first_failure
        self.written = self.queue_frames.nonzero()[0].tolist()
        return accepted


# ----------------------------------------------------------------------------------------------
# The driver's side: scanning a receive ring for completed frames (twin of ``rx_harvest`` in
# ``sriov/_fp_rx.pxi``, used by `sriov.drivers.rings.RxRing`).
def rx_harvest(
    ring, bufs, ntc: int, budget: int, offsets, lengths, vlans, firsts=None
) -> tuple[int, int, int]:
    """Completed frames from next_to_clean: ``(frames, descriptors used, wrapping frame or -1)``.

    Takes descriptors while DD is set (at most count - 1), groups them by EOP into frames, stops
    after ``budget`` frames or before an incomplete frame; per frame writes the first buffer's
    address, the total length and the VLAN tag (when VP), and in ``firsts`` (when given) the
    index of its first descriptor.
    """
    count = ring.shape[0]
    if ring.ndim != 2 or ring.shape[1] != 4 or len(bufs) != count:
        raise ConfigError("ring must be (count, 4) words with one buffer address per descriptor")
    if not 0 <= ntc < count or budget < 0:
        raise ConfigError(f"next_to_clean {ntc} outside the {count}-descriptor ring, or negative budget")
    if min(len(offsets), len(lengths), len(vlans)) < budget:
        raise ConfigError(f"output arrays must hold the budget ({budget}) frames")
    frames = used = scanned = total = 0
    wrap = -1
    first = d = ntc
    while frames < budget and scanned < count - 1:
        status = int(ring[d, 2])
        if not status & R.RXD_STAT_DD:
            break
        word3 = int(ring[d, 3])  # read once: the length and the tag come from the same value
        total += word3 & 0xFFFF
        scanned += 1
        if status & R.RXD_STAT_EOP:
            offsets[frames] = int(bufs[first])
            lengths[frames] = total
            vlans[frames] = word3 >> 16 if status & R.RXD_STAT_VP else 0
            if firsts is not None:
                firsts[frames] = first
            if d < first:
                wrap = frames
            frames += 1
            used = scanned
            total = 0
            first = (d + 1) % count
        d = (d + 1) % count
    return frames, used, wrap


class RxRingCore:
    """The driver's per-poll ring work bound to one ring's arrays (twin of ``RxRingCore`` in
    ``sriov/_fp_rx.pxi``): re-post buffers, scan for completed frames."""

    def __init__(self, ring, bufs, offsets, lengths, vlans, timestamps=None) -> None:
        count = ring.shape[0]
        if timestamps is None:
            timestamps = np.zeros(count, np.int64)
        if ring.ndim != 2 or ring.shape[1] != 4 or len(bufs) != count or count < 2:
            raise ConfigError("ring must be (count >= 2, 4) words with one buffer address per descriptor")
        if min(len(offsets), len(lengths), len(vlans), len(timestamps)) < count:
            raise ConfigError(f"output arrays must hold {count} frames (the ring's size)")
        self.ring, self.bufs = ring, bufs
        self.offsets, self.lengths, self.vlans, self.timestamps = offsets, lengths, vlans, timestamps
        self.arrivals = None  # the device's arrival time per descriptor (bind_arrivals)
        self._firsts = np.zeros(count, np.int64)
        self.count = count
        self.last_bytes = 0  # frame bytes the last harvest took
        self.tail = None  # (regs, word, guard_word, guard): see bind_tail

    def bind_arrivals(self, arrivals) -> None:
        """The device's arrival time per descriptor of this ring's queue (a frame's timestamp is
        the entry of its first descriptor), or None: timestamps 0."""
        if arrivals is not None and len(arrivals) < self.count:
            raise ConfigError(f"arrivals must hold {self.count} descriptors, got {len(arrivals)}")
        self.arrivals = arrivals

    def bind_tail(self, regs, word: int = -1, guard_word: int = -1, guard: int = 0) -> None:
        """The tail's plain-storage slot: ``regs[word]`` while ``regs[guard_word] == guard``
        (``regs`` None: none; `cycle` then asks the caller to write the tail)."""
        self.tail = None
        if regs is None:
            return
        if not (0 <= word < len(regs) and 0 <= guard_word < len(regs)):
            raise ConfigError(f"tail slot {word} / guard {guard_word} outside the {len(regs)}-word registers")
        self.tail = (regs, word, guard_word, guard)

    def tail_store(self, value: int) -> bool:
        """Write the tail through the bound slot; False (nothing written) when unbound or stale."""
        if self.tail is None:
            return False
        regs, word, guard_word, guard = self.tail
        if int(regs[guard_word]) != guard:
            return False
        regs[word] = value
        return True

    def cycle(self, ntu: int, ntc: int, budget: int) -> tuple[int, bool, int, int, int]:
        """One driver poll: re-post the buffers before ``ntc`` (from ``ntu``), write the tail
        through the bound slot, harvest from ``ntc``. Returns ``(next_to_use, tail_unwritten,
        frames, used, wrap)``; ``tail_unwritten``: the tail moved and the caller must write it."""
        count = self.count
        if not (0 <= ntu < count and 0 <= ntc < count):
            raise ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if budget < 0:
            raise ConfigError(f"negative budget {budget}")
        stop = (ntc - 1) % count
        unwritten = False
        if stop != ntu:
            ntu = self.repost(ntu, stop)
            unwritten = not self.tail_store(ntu)
        frames, used, wrap = self.harvest(ntc, budget)
        return ntu, unwritten, frames, used, wrap

    def recycle(self, ntu: int, ntc: int, budget: int) -> tuple[int, bool, int, int, int]:
        """Drop everything (XDP_DROP-style): re-post the buffers before ``ntc``, harvest from
        ``ntc``, re-post the buffers of the frames taken, write the tail once (when it moved).
        Returns ``(next_to_use, tail_unwritten, frames, used, wrap)`` as `cycle` does."""
        count = self.count
        if not (0 <= ntu < count and 0 <= ntc < count):
            raise ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if budget < 0:
            raise ConfigError(f"negative budget {budget}")
        start = ntu
        if (ntc - 1) % count != ntu:
            ntu = self.repost(ntu, (ntc - 1) % count)
        frames, used, wrap = self.harvest(ntc, budget)
        stop = (ntc + used - 1) % count
        if stop != ntu:
            ntu = self.repost(ntu, stop)
        unwritten = ntu != start and not self.tail_store(ntu)
        return ntu, unwritten, frames, used, wrap

    def repost(self, start: int, stop: int) -> int:
        """Post descriptors ``start .. stop-1`` in ring order: packet address = the buffer, header
        address 0 (clears DD). Returns ``stop``, the new next_to_use."""
        if not (0 <= start < self.count and 0 <= stop < self.count):
            raise ConfigError(f"repost({start}, {stop}) outside the {self.count}-descriptor ring")
        d = start
        while d != stop:
            addr = int(self.bufs[d])
            self.ring[d] = (addr & 0xFFFFFFFF, addr >> 32, 0, 0)
            d = (d + 1) % self.count
        return stop

    def harvest(self, ntc: int, budget: int) -> tuple[int, int, int]:
        """`rx_harvest` on the bound arrays (a budget above the ring's size takes the ring)."""
        if not 0 <= ntc < self.count or budget < 0:
            raise ConfigError(
                f"next_to_clean {ntc} outside the {self.count}-descriptor ring, or negative budget"
            )
        result = rx_harvest(
            self.ring,
            self.bufs,
            ntc,
            min(budget, self.count),
            self.offsets,
            self.lengths,
            self.vlans,
            self._firsts,
        )
        frames = result[0]
        self.last_bytes = sum(int(n) for n in self.lengths[:frames])
        if self.arrivals is None:
            self.timestamps[:frames] = 0
        else:
            self.timestamps[:frames] = self.arrivals[self._firsts[:frames]]
        return result
