"""Scenario files validate on load, with errors naming the file, the key and what is allowed."""

from __future__ import annotations

import pytest

from sriov.scenario import ScenarioError, default, load, parse

GOOD = """
name = "two-vms"
[[port]]
name = "eth0"
num_vfs = 2
  [[port.vf]]
  index = 1
  mac = "02:AA:00:00:00:01"
  vlan = 7
[[vm]]
name = "a"
  [[vm.nic]]
  port = "eth0"
  vf = 1
  vlans = [5]
[[traffic]]
port = "eth0"
pcap = "x.pcap"
"""


def test_good_scenario_parses() -> None:
    sc = parse(GOOD, "/tmp/dir/s.toml")
    assert sc.name == "two-vms"
    assert sc.ports[0].vfs[0].mac == "02:aa:00:00:00:01"
    assert sc.ports[0].vfs[0].vlan == 7
    assert sc.vms[0].nics[0].vlans == [5]
    assert sc.traffic[0].pcap == "/tmp/dir/x.pcap", "relative pcap paths are relative to the file"


def test_default_scenario_is_valid() -> None:
    sc = default()
    assert sc.ports[0].num_vfs == 4
    assert sum(len(vm.nics) for vm in sc.vms) == 4


@pytest.mark.parametrize(
    "text,key,allowed",
    [
        ("[[port]]\nname='e'\nnum_vfs=64", "port[0].num_vfs", "0..63"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[port.vf]]\nindex=0\nqos=9", "port[0].vf[0].qos", "0..7"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[port.vf]]\nindex=0\nmac='zz'", "port[0].vf[0].mac", "MAC address"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[port.vf]]\nindex=0\nstate='up'", "port[0].vf[0].state", "auto"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[port.vf]]\nindex=3", "port[0].vf[0].index", "num_vfs"),
        ("[[port]]\nname='e'\nspeed=1", "port[0].speed", "allowed: name"),
        ("[[port]]\nnum_vfs=1", "port[0].name", "required"),
        ("[[vm]]\nname='a'\n[[vm.nic]]\nport='eth9'\nvf=0", "vm[0].nic[0].port", "not a port"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[vm]]\nname='a'\n[[vm.nic]]\nport='e'\nvf=1",
         "vm[0].nic[0].vf", "0..0"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[vm]]\nname='a'\n[[vm.nic]]\nport='e'\nvf=0\nring_size=100",
         "vm[0].nic[0].ring_size", "multiple of 8"),
        ("[[port]]\nname='e'\n[[traffic]]\nport='e'", "traffic[0]", "exactly one of pcap or generator"),
        ("[[port]]\nname='e'\n[[port]]\nname='e'", "port[1].name", "used twice"),
        ("x = [", "not valid TOML", ""),
    ],
)  # fmt: skip
def test_errors_name_file_key_and_allowed(text: str, key: str, allowed: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse(text, "bad.toml")
    message = str(info.value)
    assert message.startswith("bad.toml: ")
    assert key in message and allowed in message


def test_two_vms_cannot_share_a_vf() -> None:
    text = "[[port]]\nname='e'\nnum_vfs=1\n" + "".join(
        f"[[vm]]\nname='{n}'\n[[vm.nic]]\nport='e'\nvf=0\n" for n in "ab"
    )
    with pytest.raises(ScenarioError, match="already assigned to a"):
        parse(text, "s.toml")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "nope.toml")


def test_a_sending_vf_must_be_assigned_to_a_vm() -> None:
    text = (
        GOOD
        + """
[[traffic]]
port = "eth0"
vf = 0
  [traffic.generator]
  frames = 10
"""
    )
    with pytest.raises(ScenarioError, match=r"traffic\[1\]\.vf: 0 is not allowed.*assigned on eth0: 1"):
        parse(text, "s.toml")
    sc = parse(text.replace("vf = 0\n  [traffic", "vf = 1\n  [traffic"), "s.toml")
    assert sc.traffic[1].vf == 1 and sc.traffic[0].vf is None


RX_USECS = """
[[port]]
name = "eth0"
num_vfs = 1
[[vm]]
name = "a"
  [[vm.nic]]
  port = "eth0"
  vf = 0
  rx_usecs = {value}
"""


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("50", 50), ('"adaptive"', 1)])
def test_rx_usecs_is_applied_including_zero_and_adaptive(value: str, expected: int) -> None:
    """`rx_usecs = 0` turns moderation off (ethtool -C rx-usecs 0); it used to be taken as "not set",
    leaving the driver's adaptive default. "adaptive" is ixgbevf's rx-usecs 1."""
    from sriov.runner import ScenarioRun

    built = ScenarioRun(parse(RX_USECS.format(value=value)))
    nic = built.nics[0][3]
    assert nic.rx_usecs == expected


def test_rx_usecs_names_what_is_allowed() -> None:
    with pytest.raises(ScenarioError, match=r'vm\[0\]\.nic\[0\]\.rx_usecs: .*"adaptive"'):
        parse(RX_USECS.format(value='"fast"'))
