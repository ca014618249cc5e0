"""Capture files: pcap and pcapng in and out of a :class:`~sriov.batch.Batch`.

Reading never does Python work per frame: the whole file is loaded into one numpy buffer (or
memory-mapped), a Numba scan walks the record headers into offset/length/timestamp arrays, and
the Batch's ``data`` *is* that buffer (frames are views into the file bytes, no copy).

Formats read (chosen by the magic number, :func:`read_pcap` handles both):

* pcap: both byte orders, microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``) magic.
  The link type's upper 16 bits (libpcap's FCS-length annotation) are ignored; when the
  "FCS present" bit is set the FCS bytes are cut off the frames.
* pcapng: any number of sections (each Section Header Block in either byte order), Interface
  Description Blocks with ``if_tsresol`` (powers of 10 and of 2) and ``if_tsoffset``, Enhanced
  Packet Blocks, Simple Packet Blocks (no timestamp in the format: they get the timestamp of the
  previous packet of the section, 0 before any) and obsolete Packet Blocks; every other block
  type is skipped.

Link types: a Batch holds Ethernet frames, so only frames captured on an Ethernet interface
(link type 1) go into it. Frames on any other interface are **skipped and counted**
(``Capture.skipped``, with the link types seen in ``Capture.skipped_link_types``); a capture
that has frames but none of them Ethernet raises :class:`~sriov.errors.CaptureError` naming
the link type (a pcap file has a single link type, so a non-Ethernet pcap always raises).

Damage: with ``strict=True`` (the default) any malformed structure raises
:class:`~sriov.errors.CaptureError` naming the byte offset and what was wrong: bad magic,
truncated file header, record or block, a captured length over the file's snaplen or over
262144 bytes (libpcap's limit for Ethernet), a captured length that does not fit in its block,
a block total length that is too small, not a multiple of 4, runs past the end or disagrees
with the trailing copy, an unknown interface id, a bad byte-order magic or version, an
``if_tsresol`` out of range, a timestamp outside int64 nanoseconds (years 1678 to 2262; pcap's
32-bit seconds always fit), more than 65536 interfaces in one section.
With ``strict=False`` the frames before the damage are returned and ``Capture.warning`` holds
the same message (``None`` when the file was whole); errors in the file header still raise.

Writing: :func:`write_pcap` (microsecond or nanosecond magic, little-endian) and
:func:`write_pcapng` (one section, one Ethernet interface, ``if_tsresol`` 9 or 6, and an
optional per-frame ``opt_comment``, e.g. the drop reason). Both build the whole file in one
buffer with a Numba kernel and write it with one call.
"""

from __future__ import annotations

import mmap as _mmap
import os
from collections.abc import Sequence
from typing import IO

import numpy as np
from numba import njit

from sriov.batch import Batch
from sriov.errors import CaptureError, ConfigError

__all__ = [
    "LINKTYPE_ETHERNET",
    "MAX_CAPLEN",
    "Capture",
    "read_pcap",
    "write_pcap",
    "write_pcapng",
]

LINKTYPE_ETHERNET = 1
#: libpcap's largest believable captured length for Ethernet (``MAXIMUM_SNAPLEN``): longer is damage.
MAX_CAPLEN = 262144
#: interfaces (IDBs) per pcapng section this reader takes; more is a CaptureError
MAX_INTERFACES = 65536
#: timestamps are int64 nanoseconds: about +-292 years around 1970 (a pcapng beyond is damage)
MAX_TS_SECONDS = (2**63 - 1) // 10**9 - 1

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_HEADER_LEN = 24
PCAP_RECORD_LEN = 16
PCAP_FCS_PRESENT = 0x04000000  # link type word: bit 26 set -> bits 28..31 give the FCS in 16-bit words

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BOM = 0x1A2B3C4D
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
OPT_SHB_USERAPPL = 4
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

_LINK_NAMES = {
    0: "NULL", 1: "Ethernet", 9: "PPP", 101: "raw IP", 104: "Cisco HDLC", 105: "802.11",
    113: "Linux cooked", 127: "802.11 radiotap", 129: "ARCNET Linux", 276: "Linux cooked v2",
}  # fmt: skip

# Error codes the scans return (the message is built here, in Python, once).
_OK = 0
_E_TRUNC_RECORD = 1
_E_TRUNC_DATA = 2
_E_OVER_SNAPLEN = 3
_E_ABSURD = 4
_E_BLOCK_TRUNC = 10
_E_BLOCK_LEN = 11
_E_BLOCK_PAST_END = 12
_E_TRAILER = 13
_E_CAPLEN_BLOCK = 14
_E_IFACE = 15
_E_BOM = 16
_E_VERSION = 17
_E_IDB_SHORT = 18
_E_TSRESOL = 19
_E_PB_SHORT = 20
_E_NO_SHB = 21
_E_INTERFACES = 23
_E_TS_RANGE = 24
_E_CAPACITY = 22  # cannot happen (the arrays hold the most records a file of its size can have)


