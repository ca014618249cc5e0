"""The receive poll and NAPI's poll cycle in plain Python: twins of ``sriov/_fp_napi.pxi``.

Two base classes hold the state the per-poll work touches, so that the compiled twins can keep
it in C: `RxRingState` is the base of `sriov.drivers.rings.RxRing` (its ``poll``), `NapiCore` the
base of `sriov.drivers.napi.Napi` (``_poll`` and ``_end``: one poll, and a poll's end with the
chain of polls after it). The subclasses own everything else (bring-up, refill, the wrapping
frame's bounce copy, the batch views, completion, the stack backlog, traces). Read these as the
specification of the compiled ones.
"""

from __future__ import annotations

from sriov.drivers import coalesce
from sriov.errors import ConfigError
from sriov.hw import regs as R


class RxRingState:
    """The per-poll state of a receive ring (`sriov.drivers.rings.RxRing` derives from this).

    ``_ntu``/``_ntc``: next_to_use / next_to_clean; ``running``; ``last_bytes``: frame bytes of
    the last poll; ``frames``: frames taken in all; ``_view_frames``/``_views``: the last poll's
    (batch, vlans) views, reused by polls that take as many frames (``_view_cache``: every size
    made so far); ``last_vlan``.
    """

    def __init__(self) -> None:
        self._core = None
        self.fn = None
        self._regs: tuple[int, ...] = ()
        self._ntu = 0
        self._ntc = 0
        self.running = False
        self.last_bytes = 0
        self.frames = 0
        self.last_frames = 0  # frames the last poll returned
        self._view_frames = -1
        self._views: tuple = ()
        self._view_cache: dict[int, tuple] = {}
        self.last_vlan = None

    def poll(self, budget: int = 64):
        """Up to ``budget`` received frames as zero-copy views (valid until the next poll).

        The offsets/lengths arrays of the returned `Batch` are the ring's own (reused by the next
        poll), so a poll allocates no per-frame object; ``last_vlan`` holds each frame's VLAN tag
        (0 when the descriptor had no VP).
        """
        if not isinstance(budget, int) or budget < 0:
            raise ConfigError(f"budget must be a non-negative int, got {budget!r}")
        if budget == 0 or not self.running:
            self.last_frames = 0
            return self._poll_idle()
        # refill (the last poll's buffers), tail, scan: one call (ixgbevf_clean_rx_irq's order)
        core = self._core
        self._ntu, unwritten, frames, used, wrap = core.cycle(self._ntu, self._ntc, budget)
        self._after_scan(unwritten, used, wrap)
        if frames != self._view_frames:  # NAPI polls take the same number most of the time
            cached = self._view_cache.get(frames)
            if cached is None:
                self._make_views(frames)
            else:
                self._views = cached
                self._view_frames = frames
        batch, self.last_vlan = self._views
        self.frames += frames
        self.last_frames = frames
        return batch

    def release(self) -> None:
        """Give the buffers of the last poll back to the hardware now (their views become invalid)."""
        self._refill_to((self._ntc - 1) % self._core.count)

    def discard(self, budget: int | None = None) -> int:
        """Take completed frames and give their buffers straight back (a driver that drops
        everything, XDP_DROP-style); returns how many frames there were (at most ``budget``,
        default the whole ring)."""
        if budget is not None and (not isinstance(budget, int) or budget < 0):
            raise ConfigError(f"budget must be a non-negative int or None, got {budget!r}")
        if not self.running:
            return 0
        core = self._core
        # release + scan + release as one call on the ring core (one tail write)
        self._ntu, unwritten, frames, used, wrap = core.recycle(
            self._ntu, self._ntc, core.count - 1 if budget is None else budget
        )
        self._after_scan(unwritten, used, wrap)
        self.frames += frames
        return frames

    def _after_scan(self, unwritten: bool, used: int, wrap: int) -> None:
        """After the ring core's call: the tail it could not store, the frame that wraps round
        the ring, next_to_clean, the bytes it took."""
        core = self._core
        if unwritten:
            self.fn.write32(self._regs[4], self._ntu)
            self._bind_tail()
        if wrap >= 0:
            self._took(used, wrap)
        else:
            self._ntc = (self._ntc + used) % core.count
        self.last_bytes = core.last_bytes

    # the subclass's part
    def _refill_to(self, stop: int) -> None:  # pragma: no cover - RxRing defines it
        raise NotImplementedError

    def _poll_idle(self):  # pragma: no cover - RxRing defines it
        raise NotImplementedError

    def _bind_tail(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _took(self, used: int, wrap: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _make_views(self, frames: int) -> None:  # pragma: no cover
        raise NotImplementedError


class NicState:
    """What NAPI reads of a VF driver's interface on every poll and interrupt
    (`sriov.drivers.vf.VfNic` derives from this): ``function``, ``clock``, ``rx_ring``,
    ``on_receive``, ``napi``, ``is_up``, ``rx_usecs``, ``_irq_counts`` (interrupts per vector),
    ``_mbx_vector``. The subclass sets them all; the compiled twin keeps them in C fields."""

    function = clock = rx_ring = on_receive = napi = rx_usecs = _mbx_vector = None
    is_up = False

    def _msix(self, vector: int) -> None:
        """An MSI-X vector injected by the hypervisor: counted; the mailbox vector goes to
        ``_msix_other`` (``ixgbevf_msix_other``), a queue vector schedules NAPI
        (``ixgbevf_msix_clean_rings``: NAPI re-enables the vector when its cycle completes)."""
        counts = self._irq_counts
        if not 0 <= vector < len(counts):
            return
        counts[vector] += 1
        if vector == self._mbx_vector:
            self._msix_other(vector)
        else:
            self.napi.interrupt(vector)

    def _msix_other(self, vector: int) -> None:  # pragma: no cover - VfNic defines it
        raise NotImplementedError


def sink(batch) -> None:
    """The guest stack that drops what it receives (``nic.on_receive = sink``): NAPI's polls take
    the frames and give their buffers back (the compiled twin makes no Python call for it)."""


class NapiCore:
    """NAPI's per-poll state and work (`sriov.drivers.napi.Napi` derives from this).

    ``config`` (a `NapiConfig`: budget, guest costs); ``nic``; ``scheduled``; ``trace``;
    ``_took``: frames the last poll took; ``_polls``, ``_stack_packets``, ``_stack_bytes``,
    ``_completes``: counters; ``_cycle_packets``/``_cycle_bytes``: since the last ITR update;
    ``itr``, ``rx_range``, ``tx_range``: the adaptive ITR state. A poll's end is an event of the
    engine (cancelled by `_cancel_end`).
    """

    def __init__(self) -> None:
        self.nic = None
        self.config = None
        self.enabled = True
        self.scheduled = False
        self.vector = 0
        self.trace = None
        self._end_event = None
        self._took = 0
        self._polls = 0
        self._completes = 0
        self.adaptive_usecs = 1
        self.itr = coalesce.ITR_20K
        self.rx_range = self.tx_range = coalesce.LOWEST_LATENCY
        self._stack_packets = 0
        self._stack_bytes = 0
        self._cycle_packets = 0
        self._cycle_bytes = 0

    @property
    def _end_pending(self) -> bool:
        return self._end_event is not None

    def interrupt(self, vector: int) -> None:
        """The queue vector's handler (``ixgbevf_msix_clean_rings``): schedule a poll cycle."""
        nic = self.nic
        if self.trace is not None:
            self.trace.interrupt(nic.clock.now)
        if not self.enabled or self.scheduled or not nic.is_up or nic.rx_ring is None:
            return
        self.vector = vector
        self.scheduled = True
        self._poll(nic.rx_ring)  # the softirq runs as the hard interrupt returns

    def _cancel_end(self) -> None:
        """Forget the pending poll end (the ring was reset or stopped)."""
        if self._end_event is not None:
            self._end_event.cancel()
            self._end_event = None

    def _poll(self, ring) -> None:
        """One poll at the clock's time: take up to ``budget`` frames, put the poll's end on the
        clock, hand the frames to the stack."""
        nic = self.nic
        cfg = self.config
        clock = nic.clock
        batch = ring.poll(cfg.budget)
        took = ring.last_frames
        self._polls += 1
        # The poll's end is on the clock before the stack sees anything: a stack callback that
        # raises cannot leave NAPI scheduled forever.
        self._took = took
        self._end_event = clock._after(cfg.poll_overhead_ns + took * cfg.per_frame_ns, self._end)
        if took:
            nbytes = ring.last_bytes
            self._stack_packets += took
            self._stack_bytes += nbytes
            self._cycle_packets += took
            self._cycle_bytes += nbytes
            if self.trace is not None:
                self._record_taken(clock.now + cfg.poll_overhead_ns, took)  # no clock time taken yet
            callback = nic.on_receive
            if callback is not None:  # the guest stack's hand-off
                callback(batch)
            else:
                self._to_stack(batch)

    def _end(self) -> None:
        """A poll's end (an engine event): poll again if it used the whole budget, else complete."""
        self._end_event = None
        nic = self.nic
        ring = nic.rx_ring
        if ring is None or not nic.is_up:
            self.scheduled = False
            return
        if self._took < self.config.budget:
            self._complete(ring)
        else:
            self._poll(ring)  # budget used up: poll again (its ring.poll refills first), vector stays masked

    def _complete(self, ring) -> None:
        """The cycle's last poll took less than the budget: refill (the poll's buffers go back to
        the device, one tail write), ``napi_complete_done``, adaptive ITR (rx-usecs
        ``adaptive_usecs``), ``ixgbevf_irq_enable_queues`` (VTEIMS = the vector's bit)."""
        nic = self.nic
        ring.release()
        self.scheduled = False
        self._completes += 1
        if nic.rx_usecs == self.adaptive_usecs:
            self._update_itr()
        nic.function.write32(R.VTEIMS, 1 << self.vector)

    def _update_itr(self) -> None:
        """``ixgbevf_set_itr`` from what this vector's ring moved since the last update
        (`coalesce.adaptive_itr`, RX only); VTEITR written when the ITR changes."""
        state = coalesce.ItrState(itr=self.itr, rx_range=self.rx_range, tx_range=self.tx_range)
        new = coalesce.adaptive_itr(state, self._cycle_bytes, self._cycle_packets)
        self._cycle_bytes = self._cycle_packets = 0
        self.rx_range, self.tx_range = new.rx_range, new.tx_range
        if new.itr != self.itr:
            self.itr = new.itr
            coalesce.write_eitr(self.nic.function, self.vector, new.itr)

    # the subclass's part
    def _record_taken(self, start: int, took: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _to_stack(self, batch) -> None:  # pragma: no cover
        raise NotImplementedError


def discard_rings(rings, budget: int | None = None) -> int:
    """`RxRingState.discard` of every ring in ``rings``, in order; the frames taken in all. Bad
    arguments (a budget that is not a non-negative int, something that is not a ring, a ring
    whose indices are outside it) raise before any ring is touched."""
    if budget is not None and (not isinstance(budget, int) or budget < 0):
        raise ConfigError(f"budget must be a non-negative int or None, got {budget!r}")
    items = tuple(rings)
    for ring in items:
        if not hasattr(ring, "discard"):
            raise ConfigError(f"discard_rings() takes receive rings, got {type(ring).__name__}")
        if isinstance(ring, RxRingState) and ring.running and ring._core is not None:
            count = ring._core.count
            if not (0 <= ring._ntu < count and 0 <= ring._ntc < count):
                raise ConfigError(
                    f"next_to_use {ring._ntu} / next_to_clean {ring._ntc} outside the {count}-descriptor ring"
                )
    return sum(ring.discard(budget) for ring in items)
