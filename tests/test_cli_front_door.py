"""Issue 15, "the front door": what a newcomer hit with the `sriov` command, one test (or a few) per item."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import sriov
from sriov.cli import main
from sriov.runner import OUTPUT_MANIFEST, ScenarioRun
from sriov.scenario import default, load, parse
from sriov.traffic import read_pcap

DATA = Path(__file__).resolve().parent / "data" / "tcpdump"

SMALL = """
name = "small"
[[port]]
name = "eth0"
num_vfs = 3
  [[port.vf]]
  index = 0
  mac = "02:00:00:00:00:10"
  [[port.vf]]
  index = 1
  mac = "02:00:00:00:00:11"
[[vm]]
name = "vm0"
  [[vm.nic]]
  port = "eth0"
  vf = 0
  [[vm.nic]]
  port = "eth0"
  vf = 1
  [[vm.nic]]
  port = "eth0"
  vf = 2
[[traffic]]
port = "eth0"
  [traffic.generator]
  frames = 300
  rate = "10G"
  dst = ["02:00:00:00:00:10", "02:00:00:00:99:99"]
"""

# VF 0's guest sends 40 frames with a forged source MAC: spoofchk drops them all
FORGED = """
[[traffic]]
port = "eth0"
vf = 0
  [traffic.generator]
  frames = 40
  src = ["02:00:00:00:de:ad"]
"""

# every request here is one the model downgrades or refuses (item 2)
REFUSED = """
[[port]]
name = "eth0"
num_vfs = 2
  [[port.vf]]
  index = 0
  mac = "02:00:00:00:00:10"
  vlan = 5
  [[port.vf]]
  index = 1
  mac = "02:00:00:00:00:11"
[[vm]]
name = "a"
  [[vm.nic]]
  port = "eth0"
  vf = 0
  vlans = [7]
  [[vm.nic]]
  port = "eth0"
  vf = 1
  vlans = [1, 2, 3, 4, 5, 6, 7, 8, 9]
  allmulti = true
[[traffic]]
port = "eth0"
  [traffic.generator]
  frames = 50
  rate = "20Gbps"
  dst = ["02:00:00:00:00:11"]
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _fail(capsys: pytest.CaptureFixture[str], *args: str, status: int = 2) -> str:
    assert main(list(args)) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("sriov: error:") == 1, err
    return err


# -- item 2: every scenario key is applied or refused ------------------------------------------------
def test_ring_size_is_applied(tmp_path: Path) -> None:
    sc = parse(SMALL.replace("  vf = 1\n", "  vf = 1\n  ring_size = 1024\n", 1), "s.toml")
    built = ScenarioRun(sc)
    counts = [nic.rx_ring.count for _p, _vf, _vm, nic in built.nics]
    assert counts == [512, 1024, 512]
    doc = built.offer("eth0", sriov.generate(sriov.TrafficProfile(dst=["02:00:00:00:00:11"]), frames=900))
    assert doc == {}
    assert built.nics[1][3].stats()["rx_packets"] == 900, "a 1024-descriptor ring takes 900 frames at once"


def test_set_ringparam_follows_ixgbevf() -> None:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    nic = host.assign(port.vf(0), host.add_vm("vm", memory=64 << 20))
    nic.up()
    assert nic.set_ringparam(rx=100) == 104, "rounded up to a multiple of 8 (REQ_RX_DESCRIPTOR_MULTIPLE)"
    assert nic.set_ringparam(rx=1) == 64, "raised to IXGBEVF_MIN_RXD"
    assert nic.rx_ring.count == 64 and nic.is_up
    with pytest.raises(sriov.ConfigError, match=r"1\.\.4096"):
        nic.set_ringparam(rx=8192)
    assert nic.rx_ring.count == 64, "a refused size changes nothing"


