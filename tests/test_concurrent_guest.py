"""A guest CPU rewrites guest memory while the device works (issue 17 items 1-2).

The device reads each guest descriptor and each frame byte once: it snapshots the descriptors,
copies the frame into its own buffer, and checks and forwards only that copy. A C helper built
here with the system C compiler (`guest_cpu/guest_writer.c`, loaded with ctypes, which releases
the GIL) flips descriptor words or frame bytes in a tight loop while the kernels run. Each
stress runs in a subprocess (`guest_cpu/stress.py`) so that a crash or a hang fails the test
instead of pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "guest_cpu"
SECONDS = 1.5


@pytest.fixture(scope="module")
def guest_writer(tmp_path_factory) -> str:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build the concurrent guest writer")
    lib = tmp_path_factory.mktemp("guest_cpu") / "guest_writer.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(HERE / "guest_writer.c")], check=True)
    return str(lib)


def stress(lib: str, mode: str, which: str) -> dict:
    root = str(Path(__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    seconds = SECONDS if which == "compiled" else SECONDS / 2
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / "stress.py"), lib, mode, which, str(seconds)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{mode} on {which}: the kernel hung (a corrupted heap?)")
    assert done.returncode == 0, f"{mode} on {which}: exit {done.returncode} (crash?)\n{done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["compiled", "golden"])
def test_a_length_rewritten_during_the_copy_cannot_overrun_the_device(guest_writer, which) -> None:
    result = stress(guest_writer, "tx-length", which)
    assert result["runs"] > 0 and result["taken"] > 0
    assert result["errors"] == []


@pytest.mark.parametrize("which", ["compiled", "golden"])
def test_a_source_mac_rewritten_after_the_check_is_never_forwarded(guest_writer, which) -> None:
    result = stress(guest_writer, "tx-spoof", which)
    assert result["sent"] > 0, "no frame passed at all: the stress proves nothing"
    assert result["forged"] == 0, f"{result['forged']} forged frames left with spoofchk on"
    assert result["errors"] == []


@pytest.mark.parametrize("which", ["compiled", "golden"])
def test_rx_descriptors_rewritten_during_receive_stay_inside_the_domain(guest_writer, which) -> None:
    result = stress(guest_writer, "rx-addr", which)
    assert result["delivered"] > 0
    assert not result["outside_written"]
    assert result["errors"] == []
