"""Short hypothesis versions of the fuzz targets in ``fuzz/`` (issue 8).

The atheris scripts run for minutes outside the test suite (see fuzz/README.md); here the same
`TestOneInput` functions get a modest number of hypothesis-generated inputs on every run, plus
structured inputs (valid captures with damage applied) that random bytes rarely reach.
"""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz"))

import fuzz_capture
import fuzz_mailbox
import fuzz_rx
import fuzz_tx
from _reader import Reader

from sriov.batch import Batch
from sriov.hw import regs as R
from sriov.traffic.capture import write_pcap, write_pcapng

SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def test_reader_decodes_any_bytes_and_zeros_past_the_end() -> None:
    r = Reader(b"\x01\x02\x03")
    assert (r.u8(), r.u16(), r.u32(), r.left) == (1, 0x0302, 0, 0)
    assert r.below(7) == 0 and r.pick(["a", "b"]) == "a" and r.rest() == b""


# -- (a) the receive kernel: compiled against golden -------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.binary(max_size=700))
@example(data=b"")
@example(data=bytes(range(256)) * 2)
def test_fuzz_rx_compiled_equals_golden(data: bytes) -> None:
    fuzz_rx.TestOneInput(data)


def test_fuzz_rx_plans_reach_delivery_and_the_drops() -> None:
    """The decoder is not degenerate: plans from random bytes deliver frames and hit drop reasons."""
    from sriov import _fastpath

    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for _ in range(60):
        plan = fuzz_rx.decode(rng.integers(0, 256, int(rng.integers(50, 600)), dtype=np.uint8).tobytes())
        seen |= set(fuzz_rx.World(plan, _fastpath).receive(plan["frames1"]).counts())
    assert {"DELIVERED", "DMA_FAULT", "NO_POOL", "LONG_LENGTH", "NO_DMA_RESOURCES"} <= seen


def test_fuzz_rx_catches_a_planted_disagreement(monkeypatch) -> None:
    """The comparison can fail: a golden model that forgets to count bytes is caught."""
    from sriov.golden import rx as golden_rx

    real = golden_rx.deliver

    def more_bytes(device, pool, frame, tagged, tci, arrival_ns=0):
        reason, q, n = real(device, pool, frame, tagged, tci, arrival_ns)
        return reason, q, n + 1 if n else n

    monkeypatch.setattr(golden_rx, "deliver", more_bytes)
    plan = fuzz_rx.decode(b"")
    plan["frames1"] = [fuzz_rx.MACS[0] + bytes(58)]
    with pytest.raises(AssertionError):
        fuzz_rx.run_plan(plan)


def test_fuzz_rx_memory_oracle_sees_a_write_into_a_hole() -> None:
    """fuzz_rx's independent oracle (`DmaWatch(precise=False)`) is not decorative."""
    from sriov import _fastpath
    from sriov.invariants import DmaWatch

    plan = fuzz_rx.decode(b"")
    plan["maps"] = [(1 << 5, 1 << 6)] * (plan["num_vfs"] + 1)  # page 5 a hole, page 6 read-only
    world = fuzz_rx.World(plan, _fastpath)
    watch = DmaWatch(devices=[world.dev], iommu=world.iommu, precise=False)
    world.memories[0][6 * fuzz_rx.PAGE] ^= 1  # as if a DMA went through a read-only page
    assert watch.check() and "not mapped writable" in watch.check()[0]


# -- (a') the transmit kernel: compiled against golden, from raw bytes through hypothesis' decoder --
def test_fuzz_tx_compiled_equals_golden() -> None:
    rng = np.random.default_rng(1)
    for _ in range(8):
        fuzz_tx.TestOneInput(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())


# -- (b) VF register sequences against the mailbox and the PF ----------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.binary(max_size=400))
@example(data=b"")
@example(data=bytes([6, 0, 1, 0, 0, 0, 0x80, 5, 3] * 20))
def test_fuzz_mailbox_attacker_hurts_only_itself(data: bytes) -> None:
    fuzz_mailbox.TestOneInput(data)


mbx_words = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=16)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("m"), mbx_words, st.sampled_from([R.VFMAILBOX_REQ, R.VFMAILBOX_ACK, 0])),
            st.tuples(st.just("w"), st.sampled_from(fuzz_mailbox._offsets()), st.integers(0, 2**32 - 1)),
            st.tuples(st.just("t"), st.sampled_from(fuzz_mailbox.DELAYS)),
            st.just(("g",)),
        ),
        max_size=30,
    )
)
def test_fuzz_mailbox_structured_steps(steps) -> None:
    fuzz_mailbox.run_steps(steps)


# -- (c) the capture readers -------------------------------------------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.binary(max_size=300))
@example(data=b"")
@example(data=b"\x01" + b"\x00" * 16)
def test_fuzz_capture_raw_bytes(data: bytes) -> None:
    fuzz_capture.TestOneInput(data)


# Found by fuzz_capture.py: a pcapng whose frames are not all in little-endian EPBs made
# read_comments read a "block length" from frame bytes and walk options past the file (IndexError).
CRASH_READ_COMMENTS = bytes.fromhex(
    "000a0d0d0a2c0000004d3c2b1a01000000ffffffffffffffff040005007372696f76000000000000002c000000010000"
    "0020000000010000000000040009000100090000000000000020000000060000004c00000000000000360000008a7261"
    "dc2c0000002c0000007a80468756639e222f04a08f16f85d48265ac75152be697e9acbd2012621f734e75e3966546221"
    "f7907095934c000000060000006400000000000000950000008c432df44200000042000000f60aa49798d6d43c55b009"
    "b8f52488ff959011e6be4e5f6aa47d4860eb815e334684e43b387c452d7cbefb8c1df23578cbdd13fd6a81c8b0b641cb"
    "121ec4e3195b7e000064000000030000003c00000000000000800000001e62e30c1c0000001c0000007814e4e07a5e41"
    "da26e97f200cd429b2df33927fdc9a26397a4477013c000000"
)


def test_fuzz_capture_regressions() -> None:
    fuzz_capture.TestOneInput(CRASH_READ_COMMENTS)


@st.composite
def damaged_capture(draw) -> bytes:
    frames = draw(st.lists(st.binary(min_size=0, max_size=80), max_size=5))
    stamps = draw(st.lists(st.integers(0, 2**40), min_size=len(frames), max_size=len(frames)))
    out = io.BytesIO()
    writer = draw(st.sampled_from([write_pcap, write_pcapng]))
    writer(out, Batch.from_frames(frames, stamps))
    raw = bytearray(out.getvalue())
    for _ in range(draw(st.integers(0, 4))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut]) if draw(st.booleans()) else bytes(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(data=damaged_capture())
def test_fuzz_capture_damaged_files(data: bytes) -> None:
    fuzz_capture.check_capture(data)


# -- (e) the transmit kernel while a hostile guest rewrites its descriptors and frames -----------
def test_fuzz_tx_concurrent_mode_runs_clean() -> None:
    """A few hundred executions of ``fuzz_tx.py --concurrent`` (in a subprocess: a crash fails
    the test, not pytest); needs a C compiler for its guest CPUs."""
    import shutil
    import subprocess

    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        pytest.skip("no C compiler (cc, gcc or clang) for the concurrent fuzzer's guest CPUs")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, os.path.join(root, "fuzz", "fuzz_tx.py"), "--concurrent", "-runs=300", "-seed=7"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "every invariant held" in done.stdout
