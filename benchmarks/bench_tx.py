"""Transmit-flow benchmarks (issue 5): VF-to-VF through the VEB, 64-byte frames.

pytest-benchmark: ``python -m pytest benchmarks/bench_tx.py --benchmark-only -q``.
Summary table (the figures in RESULTS.md): ``python benchmarks/bench_tx.py``.
Nothing here asserts a time; ``extra_info`` records the rate and whether the counters added up.

* ``kernel``: descriptors already posted in every VF's TX ring (VF i sends to VF i+1), one run of
  the transmit engine over all queues takes every frame: TX descriptor fetch, IOMMU translation,
  anti-spoof (on), VEB classification, copy into the destination VF's RX ring, RX write-back,
  TX DD write-back. The timed part is ``wire.process_tx()``; re-posting (TDH back to 0) and the
  receiving drivers giving their buffers back happen outside it.
* ``driver``: the same traffic through ``TxRing.transmit(batch)`` (TxRingCore.send: reclaim +
  fill, the tail write whose doorbell runs the engine, then the reclaim scan), bursts of 32 or
  256 frames: the cost a guest sees per frame, Python call overhead included. Twice: with the
  VFs' MSI-X vectors not routed (every completion counts as an unrouted cause, so the device's
  hooks run after every burst) and programmed as ixgbevf does (auto-masked after the first
  interrupt, nobody re-enabling: a busy guest, whose held causes let the hooks be skipped).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import RxRig, eth
from timing import best

from sriov import _fastpath
from sriov.batch import Batch
from sriov.drivers import coalesce
from sriov.drivers.txring import TxRing
from sriov.hw import regs as R
from sriov.wire import rx_conservation_errors, tx_conservation_errors

MACS = [bytes([0x02, 0, 0, 0, 1, i]) for i in range(64)]
TX_RING = 512
RX_RING = 512


class Veb:
    """A port in VT mode with VEB loopback and anti-spoofing on; each VF has RX and TX rings."""

    def __init__(self, num_vfs: int = 8, tx_ring: int = TX_RING, impl=_fastpath, irqs: bool = False) -> None:
        self.rig = rig = RxRig(impl, num_vfs=num_vfs, ring=RX_RING, mem=32 << 20)
        for vf in range(num_vfs):
            rig.set_mac(vf, MACS[vf])
        rig.w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN)
        rig.w(R.VFTE(0), 0xFFFFFFFF)
        rig.w(R.VFTE(1), 0xFFFFFFFF)
        for i in range(8):
            rig.w(R.PFVFSPOOF(i), 0xFFFF)  # MAC and VLAN anti-spoof on for every VF
        if irqs:  # MSI-X programmed as ixgbevf does (RX and TX of queue 0 on vector 0, auto-masked)
            for vf in range(num_vfs):
                fn = rig.dev.vfs[vf]
                mask, _ = coalesce.configure_vf_msix(fn, 1, 0)
                coalesce.irq_enable(fn, mask)
        self.n = num_vfs
        self.tx = [
            TxRing(rig.dev.vfs[vf], rig.memories[vf], 0, count=tx_ring, implementation=impl)
            for vf in range(num_vfs)
        ]
        self.frames = [eth(MACS[(vf + 1) % num_vfs], 64, src=MACS[vf]) for vf in range(num_vfs)]
        for memory in rig.memories:  # fault the guest pages in now, not in the first timed rounds
            memory.buffer[:] += 0

    # -- kernel: descriptors posted once, the engine run over all of them ---------------------------
    def post_all(self) -> int:
        """Fill every TX ring (count - 1 frames each) without ringing the doorbell."""
        dev = self.rig.dev
        total = 0
        for vf, ring in enumerate(self.tx):
            batch = Batch.from_frames([self.frames[vf]] * (ring.count - 1))
            ring._ntu = ring._ntc = 0
            _fastpath.tx_fill(
                ring._words, ring.memory.buffer, ring._bufs, ring.buffer_size, 0, ring.count - 1,
                batch.data, batch.offsets, batch.lengths, len(batch), ring._watch,
            )  # fmt: skip
            total += ring.count - 1
            q = dev.vf_queue(vf, 0)
            dev.regs[R.TDT(q) // 4] = ring.count - 1  # raw store: no doorbell yet
        return total

    def rewind(self) -> None:
        """Hand the descriptors back to the hardware (TDH = 0) and free the receive rings."""
        dev = self.rig.dev
        for vf, ring in enumerate(self.tx):
            dev.regs[R.TDH(dev.vf_queue(vf, 0)) // 4] = 0
            ring._words[:, 3] &= ~np.uint32(R.TXD_STAT_DD)
        for ring in self.rig.rings:
            ring.discard()

    def run(self) -> int:
        return self.rig.wire.process_tx()

    def conserved(self) -> bool:
        dev = self.rig.dev
        return not tx_conservation_errors(dev) and not rx_conservation_errors(dev)


def kernel_rate(num_vfs: int = 8, rounds: int = 30, hooks: bool = True) -> tuple[float, int, bool]:
    """Best-of-rounds frames/s of one engine run over every VF's full TX ring (``hooks``: through
    ``wire.process_tx()``, with the device's interrupt hooks; else `TxKernel.run` alone)."""
    veb = Veb(num_vfs)
    per_run = veb.post_all()
    run = veb.run if hooks else lambda: veb.rig.wire._tx_kernel.run(0, R.MAX_QUEUES - 1, 0)
    best = float("inf")
    for _ in range(rounds):
        veb.rewind()
        t0 = time.perf_counter()
        taken = run()
        best = min(best, time.perf_counter() - t0)
        assert taken == per_run
    delivered = sum(len(r.poll(RX_RING)) for r in veb.rig.rings)
    return per_run / best, per_run, veb.conserved() and delivered == per_run


