"""NAPI for the VF driver: interrupts schedule polls of the receive ring on the simulation clock.

What ixgbevf does (facts from its sources; the code is ours):

* The queue vector's MSI-X handler (``ixgbevf_msix_clean_rings``) only schedules NAPI. The
  device has already masked the vector (VTEIAM, auto-mask) and cleared its cause (VTEIAC).
* ``ixgbevf_poll`` cleans up to ``budget`` frames. If it used the whole budget, the NAPI core
  polls again without re-enabling the interrupt; otherwise ``napi_complete_done``, then, in
  adaptive mode (rx-usecs 1), ``ixgbevf_set_itr`` (VTEITR written only when the value changes),
  then ``ixgbevf_irq_enable_queues``: VTEIMS = the vector's bit.

Guest CPU time is model time (`NapiConfig`): a poll that takes ``k`` frames lasts
``poll_overhead_ns + k * per_frame_ns``; frame ``j`` (1-based) of the poll reaches the guest
stack at ``start + poll_overhead_ns + j * per_frame_ns``; the buffers go back to the ring
(refill, one tail write) when the poll ends. These are the rules of the Numba timeline
(`sriov.timeline`), so the full model and the kernel can be held to the same answers.

Where the frames go (the "guest stack"): ``nic.on_receive(batch)`` when the guest set one
(zero-copy views, valid during the call; `SINK` drops them without a Python call), otherwise a
bounded backlog that ``nic.rx_poll`` returns from (copies: the ring's buffers are reused), like
a socket receive queue. Frames that find the backlog full are dropped and counted
(``rx_backlog_dropped``). Every batch carries each frame's arrival time (``timestamps_ns``).

NAPI's steps are events of the simulation engine (`sriov.hw.clock`): the interrupt's delivery
starts a cycle and each poll's end is an event, so a cycle runs in the engine.

`RxTrace` is instrumentation, not driver state: NAPI records, per frame handed to the stack,
its arrival time and when it was handed over, and when each interrupt reached the guest;
latency percentiles and interrupt rates come from there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sriov import kernels
from sriov.batch import Batch
from sriov.drivers import coalesce
from sriov.errors import ConfigError

if TYPE_CHECKING:
    from sriov.drivers.vf import VfNic

NAPI_POLL_WEIGHT = 64  # the kernel's default NAPI budget, which ixgbevf uses
NETDEV_MAX_BACKLOG = 1000  # Linux default; here: frames handed to the stack that nobody read yet
SINK = kernels.impl.sink  # ``nic.on_receive = SINK``: a guest stack that drops what it receives


@dataclass(frozen=True)
class NapiConfig:
    """Guest-side costs and limits of the receive path (model choices, in ns and frames).

    The defaults are those of `sriov.timeline.ModerationSettings`: 1 us per poll (softirq entry,
    ring bookkeeping, the tail write) and 50 ns per frame (descriptor, skb, protocol hand-off).
    """

    budget: int = NAPI_POLL_WEIGHT
    poll_overhead_ns: int = 1_000
    per_frame_ns: int = 50
    backlog: int = NETDEV_MAX_BACKLOG

    def __post_init__(self) -> None:
        for name in ("budget", "poll_overhead_ns", "per_frame_ns", "backlog"):
            value = getattr(self, name)
            low = 1 if name == "budget" else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")


class _Series:
    """A growable int64 array (amortised doubling), for traces of any length."""

    __slots__ = ("data", "n")

    def __init__(self) -> None:
        self.data = np.empty(1024, np.int64)
        self.n = 0

    def _room(self, k: int) -> None:
        if self.n + k > len(self.data):
            bigger = np.empty(max(2 * len(self.data), self.n + k), np.int64)
            bigger[: self.n] = self.data[: self.n]
            self.data = bigger

    def extend(self, values: np.ndarray) -> None:
        k = len(values)
        self._room(k)
        self.data[self.n : self.n + k] = values
        self.n += k

    def fill(self, value: int, k: int) -> None:
        self._room(k)
        self.data[self.n : self.n + k] = value
        self.n += k

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def clear(self) -> None:
        self.n = 0


class RxTrace:
    """Arrival, hand-off and interrupt times of one nic's receive queue (simulation ns).

    One entry per frame handed to the stack, in order: its arrival time (what the device
    recorded for it; 0 when its sender gave none, e.g. `port.wire.receive` of a batch without
    times) and when it was handed over. Frames without a known arrival are left out of the
    latencies.
    """

    def __init__(self) -> None:
        self.arrival = _Series()
        self.handed = _Series()
        self.irq = _Series()  # when each queue-vector interrupt reached the guest

    def taken(self, arrivals_ns: np.ndarray, handed_ns: np.ndarray) -> None:
        """The driver took frames that arrived at ``arrivals_ns``; frame k reached the stack at
        ``handed_ns[k]``."""
        self.arrival.extend(arrivals_ns)
        self.handed.extend(handed_ns)

    def interrupt(self, now: int) -> None:
        """A queue-vector interrupt reached the guest at ``now``."""
        self.irq.fill(now, 1)

    # -- results --------------------------------------------------------------------------------
    def latencies_ns(self) -> np.ndarray:
        """Arrival -> handed-to-the-stack latency of every frame whose arrival is known."""
        a, h = self.arrival.view(), self.handed.view()
        known = (a > 0) & (a <= h)
        return h[known] - a[known]

    def summary(self, span_ns: int | None = None) -> dict[str, float]:
        """What users read: interrupts (per second over ``span_ns``, default first arrival to last
        hand-off), frames handed over, frames per interrupt, latency p50/p99/p99.9 in ns."""
        lat = self.latencies_ns()
        irqs = self.irq.n
        frames = self.handed.n
        if span_ns is None:
            known = self.arrival.view()[self.arrival.view() > 0]
            span_ns = int(self.handed.view()[-1] - known.min()) if frames and len(known) else 0
        p50, p99, p999 = np.percentile(lat, (50, 99, 99.9)) if len(lat) else (float("nan"),) * 3
        return {
            "interrupts": irqs,
            "interrupts_per_s": irqs * 1e9 / span_ns if span_ns > 0 else float("nan"),
            "frames": frames,
            "frames_per_interrupt": frames / irqs if irqs else float("nan"),
            "latency_p50_ns": float(p50),
            "latency_p99_ns": float(p99),
            "latency_p999_ns": float(p999),
        }

    def clear_results(self) -> None:
        """Forget the recorded hand-offs and interrupts (frames in the ring stay matched)."""
        self.arrival.clear()
        self.handed.clear()
        self.irq.clear()


class Napi(kernels.impl.NapiCore):
    """The NAPI context of a VF driver's queue vector.

    The interrupt (``interrupt``), one poll, a poll's end (an engine event), completion and the
    adaptive ITR update are the base class's (`sriov.golden.napi.NapiCore`, compiled in
    ``sriov/_fp_napi.pxi``); this class is the rest: the stack's backlog, reset, counters."""

    def __init__(self, nic: VfNic, config: NapiConfig | None = None) -> None:
        super().__init__()
        self.nic = nic
        self.config = config or NapiConfig()
        self.enabled = True  # False: the queue vector's handler does nothing (poll with rx_poll)
        self.scheduled = False  # NAPI_STATE_SCHED: a poll cycle is running
        self.vector = 0
        self.itr, self.rx_range, self.tx_range = (
            coalesce.ITR_20K,
            coalesce.LOWEST_LATENCY,
            coalesce.LOWEST_LATENCY,
        )
        self.trace: RxTrace | None = None
        self._took = 0  # frames the poll whose end is pending took
        self._cycle_bytes = 0
        self._cycle_packets = 0
        self._backlog: deque[Batch] = deque()
        self._backlog_frames = 0
        self._polls = self._stack_packets = self._stack_bytes = 0
        self._completes = 0
        self.adaptive_usecs = coalesce.ADAPTIVE
        self._backlog_dropped = 0

    @property
    def itr_state(self) -> coalesce.ItrState:
        """The adaptive ITR state of this vector (``ixgbevf_set_itr``'s inputs)."""
        return coalesce.ItrState(itr=self.itr, rx_range=self.rx_range, tx_range=self.tx_range)

    @property
    def counters(self) -> dict[str, int]:
        """NAPI and stack counters: ``napi_polls``, ``napi_completes``, ``rx_stack_packets``,
        ``rx_stack_bytes``, ``rx_backlog_dropped`` (a snapshot)."""
        return {
            "napi_polls": self._polls,
            "napi_completes": self._completes,
            "rx_stack_packets": self._stack_packets,
            "rx_stack_bytes": self._stack_bytes,
            "rx_backlog_dropped": self._backlog_dropped,
        }

    def configure(self, config: NapiConfig) -> None:
        """New guest costs / budget / backlog size (takes effect from the next poll)."""
        if not isinstance(config, NapiConfig):
            raise ConfigError(f"configure() takes a NapiConfig, got {type(config).__name__}")
        self.config = config

    def coalesce_changed(self, rx_usecs: int) -> None:
        """``ethtool -C rx-usecs``: adaptive mode restarts from its 20K/s setting, as ixgbevf does."""
        self.itr = coalesce.itr_for_rx_usecs(rx_usecs)
        self.rx_range = self.tx_range = coalesce.LOWEST_LATENCY
        self._cycle_bytes = self._cycle_packets = 0

    def reset(self) -> None:
        """The ring was (re)programmed or stopped: no poll in flight, frames in the ring are gone."""
        self._cancel_end()
        self.scheduled = False
        self._cycle_bytes = self._cycle_packets = 0

    # -- the interrupt and the poll cycle ---------------------------------------------------------
    def _record_taken(self, start: int, took: int) -> None:
        """Trace: the poll that starts handing frames over at ``start`` took ``took`` frames (the
        ring's last poll: their arrival times are its timestamps)."""
        arrivals = self.nic.rx_ring.poll_timestamps(took)
        self.trace.taken(arrivals, start + self.config.per_frame_ns * np.arange(1, took + 1, dtype=np.int64))

    # -- the guest stack --------------------------------------------------------------------------
    def _to_stack(self, batch: Batch) -> None:
        callback: Callable[[Batch], Any] | None = self.nic.on_receive
        if callback is not None:
            callback(batch)
            return
        room = self.config.backlog - self._backlog_frames
        n = len(batch)
        if n > room:
            self._backlog_dropped += n - max(room, 0)
            if room <= 0:
                return
            batch = batch[:room]
        kept = batch.compact()  # the ring reuses these buffers at the next refill
        self._backlog.append(kept)
        self._backlog_frames += len(kept)

    def backlog_frames(self) -> int:
        """Frames handed to the stack that ``rx_poll`` has not returned yet."""
        return self._backlog_frames

    def rx_poll(self, budget: int) -> Batch:
        """``nic.rx_poll``: what NAPI handed to the stack first, else straight from the ring."""
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
            raise ConfigError(f"budget must be a non-negative int, got {budget!r}")
        if self._backlog and budget:
            head = self._backlog[0]
            if len(head) <= budget:
                self._backlog.popleft()
                out = head
            else:
                out = head[:budget]
                self._backlog[0] = head[budget:]
            self._backlog_frames -= len(out)
            return out  # type: ignore[return-value]
        nic = self.nic
        batch = nic.rx_ring.poll(budget)  # busy polling: the caller is the stack
        if len(batch) and self.trace is not None:
            self.trace.taken(batch.timestamps_ns, np.full(len(batch), nic.clock.now, np.int64))
        return batch

    def stats(self) -> dict[str, int]:
        """NAPI and stack counters (``napi_polls``, ``rx_stack_packets``, ...)."""
        return self.counters


__all__ = ["NAPI_POLL_WEIGHT", "NETDEV_MAX_BACKLOG", "Napi", "NapiConfig", "RxTrace"]
