"""The simulation clock: integer nanoseconds and a deterministic event queue.

Everything that takes time in the model (interrupt delivery, the PF driver's mailbox task,
driver waits and timeouts, NAPI's polls) runs here, never on the host's clock. Events due at
the same instant run in the order they were scheduled.

`SimClock` and `EventHandle` are the compiled ones (``sriov/_fp_clock.pxi``: every interrupt
and poll of the model is an event, so the queue is in C); ``SRIOV_NO_EXTENSIONS=1`` selects the
plain-Python twin in `sriov.golden.clock`, which reads as the specification:

* ``schedule(delay, action)`` / ``schedule_at(time, action)`` -> `EventHandle` (``time``,
  ``cancel()``); ``run_until(t)``, ``run_before(t)``, ``advance(ns)``, ``run_pending()``;
  ``now``, ``next_event_time()``, ``pending()``, ``events_run``.
* ``run_target`` and ``take(handle)``: what an event may do to run its successor inline when
  that successor is the event the clock would run next anyway (NAPI's poll chain).
"""

from __future__ import annotations

from sriov.kernels import impl

SimClock = impl.SimClock
EventHandle = impl.EventHandle

__all__ = ["EventHandle", "SimClock"]
