"""The package's exceptions: every error sriov raises on purpose derives from SriovError."""

from __future__ import annotations


class SriovError(Exception):
    """Root of every error the sriov package raises on purpose."""


class ConfigError(SriovError, ValueError):
    """A bad configuration or argument: says what was wrong and what is allowed."""


class RegisterAccessError(SriovError):
    """A BAR access to an offset the function does not implement, or a bad value width."""


class MailboxError(SriovError):
    """A mailbox or protocol failure seen by a driver (timeout, lock not granted, NACK)."""


class DriverStateError(SriovError):
    """A driver operation refused in the current state (load order, bound VFs, link down)."""


class DmaFault(SriovError):
    """An IOMMU translation fault raised to a Python caller (the kernels count faults instead)."""

    def __init__(self, function: str, address: int, kind: str) -> None:
        super().__init__(f"DMA fault: {kind} at IOVA {address:#x} by {function}")
        self.function = function
        self.address = address
        self.kind = kind


class CaptureError(SriovError):
    """A capture file that cannot be read: names the offset and what was wrong."""
