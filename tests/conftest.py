"""Shared fixtures: every datapath test runs on both implementations (compiled and golden).

`RxRig` sets a port up for receive the way the ixgbe PF driver programs the 82599 (VT mode,
pools, RARs, VMOLR, VLAN tables), through PF BAR register writes only, with one VM memory and
one `RxRing` per VF mapped through the VF's IOMMU domain.
"""

from __future__ import annotations

import numpy as np
import pytest

from sriov import _fastpath, golden
from sriov.batch import Batch
from sriov.drivers.rings import RxRing
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import Iommu
from sriov.memory import GuestMemory
from sriov.wire import Wire, assert_rx_conserved

IMPLEMENTATIONS = {"compiled": _fastpath, "golden": golden}


@pytest.fixture(params=sorted(IMPLEMENTATIONS), ids=sorted(IMPLEMENTATIONS))
def impl(request):
    """The kernels module under test: ``sriov._fastpath`` or ``sriov.golden``."""
    return IMPLEMENTATIONS[request.param]


def mac_bytes(mac: str | bytes) -> bytes:
    return bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else mac


def eth(
    dst: str | bytes,
    size: int = 64,
    vid: int | None = None,
    pcp: int = 0,
    src: str = "02:00:00:00:00:99",
    tpid: int = R.ETH_P_8021Q,
) -> bytes:
    """An Ethernet frame of ``size`` bytes (no FCS), 802.1Q-tagged when ``vid`` is given."""
    head = mac_bytes(dst) + mac_bytes(src)
    if vid is not None:
        head += tpid.to_bytes(2, "big") + ((pcp << 13) | vid).to_bytes(2, "big")
    head += b"\x08\x00"
    body = bytes((i * 7 + size) % 256 for i in range(max(0, size - len(head))))
    return (head + body)[:size]


