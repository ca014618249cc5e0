"""The compiled receive kernel and its golden twin agree on everything (issue 4).

Random device configurations (written through PF BAR registers and IOMMU maps, never into
internals) and random frames go through both implementations on two identical devices; the
verdicts, guest memory bytes (buffers and descriptors), the whole register file (RDH...),
every counter and the IOMMU fault log must be identical, and the counters must add up.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov import _fastpath, golden
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import PAGE_SIZE, Iommu
from sriov.wire import rx_conservation_errors

MEM_PAGES = 24
MEM = MEM_PAGES * PAGE_SIZE
MACS = [bytes([0x02, 0, 0, 0, 0, i]) for i in range(8)] + [
    bytes.fromhex("01005e000001"),
    bytes.fromhex("01005e0000fb"),
    bytes.fromhex("333300000001"),
    b"\xff" * 6,
]
VIDS = [0, 1, 5, 100, 4095]

u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def queue_config(draw, vt: bool, sane: bool = False):
    count = draw(st.sampled_from([8, 16, 32]))
    bsize_k = draw(st.sampled_from([0, 1, 2, 3, 4]))
    ring = draw(st.sampled_from([PAGE_SIZE, 2 * PAGE_SIZE + 128, 3 * PAGE_SIZE - 128, 0x7FFF_F000]))
    if sane:
        return {
            "rdbal": ring,
            "rdbah": 0,
            "rdlen": count * 16,
            "rdh": draw(st.integers(0, count - 1)),
            "rdt": draw(st.integers(0, count - 1)),
            "srrctl": max(bsize_k, 1) | R.SRRCTL_DROP_EN,
            "rxdctl": R.RXDCTL_ENABLE | (R.RXDCTL_VME if draw(st.booleans()) else 0),
            "bufs": [0] * count,
            "buf_base": 4 * PAGE_SIZE,
            "random_bufs": False,
            "qde": False,
        }
    return {
        "rdbal": ring if draw(st.integers(0, 5)) else draw(u32),
        "rdbah": 0 if draw(st.integers(0, 5)) else 1,
        "rdlen": count * 16
        if draw(st.integers(0, 5))
        else draw(st.one_of(st.sampled_from([0, 8, 0xFFFFF]), u32)),
        "rdh": draw(st.integers(0, count + 2)),
        "rdt": draw(st.integers(0, count - 1)) if draw(st.integers(0, 5)) else draw(st.integers(0, 0xFFFF)),
        "srrctl": (bsize_k if bsize_k else draw(st.integers(0, 0x7F)))
        | (R.SRRCTL_DROP_EN if draw(st.booleans()) else 0),
        "rxdctl": (R.RXDCTL_ENABLE if draw(st.integers(0, 5)) else 0)
        | (R.RXDCTL_VME if draw(st.booleans()) else 0),
        "bufs": draw(st.lists(st.integers(0, MEM + PAGE_SIZE), min_size=count, max_size=count)),
        "buf_base": draw(st.sampled_from([4 * PAGE_SIZE, 4 * PAGE_SIZE + 100, 5 * PAGE_SIZE])),
        "random_bufs": draw(st.integers(0, 4)) == 0,
        "qde": draw(st.booleans()),
    }


@st.composite
def device_config(draw, sane: bool = False):
    vt = draw(st.integers(0, 4)) > 0
    num_vfs = draw(st.integers(1, 4))
    pools = num_vfs + 1
    bitmaps = st.one_of(
        st.integers(0, (1 << pools) - 1), st.integers(0, (1 << pools) - 1), st.integers(0, 2**64 - 1)
    )
    page_kinds = st.sampled_from(["rw"] * 12 + ["ro", "hole"])
    mapping = draw(st.lists(page_kinds, min_size=MEM_PAGES, max_size=MEM_PAGES))
    cfg = {
        "vt": vt,
        "num_vfs": num_vfs,
        "gcr": draw(st.sampled_from([R.GCR_EXT_VT_MODE_64, R.GCR_EXT_VT_MODE_32])),
        "dis_defpl": draw(st.booleans()),
        "vlnctrl": draw(st.sampled_from([R.ETH_P_8021Q, R.ETH_P_8021Q, R.ETH_P_8021AD]))
        | (R.VLNCTRL_VFE if draw(st.booleans()) else 0),
        "maxfrs": draw(st.sampled_from([1518] * 3 + [9728] * 3 + [1522, 2000, 64, 0])),
        "fctrl": draw(
            st.sampled_from([0, R.FCTRL_BAM, R.FCTRL_BAM | R.FCTRL_MPE, R.FCTRL_UPE | R.FCTRL_BAM])
        ),
        "mo": draw(st.integers(0, 3)),
        "rars": draw(
            st.lists(
                st.tuples(st.integers(0, 127), st.sampled_from(MACS), st.integers(0, 3).map(bool), bitmaps),
                max_size=16,
            )
        ),
        "mta": draw(st.lists(st.integers(0, 127 * 32 + 31), max_size=6)),
        "uta": draw(st.lists(st.integers(0, 127 * 32 + 31), max_size=3)),
        "vfta": draw(st.lists(st.sampled_from(VIDS), max_size=4)),
        "vlvf": draw(
            st.lists(
                st.tuples(st.integers(0, 63), st.sampled_from(VIDS), st.integers(0, 3).map(bool), bitmaps),
                max_size=5,
            )
        ),
        "vmolr": draw(st.lists(st.integers(0, 0x1F), min_size=64, max_size=64)),
        "vfre": draw(
            st.sampled_from([2**64 - 1, 2**64 - 1, (1 << pools) - 1, 0b1, 0, draw(st.integers(0, 2**64 - 1))])
        ),
        "queues": draw(st.lists(queue_config(vt, sane), min_size=pools, max_size=pools)),
        "mapping": [mapping] * pools
        if draw(st.booleans())
        else [draw(st.lists(page_kinds, min_size=MEM_PAGES, max_size=MEM_PAGES)) for _ in range(pools)],
        "later_writes": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        [R.RAR_BASE + 8 * i for i in range(4)]
                        + [R.RAR_BASE + 8 * i + 4 for i in range(4)]
                        + [R.MPSAR_LO(i) for i in range(4)]
                        + [R.VMOLR(p) for p in range(4)]
                        + [R.VLVF(0), R.VLVFB(0)]
                        + [R.RDT(0), R.RDT(2), R.VFRE(0)]
                    ),
                    u32,
                ),
                max_size=4,
            )
        ),
    }
    if sane:  # everything mapped and enabled: the delivery paths (spanning, strip, wrap) get the examples
        cfg.update(mapping=[["rw"] * MEM_PAGES] * pools, vfre=2**64 - 1, maxfrs=9728)
    return cfg


VMOLR_FLAGS = (R.VMOLR_AUPE, R.VMOLR_ROMPE, R.VMOLR_ROPE, R.VMOLR_BAM, R.VMOLR_MPE)


class World:
    """One device with its functions' memories, configured from a drawn configuration."""

    def __init__(self, cfg: dict, impl) -> None:
        self.iommu = Iommu()
        self.dev = Device82599("eth0", SimClock(), self.iommu)
        dev, w = self.dev, self.dev.pf.write32
        dev.sriov_enable(cfg["num_vfs"])
        pools = cfg["num_vfs"] + 1
        w(R.GCR_EXT, cfg["gcr"])
        if cfg["vt"]:
            w(
                R.VT_CTL,
                R.VT_CTL_VT_ENABLE
                | (cfg["num_vfs"] << R.VT_CTL_POOL_SHIFT)
                | (R.VT_CTL_DIS_DEFPL if cfg["dis_defpl"] else 0),
            )
        w(R.VLNCTRL, cfg["vlnctrl"])
        w(R.MAXFRS, cfg["maxfrs"] << R.MHADD_MFS_SHIFT)
        w(R.FCTRL, cfg["fctrl"])
        w(R.MCSTCTRL, R.MCSTCTRL_MFE | cfg["mo"])
        for i, mac, valid, bitmap in cfg["rars"]:
            w(R.MPSAR_LO(i), bitmap & 0xFFFFFFFF)
            w(R.MPSAR_HI(i), bitmap >> 32)
            w(R.RAL(i), int.from_bytes(mac[:4], "little"))
            w(R.RAH(i), int.from_bytes(mac[4:], "little") | (R.RAH_AV if valid else 0))
        for v in cfg["mta"]:
            w(R.MTA(v >> 5), dev.pf.read32(R.MTA(v >> 5)) | 1 << (v & 31))
        for v in cfg["uta"]:
            w(R.UTA(v >> 5), dev.pf.read32(R.UTA(v >> 5)) | 1 << (v & 31))
        for vid in cfg["vfta"]:
            w(R.VFTA(vid >> 5), dev.pf.read32(R.VFTA(vid >> 5)) | 1 << (vid & 31))
        for j, vid, valid, bitmap in cfg["vlvf"]:
            w(R.VLVF(j), vid | (R.VLVF_VIEN if valid else 0))
            w(R.VLVFB(2 * j), bitmap & 0xFFFFFFFF)
            w(R.VLVFB(2 * j + 1), bitmap >> 32)
        for p, bits in enumerate(cfg["vmolr"]):
            w(R.VMOLR(p), sum(f for k, f in enumerate(VMOLR_FLAGS) if bits >> k & 1))
        w(R.VFRE(0), cfg["vfre"] & 0xFFFFFFFF)
        w(R.VFRE(1), cfg["vfre"] >> 32)
        qpp = dev.queues_per_pool()
        self.memories = []
        for p in range(pools):
            fn = dev.vfs[p] if p < cfg["num_vfs"] else dev.pf
            mem = np.zeros(MEM, np.uint8)
            mem[:] = (np.arange(MEM) * 7 + p) % 251  # recognisable bytes: a stray write shows
            self.memories.append(mem)
            for page, kind in enumerate(cfg["mapping"][p]):
                if kind != "hole":
                    fn.domain.map(page * PAGE_SIZE, mem, page * PAGE_SIZE, PAGE_SIZE, writable=kind == "rw")
            qc = cfg["queues"][p]
            q = p * qpp if cfg["vt"] else 0
            if not cfg["vt"] and p != cfg["num_vfs"]:
                continue  # without VT only the PF's queue 0 is used
            w(R.RDBAL(q), qc["rdbal"])
            w(R.RDBAH(q), qc["rdbah"])
            w(R.RDLEN(q), qc["rdlen"])
            w(R.RDH(q), qc["rdh"])
            w(R.RDT(q), qc["rdt"])
            w(R.SRRCTL(q), qc["srrctl"])
            w(R.RXDCTL(q), qc["rxdctl"])
            if qc["qde"]:
                w(R.QDE, R.QDE_WRITE | R.QDE_ENABLE | (q << R.QDE_IDX_SHIFT))
            ring = (qc["rdbal"] & 0xFFFFFF80) % MEM
            for d, buf in enumerate(qc["bufs"]):
                addr = buf if qc["random_bufs"] else qc["buf_base"] + d * 2048
                at = ring + 16 * d
                if at + 16 <= MEM:
                    mem[at : at + 8] = np.frombuffer(addr.to_bytes(8, "little"), np.uint8)
                    mem[at + 8 : at + 16] = 0
        self.kernel = impl.RxKernel(dev)

    def later(self, writes) -> None:
        for off, value in writes:
            self.dev.pf.write32(off, value)

    def run(self, batch_arrays):
        data, offsets, lengths, ts = batch_arrays
        n = len(offsets)
        sel, dlv, rsn = np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.zeros(n, np.uint8)
        accepted = self.kernel.receive(data, offsets, lengths, ts, sel, dlv, rsn)
        return accepted, sel, dlv, rsn, self.kernel.queue_frames.copy()

    def snapshot(self):
        io = self.iommu
        return {
            "regs": self.dev.regs.copy(),
            "port": self.dev.state.port_counters.copy(),
            "pool": self.dev.state.pool_counters.copy(),
            "mem": [m.copy() for m in self.memories],
            "faults": (
                io.fault_total.copy(),
                io.fault_counts.copy(),
                io.fault_domain.copy(),
                io.fault_addr.copy(),
                io.fault_kind.copy(),
            ),
        }


