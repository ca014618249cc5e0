"""A hostile VF can hurt only itself (issue 8).

An `Arena` is one port with four VFs: VFs 1..3 are well-behaved guests (ixgbevf bound, interface
up, polling their rings and talking to the PF over the mailbox), VF 0 is the attacker. VF 0's VM
memory is mapped into its IOMMU domain as VFIO would; in most scenarios no driver is bound and
the attacker drives its BAR0 directly (`Arena.raw_request` is a minimal mailbox client).

Every scenario pushes bursts of frames (unicast to each VF, to the attacker, broadcast, unknown
unicast) while the good VFs keep changing their multicast lists, and then requires:

* frames for the other VFs lost: 0 (every frame the switch chose for a good VF was polled by it);
* unicast for a good VF's MAC goes to that VF alone: no copy to the attacker or anyone else (the
  administrator's configuration; ``Figures.leaked``);
* frames unaccounted: 0 (every frame delivered or dropped for a named reason; counters conserved);
* no memory written outside the rings and posted buffers (`sriov.invariants.DmaWatch`);
* the PF never raised, and the other VFs' switch/filter state is what it was;
* the good VFs' mailbox transactions complete: their simulated latency is recorded (p99).

``python tests/test_hostile_vf.py`` prints the figures (benchmarks/RESULTS.md "Hardening").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from sriov.batch import Batch
from sriov.drivers import mailbox as M
from sriov.drivers.rings import RxRing
from sriov.errors import RegisterAccessError
from sriov.host import Host
from sriov.hw import regs as R
from sriov.invariants import DmaWatch, conservation_errors
from sriov.wire import DropReason

NUM_VFS = 4
HOSTILE = 0
GOOD = (1, 2, 3)
MACS = [f"02:00:00:00:01:{i:02x}" for i in range(NUM_VFS)]
VM_MEM = 4 << 20
KNOWN_REASONS = {int(r) for r in DropReason}
BURSTS = int(os.environ.get("HOSTILE_BURSTS", "12"))  # per scenario; the RESULTS figures use more


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(dst: str | bytes, size: int = 64, src: str = "02:00:00:00:09:99") -> bytes:
    head = (mac_bytes(dst) if isinstance(dst, str) else dst) + mac_bytes(src) + b"\x08\x00"
    return (head + bytes((i * 7 + size) % 256 for i in range(max(0, size - 14))))[:size]


@dataclass
class Figures:
    """What one scenario did, for the assertions and the RESULTS table."""

    name: str
    frames: int = 0
    unaccounted: int = 0
    other_selected: int = 0
    other_lost: int = 0
    leaked: int = 0  # unicast for a good VF's MAC that the switch also gave another pool
    mbx_latencies_ns: list[int] = field(default_factory=list)  # driver-visible transaction time
    service_ns: list[int] = field(default_factory=list)  # REQ written -> the PF's ACK of it
    attacker_drops: dict[str, int] = field(default_factory=dict)

    @property
    def mbx_p99_us(self) -> float:
        return float(np.percentile(self.mbx_latencies_ns, 99)) / 1e3 if self.mbx_latencies_ns else 0.0

    @property
    def service_p99_us(self) -> float:
        return float(np.percentile(self.service_ns, 99)) / 1e3 if self.service_ns else 0.0


class Arena:
    """One port, good VFs 1..3 (ixgbevf, up) and an attacker on VF 0."""

    def __init__(self, name: str, attacker_driver: bool = False, seed: int = 11) -> None:
        self.host = host = Host(seed=seed)
        self.clock = host.clock
        self.port = port = host.add_port("eth0")
        self.pf = port.pf
        self.dev = port.device
        self.pf.set_numvfs(NUM_VFS)
        for vf in range(NUM_VFS):
            self.pf.set_vf(vf, mac=MACS[vf])
        self.good = {}
        for vf in GOOD:
            vm = host.add_vm(f"vm{vf}", memory=VM_MEM)
            nic = host.assign(port.vf(vf), vm)
            nic.up()
            self.good[vf] = nic
        self.evil_vm = host.add_vm("evil", memory=VM_MEM)
        self.fn = port.vf(HOSTILE)
        self.nic = None
        if attacker_driver:
            self.nic = host.assign(self.fn, self.evil_vm)
            self.nic.up()
        else:  # VFIO maps the VM's memory; no driver: the attacker drives BAR0 itself
            self.fn.domain.map(0, self.evil_vm.memory.buffer, 0, VM_MEM, writable=True)
        self.clock.advance(1_000_000_000)
        assert all(nic.link_up for nic in self.good.values())
        self.figures = Figures(name)
        self.macs = list(MACS)  # what the administrator gave each VF (a scenario may change one)
        self.attacker_sources = {MACS[HOSTILE]}  # source MACs the attacker may send from
        for nic in self.good.values():  # time every mailbox transaction of the good VFs
            nic.mbx.transact = self._timed(nic.mbx.transact)
        self._watch_service()
        self.rng = np.random.default_rng(seed)
        self.burst_no = 0
        self.hooks: list[Callable[[int], None]] = []  # attacker actions between bursts
        self.watch = DmaWatch(host)
        self.others_before = self.other_state()
        self.frames_in_before = self.port_counter("rx_frames_in")

    def _timed(self, transact):
        def timed(*args, **kwargs):
            t0 = self.clock.now
            try:
                return transact(*args, **kwargs)
            finally:
                self.figures.mbx_latencies_ns.append(self.clock.now - t0)

        return timed

    def _watch_service(self) -> None:
        """Time from a good VF's REQ (VFMAILBOX write) to the PF's ACK of it (PFMAILBOX write).

        Test instrumentation: wraps the device's PFMAILBOX write handlers (its dispatch table)."""
        if not hasattr(self.dev, "_pf_write_h"):
            return  # a device without the dispatch table: only the transaction times are taken
        req_at: dict[int, int] = {}
        for vf in GOOD:
            fn = self.port.vf(vf)
            write = fn.write32

            def vf_write(offset, value, vf=vf, write=write):
                if offset == R.VFMAILBOX and isinstance(value, int) and value & R.VFMAILBOX_REQ:
                    req_at[vf] = self.clock.now
                write(offset, value)

            fn.write32 = vf_write
            word = R.PFMAILBOX(vf) // 4
            handler = self.dev._pf_write_h[word]

            def pf_write(value, vf=vf, handler=handler):
                if value & R.PFMAILBOX_ACK and vf in req_at:
                    self.figures.service_ns.append(self.clock.now - req_at.pop(vf))
                handler(value)

            self.dev._pf_write_h[word] = pf_write

    # -- state -----------------------------------------------------------------------------------
    def port_counter(self, name: str) -> int:
        return int(self.port.stats()[name])

    def other_state(self) -> dict:
        """Everything of the good VFs' switch, filter and mailbox state the attacker must not touch."""
        d, regs = self.dev, self.dev.regs
        out = {}
        for vf in GOOD:
            bit = 1 << vf
            rars = sorted(
                tuple(d.state.rar[i].tolist()) for i in range(R.NUM_RAR) if int(d.state.mpsar[i]) & bit
            )
            vlans = sorted(int(d.state.vlvf[j]) for j in range(R.NUM_VLVF) if int(d.state.vlvfb[j]) & bit)
            cfg = self.pf.vf_config(vf)
            out[vf] = (
                rars,
                vlans,
                int(d.state.vmolr[vf]),
                int(d.state.vmvir[vf]),
                bool(int(d.state.vfre[0]) & bit),
                bool(int(d.state.vfte[0]) & bit),
                cfg,
                [int(regs[(R.RDBAL(d.vf_queue(vf, 0)) + f) // 4]) for f in (0, 4, 8, 0x14, 0x28)],
            )
        return out

    # -- the attacker's raw mailbox client -------------------------------------------------------
    def raw_write(self, words: list[int], doorbell: int = R.VFMAILBOX_REQ) -> None:
        for i, w in enumerate(words):
            self.fn.write32(R.VFMBMEM + 4 * i, int(w) & 0xFFFFFFFF)
        self.fn.write32(R.VFMAILBOX, doorbell)

    def raw_request(self, words: list[int], wait_ns: int = 200_000) -> list[int]:
        """Post ``words``, let the PF answer, read the reply and ACK it (no lock, no checks)."""
        self.raw_write(words)
        self.clock.advance(wait_ns)
        reply = [self.fn.read32(R.VFMBMEM + 4 * i) for i in range(R.VFMAILBOX_SIZE)]
        self.fn.write32(R.VFMAILBOX, R.VFMAILBOX_ACK)
        self.clock.advance(wait_ns)
        return reply

    def raw_reset(self) -> list[int]:
        """VFCTRL.RST, wait for RSTD to clear, then IXGBE_VF_RESET: the PF makes the VF clear to send."""
        self.fn.write32(R.VFCTRL, R.CTRL_RST)
        self.clock.advance(1_000_000)
        self.fn.read32(R.VFMAILBOX)  # RSTD is read-to-clear
        return self.raw_request([M.IXGBE_VF_RESET])

    def program_rx(self, q: int, base: int, count: int, head: int, tail: int, bsize_k: int = 2) -> None:
        w = self.fn.write32
        w(R.VFRXDCTL(q), 0)
        w(R.VFRDBAL(q), base & 0xFFFFFFFF)
        w(R.VFRDBAH(q), base >> 32)
        w(R.VFRDLEN(q), count * R.RX_DESC_SIZE & 0xFFFFFFFF)
        w(R.VFRDH(q), head)
        w(R.VFRDT(q), tail)
        w(R.VFSRRCTL(q), R.SRRCTL_DROP_EN | bsize_k)
        w(R.VFRXDCTL(q), R.RXDCTL_ENABLE)

    def write_descriptors(self, base: int, addrs: list[int]) -> None:
        """The attacker's CPU writes read-format descriptors into its own memory."""
        mem = self.evil_vm.memory
        self.watch.allow(mem.buffer, base, 16 * len(addrs), "attacker CPU: RX descriptors")
        for d, addr in enumerate(addrs):
            at = base + 16 * d
            mem.view(at, 16)[:] = np.frombuffer(
                (addr & (2**64 - 1)).to_bytes(8, "little") + bytes(8), np.uint8
            )

    def post_tx(
        self, frames: list[bytes | int], ring: int = 0x180000, bufs: int = 0x1A0000, head_wb: int = 0
    ) -> None:
        """The attacker posts frames on its TX queue 0 and writes the tail (the doorbell runs TX).

        An int in ``frames`` is a buffer address to use as is (a frame of 64 bytes said to be there).
        """
        mem = self.evil_vm.memory
        count = 64
        cmd0 = R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_IFCS | R.ADVTXD_DCMD_EOP
        pos = bufs
        cpu_can_write = ring + count * 16 <= mem.size  # a ring outside its RAM: only the registers
        for d, f in enumerate(frames[: count - 1] if cpu_can_write else []):
            if isinstance(f, int):
                addr, length = f, 64
            else:
                addr, length = pos, len(f)
                mem.view(pos, length)[:] = np.frombuffer(f, np.uint8)
                pos += 2048
            desc = addr.to_bytes(8, "little") + (cmd0 | R.ADVTXD_DCMD_RS | length).to_bytes(4, "little")
            mem.view(ring + 16 * d, 16)[:] = np.frombuffer(
                desc + (length << 14).to_bytes(4, "little"), np.uint8
            )
        # the attacker's CPU wrote its own ring and buffers: not DMA, allowed
        if cpu_can_write:
            self.watch.allow(mem.buffer, ring, count * 16, "attacker CPU: TX ring")
        self.watch.allow(mem.buffer, bufs, pos - bufs, "attacker CPU: TX buffers")
        w = self.fn.write32
        w(R.VFTXDCTL(0), 0)
        w(R.VFTDBAL(0), ring & 0xFFFFFFFF)
        w(R.VFTDBAH(0), ring >> 32)
        w(R.VFTDLEN(0), count * 16)
        w(R.VFTDH(0), 0)
        w(R.VFTDWBAL(0), head_wb & 0xFFFFFFFF)
        w(R.VFTXDCTL(0), R.TXDCTL_ENABLE)
        self.watch.refresh()
        _ = self.port.wire  # the wire's doorbell must exist before the tail write
        w(R.VFTDT(0), min(len(frames), count - 1) if frames else 0)

    def drain_good(self) -> dict[int, list[bytes]]:
        """What the good VFs got outside the bursts (VEB deliveries from the attacker)."""
        got: dict[int, list[bytes]] = {}
        for vf, nic in self.good.items():
            got[vf] = []
            while True:
                batch = nic.rx_poll(256)
                if not len(batch):
                    break
                got[vf] += batch.to_list()
        return got

    # -- traffic ---------------------------------------------------------------------------------
    def burst(self, per_vf: int = 6) -> None:
        """One burst: unicast to every VF (attacker too), broadcast, unknown unicast; good VFs poll."""
        sizes = [64, 128, 1514, 60, 300, 1000]
        frames = []
        for k in range(per_vf):
            for vf in range(NUM_VFS):
                frames.append(frame(self.macs[vf], sizes[(k + vf) % len(sizes)]))
        frames += [frame("ff:ff:ff:ff:ff:ff", 100), frame("02:00:00:00:77:77", 80)]
        order = self.rng.permutation(len(frames))
        batch = Batch.from_frames([frames[i] for i in order])
        self.watch.refresh()  # the rings' posted buffers as they are now
        result = self.port.wire.receive(batch)
        fig = self.figures
        fig.frames += len(batch)
        fig.unaccounted += int(np.count_nonzero(~np.isin(result.reasons, list(KNOWN_REASONS))))
        fig.unaccounted += int(np.count_nonzero((result.delivered == 0) & (result.reasons == 0)))
        shuffled = [frames[i] for i in order]
        for vf in GOOD:  # the administrator's configuration: a good VF's unicast is its alone
            mine = np.array([f[:6] == mac_bytes(self.macs[vf]) for f in shuffled])
            fig.leaked += int(np.count_nonzero(result.selected[mine] != np.uint64(1 << vf)))
        for vf in GOOD:
            bit = np.uint64(1 << vf)
            chosen = int(np.count_nonzero(result.selected & bit))
            into_ring = int(np.count_nonzero(result.delivered & bit))
            polled = 0
            while True:  # the guest drains its ring, so a full ring is never the reason
                n = len(self.good[vf].rx_poll(256))
                if not n:
                    break
                polled += n
            assert polled <= into_ring
            fig.other_selected += chosen
            fig.other_lost += chosen - into_ring
        with contextlib.suppress(Exception):
            self.pf.rx_poll(512)  # the PF drains its pool too (broadcast, unknown unicast)
        # a good VF changes its multicast list: a mailbox transaction under attack
        nic = self.good[GOOD[self.burst_no % len(GOOD)]]
        nic.set_multicast([f"01:00:5e:00:00:{(self.burst_no % 200) + 1:02x}"])
        self.burst_no += 1
        self.clock.advance(50_000)

    def run(self, bursts: int = BURSTS) -> None:
        for i in range(bursts):
            for hook in self.hooks:
                hook(i)
            self.burst()

    def finish(self) -> Figures:
        """Check every invariant; returns the figures."""
        fig = self.figures
        fig.unaccounted += abs(self.port_counter("rx_frames_in") - self.frames_in_before - fig.frames)
        errors = conservation_errors(self.dev)
        assert errors == [], errors
        self.watch.assert_clean()
        assert fig.unaccounted == 0
        assert fig.other_lost == 0, f"{fig.other_lost} frames for the good VFs were lost"
        assert fig.leaked == 0, f"{fig.leaked} unicast frames for a good VF also went elsewhere"
        assert_sent_only_from(self, self.drain_good(), self.attacker_sources)
        assert fig.other_selected > 0
        assert all(nic.link_up for nic in self.good.values()), "a good VF lost its link"
        before = self.others_before
        after = self.other_state()
        for vf in GOOD:
            b, a = list(before[vf]), list(after[vf])
            # the good VFs' own multicast joins change only MTA (shared) and their own ROMPE
            for k in (0, 1, 3, 4, 5, 6, 7):
                assert a[k] == b[k], f"VF {vf}'s state [{k}] changed: {b[k]} -> {a[k]}"
        assert len(fig.mbx_latencies_ns) >= 3
        assert len(fig.service_ns) >= 3 or not hasattr(self.dev, "_pf_write_h")
        from sriov.hw import counters as C

        pool = self.dev.state.pool_counters[HOSTILE]
        fig.attacker_drops = {
            k: int(pool[C.POOL[k]])
            for k in ("rx_packets", "rx_dropped", "rx_dma_faults", "rx_queue_disabled")
        }
        return fig


# ==============================================================================================
# scenarios: each sets the attack up on an Arena, runs traffic, returns the figures
def baseline() -> Figures:
    a = Arena("baseline (attacker idle)")
    a.raw_reset()
    a.run()
    return a.finish()


def mailbox_flood() -> Figures:
    a = Arena("mailbox flood (REQ every 2 us, random words, VFU hog)")
    rng = np.random.default_rng(5)
    opcodes = [*M.OPCODES, 0x7777, 0xFFFF, M.IXGBE_PF_CONTROL_MSG]
    doorbells = [R.VFMAILBOX_REQ] * 6 + [
        R.VFMAILBOX_VFU,
        R.VFMAILBOX_ACK,
        R.VFMAILBOX_REQ | R.VFMAILBOX_VFU,
        0,
    ]
    sent = [0]

    def tick() -> None:
        words = [int(x) for x in rng.integers(0, 2**32, R.VFMAILBOX_SIZE, dtype=np.uint64)]
        words[0] = (words[0] & 0xFFFF0000) | int(rng.choice(opcodes)) if rng.random() < 0.8 else words[0]
        a.raw_write(words, int(rng.choice(doorbells)))
        sent[0] += 1
        a.clock.schedule(2_000, tick)

    a.clock.schedule(0, tick)
    a.run()
    fig = a.finish()
    assert sent[0] > 1000
    assert a.pf.vf_counters(HOSTILE)["requests"] > 100  # the PF did serve the attacker too
    return fig


def messages_before_reset() -> Figures:
    a = Arena("messages before reset (not clear to send)")
    info_before = a.pf.vf_config(HOSTILE)
    rars_before = a.dev.state.mpsar.copy()
    for words in (
        [M.IXGBE_VF_SET_MAC_ADDR, *M.mac_to_words(mac_bytes(MACS[1]))],
        [M.IXGBE_VF_SET_VLAN | 1 << 16, 100],
        [M.IXGBE_VF_SET_LPE, 9018],
        [M.IXGBE_VF_UPDATE_XCAST_MODE, int(M.XcastMode.PROMISC)],
        [M.IXGBE_VF_SET_MACVLAN | 1 << 16, *M.mac_to_words(mac_bytes(MACS[2]))],
        [M.IXGBE_VF_SET_MULTICAST | 30 << 16, *range(15)],
    ):
        reply = a.raw_request(words)
        assert reply[0] & M.IXGBE_VT_MSGTYPE_FAILURE and not reply[0] & M.IXGBE_VT_MSGTYPE_CTS
    assert a.pf.vf_counters(HOSTILE)["not_cts_msgs"] == 6
    assert a.pf.vf_config(HOSTILE) == info_before and np.array_equal(a.dev.state.mpsar, rars_before)
    a.run()
    return a.finish()


def oversize_and_truncated_messages() -> Figures:
    a = Arena("oversize / truncated / garbage messages")
    a.raw_reset()
    garbage = [
        [M.IXGBE_VF_SET_MULTICAST | 0xFF << 16, *([0xFFFFFFFF] * 15)],  # count 255 in a 16-word mailbox
        [M.IXGBE_VF_SET_VLAN | 1 << 16, 0xFFFFFFFF],  # VID far out of range
        [M.IXGBE_VF_SET_LPE, 0xFFFFFFFF],  # max frame 4 GiB
        [M.IXGBE_VF_SET_MACVLAN | 0xFF << 16, 0xFFFFFFFF, 0xFFFF],  # index 255, broadcast MAC
        [M.IXGBE_VF_API_NEGOTIATE, 0xDEADBEEF],
        [M.IXGBE_VF_UPDATE_XCAST_MODE, 0xFFFFFFFF],
        [M.IXGBE_VF_GET_RETA],
        [M.IXGBE_VF_GET_RSS_KEY],
        [M.IXGBE_VF_IPSEC_ADD, *([7] * 15)],
        [0x7777],  # unknown opcode
        [0xFFFFFFFF] * 16,  # every bit set (SUCCESS|FAILURE|CTS flagged)
        [M.IXGBE_VF_SET_MAC_ADDR | M.IXGBE_VT_MSGTYPE_SUCCESS],  # an echo of a reply
        [M.IXGBE_VF_SET_MAC_ADDR],  # truncated: the MAC words are whatever the buffer held
        [M.IXGBE_PF_CONTROL_MSG],  # the PF's own message sent back
    ]
    for words in garbage:
        a.raw_request(words)
    for words in garbage:  # and once more without reading the replies or acking
        a.raw_write(words)
        a.clock.advance(5_000)
    counters = a.pf.vf_counters(HOSTILE)
    assert counters["nacks_sent"] >= 8 and counters["unhandled_msgs"] >= 1 and counters["flagged_msgs"] >= 2
    a.run()
    return a.finish()


def writes_outside_the_bar() -> Figures:
    a = Arena("register writes outside the BAR / unimplemented offsets")
    a.raw_reset()
    regs_before = a.dev.regs.copy()
    refused = 0
    for offset in (R.VF_BAR0_SIZE, R.VF_BAR0_SIZE + 4, 0x10000, 2**32, -4, 3, 0x2FE, 0x3000, 0x1FFC):
        with contextlib.suppress(RegisterAccessError):
            a.fn.write32(offset, 0xFFFFFFFF)
            continue
        refused += 1
    for bad in (2**32, -1, 1.5, "1", None, True):
        with pytest.raises(RegisterAccessError):
            a.fn.write32(R.VFRDT(0), bad)  # type: ignore[arg-type]
        refused += 1
    assert refused >= 12 and a.fn.bad_accesses >= 6
    assert np.array_equal(a.dev.regs, regs_before), "a refused write changed a register"
    a.run()
    return a.finish()


def ring_base_outside_the_vm() -> Figures:
    a = Arena("RX ring base outside the VM")
    a.raw_reset()
    a.program_rx(0, VM_MEM + 0x10000, 64, 0, 63)  # IOVA past the VM's RAM: nothing mapped there
    a.run()
    fig = a.finish()
    assert fig.attacker_drops["rx_dma_faults"] > 0 and a.fn.domain.fault_count > 0
    return fig


def descriptors_outside_the_vm() -> Figures:
    a = Arena("RX descriptors pointing outside the VM")
    a.raw_reset()
    ring = 0x100000
    addrs = [VM_MEM + 0x1000, 2**64 - 0x800, VM_MEM - 100, 0, 2**40] * 12 + [
        0x200000 + 2048 * i for i in range(4)
    ]
    a.write_descriptors(ring, addrs)
    a.program_rx(0, ring, 64, 0, 63)
    a.run()
    fig = a.finish()
    assert fig.attacker_drops["rx_dma_faults"] > 0
    return fig


def overlapping_rings() -> Figures:
    a = Arena("overlapping rings (buffers inside the ring, two queues one ring)")
    a.raw_reset()
    ring = 0x100000
    a.write_descriptors(ring, [ring + 16 * (i % 4) for i in range(64)])  # buffers over the ring itself
    a.program_rx(0, ring, 64, 0, 63)
    a.program_rx(1, ring + 512, 64, 0, 63)  # queue 1 overlaps queue 0
    a.run()
    fig = a.finish()
    assert fig.attacker_drops["rx_packets"] + fig.attacker_drops["rx_dma_faults"] > 0
    return fig


def tail_beyond_the_ring() -> Figures:
    a = Arena("tail and head beyond the ring, absurd ring lengths")
    a.raw_reset()
    ring = 0x100000
    a.write_descriptors(ring, [0x200000 + 2048 * i for i in range(64)])
    layouts = [
        (ring, 64, 0, 0xFFFF),
        (ring, 64, 500, 3),
        (ring, 0, 0, 5),
        (VM_MEM - 0x800, 0xFFF8, 0, 0xFFF0),
    ]

    def attack(i: int) -> None:
        a.program_rx(0, *layouts[i % len(layouts)])

    a.hooks.append(attack)
    a.run()
    fig = a.finish()
    assert fig.attacker_drops["rx_dropped"] > 0
    return fig


def reset_storm() -> Figures:
    a = Arena("VF reset storm (VFCTRL.RST + RESET messages)")

    def attack(i: int) -> None:
        for _ in range(5):
            a.fn.write32(R.VFCTRL, R.CTRL_RST)
            a.raw_write([M.IXGBE_VF_RESET])
            a.clock.advance(3_000)
        if i % 3 == 0:
            a.raw_reset()
            a.program_rx(0, 0x100000, 64, 0, 63)

    a.hooks.append(attack)
    a.run()
    fig = a.finish()
    assert a.pf.vf_counters(HOSTILE)["vflr_events"] >= 10
    return fig


def flr_during_traffic() -> Figures:
    a = Arena("FLR during traffic (attacker runs ixgbevf)", attacker_driver=True)

    def attack(i: int) -> None:
        if i % 2:
            a.dev.vf_function_reset(HOSTILE)  # FLR (what VFIO's reset does)
        else:
            with contextlib.suppress(Exception):
                a.nic.rx_poll(512)

    a.hooks.append(attack)
    a.run()
    fig = a.finish()
    # the FLR clears the pool's VFRE bit: its frames are refused by the switch (rx_no_pool)
    assert a.port_counter("rx_no_pool") + fig.attacker_drops["rx_queue_disabled"] > 0
    return fig


def never_refills() -> Figures:
    a = Arena("attacker never refills its ring (and floods itself)")
    a.raw_reset()
    RxRing(a.fn, a.evil_vm.memory, 0, count=64)  # posted once, never polled, never refilled
    a.watch.arm()  # the ring's set-up was the attacker's own CPU writing its own memory

    def attack(i: int) -> None:
        a.watch.refresh()
        a.port.wire.receive(Batch.from_frames([frame(MACS[HOSTILE])] * 100))
        a.figures.frames += 100  # the attacker's own frames count as frames in too

    a.hooks.append(attack)
    a.run()
    fig = a.finish()
    assert fig.attacker_drops["rx_packets"] == 63 and fig.attacker_drops["rx_dropped"] > 1000
    return fig


def tx_spoofing() -> Figures:
    a = Arena("TX: spoofed source MACs and VLAN tags (spoofchk on)")
    a.raw_reset()
    own, victim = mac_bytes(MACS[HOSTILE]), mac_bytes(MACS[1])
    spoofed = [frame(MACS[2], 100, src=MACS[1]), frame("ff:ff:ff:ff:ff:ff", 80, src=MACS[3])]
    tagged = frame(MACS[2], 100, src=MACS[HOSTILE])
    tagged = tagged[:12] + b"\x81\x00\x00\x0a" + tagged[12:]  # VLAN 10: not the attacker's
    legit = [frame(MACS[2], 90, src=MACS[HOSTILE])]
    seen: dict[int, list[bytes]] = {vf: [] for vf in GOOD}

    def attack(i: int) -> None:
        a.post_tx([*spoofed, tagged, *legit] * 3)
        for vf, frames in a.drain_good().items():
            seen[vf] += frames

    a.hooks.append(attack)
    a.run(bursts=6)
    fig = a.finish()
    port = a.port.stats()
    assert port["tx_spoofed"] == 6 * 3 * 3 and port["tx_packets"] == 6 * 3
    assert all(f[6:12] == own for frames in seen.values() for f in frames), "a spoofed frame got through"
    assert len(seen[2]) == 6 * 3 and not any(f[6:12] == victim for f in a.port.wire.sent.to_list())
    return fig


def tx_dma_outside_the_vm() -> Figures:
    a = Arena("TX: ring, buffers and head write-back outside the VM")
    a.raw_reset()
    attacks = [
        lambda: a.post_tx([frame(MACS[1])] * 4, ring=VM_MEM + 0x20000),  # ring not mapped
        lambda: a.post_tx([VM_MEM + 0x1000, 2**40, VM_MEM - 32, 2**64 - 64]),  # buffers not mapped
        lambda: a.post_tx([frame(MACS[2])] * 2, head_wb=(VM_MEM + 0x100) | R.TDWBAL_HEAD_WB_ENABLE),
    ]
    a.hooks.append(lambda i: attacks[i % len(attacks)]())
    a.run(bursts=9)
    fig = a.finish()
    port = a.port.stats()
    assert port["tx_dma_faults"] > 0 and port["tx_ring_faults"] > 0
    return fig


def tx_garbage_ring() -> Figures:
    a = Arena("TX: garbage descriptors, tail beyond the ring")
    a.raw_reset()
    rng = np.random.default_rng(9)

    def attack(i: int) -> None:
        mem = a.evil_vm.memory
        mem.view(0x180000, 64 * 16)[:] = rng.integers(0, 256, 64 * 16, dtype=np.uint8)
        a.post_tx([])  # programs the queue over the garbage
        a.fn.write32(R.VFTDT(0), int(rng.choice([5, 63, 64, 500, 0xFFFF])))
        a.drain_good()

    a.hooks.append(attack)
    a.run(bursts=6)
    return a.finish()


def assert_sent_only_from(a: Arena, seen: dict[int, list[bytes]], sources: set[str]) -> None:
    """What the attacker's transmit put on the wire and into the good VFs (the only transmitter
    in an Arena): only frames whose source MAC the administrator's configuration lets it use,
    and untagged (it has no VLANs)."""
    allowed = {mac_bytes(m) for m in sources}
    frames = [f for got in seen.values() for f in got] + a.port.wire.sent.to_list()
    bad = [f for f in frames if f[6:12] not in allowed or f[12:14] == b"\x81\x00"]
    assert not bad, (
        f"{len(bad)} frames the administrator's configuration does not allow, e.g. {bad[0][:16].hex()}"
    )


def untrusted_macvlan_keeps_antispoof() -> Figures:
    """Issue 17 item 4: an untrusted VF's SET_MACVLAN no longer switches its anti-spoofing off."""
    a = Arena("untrusted MACVLAN, then spoofed source MACs and VLAN tags")
    a.pf.set_vf(HOSTILE, mac="00:00:00:00:00:00")  # no administrator's MAC: MACVLANs are allowed
    a.raw_reset()
    own, extra = "02:00:00:00:05:01", "02:00:00:00:05:02"
    assert (
        a.raw_request([M.IXGBE_VF_SET_MAC_ADDR, *M.mac_to_words(mac_bytes(own))])[0]
        & M.IXGBE_VT_MSGTYPE_SUCCESS
    )
    reply = a.raw_request([M.IXGBE_VF_SET_MACVLAN | 1 << 16, *M.mac_to_words(mac_bytes(extra))])
    assert reply[0] & M.IXGBE_VT_MSGTYPE_SUCCESS
    assert a.pf.vf_config(HOSTILE)["spoofchk"] is True
    a.attacker_sources = {own, extra}
    spoofed = [frame(MACS[2], 100, src=MACS[1]), frame("ff:ff:ff:ff:ff:ff", 80, src=MACS[3])]
    tagged = frame(MACS[2], 100, src=extra)
    tagged = tagged[:12] + b"\x81\x00\x00\x64" + tagged[12:]  # VLAN 100: not the attacker's
    legit = [frame(MACS[2], 90, src=own), frame(MACS[3], 90, src=extra)]
    seen: dict[int, list[bytes]] = {vf: [] for vf in GOOD}

    def attack(i: int) -> None:
        a.post_tx([*spoofed, tagged, *legit] * 2)
        for vf, frames in a.drain_good().items():
            seen[vf] += frames

    a.hooks.append(attack)
    a.run(bursts=6)
    fig = a.finish()
    assert_sent_only_from(a, seen, a.attacker_sources)
    assert len(seen[2]) == len(seen[3]) == 6 * 2, "the MACVLAN's own frames still go"
    assert a.port.stats()["tx_spoofed"] == 6 * 2 * 3
    return fig


def mac_squatting() -> Figures:
    """Issue 17 item 5: a VF takes MAC X, then the administrator gives X to VF 1: the
    administrator wins, the squatter's filter goes (counted) and it must reset without X."""
    a = Arena("MAC squatting: the administrator gives the squatted MAC away")
    a.pf.set_vf(HOSTILE, mac="00:00:00:00:00:00")
    a.raw_reset()
    squatted = "02:00:00:00:05:55"
    words = [M.IXGBE_VF_SET_MAC_ADDR, *M.mac_to_words(mac_bytes(squatted))]
    assert a.raw_request(words)[0] & M.IXGBE_VT_MSGTYPE_SUCCESS
    a.pf.set_vf(1, mac=squatted)  # "Reload the VF driver": VF 1's guest does
    a.good[1].down()
    a.good[1].up()
    a.clock.advance(100_000_000)
    a.macs[1] = squatted
    a.others_before = a.other_state()  # the administrator's change is the new configuration
    assert a.pf.vf_counters(HOSTILE)["evicted_macs"] == 1 and a.good[1].mac == squatted
    reply = a.raw_request([M.IXGBE_VF_GET_QUEUES])
    assert reply[0] & M.IXGBE_VT_MSGTYPE_FAILURE, "the squatter's next request is NACKed"
    a.raw_reset()
    assert a.raw_request(words)[0] & M.IXGBE_VT_MSGTYPE_FAILURE, "and it cannot take X back"
    a.run()
    return a.finish()


def trust_revoked() -> Figures:
    """Issue 17 item 6: a trusted VF's MACVLAN for VF 1's MAC and its ALLMULTI go when the
    administrator turns trust off, even though the VF ignores the ping and never resets."""
    a = Arena("trust revoked, the VF ignoring the reset ping")
    a.pf.set_vf(HOSTILE, trust=True)
    a.raw_reset()
    a.raw_request([M.IXGBE_VF_API_NEGOTIATE, int(M.MboxApi.API_13)])
    words = [M.IXGBE_VF_SET_MACVLAN | 1 << 16, *M.mac_to_words(mac_bytes(MACS[1]))]
    assert a.raw_request(words)[0] & M.IXGBE_VT_MSGTYPE_SUCCESS, "trusted: upstream allows it"
    a.raw_request([M.IXGBE_VF_UPDATE_XCAST_MODE, int(M.XcastMode.ALLMULTI)])
    assert a.dev.state.vmolr[HOSTILE] & R.VMOLR_MPE
    a.pf.set_vf(HOSTILE, trust=False)  # the attacker never reads the ping nor resets
    cfg = a.pf.vf_config(HOSTILE)
    assert cfg["xcast_mode"] == "MULTI" and cfg["spoofchk"] is True
    assert not a.dev.state.vmolr[HOSTILE] & R.VMOLR_MPE
    assert not any(e is not None and e[0] == HOSTILE for e in a.pf.vf_macvlans)
    a.run()
    return a.finish()


SCENARIOS = [
    baseline,
    mailbox_flood,
    messages_before_reset,
    oversize_and_truncated_messages,
    writes_outside_the_bar,
    ring_base_outside_the_vm,
    descriptors_outside_the_vm,
    overlapping_rings,
    tail_beyond_the_ring,
    reset_storm,
    flr_during_traffic,
    never_refills,
    tx_spoofing,
    tx_dma_outside_the_vm,
    tx_garbage_ring,
    untrusted_macvlan_keeps_antispoof,
    mac_squatting,
    trust_revoked,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_a_hostile_vf_hurts_only_itself(scenario) -> None:
    fig = scenario()
    assert fig.other_lost == 0 and fig.unaccounted == 0 and fig.frames > 0


def test_flood_latency_is_bounded() -> None:
    """A well-behaved VF's request under a mailbox flood waits at most a few of its own polls."""
    quiet, flood = baseline(), mailbox_flood()
    assert flood.service_p99_us <= 4 * max(quiet.service_p99_us, 2.0), (quiet.service_ns, flood.service_ns)
    assert flood.mbx_p99_us <= 4 * max(quiet.mbx_p99_us, 500.0), (quiet.mbx_p99_us, flood.mbx_p99_us)


def test_dma_watch_catches_a_stray_write() -> None:
    """The memory guard is not decorative: a byte outside every ring and buffer is reported."""
    a = Arena("planted stray write")
    a.run(bursts=2)
    a.good[1].memory.buffer[VM_MEM - 1] ^= 0xFF
    msgs = a.watch.check()
    assert msgs and "outside any ring or posted buffer" in msgs[0]


def main() -> None:  # pragma: no cover - the figures for RESULTS.md
    rows = [s() for s in SCENARIOS]
    print(
        "| scenario | frames | unaccounted | frames for other VFs | lost "
        "| good-VF REQ->ACK p99 (us) | good-VF transaction p99 (us) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for f in rows:
        print(
            f"| {f.name} | {f.frames} | {f.unaccounted} | {f.other_selected} | {f.other_lost} "
            f"| {f.service_p99_us:.1f} | {f.mbx_p99_us:.0f} |"
        )
    print(f"total frames {sum(f.frames for f in rows)}, scenarios {len(rows)}")


if __name__ == "__main__":  # pragma: no cover
    main()


def test_a_vf_cannot_exhaust_the_shared_vlan_table() -> None:
    """Upstream ixgbe lets one VF take all 63 shared VLVF entries; the model caps untrusted VFs
    (PfDriver.UNTRUSTED_VF_MAX_VLANS, as ice does), so the good VFs can still add theirs."""
    a = Arena("VLVF exhaustion")
    a.raw_reset()
    accepted = sum(
        bool(a.raw_request([M.IXGBE_VF_SET_VLAN | 1 << 16, vid])[0] & M.IXGBE_VT_MSGTYPE_SUCCESS)
        for vid in range(100, 200)
    )
    assert accepted == a.pf.UNTRUSTED_VF_MAX_VLANS
    a.good[1].add_vlan(42)  # a VLVF entry is still there for the good VF


def test_a_vf_cannot_snoop_another_vfs_unicast_through_macvlan() -> None:
    """Upstream ixgbe gives a MACVLAN filter any free RAR, even another VF's MAC, and the attacker
    then gets copies of that VF's unicast; the model refuses an untrusted VF another pool's MAC."""
    a = Arena("MACVLAN snooping")
    a.pf.set_vf(HOSTILE, mac="00:00:00:00:00:00")  # the administrator did not set the attacker's MAC
    a.raw_reset()
    ring = RxRing(a.fn, a.evil_vm.memory, 0, count=64)
    w1, w2 = M.mac_to_words(mac_bytes(MACS[1]))
    reply = a.raw_request([M.IXGBE_VF_SET_MACVLAN | 1 << 16, w1, w2])
    assert reply[0] & M.IXGBE_VT_MSGTYPE_FAILURE
    reply = a.raw_request([M.IXGBE_VF_SET_MAC_ADDR, w1, w2])  # nor as its own address
    assert reply[0] & M.IXGBE_VT_MSGTYPE_FAILURE
    result = a.port.wire.receive(Batch.from_frames([frame(MACS[1])]))
    assert result.pools(0) == [1]
    assert len(ring.poll(64)) == 0


def _raw_ask(port, vf: int, words: list[int]) -> int:
    """One request from an unbound VF through its BAR0 (lock, write, wait, read, ACK): word 0 back."""
    mbx = M.VfMailbox(port.vf(vf), port.device.clock)
    mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT
    return mbx.transact(M.Message.from_words(words), R.VFMAILBOX_SIZE).word0


def _raw_ready(port, vf: int) -> None:
    fn = port.vf(vf)
    fn.write32(R.VFCTRL, R.CTRL_RST)
    mbx = M.VfMailbox(fn, port.device.clock)
    mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT
    mbx.write([M.IXGBE_VF_RESET])
    port.device.clock.advance(10_000_000)
    mbx.read_posted(M.IXGBE_VF_PERMADDR_MSG_LEN)


def test_colluding_vfs_cannot_exhaust_the_vlvf_table() -> None:
    """Issue 17 item 7: 8 untrusted VFs x 8 VLANs would fill the 63 VLVF entries; the PF keeps
    every VF's share and the administrator's reserve, so a good VF and the admin still get theirs,
    and the frames on those VLANs reach exactly the VFs the configuration says."""
    from sriov.drivers.pf import PfDriver

    host = Host(seed=3)
    port = host.add_port("eth0")
    port.pf.set_numvfs(9)
    for vf in range(8):
        _raw_ready(port, vf)
    granted = 0
    for vf in range(8):
        for k in range(8):
            word0 = _raw_ask(port, vf, [M.IXGBE_VF_SET_VLAN | 1 << 16, 1000 + 8 * vf + k])
            granted += bool(word0 & M.IXGBE_VT_MSGTYPE_SUCCESS)
    assert 8 * 6 <= granted < 8 * 8, "each colluder got its share, not the whole table"
    vm = host.add_vm("good", memory=VM_MEM)
    good = host.assign(port.vf(8), vm)
    good.up()
    for vid in range(10, 16):
        good.add_vlan(vid)  # its share: raises if the PF refuses
    port.pf.set_vf(0, vlan=77)  # and the administrator's port VLAN on a colluder
    assert port.pf.vf_config(0)["vlan"] == 77
    free = sum(1 for i in range(1, R.NUM_VLVF) if not port.device.pf.read32(R.VLVF(i)))
    assert free >= PfDriver.ADMIN_RESERVED_VLVF - 1
    tagged = frame(good.mac, 100)
    tagged = tagged[:12] + b"\x81\x00\x00\x0c" + tagged[12:]  # VLAN 12: the good VF's
    result = port.wire.receive(Batch.from_frames([tagged]))
    assert result.pools(0) == [8]


def test_colluding_vfs_cannot_exhaust_the_macvlan_list_and_a_refusal_raises() -> None:
    """Issue 17 item 7: 6 untrusted VFs x 16 MACVLANs would fill the shared list (104 slots with
    8 VFs); each keeps 13, so a good VF's 13 fit, and one more is refused *to the caller*."""
    from sriov.errors import MailboxError

    host = Host(seed=4)
    port = host.add_port("eth0")
    port.pf.set_numvfs(8)
    for vf in range(6):
        _raw_ready(port, vf)
        for k in range(16):
            mac = bytes([2, 0x66, 0, vf, 0, k])
            _raw_ask(port, vf, [M.IXGBE_VF_SET_MACVLAN | (k + 1) << 16, *M.mac_to_words(mac)])
    held = [sum(1 for e in port.pf.vf_macvlans if e is not None and e[0] == vf) for vf in range(6)]
    assert held == [13] * 6
    vm = host.add_vm("good", memory=VM_MEM)
    good = host.assign(port.vf(7), vm)
    good.up()
    mine = [f"02:77:00:00:00:{k:02x}" for k in range(13)]
    good.set_unicast(mine)
    assert [M.format_mac(m) for m in good.uc_addrs] == mine
    with pytest.raises(MailboxError, match="02:77:00:00:00:0d"):
        good.set_unicast([*mine, "02:77:00:00:00:0d"])
    result = port.wire.receive(Batch.from_frames([frame(m) for m in mine]))
    assert all(result.pools(i) == [7] for i in range(13))


def test_the_leak_invariant_catches_a_squatter(monkeypatch) -> None:
    """The administrator's-configuration check is not decorative: with the eviction planted
    out, the squatter's copies of VF 1's unicast are reported."""
    from sriov.drivers.pf import PfDriver

    monkeypatch.setattr(PfDriver, "_evict_mac", lambda self, mac, owner: None)
    a = Arena("planted: no eviction")
    a.pf.set_vf(HOSTILE, mac="00:00:00:00:00:00")
    a.raw_reset()
    squatted = "02:00:00:00:05:55"
    a.raw_request([M.IXGBE_VF_SET_MAC_ADDR, *M.mac_to_words(mac_bytes(squatted))])
    a.pf.set_vf(1, mac=squatted)
    a.good[1].down()
    a.good[1].up()
    a.clock.advance(100_000_000)
    a.macs[1] = squatted
    a.others_before = a.other_state()
    a.run(bursts=2)
    with pytest.raises(AssertionError, match="also went elsewhere"):
        a.finish()