class Capture(Batch):
    """A :class:`Batch` read from a capture file, with what the reader had to say about it.

    ``format`` is ``"pcap"`` or ``"pcapng"``; ``skipped`` counts frames left out because their
    interface is not Ethernet (``skipped_link_types`` lists those link types); ``warning`` is
    the damage message of a ``strict=False`` partial read, ``None`` when the file was whole;
    ``interfaces`` (pcapng) is the interface index of each frame within its section.
    """

    __slots__ = ("format", "interfaces", "skipped", "skipped_link_types", "warning")

    format: str
    interfaces: np.ndarray
    skipped: int
    skipped_link_types: tuple[int, ...]
    warning: str | None

    def __repr__(self) -> str:
        extra = f", {self.skipped} non-Ethernet skipped" if self.skipped else ""
        warn = ", PARTIAL" if self.warning else ""
        return f"<Capture {self.format} {len(self)} frames, {self.total_bytes} bytes{extra}{warn}>"


# -- byte helpers (inlined into the scans; int64 everywhere so the no-JIT run never wraps) ---------
@njit(cache=True, inline="always")
def _u16(b: np.ndarray, o: int, le: bool) -> int:
    x0 = np.int64(b[o])
    x1 = np.int64(b[o + 1])
    if le:
        return x0 | (x1 << 8)
    return (x0 << 8) | x1


@njit(cache=True, inline="always")
def _u32(b: np.ndarray, o: int, le: bool) -> int:
    x0 = np.int64(b[o])
    x1 = np.int64(b[o + 1])
    x2 = np.int64(b[o + 2])
    x3 = np.int64(b[o + 3])
    if le:
        return x0 | (x1 << 8) | (x2 << 16) | (x3 << 24)
    return (x0 << 24) | (x1 << 16) | (x2 << 8) | x3


@njit(cache=True, inline="always")
def _put16(b: np.ndarray, o: int, v: int) -> None:
    b[o] = v & 0xFF
    b[o + 1] = (v >> 8) & 0xFF


@njit(cache=True, inline="always")
def _put32(b: np.ndarray, o: int, v: int) -> None:
    b[o] = v & 0xFF
    b[o + 1] = (v >> 8) & 0xFF
    b[o + 2] = (v >> 16) & 0xFF
    b[o + 3] = (v >> 24) & 0xFF


# -- pcap ---------------------------------------------------------------------------------------
@njit(cache=True)
def _pcap_scan(
    buf: np.ndarray,
    le: bool,
    ns_per_frac: int,
    snaplen: int,
    fcs: int,
    out_off: np.ndarray,
    out_len: np.ndarray,
    out_ts: np.ndarray,
) -> tuple[int, int, int, int, int]:
    """Walk the records after the file header: (count, error, error offset, value, limit).

    One pass: the output arrays are sized for the most records the file could hold (16-byte
    headers and nothing else), so only the pages actually written are ever touched.
    """
    size = len(buf)
    o = PCAP_HEADER_LEN
    n = 0
    cap = len(out_off)
    while o < size:
        if n >= cap:
            return n, _E_CAPACITY, o, n, cap
        if o + PCAP_RECORD_LEN > size:
            return n, _E_TRUNC_RECORD, o, size - o, PCAP_RECORD_LEN
        caplen = _u32(buf, o + 8, le)
        if caplen > MAX_CAPLEN:
            return n, _E_ABSURD, o, caplen, MAX_CAPLEN
        if snaplen > 0 and caplen > snaplen:
            return n, _E_OVER_SNAPLEN, o, caplen, snaplen
        if o + PCAP_RECORD_LEN + caplen > size:
            return n, _E_TRUNC_DATA, o, caplen, size - o - PCAP_RECORD_LEN
        sec = _u32(buf, o, le)
        frac = _u32(buf, o + 4, le)
        out_off[n] = o + PCAP_RECORD_LEN
        out_len[n] = caplen - fcs if caplen > fcs else 0
        out_ts[n] = sec * 1_000_000_000 + frac * ns_per_frac
        n += 1
        o += PCAP_RECORD_LEN + caplen
    return n, _OK, 0, 0, 0


