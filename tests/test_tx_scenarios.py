"""Transmit scenarios on the full model (issue 5): VMs send through their VF drivers (TxRing, tail
write = doorbell), the PF driver configures anti-spoofing and port VLANs as ``ip link`` does, and
the frames show up in other VMs' receive rings, on the wire, or in the drop counters.

Run on the compiled kernels and on the golden models (``impl`` fixture), with the counters
checked for conservation after every scenario.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import eth

import sriov
from sriov.batch import Batch
from sriov.drivers.txring import TxRing
from sriov.hw import regs as R
from sriov.wire import Wire, rx_conservation_errors, tx_conservation_errors

BCAST = "ff:ff:ff:ff:ff:ff"


class Rig:
    """A host with one or two ports; on each, ``vfs`` VFs each given to its own VM and brought up."""

    def __init__(
        self, impl, vfs: int = 3, ports: int = 1, settings: dict | None = None, pf_mtu: int | None = None
    ) -> None:
        """``settings[i]``: `set_vf` keywords for VF ``i`` (on every port); ``pf_mtu``: the PF's MTU."""
        vf_settings = settings or {}
        self.host = sriov.Host(seed=1)
        self.ports = []
        self.nics: list[list] = []
        for p in range(ports):
            port = self.host.add_port(f"eth{p}")
            port._wire = Wire(port.device, impl)  # the implementation under test (installs the doorbell)
            if pf_mtu is not None:
                port.pf.set_mtu(pf_mtu)
            port.pf.set_numvfs(vfs)
            nics = []
            for i in range(vfs):
                port.pf.set_vf(i, mac=f"02:00:00:00:0{p}:1{i}", **vf_settings.get(i, {}))
                vm = self.host.add_vm(f"vm{p}{i}", memory=8 << 20)
                nic = self.host.assign(port.vf(i), vm)
                nic.up()
                nics.append(nic)
            self.ports.append(port)
            self.nics.append(nics)
        self.host.clock.advance(20_000_000)  # link up everywhere
        assert all(n.link_up for row in self.nics for n in row)

    @property
    def port(self):
        return self.ports[0]

    def nic(self, i: int, port: int = 0):
        return self.nics[port][i]

    def send(self, i: int, frames: list[bytes], port: int = 0) -> int:
        queued = self.nic(i, port).transmit(Batch.from_frames(frames))
        self.host.clock.advance(100_000)
        return queued

    def received(self, i: int, port: int = 0) -> list[bytes]:
        return self.nic(i, port).rx_poll(256).to_list()

    def stat(self, name: str, port: int = 0) -> int:
        return self.ports[port].stats()[name]

    def check(self) -> None:
        for port in self.ports:
            assert tx_conservation_errors(port.device) == []
            assert rx_conservation_errors(port.device) == []


@pytest.fixture
def rig(impl):
    return lambda **kw: Rig(impl, **kw)


def test_vf_to_vf_on_one_port_never_touches_the_wire(rig) -> None:
    r = rig(vfs=3)
    a, b = r.nic(0), r.nic(1)
    frames = [eth(b.mac, size, src=a.mac) for size in (60, 64, 200, 1514)]
    assert r.send(0, frames) == 4
    assert r.received(1) == frames  # byte for byte, in order
    assert r.received(2) == [] and r.received(0) == []
    assert len(r.port.wire.sent) == 0 and r.port.wire.sent_total == 0
    assert r.stat("tx_local_packets") == 4 and r.stat("tx_wire_packets") == 0
    assert a.stats()["tx_packets"] == 4 and b.stats()["rx_packets"] == 4  # VFGPTC / VFGPRC
    assert a.tx_ring.completed == 4 and a.tx_ring.in_flight == 0  # DD written back, reclaimed
    r.check()


def test_a_short_frame_is_padded_to_60_bytes(rig) -> None:
    r = rig(vfs=2)
    frame = eth(r.nic(1).mac, 42, src=r.nic(0).mac)
    r.send(0, [frame])
    assert r.received(1) == [frame + bytes(18)]
    r.check()


