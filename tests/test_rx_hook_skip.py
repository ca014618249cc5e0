"""The receive kernel skips the device's interrupt hook only when the hook would change nothing.

`Wire.bind_burst` calls ``device.rx_queue_written`` after a burst unless the compiled kernel
reports (``notify`` False) that every queue it wrote to has its interrupt cause already held
(``device.rx_armed``, kept by `sriov.hw.interrupts.QueueVector`). The property: a device driven
that way and a twin whose bursts always call the hook go through identical interrupt histories
(every vector's fire count, last fire, pending/masked state, cause registers, MSI-X arrival
times, unrouted causes) under any sequence of bursts, unmasks, masks, cause clears, interval
changes, routing changes and clock advances.
"""

from __future__ import annotations

import numpy as np
from conftest import RxRig, eth
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov import _fastpath
from sriov.drivers import coalesce
from sriov.hw import regs as R

NUM_VFS = 3
MACS = [bytes([0x02, 0, 0, 0, 7, i]) for i in range(NUM_VFS)]


class Twin:
    """A port whose VF drivers programmed their interrupts as ixgbevf does; ``skip``: the bursts
    may leave the hook out (the product), else they always call it (the reference)."""

    def __init__(self, skip: bool, rx_usecs: int) -> None:
        rig = RxRig(_fastpath, num_vfs=NUM_VFS, ring=64, mem=1 << 20)
        self.rig = rig
        self.arrivals: list[tuple[int, int, int]] = []
        for vf in range(NUM_VFS):
            rig.set_mac(vf, MACS[vf])
            fn = rig.dev.vfs[vf]
            mask, _ = coalesce.configure_vf_msix(fn, 1, rx_usecs)
            coalesce.irq_enable(fn, mask)
            for v in range(R.VF_MSIX_VECTORS):
                fn.set_msix_handler(v, lambda v, vf=vf: self.arrivals.append((rig.dev.clock.now, vf, v)))
        frames = [eth(MACS[k % NUM_VFS]) for k in range(3 * NUM_VFS)]
        data = np.frombuffer(b"".join(frames), np.uint8).copy()
        offsets = np.arange(len(frames), dtype=np.int64) * 64
        lengths = np.full(len(frames), 64, np.uint32)
        self.data = data
        self.burst = rig.wire.bind_burst(data, offsets, lengths)
        if not skip:
            self.burst._always = True
        self.calls = 0
        hook = self.burst._notify

        def counted(counts):
            self.calls += 1
            hook(counts)

        self.burst._notify = counted

    def step(self, op) -> None:
        kind, vf, arg = op
        rig, fn = self.rig, self.rig.dev.vfs[vf]
        if kind == "burst":
            # frames k with k % NUM_VFS == vf go to that VF: pick how many of the batch run
            self.burst(arg % (3 * NUM_VFS) + 1)
        elif kind == "advance":
            rig.dev.clock.advance(arg * 97)
        elif kind == "run_before":  # events due exactly at the new time have not run yet
            clock = rig.dev.clock
            nxt = clock.next_event_time()
            clock.run_before(nxt if nxt is not None and arg % 2 else clock.now + arg * 97)
        elif kind == "refill":
            rig.rings[vf].discard()
        elif kind == "unmask":
            fn.write32(R.VTEIMS, 1 << (arg % 3))
        elif kind == "mask":
            fn.write32(R.VTEIMC, 1 << (arg % 3))
        elif kind == "clear":
            fn.write32(R.VTEICR, 1 << (arg % 3))
        elif kind == "read_eicr":
            fn.read32(R.VTEICR)
        elif kind == "eitr":
            fn.write32(R.VTEITR(arg % 2), (arg % 7) << 3)
        elif kind == "route":
            # queue 0's RX entry to vector arg % 4 (a VF has no vector 3: unrouted), TX on vector 0
            fn.write32(R.VTIVAR(0), (R.IVAR_ALLOC_VAL | arg % 4) | R.IVAR_ALLOC_VAL << 8)
        elif kind == "reset":
            fn.write32(R.VFCTRL, R.CTRL_RST)
        elif kind == "mode":
            # queues per pool change (64 x 2 vs 32 x 4): the queue -> function map moves
            rig.w(R.GCR_EXT, R.GCR_EXT_VT_MODE_64 if arg % 2 else R.GCR_EXT_VT_MODE_32)

    def state(self):
        out = []
        for fn in self.rig.dev.vfs:
            m = fn.msix
            out.append(
                (
                    [(v.fired, v.last_fire, v.pending, v.masked) for v in m.vectors],
                    m.unrouted,
                    fn.read32(R.VTEICS),
                    fn.read32(R.VTEIMS),
                )
            )
        return out, list(self.arrivals), self.rig.dev.clock.now


OPS = st.tuples(
    st.sampled_from(
        ["burst"] * 8 + ["advance"] * 3 + ["run_before"] * 2 + ["refill"] * 2 + ["unmask"] * 3
        + ["mask", "clear", "read_eicr", "eitr", "route", "mode", "reset"]
    ),
    st.integers(0, NUM_VFS - 1),
    st.integers(0, 200),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(rx_usecs=st.sampled_from([0, 0, 4, 20]), ops=st.lists(OPS, max_size=60))
def test_skipping_the_hook_changes_no_interrupt(rx_usecs, ops) -> None:
    product, reference = Twin(True, rx_usecs), Twin(False, rx_usecs)
    for op in ops:
        product.step(op)
        reference.step(op)
        assert product.state() == reference.state(), f"after {op}"
    for twin in (product, reference):
        twin.rig.dev.clock.advance(10_000_000)
    assert product.state() == reference.state()
    assert product.calls <= reference.calls


def test_a_held_cause_needs_no_hook_and_an_unmask_brings_it_back() -> None:
    """rx-usecs 0: the first burst fires (auto-masked), the second latches the cause, the rest
    change nothing and skip the hook; after VTEIMS the latched cause fires and the next burst
    calls the hook again."""
    twin = Twin(True, 0)
    fn = twin.rig.dev.vfs[0]
    vec = fn.msix.vectors[0]
    twin.step(("burst", 0, 0))  # one frame, to VF 0
    assert vec.fired == 1 and vec.masked and twin.calls == 1
    twin.step(("burst", 0, 0))
    assert vec.pending and twin.calls == 2
    for _ in range(5):
        twin.step(("burst", 0, 0))
    assert twin.calls == 2, "a held cause must not call the hook"
    assert twin.burst._kernel.notify is False
    fn.write32(R.VTEIMS, 1)
    assert vec.fired == 2  # the latched cause fires on unmask
    twin.step(("burst", 0, 0))
    assert twin.calls == 3


def test_unrouted_queues_always_reach_the_hook() -> None:
    """A queue without a valid VTIVAR entry is never armed: its causes are counted every time."""
    twin = Twin(True, 0)
    fn = twin.rig.dev.vfs[1]
    twin.step(("route", 1, 3))  # queue 0's RX cause to vector 3, which a VF does not have
    before = fn.msix.unrouted
    for _ in range(4):
        twin.burst(2)  # frames 0 and 1: VF 0 and VF 1
    assert fn.msix.unrouted == before + 4
