"""Traffic (issue 7): pcap/pcapng read throughput against dpkt, and synthesis rate.

Run: python -m pytest benchmarks/bench_traffic.py --benchmark-only -q

Reads are from the page cache (each file is read once before timing). Throughput is the file
size over the best round. dpkt's figure is the same file read with ``dpkt.pcap.Reader`` into a
list of (timestamp, bytes), which is what a Python user would otherwise write; the ratio is
recorded in ``extra_info`` of the sriov read.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import dpkt
import numpy as np
import pytest
from timing import best

from sriov.traffic.capture import read_pcap, write_pcap, write_pcapng
from sriov.traffic.synth import TrafficGenerator, TrafficProfile, generate

READ_FRAMES = {"64B": 2_000_000, "imix": 600_000}
PROFILES = {"64B": TrafficProfile(sizes=64, rate="10G"), "imix": TrafficProfile(sizes="imix", rate="10G")}
SYNTH_FRAMES = {"64B": 4_000_000, "imix": 1_000_000}
_dpkt_seconds: dict[str, float] = {}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("traffic")
    out = {}
    for name, frames in READ_FRAMES.items():
        b = generate(PROFILES[name], frames, seed=1)
        out[f"{name}.pcap"] = d / f"{name}.pcap"
        write_pcap(out[f"{name}.pcap"], b)
        out[f"{name}.pcapng"] = d / f"{name}.pcapng"
        write_pcapng(out[f"{name}.pcapng"], b)
    for p in out.values():
        p.read_bytes()  # into the page cache
    return out


def _dpkt_read(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return list(dpkt.pcap.Reader(f))


@pytest.mark.parametrize("name", list(READ_FRAMES))
def test_dpkt_read(benchmark, files: dict[str, Path], name: str) -> None:
    path = files[f"{name}.pcap"]
    pkts = benchmark.pedantic(_dpkt_read, args=(path,), rounds=3, iterations=1)
    _dpkt_seconds[name] = best(benchmark)
    size = path.stat().st_size
    benchmark.extra_info.update(frames=len(pkts), bytes=size, gb_per_s=size / best(benchmark) / 1e9)


@pytest.mark.parametrize("mmap", [False, True], ids=["fromfile", "mmap"])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("name", list(READ_FRAMES))
def test_read(benchmark, files: dict[str, Path], name: str, fmt: str, mmap: bool) -> None:
    path = files[f"{name}.{fmt}"]
    read_pcap(path, mmap=mmap)  # compile / load the cached kernels
    cap = benchmark.pedantic(read_pcap, args=(path,), kwargs={"mmap": mmap}, rounds=10, iterations=1)
    size = path.stat().st_size
    seconds = best(benchmark)
    if name not in _dpkt_seconds:  # run alone (-k): time dpkt here so the ratio is from this run
        t = time.perf_counter()
        _dpkt_read(files[f"{name}.pcap"])
        _dpkt_seconds[name] = time.perf_counter() - t
    # the same frames dpkt sees (checked on a prefix, so the check stays cheap)
    ref = list(dpkt.pcap.Reader(io.BytesIO(files[f"{name}.pcap"].read_bytes()[: 24 + 1000 * 1600])))
    k = min(len(ref) - 1, 1000)
    matched = [bytes(cap[i]) for i in range(k)] == [b for _, b in ref[:k]]
    benchmark.extra_info.update(
        frames=len(cap),
        bytes=size,
        gb_per_s=size / seconds / 1e9,
        mframes_per_s=len(cap) / seconds / 1e6,
        x_dpkt=_dpkt_seconds[name] / seconds,
        matched_dpkt=matched,
    )


@pytest.mark.parametrize("name", list(PROFILES))
def test_synthesis_fresh_buffer(benchmark, name: str) -> None:
    generate(PROFILES[name], 1_000)  # compile / load
    n = SYNTH_FRAMES[name]
    b = benchmark.pedantic(generate, args=(PROFILES[name], n), rounds=5, iterations=1)
    benchmark.extra_info.update(frames=len(b), mpps=n / best(benchmark) / 1e6,
                                gb_per_s=b.total_bytes / best(benchmark) / 1e9)  # fmt: skip


@pytest.mark.parametrize("name", list(PROFILES))
def test_synthesis_reused_buffer(benchmark, name: str) -> None:
    g = TrafficGenerator(PROFILES[name], seed=0)
    n = SYNTH_FRAMES[name]
    out = np.zeros(n * (400 if name == "imix" else 64), np.uint8)  # IMIX slots average 359 bytes
    g.next_batch(1_000, out=out)
    b = benchmark.pedantic(g.next_batch, args=(n,), kwargs={"out": out}, rounds=5, iterations=1)
    benchmark.extra_info.update(frames=len(b), mpps=n / best(benchmark) / 1e6,
                                gb_per_s=b.total_bytes / best(benchmark) / 1e9)  # fmt: skip


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_write(benchmark, tmp_path: Path, fmt: str) -> None:
    b = generate(PROFILES["imix"], READ_FRAMES["imix"], seed=1)
    writer = write_pcap if fmt == "pcap" else write_pcapng
    path = tmp_path / f"w.{fmt}"
    writer(path, b[:10])  # compile / load
    benchmark.pedantic(writer, args=(path, b), rounds=5, iterations=1)
    size = path.stat().st_size
    benchmark.extra_info.update(frames=len(b), bytes=size, gb_per_s=size / best(benchmark) / 1e9)
