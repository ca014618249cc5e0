"""No carrier, no frames: what is offered while the port's link is down never enters the port."""

from __future__ import annotations

import numpy as np
from conftest import RxRig, eth

from sriov.batch import Batch
from sriov.wire import DropReason, assert_rx_conserved


def _offer(rig: RxRig, frames: list[bytes]):
    return rig.wire.receive(Batch.from_frames(frames))


def test_frames_offered_while_the_link_is_down_are_counted_and_go_nowhere(rx_rig) -> None:
    rig: RxRig = rx_rig()
    rig.set_mac(0, "02:00:00:00:00:01")
    frames = [eth("02:00:00:00:00:01"), eth("ff:ff:ff:ff:ff:ff"), b"\x01"]
    memories = [m.buffer.copy() for m in rig.memories]
    regs = rig.dev.regs.copy()
    rig.dev.set_link(False)
    regs_down = rig.dev.regs.copy()
    result = _offer(rig, frames)
    assert [result.reason(i) for i in range(3)] == [DropReason.LINK_DOWN] * 3
    assert result.accepted == 0 and not result.selected.any()
    assert rig.port("rx_link_down") == 3
    assert rig.port("rx_frames_in") == 0, "they never entered the port"
    assert np.array_equal(rig.dev.regs, regs_down)
    assert all(np.array_equal(a, m.buffer) for a, m in zip(memories, rig.memories, strict=True))
    assert rig.poll(0) == []
    rig.dev.set_link(True)
    assert not np.array_equal(regs, regs_down), "LINKS followed the cable"
    result = _offer(rig, frames[:2])
    assert result.verdict(0) == "pools 0"
    assert rig.port("rx_link_down") == 3 and rig.port("rx_frames_in") == 2
    assert_rx_conserved(rig.dev)


def test_a_bound_burst_sees_the_link_too(rx_rig) -> None:
    rig: RxRig = rx_rig()
    rig.set_mac(1, "02:00:00:00:00:02")
    batch = Batch.from_frames([eth("02:00:00:00:00:02")] * 4)
    burst = rig.wire.bind_burst(batch.data, batch.offsets, batch.lengths, batch.timestamps_ns)
    rig.dev.set_link(False)
    assert burst(4) == 0
    assert list(burst.reasons) == [DropReason.LINK_DOWN] * 4
    assert rig.port("rx_link_down") == 4
    rig.dev.set_link(True)
    assert burst(4) == 4
    assert len(rig.poll(1)) == 4
    assert_rx_conserved(rig.dev)
