"""Type stub of the compiled datapath ``sriov._fastpath`` (twins in ``sriov.golden``)."""

import enum
from collections.abc import Callable, Iterable
from typing import Any

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
        timestamps: npt.NDArray[np.int64] | None = None,
    ) -> None: ...
    def bind_arrivals(self, arrivals: npt.NDArray[np.int64] | None) -> None: ...
    def repost(self, start: int, stop: int) -> int: ...
    def harvest(self, ntc: int, budget: int) -> tuple[int, int, int]: ...

class RxKernel:
    """The receive flow of one port, bound once to the device's arrays."""

    queue_frames: npt.NDArray[np.uint32]
    written: list[int]  # the PF queues the last call wrote frames to, ascending
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

# -- the simulation engine (sriov/_fp_engine.pxi; twin in sriov.golden.engine) ---------------------
class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    @property
    def time(self) -> int: ...
    def cancel(self) -> None: ...

class SimClock:
    """Simulated time in integer nanoseconds and the one queue of events (the engine)."""

    events_run: int
    def __init__(self, start_ns: int = 0) -> None: ...
    @property
    def now(self) -> int: ...
    def schedule(self, delay_ns: int, action: Callable[[], object]) -> EventHandle: ...
    def schedule_at(self, time_ns: int, action: Callable[[], object]) -> EventHandle: ...
    def next_event_time(self) -> int | None: ...
    def pending(self) -> int: ...
    def advance(self, ns: int) -> None: ...
    def run_until(self, time_ns: int) -> None: ...
    def run_before(self, time_ns: int) -> None: ...
    def run_pending(self, limit_ns: int = ...) -> None: ...
    def run_frames(
        self,
        kernel: RxKernel,
        router: IrqRouter,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.uint32],
        timestamps: npt.NDArray[np.int64],
        selected: npt.NDArray[np.uint64],
        delivered: npt.NDArray[np.uint64],
        reasons: npt.NDArray[np.uint8],
        queue_frames: npt.NDArray[np.int64],
        min_latency_ns: int,
        max_run: int = 0,
    ) -> tuple[int, int]: ...

class Vector:
    """One MSI-X vector: EITR timing and message; mask, cause, auto-mask are its registers."""

    number: int
    interval_ns: int
    last_fire: int
    fired: int
    delivered: int
    injected: int
    latency_ns: int
    pending: bool
    in_flight: bool
    timer_due: int
    on_fire: Callable[[], object] | None
    handler: Callable[[int], object] | None
    nic: object
    def __init__(
        self,
        clock: SimClock,
        regs: npt.NDArray[np.uint32],
        number: int,
        icr: int = -1,
        icr_bit: int = 0,
        ims: int = -1,
        ims_bit: int = 0,
        iam: int = -1,
        iac: int = -1,
        iac_bit: int = 0,
        on_fire: Callable[[], object] | None = None,
    ) -> None: ...
    @property
    def masked(self) -> bool: ...
    @property
    def auto_mask(self) -> bool: ...
    def raise_cause(self) -> None: ...
    def unmask(self) -> None: ...
    def mask(self) -> None: ...
    def clear_cause(self) -> None: ...
    def reprogram(self, interval_ns: int, reset_counter: bool) -> None: ...
    def write_eitr(self, value: int) -> None: ...
    def reset(self) -> None: ...
    def signal(self) -> None: ...

class IrqRouter:
    """A port's queue completions to the vectors their (VT)IVAR entries name."""

    unrouted: npt.NDArray[np.int64]
    device: object
    def __init__(self, device: object) -> None: ...
    def attach(self, vf_vectors: list[list[Vector]], pf_vectors: list[Vector]) -> None: ...
    def raise_queues(self, queues: Iterable[int], tx: bool = False) -> None: ...
    def raise_written(self, kernel: object) -> None: ...

# -- the receive poll and NAPI's poll cycle (sriov/_fp_napi.pxi; twins in sriov.golden.napi) -------
class RxRingState:
    """The per-poll state of a receive ring (the base of `sriov.drivers.rings.RxRing`)."""

    running: bool
    last_bytes: int
    last_frames: int
    frames: int
    last_vlan: npt.NDArray[np.uint16]
    def poll(self, budget: int = 64) -> object: ...
    def release(self) -> None: ...
    def discard(self, budget: int | None = None) -> int: ...

class NapiCore:
    """NAPI's per-poll state and work (the base of `sriov.drivers.napi.Napi`)."""

    nic: object
    trace: object
    enabled: bool
    scheduled: bool
    vector: int
    config: object
    itr: int
    rx_range: int
    tx_range: int
    def interrupt(self, vector: int) -> None: ...

class NicState:
    """What NAPI reads of a VF driver's interface on every poll (the base of VfNic)."""

    function: Any
    clock: Any
    rx_ring: Any
    on_receive: Any
    napi: Any
    rx_usecs: Any
    is_up: bool
    _mbx_vector: Any
    _irq_counts: list[int]
    def _msix(self, vector: int) -> None: ...

def sink(batch: object) -> None: ...
def set_rx_stores(mode: str) -> None: ...
def rx_stores() -> str: ...
def discard_rings(rings: Iterable[Any], budget: int | None = None) -> int: ...
