"""Fuzz target: the receive flow, compiled kernel against its golden twin.

The input decodes (see `decode`) into a device configuration (a sane default set-up, then
register writes the input chooses: L2 tables, VLAN tables, VMOLR/VFRE, queue registers, QDE,
global controls), IOMMU mappings (holes, read-only pages), descriptor contents in each
function's memory, and two batches of frames with register writes in between. Both
implementations run the same plan on two identical devices; everything must agree (verdicts,
memory, registers, counters, IOMMU fault log), the counters must be conserved, and nothing
may raise except the device's own refusal of an unimplemented register (RegisterAccessError).

    python fuzz/fuzz_rx.py -max_total_time=60          # atheris, coverage-guided
    python fuzz/fuzz_rx.py crash-<sha>                 # replay one input
"""

from __future__ import annotations

import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _reader, and the sriov of this checkout

from _reader import Reader  # noqa: E402

MEM_PAGES = 16
PAGE = 4096
MEM = MEM_PAGES * PAGE
MACS = [bytes([0x02, 0, 0, 0, 0, i]) for i in range(6)] + [
    bytes.fromhex("01005e000001"),
    bytes.fromhex("333300000001"),
    b"\xff" * 6,
    bytes.fromhex("020000000099"),
]
VIDS = [0, 1, 5, 100, 4095]
EDGE_SIZES = [0, 13, 14, 17, 18, 59, 60, 64, 1514, 1518, 1519, 2048, 2049, 9000, 9724, 9725]
INTERESTING_VALUES = [0, 1, 0xFFFFFFFF, 0x80000000, 0x2000000, 0x40000000, 0x7F, 0x400, 0xFFF80, 0x7FFFFFFF]


def _register_table(R) -> list[int]:
    regs = [R.VT_CTL, R.GCR_EXT, R.FCTRL, R.VLNCTRL, R.MCSTCTRL, R.MAXFRS, R.QDE, R.VFRE(0), R.VFRE(1)]
    for i in range(8):
        regs += [R.RAR_BASE + 8 * i, R.RAR_BASE + 8 * i + 4, R.MPSAR_LO(i), R.MPSAR_HI(i)]
    for p in range(6):
        regs += [R.VMOLR(p)]
    for j in range(4):
        regs += [R.VLVF(j), R.VLVFB(2 * j), R.VLVFB(2 * j + 1)]
    for i in range(4):
        regs += [R.VFTA(i), R.MTA(i), R.UTA(i)]
    regs += [R.VFTA(127), R.MTA(127), R.UTA(127), R.VFTA(3)]
    for q in (0, 1, 2, 4, 8, 12, 16, 20, 24, 32, 40, 127):
        regs += [
            R.RDBAL(q) + f
            for f in (R.Q_RDBAL, R.Q_RDBAH, R.Q_RDLEN, R.Q_RDH, R.Q_SRRCTL, R.Q_RDT, R.Q_RXDCTL)
        ]
    return regs


def decode(data: bytes) -> dict:
    """A plan (plain data) from the fuzz input: same bytes, same plan."""
    from sriov.hw import regs as R

    table = _register_table(R)
    r = Reader(data)
    num_vfs = 1 + r.below(4)
    plan = {
        "num_vfs": num_vfs,
        "vt": r.below(5) != 0,
        "mode": r.pick([R.GCR_EXT_VT_MODE_64, R.GCR_EXT_VT_MODE_32, R.GCR_EXT_VT_MODE_16]),
        "maps": [
            (r.u16() & r.u16() & r.u16(), r.u16() & r.u16() & r.u16()) for _ in range(num_vfs + 1)
        ],  # holes, ro
        "desc_base": 0x4000 if r.below(4) else r.u16() * 16,
        "desc_stride": r.pick([1024, 1024, 2048, 4096, 3000, 16]),
        "vlan_filter": r.flag(),
    }

    def writes(limit: int) -> list[tuple[int, int]]:
        out = []
        for _ in range(r.below(limit)):
            off = table[r.below(len(table))]
            value = r.pick(INTERESTING_VALUES) if r.flag() else r.u32()
            out.append((off, value))
        return out

    def frames(limit: int) -> list[bytes]:
        out = []
        for _ in range(r.below(limit)):
            kind = r.u8()
            da = MACS[kind % len(MACS)] if kind < 220 else r.take(6)
            sel = r.u8()
            if sel < 150:
                size = 60 + 4 * r.u8()
            elif sel < 200:
                size = r.pick(EDGE_SIZES)
            elif sel < 230:
                size = r.u16() % 9800
            else:
                size = r.u8() % 20
            tag = r.u8()
            head = da + bytes.fromhex("020000000077")
            if tag & 3 == 1:
                vid = r.pick(VIDS) if not tag & 8 else r.u16() & 0xFFFF
                head += b"\x81\x00" + vid.to_bytes(2, "big")
            elif tag & 3 == 2:
                head += b"\x88\xa8" + r.take(2)
            head += b"\x08\x00"
            raw = r.take(min(size, 32)) if tag & 4 else b""
            body = bytes((i * 13 + size) & 0xFF for i in range(max(0, size - len(head) - len(raw))))
            out.append((head + raw + body)[:size])
        return out

    plan["writes"] = writes(40)
    plan["frames1"] = frames(24)
    plan["later"] = writes(6)
    plan["frames2"] = frames(12)
    return plan


