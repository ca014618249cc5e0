"""`sriov sweep` and `sriov.sweep`: sweep files, points, rows, resume, and Dask clusters.

The real cluster is a `dask scheduler` and `dask worker` processes started here on 127.0.0.1
(free ports, through a scheduler file) and stopped here; they are run as
``python -m distributed.cli.dask_scheduler`` / ``dask_worker``, the programs behind those two
commands, with this interpreter. Points are tiny scenarios (hundreds of
frames) so the file stays fast on a busy two-core machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import sriov
from sriov.cli import main
from sriov.sweep import DaskMissing, SweepError, execute, load, point_key
from sriov.sweep import default as default_sweep

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 90  # bound on every wait for a process or a cluster (a busy machine is slow, never stuck)

TINY = """
name = "tiny"
[[port]]
name = "eth0"
num_vfs = 2
  [[port.vf]]
  index = 0
  mac = "02:00:00:00:00:10"
[[vm]]
name = "vm0"
  [[vm.nic]]
  port = "eth0"
  vf = 0
[[traffic]]
port = "eth0"
  [traffic.generator]
  frames = 2000
  rate = "10G"
  sizes = 64
  dst = ["02:00:00:00:00:10", "02:00:00:00:99:99"]
  broadcast_share = 0.05
"""

SWEEP = """
scenario = "tiny.toml"
seeds = 2
metrics = ["frames_delivered", "drops", "interrupts_per_s_mean", "latency_p99_us"]  # few plots: fast
[axes]
"vm[0].nic[0].rx_usecs" = [0, 50, "adaptive"]
"port[0].num_vfs" = [2, 8]
"""  # 3 x 2 x 2 seeds = 12 points


SLOW = SWEEP + '"traffic[0].generator.frames" = [10000]\n'  # points long enough to interrupt


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "sweep.toml").write_text(SWEEP)
    return tmp_path


def _serial_reference(folder: Path, sweep: str) -> str:
    (folder / "tiny.toml").write_text(TINY)
    (folder / "sweep.toml").write_text(sweep)
    execute(folder / "sweep.toml", workers=0, out=folder / "out")
    return without_wall(folder / "out" / "results.jsonl")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SWEEP's results.jsonl run serially in this process, wall times taken out."""
    return _serial_reference(tmp_path_factory.mktemp("reference"), SWEEP)


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same for SLOW."""
    return _serial_reference(tmp_path_factory.mktemp("slow"), SLOW)


def without_wall(path: Path) -> str:
    """results.jsonl with each line's last field, wall_s (host time), taken out."""
    text = path.read_text()
    stripped = re.sub(r', "wall_s": [^,}]+}$', "}", text, flags=re.M)
    assert stripped.count('"wall_s"') == 0 and stripped.count("\n") == text.count("\n")
    return stripped


def keys(path: Path) -> list[str]:
    axes = ["vm[0].nic[0].rx_usecs", "port[0].num_vfs"]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [point_key({a: r[a] for a in axes}, r["seed"]) for r in rows]


