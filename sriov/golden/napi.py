"""The receive poll and NAPI's poll cycle in plain Python: twins of ``sriov/_fp_napi.pxi``.

Two base classes hold the state the per-poll work touches, so that the compiled twins can keep
it in C: `RxRingState` is the base of `sriov.drivers.rings.RxRing` (its ``poll``), `NapiCore` the
base of `sriov.drivers.napi.Napi` (``_poll`` and ``_end``: one poll, and a poll's end with the
chain of polls after it). The subclasses own everything else (bring-up, refill, the wrapping
frame's bounce copy, the batch views, completion, the stack backlog, traces). Read these as the
specification of the compiled ones.
"""

from __future__ import annotations

import numpy as np

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


class NapiCore:
    """NAPI's per-poll state and work (`sriov.drivers.napi.Napi` derives from this).

    ``config`` (a `NapiConfig`: budget, guest costs); ``nic``; ``scheduled``; ``chain``: run a
    poll whose end is the clock's next event inline (`SimClock.take`); ``trace``; ``_event``:
    the pending poll end; ``_took``: frames that poll took; ``_polls``, ``_stack_packets``,
    ``_stack_bytes``, ``_completes``: counters; ``_cycle_packets``/``_cycle_bytes``: since the
    last ITR update.
    """

    def __init__(self) -> None:
        self.nic = None
        self.config = None
        self.enabled = True
        self.scheduled = False
        self.chain = True
        self.vector = 0
        self.trace = None
        self._event = None
        self._took = 0
        self._polls = 0
        self._completes = 0
        self.adaptive_usecs = 1
        self.itr_state = None
        self._itr_memo: dict = {}
        self._stack_packets = 0
        self._stack_bytes = 0
        self._cycle_packets = 0
        self._cycle_bytes = 0

    def interrupt(self, vector: int) -> None:
        """The queue vector's handler (``ixgbevf_msix_clean_rings``): schedule a poll cycle."""
        nic = self.nic
        if self.trace is not None:
            self.trace.interrupt(nic.clock.now)
        if not self.enabled or self.scheduled or not nic.is_up or nic.rx_ring is None:
            return
        self.vector = vector
        self.scheduled = True
        self._poll()  # the softirq runs as the hard interrupt returns

    def _live_ring(self):
        """The nic's ring for the next step of the cycle, or None, with NAPI unscheduled, when the
        nic went down or lost its ring (the stack callback may have done either)."""
        self._event = None
        nic = self.nic
        ring = nic.rx_ring
        if ring is None or not nic.is_up:
            self.scheduled = False
            return None
        return ring

    def _poll(self) -> None:
        """One poll at the clock's time: take up to ``budget`` frames, put the poll's end on the
        clock, hand the frames to the stack."""
        ring = self._live_ring()
        if ring is None:
            return
        nic = self.nic
        cfg = self.config
        clock = nic.clock
        batch = ring.poll(cfg.budget)
        took = ring.last_frames
        self._polls += 1
        # The poll's end is on the clock before the stack sees anything: a stack callback that
        # raises cannot leave NAPI scheduled forever.
        self._took = took
        self._event = clock.schedule(cfg.poll_overhead_ns + took * cfg.per_frame_ns, self._end)
        if took:
            nbytes = ring.last_bytes
            self._stack_packets += took
            self._stack_bytes += nbytes
            self._cycle_packets += took
            self._cycle_bytes += nbytes
            if self.trace is not None:
                self._record_taken(clock.now + cfg.poll_overhead_ns, took)  # no clock time taken yet
            callback = nic.on_receive
            if callback is not None:  # the guest stack's hand-off (the common case, inline)
                callback(batch)
            else:
                self._to_stack(batch)

    def _end(self) -> None:
        """A poll's end (a clock event): poll again if it used the whole budget, else complete.

        The chain: when the next poll's end is the event the clock would run next anyway
        (`SimClock.take`), it runs here at once instead of through the queue, and so on; the
        history is the one of an event per poll. Each step re-reads the state the stack callback
        may have changed (nic down, config, callback, ``chain``)."""
        clock = self.nic.clock
        while True:
            ring = self._live_ring()
            if ring is None:
                return
            if self._took < self.config.budget:
                self._complete(ring)
                return
            self._poll()  # budget used up: poll again (its ring.poll refills first), vector stays masked
            event = self._event
            if event is None or not self.chain or not clock.take(event):
                return

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
        """``ixgbevf_set_itr`` from what this vector's ring moved since the last update: the next
        adaptive state (``_itr_answer``, remembered in ``_itr_memo``: the rule is a pure function
        of the state and the load); VTEITR written when the ITR changes."""
        state = self.itr_state
        key = (state.itr, state.rx_range, state.tx_range, self._cycle_bytes, self._cycle_packets)
        answer = self._itr_memo.get(key)
        if answer is None:
            answer = self._itr_answer(key)
        new, eitr = answer
        self._cycle_bytes = self._cycle_packets = 0
        if new.itr != state.itr:  # coalesce.write_eitr for a VF vector (this one is valid)
            self.nic.function.write32(R.VTEITR(self.vector), eitr)
        self.itr_state = new

    # the subclass's part
    def _itr_answer(self, key: tuple[int, ...]) -> tuple:  # pragma: no cover - Napi defines it
        raise NotImplementedError

    def _record_taken(self, start: int, took: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _to_stack(self, batch) -> None:  # pragma: no cover
        raise NotImplementedError


class VfFire:
    """What VF vector ``vector`` does when its moderator fires it (``VfInterrupts._fired``): VTEIAC
    auto-clears its cause bit in VTEICR, VTEIAM auto-masks it in VTEIMS (``words``: the VF's
    register words; ``w_*``: their word indices), and the function sends the MSI-X message
    (``fn.signal_msix``)."""

    def __init__(self, words, vector: int, fn, w_icr: int, w_ims: int, w_iac: int, w_iam: int) -> None:
        n = len(words)
        if not 0 <= vector < 32 or not all(0 <= w < n for w in (w_icr, w_ims, w_iac, w_iam)):
            raise ConfigError(f"vector {vector} / register words outside the {n}-word registers")
        self.words = words
        self.w_icr, self.w_ims, self.w_iac, self.w_iam = w_icr, w_ims, w_iac, w_iam
        self.vector = vector
        self.fn = fn

    def __call__(self) -> None:
        words = self.words
        bit = 1 << self.vector
        if int(words[self.w_iac]) & bit:
            words[self.w_icr] = int(words[self.w_icr]) & ~bit
        if int(words[self.w_iam]) & bit:
            words[self.w_ims] = int(words[self.w_ims]) & ~bit
        self.fn.signal_msix(self.vector)


class Inject:
    """A VF's MSI-X vector routed into its VM: the hypervisor counts the injection under ``key``
    in ``injected`` and runs the guest driver's handler (``nic._msix(vector)``)."""

    def __init__(self, injected: dict, key: str, nic) -> None:
        self.injected = injected
        self.key = key
        self.nic = nic

    def __call__(self, vector: int) -> None:
        self.injected[self.key] = self.injected.get(self.key, 0) + 1
        self.nic._msix(vector)


class MsixDeliver:
    """The clock event that delivers MSI-X ``vector`` of function ``fn``: ``fn._deliver_msix``."""

    def __init__(self, fn, vector: int) -> None:
        self.fn = fn
        self.vector = vector

    def __call__(self) -> None:
        self.fn._deliver_msix(self.vector)


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


def written_queues(counts, limit: int) -> list[int] | None:
    """The queues ``q`` with ``counts[q] != 0`` (ascending) when ``counts`` is a 1-D C-contiguous
    numpy array of dtype uint32 or int64 (native order) with at most ``limit`` entries and no
    negative count; None for anything else (the caller then checks it the long way)."""
    if type(counts) is not np.ndarray or counts.dtype not in (np.dtype(np.uint32), np.dtype(np.int64)):
        return None
    if counts.ndim != 1 or counts.shape[0] > limit or not counts.flags.c_contiguous or (counts < 0).any():
        return None
    return counts.nonzero()[0].tolist()


__all__ = [
    "Inject",
    "MsixDeliver",
    "NapiCore",
    "NicState",
    "RxRingState",
    "VfFire",
    "discard_rings",
    "written_queues",
]
