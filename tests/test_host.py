"""The hypervisor: ports, VMs, VFIO-style assignment, load order, exports."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import sriov
from sriov.drivers.vf import MBX_VECTOR, VfNic
from sriov.errors import ConfigError, DmaFault, DriverStateError
from sriov.host import Host
from sriov.hw import regs as R


@pytest.fixture
def host() -> Host:
    h = Host(seed=3, irq_latency_ns=2_000)
    h.add_port("eth0").pf.set_numvfs(4)
    return h


def test_api_example_from_the_docs_runs() -> None:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_mtu(9000)  # 82599: VF jumbo frames need a jumbo PF
    port.pf.set_numvfs(8)
    port.pf.set_vf(0, mac="02:00:00:00:00:10", vlan=100, qos=0, spoofchk=True, trust=False, state="auto")
    vm = host.add_vm("vm0", memory=64 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    host.clock.advance(1_000_000_000)
    assert (nic.mac, nic.link_up, nic.mtu) == ("02:00:00:00:00:10", True, 1500)
    with pytest.raises(sriov.MailboxError):
        nic.add_vlan(10)  # a port VLAN is set: the PF refuses
    nic.set_mtu(9000)
    nic.set_multicast(["01:00:5e:00:00:01"])
    assert nic.set_rx_mode(promisc=False, allmulti=True) is not None
    assert port.vf(3).device_id == 0x10ED
    assert isinstance(port.pf.mailbox_log(0)[0], object) and "IXGBE_VF_RESET" in str(port.pf.mailbox_log(0))


def test_exports() -> None:
    for name in ("Host", "Port", "Vm", "PfDriver", "VfNic", "SriovError", "Device82599"):
        assert name in sriov.__all__ and hasattr(sriov, name)


def test_host_parts(host: Host) -> None:
    assert host.clock.now >= 0 and host.memory.size == 64 << 20
    assert host.ports["eth0"].device.irq_latency_ns == 2_000
    with pytest.raises(ConfigError, match="already exists"):
        host.add_port("eth0")
    with pytest.raises(ConfigError, match="unicast"):
        host.add_port("eth1", mac="01:00:00:00:00:01")
    p2 = host.add_port("eth1")
    assert p2.pf.mac != host.ports["eth0"].pf.mac and p2.device.pf.rid != host.ports["eth0"].device.pf.rid
    with pytest.raises(ConfigError, match="seed"):
        Host(seed=-1)


def test_add_vm_memory_is_one_preallocated_buffer(host: Host) -> None:
    vm = host.add_vm("vm", memory=8 << 20)
    assert isinstance(vm.memory.buffer, np.ndarray) and vm.memory.buffer.nbytes == 8 << 20
    with pytest.raises(ConfigError, match="multiple of 4096"):
        host.add_vm("bad", memory=1000)
    with pytest.raises(ConfigError, match="already exists"):
        host.add_vm("vm")


def test_assign_maps_guest_memory_into_the_vf_domain(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=4 << 20)
    other = host.add_vm("other", memory=4 << 20)
    fn = port.vf(1)
    nic = host.assign(fn, vm)
    assert isinstance(nic, VfNic) and nic.function is fn
    vm.memory.buffer[0x2000:0x2004] = [1, 2, 3, 4]
    assert fn.domain.read(0x2000, 4) == b"\x01\x02\x03\x04", "IOVA = guest-physical address"
    fn.domain.write(0x3000, b"\xaa")
    assert vm.memory.buffer[0x3000] == 0xAA and other.memory.buffer[0x3000] == 0
    with pytest.raises(DmaFault):
        fn.domain.read(4 << 20, 4)  # past the VM's RAM
    assert port.vf(2).domain.lookup(0x2000, False) != fn.domain.lookup(0x2000, False)


def test_assign_routes_msix_to_the_vm_and_the_driver(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=4 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    assert port.vf(0).read32(R.VTIVAR_MISC) == MBX_VECTOR | R.IVAR_ALLOC_VAL
    before = vm.injected.get(f"{nic.name}-{MBX_VECTOR}", 0)
    port.device.set_link(False)
    host.clock.advance(100_000_000)
    assert vm.injected[f"{nic.name}-{MBX_VECTOR}"] > before and not nic.link_up


def test_assign_refusals(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=4 << 20)
    host.assign(port.vf(0), vm)
    with pytest.raises(DriverStateError, match="already assigned"):
        host.assign(port.vf(0), vm)
    with pytest.raises(ConfigError, match="not a VF"):
        host.assign(port.device.pf, vm)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a VM"):
        host.assign(port.vf(1), Host().add_vm("elsewhere", memory=1 << 20))
    with pytest.raises(ConfigError, match="no VF 7"):
        port.vf(7)


def test_unassign_returns_the_vf_and_then_sriov_can_be_disabled(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=4 << 20)
    nic = host.assign(port.vf(2), vm)
    nic.up()
    with pytest.raises(DriverStateError, match="unassign them first"):
        port.pf.set_numvfs(0)
    with pytest.raises(DriverStateError):
        host.remove_port("eth0")
    assert port.pf.num_vfs == 4 and "eth0" in host.ports
    host.unassign(nic)
    assert not nic.is_up and port.pf.assigned_vfs() == [] and vm.nics == []
    with pytest.raises(DmaFault):
        port.vf(2).domain.read(0x2000, 4)
    with pytest.raises(ConfigError, match="not assigned"):
        host.unassign(nic)
    port.pf.set_numvfs(0)
    assert port.device.num_vfs == 0
    host.remove_port("eth0")
    assert "eth0" not in host.ports


def test_reassign_after_unassign(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=8 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    host.unassign(nic)
    again = host.assign(port.vf(0), vm)
    again.up()
    host.clock.advance(1_000_000_000)
    assert again.link_up


def test_port_wire_is_the_datapath_wire_when_built(host: Host) -> None:
    port = host.ports["eth0"]
    if importlib.util.find_spec("sriov.wire") is None:
        with pytest.raises(DriverStateError, match=r"sriov\.wire"):
            _ = port.wire
        return
    from sriov.wire import Wire

    assert isinstance(port.wire, Wire) and port.wire is port.wire


def test_port_stats_include_the_pf_mailbox_counters(host: Host) -> None:
    port = host.ports["eth0"]
    vm = host.add_vm("vm", memory=4 << 20)
    host.assign(port.vf(0), vm).up()
    stats = port.stats()
    assert stats["rx_frames_in"] == 0 and stats["mbx_requests"] >= 9 and stats["mbx_reset_msgs"] == 1


# -- end to end: what the drivers program is what the datapath switches on ----------------------
def _frame(dst: str, vlan: int | None = None) -> bytes:
    tag = b"" if vlan is None else b"\x81\x00" + vlan.to_bytes(2, "big")
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex("020000009999") + tag + b"\x08\x00" + bytes(46)


@pytest.mark.skipif(
    importlib.util.find_spec("sriov.wire") is None or importlib.util.find_spec("sriov.drivers.rings") is None,
    reason="the datapath (sriov.wire, sriov.drivers.rings) is not in this build",
)
def test_frames_reach_the_pools_the_drivers_configured() -> None:
    from sriov.batch import Batch

    host = Host(seed=4)
    port = host.add_port("eth0")
    port.pf.set_numvfs(4)
    port.pf.set_vf(1, vlan=100)
    vm = host.add_vm("vm", memory=16 << 20)
    a, b = host.assign(port.vf(0), vm), host.assign(port.vf(1), vm)
    for nic in (a, b):
        nic.up()
    a.set_multicast(["01:00:5e:00:00:fb"])
    a.add_vlan(7)
    host.clock.advance(1_000_000_000)
    pf_mac = ":".join(f"{x:02x}" for x in port.pf.mac)
    frames = [
        _frame(a.mac),  # 0: VF 0's unicast
        _frame(b.mac),  # 1: VF 1 has a port VLAN (no AUPE): untagged -> the default pool, the PF
        _frame(b.mac, vlan=100),  # 2: ... tagged with its port VLAN they are
        _frame("ff:ff:ff:ff:ff:ff"),  # 3: broadcast: VF 0 and the PF (VF 1 only in VLAN 100)
        _frame("01:00:5e:00:00:fb"),  # 4: VF 0's multicast group (MTA hash + ROMPE)
        _frame(a.mac, vlan=7),  # 5: VF 0's VLAN
        _frame(pf_mac),  # 6: the PF
    ]
    result = port.wire.receive(Batch.from_frames(frames))
    assert [result.pools(i) for i in range(len(frames))] == [[0], [4], [1], [0, 4], [0], [0], [4]]
    assert len(a.rx_poll(64)) == 4 and len(b.rx_poll(64)) == 1 and len(port.pf.rx_poll(64)) == 3
