"""The port's wire side: frames arriving at one 82599 port, through the receive flow.

`Wire.receive` runs a whole `Batch` (the L2 switch, DMA into the pools' rings) and returns an
`RxResult`: per frame the pools that got a copy, or why it was dropped. `Wire.bind_burst` is the
embedding entry point modelled on DPDK's ``rte_eth_rx_burst``: arrays bound once, then
``burst(n)`` per burst with nothing allocated per call.

`rx_conservation_errors` checks that the receive counters add up (every frame in is delivered
or dropped for a named, counted reason), per port and per pool.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from sriov import kernels
from sriov.batch import Batch, require_arrays
from sriov.errors import ConfigError
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.wire_tx import WireTx
from sriov.wire_tx import assert_tx_conserved as assert_tx_conserved  # re-exported beside rx's
from sriov.wire_tx import tx_conservation_errors as tx_conservation_errors

DropReason = kernels.golden.DropReason  # the names users read; the compiled enum has the same values

#: port counters of the frame-level drops (before any pool copy is made)
PORT_FRAME_DROPS = ("rx_length_errors", "rx_long_length_errors", "rx_vlan_filtered", "rx_no_pool")
#: port counters of dropped pool copies
PORT_COPY_DROPS = ("rx_no_dma_resources", "rx_dma_faults", "rx_queue_disabled", "rx_missed_errors")
#: pool counters of dropped copies
POOL_COPY_DROPS = ("rx_dropped", "rx_dma_faults", "rx_queue_disabled")


@dataclass(frozen=True)
class RxResult:
    """What the receive flow did with each frame of a batch.

    ``delivered[i]``: bitmap of the pools whose ring got frame ``i`` (bit p = pool p).
    ``reasons[i]``: `DropReason.DELIVERED` when at least one pool got it, else why not (for a
    frame the switch sent to pools whose copies were all dropped: the reason of the lowest pool).
    ``selected[i]``: the pools the L2 switch chose (before per-queue drops).
    ``queue_frames[q]``: frames written to PF queue ``q``.
    """

    selected: np.ndarray
    delivered: np.ndarray
    reasons: np.ndarray
    queue_frames: np.ndarray

    def __len__(self) -> int:
        return len(self.reasons)

    @property
    def accepted(self) -> int:
        """Frames delivered to at least one pool."""
        return int(np.count_nonzero(self.delivered))

    def pools(self, i: int) -> list[int]:
        """The pools frame ``i`` reached."""
        bitmap = int(self.delivered[i])
        return [p for p in range(R.MAX_POOLS) if bitmap >> p & 1]

    def selected_pools(self, i: int) -> list[int]:
        """The pools the L2 switch chose for frame ``i`` (some copies may have been dropped)."""
        bitmap = int(self.selected[i])
        return [p for p in range(R.MAX_POOLS) if bitmap >> p & 1]

    def reason(self, i: int) -> DropReason:
        """Why frame ``i`` was dropped (`DropReason.DELIVERED` when it was not)."""
        return DropReason(int(self.reasons[i]))

    def verdict(self, i: int) -> str:
        """Frame ``i`` in words: ``"pools 0,3"`` or the drop reason's name."""
        if self.delivered[i]:
            return "pools " + ",".join(map(str, self.pools(i)))
        return self.reason(i).name

    def counts(self) -> dict[str, int]:
        """Frames per verdict: ``DELIVERED`` and each drop reason that occurred."""
        values, counts = np.unique(self.reasons, return_counts=True)
        return {DropReason(int(v)).name: int(c) for v, c in zip(values, counts, strict=True)}