def driver_rate(burst: int, num_vfs: int = 8, seconds: float = 0.5, irqs: bool = False) -> tuple[float, bool]:
    """Frames/s through TxRing.transmit (tx_fill, tail write -> engine, tx_clean), bursts of ``burst``
    (``irqs``: the VFs' MSI-X programmed as ixgbevf does, nobody re-enabling a fired vector: a busy
    guest polling, so the causes stay held after the first interrupt)."""
    veb = Veb(num_vfs, tx_ring=1024, irqs=irqs)
    batches = [Batch.from_frames([veb.frames[vf]] * burst) for vf in range(num_vfs)]
    sent = 0
    spent = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for ring in veb.rig.rings:
            ring.discard()
        t0 = time.perf_counter()
        for _ in range(max(1, 256 // burst)):
            for vf, ring in enumerate(veb.tx):
                sent += ring.transmit(batches[vf])
        spent += time.perf_counter() - t0
    return sent / spent, veb.conserved()


# -- pytest-benchmark ---------------------------------------------------------------------------------
def test_tx_kernel_vf_to_vf_64b_bulk(benchmark) -> None:
    veb = Veb(8)
    per_run = veb.post_all()
    benchmark.group = "tx veb 64B"
    benchmark.pedantic(veb.run, setup=veb.rewind, rounds=30, iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(
        frames_per_round=per_run,
        mpps=per_run / best(benchmark) / 1e6,
        conserved=veb.conserved(),
        backend="compiled",
    )


def test_tx_driver_burst_32(benchmark) -> None:
    veb = Veb(8, tx_ring=1024)
    batches = [Batch.from_frames([veb.frames[vf]] * 32) for vf in range(8)]

    def burst() -> int:
        return sum(ring.transmit(batches[vf]) for vf, ring in enumerate(veb.tx))

    def free() -> None:
        for ring in veb.rig.rings:
            ring.discard()

    benchmark.group = "tx veb 64B"
    benchmark.pedantic(burst, setup=free, rounds=200, iterations=1, warmup_rounds=5)
    benchmark.extra_info.update(
        mpps=8 * 32 / best(benchmark) / 1e6, conserved=veb.conserved(), backend="compiled"
    )


if __name__ == "__main__":
    print("| scenario | frames per call | Mpps | conserved |")
    print("|---|---:|---:|---|")
    for vfs in (2, 8, 32):
        rate, per_run, ok = kernel_rate(vfs, rounds=300)
        print(f"| engine, {vfs} VFs, full 512-descriptor rings, 64 B | {per_run} | {rate / 1e6:.1f} | {ok} |")
    rate, per_run, ok = kernel_rate(8, rounds=300, hooks=False)
    print(f"| `TxKernel.run` alone (no interrupt hooks), 8 VFs, 64 B | {per_run} | {rate / 1e6:.1f} | {ok} |")
    for irqs in (False, True):
        for burst in (32, 256):
            rate, ok = driver_rate(burst, irqs=irqs)
            how = "MSI-X as ixgbevf, causes held" if irqs else "vectors not routed"
            name = f"TxRing.transmit, 8 VFs, burst {burst}, 64 B, {how}"
            print(f"| {name} | {burst} | {rate / 1e6:.2f} | {ok} |")
