"""The concurrent mode of fuzz_tx.py: a hostile guest rewrites TX descriptors and frames while
the compiled transmit kernel runs (see fuzz_tx.py's docstring for what is checked)."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from sriov import _fastpath
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import PAGE_SIZE, Iommu
from sriov.wire import Wire, rx_conservation_errors, tx_conservation_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITER_C = os.path.join(ROOT, "tests", "guest_cpu", "guest_writer.c")

OWN = bytes.fromhex("020000000a00")  # VF 0 (pool 0): the only source MAC it may send
PEER = bytes.fromhex("020000000b00")  # VF 1 (pool 1): receives VF 0's unicasts through the VEB
OWN_MAC = np.frombuffer(OWN, np.uint8)
OWN_VLANS = (0, 5)  # VF 0's VLANs (VLVF); any other tag is spoofed
COUNT = 64  # TX and RX descriptors
TX_RING = 0x1000
SLOTS = 16  # frame slots of 1 KiB in VF 0's memory, pages 2..5
SLOT0 = 0x2000
MEM0 = 16 * PAGE_SIZE  # VF 0: pages 0..14 mapped, page 15 a hole
RX_RING = 0x1000
RX_BUF0 = 0x2000
RX_BUF = 2048
MEM1 = 64 * PAGE_SIZE
DATA_CMD = R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_IFCS
CTX_CMD = R.ADVTXD_DTYP_CTXT | R.ADVTXD_DCMD_DEXT
CHECK_EVERY = 2000
# the random ring's ingredients, drawn by index (weights by repetition): buffer offsets inside a
# slot, or (rarely) an address outside the domain, at page 0, in the hole, or above 4 GiB
ADDR_SKEW = np.array(
    [0] * 60 + [7] * 10 + [1000] * 10 + [-SLOT0, MEM0 - PAGE_SIZE - 30 - SLOT0, MEM0, 1 << 40], np.int64
)
HIGH_WORDS = (ADDR_SKEW >= 1 << 32).astype(np.uint32)  # the 1 << 40 entry: high word 0x100, low word 0
HIGH_WORDS[ADDR_SKEW >= 1 << 32] = 0x100
LENGTHS = DATA_CMD | np.array(
    [14, 17] * 2 + [60, 64, 100] * 8 + [600, 1023] * 2 + [1514, 0, 0xFFFF], np.uint32
)
RS_OR_NOT = np.array([R.ADVTXD_DCMD_RS] * 6 + [0, 0], np.uint32)
EOP_OR_NOT = np.array([R.ADVTXD_DCMD_EOP] * 7 + [0, 0, 0], np.uint32)


def build_writer(directory: str) -> ctypes.CDLL:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("the concurrent mode needs a C compiler (cc, gcc or clang) for its guest CPUs")
    lib = os.path.join(directory, "guest_writer.so")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, WRITER_C], check=True)
    return ctypes.CDLL(lib)


class Guest:
    """One guest CPU: ``mutate_words`` writing ``values`` at the word indices ``where`` of ``words``."""

    def __init__(self, lib: ctypes.CDLL, words: np.ndarray, where, values, seed: int) -> None:
        fn = lib.mutate_words
        fn.restype = ctypes.c_uint64
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                       ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
        self.where = np.ascontiguousarray(where, np.uint32)
        self.values = np.ascontiguousarray(values, np.uint32)
        assert int(self.where.max()) < len(words)
        self.go = ctypes.c_int(0)  # set around each kernel run
        self.stop = ctypes.c_int(0)
        self.writes = 0
        args = (words.ctypes.data, self.where.ctypes.data, len(self.where), self.values.ctypes.data,
                len(self.values), seed, ctypes.addressof(self.go), ctypes.addressof(self.stop))  # fmt: skip
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args) -> None:
        self.writes = fn(*args)

    def halt(self) -> None:
        self.stop.value = 1
        self.thread.join()


def frame(dst: bytes, src: bytes, vid: int | None, size: int) -> bytes:
    tag = b"" if vid is None else R.ETH_P_8021Q.to_bytes(2, "big") + vid.to_bytes(2, "big")
    head = dst + src + tag + b"\x08\x00"
    return (head + bytes(i % 251 for i in range(max(0, size - len(head)))))[:size]


class World:
    """VT mode: VF 0 sends (MAC and VLAN anti-spoofing on), VF 1 receives through the VEB."""

    def __init__(self) -> None:
        self.dev = dev = Device82599("eth0", SimClock(), Iommu())
        w = dev.pf.write32
        dev.sriov_enable(2)
        w(R.GCR_EXT, R.GCR_EXT_VT_MODE_32)
        w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (2 << R.VT_CTL_POOL_SHIFT))
        w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN)
        w(R.VLNCTRL, R.ETH_P_8021Q | R.VLNCTRL_VFE)
        w(R.FCTRL, R.FCTRL_BAM)
        for i, (mac, pool) in enumerate(((OWN, 0), (PEER, 1)), start=1):
            w(R.MPSAR_LO(i), 1 << pool)
            w(R.RAL(i), int.from_bytes(mac[:4], "little"))
            w(R.RAH(i), int.from_bytes(mac[4:], "little") | R.RAH_AV)
        for j, vid in enumerate(OWN_VLANS):
            w(R.VLVF(j), R.VLVF_VIEN | vid)
            w(R.VLVFB(2 * j), 0b11)
            w(R.VFTA(vid >> 5), dev.pf.read32(R.VFTA(vid >> 5)) | 1 << (vid & 31))
        for pool in (0, 1):
            w(R.VMOLR(pool), R.VMOLR_AUPE | R.VMOLR_BAM)
        w(R.VFRE(0), 0b111)
        w(R.VFTE(0), 0b111)
        w(R.PFVFSPOOF(0), 0b1 | (0b1 << R.SPOOF_VLANAS_SHIFT))  # pool 0: MAC and VLAN anti-spoofing
        self.mem0 = np.zeros(MEM0, np.uint8)
        self.mem1 = np.zeros(MEM1, np.uint8)
        dev.vfs[0].domain.map(0, self.mem0, 0, MEM0 - PAGE_SIZE)
        dev.vfs[1].domain.map(0, self.mem1, 0, MEM1)
        self.ring = self.mem0[TX_RING : TX_RING + 16 * COUNT].view(np.uint32).reshape(COUNT, 4)
        self.slots = self.mem0[SLOT0 : SLOT0 + 1024 * SLOTS]
        self.rx_ring = self.mem1[RX_RING : RX_RING + 16 * COUNT].view(np.uint32).reshape(COUNT, 4)
        self.rx_bufs = self.mem1[RX_BUF0 : RX_BUF0 + RX_BUF * COUNT].reshape(COUNT, RX_BUF)
        self.rx_addrs = (RX_BUF0 + RX_BUF * np.arange(COUNT)).astype(np.uint32)
        self.rx_end = RX_BUF0 + RX_BUF * COUNT
        w(R.TDBAL(0), TX_RING)
        w(R.TDLEN(0), COUNT * 16)
        w(R.TXDCTL(0), R.TXDCTL_ENABLE)
        q1 = dev.vf_queue(1, 0)
        w(R.RDBAL(q1), RX_RING)
        w(R.RDLEN(q1), COUNT * 16)
        w(R.SRRCTL(q1), 2 | R.SRRCTL_DROP_EN)
        w(R.RXDCTL(q1), R.RXDCTL_ENABLE)
        self.rdh, self.rdt = R.RDH(q1) // 4, R.RDT(q1) // 4
        self.wire = Wire(dev, _fastpath)
        # the frames a slot starts each execution with: own or foreign MACs, tags, sizes
        rng = np.random.default_rng(0)
        self.templates = np.zeros((SLOTS, 1024), np.uint8)
        for k in range(SLOTS):
            dst = [PEER, b"\xff" * 6, bytes.fromhex("01005e000001"), bytes.fromhex("0200000000cc")][k % 4]
            src = OWN if k % 5 else PEER
            vid = [None, None, 0, 5, 100][k % 5]
            f = frame(dst, src, vid, int(rng.integers(14, 1024)))
            self.templates[k, : len(f)] = np.frombuffer(f, np.uint8)
        self.templates_flat = self.templates.reshape(-1)

    def post(self, rng: np.random.Generator) -> int:
        """A fresh random ring of VF 0's frames, every slot back to its template; RX ring reposted."""
        self.slots[:] = self.templates_flat
        n = COUNT - 1
        r = rng.integers(0, 1 << 16, (6, n))  # one draw for the whole ring
        addr = SLOT0 + 1024 * (r[0] % SLOTS) + ADDR_SKEW[r[1] % len(ADDR_SKEW)]
        cmd = LENGTHS[r[2] % len(LENGTHS)] | RS_OR_NOT[r[3] & 7] | EOP_OR_NOT[r[4] % 10]
        cmd[r[5] % 20 == 0] = CTX_CMD
        ring = self.ring
        ring[:n, 0] = addr
        ring[:n, 1] = HIGH_WORDS[r[1] % len(ADDR_SKEW)]
        ring[:n, 2] = cmd
        ring[:n, 3] = 0
        regs = self.dev.regs
        regs[R.TDH(0) // 4] = 0
        regs[R.TDT(0) // 4] = n
        self.rx_ring[:, 0] = self.rx_addrs
        self.rx_ring[:, 1:] = 0
        regs[self.rdh] = 0
        regs[self.rdt] = COUNT - 1
        return n

    def check_run(self) -> tuple[int, int]:
        """What left on the wire and what VF 1 got this execution: VF 0's own MAC, its VLANs only
        (vectorised: the checks must not cost more than the run)."""
        sent = self.wire.sent
        n = len(sent)
        if n:
            lens = sent.lengths
            if lens.min() < 60 or lens.max() > R.TX_MAX_FRAME_SIZE + R.VLAN_HLEN:
                raise AssertionError(f"wire frame lengths {lens.min()}..{lens.max()}")
            self._check_heads(sent.data[sent.offsets[:, None] + np.arange(16)], "the wire")
        used = int(self.dev.regs[self.rdh])
        got = 0
        if used:
            words = self.rx_ring[:used]
            status, length = words[:, 2], words[:, 3] & 0xFFFF
            if not (status & R.RXD_STAT_DD).all() or length.min() == 0 or length.max() > RX_BUF:
                raise AssertionError(f"VF 1 descriptors: status {status.tolist()}, lengths {length.tolist()}")
            eop = np.flatnonzero(status & R.RXD_STAT_EOP)
            first = np.concatenate([[0], eop[:-1] + 1])  # a frame over several buffers: header in its first
            totals = np.add.reduceat(length, first) if len(eop) else length[:0]
            if len(totals) and totals.min() < 60:
                raise AssertionError(f"VF 1 frame of {totals.min()} bytes")
            self._check_heads(self.rx_bufs[first, :16], "VF 1's buffers")
            got = len(eop)
        self.wire.clear_sent()
        return n, got

    @staticmethod
    def _check_heads(heads: np.ndarray, where: str) -> None:
        """Each row: a frame's first 16 bytes."""
        forged = (heads[:, 6:12] != OWN_MAC).any(axis=1)
        if forged.any():
            raise AssertionError(f"{where}: forged source MAC {heads[forged][0, 6:12].tobytes().hex(':')}")
        tagged = (heads[:, 12] == 0x81) & (heads[:, 13] == 0x00)
        vid = (heads[:, 14].astype(np.int32) << 8 | heads[:, 15]) & 0xFFF
        wrong = tagged & (vid != OWN_VLANS[0]) & (vid != OWN_VLANS[1])
        if wrong.any():
            raise AssertionError(f"{where}: VLAN {vid[wrong][0]} VF 0 may not use")

    def check_counters(self) -> None:
        errors = tx_conservation_errors(self.dev) + rx_conservation_errors(self.dev)
        if errors:
            raise AssertionError("; ".join(errors[:5]))
        if self.mem1[self.rx_end :].any() or self.mem1[:RX_RING].any():
            raise AssertionError("VF 1's memory written outside its RX ring and buffers")


def run(runs: int, seed: int, max_seconds: float, lib: ctypes.CDLL, report: bool = True) -> int:
    """``runs`` executions (or until ``max_seconds``); returns the executions done."""
    world = World()
    rng = np.random.default_rng(seed)
    # the descriptor guest: mostly command words (lengths 100 <-> 0xFFFF, EOP on/off, context),
    # sometimes buffer addresses (in the slots, the page before the hole, outside the domain)
    cmd_words = np.arange(COUNT - 1) * 4 + 2
    ring_where = np.concatenate([cmd_words, cmd_words, cmd_words, cmd_words[::4] - 2])
    EOP_RS = DATA_CMD | R.ADVTXD_DCMD_EOP | R.ADVTXD_DCMD_RS
    ring_values = np.concatenate([
        EOP_RS | np.array([0, 13, 60, 100, 100, 1514, 0xFFFF, 0xFFFF]),
        DATA_CMD | np.array([60, 100, 0xFFFF, 0x4000]),
        np.array([CTX_CMD, SLOT0, SLOT0 + 1000, MEM0 - PAGE_SIZE - 8, MEM0 + 64, 0xFFFFFFFF]),
    ]).astype(np.uint32)  # fmt: skip
    # the frame guest: the source MAC's last four bytes (own <-> a peer's), the tag (VLANs 0, 5,
    # 100, none), now and then any word of the first 64 bytes
    slot_words = np.arange(SLOTS) * 256
    header = [slot_words + k for k in range(16)]
    frame_where = np.concatenate([slot_words + 2] * 4 + [slot_words + 3] * 2 + header)
    frame_values = np.array(
        [int.from_bytes(OWN[2:6], "little")] * 3 + [int.from_bytes(PEER[2:6], "little")] * 2
        + [int.from_bytes(b"\x81\x00" + v.to_bytes(2, "big"), "little") for v in (0, 5, 100)]
        + [int.from_bytes(b"\x08\x00\x45\x00", "little"), 0xFFFFFFFF, 0], np.uint32,
    )  # fmt: skip
    guests = [
        Guest(lib, world.ring.reshape(-1), ring_where, ring_values, seed * 2 + 1),
        Guest(lib, world.slots.view(np.uint32), frame_where, frame_values, seed * 2 + 2),
    ]
    start = time.monotonic()
    done = sent = delivered = 0
    try:
        while done < runs and time.monotonic() - start < max_seconds:
            world.post(rng)
            for g in guests:
                g.go.value = 1
            world.wire.process_tx(0, 0)
            for g in guests:
                g.go.value = 0
            s, d = world.check_run()
            sent += s
            delivered += d
            done += 1
            if done % CHECK_EVERY == 0:
                world.check_counters()
                if report and done % 100_000 == 0:
                    print(f"{done} executions, {time.monotonic() - start:.0f} s", flush=True)
    finally:
        for g in guests:
            g.halt()
    world.check_counters()
    if report:
        secs = time.monotonic() - start
        port = dict(zip(
            ("posted", "spoofed", "length", "dma"),
            (int(world.dev.state.port_counters[i]) for i in _port_slots()),
            strict=True,
        ))  # fmt: skip
        print(
            f"concurrent TX fuzz: {done} executions in {secs:.0f} s ({done / secs:.0f}/s), seed {seed}; "
            f"frames posted {port['posted']}, on the wire {sent}, delivered to VF 1 {delivered}, dropped: "
            f"spoofed {port['spoofed']}, length {port['length']}, DMA faults {port['dma']}; guest writes "
            f"{sum(g.writes for g in guests)}; every invariant held"
        )
    return done


def _port_slots() -> list[int]:
    from sriov.hw import counters as C

    return [C.PORT[k] for k in ("tx_posted", "tx_spoofed", "tx_length_errors", "tx_dma_faults")]


def main(argv: list[str]) -> None:
    opts = dict(a.lstrip("-").split("=", 1) for a in argv if "=" in a)
    runs = int(opts.get("runs", 1_000_000))
    seed = int(opts.get("seed", 1))
    seconds = float(opts.get("max_total_time", 1e9))
    with tempfile.TemporaryDirectory() as tmp:
        run(runs, seed, seconds, build_writer(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