class RxBurst:
    """A receive entry point bound to preallocated arrays (see `Wire.bind_burst`).

    Fill ``data``/``offsets``/``lengths``/``timestamps_ns`` (the arrays passed in), call
    ``burst(n)`` for frames ``[0, n)``; the verdicts land in ``selected``/``delivered``/``reasons``.
    """

    def __init__(self, wire: Wire, kernel, arrays: tuple[np.ndarray, ...]) -> None:
        self._wire = wire
        self._kernel = kernel
        (
            self.data,
            self.offsets,
            self.lengths,
            self.timestamps_ns,
            self.selected,
            self.delivered,
            self.reasons,
        ) = arrays
        self._cap = len(self.offsets)
        self.queue_frames: np.ndarray = kernel.queue_frames
        self._device = wire.device
        self._run = kernel.burst
        self._raise = wire.device.router.raise_written

    def __call__(self, n: int) -> int:
        """Run frames ``[0, n)`` of the bound arrays; returns the frames delivered to >= 1 pool."""
        if n.__class__ is not int or not 0 <= n <= self._cap:  # one test on the common path
            n = self._frames(n)
        wire = self._wire
        wire._enter()
        try:
            if not self._device.link_up:
                return wire._link_down(n, self.selected, self.delivered, self.reasons)
            accepted = self._run(n)
            if accepted:  # the queues written to raise their interrupt causes at the clock's instant
                self._raise(self._kernel)
            return accepted
        finally:
            wire._leave()

    def _frames(self, n: object) -> int:
        """``n`` as a frame count of the bound arrays (numpy ints too), or ConfigError."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 0 <= n <= self._cap:
            raise ConfigError(
                f"burst({n!r}): the frame count must be an int in 0..{self._cap} (the bound arrays)"
            )
        return int(n)


class Wire(WireTx):
    """One port's wire: frames in, through the L2 switch into the rings; frames out (`WireTx`)."""

    def __init__(self, device, implementation=None) -> None:
        """``implementation``: a kernels module (`sriov.kernels.impl` by default, or ``golden``)."""
        self.device = device
        self.implementation = implementation if implementation is not None else kernels.impl
        # the port's datapath lock (`Device82599.dma_lock`): every entry below holds it for a batch
        self._lock = getattr(device, "dma_lock", None) or threading.RLock()
        self._held = 0  # how deep the thread holding the lock is in the port's entries
        self._to_peer: list[tuple[WireTx, Batch]] = []  # frames for the cable, handed over on leaving
        self._kernel = self.implementation.RxKernel(device)
        self._bursts: list[RxBurst] = []
        self._tx_init()  # the transmit side: TX kernel, ``sent``, the tail-write doorbell

    def receive(self, batch: Batch) -> RxResult:
        """Run every frame of ``batch`` through the receive flow (see `RxResult`)."""
        if not isinstance(batch, Batch):
            raise ConfigError(f"receive() takes a sriov.Batch, got {type(batch).__name__}")
        batch.check_arrays()
        n = len(batch)
        selected = np.zeros(n, np.uint64)
        delivered = np.zeros(n, np.uint64)
        reasons = np.zeros(n, np.uint8)
        self._enter()
        try:
            if not self.device.link_up:
                self._link_down(n, selected, delivered, reasons)
                return RxResult(selected, delivered, reasons, np.zeros_like(self._kernel.queue_frames))
            kernel = self._kernel
            accepted = kernel.receive(
                batch.data, batch.offsets, batch.lengths, batch.timestamps_ns, selected, delivered, reasons
            )
            queue_frames = kernel.queue_frames.copy()
            self._after_burst(accepted)
        finally:
            self._leave()
        return RxResult(selected, delivered, reasons, queue_frames)

    def _link_down(self, n: int, selected: np.ndarray, delivered: np.ndarray, reasons: np.ndarray) -> int:
        """No carrier, no frames: ``n`` frames offered while the link is down never enter the port.

        Their verdict is LINK_DOWN and they are counted in ``rx_link_down`` (not in rx_frames_in);
        nothing else changes. Returns 0 (frames delivered).
        """
        if n < 0 or n > len(reasons):
            raise ConfigError(f"burst of {n} frames: allowed 0..{len(reasons)} (the bound arrays)")
        selected[:n] = 0
        delivered[:n] = 0
        reasons[:n] = DropReason.LINK_DOWN
        self.device.state.port_counters[C.PORT["rx_link_down"]] += n
        return 0

    def bind_burst(
        self,
        data: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        timestamps_ns: np.ndarray | None = None,
    ) -> RxBurst:
        """Bind preallocated frame arrays once; the returned object runs ``burst(n)`` on them.

        ``data`` uint8, ``offsets`` int64, ``lengths`` uint32, ``timestamps_ns`` int64, all 1-D
        and C-contiguous; their contents may change between calls (bounds are checked per burst).
        Bursts may be called from several threads, on one port or on several: each call holds
        the port's datapath lock (`Device82599.dma_lock`, one acquire per burst), so the bursts
        of one port run one after another, as one NIC port's DMA does, and every counter stays
        exact. Bursts of different ports run in parallel (the GIL is released in the compiled
        kernel). A burst's verdict arrays are its own: read them before calling it again.
        """
        n = len(offsets) if isinstance(offsets, np.ndarray) else 0
        if timestamps_ns is None:
            timestamps_ns = np.zeros(n, np.int64)
        require_arrays(
            ("data", data, np.uint8),
            ("offsets", offsets, np.int64),
            ("lengths", lengths, np.uint32),
            ("timestamps_ns", timestamps_ns, np.int64),
        )
        kernel = self.implementation.RxKernel(self.device)
        arrays = (
            data,
            offsets,
            lengths,
            timestamps_ns,
            np.zeros(n, np.uint64),
            np.zeros(n, np.uint64),
            np.zeros(n, np.uint8),
        )
        kernel.bind(*arrays)
        burst = RxBurst(self, kernel, arrays)
        self._bursts.append(burst)
        return burst

    def _after_burst(self, accepted: int) -> None:
        # the queues written to raise their interrupt causes (EITR-moderated) at the clock's instant
        if accepted:
            self.device.router.raise_written(self._kernel)


