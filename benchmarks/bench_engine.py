"""The paths users run, each beside its peer in the same run (issue 13, "The simulation engine").

* time-exact: `Host.run_traffic` (every frame at its time; EITR, MSI-X injection, NAPI polls of
  the guests on the clock), 64-byte frames at 10 GbE line rate, guests that drop what they
  receive (`SINK`); against real time and against the batch path in the same run;
* the batch path: `port.wire.receive` in batches of 1024 frames + `nic.rx_poll` on every VF,
  against a NumPy classify + copy (bench_rx's peer) in the same run;
* `sriov run` of the default scenario (what it reports).

``python benchmarks/bench_engine.py`` prints the table (modes alternate, best of each); the
pytest-benchmark rows run with ``python -m pytest benchmarks/bench_engine.py --benchmark-only``.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import sriov
from sriov.drivers.napi import SINK
from sriov.wire import assert_rx_conserved

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rx import RING, NumpyPeer, frames_for, make_port, refill_all

LINE_RATE_64B_MPPS = 14.88  # 10 GbE, 64-byte frames (84 bytes on the wire with preamble and gap)


def full_host(vfs: int, rx_usecs: int, vlans: bool = False, multicast: bool = False):
    """A host with ``vfs`` VFs up in two VMs (each guest on SINK), coalescing at ``rx_usecs``
    (1: adaptive). With ``vlans``: each VF has a port VLAN (100 + i); ``multicast``: each joins
    one group."""
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(vfs)
    vms = [host.add_vm(f"vm{k}", memory=(64 + vfs * 2) << 20) for k in range(2)]
    nics = []
    for i in range(vfs):
        port.pf.set_vf(i, mac=f"02:00:00:00:01:{i:02x}", vlan=100 + i if vlans else 0)
        nic = host.assign(port.vf(i), vms[i % 2])
        nic.up()
        if multicast:
            nic.set_multicast([f"01:00:5e:00:00:{i % 8 + 1:02x}"])
        nics.append(nic)
    host.clock.advance(3_000_000_000)
    for nic in nics:
        nic.set_coalesce(rx_usecs)
        nic.on_receive = SINK
    return host, port, nics


def line_rate_64b(vfs: int, frames: int, vlans: bool = False, multicast: bool = False) -> sriov.Batch:
    """64-byte frames to the VFs, round robin, at 10 GbE line rate (tagged with each VF's VLAN;
    with ``multicast`` every 16th frame goes to a group)."""
    dst = [f"02:00:00:00:01:{i:02x}" for i in range(vfs)]
    profile = sriov.TrafficProfile(
        rate="10G",
        sizes=64,
        dst=dst,
        vlans=[100 + i for i in range(vfs)] if vlans else [0],
        multicast_share=1 / 16 if multicast else 0.0,
        multicast=["01:00:5e:00:00:01"],
    )
    return sriov.generate(profile, frames=frames, seed=1)


def time_exact(host, port, batch: sriov.Batch) -> float:
    """Host seconds for one `run_traffic` of ``batch`` (process CPU time: the guests' polls too)."""
    gc.collect()
    t = time.perf_counter()
    host.run_traffic(port, batch, start_ns=host.clock.now + 1_000, trace=False)
    return time.perf_counter() - t


def batch_path(host, port, nics, batch: sriov.Batch) -> float:
    """Host seconds for the public batch path: `wire.receive` per 1024 frames, then every VF's
    `rx_poll` until its ring is empty (the guests read what they got)."""
    for nic in nics:
        nic.napi.enabled = False  # the caller polls: no NAPI cycle on the clock
        nic.on_receive = None
    t = time.perf_counter()
    for start in range(0, len(batch), 1024):
        port.wire.receive(batch[start : start + 1024])
        for nic in nics:
            while len(nic.rx_poll(1024)):
                pass
    spent = time.perf_counter() - t
    for nic in nics:
        nic.napi.enabled = True
        nic.on_receive = SINK
    return spent


def exact_row(vfs: int, rx_usecs: int, frames: int = 300_000, repeats: int = 5, **kw) -> dict:
    """Time-exact Mpps and x real time (best of ``repeats``), and its ratio to the batch path on
    the same host and frames, the two alternating."""
    host, port, nics = full_host(vfs, rx_usecs, **kw)
    batch = line_rate_64b(vfs, frames, **kw)
    sim_s = (int(batch.timestamps_ns[-1]) - int(batch.timestamps_ns[0])) / 1e9
    time_exact(host, port, batch)  # warm-up: first touch of rings and buffers
    batch_path(host, port, nics, batch)
    exact, plain = [], []
    for _ in range(repeats):
        exact.append(time_exact(host, port, batch))
        plain.append(batch_path(host, port, nics, batch))
    assert_rx_conserved(port.device)
    e, b = min(exact), min(plain)
    return {
        "time-exact Mpps": frames / e / 1e6,
        "x real time": sim_s / e,
        "batch path Mpps": frames / b / 1e6,
        "time-exact / batch path": b / e,
    }


def batch_vs_numpy(repeats: int = 5) -> dict:
    """The public batch path (8 VFs, 64 B, batches of 1024 + rx_poll) against a NumPy classify +
    copy of the same frames (bench_rx's peer), alternating."""
    host, port, nics = full_host(8, 50)
    batch = line_rate_64b(8, 8 * (RING - 1) * 4)
    rig = make_port(8)
    peer_frames = frames_for(rig, RING - 1)
    peer = NumpyPeer(rig)
    peer.receive(peer_frames)
    refill_all(rig)
    batch_path(host, port, nics, batch)
    mine, theirs = [], []
    for _ in range(repeats):
        mine.append(len(batch) / batch_path(host, port, nics, batch) / 1e6)
        t = time.perf_counter()
        peer.receive(peer_frames)
        theirs.append(len(peer_frames) / (time.perf_counter() - t) / 1e6)
        refill_all(rig)
    return {"batch path Mpps": max(mine), "NumPy Mpps": max(theirs), "ratio": max(mine) / max(theirs)}


def sriov_run_default(repeats: int = 3) -> dict:
    """What `sriov run` reports for the default scenario (frames offered / datapath host time)."""
    from sriov import runner
    from sriov.scenario import default

    best = 0.0
    for _ in range(repeats):
        report, _built, _kept = runner.run(default())
        best = max(best, report.frames_offered / report.timings["datapath_s"] / 1e6)
    return {"sriov run Mpps": best}


# -- pytest-benchmark rows ----------------------------------------------------------------------------
def _bench(benchmark, vfs: int, rx_usecs: int, frames: int, **kw) -> None:
    host, port, _nics = full_host(vfs, rx_usecs, **kw)
    batch = line_rate_64b(vfs, frames, **kw)
    time_exact(host, port, batch)
    benchmark.group = "time-exact run_traffic, 64 B at 10 GbE"
    benchmark.pedantic(lambda: time_exact(host, port, batch), rounds=3)
    benchmark.extra_info.update(vfs=vfs, rx_usecs=rx_usecs, frames=frames, **kw)


def test_time_exact_8_vfs_rx_usecs_50(benchmark) -> None:
    _bench(benchmark, 8, 50, 300_000)


def test_time_exact_8_vfs_rx_usecs_0(benchmark) -> None:
    _bench(benchmark, 8, 0, 100_000)


def test_time_exact_8_vfs_adaptive(benchmark) -> None:
    _bench(benchmark, 8, 1, 300_000)


def test_time_exact_63_vfs_vlans_multicast(benchmark) -> None:
    _bench(benchmark, 63, 50, 300_000, vlans=True, multicast=True)


if __name__ == "__main__":
    import platform

    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    rows = [
        ("time-exact, 8 VFs, rx-usecs 50", lambda: exact_row(8, 50)),
        ("time-exact, 8 VFs, rx-usecs 0", lambda: exact_row(8, 0, frames=150_000)),
        ("time-exact, 8 VFs, adaptive", lambda: exact_row(8, 1)),
        ("time-exact, 63 VFs, VLANs + multicast, rx-usecs 50", lambda: exact_row(63, 50, vlans=True,
                                                                                  multicast=True)),
        ("batch path vs NumPy", batch_vs_numpy),
        ("sriov run (default scenario)", sriov_run_default),
    ]  # fmt: skip
    only = sys.argv[1:]
    for name, fn in rows:
        if only and not any(o in name for o in only):
            continue
        result = fn()
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