# -- pcapng -------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _ts_to_ns(ts: int, shift: int, mul: int, div: int, offset_s: int) -> int:
    """Interface time units to ns: 2^-shift s units when ``shift`` >= 0, else ``ts * mul // div``."""
    if shift >= 0:
        sec = ts >> shift
        frac = ts & ((np.int64(1) << shift) - 1)
        if shift > 30:  # keep frac * 10^9 inside 64 bits (sub-ns bits are dropped)
            frac >>= shift - 30
            shift = 30
        ns = sec * 1_000_000_000 + ((frac * 1_000_000_000) >> shift)
    elif div == 1:
        ns = ts * mul
    else:
        ns = ts // div
    return ns + offset_s * 1_000_000_000


@njit(cache=True)
def _pcapng_scan(
    buf: np.ndarray,
    out_off: np.ndarray,
    out_len: np.ndarray,
    out_ts: np.ndarray,
    out_if: np.ndarray,
    skipped_types: np.ndarray,
    iftab: np.ndarray,
) -> tuple[int, int, int, int, int, int]:
    """Walk every block: (kept, error, error offset, value, limit, skipped).

    One pass into output arrays sized for the most packets the file could hold (16-byte blocks).
    ``iftab`` (interfaces x 7 int64) holds the current section's interfaces: link type,
    snaplen, and the timestamp conversion (shift, multiplier, divisor, offset in seconds, units
    per second).
    ``skipped_types`` (length 8) collects up to 8 distinct non-Ethernet link types seen.
    """
    size = len(buf)
    o = 0
    n = 0
    skipped = 0
    n_skip_types = 0
    cap = len(out_off)
    le = True
    in_section = False
    n_if = 0
    # one table, allocated by the caller and never reassigned here: Numba then keeps the column
    # views out of the per-block reference counting (twice as fast as a growable table)
    if_link = iftab[:, 0]
    if_snap = iftab[:, 1]
    if_shift = iftab[:, 2]
    if_mul = iftab[:, 3]
    if_div = iftab[:, 4]
    if_off = iftab[:, 5]
    if_per_s = iftab[:, 6]
    last_ts = np.int64(0)
    while o < size:
        if n >= cap:
            return n, _E_CAPACITY, o, n, cap, skipped
        if o + 12 > size:
            return n, _E_BLOCK_TRUNC, o, size - o, 12, skipped
        # The SHB's type reads the same in both byte orders; its byte-order magic sets `le`.
        btype_le = _u32(buf, o, True)
        if btype_le == PCAPNG_SHB:
            if o + 28 > size:
                return n, _E_BLOCK_TRUNC, o, size - o, 28, skipped
            bom_le = _u32(buf, o + 8, True)
            if bom_le == PCAPNG_BOM:
                le = True
            elif _u32(buf, o + 8, False) == PCAPNG_BOM:
                le = False
            else:
                return n, _E_BOM, o, bom_le, PCAPNG_BOM, skipped
            if _u16(buf, o + 12, le) != 1:
                return n, _E_VERSION, o, _u16(buf, o + 12, le), 1, skipped
            shb_len = _u32(buf, o + 4, le)
            if shb_len < 28 or shb_len % 4 != 0:
                return n, _E_BLOCK_LEN, o, shb_len, 28, skipped
            in_section = True
            n_if = 0
            last_ts = 0
        elif not in_section:
            return n, _E_NO_SHB, o, btype_le, PCAPNG_SHB, skipped
        btype = _u32(buf, o, le)
        blen = _u32(buf, o + 4, le)
        if blen < 12 or blen % 4 != 0:
            return n, _E_BLOCK_LEN, o, blen, 12, skipped
        if o + blen > size:
            return n, _E_BLOCK_PAST_END, o, blen, size - o, skipped
        trailer = _u32(buf, o + blen - 4, le)
        if trailer != blen:
            return n, _E_TRAILER, o, trailer, blen, skipped
        body = o + 8
        body_end = o + blen - 4
        if btype == PCAPNG_IDB:
            if body + 8 > body_end:
                return n, _E_IDB_SHORT, o, blen, 20, skipped
            if n_if == len(iftab):
                return n, _E_INTERFACES, o, n_if + 1, len(iftab), skipped
            if_link[n_if] = _u16(buf, body, le)
            if_snap[n_if] = _u32(buf, body + 4, le)
            pow2 = False
            exp = np.int64(6)  # default resolution: microseconds
            if_off[n_if] = 0
            p = body + 8
            while p + 4 <= body_end:
                code = _u16(buf, p, le)
                olen = _u16(buf, p + 2, le)
                if code == OPT_ENDOFOPT or p + 4 + olen > body_end:
                    break
                if code == OPT_IF_TSRESOL and olen >= 1:
                    r = np.int64(buf[p + 4])
                    pow2 = (r & 0x80) != 0
                    exp = r & 0x7F
                    if (pow2 and exp > 62) or (not pow2 and exp > 18):
                        return n, _E_TSRESOL, o, r, 0, skipped
                elif code == OPT_IF_TSOFFSET and olen >= 8:
                    lo = _u32(buf, p + 4, le)
                    hi = _u32(buf, p + 8, le)
                    if le:
                        if_off[n_if] = (hi << 32) | lo
                    else:
                        if_off[n_if] = (lo << 32) | hi
                p += 4 + ((olen + 3) & ~3)
            scale = np.int64(1)
            for _ in range(abs(9 - exp)):
                scale *= 10
            if abs(if_off[n_if]) > MAX_TS_SECONDS:
                return n, _E_TS_RANGE, o, if_off[n_if], MAX_TS_SECONDS, skipped
            per_s = np.int64(1)
            if pow2:
                per_s = per_s << exp
            else:
                for _ in range(exp):
                    per_s *= 10
            if_per_s[n_if] = per_s
            if_shift[n_if] = exp if pow2 else -1
            if_mul[n_if] = scale if exp <= 9 else 1
            if_div[n_if] = scale if exp > 9 else 1
            n_if += 1
        # not `btype in (...)`: Numba compiles that to a loop over a tuple, 3x slower per block
        elif btype == PCAPNG_EPB or btype == PCAPNG_PB or btype == PCAPNG_SPB:  # noqa: SIM109
            if btype == PCAPNG_SPB:
                if body + 4 > body_end:
                    return n, _E_PB_SHORT, o, blen, 16, skipped
                iface = 0
                data = body + 4
                origlen = _u32(buf, body, le)
                caplen = origlen
                if n_if > 0 and if_snap[0] > 0 and if_snap[0] < caplen:
                    caplen = if_snap[0]
                ts_ns = last_ts
            else:
                if body + 20 > body_end:
                    return n, _E_PB_SHORT, o, blen, 32, skipped
                iface = _u16(buf, body, le) if btype == PCAPNG_PB else _u32(buf, body, le)
                data = body + 20
                caplen = _u32(buf, body + 12, le)
                ts_ns = 0
            if iface >= n_if:
                return n, _E_IFACE, o, iface, n_if, skipped
            if caplen > MAX_CAPLEN:
                return n, _E_ABSURD, o, caplen, MAX_CAPLEN, skipped
            if data + caplen > body_end:
                return n, _E_CAPLEN_BLOCK, o, caplen, body_end - data, skipped
            if if_snap[iface] > 0 and caplen > if_snap[iface]:
                return n, _E_OVER_SNAPLEN, o, caplen, if_snap[iface], skipped
            if btype != PCAPNG_SPB:
                hi = _u32(buf, body + 4, le)
                lo = _u32(buf, body + 8, le)
                # timestamps must fit int64 nanoseconds (years 1678..2262): check before converting
                secs = ((hi << 32) | lo) // if_per_s[iface] + if_off[iface]
                if hi >= 0x80000000 or abs(secs) > MAX_TS_SECONDS:
                    return n, _E_TS_RANGE, o, secs, MAX_TS_SECONDS, skipped
                ts_ns = _ts_to_ns(
                    (hi << 32) | lo, if_shift[iface], if_mul[iface], if_div[iface], if_off[iface]
                )
                last_ts = ts_ns
            if if_link[iface] == LINKTYPE_ETHERNET:
                out_off[n] = data
                out_len[n] = caplen
                out_ts[n] = ts_ns
                out_if[n] = iface
                n += 1
            else:
                skipped += 1
                seen = False
                for k in range(n_skip_types):
                    if skipped_types[k] == if_link[iface]:
                        seen = True
                if not seen and n_skip_types < len(skipped_types):
                    skipped_types[n_skip_types] = if_link[iface]
                    n_skip_types += 1
        o += blen
    return n, _OK, 0, 0, 0, skipped


