"""One port used from several threads (issue 17 items 3 and 8).

A port is one piece of hardware: its datapath entries (`Wire.receive`, bound bursts, the
transmit engine) are serialised by the device's lock, and whatever unmaps or reprograms what
the datapath reads (`Host.unassign`, SR-IOV enable/disable, a VF reset) takes it too, so no
DMA for a function is in flight once unassign returns. Counters shared between ports (the
IOMMU's fault log) stay exact.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from sriov import Host, kernels
from sriov.batch import Batch
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import PAGE_SIZE, Iommu
from sriov.wire import Wire, rx_conservation_errors, tx_conservation_errors
from tests.conftest import RxRig, eth

ROUNDS = 30
BURST = 64


def run_threads(*targets) -> None:
    errors: list[BaseException] = []

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        return run

    start = threading.Barrier(len(targets))
    targets = tuple((lambda fn: lambda: (start.wait(), fn()))(t) for t in targets)
    threads = [threading.Thread(target=guard(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def port_counter(dev, name: str) -> int:
    return int(dev.state.port_counters[C.PORT[name]])


def pool_counter(dev, pool: int, name: str) -> int:
    return int(dev.state.pool_counters[pool, C.POOL[name]])


def two_vf_rig(impl) -> tuple[RxRig, list[bytes]]:
    rig = RxRig(impl, num_vfs=2, ring=4096, mem=16 << 20)
    macs = ["02:00:00:00:01:00", "02:00:00:00:01:01"]
    for vf, mac in enumerate(macs):
        rig.set_mac(vf, mac)
    return rig, macs


def test_two_threads_receiving_on_one_port_lose_nothing(impl) -> None:
    rig, macs = two_vf_rig(impl)
    page0 = [m.buffer[:PAGE_SIZE].copy() for m in rig.memories]
    batches = [Batch.from_frames([eth(macs[k % 2]) for k in range(BURST)]) for _ in range(2)]

    def traffic(batch):
        def run():
            for _ in range(ROUNDS):
                rig.wire.receive(batch)

        return run

    run_threads(traffic(batches[0]), traffic(batches[1]))
    dev = rig.dev
    assert rx_conservation_errors(dev) == []
    assert port_counter(dev, "rx_frames_in") == 2 * ROUNDS * BURST
    for vf in range(2):  # every frame found its own descriptor: none dropped, none written twice
        assert pool_counter(dev, vf, "rx_packets") == ROUNDS * BURST
        assert len(rig.poll(vf)) == ROUNDS * BURST
        assert np.array_equal(rig.memories[vf].buffer[:PAGE_SIZE], page0[vf]), "GPA 0 written"


def test_two_bursts_on_one_port_in_two_threads_lose_nothing(impl) -> None:
    rig, macs = two_vf_rig(impl)
    page0 = [m.buffer[:PAGE_SIZE].copy() for m in rig.memories]
    bursts = []
    for _ in range(2):
        b = Batch.from_frames([eth(macs[0]) for _ in range(BURST)])
        bursts.append(rig.wire.bind_burst(b.data.copy(), b.offsets.copy(), b.lengths.copy()))

    def traffic(burst):
        def run():
            for _ in range(ROUNDS):
                burst(BURST)

        return run

    run_threads(traffic(bursts[0]), traffic(bursts[1]))
    dev = rig.dev
    assert rx_conservation_errors(dev) == []
    assert port_counter(dev, "rx_frames_in") == 2 * ROUNDS * BURST
    assert pool_counter(dev, 0, "rx_packets") == 2 * ROUNDS * BURST
    assert len(rig.poll(0)) == 2 * ROUNDS * BURST
    assert np.array_equal(rig.memories[0].buffer[:PAGE_SIZE], page0[0]), "GPA 0 written"


def fault_port(impl, iommu: Iommu, name: str) -> Wire:
    """A port whose VF 0 receives into a ring mapped nowhere: every copy is a DMA fault."""
    dev = Device82599(name, SimClock(), iommu)
    dev.sriov_enable(1)
    w = dev.pf.write32
    w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (1 << R.VT_CTL_POOL_SHIFT))
    w(R.GCR_EXT, R.GCR_EXT_VT_MODE_32)
    w(R.MPSAR_LO(1), 1)
    w(R.RAL(1), 0x00000002)
    w(R.RAH(1), 0x0001 | R.RAH_AV)
    w(R.VFRE(0), 0b11)
    w(R.VMOLR(0), R.VMOLR_AUPE)
    w(R.VLVF(0), R.VLVF_VIEN)
    w(R.VLVFB(0), 1)
    w(R.RDBAL(0), 0x10000)  # not mapped: the descriptor fetch faults
    w(R.RDLEN(0), 4096 * 16)
    w(R.RDT(0), 4095)
    w(R.SRRCTL(0), 2 | R.SRRCTL_DROP_EN)
    w(R.RXDCTL(0), R.RXDCTL_ENABLE)
    return Wire(dev, impl)


def test_two_ports_on_two_threads_count_every_fault(impl) -> None:
    iommu = Iommu()
    wires = [fault_port(impl, iommu, f"eth{k}") for k in range(2)]
    batch = Batch.from_frames([eth("02:00:00:00:01:00")] * 256)
    rounds = 5000 if impl.__name__.endswith("_fastpath") else 20

    def traffic(wire):
        def run():
            for _ in range(rounds):
                wire.receive(batch)

        return run

    run_threads(*(traffic(w) for w in wires))
    for w in wires:
        assert port_counter(w.device, "rx_dma_faults") == rounds * 256
    assert int(iommu.fault_total[0]) == 2 * rounds * 256
    assert int(iommu.fault_counts.sum()) == 2 * rounds * 256


def test_unassign_waits_for_the_dma_in_flight() -> None:
    host = Host(seed=1)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    port.pf.set_vf(0, mac="02:00:00:00:01:00")
    vm = host.add_vm("vm0", memory=32 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    host.clock.advance(1_000_000_000)
    # a few frames for the VF, a long stretch of frames for no pool, then the VF's again: the
    # batch has the VF's queue loaded and keeps working on it all along its run
    vf, other = eth("02:00:00:00:01:00"), eth("02:00:00:00:0e:00")
    n = 300_000 if kernels.impl.__name__.endswith("_fastpath") else 20_000
    batch = Batch.from_frames([vf] * 10 + [other] * n + [vf] * 400)
    started = threading.Event()
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            started.set()
            port.wire.receive(batch)

    t = threading.Thread(target=traffic)
    t.start()
    started.wait()
    time.sleep(0.002)  # the batch is running
    host.unassign(nic)
    snapshot = vm.memory.buffer.copy()
    stop.set()
    t.join()
    # no DMA for the VF after unassign returned: nothing written, and nothing even tried (a
    # batch still in flight would fault on the unmapped pages; later ones find the queue off)
    assert np.array_equal(vm.memory.buffer, snapshot), "the device wrote the VM after unassign returned"
    assert port.vf(0).domain.fault_count == 0, "DMA for the VF was still in flight after unassign"
    assert rx_conservation_errors(port.device) == []
    assert tx_conservation_errors(port.device) == []


def test_two_cabled_ports_sending_to_each_other_from_two_threads_do_not_deadlock() -> None:
    """Each port hands its frames to the peer after releasing its own lock (holding it while
    taking the peer's would deadlock against the peer doing the same)."""
    host = Host(seed=2)
    ports = [host.add_port(f"eth{k}") for k in range(2)]
    host.connect(*ports)
    batch = Batch.from_frames([eth("02:00:00:00:0f:0f")] * 32)
    rounds = 200

    def traffic(port):
        def run():
            for _ in range(rounds):
                port.pf.transmit(batch)

        return run

    threads = [threading.Thread(target=traffic(p), daemon=True) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlock: a port waits for its peer's lock"
    for p, peer in (ports, ports[::-1]):
        assert tx_conservation_errors(p.device) == [] and rx_conservation_errors(p.device) == []
        assert port_counter(p.device, "tx_wire_packets") > 0
        assert port_counter(peer.device, "rx_frames_in") == port_counter(p.device, "tx_wire_packets")
