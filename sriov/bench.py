"""`sriov bench`: the standard benchmark scenarios, built through the public API, in Mpps.

Each scenario builds a host with the real PF and VF drivers (bring-up over the mailbox), then
times the receive flow for about ``seconds`` of host time: the compiled kernel through a bound
burst, and every VF driver draining and refilling its ring as ixgbevf does. The figures are one
run on this machine, beside 10/40/100 GbE line rate for the same frame sizes. The pytest-benchmark
suites in benchmarks/ are the careful measurement; this is the quick look a user runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sriov.batch import Batch
from sriov.host import Host
from sriov.traffic.synth import TrafficProfile, generate

WIRE_OVERHEAD = 24  # FCS + preamble, SFD and inter-frame gap, bytes per frame on the wire
TRUNK_VLANS = list(range(100, 108))
LINKS_GBPS = {"10G": 10.0, "40G": 40.0, "100G": 100.0}


@dataclass
class Rig:
    """A port with VFs brought up by their drivers, and traffic for them."""

    host: Host
    port: Any
    nics: list[Any]
    batch: Batch


def _rig(num_vfs: int, sizes: Any, frames: int, vlans: bool = False, ring: int = 512) -> Rig:
    host = Host(seed=1)
    port = host.add_port("eth0")
    port.pf.set_numvfs(num_vfs)
    macs = [f"02:00:00:00:{vf >> 8:02x}:{vf & 0xFF:02x}" for vf in range(num_vfs)]
    nics = []
    for vf in range(num_vfs):
        port.pf.set_vf(vf, mac=macs[vf])
        vm = host.add_vm(f"vm{vf}", memory=4 << 20)
        nic = host.assign(port.vf(vf), vm)
        nic.up()
        if vlans:  # a trunk of 8 VLANs on every VF, and one multicast group each
            for vid in TRUNK_VLANS:
                nic.add_vlan(vid)
            nic.set_multicast([f"01:00:5e:00:00:{vf:02x}"])
        nics.append(nic)
    host.clock.advance(1_000_000)
    profile = TrafficProfile(
        frames=frames,
        rate="100G",
        sizes=sizes,
        dst=macs,
        vlans=TRUNK_VLANS if vlans else [0],
        # the MTA is shared: a multicast frame reaches every pool with ROMPE (all 63), so 1 % is
        # already 0.63 copies per frame
        multicast_share=0.01 if vlans else 0.0,
        multicast=[f"01:00:5e:00:00:{vf:02x}" for vf in range(num_vfs)],
    )
    return Rig(host, port, nics, generate(profile, seed=2))


def _time_rx(rig: Rig, seconds: float, sink: bool = False) -> tuple[int, int, float]:
    """Bursts of the rig's batch until ``seconds`` pass; returns (frames delivered, bytes, elapsed).

    Each guest takes its frames with ``rx_poll`` (a zero-copy Batch per poll), or with ``sink``
    hands the buffers straight back (`RxRing.discard`, one compiled call: an XDP_DROP-style guest,
    what a traffic generator that only counts needs)."""
    b = rig.batch
    burst = rig.port.wire.bind_burst(b.data, b.offsets, b.lengths, b.timestamps_ns)
    n = len(b)
    frame_bytes = int(b.lengths.sum())
    mean_bytes = frame_bytes / max(n, 1)
    frames = nbytes = 0
    start = time.perf_counter()
    while True:
        accepted = burst(n)
        if sink:
            for nic in rig.nics:
                nic.rx_ring.discard()
        else:
            for nic in rig.nics:  # take everything, then poll once more: that re-posts the buffers
                nic.rx_poll(budget=1 << 16)
                nic.rx_poll(budget=1 << 16)
        frames += accepted
        nbytes += int(accepted * mean_bytes)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return frames, nbytes, elapsed


def _row(name: str, frames: int, nbytes: int, elapsed: float, note: str = "") -> dict[str, Any]:
    mpps = frames / elapsed / 1e6
    wire_gbps = (nbytes + (WIRE_OVERHEAD * frames)) * 8 / elapsed / 1e9
    return {
        "name": name,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "mpps": mpps,
        "gbps": nbytes * 8 / elapsed / 1e9,
        "x_line_rate": {link: wire_gbps / gbps for link, gbps in LINKS_GBPS.items()},
        "note": note,
    }


def _rx(
    num_vfs: int, sizes: Any, vlans: bool = False, sink: bool = False
) -> Callable[[float], tuple[int, int, float]]:
    def run(seconds: float) -> tuple[int, int, float]:
        # 448 frames per VF per burst (256 beside the multicast copies): each ring, 511 posted
        # descriptors, takes all of them
        rig = _rig(num_vfs, sizes, frames=(256 if vlans else 448) * num_vfs, vlans=vlans)
        _time_rx(rig, 0.05, sink)  # warm the caches and fault the guest pages in
        return _time_rx(rig, seconds, sink)

    return run


def _synth(seconds: float) -> tuple[int, int, float]:
    profile = TrafficProfile(frames=1 << 16, rate="100G", sizes=64, dst=["02:00:00:00:00:01"])
    out = generate(profile, seed=0)
    frames = nbytes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = generate(profile, seed=frames)
        frames += len(out)
        nbytes += out.total_bytes
    return frames, nbytes, time.perf_counter() - start


STANDARD: dict[str, tuple[Callable[[float], tuple[int, int, float]], str]] = {
    "rx 64 B, 8 VFs, bulk 3584": (_rx(8, 64), "rings 512 x 2 KiB; each guest rx_poll()s"),
    "rx 64 B, 8 VFs, bulk 3584, sink": (_rx(8, 64, sink=True), "guests hand buffers straight back"),
    "rx IMIX 7:4:1, 8 VFs": (_rx(8, "imix"), "64/594/1518-byte frames; rx_poll()"),
    "rx 64 B, 63 VFs, VLANs + multicast": (_rx(63, 64, vlans=True), "a VLAN trunk + one group per VF"),
    "rx 64 B, 63 VFs, VLANs + multicast, sink": (_rx(63, 64, vlans=True, sink=True), "same, sink"),
    "synthesis 64 B": (_synth, "Numba generator into a Batch"),
}


def run_standard(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every standard scenario; the document `sriov bench --json` prints. ``progress`` is
    called with each scenario's name as it starts."""
    seconds = 0.2 if quick else 1.0
    rows = []
    for name, (fn, note) in STANDARD.items():
        if progress is not None:
            progress(name)
        rows.append(_row(name, *fn(seconds), note=note))
    from sriov import kernels

    return {"implementation": kernels.IMPLEMENTATION, "scenarios": rows, "seconds_per_scenario": seconds}


def line_rate_pps(gbps: float, frame_bytes: int) -> float:
    """Frames per second of ``frame_bytes``-byte captured frames at ``gbps`` (spec §6)."""
    return gbps * 1e9 / ((frame_bytes + WIRE_OVERHEAD) * 8)


__all__ = ["STANDARD", "line_rate_pps", "run_standard"]
