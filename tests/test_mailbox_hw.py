"""The 82599 mailbox hardware as the drivers see it through BAR0 (spec §1.2-§1.4)."""

from __future__ import annotations

import pytest

from sriov.errors import RegisterAccessError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import Iommu


@pytest.fixture
def dev() -> Device82599:
    d = Device82599("eth0", SimClock(), Iommu())
    d.sriov_enable(20)
    return d


def up(dev: Device82599) -> None:
    dev.pf.write32(R.CTRL_EXT, R.CTRL_EXT_PFRSTD)


def test_identity(dev: Device82599) -> None:
    assert (dev.pf.vendor_id, dev.pf.device_id) == (0x8086, 0x10FB)
    assert (dev.vf(0).vendor_id, dev.vf(0).device_id) == (0x8086, 0x10ED)
    assert dev.vf(3).rid != dev.vf(4).rid != dev.pf.rid


def test_rsti_held_until_pfrstd_then_rstd_read_to_clear(dev: Device82599) -> None:
    vf = dev.vf(5)
    assert vf.read32(R.VFMAILBOX) & R.VFMAILBOX_RSTI
    assert vf.read32(R.VFMAILBOX) & R.VFMAILBOX_RSTI, "RSTI is not read-to-clear"
    up(dev)
    first = vf.read32(R.VFMAILBOX)
    assert not first & R.VFMAILBOX_RSTI
    assert first & R.VFMAILBOX_RSTD
    assert not vf.read32(R.VFMAILBOX) & R.VFMAILBOX_RSTD, "RSTD is read-to-clear"


def test_pf_reset_raises_rsti_again(dev: Device82599) -> None:
    up(dev)
    dev.pf.write32(R.CTRL, R.CTRL_RST)
    assert dev.vf(0).read32(R.VFMAILBOX) & R.VFMAILBOX_RSTI
    assert not dev.pf.read32(R.CTRL_EXT) & R.CTRL_EXT_PFRSTD


def test_vf_lock_granted_only_when_pf_does_not_hold_it(dev: Device82599) -> None:
    up(dev)
    vf = dev.vf(2)
    dev.pf.write32(R.PFMAILBOX(2), R.PFMAILBOX_PFU)
    assert dev.pf.read32(R.PFMAILBOX(2)) & R.PFMAILBOX_PFU
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_VFU)  # the VF asks while the PF holds it
    seen = vf.read32(R.VFMAILBOX)
    assert not seen & R.VFMAILBOX_VFU and seen & R.VFMAILBOX_PFU
    dev.pf.write32(R.PFMAILBOX(2), 0)  # PF releases
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_VFU)
    assert vf.read32(R.VFMAILBOX) & R.VFMAILBOX_VFU
    dev.pf.write32(R.PFMAILBOX(2), R.PFMAILBOX_PFU)  # now the PF asks while the VF holds it
    assert not dev.pf.read32(R.PFMAILBOX(2)) & R.PFMAILBOX_PFU
    assert dev.pf.read32(R.PFMAILBOX(2)) & R.PFMAILBOX_VFU


def test_vf_write_without_vfu_releases_the_lock(dev: Device82599) -> None:
    up(dev)
    vf = dev.vf(1)
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_VFU)
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    assert not vf.read32(R.VFMAILBOX) & R.VFMAILBOX_VFU


def test_rvfu_breaks_a_stuck_vf_lock_and_clears_its_causes(dev: Device82599) -> None:
    up(dev)
    vf = dev.vf(17)
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_VFU | R.VFMAILBOX_REQ)
    icr = R.MBVFICR(1)
    assert dev.pf.read32(icr) & (R.MBVFICR_VFREQ_VF1 << 1)
    dev.pf.write32(R.PFMAILBOX(17), R.PFMAILBOX_RVFU)
    assert not dev.pf.read32(R.PFMAILBOX(17)) & R.PFMAILBOX_VFU
    assert dev.pf.read32(icr) & (R.MBVFICR_VFREQ_VF1 << 1) == 0


def test_req_and_ack_set_mbvficr_and_the_pf_cause(dev: Device82599) -> None:
    up(dev)
    dev.vf(3).write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    dev.vf(19).write32(R.VFMAILBOX, R.VFMAILBOX_ACK)
    assert dev.pf.read32(R.MBVFICR(0)) == R.MBVFICR_VFREQ_VF1 << 3
    assert dev.pf.read32(R.MBVFICR(1)) == R.MBVFICR_VFACK_VF1 << 3
    assert dev.pf.read32(R.EICR) & R.EICR_MAILBOX
    assert dev.pf.read32(R.EICR) == 0, "EICR is read-to-clear"


