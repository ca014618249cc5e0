"""The simulation engine in plain Python: the twin of ``sriov/_fp_engine.pxi``, and its specification.

One object owns simulated time (`SimClock`): integer nanoseconds and one queue of events, run in
(time, order-of-scheduling) order. Control-plane events (the mailbox, watchdogs, link changes,
user callbacks) and data-plane events (an EITR interval's end, an MSI-X message's arrival, a NAPI
poll's end) are all events of this queue; the compiled twin keeps the data-plane ones in C.

* `Vector`: one MSI-X vector of a PCI function. Its mask, cause and auto-mask are the function's
  registers; the vector holds only its EITR timing (interval, last fire, an interrupt owed, the
  timer of the interval's end) and its MSI-X message in flight.
* `IrqRouter`: a port's queue completions to the vectors their (VT)IVAR entries name.
* `SimClock.run_frames`: frames offered to a port at their arrival times, one at a time here
  (the event-by-event model the compiled engine is held to): every event due before a frame
  runs first, the frame goes through the receive kernel, its completions raise their causes at
  its arrival time, and the events due at the same instant run after it.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush

import numpy as np

from sriov.errors import ConfigError
from sriov.golden.rx import DropReason
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.hw.eitr import interval_ns_from_eitr

CLOCK_MAX = (1 << 63) - 1
NEVER = -(1 << 62)  # "last fired": long enough ago that any interval has passed
_TIME, _SEQ, _ACTION = 0, 1, 2  # the slots of a queue entry
W = 4  # bytes per register word


def time_arg(name: str, value: object) -> int:
    """A time or delay argument: an int (not bool) in 0 .. 2**63 - 2 ns."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int number of ns, got {value!r}")
    if not 0 <= value < CLOCK_MAX:
        raise ConfigError(f"{name} must be in 0..{CLOCK_MAX - 1} ns, got {value!r}")
    return value


class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    __slots__ = ("_entry",)

    def __init__(self, entry: list) -> None:
        self._entry = entry

    @property
    def time(self) -> int:
        """When the event is due, in ns."""
        return self._entry[_TIME]

    def cancel(self) -> None:
        """Drop the event if it has not run yet."""
        self._entry[_ACTION] = None