class RxRig:
    """A port in VT mode with ``num_vfs`` VFs, each with a VM memory and an RX ring."""

    def __init__(
        self,
        impl,
        num_vfs: int = 4,
        ring: int = 64,
        buffer_size: int = 2048,
        vlan_strip: bool = False,
        mem: int = 4 << 20,
    ) -> None:
        self.iommu = Iommu()
        self.dev = Device82599("eth0", SimClock(), self.iommu)
        self.w = self.dev.pf.write32
        self.num_vfs = num_vfs
        self.pf_pool = num_vfs
        self.dev.sriov_enable(num_vfs)
        w = self.w
        w(R.GCR_EXT, R.GCR_EXT_VT_MODE_64 if num_vfs >= 32 else R.GCR_EXT_VT_MODE_32)
        w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (self.pf_pool << R.VT_CTL_POOL_SHIFT))
        w(R.VLNCTRL, R.ETH_P_8021Q | R.VLNCTRL_VFE)
        self.next_rar = 1
        self.memories: list[GuestMemory] = []
        self.rings: list[RxRing] = []
        for vf in range(num_vfs):
            memory = GuestMemory(mem, f"vm{vf}")
            fn = self.dev.vfs[vf]
            fn.domain.map(0, memory.buffer, 0, mem)
            self.memories.append(memory)
            self.vmolr(vf, R.VMOLR_BAM | R.VMOLR_AUPE)
            self.vlan(vf, 0, True)  # the PF puts every VF in VID 0's entry
            self.enable(vf)
            self.rings.append(RxRing(fn, memory, 0, ring, buffer_size, vlan_strip, implementation=impl))
        self.vmolr(self.pf_pool, R.VMOLR_BAM | R.VMOLR_AUPE)
        self.enable(self.pf_pool)
        self.wire = Wire(self.dev, impl)

    # -- PF-driver-like helpers, all register writes ----------------------------------------------
    def enable(self, pool: int, on: bool = True) -> None:
        reg = R.VFRE(pool >> 5)
        value = self.dev.pf.read32(reg)
        self.w(reg, value | (1 << (pool % 32)) if on else value & ~(1 << (pool % 32)))

    def vmolr(self, pool: int, flags: int) -> None:
        self.w(R.VMOLR(pool), flags)

    def set_mac(self, pool: int, mac: str | bytes) -> int:
        i = self.next_rar
        self.next_rar += 1
        m = mac_bytes(mac)
        self.w(R.MPSAR_LO(i), (1 << pool) & 0xFFFFFFFF)
        self.w(R.MPSAR_HI(i), (1 << pool) >> 32)
        self.w(R.RAL(i), int.from_bytes(m[:4], "little"))
        self.w(R.RAH(i), int.from_bytes(m[4:], "little") | R.RAH_AV)
        return i

    def clear_rar(self, i: int) -> None:
        for reg in (R.RAH(i), R.RAL(i), R.MPSAR_LO(i), R.MPSAR_HI(i)):
            self.w(reg, 0)

    def vlan(self, pool: int, vid: int, on: bool) -> None:
        """ixgbe_set_vfta: VLVF slot for the VID (0 pinned to entry 0), pool bit, VFTA bit."""
        slots = [self.dev.pf.read32(R.VLVF(j)) for j in range(R.NUM_VLVF)]
        if vid == 0:
            j = 0
        else:
            same = [j for j in range(R.NUM_VLVF - 1, 0, -1) if slots[j] == R.VLVF_VIEN | vid]
            free = [j for j in range(1, R.NUM_VLVF) if not slots[j] & R.VLVF_VIEN]
            j = same[0] if same else free[0]
        reg = R.VLVFB(2 * j + (pool >> 5))
        bits = self.dev.pf.read32(reg)
        self.w(reg, bits | (1 << (pool % 32)) if on else bits & ~(1 << (pool % 32)))
        members = self.dev.pf.read32(R.VLVFB(2 * j)) | self.dev.pf.read32(R.VLVFB(2 * j + 1))
        vfta = self.dev.pf.read32(R.VFTA(vid >> 5))
        if members:
            self.w(R.VLVF(j), R.VLVF_VIEN | vid)
            self.w(R.VFTA(vid >> 5), vfta | 1 << (vid & 31))
        else:
            self.w(R.VFTA(vid >> 5), vfta & ~(1 << (vid & 31)))
            self.w(R.VLVF(j), 0)

    def port_vlan(self, pool: int, vid: int) -> None:
        """ip link set ... vf N vlan V: the VF leaves VID 0, joins V, untagged no longer accepted."""
        self.vlan(pool, 0, False)
        self.vlan(pool, vid, True)
        self.vmolr(pool, self.dev.pf.read32(R.VMOLR(pool)) & ~R.VMOLR_AUPE)

    def mta(self, mac: str | bytes, on: bool = True) -> None:
        v = golden.mta_vector(mac_bytes(mac), self.dev.pf.read32(R.MCSTCTRL) & R.MCSTCTRL_MO_MASK)
        reg = R.MTA(v >> 5)
        bits = self.dev.pf.read32(reg)
        self.w(reg, bits | 1 << (v & 31) if on else bits & ~(1 << (v & 31)))
        self.w(R.MCSTCTRL, R.MCSTCTRL_MFE)

    # -- traffic ---------------------------------------------------------------------------------
    def receive(self, frames: list[bytes]):
        result = self.wire.receive(Batch.from_frames(frames))
        assert_rx_conserved(self.dev)
        return result

    def poll(self, vf: int, budget: int = 4096) -> list[bytes]:
        return self.rings[vf].poll(budget).to_list()

    def counter(self, pool: int, name: str) -> int:
        from sriov.hw import counters as C

        return int(self.dev.state.pool_counters[pool, C.POOL[name]])

    def port(self, name: str) -> int:
        from sriov.hw import counters as C

        return int(self.dev.state.port_counters[C.PORT[name]])


@pytest.fixture
def rx_rig(impl):
    """A factory of `RxRig` on the implementation under test."""
    return lambda **kw: RxRig(impl, **kw)


__all__ = ["RxRig", "eth", "mac_bytes", "np"]