def test_refusals_are_warnings_on_stderr_and_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, REFUSED)
    doc = _json(capsys, "run", str(path))
    warnings = doc["warnings"]
    assert len(warnings) == 4, warnings
    assert all(w.startswith(f"{path}: ") for w in warnings)
    text = "\n".join(warnings)
    assert "vm[0].nic[0].vlans[0]" in text and "port VLAN 5" in text
    assert "vm[0].nic[1].vlans[8]" in text and "at most 8 VLAN filters" in text, "the cap is named"
    assert "vm[0].nic[1].allmulti" in text and "MULTI" in text
    assert "traffic[0].generator.rate" in text and "line rate" in text
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("sriov: warning:") == 4


def test_promisc_on_82599_is_a_warning() -> None:
    """A trusted VF asking for promiscuous mode: 82599 has none for VFs (ixgbe: -EOPNOTSUPP)."""
    text = SMALL.replace("  index = 1\n", "  index = 1\n  trust = true\n").replace(
        "  vf = 1\n", "  vf = 1\n  promisc = true\n", 1
    )
    built = ScenarioRun(parse(text, "p.toml"))
    assert len(built.warnings) == 1, built.warnings
    assert (
        built.warnings[0].startswith("p.toml: vm[0].nic[1].promisc: ")
        and "no VF promiscuous mode" in built.warnings[0]
    )


def test_strict_turns_warnings_into_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, "run", str(_write(tmp_path, REFUSED)), "--strict")
    assert "--strict: 4 requests" in err
    assert main(["run", str(_write(tmp_path, SMALL)), "--strict", "--json"]) == 0


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("[[port]]\nname='e'\nnum_vfs=2\n[[port.vf]]\nindex=1\n[[port.vf]]\nindex=1", "port[0].vf[1].index",
         "already set by port[0].vf[0]"),
        ("[[port]]\nname='a/b'", "port[0].name", "no '/'"),
        ("name = 'nothing'", "port", "at least one port"),
        ("[[port]]\nname='e'\n[[traffic]]\nport='e'\n[traffic.generator]\nrate='40G'",
         "traffic[0].generator.rate", "faster than the port"),
    ],
)  # fmt: skip
def test_scenario_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, allowed: str
) -> None:
    path = _write(tmp_path, text)
    err = _fail(capsys, "run", str(path))
    assert f"{path}: {key}: " in err and allowed in err


# -- item 3: show where every frame went -------------------------------------------------------------
def test_pf_pool_and_transmit_drops_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SMALL + FORGED)
    doc = _json(capsys, "run", str(path))
    pf = doc["pf"]["eth0"]
    assert pf["pool"] == 3 and pf["stats"]["rx_packets"] > 0, "unknown unicast and broadcast reach the PF"
    copies = sum(v["stats"]["rx_packets"] for v in doc["vfs"]) + pf["stats"]["rx_packets"]
    assert copies == doc["ports"]["eth0"]["rx_pool_copies"], "every pool copy is in a row"
    assert doc["drops_by_reason"]["tx_spoofed"] == 40
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(host)" in out and "pf" in out and "tx_spoofed 40" in out


def test_a_pcap_run_is_titled_by_the_capture(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, "run", "--pcap", str(DATA / "IGMP_V2.pcap"))
    assert doc["title"] == "IGMP_V2.pcap" and doc["scenario"] == "default"
    assert main(["run", "--pcap", str(DATA / "IGMP_V2.pcap")]) == 0
    assert capsys.readouterr().out.startswith("IGMP_V2.pcap")