class SimClock:
    """Simulated time in integer nanoseconds and the one queue of events.

    Events due at the same instant run in the order they were scheduled. ``advance(ns)`` may be
    called from inside an event (a driver waiting on the mailbox inside an interrupt handler
    does): time never goes backwards, and an inner advance that overshoots the outer target
    leaves the clock later than the outer call asked for.
    """

    def __init__(self, start_ns: int = 0) -> None:
        if not isinstance(start_ns, int) or isinstance(start_ns, bool) or not 0 <= start_ns < CLOCK_MAX:
            raise ConfigError(f"clock start must be an int >= 0 ns, got {start_ns!r}")
        self._now = start_ns
        self._queue: list[list] = []
        self._seq = 0
        self.events_run = 0

    @property
    def now(self) -> int:
        """Current simulated time, ns."""
        return self._now

    # -- scheduling ------------------------------------------------------------------------------
    def _after(self, delay_ns: int, action: Callable[[], object]) -> EventHandle:
        if delay_ns > CLOCK_MAX - self._now:
            raise ConfigError(f"event delay {delay_ns} ns overflows the clock")
        entry = [self._now + delay_ns, self._seq, action]
        self._seq += 1
        heappush(self._queue, entry)
        return EventHandle(entry)

    def schedule(self, delay_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` ``delay_ns`` ns from now (0 = at the next advance)."""
        delay = time_arg("delay_ns", delay_ns)
        if not callable(action):
            raise ConfigError(f"an event's action must be callable, got {action!r}")
        return self._after(delay, action)

    def schedule_at(self, time_ns: int, action: Callable[[], object]) -> EventHandle:
        """Run ``action`` at absolute time ``time_ns`` (not earlier than now)."""
        return self.schedule(max(0, time_arg("time_ns", time_ns) - self._now), action)

    def next_event_time(self) -> int | None:
        """Time of the earliest pending event, or None."""
        queue = self._queue
        while queue and queue[0][_ACTION] is None:
            heappop(queue)
        return queue[0][_TIME] if queue else None

    def pending(self) -> int:
        """Number of events not yet run (cancelled ones excluded)."""
        return sum(1 for e in self._queue if e[_ACTION] is not None)

    # -- running ---------------------------------------------------------------------------------
    def _run_next(self, limit: int) -> bool:
        """Run the earliest event if it is due at or before ``limit``; whether one ran."""
        if self.next_event_time() is None or self._queue[0][_TIME] > limit:
            return False
        entry = heappop(self._queue)
        action = entry[_ACTION]
        entry[_ACTION] = None  # ran: a later cancel() through its handle changes nothing
        if entry[_TIME] > self._now:
            self._now = entry[_TIME]
        self.events_run += 1
        action()
        return True

    def advance(self, ns: int) -> None:
        """Let ``ns`` nanoseconds pass, running every event due, in (time, order) order."""
        delay = time_arg("ns", ns)
        if delay > CLOCK_MAX - 1 - self._now:
            raise ConfigError(f"advancing by {ns} ns overflows the clock (now {self._now} ns)")
        self.run_until(self._now + delay)

    def run_until(self, time_ns: int) -> None:
        """Run every event due at or before ``time_ns`` and move the clock there."""
        target = time_arg("time_ns", time_ns)
        while self._run_next(target):
            pass
        if target > self._now:
            self._now = target

    def run_before(self, time_ns: int) -> None:
        """Run every event due strictly before ``time_ns`` and move the clock there.

        Events due at ``time_ns`` itself stay queued, so whatever the caller does next happens
        ahead of them at that instant (frame arrivals come before the timers they race).
        """
        target = time_arg("time_ns", time_ns)
        while self._run_next(target - 1):  # time is integer ns: "before t" is "at or before t - 1"
            pass
        if target > self._now:
            self._now = target

    def run_pending(self, limit_ns: int = 10**9) -> None:
        """Run events until the queue is empty or ``limit_ns`` of simulated time passed."""
        deadline = self._now + time_arg("limit_ns", limit_ns)
        while self._run_next(deadline):
            pass

    # -- frames at their arrival times -------------------------------------------------------------
    def run_frames(
        self, kernel, router: IrqRouter, data, offsets, lengths, timestamps, selected, delivered, reasons,
        queue_frames, min_latency_ns: int, max_run: int = 0,
    ) -> tuple[int, int]:  # fmt: skip
        """Offer every frame to ``kernel``'s port at its timestamp (non-decreasing): the events
        due before it run first, the frame goes through the receive flow (or, with the link
        down, never enters: LINK_DOWN), its completions raise their causes at its arrival time;
        the events due at its instant run after it; ``queue_frames[q]`` counts the frames written
        to PF queue ``q``. Returns ``(frames delivered to >= 1 pool,
        frames that arrived late)``: late when an event moved the clock past their time.
        ``min_latency_ns`` (the port's shortest MSI-X latency) and ``max_run`` bound the compiled
        twin's runs of frames; no answer depends on them."""
        n = len(offsets)
        if len(lengths) != n or len(timestamps) != n:
            raise ConfigError(f"offsets, lengths and timestamps differ in length ({n}, {len(lengths)})")
        if min(len(selected), len(delivered), len(reasons)) < n:
            raise ConfigError(f"selected, delivered and reasons must each have >= {n} slots")
        if len(queue_frames) < R.MAX_QUEUES:
            raise ConfigError(f"queue_frames must have >= {R.MAX_QUEUES} slots")
        if min_latency_ns < 0 or max_run < 0:
            raise ConfigError(f"min_latency_ns and max_run must be >= 0, got {min_latency_ns}, {max_run}")
        for k in range(1, n):
            if timestamps[k] < timestamps[k - 1]:
                raise ConfigError(f"frame {k} arrives before frame {k - 1}: timestamps must not decrease")
        accepted = late = 0
        for k in range(n):
            t = int(timestamps[k])
            while self._run_next(t - 1):
                pass
            if t > self._now:
                self._now = t
            elif t < self._now:
                late += 1
            one = slice(k, k + 1)
            if not router.link_is_up():
                router.link_down(selected[one], delivered[one], reasons[one])
                continue
            accepted += kernel.receive(
                data, offsets[one], lengths[one], timestamps[one], selected[one], delivered[one], reasons[one]
            )
            queue_frames += kernel.queue_frames
            router.raise_written(kernel)
        return accepted, late


class Vector:
    """One MSI-X vector of a PCI function: its EITR moderation (spec §5.10) and its message.

    Mask, cause and auto-mask are the function's registers (``regs``, 32-bit words): the vector
    is masked while its bit ``ims_bit`` in word ``ims`` is clear (``ims`` -1: never masked),
    ``icr`` holds its cause bit (-1: none, PF vectors 16..63), and when it fires the cause is
    auto-cleared if its bit in ``iac`` is set, and the vector auto-masked if
    its bit in ``iam`` is set. The vector keeps only what no register holds: its interval, when it
    last fired, an interrupt owed since then (``pending``), the timer of the interval's end, and
    its message in flight.

    The rules: a cause raised on an unmasked vector whose last interrupt is at least one interval
    old fires at once; otherwise it fires when the interval since the last interrupt ends; on a
    masked vector it waits for the unmask. Firing sends the MSI-X message, which reaches its
    handler ``latency_ns`` later; a message already in flight is not sent twice. The handler is
    a guest driver (``nic``: the hypervisor injects the vector into it) or a callable
    (``handler(number)``). ``on_fire``, when set, replaces the register work and the message (the
    PF's "other" causes do their own).
    """

    def __init__(
        self, clock: SimClock, regs: np.ndarray, number: int, icr: int = -1, icr_bit: int = 0, ims: int = -1,
        ims_bit: int = 0, iam: int = -1, iac: int = -1, iac_bit: int = 0,
        on_fire: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        n = len(regs)
        if not all(-1 <= x < n for x in (icr, ims, iam, iac)):
            raise ConfigError(f"register words {icr}/{ims}/{iam}/{iac} outside the {n}-word registers")
        self.clock = clock
        self.regs = regs
        self.number = number
        self.icr, self.icr_bit = icr, icr_bit
        self.ims, self.ims_bit = ims, ims_bit
        self.iam = iam
        self.iac, self.iac_bit = iac, iac_bit
        self.on_fire = on_fire
        self.interval_ns = 0
        self.last_fire = NEVER
        self.pending = False
        self.fired = 0
        self._timer: EventHandle | None = None
        self.latency_ns = 0
        self.in_flight = False
        self.delivered = 0
        self.injected = 0
        self.handler: Callable[[int], object] | None = None
        self.nic = None

    # -- what the registers say ---------------------------------------------------------------------
    def _bit(self, word: int, bit: int) -> bool:
        return bool(int(self.regs[word]) & bit)

    @property
    def masked(self) -> bool:
        """The vector may not fire: its bit in the mask register (EIMS / VTEIMS) is clear."""
        return self.ims >= 0 and not self._bit(self.ims, self.ims_bit)

    @property
    def auto_mask(self) -> bool:
        """Firing masks the vector: its bit in EIAM / VTEIAM is set."""
        return self.iam >= 0 and self._bit(self.iam, self.ims_bit)

    @property
    def timer_due(self) -> int:
        """When the running interval timer ends (-1: none running)."""
        return -1 if self._timer is None else self._timer.time

    # -- causes and register writes (the caller has written the register) ---------------------------
    def raise_cause(self) -> None:
        """A cause of this vector becomes set (a receive completion, a mailbox message)."""
        self.pending = True
        if not self.masked:
            self._try_fire()

    def unmask(self) -> None:
        """The mask bit was set (EIMS / VTEIMS): an interrupt owed fires, subject to the interval."""
        if self.pending and not self.masked:
            self._try_fire()

    def mask(self) -> None:
        """The mask bit was cleared (EIMC / VTEIMC): causes wait for the unmask."""
        self._cancel_timer()

    def clear_cause(self) -> None:
        """The cause was cleared (EICR read or write-1-to-clear) before the vector fired."""
        self.pending = False
        self._cancel_timer()

    def reprogram(self, interval_ns: int, reset_counter: bool) -> None:
        """An EITR write: the new interval now; without CNT_WDIS the interval counter restarts
        expired. An interrupt waiting for the old interval is re-decided against the new one."""
        if interval_ns < 0:
            raise ConfigError(f"interval must be >= 0 ns, got {interval_ns}")
        self.interval_ns = interval_ns
        if reset_counter:
            self.last_fire = NEVER
        self._cancel_timer()
        if self.pending and not self.masked:
            self._try_fire()

    def write_eitr(self, value: int) -> None:
        """An EITR / VTEITR write of ``value`` (the caller stores the register): interval = ITR
        field x 2.048 us; CNT_WDIS keeps the running interval's counter."""
        self.reprogram(interval_ns_from_eitr(value), not value & R.EITR_CNT_WDIS)

    def reset(self) -> None:
        """The function's reset: nothing owed, no interval, counter expired (counts are kept)."""
        self._cancel_timer()
        self.pending = False
        self.interval_ns = 0
        self.last_fire = NEVER

    # -- the state machine -----------------------------------------------------------------------------
    def _try_fire(self) -> None:
        due = self.last_fire + self.interval_ns
        now = self.clock.now
        if now >= due:
            self._fire()
        elif self._timer is None:
            self._timer = self.clock._after(due - now, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self.pending and not self.masked:
            self._fire()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._cancel_timer()
        self.pending = False
        self.last_fire = self.clock.now
        self.fired += 1
        if self.on_fire is not None:
            self.on_fire()
            return
        regs = self.regs
        if self.icr >= 0 and self.iac >= 0 and self._bit(self.iac, self.iac_bit):
            regs[self.icr] = int(regs[self.icr]) & ~self.icr_bit
        if self.iam >= 0 and self._bit(self.iam, self.ims_bit):
            regs[self.ims] = int(regs[self.ims]) & ~self.ims_bit
        self.signal()

    # -- the MSI-X message ---------------------------------------------------------------------------
    def signal(self) -> None:
        """Send the MSI-X message: not while one is in flight, only to a routed handler; it
        arrives ``latency_ns`` later."""
        if self.in_flight or (self.nic is None and self.handler is None):
            return
        self.in_flight = True
        self.clock._after(self.latency_ns, self._deliver)

    def _deliver(self) -> None:
        self.in_flight = False
        self.delivered += 1
        if self.nic is not None:
            self.injected += 1
            self.nic._msix(self.number)
        elif self.handler is not None:
            self.handler(self.number)


class IrqRouter:
    """Where a port's queue completions go (spec §4.5).

    PF queue ``q`` belongs to pool ``q // queues_per_pool``. A VF's pool raises the cause of the
    vector its VTIVAR entry names for its queue ``q % queues_per_pool`` (its VTEICR bit); any
    other queue the vector the PF's IVAR entry names (EICR bits 15:0 for vectors 0..15). The
    entries are read from the registers at each raise. A queue without a valid entry counts in
    ``unrouted[function]`` (index 64: the PF).
    """

    def __init__(self, device) -> None:
        self.device = device
        self.unrouted = np.zeros(65, np.int64)
        self._vf_vectors: list[list[Vector]] = []
        self._pf_vectors: list[Vector] = []

    def attach(self, vf_vectors: list, pf_vectors: list) -> None:
        """The vectors of the enabled VFs (one list of 3 per VF, in VF order) and the PF's 64."""
        if len(vf_vectors) > 63 or any(len(v) != R.VF_MSIX_VECTORS for v in vf_vectors):
            raise ConfigError(f"vf_vectors: at most 63 VFs of {R.VF_MSIX_VECTORS} vectors each")
        if pf_vectors and len(pf_vectors) != R.PF_MSIX_VECTORS:
            raise ConfigError(f"pf_vectors: {R.PF_MSIX_VECTORS} vectors")
        self._vf_vectors = [list(v) for v in vf_vectors]
        self._pf_vectors = list(pf_vectors)

    def link_is_up(self) -> bool:
        """LINKS.UP: the port has carrier."""
        return bool(int(self.device.regs[R.LINKS // W]) & R.LINKS_UP)

    def link_down(self, selected, delivered, reasons) -> None:
        """No carrier: the frames never enter the port (LINK_DOWN, counted in rx_link_down)."""
        selected[:] = 0
        delivered[:] = 0
        reasons[:] = DropReason.LINK_DOWN
        self.device.state.port_counters[C.PORT["rx_link_down"]] += len(reasons)

    def _qpp(self) -> int:
        mode = int(self.device.regs[R.GCR_EXT // W]) & R.GCR_EXT_VT_MODE_MASK
        return {R.GCR_EXT_VT_MODE_16: 8, R.GCR_EXT_VT_MODE_32: 4}.get(mode, 2)

    def raise_queue(self, q: int, tx: bool = False) -> None:
        """A completion on PF queue ``q`` (``tx``: a transmit completion): its vector's cause."""
        qpp = self._qpp()
        pool = q // qpp
        if pool < len(self._vf_vectors):
            vq = q - pool * qpp
            regs = self.device.vf_regs[pool]
            v = R.ivar_entry(int(regs[R.VTIVAR(vq >> 1) // W]), vq, tx)
            if v is None or v >= R.VF_MSIX_VECTORS:
                self.unrouted[pool] += 1
                return
            regs[R.VTEICR // W] = int(regs[R.VTEICR // W]) | 1 << v
            self._vf_vectors[pool][v].raise_cause()
            return
        if not self._pf_vectors or q >= R.MAX_QUEUES:
            self.unrouted[64] += 1
            return
        regs = self.device.regs
        v = R.ivar_entry(int(regs[R.IVAR(q >> 1) // W]), q, tx)
        if v is None or v >= R.PF_MSIX_VECTORS:
            self.unrouted[64] += 1
            return
        if v < 16:
            regs[R.EICR // W] = int(regs[R.EICR // W]) | 1 << v
        self._pf_vectors[v].raise_cause()

    def raise_queues(self, queues, tx: bool = False) -> None:
        """Completions on PF queues ``queues`` (ascending), at the clock's instant."""
        for q in queues:
            if not isinstance(q, int) or not 0 <= q < R.MAX_QUEUES:
                raise ConfigError(f"queue {q!r} outside 0..{R.MAX_QUEUES - 1}")
        for q in queues:
            self.raise_queue(q, tx)

    def raise_written(self, kernel) -> None:
        """The hook after a batch of ``kernel``'s: every queue it wrote to raises its cause."""
        for q in kernel.written:
            self.raise_queue(q)


__all__ = ["NEVER", "EventHandle", "IrqRouter", "SimClock", "Vector", "time_arg"]
