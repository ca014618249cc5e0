"""The transmit engine skips the device's TX-completion hook only when it would change nothing.

After a run, `Wire` calls ``device.tx_queues_completed(tx_done)`` unless the compiled kernel
reports (``tx_hook_needed()`` False) that every TX queue that completed frames has its transmit
cause already held (``device.tx_armed``, kept by `sriov.hw.interrupts.QueueVector`). The property:
VFs sending through the VEB on a port that skips that way and on a twin whose runs always call
both hooks go through identical interrupt histories (every vector's fire count, last fire,
pending/masked state, cause registers, MSI-X arrival times, unrouted causes) and identical
datapath results under any sequence of sends, unmasks, masks, cause clears, interval changes,
routing changes, resets and clock advances.
"""

from __future__ import annotations

from conftest import RxRig, eth
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov import _fastpath
from sriov.batch import Batch
from sriov.drivers import coalesce
from sriov.drivers.txring import TxRing
from sriov.hw import regs as R

NUM_VFS = 3
MACS = [bytes([0x02, 0, 0, 0, 8, i]) for i in range(NUM_VFS)]


class Twin:
    """VFs programmed as ixgbevf does (RX and TX of queue 0 on vector 0), each with a TX ring
    sending to the next VF; ``skip``: the product, else every run calls both hooks."""

    def __init__(self, skip: bool, rx_usecs: int) -> None:
        rig = RxRig(_fastpath, num_vfs=NUM_VFS, ring=64, mem=1 << 20)
        self.rig = rig
        self.arrivals: list[tuple[int, int, int]] = []
        for vf in range(NUM_VFS):
            rig.set_mac(vf, MACS[vf])
        rig.w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN)
        rig.w(R.VFTE(0), 0xFFFFFFFF)
        for vf in range(NUM_VFS):
            fn = rig.dev.vfs[vf]
            mask, _ = coalesce.configure_vf_msix(fn, 1, rx_usecs)
            coalesce.irq_enable(fn, mask)
            for v in range(R.VF_MSIX_VECTORS):
                fn.set_msix_handler(v, lambda v, vf=vf: self.arrivals.append((rig.dev.clock.now, vf, v)))
        self.tx = [
            TxRing(rig.dev.vfs[vf], rig.memories[vf], 0, count=32, implementation=_fastpath)
            for vf in range(NUM_VFS)
        ]
        self.batches = [
            Batch.from_frames([eth(MACS[(vf + 1) % NUM_VFS], 64, src=MACS[vf])] * 6) for vf in range(NUM_VFS)
        ]
        if not skip:
            rig.wire._tx_compiled = False  # the reference: both hooks after every run that did something
        self.calls = 0
        dev = rig.dev
        hook = dev.tx_queues_completed

        def counted(queues):
            self.calls += 1
            hook(queues)

        dev.tx_queues_completed = counted
        self.sent = 0

    def step(self, op) -> None:
        kind, vf, arg = op
        rig, fn = self.rig, self.rig.dev.vfs[vf]
        if kind == "send":
            batch = self.batches[vf]
            self.sent += self.tx[vf].transmit(batch[: arg % len(batch) + 1])
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
            # queue 0's TX entry to vector arg % 4 (a VF has no vector 3: unrouted), RX on vector arg // 4 % 2
            rx = R.IVAR_ALLOC_VAL | (arg // 4) % 2
            fn.write32(R.VTIVAR(0), rx | (R.IVAR_ALLOC_VAL | arg % 4) << 8)
        elif kind == "reset":
            fn.write32(R.VFCTRL, R.CTRL_RST)
        elif kind == "mode":
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
        rings = [(t._ntu, t._ntc, t.completed) for t in self.tx]
        return out, list(self.arrivals), self.rig.dev.clock.now, self.sent, rings


OPS = st.tuples(
    st.sampled_from(
        ["send"] * 8 + ["advance"] * 3 + ["run_before"] * 2 + ["refill"] * 2 + ["unmask"] * 3
        + ["mask", "clear", "read_eicr", "eitr", "route", "mode", "reset"]
    ),
    st.integers(0, NUM_VFS - 1),
    st.integers(0, 200),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(rx_usecs=st.sampled_from([0, 0, 4, 20]), ops=st.lists(OPS, max_size=60))
def test_skipping_the_tx_hook_changes_no_interrupt(rx_usecs, ops) -> None:
    product, reference = Twin(True, rx_usecs), Twin(False, rx_usecs)
    for op in ops:
        product.step(op)
        reference.step(op)
        assert product.state() == reference.state(), f"after {op}"
    for twin in (product, reference):
        twin.rig.dev.clock.advance(10_000_000)
    assert product.state() == reference.state()
    assert product.calls <= reference.calls


def test_a_held_tx_cause_needs_no_hook_and_an_unmask_brings_it_back() -> None:
    """rx-usecs 0: the first send fires vector 0 (auto-masked), the second latches the cause, the
    rest change nothing and skip the TX hook; after VTEIMS the latched cause fires and the next
    send calls the hook again."""
    twin = Twin(True, 0)
    fn = twin.rig.dev.vfs[0]
    vec = fn.msix.vectors[0]
    twin.step(("send", 0, 0))
    assert vec.fired == 1 and vec.masked and twin.calls == 1
    twin.step(("send", 0, 0))
    assert vec.pending and twin.calls == 2
    for _ in range(5):
        twin.step(("send", 0, 0))
    assert twin.calls == 2, "a held cause must not call the hook"
    assert twin.rig.wire._tx_kernel.tx_hook_needed() is False
    fn.write32(R.VTEIMS, 1)
    assert vec.fired == 2  # the latched cause fires on unmask
    twin.step(("send", 0, 0))
    assert twin.calls == 3


def test_unrouted_tx_queues_always_reach_the_hook() -> None:
    """A TX queue without a valid VTIVAR entry is never armed: its causes are counted every time."""
    twin = Twin(True, 0)
    fn = twin.rig.dev.vfs[1]
    twin.step(("route", 1, 3))  # queue 0's TX cause to vector 3, which a VF does not have
    before = fn.msix.unrouted
    for _ in range(4):
        twin.step(("send", 1, 0))
    assert fn.msix.unrouted == before + 4


def test_a_mode_change_disarms_through_the_key() -> None:
    """Queues per pool change: the table's key no longer matches, so the hook runs."""
    twin = Twin(True, 0)
    for _ in range(3):
        twin.step(("send", 0, 0))
    calls = twin.calls
    dev = twin.rig.dev
    dev.tx_armed[R.MAX_QUEUES] = 99  # as if made under another geometry
    twin.step(("send", 0, 0))
    assert twin.calls == calls + 1


def test_a_cause_armed_until_a_timer_due_now_reaches_the_hook() -> None:
    """Armed only until the moderation timer's due time: once the clock stands at that time (the
    timer's event not yet run), a completion must reach the hook, which fires the vector."""
    ops = [("send", 0, 0), ("unmask", 0, 0), ("send", 0, 0)]
    product, reference = Twin(True, 20), Twin(False, 20)
    for op in ops:
        product.step(op)
        reference.step(op)
    vec = product.rig.dev.vfs[0].msix.vectors[0]
    q = product.rig.dev.vf_queue(0, 0)
    assert vec._timer is not None and int(product.rig.dev.tx_armed[q]) == vec._timer.time
    fired = vec.fired
    due = vec._timer.time
    for twin in (product, reference):
        twin.rig.dev.clock.run_before(due)  # the MSI-X delivery runs, the timer's event not yet
        assert twin.rig.dev.clock.now == due
        twin.step(("send", 0, 0))
    assert vec.fired == fired + 1
    assert product.state() == reference.state()
