"""Faults of the host during traffic: PF reset, PF administrative down/up, cable flap (issue 8).

Three VFs in three VMs receive bursts (unicast to each, broadcast, unknown unicast) and drain
their rings. Mid-traffic the fault hits while one VF still has frames on its ring; traffic keeps
arriving through the outage; simulated time passes beyond ixgbevf's 10 s reset hold-off; the VFs
re-initialise and traffic resumes. Required:

* every frame that arrived has a verdict (delivered to pools, or a named drop reason) and the
  port/pool counters are conserved throughout;
* per VF, frames written into its ring = frames the guest took + frames still on the ring when
  the fault hit (discarded by the driver's ring reset on re-initialisation, as ixgbevf's
  ``ixgbevf_clean_rx_ring`` does) + frames on the ring at the end: none vanished;
* after recovery every VF has its link, its configuration, and receives every frame sent to it;
* no memory written outside the rings and posted buffers (`DmaWatch`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pytest

from sriov.batch import Batch
from sriov.errors import DriverStateError
from sriov.host import Host
from sriov.hw import counters as C
from sriov.invariants import DmaWatch, conservation_errors
from sriov.wire import DropReason

S = 1_000_000_000
VFS = (0, 1, 2)
MACS = [f"02:00:00:00:02:{i:02x}" for i in VFS]


def frame(dst: str, size: int = 64) -> bytes:
    head = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex("020000000999") + b"\x08\x00"
    return (head + bytes((i * 5 + size) % 256 for i in range(size - 14)))[:size]


class Site:
    """A host with one port, three VFs up (VF 1 with a port VLAN-free trunk VLAN 10), traffic books."""

    def __init__(self) -> None:
        self.host = host = Host(seed=21)
        self.clock = host.clock
        self.port = port = host.add_port("eth0")
        self.pf = port.pf
        self.pf.set_numvfs(4)
        self.nics = {}
        for vf in VFS:
            self.pf.set_vf(vf, mac=MACS[vf])
            vm = host.add_vm(f"vm{vf}", memory=4 << 20)
            nic = host.assign(port.vf(vf), vm)
            nic.up()
            # The guest polls its ring itself (NAPI off), so that what it took, what is still on the
            # ring and what a ring reset threw away are all counted here.
            if hasattr(nic, "napi"):
                nic.napi.enabled = False
            self.nics[vf] = nic
        self.nics[1].add_vlan(10)
        self.clock.advance(S)
        assert all(nic.link_up for nic in self.nics.values())
        self.taken = dict.fromkeys(VFS, 0)
        self.discarded = dict.fromkeys(VFS, 0)
        self.frames = 0
        self.paused: set[int] = set()  # guests that stopped draining (busy, or hung)
        self.verdicts: dict[str, int] = {}
        self.rx0 = {vf: self.pool_rx(vf) for vf in VFS}
        for vf, nic in self.nics.items():  # count what each ring reset throws away
            ring = nic.rx_ring
            ring.up = self._counting_reset(vf, ring, ring.up)
        self.watch = DmaWatch(host)

    def _counting_reset(self, vf: int, ring, up: Callable[[], None]) -> Callable[[], None]:
        def up_counting() -> None:
            self.discarded[vf] += ring.pending()  # written, not yet taken: gone with the ring reset
            up()

        return up_counting

    def pool_rx(self, vf: int) -> int:
        return int(self.port.device.state.pool_counters[vf, C.POOL["rx_packets"]])

    def burst(self, drain: bool = True) -> object:
        frames = [frame(MACS[vf], 60 + 100 * k) for k in range(4) for vf in VFS]
        frames += [frame("ff:ff:ff:ff:ff:ff"), frame("02:00:00:00:99:99")]
        self.watch.refresh()
        result = self.port.wire.receive(Batch.from_frames(frames))
        self.frames += len(frames)
        for name, n in result.counts().items():
            self.verdicts[name] = self.verdicts.get(name, 0) + n
        assert all(int(r) in {int(x) for x in DropReason} for r in result.reasons)
        assert conservation_errors(self.port.device) == []
        if drain:
            self.drain()
        with contextlib.suppress(DriverStateError):
            self.pf.rx_poll(512)
        return result

    def drain(self) -> None:
        for vf, nic in self.nics.items():
            if vf in self.paused:
                continue
            with contextlib.suppress(DriverStateError):  # interface re-initialising: nothing to take
                while True:
                    n = len(nic.rx_poll(256))
                    if not n:
                        break
                    self.taken[vf] += n

    def hit(self, fault: Callable[[], None]) -> int:
        """The fault, with frames still on the rings (returns how many)."""
        self.burst(drain=False)
        pending = sum(nic.rx_ring.pending() for nic in self.nics.values())
        fault()
        return pending

    def outage(self, seconds: int = 12) -> None:
        """Traffic keeps arriving while time passes beyond the 10 s reset hold-off."""
        for _ in range(seconds * 2):
            self.burst()
            self.clock.advance(S // 2)

    def check_books(self) -> None:
        for vf, nic in self.nics.items():
            into_ring = self.pool_rx(vf) - self.rx0[vf]
            left = nic.rx_ring.pending()
            assert into_ring == self.taken[vf] + self.discarded[vf] + left, (
                f"VF {vf}: {into_ring} frames written to its ring, {self.taken[vf]} taken, "
                f"{self.discarded[vf]} discarded by the ring reset, {left} left"
            )
        port_in = int(self.port.device.state.port_counters[C.PORT["rx_frames_in"]])
        # frames offered while the cable was out never entered the port: counted as rx_link_down
        no_carrier = int(self.port.device.state.port_counters[C.PORT["rx_link_down"]])
        assert port_in + no_carrier == self.frames == sum(self.verdicts.values())
        assert no_carrier == self.verdicts.get("LINK_DOWN", 0)
        assert conservation_errors(self.port.device) == []
        self.watch.assert_clean()

    def check_recovered(self) -> None:
        assert all(nic.link_up for nic in self.nics.values()), "a VF did not come back"
        assert 10 in self.nics[1].vlans
        before = dict(self.taken)
        result = self.burst()
        for vf in VFS:
            pools = [result.pools(i) for i in range(len(result)) if result.selected_pools(i) == [vf]]
            assert pools and all(p == [vf] for p in pools), f"VF {vf}'s frames did not reach it"
            assert self.taken[vf] - before[vf] >= 4
        tagged = frame(MACS[1])[:12] + b"\x81\x00\x00\x0a" + frame(MACS[1])[12:]
        assert self.port.wire.receive(Batch.from_frames([tagged])).pools(0) == [1], "VLAN 10 lost"
        self.frames += 1
        self.verdicts["DELIVERED"] = self.verdicts.get("DELIVERED", 0) + 1
        self.drain()


def test_pf_reset_during_traffic() -> None:
    site = Site()
    for _ in range(3):
        site.burst()
    resets = [nic.counters["resets"] for nic in site.nics.values()]
    site.paused = {2}  # VF 2's guest is busy: its frames are still on the ring when it re-initialises
    assert site.hit(site.pf.reset) > 0, "the fault hit with frames on the rings"
    site.outage()
    assert [nic.counters["resets"] for nic in site.nics.values()] == [r + 1 for r in resets]
    assert site.discarded[2] > 0 and site.discarded[0] == 0, site.discarded
    site.paused = set()
    site.check_recovered()
    site.check_books()
    # frames that arrived while the VFs had no RAR/queue were dropped for a reason or went to the PF
    assert set(site.verdicts) - {"DELIVERED"} <= {"NO_POOL", "QUEUE_DISABLED", "NO_DMA_RESOURCES"}


def test_pf_administrative_down_up_during_traffic() -> None:
    site = Site()
    site.burst()

    def flap() -> None:
        site.pf.set_link(False)  # ip link set dev eth0 down
        site.burst()  # frames at a port that is down
        site.clock.advance(2 * S)
        site.pf.set_link(True)

    site.hit(flap)
    site.outage()
    site.check_recovered()
    site.check_books()
    # the PF's down turns the 82599's Tx laser off: the link drops, frames find no carrier
    assert site.verdicts.get("LINK_DOWN", 0) > 0


def test_cable_flap_during_traffic() -> None:
    site = Site()
    site.burst()
    resets = [nic.counters["resets"] for nic in site.nics.values()]

    def cable() -> None:
        site.port.device.set_link(False)
        site.clock.advance(10_000_000)
        assert not any(nic.link_up for nic in site.nics.values())
        site.burst()
        site.port.device.set_link(True)

    site.hit(cable)
    site.outage(seconds=2)
    site.check_recovered()
    # a cable flap keeps clear-to-send: no reset, nothing discarded by a ring reset
    assert [nic.counters["resets"] for nic in site.nics.values()] == resets
    assert site.discarded == dict.fromkeys(VFS, 0)
    assert site.verdicts["LINK_DOWN"] > 0, "the burst offered during the outage found no carrier"
    site.check_books()


@pytest.mark.parametrize("repeat", [3])
def test_repeated_pf_resets_lose_nothing(repeat: int) -> None:
    site = Site()
    for _ in range(repeat):
        site.hit(site.pf.reset)
        site.outage(seconds=11)
    site.check_recovered()
    site.check_books()
    assert np.all(np.array(list(site.taken.values())) > 0)


def main() -> None:  # pragma: no cover - the figures for RESULTS.md
    def pf_reset(site: Site) -> None:
        site.paused = {2}
        site.hit(site.pf.reset)
        site.outage()
        site.paused = set()

    def admin_flap(site: Site) -> None:
        def flap() -> None:
            site.pf.set_link(False)
            site.burst()
            site.clock.advance(2 * S)
            site.pf.set_link(True)

        site.hit(flap)
        site.outage()

    def cable(site: Site) -> None:
        def pull() -> None:
            site.port.device.set_link(False)
            site.clock.advance(10_000_000)
            site.burst()
            site.port.device.set_link(True)

        site.hit(pull)
        site.outage(seconds=2)

    print("| fault | frames in | unaccounted | verdicts | discarded by a ring reset (VF 0/1/2) | recovered |")
    print("|---|---:|---:|---|---|---|")
    for name, fault in (("PF reset", pf_reset), ("PF down/up", admin_flap), ("cable flap", cable)):
        site = Site()
        for _ in range(3):
            site.burst()
        fault(site)
        site.check_recovered()
        site.check_books()
        port_in = int(site.port.device.state.port_counters[C.PORT["rx_frames_in"]])
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(site.verdicts.items()))
        discarded = "/".join(str(site.discarded[vf]) for vf in VFS)
        lost = port_in - sum(site.verdicts.values())
        print(f"| {name} | {port_in} | {lost} | {verdicts} | {discarded} | yes |")


if __name__ == "__main__":  # pragma: no cover
    main()
