"""Plain-Python twins of the compiled kernels in ``sriov/_fastpath.pyx``.

Written for clarity, not speed: each reads like the specification of its kernel.
They take the same arguments and produce the same outputs, and the test suite runs
every datapath test on both (``SRIOV_NO_EXTENSIONS=1`` makes the package use these).
"""

from sriov.golden.engine import EventHandle, IrqRouter, SimClock, Vector
from sriov.golden.filters import mac_key, mta_vector, mta_vectors, rar_lookup, rar_pools
from sriov.golden.napi import NapiCore, NicState, RxRingState, discard_rings, sink
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
    "IrqRouter",
    "NapiCore",
    "NicState",
    "RxKernel",
    "RxRingCore",
    "RxRingState",
    "SimClock",
    "TxKernel",
    "TxRingCore",
    "Vector",
    "discard_rings",
    "mac_key",
    "mta_vector",
    "mta_vectors",
    "rar_lookup",
    "rar_pools",
    "rx_harvest",
    "rx_stores",
    "select_pools",
    "set_rx_stores",
    "sink",
    "tx_clean",
    "tx_fill",
]
