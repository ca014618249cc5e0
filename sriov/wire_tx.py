"""The port's transmit side: TX queues -> anti-spoofing -> VEB -> local pools and the wire.

`WireTx` is mixed into `sriov.wire.Wire`. When is the transmit engine run? When a driver
writes a TX queue's tail (TDT / VFTDT): the device calls the wire's doorbell, which runs the
transmit kernel on that queue at once, on the simulation clock's current time. That is the
hardware-faithful trigger and it is deterministic; ``process_tx()`` runs every queue on demand
(for tests and for descriptors posted before the wire existed).

Frames that leave on the wire are appended to ``sent`` (a `Batch` over preallocated arrays
that grow when full; ``clear_sent()`` empties it). A wire connected to a peer
(`WireTx.connect`, ``host.connect``) hands each run's new frames to the peer's receive flow.

`tx_conservation_errors` checks that the transmit counters add up (see its docstring).
"""

from __future__ import annotations

import threading

import numpy as np

from sriov.batch import Batch
from sriov.errors import ConfigError
from sriov.hw import counters as C
from sriov.hw import regs as R

#: pool/port counters of the reasons a posted frame is dropped (each frame exactly one)
TX_DROPS = ("tx_spoofed", "tx_dma_faults", "tx_disabled", "tx_length_errors")
INITIAL_SENT_FRAMES = 1024
INITIAL_SENT_BYTES = 1 << 20


class WireTx:
    """Transmit half of `sriov.wire.Wire` (needs ``device``, ``implementation`` and ``_kernel``)."""

    device: object
    implementation: object
    _lock: threading.RLock
    _held: int
    _to_peer: list

    # -- the port's datapath lock ---------------------------------------------------------------
    def _enter(self) -> None:
        """Take the port's datapath lock (every receive, burst and transmit run holds it)."""
        self._lock.acquire()
        self._held += 1

    def _leave(self) -> None:
        """Release it; the outermost entry then hands the frames sent meanwhile to the cabled
        peer (after releasing: two cabled ports sending to each other from two threads would
        otherwise each wait for the other's lock)."""
        self._held -= 1
        handoff = None
        if not self._held and self._to_peer:
            handoff, self._to_peer = self._to_peer, []
        self._lock.release()
        if handoff:
            for peer, frames in handoff:
                peer.receive(frames)

    def _tx_init(self) -> None:
        self._tx_kernel = self.implementation.TxKernel(self.device, self._kernel)
        self._tx_compiled = hasattr(self._tx_kernel, "tx_done")  # see _after_tx
        self._fill = np.zeros(3, np.int64)  # frames, bytes, "stopped: no room"
        self._alloc_sent(INITIAL_SENT_FRAMES, INITIAL_SENT_BYTES)
        self.peer: WireTx | None = None
        self.sent_total = 0  # frames that ever left on this wire (``sent`` holds those since clear_sent)
        self._tx_running = False
        self._tx_again = False
        self._clock = getattr(self.device, "clock", None)
        self.device.tx_doorbell = self._doorbell
        self.process_tx()  # descriptors a driver posted before this wire existed

    # -- the output batch -----------------------------------------------------------------------
    def _alloc_sent(self, frames: int, nbytes: int) -> None:
        used, at = int(self._fill[0]), int(self._fill[1])
        old = getattr(self, "_sent_data", None)
        data = np.zeros(nbytes, np.uint8)
        offsets = np.zeros(frames, np.int64)
        lengths = np.zeros(frames, np.uint32)
        stamps = np.zeros(frames, np.int64)
        if old is not None:
            data[:at] = old[:at]
            offsets[:used] = self._sent_offsets[:used]
            lengths[:used] = self._sent_lengths[:used]
            stamps[:used] = self._sent_ts[:used]
        self._sent_data, self._sent_offsets, self._sent_lengths, self._sent_ts = (
            data,
            offsets,
            lengths,
            stamps,
        )
        self._tx_kernel.bind_output(data, offsets, lengths, stamps, self._fill)

    @property
    def sent(self) -> Batch:
        """Frames that left on the wire since the last `clear_sent` (views; valid until then)."""
        n = int(self._fill[0])
        return Batch(
            self._sent_data[: int(self._fill[1])],
            self._sent_offsets[:n],
            self._sent_lengths[:n],
            self._sent_ts[:n],
            validate=False,
        )

    def clear_sent(self) -> None:
        """Forget the frames in ``sent`` (the arrays are kept for the next frames)."""
        with self._lock:
            self._fill[:] = 0

    # -- running the transmit engine ------------------------------------------------------------
    def _doorbell(self, queue: int) -> None:
        """A tail write on PF TX queue ``queue`` (the device calls this)."""
        self.process_tx(queue, queue)

    def process_tx(self, first: int = 0, last: int = R.MAX_QUEUES - 1) -> int:
        """Run the transmit engine on PF TX queues ``first..last``; returns the frames taken."""
        self._enter()
        try:
            return self._process_tx(first, last)
        finally:
            self._leave()

    def _process_tx(self, first: int, last: int) -> int:
        if self._tx_running:  # a tail write from inside a run: the run goes round once more
            self._tx_again = True
            return 0
        self._tx_running = True
        taken = 0
        start = int(self._fill[0])
        try:
            again = True
            while again:
                self._tx_again = False
                now = self._clock.now if self._clock is not None else 0
                taken += self._tx_kernel.run(first, last, now)
                while self._fill[2]:  # a frame found no room on the wire: grow the arrays and go on
                    self._alloc_sent(
                        2 * len(self._sent_offsets),
                        max(2 * len(self._sent_data), int(self._fill[1]) + R.TX_MAX_FRAME_SIZE),
                    )
                    taken += self._tx_kernel.run(first, last, now)
                again, first, last = self._tx_again, 0, R.MAX_QUEUES - 1
        finally:
            self._tx_running = False
        self._after_tx(start)
        return taken

    def _after_tx(self, start: int) -> None:
        kernel = self._tx_kernel
        device = self.device
        # local deliveries (VEB) raise their receive queues' causes, then the completed transmit
        # queues theirs, at the clock's instant
        if kernel.rx_queue_frames.any():
            notify = getattr(device, "rx_queue_written", None)
            if notify is not None:
                notify(kernel.rx_queue_frames)
        done_queues = kernel.tx_done if self._tx_compiled else kernel.tx_queue_frames.nonzero()[0].tolist()
        if done_queues:
            done = getattr(device, "tx_queues_completed", None)
            if done is not None:
                done(done_queues)
        end = int(self._fill[0])
        self.sent_total += end - start
        if self.peer is not None and end > start:
            # a copy (one per run): the peer receives after this port's lock is released, when
            # another thread may already reuse the output arrays
            at = int(self._sent_offsets[start])
            frames = Batch(
                self._sent_data[at : int(self._fill[1])].copy(),
                self._sent_offsets[start:end] - at,
                self._sent_lengths[start:end].copy(),
                self._sent_ts[start:end].copy(),
                validate=False,
            )
            self._to_peer.append((self.peer, frames))

    def connect(self, other: WireTx | None) -> None:
        """Cable this port to ``other`` (both directions); ``None`` unplugs it."""
        if other is self:
            raise ConfigError("a port cannot be cabled to itself")
        if other is not None and not isinstance(other, WireTx):
            raise ConfigError(f"connect() takes another port's Wire, got {type(other).__name__}")
        if self.peer is not None:
            self.peer.peer = None
        self.peer = other
        if other is not None:
            if other.peer is not None and other.peer is not self:
                other.peer.peer = None
            other.peer = self


