"""Golden model of the transmit flow (twin of ``sriov/_fp_tx.pxi``).

Written to be read: MODEL.md "Transmit" and spec §5.8 as code. The compiled kernel must agree
with it byte for byte: frames on the wire, local deliveries (guest memory, RX descriptors, RDH),
TX descriptor write-back, TDH, SSVPC, every counter and the IOMMU fault log.

Decisions the model makes where MODEL.md and the sources are silent (the compiled kernel makes
the same):

* Queue registers are read as for receive: TDBAL bits 6:0 ignored, TDLEN bits 19:7, TDH/TDT
  bits 15:0; a ring of zero descriptors, or head or tail outside it, offers nothing. A queue
  without TXDCTL.ENABLE is not fetched from (its descriptors wait).
* Hardware owns descriptors head .. tail-1. A frame is a chain of descriptors ending with EOP
  (a context descriptor, DEXT with DTYP 2, carries no data and is skipped; every other
  descriptor, advanced data or legacy, is data: DTALEN bytes at its buffer address). A chain
  with no EOP before the tail is not complete: it waits for the driver to post the rest.
* Descriptors are fetched through the owning function's IOMMU domain and must be mapped
  writable (the device writes them back). A fault there is a ring fault (``tx_ring_faults``,
  recorded in the fault log): the queue stops at that descriptor, no frame is taken, nothing
  is written, the head stays; it hurts only its own queue.
* Guest memory is read once (a guest CPU may rewrite it while the device works): each
  descriptor when its chain is fetched (buffer address and cmd_type_len kept), each frame byte
  when the frame is copied into the device's own buffer; the checks, the anti-spoofing and the
  forwarding use only those copies, and the write-back's RS test the fetched cmd_type_len.
* A complete chain is a posted frame (``tx_posted``) and ends in exactly one way:
  forwarded (``tx_packets``) or dropped for one reason, checked in this order:
  pool transmit disabled (VFTE clear, ``tx_disabled``); more than 40 descriptors, fewer than 14
  bytes or more than 15868 (15.5 KiB with FCS) (``tx_length_errors``); a buffer byte not mapped
  (read access is enough, ``tx_dma_faults``, fault recorded); a tagged frame shorter than 18
  bytes (``tx_length_errors``); MAC then VLAN anti-spoofing (``tx_spoofed``, and SSVPC when the
  pool's VMECM bit is set). A dropped frame's descriptors complete like a sent one's.
* Anti-spoofing is per pool (PFVFSPOOF bit ``pool % 8`` of register ``pool // 8`` for MAC, bit
  ``8 + pool % 8`` for VLAN), so it applies to whichever pool has the bit. MAC: the source MAC
  must be a valid RAR entry whose MPSAR has the pool's bit. VLAN: with VMVIR's VLANA = "always
  insert" the frame must be untagged; otherwise a tagged frame's VID must be in a valid VLVF
  entry with the pool's bit (VID 0 through VLVF entry 0, as for receive). "Tagged" means the
  ethertype equals VLNCTRL.VET, as on receive.
* VMVIR VLANA = 01 inserts the tag (TPID 0x8100, TCI = VMVIR bits 15:0) after the source MAC.
  VLE in a data descriptor and the context descriptor's VLAN field are not modelled: a frame
  carries its own tag in its bytes.
* Frames shorter than 60 bytes are padded with zeros to 60 (the MAC pads); ``tx_bytes`` and
  the bytes on the wire count the padded frame without FCS, as ``rx_bytes`` does.
* VEB (VT mode and PFDTXGSWC.VT_LBEN): the frame is classified as a received one
  (`sriov.golden.rx.select_pools`, never the default pool) minus its source pool, with one
  difference: a pool whose receive enable (VFRE) is clear still counts as the destination (a
  unicast for it does not leak to the wire); its copy is dropped as ``rx_queue_disabled``.
  Unicast with local pools: only to them; broadcast and multicast: to the local pools and the
  wire; anything else: the wire. A frame the global VLAN filter rejects has no local pool.
  Local copies go through the receive DMA path and are counted as the receiving pool's
  ``rx_copies`` (and port ``rx_pool_copies``) so the receive identities still hold; the port's
  receive checks (MAXFRS, the frame-level drops) are not applied to them.
  VT off or VT_LBEN clear: every frame leaves on the wire.
* Write-back: every descriptor of a completed chain with RS gets its status word (bytes 12-15)
  set to DD, unless head write-back is on (TDWBAL bit 0): then the new head (4 bytes) is written
  at TDWBAH:TDWBAL & ~3 after the queue's frames (a fault there is a ring fault). TDH follows.
* The wire has finite room (the output arrays bound by `bind_output`): a frame for the wire
  that does not fit stops the whole run before that frame is touched; ``fill[2]`` is set so the
  caller can make room and run again (the frame waits in its ring, as on a busy link).
* Queues run in index order; each queue sends every complete frame it has.
"""

