"""The device's armed tables (``rx_armed``, ``tx_armed``): which queues' interrupt causes a queue
vector already holds, so the datapath can skip the completion hook (see `QueueVector` in
`sriov.hw.interrupts`). Own module: the compiled and plain-Python queue vectors both use it."""

from __future__ import annotations

import numpy as np

from sriov.hw import regs as R

#: `rx_armed` value of a queue whose vector is masked with its cause latched: held until unmasked
ARMED_HELD = np.iinfo(np.int64).max
#: slots after the per-queue entries of `rx_armed`: the queues-per-pool and VF count the entries
#: were computed with (a PF queue's owner depends on both; the datapath ignores a stale table)
ARMED_KEY_QPP = R.MAX_QUEUES
ARMED_KEY_VFS = R.MAX_QUEUES + 1
ARMED_SLOTS = R.MAX_QUEUES + 2


def new_armed_table() -> np.ndarray:
    """The device's ``rx_armed`` array (see `QueueVector`): nothing armed."""
    table = np.zeros(ARMED_SLOTS, np.int64)
    table[ARMED_KEY_QPP] = -1
    return table


__all__ = ["ARMED_HELD", "ARMED_KEY_QPP", "ARMED_KEY_VFS", "ARMED_SLOTS", "new_armed_table"]
