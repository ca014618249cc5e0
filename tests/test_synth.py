"""Traffic synthesis (issue 7, item 2): valid frames, distributions, exact timing, determinism."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from fractions import Fraction

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov.errors import ConfigError
from sriov.scenario import default, parse
from sriov.traffic.synth import (
    IMIX,
    LINK_BIT_PS,
    TrafficGenerator,
    TrafficProfile,
    from_scenario,
    generate,
    line_rate_pps,
    profile_from_scenario,
)

DST = ("02:00:00:00:00:10", "02:00:00:00:00:11", "02:00:00:00:00:12", "02:00:00:00:99:99")


def parse_frame(f: bytes) -> tuple[dpkt.ethernet.Ethernet, int | None]:
    eth = dpkt.ethernet.Ethernet(f)
    vid = eth.vlan_tags[0].id if getattr(eth, "vlan_tags", None) else None
    return eth, vid


# -- frames -----------------------------------------------------------------------------------------
def test_frames_are_valid_ethernet_ipv4_udp() -> None:
    p = TrafficProfile(frames=400, sizes="imix", dst=DST, vlans=(0, 10, 4095), pcp=5,
                       src=("02:aa:00:00:00:01",), broadcast_share=0.1, multicast_share=0.1)  # fmt: skip
    b = generate(p, seed=3)
    assert len(b) == 400
    assert np.all(b.offsets % 8 == 0)  # each frame starts on an 8-byte boundary
    for i, f in enumerate(b):
        raw = bytes(f)
        eth, vid = parse_frame(raw)
        assert eth.src == bytes.fromhex("02aa00000001")
        if vid is not None:
            assert vid in (10, 4095) and raw[12:14] == b"\x81\x00" and raw[14] >> 5 == 5
        ip = eth.data
        assert isinstance(ip, dpkt.ip.IP) and ip.v == 4 and ip.ttl == 64 and ip.p == 17
        assert dpkt.dpkt.in_cksum(bytes(ip)[:20]) == 0, f"frame {i}: bad IPv4 header checksum"
        l2 = 18 if vid is not None else 14
        assert ip.len == len(raw) - l2 and ip.id == i & 0xFFFF
        udp = ip.data
        assert udp.dport == 9 and udp.ulen == ip.len - 20 and 1024 <= udp.sport < 2048
        assert int.from_bytes(bytes(udp.data)[:8], "big") == i  # the frame index as payload
        dst = eth.dst.hex(":")
        if dst == "ff:ff:ff:ff:ff:ff":
            assert ip.dst == b"\xff\xff\xff\xff"
        elif dst.startswith("01:00:5e"):
            assert ip.dst == bytes([239, 0, 0, 1])
        else:
            assert dst in DST and ip.dst == bytes([10, 1, 0, DST.index(dst)])


def test_fixed_and_custom_sizes() -> None:
    assert set(generate(TrafficProfile(frames=50, sizes=128)).lengths.tolist()) == {124}
    assert set(generate(TrafficProfile(frames=50, sizes={"fixed": 9728})).lengths.tolist()) == {9724}
    b = generate(TrafficProfile(frames=20_000, sizes={"100": 1, "200": 0, "300": 3}), seed=1)
    c = Counter(b.lengths.tolist())
    assert set(c) == {96, 296}
    assert c[296] / len(b) == pytest.approx(0.75, abs=0.02)


def test_imix_ratio() -> None:
    b = generate(TrafficProfile(frames=120_000, sizes="imix"), seed=7)
    c = Counter(b.lengths.tolist())
    assert set(c) == {60, 590, 1514}
    total = sum(IMIX.values())
    for size, w in IMIX.items():
        assert c[size - 4] / len(b) == pytest.approx(w / total, abs=0.006)


def test_uniform_sizes_cover_the_range() -> None:
    b = generate(TrafficProfile(frames=60_000, sizes={"uniform": [64, 127]}), seed=2)
    c = Counter(b.lengths.tolist())
    assert set(c) == set(range(60, 124))
    assert min(c.values()) > 0.6 * len(b) / 64


def test_zipf_destinations() -> None:
    dst = tuple(f"02:00:00:00:01:{k:02x}" for k in range(8))
    b = generate(TrafficProfile(frames=80_000, dst=dst, dst_dist="zipf", zipf_s=1.0), seed=4)
    counts = Counter(bytes(b.data[o : o + 6]).hex(":") for o in b.offsets.tolist())
    freq = np.array([counts[d] for d in dst]) / len(b)
    h = sum(1 / k for k in range(1, 9))
    assert np.allclose(freq, [1 / k / h for k in range(1, 9)], atol=0.01)
    flat = generate(TrafficProfile(frames=80_000, dst=dst), seed=4)
    flat_counts = Counter(bytes(flat.data[o : o + 6]).hex(":") for o in flat.offsets.tolist())
    assert max(flat_counts.values()) / len(flat) == pytest.approx(1 / 8, abs=0.01)


def test_broadcast_multicast_shares_and_vlans() -> None:
    mc = ("01:00:5e:00:00:fb", "33:33:00:00:00:01")
    p = TrafficProfile(frames=50_000, dst=DST, vlans=(0, 10, 20, 100, 300), broadcast_share=0.02,
                       multicast_share=0.05, multicast=mc)  # fmt: skip
    b = generate(p, seed=5)
    firsts = [bytes(b.data[o : o + 6]).hex(":") for o in b.offsets.tolist()]
    c = Counter(firsts)
    assert c["ff:ff:ff:ff:ff:ff"] / len(b) == pytest.approx(0.02, abs=0.003)
    assert (c[mc[0]] + c[mc[1]]) / len(b) == pytest.approx(0.05, abs=0.005)
    assert c[mc[0]] == pytest.approx(c[mc[1]], rel=0.15)
    tagged = b.data[b.offsets + 12] == 0x81
    assert tagged.mean() == pytest.approx(0.8, abs=0.01)
    vids = ((b.data[b.offsets + 14].astype(int) & 0x0F) << 8) | b.data[b.offsets + 15]
    assert set(vids[tagged].tolist()) == {10, 20, 100, 300}
    only_bcast = generate(TrafficProfile(frames=100, dst=(), broadcast_share=1.0))
    assert all(bytes(f[:6]) == b"\xff" * 6 for f in only_bcast)


# -- timing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", list(LINK_BIT_PS))
def test_line_rate_64_byte_gaps_are_exact(link: str) -> None:
    b = generate(TrafficProfile(frames=10_000, rate=link, start_ns=1_000), seed=0)
    ps_per_frame = 84 * 8 * LINK_BIT_PS[link]  # 64 B + 20 B preamble/SFD/IFG
    want = 1_000 + (np.arange(10_000, dtype=np.int64) * ps_per_frame) // 1000
    assert np.array_equal(b.timestamps_ns, want)
    # the spec §6 table: 10G 64 B = 14,880,952 pps, a frame every 67.2 ns
    span_s = (ps_per_frame * 10_000) / 1e12
    assert 10_000 / span_s == pytest.approx(line_rate_pps(link), rel=1e-12)
    assert round(line_rate_pps("10G")) == 14_880_952 and round(line_rate_pps("100G", 1518)) == 8_127_438


def test_line_rate_imix_gaps_follow_each_frame_size() -> None:
    b = generate(TrafficProfile(frames=5_000, rate="25G", sizes="imix"), seed=8)
    wire_ps = (b.lengths.astype(np.int64) + 4 + 20) * 8 * 40
    start_ps = np.concatenate([[0], np.cumsum(wire_ps)[:-1]])
    assert np.array_equal(b.timestamps_ns, start_ps // 1000)


@pytest.mark.parametrize(("rate", "pps"), [("3pps", 3), ("1.5Mpps", 1_500_000), (7, 7), ("250kpps", 250_000),
                                           (2.5, Fraction(5, 2))])  # fmt: skip
def test_packet_rate_schedule_is_exact(rate: object, pps: object) -> None:
    b = generate(TrafficProfile(frames=3_000, rate=rate), seed=0)
    i = np.arange(3_000, dtype=object)
    want = [int(k * Fraction(10**9) / Fraction(pps)) for k in i]  # floor of exact rational times
    assert b.timestamps_ns.tolist() == want


def test_bit_rate_schedule_counts_wire_bits() -> None:
    # 5 Gbps offered on a 10G link, 64-byte frames: one every 672 bits / 5e9 = 134.4 ns
    b = generate(TrafficProfile(frames=1_000, rate="5Gbps", link="10G"), seed=0)
    assert np.array_equal(b.timestamps_ns, (np.arange(1_000) * 134_400) // 1000)
    # "10Gbps" on a 10G link is line rate
    assert np.array_equal(generate(TrafficProfile(frames=100, rate="10Gbps")).timestamps_ns,
                          generate(TrafficProfile(frames=100, rate="10G")).timestamps_ns)  # fmt: skip


def test_rate_above_the_link_saturates_it() -> None:
    over = generate(TrafficProfile(frames=1_000, rate="20Mpps", link="10G"))
    line = generate(TrafficProfile(frames=1_000, rate="10G"))
    assert np.array_equal(over.timestamps_ns, line.timestamps_ns)


def test_bursts_go_back_to_back_and_start_on_schedule() -> None:
    b = generate(TrafficProfile(frames=400, rate="1Mpps", link="10G", burst=4))
    ts = b.timestamps_ns.reshape(100, 4)
    assert np.array_equal(ts[:, 0], np.arange(100) * 4_000)  # a burst of 4 every 4 us
    assert np.array_equal(ts - ts[:, :1], np.tile([0, 67, 134, 201], (100, 1)))


# -- determinism and streaming ------------------------------------------------------------------------
def _digest(b) -> str:
    h = hashlib.sha256()
    for f in b:
        h.update(bytes(f))
    h.update(b.lengths.tobytes())
    h.update(b.timestamps_ns.tobytes())
    return h.hexdigest()


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    p = TrafficProfile(frames=2_000, sizes="imix", dst=DST, vlans=(0, 10), broadcast_share=0.1)
    assert _digest(generate(p, seed=11)) == _digest(generate(p, seed=11))
    assert _digest(generate(p, seed=11)) != _digest(generate(p, seed=12))


def test_stream_in_pieces_equals_one_batch() -> None:
    p = TrafficProfile(sizes={"uniform": [64, 1518]}, rate="1.5Mpps", burst=3, dst=DST, vlans=(0, 7),
                       multicast_share=0.2)  # fmt: skip
    whole = generate(p, 1_000, seed=9)
    g = TrafficGenerator(p, seed=9)
    parts = [g.next_batch(k) for k in (1, 299, 0, 700)]
    assert [bytes(f) for part in parts for f in part] == whole.to_list()
    assert np.array_equal(np.concatenate([x.timestamps_ns for x in parts]), whole.timestamps_ns)
    assert g.index == 1_000


def test_reused_output_buffer() -> None:
    p = TrafficProfile(sizes="imix", dst=DST)
    g = TrafficGenerator(p, seed=1)
    buf = np.full(1 << 20, 0xAA, np.uint8)
    a = g.next_batch(200, out=buf)
    assert np.shares_memory(a.data, buf)
    assert a.to_list() == generate(p, 200, seed=1).to_list()
    with pytest.raises(ConfigError, match="hold"):
        g.next_batch(5_000, out=np.zeros(100, np.uint8))


def test_generator_runs_without_jit_and_agrees_with_the_compiled_one() -> None:
    code = """