@st.composite
def frame(draw):
    kind = draw(st.sampled_from(["valid"] * 6 + ["tagged"] * 4 + ["short", "long", "garbage", "qinq"]))
    da = draw(st.sampled_from(MACS)) if draw(st.integers(0, 5)) else draw(st.binary(min_size=6, max_size=6))
    sa = bytes.fromhex("020000000099")
    if kind == "garbage":
        return draw(st.binary(max_size=80))
    if kind == "short":
        return draw(st.binary(max_size=17))
    if kind in ("tagged", "qinq"):
        tpid = R.ETH_P_8021Q if kind == "tagged" else R.ETH_P_8021AD
        tci = (draw(st.integers(0, 7)) << 13) | draw(st.one_of(st.sampled_from(VIDS), st.integers(0, 4095)))
        head = da + sa + tpid.to_bytes(2, "big") + tci.to_bytes(2, "big") + b"\x08\x00"
    else:
        head = da + sa + b"\x08\x00"
    size = draw(st.sampled_from(["small"] * 6 + ["edge"] * 2 + ["jumbo"]))
    size = {
        "small": st.integers(14, 200),
        "edge": st.sampled_from([0, 13, 59, 60, 1514, 1518, 1519, 2048, 2049]),
        "jumbo": st.integers(2000, 9800),
    }[size]
    size = draw(size)
    if kind == "long":
        size = draw(st.integers(1500, 12000))
    body = bytes((i * 13 + len(head)) % 256 for i in range(max(0, size - len(head))))
    return (head + body)[: max(size, 14)] if size >= 14 else head[:size]


