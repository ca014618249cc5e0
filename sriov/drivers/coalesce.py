"""Interrupt coalescing, driver side: ``ethtool -C rx-usecs`` and the adaptive ITR rule.

What ixgbe / ixgbevf do, written for this model (facts from their sources, code our own):

* ``rx-usecs`` 0..1022 (``IXGBE_MAX_EITR >> 2``); anything else is refused.
  0 = no moderation, 1 = adaptive (start at ``IXGBE_20K_ITR``), N > 1 = a fixed
  interval: the vector's ``itr`` is ``N << 2`` and the driver writes
  ``(itr & IXGBE_MAX_EITR) | CNT_WDIS`` to VTEITR(v) (a VF) or EITR(v) (the PF).
* Adaptive mode (``ixgbevf_update_itr`` / ``ixgbevf_set_itr``): after each NAPI poll
  that completes, each ring's latency range moves by the bytes per microsecond of the
  last interrupt timeslice (``itr >> 2`` us): lowest -> low above 10 B/us; low -> bulk
  above 20, low -> lowest at or below 10; bulk -> low at or below 20. The vector's
  target is 100K/20K/12K interrupts/s for lowest/low/bulk (the worst of RX and TX
  ranges), smoothed as ``10 * new * old / (9 * new + old)``, and written only if it
  changed. Newer ixgbe PF drivers use a different adaptive algorithm; this model uses
  the ixgbevf rule for both functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.hw.regs import ivar_entry

MAX_RX_USECS = R.MAX_EITR >> 2  # 1022
ADAPTIVE = 1  # rx-usecs 1: dynamic ITR
ITR_100K = 40  # IXGBE_100K_ITR: usecs << 2 of a 100,000 interrupts/s interval
ITR_20K = 200  # IXGBE_20K_ITR
ITR_12K = 336  # IXGBE_12K_ITR (ixgbevf's bulk setting)

LOWEST_LATENCY, LOW_LATENCY, BULK_LATENCY = 0, 1, 2
_RANGE_ITR = {LOWEST_LATENCY: ITR_100K, LOW_LATENCY: ITR_20K, BULK_LATENCY: ITR_12K}


class _Function(Protocol):
    device_id: int

    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...


def itr_for_rx_usecs(rx_usecs: int) -> int:
    """The vector's ``itr`` value for an ``ethtool -C rx-usecs`` setting (validated)."""
    if not isinstance(rx_usecs, int) or isinstance(rx_usecs, bool) or not 0 <= rx_usecs <= MAX_RX_USECS:
        raise ConfigError(
            f"rx-usecs must be an int in 0..{MAX_RX_USECS} (0 = off, 1 = adaptive), got {rx_usecs!r}"
        )
    if rx_usecs == ADAPTIVE:
        return ITR_20K
    return rx_usecs << 2


def eitr_value(itr: int) -> int:
    """The register value ixgbevf_write_eitr writes for ``itr``: interval bits and CNT_WDIS."""
    return (itr & R.MAX_EITR) | R.EITR_CNT_WDIS


def _is_vf(fn: _Function) -> bool:
    return fn.device_id == R.DEV_ID_82599_VF


def write_eitr(fn: _Function, vector: int, itr: int) -> None:
    """Program vector ``vector``'s interval through the function's BAR (VTEITR or EITR)."""
    limit = R.VF_MSIX_VECTORS if _is_vf(fn) else R.PF_MSIX_VECTORS
    if not isinstance(vector, int) or not 0 <= vector < limit:
        raise ConfigError(f"vector must be an int in 0..{limit - 1}, got {vector!r}")
    fn.write32(R.VTEITR(vector) if _is_vf(fn) else R.EITR(vector), eitr_value(itr))


