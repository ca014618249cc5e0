"""The VF driver (ixgbevf, spec §4) against the PF driver, over the real mailbox.

What a guest sees (MAC, link, MTU, VLANs, multicast, rx mode), the exact bring-up
transcript, load order, and recovery from PF resets, link flaps, trust and state changes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sriov.drivers import mailbox as M
from sriov.drivers.mailbox import MboxApi, XcastMode
from sriov.drivers.vf import RESET_HOLDOFF_NS, VfNic
from sriov.errors import ConfigError, DriverStateError, MailboxError
from sriov.host import Host, Port, Vm
from sriov.hw import regs as R

ADMIN_MAC = "02:00:00:00:00:10"
S = 1_000_000_000


@pytest.fixture
def host() -> Host:
    return Host(seed=11)


@pytest.fixture
def port(host: Host) -> Port:
    p = host.add_port("eth0")
    p.pf.set_numvfs(8)
    return p


@pytest.fixture
def vm(host: Host) -> Vm:
    return host.add_vm("vm0", memory=32 << 20)


def reg(port: Port, offset: int) -> int:
    return port.device.pf.read32(offset)


def rar_pools(port: Port, mac: str) -> int:
    want = M.parse_mac(mac)
    pools = 0
    for i in range(R.NUM_RAR):
        rah = reg(port, R.RAH(i))
        if rah & R.RAH_AV and M.words_to_mac(reg(port, R.RAL(i)), rah) == want:
            pools |= reg(port, R.MPSAR_LO(i)) | reg(port, R.MPSAR_HI(i)) << 32
    return pools


def vlan_pools(port: Port, vid: int) -> int:
    for i in range(R.NUM_VLVF):
        if reg(port, R.VLVF(i)) == R.VLVF_VIEN | vid:
            return reg(port, R.VLVFB(2 * i)) | reg(port, R.VLVFB(2 * i + 1)) << 32
    return 0


def mta_has(port: Port, mac: str) -> bool:
    h = M.mta_vector(M.parse_mac(mac), 0)
    return bool(reg(port, R.MTA(h >> 5)) >> (h & 31) & 1)


def vf_filters(port: Port, n: int, nic: VfNic) -> dict[str, object]:
    """What the hardware holds for VF n: the things a reset must restore."""
    return {
        "mac": rar_pools(port, nic.mac) == 1 << n,
        "vlans": sorted(v for v in range(1, 4096) if vlan_pools(port, v) & (1 << n)) if nic.vlans else [],
        "mc": [mta_has(port, M.format_mac(a)) for a in nic.mc_addrs],
        "maxfrs_ok": reg(port, R.MAXFRS) >> 16 >= nic.mtu + 18,
        "rx": bool(reg(port, R.VFRE(0)) >> n & 1),
        "rompe": bool(reg(port, R.VMOLR(n)) & R.VMOLR_ROMPE),
    }


# =============================================================================================
# bring-up
GOLDEN_OPEN = Path(__file__).parent / "data" / "vf_open_transcript.txt"


def transcript_lines(log: M.MailboxLog) -> list[str]:
    """The log from the VF's first message on, one line per message as the golden file has them."""
    first = next(i for i, e in enumerate(log) if e.direction == M.VF_TO_PF)
    lines = []
    for e in log[first:]:
        verdict = (e.verdict + (" CTS" if e.words[0] & M.IXGBE_VT_MSGTYPE_CTS else "")).strip()
        words = " ".join(f"{w:08x}" for w in e.words)
        lines.append(" ".join(x for x in (e.direction, e.opcode, verdict, f"[{words}]") if x))
    return lines