def as_arrays(frames: list[bytes]):
    lengths = np.array([len(f) for f in frames], np.uint32)
    offsets = np.zeros(len(frames), np.int64)
    pad = 3  # frames not back to back: offsets are taken, not assumed
    pos = 0
    for i, f in enumerate(frames):
        offsets[i] = pos
        pos += len(f) + pad
    data = np.zeros(max(pos, 1), np.uint8)
    for i, f in enumerate(frames):
        data[offsets[i] : offsets[i] + len(f)] = np.frombuffer(f, np.uint8) if f else 0
    return data, offsets, lengths, np.arange(len(frames), dtype=np.int64) * 67


def assert_same(a: World, b: World, ra, rb) -> None:
    assert ra[0] == rb[0], "accepted counts differ"
    for name, x, y in zip(("selected", "delivered", "reasons", "queue_frames"), ra[1:], rb[1:], strict=True):
        assert np.array_equal(x, y), f"{name} differ: {x} vs {y}"
    sa, sb = a.snapshot(), b.snapshot()
    diff = np.nonzero(sa["regs"] != sb["regs"])[0]
    assert not len(diff), f"registers differ at offsets {[hex(4 * int(w)) for w in diff[:5]]}"
    assert np.array_equal(sa["port"], sb["port"]), "port counters differ"
    assert np.array_equal(sa["pool"], sb["pool"]), "pool counters differ"
    for p, (ma, mb) in enumerate(zip(sa["mem"], sb["mem"], strict=True)):
        bad = np.nonzero(ma != mb)[0]
        assert not len(bad), f"memory of pool {p} differs at {bad[:8]}"
    for x, y in zip(sa["faults"], sb["faults"], strict=True):
        assert np.array_equal(x, y), "IOMMU fault logs differ"


SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(cfg=device_config(), frames1=st.lists(frame(), max_size=24), frames2=st.lists(frame(), max_size=12))
def test_compiled_and_golden_agree(cfg, frames1, frames2) -> None:
    fast, slow = World(cfg, _fastpath), World(cfg, golden)
    before_regs = fast.dev.regs.copy()
    for frames in (frames1, frames2):
        arrays = as_arrays(frames)
        assert_same(fast, slow, fast.run(arrays), slow.run(arrays))
        for world in (fast, slow):
            assert rx_conservation_errors(world.dev) == []
        # table registers change between batches: the compiled tables must notice
        fast.later(cfg["later_writes"])
        slow.later(cfg["later_writes"])
    # only RDH (and the later writes) may have changed in the register file
    changed = {4 * int(w) for w in np.nonzero(fast.dev.regs != before_regs)[0]}
    allowed = {R.RDH(q) for q in range(R.MAX_QUEUES)} | {off for off, _ in cfg["later_writes"]}
    assert changed <= allowed


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(
    cfg=device_config(sane=True),
    frames1=st.lists(frame(), max_size=24),
    frames2=st.lists(frame(), max_size=12),
)
def test_compiled_and_golden_agree_on_sane_devices(cfg, frames1, frames2) -> None:
    test_compiled_and_golden_agree.hypothesis.inner_test(cfg, frames1, frames2)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=SLOW_OK)
