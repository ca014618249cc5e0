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