def rx_conservation_errors(device) -> list[str]:
    """Every way the receive counters of ``device`` fail to add up (empty when conserved).

    Port: rx_frames_in = rx_classified + the frame-level drops; rx_pool_copies = sum of the
    pools' rx_copies = delivered copies + the copy-level drops. Pool: rx_copies = rx_packets +
    rx_dropped + rx_dma_faults + rx_queue_disabled. And rx_packets <= rx_classified.
    """
    port = {name: int(v) for name, v in zip(C.PORT_COUNTERS, device.state.port_counters, strict=True)}
    pool = device.state.pool_counters
    P = C.POOL
    errors = []
    frames = port["rx_classified"] + sum(port[k] for k in PORT_FRAME_DROPS)
    if port["rx_frames_in"] != frames:
        errors.append(f"port: rx_frames_in {port['rx_frames_in']} != classified + frame drops {frames}")
    copies_in = int(pool[:, P["rx_copies"]].sum())
    if port["rx_pool_copies"] != copies_in:
        errors.append(f"port: rx_pool_copies {port['rx_pool_copies']} != sum of pool rx_copies {copies_in}")
    delivered = int(pool[:, P["rx_packets"]].sum())
    copies_out = delivered + sum(port[k] for k in PORT_COPY_DROPS)
    if port["rx_pool_copies"] != copies_out:
        errors.append(f"port: rx_pool_copies {port['rx_pool_copies']} != delivered + copy drops {copies_out}")
    if port["rx_packets"] > port["rx_classified"]:
        errors.append(f"port: rx_packets {port['rx_packets']} > rx_classified {port['rx_classified']}")
    for p in range(pool.shape[0]):
        row = pool[p]
        out = int(row[P["rx_packets"]]) + sum(int(row[P[k]]) for k in POOL_COPY_DROPS)
        if int(row[P["rx_copies"]]) != out:
            errors.append(f"pool {p}: rx_copies {int(row[P['rx_copies']])} != delivered + drops {out}")
    return errors


def assert_rx_conserved(device) -> None:
    """Raise AssertionError naming every receive counter that does not add up."""
    errors = rx_conservation_errors(device)
    if errors:
        raise AssertionError("receive counters not conserved: " + "; ".join(errors))
