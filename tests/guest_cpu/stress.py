"""A guest CPU rewriting guest memory while the device's kernels run (issue 17 items 1-2).

Run as a script, in a subprocess, so that a crash fails the calling test instead of pytest:

    python stress.py LIB MODE IMPLEMENTATION SECONDS

``LIB`` is the compiled ``guest_writer.c``; ``MODE`` one of:

* ``tx-length``: two-descriptor frames whose first length a guest CPU flips 100 <-> 0xFFFF (a
  device that sums the lengths, then reads them again to copy, overruns its buffer);
* ``tx-spoof``: one-descriptor frames whose source MAC a guest CPU flips between the pool's own
  MAC and another's, with MAC anti-spoofing on (a device that checks the bytes in place, then
  reads them again to forward, sends forged frames);
* ``rx-addr``: receive while a guest CPU flips the RX descriptors' buffer addresses between a
  mapped buffer and an address outside the domain.

Prints one line of JSON: runs, frames taken/sent, forged frames, conservation errors; exit 0.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time

import numpy as np

from sriov import _fastpath, golden
from sriov.batch import Batch
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import PAGE_SIZE, Iommu
from sriov.wire import Wire, rx_conservation_errors, tx_conservation_errors

OWN = bytes.fromhex("020000000001")
OTHER = bytes.fromhex("0200000000ee")
DEST = bytes.fromhex("0200000000aa")  # no RAR: the frames leave on the wire
MEM = 64 * PAGE_SIZE
RING = 0
COUNT = 512  # TX descriptors
BUF = 16 * PAGE_SIZE
DATA_CMD = R.ADVTXD_DTYP_DATA | R.ADVTXD_DCMD_DEXT | R.ADVTXD_DCMD_IFCS


def frame(src: bytes, size: int) -> bytes:
    return DEST + src + b"\x08\x00" + bytes(i % 256 for i in range(size - 14))


class GuestCpu:
    """``flip_words`` of the C helper in a thread (ctypes releases the GIL for the call)."""

    def __init__(self, lib: str, words: np.ndarray, stride: int, a: int, b: int) -> None:
        self.fn = ctypes.CDLL(lib).flip_words
        self.fn.restype = ctypes.c_uint64
        self.fn.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_void_p,
        ]
        self.stop = ctypes.c_int(0)
        self.passes = 0
        args = (words.ctypes.data, len(words) // stride, stride, a, b, ctypes.addressof(self.stop))
        self.thread = threading.Thread(target=self._run, args=args)

    def _run(self, *args) -> None:
        self.passes = self.fn(*args)

    def __enter__(self) -> GuestCpu:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.value = 1
        self.thread.join()


def tx_device(impl, mem: np.ndarray):
    """VT mode, VF 0 (pool 0) with MAC anti-spoofing on, its TX queue 0 over ``mem``."""
    dev = Device82599("eth0", SimClock(), Iommu())
    w = dev.pf.write32
    dev.sriov_enable(2)
    w(R.GCR_EXT, R.GCR_EXT_VT_MODE_32)
    w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (2 << R.VT_CTL_POOL_SHIFT))
    for i, (mac, pool) in enumerate(((OWN, 0), (OTHER, 1)), start=1):
        w(R.MPSAR_LO(i), 1 << pool)
        w(R.RAL(i), int.from_bytes(mac[:4], "little"))
        w(R.RAH(i), int.from_bytes(mac[4:], "little") | R.RAH_AV)
    w(R.VFTE(0), 0b111)
    w(R.PFVFSPOOF(0), 0b1)  # MAC anti-spoofing for pool 0
    dev.vfs[0].domain.map(0, mem, 0, MEM)
    w(R.TDBAL(0), RING)
    w(R.TDLEN(0), COUNT * 16)
    w(R.TXDCTL(0), R.TXDCTL_ENABLE)
    wire = Wire(dev, impl)
    return dev, wire


def post(mem: np.ndarray, ring: np.ndarray, chains: list[list[tuple[int, int]]]) -> None:
    """Descriptors in ring order: each chain a list of (buffer address, length), EOP on its last."""
    d = 0
    for chain in chains:
        for k, (addr, length) in enumerate(chain):
            cmd = DATA_CMD | R.ADVTXD_DCMD_RS | length
            if k == len(chain) - 1:
                cmd |= R.ADVTXD_DCMD_EOP
            ring[d] = (addr & 0xFFFFFFFF, addr >> 32, cmd, 0)
            d += 1


def tx_stress(lib: str, impl, mode: str, seconds: float) -> dict:
    mem = np.zeros(MEM, np.uint8)
    ring = mem[RING : RING + COUNT * 16].view(np.uint32).reshape(COUNT, 4)
    dev, wire = tx_device(impl, mem)
    good = frame(OWN, 100)
    mem[BUF : BUF + 100] = np.frombuffer(good, np.uint8)
    mem[BUF + 4096 : BUF + 4196] = np.frombuffer(good, np.uint8)
    if mode == "tx-length":
        chains = [[(BUF, 100), (BUF + 4096, 100)] for _ in range(COUNT // 2 - 1)]
        # the cmd_type_len word of each chain's first descriptor: DTALEN 100 <-> 0xFFFF
        flip, stride = ring.reshape(-1)[2 : 2 + 8 * len(chains)], 8
        a = DATA_CMD | R.ADVTXD_DCMD_RS | 100
        b = DATA_CMD | R.ADVTXD_DCMD_RS | 0xFFFF
    else:
        chains = [[(BUF, 100)] for _ in range(COUNT - 1)]
        flip, stride = mem[BUF + 8 : BUF + 12].view(np.uint32), 1  # source MAC bytes 2-5
        a = int.from_bytes(OWN[2:6], "little")
        b = int.from_bytes(OTHER[2:6], "little")
    post(mem, ring, chains)
    runs = taken = sent = forged = 0
    with GuestCpu(lib, flip, stride, a, b):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            dev.regs[R.TDH(0) // 4] = 0
            dev.regs[R.TDT(0) // 4] = sum(len(c) for c in chains)
            taken += wire.process_tx(0, 0)
            for f in wire.sent.to_list():
                if f[6:12] != OWN:
                    forged += 1
            sent += len(wire.sent)
            wire.clear_sent()
            runs += 1
    return {
        "runs": runs,
        "taken": taken,
        "sent": sent,
        "forged": forged,
        "errors": tx_conservation_errors(dev),
    }


def rx_stress(lib: str, impl, seconds: float) -> dict:
    mem = np.zeros(MEM, np.uint8)
    dev = Device82599("eth0", SimClock(), Iommu())
    w = dev.pf.write32
    dev.sriov_enable(1)
    w(R.GCR_EXT, R.GCR_EXT_VT_MODE_32)
    w(R.VT_CTL, R.VT_CTL_VT_ENABLE | R.VT_CTL_REPLEN | (1 << R.VT_CTL_POOL_SHIFT))
    w(R.MPSAR_LO(1), 1)
    w(R.RAL(1), int.from_bytes(DEST[:4], "little"))
    w(R.RAH(1), int.from_bytes(DEST[4:], "little") | R.RAH_AV)
    w(R.VFRE(0), 0b11)
    w(R.VMOLR(0), R.VMOLR_AUPE)
    w(R.VLVF(0), R.VLVF_VIEN)
    w(R.VLVFB(0), 1)
    dev.vfs[0].domain.map(0, mem, 0, 32 * PAGE_SIZE)  # pages 32..63 stay outside the domain
    count = 256
    ring = mem[: count * 16].view(np.uint32).reshape(count, 4)
    w(R.RDBAL(0), 0)
    w(R.RDLEN(0), count * 16)
    w(R.SRRCTL(0), 2 | R.SRRCTL_DROP_EN)
    w(R.RXDCTL(0), R.RXDCTL_ENABLE)
    wire = Wire(dev, impl)
    batch = Batch.from_frames([frame(OTHER, 60 + (i % 3) * 1000) for i in range(count - 1)])
    inside, outside = BUF, 40 * PAGE_SIZE
    runs = delivered = 0
    with GuestCpu(lib, ring.reshape(-1)[: 4 * count], 4, inside, outside):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ring[:, 1] = 0
            dev.regs[R.RDH(0) // 4] = 0
            dev.regs[R.RDT(0) // 4] = count - 1
            delivered += int(wire.receive(batch).accepted)
            runs += 1
    return {
        "runs": runs,
        "delivered": delivered,
        "forged": 0,
        "errors": rx_conservation_errors(dev),
        "outside_written": bool(mem[32 * PAGE_SIZE :].any()),
    }


def main() -> None:
    lib, mode, which, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    impl = {"compiled": _fastpath, "golden": golden}[which]
    result = rx_stress(lib, impl, seconds) if mode == "rx-addr" else tx_stress(lib, impl, mode, seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
