"""Embedding the model in a traffic generator's loop: bind once, burst many times.

The generator owns preallocated arrays (frames, offsets, lengths, timestamps) and refills them
between bursts; `port.wire.bind_burst` binds them once and `burst(n)` runs the compiled receive
flow on the first ``n`` frames with nothing allocated per call (DPDK's ``rte_eth_rx_burst``
shape). The guests here count and drop what they receive (`discard_rings`: one compiled call
for every ring, XDP_DROP style). Wire time is not simulated on this path (see the README,
"Time and buffers"): each burst is what the rings can take at once.

    python examples/traffic_generator.py [BURSTS]      (default 2000; SRIOV_EXAMPLE_BURSTS also sets it)
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import sriov
from sriov.drivers.rings import discard_rings

VFS = 4
BURST = 32 * VFS  # frames per burst: well inside each VF's 511 posted descriptors


def main(bursts: int) -> None:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(VFS)
    macs = [f"02:00:00:00:01:{vf:02x}" for vf in range(VFS)]
    nics = []
    for vf, mac in enumerate(macs):
        port.pf.set_vf(vf, mac=mac)
        nic = host.assign(port.vf(vf), host.add_vm(f"vm{vf}", memory=8 << 20))
        nic.up()
        nics.append(nic)
    host.clock.advance(1_000_000)

    # the generator's own buffers: 64-byte frames for every VF, made once
    frames = sriov.generate(sriov.TrafficProfile(rate="10G", sizes=64, dst=macs), frames=BURST, seed=7)
    data, offsets, lengths = frames.data.copy(), frames.offsets.copy(), frames.lengths.copy()
    stamps = np.zeros(BURST, np.int64)
    burst = port.wire.bind_burst(data, offsets, lengths, stamps)
    rings = [nic.rx_ring for nic in nics]

    delivered = 0
    start = time.perf_counter()
    for _ in range(bursts):
        data[14] ^= 1  # a generator rewrites payload bytes in place between bursts
        delivered += burst(BURST)
        discard_rings(rings)  # every guest hands its buffers straight back
    elapsed = time.perf_counter() - start
    print(f"{bursts:,} bursts of {BURST}: {delivered:,} frames delivered "
          f"({delivered / max(elapsed, 1e-9) / 1e6:.1f} Mpps of host time on this machine)")  # fmt: skip
    per_vf = [nic.stats()["rx_packets"] for nic in nics]
    print("per VF rx_packets:", per_vf)
    assert delivered == bursts * BURST == sum(per_vf), "every frame reached its VF"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SRIOV_EXAMPLE_BURSTS", 2000)))