# -- clusters ---------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class RealCluster:
    """A `dask scheduler` process and `dask worker` processes (no nanny: killing one kills it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self.log = (folder / "dask.log").open("w")
        self.scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ],
            env=_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + WAIT_S
        while not self.scheduler_file.exists() or not self.scheduler_file.read_text().strip():
            assert self.scheduler.poll() is None, "the dask scheduler exited"
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give its writer a moment
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    def add_worker(self, name: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                name,
                "--death-timeout",
                "30",
            ],
            env=_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            _stop(proc)
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    c = RealCluster(tmp_path_factory.mktemp("dask"))
    try:
        c.add_worker("w1")
        c.add_worker("w2")
        yield c
    finally:
        c.stop()


@contextmanager
def client_of(c: RealCluster, workers: int) -> Iterator[Any]:
    with distributed.Client(c.address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=WAIT_S)
        yield client


# -- the sweep file ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 1\n", r"sweep\.toml: colour: unknown key; allowed: name, scenario"),
        ('mode = "spiral"\n', r"sweep\.toml: mode: 'spiral' is not allowed \(one of grid, random\)"),
        ('mode = "random"\n', r'sweep\.toml: samples: is required with mode = "random"'),
        ("samples = 3\n", r'sweep\.toml: samples: is required with mode = "random", and only then'),
        ('mode = "random"\nsamples = 13\n', r"sweep\.toml: samples: 13 is not allowed \(1\.\.6: the grid"),
        ("seeds = 0\n", r"sweep\.toml: seeds: 0 is not allowed \(a count of repeats >= 1"),
        ("seeds = [1, 1]\n", r"sweep\.toml: seeds: \[1, 1\] is not allowed"),
        (
            'metrics = ["speed"]\n',
            r"sweep\.toml: metrics\[0\]: 'speed' is not allowed \(one of frames_offered",
        ),
        ("retries = -1\n", r"sweep\.toml: retries: -1 is not allowed \(an integer in 0\.\.100\)"),
    ],
)
def test_sweep_file_errors_name_the_file_and_key(files: Path, extra: str, message: str) -> None:
    axes = '[axes]\n"vm[0].nic[0].rx_usecs" = [0, 50, "adaptive"]\n"port[0].num_vfs" = [2, 8]\n'
    (files / "sweep.toml").write_text(f'scenario = "tiny.toml"\n{extra}{axes}')
    with pytest.raises(SweepError, match=message):
        load(files / "sweep.toml").points()


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        (
            '"vm[1].nic[0].rx_usecs" = [0]',
            r"axes\.vm\[1\]\.nic\[0\]\.rx_usecs: the base scenario has no vm\[1\]",
        ),
        (
            '"port[0].colour" = [1]',
            r"the point port\[0\]\.colour = 1 is not a valid scenario: .*tiny\.toml: "
            r"port\[0\]\.colour: unknown key",
        ),
        ('"vm[0].nic[0].rx_usecs" = [5000]', r"tiny\.toml: vm\[0\]\.nic\[0\]\.rx_usecs: 5000 is not allowed"),
        ('"port[0].num_vfs" = [8, 0]', r"num_vfs = 0 is not a valid scenario: .*port\[0\]\.vf\[0\]\.index"),
        ('"traffic[0].generator.rate" = ["fast"]', r"traffic\[0\]\.generator\.rate = 'fast' is not a valid"),
        ('"vm[0]..x" = [1]', r"axes\.vm\[0\]\.\.x: '' is not a key"),
        ('"port[0].num_vfs" = []', r"axes\.port\[0\]\.num_vfs: must be a non-empty list"),
        ('"port[0].num_vfs" = [2, 2]', r"axes\.port\[0\]\.num_vfs: lists a value twice"),
    ],
)
def test_axis_errors_name_the_axis_and_the_scenario_key(files: Path, axes: str, message: str) -> None:
    (files / "sweep.toml").write_text(f'scenario = "tiny.toml"\n[axes]\n{axes}\n')
    with pytest.raises(SweepError, match=message):
        load(files / "sweep.toml").points()


def test_missing_files_are_one_clear_error(files: Path) -> None:
    with pytest.raises(SweepError, match=r"nope\.toml: cannot read"):
        load(files / "nope.toml")
    (files / "sweep.toml").write_text('scenario = "nope.toml"\n[axes]\n"port[0].num_vfs" = [2]\n')
    with pytest.raises(SweepError, match=r"sweep\.toml: scenario: .*nope\.toml: cannot read"):
        load(files / "sweep.toml")
    (files / "sweep.toml").write_text('scenario = "nosuch"\n[axes]\n"port[0].num_vfs" = [2]\n')
    with pytest.raises(SweepError, match=r"scenario: 'nosuch' is not a built-in scenario \(default"):
        load(files / "sweep.toml")


def test_grid_points_in_order_and_random_points_drawn_once(files: Path) -> None:
    sw = load(files / "sweep.toml")
    points = sw.points()
    assert len(points) == 12
    assert [p.index for p in points] == list(range(12))
    assert [
        (dict(p.values)["vm[0].nic[0].rx_usecs"], dict(p.values)["port[0].num_vfs"], p.seed)
        for p in points[:5]
    ] == [(0, 2, 0), (0, 2, 1), (0, 8, 0), (0, 8, 1), (50, 2, 0)]
    assert points[0].scenario.vms[0].nics[0].rx_usecs == 0
    assert points[-1].scenario.vms[0].nics[0].rx_usecs == 1, '"adaptive" is rx-usecs 1'
    assert points[2].scenario.ports[0].num_vfs == 8
    assert len({p.key for p in points}) == 12
    (files / "sweep.toml").write_text('mode = "random"\nsamples = 4\nsample_seed = 7\n' + SWEEP)
    drawn = [p.key for p in load(files / "sweep.toml").points()]
    assert len(drawn) == 8 and len(set(drawn)) == 8, "4 distinct combinations, 2 seeds each"
    assert drawn == [p.key for p in load(files / "sweep.toml").points()], "the same draw every time"
    assert set(drawn) <= {p.key for p in points}


def test_the_built_in_example_is_valid() -> None:
    sw = default_sweep()
    assert [a.key for a in sw.axes] == ["vm[0].nic[0].rx_usecs", "port[0].num_vfs"]
    assert "adaptive" in sw.axes[0].values
    assert len(sw.points()) == 20


def test_a_dict_spec_and_a_capture_axis(tmp_path: Path) -> None:
    """A list of captures is an axis too: setting a traffic entry's pcap replaces its generator."""
    frames = [bytes.fromhex("020000000010020000000099") + b"\x08\x00" + bytes(46)] * 5
    sriov.write_pcap(tmp_path / "five.pcap", sriov.Batch.from_frames(frames))
    sriov.write_pcap(tmp_path / "nine.pcap", sriov.Batch.from_frames(frames + frames[:4]))
    (tmp_path / "tiny.toml").write_text(TINY)
    spec = {
        "scenario": str(tmp_path / "tiny.toml"),
        "metrics": ["frames_offered", "frames_delivered"],
        "axes": {"traffic[0].pcap": [str(tmp_path / "five.pcap"), str(tmp_path / "nine.pcap")]},
    }
    rows, written = execute(spec, workers=0)
    assert written == []
    assert [(r["frames_offered"], r["frames_delivered"]) for r in rows] == [(5, 5), (9, 9)]


