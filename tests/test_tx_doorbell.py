"""The transmit doorbell's fast path: `TxRing` stores the tail where `Device82599.tx_tail_register`
says it lands and rings ``device.tx_doorbell`` itself, which must be the same as ``fn.write32``."""

from __future__ import annotations

import pytest
from conftest import RxRig, eth

from sriov import _fastpath
from sriov.batch import Batch
from sriov.drivers.txring import TxRing
from sriov.hw import regs as R

MACS = [bytes([0x02, 0, 0, 0, 9, i]) for i in range(4)]


def _rig() -> tuple[RxRig, list[TxRing]]:
    rig = RxRig(_fastpath, num_vfs=4, ring=64, mem=1 << 20)
    for vf in range(4):
        rig.set_mac(vf, MACS[vf])
    rig.w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN)
    rig.w(R.VFTE(0), 0xFFFFFFFF)
    tx = [TxRing(rig.dev.vfs[vf], rig.memories[vf], 0, count=64, implementation=_fastpath) for vf in range(4)]
    return rig, tx


def test_tail_register_names_tx_tails_only() -> None:
    rig, _ = _rig()
    dev = rig.dev
    qpp = dev.queues_per_pool()
    gcr = R.GCR_EXT // 4
    for vf in range(4):
        assert dev.tx_tail_register(dev.vfs[vf], R.VFTDT(0)) == (
            vf * qpp,
            R.TDT(vf * qpp) // 4,
            gcr,
            int(dev.regs[gcr]),
        )
        for offset in (R.VFRDT(0), R.VFTDH(0), R.VFTXDCTL(0), R.VFMAILBOX, R.VTEICR):
            assert dev.tx_tail_register(dev.vfs[vf], offset) is None
    assert dev.tx_tail_register(dev.pf, R.TDT(5))[:2] == (5, R.TDT(5) // 4)
    assert dev.tx_tail_register(dev.pf, R.RDT(5)) is None
    other = RxRig(_fastpath, num_vfs=1).dev
    assert dev.tx_tail_register(other.vfs[0], R.VFTDT(0)) is None  # another device's function


def test_fast_doorbell_runs_the_engine_like_write32() -> None:
    rig, tx = _rig()
    calls: list[int] = []
    bell = rig.dev.tx_doorbell

    def counted(queue: int) -> None:
        calls.append(queue)
        bell(queue)

    rig.dev.tx_doorbell = counted
    batch = Batch.from_frames([eth(MACS[1], 64, src=MACS[0])] * 5)
    assert tx[0]._tail is None  # first write through fn.write32, which also binds the fast path
    for k in range(3):
        assert tx[0].transmit(batch) == 5
        assert tx[0]._tail is not None
        q = rig.dev.vf_queue(0, 0)
        assert int(rig.dev.regs[R.TDT(q) // 4]) == tx[0]._ntu == 5 * (k + 1)
        assert int(rig.dev.regs[R.TDH(q) // 4]) == tx[0]._ntu  # the engine ran on the tail write
        assert tx[0].completed == 5 * (k + 1)
    assert calls == [rig.dev.vf_queue(0, 0)] * 3
    assert len(rig.rings[1].poll(64)) == 15


def test_guard_change_falls_back_to_write32() -> None:
    rig, tx = _rig()
    batch = Batch.from_frames([eth(MACS[2], 64, src=MACS[1])] * 2)
    tx[1].transmit(batch)
    assert tx[1]._tail is not None
    old_word = tx[1]._tail[1]
    # the PF switches to 64 pools of 2 queues: VF 1's queue 0 is now another PF queue
    rig.w(R.GCR_EXT, R.GCR_EXT_VT_MODE_64)
    writes: list[tuple[int, int]] = []
    fn = rig.dev.vfs[1]
    real = fn.write32

    def spy(offset: int, value: int) -> None:
        writes.append((offset, value))
        real(offset, value)

    fn.write32 = spy
    tx[1].transmit(batch)
    assert writes == [(R.VFTDT(0), tx[1]._ntu)]
    assert tx[1]._tail[1] == R.TDT(rig.dev.vf_queue(1, 0)) // 4 != old_word
    assert int(rig.dev.regs[old_word]) == 2  # the old queue's tail was not written


@pytest.mark.parametrize("doorbell", [True, False])
def test_no_doorbell_still_stores_the_tail(doorbell: bool) -> None:
    rig, tx = _rig()
    batch = Batch.from_frames([eth(MACS[3], 64, src=MACS[2])] * 3)
    tx[2].transmit(batch)  # binds
    if not doorbell:
        rig.dev.tx_doorbell = None
    tx[2].transmit(batch)
    q = rig.dev.vf_queue(2, 0)
    assert int(rig.dev.regs[R.TDT(q) // 4]) == 6
    assert int(rig.dev.regs[R.TDH(q) // 4]) == (6 if doorbell else 3)
