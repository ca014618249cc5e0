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

from sriov.batch import Batch
from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.memory import GuestMemory

MIN_RING = R.REQ_RX_DESCRIPTOR_MULTIPLE  # small rings are allowed for tests; ixgbevf uses 64..4096
BOUNCE_SIZE = 16384  # largest frame a wrapping multi-buffer frame can be (MAXFRS is 16 bits)


class RxRing:
    """The driver side of one receive queue (VF: VF BAR registers; PF: PF BAR registers)."""

    def __init__(
        self,
        fn,
        memory: GuestMemory,
        queue: int = 0,
        count: int = R.DEFAULT_RXD,
        buffer_size: int = 2048,
        vlan_strip: bool = False,
        start: bool = True,
    ) -> None:
        """``fn``: the PCI function whose BAR programs the queue; ``queue``: the function's queue
        index (VF queue q for a VF; the PF queue index for the PF). ``start``: run `up` now (a
        driver creates its ring when the interface comes up)."""
        if not isinstance(count, int) or not MIN_RING <= count <= R.MAX_RXD or count % MIN_RING:
            raise ConfigError(
                f"ring size must be a multiple of {MIN_RING} in {MIN_RING}..{R.MAX_RXD}, got {count!r}"
            )
        if not isinstance(buffer_size, int) or buffer_size % 1024 or not 1024 <= buffer_size <= 16384:
            raise ConfigError(f"buffer size must be a multiple of 1024 in 1024..16384, got {buffer_size!r}")
        self.is_vf = getattr(fn, "device_id", None) == R.DEV_ID_82599_VF
        limit = R.VF_MAX_QUEUES if self.is_vf else R.MAX_QUEUES
        if not isinstance(queue, int) or not 0 <= queue < limit:
            raise ConfigError(f"queue must be in 0..{limit - 1} for {getattr(fn, 'name', fn)}, got {queue!r}")
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
        desc32 = raw.view("<u4").reshape(count, 4)
        desc16 = raw.view("<u2").reshape(count, 8)
        self._status = desc32[:, 2]  # write-back: status_error
        self._length = desc16[:, 6]
        self._vlan = desc16[:, 7]
        self._bufs = np.arange(count, dtype=np.uint64) * np.uint64(buffer_size) + np.uint64(self.buffers_addr)
        self._ntc = 0  # next_to_clean
        self._ntu = 0  # next_to_use
        self.running = False
        self.last_vlan = np.zeros(0, np.uint16)  # VLAN tag (VP set) of each frame of the last poll, else 0
        self.frames = 0
        self.bytes = 0
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
        self._refill_to(self.count - 1)
        self.running = True

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
        spans = [(start, stop)] if start < stop else [(start, count), (0, stop)]
        for a, b in spans:
            self._desc64[a:b, 0] = self._bufs[a:b]
            self._desc64[a:b, 1] = 0  # header address 0: clears DD (status overlays it)
        self._ntu = stop % count
        self.fn.write32(self._regs[4], self._ntu)

    def release(self) -> None:
        """Give the buffers of the last poll back to the hardware now (their views become invalid)."""
        self._refill_to((self._ntc - 1) % self.count)

    # -- receive ----------------------------------------------------------------------------------
    def pending(self) -> int:
        """Descriptors the hardware has written back and the driver has not taken yet."""
        return self._done_run()

    def _done_run(self) -> int:
        ntc, status = self._ntc, self._status
        limit = self.count - 1
        first = status[ntc : min(self.count, ntc + limit)]
        notdone = (first & R.RXD_STAT_DD) == 0
        if notdone.any():
            return int(notdone.argmax())
        n = len(first)
        if n < limit:
            second = status[: limit - n]
            notdone = (second & R.RXD_STAT_DD) == 0
            n += int(notdone.argmax()) if notdone.any() else len(second)
        return n

    def poll(self, budget: int = 64) -> Batch:
        """Up to ``budget`` received frames as zero-copy views (valid until the next poll)."""
        if not isinstance(budget, int) or budget < 0:
            raise ConfigError(f"budget must be a non-negative int, got {budget!r}")
        self.release()
        if budget == 0 or not self.running:
            return Batch.empty()
        done = self._done_run()
        if not done:
            self.last_vlan = np.zeros(0, np.uint16)
            return Batch.empty()
        count, ntc = self.count, self._ntc
        if ntc + done <= count:
            idx = None
            status = self._status[ntc : ntc + done]
        else:
            idx = np.concatenate([np.arange(ntc, count), np.arange(0, ntc + done - count)])
            status = self._status[idx]
        eop = np.flatnonzero(status & R.RXD_STAT_EOP)
        if not len(eop):
            return Batch.empty()  # a frame still being written (cannot happen within one batch)
        frames = min(budget, len(eop))
        used = int(eop[frames - 1]) + 1
        data = self.memory.buffer
        if frames == used:  # one descriptor per frame: the common case
            sel = slice(ntc, ntc + used) if idx is None else idx[:used]
            offsets = self._bufs[sel].astype(np.int64)
            lengths = self._length[sel].astype(np.uint32)
            vlan = np.where(status[:used] & R.RXD_STAT_VP, self._vlan[sel], 0).astype(np.uint16)
        else:
            ends = eop[:frames]
            starts = np.concatenate([[0], ends[:-1] + 1])
            order = np.arange(ntc, ntc + used) % count
            lens = self._length[order].astype(np.uint32)
            lengths = np.add.reduceat(lens, starts).astype(np.uint32)
            offsets = self._bufs[order[starts]].astype(np.int64)
            vlan = np.where(status[ends] & R.RXD_STAT_VP, self._vlan[order[ends]], 0).astype(np.uint16)
            wraps = np.flatnonzero(order[starts] > order[ends])
            for f in wraps.tolist():  # at most one: copy it whole into the bounce area
                pieces = [
                    self.memory.view(int(self._bufs[d]), int(self._length[d]))
                    for d in order[starts[f] : ends[f] + 1].tolist()
                ]
                joined = np.concatenate(pieces)[:BOUNCE_SIZE]
                self.memory.view(self.bounce_addr, len(joined))[:] = joined
                offsets[f] = self.bounce_addr
        self._ntc = (ntc + used) % count
        self.last_vlan = vlan
        self.frames += frames
        self.bytes += int(lengths.sum())
        return Batch(data, offsets, lengths, np.zeros(frames, np.int64), validate=False)

    def __repr__(self) -> str:
        return f"<RxRing {getattr(self.fn, 'name', '?')} q{self.queue} {self.count}x{self.buffer_size}>"
