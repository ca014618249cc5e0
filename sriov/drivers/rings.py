"""The driver side of a receive queue: descriptor ring and buffers in guest memory.

`RxRing` is what ixgbevf's ``ixgbevf_ring`` is for one RX queue, and it serves the PF driver
too (host memory, PF BAR registers). It talks to the device only through ``fn.write32`` (the
function's BAR0) and through the ring in memory, as a real driver does:

* ``up()``: ring (``count`` x 16-byte advanced descriptors, 128-byte aligned) and one buffer
  per descriptor allocated from the `GuestMemory`; the queue programmed (RDBAL/RDBAH/RDLEN,
  RDH = RDT = 0, SRRCTL = DROP_EN | ADV_ONEBUF | buffer size, RXDCTL.ENABLE [| VME]); every
  descriptor but one posted and the tail bumped, as ``ixgbevf_alloc_rx_buffers`` does.
* ``poll(budget)``: takes completed (DD) descriptors from next_to_clean, up to ``budget``
  frames, and returns them as a `Batch` of zero-copy views into the memory (no Python object
  per frame). A frame spread over several descriptors (EOP on the last) is one entry: its
  buffers are consecutive in memory, so it is one contiguous view; only a frame that wraps
  round the end of the ring is copied, into a bounce area of the same memory.
* Refill: the buffers of one poll stay the caller's until the next ``poll()`` (or
  ``release()``): then the descriptors are re-posted (packet address rewritten, header address
  zeroed, which clears DD) and the tail written once. The views of a poll are valid until the
  next poll, the rule DPDK's rx_burst callers know.
"""

from __future__ import annotations

import numpy as np

from sriov import kernels
from sriov.batch import Batch
from sriov.drivers.ring_args import check_ring_args
from sriov.drivers.txring import TxRing as TxRing  # the transmit side, in its own module
from sriov.hw import regs as R
from sriov.memory import GuestMemory

# `RxRing.discard` of many rings with their ring work in one GIL release (compiled; the golden
# twin is the loop of discards): a driver dropping what several queues received.
discard_rings = kernels.impl.discard_rings

BOUNCE_SIZE = 16384  # largest frame a wrapping multi-buffer frame can be (MAXFRS is 16 bits)


