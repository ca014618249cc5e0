"""Invariant checks users and tests can run on a live model.

* Conservation (`conservation_errors`): every frame that entered a port was delivered or dropped
  for a named, counted reason, per port and per pool.
* The memory guard (`DmaWatch`): no byte of guest (or host) memory changed outside a page the
  writing function has mapped writable, and outside the rings and posted buffers the hardware
  was allowed to write; in particular no descriptor written outside a ring.

Each check returns the list of violations (empty when the invariant holds), so a test can assert
on it and a tool can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sriov.hw import regs as R
from sriov.hw.iommu import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_BUFFER_MASK,
    PTE_BUFFER_SHIFT,
    PTE_OFFSET_MASK,
    PTE_VALID,
    PTE_WRITABLE,
)
from sriov.wire import rx_conservation_errors

W = 4
U64 = (1 << 64) - 1
_QPP = {R.GCR_EXT_VT_MODE_16: 8, R.GCR_EXT_VT_MODE_32: 4}


def conservation_errors(device: Any) -> list[str]:
    """Every way the counters of ``device`` (one 82599 port) fail to add up."""
    errors = list(rx_conservation_errors(device))
    try:
        from sriov.wire import tx_conservation_errors  # type: ignore[attr-defined]
    except ImportError:  # the transmit side adds its own identity when it is present
        return errors
    return errors + list(tx_conservation_errors(device))


check_conservation = conservation_errors


# ----------------------------------------------------------------------------------------------
# The memory guard
@dataclass
class _Allowed:
    """Byte ranges of one host buffer a device may write: sorted, merged on demand."""

    ranges: set[tuple[int, int, str]] = field(default_factory=set)  # (start, end, what)
    _starts: np.ndarray | None = None
    _ends: np.ndarray | None = None
    _whats: list[str] = field(default_factory=list)

    def add(self, start: int, end: int, what: str) -> None:
        if end > start and (start, end, what) not in self.ranges:
            self.ranges.add((start, end, what))
            self._starts = None

    def _index(self) -> None:
        if self._starts is None:
            ordered = sorted(self.ranges)
            self._starts = np.array([r[0] for r in ordered], np.int64)
            self._ends = np.array([r[1] for r in ordered], np.int64)
            self._whats = [r[2] for r in ordered]
            # running maximum of the ends: a byte is covered when any range starting at or
            # before it ends after it
            if len(self._ends):
                self._ends = np.maximum.accumulate(self._ends)

    def covers(self, positions: np.ndarray) -> np.ndarray:
        """Boolean per position: inside some allowed range."""
        self._index()
        assert self._starts is not None and self._ends is not None
        if not len(self._starts):
            return np.zeros(len(positions), bool)
        k = np.searchsorted(self._starts, positions, side="right") - 1
        ok = k >= 0
        ok[ok] = self._ends[k[ok]] > positions[ok]
        return ok


class DmaWatch:
    """Records which memory each function's device side may write, and reports any other write.

    ``DmaWatch(host)`` (a `sriov.Host`; or ``DmaWatch(devices=[...], iommu=...)`` for a bare
    device) snapshots every host buffer the IOMMU knows (VM memories, host memory) and derives,
    from the register state of every port, what the hardware may write:

    * each receive queue's descriptor ring ``[RDBA, RDBA + RDLEN)`` and each transmit queue's
      ring ``[TDBA, TDBA + TDLEN)`` (write-back), plus the 8-byte TX head write-back area;
    * the buffer of each descriptor the hardware owns (RDH .. RDT-1), ``SRRCTL.BSIZEPKT`` bytes;

    each translated through the owning function's IOMMU domain (a VF's queues: the VF's domain;
    the PF pool and VT off: the PF's), keeping only pages mapped *writable*. Guest CPU areas a
    driver writes itself (an RxRing's bounce area) are allowed too, as is anything passed to
    `allow`. Call `refresh` after drivers re-post descriptors or re-program rings (before each
    burst is safest; allowed regions accumulate), and `check` after traffic: every changed byte
    outside the allowed regions is a violation, named by buffer, offset and why (not mapped
    writable by any function, or mapped but no ring/buffer covers it).
    """

    def __init__(
        self,
        host: Any = None,
        *,
        devices: list[Any] | None = None,
        iommu: Any = None,
        precise: bool = True,
    ) -> None:
        """``precise=False`` checks only that every changed byte lies in a page some function has
        mapped writable (cheap: no walk of the rings; for fuzzing with absurd ring sizes)."""
        if host is not None:
            devices = [port.device for port in host.ports.values()]
            iommu = host.iommu
        if iommu is None or devices is None:
            from sriov.errors import ConfigError

            raise ConfigError("DmaWatch needs a Host, or devices=[...] and iommu=")
        self.host = host
        self.devices = list(devices)
        self.iommu = iommu
        self.precise = precise
        self._allowed: dict[int, _Allowed] = {}
        self._writable: dict[int, _Allowed] = {}
        self._before: dict[int, np.ndarray] = {}
        self.arm()

    # -- set-up -----------------------------------------------------------------------------------
    def _buffers(self) -> list[np.ndarray]:
        return list(getattr(self.iommu, "_buffers", []))

    def arm(self) -> None:
        """Snapshot memory now and start from the regions the current registers allow."""
        self._before = {bid: buf.copy() for bid, buf in enumerate(self._buffers())}
        self._allowed = {}
        self._writable = {}
        self.refresh()

    def allow(self, buffer: np.ndarray, start: int, size: int, what: str = "allowed by caller") -> None:
        """Let ``buffer[start:start+size]`` change (memory a CPU writes, outside the device's view)."""
        bid = self._bid(buffer)
        if bid is not None:
            self._allowed.setdefault(bid, _Allowed()).add(start, start + size, what)
            self._writable.setdefault(bid, _Allowed()).add(start, start + size, what)

    def _bid(self, buffer: np.ndarray) -> int | None:
        addr = buffer.__array_interface__["data"][0]
        for bid, buf in enumerate(self._buffers()):
            if buf.__array_interface__["data"][0] == addr:
                return bid
        return None

    def refresh(self) -> None:
        """Add the regions the registers allow now (rings, posted buffers, mapped pages)."""
        for dev in self.devices:
            for fn in (dev.pf, *dev.vfs):
                self._add_writable_pages(fn.domain)
            if self.precise:
                self._add_device(dev)
        if self.host is not None:  # driver CPU areas: the bounce copy of a wrapping frame
            rings = [getattr(nic, "rx_ring", None) for nic in self.host.nics()]
            rings += [getattr(p.pf, "rx_ring", None) for p in self.host.ports.values()]
            for ring in rings:
                if ring is not None and hasattr(ring, "bounce_addr"):
                    from sriov.drivers.rings import BOUNCE_SIZE

                    self.allow(ring.memory.buffer, ring.bounce_addr, BOUNCE_SIZE, "driver bounce area")

    def _add_writable_pages(self, domain: Any) -> None:
        table = domain.page_table
        ptes = table[((table & PTE_VALID) != 0) & ((table & PTE_WRITABLE) != 0)]
        if not len(ptes):
            return
        bids = ((ptes >> np.uint64(PTE_BUFFER_SHIFT)) & np.uint64(PTE_BUFFER_MASK)).astype(np.int64)
        offs = (ptes & np.uint64(PTE_OFFSET_MASK)).astype(np.int64)
        # runs of pages contiguous in one buffer become one range (a VM is one mapping of many pages)
        breaks = np.flatnonzero((np.diff(bids) != 0) | (np.diff(offs) != PAGE_SIZE)) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(ptes)]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            lo, hi = int(offs[a]), int(offs[b - 1]) + PAGE_SIZE
            self._writable.setdefault(int(bids[a]), _Allowed()).add(lo, hi, domain.function)

    def _translate_add(self, domain: Any, iova: int, size: int, what: str) -> None:
        """Allow ``[iova, iova+size)`` of ``domain`` where its pages are mapped writable."""
        table = domain.page_table
        iova &= U64
        end = iova + size
        while iova < end:
            page = iova >> PAGE_SHIFT
            span = min(end, (page + 1) << PAGE_SHIFT) - iova
            if page < len(table):
                pte = int(table[page])
                if pte & int(PTE_VALID) and pte & int(PTE_WRITABLE):
                    bid = (pte >> PTE_BUFFER_SHIFT) & PTE_BUFFER_MASK
                    off = (pte & PTE_OFFSET_MASK) + (iova & (PAGE_SIZE - 1))
                    self._allowed.setdefault(bid, _Allowed()).add(off, off + span, what)
            iova += span

    def _read(self, domain: Any, iova: int, size: int) -> bytes | None:
        """Read through ``domain`` without recording a fault (None when not mapped)."""
        out = b""
        while size > 0:
            hit = domain.lookup(iova, False)
            if isinstance(hit, int):
                return None
            bid, off = hit
            span = min(size, PAGE_SIZE - (iova & (PAGE_SIZE - 1)))
            buf = self.iommu.buffer(bid)
            if off + span > len(buf):
                return None
            out += buf[off : off + span].tobytes()
            iova, size = iova + span, size - span
        return out

    def _add_device(self, dev: Any) -> None:
        regs = dev.regs
        vt = bool(int(regs[R.VT_CTL // W]) & R.VT_CTL_VT_ENABLE)
        qpp = _QPP.get(int(regs[R.GCR_EXT // W]) & R.GCR_EXT_VT_MODE_MASK, 2)
        nvfs = len(dev.vfs)
        for q in range(R.MAX_QUEUES):
            pool = q // qpp
            owner = dev.vfs[pool] if vt and pool < nvfs else dev.pf
            name = f"{owner.name} queue {q}"
            reg = lambda base, f, q=q: int(regs[(base(q) + f) // W])  # noqa: E731
            # receive ring and the buffers of the descriptors the hardware owns
            base = (reg(R.RDBAL, R.Q_RDBAH) << 32) | (reg(R.RDBAL, R.Q_RDBAL) & 0xFFFFFF80)
            count = (reg(R.RDBAL, R.Q_RDLEN) & 0xFFF80) // R.RX_DESC_SIZE
            if count:
                self._translate_add(owner.domain, base, count * R.RX_DESC_SIZE, f"{name} RX ring")
                head, tail = reg(R.RDBAL, R.Q_RDH) & 0xFFFF, reg(R.RDBAL, R.Q_RDT) & 0xFFFF
                srrctl = reg(R.RDBAL, R.Q_SRRCTL)
                bsize = ((srrctl & R.SRRCTL_BSIZEPKT_MASK) << R.SRRCTL_BSIZEPKT_SHIFT) or 2048
                if head < count and tail < count:
                    d = head
                    while d != tail:
                        raw = self._read(owner.domain, (base + d * R.RX_DESC_SIZE) & U64, 8)
                        if raw is not None:
                            addr = int.from_bytes(raw, "little")
                            self._translate_add(owner.domain, addr, bsize, f"{name} RX buffer {d}")
                        d = (d + 1) % count
            # transmit ring (descriptor write-back) and the head write-back word
            tbase = (reg(R.TDBAL, R.Q_TDBAH) << 32) | (reg(R.TDBAL, R.Q_TDBAL) & 0xFFFFFF80)
            tlen = reg(R.TDBAL, R.Q_TDLEN) & 0xFFF80
            if tlen:
                self._translate_add(owner.domain, tbase, tlen, f"{name} TX ring")
            wb = reg(R.TDBAL, R.Q_TDWBAL)
            if wb & 1:
                wba = (reg(R.TDBAL, R.Q_TDWBAH) << 32) | (wb & ~3 & 0xFFFFFFFF)
                self._translate_add(owner.domain, wba, 8, f"{name} TX head write-back")

    # -- the check --------------------------------------------------------------------------------
    def changed(self) -> dict[int, np.ndarray]:
        """Changed byte offsets per host buffer id since `arm`."""
        out = {}
        for bid, before in self._before.items():
            now = self.iommu.buffer(bid)
            diff = np.flatnonzero(before != now[: len(before)])
            if len(diff):
                out[bid] = diff
        return out

    def violations(self) -> list[tuple[int, int, str]]:
        """``(buffer id, offset, why)`` of every byte changed outside what was allowed."""
        out = []
        for bid, diff in self.changed().items():
            table = self._allowed if self.precise else self._writable
            allowed = table.get(bid, _Allowed()).covers(diff)
            bad = diff[~allowed]
            if not len(bad):
                continue
            mapped = self._writable.get(bid, _Allowed()).covers(bad)
            for off, m in zip(bad.tolist(), mapped.tolist(), strict=True):
                why = "outside any ring or posted buffer" if m else "not mapped writable by any function"
                out.append((bid, off, why))
        return out

    def check(self, limit: int = 8) -> list[str]:
        """The violations in words (empty when memory was written only where allowed)."""
        bad = self.violations()
        if not bad:
            return []
        msgs = []
        runs: list[tuple[int, int, int, str]] = []  # merge consecutive bytes into runs
        for bid, off, why in bad:
            if runs and runs[-1][0] == bid and runs[-1][2] == off and runs[-1][3] == why:
                runs[-1] = (bid, runs[-1][1], off + 1, why)
            else:
                runs.append((bid, off, off + 1, why))
        for bid, start, end, why in runs[:limit]:
            msgs.append(f"buffer {bid}: bytes [{start:#x}, {end:#x}) written {why}")
        if len(runs) > limit:
            msgs.append(f"... and {len(runs) - limit} more runs ({len(bad)} bytes in all)")
        return msgs

    def assert_clean(self) -> None:
        """Raise AssertionError naming the first stray writes."""
        msgs = self.check()
        if msgs:
            raise AssertionError("memory written outside rings/buffers: " + "; ".join(msgs))


__all__ = ["DmaWatch", "check_conservation", "conservation_errors"]