@pytest.mark.parametrize("spoofchk", [True, False])
def test_a_spoofed_source_mac_is_dropped_only_with_spoofchk_on(rig, spoofchk: bool) -> None:
    r = rig(vfs=2, settings={0: {"spoofchk": spoofchk}})
    a, b = r.nic(0), r.nic(1)
    before_ssvpc = r.port.pf.function.read32(R.SSVPC)  # read-to-clear
    spoofed = eth(b.mac, 64, src="02:00:00:00:99:99")
    honest = eth(b.mac, 64, src=a.mac)
    assert r.send(0, [spoofed, honest]) == 2  # the driver queues both; the NIC decides
    got = r.received(1)
    if spoofchk:
        assert got == [honest]
        assert r.stat("tx_spoofed") == 1 and r.port.device.state.pool_counters[0].any()
        assert r.port.pf.function.read32(R.SSVPC) == 1  # the PF sets VMECM for every VF
    else:
        assert got == [spoofed, honest]
        assert r.stat("tx_spoofed") == 0 and r.port.pf.function.read32(R.SSVPC) == 0
    assert before_ssvpc == 0
    assert a.tx_ring.completed == 2  # a dropped frame completes like a sent one
    r.check()


def test_a_vf_with_a_port_vlan_must_send_untagged_and_gets_the_tag_inserted(rig) -> None:
    r = rig(vfs=3, ports=2, settings={0: {"vlan": 100}, 1: {"vlan": 100}})
    a, b, c = r.nic(0), r.nic(1), r.nic(2)
    r.host.connect(r.ports[0], r.ports[1])
    tagged = eth(b.mac, 64, src=a.mac, vid=100)
    untagged = eth(b.mac, 64, src=a.mac)
    r.send(0, [tagged, untagged])
    assert r.stat("tx_spoofed") == 1  # VLAN anti-spoof: no tag of its own with a port VLAN
    # VF 1 (same port VLAN, VLAN strip on) gets the untagged frame; the VLAN was inserted by the NIC
    assert r.received(1) == [untagged]
    assert b.rx_ring.last_vlan.tolist() == [100]
    # a frame for a VF outside VLAN 100 does not reach it, it leaves on the wire tagged
    r.send(0, [eth(c.mac, 64, src=a.mac)])
    assert r.received(2) == []
    wire = r.port.wire.sent.to_list()
    assert len(wire) == 1 and wire[0][12:16] == bytes.fromhex("81000064") and len(wire[0]) == 68
    r.check()


def test_a_macvlan_address_turns_anti_spoofing_off_for_that_vf(rig) -> None:
    r = rig(vfs=2, settings={0: {"trust": True}})  # the admin set its MAC: MACVLANs need trust (§3.3)
    a, b = r.nic(0), r.nic(1)
    extra = "02:00:00:00:77:77"
    frame = eth(b.mac, 64, src=extra)
    r.send(0, [frame])
    assert r.received(1) == [] and r.stat("tx_spoofed") == 1
    a.set_unicast([extra])  # SET_MACVLAN: the PF clears the VF's MAC and VLAN anti-spoof bits (spec §3.3)
    r.host.clock.advance(1_000_000)
    spoof = r.port.pf.function.read32(R.PFVFSPOOF(0))
    assert not spoof & 1 and not spoof & (1 << R.SPOOF_VLANAS_SHIFT)
    r.send(0, [frame, eth(b.mac, 64, src="02:00:00:00:66:66")])
    assert len(r.received(1)) == 2  # any source now passes
    assert r.stat("tx_spoofed") == 1
    r.check()


def test_broadcast_reaches_the_other_vfs_the_pf_and_the_wire_not_the_sender(rig) -> None:
    r = rig(vfs=3)
    frame = eth(BCAST, 100, src=r.nic(0).mac)
    r.send(0, [frame])
    assert r.received(1) == [frame] and r.received(2) == [frame]
    assert r.received(0) == []
    assert r.port.wire.sent.to_list() == [frame]
    assert r.port.pf.rx_poll(16).to_list() == [frame]  # the PF's pool has BAM too
    assert r.stat("tx_flooded") == 1 and r.stat("tx_local_copies") == 3
    r.check()


