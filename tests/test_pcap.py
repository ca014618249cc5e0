"""Captures (issue 7, item 1): pcap/pcapng read and write.

Real tcpdump captures are read frame by frame against dpkt; files built here byte by byte (with
``struct``, independently of the writer) cover both byte orders, both pcap resolutions, pcapng
resolutions in powers of 10 and of 2, several interfaces, SPB/PB and unknown blocks; damage
always gives CaptureError naming the offset, or a documented partial read.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov.batch import Batch
from sriov.errors import CaptureError, ConfigError
from sriov.traffic.capture import MAX_CAPLEN, read_comments, read_pcap, write_pcap, write_pcapng
from sriov.traffic.synth import TrafficProfile, generate

PCAPS = Path(__file__).resolve().parent / "data" / "tcpdump"  # origin and licence: tests/data/README.md
REAL = sorted(PCAPS.glob("*.pcap*"))
NOT_ETHERNET = {"arcnet-rfc1051-arp-icmp-http.pcap": 129, "mpls-traceroute.pcap": 9, "hdlc_slarp.pcapng": 104}
OVER_SNAPLEN = {"cfm_sender_id-oobr.pcap"}  # fuzzer-made: a 34-byte record in a file of snaplen 31

needs_real = pytest.mark.skipif(len(REAL) != 28, reason="tests/data/tcpdump is not complete (28 captures)")


# -- independent builders ------------------------------------------------------------------------
def pcap_bytes(frames: list[tuple[int, bytes]], *, big: bool = False, ns: bool = False,
               snaplen: int = 65535, link: int = 1) -> bytes:  # fmt: skip
    e = ">" if big else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)
    for t, f in frames:
        sec, rem = divmod(t, 10**9)
        out += struct.pack(e + "IIII", sec, rem if ns else rem // 1000, len(f), len(f)) + f
    return out


def _opt(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _blk(e: str, btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e: str) -> bytes:
    return _blk(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(
    e: str, link: int = 1, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += _opt(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += _opt(e, 14, struct.pack(e + "q", tsoffset))
    if opts:
        opts += _opt(e, 0, b"")
    return _blk(e, 1, struct.pack(e + "HHI", link, 0, snaplen) + opts)


def epb(e: str, iface: int, ts_units: int, frame: bytes, comment: bytes | None = None) -> bytes:
    body = struct.pack(e + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(frame), len(frame))
    body += frame + b"\0" * (-len(frame) % 4)
    if comment is not None:
        body += _opt(e, 1, comment) + _opt(e, 0, b"")
    return _blk(e, 6, body)


def spb(e: str, frame: bytes) -> bytes:
    return _blk(e, 3, struct.pack(e + "I", len(frame)) + frame + b"\0" * (-len(frame) % 4))


def pb(e: str, iface: int, ts_units: int, frame: bytes) -> bytes:
    body = struct.pack(e + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(frame), len(frame))
    return _blk(e, 2, body + frame + b"\0" * (-len(frame) % 4))


def frame(i: int, n: int = 60) -> bytes:
    head = bytes([0x02, 0, 0, 0, 0, i & 0xFF, 0x02, 0, 0, 0, 1, 0, 0x08, 0x00])
    return (head + bytes((i + k) & 0xFF for k in range(n)))[:n]


def make_batch(n: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, int(rng.integers(14, 1600)), dtype=np.uint8).tobytes() for _ in range(n)]
    ts = np.cumsum(rng.integers(1, 10**7, n)) + 1_700_000_000 * 10**9 + 123
    return Batch.from_frames(frames, ts.tolist())


# -- real captures --------------------------------------------------------------------------------
@needs_real
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_capture_matches_dpkt(path: Path) -> None:
    if path.name in NOT_ETHERNET:
        with pytest.raises(CaptureError, match=rf"link type.*{NOT_ETHERNET[path.name]}.*not.*Ethernet|"
                                               rf"Ethernet.*{NOT_ETHERNET[path.name]}"):  # fmt: skip
            read_pcap(path)
        return
    if path.name in OVER_SNAPLEN:
        with pytest.raises(
            CaptureError, match=r"offset 24: captured length 34 is larger than the snaplen 31"
        ):
            read_pcap(path)
        partial = read_pcap(path, strict=False)
        assert len(partial) == 0 and "offset 24" in partial.warning
        return
    cap = read_pcap(path)
    with open(path, "rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if cap.format == "pcapng" else dpkt.pcap.Reader(fh)
        expected = list(reader)
    assert len(cap) == len(expected) > 0
    assert cap.warning is None and cap.skipped == 0
    for i, ((ts, buf), got) in enumerate(zip(expected, cap, strict=True)):
        assert bytes(got) == buf, f"frame {i}"
        # dpkt gives float seconds: equal to the microsecond (these files are microsecond captures)
        assert round(ts * 1e6) == cap.timestamps_ns[i] // 1000, f"frame {i}"
    # zero copy: frames are views into the file buffer
    assert cap.data.nbytes == path.stat().st_size
    assert np.shares_memory(np.frombuffer(cap[0], np.uint8), cap.data)


@needs_real
@pytest.mark.parametrize(
    "path", [p for p in REAL if p.name not in set(NOT_ETHERNET) | OVER_SNAPLEN], ids=lambda p: p.name
)
def test_real_capture_round_trips_through_both_writers(path: Path, tmp_path: Path) -> None:
    cap = read_pcap(path)
    for ns in (True, False):
        for writer, name in ((write_pcap, "a.pcap"), (write_pcapng, "a.pcapng")):
            out = tmp_path / name
            writer(out, cap, nanosecond=ns)
            back = read_pcap(out)
            assert back == cap  # these captures have microsecond timestamps: exact either way
            assert back.format == name.split(".")[1]
    mm = read_pcap(path, mmap=True)
    assert mm == cap


# -- formats built byte by byte -------------------------------------------------------------------
TS = [1_700_000_000_123_456_789 + k * 1_000_003 for k in range(5)]


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("ns", [False, True])
def test_pcap_both_byte_orders_and_resolutions(big: bool, ns: bool) -> None:
    frames = [(t, frame(i, 60 + 7 * i)) for i, t in enumerate(TS)]
    cap = read_pcap(pcap_bytes(frames, big=big, ns=ns))
    assert cap.to_list() == [f for _, f in frames]
    want = [t if ns else t // 1000 * 1000 for t in TS]
    assert cap.timestamps_ns.tolist() == want
    assert cap.format == "pcap"


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_resolutions_interfaces_and_block_kinds(e: str) -> None:
    eth = [frame(i) for i in range(8)]
    data = (
        shb(e)
        + idb(e, tsresol=9)  # if 0: nanoseconds
        + _blk(e, 0x00000BAD, b"\1\2\3\4")  # unknown block: skipped
        + idb(e, tsresol=0x80 | 20)  # if 1: 2^-20 s
        + idb(e, link=113)  # if 2: Linux cooked (not Ethernet), default microseconds
        + idb(e, tsresol=3, tsoffset=100)  # if 3: milliseconds, +100 s
        + epb(e, 0, 1_000_000_000_123_456_789, eth[0])
        + epb(e, 1, (5 << 20) + (1 << 19), eth[1])  # 5.5 s
        + epb(e, 2, 42, b"\0" * 16)
        + epb(e, 3, 7_250, eth[2], comment=b"hello")  # 7.25 s + 100 s
        + spb(e, eth[3])  # interface 0, no timestamp: the previous packet's
        + pb(e, 1, 3 << 20, eth[4])
        + _blk(e, 5, b"\0" * 8)  # interface statistics: skipped
    )
    cap = read_pcap(data)
    assert cap.format == "pcapng"
    assert cap.to_list() == eth[:5]
    assert cap.timestamps_ns.tolist() == [1_000_000_000_123_456_789, 5_500_000_000, 107_250_000_000,
                                          107_250_000_000, 3_000_000_000]  # fmt: skip
    assert cap.interfaces.tolist() == [0, 1, 3, 0, 1]
    assert cap.skipped == 1 and cap.skipped_link_types == (113,)


def test_pcapng_several_sections_with_different_byte_orders() -> None:
    data = shb("<") + idb("<", link=1) + epb("<", 0, 1, frame(1))
    data += shb(">") + idb(">", link=105) + idb(">", link=1, tsresol=9) + epb(">", 1, 5, frame(2))
    data += epb(">", 0, 5, frame(9))  # 802.11 in this section: skipped
    cap = read_pcap(data)
    assert cap.to_list() == [frame(1), frame(2)]
    assert cap.timestamps_ns.tolist() == [1000, 5]
    assert cap.skipped == 1


def test_pcapng_power_of_two_resolution_with_fraction() -> None:
    # 2^-30 s units: 1 s + 2^29 units = 1.5 s; 2^-40 units: 2^39 = 0.5 s
    data = shb("<") + idb("<", tsresol=0x80 | 30) + idb("<", tsresol=0x80 | 40)
    data += epb("<", 0, (1 << 30) + (1 << 29), frame(0)) + epb("<", 1, (3 << 40) + (1 << 39), frame(1))
    assert read_pcap(data).timestamps_ns.tolist() == [1_500_000_000, 3_500_000_000]


def test_snaplen_and_fcs_annotation_in_pcap_link_type() -> None:
    # link word with the FCS-present bit and 2 x 16-bit words of FCS: the 4 FCS bytes are cut
    f = frame(3, 64)
    cap = read_pcap(pcap_bytes([(0, f)], link=(2 << 28) | 0x04000000 | 1))
    assert cap.to_list() == [f[:60]]
    # upper bits without the present bit (as in tcpdump's fuzz files): ignored
    assert read_pcap(pcap_bytes([(0, f)], link=0x30000001)).to_list() == [f]


frames_st = st.lists(
    st.tuples(st.integers(0, 2**32 * 10**9 - 1), st.binary(min_size=0, max_size=200)), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(frames_st, st.booleans(), st.booleans())
def test_any_valid_pcap_reads_as_built_and_as_dpkt_reads_it(frames, big: bool, ns: bool) -> None:
    data = pcap_bytes(frames, big=big, ns=ns, snaplen=0)  # snaplen 0: no limit
    cap = read_pcap(data)
    assert cap.to_list() == [f for _, f in frames]
    assert cap.timestamps_ns.tolist() == [t if ns else t // 1000 * 1000 for t, _ in frames]
    if not ns:  # dpkt reads microsecond pcap of either byte order
        ref = list(dpkt.pcap.Reader(io.BytesIO(data)))
        assert [bytes(b) for _, b in ref] == cap.to_list()


RESOLUTIONS = [None, 0, 3, 6, 9, 12, 0x80 | 10, 0x80 | 40]
MAX_S = (2**63 - 1) // 10**9 - 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["<", ">"]),
            st.lists(st.tuples(st.sampled_from([1, 1, 113]), st.sampled_from(RESOLUTIONS)), min_size=1,
                     max_size=3),
            st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**64 - 1) | st.integers(0, 2**40),
                               st.binary(max_size=90)), max_size=6),
        ),
        min_size=1,
        max_size=3,
    )
)  # fmt: skip
def test_any_valid_pcapng_reads_as_built(sections) -> None:
    """Timestamps in every resolution as exact integer arithmetic says; out of int64 ns: an error."""
    data = b""
    want_frames, want_ts, out_of_range = [], [], False
    for e, ifaces, pkts in sections:
        data += shb(e)
        for link, res in ifaces:
            data += idb(e, link=link, tsresol=res)
        for k, units, f in pkts:
            k %= len(ifaces)
            data += epb(e, k, units, f)
            link, res = ifaces[k]
            r = 6 if res is None else res
            per_s = 1 << (r & 0x7F) if r & 0x80 else 10**r
            if units >= 2**63 or units // per_s > MAX_S:
                out_of_range = True
                break
            if link != 1:
                continue
            if r & 0x80:
                sh = r & 0x7F
                sec, frac = units >> sh, units & ((1 << sh) - 1)
                t = sec * 10**9 + ((frac >> max(0, sh - 30)) * 10**9 >> min(sh, 30))
            else:
                t = units * 10**9 // 10**r
            want_frames.append(f)
            want_ts.append(t)
        if out_of_range:
            break
    if out_of_range:
        with pytest.raises(CaptureError, match="out of range"):
            read_pcap(data)
        return
    if not want_frames and any(
        ifaces[k % len(ifaces)][0] != 1 for _, ifaces, pkts in sections for k, _, _ in pkts
    ):
        with pytest.raises(CaptureError, match="none of its"):
            read_pcap(data)
        return
    cap = read_pcap(data)
    assert cap.to_list() == want_frames
    assert cap.timestamps_ns.tolist() == want_ts


def test_empty_captures() -> None:
    assert len(read_pcap(pcap_bytes([]))) == 0
    assert len(read_pcap(shb("<") + idb("<"))) == 0
    out = io.BytesIO()
    write_pcapng(out, Batch.empty())
    assert len(read_pcap(out.getvalue())) == 0


# -- writing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ns", [False, True])
def test_round_trip_random_batches(ns: bool, tmp_path: Path) -> None:
    b = make_batch(300, seed=ns)
    for writer in (write_pcap, write_pcapng):
        path = tmp_path / "x.cap"
        writer(path, b, nanosecond=ns)
        back = read_pcap(path)
        assert back.to_list() == b.to_list()
        want = b.timestamps_ns if ns else b.timestamps_ns // 1000 * 1000
        assert np.array_equal(back.timestamps_ns, want)
        if ns:
            assert back == b


SYNTH = [
    TrafficProfile(frames=3_000, sizes="imix", rate="10G", dst=("02:00:00:00:00:10", "02:00:00:00:00:11"),
                   vlans=(0, 10), broadcast_share=0.05, multicast_share=0.05, start_ns=1_700_000_000 * 10**9),
    TrafficProfile(frames=1_000, sizes={"uniform": [64, 9728]}, rate="100kpps", vlans=(7,)),
]  # fmt: skip


@pytest.mark.parametrize("profile", SYNTH, ids=["imix-10G", "uniform-jumbo-100kpps"])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("ns", [True, False])
def test_synth_round_trip_is_identical(profile: TrafficProfile, fmt: str, ns: bool, tmp_path: Path) -> None:
    b = generate(profile, seed=42)
    path = tmp_path / f"s.{fmt}"
    (write_pcap if fmt == "pcap" else write_pcapng)(path, b, nanosecond=ns)
    back = read_pcap(path)
    assert back.format == fmt
    if ns:
        assert back == b
    else:  # microsecond files keep the frames and the microseconds
        want = Batch(b.data, b.offsets, b.lengths, b.timestamps_ns // 1000 * 1000)
        assert back == want
        exact = profile.rate == "100kpps"  # every timestamp a whole microsecond: identical either way
        assert (back == b) == exact


def test_round_trip_of_a_strided_batch_view() -> None:
    b = make_batch(50, seed=3)[::3]  # offsets not in order of the buffer: the writer gathers
    out = io.BytesIO()
    write_pcap(out, b)
    assert read_pcap(out.getvalue()) == b


def test_pcapng_comments_are_per_frame_options_dpkt_and_we_read_back() -> None:
    b = make_batch(6, seed=5)
    comments = ["rx_no_pool", None, "rx_vlan_filtered", "rx_no_pool", "ünïcode", None]
    out = io.BytesIO()
    write_pcapng(out, b, comments=comments)
    raw = out.getvalue()
    assert read_comments(raw) == comments
    assert read_pcap(raw) == b
    # dpkt agrees on frames and finds the comment option in the EPB
    got = list(dpkt.pcapng.Reader(io.BytesIO(raw)))
    assert [bytes(x) for _, x in got] == b.to_list()
    assert raw.count(b"rx_no_pool") == 2


def test_writer_refuses_bad_input() -> None:
    b = make_batch(2)
    with pytest.raises(ConfigError, match="one per frame"):
        write_pcapng(io.BytesIO(), b, comments=["x"])
    neg = Batch(b.data, b.offsets, b.lengths, np.array([-1, 5], np.int64))
    with pytest.raises(ConfigError, match="timestamps"):
        write_pcap(io.BytesIO(), neg)
    late = Batch(b.data, b.offsets, b.lengths, np.array([0, (1 << 32) * 10**9], np.int64))
    with pytest.raises(ConfigError, match="timestamps"):
        write_pcap(io.BytesIO(), late)
    with pytest.raises(ConfigError, match="Batch"):
        write_pcap(io.BytesIO(), [b"abc"])  # type: ignore[arg-type]


# -- damage -----------------------------------------------------------------------------------------
GOOD = pcap_bytes([(t, frame(i, 60 + i)) for i, t in enumerate(TS)], snaplen=1000)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"\x00\x01\x02\x03" + GOOD[4:], r"offset 0: bad magic 00010203"),
        (GOOD[:10], r"offset 0: truncated file header"),
        (GOOD[:24 + 76 + 5], r"offset 100: truncated record header"),
        (GOOD[:24 + 76 + 20], r"offset 100: truncated record: captured length 61 but only 4 bytes left"),
        (pcap_bytes([(0, frame(0, 60))], snaplen=40), r"offset 24: captured length 60 is larger than"),
        (GOOD[:32] + struct.pack("<I", 10**7) + GOOD[36:], r"offset 24: captured length 10000000 is absurd"),
        (GOOD[:4] + b"\x03\x00" + GOOD[6:], r"offset 4: unsupported version 3"),
        (b"\xd4\xc3", r"too short"),
    ],
    ids=["magic", "file-header", "record-header", "record-data", "snaplen", "absurd", "version", "tiny"],
)  # fmt: skip
def test_malformed_pcap_names_the_offset(data: bytes, pattern: str) -> None:
    with pytest.raises(CaptureError, match=pattern):
        read_pcap(data)


def test_partial_read_keeps_frames_before_the_damage() -> None:
    damaged = GOOD[: len(GOOD) - 3]
    with pytest.raises(CaptureError, match="offset 334"):
        read_pcap(damaged)
    part = read_pcap(damaged, strict=False)
    assert len(part) == 4 and part.to_list() == read_pcap(GOOD).to_list()[:4]
    assert "truncated record" in part.warning and "offset 334" in part.warning
    assert read_pcap(GOOD, strict=False).warning is None


NG = shb("<") + idb("<", snaplen=100) + epb("<", 0, 1, frame(0)) + epb("<", 0, 2, frame(1))
NG_EPB1 = len(shb("<")) + len(idb("<", snaplen=100))


def _patch32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (NG[: NG_EPB1 + 6], rf"offset {NG_EPB1}: truncated block header"),
        (NG[: NG_EPB1 + 40], rf"offset {NG_EPB1}: truncated block: total length 92"),
        (_patch32(NG, NG_EPB1 + 4, 90), rf"offset {NG_EPB1}: bad block total length 90"),
        (_patch32(NG, NG_EPB1 + 4, 8), rf"offset {NG_EPB1}: bad block total length 8"),
        (_patch32(NG, NG_EPB1 + 88, 96), rf"offset {NG_EPB1}: bad block total length: trailing copy 96"),
        (_patch32(NG, NG_EPB1 + 20, 61), rf"offset {NG_EPB1}: captured length 61 does not fit"),
        (_patch32(NG, NG_EPB1 + 8, 1), rf"offset {NG_EPB1}: packet on interface 1 but the section desc"),
        (_patch32(NG, 8, 0x11223344), r"offset 0: bad section byte-order magic"),
        (_patch32(NG, 4, 16), r"offset 0: bad block total length 16 \(.* at least 28"),
        (shb("<") + idb("<", snaplen=50) + epb("<", 0, 1, frame(0)), r"60 is larger than the snaplen 50"),
        (shb("<") + idb("<", tsresol=19) + epb("<", 0, 1, frame(0)), r"if_tsresol 0x13 is out of range"),
        (shb("<") + _blk("<", 1, b"\0\0\0\0"), r"interface description block of 16 bytes is too short"),
        (shb("<") + epb("<", 0, 1, frame(0)), r"interface 0 but the section describes 0"),
    ],
    ids=["block-header", "block-past-end", "len-not-x4", "len-small", "trailer", "caplen", "iface", "bom",
         "shb-len", "snaplen", "tsresol", "idb-short", "no-idb"],
)  # fmt: skip
def test_malformed_pcapng_names_the_offset(data: bytes, pattern: str) -> None:
    with pytest.raises(CaptureError, match=pattern):
        read_pcap(data)
    part = read_pcap(data, strict=False)  # damage after the file's first bytes: a partial read
    assert part.warning is not None and len(part) <= 2


def test_unreadable_path_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read"):
        read_pcap(tmp_path / "missing.pcap")


def _fuzz_read(data: bytes) -> None:
    for strict in (True, False):
        try:
            cap = read_pcap(data, strict=strict)
        except CaptureError:
            continue
        # whatever was read is in bounds and self-consistent
        assert len(cap.lengths) == len(cap.offsets) == len(cap.timestamps_ns)
        if len(cap):
            assert int((cap.offsets + cap.lengths).max()) <= len(data)
            assert int(cap.lengths.max()) <= MAX_CAPLEN


SEEDS = [p.read_bytes() for p in REAL if p.stat().st_size < 20000] + [GOOD, NG]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_capture_error(data: bytes) -> None:
    _fuzz_read(data)
    _fuzz_read(GOOD[:4] + data)  # past the magic check
    _fuzz_read(NG[:28] + data)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_truncated_and_corrupted_real_files_only_ever_raise_capture_error(seed: bytes, data) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    _fuzz_read(seed[:cut])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=6))
    buf = bytearray(seed)
    for pos, val in flips:
        buf[pos] = val
    _fuzz_read(bytes(buf))


# -- the pure-Python run of the Numba source, and tshark ----------------------------------------------
def test_scans_and_writers_run_without_jit(tmp_path: Path) -> None:
    script = """