def test_mbvficr_is_write_one_to_clear(dev: Device82599) -> None:
    up(dev)
    for n in (0, 1, 2):
        dev.vf(n).write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    dev.pf.write32(R.MBVFICR(0), R.MBVFICR_VFREQ_VF1 << 1)
    assert dev.pf.read32(R.MBVFICR(0)) == (R.MBVFICR_VFREQ_VF1 << 0) | (R.MBVFICR_VFREQ_VF1 << 2)
    dev.pf.write32(R.MBVFICR(0), 0)
    assert dev.pf.read32(R.MBVFICR(0)) == 0b101


def test_pf_sts_and_ack_reach_the_vf_and_are_read_to_clear(dev: Device82599) -> None:
    up(dev)
    vf = dev.vf(4)
    vf.read32(R.VFMAILBOX)  # consume RSTD
    dev.pf.write32(R.PFMAILBOX(4), R.PFMAILBOX_STS)
    dev.pf.write32(R.PFMAILBOX(4), R.PFMAILBOX_ACK)
    seen = vf.read32(R.VFMAILBOX)
    assert seen & R.VFMAILBOX_PFSTS and seen & R.VFMAILBOX_PFACK
    assert vf.read32(R.VFMAILBOX) & (R.VFMAILBOX_PFSTS | R.VFMAILBOX_PFACK) == 0
    assert dev.vf(5).read32(R.VFMAILBOX) & R.VFMAILBOX_PFSTS == 0, "another VF saw nothing"


def test_mailbox_memory_is_one_buffer_seen_from_two_bars(dev: Device82599) -> None:
    dev.vf(7).write32(R.VFMBMEM + 4 * 3, 0xDEADBEEF)
    assert dev.pf.read32(R.PFMBMEM(7) + 4 * 3) == 0xDEADBEEF
    dev.pf.write32(R.PFMBMEM(7), 0x80000001)
    assert dev.vf(7).read32(R.VFMBMEM) == 0x80000001
    assert dev.vf(6).read32(R.VFMBMEM) == 0


def test_vfctrl_rst_raises_vflre_and_disables_the_pool(dev: Device82599) -> None:
    up(dev)
    dev.pf.write32(R.GCR_EXT, R.GCR_EXT_VT_MODE_64)
    dev.pf.write32(R.VFRE(0), 0xFFFFFFFF)
    dev.pf.write32(R.VFTE(0), 0xFFFFFFFF)
    q = dev.vf_queue(9, 0)
    dev.pf.write32(R.RXDCTL(q), R.RXDCTL_ENABLE)
    dev.pf.read32(R.EICR)
    dev.vf(9).write32(R.VFCTRL, R.CTRL_RST)
    assert dev.pf.read32(R.VFLRE(0)) == 1 << 9
    assert dev.pf.read32(R.VFRE(0)) == 0xFFFFFFFF & ~(1 << 9)
    assert dev.pf.read32(R.VFTE(0)) == 0xFFFFFFFF & ~(1 << 9)
    assert not dev.pf.read32(R.RXDCTL(q)) & R.RXDCTL_ENABLE
    assert dev.pf.read32(R.EICR) & R.EICR_MAILBOX
    dev.pf.write32(R.VFLREC(0), 1 << 9)  # the PF acknowledges the event
    assert dev.pf.read32(R.VFLRE(0)) == 0


def test_vflre_of_high_vfs_lives_in_the_second_register() -> None:
    d = Device82599("eth1", SimClock(), Iommu())
    d.sriov_enable(40)
    d.vf(35).write32(R.VFCTRL, R.CTRL_RST)
    assert d.pf.read32(R.VFLRE(1)) == 1 << 3
    assert d.pf.read32(R.VFLRE(0)) == 0


def test_mailbox_interrupts_travel_on_the_clock(dev: Device82599) -> None:
    up(dev)
    got: list[tuple[str, int]] = []
    dev.pf.set_msix_handler(0, lambda v: got.append(("pf", dev.clock.now)))
    dev.pf.write32(R.EIMS, R.EICR_MAILBOX)
    vf = dev.vf(2)
    vf.set_msix_handler(2, lambda v: got.append(("vf", dev.clock.now)))
    vf.write32(R.VTIVAR_MISC, R.IVAR_ALLOC_VAL | 2)
    vf.write32(R.VTEIMS, 1 << 2)
    vf.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    assert got == [], "delivery takes the interrupt latency"
    dev.clock.advance(dev.irq_latency_ns)
    assert got == [("pf", dev.irq_latency_ns)]
    dev.pf.write32(R.PFMAILBOX(2), R.PFMAILBOX_STS)
    dev.clock.advance(dev.irq_latency_ns)
    assert got[-1] == ("vf", 2 * dev.irq_latency_ns)
    assert vf.read32(R.VTEICR) == 1 << 2
    assert vf.read32(R.VTEICR) == 0


