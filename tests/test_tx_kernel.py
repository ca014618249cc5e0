"""The compiled transmit kernel and its golden twin agree on everything (issue 5).

Random device configurations (PF BAR register writes and IOMMU maps only), random TX rings
(valid chains, context descriptors, missing EOP, garbage addresses and command words) and random
frames go through both implementations on two identical devices; the frames on the wire, the
guest memory of every function (TX write-back, local deliveries into RX rings), the whole
register file (TDH, RDH, SSVPC), every counter, the per-queue completion counts and the IOMMU
fault log must be identical, and the counters must add up.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sriov import _fastpath, golden
from sriov.errors import ConfigError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import PAGE_SIZE, Iommu
from sriov.wire import rx_conservation_errors, tx_conservation_errors

MEM_PAGES = 32
MEM = MEM_PAGES * PAGE_SIZE
RX_RING = 1 * PAGE_SIZE  # 16 RX descriptors
RX_BUFS = 2 * PAGE_SIZE  # 2 KiB each: pages 2..9
TX_RING = 10 * PAGE_SIZE  # up to 2 TX rings of 32 descriptors (queue k at + k * 512)
TX_WB = 11 * PAGE_SIZE  # head write-back words
TX_BUFS = 12 * PAGE_SIZE  # frame buffers: pages 12..31
MACS = [bytes([0x02, 0, 0, 0, 0, i]) for i in range(6)] + [
    bytes.fromhex("01005e000001"),
    bytes.fromhex("333300000001"),
    b"\xff" * 6,
]
VIDS = [0, 1, 5, 100]
OWN = b"\x02OWN\x00\x00"  # stands for the sending pool's own MAC (MACS[pool]), put in when posted
u32 = st.integers(0, 0xFFFFFFFF)
DATA_CMD = R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_IFCS


@st.composite
def frame(draw) -> bytes:
    da = draw(st.sampled_from(MACS))
    sa = OWN if draw(st.integers(0, 2)) else draw(st.sampled_from([*MACS[:6], bytes.fromhex("020000000099")]))
    head = da + sa
    kind = draw(st.sampled_from(["plain"] * 5 + ["tagged"] * 3 + ["short", "tiny"]))
    if kind == "tagged":
        tci = (draw(st.integers(0, 7)) << 13) | draw(st.sampled_from([*VIDS, 4095]))
        head += R.ETH_P_8021Q.to_bytes(2, "big") + tci.to_bytes(2, "big")
    head += b"\x08\x00"
    if kind == "tiny":
        return head[: draw(st.integers(0, 17))]
    size = draw(st.one_of(st.integers(14, 200), st.sampled_from([59, 60, 1514, 2049, 5000])))
    if kind == "short":
        size = draw(st.integers(14, 59))
    body = bytes((i * 13 + size) % 256 for i in range(max(0, size - len(head))))
    return (head + body)[:size]


@st.composite
def tx_chain(draw):
    """One frame as descriptors: [(buffer offset or None for a garbage address, length, cmd)]."""
    f = draw(frame())
    pieces = draw(st.integers(1, 3)) if len(f) > 3 else 1
    cuts = sorted(draw(st.lists(st.integers(0, len(f)), min_size=pieces - 1, max_size=pieces - 1)))
    bounds = [0, *cuts, len(f)]
    descs = []
    if draw(st.integers(0, 5)) == 0:  # a context descriptor first (DTYP_CTXT, no data)
        descs.append(("ctx", 0, R.ADVTXD_DTYP_CTXT | R.ADVTXD_DCMD_DEXT))
    for k in range(pieces):
        part = f[bounds[k] : bounds[k + 1]]
        last = k == pieces - 1
        cmd = DATA_CMD | len(part)
        if last and draw(st.integers(0, 12)):
            cmd |= R.ADVTXD_DCMD_EOP
        if draw(st.integers(0, 5)):
            cmd |= R.ADVTXD_DCMD_RS
        garbage = draw(st.integers(0, 15)) == 0
        descs.append(("garbage" if garbage else part, len(part), cmd))
    if draw(st.integers(0, 20)) == 0:
        descs.append(("raw", 0, draw(u32)))  # a random command word
    return descs


@st.composite
def tx_queue(draw):
    count = draw(st.sampled_from([8, 16, 32]))
    chains = draw(st.lists(tx_chain(), max_size=6))
    ndesc = sum(len(c) for c in chains)
    head = draw(st.integers(0, count - 1))
    sane = draw(st.integers(0, 6)) > 0
    return {
        "count": count,
        "chains": chains,
        "tdbal": TX_RING if sane else draw(st.sampled_from([draw(u32), TX_RING + 64, MEM, 0])),
        "tdlen": count * 16 if draw(st.integers(0, 8)) else draw(st.sampled_from([0, 8, 0xFFFFF])),
        "tdh": head,
        "tail": (head + min(ndesc, count - 1)) % count
        if draw(st.integers(0, 6))
        else draw(st.integers(0, 0xFFFF)),
        "txdctl": R.TXDCTL_ENABLE if draw(st.integers(0, 8)) else 0,
        "head_wb": draw(st.sampled_from([0, 0, 0, TX_WB | R.TDWBAL_HEAD_WB_ENABLE, 0x7FFF_0001])),
    }


@st.composite
def device_config(draw, sane: bool = False):
    num_vfs = draw(st.integers(1, 4))
    pools = num_vfs + 1
    bitmap = st.one_of(st.integers(0, (1 << pools) - 1), st.integers(0, 2**64 - 1))
    page_kinds = st.sampled_from(["rw"] * 14 + ["ro", "hole"])
    maps = [draw(st.lists(page_kinds, min_size=MEM_PAGES, max_size=MEM_PAGES)) for _ in range(pools)]
    cfg = {
        "vt": draw(st.integers(0, 5)) > 0,
        "num_vfs": num_vfs,
        "gcr": draw(st.sampled_from([R.GCR_EXT_VT_MODE_64, R.GCR_EXT_VT_MODE_32])),
        "veb": draw(st.integers(0, 4)) > 0,
        "vlnctrl": draw(st.sampled_from([R.ETH_P_8021Q] * 4 + [R.ETH_P_8021AD]))
        | (R.VLNCTRL_VFE if draw(st.booleans()) else 0),
        "rars": [(1 + p, MACS[p], True, 1 << p) for p in range(pools)]
        + draw(
            st.lists(st.tuples(st.integers(8, 20), st.sampled_from(MACS), st.booleans(), bitmap), max_size=4)
        ),
        "vfta": draw(st.lists(st.sampled_from(VIDS), max_size=4)),
        "vlvf": draw(
            st.lists(st.tuples(st.integers(0, 63), st.sampled_from(VIDS), st.booleans(), bitmap), max_size=4)
        ),
        "vmolr": draw(st.lists(st.integers(0, 0x1F), min_size=64, max_size=64)),
        "vfre": draw(st.sampled_from([2**64 - 1, (1 << pools) - 1, draw(st.integers(0, 2**64 - 1))])),
        "vfte": draw(st.sampled_from([2**64 - 1, 2**64 - 1, draw(st.integers(0, 2**64 - 1))])),
        "spoof": [draw(st.integers(0, 0xFFFF)) for _ in range(1)],
        "vmecm": draw(st.integers(0, 2**64 - 1)),
        "vmvir": [
            draw(
                st.sampled_from(
                    [0, 0, R.VMVIR_VLANA_DEFAULT | 100, R.VMVIR_VLANA_DEFAULT | 0x2005, draw(u32)]
                )
            )
            for _ in range(pools)
        ],
        "rx": [
            {
                "rdt": draw(st.integers(0, 15)),
                "rdh": draw(st.integers(0, 15)),
                "rxdctl": R.RXDCTL_ENABLE | (R.RXDCTL_VME if draw(st.booleans()) else 0),
            }
            for _ in range(pools)
        ],
        "tx": [draw(st.lists(tx_queue(), min_size=1, max_size=2)) for _ in range(pools)],
        "mapping": [["rw"] * MEM_PAGES] * pools if sane or draw(st.booleans()) else maps,
        "out_frames": draw(st.sampled_from([0, 2, 64])),
        "out_bytes": draw(st.sampled_from([0, 300, 1 << 16])),
        "later": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        [
                            R.PFVFSPOOF(0),
                            R.VFTE(0),
                            R.PFDTXGSWC,
                            R.VMVIR(0),
                            R.VMVIR(1),
                            R.RAR_BASE + 12,
                            R.TDT(0),
                            R.TDT(4),
                            R.TDH(0),
                        ]
                    ),
                    u32,
                ),
                max_size=3,
            )
        ),
    }
    return cfg


VMOLR_FLAGS = (R.VMOLR_AUPE, R.VMOLR_ROMPE, R.VMOLR_ROPE, R.VMOLR_BAM, R.VMOLR_MPE)


class TxWorld:
    """One device, its functions' memories, RX and TX rings, from a drawn configuration."""

    def __init__(self, cfg: dict, impl) -> None:
        self.iommu = Iommu()
        self.dev = dev = Device82599("eth0", SimClock(), self.iommu)
        w = dev.pf.write32
        dev.sriov_enable(cfg["num_vfs"])
        pools = cfg["num_vfs"] + 1
        w(R.GCR_EXT, cfg["gcr"])
        if cfg["vt"]:
            w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (cfg["num_vfs"] << R.VT_CTL_POOL_SHIFT))
        w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN if cfg["veb"] else 0)
        w(R.VLNCTRL, cfg["vlnctrl"])
        w(R.MAXFRS, 9728 << R.MHADD_MFS_SHIFT)
        w(R.FCTRL, R.FCTRL_BAM)
        for i, mac, valid, bits in cfg["rars"]:
            w(R.MPSAR_LO(i), bits & 0xFFFFFFFF)
            w(R.MPSAR_HI(i), bits >> 32)
            w(R.RAL(i), int.from_bytes(mac[:4], "little"))
            w(R.RAH(i), int.from_bytes(mac[4:], "little") | (R.RAH_AV if valid else 0))
        for vid in cfg["vfta"]:
            w(R.VFTA(vid >> 5), dev.pf.read32(R.VFTA(vid >> 5)) | 1 << (vid & 31))
        for j, vid, valid, bits in cfg["vlvf"]:
            w(R.VLVF(j), vid | (R.VLVF_VIEN if valid else 0))
            w(R.VLVFB(2 * j), bits & 0xFFFFFFFF)
            w(R.VLVFB(2 * j + 1), bits >> 32)
        for p, bits in enumerate(cfg["vmolr"]):
            w(R.VMOLR(p), sum(f for k, f in enumerate(VMOLR_FLAGS) if bits >> k & 1))
        for base, value in ((R.VFRE(0), cfg["vfre"]), (R.VFTE(0), cfg["vfte"]), (R.VMECM(0), cfg["vmecm"])):
            w(base, value & 0xFFFFFFFF)
            w(base + 4, value >> 32)
        w(R.PFVFSPOOF(0), cfg["spoof"][0])
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
            w(R.VMVIR(p), cfg["vmvir"][p])
            rq = p * qpp if cfg["vt"] else 0
            if cfg["vt"] or p == cfg["num_vfs"]:
                rx = cfg["rx"][p]
                w(R.RDBAL(rq), RX_RING)
                w(R.RDBAH(rq), 0)
                w(R.RDLEN(rq), 16 * 16)
                w(R.RDH(rq), rx["rdh"])
                w(R.RDT(rq), rx["rdt"])
                w(R.SRRCTL(rq), 2 | R.SRRCTL_DROP_EN)
                w(R.RXDCTL(rq), rx["rxdctl"])
                for d in range(16):
                    at = RX_RING + 16 * d
                    mem[at : at + 8] = np.frombuffer(
                        (RX_BUFS + 2048 * (d % 4)).to_bytes(8, "little"), np.uint8
                    )
                    mem[at + 8 : at + 16] = 0
            for k, tq in enumerate(cfg["tx"][p]):
                self._tx_queue(w, mem, p * qpp + k if cfg["vt"] else k + 2 * p, k, tq, MACS[p])
        rx_kernel = impl.RxKernel(dev)
        self.kernel = impl.TxKernel(dev, rx_kernel)
        self.out = (
            np.zeros(cfg["out_bytes"], np.uint8),
            np.zeros(cfg["out_frames"], np.int64),
            np.zeros(cfg["out_frames"], np.uint32),
            np.zeros(cfg["out_frames"], np.int64),
            np.zeros(3, np.int64),
        )
        self.kernel.bind_output(*self.out)

    @staticmethod
    def _tx_queue(w, mem: np.ndarray, q: int, k: int, tq: dict, own: bytes) -> None:
        ring = TX_RING + 512 * k
        count = tq["count"]
        pos = TX_BUFS + 8192 * k
        d = tq["tdh"]
        for chain in tq["chains"]:
            for what, length, cmd in chain:
                if what == "garbage":
                    addr = (pos * 7919 + length) % (2 * MEM)
                else:
                    addr = pos
                    if isinstance(what, bytes) and pos + length <= MEM:
                        what = what.replace(OWN, own)
                        mem[pos : pos + length] = np.frombuffer(what, np.uint8)
                    pos = TX_BUFS + (pos - TX_BUFS + length + 40) % (MEM - TX_BUFS - 16384)
                at = ring + 16 * d
                mem[at : at + 8] = np.frombuffer(addr.to_bytes(8, "little"), np.uint8)
                mem[at + 8 : at + 12] = np.frombuffer(cmd.to_bytes(4, "little"), np.uint8)
                mem[at + 12 : at + 16] = np.frombuffer(
                    ((length << 14) & 0xFFFFFFFF).to_bytes(4, "little"), np.uint8
                )
                d = (d + 1) % count
        w(R.TDBAL(q), tq["tdbal"] if tq["tdbal"] != TX_RING else ring)
        w(R.TDBAH(q), 0)
        w(R.TDLEN(q), tq["tdlen"])
        w(R.TDH(q), tq["tdh"])
        w(R.TDT(q), tq["tail"])
        w(R.TDWBAL(q), tq["head_wb"])
        w(R.TDWBAH(q), 0)
        w(R.TXDCTL(q), tq["txdctl"])

    def run(self, now: int) -> tuple:
        """One transmit run over every queue; a full wire is emptied and the run repeated, as the
        Wire grows its arrays (bounded: a frame bigger than the arrays stays in its ring)."""
        data, offs, lens, ts, fill = self.out
        taken = self.kernel.run(0, R.MAX_QUEUES - 1, now)
        sent = [data[o : o + n].tobytes() for o, n in zip(offs[: fill[0]], lens[: fill[0]], strict=True)]
        stamps = ts[: fill[0]].tolist()
        result = [taken, int(fill[2]), self.kernel.rx_queue_frames.copy(), self.kernel.tx_queue_frames.copy()]
        if hasattr(self.kernel, "tx_done"):  # the compiled kernel's list of completed queues (Wire's hook)
            assert self.kernel.tx_done == self.kernel.tx_queue_frames.nonzero()[0].tolist()
        for _ in range(3):
            if not fill[2]:
                break
            fill[:] = 0
            result.append(self.kernel.run(0, R.MAX_QUEUES - 1, now + 1))
            sent += [data[o : o + n].tobytes() for o, n in zip(offs[: fill[0]], lens[: fill[0]], strict=True)]
            stamps += ts[: fill[0]].tolist()
        return result, sent, stamps

    def later(self, writes) -> None:
        for off, value in writes:
            self.dev.regs[off // 4] = value  # raw stores: no doorbell in this test

    def snapshot(self) -> dict:
        io = self.iommu
        return {
            "regs": self.dev.regs.copy(),
            "port": self.dev.state.port_counters.copy(),
            "pool": self.dev.state.pool_counters.copy(),
            "mem": [m.copy() for m in self.memories],
            "faults": [a.copy() for a in (io.fault_total, io.fault_counts, io.fault_domain, io.fault_addr)],
            "kinds": io.fault_kind.copy(),
        }


def assert_same(a: TxWorld, b: TxWorld, ra, rb) -> None:
    (res_a, sent_a, ts_a), (res_b, sent_b, ts_b) = ra, rb
    assert len(res_a) == len(res_b)
    for x, y in zip(res_a, res_b, strict=True):
        assert np.array_equal(x, y), f"run results differ: {res_a} vs {res_b}"
    assert sent_a == sent_b, "frames on the wire differ"
    assert ts_a == ts_b, "wire timestamps differ"
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
    assert np.array_equal(sa["kinds"], sb["kinds"]), "IOMMU fault kinds differ"


SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def check_agreement(cfg) -> None:
    fast, slow = TxWorld(cfg, _fastpath), TxWorld(cfg, golden)
    for now in (1000, 2000):
        assert_same(fast, slow, fast.run(now), slow.run(now))
        for world in (fast, slow):
            assert tx_conservation_errors(world.dev) == []
            assert rx_conservation_errors(world.dev) == []
        fast.later(cfg["later"])
        slow.later(cfg["later"])


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(cfg=device_config())
def test_compiled_and_golden_agree(cfg) -> None:
    check_agreement(cfg)


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(cfg=device_config(sane=True))
def test_compiled_and_golden_agree_on_mapped_memory(cfg) -> None:
    check_agreement(cfg)


@pytest.mark.xfail(strict=True, reason="a bug planted in the golden model must be caught by the scoreboard")
# no shrinking: the first failing example proves the point (shrinking it took two minutes)
@settings(max_examples=5, deadline=None, suppress_health_check=SLOW_OK, phases=[Phase.generate])
@given(cfg=device_config(sane=True))
def test_the_scoreboard_catches_a_planted_bug(cfg) -> None:
    from sriov.golden import tx as golden_tx

    planted = pytest.MonkeyPatch()
    planted.setattr(golden_tx, "_spoofed", lambda regs, pool, frame, tagged: False)  # spoofchk ignored
    cfg.update(vt=True, spoof=[0xFFFF], vfte=2**64 - 1)
    for queues in cfg["tx"]:
        for tq in queues:
            tq.update(tdbal=TX_RING, tdlen=tq["count"] * 16, txdctl=R.TXDCTL_ENABLE, head_wb=0)
            tq["chains"] = [[(eth_frame(), 64, DATA_CMD | R.ADVTXD_DCMD_EOP | R.ADVTXD_DCMD_RS | 64)]]
            tq["tail"] = (tq["tdh"] + 1) % tq["count"]
    try:
        check_agreement(cfg)
    finally:
        planted.undo()


def eth_frame() -> bytes:
    """A 64-byte unicast frame with a source MAC no pool owns (spoofed whenever MAC anti-spoof is on)."""
    return (MACS[1] + bytes.fromhex("020000000099") + b"\x08\x00" + bytes(50))[:64]


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=SLOW_OK)
@given(cfg=device_config())
def test_compiled_and_golden_agree_long(cfg) -> None:
    check_agreement(cfg)


