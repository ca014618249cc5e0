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


def test_run_target_is_the_running_run_until_target() -> None:
    clock = SimClock()
    seen: list[int] = []
    assert clock.run_target == -1

    def inner() -> None:
        seen.append(clock.run_target)
        clock.advance(5)  # a nested advance has its own target while it runs
        seen.append(clock.run_target)

    clock.schedule(10, lambda: seen.append(clock.run_target))
    clock.schedule(20, inner)
    clock.run_until(30)
    clock.run_before(50)
    assert seen == [30, 30, 30] and clock.run_target == -1 and clock.now == 50


def test_take_runs_the_next_event_inline() -> None:
    clock = SimClock()
    seen: list[tuple[str, int]] = []
    handles = {}

    def first() -> None:
        seen.append(("first", clock.now))
        h = clock.schedule(5, lambda: seen.append(("second-event", clock.now)))
        if clock.take(h):  # nothing else is due before it: run its work now
            seen.append(("second-inline", clock.now))
        handles["h"] = h

    clock.schedule(10, first)
    clock.schedule(40, lambda: seen.append(("later", clock.now)))
    clock.advance(100)
    assert seen == [("first", 10), ("second-inline", 15), ("later", 40)]
    assert clock.events_run == 3
    handles["h"].cancel()  # ran already: harmless


def test_take_refuses_when_another_event_comes_first_or_past_the_target() -> None:
    clock = SimClock()
    results: list[bool] = []

    def step() -> None:
        h = clock.schedule(5, lambda: results.append(True))
        results.append(clock.take(h))

    clock.schedule(10, step)
    clock.schedule(15, lambda: None)  # due at the same instant, scheduled first: runs first
    clock.schedule(30, step)  # its step would end at 35, past the target 32
    h0 = clock.schedule(60, lambda: results.append(True))
    clock.run_until(32)
    assert results == [False, True, False] and clock.now == 32
    assert clock.take(h0) is False  # outside any run_until
    clock.run_until(100)
    assert results == [False, True, False, True, True]


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 3)), max_size=30))
def test_take_keeps_the_history_of_one_event_per_step(items: list[tuple[int, int]]) -> None:
    """Chains of steps (each step schedules the next) give the same (time, who) history whether
    the next step runs through the queue or inline through `take`."""

    def run(inline: bool) -> list[tuple[int, int, int]]:
        clock = SimClock()
        out: list[tuple[int, int, int]] = []

        def step(who: int, left: int, gap: int) -> None:
            while True:
                out.append((clock.now, who, left))
                if not left:
                    return
                nxt = left - 1
                h = clock.schedule(gap, lambda who=who, nxt=nxt, gap=gap: step(who, nxt, gap))
                if not (inline and clock.take(h)):
                    return
                left = nxt

        for who, (t, n) in enumerate(items):
            clock.schedule(t, lambda who=who, n=n, t=t: step(who, n, 1 + t % 7))
        for t in range(0, 200, 13):
            clock.run_until(t)
        return [*out, (clock.now, clock.events_run, -1)]

    assert run(True) == run(False)


# (kind, a, b): 0 schedule a ns out, its action schedules b ns more when b > 0 (a chain step that
# tries take()); 1 cancel the a-th handle; 2 run_until now + a; 3 run_before now + a; 4 advance a
_OPS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60), st.integers(0, 9)), max_size=40)


def _program(clock_type, ops: list[tuple[int, int, int]]) -> list[tuple]:
    clock = clock_type()
    out: list[tuple] = []
    handles: list = []

    def event(k: int, more: int) -> None:
        out.append(("run", k, clock.now, clock.run_target))
        if more:
            h = clock.schedule(more, lambda: event(k + 1000, 0))
            handles.append(h)
            if clock.take(h):
                out.append(("inline", k, clock.now))

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
    from sriov.golden.clock import SimClock as GoldenClock

    if kernels.compiled is None:
        pytest.skip("no compiled extension")
    assert _program(kernels.compiled.SimClock, ops) == _program(GoldenClock, ops)


def test_clock_refuses_bad_times_in_both_twins() -> None:
    from sriov import kernels
    from sriov.golden.clock import SimClock as GoldenClock

    for clock_type in (GoldenClock, *([kernels.compiled.SimClock] if kernels.compiled else [])):
        clock = clock_type(5)
        with pytest.raises(ConfigError):
            clock.schedule(-1, lambda: None)
        with pytest.raises(ConfigError):
            clock_type(-1)
        assert clock.now == 5 and clock.pending() == 0