# -- reading ------------------------------------------------------------------------------------
PathOrBuffer = str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray


def _load(source: PathOrBuffer, use_mmap: bool) -> tuple[np.ndarray, str]:
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 1:
            raise ConfigError("a capture buffer must be a 1-D uint8 array")
        return np.ascontiguousarray(source), "<buffer>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return np.frombuffer(source, dtype=np.uint8), "<buffer>"
    if not isinstance(source, (str, os.PathLike)):
        # np.fromfile(123) would read file descriptor 123
        raise ConfigError(
            "a capture source must be a path (str or os.PathLike) or the file's bytes, "
            f"got {type(source).__name__}"
        )
    name = str(source)
    try:
        if use_mmap:
            with open(source, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return np.zeros(0, np.uint8), name
                # Copy-on-write: frames are writable views, the file is never changed.
                m = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_COPY)
            return np.frombuffer(m, dtype=np.uint8), name
        return np.fromfile(source, dtype=np.uint8), name
    except OSError as exc:
        raise CaptureError(f"{name}: cannot read: {exc.strerror or exc}") from None


def _link_name(lt: int) -> str:
    return f"{lt} ({_LINK_NAMES[lt]})" if lt in _LINK_NAMES else str(lt)


def _message(name: str, kind: str, err: int, off: int, a: int, b: int) -> str:
    what = {
        _E_TRUNC_RECORD: f"truncated record header ({a} of {b} bytes before end of file)",
        _E_TRUNC_DATA: f"truncated record: captured length {a} but only {b} bytes left",
        _E_OVER_SNAPLEN: f"captured length {a} is larger than the snaplen {b}",
        _E_ABSURD: f"captured length {a} is absurd (more than {b})",
        _E_BLOCK_TRUNC: f"truncated block header ({a} of {b} bytes before end of file)",
        _E_BLOCK_LEN: f"bad block total length {a} (must be a multiple of 4 and at least {b})",
        _E_BLOCK_PAST_END: f"truncated block: total length {a} but only {b} bytes left",
        _E_TRAILER: f"bad block total length: trailing copy {a} differs from leading {b}",
        _E_CAPLEN_BLOCK: f"captured length {a} does not fit in its block ({b} bytes of room)",
        _E_IFACE: f"packet on interface {a} but the section describes {b} interface(s)",
        _E_BOM: f"bad section byte-order magic {a:#010x} (expected {b:#010x})",
        _E_VERSION: f"unsupported pcapng major version {a} (supported: {b})",
        _E_IDB_SHORT: f"interface description block of {a} bytes is too short (at least {b})",
        _E_TSRESOL: f"if_tsresol {a:#04x} is out of range (10^-0..10^-18 or 2^-0..2^-62)",
        _E_PB_SHORT: f"packet block of {a} bytes is too short (at least {b})",
        _E_NO_SHB: f"block type {a:#010x} before any section header block",
        _E_CAPACITY: f"more than {b} records (internal limit)",
        _E_TS_RANGE: f"timestamp of {a} s is out of range (+-{b} s around 1970: int64 nanoseconds)",
        _E_INTERFACES: f"interface description block number {a} of its section: at most {b} are supported",
    }[err]
    return f"{name}: {kind}: at byte offset {off}: {what}"