def test_two_ports_back_to_back_deliver_vm_to_vm(rig) -> None:
    r = rig(vfs=2, ports=2)
    r.host.connect(r.ports[0], r.ports[1])
    a, far = r.nic(0, port=0), r.nic(1, port=1)
    frames = [eth(far.mac, 64, src=a.mac), eth(far.mac, 1000, src=a.mac)]
    r.send(0, frames)
    assert len(r.ports[0].wire.sent) == 2  # unknown on port 0: out on the wire
    assert r.received(1, port=1) == frames
    assert r.stat("rx_packets", port=1) == 2
    # and back: the far VM answers through port 1
    r.send(1, [eth(a.mac, 64, src=far.mac)], port=1)
    assert r.received(0, port=0) == [eth(a.mac, 64, src=far.mac)]
    r.check()


def test_a_vf_with_transmit_disabled_sends_nothing(rig) -> None:
    r = rig(vfs=2)
    a, b = r.nic(0), r.nic(1)
    pf = r.port.pf.function
    pf.write32(R.VFTE(0), pf.read32(R.VFTE(0)) & ~1)  # the PF turns off VF 0's transmit enable
    assert r.send(0, [eth(b.mac, 64, src=a.mac)]) == 1
    assert r.received(1) == [] and r.stat("tx_disabled") == 1
    r.check()


def test_a_full_ring_stops_the_batch_and_reclaims_later(impl) -> None:
    r = Rig(impl, vfs=2)
    a, b = r.nic(0), r.nic(1)
    ring = a.tx_ring
    ring.down()  # the device no longer takes frames: they pile up in the ring
    ring.running = True  # the driver still queues (as a stalled NIC would leave it)
    frames = [eth(b.mac, 64, src=a.mac)] * (ring.count + 10)
    queued = ring.transmit(Batch.from_frames(frames))
    assert queued == ring.count - 1 and ring.tx_busy == 1
    assert r.received(1) == []
    a.function.write32(R.VFTXDCTL(0), R.TXDCTL_ENABLE)  # re-enabled: the next tail write sends them
    r.port.wire.process_tx()
    assert len(r.received(1)) == ring.count - 1
    ring.clean()
    assert ring.in_flight == 0 and ring.completed == ring.count - 1
    r.check()


def test_a_descriptor_pointing_outside_the_vm_is_a_dma_fault(impl) -> None:
    r = Rig(impl, vfs=2)
    a, b = r.nic(0), r.nic(1)
    ring = a.tx_ring
    r.send(0, [eth(b.mac, 64, src=a.mac)])
    assert len(r.received(1)) == 1
    # the guest driver writes a descriptor whose buffer lies beyond its memory
    d = ring._ntu
    words = ring._words
    words[d] = (
        0,
        0x40,
        R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_EOP | R.ADVTXD_DCMD_RS | 64,
        0,
    )
    ring._watch[d] = d
    ring._ntu = (d + 1) % ring.count
    faults = r.host.iommu.fault_total[0]
    a.function.write32(R.VFTDT(0), ring._ntu)
    assert r.stat("tx_dma_faults") == 1 and len(r.port.wire.sent) == 0
    assert r.host.iommu.faults()[-1].function == a.function.name
    assert r.host.iommu.fault_total[0] == faults + 1
    assert ring.clean() == 1  # completed (dropped) all the same
    r.send(0, [eth(b.mac, 64, src=a.mac)])  # the VF goes on working
    assert len(r.received(1)) == 1
    r.check()


def test_jumbo_frames_span_descriptors_vf_to_vf(rig) -> None:
    r = rig(vfs=2, pf_mtu=9000)  # 82599: VFs may go jumbo only when the PF is
    a, b = r.nic(0), r.nic(1)
    for nic in (a, b):
        nic.set_mtu(9000)
    r.host.clock.advance(1_000_000)
    frame = eth(b.mac, 9014, src=a.mac)
    before = a.tx_ring._ntu
    r.send(0, [frame])
    assert (a.tx_ring._ntu - before) % a.tx_ring.count == 5  # 9014 bytes in 2 KiB buffers
    assert r.received(1) == [frame]
    r.check()


