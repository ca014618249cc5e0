"""The PF driver (spec §3): bring-up, SR-IOV enable, every handler's success and NACK paths,
VF resets, pings, the administrator's controls, and garbage from a VF.

VFs here are driven through their BAR registers only (`RawVf`: the legacy handshake of
`VfMailbox`), so every message and its reply is exactly what a test chose.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov.drivers import mailbox as M
from sriov.drivers.mailbox import MboxApi, Message, VfMailbox, XcastMode
from sriov.errors import ConfigError, DriverStateError, MailboxError
from sriov.host import Host, Port
from sriov.hw import regs as R

ADMIN_MAC = "02:00:00:00:00:10"


class RawVf:
    """A VF with no driver: the test speaks the legacy mailbox through its registers."""

    def __init__(self, port: Port, n: int) -> None:
        self.port = port
        self.n = n
        self.fn = port.vf(n)
        self.mbx = VfMailbox(self.fn, port.device.clock)
        self.mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT

    def ask(self, msg: Message, reply_len: int | None = None) -> Message:
        return self.mbx.transact(msg, reply_len)

    def reset(self) -> Message:
        self.fn.write32(R.VFCTRL, R.CTRL_RST)
        self.mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT
        self.mbx.write(M.reset_request().words())
        self.port.device.clock.advance(10_000_000)
        return Message.from_words(self.mbx.read_posted(M.IXGBE_VF_PERMADDR_MSG_LEN))

    def negotiate(self, api: MboxApi) -> Message:
        return self.ask(M.api_negotiate(api))

    def ready(self, api: MboxApi = MboxApi.API_13) -> RawVf:
        self.reset()
        assert self.negotiate(api).acked
        return self


@pytest.fixture
def host() -> Host:
    return Host(seed=7)


@pytest.fixture
def port(host: Host) -> Port:
    p = host.add_port("eth0", mac="00:1b:21:aa:bb:cc")
    p.pf.set_numvfs(8)
    return p


def reg(port: Port, offset: int) -> int:
    """A PF register as the PF's BAR shows it (aliases resolved; none of these has side effects)."""
    return port.device.pf.read32(offset)


def vlvf_entries(port: Port) -> dict[int, int]:
    """VID -> 64-bit pool bitmap of every valid VLVF entry."""
    out = {}
    for i in range(R.NUM_VLVF):
        v = reg(port, R.VLVF(i))
        if v & R.VLVF_VIEN:
            out[v & R.VLVF_VLANID_MASK] = reg(port, R.VLVFB(2 * i)) | reg(port, R.VLVFB(2 * i + 1)) << 32
    return out


def rar_entries(port: Port) -> dict[bytes, int]:
    """MAC -> pool bitmap of every valid RAR."""
    out: dict[bytes, int] = {}
    for i in range(R.NUM_RAR):
        rah = reg(port, R.RAH(i))
        if rah & R.RAH_AV:
            mac = M.words_to_mac(reg(port, R.RAL(i)), rah)
            out[mac] = out.get(mac, 0) | reg(port, R.MPSAR_LO(i)) | reg(port, R.MPSAR_HI(i)) << 32
    return out