def _finish(
    buf: np.ndarray,
    kind: str,
    off: np.ndarray,
    lengths: np.ndarray,
    ts: np.ndarray,
    ifs: np.ndarray,
    skipped: int,
    skipped_types: tuple[int, ...],
    warning: str | None,
) -> Capture:
    cap = Capture(buf, off, lengths, ts, validate=False)
    cap.format = kind
    cap.interfaces = ifs
    cap.skipped = skipped
    cap.skipped_link_types = skipped_types
    cap.warning = warning
    return cap


def read_pcap(
    source: PathOrBuffer, *, strict: bool = True, mmap: bool = False, check_snaplen: bool = True
) -> Capture:
    """Read a pcap or pcapng capture (chosen by its magic number) into a :class:`Capture`.

    ``source`` is a path or the file's bytes. The returned Batch's ``data`` is the file buffer
    itself (frames are zero-copy views into it; read-only when ``source`` is immutable bytes);
    timestamps are nanoseconds since the epoch.
    ``mmap=True`` maps the file copy-on-write instead of reading it. ``check_snaplen=False``
    takes pcap records longer than the file header's snaplen, as tshark does (libpcap refuses
    them); the 262144-byte limit still holds. Raises
    :class:`~sriov.errors.CaptureError` naming the byte offset for a damaged file (with
    ``strict=False``: the frames before the damage, and the message in ``.warning``) and for a
    capture whose frames are all on non-Ethernet interfaces. See the module docstring.
    """
    buf, name = _load(source, mmap)
    if len(buf) < 4:
        raise CaptureError(f"{name}: at byte offset 0: file of {len(buf)} bytes is too short for a capture")
    magic_le = int(buf[:4].view("<u4")[0])
    if magic_le == PCAPNG_SHB:
        return _read_pcapng(buf, name, strict)
    return _read_classic(buf, name, magic_le, strict, check_snaplen)