def test_what_left_on_the_wire_can_be_written_to_pcap(rig, tmp_path) -> None:
    r = rig(vfs=2)
    frames = [eth("02:aa:00:00:00:01", 64 + i, src=r.nic(0).mac) for i in range(5)]
    r.send(0, frames)
    path = tmp_path / "out.pcap"
    sriov.write_pcap(str(path), r.port.wire.sent)
    assert sriov.read_pcap(str(path)).to_list() == frames
    r.port.wire.clear_sent()
    assert len(r.port.wire.sent) == 0 and r.port.wire.sent_total == 5


def test_the_wire_grows_to_take_a_large_burst(rig) -> None:
    r = rig(vfs=2)
    frames = [eth("02:aa:00:00:00:01", 1514, src=r.nic(0).mac)] * 200
    for _ in range(8):
        assert r.send(0, frames) == 200
    assert len(r.port.wire.sent) == 1600
    assert r.port.wire.sent.to_list()[-1] == frames[0]
    r.check()


def test_the_pf_transmits_through_its_own_pool(impl) -> None:
    r = Rig(impl, vfs=2)
    port = r.port
    assert port.pf.tx_ring.queue == port.device.vf_queue(port.pf.num_vfs, 0)  # the PF pool's queue
    to_vf = eth(r.nic(1).mac, 64, src=port.pf.mac)
    out = eth("02:aa:00:00:00:01", 64, src=port.pf.mac)
    assert port.pf.transmit(Batch.from_frames([to_vf, out])) == 2
    assert r.received(1) == [to_vf]  # the VEB delivers from the PF pool to VF 1
    assert port.wire.sent.to_list() == [out]
    # a second ring on the same queue, driven by hand through the PF BAR, works the same way
    ring = TxRing(port.pf.function, r.host.memory, port.pf.tx_ring.queue, count=64)
    assert ring.transmit(Batch.from_frames([to_vf])) == 1
    assert r.received(1) == [to_vf]
    r.check()


def test_tail_writes_before_the_wire_exists_are_sent_when_it_is_created() -> None:
    host = sriov.Host(seed=2)
    port = host.add_port("eth0")
    port.device.tx_doorbell = None  # as if the wire did not exist yet
    port._wire = None
    port.pf.set_numvfs(1)
    port.pf.set_vf(0, mac="02:00:00:00:00:10")
    nic = host.assign(port.vf(0), host.add_vm("vm", memory=8 << 20))
    nic.up()
    host.clock.advance(20_000_000)
    nic.transmit(Batch.from_frames([eth("02:aa:00:00:00:01", 64, src=nic.mac)]))
    assert nic.tx_ring.completed == 0  # nobody ran the transmit engine
    assert len(port.wire.sent) == 1  # creating the wire picks the frame up
    assert np.array_equal(port.wire.sent.lengths, [64])


def test_a_local_delivery_interrupts_the_receiver_and_a_completion_the_sender(rig) -> None:
    r = rig(vfs=3)
    a, b, c = r.nic(0), r.nic(1), r.nic(2)
    irq = {n.name: n.interrupts()[f"{n.name}-TxRx-0"] for n in (a, b, c)}
    r.send(0, [eth(b.mac, 64, src=a.mac)])
    after = {n.name: n.interrupts()[f"{n.name}-TxRx-0"] for n in (a, b, c)}
    assert after[b.name] > irq[b.name]  # its RX cause, through the same hook as received frames
    assert after[a.name] > irq[a.name]  # the TX completion cause of the sender's queue
    assert after[c.name] == irq[c.name]
    r.check()


def test_a_vm_too_small_for_a_transmit_ring_still_receives() -> None:
    host = sriov.Host(seed=3)
    port = host.add_port("eth0")
    port.pf.set_numvfs(2)
    port.pf.set_vf(0, mac="02:00:00:00:00:10")
    nic = host.assign(port.vf(0), host.add_vm("small", memory=1280 << 10))  # room for the RX ring only
    nic.up()
    host.clock.advance(20_000_000)
    assert nic.tx_ring is None and any("no transmit ring" in m for m in nic.messages)
    with pytest.raises(sriov.DriverStateError, match="no transmit ring"):
        nic.transmit(Batch.from_frames([eth(BCAST, 64, src=nic.mac)]))
    port.wire.receive(Batch.from_frames([eth(nic.mac, 64)]))
    assert len(nic.rx_poll(8)) == 1