# -- item 4: --out is safe ---------------------------------------------------------------------------
def test_out_is_checked_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sriov import runner

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(runner, "run", never)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file" in _fail(capsys, "run", "--out", str(afile))
    assert "cannot write" in _fail(capsys, "run", "--out", str(afile / "sub"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert "cannot write" in _fail(capsys, "run", "--out", str(locked / "x"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert "not empty" in _fail(capsys, "run", "--out", str(busy))


def test_out_writes_every_capture_and_force_clears_stale_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    doc = _json(capsys, "run", str(path), "--out", str(out))
    assert [v["stats"]["rx_packets"] for v in doc["vfs"]][2] == 0
    assert len(read_pcap(out / "eth0-vf2.pcap")) == 0, "an empty capture for a VF that got nothing"
    assert len(read_pcap(out / "eth0-pf.pcap")) == doc["pf"]["eth0"]["stats"]["rx_packets"]
    written = (out / OUTPUT_MANIFEST).read_text().split()
    assert sorted(p.name for p in out.iterdir()) == sorted(written)
    # an earlier run with another VF: its capture is stale and --force removes it; a user's file stays
    (out / "eth0-vf9.pcap").write_bytes(b"old")
    (out / OUTPUT_MANIFEST).write_text("\n".join([*written, "eth0-vf9.pcap"]))
    (out / "notes.txt").write_text("mine")
    _fail(capsys, "run", str(path), "--out", str(out))
    _json(capsys, "run", str(path), "--out", str(out), "--force")
    assert not (out / "eth0-vf9.pcap").exists()
    assert (out / "notes.txt").read_text() == "mine"


# -- item 5: no tracebacks ---------------------------------------------------------------------------
def test_undecodable_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe\x00name")
    assert "not UTF-8" in _fail(capsys, "run", str(path))
    assert "Is a directory" in _fail(capsys, "run", str(tmp_path))


def test_ctrl_c_is_exit_130_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sriov import runner

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert main(["run", "--json"]) == 130
    assert capsys.readouterr().err == "sriov: interrupted\n"


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        ("[[port]]\nname='e'\n[[traffic]]\nport='e'\n[traffic.generator]\nframes=1000.0",
         "traffic[0].generator.frames", "1000.0 is not allowed"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[port.vf]]\nindex=0\nmac='01:00:5e:00:00:01'", "port[0].vf[0].mac",
         "is multicast"),
        ("[[port]]\nname='e'\nnum_vfs=1\n[[vm]]\nname='a'\n[[vm.nic]]\nport='e'\nvf=0\n"
         "multicast=['02:00:00:00:00:01']", "vm[0].nic[0].multicast[0]", "is not a multicast address"),
        ("[[port]]\nname='e'\n[[traffic]]\nport='e'\npcap='nope.pcap'", "traffic[0].pcap",
         "nope.pcap: cannot read"),
    ],
)  # fmt: skip
def test_errors_name_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, what: str
) -> None:
    path = _write(tmp_path, text)
    err = _fail(capsys, "run", str(path))
    assert f"{path}: {key}: " in err and what in err, err