def test_open_transcript_matches_the_golden_file(host: Host, port: Port, vm: Vm) -> None:
    """Issue 14: probe and open in upstream's order, GET_LINK_STATE and VID 0 included."""
    port.pf.set_vf(0, mac=ADMIN_MAC)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    host.clock.advance(S)
    golden = [ln for ln in GOLDEN_OPEN.read_text().splitlines() if ln and not ln.startswith("#")]
    assert transcript_lines(port.pf.mailbox_log(0)) == golden
    assert nic.mac == ADMIN_MAC and nic.link_up and nic.mtu == 1500 and nic.api == MboxApi.API_17
    assert nic.pf_features == M.IXGBEVF_PF_SUP_IPSEC and nic.vlans == [0]
    assert nic.queues.rx_queues == 4 and nic.xcast_mode == XcastMode.MULTI


def test_negotiation_goes_from_newest_to_oldest(host: Host, port: Port, vm: Vm) -> None:
    port.pf.SUPPORTED_APIS = (MboxApi.API_10, MboxApi.API_11)  # an older PF
    nic = host.assign(port.vf(1), vm)
    asked = [
        (M.decode_api(e.message), e.verdict)
        for e in port.pf.mailbox_log(1)
        if e.opcode == "IXGBE_VF_API_NEGOTIATE" and e.direction == M.PF_TO_VF
    ]
    assert asked == [(8, "NACK"), (7, "NACK"), (6, "NACK"), (5, "NACK"), (4, "NACK"), (3, "NACK"), (2, "ACK")]
    assert nic.api == MboxApi.API_11 and nic.pf_features == 0
    nic.up()
    opcodes = port.pf.mailbox_log(1).opcodes(M.VF_TO_PF)
    assert "IXGBE_VF_UPDATE_XCAST_MODE" not in opcodes and "IXGBE_VF_FEATURES_NEGOTIATE" not in opcodes
    assert nic.set_rx_mode(allmulti=True) is None, "xcast needs API 1.2: not even asked"


def test_get_link_state_is_asked_on_every_api_and_a_nack_keeps_the_link(
    host: Host, port: Port, vm: Vm
) -> None:
    """Issue 14 row 10: ixgbevf sends GET_LINK_STATE whatever the API; the PF NACKs it below 1.2."""
    port.pf.SUPPORTED_APIS = (MboxApi.API_10, MboxApi.API_11)
    nic = host.assign(port.vf(1), vm)
    nic.up()
    host.clock.advance(S)
    log = port.pf.mailbox_log(1)
    replies = [e.verdict for e in log if e.opcode == "IXGBE_VF_GET_LINK_STATE" and e.direction == M.PF_TO_VF]
    assert replies == ["NACK"] and nic.link_up and nic.link_state


@pytest.mark.parametrize("api", [MboxApi.API_14, MboxApi.API_16])
def test_each_api_is_negotiated_down_from_the_newest(host: Host, port: Port, vm: Vm, api: MboxApi) -> None:
    """Issue 14 item 4: a PF that stops at 1.4 or 1.6 gets exactly that; no FEATURES_NEGOTIATE then."""
    port.pf.SUPPORTED_APIS = tuple(a for a in port.pf.SUPPORTED_APIS if a <= api)
    nic = host.assign(port.vf(2), vm)
    nic.up()
    assert nic.api == api
    assert "IXGBE_VF_FEATURES_NEGOTIATE" not in port.pf.mailbox_log(2).opcodes()
    assert nic.pf_features == (M.IXGBEVF_PF_SUP_IPSEC if api == MboxApi.API_14 else 0)
    assert port.pf.vf_config(2)["api"] == api.version


