"""The driver side of a transmit queue: descriptor ring and buffers in guest memory.

`TxRing` is what ixgbevf's ``ixgbevf_ring`` is for one TX queue, and serves the PF driver too
(host memory, PF BAR registers). It talks to the device through ``fn.write32`` (the tail write
through the store the device names for it, see ``_doorbell``) and the ring in memory, as a real
driver does:

* ``up()``: ring (``count`` x 16-byte advanced descriptors, 128-byte aligned) and one
  ``buffer_size`` buffer per descriptor allocated from the `GuestMemory`; the queue programmed
  as ``ixgbevf_configure_tx_ring`` does (TXDCTL cleared, TDBAL/TDBAH/TDLEN, head write-back
  off (TDWBAL/TDWBAH = 0), TDH = TDT = 0, TXDCTL.ENABLE).
* ``transmit(batch)``: completions reclaimed first, then each frame copied into the buffers of
  the next free descriptors (a frame longer than a buffer spans several), advanced data
  descriptors written (DTYP_DATA | DEXT | IFCS, EOP | RS on the last, PAYLEN), and the tail
  written once for the whole batch. Returns how many frames were queued: a frame that does not
  fit in the free descriptors stops the batch (``tx_busy``, as NETDEV_TX_BUSY).
* ``clean()``: ``ixgbevf_clean_tx_irq``: frames whose last descriptor has DD are done and their
  descriptors free again.

The tail write is the device's doorbell: the port's transmit engine runs at once (see
`sriov.wire_tx`), so by the time ``transmit`` returns the frames have been sent and written back.
"""

from __future__ import annotations

import numpy as np

from sriov import kernels
from sriov.batch import Batch
from sriov.drivers.ring_args import check_ring_args
from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.memory import GuestMemory

DEFAULT_TXD = 1024  # IXGBEVF_DEFAULT_TXD


