"""Interrupt moderation: what ``ethtool -C ethX rx-usecs N`` trades.

For each rx-usecs setting a fresh host receives the same 10 GbE stream of 64-byte frames on
the simulation clock (`Host.run_traffic`); the VF's EITR throttles its queue vector and NAPI
polls the ring on each interrupt. Printed per setting: interrupts per second, frames per
interrupt, latency from arrival to the guest's stack (p50/p99) and frames lost. rx-usecs 0 is
no moderation, 1 is ixgbevf's adaptive mode.

    python examples/interrupt_moderation.py [FRAMES]   (default 50000; SRIOV_EXAMPLE_FRAMES also sets it)
"""

from __future__ import annotations

import os
import sys

import sriov

SETTINGS = (0, 1, 10, 50, 200)


def measure(rx_usecs: int, frames: int) -> dict[str, float]:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    port.pf.set_vf(0, mac="02:00:00:00:00:10")
    nic = host.assign(port.vf(0), host.add_vm("vm0", memory=16 << 20))
    nic.up()
    nic.on_receive = lambda batch: None  # the guest's stack takes every frame at once
    nic.set_coalesce(rx_usecs=rx_usecs)
    host.clock.advance(3_000_000_000)
    profile = sriov.TrafficProfile(rate="10G", sizes=64, dst=["02:00:00:00:00:10"])
    result = host.run_traffic(port, sriov.generate(profile, frames=frames, seed=2), start_ns=host.clock.now)
    host.clock.advance(2_000_000)  # let the last interrupt and poll happen
    summary = nic.napi.trace.summary()
    summary["lost"] = frames - summary["frames"]
    summary["delivered_to_ring"] = result.accepted
    return summary


def main(frames: int) -> None:
    print(f"{frames:,} frames of 64 B at 10 GbE line rate ({frames * 67.2 / 1e6:.2f} ms of wire time)")
    print(f"{'rx-usecs':>8} {'irq/s':>10} {'frames/irq':>10} {'p50 ns':>9} {'p99 ns':>9} {'lost':>7}")
    for rx_usecs in SETTINGS:
        s = measure(rx_usecs, frames)
        print(f"{rx_usecs:>8} {s['interrupts_per_s']:>10,.0f} {s['frames_per_interrupt']:>10.1f} "
              f"{s['latency_p50_ns']:>9,.0f} {s['latency_p99_ns']:>9,.0f} {s['lost']:>7,}")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SRIOV_EXAMPLE_FRAMES", 50_000)))
