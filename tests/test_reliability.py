"""What an independent attack suite broke (issue 17), items 10-14: one test each.

Threads and concurrent guest writers (items 1-3, 8) are in tests/test_concurrent_guest.py and
tests/test_threads.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from sriov import Host, SriovError
from sriov.batch import Batch
from sriov.drivers.mailbox import parse_mac
from sriov.traffic.capture import read_pcap
from sriov.traffic.synth import TrafficProfile, generate
from sriov.wire import Wire
from tests.conftest import IMPLEMENTATIONS, RxRig, eth


def up_nic(host: Host, port, vf: int = 0, mac: str = "02:00:00:00:01:00"):
    port.pf.set_vf(vf, mac=mac)
    nic = host.assign(port.vf(vf), host.add_vm(f"vm{vf}", memory=8 << 20))
    nic.up()
    host.clock.advance(1_000_000_000)
    return nic


# -- item 10: set_numvfs toggles do not leak the PF's rings -------------------------------------
def test_set_numvfs_toggles_keep_the_pf_rings_and_their_memory() -> None:
    port = Host(seed=0).add_port("eth0")
    pf = port.pf
    pf.set_numvfs(1)
    used = pf.memory.allocated
    for i in range(60):
        pf.set_numvfs(0)
        pf.set_numvfs(1 + i % 63)
    assert pf.rx_ring is not None and pf.tx_ring is not None
    assert pf.memory.allocated == used  # one pair of rings, whatever the queue
    pf.rx_poll()  # the PF still has a receive ring


# -- item 11: a refused set_numvfs changes nothing ------------------------------------------------
def test_a_set_numvfs_refused_for_iommu_domains_changes_nothing() -> None:
    host = Host(seed=0)
    ports = [host.add_port(f"eth{i}") for i in range(17)]
    for p in ports[:15]:
        p.pf.set_numvfs(63)
    ports[15].pf.set_numvfs(60)
    last = ports[16]
    with pytest.raises(SriovError, match="IOMMU domains"):
        last.pf.set_numvfs(62)
    assert last.pf.num_vfs == 0 and last.device.num_vfs == 0
    with pytest.raises(SriovError):
        last.pf.vf_config(5)
    with pytest.raises(SriovError):
        last.pf.set_vf(5, mac="02:00:00:00:05:05")


# -- item 12: compiled and golden agree on strided batches and huge budgets --------------------
@pytest.mark.parametrize("step", [2, -1, 3])
def test_a_batch_sliced_with_a_step_is_received_alike_in_both_modes(step: int) -> None:
    results = []
    for impl in IMPLEMENTATIONS.values():
        rig = RxRig(impl, num_vfs=2, ring=64)
        rig.set_mac(0, "02:00:00:00:01:00")
        batch = Batch.from_frames([eth("02:00:00:00:01:00", size=60 + k) for k in range(9)])[::step]
        res = rig.wire.receive(batch)
        results.append((res.reasons.tolist(), [bytes(f) for f in rig.poll(0)]))
    assert results[0] == results[1]
    assert len(results[0][1]) == len(range(9)[::step])


def test_rx_poll_with_a_huge_budget_takes_what_the_ring_has() -> None:
    host = Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    nic = up_nic(host, port)
    assert len(nic.rx_poll(2**70)) == 0
    assert len(port.pf.rx_poll(2**70)) == 0
    for bad in (-1, 1.5, None, "3", True):
        with pytest.raises(SriovError, match="budget"):
            nic.rx_poll(bad)


# -- item 13: what escaped as another exception -------------------------------------------------
@pytest.mark.parametrize("impl_name", sorted(IMPLEMENTATIONS))
def test_burst_refuses_a_frame_count_that_is_not_an_int_in_range(impl_name: str) -> None:
    rig = RxRig(IMPLEMENTATIONS[impl_name], num_vfs=1, ring=64)
    b = Batch.from_frames([eth("02:00:00:00:01:00")] * 4)
    burst = rig.wire.bind_burst(b.data, b.offsets, b.lengths)
    for bad in (1.5, None, "3", float("nan"), 2**70, -1, 5, True, np.bool_(True)):
        with pytest.raises(SriovError, match="burst"):
            burst(bad)
    assert burst(np.int64(4)) == 0  # numpy ints are ints (no pool has the MAC: nothing delivered)


@pytest.mark.parametrize("source", [None, 123, 1.5])
def test_read_pcap_refuses_what_is_not_a_path_or_bytes(source) -> None:
    with pytest.raises(SriovError, match="capture source"):
        read_pcap(source)


@pytest.mark.parametrize("impl_name", sorted(IMPLEMENTATIONS))
def test_a_batch_whose_arrays_were_replaced_is_refused(impl_name: str) -> None:
    wire = Wire(RxRig(IMPLEMENTATIONS[impl_name], num_vfs=1, ring=64).dev, IMPLEMENTATIONS[impl_name])
    for attr, value in (
        ("offsets", [0, 64]),
        ("offsets", np.zeros(2, np.int32)),
        ("lengths", np.zeros(4, np.uint32)[::2]),
        ("data", np.zeros(128, np.int16)),
        ("timestamps_ns", np.zeros(3, np.int64)),
    ):
        batch = Batch.from_frames([eth("02:00:00:00:01:00")] * 2)
        setattr(batch, attr, value)
        with pytest.raises(SriovError, match="Batch"):
            wire.receive(batch)


def test_add_vm_with_too_much_memory_says_the_limit() -> None:
    with pytest.raises(SriovError, match="limit"):
        Host(seed=0).add_vm("big", memory=2**50)


def test_generate_too_many_frames_says_the_limit() -> None:
    with pytest.raises(SriovError, match="frames"):
        generate(TrafficProfile(), frames=10**11)


# -- item 14: what was silently accepted ----------------------------------------------------------
@pytest.mark.parametrize(
    "mac", [" 02:00:00:00:00:01", "02:00:00:00:00:1", "02:00:00:00:00:+1", "02:00:00:00:00:0x1",
            "02:00:00:00:00:1_0", "02:00:00:00:00:01 ", "02:00-00:00:00:01"],
)  # fmt: skip
def test_malformed_mac_strings_are_refused(mac: str) -> None:
    with pytest.raises(SriovError, match="MAC"):
        parse_mac(mac)
    host = Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    with pytest.raises(SriovError, match="MAC"):
        port.pf.set_vf(0, mac=mac)


def test_well_formed_mac_strings_still_parse() -> None:
    assert parse_mac("02:0A:bc:00:00:01") == bytes.fromhex("020abc000001")
    assert parse_mac("02-00-00-00-00-01") == bytes.fromhex("020000000001")


def test_from_frames_refuses_fractional_timestamps() -> None:
    for ts in ([1.7], [True], np.array([1.7])):
        with pytest.raises(SriovError, match="timestamps_ns"):
            Batch.from_frames([b"\x00" * 60], ts)
    assert Batch.from_frames([b"\x00" * 60], [np.int64(5)]).timestamps_ns.tolist() == [5]


def test_from_frames_refuses_arrays_that_are_not_uint8() -> None:
    with pytest.raises(SriovError, match="uint8"):
        Batch.from_frames([np.zeros(15, np.int32)])
    assert Batch.from_frames([np.zeros(15, np.uint8)]).lengths.tolist() == [15]