def vfta_bit(port: Port, vid: int) -> bool:
    return bool(reg(port, R.VFTA(vid // 32)) >> (vid % 32) & 1)


def bit(port: Port, base: object, pool: int) -> bool:
    return bool(reg(port, base(pool // 32)) >> (pool % 32) & 1)  # type: ignore[operator]


# =============================================================================================
# bring-up and SR-IOV enable
def test_pf_bring_up_registers(host: Host) -> None:
    port = host.add_port("eth1", mac="00:1b:21:00:00:01")
    assert reg(port, R.CTRL_EXT) & R.CTRL_EXT_PFRSTD
    assert reg(port, R.VT_CTL) == 0, "no VFs: ixgbe leaves virtualization off"
    assert rar_entries(port) == {bytes.fromhex("001b21000001"): 1}
    assert reg(port, R.MAXFRS) >> 16 == 1518
    assert reg(port, R.EIMS) & R.EICR_MAILBOX and reg(port, R.EIMS) & R.EICR_LSC
    assert port.device.link_up and port.pf.is_up


@pytest.mark.parametrize(
    ("num_vfs", "qpp", "mode"), [(8, 4, R.GCR_EXT_VT_MODE_32), (40, 2, R.GCR_EXT_VT_MODE_64)]
)
def test_sriov_enable_pool_mode_and_virtualization(host: Host, num_vfs: int, qpp: int, mode: int) -> None:
    port = host.add_port("eth1")
    port.pf.set_numvfs(num_vfs)
    assert port.device.num_vfs == num_vfs and port.pf.num_vfs == num_vfs
    assert reg(port, R.GCR_EXT) == mode and port.device.queues_per_pool() == qpp
    gpie_mode = {R.GCR_EXT_VT_MODE_32: R.GPIE_VTMODE_32, R.GCR_EXT_VT_MODE_64: R.GPIE_VTMODE_64}[mode]
    assert reg(port, R.GPIE) & R.GPIE_VTMODE_MASK == gpie_mode
    vt = reg(port, R.VT_CTL)
    assert vt & R.VT_CTL_VT_ENABLE and vt & R.VT_CTL_REPLEN
    assert (vt & R.VT_CTL_POOL_MASK) >> R.VT_CTL_POOL_SHIFT == num_vfs, "PF pool comes after the VFs"
    assert rar_entries(port)[port.pf.mac] == 1 << num_vfs
    assert reg(port, R.PFDTXGSWC) == R.PFDTXGSWC_VT_LBEN
    for vf in range(num_vfs):
        assert reg(port, R.PFVFSPOOF(vf // 8)) >> (vf % 8) & 1, "spoofchk on by default"
        assert reg(port, R.PFVFSPOOF(vf // 8)) >> (vf % 8 + 8) & 1
        assert bit(port, R.VFTE, vf), "link auto + PF up: VF may transmit"
    assert bit(port, R.VFRE, num_vfs) and bit(port, R.VFTE, num_vfs)
    assert vlvf_entries(port)[0] == 1 << num_vfs, "the PF pool is in VLAN 0's entry"
    assert reg(port, R.VMOLR(num_vfs)) & R.VMOLR_AUPE
    assert reg(port, R.CTRL_EXT) & R.CTRL_EXT_PFRSTD


@pytest.mark.parametrize("rss", [1, 2, 4, 16])
def test_pool_mode_depends_only_on_the_pool_count(host: Host, rss: int) -> None:
    """Issue 14 row 13: ixgbe_set_sriov_queues picks 64x2 only above 32 pools, else 32x4, however
    narrow the RSS limit (which only narrows the PF's RSS)."""
    port = host.add_port("eth1")
    port.pf.rss_queues = rss
    port.pf.set_numvfs(8)
    assert reg(port, R.GCR_EXT) == R.GCR_EXT_VT_MODE_32 and port.device.queues_per_pool() == 4
    port.pf.set_numvfs(0)
    port.pf.set_numvfs(32)  # 33 pools with the PF's
    assert reg(port, R.GCR_EXT) == R.GCR_EXT_VT_MODE_64 and port.device.queues_per_pool() == 2


def test_set_numvfs_validation_and_going_through_zero(port: Port) -> None:
    for bad in (-1, 64, 1.5, "8", True):
        with pytest.raises(ConfigError, match=r"0\.\.63"):
            port.pf.set_numvfs(bad)  # type: ignore[arg-type]
    before = port.device.regs.copy()
    with pytest.raises(ConfigError, match="write 0"):
        port.pf.set_numvfs(4)
    assert port.pf.num_vfs == 8 and np.array_equal(before, port.device.regs), "nothing changed"
    port.pf.set_numvfs(8)  # the same count: nothing to do
    port.pf.set_numvfs(0)
    assert port.pf.num_vfs == 0 and port.device.num_vfs == 0 and reg(port, R.VT_CTL) == 0
    port.pf.set_numvfs(4)
    assert port.device.num_vfs == 4 and (reg(port, R.VT_CTL) & R.VT_CTL_POOL_MASK) >> 7 == 4


def test_every_vf_is_pinged_without_cts_when_the_pf_comes_up(port: Port) -> None:
    for vf in range(8):
        log = port.pf.mailbox_log(vf)
        pings = [e for e in log if e.opcode == "IXGBE_PF_CONTROL_MSG"]
        assert pings and all(not e.words[0] & M.IXGBE_VT_MSGTYPE_CTS for e in pings)


# =============================================================================================
# RESET and clear-to-send
def test_reset_reply_is_nack_without_an_admin_mac(port: Port) -> None:
    reply = RawVf(port, 1).reset()
    assert reply.word0 == M.IXGBE_VF_RESET | M.IXGBE_VT_MSGTYPE_FAILURE, "no CTS in a reset reply"
    assert M.decode_reset_reply(reply).mac == bytes(6)
    assert port.pf.vfinfo[1].clear_to_send


def test_reset_reply_carries_the_admin_mac(port: Port) -> None:
    port.pf.set_vf(2, mac=ADMIN_MAC)
    reply = RawVf(port, 2).reset()
    assert reply.word0 == M.IXGBE_VF_RESET | M.IXGBE_VT_MSGTYPE_SUCCESS
    r = M.decode_reset_reply(reply)
    assert r.mac == M.parse_mac(ADMIN_MAC) and r.mc_filter_type == 0
    assert rar_entries(port)[r.mac] == 1 << 2
    assert bit(port, R.VFRE, 2) and bit(port, R.VFTE, 2)
    assert reg(port, R.VMECM(0)) & (1 << 2), "spoofed packets of the VF are counted"


def test_reset_reply_is_nack_when_only_the_vf_set_its_mac(port: Port) -> None:
    vf = RawVf(port, 3).ready()
    mac = bytes.fromhex("020000003333")
    assert vf.ask(M.set_mac_addr(mac)).acked
    reply = vf.reset()
    assert reply.nacked, "pitfall 3: only an administrator's MAC is ACKed"
    assert rar_entries(port)[mac] == 1 << 3, "the VF's own MAC is put back after the reset"


def test_requests_before_reset_are_nacked_without_cts(port: Port) -> None:
    vf = RawVf(port, 4)
    for msg in (
        M.api_negotiate(MboxApi.API_12),
        M.set_mac_addr(bytes.fromhex("020000000004")),
        M.get_queues(),
    ):
        reply = vf.ask(msg)
        assert reply.word0 == msg.word0 | M.IXGBE_VT_MSGTYPE_FAILURE
    assert port.pf.vf_counters(4)["not_cts_msgs"] == 3
    assert port.pf.vf_counters(4)["nacks_sent"] == 3


def test_reading_while_not_clear_to_send_gets_a_failure_message(port: Port) -> None:
    vf = RawVf(port, 5)
    vf.mbx.read(1)  # a link check: reads word 0 and ACKs
    port.device.clock.advance(10_000)
    assert port.pf.vf_counters(5)["cts_nacks"] == 1
    assert vf.mbx.read(1)[0] == M.IXGBE_VT_MSGTYPE_FAILURE
    vf.ready()  # (the PF's reset reply flushes that read's VFACK, as upstream's write does)
    vf.mbx.read(1)
    port.device.clock.advance(10_000)
    assert port.pf.vf_counters(5)["cts_nacks"] == 1, "no FAILURE once clear to send"
    assert port.pf.vf_counters(5)["vf_acks"] == 2


# =============================================================================================
# SET_MAC_ADDR
def test_set_mac_success_moves_the_rar(port: Port) -> None:
    vf = RawVf(port, 1).ready()
    a, b = bytes.fromhex("020000000a0a"), bytes.fromhex("020000000b0b")
    reply = vf.ask(M.set_mac_addr(a))
    assert reply.word0 == M.IXGBE_VF_SET_MAC_ADDR | M.IXGBE_VT_MSGTYPE_SUCCESS | M.IXGBE_VT_MSGTYPE_CTS
    assert rar_entries(port)[a] == 1 << 1
    assert vf.ask(M.set_mac_addr(b)).acked
    assert a not in rar_entries(port) and rar_entries(port)[b] == 1 << 1


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"])
def test_set_mac_invalid_is_nacked(port: Port, mac: str) -> None:
    vf = RawVf(port, 1).ready()
    before = rar_entries(port)
    reply = vf.ask(M.set_mac_addr(M.parse_mac(mac)))
    assert reply.nacked and reply.cts
    assert rar_entries(port) == before
    assert port.pf.vf_counters(1)["refused_msgs"] == 1


def test_set_mac_admin_locked_untrusted_is_nacked_but_same_mac_is_fine(port: Port) -> None:
    port.pf.set_vf(1, mac=ADMIN_MAC)
    vf = RawVf(port, 1).ready()
    assert vf.ask(M.set_mac_addr(bytes.fromhex("020000000bad"))).nacked
    assert rar_entries(port)[M.parse_mac(ADMIN_MAC)] == 1 << 1
    assert vf.ask(M.set_mac_addr(M.parse_mac(ADMIN_MAC))).acked
    port.pf.set_vf(1, trust=True)
    vf.reset()
    assert vf.ask(M.set_mac_addr(bytes.fromhex("020000000bad"))).acked, "a trusted VF may change it"


def test_set_mac_without_a_free_rar_is_nacked_and_the_mac_forgotten(port: Port) -> None:
    vf = RawVf(port, 1).ready()
    assert vf.ask(M.set_mac_addr(bytes.fromhex("020000000101"))).acked
    filler = 0  # the PF's own secondary unicast addresses take every free RAR
    while port.pf._add_mac_filter(bytes([2, 0xEE, 0, 0, 0, filler]), port.pf.pf_pool) >= 0:
        filler += 1
    assert vf.ask(M.set_mac_addr(bytes.fromhex("020000000202"))).acked, "its own entry is reused"
    fresh = RawVf(port, 2).ready()  # a VF without an entry finds none
    reply = fresh.ask(M.set_mac_addr(bytes.fromhex("020000000303")))
    assert reply.nacked and port.pf.vfinfo[2].mac == bytes(6)
    assert bytes.fromhex("020000000303") not in rar_entries(port)


# =============================================================================================
# SET_MULTICAST and the MTA
def mta_bit(port: Port, h: int) -> bool:
    return bool(reg(port, R.MTA((h >> 5) & 0x7F)) >> (h & 0x1F) & 1)


def test_set_multicast_sets_mta_and_rompe_and_is_rebuilt_on_reset(port: Port) -> None:
    a, b = RawVf(port, 0).ready(), RawVf(port, 1).ready()
    assert a.ask(M.set_multicast([0x010, 0xFFF])).acked
    assert b.ask(M.set_multicast([0x020])).acked
    assert all(mta_bit(port, h) for h in (0x010, 0xFFF, 0x020))
    assert reg(port, R.VMOLR(0)) & R.VMOLR_ROMPE and reg(port, R.VMOLR(1)) & R.VMOLR_ROMPE
    a.reset()  # the VF's hashes go (the reset runs the PF's set_rx_mode); the other VF's stay
    assert not mta_bit(port, 0x010) and not mta_bit(port, 0xFFF) and mta_bit(port, 0x020)
    assert reg(port, R.MCSTCTRL) & R.MCSTCTRL_MFE
    assert not reg(port, R.VMOLR(0)) & R.VMOLR_ROMPE


def test_set_multicast_ors_into_the_mta_and_always_sets_rompe(port: Port) -> None:
    """Issue 14 row 3: ixgbe_set_vf_multicasts ORs each hash in and sets ROMPE even for none;
    the MTA is rebuilt (and ROMPE follows the stored list) only at the PF's next set_rx_mode."""
    a = RawVf(port, 0).ready()
    assert a.ask(M.set_multicast([0x010])).acked and a.ask(M.set_multicast([0x020])).acked
    assert mta_bit(port, 0x010) and mta_bit(port, 0x020), "the dropped hash stays for now"
    assert port.pf.vfinfo[0].mc_hashes == [0x020]
    assert a.ask(M.set_multicast([])).acked
    assert reg(port, R.VMOLR(0)) & R.VMOLR_ROMPE, "ixgbevf's open sends an empty list: ROMPE on"
    port.pf.set_multicast([])  # the PF's next set_rx_mode
    assert not mta_bit(port, 0x010) and not mta_bit(port, 0x020)
    assert not reg(port, R.VMOLR(0)) & R.VMOLR_ROMPE


def test_set_multicast_count_is_clamped_to_30(port: Port) -> None:
    vf = RawVf(port, 0).ready()
    words = [M.IXGBE_VF_SET_MULTICAST | (77 << 16)] + [(2 * i + 1) << 16 | (2 * i) for i in range(15)]
    assert vf.ask(Message.from_words(words), 16).acked
    assert port.pf.vfinfo[0].mc_hashes == list(range(30))


def test_pf_multicast_list_is_merged_into_the_mta(port: Port) -> None:
    vf = RawVf(port, 0).ready()
    assert vf.ask(M.set_multicast([0x123])).acked
    group = M.parse_mac("01:00:5e:7f:00:fb")
    port.pf.set_multicast([group])
    assert mta_bit(port, M.mta_vector(group, 0)) and mta_bit(port, 0x123)
    assert reg(port, R.VMOLR(8)) & R.VMOLR_ROMPE


# =============================================================================================
# SET_VLAN
def test_set_vlan_add_and_remove(port: Port) -> None:
    a, b = RawVf(port, 0).ready(), RawVf(port, 1).ready()
    assert a.ask(M.set_vlan(100, True)).acked and b.ask(M.set_vlan(100, True)).acked
    assert vlvf_entries(port)[100] == 0b11 and vfta_bit(port, 100)
    assert a.ask(M.set_vlan(100, False)).acked
    assert vlvf_entries(port)[100] == 0b10 and vfta_bit(port, 100), "still used by VF 1"
    assert b.ask(M.set_vlan(100, False)).acked
    assert 100 not in vlvf_entries(port) and not vfta_bit(port, 100)


def test_removing_vlan_0_is_a_successful_no_op(port: Port) -> None:
    vf = RawVf(port, 2).ready()
    assert vf.ask(M.set_vlan(0, False)).acked
    assert vlvf_entries(port)[0] >> 2 & 1, "VF 2 stays in VLAN 0"


def test_set_vlan_with_a_port_vlan_is_nacked(port: Port) -> None:
    port.pf.set_vf(3, vlan=200, qos=5)
    vf = RawVf(port, 3).ready()
    reply = vf.ask(M.set_vlan(10, True))
    assert reply.nacked and 10 not in vlvf_entries(port)
    assert vlvf_entries(port)[200] == 1 << 3


def test_vlvf_has_63_usable_entries(port: Port) -> None:
    port.pf.set_vf(0, trust=True)  # an untrusted VF is capped before the table runs out
    vf = RawVf(port, 0).ready()
    for vid in range(1, 64):
        assert vf.ask(M.set_vlan(vid, True)).acked, vid
    assert vf.ask(M.set_vlan(64, True)).nacked, "VLVF full"
    assert not vfta_bit(port, 64)
    assert reg(port, R.VLVF(0)) == R.VLVF_VIEN, "entry 0 stays pinned to VID 0"
    assert vf.ask(M.set_vlan(63, False)).acked and vf.ask(M.set_vlan(64, True)).acked


def test_vf_reset_clears_its_vlans_but_not_other_vfs(port: Port) -> None:
    a, b = RawVf(port, 0).ready(), RawVf(port, 1).ready()
    assert a.ask(M.set_vlan(5, True)).acked and a.ask(M.set_vlan(6, True)).acked
    assert b.ask(M.set_vlan(6, True)).acked
    a.fn.write32(R.VFCTRL, R.CTRL_RST)  # an FLR: the PF sees VFLRE and runs the reset event
    port.device.clock.advance(10_000)
    assert port.pf.vf_counters(0)["vflr_events"] >= 2
    entries = vlvf_entries(port)
    assert 5 not in entries and not vfta_bit(port, 5)
    assert entries[6] == 0b10 and vfta_bit(port, 6)
    assert entries[0] & 1, "VLAN 0 is added back"


# =============================================================================================
# SET_LPE and the 82599 jumbo rule
def test_set_lpe_api10_non_jumbo(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_10)
    assert vf.ask(M.set_lpe(1518)).acked and bit(port, R.VFRE, 0)
    assert vf.ask(M.set_lpe(1522)).nacked
    assert not bit(port, R.VFRE, 0), "an error disables the VF's receive"
    assert vf.ask(M.set_lpe(1518)).acked and bit(port, R.VFRE, 0)


def test_set_lpe_api11_needs_a_jumbo_pf(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_11)
    assert vf.ask(M.set_lpe(9018)).nacked
    port.pf.set_mtu(9000)
    vf.ready(MboxApi.API_11)
    assert not bit(port, R.VFRE, 0), "a jumbo PF keeps a reset VF deaf until SET_LPE"
    assert vf.ask(M.set_lpe(9018)).acked and bit(port, R.VFRE, 0)
    assert reg(port, R.MAXFRS) >> 16 >= 9018
    assert vf.ask(M.set_lpe(9729)).nacked, "above IXGBE_MAX_JUMBO_FRAME_SIZE"


@pytest.mark.parametrize("max_frame", [0, 60, 67, 9729, 0xFFFFFFFF])
def test_set_lpe_out_of_range_is_nacked_before_vfre_is_touched(port: Port, max_frame: int) -> None:
    """Issue 14 row 2: ixgbe_set_vf_lpe checks 68..9728 first; one bad message must not stop
    the VF's receive (the 82599 rule that clears VFRE comes after)."""
    vf = RawVf(port, 0).ready(MboxApi.API_12)
    assert vf.ask(M.set_lpe(1518)).acked and bit(port, R.VFRE, 0)
    maxfrs = reg(port, R.MAXFRS)
    assert vf.ask(M.set_lpe(max_frame)).nacked
    assert bit(port, R.VFRE, 0) and reg(port, R.MAXFRS) == maxfrs


def test_set_lpe_api10_with_a_jumbo_pf_is_refused(port: Port) -> None:
    port.pf.set_mtu(9000)
    vf = RawVf(port, 0).ready(MboxApi.API_10)
    assert vf.ask(M.set_lpe(1518)).nacked and not bit(port, R.VFRE, 0)


def test_set_lpe_raises_maxfrs_only_upwards(port: Port) -> None:
    port.pf.set_mtu(9000)
    vf = RawVf(port, 0).ready(MboxApi.API_12)
    base = reg(port, R.MAXFRS) >> 16
    assert vf.ask(M.set_lpe(1518)).acked and reg(port, R.MAXFRS) >> 16 == base


# =============================================================================================
# SET_MACVLAN
@pytest.mark.parametrize("trusted", [False, True])
def test_set_macvlan_adds_filters_and_anti_spoofing_stays_for_an_untrusted_vf(
    port: Port, trusted: bool
) -> None:
    """Upstream turns MAC and VLAN anti-spoofing off for a VF adding a MACVLAN (pitfall 6); the
    model keeps it on for an untrusted VF (issue 17 item 4), and vf_config says which."""
    port.pf.set_vf(1, trust=trusted)
    vf = RawVf(port, 1).ready()
    m1, m2 = bytes.fromhex("020000001111"), bytes.fromhex("020000002222")
    assert vf.ask(M.set_macvlan(1, m1)).acked and vf.ask(M.set_macvlan(2, m2)).acked
    assert rar_entries(port)[m1] == 1 << 1 and rar_entries(port)[m2] == 1 << 1
    bits = reg(port, R.PFVFSPOOF(0)) & ((1 << 1) | (1 << 9))
    assert bits == (0 if trusted else (1 << 1) | (1 << 9))
    assert port.pf.vf_config(1)["spoofchk"] is not trusted
    assert vf.ask(M.set_macvlan(0, None)).acked
    assert m1 not in rar_entries(port) and m2 not in rar_entries(port)


def test_set_macvlan_equal_to_the_primary_does_not_leak_rars(port: Port) -> None:
    """Issue 14 row 8: index <= 1 deletes one RAR per entry of the VF's list (its MAC, its pool),
    so re-sending a MACVLAN equal to the primary MAC (each rx-mode update does) leaks nothing."""
    vf = RawVf(port, 3).ready()
    mac = bytes.fromhex("020000003333")
    assert vf.ask(M.set_mac_addr(mac)).acked
    in_use = sum(1 for i in range(R.NUM_RAR) if reg(port, R.RAH(i)) & R.RAH_AV)
    for _ in range(5):
        assert vf.ask(M.set_macvlan(1, mac)).acked
    assert sum(1 for i in range(R.NUM_RAR) if reg(port, R.RAH(i)) & R.RAH_AV) == in_use + 1
    assert rar_entries(port)[mac] == 1 << 3
    assert vf.ask(M.set_macvlan(0, None)).acked
    assert sum(1 for i in range(R.NUM_RAR) if reg(port, R.RAH(i)) & R.RAH_AV) == in_use


def test_set_macvlan_refusals(port: Port) -> None:
    port.pf.set_vf(1, mac=ADMIN_MAC)
    locked = RawVf(port, 1).ready()
    assert locked.ask(M.set_macvlan(1, bytes.fromhex("020000001111"))).nacked
    assert locked.ask(M.set_macvlan(0, None)).acked, "clearing is always allowed"
    free = RawVf(port, 2).ready()
    assert free.ask(M.set_macvlan(1, bytes.fromhex("010000001111"))).nacked, "multicast"


def test_set_macvlan_runs_out_of_shared_slots(port: Port) -> None:
    port.pf.set_vf(0, trust=True)  # an untrusted VF is capped before the list runs out
    vf = RawVf(port, 0).ready()
    slots = R.NUM_RAR - (16 + 8)
    for i in range(slots):
        assert vf.ask(M.set_macvlan(min(i + 1, 255), bytes([2, 0x55, 0, 0, i // 256, i % 256]))).acked
    assert vf.ask(M.set_macvlan(255, bytes.fromhex("025500ffffff"))).nacked  # -ENOSPC


# =============================================================================================
# API_NEGOTIATE, GET_QUEUES, GET_RETA, GET_RSS_KEY
@pytest.mark.parametrize(
    "api",
    [
        MboxApi.API_10,
        MboxApi.API_11,
        MboxApi.API_12,
        MboxApi.API_13,
        MboxApi.API_14,
        MboxApi.API_16,
        MboxApi.API_17,
    ],
)
def test_api_negotiate_accepts_what_upstream_accepts(port: Port, api: MboxApi) -> None:
    vf = RawVf(port, 0)
    vf.reset()
    reply = vf.negotiate(api)
    assert reply.acked and reply.cts and M.decode_api(reply) == api
    assert port.pf.vfinfo[0].api == api


@pytest.mark.parametrize("api", [1, 6, 9, 0xDEAD])
def test_api_negotiate_refuses_others(port: Port, api: int) -> None:
    vf = RawVf(port, 0)
    vf.reset()
    assert vf.ask(Message(M.IXGBE_VF_API_NEGOTIATE, payload=(api,))).nacked
    assert port.pf.vfinfo[0].api == MboxApi.API_10


def test_features_negotiate_grants_ipsec_only_and_needs_api_1_7(port: Port) -> None:
    """Issue 14 item 4: FEATURES_NEGOTIATE (1.7) masks the VF's bits with IXGBE_SUPPORTED_FEATURES
    (IPsec; never the ESX mailbox); GET_PF_LINK_STATE is answered on E610 only: NACK here."""
    vf = RawVf(port, 0).ready(MboxApi.API_17)
    both = M.IXGBEVF_PF_SUP_IPSEC | M.IXGBEVF_PF_SUP_ESX_MBX
    reply = vf.ask(M.features_negotiate(both))
    assert reply.acked and reply.cts and M.decode_features(reply) == M.IXGBEVF_PF_SUP_IPSEC
    assert vf.ask(Message(M.IXGBE_VF_GET_PF_LINK_STATE)).nacked
    vf.ready(MboxApi.API_16)
    assert vf.ask(M.features_negotiate(both)).nacked and vf.ask(Message(M.IXGBE_VF_GET_PF_LINK_STATE)).nacked
    for api in (MboxApi.API_16, MboxApi.API_17):  # everything 1.2+ offers works on both
        vf.ready(api)
        assert vf.ask(M.get_queues()).acked and vf.ask(M.get_link_state()).acked
        assert vf.ask(M.update_xcast_mode(XcastMode.MULTI)).acked
    assert port.pf.vf_counters(0)["unhandled_msgs"] == 0


def test_get_queues(host: Host) -> None:
    port = host.add_port("eth9")
    port.pf.set_numvfs(40)
    port.pf.set_vf(1, vlan=7)
    assert RawVf(port, 0).ready(MboxApi.API_10).ask(M.get_queues()).nacked, "needs API 1.1"
    q = M.decode_queues(RawVf(port, 0).ready(MboxApi.API_11).ask(M.get_queues()))
    assert (q.tx_queues, q.rx_queues, q.trans_vlan, q.default_queue) == (2, 2, 0, 0)
    q = M.decode_queues(RawVf(port, 1).ready(MboxApi.API_11).ask(M.get_queues()))
    assert q.trans_vlan == 1, "a port VLAN is announced"


def test_get_reta_and_rss_key_need_query_rss_and_api_1_2(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_12)
    assert vf.ask(M.get_reta()).nacked and vf.ask(M.get_rss_key()).nacked
    port.pf.set_vf(0, query_rss=True)
    reta = vf.ask(M.get_reta())
    assert reta.acked and M.decode_reta(reta) == [i % 4 for i in range(128)]
    key = vf.ask(M.get_rss_key())
    assert key.acked and M.decode_rss_key(key) == port.pf.rss_key
    vf.ready(MboxApi.API_17)
    assert vf.ask(M.get_reta()).acked and vf.ask(M.get_rss_key()).acked, "1.6 and 1.7 too"
    assert port.pf.vf_config(0)["query_rss"] is True
    vf.ready(MboxApi.API_11)
    assert vf.ask(M.get_reta()).nacked and vf.ask(M.get_rss_key()).nacked
    port.pf.set_vf(0, query_rss=False)
    vf.ready(MboxApi.API_13)
    assert vf.ask(M.get_reta()).nacked and port.pf.vf_config(0)["query_rss"] is False


# =============================================================================================
# UPDATE_XCAST_MODE, GET_LINK_STATE, IPsec, unknown opcodes
def test_xcast_mode_needs_api_1_2(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_11)
    assert vf.ask(M.update_xcast_mode(XcastMode.MULTI)).nacked


def test_untrusted_allmulti_becomes_multi(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_12)
    reply = vf.ask(M.update_xcast_mode(XcastMode.ALLMULTI))
    assert reply.acked and M.decode_xcast_mode(reply) == XcastMode.MULTI
    vmolr = reg(port, R.VMOLR(0))
    assert vmolr & R.VMOLR_BAM and vmolr & R.VMOLR_ROMPE and not vmolr & R.VMOLR_MPE


def test_trusted_allmulti_and_none(port: Port) -> None:
    port.pf.set_vf(0, trust=True)
    vf = RawVf(port, 0).ready(MboxApi.API_13)
    reply = vf.ask(M.update_xcast_mode(XcastMode.ALLMULTI))
    assert M.decode_xcast_mode(reply) == XcastMode.ALLMULTI and reg(port, R.VMOLR(0)) & R.VMOLR_MPE
    assert vf.ask(M.update_xcast_mode(XcastMode.NONE)).acked
    vmolr = reg(port, R.VMOLR(0))
    assert not vmolr & (R.VMOLR_ROMPE | R.VMOLR_MPE | R.VMOLR_UPE | R.VMOLR_VPE)
    assert vmolr & R.VMOLR_BAM, "issue 14 row 1: NONE keeps broadcast (upstream fix of 2022)"


@pytest.mark.parametrize(("api", "mode"), [(MboxApi.API_12, 3), (MboxApi.API_13, 3), (MboxApi.API_13, 9)])
def test_xcast_promisc_and_unknown_modes_are_nacked(port: Port, api: MboxApi, mode: int) -> None:
    port.pf.set_vf(0, trust=True)
    vf = RawVf(port, 0).ready(api)
    before = reg(port, R.VMOLR(0))
    assert vf.ask(M.update_xcast_mode(mode)).nacked
    assert reg(port, R.VMOLR(0)) == before


def test_get_link_state(port: Port) -> None:
    vf = RawVf(port, 0).ready(MboxApi.API_11)
    assert vf.ask(M.get_link_state()).nacked
    vf.ready(MboxApi.API_12)
    reply = vf.ask(M.get_link_state())
    assert reply.acked and M.decode_link_state(reply)
    port.pf.set_vf(0, state="disable")
    vf.ready(MboxApi.API_12)
    assert not M.decode_link_state(vf.ask(M.get_link_state()))
    assert not bit(port, R.VFRE, 0) and not bit(port, R.VFTE, 0)


def test_ipsec_add_is_refused_and_a_trusted_del_of_an_unused_sa_is_acked(port: Port) -> None:
    """Issue 14 row 12: ixgbe_ipsec_vf_del_sa ACKs a trusted VF's delete of an SA not in use
    (index 0..2047); untrusted gets -EPERM. ADD needs the vf-ipsec flag, off: always NACK."""
    vf = RawVf(port, 0).ready(MboxApi.API_14)
    add = Message(M.IXGBE_VF_IPSEC_ADD, payload=(1, 2, 3))
    assert vf.ask(add, 16).nacked
    assert vf.ask(Message(M.IXGBE_VF_IPSEC_DEL, payload=(5,)), 16).nacked, "untrusted"
    port.pf.set_vf(0, trust=True)
    vf.ready(MboxApi.API_14)
    for pfsa, ok in ((0, True), (5, True), (1023, True), (1024 + 7, True), (2047, True), (2048, False)):
        assert vf.ask(Message(M.IXGBE_VF_IPSEC_DEL, payload=(pfsa,)), 16).acked is ok, pfsa
    assert vf.ask(add, 16).nacked


@pytest.mark.parametrize("opcode", [0x00, 0x07, 0x0F, 0x13, 0x101, 0xFFFF])
def test_unknown_opcodes_are_nacked_and_counted(port: Port, opcode: int) -> None:
    vf = RawVf(port, 0).ready()
    reply = vf.ask(Message(opcode, payload=(0xDEADBEEF,)), 2)
    assert reply.opcode == opcode and reply.nacked and reply.cts
    assert port.pf.vf_counters(0)["unhandled_msgs"] == 1


def test_already_flagged_requests_are_nacked(port: Port) -> None:
    vf = RawVf(port, 0).ready()
    reply = vf.ask(Message(M.IXGBE_VF_SET_VLAN, result=M.IXGBE_VT_MSGTYPE_SUCCESS, payload=(9,)), 1)
    assert reply.verdict == "NACK" and 9 not in vlvf_entries(port)
    assert port.pf.vf_counters(0)["flagged_msgs"] == 1


# =============================================================================================
# pings and the administrator's controls
def test_trust_change_drops_cts_and_pings(port: Port) -> None:
    vf = RawVf(port, 0).ready()
    port.pf.set_vf(0, trust=True)
    last = port.pf.mailbox_log(0)[-1]
    assert last.opcode == "IXGBE_PF_CONTROL_MSG" and not last.words[0] & M.IXGBE_VT_MSGTYPE_CTS
    assert vf.ask(M.get_queues()).nacked, "not clear to send until the VF resets"
    port.pf.set_vf(0, trust=True)  # no change, no ping
    assert port.pf.mailbox_log(0)[-1].opcode == "IXGBE_VF_GET_QUEUES"


def test_physical_link_change_pings_every_vf_with_cts(port: Port) -> None:
    vfs = [RawVf(port, i).ready() for i in range(8)]
    port.device.set_link(False)
    port.device.clock.advance(10_000)
    for v in vfs:
        last = port.pf.mailbox_log(v.n)[-1]
        assert last.opcode == "IXGBE_PF_CONTROL_MSG" and last.words[0] & M.IXGBE_VT_MSGTYPE_CTS
    assert vfs[3].ask(M.get_queues()).acked, "a link change does not cost CTS"


def test_admin_state_disable_and_auto(port: Port) -> None:
    RawVf(port, 2).ready()
    port.pf.set_vf(2, state="disable")
    assert not bit(port, R.VFRE, 2) and not bit(port, R.VFTE, 2)
    assert not port.pf.vfinfo[2].clear_to_send
    port.pf.set_vf(2, state="auto")
    assert bit(port, R.VFTE, 2)


def test_admin_state_enable_is_not_supported_and_changes_nothing(port: Port) -> None:
    """Issue 14 row 5: ixgbe_ndo_set_vf_link_state logs "not supported" for enable: no state
    change, no ping, no reset; the VF keeps CTS and its link."""
    vf = RawVf(port, 2).ready()
    messages = len(port.pf.mailbox_log(2))
    port.pf.set_vf(2, state="enable")
    assert len(port.pf.mailbox_log(2)) == messages, "no ping"
    assert port.pf.vfinfo[2].clear_to_send and port.pf.vf_config(2)["state"] == "auto"
    assert vf.ask(M.get_queues()).acked
    port.pf.set_vf(2, state="disable")
    port.pf.set_vf(2, state="enable")
    assert port.pf.vf_config(2)["state"] == "disable" and not bit(port, R.VFTE, 2)


def test_admin_port_vlan_programs_vmvir_and_revokes_vlan_0(port: Port) -> None:
    port.pf.set_vf(1, vlan=300, qos=3)
    assert reg(port, R.VMVIR(1)) == 300 | 3 << 13 | R.VMVIR_VLANA_DEFAULT
    assert not reg(port, R.VMOLR(1)) & R.VMOLR_AUPE
    entries = vlvf_entries(port)
    assert entries[300] == 1 << 1 and not entries[0] & (1 << 1)
    port.pf.set_vf(1, vlan=0)
    assert reg(port, R.VMVIR(1)) == 0 and reg(port, R.VMOLR(1)) & R.VMOLR_AUPE
    assert 300 not in vlvf_entries(port) and vlvf_entries(port)[0] & (1 << 1)


def test_admin_mac_and_removal(port: Port) -> None:
    port.pf.set_vf(4, mac=ADMIN_MAC)
    assert rar_entries(port)[M.parse_mac(ADMIN_MAC)] == 1 << 4 and port.pf.vfinfo[4].pf_set_mac
    port.pf.set_vf(4, mac="00:00:00:00:00:00")
    assert M.parse_mac(ADMIN_MAC) not in rar_entries(port) and not port.pf.vfinfo[4].pf_set_mac
    assert RawVf(port, 4).reset().nacked


def test_admin_spoofchk(port: Port) -> None:
    port.pf.set_vf(9 - 4, spoofchk=False)
    assert not reg(port, R.PFVFSPOOF(0)) & ((1 << 5) | (1 << 13))
    port.pf.set_vf(5, spoofchk=True)
    assert reg(port, R.PFVFSPOOF(0)) & ((1 << 5) | (1 << 13)) == (1 << 5) | (1 << 13)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mac": "01:00:00:00:00:01"}, "multicast"),
        ({"mac": "zz:00:00:00:00:01"}, "hexadecimal"),
        ({"vlan": 4096}, r"vlan must be an int in 0\.\.4095"),
        ({"qos": 8}, r"qos must be an int in 0\.\.7"),
        ({"spoofchk": "yes"}, "True or False"),
        ({"trust": 1}, "True or False"),
        ({"query_rss": "on"}, "query_rss must be True or False"),
        ({"state": "up"}, "auto, enable, disable"),
    ],
)
def test_set_vf_validates_everything_first_and_changes_nothing(port: Port, kwargs: dict, match: str) -> None:
    before_regs = port.device.regs.copy()
    before_cfg = port.pf.vf_config(0)
    log_len = len(port.pf.mailbox_log(0))
    with pytest.raises(ConfigError, match=match):
        port.pf.set_vf(0, **{"mac": ADMIN_MAC, "vlan": 10, "trust": True, **kwargs})
    assert np.array_equal(before_regs, port.device.regs)
    assert port.pf.vf_config(0) == before_cfg and len(port.pf.mailbox_log(0)) == log_len


def test_set_vf_names_the_allowed_vf_range(port: Port) -> None:
    with pytest.raises(ConfigError, match=r"allowed: 0\.\.7"):
        port.pf.set_vf(8, trust=True)


def test_set_vf_refuses_a_64th_vlan(port: Port) -> None:
    port.pf.set_vf(0, trust=True)  # an untrusted VF is capped before the table runs out
    vf = RawVf(port, 0).ready()
    for vid in range(1, 64):
        assert vf.ask(M.set_vlan(vid, True)).acked
    before = port.device.regs.copy()
    with pytest.raises(ConfigError, match="VLVF"):
        port.pf.set_vf(1, vlan=1000)
    assert np.array_equal(before, port.device.regs)
    port.pf.set_vf(1, vlan=10)  # an existing VID shares its entry


def test_pf_mtu_validation_and_reset(port: Port) -> None:
    with pytest.raises(ConfigError, match=r"68\.\.9710"):
        port.pf.set_mtu(9711)
    port.pf.set_mtu(9000)
    assert reg(port, R.MAXFRS) >> 16 == 9018
    assert all(not bit(port, R.VFRE, vf) for vf in range(8)), "82599 jumbo rule"


def test_pf_promisc(port: Port) -> None:
    port.pf.set_promisc(True)
    assert reg(port, R.FCTRL) & (R.FCTRL_UPE | R.FCTRL_MPE) == R.FCTRL_UPE | R.FCTRL_MPE
    assert reg(port, R.VMOLR(8)) & R.VMOLR_MPE
    port.pf.set_promisc(False)
    assert not reg(port, R.FCTRL) & R.FCTRL_UPE
    with pytest.raises(ConfigError):
        port.pf.set_promisc("on")  # type: ignore[arg-type]


def test_promiscuous_pf_joins_every_vlan(port: Port) -> None:
    """Issue 14 row 4: IFF_PROMISC with SR-IOV keeps VLAN filtering on but ixgbe_vlan_promisc_enable
    sets VFTA to all ones and the PF's pool bit in every VLVF entry (1..63); leaving promiscuous
    scrubs the PF out of the VLANs it does not use and rebuilds the VFTA from the VLVF entries."""
    vf = RawVf(port, 1).ready()
    assert vf.ask(M.set_vlan(100, True)).acked
    pf_pool = port.pf.pf_pool
    port.pf.set_promisc(True)
    assert reg(port, R.VLNCTRL) & R.VLNCTRL_VFE
    assert all(reg(port, R.VFTA(i)) == 0xFFFFFFFF for i in range(R.NUM_VFTA))
    assert all(reg(port, R.VLVFB(2 * i + pf_pool // 32)) >> (pf_pool % 32) & 1 for i in range(1, R.NUM_VLVF))
    assert vlvf_entries(port)[100] == 1 << 1 | 1 << pf_pool
    assert vf.ask(M.set_vlan(200, True)).acked and vlvf_entries(port)[200] == 1 << 1 | 1 << pf_pool
    assert vf.ask(M.set_vlan(200, False)).acked
    assert 200 not in vlvf_entries(port), "an entry only the PF is left in is given up"
    port.pf.set_promisc(False)
    assert vfta_bit(port, 100) and vfta_bit(port, 0) and not vfta_bit(port, 200) and not vfta_bit(port, 555)
    assert vlvf_entries(port)[100] == 1 << 1
    pf_bits = [reg(port, R.VLVFB(2 * i + pf_pool // 32)) >> (pf_pool % 32) & 1 for i in range(1, R.NUM_VLVF)]
    assert not any(pf_bits)


def test_a_vf_reset_frees_the_vlvf_entries_only_the_pf_is_left_in(port: Port) -> None:
    """ixgbe_clear_vf_vlans: an entry the resetting VF leaves with only the PF's pool in it is
    disabled (VLVF 0; the PF's bit kept while VLAN promiscuous, VFTA kept): the PF then gets
    those frames through its default pool, and the entry is free for others."""
    vf = RawVf(port, 1).ready()
    port.pf.set_promisc(True)
    assert vf.ask(M.set_vlan(100, True)).acked and 100 in vlvf_entries(port)
    vf.reset()
    assert 100 not in vlvf_entries(port) and vfta_bit(port, 100)
    assert vlvf_entries(port)[0] & (1 << 1 | 1 << port.pf.pf_pool) == 1 << 1 | 1 << port.pf.pf_pool


def test_pf_link_down_puts_vfs_in_reset_until_up(port: Port) -> None:
    vf = RawVf(port, 0).ready()
    port.pf.set_link(False)
    assert not port.pf.is_up and not port.device.link_up
    assert port.vf(0).read32(R.VFMAILBOX) & R.VFMAILBOX_RSTI
    port.pf.set_link(True)
    first = port.vf(0).read32(R.VFMAILBOX)
    assert not first & R.VFMAILBOX_RSTI
    assert vf.ask(M.get_queues()).nacked, "CTS is lost until the VF resets"
    assert vf.reset().nacked and vf.ask(M.get_queues()).word0 & M.IXGBE_VT_MSGTYPE_CTS


def test_mailbox_log_records_every_message(port: Port) -> None:
    vf = RawVf(port, 6).ready(MboxApi.API_12)
    vf.ask(M.set_vlan(33, True))
    log = port.pf.mailbox_log(6)
    tail = log.entries[-6:]
    assert [(e.direction, e.opcode, e.verdict) for e in tail] == [
        (M.VF_TO_PF, "IXGBE_VF_RESET", ""),
        (M.PF_TO_VF, "IXGBE_VF_RESET", "NACK"),
        (M.VF_TO_PF, "IXGBE_VF_API_NEGOTIATE", ""),
        (M.PF_TO_VF, "IXGBE_VF_API_NEGOTIATE", "ACK"),
        (M.VF_TO_PF, "IXGBE_VF_SET_VLAN", ""),
        (M.PF_TO_VF, "IXGBE_VF_SET_VLAN", "ACK"),
    ]
    assert tail[4].words == (M.IXGBE_VF_SET_VLAN | 1 << 16, 33)
    assert tail[-1].time_ns >= tail[0].time_ns
    assert "add vid=33" in str(log)
    with pytest.raises(ConfigError):
        port.pf.mailbox_log(8)


def test_pf_refuses_disable_and_unload_while_a_vf_is_assigned(host: Host, port: Port) -> None:
    vm = host.add_vm("vm", memory=1 << 20)
    host.assign(port.vf(2), vm)
    before = port.device.regs.copy()
    with pytest.raises(DriverStateError, match="assigned"):
        port.pf.set_numvfs(0)
    with pytest.raises(DriverStateError, match="VF 2"):
        port.pf.unload()
    assert port.pf.num_vfs == 8 and port.device.num_vfs == 8 and port.pf.loaded
    assert np.array_equal(before, port.device.regs)


# =============================================================================================
# garbage from a VF never hurts the PF or the other VFs
_known = sorted(M.OPCODES)
garbage_op = st.one_of(
    st.tuples(st.just("msg"), st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=16)),
    st.tuples(
        st.just("op"),
        st.tuples(
            st.sampled_from(_known), st.integers(0, 0xFF), st.lists(st.integers(0, 0xFFFFFFFF), max_size=15)
        ),
    ),
    st.tuples(st.just("mailbox"), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("flood"), st.integers(1, 200)),
    st.tuples(st.just("vfctrl"), st.just(R.CTRL_RST)),
    st.tuples(st.just("wait"), st.integers(0, 3_000_000)),
)


def _garbage(port: Port, n: int, op: tuple) -> None:
    fn = port.vf(n)
    kind, arg = op
    if kind == "msg":
        for i, w in enumerate(arg):
            fn.write32(R.VFMBMEM + 4 * i, w)
        fn.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    elif kind == "op":
        opcode, info, payload = arg
        words = [opcode | info << 16, *payload]
        for i, w in enumerate(words):
            fn.write32(R.VFMBMEM + 4 * i, w)
        fn.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
    elif kind == "mailbox":
        fn.write32(R.VFMAILBOX, arg)
    elif kind == "flood":
        for _ in range(arg):
            fn.write32(R.VFMAILBOX, R.VFMAILBOX_REQ | R.VFMAILBOX_ACK)
    elif kind == "vfctrl":
        fn.write32(R.VFCTRL, arg)
    port.device.clock.advance(arg if kind == "wait" else 2_000)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(garbage_op, min_size=1, max_size=25), ready_first=st.booleans())
def test_garbage_from_one_vf_leaves_every_other_vf_served(ops: list[tuple], ready_first: bool) -> None:
    host = Host(seed=3)
    port = host.add_port("eth0")
    port.pf.set_numvfs(4)
    port.pf.set_vf(0, mac=ADMIN_MAC)
    good = RawVf(port, 0).ready(MboxApi.API_12)
    assert good.ask(M.set_vlan(42, True)).acked and good.ask(M.set_multicast([0x345])).acked
    other = RawVf(port, 2).ready(MboxApi.API_11)
    if ready_first:
        RawVf(port, 1).ready(MboxApi.API_13)
    for i, op in enumerate(ops):
        _garbage(port, 1, op)  # never raises: the PF NACKs and counts
        if i % 5 == 4:  # the good VFs keep talking in between, and are answered correctly
            q = M.decode_queues(other.ask(M.get_queues()))
            assert (q.tx_queues, q.rx_queues) == (4, 4)
            assert M.decode_link_state(good.ask(M.get_link_state()))
    c = port.pf.vf_counters(1)
    assert c["requests"] == c["acks_sent"] + c["nacks_sent"], "every request read is answered"
    for n in (0, 2, 3):
        assert port.pf.vf_counters(n)["unhandled_msgs"] == 0
    # VF 0's filters are intact: its admin MAC, its VLAN, its multicast hash, receive enabled.
    assert rar_entries(port)[M.parse_mac(ADMIN_MAC)] & 1
    assert vlvf_entries(port)[42] & 1 and vfta_bit(port, 42) and mta_bit(port, 0x345)
    assert bit(port, R.VFRE, 0) and bit(port, R.VFTE, 0)
    assert good.ask(M.set_vlan(43, True)).acked and vlvf_entries(port)[43] & 1
    reply = other.ask(M.set_mac_addr(bytes.fromhex("020000000202")))
    assert reply.acked and rar_entries(port)[bytes.fromhex("020000000202")] == 1 << 2


def test_a_flooding_vf_does_not_disturb_another_vfs_bring_up(host: Host, port: Port) -> None:
    vm = host.add_vm("vm", memory=8 << 20)
    flood = port.vf(3)
    for i in range(16):
        flood.write32(R.VFMBMEM + 4 * i, 0x12345678 * (i + 1) & 0xFFFFFFFF)

    def storm() -> None:  # REQ every 20 us of simulated time, for the whole bring-up
        flood.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)
        host.clock.schedule(20_000, storm)

    storm()
    nic = host.assign(port.vf(0), vm)
    nic.up()
    host.clock.advance(100_000_000)
    assert nic.link_up and nic.api == MboxApi.API_17
    verdicts = [e.verdict for e in port.pf.mailbox_log(0) if e.direction == M.PF_TO_VF and e.verdict]
    assert verdicts == ["NACK"] + ["ACK"] * 11
    c = port.pf.vf_counters(3)
    assert c["requests"] > 100 and c["nacks_sent"] == c["requests"] and c["acks_sent"] == 0


def test_a_vf_that_never_sent_reset_only_gets_nacks(port: Port) -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        words = [int(w) for w in rng.integers(0, 2**32, 16, dtype=np.uint64)]
        words[0] &= ~(M.RESULT_MASK | 0xFFFF)
        words[0] |= int(rng.choice([2, 3, 4, 5, 6, 8, 9, 12, 16, 0x77]))
        _garbage(port, 6, ("msg", words))
    c = port.pf.vf_counters(6)
    assert c["requests"] == 50 and c["nacks_sent"] == 50 and c["acks_sent"] == 0
    assert c["not_cts_msgs"] == 50


def test_an_untrusted_vf_cannot_take_the_shared_vlan_table() -> None:
    """Model decision: an untrusted VF holds at most UNTRUSTED_VF_MAX_VLANS; the others still add theirs."""
    import sriov
    from sriov.drivers.pf import PfDriver

    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(2)
    vm = host.add_vm("vm", memory=16 << 20)
    greedy, victim = (host.assign(port.vf(i), vm) for i in range(2))
    greedy.up()
    victim.up()
    cap = PfDriver.UNTRUSTED_VF_MAX_VLANS
    for vid in range(1, cap + 1):
        greedy.add_vlan(vid)
    with pytest.raises(sriov.SriovError):
        greedy.add_vlan(cap + 1)
    greedy.add_vlan(cap)  # one it already holds is no new filter: accepted
    victim.add_vlan(4000)
    assert port.pf.vfinfo[0].counters["capped_msgs"] == 1
    port.pf.set_vf(0, trust=True)  # a trusted VF is uncapped, as upstream
    host.clock.advance(12_000_000_000)
    greedy.add_vlan(cap + 1)


def test_an_untrusted_vf_macvlan_list_is_capped() -> None:
    import sriov
    from sriov.drivers.pf import PfDriver

    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(2)
    vm = host.add_vm("vm", memory=16 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    cap = PfDriver.UNTRUSTED_VF_MAX_MACVLANS
    # ixgbevf's ndo_set_rx_mode returns nothing; the model's set_unicast reports the refusals
    wanted = [f"02:00:00:00:01:{i:02x}" for i in range(cap + 3)]
    with pytest.raises(MailboxError, match="02:00:00:00:01:10, 02:00:00:00:01:11, 02:00:00:00:01:12"):
        nic.set_unicast(wanted)
    assert [M.format_mac(m) for m in nic.uc_addrs] == wanted[:cap], "what the PF holds"
    owned = [o for o in port.pf.vf_macvlans if o is not None and o[0] == 0]
    assert len(owned) == cap
    assert port.pf.vfinfo[0].counters["capped_msgs"] == 3
    assert any(o is None for o in port.pf.vf_macvlans), "slots are left for the other VFs"
