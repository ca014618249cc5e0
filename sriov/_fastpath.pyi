"""Type stub of the compiled datapath ``sriov._fastpath`` (twins in ``sriov.golden``)."""

import enum

import numpy as np
import numpy.typing as npt

class DropReason(enum.IntEnum):
    """Why a frame (or one pool's copy of it) was not delivered; DELIVERED when it was."""

    DELIVERED = 0
    LENGTH_ERROR = 1
    LONG_LENGTH = 2
    VLAN_FILTERED = 3
    NO_POOL = 4
    NO_DMA_RESOURCES = 5
    DMA_FAULT = 6
    QUEUE_DISABLED = 7
    MISSED = 8
    LINK_DOWN = 9

def mta_vectors(macs: npt.NDArray[np.uint8], mo: int, out: npt.NDArray[np.uint16]) -> None: ...
def rar_lookup(
    rar: npt.NDArray[np.uint32],
    mpsar: npt.NDArray[np.uint64],
    macs: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint64],
) -> None: ...
def rx_harvest(
    ring: npt.NDArray[np.uint32],
    bufs: npt.NDArray[np.uint64],
    ntc: int,
    budget: int,
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.uint32],
    vlans: npt.NDArray[np.uint16],
) -> tuple[int, int, int]: ...

class RxRingCore:
    """The driver's per-poll ring work, bound once to one ring's arrays."""

    count: int
    def __init__(
        self,
        ring: npt.NDArray[np.uint32],
        bufs: npt.NDArray[np.uint64],
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.uint32],
        vlans: npt.NDArray[np.uint16],
    ) -> None: ...
    def repost(self, start: int, stop: int) -> int: ...
    def harvest(self, ntc: int, budget: int) -> tuple[int, int, int]: ...

class RxKernel:
    """The receive flow of one port, bound once to the device's arrays."""

    queue_frames: npt.NDArray[np.uint32]
    notify: bool  # the last call wrote to a queue whose interrupt cause is not held yet
    block: int  # frames per block of the kernel's two passes (1..32); no result depends on it
    def __init__(self, device: object) -> None: ...
    def receive(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.uint32],
        timestamps: npt.NDArray[np.int64],
        selected: npt.NDArray[np.uint64],
        delivered: npt.NDArray[np.uint64],
        reasons: npt.NDArray[np.uint8],
    ) -> int: ...
    def bind(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.uint32],
        timestamps: npt.NDArray[np.int64],
        selected: npt.NDArray[np.uint64],
        delivered: npt.NDArray[np.uint64],
        reasons: npt.NDArray[np.uint8],
    ) -> None: ...
    def burst(self, n: int) -> int: ...

# -- the transmit flow (sriov/_fp_tx.pxi; twins in sriov.golden.tx) ---------------------------------
def tx_fill(
    ring: npt.NDArray[np.uint32],
    mem: npt.NDArray[np.uint8],
    bufs: npt.NDArray[np.uint64],
    buffer_size: int,
    ntu: int,
    free: int,
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.uint32],
    n: int,
    watch: npt.NDArray[np.int32],
) -> tuple[int, int]: ...
def tx_clean(
    ring: npt.NDArray[np.uint32], watch: npt.NDArray[np.int32], ntc: int, ntu: int
) -> tuple[int, int]: ...

class TxKernel:
    """The transmit flow of one port (anti-spoofing, VLAN insertion, VEB, wire)."""

    rx_queue_frames: npt.NDArray[np.uint32]
    tx_queue_frames: npt.NDArray[np.uint32]
    def __init__(self, device: object, rx: RxKernel) -> None: ...
    def bind_output(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.uint32],
        timestamps: npt.NDArray[np.int64],
        fill: npt.NDArray[np.int64],
    ) -> None: ...
    def run(self, first: int, last: int, now_ns: int) -> int: ...