def test_a_traced_run_times_every_wire_frame_and_changes_nothing_else() -> None:
    """`runner.run(trace=True)` (what a point runs) keeps each VF's latencies: one per wire frame
    its guest took, none negative (a chunk reaches the device at once: its frames arrive then)."""
    import numpy as np

    from sriov import runner
    from sriov.scenario import parse

    sc = parse(TINY.replace("frames = 300", "frames = 3000"))
    plain, _, _ = runner.run(sc)
    traced, built, _ = runner.run(sc, trace=True)
    assert traced.to_json() | {"timings": None} == plain.to_json() | {"timings": None}
    nic = built.nics[0][3]
    lat = nic.napi.trace.latencies_ns()
    assert len(lat) == traced.vfs[0].stats["rx_packets"] > 0
    assert np.all(lat >= 0)


# -- rows ---------------------------------------------------------------------------------------------
def test_rows_carry_every_field_and_the_files_are_written(files: Path) -> None:
    (files / "sweep.toml").write_text(SWEEP.replace("metrics = ", "# metrics = "))  # all of them
    rows, written = execute(files / "sweep.toml", workers=0, out=files / "out")
    assert len(rows) == 12
    assert list(rows[0]) == [
        "vm[0].nic[0].rx_usecs",
        "port[0].num_vfs",
        "seed",
        "status",
        "error",
        "frames_offered",
        "frames_delivered",
        "frames_dropped",
        "drops",
        "interrupts_per_s",
        "interrupts_per_s_mean",
        "latency_p50_us",
        "latency_p99_us",
        "latency_p999_us",
        "sim_time_ns",
        "conserved",
        "wall_s",
    ]
    for r in rows:
        assert r["status"] == "ok" and r["error"] == "" and r["conserved"] is True
        assert r["frames_offered"] == 2000 and 0 < r["frames_delivered"] <= 2000
        assert set(r["interrupts_per_s"]) == {"eth0/vf0"}
        assert 0 < r["latency_p50_us"] <= r["latency_p99_us"] <= r["latency_p999_us"]
        assert r["wall_s"] > 0
    by = {(r["vm[0].nic[0].rx_usecs"], r["port[0].num_vfs"], r["seed"]): r for r in rows}
    assert by[(0, 2, 0)]["interrupts_per_s_mean"] > by[(50, 2, 0)]["interrupts_per_s_mean"], (
        "rx-usecs 0 (no moderation) takes more interrupts than rx-usecs 50"
    )
    assert by[(0, 2, 0)]["frames_delivered"] != by[(0, 2, 1)]["frames_delivered"], (
        "the seed reaches the traffic"
    )
    out = files / "out"
    plotted = ["frames_offered", "frames_delivered", "frames_dropped", "interrupts_per_s_mean"]
    plotted += ["latency_p50_us", "latency_p99_us", "latency_p999_us", "sim_time_ns"]
    assert [p.name for p in written] == ["results.jsonl", "results.csv"] + [f"sweep-{m}.png" for m in plotted]
    assert all(p.stat().st_size > 1000 for p in written[2:])
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert all(line.endswith("}") and '"wall_s": ' in line.rsplit(",", 1)[1] for line in lines)
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("vm[0].nic[0].rx_usecs,port[0].num_vfs,seed,status,error,frames_offered")
    assert len(csv_lines) == 13