class TxRing:
    """The driver side of one transmit queue (VF: VF BAR registers; PF: PF BAR registers)."""

    def __init__(
        self,
        fn,
        memory: GuestMemory,
        queue: int = 0,
        count: int = DEFAULT_TXD,
        buffer_size: int = 2048,
        start: bool = True,
        implementation=None,
    ) -> None:
        """``fn``: the PCI function whose BAR programs the queue; ``queue``: the function's queue
        index (VF queue q for a VF, the PF queue index for the PF). ``start``: run `up` now.
        ``implementation``: the kernels module whose ``TxRingCore`` (``tx_fill``/``tx_clean``) does the
        per-frame work."""
        self.is_vf = check_ring_args(fn, queue, count, buffer_size)
        self.fn = fn
        self.memory = memory
        self.queue = queue
        self.count = count
        self.buffer_size = buffer_size
        if self.is_vf:
            regs = (R.VFTDBAL, R.VFTDBAH, R.VFTDLEN, R.VFTDH, R.VFTDT, R.VFTXDCTL, R.VFTDWBAL, R.VFTDWBAH)
        else:
            regs = (R.TDBAL, R.TDBAH, R.TDLEN, R.TDH, R.TDT, R.TXDCTL, R.TDWBAL, R.TDWBAH)
        self._regs = tuple(reg(queue) for reg in regs)
        self.ring_addr = memory.alloc(count * R.TX_DESC_SIZE, align=128)
        self.buffers_addr = memory.alloc(count * buffer_size, align=4096)
        self._words = memory.view(self.ring_addr, count * R.TX_DESC_SIZE).view("<u4").reshape(count, 4)
        self._bufs = np.arange(count, dtype=np.uint64) * np.uint64(buffer_size) + np.uint64(self.buffers_addr)
        self._watch = np.full(count, -1, np.int32)  # next_to_watch: first descriptor -> last of its frame
        self._impl = implementation if implementation is not None else kernels.impl
        # the per-burst ring work (reclaim, fill, scan) bound once to these arrays
        self._core = self._impl.TxRingCore(self._words, memory.buffer, self._bufs, buffer_size, self._watch)
        self._ntu = 0  # next_to_use
        self._ntc = 0  # next_to_clean
        self.running = False
        self.frames = 0  # frames queued
        self.completed = 0  # frames the hardware finished (DD seen)
        self.tx_busy = 0  # transmit calls stopped by a full ring
        self._tail: tuple | None = None  # (regs, word, guard word, guard value, queue, device): see _doorbell
        if start:
            self.up()

    # -- bring-up ---------------------------------------------------------------------------------
    def up(self) -> None:
        """Program the queue (ixgbevf_configure_tx_ring); the ring starts empty."""
        tdbal, tdbah, tdlen, tdh, tdt, txdctl, tdwbal, tdwbah = self._regs
        w = self.fn.write32
        w(txdctl, 0)  # quiesce while the ring is (re)programmed
        w(tdbal, self.ring_addr & 0xFFFFFFFF)
        w(tdbah, self.ring_addr >> 32)
        w(tdlen, self.count * R.TX_DESC_SIZE)
        w(tdwbah, 0)  # head write-back off: completions are DD in the descriptors
        w(tdwbal, 0)
        w(tdh, 0)
        w(tdt, 0)
        self._words[:] = 0
        self._watch[:] = -1
        self._ntu = self._ntc = 0
        w(txdctl, R.TXDCTL_ENABLE)
        self.running = True

    def down(self) -> None:
        """Stop the queue (TXDCTL.ENABLE cleared); frames not yet sent stay in the ring."""
        self.fn.write32(self._regs[5], 0)
        self.running = False

    # -- transmit ---------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Descriptors posted and not yet reclaimed."""
        return (self._ntu - self._ntc) % self.count

    def clean(self) -> int:
        """Reclaim completed frames (ixgbevf_clean_tx_irq); returns how many."""
        frames, self._ntc = self._core.clean(self._ntc, self._ntu)
        self.completed += frames
        return frames

    def transmit(self, batch: Batch) -> int:
        """Queue the frames of ``batch`` and ring the doorbell; returns how many were queued."""
        if not isinstance(batch, Batch):
            raise ConfigError(f"transmit() takes a sriov.Batch, got {type(batch).__name__}")
        batch.check_arrays()
        if not self.running:
            raise ConfigError(f"{getattr(self.fn, 'name', '?')} TX queue {self.queue} is down")
        n = len(batch)
        if n == 0:
            return 0
        # reclaim (normally nothing: the doorbell already ran the engine and we reclaimed) and fill
        # the free descriptors (one stays unused: head == tail means empty), one compiled call
        frames, used, cleaned, self._ntc = self._core.send(
            self._ntu, self._ntc, batch.data, batch.offsets, batch.lengths, n
        )
        self.completed += cleaned
        if frames < n:
            self.tx_busy += 1
        if used:
            self._ntu = (self._ntu + used) % self.count
            self._doorbell(self._ntu)
            self.frames += frames
            self.clean()
        return frames

    def _doorbell(self, value: int) -> None:
        """TDT/VFTDT = ``value``: the device stores it and runs the port's transmit engine on the queue.

        Once the device has said where the write lands (`tx_tail_register`), the same two effects
        (the stored word, then ``device.tx_doorbell(queue)``) are done directly, for as long as the
        device's guard holds (a VF's queue window moves with the queues per pool); otherwise, and
        the first time, through ``fn.write32`` like every other register write."""
        tail = self._tail
        if tail is not None:
            regs, word, guard_word, guard, queue, device = tail
            if regs.item(guard_word) == guard:
                regs[word] = value
                bell = device.tx_doorbell
                if bell is not None:
                    bell(queue)
                return
        self.fn.write32(self._regs[4], value)
        device = getattr(self.fn, "device", None)
        where = getattr(device, "tx_tail_register", None)
        found = where(self.fn, self._regs[4]) if where is not None else None
        if found is None:
            self._tail = None
        else:
            queue, word, guard_word, guard = found
            self._tail = (device.regs, word, guard_word, guard, queue, device)

    def __repr__(self) -> str:
        return f"<TxRing {getattr(self.fn, 'name', '?')} q{self.queue} {self.count}x{self.buffer_size}>"
