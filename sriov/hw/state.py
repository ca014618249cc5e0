"""Named numpy views of the device's register file, plus its counter arrays.

The views share memory with ``Device82599.regs``: a register write is at once
visible here and to the compiled kernels, with no copy and no sync step.
"""

from __future__ import annotations

import numpy as np

from sriov.hw import counters as C
from sriov.hw import regs as R

_W = 4


def _span(regs: np.ndarray, offset: int, count: int) -> np.ndarray:
    return regs[offset // _W : offset // _W + count]


class DeviceState:
    """The tables the datapath reads, as views of the PF register file."""

    def __init__(self, regs: np.ndarray, qde: np.ndarray) -> None:
        self.regs = regs
        self.qde = qde
        self.rar = _span(regs, R.RAR_BASE, 2 * R.NUM_RAR).reshape(R.NUM_RAR, 2)  # [i] = (RAL, RAH)
        self.mpsar = _span(regs, R.MPSAR_LO(0), 2 * R.NUM_RAR).view(np.uint64)  # pool bitmap per RAR
        self.mta = _span(regs, R.MTA(0), R.NUM_MTA)
        self.uta = _span(regs, R.UTA(0), R.NUM_UTA)
        self.vfta = _span(regs, R.VFTA(0), R.NUM_VFTA)
        self.vlvf = _span(regs, R.VLVF(0), R.NUM_VLVF)
        self.vlvfb = _span(regs, R.VLVFB(0), 2 * R.NUM_VLVF).view(np.uint64)  # pool bitmap per VLVF
        self.vmolr = _span(regs, R.VMOLR(0), R.MAX_POOLS)
        self.vmvir = _span(regs, R.VMVIR(0), R.MAX_POOLS)
        self.vfre = _span(regs, R.VFRE(0), 2).view(np.uint64)  # [0] = 64-pool bitmap
        self.vfte = _span(regs, R.VFTE(0), 2).view(np.uint64)
        self.pfvfspoof = _span(regs, R.PFVFSPOOF(0), 8)
        self.rx_queues_lo = _span(regs, R.RX_QUEUE_BASE_LO, 64 * 16).reshape(64, 16)
        self.rx_queues_hi = _span(regs, R.RX_QUEUE_BASE_HI, 64 * 16).reshape(64, 16)
        self.tx_queues = _span(regs, R.TX_QUEUE_BASE, 128 * 16).reshape(128, 16)
        self.port_counters = np.zeros(len(C.PORT_COUNTERS), dtype=np.uint64)
        self.pool_counters = np.zeros((R.MAX_POOLS, len(C.POOL_COUNTERS)), dtype=np.uint64)

    def reg(self, offset: int) -> int:
        """The raw value at a PF register offset (no side effects)."""
        return int(self.regs[offset // _W])

    def rx_queue(self, q: int) -> np.ndarray:
        """The 16-word register block of RX queue ``q``."""
        return self.rx_queues_lo[q] if q < 64 else self.rx_queues_hi[q - 64]

    def vf_stat_register(self, pool: int, offset: int) -> int:
        """VFGPRC/VFGORC/VFMPRC/VFGPTC/VFGOTC of a pool, as the hardware counts them."""
        c = self.pool_counters[pool]
        values = {
            R.VFGPRC: int(c[C.POOL["rx_packets"]]) & 0xFFFFFFFF,
            R.VFGORC_LSB: int(c[C.POOL["rx_bytes"]]) & 0xFFFFFFFF,
            R.VFGORC_MSB: (int(c[C.POOL["rx_bytes"]]) >> 32) & 0xF,
            R.VFMPRC: int(c[C.POOL["rx_multicast"]]) & 0xFFFFFFFF,
            R.VFGPTC: int(c[C.POOL["tx_packets"]]) & 0xFFFFFFFF,
            R.VFGOTC_LSB: int(c[C.POOL["tx_bytes"]]) & 0xFFFFFFFF,
            R.VFGOTC_MSB: (int(c[C.POOL["tx_bytes"]]) >> 32) & 0xF,
        }
        return values.get(offset, 0)
