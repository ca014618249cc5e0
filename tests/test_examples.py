"""The examples/ scripts run (small sizes), and Batch.copy() keeps what a poll returned (issue 15, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sriov

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "size", "expect"),
    [
        ("api_tour.py", "3000", "frames to the stack"),
        ("traffic_generator.py", "50", "frames delivered"),
        ("interrupt_moderation.py", "3000", "rx-usecs"),
    ],
)
def test_example_runs(tmp_path: Path, script: str, size: str, expect: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), size], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert expect in done.stdout
    assert "Traceback" not in done.stderr


def test_batch_copy_outlives_the_poll() -> None:
    host = sriov.Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    port.pf.set_vf(0, mac="02:00:00:00:00:10")
    nic = host.assign(port.vf(0), host.add_vm("vm", memory=16 << 20))
    nic.up()
    profile = sriov.TrafficProfile(sizes="imix", dst=["02:00:00:00:00:10"])
    port.wire.receive(sriov.generate(profile, frames=100, seed=1))
    got = nic.rx_poll(budget=64)
    kept = got.copy()
    before = got.to_list()
    stamps = got.timestamps_ns.copy()  # the poll's arrays are reused by the next poll
    assert kept.data is not got.data and len(kept.data) == got.total_bytes, "only the frames are copied"
    assert kept == got and kept.to_list() == before
    port.wire.receive(sriov.generate(profile, frames=100, seed=2))
    nic.rx_poll(budget=64)  # the first poll's buffers go back to the ring and are overwritten
    nic.rx_poll(budget=64)
    assert kept.to_list() == before
    assert np.array_equal(kept.timestamps_ns, stamps)
