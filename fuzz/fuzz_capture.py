"""Fuzz target: the capture readers (pcap, pcapng) and the writers' round trip.

Any byte string given to `sriov.read_pcap` (strict and lenient) and to `read_comments` either
reads or raises `CaptureError`; nothing else may escape. What reads must make sense (every frame
inside the file buffer, no captured length over the limit), and writing it back as pcap and
pcapng and reading that again must give the same frames and timestamps (a writer may refuse a
timestamp its format cannot hold, with ConfigError).

The first input byte picks a valid file header to put in front of the rest (none, pcap us/ns in
either byte order, a pcapng section + Ethernet interface), so the fuzzer starts past the magic.

    python fuzz/fuzz_capture.py -max_total_time=60              # scans as Python, coverage-guided
    FUZZ_JIT=1 python fuzz/fuzz_capture.py -max_total_time=60   # the Numba-compiled scans
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _reader, and the sriov of this checkout


def _headers() -> list[bytes]:
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    pcap_ns = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
    pcap_be = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    shb = (
        struct.pack("<II", 0x0A0D0D0A, 12 + len(shb_body)) + shb_body + struct.pack("<I", 12 + len(shb_body))
    )
    idb_body = struct.pack("<HHI", 1, 0, 262144)
    idb = struct.pack("<II", 1, 12 + len(idb_body)) + idb_body + struct.pack("<I", 12 + len(idb_body))
    return [b"", pcap, pcap_ns, pcap_be, shb + idb, shb]


HEADERS = _headers()


def check_capture(data: bytes) -> None:
    """Read ``data`` every way; raise AssertionError (or let a non-CaptureError escape) on a bug."""
    import numpy as np

    from sriov.errors import CaptureError, ConfigError
    from sriov.traffic.capture import MAX_CAPLEN, read_comments, read_pcap, write_pcap, write_pcapng

    caps = []
    for strict in (True, False):
        with contextlib.suppress(CaptureError):
            caps.append(read_pcap(data, strict=strict))
    with contextlib.suppress(CaptureError):
        read_comments(data)
    for cap in caps:
        n = len(cap)
        assert len(cap.lengths) == n == len(cap.timestamps_ns)
        if n:
            ends = cap.offsets + cap.lengths.astype(np.int64)
            assert int(cap.offsets.min()) >= 0 and int(ends.max()) <= len(cap.data), "frame outside the file"
            assert int(cap.lengths.max()) <= MAX_CAPLEN
        frames = cap.to_list()
        for writer in (write_pcap, write_pcapng):
            out = io.BytesIO()
            try:
                writer(out, cap)
            except ConfigError:
                continue  # a timestamp this format cannot hold: refused, named
            again = read_pcap(out.getvalue())
            assert again.to_list() == frames, f"{writer.__name__} round trip changed the frames"
            if writer is write_pcapng:
                assert np.array_equal(again.timestamps_ns, cap.timestamps_ns), (
                    "pcapng round trip changed time"
                )


def TestOneInput(data: bytes) -> None:
    if not data:
        check_capture(b"")
        return
    check_capture(HEADERS[data[0] % len(HEADERS)] + data[1:])


def main() -> None:
    import atheris

    # Numba cannot compile instrumented bytecode. By default the scans run as plain Python
    # (NUMBA_DISABLE_JIT=1, same source) so that coverage guides the fuzzer through them;
    # FUZZ_JIT=1 runs the compiled scans instead (uninstrumented: blind mutation).
    if os.environ.get("FUZZ_JIT", "") in ("", "0"):
        os.environ["NUMBA_DISABLE_JIT"] = "1"
        with atheris.instrument_imports():
            import sriov.traffic.capture  # noqa: F401
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
