"""The simulation clock: integer ns, deterministic event order, re-entrant advance (issue 2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sriov.errors import ConfigError
from sriov.hw.clock import SimClock


def test_events_run_in_time_then_schedule_order() -> None:
    clock = SimClock()
    seen: list[str] = []
    clock.schedule(20, lambda: seen.append("b"))
    clock.schedule(10, lambda: seen.append("a"))
    clock.schedule(20, lambda: seen.append("c"))
    clock.advance(15)
    assert seen == ["a"] and clock.now == 15
    clock.advance(5)
    assert seen == ["a", "b", "c"] and clock.now == 20


def test_events_see_their_own_time() -> None:
    clock = SimClock()
    times: list[int] = []
    clock.schedule(7, lambda: times.append(clock.now))
    clock.advance(100)
    assert times == [7] and clock.now == 100


def test_event_scheduled_by_an_event_runs_in_the_same_advance() -> None:
    clock = SimClock()
    seen: list[int] = []
    clock.schedule(5, lambda: clock.schedule(5, lambda: seen.append(clock.now)))
    clock.advance(10)
    assert seen == [10]


def test_advance_inside_an_event_never_goes_back_in_time() -> None:
    clock = SimClock()
    seen: list[tuple[str, int]] = []

    def waiter() -> None:  # a driver polling the mailbox inside an interrupt handler
        clock.advance(50)
        seen.append(("waiter done", clock.now))

    clock.schedule(10, waiter)
    clock.schedule(30, lambda: seen.append(("inner", clock.now)))
    clock.advance(20)
    assert seen == [("inner", 30), ("waiter done", 60)]
    assert clock.now == 60


def test_cancel() -> None:
    clock = SimClock()
    seen: list[int] = []
    handle = clock.schedule(5, lambda: seen.append(1))
    handle.cancel()
    clock.advance(10)
    assert seen == [] and clock.pending() == 0


def test_negative_times_are_refused() -> None:
    clock = SimClock()
    with pytest.raises(ConfigError):
        clock.advance(-1)
    with pytest.raises(ConfigError):
        clock.schedule(-5, lambda: None)
    assert clock.now == 0


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 3)), max_size=50))
def test_order_is_deterministic(items: list[tuple[int, int]]) -> None:
    def run() -> list[tuple[int, int, int]]:
        clock = SimClock()
        out: list[tuple[int, int, int]] = []
        for i, (t, tag) in enumerate(items):
            clock.schedule(t, lambda i=i, tag=tag: out.append((clock.now, tag, i)))
        clock.advance(1001)
        return out

    first = run()
    assert first == run()
    assert first == sorted(first, key=lambda e: (e[0], e[2]))


# (kind, a, b): 0 schedule a ns out, its action schedules b ns more when b > 0; 1 cancel the a-th
# handle; 2 run_until now + a; 3 run_before now + a; 4 advance a
_OPS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60), st.integers(0, 9)), max_size=40)


def _program(clock_type, ops: list[tuple[int, int, int]]) -> list[tuple]:
    clock = clock_type()
    out: list[tuple] = []
    handles: list = []

    def event(k: int, more: int) -> None:
        out.append(("run", k, clock.now))
        if more:
            handles.append(clock.schedule(more, lambda: event(k + 1000, 0)))

    for k, (kind, a, b) in enumerate(ops):
        if kind == 0:
            handles.append(clock.schedule(a, lambda k=k, b=b: event(k, b)))
        elif kind == 1 and handles:
            handles[a % len(handles)].cancel()
        elif kind == 2:
            clock.run_until(clock.now + a)
        elif kind == 3:
            clock.run_before(clock.now + a)
        else:
            clock.advance(a)
        out.append(("state", clock.now, clock.next_event_time(), clock.pending(), clock.events_run))
    out.append(tuple(h.time for h in handles))
    return out


@given(_OPS)
def test_compiled_clock_and_its_golden_twin_agree(ops: list[tuple[int, int, int]]) -> None:
    from sriov import kernels
    from sriov.golden.engine import SimClock as GoldenClock

    if kernels.compiled is None:
        pytest.skip("no compiled extension")
    assert _program(kernels.compiled.SimClock, ops) == _program(GoldenClock, ops)


def test_clock_refuses_bad_times_in_both_twins() -> None:
    from sriov import kernels
    from sriov.golden.engine import SimClock as GoldenClock

    for clock_type in (GoldenClock, *([kernels.compiled.SimClock] if kernels.compiled else [])):
        clock = clock_type(5)
        with pytest.raises(ConfigError):
            clock.schedule(-1, lambda: None)
        with pytest.raises(ConfigError):
            clock_type(-1)
        assert clock.now == 5 and clock.pending() == 0


@pytest.mark.parametrize("bad", [1.5, float("nan"), float("inf"), None, "3", 2**70, True, -1])
def test_clock_refuses_bad_times_and_actions_with_one_clear_error(bad) -> None:
    """Issue 17 items 12-14: the same SriovError from both twins, nothing changed."""
    from sriov import kernels
    from sriov.golden.engine import SimClock as GoldenClock

    for clock_type in (GoldenClock, *([kernels.compiled.SimClock] if kernels.compiled else [])):
        clock = clock_type(5)
        for name, args in (
            ("advance", (bad,)),
            ("run_until", (bad,)),
            ("schedule", (bad, lambda: None)),
            ("schedule_at", (bad, lambda: None)),
        ):
            with pytest.raises(ConfigError, match="ns"):
                getattr(clock, name)(*args)
        with pytest.raises(ConfigError, match="callable"):
            clock.schedule(10, 42)
        assert clock.now == 5 and clock.pending() == 0


def test_advancing_past_the_end_of_time_is_refused() -> None:
    """``advance(2**63 - 10)`` from a clock that is not at 0 would overflow: one error, no change."""
    from sriov import kernels
    from sriov.golden.engine import SimClock as GoldenClock

    for clock_type in (GoldenClock, *([kernels.compiled.SimClock] if kernels.compiled else [])):
        clock = clock_type(100)
        with pytest.raises(ConfigError, match="overflows"):
            clock.advance(2**63 - 10)
        assert clock.now == 100
