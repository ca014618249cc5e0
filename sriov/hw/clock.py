"""The simulation engine: integer nanoseconds and one deterministic queue of events.

Everything that takes time in the model runs here, never on the host's clock: interrupt
moderation and delivery, NAPI's polls, the PF driver's mailbox task, driver waits and timeouts,
and frames offered at their arrival times (`SimClock.run_frames`). Events due at the same
instant run in the order they were scheduled.

`SimClock`, `EventHandle`, `Vector` (one MSI-X vector's moderation and message) and `IrqRouter`
(queue completions to vectors) are the compiled ones (``sriov/_fp_engine.pxi``);
``SRIOV_NO_EXTENSIONS=1`` selects the plain-Python twins in `sriov.golden.engine`, which read
as the specification:

* ``schedule(delay, action)`` / ``schedule_at(time, action)`` -> `EventHandle` (``time``,
  ``cancel()``); ``run_until(t)``, ``run_before(t)``, ``advance(ns)``, ``run_pending()``;
  ``now``, ``next_event_time()``, ``pending()``, ``events_run``.
"""

from __future__ import annotations

from sriov.kernels import impl

SimClock = impl.SimClock
EventHandle = impl.EventHandle
Vector = impl.Vector
IrqRouter = impl.IrqRouter

__all__ = ["EventHandle", "IrqRouter", "SimClock", "Vector"]
