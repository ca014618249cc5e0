"""Plain-Python twins of the compiled kernels in ``sriov/_fastpath.pyx``.

Written for clarity, not speed: each reads like the specification of its kernel.
They take the same arguments and produce the same outputs, and the test suite runs
every datapath test on both (``SRIOV_NO_EXTENSIONS=1`` makes the package use these).
"""

from sriov.golden.clock import EventHandle, SimClock
from sriov.golden.filters import mac_key, mta_vector, mta_vectors, rar_lookup, rar_pools
from sriov.golden.irq import QueueVector, VectorWrites, VfRxRaise, raise_rx_queues
from sriov.golden.napi import (
    Inject,
    MsixDeliver,
    NapiCore,
    NicState,
    RxRingState,
    VfFire,
    discard_rings,
    written_queues,
)
from sriov.golden.rx import (
    DropReason,
    RxKernel,
    RxRingCore,
    rx_harvest,
    rx_stores,
    select_pools,
    set_rx_stores,
)
from sriov.golden.tx import TxKernel, TxRingCore, tx_clean, tx_fill

__all__ = [
    "DropReason",
    "EventHandle",
    "Inject",
    "MsixDeliver",
    "NapiCore",
    "NicState",
    "QueueVector",
    "RxKernel",
    "RxRingCore",
    "RxRingState",
    "SimClock",
    "TxKernel",
    "TxRingCore",
    "VectorWrites",
    "VfFire",
    "VfRxRaise",
    "discard_rings",
    "mac_key",
    "mta_vector",
    "mta_vectors",
    "raise_rx_queues",
    "rar_lookup",
    "rar_pools",
    "rx_harvest",
    "rx_stores",
    "select_pools",
    "set_rx_stores",
    "tx_clean",
    "tx_fill",
    "written_queues",
]