def test_vid_0_is_renewed_at_each_reinit_and_nacked_under_a_port_vlan(host: Host, port: Port, vm: Vm) -> None:
    """Issue 14 rows 10 and 11: the 8021q core adds VID 0 on open; restore_vlan re-sends every VID
    of active_vlans at each reinit, keeps one the PF now NACKs (a port VLAN set since) and says so."""
    nic = host.assign(port.vf(3), vm)
    nic.up()
    nic.add_vlan(10)
    assert sorted(nic.vlans) == [0, 10] and vlan_pools(port, 10) == 1 << 3
    port.pf.set_vf(3, vlan=20)  # not pinged: the VF learns at its next reset
    port.pf.set_vf(3, trust=True)  # ... which this causes
    host.clock.advance(12 * S)
    assert nic.link_up and sorted(nic.vlans) == [0, 10], "NACKed VLANs stay in active_vlans"
    assert "VF could not set VLAN 0" in " ".join(nic.messages)
    assert "VF could not set VLAN 10" in " ".join(nic.messages)
    replies = [
        e for e in port.pf.mailbox_log(3) if e.opcode == "IXGBE_VF_SET_VLAN" and e.direction == M.PF_TO_VF
    ]
    nacked = [M.decode_vlan(e.message)[0] for e in replies if e.verdict == "NACK"]
    assert nacked == [0, 10]
    log = port.pf.mailbox_log(3).opcodes(M.VF_TO_PF)
    assert log[-2:] == ["IXGBE_VF_SET_MAC_ADDR", "IXGBE_VF_GET_LINK_STATE"], "the rest of the reinit ran"
    port.pf.set_vf(3, vlan=0)
    port.pf.set_vf(3, trust=False)
    host.clock.advance(12 * S)
    assert nic.link_up and vlan_pools(port, 10) == 1 << 3, "re-sent and accepted once allowed again"


def test_random_mac_when_the_admin_set_none_and_it_is_seeded(port: Port) -> None:
    macs = []
    for _ in range(2):
        h = Host(seed=5)
        p = h.add_port("eth0")
        p.pf.set_numvfs(2)
        nic = h.assign(p.vf(0), h.add_vm("vm", memory=4 << 20))
        macs.append(nic.mac)
        mac = M.parse_mac(nic.mac)
        assert mac[0] & 0x02 and not mac[0] & 0x01, "locally administered unicast"
        assert "MAC address not assigned by administrator." in " ".join(nic.messages)
        nic.up()
        assert rar_pools(p, nic.mac) == 1, "the random MAC is given to the PF by SET_MAC_ADDR"
    assert macs[0] == macs[1]
    other = Host(seed=6)
    op = other.add_port("eth0")
    op.pf.set_numvfs(2)
    assert other.assign(op.vf(0), other.add_vm("vm", memory=4 << 20)).mac != macs[0]


def test_vf_cannot_come_up_before_the_pf(host: Host, port: Port, vm: Vm) -> None:
    port.pf.set_link(False)
    nic = host.assign(port.vf(0), vm)
    assert nic.adapter_stopped
    with pytest.raises(DriverStateError, match=r"PF still in reset state\. Is the PF interface up\?"):
        nic.up()
    assert not nic.is_up and not nic.link_up
    port.pf.set_link(True)
    nic.up()
    host.clock.advance(S)
    assert nic.link_up


def test_waits_run_on_the_simulated_clock(host: Host, port: Port, vm: Vm) -> None:
    start_sim, start_host = host.clock.now, time.perf_counter()
    nic = host.assign(port.vf(0), vm)
    nic.up()
    sim = host.clock.now - start_sim
    assert sim >= 10_000_000, "reset_hw waits 10 ms of simulated time"
    assert time.perf_counter() - start_host < sim / 1e9, "faster than real time"


# =============================================================================================
# the netdev-like API
def test_port_vlan_vf_cannot_add_vlans(host: Host, port: Port, vm: Vm) -> None:
    port.pf.set_vf(2, vlan=100, qos=1)
    nic = host.assign(port.vf(2), vm)
    nic.up()
    with pytest.raises(MailboxError, match="refused to add VLAN 10"):
        nic.add_vlan(10)
    assert nic.vlans == [] and not vlan_pools(port, 10)
    assert nic.queues.trans_vlan == 1


