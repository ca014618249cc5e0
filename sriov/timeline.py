"""Interrupt timelines at speed: EITR moderation, injection latency and NAPI polling (Numba).

The same semantics as the event-driven model in ``sriov/golden/timeline.py`` (which runs
the device's EITR state machine on the simulation clock), computed by one compiled loop
over the arrivals of a queue. A property test holds the two to exact agreement.

Use `simulate` for one queue and read the results through `Timeline`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numba import njit

from sriov.errors import ConfigError
from sriov.hw.eitr import eitr_from_usecs, interval_ns_from_eitr

_NONE, _TIMER, _POLL, _POLL_END = 0, 1, 2, 3
_NEVER = -(1 << 62)


@njit(cache=True, nogil=True)
def _simulate(arrivals, interval_ns, latency_ns, budget, ring_size, overhead_ns, per_frame_ns,
              irq_times, handed, occupancy):  # fmt: skip
    """The loop: arrivals due at or before the pending chain event run first (as on the clock)."""
    n = arrivals.shape[0]
    accepted = np.empty(n, np.int64)
    head = 0
    tail = 0
    occupied = 0
    masked = False
    pending = False
    last_fire = _NEVER
    chain = _NONE
    chain_t = 0
    took = 0
    irqs = 0
    i = 0
    while True:
        if chain != _NONE and (i >= n or chain_t < arrivals[i]):
            now = chain_t
            kind = chain
            chain = _NONE
            fire = False
            if kind == _TIMER:
                fire = pending and not masked
            elif kind == _POLL:
                took = min(budget, tail - head)
                for k in range(took):
                    handed[accepted[head]] = now + overhead_ns + (k + 1) * per_frame_ns
                    head += 1
                chain = _POLL_END
                chain_t = now + overhead_ns + took * per_frame_ns
            else:  # _POLL_END
                occupied -= took
                if took == budget:
                    chain = _POLL
                    chain_t = now
                else:
                    masked = False
                    if pending:
                        if now >= last_fire + interval_ns:
                            fire = True
                        else:
                            chain = _TIMER
                            chain_t = last_fire + interval_ns
        elif i < n:
            now = arrivals[i]
            fire = False
            if occupied == ring_size:
                occupancy[i] = occupied
                handed[i] = -1
            else:
                occupied += 1
                occupancy[i] = occupied
                accepted[tail] = i
                tail += 1
                pending = True
                if not masked:
                    if now >= last_fire + interval_ns:
                        fire = True
                    elif chain != _TIMER:
                        chain = _TIMER
                        chain_t = last_fire + interval_ns
            i += 1
        else:
            break
        if fire:
            pending = False
            masked = True
            last_fire = now
            irq_times[irqs] = now
            irqs += 1
            chain = _POLL
            chain_t = now + latency_ns
    return irqs


@dataclass(frozen=True)
class ModerationSettings:
    """What decides a queue's interrupt timeline (times in ns)."""

    rx_usecs: int = 0  # ethtool -C rx-usecs (0 = every completion may interrupt)
    injection_latency_ns: int = 2_000  # device MSI-X -> guest handler (posted interrupts ~ 1-2 us)
    budget: int = 64  # NAPI weight
    ring_size: int = 512
    poll_overhead_ns: int = 1_000  # per poll: softirq entry, tail write
    per_frame_ns: int = 50  # guest driver work per frame

    def __post_init__(self) -> None:
        eitr_from_usecs(self.rx_usecs)  # validates the range
        for name in ("injection_latency_ns", "poll_overhead_ns", "per_frame_ns"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.budget < 1 or self.ring_size < 1:
            raise ConfigError(f"budget and ring_size must be >= 1, got {self.budget}, {self.ring_size}")

    @property
    def interval_ns(self) -> int:
        """The EITR interval the rx-usecs value programs (2.048 us units)."""
        return interval_ns_from_eitr(eitr_from_usecs(self.rx_usecs))


@dataclass(frozen=True)
class Timeline:
    """One queue's interrupt timeline."""

    arrivals_ns: np.ndarray
    irq_times_ns: np.ndarray  # when the device fired the vector
    handed_ns: np.ndarray  # when each frame reached the guest stack (-1: dropped, ring overflow)
    occupancy: np.ndarray  # descriptors in use just after each arrival

    @property
    def delivered(self) -> int:
        """Frames handed to the guest."""
        return int((self.handed_ns >= 0).sum())

    @property
    def dropped(self) -> int:
        """Frames lost to ring overflow."""
        return int((self.handed_ns < 0).sum())

    @property
    def interrupts(self) -> int:
        """Interrupts fired."""
        return len(self.irq_times_ns)

    def duration_ns(self) -> int:
        """From the first arrival to the last arrival (at least 1 ns)."""
        if len(self.arrivals_ns) < 2:
            return 1
        return max(1, int(self.arrivals_ns[-1] - self.arrivals_ns[0]))

    def interrupts_per_second(self) -> float:
        """Interrupt rate over the arrival span."""
        return self.interrupts * 1e9 / self.duration_ns()

    def frames_per_interrupt(self) -> float:
        """Delivered frames per interrupt (the batch NAPI gets)."""
        return self.delivered / self.interrupts if self.interrupts else 0.0

    def latency_percentiles(self, percentiles: tuple[float, ...] = (50, 99, 99.9)) -> dict[float, float]:
        """Arrival -> guest latency percentiles in ns, over delivered frames."""
        ok = self.handed_ns >= 0
        if not ok.any():
            return {p: float("nan") for p in percentiles}
        lat = self.handed_ns[ok] - self.arrivals_ns[ok]
        return {p: float(np.percentile(lat, p)) for p in percentiles}


def simulate(arrivals_ns: np.ndarray, settings: ModerationSettings | None = None) -> Timeline:
    """The interrupt timeline of one queue for sorted arrival times (ns)."""
    s = settings or ModerationSettings()
    arrivals = np.ascontiguousarray(arrivals_ns, dtype=np.int64)
    if arrivals.ndim != 1:
        raise ConfigError("arrivals_ns must be one-dimensional")
    if len(arrivals) and (arrivals[0] < 0 or np.any(np.diff(arrivals) < 0)):
        raise ConfigError("arrivals_ns must be non-negative and sorted")
    n = len(arrivals)
    irq = np.empty(n, dtype=np.int64)
    handed = np.empty(n, dtype=np.int64)
    occupancy = np.empty(n, dtype=np.int32)
    count = _simulate(arrivals, s.interval_ns, s.injection_latency_ns, s.budget, s.ring_size,
                      s.poll_overhead_ns, s.per_frame_ns, irq, handed, occupancy)  # fmt: skip
    return Timeline(arrivals, irq[:count].copy(), handed, occupancy)


def simulate_golden(arrivals_ns: np.ndarray, settings: ModerationSettings | None = None) -> Timeline:
    """The same timeline from the event-driven model (slow; for tests and checks)."""
    from sriov.golden.timeline import simulate_queue

    s = settings or ModerationSettings()
    arrivals = np.ascontiguousarray(arrivals_ns, dtype=np.int64)
    irq, handed, occupancy = simulate_queue(arrivals, s.interval_ns, s.injection_latency_ns, s.budget,
                                            s.ring_size, s.poll_overhead_ns, s.per_frame_ns)  # fmt: skip
    return Timeline(arrivals, irq, handed, occupancy)


__all__ = ["ModerationSettings", "Timeline", "simulate", "simulate_golden"]
_ = os  # NUMBA_DISABLE_JIT=1 runs the loop as plain Python (coverage sees the source)
