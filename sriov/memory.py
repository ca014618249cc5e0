"""Guest memory: one preallocated numpy buffer per VM (or the host's own, for the PF).

Guest-physical address ``gpa`` is byte ``gpa`` of the buffer. Drivers inside the VM
carve descriptor rings and packet buffers out of it with a simple bump allocator
(as a kernel's DMA allocator would hand out coherent memory), and the CPU reads and
writes it directly; the device reaches it only through the IOMMU.
"""

from __future__ import annotations

import numpy as np

from sriov.errors import ConfigError

PAGE_SIZE = 4096
MAX_MEMORY = 1 << 36  # the largest RAM: what one IOMMU domain can map (sriov.hw.iommu.MAX_IOVA)


def _check_ints(what: str, **values: object) -> None:
    # a float or None would otherwise fail deep inside (or, for alloc, corrupt the allocator)
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ConfigError(f"{what}: {name} must be an int, got {value!r}")


class GuestMemory:
    """A VM's RAM: ``buffer`` (uint8) addressed by guest-physical address."""

    def __init__(self, size: int, name: str = "guest") -> None:
        if not isinstance(size, int) or size < PAGE_SIZE or size % PAGE_SIZE:
            raise ConfigError(
                f"{name}: memory size must be a positive multiple of {PAGE_SIZE} bytes, got {size!r}"
            )
        if size > MAX_MEMORY:
            raise ConfigError(
                f"{name}: memory size {size:#x} bytes is above the limit {MAX_MEMORY:#x} (64 GiB, the "
                "IOVA space an IOMMU domain models)"
            )
        self.name = name
        # Page-aligned in host memory, as a VM's RAM is: a frame DMA'd into a guest buffer then
        # covers the cache lines it would on real hardware (numpy's own allocation starts 16
        # bytes into a line, which makes every 64-byte frame straddle two lines).
        try:
            raw = np.zeros(size + PAGE_SIZE, dtype=np.uint8)
        except MemoryError:
            raise ConfigError(f"{name}: cannot allocate {size:#x} bytes of host memory for its RAM") from None
        start = -raw.ctypes.data % PAGE_SIZE
        self.buffer = raw[start : start + size]
        self._next = PAGE_SIZE  # keep page 0 unused so a zero address is never valid DMA

    @property
    def size(self) -> int:
        """Bytes of RAM."""
        return int(self.buffer.nbytes)

    @property
    def allocated(self) -> int:
        """Bytes handed out by `alloc` so far (including page 0, kept unused)."""
        return self._next

    def alloc(self, size: int, align: int = 128) -> int:
        """Reserve ``size`` bytes aligned to ``align``; returns the guest-physical address."""
        _check_ints(self.name, size=size, align=align)
        if size <= 0 or align <= 0 or align & (align - 1):
            raise ConfigError(
                f"{self.name}: bad allocation (size {size}, align {align}; align must be a power of 2)"
            )
        start = (self._next + align - 1) & ~(align - 1)
        if start + size > self.size:
            raise ConfigError(
                f"{self.name}: out of guest memory "
                f"({size} bytes asked, {self.size - start} left of {self.size})"
            )
        self._next = start + size
        return start

    def release_to(self, mark: int) -> None:
        """Free every allocation made since ``allocated`` was ``mark`` (a stack allocator's free:
        a driver that rebuilds its rings gives their memory back first)."""
        _check_ints(self.name, mark=mark)
        if not PAGE_SIZE <= mark <= self._next:
            raise ConfigError(f"{self.name}: release mark {mark} outside {PAGE_SIZE}..{self._next}")
        self._next = mark

    def view(self, gpa: int, size: int) -> np.ndarray:
        """The bytes at ``[gpa, gpa+size)`` as a writable view (CPU access, no IOMMU)."""
        _check_ints(self.name, gpa=gpa, size=size)
        if gpa < 0 or size < 0 or gpa + size > self.size:
            raise ConfigError(
                f"{self.name}: [{gpa:#x}, {gpa + size:#x}) is outside {self.size:#x} bytes of RAM"
            )
        return self.buffer[gpa : gpa + size]
