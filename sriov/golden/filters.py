"""Golden model of the L2 filter primitives (twin of ``sriov/_fp_filters.pxi``)."""

from __future__ import annotations

import numpy as np

from sriov.errors import ConfigError
from sriov.hw import regs as R

# MCSTCTRL.MO selects which 12 destination-address bits index the MTA (spec §5.4):
# the vector is ((a[5] << 8) | a[4]) >> shift, for shifts 4, 3, 2, 0.
_MO_SHIFT = (4, 3, 2, 0)


def mta_vector(mac: bytes, mo: int = 0) -> int:
    """The 12-bit MTA vector of a destination MAC (register = v >> 5, bit = v & 31)."""
    if not 0 <= mo <= 3:
        raise ConfigError(f"MCSTCTRL.MO must be 0..3, got {mo}")
    return (((mac[5] << 8) | mac[4]) >> _MO_SHIFT[mo]) & 0xFFF


def mac_key(mac: bytes) -> int:
    """A MAC as an integer with byte 0 lowest: RAL holds bits 31:0, RAH[15:0] bits 47:32."""
    return int.from_bytes(bytes(mac[:6]), "little")


def rar_pools(rar: np.ndarray, mpsar: np.ndarray, mac: bytes) -> int:
    """OR of the pool bitmaps of every valid receive-address entry equal to ``mac``."""
    key = mac_key(mac)
    pools = 0
    for (ral, rah), bitmap in zip(rar.tolist(), mpsar.tolist(), strict=False):
        if rah & R.RAH_AV and ((rah & 0xFFFF) << 32 | ral) == key:
            pools |= bitmap
    return pools


def mta_vectors(macs: np.ndarray, mo: int, out: np.ndarray) -> None:
    """Batch form of `mta_vector`, same contract as the compiled kernel."""
    if macs.shape[1] != 6:
        raise ValueError(f"macs must have 6 columns, got {macs.shape[1]}")
    if out.shape[0] != macs.shape[0]:
        raise ValueError(f"out has {out.shape[0]} slots for {macs.shape[0]} addresses")
    if not 0 <= mo <= 3:
        raise ValueError(f"MCSTCTRL.MO must be 0..3, got {mo}")
    for i, row in enumerate(macs.tolist()):
        out[i] = mta_vector(bytes(row), mo)


def rar_lookup(rar: np.ndarray, mpsar: np.ndarray, macs: np.ndarray, out: np.ndarray) -> None:
    """Batch form of `rar_pools`, same contract as the compiled kernel."""
    if rar.shape[1] != 2 or mpsar.shape[0] != rar.shape[0]:
        raise ValueError("rar must be (n, 2) (RAL, RAH) with one MPSAR bitmap per entry")
    if macs.shape[1] != 6 or out.shape[0] != macs.shape[0]:
        raise ValueError("macs must be (n, 6) and out must have n slots")
    for i, row in enumerate(macs.tolist()):
        out[i] = rar_pools(rar, mpsar, bytes(row))