def test_vlans_add_remove(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(3), vm)
    nic.up()
    nic.add_vlan(10)
    nic.add_vlan(20)
    assert vlan_pools(port, 10) == 1 << 3 and vlan_pools(port, 20) == 1 << 3
    nic.remove_vlan(10)
    assert not vlan_pools(port, 10) and nic.vlans == [0, 20], "VID 0: the 8021q core's, since open"
    with pytest.raises(ConfigError, match="not configured"):
        nic.remove_vlan(10)
    with pytest.raises(ConfigError, match=r"0\.\.4095"):
        nic.add_vlan(4096)


def test_untrusted_vf_with_admin_mac_cannot_change_it(host: Host, port: Port, vm: Vm) -> None:
    port.pf.set_vf(0, mac=ADMIN_MAC)
    nic = host.assign(port.vf(0), vm)
    nic.up()
    with pytest.raises(MailboxError, match="refused MAC"):
        nic.set_mac("02:00:00:00:00:99")
    assert nic.mac == ADMIN_MAC and rar_pools(port, ADMIN_MAC) == 1
    assert not rar_pools(port, "02:00:00:00:00:99")


def test_vf_without_admin_mac_may_change_it_and_keeps_it_across_resets(
    host: Host, port: Port, vm: Vm
) -> None:
    nic = host.assign(port.vf(1), vm)
    nic.up()
    nic.set_mac("02:00:00:00:00:77")
    assert nic.mac == "02:00:00:00:00:77" and rar_pools(port, "02:00:00:00:00:77") == 1 << 1
    host.clock.advance(11 * S)
    port.pf.reset()
    host.clock.advance(20 * S)
    assert nic.link_up and nic.mac == "02:00:00:00:00:77" and rar_pools(port, nic.mac) == 1 << 1
    with pytest.raises(ConfigError, match="not a valid unicast"):
        nic.set_mac("01:00:00:00:00:01")


def test_untrusted_allmulti_gets_multi_trusted_gets_allmulti(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(4), vm)
    nic.up()
    assert nic.set_rx_mode(allmulti=True) == XcastMode.MULTI
    assert not reg(port, R.VMOLR(4)) & R.VMOLR_MPE
    host.clock.advance(11 * S)
    port.pf.set_vf(4, trust=True)  # the VF resets (lost CTS) and asks again
    host.clock.advance(5 * S)
    assert nic.link_up and nic.xcast_mode == XcastMode.ALLMULTI
    assert reg(port, R.VMOLR(4)) & R.VMOLR_MPE
    assert nic.set_rx_mode(promisc=True) == XcastMode.ALLMULTI, "82599 refuses PROMISC: nothing changes"
    assert nic.set_rx_mode() == XcastMode.MULTI


def test_multicast_list_hashes_and_link_local_skip(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(5), vm)
    nic.up()
    groups = ["01:00:5e:00:00:fb", "33:33:00:00:00:01", "01:80:c2:00:00:0e"]
    nic.set_multicast(groups)
    hashes = port.pf.vfinfo[5].mc_hashes
    assert hashes == [M.mta_vector(M.parse_mac(g), 0) for g in groups[:2]], "LLDP's 01:80:c2:00:00:0e skipped"
    assert mta_has(port, groups[0]) and mta_has(port, groups[1])
    assert reg(port, R.VMOLR(5)) & R.VMOLR_ROMPE
    many = [f"01:00:5e:00:{i // 256:02x}:{i % 256:02x}" for i in range(40)]
    nic.set_multicast(many)
    assert len(port.pf.vfinfo[5].mc_hashes) == 30
    with pytest.raises(ConfigError, match="not a multicast"):
        nic.set_multicast(["02:00:00:00:00:01"])
    nic.set_multicast([])
    assert reg(port, R.VMOLR(5)) & R.VMOLR_ROMPE, "upstream sets ROMPE even for an empty list"
    assert mta_has(port, groups[0]), "old hashes stay until the PF rebuilds the MTA"
    port.pf.set_multicast([])  # the PF's set_rx_mode: restore_vf_multicasts
    assert not reg(port, R.VMOLR(5)) & R.VMOLR_ROMPE and not mta_has(port, groups[0])