def _read_classic(
    buf: np.ndarray, name: str, magic_le: int, strict: bool, check_snaplen: bool = True
) -> Capture:
    magic_be = int(buf[:4].view(">u4")[0])
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        le, magic = True, magic_le
    elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        le, magic = False, magic_be
    else:
        raise CaptureError(
            f"{name}: at byte offset 0: bad magic {bytes(buf[:4]).hex()} (pcap a1b2c3d4 / a1b23c4d in "
            "either byte order, or pcapng 0a0d0d0a)"
        )
    if len(buf) < PCAP_HEADER_LEN:
        raise CaptureError(
            f"{name}: pcap: at byte offset 0: truncated file header ({len(buf)} of {PCAP_HEADER_LEN} bytes)"
        )
    hdr = buf[:PCAP_HEADER_LEN].view("<u4" if le else ">u4")
    major = int(buf[4:6].view("<u2" if le else ">u2")[0])
    if major != 2:
        raise CaptureError(f"{name}: pcap: at byte offset 4: unsupported version {major} (supported: 2)")
    snaplen = int(hdr[4]) if check_snaplen else 0  # 0: no snaplen check in the scan
    link_word = int(hdr[5])
    link = link_word & 0xFFFF
    fcs = 2 * ((link_word >> 28) & 0xF) if link_word & PCAP_FCS_PRESENT else 0
    ns_per_frac = 1 if magic == PCAP_MAGIC_NS else 1000
    cap = max(0, (len(buf) - PCAP_HEADER_LEN) // PCAP_RECORD_LEN)
    off = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.uint32)
    ts = np.empty(cap, np.int64)
    n, err, eoff, a, b = _pcap_scan(buf, le, ns_per_frac, snaplen, fcs, off, lengths, ts)
    warning = None
    if err != _OK:
        msg = _message(name, "pcap", err, eoff, a, b)
        if strict:
            raise CaptureError(msg)
        warning = msg
    if link != LINKTYPE_ETHERNET and n:
        raise CaptureError(
            f"{name}: pcap: at byte offset 20: link type {_link_name(link)} is not Ethernet "
            f"(1); sriov models an Ethernet port, so none of its {n} frames can be read"
        )
    # views of the first n entries: pages past them were never touched, so cost no memory
    return _finish(buf, "pcap", off[:n], lengths[:n], ts[:n], np.zeros(n, np.int32), 0, (), warning)


