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

# -- the simulation clock (sriov/_fp_clock.pxi; twin in sriov.golden.clock) --------------------------
class EventHandle:
    """What `SimClock.schedule` returns: lets the scheduler cancel the event."""

    @property
    def time(self) -> int: ...
    def cancel(self) -> None: ...

class SimClock:
    """Simulated time in integer nanoseconds with an event queue."""

    events_run: int
    def __init__(self, start_ns: int = 0) -> None: ...
    @property
    def now(self) -> int: ...
    @property
    def run_target(self) -> int: ...
    def schedule(self, delay_ns: int, action: Callable[[], object]) -> EventHandle: ...
    def schedule_at(self, time_ns: int, action: Callable[[], object]) -> EventHandle: ...
    def next_event_time(self) -> int | None: ...
    def pending(self) -> int: ...
    def take(self, handle: EventHandle) -> bool: ...
    def advance(self, ns: int) -> None: ...
    def run_until(self, time_ns: int) -> None: ...
    def run_before(self, time_ns: int) -> None: ...
    def run_pending(self, limit_ns: int = ...) -> None: ...

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
    chain: bool
    vector: int
    config: object

def written_queues(counts: object, limit: int) -> list[int] | None: ...

class VfFire:
    """What a VF queue vector does when it fires (auto-clear, auto-mask, the MSI-X message)."""

    def __init__(
        self,
        words: npt.NDArray[np.uint32],
        vector: int,
        fn: object,
        w_icr: int,
        w_ims: int,
        w_iac: int,
        w_iam: int,
    ) -> None: ...
    def __call__(self) -> None: ...

class MsixDeliver:
    """The clock event that delivers one MSI-X vector of a PCI function to its handler."""

    def __init__(self, fn: object, vector: int) -> None: ...
    def __call__(self) -> None: ...

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

# -- a queue vector's moderator (sriov/_fp_irq.pxi; twin in sriov.golden.irq) -----------------------
class QueueVector:
    """A queue vector's EITR moderator with the armed tables of the datapath's hook skip."""

    NEVER: int
    clock: object
    send: Callable[[], object]
    interval_ns: int
    last_fire: int
    fired: int
    masked: bool
    pending: bool
    auto_mask: bool
    armed: list[int]
    armed_tx: list[int]
    armed_table: npt.NDArray[np.int64]
    tx_armed_table: npt.NDArray[np.int64]
    def __init__(
        self,
        clock: object,
        send: Callable[[], object],
        armed: npt.NDArray[np.int64],
        tx_armed: npt.NDArray[np.int64] | None = None,
    ) -> None: ...
    def disarm(self) -> None: ...
    def arm(self, queue: int, tx: bool = False) -> None: ...
    def reset(self) -> None: ...
    def reprogram(self, interval_ns: int, reset_counter: bool) -> None: ...
    def clear_cause(self) -> None: ...
    def set_interval_ns(self, interval_ns: int) -> None: ...
    def raise_cause(self) -> None: ...
    def mask(self) -> None: ...
    def unmask(self) -> None: ...
    def raise_rx(self, queue: int) -> None: ...

class Inject:
    """A VF's MSI-X vector routed into its VM: counts the injection, runs the driver's handler."""

    def __init__(self, injected: dict[str, int], key: str, nic: object) -> None: ...
    def __call__(self, vector: int) -> None: ...

class VectorWrites:
    """A VF's VTEIMS and VTEITR(v) writes (NAPI's re-enable and adaptive ITR), compiled."""

    def __init__(
        self,
        words: npt.NDArray[np.uint32],
        w_ims: int,
        w_icr: int,
        w_itr0: int,
        mask: int,
        vectors: list[Any],
    ) -> None: ...
    def __call__(self, bits: int) -> None: ...
    def enable(self, bits: int) -> None: ...
    def eitr(self, v: int, value: int) -> None: ...

def set_rx_stores(mode: str) -> None: ...
def rx_stores() -> str: ...

class VfRxRaise:
    """A receive completion on one of a VF's queues: VTEICR bit and the moderator's raise_rx."""

    def __init__(
        self,
        words: npt.NDArray[np.uint32],
        w_icr: int,
        route: list[int],
        vectors: list[Any],
        owner: object,
    ) -> None: ...
    def __call__(self, vf_queue: int, pf_queue: int) -> None: ...

def raise_rx_queues(
    queues: list[int], qpp: int, raisers: list[Any], pf_raise_rx: Callable[[int], object]
) -> None: ...
def discard_rings(rings: Iterable[Any], budget: int | None = None) -> int: ...