def tx_conservation_errors(device) -> list[str]:
    """Every way the transmit counters of ``device`` fail to add up (empty when conserved).

    Per pool and per port: tx_posted = tx_packets + tx_dropped and tx_dropped = tx_spoofed +
    tx_dma_faults + tx_disabled + tx_length_errors (each posted frame is forwarded or dropped
    for exactly one reason). Port: every pool counter sums to the port's; a forwarded frame went
    to the wire, to local pools, or both: tx_packets = tx_wire_packets + tx_local_packets -
    tx_flooded with tx_flooded <= both; and every local copy is a received copy
    (tx_local_copies <= rx_pool_copies; `sriov.wire.rx_conservation_errors` accounts for each).
    """
    port = {name: int(v) for name, v in zip(C.PORT_COUNTERS, device.state.port_counters, strict=True)}
    pool = device.state.pool_counters
    P = C.POOL
    errors = []

    def identities(where: str, get) -> None:
        if get("tx_posted") != get("tx_packets") + get("tx_dropped"):
            errors.append(
                f"{where}: tx_posted {get('tx_posted')} != tx_packets {get('tx_packets')} "
                f"+ tx_dropped {get('tx_dropped')}"
            )
        reasons = sum(get(k) for k in TX_DROPS)
        if get("tx_dropped") != reasons:
            errors.append(f"{where}: tx_dropped {get('tx_dropped')} != sum of drop reasons {reasons}")

    identities("port", lambda k: port[k])
    for p in range(pool.shape[0]):
        identities(f"pool {p}", lambda k, p=p: int(pool[p, P[k]]))
    for k in ("tx_posted", "tx_packets", "tx_bytes", "tx_dropped", "tx_ring_faults", *TX_DROPS):
        total = int(pool[:, P[k]].sum())
        if total != port[k]:
            errors.append(f"port: {k} {port[k]} != sum over pools {total}")
    wire, local, both = port["tx_wire_packets"], port["tx_local_packets"], port["tx_flooded"]
    if port["tx_packets"] != wire + local - both:
        errors.append(
            f"port: tx_packets {port['tx_packets']} != wire {wire} + local {local} - flooded {both}"
        )
    if both > min(wire, local):
        errors.append(f"port: tx_flooded {both} > min(wire {wire}, local {local})")
    if port["tx_local_copies"] < local or port["tx_local_copies"] > port["rx_pool_copies"]:
        errors.append(
            f"port: tx_local_copies {port['tx_local_copies']} outside [tx_local_packets {local}, "
            f"rx_pool_copies {port['rx_pool_copies']}]"
        )
    return errors


def assert_tx_conserved(device) -> None:
    """Raise AssertionError naming every transmit counter that does not add up."""
    errors = tx_conservation_errors(device)
    if errors:
        raise AssertionError("transmit counters not conserved: " + "; ".join(errors))