def queue_vectors(fn: _Function) -> list[int]:
    """The vectors the function's (VT)IVAR table routes queue causes to, as the driver set it.

    With nothing routed yet: a VF's queue vectors (0 and 1, minus the mailbox vector),
    or the PF's vector 0.
    """
    vf = _is_vf(fn)
    regs = (
        [R.VTIVAR(x) for x in range(R.VF_MAX_QUEUES // 2)] if vf else [R.IVAR(i) for i in range(R.NUM_IVAR)]
    )
    limit = R.VF_MSIX_VECTORS if vf else R.PF_MSIX_VECTORS
    found: set[int] = set()
    for reg in regs:
        value = fn.read32(reg)
        if not value:
            continue
        for q in (0, 1):
            for tx in (False, True):
                v = ivar_entry(value, q, tx)
                if v is not None and v < limit:
                    found.add(v)
    if found:
        return sorted(found)
    if vf:
        misc = fn.read32(R.VTIVAR_MISC)
        mbx = misc & R.IVAR_VECTOR_MASK if misc & R.IVAR_ALLOC_VAL else None
        return [v for v in range(R.VF_QUEUE_VECTORS) if v != mbx]
    return [0]


def set_coalesce(fn: _Function, rx_usecs: int, vectors: Iterable[int] | None = None) -> int:
    """``ethtool -C <dev> rx-usecs N`` on a VF or PF function: program its queue vectors.

    ``vectors`` defaults to `queue_vectors`. Returns the ``itr`` value programmed
    (the driver keeps it as its adaptive state's start when ``rx_usecs`` is 1).
    Raises ConfigError, changing nothing, for a value outside 0..1022.
    """
    itr = itr_for_rx_usecs(rx_usecs)
    targets = list(queue_vectors(fn) if vectors is None else vectors)
    limit = R.VF_MSIX_VECTORS if _is_vf(fn) else R.PF_MSIX_VECTORS
    bad = [v for v in targets if not isinstance(v, int) or not 0 <= v < limit]
    if bad:
        raise ConfigError(f"vectors must be ints in 0..{limit - 1}, got {bad!r}")
    for v in targets:
        write_eitr(fn, v, itr)
    return itr


# -- MSI-X set-up as ixgbevf_configure_msix / ixgbevf_irq_enable do it --------------------------------
RX, TX, OTHER = 0, 1, -1  # ixgbe_set_ivar directions


def set_ivar(fn: _Function, direction: int, queue: int, vector: int) -> None:
    """Route a queue's RX (0) or TX (1) cause, or the other causes (-1), to ``vector``.

    VF: VTIVAR(queue >> 1), entry at bit ``16 * (queue & 1) + 8 * direction``, other
    causes in VTIVAR_MISC bits 7:0. PF: IVAR(queue >> 1) likewise, other causes in
    IVAR_MISC bits 15:8. Each entry carries ALLOC_VAL.
    """
    vf = _is_vf(fn)
    queues = R.VF_MAX_QUEUES if vf else R.MAX_QUEUES
    limit = R.VF_MSIX_VECTORS if vf else R.PF_MSIX_VECTORS
    if direction not in (RX, TX, OTHER):
        raise ConfigError(f"direction must be 0 (RX), 1 (TX) or -1 (other), got {direction!r}")
    if not 0 <= vector < limit or (direction != OTHER and not 0 <= queue < queues):
        raise ConfigError(f"queue must be in 0..{queues - 1} and vector in 0..{limit - 1}")
    if direction == OTHER:
        reg, shift = (R.VTIVAR_MISC, 0) if vf else (R.IVAR_MISC, 8)
    else:
        reg = R.VTIVAR(queue >> 1) if vf else R.IVAR(queue >> 1)
        shift = 16 * (queue & 1) + 8 * direction
    value = fn.read32(reg) & ~(0xFF << shift)
    fn.write32(reg, value | (vector | R.IVAR_ALLOC_VAL) << shift)


def configure_vf_msix(fn: _Function, num_queues: int, rx_usecs: int = ADAPTIVE) -> tuple[int, int]:
    """ixgbevf_configure_msix: queue q on queue vector ``q % q_vectors``, the mailbox vector last.

    ``q_vectors = min(num_queues, 2)``. Programs VTIVAR (RX and TX), VTIVAR_MISC and the
    queue vectors' VTEITR. Returns ``(eims_enable_mask, mailbox_vector)``; enable with
    `irq_enable`.
    """
    if not isinstance(num_queues, int) or not 1 <= num_queues <= R.VF_MAX_QUEUES:
        raise ConfigError(f"num_queues must be an int in 1..{R.VF_MAX_QUEUES}, got {num_queues!r}")
    itr = itr_for_rx_usecs(rx_usecs)
    q_vectors = min(num_queues, R.VF_QUEUE_VECTORS)
    for q in range(num_queues):
        set_ivar(fn, RX, q, q % q_vectors)
        set_ivar(fn, TX, q, q % q_vectors)
    for v in range(q_vectors):
        write_eitr(fn, v, itr)
    set_ivar(fn, OTHER, 1, q_vectors)
    return (1 << (q_vectors + 1)) - 1, q_vectors


def irq_enable(fn: _Function, mask: int) -> None:
    """ixgbevf_irq_enable: auto-mask and auto-clear every vector in ``mask``, then enable them."""
    if not _is_vf(fn):
        raise ConfigError("irq_enable is the VF's sequence; the PF programs EIAM_EX/EIMS_EX itself")
    fn.write32(R.VTEIAM, mask)
    fn.write32(R.VTEIAC, mask)
    fn.write32(R.VTEIMS, mask)


def irq_disable(fn: _Function) -> None:
    """ixgbevf_irq_disable: no auto-mask, every vector masked, no auto-clear."""
    fn.write32(R.VTEIAM, 0)
    fn.write32(R.VTEIMC, 0xFFFFFFFF)
    fn.write32(R.VTEIAC, 0)


# -- adaptive ITR (rx-usecs 1) --------------------------------------------------------------------
def update_latency_range(itr: int, latency_range: int, total_bytes: int, total_packets: int) -> int:
    """ixgbevf_update_itr for one ring: the new latency range from the last timeslice's traffic."""
    if total_packets == 0:
        return latency_range
    timepassed_us = itr >> 2
    if timepassed_us == 0:
        return latency_range
    bytes_per_us = total_bytes // timepassed_us
    if latency_range == LOWEST_LATENCY:
        return LOW_LATENCY if bytes_per_us > 10 else LOWEST_LATENCY
    if latency_range == LOW_LATENCY:
        if bytes_per_us > 20:
            return BULK_LATENCY
        return LOWEST_LATENCY if bytes_per_us <= 10 else LOW_LATENCY
    if latency_range == BULK_LATENCY:
        return LOW_LATENCY if bytes_per_us <= 20 else BULK_LATENCY
    return latency_range


@dataclass(frozen=True)
class ItrState:
    """One queue vector's adaptive state: its ``itr`` and the RX and TX rings' latency ranges."""

    itr: int = ITR_20K
    rx_range: int = LOWEST_LATENCY
    tx_range: int = LOWEST_LATENCY


def adaptive_itr(
    state: ItrState, rx_bytes: int, rx_packets: int, tx_bytes: int = 0, tx_packets: int = 0
) -> ItrState:
    """ixgbevf_set_itr: the vector's next state after a completed poll (pure; write it if itr changed).

    ``rx_bytes``/``rx_packets`` (and TX) are what the vector's rings handled since the
    last update. Use `write_eitr` with the new ``itr`` when it differs from the old.
    """
    rx = update_latency_range(state.itr, state.rx_range, rx_bytes, rx_packets)
    tx = update_latency_range(state.itr, state.tx_range, tx_bytes, tx_packets)
    target = _RANGE_ITR.get(max(rx, tx), state.itr)
    itr = state.itr
    if target != itr:
        itr = (10 * target * itr) // (9 * target + itr)  # exponential smoothing, as the driver does
    return ItrState(itr=itr, rx_range=rx, tx_range=tx)


__all__ = [
    "ADAPTIVE",
    "BULK_LATENCY",
    "ITR_12K",
    "ITR_20K",
    "ITR_100K",
    "LOWEST_LATENCY",
    "LOW_LATENCY",
    "MAX_RX_USECS",
    "OTHER",
    "RX",
    "TX",
    "ItrState",
    "adaptive_itr",
    "configure_vf_msix",
    "eitr_value",
    "irq_disable",
    "irq_enable",
    "itr_for_rx_usecs",
    "queue_vectors",
    "set_coalesce",
    "set_ivar",
    "update_latency_range",
    "write_eitr",
]