def test_pcap_paths_are_relative_to_the_scenario_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "caps").mkdir()
    (tmp_path / "caps" / "igmp.pcap").write_bytes((DATA / "IGMP_V2.pcap").read_bytes())
    path = _write(tmp_path, "[[port]]\nname='eth0'\n[[traffic]]\nport='eth0'\npcap='caps/igmp.pcap'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    doc = _json(capsys, "run", os.path.relpath(path, elsewhere))
    assert doc["frames_offered"] == len(read_pcap(DATA / "IGMP_V2.pcap"))


def test_lenient_reads_records_over_snaplen(capsys: pytest.CaptureFixture[str]) -> None:
    pcap = str(DATA / "cfm_sender_id-oobr.pcap")
    err = _fail(capsys, "run", "--pcap", pcap)
    assert "--pcap: " in err and "snaplen 31" in err and "--lenient" in err
    doc = _json(capsys, "run", "--pcap", pcap, "--lenient")
    assert doc["frames_offered"] == 1 and doc["conserved"]


NOT_ETHERNET = {"arcnet-rfc1051-arp-icmp-http.pcap", "hdlc_slarp.pcapng", "mpls-traceroute.pcap"}


@pytest.mark.slow
@pytest.mark.parametrize("capture", sorted(DATA.glob("*.pcap*")), ids=lambda p: p.name)
def test_every_tcpdump_capture_runs_or_gives_one_line(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 28 real captures: exit 0, or exit 2 with one clear line (not Ethernet; over its snaplen)."""
    status = main(["run", "--json", "-q", "--pcap", str(capture)])
    err = capsys.readouterr().err
    if capture.name in NOT_ETHERNET or capture.name == "cfm_sender_id-oobr.pcap":
        assert status == 2 and err.count("\n") == 1 and capture.name in err, err
    else:
        assert status == 0 and err == "", err


# -- item 8: iproute2 and ethtool habits -------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"sriov {sriov.__version__}")


def test_show_like_ip_link(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000")
    assert ("    vf 1     link/ether 02:00:00:00:00:11 brd ff:ff:ff:ff:ff:ff, vlan 100, spoof checking on, "
            "link-state auto, trust off, query_rss off, max_tx_rate 0Mbps") in out  # fmt: skip
    assert "vf 2     link/ether 02:00:00:00:00:12" in out and "trust on" in out
    doc = _json(capsys, "show", "eth0")
    assert [v["vf"] for v in doc[0]["vfs"]] == [0, 1, 2, 3]
    assert _fail(capsys, "show", "eth9").count("no port 'eth9'") == 1


def test_show_statistics_like_ip_s_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SMALL)
    doc = _json(capsys, "show", "-s", "--scenario", str(path))
    vfs = doc[0]["vfs"]
    assert vfs[0]["stats"]["rx"]["packets"] > 0 and vfs[2]["stats"]["rx"]["packets"] == 0
    assert main(["show", "-s", "--scenario", str(path)]) == 0
    out = capsys.readouterr().out
    assert "RX: bytes" in out and "TX: bytes" in out


def test_vf_prints_on_off_and_takes_json_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["vf", "eth0", "1", "spoofchk", "off", "query_rss", "on", "vlan", "7", "proto", "802.1Q"]) == 0
    )
    out = capsys.readouterr().out
    assert "spoof checking off" in out and "query_rss on" in out and "vlan 7" in out
    assert "True" not in out and "False" not in out
    info = _json(capsys, "vf", "eth0", "1", "trust", "on")  # --json after the words
    assert info["trust"] is True
    assert "802.1Q" in _fail(capsys, "vf", "eth0", "1", "vlan", "7", "proto", "802.1ad")


def test_vf_save_writes_the_change_into_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "saved.toml"
    assert main(["vf", "eth0", "3", "mac", "02:00:00:00:00:33", "trust", "on", "--save", str(saved)]) == 0
    assert f"saved to {saved}" in capsys.readouterr().out
    sc = load(saved)
    entry = next(a for a in sc.ports[0].vfs if a.index == 3)
    assert (entry.mac, entry.trust) == ("02:00:00:00:00:33", True)
    original = default()
    assert sc.traffic == original.traffic and len(sc.vms) == len(original.vms), "the rest is unchanged"
    assert main(["run", str(saved), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["vfs"][3]["mac"] == "02:00:00:00:00:33"


def test_bench_explains_its_figures(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sriov import bench

    calls: list[str] = []

    def tiny(quick: bool, progress=None) -> dict:
        rows = []
        for name, (fn, note) in bench.STANDARD.items():
            if progress is not None:
                progress(name)
            calls.append(name)
            rows.append(bench._row(name, *fn(0.005), note=note))
        return {"implementation": "test", "scenarios": rows, "seconds_per_scenario": 0.005}

    monkeypatch.setattr(bench, "run_standard", tiny)
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "sriov run" in out and "simulated time" in out
    assert calls == list(bench.STANDARD)


# -- item 9: plots ----------------------------------------------------------------------------------
def test_plots_have_a_panel_per_port_the_pf_and_no_empty_axes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sriov import plots, runner

    text = SMALL + FORGED + '[[port]]\nname = "eth1"\nnum_vfs = 1\n'
    report, built, _kept = runner.run(parse(text, "two.toml"))
    figures = {}

    def keep(plt: object, fig: Any, path: Path) -> Path:
        fig.canvas.draw()
        figures[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    plots.write_run_plots(report, built, tmp_path)
    assert sorted(figures) == sorted(plots.PLOT_FILES)
    for name, fig in figures.items():
        eth0, eth1 = fig.axes
        assert (eth0.get_title(), eth1.get_title()) == ("port eth0", "port eth1"), name
        assert not eth1.axison and eth1.texts, f"{name}: the idle port says so instead of empty axes"
    labels = [line.get_label() for line in figures["throughput.png"].axes[0].get_lines()]
    assert "PF (host)" in labels and "VF0" in labels and "VF2" not in labels, labels
    lo, _hi = figures["throughput.png"].axes[0].get_xlim()
    first_frame_ms = built.samples[1]["t_ns"] / 1e6
    assert lo > first_frame_ms / 2, "the time axis starts near the traffic, not at 0"
    ticks = figures["throughput.png"].axes[0].get_yticks()
    assert all(float(t).is_integer() for t in ticks), "few frames: counted, on integer ticks"
    bars = figures["drops.png"].axes[0].patches
    assert len(bars) == 1 and bars[0].get_width() == 40, "tx_spoofed only: no zero bars"


# -- item 10: logging -------------------------------------------------------------------------------
def test_driver_lines_go_to_the_sriov_drivers_logger(caplog: pytest.LogCaptureFixture) -> None:
    sc = parse(REFUSED, "r.toml")
    with caplog.at_level(logging.INFO, logger="sriov.drivers"):
        ScenarioRun(sc)
    lines = [r.getMessage() for r in caplog.records if r.name == "sriov.drivers"]
    assert "ixgbe eth0/pf: VF 0 attempted to override administratively set VLAN configuration" in lines
    assert any(line.startswith("ixgbevf ") and "NIC Link is Up" in line for line in lines)


def test_verbose_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, REFUSED)
    assert main(["-v", "run", str(path), "--json"]) == 0
    err = capsys.readouterr().err
    assert "attempted to override administratively set VLAN" in err and "NIC Link is Up" in err
    assert main(["run", str(path), "--json", "-q"]) == 0
    assert capsys.readouterr().err == ""


# -- item 1: captures tell the truth ----------------------------------------------------------------
def _frame_index(frame: bytes) -> int:
    """The generator's frame number: the first 8 bytes of the UDP payload (sriov.traffic.synth)."""
    import dpkt

    eth = dpkt.ethernet.Ethernet(frame)
    return int.from_bytes(bytes(eth.data.data.data[:8]), "big")


def test_default_run_captures_carry_arrival_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Read with another library (dpkt): every capture of the default run has increasing timestamps,
    and a frame that came in on the wire is stamped with its arrival time at the port."""
    import dpkt

    from sriov.runner import traffic_batch

    out = tmp_path / "out"
    assert main(["run", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    wire_traffic = default().traffic[0]
    offered = traffic_batch(wire_traffic, seed=0)
    generator_src = bytes.fromhex("02000000ff01")  # TrafficProfile's default source MAC
    # the drops capture's stamps are arrival times (the frames never left the port): they give
    # the shift from the generator's times to the simulation's
    with open(out / "eth0-drops.pcapng", "rb") as f:
        ts, frame = next(iter(dpkt.pcapng.Reader(f)))
    shift = round(ts * 10**9) - int(offered.timestamps_ns[_frame_index(frame)])
    for name in ("eth0-vf0.pcap", "eth0-vf1.pcap", "eth0-vf2.pcap", "eth0-vf3.pcap", "eth0-pf.pcap"):
        with open(out / name, "rb") as f:
            records = [(int(t * 10**9), bytes(buf)) for t, buf in dpkt.pcap.Reader(f)]
        assert records, name
        stamps = [t for t, _ in records]
        assert stamps[0] > 0, f"{name}: timestamps are 0"
        assert stamps == sorted(stamps), f"{name}: timestamps go back"
        for t, buf in records:
            if buf[6:12] == generator_src and len(buf) > 42:
                assert t == int(offered.timestamps_ns[_frame_index(buf)]) + shift, name
