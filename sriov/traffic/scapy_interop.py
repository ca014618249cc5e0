"""scapy interop (the optional ``scapy`` extra): Batch <-> lists of scapy packets.

For building a handful of frames in one line and inspecting what a VM got; scapy makes an
object per layer per packet, so this is for tests and exploration, never a hot path. Without
scapy installed both functions raise ConfigError saying how to install it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sriov.batch import Batch
from sriov.errors import ConfigError

__all__ = ["from_scapy", "to_scapy"]

_INSTALL = "scapy is not installed: pip install 'sriov[scapy]' (or pip install scapy)"


def _scapy() -> Any:
    try:
        from scapy.layers import l2
        from scapy.utils import EDecimal
    except ImportError:
        raise ConfigError(_INSTALL) from None
    return l2, EDecimal


def from_scapy(packets: Iterable[Any]) -> Batch:
    """Copy scapy packets (Ethernet: ``Ether`` or ``Dot3`` at the bottom) into one Batch.

    Each packet's ``time`` becomes its timestamp in nanoseconds (exact for the ``EDecimal``
    times scapy reads from nanosecond captures). Any other bottom layer is a ConfigError naming
    the packet: the model takes Ethernet frames only.
    """
    l2, _ = _scapy()
    frames: list[bytes] = []
    stamps: list[int] = []
    for i, p in enumerate(packets):
        if not isinstance(p, (l2.Ether, l2.Dot3)):
            raise ConfigError(
                f"packet {i} is {type(p).__name__}, not an Ethernet frame: put Ether() / ... at the bottom"
            )
        frames.append(bytes(p))
        stamps.append(int(Decimal(str(p.time)) * 1_000_000_000))
    return Batch.from_frames(frames, stamps)


def to_scapy(batch: Batch) -> list[Any]:
    """Each frame of ``batch`` dissected as a scapy ``Ether``, with ``time`` from its timestamp."""
    l2, EDecimal = _scapy()
    out = []
    for f, t in zip(batch, batch.timestamps_ns.tolist(), strict=True):
        p = l2.Ether(bytes(f))
        p.time = EDecimal(t) / 1_000_000_000
        out.append(p)
    return out
