"""EITR moderation and the interrupt timeline (issue 6): the Numba kernel agrees exactly with
the event-driven model, and both follow the 82599's interval rule."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov.errors import ConfigError
from sriov.hw.clock import SimClock, Vector
from sriov.hw.eitr import eitr_from_usecs, interval_ns_from_eitr
from sriov.timeline import ModerationSettings, simulate, simulate_golden

FRAME_GAP_10G_64B = 67.2  # ns between 64-byte frames at 10 GbE line rate


def test_eitr_units() -> None:
    assert eitr_from_usecs(50) == 200  # the driver writes usecs << 2
    assert interval_ns_from_eitr(200) == 25 * 2048
    assert interval_ns_from_eitr(eitr_from_usecs(1022)) == 511 * 2048
    assert interval_ns_from_eitr(eitr_from_usecs(0)) == 0
    with pytest.raises(ConfigError, match=r"0\.\.1022"):
        eitr_from_usecs(1023)


def _vector(clock: SimClock, interval_ns: int) -> tuple[Vector, np.ndarray]:
    """A vector over a mask register (word 0, bit 0 set = enabled) and an auto-mask register
    (word 1), as a driver with EIAM set programs it; returns it and its register words."""
    regs = np.array([1, 1], np.uint32)
    v = Vector(clock, regs, 0, ims=0, ims_bit=1, iam=1)
    v.reprogram(interval_ns, reset_counter=True)
    return v, regs


def test_vector_fires_at_once_then_holds_a_cause_until_the_interval_expires() -> None:
    clock = SimClock()
    v, regs = _vector(clock, 10_000)
    v.raise_cause()
    assert (v.fired, v.last_fire) == (1, 0) and v.masked and regs[0] == 0  # auto-masked in the register
    regs[0] = 1
    v.unmask()
    clock.advance(3_000)
    v.raise_cause()  # inside the interval: pending
    assert v.fired == 1 and v.timer_due == 10_000
    clock.advance(6_999)
    assert v.fired == 1
    clock.advance(1)
    assert (v.fired, v.last_fire) == (2, 10_000)


def test_masked_vector_latches_and_fires_on_unmask() -> None:
    clock = SimClock()
    v, regs = _vector(clock, 0)
    regs[0] = 0  # masked: the register is the state
    v.mask()
    v.raise_cause()
    clock.advance(50_000)
    assert v.fired == 0
    regs[0] = 1
    v.unmask()
    assert (v.fired, v.last_fire) == (1, 50_000)


def quiet(**kw: int) -> ModerationSettings:
    base = dict(injection_latency_ns=0, poll_overhead_ns=0, per_frame_ns=0, budget=64, ring_size=512)
    base.update(kw)
    return ModerationSettings(**base)


@pytest.mark.parametrize("sim", [simulate, simulate_golden], ids=["numba", "event-driven"])
def test_rx_usecs_0_every_completion_interrupts(sim) -> None:
    arrivals = np.arange(100, dtype=np.int64) * 1_000
    tl = sim(arrivals, quiet(rx_usecs=0))
    assert np.array_equal(tl.irq_times_ns, arrivals)
    assert np.array_equal(tl.handed_ns, arrivals)


@pytest.mark.parametrize("usecs", [10, 50, 100])
@pytest.mark.parametrize("sim", [simulate, simulate_golden], ids=["numba", "event-driven"])
def test_interrupts_never_closer_than_the_interval(sim, usecs: int) -> None:
    rng = np.random.default_rng(usecs)
    arrivals = np.sort(rng.integers(0, 2_000_000, 3_000)).astype(np.int64)
    s = quiet(rx_usecs=usecs, injection_latency_ns=1_500, poll_overhead_ns=300, per_frame_ns=40)
    tl = sim(arrivals, s)
    assert tl.interrupts > 5
    assert np.diff(tl.irq_times_ns).min() >= s.interval_ns
    assert tl.delivered + tl.dropped == len(arrivals)


def test_frame_arriving_during_the_interval_is_delivered_at_its_end() -> None:
    s = quiet(rx_usecs=50)
    tl = simulate(np.array([0, 7_000], dtype=np.int64), s)
    assert list(tl.irq_times_ns) == [0, s.interval_ns]
    assert list(tl.handed_ns) == [0, s.interval_ns]


def test_slow_moderation_overflows_the_ring_where_the_arithmetic_says() -> None:
    # 10 GbE 64-byte frames: one every 67.2 ns. A 512-descriptor ring lasts 512 * 67.2 = 34.4 us.
    arrivals = (np.arange(200_000) * FRAME_GAP_10G_64B).astype(np.int64)
    fits = simulate(arrivals, ModerationSettings(rx_usecs=10, per_frame_ns=20))
    overflows = simulate(arrivals, ModerationSettings(rx_usecs=100, per_frame_ns=20))
    assert fits.dropped == 0, "a 10 us interval (10.24 us) is shorter than the ring's 34 us"
    assert overflows.dropped > 0, "a 100 us interval (102.4 us) is longer than the ring's 34 us"


arrivals_strategy = st.lists(st.integers(0, 300_000), max_size=120).map(
    lambda xs: np.array(sorted(xs), np.int64)
)


@settings(max_examples=300, deadline=None)
@given(
    arrivals=arrivals_strategy,
    usecs=st.sampled_from([0, 1, 3, 10, 50, 100]),
    latency=st.sampled_from([0, 1, 700, 2_000]),
    budget=st.integers(1, 16),
    ring=st.integers(1, 40),
    overhead=st.sampled_from([0, 100, 1_000]),
    per_frame=st.sampled_from([0, 1, 50, 700]),
)
def test_numba_kernel_agrees_exactly_with_the_event_driven_model(
    arrivals, usecs, latency, budget, ring, overhead, per_frame
) -> None:
    s = ModerationSettings(rx_usecs=usecs, injection_latency_ns=latency, budget=budget, ring_size=ring,
                           poll_overhead_ns=overhead, per_frame_ns=per_frame)  # fmt: skip
    fast, slow = simulate(arrivals, s), simulate_golden(arrivals, s)
    assert np.array_equal(fast.irq_times_ns, slow.irq_times_ns)
    assert np.array_equal(fast.handed_ns, slow.handed_ns)
    assert np.array_equal(fast.occupancy, slow.occupancy)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="sorted"):
        simulate(np.array([5, 1], np.int64))
    with pytest.raises(ConfigError):
        ModerationSettings(budget=0)


def test_kernel_source_runs_without_jit() -> None:
    """Once with NUMBA_DISABLE_JIT=1, so the loop's Python source is exercised too."""
    code = (
        "import numpy as np\n"
        "from sriov.timeline import simulate, simulate_golden, ModerationSettings\n"
        "a = np.sort(np.random.default_rng(0).integers(0, 100000, 300)).astype(np.int64)\n"
        "s = ModerationSettings(rx_usecs=10, budget=4, ring_size=16)\n"
        "assert np.array_equal(simulate(a, s).handed_ns, simulate_golden(a, s).handed_ns)\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