class RxRing(kernels.impl.RxRingState):
    """The driver side of one receive queue (VF: VF BAR registers; PF: PF BAR registers).

    ``poll``, ``release`` and ``discard`` are the base class's (`sriov.golden.napi.RxRingState`, compiled in
    ``sriov/_fp_napi.pxi``): the per-poll state lives there so that NAPI's compiled poll reaches
    it without Python attribute lookups."""

    def __init__(
        self,
        fn,
        memory: GuestMemory,
        queue: int = 0,
        count: int = R.DEFAULT_RXD,
        buffer_size: int = 2048,
        vlan_strip: bool = False,
        start: bool = True,
        implementation=None,
    ) -> None:
        """``fn``: the PCI function whose BAR programs the queue; ``queue``: the function's queue
        index (VF queue q for a VF; the PF queue index for the PF). ``start``: run `up` now (a
        driver creates its ring when the interface comes up). ``implementation``: the kernels module
        whose ``rx_harvest`` scans the ring (`sriov.kernels.impl` by default)."""
        self.is_vf = check_ring_args(fn, queue, count, buffer_size)
        self.fn = fn
        self.memory = memory
        self.queue = queue
        self.count = count
        self.buffer_size = buffer_size
        self.vlan_strip = bool(vlan_strip)
        if self.is_vf:
            self._regs = (
                R.VFRDBAL(queue),
                R.VFRDBAH(queue),
                R.VFRDLEN(queue),
                R.VFRDH(queue),
                R.VFRDT(queue),
                R.VFSRRCTL(queue),
                R.VFRXDCTL(queue),
            )
        else:
            self._regs = (
                R.RDBAL(queue),
                R.RDBAH(queue),
                R.RDLEN(queue),
                R.RDH(queue),
                R.RDT(queue),
                R.SRRCTL(queue),
                R.RXDCTL(queue),
            )
        self.ring_addr = memory.alloc(count * R.RX_DESC_SIZE, align=128)
        self.buffers_addr = memory.alloc(count * buffer_size, align=4096)
        self.bounce_addr = memory.alloc(BOUNCE_SIZE, align=64)
        raw = memory.view(self.ring_addr, count * R.RX_DESC_SIZE)
        self._desc64 = raw.view("<u8").reshape(count, 2)  # read format: pkt_addr, hdr_addr
        self._words = raw.view("<u4").reshape(count, 4)  # write-back: status_error [2], length|vlan [3]
        self._offs = np.zeros(count, np.int64)  # poll's output, reused: a poll's views live until the next
        self._lens = np.zeros(count, np.uint32)
        self._vlans = np.zeros(count, np.uint16)
        self._ts = np.zeros(count, np.int64)
        self._impl = implementation if implementation is not None else kernels.impl
        self._bufs = np.arange(count, dtype=np.uint64) * np.uint64(buffer_size) + np.uint64(self.buffers_addr)
        # the per-poll work (re-post, scan) bound once to these arrays
        self._core = self._impl.RxRingCore(
            self._words, self._bufs, self._offs, self._lens, self._vlans, self._ts
        )
        self._ntc = 0  # next_to_clean
        self._ntu = 0  # next_to_use
        self.running = False
        self.last_vlan = np.zeros(0, np.uint16)  # VLAN tag (VP set) of each frame of the last poll, else 0
        self.last_bytes = 0  # frame bytes the last poll returned
        self._view_frames = -1  # the views of the poll outputs for that many frames, reused
        self._views: tuple[np.ndarray, ...] = ()
        self._view_cache: dict[int, tuple] = {}  # every views size made so far (see _make_views)
        self.frames = 0
        self.last_frames = 0  # frames the last poll returned
        if start:
            self.up()

    # -- bring-up ---------------------------------------------------------------------------------
    def up(self) -> None:
        """Program the queue and post every descriptor but one (ixgbevf_configure_rx_ring)."""
        rdbal, rdbah, rdlen, rdh, rdt, srrctl, rxdctl = self._regs
        w = self.fn.write32
        w(rxdctl, 0)  # quiesce while the ring is (re)programmed
        w(rdbal, self.ring_addr & 0xFFFFFFFF)
        w(rdbah, self.ring_addr >> 32)
        w(rdlen, self.count * R.RX_DESC_SIZE)
        w(rdh, 0)
        w(rdt, 0)
        w(
            srrctl,
            R.SRRCTL_DROP_EN | R.SRRCTL_DESCTYPE_ADV_ONEBUF | (self.buffer_size >> R.SRRCTL_BSIZEPKT_SHIFT),
        )
        w(rxdctl, R.RXDCTL_ENABLE | (R.RXDCTL_VME if self.vlan_strip else 0))
        self._desc64[:] = 0
        self._ntc = self._ntu = 0
        self._bind_arrivals()
        self._refill_to(self.count - 1)
        self.running = True

    def _bind_arrivals(self) -> None:
        """Where the device records when each frame of this queue arrived (the polls' timestamps)."""
        device = getattr(self.fn, "device", None)
        arrivals = getattr(device, "rx_arrivals", None)
        self._core.bind_arrivals(arrivals(self.fn, self.queue) if arrivals is not None else None)

    def poll_timestamps(self, frames: int) -> np.ndarray:
        """The arrival times of the first ``frames`` frames of the last poll (valid until the next)."""
        return self._ts[:frames]

    def down(self) -> None:
        """Stop the queue (RXDCTL.ENABLE cleared); the frames not yet polled are lost."""
        self.fn.write32(self._regs[6], 0)
        self.running = False

    # -- refill -----------------------------------------------------------------------------------
    def _refill_to(self, stop: int) -> None:
        """Post descriptors next_to_use .. stop-1 (ring order) and write the tail once."""
        start, count = self._ntu, self.count
        if stop == start:
            return
        self._ntu = self._core.repost(start, stop % count)  # header address 0 clears DD
        self._write_tail(self._ntu)

    def _write_tail(self, value: int) -> None:
        """RDT/VFRDT = ``value``. The tail is plain storage in the device (no side effect beyond
        the stored value), so once the device has said where it lands (`plain_register`) the
        write goes straight to its register word, for as long as the device's guard holds (a
        VF's queue window moves with the queues per pool); otherwise, and the first time,
        through ``fn.write32`` like every other register write."""
        core = self._core
        if core.tail_store(value):
            return
        self.fn.write32(self._regs[4], value)
        self._bind_tail()

    def _bind_tail(self) -> None:
        """Ask the device where the tail write lands (after a write through ``fn.write32``)."""
        device = getattr(self.fn, "device", None)
        plain = getattr(device, "plain_register", None)
        found = plain(self.fn, self._regs[4]) if plain is not None else None
        if found is None:
            self._core.bind_tail(None)
        else:
            self._core.bind_tail(device.regs, *found)

    # -- receive ----------------------------------------------------------------------------------
    def pending(self) -> int:
        """Descriptors the hardware has written back and the driver has not taken yet."""
        n = 0
        d = self._ntc
        while n < self.count - 1 and int(self._words[d, 2]) & R.RXD_STAT_DD:
            n += 1
            d = (d + 1) % self.count
        return n

    def _poll_idle(self) -> Batch:
        """`poll` with budget 0 or the queue stopped: the last poll's buffers go back, no frames."""
        self.release()
        self.last_bytes = 0
        return Batch.empty()

    def _make_views(self, frames: int) -> None:
        """The views of the poll outputs for ``frames`` frames and the Batch over them, kept for
        the next polls of as many frames (the same arrays either way: a poll's views are valid
        until the next poll); at most one per ring size."""
        self._view_frames = frames
        offs, lens, ts = self._offs[:frames], self._lens[:frames], self._ts[:frames]
        batch = Batch(self.memory.buffer, offs, lens, ts, validate=False) if frames else Batch.empty()
        self._views = self._view_cache[frames] = (batch, self._vlans[:frames])

    def _harvest(self, budget: int) -> tuple[int, int]:
        frames, used, wrap = self._core.harvest(self._ntc, budget)
        self._took(used, wrap)
        return frames, used

    def _took(self, used: int, wrap: int) -> None:
        """After a scan: bounce the frame that wraps round the ring, advance next_to_clean."""
        if wrap >= 0:  # a multi-buffer frame round the end of the ring: one copy, into the bounce area
            first = (int(self._offs[wrap]) - self.buffers_addr) // self.buffer_size
            length = int(self._lens[wrap])
            pieces = -(-length // self.buffer_size)
            out = self.memory.view(self.bounce_addr, min(length, BOUNCE_SIZE))
            pos = 0
            for k in range(pieces):
                d = (first + k) % self.count
                take = min(self.buffer_size, length - pos, len(out) - pos)
                out[pos : pos + take] = self.memory.view(int(self._bufs[d]), take)
                pos += take
            self._offs[wrap] = self.bounce_addr
        self._ntc = (self._ntc + used) % self.count

    def __repr__(self) -> str:
        return f"<RxRing {getattr(self.fn, 'name', '?')} q{self.queue} {self.count}x{self.buffer_size}>"