# -- the driver-side helpers ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    count=st.sampled_from([8, 16]),
    ntu=st.integers(0, 15),
    used=st.integers(0, 15),
    sizes=st.lists(st.integers(0, 5000), max_size=12),
    done=st.integers(0, 20),
)
def test_tx_fill_and_tx_clean_agree(count, ntu, used, sizes, done) -> None:
    ntu %= count
    free = count - 1 - used % count
    frames = [bytes((i + k) % 256 for k in range(n)) for i, n in enumerate(sizes)]
    data = np.frombuffer(b"".join(frames) or b"\0", np.uint8).copy()
    offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
    lengths = np.array(sizes, np.uint32)
    outs = []
    for impl in (_fastpath, golden):
        mem = np.zeros(count * 2048 + 4096, np.uint8)
        ring = np.zeros((count, 4), np.uint32)
        watch = np.full(count, -1, np.int32)
        bufs = np.arange(count, dtype=np.uint64) * np.uint64(2048) + np.uint64(4096)
        placed = impl.tx_fill(ring, mem, bufs, 2048, ntu, free, data, offsets, lengths, len(sizes), watch)
        ring[: done % count, 3] |= R.TXD_STAT_DD  # the device wrote some back
        cleaned = impl.tx_clean(ring, watch, ntu, (ntu + placed[1]) % count)
        outs.append((placed, cleaned, ring.copy(), mem.copy(), watch.copy()))
    (pa, ca, ra, ma, wa), (pb, cb, rb, mb, wb) = outs
    assert pa == pb and ca == cb
    assert np.array_equal(ra, rb) and np.array_equal(ma, mb) and np.array_equal(wa, wb)
    # what was placed is what was asked, in order, until the ring was full
    need = [max(1, -(-n // 2048)) for n in sizes]
    fits = 0
    while fits < len(sizes) and sum(need[: fits + 1]) <= free:
        fits += 1
    assert pa == (fits, sum(need[:fits]))


@pytest.mark.parametrize("impl", [_fastpath, golden], ids=["compiled", "golden"])
def test_bad_arguments_are_refused_with_config_errors(impl) -> None:
    dev = Device82599("eth0", SimClock(), Iommu())
    kernel = impl.TxKernel(dev, impl.RxKernel(dev))
    with pytest.raises(ConfigError, match="bind_output"):
        kernel.run(0, 127, 0)
    out = np.zeros(10, np.uint8), np.zeros(2, np.int64), np.zeros(2, np.uint32), np.zeros(2, np.int64)
    with pytest.raises(ConfigError, match="fill"):
        kernel.bind_output(*out, np.zeros(2, np.int64))
    fill = np.zeros(3, np.int64)
    kernel.bind_output(*out, fill)
    with pytest.raises(ConfigError, match="queue range"):
        kernel.run(5, 200, 0)
    fill[0] = 3  # more frames than the arrays hold
    with pytest.raises(ConfigError, match="outside the output arrays"):
        kernel.run(0, 127, 0)
    fill[0] = 0
    assert kernel.run(0, 127, 0) == 0  # nothing posted
    ring, mem = np.zeros((8, 4), np.uint32), np.zeros(4096, np.uint8)
    bufs = np.full(8, 4000, np.uint64)  # buffers run past the memory
    data = np.zeros(64, np.uint8)
    with pytest.raises(ConfigError, match="outside"):
        impl.tx_fill(
            ring, mem, bufs, 1024, 0, 7, data, np.zeros(1, np.int64), np.full(1, 64, np.uint32), 1,
            np.zeros(8, np.int32),
        )  # fmt: skip
    assert not ring.any() and not mem.any()


# -- TxRingCore: the TxRing's bound per-burst work ------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    count=st.sampled_from([8, 16]),
    ntc=st.integers(0, 15),
    in_flight=st.integers(0, 15),
    sizes=st.lists(st.integers(0, 5000), max_size=12),
    done=st.integers(0, 20),
    watch_junk=st.lists(st.integers(-3, 20), max_size=4),
)
def test_tx_ring_core_agrees_and_is_clean_then_fill(count, ntc, in_flight, sizes, done, watch_junk) -> None:
    """Compiled and golden `TxRingCore.send` agree, and each equals `tx_clean` (when anything is in
    flight) followed by `tx_fill` into the free descriptors, whatever the watch entries hold."""
    ntc %= count
    in_flight %= count
    ntu = (ntc + in_flight) % count
    frames = [bytes((i + k) % 256 for k in range(n)) for i, n in enumerate(sizes)]
    data = np.frombuffer(b"".join(frames) or b"\0", np.uint8).copy()
    offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
    lengths = np.array(sizes, np.uint32)

    def arrays():
        mem = np.zeros(count * 2048 + 4096, np.uint8)
        ring = np.zeros((count, 4), np.uint32)
        ring[: done % count, 3] |= R.TXD_STAT_DD  # the device wrote some back
        watch = np.full(count, -1, np.int32)
        for k in range(in_flight):  # one-descriptor frames in flight, some watch entries corrupt
            d = (ntc + k) % count
            watch[d] = watch_junk[k] if k < len(watch_junk) else d
        bufs = np.arange(count, dtype=np.uint64) * np.uint64(2048) + np.uint64(4096)
        return mem, ring, watch, bufs

    outs = []
    for impl in (_fastpath, golden):
        mem, ring, watch, bufs = arrays()
        core = impl.TxRingCore(ring, mem, bufs, 2048, watch)
        bufs[:] = 1 << 40  # the core keeps its own checked copy
        sent = core.send(ntu, ntc, data, offsets, lengths, len(sizes))
        outs.append((sent, ring.copy(), mem.copy(), watch.copy()))
        # the reference: the two functions
        mem, ring, watch, bufs = arrays()
        cleaned, c = (0, ntc) if ntu == ntc else impl.tx_clean(ring, watch, ntc, ntu)
        free = count - 1 - (ntu - c) % count
        placed = impl.tx_fill(ring, mem, bufs, 2048, ntu, free, data, offsets, lengths, len(sizes), watch)
        assert sent == (*placed, cleaned, c)
        assert np.array_equal(outs[-1][1], ring) and np.array_equal(outs[-1][2], mem)
        assert np.array_equal(outs[-1][3], watch)
    (sa, ra, ma, wa), (sb, rb, mb, wb) = outs
    assert sa == sb
    assert np.array_equal(ra, rb) and np.array_equal(ma, mb) and np.array_equal(wa, wb)


@pytest.mark.parametrize("impl", [_fastpath, golden], ids=["compiled", "golden"])
def test_tx_ring_core_refuses_bad_arguments(impl) -> None:
    ring, mem, watch = np.zeros((8, 4), np.uint32), np.zeros(4096, np.uint8), np.full(8, -1, np.int32)
    with pytest.raises(ConfigError, match="outside"):
        impl.TxRingCore(ring, mem, np.full(8, 4000, np.uint64), 1024, watch)  # buffers past the memory
    with pytest.raises(ConfigError, match="ring must be"):
        impl.TxRingCore(ring, mem, np.zeros(7, np.uint64), 64, watch)
    with pytest.raises(ConfigError, match="buffer size"):
        impl.TxRingCore(ring, mem, np.zeros(8, np.uint64), 0, watch)
    core = impl.TxRingCore(ring, mem, np.arange(8, dtype=np.uint64) * np.uint64(512), 512, watch)
    data = np.ones(64, np.uint8)
    one, sixty_four = np.zeros(1, np.int64), np.full(1, 64, np.uint32)
    with pytest.raises(ConfigError, match="outside the 8-descriptor"):
        core.send(8, 0, data, one, sixty_four, 1)
    with pytest.raises(ConfigError, match="frame 0 lies outside"):
        core.send(0, 0, data, np.full(1, 10, np.int64), sixty_four, 1)
    with pytest.raises(ConfigError, match="frames asked"):
        core.send(0, 0, data, one, sixty_four, 2)
    with pytest.raises(ConfigError, match="outside the 8-descriptor"):
        core.clean(0, -1)
    assert not ring.any() and not mem.any() and (watch == -1).all()  # refused calls changed nothing
    assert core.send(0, 0, data, one, sixty_four, 1) == (1, 1, 0, 0)
    assert mem[:64].all() and watch[0] == 0