def test_the_progress_bar_counts_points_and_failures(files: Path, capsys) -> None:
    frames = [bytes.fromhex("020000000010020000000099") + b"\x08\x00" + bytes(46)] * 3
    sriov.write_pcap(files / "three.pcap", sriov.Batch.from_frames(frames))
    (files / "sweep.toml").write_text(
        'scenario = "tiny.toml"\nmetrics = ["frames_offered"]\n'
        '[axes]\n"traffic[0].pcap" = ["three.pcap", "missing.pcap"]\n'
    )
    rows, _ = execute(files / "sweep.toml", workers=0, progress=True)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["frames_offered"] == 3, "capture paths in axes are relative to the sweep file"
    assert rows[1]["error"].startswith("ConfigError: ") and "traffic[0].pcap" in rows[1]["error"]
    assert "missing.pcap" in rows[1]["error"]
    err = capsys.readouterr().err
    assert "2/2" in err and "1 failed" in err


def test_the_results_folder_is_not_overwritten_or_mixed(files: Path) -> None:
    execute(files / "sweep.toml", workers=0, out=files / "out")
    before = (files / "out" / "results.jsonl").read_text()
    with pytest.raises(SweepError, match=r"out already holds sweep results: pass --resume"):
        execute(files / "sweep.toml", workers=0, out=files / "out")
    (files / "other.toml").write_text(SWEEP.replace("seeds = 2", "seeds = 3"))
    with pytest.raises(SweepError, match=r"holds the results of another sweep"):
        execute(files / "other.toml", workers=0, out=files / "out", resume=True)
    assert (files / "out" / "results.jsonl").read_text() == before
    rows, _ = execute(files / "sweep.toml", workers=0, out=files / "out", resume=True)
    assert (files / "out" / "results.jsonl").read_text() == before, "nothing left to run"
    assert len(rows) == 12


def test_failed_points_are_recorded_then_run_again_on_resume(files: Path, cluster: RealCluster) -> None:
    (files / "sweep.toml").write_text(
        'scenario = "tiny.toml"\nretries = 1\nmetrics = ["frames_offered"]\n'
        '[axes]\n"traffic[0].pcap" = ["missing.pcap"]\n"port[0].num_vfs" = [2, 8]\n'
    )
    with client_of(cluster, 2) as client:
        rows, _ = execute(files / "sweep.toml", client, out=files / "out")
        assert [r["status"] for r in rows] == ["failed", "failed"]
        assert all("traffic[0].pcap" in r["error"] and "missing.pcap" in r["error"] for r in rows)
        assert rows[0]["frames_offered"] is None
        again, _ = execute(files / "sweep.toml", client, out=files / "out", resume=True)
    assert len(again) == 2 and len((files / "out" / "results.jsonl").read_text().splitlines()) == 2


# -- determinism and faults ---------------------------------------------------------------------------
def test_the_same_bytes_serially_on_a_local_cluster_and_on_a_real_cluster(
    files: Path, cluster: RealCluster, reference: str
) -> None:
    assert reference.count("\n") == 12
    execute(files / "sweep.toml", workers=2, out=files / "local")
    assert without_wall(files / "local" / "results.jsonl") == reference
    with client_of(cluster, 2) as client:
        rows = sriov.sweep(files / "sweep.toml", client, out=files / "real")
    assert without_wall(files / "real" / "results.jsonl") == reference
    assert (files / "real" / "results.csv").read_text().count("\n") == 13
    assert len(rows) == 12