import io, numpy as np
from sriov.traffic.capture import read_pcap, write_pcap, write_pcapng
from sriov.batch import Batch
from sriov.errors import CaptureError
b = Batch.from_frames([bytes(range(60)), bytes(range(70))], [1_000_000_123, 2_000_000_456])
for w in (write_pcap, write_pcapng):
    out = io.BytesIO(); w(out, b, nanosecond=True); raw = out.getvalue()
    assert read_pcap(raw) == b
    try:
        read_pcap(raw[:-3]); raise SystemExit("no error")
    except CaptureError:
        pass
out = io.BytesIO(); write_pcapng(out, b, comments=["a", None]); assert read_pcap(out.getvalue()) == b
print("ok")
"""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def _tshark_fields(path: Path) -> list[tuple[int, int]]:
    res = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows = []
    for line in res.stdout.splitlines():
        length, epoch = line.split("\t")
        sec, _, frac = epoch.partition(".")
        rows.append((int(length), int(sec) * 10**9 + int((frac + "000000000")[:9])))
    return rows


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (CI installs it)")
@pytest.mark.parametrize("ns", [False, True])
def test_tshark_reads_our_files(ns: bool, tmp_path: Path) -> None:
    b = make_batch(40, seed=9)
    want_ts = b.timestamps_ns if ns else b.timestamps_ns // 1000 * 1000
    for writer, name in ((write_pcap, "t.pcap"), (write_pcapng, "t.pcapng")):
        path = tmp_path / name
        writer(path, b, nanosecond=ns)
        rows = _tshark_fields(path)
        assert [r[0] for r in rows] == b.lengths.tolist()
        assert [r[1] for r in rows] == want_ts.tolist()


needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("editcap") is None,
    reason="tshark/editcap are not installed (CI installs them)",
)


@needs_tshark
def test_tshark_shows_our_drop_reason_comments(tmp_path: Path) -> None:
    b = make_batch(3, seed=2)
    path = tmp_path / "drops.pcapng"
    write_pcapng(path, b, comments=["rx_no_pool", None, "rx_vlan_filtered"])
    res = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert res.stdout.splitlines() == ["rx_no_pool", "", "rx_vlan_filtered"]


@needs_tshark
@needs_real
@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap", "pcap"])
def test_files_tshark_writes_read_back_identically(fmt: str, tmp_path: Path) -> None:
    for path in [p for p in REAL if p.name not in set(NOT_ETHERNET) | OVER_SNAPLEN][:8]:
        out = tmp_path / f"{path.stem}.{fmt}"
        subprocess.run(
            ["editcap", "-F", fmt, str(path), str(out)], capture_output=True, timeout=60, check=True
        )
        assert read_pcap(out) == read_pcap(path), path.name


# -- scapy interop (optional extra) -------------------------------------------------------------------
def test_scapy_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scapy.layers", None)
    monkeypatch.setitem(sys.modules, "scapy.utils", None)
    with pytest.raises(ConfigError, match=r"scapy is not installed: pip install 'sriov\[scapy\]'"):
        Batch.from_scapy([])
    with pytest.raises(ConfigError, match="scapy is not installed"):
        make_batch(1).to_scapy()


def test_scapy_round_trip() -> None:
    pytest.importorskip("scapy")
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Dot3, Ether
    from scapy.utils import EDecimal

    first = Ether(dst="02:00:00:00:00:10", src="02:00:00:00:ff:01") / IP(dst="10.1.0.0") / UDP(dport=9)
    pkts = [
        first / (b"x" * 20),
        Ether(dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=100) / IP() / UDP(),
        Dot3(dst="01:80:c2:00:00:00") / (b"\x42\x42\x03" + b"\0" * 40),
    ]
    pkts[0].time = EDecimal("1700000000.123456789")
    pkts[1].time = 1.5
    pkts[2].time = EDecimal(2)
    b = Batch.from_scapy(pkts)
    assert b.to_list() == [bytes(p) for p in pkts]
    assert b.timestamps_ns.tolist() == [1_700_000_000_123_456_789, 1_500_000_000, 2_000_000_000]
    back = b.to_scapy()
    assert [bytes(p) for p in back] == b.to_list()
    assert back[1][Dot1Q].vlan == 100 and back[0][UDP].dport == 9
    assert Batch.from_scapy(back) == b
    with pytest.raises(ConfigError, match=r"packet 0 is IP, not an Ethernet frame"):
        Batch.from_scapy([IP()])


def test_scapy_agrees_with_the_synthesised_headers() -> None:
    pytest.importorskip("scapy")
    from scapy.layers.inet import IP, UDP

    b = generate(TrafficProfile(frames=50, sizes="imix", vlans=(0, 10), broadcast_share=0.2), seed=1)
    for p in b.to_scapy():
        ip = p[IP]
        got = ip.chksum
        del ip.chksum
        assert IP(bytes(ip)).chksum == got  # scapy recomputes the same header checksum
        assert p[UDP].len == ip.len - 20


def test_too_many_interfaces_in_a_section_is_a_capture_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sriov.traffic.capture as capture

    monkeypatch.setattr(capture, "MAX_INTERFACES", 2)
    data = shb("<") + idb("<") + idb("<") + epb("<", 1, 5, frame(1))
    assert read_pcap(data).to_list() == [frame(1)]
    at = len(data)
    data += idb("<") + epb("<", 2, 5, frame(2))
    with pytest.raises(CaptureError, match=rf"offset {at}: interface description block number 3 .*most 2"):
        read_pcap(data)


def test_pcapng_comments_from_reason_codes() -> None:
    b = make_batch(5, seed=6)
    out = io.BytesIO()
    write_pcapng(
        out, b, comment_codes=np.array([1, -1, 0, 1, -1]), comment_names=["rx_no_pool", "rx_vlan_filtered"]
    )
    assert read_comments(out.getvalue()) == ["rx_vlan_filtered", None, "rx_no_pool", "rx_vlan_filtered", None]
    assert read_pcap(out.getvalue()) == b
    with pytest.raises(ConfigError, match=r"-1 \(none\) or 0\.\.1"):
        write_pcapng(io.BytesIO(), b, comment_codes=np.array([2, 0, 0, 0, 0]), comment_names=["a", "b"])
    with pytest.raises(ConfigError, match="5 integers"):
        write_pcapng(io.BytesIO(), b, comment_codes=np.zeros(4, int), comment_names=["a"])
    with pytest.raises(ConfigError, match="not both"):
        write_pcapng(
            io.BytesIO(), b, comments=[None] * 5, comment_codes=np.zeros(5, int), comment_names=["a"]
        )