import hashlib, sys
from sriov.traffic.synth import TrafficProfile, generate
p = TrafficProfile(frames=60, sizes="imix", rate="1.5Mpps", burst=2, dst=("02:00:00:00:00:01",
    "02:00:00:00:00:02"), dst_dist="zipf", vlans=(0, 5), broadcast_share=0.2, multicast_share=0.2)
b = generate(p, seed=5)
h = hashlib.sha256(b"".join(b.to_list()) + b.timestamps_ns.tobytes()).hexdigest()
print(h)
"""
    out = {}
    for jit in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=jit)
        res = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        out[jit] = res.stdout.strip()
    assert out["0"] == out["1"] and len(out["0"]) == 64


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 300),
    st.sampled_from([64, "imix", {"uniform": [64, 300]}, {"64": 1, "9000": 1}]),
    st.sampled_from(["1G", "100G", "3Mpps", "2Gbps", 1000]),
    st.lists(st.integers(0, 4095), min_size=1, max_size=4),
    st.integers(1, 8),
    st.integers(0, 2**32),
)
def test_any_profile_gives_a_consistent_batch(n, sizes, rate, vlans, burst, seed) -> None:
    p = TrafficProfile(frames=n, sizes=sizes, rate=rate, vlans=tuple(vlans), burst=burst, dst=DST,
                       broadcast_share=0.1, multicast_share=0.1)  # fmt: skip
    b = generate(p, seed=seed)
    assert len(b) == n
    b._validate()
    assert np.all((b.lengths >= 60) & (b.lengths <= 9724))
    ts = b.timestamps_ns
    # never closer than the link allows: the gap covers the previous frame's wire time
    bit_ps = LINK_BIT_PS[p.wire_link]
    min_gap_ps = (b.lengths[:-1].astype(np.int64) + 24) * 8 * bit_ps
    assert np.all(np.diff(ts) * 1000 >= min_gap_ps - 1000)


# -- scenario mapping and errors ------------------------------------------------------------------------
def test_default_scenario_generator_maps_onto_the_profile() -> None:
    spec = default().traffic[0]
    p = profile_from_scenario(spec)
    assert p.frames == 200_000 and p.rate == "10G" and p.sizes == "imix" and p.dst == DST
    assert p.vlans == (0, 10, 20, 100, 300) and p.broadcast_share == 0.02 and p.multicast_share == 0.05
    small = dict(spec.generator, frames=1_000)
    b = from_scenario(small, seed=0)
    assert len(b) == 1_000 and b == from_scenario(small, seed=0)


def test_scenario_toml_with_every_key() -> None:
    sc = parse("""