def test_mtu_jumbo_rule(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(0), vm)
    nic.up()
    with pytest.raises(MailboxError, match="jumbo"):
        nic.set_mtu(9000)
    assert nic.mtu == 1500
    with pytest.raises(ConfigError, match=r"68\.\.9710"):
        nic.set_mtu(9711)
    nic.set_mtu(1400)
    assert nic.mtu == 1400 and nic.is_up
    port.pf.set_mtu(9000)  # a jumbo PF: the VF is reset and must send SET_LPE again to receive
    host.clock.advance(20 * S)
    assert nic.link_up and reg(port, R.VFRE(0)) & 1
    nic.set_mtu(9000)
    host.clock.advance(S)
    assert nic.mtu == 9000 and nic.link_up and reg(port, R.MAXFRS) >> 16 >= 9018


def test_state_disable_takes_the_link_down_auto_brings_it_back(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(6), vm)
    nic.up()
    host.clock.advance(11 * S)
    port.pf.set_vf(6, state="disable")
    host.clock.advance(5 * S)
    assert not nic.link_up and not nic.link_state
    assert "VF is administratively disabled" in " ".join(nic.messages)
    host.clock.advance(11 * S)
    port.pf.set_vf(6, state="auto")
    host.clock.advance(5 * S)
    assert nic.link_up and nic.link_state


def test_down_resets_and_up_again(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(0), vm)
    nic.up()
    nic.add_vlan(12)
    nic.down()
    assert not nic.is_up and not nic.link_up
    assert not vlan_pools(port, 12), "the reset on close drops the VF's filters"
    nic.up()
    assert vlan_pools(port, 12) == 1, "and open puts them back"


def test_stats_and_interrupts(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(0), vm)
    nic.up()
    port.device.set_link(False)
    host.clock.advance(S)
    s = nic.stats()
    assert s["rx_packets"] == 0 and s["mbx_msgs_tx"] >= 8 and s["mbx_msgs_rx"] >= 8
    assert all(isinstance(v, int) for v in s.values())
    irqs = nic.interrupts()
    assert irqs[nic.name] >= 1, "the link change reached the guest on the mailbox vector"
    assert vm.injected[f"{nic.name}-1"] == irqs[nic.name]


# =============================================================================================
# resets and link flaps: every VF detects it and re-initialises with its configuration
def _configured_vfs(host: Host, port: Port, vm: Vm, count: int) -> list[VfNic]:
    port.pf.set_mtu(9000)
    port.pf.set_vf(0, mac=ADMIN_MAC)
    nics = []
    for n in range(count):
        nic = host.assign(port.vf(n), vm)
        nic.up()
        nic.add_vlan(100 + n)
        nic.add_vlan(200)
        nic.set_multicast([f"01:00:5e:00:01:{n:02x}", "33:33:00:00:00:fb"])
        nic.set_mtu(1500 + 500 * n)
        nics.append(nic)
    host.clock.advance(11 * S)  # past ixgbevf's 10 s reset hold-off
    return nics


def _assert_restored(port: Port, nics: list[VfNic], before: list[dict]) -> None:
    for n, nic in enumerate(nics):
        assert nic.link_up, nic.messages
        now = vf_filters(port, n, nic)
        assert now == before[n], (n, now, before[n])
        assert now["mac"] and all(now["mc"]) and now["rx"] and now["maxfrs_ok"]
        assert now["vlans"] == sorted({100 + n, 200})


