"""Event-driven model of one receive queue's interrupt timeline (twin of ``sriov/timeline.py``).

Runs the real pieces on the simulation clock: the EITR state machine of the device
(the engine's `Vector`, over a mask register of its own), the injection latency, and a NAPI poll
loop in the guest. Frames are DMA'd into the ring at their arrival time; a full ring
drops the frame (ring overflow). The guest's poll takes up to ``budget`` waiting
frames, hands frame k of the poll to the stack at ``start + poll_overhead + (k+1) *
per_frame``, refills their descriptors when the poll ends, and then either polls again
(it used its whole budget) or completes and re-enables the vector.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sriov.golden.engine import SimClock, Vector


def simulate_queue(
    arrivals_ns: np.ndarray,
    interval_ns: int,
    injection_latency_ns: int,
    budget: int,
    ring_size: int,
    poll_overhead_ns: int,
    per_frame_ns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(interrupt fire times, per-frame handed-to-guest time or -1 if dropped, ring occupancy at arrival)."""
    n = len(arrivals_ns)
    handed = np.full(n, -1, dtype=np.int64)
    occupancy = np.zeros(n, dtype=np.int32)
    irq_times: list[int] = []
    clock = SimClock(0)
    waiting: deque[int] = deque()  # completed descriptors the guest has not polled yet
    ring = {"occupied": 0}

    def poll() -> None:
        start = clock.now
        take = min(budget, len(waiting))
        for k in range(take):
            handed[waiting.popleft()] = start + poll_overhead_ns + (k + 1) * per_frame_ns
        clock.schedule(poll_overhead_ns + take * per_frame_ns, lambda: poll_end(take))

    def poll_end(took: int) -> None:
        ring["occupied"] -= took  # descriptors refilled and given back to the device
        if took == budget:
            poll()  # budget exhausted: NAPI polls again without re-enabling the interrupt
        else:
            mask_register[0] = 1  # napi_complete: the driver writes EIMS
            vector.unmask()

    def send() -> None:
        mask_register[0] = 0  # auto-mask (EIAM) until the poll cycle completes
        irq_times.append(clock.now)
        clock.schedule(injection_latency_ns, poll)

    mask_register = np.ones(1, np.uint32)  # EIMS: bit 0 set = the vector may fire
    vector = Vector(clock, mask_register, 0, ims=0, ims_bit=1, on_fire=send)
    vector.reprogram(interval_ns, reset_counter=True)

    def arrive(i: int) -> None:
        if ring["occupied"] == ring_size:
            occupancy[i] = ring["occupied"]
            return  # ring overflow: dropped (rx_no_dma_resources)
        ring["occupied"] += 1
        occupancy[i] = ring["occupied"]
        waiting.append(i)
        vector.raise_cause()

    for i, t in enumerate(arrivals_ns.tolist()):
        clock.schedule_at(t, lambda i=i: arrive(i))
    clock.run_pending(limit_ns=1 << 62)
    return np.array(irq_times, dtype=np.int64), handed, occupancy
