"""The IOMMU (VT-d): one translation domain per PCI function, 4 KiB pages.

A domain maps I/O virtual addresses (guest-physical addresses for a VF given to a
VM) onto pages of registered host buffers (preallocated numpy arrays). The page
table of a domain is a flat numpy array the compiled kernels read directly:

    entry = VALID | WRITABLE? | buffer_id << 40 | byte offset of the page in the buffer

A translation miss, or a write to a read-only page, is a fault: recorded in a
ring (function, address, kind), counted per domain, and never a silent access.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from sriov.errors import ConfigError, DmaFault

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTE_VALID = np.uint64(1 << 63)
PTE_WRITABLE = np.uint64(1 << 62)
PTE_BUFFER_SHIFT = 40
PTE_BUFFER_MASK = (1 << 22) - 1
PTE_OFFSET_MASK = (1 << 40) - 1
MAX_IOVA = 1 << 36  # flat page tables cover at most 64 GiB of IOVA space per domain

FAULT_NOT_MAPPED = 1  # translation miss
FAULT_READ_ONLY = 2  # write to a page mapped read-only
FAULT_KIND_NAMES = {FAULT_NOT_MAPPED: "not-mapped", FAULT_READ_ONLY: "write-to-read-only"}
FAULT_LOG_SIZE = 4096
MAX_DOMAINS = 1024


@dataclass(frozen=True)
class Fault:
    """One recorded DMA fault."""

    function: str
    address: int
    kind: str


class Iommu:
    """The platform IOMMU: host buffers, per-function domains and the fault log."""

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []
        self._buffer_ids: dict[int, int] = {}
        self.buffer_addrs = np.zeros(16, dtype=np.uint64)
        self.buffer_sizes = np.zeros(16, dtype=np.uint64)
        self.domains: list[Domain] = []
        self.fault_counts = np.zeros(MAX_DOMAINS, dtype=np.uint64)
        self.fault_domain = np.zeros(FAULT_LOG_SIZE, dtype=np.int32)
        self.fault_addr = np.zeros(FAULT_LOG_SIZE, dtype=np.uint64)
        self.fault_kind = np.zeros(FAULT_LOG_SIZE, dtype=np.uint8)
        self.fault_total = np.zeros(1, dtype=np.uint64)  # also written by the kernels
        self.generation = 0  # bumped whenever a page table or the buffer table is reallocated
        # the fault log is shared by every port, whose datapaths may run in several threads (the
        # compiled kernels add to it atomically)
        self._fault_lock = threading.Lock()

    # -- host buffers -------------------------------------------------------------------------
    def register_buffer(self, buffer: np.ndarray) -> int:
        """Make a contiguous writable uint8 array mappable; returns its buffer id."""
        if not isinstance(buffer, np.ndarray) or buffer.dtype != np.uint8 or buffer.ndim != 1:
            raise ConfigError("host buffer must be a 1-D numpy uint8 array")
        if not buffer.flags.c_contiguous or not buffer.flags.writeable:
            raise ConfigError("host buffer must be C-contiguous and writable")
        addr = buffer.__array_interface__["data"][0]
        if addr in self._buffer_ids and self._buffers[self._buffer_ids[addr]].nbytes == buffer.nbytes:
            return self._buffer_ids[addr]
        bid = len(self._buffers)
        if bid > PTE_BUFFER_MASK:
            raise ConfigError(f"too many host buffers (at most {PTE_BUFFER_MASK + 1})")
        self._buffers.append(buffer)
        self._buffer_ids[addr] = bid
        if bid >= len(self.buffer_addrs):
            self.buffer_addrs = np.concatenate([self.buffer_addrs, np.zeros_like(self.buffer_addrs)])
            self.buffer_sizes = np.concatenate([self.buffer_sizes, np.zeros_like(self.buffer_sizes)])
            self.generation += 1
        self.buffer_addrs[bid] = addr
        self.buffer_sizes[bid] = buffer.nbytes
        return bid

    def buffer(self, buffer_id: int) -> np.ndarray:
        """The host buffer registered under ``buffer_id``."""
        return self._buffers[buffer_id]

    # -- domains ------------------------------------------------------------------------------
    def new_domain(self, function: str) -> Domain:
        """A fresh, empty translation domain for the named PCI function."""
        if len(self.domains) >= MAX_DOMAINS:
            raise ConfigError(f"too many IOMMU domains (at most {MAX_DOMAINS})")
        domain = Domain(self, len(self.domains), function)
        self.domains.append(domain)
        return domain

    # -- faults -------------------------------------------------------------------------------
    def record_fault(self, domain_id: int, address: int, kind: int) -> None:
        """Log a fault (the compiled kernels write the same ring themselves)."""
        with self._fault_lock:
            slot = int(self.fault_total[0]) % FAULT_LOG_SIZE
            self.fault_domain[slot] = domain_id
            self.fault_addr[slot] = address & 0xFFFFFFFFFFFFFFFF
            self.fault_kind[slot] = kind
            self.fault_total[0] += 1
            self.fault_counts[domain_id] += 1

    def faults(self) -> list[Fault]:
        """The most recent faults (up to the log size), oldest first."""
        total = int(self.fault_total[0])
        first = max(0, total - FAULT_LOG_SIZE)
        out = []
        for n in range(first, total):
            slot = n % FAULT_LOG_SIZE
            out.append(
                Fault(
                    self.domains[int(self.fault_domain[slot])].function,
                    int(self.fault_addr[slot]),
                    FAULT_KIND_NAMES.get(int(self.fault_kind[slot]), "unknown"),
                )
            )
        return out


def _check_ints(**values: object) -> None:
    """Addresses and sizes are ints (numpy ints too); anything else is a ConfigError, not a TypeError."""
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ConfigError(f"{name} must be an int (a multiple of {PAGE_SIZE} bytes), got {value!r}")


class Domain:
    """The translation domain of one PCI function."""

    def __init__(self, iommu: Iommu, domain_id: int, function: str) -> None:
        self.iommu = iommu
        self.id = domain_id
        self.function = function
        self.page_table = np.zeros(16, dtype=np.uint64)

    @property
    def fault_count(self) -> int:
        """Faults this domain's function caused."""
        return int(self.iommu.fault_counts[self.id])

    def _check_range(self, iova: int, size: int) -> None:
        _check_ints(iova=iova, size=size)
        if iova < 0 or size <= 0 or iova % PAGE_SIZE or size % PAGE_SIZE:
            raise ConfigError(
                f"IOVA {iova:#x} and size {size:#x} must be positive multiples of {PAGE_SIZE} bytes"
            )
        if iova + size > MAX_IOVA:
            raise ConfigError(f"IOVA range ends at {iova + size:#x}, above the modelled {MAX_IOVA:#x}")

    def map(self, iova: int, host_buffer: np.ndarray, offset: int, size: int, writable: bool = True) -> None:
        """Map ``size`` bytes of ``host_buffer`` starting at ``offset`` at ``iova``.

        All three must be 4 KiB aligned; the range must lie inside the buffer and
        must not overlap a range already mapped in this domain (unmap first).
        """
        self._check_range(iova, size)
        _check_ints(offset=offset)
        if offset < 0 or offset % PAGE_SIZE:
            raise ConfigError(f"buffer offset {offset:#x} must be a non-negative multiple of {PAGE_SIZE}")
        # every check before any change: a refused map leaves the buffer table and page table as they were
        if isinstance(host_buffer, np.ndarray) and offset + size > host_buffer.nbytes:
            raise ConfigError(
                f"mapping [{offset:#x}, {offset + size:#x}) exceeds the {host_buffer.nbytes:#x}-byte buffer"
            )
        first, count = iova >> PAGE_SHIFT, size >> PAGE_SHIFT
        if np.any(self.page_table[first : first + count] & PTE_VALID):
            raise ConfigError(f"IOVA range [{iova:#x}, {iova + size:#x}) overlaps an existing mapping")
        buffer_id = self.iommu.register_buffer(host_buffer)
        self._grow(first + count)
        pages = self.page_table[first : first + count]
        flags = PTE_VALID | (PTE_WRITABLE if writable else np.uint64(0))
        host_offsets = np.arange(count, dtype=np.uint64) * np.uint64(PAGE_SIZE) + np.uint64(offset)
        pages[:] = flags | (np.uint64(buffer_id) << np.uint64(PTE_BUFFER_SHIFT)) | host_offsets

    def unmap(self, iova: int, size: int) -> None:
        """Remove every mapping in ``[iova, iova+size)`` (unmapped pages are ignored)."""
        self._check_range(iova, size)
        first = iova >> PAGE_SHIFT
        last = min(first + (size >> PAGE_SHIFT), len(self.page_table))
        if first < last:
            self.page_table[first:last] = 0

    def _grow(self, pages: int) -> None:
        if pages <= len(self.page_table):
            return
        new = np.zeros(max(pages, 2 * len(self.page_table)), dtype=np.uint64)
        new[: len(self.page_table)] = self.page_table
        self.page_table = new
        self.iommu.generation += 1

    def lookup(self, iova: int, write: bool) -> tuple[int, int] | int:
        """(buffer id, byte offset) for one address, or the fault kind; records nothing."""
        page = iova >> PAGE_SHIFT
        if iova < 0 or page >= len(self.page_table):
            return FAULT_NOT_MAPPED
        pte = int(self.page_table[page])
        if not pte & int(PTE_VALID):
            return FAULT_NOT_MAPPED
        if write and not pte & int(PTE_WRITABLE):
            return FAULT_READ_ONLY
        return (pte >> PTE_BUFFER_SHIFT) & PTE_BUFFER_MASK, (pte & PTE_OFFSET_MASK) + (iova & (PAGE_SIZE - 1))

    def translate(self, iova: int, size: int, write: bool = False) -> np.ndarray:
        """A view of host memory for ``[iova, iova+size)``, or DmaFault (recorded, counted).

        The range may cross pages only where they are contiguous in one host buffer.
        """
        if size <= 0:
            raise ConfigError(f"translation size must be positive, got {size}")
        first = self.lookup(iova, write)
        if isinstance(first, int):
            self.iommu.record_fault(self.id, iova, first)
            raise DmaFault(self.function, iova, FAULT_KIND_NAMES[first])
        buffer_id, offset = first
        page = (iova >> PAGE_SHIFT) + 1
        while (page << PAGE_SHIFT) < iova + size:
            nxt = self.lookup(page << PAGE_SHIFT, write)
            expected = offset + (page << PAGE_SHIFT) - iova
            if isinstance(nxt, int) or nxt != (buffer_id, expected):
                kind = nxt if isinstance(nxt, int) else FAULT_NOT_MAPPED
                self.iommu.record_fault(self.id, page << PAGE_SHIFT, kind)
                raise DmaFault(self.function, page << PAGE_SHIFT, FAULT_KIND_NAMES[kind])
            page += 1
        return self.iommu.buffer(buffer_id)[offset : offset + size]

    def read(self, iova: int, size: int) -> bytes:
        """DMA read of ``size`` bytes (faults as translate)."""
        return self.translate(iova, size, write=False).tobytes()

    def write(self, iova: int, data: bytes) -> None:
        """DMA write of ``data`` (faults as translate; nothing written on a fault)."""
        view = self.translate(iova, len(data), write=True)
        view[:] = np.frombuffer(data, dtype=np.uint8)