class World:
    """One device configured by a plan, its functions' memories, and a Wire on one implementation."""

    def __init__(self, plan: dict, impl) -> None:
        import numpy as np

        from sriov.errors import RegisterAccessError
        from sriov.hw import regs as R
        from sriov.hw.clock import SimClock
        from sriov.hw.device import Device82599
        from sriov.hw.iommu import Iommu
        from sriov.wire import Wire

        self.iommu = Iommu()
        dev = self.dev = Device82599("fuzz0", SimClock(), self.iommu)
        w = dev.pf.write32
        nv = plan["num_vfs"]
        dev.sriov_enable(nv)
        w(R.GCR_EXT, plan["mode"])
        qpp = dev.queues_per_pool()
        if plan["vt"]:
            w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (nv << R.VT_CTL_POOL_SHIFT))
        w(R.VLNCTRL, R.ETH_P_8021Q | (R.VLNCTRL_VFE if plan["vlan_filter"] else 0))
        w(R.FCTRL, R.FCTRL_BAM)
        w(R.VFRE(0), 0xFFFFFFFF)
        w(R.VFRE(1), 0xFFFFFFFF)
        w(R.VFTA(0), 1)  # VID 0
        w(R.VLVF(0), R.VLVF_VIEN)
        w(R.VLVFB(0), (1 << (nv + 1)) - 1)
        for p in range(nv + 1):
            w(R.VMOLR(p), R.VMOLR_BAM | R.VMOLR_AUPE)
            mac = MACS[p]
            w(R.MPSAR_LO(p + 1), 1 << p)
            w(R.RAL(p + 1), int.from_bytes(mac[:4], "little"))
            w(R.RAH(p + 1), int.from_bytes(mac[4:], "little") | R.RAH_AV)
        self.memories = []
        for p in range(nv + 1):
            fn = dev.vfs[p] if p < nv else dev.pf
            mem = np.zeros(MEM, np.uint8)
            slots = np.arange(MEM // 16, dtype=np.uint64)
            ring_slot = slots % np.uint64(32)  # descriptor d of a 32-entry ring anywhere: buffer d
            addrs = (np.uint64(plan["desc_base"]) + ring_slot * np.uint64(plan["desc_stride"])) % np.uint64(
                MEM + PAGE
            )
            qwords = mem.view("<u8").reshape(-1, 2)
            qwords[:, 0] = addrs
            qwords[:, 1] = (slots * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFF0000)
            self.memories.append(mem)
            holes, ro = plan["maps"][p]
            for page in range(MEM_PAGES):
                if not holes >> page & 1:
                    fn.domain.map(page * PAGE, mem, page * PAGE, PAGE, writable=not ro >> page & 1)
            q = p * qpp if plan["vt"] else 0
            if q < R.MAX_QUEUES and (plan["vt"] or p == nv):
                w(R.RDBAL(q), PAGE)
                w(R.RDLEN(q), 32 * 16)
                w(R.RDH(q), 0)
                w(R.RDT(q), 31)
                w(R.SRRCTL(q), R.SRRCTL_DROP_EN | 2)
                w(R.RXDCTL(q), R.RXDCTL_ENABLE)
        self._refused = RegisterAccessError
        self.apply(plan["writes"])
        self.wire = Wire(dev, impl)

    def apply(self, writes) -> None:
        for off, value in writes:
            with contextlib.suppress(self._refused):  # unimplemented: refused, nothing changed
                self.dev.pf.write32(off, value)

    def receive(self, frames: list[bytes]):
        from sriov.batch import Batch

        return self.wire.receive(Batch.from_frames(frames))

    def snapshot(self) -> dict:
        io = self.iommu
        return {
            "regs": self.dev.regs.copy(),
            "port": self.dev.state.port_counters.copy(),
            "pool": self.dev.state.pool_counters.copy(),
            "mem": [m.copy() for m in self.memories],
            "faults": [
                a.copy()
                for a in (io.fault_total, io.fault_counts, io.fault_domain, io.fault_addr, io.fault_kind)
            ],
        }


def compare(a: World, b: World, ra, rb) -> None:
    """Raise AssertionError naming the first difference between the two worlds."""
    import numpy as np

    for name in ("selected", "delivered", "reasons", "queue_frames"):
        x, y = getattr(ra, name), getattr(rb, name)
        assert np.array_equal(x, y), f"{name} differ: compiled {x.tolist()} golden {y.tolist()}"
    sa, sb = a.snapshot(), b.snapshot()
    diff = np.flatnonzero(sa["regs"] != sb["regs"])
    assert not len(diff), f"registers differ at {[hex(4 * int(i)) for i in diff[:6]]}"
    assert np.array_equal(sa["port"], sb["port"]), "port counters differ"
    assert np.array_equal(sa["pool"], sb["pool"]), "pool counters differ"
    for p, (x, y) in enumerate(zip(sa["mem"], sb["mem"], strict=True)):
        bad = np.flatnonzero(x != y)
        assert not len(bad), f"memory of pool {p} differs at {bad[:8].tolist()}"
    for x, y in zip(sa["faults"], sb["faults"], strict=True):
        assert np.array_equal(x, y), "IOMMU fault logs differ"


def run_plan(plan: dict) -> None:
    """Both implementations on the plan; raises on any disagreement or broken invariant."""
    from sriov import _fastpath, golden
    from sriov.invariants import DmaWatch, conservation_errors

    fast, slow = World(plan, _fastpath), World(plan, golden)
    for frames, later in ((plan["frames1"], plan["later"]), (plan["frames2"], [])):
        # an oracle independent of both: no byte changes in a hole or a read-only page
        watch = DmaWatch(devices=[fast.dev], iommu=fast.iommu, precise=False)
        ra, rb = fast.receive(frames), slow.receive(frames)
        compare(fast, slow, ra, rb)
        watch.assert_clean()
        for world in (fast, slow):
            errors = conservation_errors(world.dev)
            assert not errors, errors
        fast.apply(later)
        slow.apply(later)


def TestOneInput(data: bytes) -> None:
    run_plan(decode(data))


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        import sriov.golden
        import sriov.hw.device
        import sriov.wire  # noqa: F401
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
