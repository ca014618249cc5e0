"""The API tour with traffic on the simulation clock.

A host with one 82599 port, four VFs (two assigned to a VM), the guests' drivers brought up over
the mailbox, then synthetic 10 GbE IMIX traffic offered at its arrival times
(`Host.run_traffic`): interrupts, EITR moderation and NAPI polls happen where they fall in time.
Each guest's stack keeps copies of what it receives (`nic.on_receive`); at the end the captures
are written beside this script's working directory and the counters printed.

    python examples/api_tour.py [FRAMES]        (default 20000; SRIOV_EXAMPLE_FRAMES also sets it)
"""

from __future__ import annotations

import os
import sys

import sriov


def main(frames: int) -> None:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(4)  # echo 4 > /sys/class/net/eth0/device/sriov_numvfs
    port.pf.set_vf(0, mac="02:00:00:00:00:10", vlan=100)  # ip link set dev eth0 vf 0 mac ... vlan 100
    port.pf.set_vf(1, mac="02:00:00:00:00:11", trust=True)
    vm = host.add_vm("vm0", memory=64 << 20)
    nics = [host.assign(port.vf(i), vm) for i in (0, 1)]
    received: dict[str, list[sriov.Batch]] = {}
    for nic in nics:
        nic.up()
        # the guest's stack: the batch handed over is zero-copy and valid during the call only,
        # so keep a copy (a real stack would parse it here instead)
        nic.on_receive = lambda batch, name=nic.name: received.setdefault(name, []).append(batch.copy())
    nics[1].add_vlan(10)
    nics[1].set_coalesce(rx_usecs=50)  # ethtool -C eth1 rx-usecs 50
    host.clock.advance(3_000_000_000)  # the VF watchdogs see the link
    print(port.pf.mailbox_log(1))

    # VF 0 sits on port VLAN 100: its frames come tagged 100 on the wire and reach its VM untagged;
    # VF 1 takes untagged frames (and VLAN 10). A frame no VF takes goes to the PF's own pool,
    # whose ring the host drains only at the end here: keep those few (broadcasts reach it too).
    profile = sriov.TrafficProfile(rate="10G", sizes="imix", vlans=[0], broadcast_share=0.02,
                                   dst=["02:00:00:00:00:11"])  # fmt: skip
    batch = sriov.generate(profile, frames=frames, seed=1)
    result = host.run_traffic(port, batch, start_ns=host.clock.now)  # each frame at its own time
    host.clock.advance(1_000_000)  # 1 ms more: the last interrupts fire and NAPI empties the rings
    host_frames = port.pf.rx_poll(budget=1 << 16)  # the host's stack: what reached the PF's pool
    print(f"{frames:,} frames over {int(batch.timestamps_ns[-1] - batch.timestamps_ns[0]) / 1e6:.3f} ms:",
          result.counts())  # fmt: skip
    for nic in nics:
        got = received.get(nic.name, [])
        total = sum(len(b) for b in got)
        stats = nic.stats()
        summary = nic.napi.trace.summary()
        print(f"{nic.name} {nic.mac}: {total:,} frames to the stack, {stats['rx_packets']:,} rx_packets, "
              f"{summary['interrupts_per_s']:,.0f} interrupts/s, "
              f"latency p50 {summary['latency_p50_ns']:,.0f} ns, interrupts {nic.interrupts()}")  # fmt: skip
        name = f"vm0-{nic.name.split('/')[-1]}.pcap"
        sriov.write_pcap(name, sriov.Batch.from_arrays(*_joined(got)) if got else sriov.Batch.empty())
        print(f"  wrote {name}")
    print(f"PF (host): {len(host_frames):,} frames")
    print({k: v for k, v in port.stats().items() if v})


def _joined(batches: list[sriov.Batch]) -> tuple:
    """One Batch's arrays from several packed ones."""
    import numpy as np

    starts = np.cumsum([0] + [len(b.data) for b in batches[:-1]])
    return (
        np.concatenate([b.data for b in batches]),
        np.concatenate([b.offsets + s for b, s in zip(batches, starts, strict=True)]),
        np.concatenate([b.lengths for b in batches]),
        np.concatenate([b.timestamps_ns for b in batches]),
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SRIOV_EXAMPLE_FRAMES", 20_000)))
