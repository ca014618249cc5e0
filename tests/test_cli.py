"""The `sriov` command: the default run, its JSON document, its output files, `sriov vf`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sriov.cli import main, parse_vf_words
from sriov.errors import SriovError
from sriov.runner import JSON_SCHEMA
from sriov.traffic import read_pcap
from sriov.traffic.capture import read_comments
from sriov.wire import DropReason

PCAPS = Path(__file__).resolve().parent / "data" / "tcpdump"  # origin and licence: tests/data/README.md


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["run", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def default_doc() -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "--json"]) == 0
    return json.loads(out.getvalue())


def test_default_run_json_validates_against_the_documented_schema(default_doc: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(default_doc, JSON_SCHEMA)
    assert default_doc["scenario"] == "default"
    assert [v["vf"] for v in default_doc["vfs"]] == [0, 1, 2, 3]


def test_default_run_counters_add_up(default_doc: dict) -> None:
    port = default_doc["ports"]["eth0"]
    assert default_doc["conserved"] is True
    # 200,000 frames arrive on the wire; VF 2 sends 20,000 and VF 0 tries 2,000 forged ones
    assert port["rx_frames_in"] == 200_000
    assert port["tx_packets"] + port["tx_dropped"] == 22_000
    assert default_doc["frames_offered"] == 222_000
    assert port["tx_spoofed"] == 2_000 == default_doc["vfs"][0]["stats"]["tx_spoofed"]
    assert port["tx_local_packets"] > 0 and port["tx_wire_packets"] > 0, "VEB and wire both used"
    vf_rx = sum(v["stats"]["rx_packets"] for v in default_doc["vfs"])
    # every delivered copy went to a VF or to the PF's own pool, and nothing else
    assert 0 < vf_rx <= port["rx_pool_copies"] - port["rx_no_dma_resources"] - port["rx_dma_faults"]
    drops = sum(default_doc["drops_by_reason"].values())
    assert drops > 0, "the default load includes VLANs nobody filters, so some frames must drop"
    frame_drops = sum(
        port[k] for k in ("rx_length_errors", "rx_long_length_errors", "rx_vlan_filtered", "rx_no_pool")
    )
    assert port["rx_classified"] + frame_drops == port["rx_frames_in"]


def test_default_run_the_guests_keep_up(default_doc: dict) -> None:
    """Guests drain their rings as simulated time passes, so no VF ring overflows at 10 GbE IMIX."""
    for v in default_doc["vfs"]:
        assert v["stats"]["rx_dropped"] == 0, v


def test_run_out_writes_pcaps_stats_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _run_json(capsys, "--out", str(tmp_path))
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats == doc
    for v in doc["vfs"]:
        path = tmp_path / f"{v['port']}-vf{v['vf']}.pcap"
        got = read_pcap(path) if path.exists() else []
        assert len(got) == v["stats"]["rx_packets"], path
    port = doc["ports"]["eth0"]
    drops = read_pcap(tmp_path / "eth0-drops.pcapng")
    frame_drops = ("rx_length_errors", "rx_long_length_errors", "rx_vlan_filtered", "rx_no_pool")
    assert len(drops) >= sum(port[k] for k in frame_drops)  # plus frames whose every copy dropped
    comments = read_comments(tmp_path / "eth0-drops.pcapng")
    assert set(comments) <= {r.name for r in DropReason} - {"DELIVERED"}
    assert comments.count("VLAN_FILTERED") == port["rx_vlan_filtered"]
    assert len(read_pcap(tmp_path / "eth0-wire.pcap", strict=False)) == port["tx_wire_packets"]
    for name in ("throughput.png", "drops.png", "interrupts.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name


def test_run_with_a_real_capture(capsys: pytest.CaptureFixture[str]) -> None:
    pcap = PCAPS / "IGMP_V2.pcap"
    frames = len(read_pcap(pcap))
    doc = _run_json(capsys, "--pcap", str(pcap))
    assert doc["frames_offered"] == frames
    assert doc["ports"]["eth0"]["rx_frames_in"] == frames
    assert doc["conserved"] is True


def test_human_output_names_every_vf(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "02:00:00:00:00:10" in out and "frames conserved" in out and "yes" in out


def test_vf_command_applies_ip_link_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vf", "eth0", "1", "vlan", "200", "qos", "3", "trust", "on", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["vlan"], info["qos"], info["trust"]) == (200, 3, True)
    assert info["clear_to_send"] is True, "the VF driver re-initialised after the change"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["vlan", "5000"], "0..4095"),
        (["bogus", "1"], "allowed: mac, vlan"),
        (["trust", "maybe"], "on or off"),
        (["vlan"], "needs a value"),
        (["mac", "01:00:5e:00:00:01"], "is multicast"),
    ],
)
def test_vf_command_rejects_bad_words(
    capsys: pytest.CaptureFixture[str], words: list[str], message: str
) -> None:
    assert main(["vf", "eth0", "0", *words]) == 2
    assert message in capsys.readouterr().err


def test_parse_vf_words() -> None:
    assert parse_vf_words(["mac", "02:00:00:00:00:01", "spoofchk", "off", "state", "disable"]) == {
        "mac": "02:00:00:00:00:01",
        "spoofchk": False,
        "state": "disable",
    }
    with pytest.raises(SriovError):
        parse_vf_words(["qos", "x"])


def test_missing_scenario_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_bench_quick_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from sriov import bench

    monkeypatch.setattr(bench, "run_standard", lambda quick: _tiny_bench())
    assert main(["bench", "--json", "--quick"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in doc["scenarios"]]
    assert names == list(bench.STANDARD)
    for row in doc["scenarios"]:
        assert row["frames"] > 0 and row["mpps"] > 0, row
        # the line-rate ratios are one wire rate over three links: they scale 10 : 40 : 100
        ratios = row["x_line_rate"]
        assert ratios["10G"] == pytest.approx(4 * ratios["40G"]) == pytest.approx(10 * ratios["100G"])


def _tiny_bench() -> dict:
    from sriov import bench

    rows = [bench._row(name, *fn(0.01), note=note) for name, (fn, note) in bench.STANDARD.items()]
    return {"implementation": "test", "scenarios": rows, "seconds_per_scenario": 0.01}


def test_bench_rx_rig_delivers_everything_it_offers() -> None:
    """The standard receive rigs are sized so no ring overflows: the figure is frames delivered."""
    from sriov import bench

    rig = bench._rig(8, 64, frames=448 * 8)
    result = rig.port.wire.receive(rig.batch)
    assert result.accepted == len(rig.batch)
    per_vf = [len(nic.rx_poll(budget=1 << 16)) for nic in rig.nics]
    assert sum(per_vf) == 448 * 8 and max(per_vf) <= 511, per_vf


def test_run_with_out_of_order_capture_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Merged captures can go back in time; every frame still arrives (in file order) and is counted."""
    import numpy as np

    import sriov

    profile = sriov.TrafficProfile(rate="10G", sizes=64, dst=["02:00:00:00:00:10", "02:00:00:00:00:12"])
    batch = sriov.generate(profile, frames=500, seed=5)
    shuffled = sriov.Batch(batch.data, batch.offsets, batch.lengths, batch.timestamps_ns[::-1].copy())
    sriov.write_pcap(tmp_path / "backwards.pcap", shuffled)
    doc = _run_json(capsys, "--pcap", str(tmp_path / "backwards.pcap"))
    assert doc["ports"]["eth0"]["rx_frames_in"] == 500
    assert doc["conserved"] is True
    got = sum(v["stats"]["rx_packets"] for v in doc["vfs"] if v["vf"] in (0, 2))
    assert got == 500, "both destinations are untagged VFs with admin MACs: nothing is lost"
    assert np.all(np.diff(shuffled.timestamps_ns) <= 0)
