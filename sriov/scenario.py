"""Scenario files (TOML): ports, VFs and their admin settings, VMs and their guest drivers, traffic.

Loading validates everything before anything is built: an error names the file, the key
(``port[0].vf[1].vlan``) and what is allowed. The format is documented in the README and by
the built-in default scenario (``sriov/scenarios/default.toml``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sriov.drivers.coalesce import ADAPTIVE
from sriov.errors import ConfigError
from sriov.hw import regs as R

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
VF_STATES = ("auto", "enable", "disable")
IFNAMSIZ = 16  # Linux: interface names are at most 15 characters
LINK_SPEEDS_GBPS = {"1G": 1.0, "10G": 10.0, "25G": 25.0, "40G": 40.0, "100G": 100.0}
PORT_LINK = "10G"  # every port is an 82599: 10 GbE


class ScenarioError(ConfigError):
    """A scenario file that does not validate: names the file, the key and what is allowed."""


@dataclass
class VfAdmin:
    """`ip link set dev PORT vf INDEX ...` settings."""

    index: int
    mac: str | None = None
    vlan: int = 0
    qos: int = 0
    spoofchk: bool = True
    trust: bool = False
    state: str = "auto"


@dataclass
class PortSpec:
    """One 82599 port and its PF settings."""

    name: str
    num_vfs: int = 0
    mtu: int = 1500
    promisc: bool = False
    vfs: list[VfAdmin] = field(default_factory=list)


@dataclass
class NicSpec:
    """A VF assigned to a VM and what its guest driver configures."""

    port: str
    vf: int
    mac: str | None = None
    vlans: list[int] = field(default_factory=list)
    multicast: list[str] = field(default_factory=list)
    mtu: int = 1500
    promisc: bool = False
    allmulti: bool = False
    rx_usecs: int | None = None  # None: the driver's default (adaptive); 0 is off
    ring_size: int = R.DEFAULT_RXD


@dataclass
class VmSpec:
    """A VM: guest memory and its assigned VFs."""

    name: str
    memory_mb: int = 64
    nics: list[NicSpec] = field(default_factory=list)


@dataclass
class TrafficSpec:
    """Frames offered to a port's wire: a capture, or a synthetic generator."""

    port: str
    pcap: str | None = None
    generator: dict[str, Any] | None = None
    repeat: int = 1
    vf: int | None = None  # None: the frames arrive on the port's wire; N: VF N's guest sends them


@dataclass
class Scenario:
    """A whole host: ports, VMs, traffic."""

    name: str
    source: str
    seed: int = 0
    batch_frames: int = 4096
    ports: list[PortSpec] = field(default_factory=list)
    vms: list[VmSpec] = field(default_factory=list)
    traffic: list[TrafficSpec] = field(default_factory=list)


# -- validation helpers ---------------------------------------------------------------------------
class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key}: {message}")