def test_pf_reset_every_vf_reinitialises_with_its_configuration(host: Host, port: Port, vm: Vm) -> None:
    nics = _configured_vfs(host, port, vm, 4)
    before = [vf_filters(port, n, nic) for n, nic in enumerate(nics)]
    resets = [nic.counters["resets"] for nic in nics]
    macs = [nic.mac for nic in nics]
    port.pf.reset()
    assert all(not vlan_pools(port, 100 + n) for n in range(4)), "the PF reset wiped the filters"
    host.clock.advance(S)
    assert not any(nic.link_up for nic in nics), "every VF noticed"
    host.clock.advance(10 * S)
    _assert_restored(port, nics, before)
    assert [nic.counters["resets"] - r for nic, r in zip(nics, resets, strict=True)] == [1] * 4
    assert [nic.mac for nic in nics] == macs and nics[0].mac == ADMIN_MAC
    assert [nic.mtu for nic in nics] == [1500, 2000, 2500, 3000]


def test_pf_link_flap_every_vf_reinitialises_with_its_configuration(host: Host, port: Port, vm: Vm) -> None:
    nics = _configured_vfs(host, port, vm, 3)
    before = [vf_filters(port, n, nic) for n, nic in enumerate(nics)]
    port.pf.set_link(False)  # ip link set dev eth0 down
    host.clock.advance(3 * S)
    assert not any(nic.link_up for nic in nics)
    port.pf.set_link(True)
    host.clock.advance(10 * S)
    _assert_restored(port, nics, before)


def test_physical_link_flap_is_seen_without_a_reset(host: Host, port: Port, vm: Vm) -> None:
    nics = _configured_vfs(host, port, vm, 2)
    resets = [nic.counters["resets"] for nic in nics]
    port.device.set_link(False)  # the cable
    host.clock.advance(10_000_000)
    assert not any(nic.link_up for nic in nics)
    port.device.set_link(True)
    host.clock.advance(10_000_000)
    assert all(nic.link_up for nic in nics)
    assert [nic.counters["resets"] for nic in nics] == resets, "CTS was kept: no reset needed"


def test_reset_within_the_holdoff_waits_for_it(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(0), vm)
    nic.up()
    reset_at = nic.last_reset
    port.pf.reset()  # right after bring-up: ixgbevf will not reset again within 10 s
    host.clock.advance(5 * S)
    assert not nic.link_up and nic.counters["resets"] == 1
    host.clock.advance(RESET_HOLDOFF_NS)
    assert nic.link_up and nic.counters["resets"] == 2 and nic.last_reset > reset_at + RESET_HOLDOFF_NS


def test_many_vfs_come_up_and_survive_a_pf_reset(host: Host) -> None:
    port = host.add_port("eth1")
    port.pf.set_numvfs(63)
    vm = host.add_vm("big", memory=128 << 20)
    nics = [host.assign(port.vf(n), vm) for n in range(63)]
    for nic in nics:
        nic.up()
    host.clock.advance(11 * S)
    assert all(nic.link_up for nic in nics)
    assert len({nic.mac for nic in nics}) == 63
    port.pf.reset()
    host.clock.advance(10 * S)
    assert all(nic.link_up for nic in nics)
    pools = np.array([rar_pools(port, nic.mac) for nic in nics], dtype=object)
    assert list(pools) == [1 << n for n in range(63)]


def test_set_coalesce_programs_the_queue_vector_and_survives_a_reset(host: Host, port: Port, vm: Vm) -> None:
    nic = host.assign(port.vf(0), vm)
    nic.up()
    fn = port.vf(0)
    assert fn.read32(R.VTEITR(0)) & R.MAX_EITR == 200, "ixgbevf starts adaptive at 20K interrupts/s"
    nic.set_coalesce(50)
    assert fn.read32(R.VTEITR(0)) & R.MAX_EITR == 50 << 2
    with pytest.raises(ConfigError, match="rx-usecs"):
        nic.set_coalesce(1023)
    host.clock.advance(11 * S)
    port.pf.reset()
    host.clock.advance(10 * S)
    assert nic.link_up and fn.read32(R.VTEITR(0)) & R.MAX_EITR == 50 << 2