@given(cfg=device_config(), frames1=st.lists(frame(), max_size=40), frames2=st.lists(frame(), max_size=20))
def test_compiled_and_golden_agree_long(cfg, frames1, frames2) -> None:
    test_compiled_and_golden_agree.hypothesis.inner_test(cfg, frames1, frames2)


@pytest.mark.parametrize("impl", [_fastpath, golden], ids=["compiled", "golden"])
def test_drop_reasons_have_the_same_names_and_values(impl) -> None:
    assert {r.name: int(r) for r in impl.DropReason} == {r.name: int(r) for r in golden.DropReason}


# VT off, broadcast accepted, the PF's queue 0 with a 16-descriptor ring of 2 KiB buffers
PLAIN_NIC = {
    "vt": False,
    "num_vfs": 1,
    "gcr": 0,
    "dis_defpl": False,
    "vlnctrl": R.ETH_P_8021Q,
    "maxfrs": 1518,
    "fctrl": R.FCTRL_BAM,
    "mo": 0,
    "rars": [],
    "mta": [],
    "uta": [],
    "vfta": [],
    "vlvf": [],
    "vmolr": [0] * 64,
    "vfre": 0,
    "mapping": [["rw"] * MEM_PAGES] * 2,
    "later_writes": [],
    "queues": [
        None,
        {
            "rdbal": PAGE_SIZE,
            "rdbah": 0,
            "rdlen": 256,
            "rdh": 0,
            "rdt": 15,
            "srrctl": 2,
            "rxdctl": R.RXDCTL_ENABLE,
            "bufs": [0] * 16,
            "buf_base": 4 * PAGE_SIZE,
            "random_bufs": False,
            "qde": False,
        },
    ],
}


@pytest.mark.parametrize("impl", [_fastpath, golden], ids=["compiled", "golden"])
def test_frames_outside_the_buffer_are_refused_and_change_nothing(impl) -> None:
    world = World(PLAIN_NIC, impl)
    data = np.zeros(100, np.uint8)
    data[:6] = 0xFF
    before = world.snapshot()
    for offsets, lengths in (([0, 50], [60, 60]), ([-1], [20]), ([0], [101])):
        n = len(offsets)
        with pytest.raises(ValueError, match="outside"):
            world.kernel.receive(
                data,
                np.array(offsets, np.int64),
                np.array(lengths, np.uint32),
                np.zeros(n, np.int64),
                np.zeros(n, np.uint64),
                np.zeros(n, np.uint64),
                np.zeros(n, np.uint8),
            )
    after = world.snapshot()
    assert np.array_equal(before["port"], after["port"]) and np.array_equal(before["regs"], after["regs"])
    # and the same frame in bounds is delivered (broadcast, FCTRL.BAM, VT off -> the PF's queue 0)
    out = np.zeros(1, np.uint64), np.zeros(1, np.uint64), np.zeros(1, np.uint8)
    assert (
        world.kernel.receive(
            data, np.array([0], np.int64), np.array([60], np.uint32), np.zeros(1, np.int64), *out
        )
        == 1
    )
    assert out[1][0] == 1 and world.dev.pf.read32(R.RDH(0)) == 1


@pytest.mark.xfail(strict=True, reason="a bug planted in the golden model must be caught by the scoreboard")
def test_scoreboard_catches_a_planted_bug(monkeypatch) -> None:
    from sriov.golden import rx as golden_rx

    real = golden_rx.parse_frame

    def no_padding(frame, vet, max_frame):  # the planted bug: short frames are not padded to 60
        reason, padded, tagged, tci = real(frame, vet, max_frame)
        return reason, padded[: len(frame)], tagged, tci

    monkeypatch.setattr(golden_rx, "parse_frame", no_padding)
    fast, slow = World(PLAIN_NIC, _fastpath), World(PLAIN_NIC, golden)
    arrays = as_arrays([b"\xff" * 6 + bytes(14)])
    assert_same(fast, slow, fast.run(arrays), slow.run(arrays))