def test_masked_vector_does_not_fire_until_unmasked(dev: Device82599) -> None:
    up(dev)
    fired: list[int] = []
    dev.pf.set_msix_handler(0, fired.append)
    dev.vf(0).write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    dev.clock.advance(10_000)
    assert fired == []
    dev.pf.write32(R.EIMS, R.EICR_MAILBOX)  # unmasking a pending cause sends it
    dev.clock.advance(10_000)
    assert fired == [0]
    dev.pf.write32(R.EIMC, R.EICR_MAILBOX)
    dev.vf(0).write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    dev.clock.advance(10_000)
    assert fired == [0]


def test_vf_bar_exposes_only_its_own_queues(dev: Device82599) -> None:
    dev.pf.write32(R.GCR_EXT, R.GCR_EXT_VT_MODE_64)  # 2 queues per pool
    dev.vf(3).write32(R.VFRDT(1), 77)
    assert dev.pf.read32(R.RDT(3 * 2 + 1)) == 77
    with pytest.raises(RegisterAccessError):
        dev.vf(3).write32(R.VFRDT(2), 1)  # queue 2 does not exist in 64-pool mode
    assert dev.vf(3).read32(R.VFRDT(2)) == 0


def test_unimplemented_offsets_read_zero_and_refuse_writes(dev: Device82599) -> None:
    assert dev.vf(0).read32(0x3000) == 0
    with pytest.raises(RegisterAccessError, match="no register at offset 0x3000"):
        dev.vf(0).write32(0x3000, 1)
    with pytest.raises(RegisterAccessError):
        dev.vf(0).write32(0x4000, 1)  # past the BAR
    with pytest.raises(RegisterAccessError):
        dev.vf(0).write32(0x2FE, 1)  # unaligned
    with pytest.raises(RegisterAccessError):
        dev.pf.write32(0x1FFFC, 1)
    with pytest.raises(RegisterAccessError):
        dev.pf.write32(R.VT_CTL, 1 << 32)
    assert dev.vf(0).bad_accesses == 3


def test_82598_aliases_fold_onto_the_82599_homes(dev: Device82599) -> None:
    dev.pf.write32(R.RAL(3), 0x44332211)
    assert dev.pf.read32(R.RAR_BASE + 8 * 3) == 0x44332211
    assert dev.state.rar[3, 0] == 0x44332211
    dev.pf.write32(R.SRRCTL_82598_ALIAS(5), 2)
    assert dev.pf.read32(R.SRRCTL(5)) == 2


def test_state_views_share_memory_with_the_register_file(dev: Device82599) -> None:
    dev.pf.write32(R.MPSAR_LO(10), 0x5)
    dev.pf.write32(R.MPSAR_HI(10), 0x1)
    assert int(dev.state.mpsar[10]) == (1 << 32) | 5
    dev.pf.write32(R.VLVFB(2 * 7 + 1), 0x80000000)
    assert int(dev.state.vlvfb[7]) == 1 << 63
    dev.pf.write32(R.VFRE(1), 1)
    assert int(dev.state.vfre[0]) == 1 << 32
    dev.pf.write32(R.RDT(70), 12)
    assert dev.state.rx_queue(70)[R.Q_RDT // 4] == 12


def test_link_change_shows_in_links_and_vflinks_and_raises_lsc(dev: Device82599) -> None:
    assert dev.pf.read32(R.LINKS) & R.LINKS_UP
    dev.set_link(False)
    assert not dev.pf.read32(R.LINKS) & R.LINKS_UP
    assert not dev.vf(0).read32(R.VFLINKS) & R.LINKS_UP
    assert dev.pf.read32(R.EICR) & R.EICR_LSC


def test_qde_sets_per_queue_drop_enable(dev: Device82599) -> None:
    dev.pf.write32(R.QDE, R.QDE_WRITE | R.QDE_ENABLE | (12 << R.QDE_IDX_SHIFT))
    assert dev.qde[12] == R.QDE_ENABLE
    assert dev.qde[11] == 0