def test_a_worker_killed_mid_sweep_loses_no_point(
    files: Path, cluster: RealCluster, slow_reference: str
) -> None:
    (files / "sweep.toml").write_text(SLOW)
    victim = cluster.add_worker("victim")
    killed: list[str] = []
    with client_of(cluster, 3) as client:
        address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "victim")

        def kill_when_busy() -> None:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline and not killed:
                if client.processing(workers=[address]).get(address):
                    victim.kill()  # SIGKILL: no goodbye to the scheduler, its tasks are lost mid-run
                    killed.append(address)
                time.sleep(0.005)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        rows, _ = execute(files / "sweep.toml", client, out=files / "real")
        killer.join(timeout=WAIT_S)
    assert killed, "the victim worker never got a point"
    assert victim.wait(timeout=WAIT_S) == -signal.SIGKILL
    assert all(r["status"] == "ok" for r in rows)
    done = keys(files / "real" / "results.jsonl")
    assert len(done) == len(set(done)) == 12
    assert without_wall(files / "real" / "results.jsonl") == slow_reference


def test_an_interrupted_sweep_resumes_without_losing_or_repeating_a_row(
    files: Path, cluster: RealCluster, slow_reference: str, capsys
) -> None:
    (files / "sweep.toml").write_text(SLOW)
    out = files / "out"
    cmd = [sys.executable, "-m", "sriov.cli", "sweep", str(files / "sweep.toml"), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "0"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + WAIT_S
    while not (out / "results.jsonl").exists() or (out / "results.jsonl").read_text().count("\n") < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130, stderr
    assert "rerun with --resume" in stderr and "Traceback" not in stderr
    done = keys(out / "results.jsonl")
    assert 3 <= len(done) < 12 and len(set(done)) == len(done)
    walls = {
        k: json.loads(line)["wall_s"]
        for k, line in zip(done, (out / "results.jsonl").read_text().splitlines(), strict=True)
    }
    with (out / "results.jsonl").open("a") as f:
        f.write('{"vm[0].nic[0].rx_usecs": 0, "port[0]')  # a crash in the middle of writing a row
    # the rest on the real cluster (the command in this process: one interpreter start less)
    assert (
        main(
            [
                "sweep",
                str(files / "sweep.toml"),
                "--out",
                str(out),
                "--resume",
                "--scheduler",
                cluster.address,
            ]
        )
        == 0
    )
    assert "12 points, 0 failed" in capsys.readouterr().out
    assert without_wall(out / "results.jsonl") == slow_reference
    after = {
        k: json.loads(line)["wall_s"]
        for k, line in zip(
            keys(out / "results.jsonl"), (out / "results.jsonl").read_text().splitlines(), strict=True
        )
    }
    assert {k: after[k] for k in done} == walls, "the rows finished before Ctrl-C are kept, not run again"


# -- the command line and the API ----------------------------------------------------------------------
def test_without_distributed_the_cli_says_what_to_install(files: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    assert main(["sweep", str(files / "sweep.toml"), "--out", str(files / "out")]) == 2
    err = capsys.readouterr().err
    assert err == "sriov: error: sriov sweep needs Dask's distributed package: pip install 'sriov[dask]'\n"
    assert not (files / "out").exists(), "nothing written"
    with pytest.raises(DaskMissing):
        sriov.sweep(files / "sweep.toml")


def test_cli_errors_are_one_line(files: Path, capsys) -> None:
    assert main(["sweep", str(files / "nope.toml")]) == 2
    assert capsys.readouterr().err.startswith("sriov: error: ")
    assert main(["sweep", str(files / "sweep.toml"), "--workers", "-1", "--out", str(files / "o")]) == 2
    assert "--workers must be an integer >= 0" in capsys.readouterr().err
    assert (
        main(["sweep", str(files / "sweep.toml"), "--scheduler", "bogus://x", "--out", str(files / "o")]) == 2
    )
    assert capsys.readouterr().err.startswith("sriov: error: --scheduler bogus://x: cannot connect: ")
    assert not (files / "o").exists(), "nothing written before the cluster answers"
    (files / "a-file").write_text("")
    assert main(["sweep", str(files / "sweep.toml"), "--workers", "0", "--out", str(files / "a-file")]) == 2
    assert capsys.readouterr().err == f"sriov: error: --out {files / 'a-file'}: is not a folder\n"


def test_the_api_returns_a_list_without_pandas(files: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = sriov.sweep(str(files / "sweep.toml"), workers=0)
    assert isinstance(rows, list) and len(rows) == 12 and rows[0]["seed"] == 0


def test_the_api_returns_a_dataframe_with_pandas(files: Path) -> None:
    pandas = pytest.importorskip("pandas")
    rows = sriov.sweep({"scenario": str(files / "tiny.toml"), "axes": {"port[0].num_vfs": [2, 8]}}, workers=0)
    assert isinstance(rows, pandas.DataFrame) and list(rows["port[0].num_vfs"]) == [2, 8]