from __future__ import annotations

import numpy as np

from sriov.batch import require_arrays
from sriov.errors import ConfigError
from sriov.golden.filters import mac_key
from sriov.golden.rx import _POOL_DROP_COUNTERS, DROP_COUNTERS, DropReason, deliver, select_pools
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

W = 4
U64 = (1 << 64) - 1
BROADCAST = b"\xff" * 6
TX_MAX_BYTES = R.TX_MAX_FRAME_SIZE - R.ETH_FCS_LEN  # largest frame taken from a ring (no FCS)

# Why a posted frame was not forwarded; the counter (port and pool) each reason increments.
TX_DROP_COUNTERS = {
    "disabled": "tx_disabled",
    "length": "tx_length_errors",
    "dma": "tx_dma_faults",
    "spoofed": "tx_spoofed",
}


def _reg(regs: np.ndarray, offset: int) -> int:
    return int(regs[offset // W])


def _pool_bitmap(regs: np.ndarray, reg0: int) -> int:
    """A 64-pool bitmap held in two registers (pools 0-31 at reg0, 32-63 at reg0 + 4)."""
    return _reg(regs, reg0) | _reg(regs, reg0 + 4) << 32


class _Dma:
    """DMA of one function through its IOMMU domain, page by page."""

    def __init__(self, iommu, domain) -> None:
        self.iommu = iommu
        self.domain = domain

    def translate(self, iova: int, size: int, write: bool) -> tuple[np.ndarray | None, int]:
        """Host view of ``size`` bytes inside one page, or (None, fault kind)."""
        page = iova >> PAGE_SHIFT
        table = self.domain.page_table
        if page >= len(table):
            return None, FAULT_NOT_MAPPED
        pte = int(table[page])
        if not pte & int(PTE_VALID):
            return None, FAULT_NOT_MAPPED
        if write and not pte & int(PTE_WRITABLE):
            return None, FAULT_READ_ONLY
        buffer_id = (pte >> PTE_BUFFER_SHIFT) & PTE_BUFFER_MASK
        offset = (pte & PTE_OFFSET_MASK) + (iova & (PAGE_SIZE - 1))
        sizes = self.iommu.buffer_sizes
        if buffer_id >= len(sizes) or offset + size > int(sizes[buffer_id]):
            return None, FAULT_NOT_MAPPED
        return self.iommu.buffer(buffer_id)[offset : offset + size], 0

    def read(self, iova: int, size: int) -> bytes | None:
        """``size`` bytes at ``iova`` (page by page), or None after recording the first fault."""
        out = bytearray()
        while size > 0:
            span = min(size, PAGE_SIZE - (iova & (PAGE_SIZE - 1)))
            view, kind = self.translate(iova, span, write=False)
            if view is None:
                self.fault(iova, kind)
                return None
            out += view.tobytes()
            iova = (iova + span) & U64
            size -= span
        return bytes(out)

    def fault(self, iova: int, kind: int) -> None:
        self.iommu.record_fault(self.domain.id, iova, kind)


def check_output_arrays(data, offsets, lengths, timestamps, fill) -> None:
    """The wire output arrays: uint8 data, int64 offsets, uint32 lengths, int64 timestamps (one
    slot per frame, as many slots in each), int64 fill of >= 3 slots (frames, bytes, full flag)."""
    require_arrays(
        ("data", data, np.uint8),
        ("offsets", offsets, np.int64),
        ("lengths", lengths, np.uint32),
        ("timestamps", timestamps, np.int64),
        ("fill", fill, np.int64),
    )
    if len(offsets) != len(lengths) or len(offsets) != len(timestamps):
        raise ConfigError(
            f"offsets, lengths and timestamps must have the same slots ({len(offsets)}, {len(lengths)}, "
            f"{len(timestamps)})"
        )
    if len(fill) < 3:
        raise ConfigError(f"fill must have 3 slots (frames, bytes, full), got {len(fill)}")


def check_fill(fill, frame_slots: int, data_len: int) -> None:
    """The fill counters must lie inside the output arrays."""
    if not 0 <= int(fill[0]) <= frame_slots or not 0 <= int(fill[1]) <= data_len:
        raise ConfigError(
            f"fill ({int(fill[0])} frames, {int(fill[1])} bytes) lies outside the output arrays "
            f"({frame_slots} frames, {data_len} bytes)"
        )


def check_queue_range(first: int, last: int) -> None:
    if not (0 <= first <= last < R.MAX_QUEUES):
        raise ConfigError(f"queue range {first}..{last} must satisfy 0 <= first <= last < {R.MAX_QUEUES}")


class TxKernel:
    """The transmit flow of one port (golden twin of the compiled ``TxKernel``).

    ``bind_output(...)`` gives it the wire's arrays once; ``run(first, last, now_ns)`` sends the
    frames waiting in TX queues ``first..last``. ``rx`` is the port's receive kernel of the same
    implementation (the VEB delivers through the receive path). After a run,
    ``rx_queue_frames[q]`` holds the frames delivered locally to PF RX queue ``q`` and
    ``tx_queue_frames[q]`` the frames completed on PF TX queue ``q``.
    """

    def __init__(self, device, rx=None) -> None:
        self.device = device
        self.rx = rx
        self.rx_queue_frames = np.zeros(R.MAX_QUEUES, dtype=np.uint32)
        self.tx_queue_frames = np.zeros(R.MAX_QUEUES, dtype=np.uint32)
        self._out: tuple | None = None

    def bind_output(self, data, offsets, lengths, timestamps, fill) -> None:
        """The wire's output arrays; ``fill`` = [frames, bytes, full] is read and advanced per run."""
        check_output_arrays(data, offsets, lengths, timestamps, fill)
        self._out = (data, offsets, lengths, timestamps, fill)

    # ------------------------------------------------------------------------------------------
    def run(self, first: int, last: int, now_ns: int) -> int:
        """Send what TX queues ``first..last`` hold; returns the frames taken off the rings."""
        if self._out is None:
            raise ConfigError("run() before bind_output(): bind the wire's output arrays first")
        check_queue_range(first, last)
        data, offsets, _lengths, _timestamps, fill = self._out
        check_fill(fill, len(offsets), len(data))
        fill[2] = 0
        self.rx_queue_frames[:] = 0
        self.tx_queue_frames[:] = 0
        taken = 0
        for q in range(first, last + 1):
            n, full = self._queue(q, now_ns)
            taken += n
            if full:
                fill[2] = 1
                break
        return taken

    # ------------------------------------------------------------------------------------------
    def _count(self, pool: int, name: str, by: int = 1, port_too: bool = True) -> None:
        state = self.device.state
        if port_too:
            state.port_counters[C.PORT[name]] += np.uint64(by)
        if name in C.POOL:
            state.pool_counters[pool, C.POOL[name]] += np.uint64(by)

    def _queue(self, q: int, now_ns: int) -> tuple[int, bool]:
        """Every complete frame of TX queue ``q``: ``(frames taken, stopped for wire room)``."""
        device = self.device
        regs = device.regs

        def reg(field: int) -> int:
            return _reg(regs, R.TDBAL(q) + field)

        if not reg(R.Q_TXDCTL) & R.TXDCTL_ENABLE:
            return 0, False
        vt = bool(_reg(regs, R.VT_CTL) & R.VT_CTL_VT_ENABLE)
        pool = q // device.queues_per_pool() if vt else 0
        owner = device.vfs[pool] if vt and pool < len(device.vfs) else device.pf
        dma = _Dma(device.iommu, owner.domain)
        base = (reg(R.Q_TDBAH) << 32) | (reg(R.Q_TDBAL) & 0xFFFFFF80)
        count = (reg(R.Q_TDLEN) & 0xFFF80) // R.TX_DESC_SIZE
        head, tail = reg(R.Q_TDH) & 0xFFFF, reg(R.Q_TDT) & 0xFFFF
        if not count or head >= count or tail >= count:
            return 0, False
        wb_head = bool(reg(R.Q_TDWBAL) & R.TDWBAL_HEAD_WB_ENABLE)
        taken, full, start = 0, False, head
        while head != tail:
            # fetch the chain: descriptors until EOP
            # each descriptor read once (a guest CPU may rewrite it meanwhile): its view for the
            # write-back, and the snapshot of its buffer address and cmd_type_len
            chain: list[tuple[np.ndarray, int, int]] = []  # (descriptor view, address, cmd_type_len)
            d, eop, stalled = head, False, False
            while d != tail:
                addr = (base + d * R.TX_DESC_SIZE) & U64
                view, kind = dma.translate(addr, R.TX_DESC_SIZE, write=True)
                if view is None:
                    dma.fault(addr, kind)
                    self._count(pool, "tx_ring_faults")
                    stalled = True
                    break
                raw = view.tobytes()
                cmd = int.from_bytes(raw[8:12], "little")
                chain.append((view, int.from_bytes(raw[0:8], "little"), cmd))
                d = (d + 1) % count
                if cmd & R.ADVTXD_DCMD_EOP and not _is_context(cmd):
                    eop = True
                    break
            if stalled or not eop:
                break
            verdict = self._frame(pool, vt, dma, chain, now_ns)
            if verdict is None:  # no room on the wire: the frame waits
                full = True
                break
            taken += 1
            if not wb_head:
                for view, _addr, cmd in chain:
                    if cmd & R.ADVTXD_DCMD_RS:
                        view[R.ADVTXD_STAT_DD_OFFSET : R.ADVTXD_STAT_DD_OFFSET + 4] = np.frombuffer(
                            R.TXD_STAT_DD.to_bytes(4, "little"), np.uint8
                        )
            head = d
        if head != start:
            regs[R.TDH(q) // W] = head
            if wb_head:
                addr = (reg(R.Q_TDWBAH) << 32) | (reg(R.Q_TDWBAL) & 0xFFFFFFFC)
                view, kind = dma.translate(addr, 4, write=True)
                if view is None:
                    dma.fault(addr, kind)
                    self._count(pool, "tx_ring_faults")
                else:
                    view[:] = np.frombuffer(head.to_bytes(4, "little"), np.uint8)
        self.tx_queue_frames[q] += np.uint32(taken)
        return taken, full

    # ------------------------------------------------------------------------------------------
    def _frame(self, pool: int, vt: bool, dma: _Dma, chain, now_ns: int) -> str | None:
        """One complete chain: its verdict ("wire", "local", "both", or a drop), None if it must wait."""
        regs = self.device.regs
        data_descs = [(addr, cmd) for _view, addr, cmd in chain if not _is_context(cmd)]
        total = sum(cmd & R.ADVTXD_DTALEN_MASK for _, cmd in data_descs)
        vet = _reg(regs, R.VLNCTRL) & R.VLNCTRL_VET

        # checks that need no frame byte
        verdict = None
        if vt and not _pool_bitmap(regs, R.VFTE(0)) >> pool & 1:
            verdict = "disabled"
        elif len(chain) > R.TX_MAX_DATA_DESCS or not R.ETH_HLEN <= total <= TX_MAX_BYTES:
            verdict = "length"
        frame = b""
        if verdict is None:
            # the frame's bytes copied once into device memory (``frame``): checked and sent from there
            pieces = []
            for addr, cmd in data_descs:
                piece = dma.read(addr, cmd & R.ADVTXD_DTALEN_MASK)
                if piece is None:
                    verdict = "dma"
                    break
                pieces.append(piece)
            frame = b"".join(pieces)
        tagged = verdict is None and int.from_bytes(frame[12:14], "big") == vet
        if verdict is None and tagged and len(frame) < R.ETH_HLEN + R.VLAN_HLEN:
            verdict = "length"
        if verdict is None and vt and _spoofed(regs, pool, frame, tagged):
            verdict = "spoofed"
            if _pool_bitmap(regs, R.VMECM(0)) >> pool & 1:
                regs[R.SSVPC // W] = (_reg(regs, R.SSVPC) + 1) & 0xFFFFFFFF
        if verdict is not None:
            self._count(pool, "tx_posted")
            self._count(pool, TX_DROP_COUNTERS[verdict])
            self._count(pool, "tx_dropped")
            return verdict

        # the port VLAN (VMVIR), then the padding the MAC adds
        vmvir = _reg(regs, R.VMVIR(pool)) if vt else 0
        if vmvir & R.VMVIR_VLANA_MASK == R.VMVIR_VLANA_DEFAULT:
            tag = R.ETH_P_8021Q.to_bytes(2, "big") + (vmvir & R.VMVIR_VLAN_TAG_MASK).to_bytes(2, "big")
            frame = frame[:12] + tag + frame[12:]
        frame += bytes(max(0, R.ETH_ZLEN - len(frame)))
        tagged = int.from_bytes(frame[12:14], "big") == vet
        tci = int.from_bytes(frame[14:16], "big") if tagged else 0

        # the VEB
        da = frame[:6]
        multicast = bool(da[0] & 1)
        local = 0
        if vt and _reg(regs, R.PFDTXGSWC) & R.PFDTXGSWC_VT_LBEN:
            local = _veb_pools(regs, da, tagged, tci & R.VLAN_VID_MASK) & ~(1 << pool)
        to_wire = multicast or not local
        if to_wire and not self._wire_room(len(frame)):
            return None
        self._count(pool, "tx_posted")
        self._count(pool, "tx_packets")
        self._count(pool, "tx_bytes", len(frame))
        if local:
            self._count(pool, "tx_local_packets", port_too=True)
            self._deliver_local(local, frame, tagged, tci, multicast and da != BROADCAST, now_ns)
        if to_wire:
            self._count(pool, "tx_wire_packets")
            self._send(frame, now_ns)
        if local and to_wire:
            self._count(pool, "tx_flooded")
        return "both" if local and to_wire else ("local" if local else "wire")

    def _deliver_local(
        self, pools: int, frame: bytes, tagged: bool, tci: int, multicast: bool, now_ns: int
    ) -> None:
        """One copy per local pool through the receive DMA path (counted as received copies), at
        ``now_ns`` (their arrival time)."""
        device = self.device
        port, pool_c = device.state.port_counters, device.state.pool_counters
        vfre = _pool_bitmap(device.regs, R.VFRE(0))
        for p in range(R.MAX_POOLS):
            if not pools >> p & 1:
                continue
            port[C.PORT["tx_local_copies"]] += np.uint64(1)
            port[C.PORT["rx_pool_copies"]] += np.uint64(1)
            pool_c[p, C.POOL["rx_copies"]] += np.uint64(1)
            if vfre >> p & 1:
                why, q, written = deliver(device, p, frame, tagged, tci, now_ns)
            else:
                why, q, written = DropReason.QUEUE_DISABLED, 0, 0
            if why == DropReason.DELIVERED:
                pool_c[p, C.POOL["rx_packets"]] += np.uint64(1)
                pool_c[p, C.POOL["rx_bytes"]] += np.uint64(written)
                if multicast:
                    pool_c[p, C.POOL["rx_multicast"]] += np.uint64(1)
                self.rx_queue_frames[q] += np.uint32(1)
            else:
                port[C.PORT[DROP_COUNTERS[why]]] += np.uint64(1)
                pool_c[p, C.POOL[_POOL_DROP_COUNTERS[why]]] += np.uint64(1)

    def _wire_room(self, size: int) -> bool:
        data, offsets, _lengths, _ts, fill = self._out
        return int(fill[0]) < len(offsets) and int(fill[1]) + size <= len(data)

    def _send(self, frame: bytes, now_ns: int) -> None:
        data, offsets, lengths, timestamps, fill = self._out
        i, at = int(fill[0]), int(fill[1])
        data[at : at + len(frame)] = np.frombuffer(frame, np.uint8)
        offsets[i], lengths[i], timestamps[i] = at, len(frame), now_ns
        fill[0], fill[1] = i + 1, at + len(frame)


def _is_context(cmd: int) -> bool:
    return bool(cmd & R.ADVTXD_DCMD_DEXT) and cmd & R.ADVTXD_DTYP_MASK == R.ADVTXD_DTYP_CTXT


def _spoofed(regs: np.ndarray, pool: int, frame: bytes, tagged: bool) -> bool:
    """MAC and VLAN anti-spoofing of pool ``pool`` (PFVFSPOOF) for a frame it sends."""
    spoof = _reg(regs, R.PFVFSPOOF(pool >> 3))
    if spoof >> (pool % 8) & 1:
        key = mac_key(frame[6:12])
        owners = 0
        for i in range(R.NUM_RAR):
            ral, rah = _reg(regs, R.RAR_BASE + 8 * i), _reg(regs, R.RAR_BASE + 8 * i + 4)
            if rah & R.RAH_AV and ((rah & 0xFFFF) << 32 | ral) == key:
                owners |= _pool_bitmap(regs, R.MPSAR_LO(i))
        if not owners >> pool & 1:
            return True
    if spoof >> (R.SPOOF_VLANAS_SHIFT + pool % 8) & 1 and tagged:
        if _reg(regs, R.VMVIR(pool)) & R.VMVIR_VLANA_MASK == R.VMVIR_VLANA_DEFAULT:
            return True  # a VF with a port VLAN must send untagged
        vid = int.from_bytes(frame[14:16], "big") & R.VLAN_VID_MASK
        members = 0
        for j in range(R.NUM_VLVF):
            entry = _reg(regs, R.VLVF(j))
            if entry & R.VLVF_VIEN and entry & R.VLVF_VLANID_MASK == vid:
                members |= _pool_bitmap(regs, R.VLVFB(2 * j))
        if not members >> pool & 1:
            return True
    return False


def _veb_pools(regs: np.ndarray, da: bytes, tagged: bool, vid: int) -> int:
    """The local pools a transmitted frame is for: receive pool selection, no default pool, and
    pools with receive disabled kept (they claim the frame; their copy is dropped)."""
    view = regs.copy()
    view[R.VFRE(0) // W] = view[R.VFRE(1) // W] = 0xFFFFFFFF
    reason, pools = select_pools(view, da, tagged, vid, from_wire=False)
    return pools if reason == DropReason.DELIVERED else 0


# ----------------------------------------------------------------------------------------------
# The driver's side (twins of ``tx_fill`` / ``tx_clean`` in ``sriov/_fp_tx.pxi``, used by
# `sriov.drivers.txring.TxRing`): what ixgbevf_xmit_frame and ixgbevf_clean_tx_irq do.
def tx_fill(ring, mem, bufs, buffer_size, ntu, free, data, offsets, lengths, n, watch) -> tuple[int, int]:
    """Frames ``[0, n)`` into the ring from next_to_use: ``(frames placed, descriptors used)``.

    Each frame takes ceil(len / buffer_size) descriptors (at least one): advanced data
    descriptors (DTYP_DATA | DEXT | IFCS | DTALEN), the last with EOP | RS, each with PAYLEN =
    the frame length; ``watch[first]`` = the frame's last descriptor. Stops before a frame that
    does not fit in ``free`` descriptors. The caller writes the tail.
    """
    count = ring.shape[0] if ring.ndim == 2 else 0
    if ring.ndim != 2 or ring.shape[1] != 4 or len(bufs) != count or len(watch) != count or not count:
        raise ConfigError(
            "ring must be (count, 4) words with one buffer address and watch slot per descriptor"
        )
    if not 0 <= ntu < count or not 0 <= free < count:
        raise ConfigError(f"next_to_use {ntu} / free {free} outside the {count}-descriptor ring")
    if not 0 < buffer_size <= R.ADVTXD_DTALEN_MASK:
        raise ConfigError(f"buffer size must be in 1..{R.ADVTXD_DTALEN_MASK}, got {buffer_size}")
    if not 0 <= n <= len(offsets) or len(lengths) != len(offsets):
        raise ConfigError(f"{n} frames asked of {len(offsets)} offsets / {len(lengths)} lengths")
    for d in range(count):
        if int(bufs[d]) + buffer_size > len(mem):
            raise ConfigError(f"buffer of descriptor {d} lies outside the {len(mem)}-byte memory")
    for i in range(n):
        if int(offsets[i]) < 0 or int(offsets[i]) + int(lengths[i]) > len(data):
            raise ConfigError(f"frame {i} lies outside the {len(data)}-byte data buffer")
    frames = used = 0
    for i in range(n):
        length, off = int(lengths[i]), int(offsets[i])
        need = max(1, -(-length // buffer_size))
        if need > free - used:
            break
        first = (ntu + used) % count
        for k in range(need):
            slot = (ntu + used) % count
            piece = min(buffer_size, length - k * buffer_size)
            addr = int(bufs[slot])
            mem[addr : addr + piece] = data[off + k * buffer_size : off + k * buffer_size + piece]
            cmd = R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_IFCS | piece
            if k == need - 1:
                cmd |= R.ADVTXD_DCMD_EOP | R.ADVTXD_DCMD_RS
            ring[slot] = (addr & 0xFFFFFFFF, addr >> 32, cmd, (length << R.ADVTXD_PAYLEN_SHIFT) & 0xFFFFFFFF)
            used += 1
        watch[first] = (ntu + used - 1) % count
        frames += 1
    return frames, used


def tx_clean(ring, watch, ntc: int, ntu: int) -> tuple[int, int]:
    """Frames from next_to_clean whose last descriptor has DD: ``(frames, new next_to_clean)``.

    Stops at ``ntu``, at a frame not yet written back, or at a watch entry outside [ntc, ntu).
    """
    count = ring.shape[0] if ring.ndim == 2 else 0
    if ring.ndim != 2 or ring.shape[1] != 4 or len(watch) != count or not count:
        raise ConfigError("ring must be (count, 4) words with one watch slot per descriptor")
    if not 0 <= ntc < count or not 0 <= ntu < count:
        raise ConfigError(f"next_to_clean {ntc} / next_to_use {ntu} outside the {count}-descriptor ring")
    frames = 0
    while ntc != ntu:
        eop = int(watch[ntc])
        in_flight = (eop - ntc) % count < (ntu - ntc) % count
        if not 0 <= eop < count or not in_flight or not int(ring[eop, 3]) & R.TXD_STAT_DD:
            break
        frames += 1
        ntc = (eop + 1) % count
    return frames, ntc


class TxRingCore:
    """`tx_fill` after `tx_clean`, bound once to one TX ring's arrays (compiled twin:
    ``sriov._fastpath.TxRingCore``). The buffer addresses are copied and checked once."""

    def __init__(self, ring, mem, bufs, buffer_size: int, watch) -> None:
        count = ring.shape[0] if ring.ndim == 2 else 0
        if ring.ndim != 2 or ring.shape[1] != 4 or len(bufs) != count or len(watch) != count or count < 2:
            raise ConfigError(
                "ring must be (count >= 2, 4) words, one buffer address and watch slot per descriptor"
            )
        if not 0 < buffer_size <= R.ADVTXD_DTALEN_MASK:
            raise ConfigError(f"buffer size must be in 1..{R.ADVTXD_DTALEN_MASK}, got {buffer_size}")
        self.bufs = np.array(bufs, dtype=np.uint64, copy=True)
        for i, addr in enumerate(self.bufs.tolist()):
            if addr > len(mem) or buffer_size > len(mem) - addr:
                raise ConfigError(f"buffer of descriptor {i} lies outside the {len(mem)}-byte memory")
        self.ring, self.mem, self.watch = ring, mem, watch
        self.buffer_size = buffer_size
        self.count = count

    def send(self, ntu: int, ntc: int, data, offsets, lengths, n: int) -> tuple[int, int, int, int]:
        """Reclaim (when anything is in flight), then fill the free descriptors: ``(frames placed,
        descriptors used, frames reclaimed, new next_to_clean)``."""
        count = self.count
        if not 0 <= ntu < count or not 0 <= ntc < count:
            raise ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if not 0 <= n <= len(offsets) or len(lengths) != len(offsets):
            raise ConfigError(f"{n} frames asked of {len(offsets)} offsets / {len(lengths)} lengths")
        for i in range(n):
            if int(offsets[i]) < 0 or int(offsets[i]) + int(lengths[i]) > len(data):
                raise ConfigError(f"frame {i} lies outside the {len(data)}-byte data buffer")
        cleaned = 0
        if ntc != ntu:
            cleaned, ntc = tx_clean(self.ring, self.watch, ntc, ntu)
        free = count - 1 - (ntu - ntc) % count
        frames, used = tx_fill(
            self.ring, self.mem, self.bufs, self.buffer_size, ntu, free, data, offsets, lengths, n, self.watch
        )
        return frames, used, cleaned, ntc

    def clean(self, ntc: int, ntu: int) -> tuple[int, int]:
        """`tx_clean` on the bound ring."""
        if not 0 <= ntc < self.count or not 0 <= ntu < self.count:
            raise ConfigError(
                f"next_to_clean {ntc} / next_to_use {ntu} outside the {self.count}-descriptor ring"
            )
        return tx_clean(self.ring, self.watch, ntc, ntu)