def _read_pcapng(buf: np.ndarray, name: str, strict: bool) -> Capture:
    types = np.zeros(8, np.int64)
    cap = len(buf) // 16
    off = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.uint32)
    ts = np.empty(cap, np.int64)
    ifs = np.empty(cap, np.int32)
    iftab = np.zeros((min(MAX_INTERFACES, len(buf) // 20 + 1), 7), np.int64)
    n, err, eoff, a, b, skipped = _pcapng_scan(buf, off, lengths, ts, ifs, types, iftab)
    warning = None
    if err != _OK:
        msg = _message(name, "pcapng", err, eoff, a, b)
        if strict:
            raise CaptureError(msg)
        warning = msg
    skipped_types = tuple(int(t) for t in types if t)
    if n == 0 and skipped:
        links = ", ".join(_link_name(t) for t in skipped_types)
        raise CaptureError(
            f"{name}: pcapng: none of its {skipped} frames is on an Ethernet (1) interface "
            f"(link types: {links}); sriov models an Ethernet port"
        )
    return _finish(buf, "pcapng", off[:n], lengths[:n], ts[:n], ifs[:n], skipped, skipped_types, warning)


# -- writing ------------------------------------------------------------------------------------
@njit(cache=True)
def _pack_pcap(
    out: np.ndarray, data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, ts: np.ndarray, ns: bool
) -> None:
    o = PCAP_HEADER_LEN
    for i in range(len(offsets)):
        t = ts[i]
        sec = t // 1_000_000_000
        frac = t - sec * 1_000_000_000
        if not ns:
            frac //= 1000
        n = np.int64(lengths[i])
        _put32(out, o, sec)
        _put32(out, o + 4, frac)
        _put32(out, o + 8, n)
        _put32(out, o + 12, n)
        s = offsets[i]
        d = o + PCAP_RECORD_LEN
        out[d : d + n] = data[s : s + n]  # a slice copy: 3x the byte loop (memcpy-like)
        o = d + n


@njit(cache=True)
def _pack_epbs(
    out: np.ndarray,
    start: int,
    data: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    ts: np.ndarray,
    per_unit: int,
    comment_id: np.ndarray,
    cblob: np.ndarray,
    coff: np.ndarray,
    clen: np.ndarray,
) -> None:
    o = start
    for i in range(len(offsets)):
        n = np.int64(lengths[i])
        padded = (n + 3) & ~3
        c = comment_id[i]
        opt = 0
        if c >= 0:
            opt = 4 + ((clen[c] + 3) & ~3) + 4
        blen = 32 + padded + opt
        t = ts[i] // per_unit
        _put32(out, o, PCAPNG_EPB)
        _put32(out, o + 4, blen)
        _put32(out, o + 8, 0)
        _put32(out, o + 12, (t >> 32) & 0xFFFFFFFF)
        _put32(out, o + 16, t & 0xFFFFFFFF)
        _put32(out, o + 20, n)
        _put32(out, o + 24, n)
        s = offsets[i]
        d = o + 28
        out[d : d + n] = data[s : s + n]
        out[d + n : d + padded] = 0
        p = d + padded
        if c >= 0:
            ln = clen[c]
            _put16(out, p, OPT_COMMENT)
            _put16(out, p + 2, ln)
            cs = coff[c]
            for k in range(ln):
                out[p + 4 + k] = cblob[cs + k]
            for k in range(ln, (ln + 3) & ~3):
                out[p + 4 + k] = 0
            p += 4 + ((ln + 3) & ~3)
            _put32(out, p, 0)  # opt_endofopt
            p += 4
        _put32(out, p, blen)
        o += blen


def _check_writable(batch: Batch, ts_max_s: int) -> None:
    if not isinstance(batch, Batch):
        raise ConfigError(f"expected a sriov.Batch, got {type(batch).__name__}")
    if len(batch):
        if int(batch.lengths.max()) > MAX_CAPLEN:
            raise ConfigError(f"a frame of {int(batch.lengths.max())} bytes is over {MAX_CAPLEN}")
        lo, hi = int(batch.timestamps_ns.min()), int(batch.timestamps_ns.max())
        if lo < 0 or hi // 1_000_000_000 > ts_max_s:
            raise ConfigError(
                f"timestamps must be in 0..{ts_max_s} s since the epoch for this format, got {lo}..{hi} ns"
            )


def _emit(path: str | os.PathLike[str] | IO[bytes], out: np.ndarray) -> None:
    if hasattr(path, "write"):
        path.write(memoryview(out))  # type: ignore[union-attr]
        return
    try:
        with open(path, "wb") as f:  # type: ignore[arg-type]
            f.write(memoryview(out))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_pcap(path: str | os.PathLike[str] | IO[bytes], batch: Batch, *, nanosecond: bool = True) -> None:
    """Write ``batch`` as a little-endian pcap file (link type Ethernet, snaplen 262144).

    ``nanosecond=True`` writes the nanosecond magic (``a1b23c4d``) and keeps timestamps exact;
    ``False`` writes the classic microsecond format (timestamps truncated to the microsecond).
    ``path`` may be an open binary file.
    """
    _check_writable(batch, 0xFFFFFFFF)
    n = len(batch)
    out = np.empty(PCAP_HEADER_LEN + PCAP_RECORD_LEN * n + batch.total_bytes, np.uint8)
    hdr = out[:PCAP_HEADER_LEN]
    hdr[:4].view("<u4")[0] = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    hdr[4:8].view("<u2")[:] = (2, 4)
    hdr[8:16] = 0
    hdr[16:24].view("<u4")[:] = (MAX_CAPLEN, LINKTYPE_ETHERNET)
    _pack_pcap(out, batch.data, batch.offsets, batch.lengths, batch.timestamps_ns, nanosecond)
    _emit(path, out)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    body = b""
    for code, value in opts:
        pad = (-len(value)) % 4
        body += code.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value + b"\0" * pad
    return body + b"\0\0\0\0" if opts else b""


def _block(btype: int, body: bytes) -> bytes:
    blen = 12 + len(body)
    return btype.to_bytes(4, "little") + blen.to_bytes(4, "little") + body + blen.to_bytes(4, "little")


def _comment_bytes(text: str, what: str) -> bytes:
    enc = text.encode("utf-8")
    if len(enc) > 0xFFFF - 3:
        raise ConfigError(f"{what} is {len(enc)} bytes (at most 65532)")
    return enc


def write_pcapng(
    path: str | os.PathLike[str] | IO[bytes],
    batch: Batch,
    comments: Sequence[str | None] | None = None,
    *,
    nanosecond: bool = True,
    comment_codes: np.ndarray | None = None,
    comment_names: Sequence[str] | None = None,
) -> None:
    """Write ``batch`` as a pcapng file: one section, one Ethernet interface, one EPB per frame.

    ``comments`` (one per frame, ``None`` for none) go in each EPB's ``opt_comment`` option,
    which Wireshark shows as the packet comment (the drop reason, for a drops capture).
    Without a Python string per frame: ``comment_codes`` (an integer array, one per frame, -1
    for none) indexing ``comment_names`` (e.g. the datapath's drop reason codes and names).
    ``nanosecond`` selects ``if_tsresol`` 9 (exact) or 6 (microseconds).
    """
    _check_writable(batch, (2**63 - 1) // 10**9)
    n = len(batch)
    if comments is not None and comment_codes is not None:
        raise ConfigError("give comments or comment_codes/comment_names, not both")
    if comments is not None and len(comments) != n:
        raise ConfigError(f"comments has {len(comments)} entries for {n} frames (one per frame, or None)")
    # Distinct comments are encoded once; the kernel copies them by id.
    comment_id = np.full(n, -1, np.int32)
    blobs: list[bytes] = []
    if comments is not None:
        ids: dict[str, int] = {}
        for i, c in enumerate(comments):
            if c is None:
                continue
            if not isinstance(c, str):
                raise ConfigError(f"comments[{i}] must be a str or None, got {type(c).__name__}")
            k = ids.get(c)
            if k is None:
                k = ids[c] = len(blobs)
                blobs.append(_comment_bytes(c, f"comments[{i}]"))
            comment_id[i] = k
    elif comment_codes is not None:
        names = list(comment_names or [])
        codes = np.asarray(comment_codes)
        if codes.shape != (n,) or not np.issubdtype(codes.dtype, np.integer):
            raise ConfigError(f"comment_codes must be {n} integers (one per frame), got shape {codes.shape}")
        if n and (int(codes.min()) < -1 or int(codes.max()) >= len(names)):
            raise ConfigError(f"comment_codes must be -1 (none) or 0..{len(names) - 1} (comment_names)")
        blobs = [_comment_bytes(str(c), f"comment_names[{i}]") for i, c in enumerate(names)]
        comment_id = codes.astype(np.int32)
    clen = np.array([len(b) for b in blobs], dtype=np.int64)
    coff = np.zeros(len(blobs), np.int64)
    if len(blobs) > 1:
        np.cumsum(clen[:-1], out=coff[1:])
    cblob = np.frombuffer(b"".join(blobs), dtype=np.uint8) if blobs else np.zeros(0, np.uint8)

    shb = _block(PCAPNG_SHB, PCAPNG_BOM.to_bytes(4, "little") + (1).to_bytes(2, "little")
                 + (0).to_bytes(2, "little") + (-1).to_bytes(8, "little", signed=True)
                 + _options([(OPT_SHB_USERAPPL, b"sriov")]))  # fmt: skip
    idb = _block(PCAPNG_IDB, LINKTYPE_ETHERNET.to_bytes(2, "little") + b"\0\0"
                 + MAX_CAPLEN.to_bytes(4, "little")
                 + _options([(OPT_IF_TSRESOL, bytes([9 if nanosecond else 6]))]))  # fmt: skip
    head = shb + idb
    padded = (batch.lengths.astype(np.int64) + 3) & ~3
    opt_bytes = np.where(comment_id >= 0, 8 + ((clen[np.maximum(comment_id, 0)] + 3) & ~3), 0) if len(blobs) \
        else np.zeros(n, np.int64)  # fmt: skip
    total = len(head) + int((32 + padded + opt_bytes).sum())
    out = np.empty(total, np.uint8)
    out[: len(head)] = np.frombuffer(head, np.uint8)
    _pack_epbs(out, len(head), batch.data, batch.offsets, batch.lengths, batch.timestamps_ns,
               1 if nanosecond else 1000, comment_id, cblob, coff, clen)  # fmt: skip
    _emit(path, out)


def read_comments(source: PathOrBuffer) -> list[str | None]:
    """The ``opt_comment`` of each frame of a little-endian pcapng file of EPBs (as written here).

    ``None`` where a frame has none. A convenience for tests and tools (Python work per frame).
    """
    cap = read_pcap(source)
    if cap.format != "pcapng":
        return [None] * len(cap)
    buf = cap.data
    out: list[str | None] = []
    for start, length in zip(cap.offsets.tolist(), cap.lengths.tolist(), strict=True):
        block = start - 28
        # only little-endian EPBs carry options here; a Simple/obsolete Packet Block or a big-endian
        # section has none to read (and its bytes at start - 28 are not a block header)
        if block < 0 or int(buf[block : block + 4].view("<u4")[0]) != PCAPNG_EPB:
            out.append(None)
            continue
        blen = int(buf[block + 4 : block + 8].view("<u4")[0])
        p = start + ((length + 3) & ~3)
        end = min(block + blen - 4, len(buf))  # never walk options past the file
        text = None
        while p + 4 <= end:
            code = int(buf[p : p + 2].view("<u2")[0])
            olen = int(buf[p + 2 : p + 4].view("<u2")[0])
            if code == OPT_ENDOFOPT:
                break
            if code == OPT_COMMENT:
                text = bytes(buf[p + 4 : p + 4 + olen]).decode("utf-8", "replace")
            p += 4 + ((olen + 3) & ~3)
        out.append(text)
    return out