[[port]]
name = "eth0"
[[traffic]]
port = "eth0"
  [traffic.generator]
  frames = 100
  rate = "250kpps"
  link = "25G"
  sizes = { 64 = 7, 594 = 4, 1518 = 1 }
  dst = ["02:00:00:00:00:10"]
  dst_dist = "zipf"
  zipf_s = 1.2
  vlans = [0, 10]
  pcp = 3
  src = ["02:00:00:00:ff:02"]
  broadcast_share = 0.1
  multicast_share = 0.1
  multicast = ["01:00:5e:00:00:fb"]
  burst = 2
  start_ns = 5000
""")
    b = from_scenario(sc.traffic[0], seed=1)
    assert len(b) == 100 and b.timestamps_ns[0] == 5000 and set(b.lengths.tolist()) <= {60, 590, 1514}


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"sizes": 63}, r"sizes: 63 is not allowed \(an integer in 64\.\.9728\)"),
        ({"sizes": "jumbo"}, r"sizes: 'jumbo' is not allowed"),
        ({"sizes": {"uniform": [200, 100]}}, r"sizes.uniform\[1\]"),
        ({"sizes": {"64": -1}}, r"sizes.64: weight -1"),
        ({"dst": ["02:00:00:00:00"]}, r"dst\[0\]: '02:00:00:00:00' is not a MAC"),
        ({"dst": ["01:00:5e:00:00:01"]}, r"dst\[0\]: .* is a group address"),
        ({"multicast": ["02:00:00:00:00:01"]}, r"multicast\[0\]: .* is not a multicast address"),
        ({"broadcast_share": 0.7, "multicast_share": 0.5}, r"is over 1"),
        ({"broadcast_share": 1.5}, r"broadcast_share: 1.5 is not allowed"),
        ({"rate": "fast"}, r"rate: 'fast' is not allowed"),
        ({"rate": "0pps"}, r"must be positive"),
        ({"rate": "10G", "link": "25G"}, r"line rate of a 10G link, but link is '25G'"),
        ({"link": "5G"}, r"link: '5G' is not allowed"),
        ({"vlans": [4096]}, r"vlans\[0\]: 4096"),
        ({"vlans": []}, r"vlans: .* non-empty"),
        ({"dst": []}, r"dst: is empty but some frames are unicast"),
        ({"dst_dist": "pareto"}, r"dst_dist: 'pareto'"),
        ({"burst": 0}, r"burst: 0 is not allowed"),
        ({"colour": "red"}, r"colour: unknown key; allowed: frames, rate"),
    ],
)  # fmt: skip
def test_bad_generator_settings_name_the_key(kw: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        profile_from_scenario(kw)


def test_bad_seed() -> None:
    with pytest.raises(ConfigError, match="seed"):
        generate(TrafficProfile(frames=1), seed=-1)
