"""Synthetic traffic: seeded Ethernet/IPv4/UDP frames at an exact rate, straight into a Batch.

A :class:`TrafficProfile` says what to send; :func:`generate` (or a :class:`TrafficGenerator`
for a long stream in pieces) makes the frames. Everything per frame happens in two Numba
kernels over preallocated arrays: no Python object per frame, one buffer for the whole batch.

Sizes are Ethernet frame sizes **with** the 4-byte FCS, as line-rate tables count them (64 to
9728): a 64-byte frame is 60 captured bytes in the Batch (MODEL.md: frames carry no FCS). IMIX
is 64/594/1518 in the ratio 7:4:1 (60/590/1514 captured bytes). A VLAN tag is inside the size.

Time (spec §6): on the wire each frame takes ``size + 20`` bytes (preamble, SFD, inter-frame
gap), so at 10 GbE a 64-byte frame starts every 67.2 ns. Time is kept in integer picoseconds
(every standard link's bit time is a whole number of ps) and the schedule in exact rationals,
so timestamps are exact: frame ``i``'s timestamp is ``start_ns + floor(start_ps(i) / 1000)``.
A frame never starts before the previous one has left the link; bursts of ``burst`` frames go
back to back at the link's line rate and each burst is released on the rate's schedule.

Rates: ``"10G"`` (any of 1G/10G/25G/40G/100G) is the line rate of that link (back to back);
``"2.5Gbps"``, ``"800Mbps"`` an offered bit rate counted on the wire (with preamble, gap and
FCS, so ``"10Gbps"`` on a 10G link is line rate); ``"1.5Mpps"``, ``"250kpps"``, ``"1000pps"``
or a number: packets per second. Faster than the link allows saturates the link.

Randomness: two counter-free streams from ``numpy.random.PCG64`` seeded by ``SeedSequence(seed)``
(one for sizes, one for the other choices), consumed a fixed number of words per frame, so the
same seed gives the same frames however the stream is split into batches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np
from numba import njit

from sriov.batch import Batch
from sriov.errors import ConfigError
from sriov.hw import regs as R

__all__ = [
    "IMIX",
    "LINK_BIT_PS",
    "TrafficGenerator",
    "TrafficProfile",
    "from_scenario",
    "generate",
    "line_rate_pps",
    "profile_from_scenario",
]

#: picoseconds per bit of each standard link
LINK_BIT_PS = {"1G": 1000, "10G": 100, "25G": 40, "40G": 25, "100G": 10}
#: IMIX (simple): frame sizes with FCS and their weights
IMIX = {64: 7, 594: 4, 1518: 1}
WIRE_OVERHEAD = 20  # preamble 7 + SFD 1 + inter-frame gap 12 (spec §6)
MIN_SIZE = R.ETH_ZLEN + R.ETH_FCS_LEN  # 64
MAX_SIZE = R.MAX_JUMBO_FRAME_SIZE
CHUNK = 1 << 16  # frames per fill call: the random words of a chunk stay in cache
TEMPLATE_BYTES = 56  # every header (tagged or not, with the sequence number) fits in 7 words
MAX_TEMPLATES = 1 << 18  # 14 MiB of templates at most

_MODE_LINE, _MODE_PPS, _MODE_BPS = 0, 1, 2
_ONE = 1 << 32  # probabilities are 32-bit fixed point
MAX_BATCH_FRAMES = 1 << 30  # frames in one generated Batch (its arrays alone take 20 bytes a frame)
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_RATE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kMG]?)(pps|bps)\s*$")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}
UDP_SRC_PORT_BASE = 1024
UDP_DST_PORT = 9  # discard


def line_rate_pps(link: str, size: int = 64) -> float:
    """Frames per second of ``size``-byte frames (with FCS) back to back on ``link`` (spec §6)."""
    return 1e12 / ((size + WIRE_OVERHEAD) * 8 * LINK_BIT_PS[link])


@dataclass(frozen=True)
class TrafficProfile:
    """What to send. Field names are the scenario file's ``[traffic.generator]`` keys.

    ``frames``: how many (``generate``'s default). ``rate``: ``"10G"``-style line rate of a link,
    ``"2.5Gbps"`` (wire bits), ``"1.5Mpps"`` or a number of packets/s; ``link``: the link that
    bounds it (default: the one ``rate`` names, else 10G); ``burst``: frames released together,
    back to back; ``start_ns``: the first frame's timestamp (see the module docstring). Sizes
    count the FCS (64..9728; a 64-byte frame is 60 bytes in the Batch). ``sizes``: an int
    (fixed), ``"imix"``, ``{"uniform": [lo, hi]}`` (inclusive), or a mapping size -> weight
    (custom; keys may be strings, as TOML gives them). ``dst``: unicast
    destinations chosen by ``dst_dist`` (``"uniform"``, or ``"zipf"`` with exponent ``zipf_s``:
    the first address is the most popular). ``vlans``: chosen uniformly, 0 = untagged, else an
    802.1Q tag with ``pcp``. ``broadcast_share`` and ``multicast_share`` of frames go to
    ff:ff:ff:ff:ff:ff and to a ``multicast`` address (uniformly). ``src``: source MACs, chosen
    uniformly. Payload: IPv4 (10.0.x.y -> 10.1.x.y, broadcast 255.255.255.255, multicast
    239.x.y.z) / UDP to port 9, carrying the frame's index as a 64-bit big-endian number.
    """

    frames: int = 1000
    rate: str | float | int = "10G"
    link: str | None = None
    sizes: int | str | Mapping[Any, Any] = 64
    dst: Sequence[str] = ("02:00:00:00:00:01",)
    dst_dist: str = "uniform"
    zipf_s: float = 1.0
    vlans: Sequence[int] = (0,)
    pcp: int = 0
    src: Sequence[str] = ("02:00:00:00:ff:01",)
    broadcast_share: float = 0.0
    multicast_share: float = 0.0
    multicast: Sequence[str] = ("01:00:5e:00:00:01",)
    burst: int = 1
    start_ns: int = 0
    _plan: _Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", _plan(self))

    @property
    def wire_link(self) -> str:
        """The link whose line rate bounds the frames (``link``, or ``rate`` when it names a link)."""
        return self._plan.link


@dataclass(frozen=True)
class _Plan:
    link: str
    bit_ps: int
    mode: int
    rate_q: int  # pps: ps per burst (quotient); bps: unused
    rate_r: int  # remainder numerator
    rate_den: int  # remainder denominator (pps: packets/s numerator; bps: bits/s)
    size_mode: int  # 0 categorical, 1 uniform range
    size_vals: np.ndarray
    size_cdf: np.ndarray
    dst_cdf: np.ndarray
    n_dst: int
    n_mc: int
    n_vl: int
    n_src: int
    templates: np.ndarray  # (destinations incl. multicast and broadcast) x vlans x sources, 7 words
    tmpl_csum: np.ndarray  # the constant part of each template's IPv4 header checksum
    tmpl_tagged: np.ndarray
    bcast_thr: int
    mcast_thr: int


def _fail(key: str, msg: str) -> ConfigError:
    return ConfigError(f"traffic generator: {key}: {msg}")


def _macs(key: str, values: Any, *, unicast: bool | None) -> np.ndarray:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _fail(key, f"must be a list of MAC addresses, got {values!r}")
    out = np.zeros((len(values), 6), np.uint8)
    for i, v in enumerate(values):
        if not isinstance(v, str) or not _MAC_RE.match(v):
            raise _fail(f"{key}[{i}]", f"{v!r} is not a MAC address like 02:00:00:00:00:01")
        b = bytes.fromhex(v.replace(":", ""))
        if unicast is True and b[0] & 1:
            raise _fail(f"{key}[{i}]", f"{v} is a group address (use broadcast_share / multicast_share)")
        if unicast is False and not b[0] & 1:
            raise _fail(f"{key}[{i}]", f"{v} is not a multicast address (first byte odd)")
        out[i] = np.frombuffer(b, np.uint8)
    return out


def _cdf(weights: Sequence[float], key: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise _fail(key, "weights must be non-negative numbers with a positive sum")
    cum = np.cumsum(w) / w.sum()
    cdf = np.minimum(np.round(cum * _ONE), _ONE).astype(np.int64)
    cdf[-1] = _ONE
    return cdf


def _int_in(key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise _fail(key, f"{v!r} is not allowed (an integer in {lo}..{hi})")
    return int(v)


def _share(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise _fail(key, f"{v!r} is not allowed (a fraction in 0..1)")
    return float(v)


def _sizes(v: Any) -> tuple[int, np.ndarray, np.ndarray]:
    allowed = f"an int {MIN_SIZE}..{MAX_SIZE}, 'imix', {{uniform = [lo, hi]}} or {{size = weight, ...}}"
    if isinstance(v, str):
        if v.lower() != "imix":
            raise _fail("sizes", f"{v!r} is not allowed ({allowed})")
        v = IMIX
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        s = _int_in("sizes", v, MIN_SIZE, MAX_SIZE)
        return 0, np.array([s], np.int64), np.array([_ONE], np.int64)
    if isinstance(v, Mapping):
        if set(v) == {"uniform"}:
            rng = v["uniform"]
            if not isinstance(rng, Sequence) or len(rng) != 2:
                raise _fail("sizes.uniform", f"{rng!r} is not allowed ([lo, hi])")
            lo = _int_in("sizes.uniform[0]", rng[0], MIN_SIZE, MAX_SIZE)
            hi = _int_in("sizes.uniform[1]", rng[1], lo, MAX_SIZE)
            return 1, np.array([lo, hi], np.int64), np.zeros(0, np.int64)
        if set(v) == {"fixed"}:
            return _sizes(v["fixed"])
        vals, weights = [], []
        for k, w in v.items():
            try:
                size = int(k)
            except (TypeError, ValueError):
                raise _fail("sizes", f"key {k!r} is not allowed ({allowed})") from None
            vals.append(_int_in(f"sizes.{k}", size, MIN_SIZE, MAX_SIZE))
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
                raise _fail(f"sizes.{k}", f"weight {w!r} is not allowed (a non-negative number)")
            weights.append(float(w))
        return 0, np.array(vals, np.int64), _cdf(weights, "sizes")
    raise _fail("sizes", f"{v!r} is not allowed ({allowed})")


def _rate(rate: Any, link: str | None, burst: int) -> tuple[str, int, int, int, int]:
    """(link, mode, q, r, den) with the schedule increment q + r/den ps per burst (pps)."""
    if link is not None and link not in LINK_BIT_PS:
        raise _fail("link", f"{link!r} is not allowed (one of {', '.join(LINK_BIT_PS)})")
    if isinstance(rate, str) and rate.strip() in LINK_BIT_PS:
        name = rate.strip()
        if link is not None and link != name:
            raise _fail("rate", f"{rate!r} is the line rate of a {name} link, but link is {link!r}")
        return name, _MODE_LINE, 0, 0, 1
    link = link or "10G"
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        value, unit = Fraction(str(rate)), "pps"
    elif isinstance(rate, str) and (m := _RATE_RE.match(rate)):
        value, unit = Fraction(m.group(1)) * _UNITS[m.group(2)], m.group(3)
    else:
        allowed = f"a link's line rate {', '.join(LINK_BIT_PS)}; '2.5Gbps'; '1.5Mpps'; a number of packets/s"
        raise _fail("rate", f"{rate!r} is not allowed ({allowed})")
    if value <= 0:
        raise _fail("rate", f"{rate!r} is not allowed (must be positive)")
    if unit == "bps":
        if value.denominator != 1 or value > 10**12:
            raise _fail("rate", f"{rate!r} is not allowed (a whole number of bits/s up to 1 Tbps)")
        return link, _MODE_BPS, 0, 0, int(value)
    period = Fraction(burst * 10**12) / value  # ps from one burst to the next
    if period.denominator >= 2**40 or period.numerator >= 2**62:
        raise _fail("rate", f"{rate!r} is not allowed (too fine a fraction of a packet per second)")
    q, r = divmod(period.numerator, period.denominator)
    return link, _MODE_PPS, q, r, period.denominator


def _plan(p: TrafficProfile) -> _Plan:
    _int_in("frames", p.frames, 0, 1 << 40)
    burst = _int_in("burst", p.burst, 1, 1 << 20)
    _int_in("start_ns", p.start_ns, 0, 2**62)
    _int_in("pcp", p.pcp, 0, 7)
    link, mode, q, r, den = _rate(p.rate, p.link, burst)
    size_mode, size_vals, size_cdf = _sizes(p.sizes)
    bshare = _share("broadcast_share", p.broadcast_share)
    mshare = _share("multicast_share", p.multicast_share)
    if bshare + mshare > 1.0:
        raise _fail("multicast_share", f"broadcast_share + multicast_share = {bshare + mshare} is over 1")
    dst = _macs("dst", p.dst, unicast=True)
    if len(dst) == 0 and bshare + mshare < 1.0:
        raise _fail("dst", "is empty but some frames are unicast (broadcast_share + multicast_share < 1)")
    mc = _macs("multicast", p.multicast, unicast=False)
    if len(mc) == 0 and mshare > 0:
        raise _fail("multicast", "is empty but multicast_share > 0")
    src = _macs("src", p.src, unicast=True)
    if len(src) == 0:
        raise _fail("src", "needs at least one source MAC")
    if p.dst_dist == "uniform":
        dst_cdf = _cdf(np.ones(len(dst)), "dst") if len(dst) else np.array([_ONE], np.int64)
    elif p.dst_dist == "zipf":
        if isinstance(p.zipf_s, bool) or not isinstance(p.zipf_s, (int, float)) or not 0 <= p.zipf_s <= 10:
            raise _fail("zipf_s", f"{p.zipf_s!r} is not allowed (an exponent in 0..10)")
        dst_cdf = _cdf(np.arange(1, len(dst) + 1, dtype=np.float64) ** -float(p.zipf_s), "dst")
    else:
        raise _fail("dst_dist", f"{p.dst_dist!r} is not allowed (uniform or zipf)")
    if isinstance(p.vlans, str) or not isinstance(p.vlans, Sequence) or len(p.vlans) == 0:
        raise _fail("vlans", f"{p.vlans!r} is not allowed (a non-empty list of VIDs 0..4095, 0 = untagged)")
    vlans = np.array([_int_in(f"vlans[{i}]", v, 0, 4095) for i, v in enumerate(p.vlans)], np.int64)
    n_templates = (len(dst) + len(mc) + 1) * len(vlans) * len(src)
    if n_templates > MAX_TEMPLATES:
        raise _fail("dst", f"(dst + multicast + 1) x vlans x src = {n_templates} header templates, over "
                           f"{MAX_TEMPLATES}: use fewer addresses or VLANs")  # fmt: skip
    templates, csum, tagged = _templates(dst, mc, vlans, src, int(p.pcp))
    return _Plan(
        link=link, bit_ps=LINK_BIT_PS[link], mode=mode, rate_q=q, rate_r=r, rate_den=den,
        size_mode=size_mode, size_vals=size_vals, size_cdf=size_cdf, dst_cdf=dst_cdf,
        n_dst=len(dst), n_mc=len(mc), n_vl=len(vlans), n_src=len(src), templates=templates,
        tmpl_csum=csum, tmpl_tagged=tagged,
        bcast_thr=round(bshare * _ONE), mcast_thr=round((bshare + mshare) * _ONE),
    )  # fmt: skip


def _templates(
    dst: np.ndarray, mc: np.ndarray, vlans: np.ndarray, src: np.ndarray, pcp: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The constant 56 header bytes of every (destination, VLAN, source) combination.

    Destinations are the unicast list, then the multicast list, then broadcast. IPv4 addresses:
    source 10.0.s>>8.s&255; destination 10.1.d>>8.d&255, 239.x.y.z from a multicast MAC's low
    23 bits, or 255.255.255.255. The per-frame fields are left zero.
    """
    macs = np.concatenate([dst, mc, np.full((1, 6), 0xFF, np.uint8)])
    n_d, n_v, n_s = len(macs), len(vlans), len(src)
    d_idx, v_idx, s_idx = (a.ravel() for a in np.meshgrid(np.arange(n_d), np.arange(n_v), np.arange(n_s),
                                                          indexing="ij"))  # fmt: skip
    h = np.zeros((len(d_idx), TEMPLATE_BYTES), np.uint8)
    h[:, 0:6] = macs[d_idx]
    h[:, 6:12] = src[s_idx]
    vid = vlans[v_idx]
    tagged = vid != 0
    tci = (pcp << R.VLAN_PRIO_SHIFT) | vid
    ip_dst = np.zeros((len(d_idx), 4), np.int64)
    uni = d_idx < len(dst)
    ip_dst[uni] = np.stack([np.full(uni.sum(), 10), np.ones(uni.sum(), np.int64), d_idx[uni] >> 8,
                            d_idx[uni] & 0xFF], axis=1)  # fmt: skip
    mcast = (d_idx >= len(dst)) & (d_idx < len(dst) + len(mc))
    ip_dst[mcast, 0] = 239
    ip_dst[mcast, 1:] = macs[d_idx[mcast]][:, 3:6] & np.array([0x7F, 0xFF, 0xFF])
    ip_dst[d_idx == n_d - 1] = 255
    ip_src = np.stack([np.full(len(d_idx), 10), np.zeros(len(d_idx), np.int64), s_idx >> 8, s_idx & 0xFF], 1)
    rest = np.zeros((len(d_idx), 42), np.uint8)  # from the ethertype on, untagged layout
    rest[:, 0:2] = (0x08, 0x00)
    rest[:, 2] = 0x45
    rest[:, 8] = 0x40
    rest[:, 10] = 64
    rest[:, 11] = 17
    rest[:, 14:18] = ip_src
    rest[:, 18:22] = ip_dst
    rest[:, 24] = UDP_DST_PORT >> 8
    rest[:, 25] = UDP_DST_PORT & 0xFF
    h[~tagged, 12:54] = rest[~tagged]
    h[tagged, 12] = R.ETH_P_8021Q >> 8
    h[tagged, 13] = R.ETH_P_8021Q & 0xFF
    h[tagged, 14] = tci[tagged] >> 8
    h[tagged, 15] = tci[tagged] & 0xFF
    h[tagged, 16:56] = rest[tagged][:, :40]
    csum = 0x4500 + 0x4000 + 0x4011
    csum = csum + (ip_src[:, 0] << 8 | ip_src[:, 1]) + (ip_src[:, 2] << 8 | ip_src[:, 3])
    csum = csum + (ip_dst[:, 0] << 8 | ip_dst[:, 1]) + (ip_dst[:, 2] << 8 | ip_dst[:, 3])
    return h.view("<u8").copy(), csum.astype(np.int64), tagged


# -- kernels ------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _pick(cdf: np.ndarray, u: int) -> int:
    """First index with u < cdf[k] (binary search over a 32-bit fixed-point CDF)."""
    lo = 0
    hi = len(cdf) - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < cdf[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


# state slots carried between batches
_S_FREE, _S_SCHED, _S_REM, _S_POS = 0, 1, 2, 3


@njit(cache=True)
def _plan_frames(
    raw: np.ndarray,
    size_mode: int,
    size_vals: np.ndarray,
    size_cdf: np.ndarray,
    mode: int,
    bit_ps: int,
    burst: int,
    rate_q: int,
    rate_r: int,
    rate_den: int,
    start_ns: int,
    state: np.ndarray,
    lengths: np.ndarray,
    offsets: np.ndarray,
    ts: np.ndarray,
) -> int:
    """Sizes, offsets and exact timestamps of ``len(ts)`` frames; returns the buffer size.

    Frames start on 8-byte boundaries (the gap bytes belong to no frame). ``raw`` is empty
    when the size is fixed (no randomness needed).
    """
    free = state[_S_FREE]
    sched = state[_S_SCHED]
    rem = state[_S_REM]
    pos = state[_S_POS]
    total = np.int64(0)
    fixed = len(raw) == 0
    for i in range(len(ts)):
        u = 0 if fixed else np.int64(raw[i] & np.uint64(0xFFFFFFFF))
        if size_mode == 1:
            lo = size_vals[0]
            size = lo + ((u * (size_vals[1] - lo + 1)) >> 32)
        else:
            size = size_vals[_pick(size_cdf, u)]
        cap = size - 4
        lengths[i] = cap
        offsets[i] = total
        total += (cap + 7) & ~7
        start = free
        if pos == 0 and mode != 0 and sched > start:
            start = sched
        if mode == 1 and pos == 0:
            sched += rate_q
            rem += rate_r
            if rem >= rate_den:
                rem -= rate_den
                sched += 1
        wire_bits = (size + 20) * 8
        if mode == 2:
            p = wire_bits * 1_000_000_000_000
            sched += p // rate_den
            rem += p % rate_den
            if rem >= rate_den:
                rem -= rate_den
                sched += 1
        ts[i] = start_ns + start // 1000
        free = start + wire_bits * bit_ps
        pos += 1
        if pos == burst:
            pos = 0
    state[_S_FREE] = free
    state[_S_SCHED] = sched
    state[_S_REM] = rem
    state[_S_POS] = pos
    return total


@njit(cache=True, inline="always")
def _be16_at(v: int, byte: int) -> np.uint64:
    """A 16-bit big-endian field at byte ``byte`` of a little-endian 64-bit word."""
    return np.uint64(((v >> 8) & 0xFF) | ((v & 0xFF) << 8)) << np.uint64(8 * byte)


@njit(cache=True)
def _fill(
    out: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    raw: np.ndarray,
    first_index: int,
    templates: np.ndarray,
    tmpl_csum: np.ndarray,
    tmpl_tagged: np.ndarray,
    dst_cdf: np.ndarray,
    n_dst: int,
    n_mc: int,
    n_vl: int,
    n_src: int,
    bcast_thr: int,
    mcast_thr: int,
) -> None:
    """Write each frame's headers: its template's seven 64-bit words with the per-frame fields.

    Frames start on 8-byte boundaries of the zeroed ``out``, so a header is seven aligned
    stores. Per frame: IPv4 total length, identification (frame index) and header checksum,
    UDP source port (random) and length, and the frame index (64-bit big-endian) as payload.
    Two random words per frame.
    """
    words = out.view(np.uint64)
    for i in range(len(offsets)):
        r0 = raw[2 * i]
        r1 = raw[2 * i + 1]
        u_cls = np.int64(r0 & np.uint64(0xFFFFFFFF))
        u_dst = np.int64(r0 >> np.uint64(32))
        u_vl = np.int64(r1 & np.uint64(0xFFFFFFFF))
        u_src = np.int64(r1 >> np.uint64(32))
        if u_cls < bcast_thr:
            d = n_dst + n_mc
        elif u_cls < mcast_thr:
            d = n_dst + ((u_dst * n_mc) >> 32)
        else:
            d = _pick(dst_cdf, u_dst)
        t = (d * n_vl + ((u_vl * n_vl) >> 32)) * n_src + ((u_src * n_src) >> 32)
        L = np.int64(lengths[i])
        seq = first_index + i
        ident = seq & 0xFFFF
        tagged = tmpl_tagged[t]
        ip_len = L - 18 if tagged else L - 14
        csum = tmpl_csum[t] + ip_len + ident
        csum = (csum & 0xFFFF) + (csum >> 16)
        csum = (csum & 0xFFFF) + (csum >> 16)
        csum = ~csum & 0xFFFF
        sport = 1024 + (u_vl & 0x3FF)
        udp_len = ip_len - 20
        sq = np.uint64(seq)
        # the sequence number big-endian: byte-swapped into the little-endian words
        swapped = np.uint64(0)
        for k in range(8):
            swapped |= ((sq >> np.uint64(8 * k)) & np.uint64(0xFF)) << np.uint64(8 * (7 - k))
        w = offsets[i] >> 3
        w2 = templates[t, 2]
        w3 = templates[t, 3]
        w4 = templates[t, 4]
        w5 = templates[t, 5]
        w6 = templates[t, 6]
        if tagged:
            w2 |= _be16_at(ip_len, 4) | _be16_at(ident, 6)
            w3 |= _be16_at(csum, 4)
            w4 |= _be16_at(sport, 6)
            w5 |= _be16_at(udp_len, 2) | (swapped << np.uint64(48))
            w6 |= swapped >> np.uint64(16)
        else:
            w2 |= _be16_at(ip_len, 0) | _be16_at(ident, 2)
            w3 |= _be16_at(csum, 0)
            w4 |= _be16_at(sport, 2) | _be16_at(udp_len, 6)
            w5 |= swapped << np.uint64(16)
            w6 |= swapped >> np.uint64(48)
        words[w] = templates[t, 0]
        words[w + 1] = templates[t, 1]
        words[w + 2] = w2
        words[w + 3] = w3
        words[w + 4] = w4
        words[w + 5] = w5
        words[w + 6] = w6


# -- public -------------------------------------------------------------------------------------
class TrafficGenerator:
    """A seeded stream of frames of one profile; :meth:`next_batch` continues it in time.

    ``TrafficGenerator(p, seed).next_batch(a)`` then ``.next_batch(b)`` gives exactly the frames
    (bytes and timestamps) of ``generate(p, a + b, seed)``.
    """

    def __init__(self, profile: TrafficProfile, seed: int = 0) -> None:
        if not isinstance(profile, TrafficProfile):
            raise ConfigError(f"expected a TrafficProfile, got {type(profile).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed {seed!r} is not allowed (a non-negative integer)")
        self.profile = profile
        ss = np.random.SeedSequence(int(seed))
        size_seq, choice_seq = ss.spawn(2)
        self._size_bits = np.random.PCG64(size_seq)
        self._choice_bits = np.random.PCG64(choice_seq)
        self._state = np.zeros(4, np.int64)
        self.index = 0  # frames generated so far

    def next_batch(self, frames: int, out: np.ndarray | None = None) -> Batch:
        """The next ``frames`` frames of the stream, in one buffer.

        The buffer is freshly allocated, or ``out`` (a 1-D uint8 array, zeroed and reused; too
        small is a ConfigError naming the size needed): reusing one buffer for a long stream
        saves the first-touch page faults of a new one, which cost more than the generation.
        The returned Batch's ``data`` is then a view of ``out``.
        """
        n = _int_in("frames", frames, 0, MAX_BATCH_FRAMES)
        p = self.profile
        plan = p._plan
        try:
            lengths = np.empty(n, np.uint32)
            offsets = np.empty(n, np.int64)
            ts = np.empty(n, np.int64)
        except MemoryError:
            raise _fail("frames", f"{n} frames need {20 * n} bytes of arrays: not available") from None
        fixed = plan.size_mode == 0 and len(plan.size_vals) == 1
        raw = np.zeros(0, np.uint64) if fixed else self._size_bits.random_raw(n)
        total = _plan_frames(
            raw, plan.size_mode, plan.size_vals, plan.size_cdf, plan.mode,
            plan.bit_ps, p.burst, plan.rate_q, plan.rate_r, plan.rate_den, p.start_ns, self._state,
            lengths, offsets, ts,
        )  # fmt: skip
        if out is None:
            try:
                data = np.zeros(total, np.uint8)
            except MemoryError:
                raise _fail(
                    "frames", f"{n} frames need {total} bytes: not available (generate fewer)"
                ) from None
        else:
            if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 1:
                raise ConfigError("out must be a 1-D uint8 numpy array")
            if len(out) < total or not out.flags.c_contiguous or out.ctypes.data % 8:
                raise ConfigError(f"out must be C-contiguous, 8-byte aligned and hold {total} bytes "
                                  f"(it has {len(out)})")  # fmt: skip
            data = out[:total]
            data[:] = 0
        for a in range(0, n, CHUNK):
            b = min(n, a + CHUNK)
            raw = self._choice_bits.random_raw(2 * (b - a))
            _fill(data, offsets[a:b], lengths[a:b], raw, self.index + a, plan.templates, plan.tmpl_csum,
                  plan.tmpl_tagged, plan.dst_cdf, plan.n_dst, plan.n_mc, plan.n_vl, plan.n_src,
                  plan.bcast_thr, plan.mcast_thr)  # fmt: skip
        self.index += n
        return Batch(data, offsets, lengths, ts, validate=False)


def generate(profile: TrafficProfile, frames: int | None = None, seed: int = 0) -> Batch:
    """``frames`` (default ``profile.frames``) frames of ``profile``, deterministic by ``seed``."""
    return TrafficGenerator(profile, seed).next_batch(profile.frames if frames is None else frames)


_KEYS = tuple(f.name for f in fields(TrafficProfile) if not f.name.startswith("_"))


def profile_from_scenario(generator: Mapping[str, Any] | Any) -> TrafficProfile:
    """A profile from a scenario's ``[traffic.generator]`` table (or a ``TrafficSpec``).

    Keys are :class:`TrafficProfile`'s fields; an unknown key is a ConfigError listing them.
    """
    table = getattr(generator, "generator", generator)
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"traffic generator: must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise _fail(unknown[0], f"unknown key; allowed: {', '.join(_KEYS)}")
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items()}
    return TrafficProfile(**kw)


def from_scenario(generator: Mapping[str, Any] | Any, seed: int = 0) -> Batch:
    """The frames a scenario's ``[traffic.generator]`` table (or ``TrafficSpec``) describes."""
    return generate(profile_from_scenario(generator), seed=seed)