def _take(ctx: _Ctx, table: Any, key: str, fields: dict[str, Callable[[_Ctx, str, Any], Any]],
          required: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    if not isinstance(table, dict):
        raise ctx.fail(key, f"must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ctx.fail(
            f"{key}.{unknown[0]}" if key else unknown[0], f"unknown key; allowed: {', '.join(fields)}"
        )
    for name in required:
        if name not in table:
            raise ctx.fail(f"{key}.{name}" if key else name, "is required")
    return {name: check(ctx, f"{key}.{name}" if key else name, table[name]) for name, check in fields.items()
            if name in table}  # fmt: skip


def _int(lo: int, hi: int) -> Callable[[_Ctx, str, Any], int]:
    def check(ctx: _Ctx, key: str, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ctx.fail(key, f"{v!r} is not allowed (an integer in {lo}..{hi})")
        return v

    return check


def _bool(ctx: _Ctx, key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ctx.fail(key, f"{v!r} is not allowed (true or false)")
    return v


def _str(ctx: _Ctx, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ctx.fail(key, f"{v!r} is not allowed (a non-empty string)")
    return v


def _mac(ctx: _Ctx, key: str, v: Any) -> str:
    if not isinstance(v, str) or not _MAC_RE.match(v):
        raise ctx.fail(key, f"{v!r} is not allowed (a MAC address like 02:00:00:00:00:01)")
    return v.lower()


def _unicast_mac(ctx: _Ctx, key: str, v: Any) -> str:
    mac = _mac(ctx, key, v)
    if int(mac[:2], 16) & 1:
        raise ctx.fail(key, f"{mac} is multicast; allowed: a unicast MAC (first byte even)")
    if mac == "00:00:00:00:00:00":
        raise ctx.fail(key, f"{mac} is not allowed (a unicast MAC; leave the key out for none)")
    return mac


def _multicast_mac(ctx: _Ctx, key: str, v: Any) -> str:
    mac = _mac(ctx, key, v)
    if not int(mac[:2], 16) & 1 or mac == "ff:ff:ff:ff:ff:ff":
        raise ctx.fail(key, f"{mac} is not a multicast address (allowed: first byte odd, not broadcast)")
    return mac


def _port_name(ctx: _Ctx, key: str, v: Any) -> str:
    """A Linux interface name (``dev_valid_name``): it names files and ``sriov show`` arguments."""
    name = _str(ctx, key, v)
    if len(name) > IFNAMSIZ - 1 or name in (".", "..") or any(c == "/" or c.isspace() for c in name):
        raise ctx.fail(
            key,
            f"{name!r} is not allowed (an interface name: 1..{IFNAMSIZ - 1} characters, no '/' or spaces)",
        )
    return name


def _choice(options: tuple[str, ...]) -> Callable[[_Ctx, str, Any], str]:
    def check(ctx: _Ctx, key: str, v: Any) -> str:
        if v not in options:
            raise ctx.fail(key, f"{v!r} is not allowed (one of {', '.join(options)})")
        return v

    return check


def _list_of(item: Callable[[_Ctx, str, Any], Any]) -> Callable[[_Ctx, str, Any], list[Any]]:
    def check(ctx: _Ctx, key: str, v: Any) -> list[Any]:
        if not isinstance(v, list):
            raise ctx.fail(key, f"must be a list, got {type(v).__name__}")
        return [item(ctx, f"{key}[{i}]", x) for i, x in enumerate(v)]

    return check


def _rx_usecs(ctx: _Ctx, key: str, v: Any) -> int:
    """``ethtool -C rx-usecs``: 0 off, 1 or "adaptive" adaptive (ixgbevf's encoding), 2..1022 fixed."""
    if v == "adaptive":
        return ADAPTIVE
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 1022:
        raise ctx.fail(key, f'{v!r} is not allowed (an integer in 0..1022, or "adaptive")')
    return v


def _table(ctx: _Ctx, key: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ctx.fail(key, f"must be a table, got {type(v).__name__}")
    return v


# -- parsing --------------------------------------------------------------------------------------
def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML text."""
    return from_document(read_toml(text, source), source)


def read_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as a document (dict); a syntax error names ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None


def from_document(doc: dict[str, Any], source: str) -> Scenario:
    """Validate a scenario document (TOML already parsed: a sweep derives its points this way);
    ``source`` names it in errors, and relative pcap paths resolve against its folder."""
    ctx = _Ctx(source)
    top = _take(ctx, doc, "", {
        "name": _str, "seed": _int(0, 2**63 - 1), "batch_frames": _int(1, 1 << 20),
        "port": _list_of(_table), "vm": _list_of(_table), "traffic": _list_of(_table),
    })  # fmt: skip
    sc = Scenario(name=top.get("name", Path(source).stem), source=source, seed=top.get("seed", 0),
                  batch_frames=top.get("batch_frames", 4096))  # fmt: skip
    for i, raw in enumerate(top.get("port", [])):
        sc.ports.append(_parse_port(ctx, f"port[{i}]", raw))
    for i, raw in enumerate(top.get("vm", [])):
        sc.vms.append(_parse_vm(ctx, f"vm[{i}]", raw))
    for i, raw in enumerate(top.get("traffic", [])):
        sc.traffic.append(_parse_traffic(ctx, f"traffic[{i}]", raw))
    _cross_check(ctx, sc)
    return sc


def _parse_port(ctx: _Ctx, key: str, raw: Any) -> PortSpec:
    t = _take(ctx, raw, key, {
        "name": _port_name, "num_vfs": _int(0, R.MAX_VFS), "mtu": _int(68, R.MAX_JUMBO_FRAME_SIZE - 18),
        "promisc": _bool, "vf": _list_of(_table),
    }, required=("name",))  # fmt: skip
    vfs = []
    indexes: dict[int, int] = {}
    for j, v in enumerate(t.pop("vf", [])):
        vkey = f"{key}.vf[{j}]"
        a = _take(ctx, v, vkey, {
            "index": _int(0, R.MAX_VFS - 1), "mac": _unicast_mac, "vlan": _int(0, 4095), "qos": _int(0, 7),
            "spoofchk": _bool, "trust": _bool, "state": _choice(VF_STATES),
        }, required=("index",))  # fmt: skip
        if a["index"] >= t.get("num_vfs", 0):
            raise ctx.fail(
                f"{vkey}.index", f"{a['index']} is not allowed (0..{t.get('num_vfs', 0) - 1}: num_vfs)"
            )
        if a["index"] in indexes:
            raise ctx.fail(
                f"{vkey}.index",
                f"{a['index']} is already set by {key}.vf[{indexes[a['index']]}] (one entry per VF)",
            )
        indexes[a["index"]] = j
        vfs.append(VfAdmin(**a))
    return PortSpec(**t, vfs=vfs)


def _parse_vm(ctx: _Ctx, key: str, raw: Any) -> VmSpec:
    t = _take(ctx, raw, key, {"name": _str, "memory_mb": _int(4, 1 << 16), "nic": _list_of(_table)},
              required=("name",))  # fmt: skip
    nics = []
    for j, n in enumerate(t.pop("nic", [])):
        a = _take(ctx, n, f"{key}.nic[{j}]", {
            "port": _str, "vf": _int(0, R.MAX_VFS - 1), "mac": _unicast_mac,
            "vlans": _list_of(_int(1, 4095)), "multicast": _list_of(_multicast_mac),
            "mtu": _int(68, R.MAX_JUMBO_FRAME_SIZE - 18), "promisc": _bool,
            "allmulti": _bool, "rx_usecs": _rx_usecs, "ring_size": _int(R.MIN_RXD, R.MAX_RXD),
        }, required=("port", "vf"))  # fmt: skip
        if "ring_size" in a and a["ring_size"] % R.REQ_RX_DESCRIPTOR_MULTIPLE:
            raise ctx.fail(f"{key}.nic[{j}].ring_size", f"{a['ring_size']} is not a multiple of 8")
        nics.append(NicSpec(**a))
    return VmSpec(**t, nics=nics)


def _parse_traffic(ctx: _Ctx, key: str, raw: Any) -> TrafficSpec:
    t = _take(ctx, raw, key, {"port": _str, "pcap": _str, "generator": _table, "repeat": _int(1, 1 << 20),
                              "vf": _int(0, R.MAX_VFS - 1)}, required=("port",))  # fmt: skip
    if ("pcap" in t) == ("generator" in t):
        raise ctx.fail(key, "needs exactly one of pcap or generator")
    if "pcap" in t:
        path = Path(t["pcap"])
        if not path.is_absolute():
            path = Path(ctx.source).parent / path
        t["pcap"] = str(path)
    else:
        _check_generator(ctx, f"{key}.generator", t["generator"])
    return TrafficSpec(**t)


def _check_generator(ctx: _Ctx, key: str, table: dict[str, Any]) -> None:
    """The generator's keys, checked at load time so that errors name the file and the key."""
    from sriov.traffic.synth import LINK_BIT_PS, profile_from_scenario

    try:
        profile_from_scenario(table)
    except ConfigError as exc:
        raise ScenarioError(f"{ctx.source}: {key}.{str(exc).removeprefix('traffic generator: ')}") from None
    rate = table.get("rate", "10G")
    if (
        isinstance(rate, str)
        and LINK_BIT_PS.get(rate.strip(), LINK_BIT_PS[PORT_LINK]) < LINK_BIT_PS[PORT_LINK]
    ):
        raise ctx.fail(
            f"{key}.rate",
            f"{rate!r} is faster than the port: an 82599 port is {PORT_LINK}bE (allowed: up to the "
            f"{PORT_LINK} line rate; a bit or packet rate above it is sent at line rate, with a warning)",
        )


def _cross_check(ctx: _Ctx, sc: Scenario) -> None:
    ports = {}
    for i, p in enumerate(sc.ports):
        if p.name in ports:
            raise ctx.fail(f"port[{i}].name", f"{p.name!r} is used twice")
        ports[p.name] = p
    seen: dict[tuple[str, int], str] = {}
    names = set()
    for i, vm in enumerate(sc.vms):
        if vm.name in names:
            raise ctx.fail(f"vm[{i}].name", f"{vm.name!r} is used twice")
        names.add(vm.name)
        for j, nic in enumerate(vm.nics):
            key = f"vm[{i}].nic[{j}]"
            if nic.port not in ports:
                raise ctx.fail(
                    f"{key}.port", f"{nic.port!r} is not a port (allowed: {', '.join(ports) or 'none'})"
                )
            if nic.vf >= ports[nic.port].num_vfs:
                raise ctx.fail(f"{key}.vf", f"{nic.vf} is not allowed (0..{ports[nic.port].num_vfs - 1})")
            if (nic.port, nic.vf) in seen:
                raise ctx.fail(
                    key, f"{nic.port} vf {nic.vf} is already assigned to {seen[(nic.port, nic.vf)]}"
                )
            seen[(nic.port, nic.vf)] = vm.name
    if not sc.ports:
        raise ctx.fail("port", "no [[port]] table: a scenario needs at least one port")
    for i, t in enumerate(sc.traffic):
        if t.port not in ports:
            raise ctx.fail(f"traffic[{i}].port", f"{t.port!r} is not a port (allowed: {', '.join(ports)})")
        if t.vf is not None and (t.port, t.vf) not in seen:
            assigned = sorted(vf for port, vf in seen if port == t.port)
            raise ctx.fail(
                f"traffic[{i}].vf",
                f"{t.vf} is not allowed: the sender must be a VF assigned to a VM "
                f"(assigned on {t.port}: {', '.join(map(str, assigned)) or 'none'})",
            )


def load(path: str | Path) -> Scenario:
    """Load and validate a scenario file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"{p}: not a TOML scenario: byte {exc.start} is not UTF-8 text (TOML files are UTF-8)"
        ) from None
    return parse(text, str(p))


def default() -> Scenario:
    """The built-in default scenario (one port, four VFs in two VMs, a mixed synthetic load)."""
    text = resources.files("sriov").joinpath("scenarios/default.toml").read_text()
    return parse(text, "<built-in default>")


# -- writing --------------------------------------------------------------------------------------
def dumps(sc: Scenario, path: str | Path | None = None) -> str:
    """Scenario TOML text that `parse` reads back to the same scenario (comments are not kept).

    ``path``: where the text will be written; capture paths are written relative to it."""
    lines = [f"name = {_toml(sc.name)}", f"seed = {sc.seed}", f"batch_frames = {sc.batch_frames}"]
    for p in sc.ports:
        lines += ["", "[[port]]", f"name = {_toml(p.name)}", f"num_vfs = {p.num_vfs}", f"mtu = {p.mtu}"]
        if p.promisc:
            lines.append("promisc = true")
        for a in sorted(p.vfs, key=lambda v: v.index):
            lines += ["", "  [[port.vf]]", f"  index = {a.index}"]
            defaults = VfAdmin(a.index)
            for key in ("mac", "vlan", "qos", "spoofchk", "trust", "state"):
                value = getattr(a, key)
                if value != getattr(defaults, key):
                    lines.append(f"  {key} = {_toml(value)}")
    for vm in sc.vms:
        lines += ["", "[[vm]]", f"name = {_toml(vm.name)}", f"memory_mb = {vm.memory_mb}"]
        for n in vm.nics:
            lines += ["", "  [[vm.nic]]", f"  port = {_toml(n.port)}", f"  vf = {n.vf}"]
            defaults = NicSpec(n.port, n.vf)
            for key in ("mac", "vlans", "multicast", "mtu", "promisc", "allmulti", "rx_usecs", "ring_size"):
                value = getattr(n, key)
                if value != getattr(defaults, key):
                    lines.append(f"  {key} = {_toml(value)}")
    for t in sc.traffic:
        lines += ["", "[[traffic]]", f"port = {_toml(t.port)}"]
        if t.vf is not None:
            lines.append(f"vf = {t.vf}")
        if t.repeat != 1:
            lines.append(f"repeat = {t.repeat}")
        if t.pcap is not None:
            pcap = Path(t.pcap)
            if path is not None and not pcap.is_absolute():
                pcap = Path(os.path.relpath(pcap, Path(path).parent))
            lines.append(f"pcap = {_toml(str(pcap))}")
        else:
            lines.append("  [traffic.generator]")
            lines += [f"  {key} = {_toml(value)}" for key, value in (t.generator or {}).items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """One TOML value: strings, booleans, numbers, lists and (inline) tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    raise ScenarioError(f"cannot write {value!r} ({type(value).__name__}) to a scenario file")


def save(sc: Scenario, path: str | Path) -> None:
    """Write ``sc`` to ``path`` as a scenario file (see `dumps`)."""
    text = dumps(sc, path)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot write: {exc.strerror or exc}") from None
