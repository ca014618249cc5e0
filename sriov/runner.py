"""Run a scenario: build the host it describes, offer its traffic to the wire, collect what each VM got.

This is what `sriov run` does. Each port's frames arrive at their times through the simulation
engine (`Host.run_traffic`): interrupts, the PF's mailbox work and the guests' NAPI polls run
where they fall in time, and each guest's stack takes what NAPI hands it (kept for the captures,
or dropped). A guest's own transmissions are clock events at their times; the host's stack polls
the PF's ring every `PF_POLL_NS`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sriov.batch import Batch
from sriov.drivers.napi import SINK
from sriov.errors import ConfigError, MailboxError, SriovError
from sriov.host import Host
from sriov.hw import counters as C
from sriov.hw import regs as R
from sriov.scenario import Scenario, TrafficSpec

logger = logging.getLogger("sriov.run")

SEND_CHUNK_NS = 100_000  # a guest sends one transmit call per 100 us of its frames, at the first one's time
WINDOW_NS = 100_000  # several ports' wires: offered in turn, 100 us of each at a time
SLICE_FRAMES = 65_536  # frames per engine call (progress is reported between them)
PF_POLL_NS = 200_000  # the host's stack polls the PF's ring this often (the model gives it no NAPI)
PF_KEY = -1  # the PF's own pool in per-function maps
SETTLE_NS = 2_000_000  # after the last frame: the longest EITR interval (1.05 ms), its poll, its completion
SAMPLE_NS = 1_000_000  # throughput samples for the plots every 1 ms of simulated time


_COUNTERS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

#: JSON Schema of the `sriov run --json` document (also in the README, "JSON output").
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sriov run result",
    "type": "object",
    "required": ["schema", "scenario", "title", "frames_offered", "sim_time_ns", "conserved", "ports",
                 "pf", "vfs", "drops_by_reason", "warnings", "timings"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "sriov-run/1"},
        "scenario": {"type": "string"},
        "title": {"type": "string"},
        "frames_offered": {"type": "integer", "minimum": 0},
        "sim_time_ns": {"type": "integer", "minimum": 0},
        "conserved": {"type": "boolean"},
        "ports": {"type": "object", "additionalProperties": _COUNTERS},
        "pf": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["port", "pool", "mac", "stats"],
                "additionalProperties": False,
                "properties": {
                    "port": {"type": "string"},
                    "pool": {"type": "integer", "minimum": 0, "maximum": 63},
                    "mac": {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"},
                    "stats": _COUNTERS,
                },
            },
        },
        "vfs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["port", "vf", "vm", "mac", "stats"],
                "additionalProperties": False,
                "properties": {
                    "port": {"type": "string"},
                    "vf": {"type": "integer", "minimum": 0, "maximum": 62},
                    "vm": {"type": "string"},
                    "mac": {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"},
                    "stats": _COUNTERS,
                },
            },
        },
        "drops_by_reason": _COUNTERS,
        "warnings": {"type": "array", "items": {"type": "string"}},
        "timings": {
            "type": "object",
            "required": ["build_s", "traffic_s", "datapath_s"],
            "additionalProperties": {"type": "number", "minimum": 0},
        },
    },
}  # fmt: skip


@dataclass
class Stream:
    """Frames to offer: arriving on ``port``'s wire, or (``sender`` = N) sent by VF N's guest."""

    port: str
    sender: int | None
    batch: Batch


@dataclass
class VfReport:
    """What one VF's guest saw."""

    port: str
    vf: int
    vm: str
    mac: str
    stats: dict[str, int]
    received: list[Batch] = field(default_factory=list, repr=False)


@dataclass
class PfReport:
    """What the PF's own pool got (the host's stack: unknown unicast, broadcast and multicast copies)."""

    port: str
    pool: int
    mac: str
    stats: dict[str, int]


@dataclass
class RunReport:
    """The result of one scenario run."""

    scenario: str
    frames_offered: int
    ports: dict[str, dict[str, int]]
    vfs: list[VfReport]
    drops_by_reason: dict[str, int]
    timings: dict[str, float]
    sim_time_ns: int
    conserved: bool
    throughput: list[dict[str, Any]] = field(default_factory=list)
    pf: dict[str, PfReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    title: str = ""  # the scenario's name, or the capture's for a --pcap run

    def to_json(self) -> dict[str, Any]:
        """The `--json` document (schema: `JSON_SCHEMA`)."""
        return {
            "schema": "sriov-run/1",
            "scenario": self.scenario,
            "title": self.title or self.scenario,
            "frames_offered": self.frames_offered,
            "sim_time_ns": self.sim_time_ns,
            "conserved": self.conserved,
            "ports": self.ports,
            "pf": {
                name: {"port": r.port, "pool": r.pool, "mac": r.mac, "stats": r.stats}
                for name, r in self.pf.items()
            },
            "vfs": [
                {"port": v.port, "vf": v.vf, "vm": v.vm, "mac": v.mac, "stats": v.stats} for v in self.vfs
            ],
            "drops_by_reason": self.drops_by_reason,
            "warnings": self.warnings,
            "timings": self.timings,
        }


class StrictError(ConfigError):
    """``--strict``: the scenario asked for something the model downgraded or refused."""

    def __init__(self, warnings: list[str]) -> None:
        super().__init__(
            f"--strict: {len(warnings)} request{'s' if len(warnings) != 1 else ''} of the scenario "
            "downgraded or refused (the warnings above)"
        )
        self.warnings = warnings


def traffic_batch(
    spec: TrafficSpec, seed: int, source: str = "", key: str = "", lenient: bool = False
) -> Batch:
    """The frames a traffic entry offers: its capture, or its generator's output.

    ``source`` and ``key`` (the scenario file and ``traffic[i]``) prefix any error. ``lenient``:
    read a damaged capture as tshark does (`read_pcap` with ``strict=False``)."""
    where = f"{source}: {key}." if source and key else f"{key}: " if key else ""
    try:
        if spec.pcap is not None:
            from sriov.traffic import read_pcap

            batch = read_pcap(spec.pcap, strict=not lenient, check_snaplen=not lenient)
            if batch.warning:
                logger.warning(
                    "%s%s%s (the frames before it are offered)",
                    where,
                    "pcap: " if source else "",
                    batch.warning,
                )
        else:
            from sriov.traffic.synth import from_scenario

            batch = from_scenario(spec.generator or {}, seed=seed)
    except SriovError as exc:
        what = "pcap: " if spec.pcap is not None else "generator: "
        hint = " (--lenient reads it as tshark does)" if "snaplen" in str(exc) and not lenient else ""
        raise ConfigError(f"{where}{what if source else ''}{exc}{hint}") from None
    if spec.repeat > 1:
        batch = _repeat(batch, spec.repeat)
    return batch


def rate_cap_warning(spec: TrafficSpec, batch: Batch) -> str | None:
    """A generator whose offered rate the port's 10 GbE link cannot carry is capped at line rate:
    the warning that says so (None when the frames fit)."""
    if spec.generator is None or len(batch) < 2:
        return None
    from sriov.traffic.synth import profile_from_scenario

    profile = profile_from_scenario(spec.generator)
    rate = profile.rate
    span_ns = int(batch.timestamps_ns[-1] - batch.timestamps_ns[0])
    if span_ns <= 0:
        return None
    wire_bits = (batch.lengths.astype(np.float64) + WIRE_BYTES_PER_FRAME) * 8
    if isinstance(rate, str) and rate.strip().lower().endswith("bps"):
        wanted, achieved, unit = _rate_value(rate), float(wire_bits[:-1].sum()) / span_ns * 1e9, "bit/s"
    elif (isinstance(rate, str) and rate.strip().lower().endswith("pps")) or isinstance(rate, (int, float)):
        wanted, achieved, unit = _rate_value(rate), (len(batch) - 1) / span_ns * 1e9, "frames/s"
    else:
        return None  # a link's name: line rate by definition
    if achieved >= wanted * 0.99:
        return None
    return (
        f"generator.rate: {rate!r} is more than the port's 10G line rate carries: the frames were sent "
        f"back to back at line rate ({achieved / 1e6:,.1f} M{unit} instead of {wanted / 1e6:,.1f} M{unit})"
    )


def _rate_value(rate: str | float | int) -> float:
    """The number a generator's rate names, in bit/s or frames/s ("2.5Gbps" -> 2.5e9)."""
    if not isinstance(rate, str):
        return float(rate)
    import re

    m = re.match(r"^\s*([0-9.]+)\s*([kKmMgGtT]?)", rate)
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
    return float(m.group(1)) * scale[m.group(2).lower()] if m else float("inf")


WIRE_BYTES_PER_FRAME = 24  # FCS, preamble, SFD and inter-frame gap: what a captured frame lacks on the wire


def _repeat(batch: Batch, times: int) -> Batch:
    span = int(batch.timestamps_ns[-1] - batch.timestamps_ns[0]) + 1 if len(batch) else 0
    n = len(batch)
    offsets = np.tile(batch.offsets, times)
    lengths = np.tile(batch.lengths, times)
    ts = np.tile(batch.timestamps_ns, times) + np.repeat(np.arange(times, dtype=np.int64) * span, n)
    return Batch(batch.data, offsets, lengths, ts)


class ScenarioRun:
    """A host built from a scenario, ready to take traffic.

    Every request the model downgrades or refuses (a NACK from the PF, a mode it caps) is a line
    in ``warnings`` naming the scenario file and key; anything else wrong raises a ConfigError
    naming them."""

    def __init__(self, sc: Scenario, trace: bool = False) -> None:
        """``trace``: record every VF's arrival and hand-off times (``nic.napi.trace``, for latencies)."""
        self.scenario = sc
        self.trace = trace
        self.host = Host(seed=sc.seed)
        self.ports = {}
        self.nics: list[tuple[str, int, str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.drops: dict[str, list[tuple[Batch, np.ndarray]]] = {}  # per port, when frames are kept
        self.warnings: list[str] = []
        for i, p in enumerate(sc.ports):
            with self._key(f"port[{i}]"):
                port = self.host.add_port(p.name)
                if p.mtu != 1500:
                    port.pf.set_mtu(p.mtu)
                if p.promisc:
                    port.pf.set_promisc(True)
                if p.num_vfs:
                    port.pf.set_numvfs(p.num_vfs)
            for j, a in enumerate(p.vfs):
                with self._key(f"port[{i}].vf[{j}]"):
                    port.pf.set_vf(a.index, mac=a.mac, vlan=a.vlan, qos=a.qos, spoofchk=a.spoofchk,
                                   trust=a.trust, state=a.state)  # fmt: skip
            self.ports[p.name] = port
        for i, v in enumerate(sc.vms):
            with self._key(f"vm[{i}]"):
                vm = self.host.add_vm(v.name, memory=v.memory_mb << 20)
            for j, n in enumerate(v.nics):
                key = f"vm[{i}].nic[{j}]"
                with self._key(key):
                    nic = self.host.assign(self.ports[n.port].vf(n.vf), vm)
                    nic.up()
                self._configure_nic(key, self.ports[n.port], n, nic)
                self.nics.append((n.port, n.vf, v.name, nic))
        self.host.clock.advance(1_000_000)  # let every bring-up message settle
        self.ready_ns = self.host.clock.now  # the traffic comes after: rates count from here
        for w in self.warnings:
            logger.warning("%s", w)

    @contextlib.contextmanager
    def _key(self, key: str) -> Iterator[None]:
        """Errors raised while applying ``key`` name the scenario file and the key."""
        try:
            yield
        except SriovError as exc:
            raise ConfigError(f"{self.scenario.source}: {key}: {exc}") from None

    def _warn(self, key: str, text: str) -> None:
        self.warnings.append(f"{self.scenario.source}: {key}: {text}")

    def _configure_nic(self, key: str, port: Any, n: Any, nic: Any) -> None:
        """What the guest's driver configures; a request the PF refuses is a warning, as it is a
        line in the guest's kernel log, and the guest carries on."""
        from sriov.drivers.mailbox import XcastMode

        if n.mac:
            try:
                nic.set_mac(n.mac)
            except MailboxError:
                self._warn(f"{key}.mac", f"the PF refused {n.mac} (NACK): {_mac_refusal(port.pf, n.vf)}; "
                                         f"the VF keeps {nic.mac}")  # fmt: skip
        for k, vid in enumerate(n.vlans):
            try:
                nic.add_vlan(vid)
            except MailboxError:
                self._warn(f"{key}.vlans[{k}]", f"VLAN {vid} refused by the PF (NACK): "
                                                f"{_vlan_refusal(port.pf, n.vf, nic)}")  # fmt: skip
        if n.multicast:
            with self._key(f"{key}.multicast"):
                nic.set_multicast(n.multicast)
            if len(n.multicast) > MAX_VF_MC_ENTRIES:
                self._warn(f"{key}.multicast", f"{len(n.multicast)} groups: the VF passes only the first "
                           f"{MAX_VF_MC_ENTRIES} to the PF (IXGBE_MAX_VF_MC_ENTRIES)")  # fmt: skip
        if n.mtu != 1500:
            try:
                nic.set_mtu(n.mtu)
            except MailboxError:
                self._warn(f"{key}.mtu", f"MTU {n.mtu} refused by the PF (NACK): on 82599 a VF runs jumbo "
                                         "frames only when the PF's MTU is jumbo too (port mtu); "
                                         f"the VF keeps MTU {nic.mtu}")  # fmt: skip
            except SriovError as exc:
                raise ConfigError(f"{self.scenario.source}: {key}.mtu: {exc}") from None
        if n.promisc or n.allmulti:
            wanted = XcastMode.PROMISC if n.promisc else XcastMode.ALLMULTI
            got = nic.set_rx_mode(promisc=n.promisc, allmulti=n.allmulti)
            what = "promisc" if n.promisc else "allmulti"
            if got is None:
                self._warn(f"{key}.{what}", f"not applied: the VF speaks mailbox API {nic.api.version}, "
                                            "which has no UPDATE_XCAST_MODE (API 1.2 and later)")  # fmt: skip
            elif got != wanted:
                why = (
                    "82599 has no VF promiscuous mode (ixgbe answers -EOPNOTSUPP)"
                    if wanted == XcastMode.PROMISC and port.pf.vfinfo[n.vf].trusted
                    else f"an untrusted VF is capped at MULTI "
                    f"(ip link set dev {port.name} vf {n.vf} trust on lifts it)"
                )
                self._warn(f"{key}.{what}", f"the PF applied {got.name} instead of {wanted.name}: {why}")
        if n.rx_usecs is not None:
            with self._key(f"{key}.rx_usecs"):
                nic.set_coalesce(rx_usecs=n.rx_usecs)
        if n.ring_size != R.DEFAULT_RXD:
            with self._key(f"{key}.ring_size"):
                nic.set_ringparam(rx=n.ring_size)

    def offer(
        self,
        port_name: str,
        batch: Batch,
        keep_frames: bool = False,
        progress: Callable[[int], None] | None = None,
        sender: int | None = None,
    ) -> dict[tuple[str, int], list[Batch]]:
        """Offer one stream of frames (see `offer_all`)."""
        return self.offer_all([Stream(port_name, sender, batch)], keep_frames, progress)

    def offer_all(
        self,
        streams: list[Stream],
        keep_frames: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[tuple[str, int], list[Batch]]:
        """Offer every stream at once, in arrival-time order: a wire stream arrives at its port
        (each port's streams merged by time) through the simulation engine, a sender stream
        (``sender`` = N) is handed to VF N's guest driver to transmit, as clock events at its
        times. Every stream's first frame comes 1 us from now. ``keep_frames``: keep a copy of
        what every stack received (the captures) and of the frames dropped at the port."""
        clock = self.host.clock
        kept: dict[tuple[str, int], list[Batch]] = {}
        self._sample(force=True)  # the counters before any traffic: where the plots start
        base = clock.now + 1_000
        wires: dict[str, list[Batch]] = {}
        end = base
        for stream in streams:
            if not len(stream.batch):
                continue
            b = stream.batch
            # times moved to start at `base`; a frame stamped earlier than the one before it
            # (captures merged from several interfaces) arrives right after it, in file order
            ts = np.maximum.accumulate(b.timestamps_ns - int(b.timestamps_ns[0]) + base)
            shifted = Batch(b.data, b.offsets, b.lengths, ts, validate=False)
            end = max(end, int(ts[-1]))
            if stream.sender is not None:
                self._schedule_sends(self._nic(stream.port, stream.sender), shifted, progress)
            else:
                wires.setdefault(stream.port, []).append(shifted)
        for port_name, vf, _vm, nic in self.nics:
            if keep_frames:
                store = kept.setdefault((port_name, vf), [])
                nic.on_receive = lambda batch, store=store: store.append(batch.copy())
            else:
                nic.on_receive = SINK
        ticker = self._tick(keep_frames, kept, end)
        merged = {name: _merge(batches) for name, batches in wires.items()}
        for port_name, piece in _windows(merged):
            result = self.host.run_traffic(self.ports[port_name], piece, trace=self.trace)
            if keep_frames:
                self._keep_drops(port_name, piece, result)
            if progress is not None:
                progress(len(piece))
        clock.run_until(end + SETTLE_NS)  # the guests take what is still in their rings
        ticker.cancel()
        self._drain_pf(keep_frames, kept)
        self._sample(force=True)  # and after the last frame
        return kept

    def _schedule_sends(self, nic: Any, batch: Batch, progress: Callable[[int], None] | None) -> None:
        """The guest sends ``batch``: one clock event per `SEND_CHUNK_NS` of its frames, at the
        first one's time (the transmit engine runs at each tail write)."""
        ts = batch.timestamps_ns
        start = 0
        while start < len(batch):
            stop = max(int(np.searchsorted(ts, ts[start] + SEND_CHUNK_NS, side="left")), start + 1)
            chunk = batch[start:stop]

            def send(chunk: Batch = chunk) -> None:
                self._transmit(nic, chunk)
                if progress is not None:
                    progress(len(chunk))

            self.host.clock.schedule_at(int(ts[start]), send)
            start = stop

    def _tick(self, keep: bool, kept: dict[tuple[str, int], list[Batch]], end: int) -> _Ticker:
        """Every `PF_POLL_NS` until ``end``: the host's stack takes the PF pool's frames, and the
        counters are sampled for the plots."""
        clock = self.host.clock
        ticker = _Ticker()

        def tick() -> None:
            self._drain_pf(keep, kept)
            self._sample()
            if clock.now < end:
                ticker.handle = clock.schedule(PF_POLL_NS, tick)

        ticker.handle = clock.schedule(PF_POLL_NS, tick)
        return ticker

    def _nic(self, port_name: str, vf: int) -> Any:
        return next(nic for p, v, _vm, nic in self.nics if p == port_name and v == vf)

    @staticmethod
    def _transmit(nic: Any, chunk: Batch) -> None:
        """The guest sends a chunk; the engine runs on each tail write, so the ring frees at once."""
        sent = 0
        while sent < len(chunk):
            queued = nic.transmit(chunk[sent:])
            if queued == 0:
                raise ConfigError(f"{nic.name}: transmit ring stuck (no descriptor came back)")
            sent += queued

    def _keep_drops(self, port_name: str, chunk: Batch, result: Any) -> None:
        """Copies of the frames no pool got, with their drop reason codes (for the drops capture)."""
        lost = np.flatnonzero(result.delivered == 0)
        if len(lost):
            frames = Batch(chunk.data, chunk.offsets[lost], chunk.lengths[lost], chunk.timestamps_ns[lost])
            self.drops.setdefault(port_name, []).append((frames.compact(), result.reasons[lost].copy()))

    def _sample(self, force: bool = False) -> None:
        """Record the guests' and the PFs' cumulative counters at this instant (for the plots):
        per function (received packets, received bytes, queue-vector interrupts, mailbox
        interrupts, transmitted packets)."""
        now = self.host.clock.now
        if self.samples and (
            now == self.samples[-1]["t_ns"] or (now - self.samples[-1]["t_ns"] < SAMPLE_NS and not force)
        ):
            return
        row: dict[str, Any] = {"t_ns": now}
        for port_name, vf, _vm, nic in self.nics:
            stats = nic.stats()
            queue_irqs, mbx_irqs = _split_interrupts(nic.interrupts())
            row[f"{port_name}/vf{vf}"] = (int(stats.get("rx_packets", 0)), int(stats.get("rx_bytes", 0)),
                                          queue_irqs, mbx_irqs, int(stats.get("tx_packets", 0)))  # fmt: skip
        for port_name, port in self.ports.items():
            pool = port.device.state.pool_counters[port.pf.pf_pool]
            row[f"{port_name}/pf"] = (int(pool[C.POOL["rx_packets"]]), int(pool[C.POOL["rx_bytes"]]), 0, 0,
                                      int(pool[C.POOL["tx_packets"]]))  # fmt: skip
        self.samples.append(row)

    def _drain_pf(self, keep: bool, kept: dict[tuple[str, int], list[Batch]]) -> None:
        """The host's own stack takes what the PF pool's ring holds (drops it, unless kept)."""
        for name, port in self.ports.items():
            ring = port.pf.rx_ring
            if not keep:
                if ring is not None and port.pf.is_up:
                    ring.discard()
                continue
            while True:
                frames = port.pf.rx_poll(budget=256)
                if frames is None or not len(frames):
                    break
                if keep:
                    kept.setdefault((name, PF_KEY), []).append(frames.copy())


class _Ticker:
    """The pending event of `ScenarioRun._tick` (each tick schedules the next)."""

    handle: Any = None

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


def _merge(batches: list[Batch]) -> Batch:
    """One port's streams as one batch in arrival order (ties in stream order)."""
    if len(batches) == 1:
        return batches[0]
    both = _concat(batches)
    order = np.argsort(both.timestamps_ns, kind="stable")
    return Batch(
        both.data, both.offsets[order], both.lengths[order], both.timestamps_ns[order], validate=False
    )


def _windows(merged: dict[str, Batch]) -> Iterator[tuple[str, Batch]]:
    """The ports' batches as engine calls: one port's in slices of `SLICE_FRAMES`; several ports'
    in turn, `WINDOW_NS` of each at a time (exact within a port, interleaved by window across
    ports). A slice never splits the frames of one instant."""
    step = None if len(merged) == 1 else WINDOW_NS
    cursors = dict.fromkeys(merged, 0)
    while cursors:
        name = min(cursors, key=lambda k: int(merged[k].timestamps_ns[cursors[k]]))
        batch, start = merged[name], cursors[name]
        ts = batch.timestamps_ns
        stop = min(start + SLICE_FRAMES, len(batch))
        if step is not None:
            stop = min(stop, int(np.searchsorted(ts, ts[start] + step, side="left")))
        while start + 1 < stop < len(batch) and ts[stop] == ts[stop - 1]:
            stop -= 1
        stop = max(stop, start + 1)
        yield name, batch[start:stop]
        if stop == len(batch):
            del cursors[name]
        else:
            cursors[name] = stop


MAX_VF_MC_ENTRIES = 30  # ixgbevf passes at most 30 multicast hashes (IXGBE_MAX_VF_MC_ENTRIES)


def _split_interrupts(counts: dict[str, int]) -> tuple[int, int]:
    """A VF's vector counts as (queue vector, mailbox vector): ixgbevf's ``TxRx`` queue vector
    serves its receive and transmit queue alike, so the hardware's count does not split by
    direction; the other vector is the mailbox's."""
    queue = sum(int(v) for name, v in counts.items() if "TxRx" in name)
    return queue, sum(int(v) for v in counts.values()) - queue


def _vlan_refusal(pf: Any, vf: int, nic: Any) -> str:
    """Why the PF NACKed a guest's VLAN filter (the VF driver only sees the NACK)."""
    info = pf.vfinfo[vf]
    if info.pf_vlan:
        return (f"the administrator set port VLAN {info.pf_vlan} on VF {vf}, so its guest may not add "
                "VLAN filters (ixgbe: 'attempted to override administratively set VLAN')")  # fmt: skip
    cap = pf.UNTRUSTED_VF_MAX_VLANS
    if cap is not None and not info.trusted and len([v for v in nic.vlans if v]) >= cap:
        return (f"an untrusted VF holds at most {cap} VLAN filters (the model's cap, "
                f"PfDriver.UNTRUSTED_VF_MAX_VLANS; trust on lifts it)")  # fmt: skip
    return "all 63 shared VLAN filter (VLVF) entries are in use"


def _mac_refusal(pf: Any, vf: int) -> str:
    info = pf.vfinfo[vf]
    if info.pf_set_mac and not info.trusted:
        return "the administrator set this VF's MAC and the VF is not trusted"
    if not info.trusted:
        return "another function already receives that MAC, and an untrusted VF may not take it"
    return "no receive-address (RAR) entry is free"


def run(
    sc: Scenario,
    pcap: str | None = None,
    keep_frames: bool = False,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
    lenient: bool = False,
    trace: bool = False,
) -> tuple[RunReport, ScenarioRun, dict[tuple[str, int], list[Batch]]]:
    """Build the scenario's host, offer its traffic (or ``pcap`` to its first port), report.

    The traffic is read (or generated) before the host is built, so a bad capture fails at once.
    ``strict``: raise `StrictError` before offering any traffic when the model downgraded or
    refused a request (the report's ``warnings``). ``lenient``: read captures as tshark does,
    taking records longer than the file's snaplen (and the frames before any damage). ``trace``:
    keep each VF's arrival/hand-off times in ``nic.napi.trace`` (latency figures; slower)."""
    if pcap is not None:
        specs = [TrafficSpec(port=sc.ports[0].name, pcap=pcap)]
        keys = ["--pcap"]
        source = ""
    else:
        specs = sc.traffic
        keys = [f"traffic[{i}]" for i in range(len(specs))]
        source = sc.source
    warnings: list[str] = []
    t1 = time.perf_counter()
    batches = []
    for i, (key, s) in enumerate(zip(keys, specs, strict=True)):
        batch = traffic_batch(s, sc.seed + i, source, key, lenient)
        cap = rate_cap_warning(s, batch)
        if cap is not None:
            warnings.append(f"{source}: {key}.{cap}")
            logger.warning("%s", warnings[-1])
        batches.append((s.port, s.vf, batch))
    t_traffic = time.perf_counter() - t1
    t0 = time.perf_counter()
    built = ScenarioRun(sc, trace=trace)
    t_build = time.perf_counter() - t0
    warnings += built.warnings
    if strict and warnings:
        raise StrictError(warnings)
    total = sum(len(b) for _, _, b in batches)
    done = 0
    t2 = time.perf_counter()

    def step(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    kept = built.offer_all([Stream(p, vf, b) for p, vf, b in batches], keep_frames, step)
    t_run = time.perf_counter() - t2
    report = _report(built, total, {"build_s": t_build, "traffic_s": t_traffic, "datapath_s": t_run})
    report.warnings = warnings
    report.title = Path(pcap).name if pcap is not None else sc.name
    return report, built, kept


#: pool counters the host sees for a VF (`ip -s link show` on the PF) that the guest cannot read
HOST_SIDE_POOL_COUNTERS = ("rx_dropped", "rx_dma_faults", "rx_queue_disabled", "tx_spoofed", "tx_dropped",
                           "tx_dma_faults")  # fmt: skip


def vf_stats(device: Any, vf: int, nic: Any) -> dict[str, int]:
    """The guest driver's counters plus the host's per-pool drop counters for that VF."""
    stats = {k: int(v) for k, v in nic.stats().items()}
    row = device.state.pool_counters[vf]
    for name in HOST_SIDE_POOL_COUNTERS:
        if name in C.POOL:
            stats[name] = int(row[C.POOL[name]])
    return stats


def pool_stats(device: Any, pool: int) -> dict[str, int]:
    """Every per-pool counter of ``pool`` (the PF's pool: what the host's own stack got)."""
    row = device.state.pool_counters[pool]
    return {name: int(row[i]) for name, i in C.POOL.items()}


def _report(built: ScenarioRun, offered: int, timings: dict[str, float]) -> RunReport:
    from sriov.drivers.mailbox import format_mac
    from sriov.invariants import check_conservation

    ports = {name: dict(port.stats()) for name, port in built.ports.items()}
    vfs = [
        VfReport(port=p, vf=vf, vm=vm, mac=nic.mac, stats=vf_stats(built.ports[p].device, vf, nic))
        for p, vf, vm, nic in built.nics
    ]
    pf = {
        name: PfReport(
            port=name,
            pool=port.pf.pf_pool,
            mac=format_mac(port.pf.mac),
            stats=pool_stats(port.device, port.pf.pf_pool),
        )
        for name, port in built.ports.items()
    }
    drops: dict[str, int] = {}
    for stats in ports.values():
        for name in DROP_COUNTERS:
            if stats.get(name):
                drops[name] = drops.get(name, 0) + int(stats[name])
    conserved = all(not check_conservation(port.device) for port in built.ports.values())
    return RunReport(
        scenario=built.scenario.name,
        frames_offered=offered,
        ports=ports,
        vfs=vfs,
        pf=pf,
        drops_by_reason=drops,
        timings=timings,
        sim_time_ns=built.host.clock.now,
        conserved=conserved,
        title=built.scenario.name,
    )


#: the port counters that count frames (or pool copies) dropped, one per reason: receive, then
#: transmit (tx_dropped is their sum on the transmit side, so it is not one of them)
DROP_COUNTERS = (
    "rx_length_errors",
    "rx_long_length_errors",
    "rx_vlan_filtered",
    "rx_no_pool",
    "rx_no_dma_resources",
    "rx_dma_faults",
    "rx_queue_disabled",
    "rx_link_down",
    "tx_spoofed",
    "tx_disabled",
    "tx_length_errors",
    "tx_dma_faults",
)


#: the list of files a run wrote into its --out directory (what --force may delete next time)
OUTPUT_MANIFEST = "sriov-run-files.txt"
#: captures estimated above this size make `sriov run --out` warn before simulating
LARGE_CAPTURES_BYTES = 1 << 30


def prepare_out(out: Path, force: bool = False) -> None:
    """Make sure ``out`` can take a run's files, before anything is simulated.

    It must be a directory we can write (created if missing). A directory that already holds
    files is refused unless ``force``; with ``force`` the files an earlier run listed in its
    manifest (`OUTPUT_MANIFEST`) are deleted first, so no stale capture survives, and nothing
    else is touched."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a directory (allowed: a new or empty directory)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if not force:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(
            f"--out {out}: the directory is not empty ({shown}); use a new directory, or --force to "
            "replace what an earlier sriov run wrote there"
        )
    manifest = out / OUTPUT_MANIFEST
    if manifest.is_file():
        for name in manifest.read_text().split("\n"):
            if name and "/" not in name and name not in (".", ".."):
                (out / name).unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)


def capture_bytes_estimate(report_frames: int, offered_bytes: int) -> int:
    """About how many bytes the captures of a run take: each frame's copies (received, wire, drops)."""
    return 2 * (offered_bytes + 16 * report_frames)


def _concat(batches: list[Batch]) -> Batch:
    """One Batch of several (their buffers joined, every frame kept with its timestamp)."""
    if not batches:
        return Batch.empty()
    if len(batches) == 1:
        return batches[0]
    starts = np.cumsum([0] + [len(b.data) for b in batches[:-1]], dtype=np.int64)
    return Batch(
        np.concatenate([b.data for b in batches]),
        np.concatenate([b.offsets + s for b, s in zip(batches, starts, strict=True)]),
        np.concatenate([b.lengths for b in batches]),
        np.concatenate([b.timestamps_ns for b in batches]),
    )


def output_names(built: ScenarioRun) -> list[str]:
    """The files `write_outputs` and the plots put into --out, in the order they are written."""
    from sriov.plots import PLOT_FILES

    names = [
        f"{port_name}-vf{vf}.pcap" for port_name, vf, _vm, _nic in sorted(built.nics, key=lambda e: e[:2])
    ]
    for port_name in built.ports:
        names += [f"{port_name}-pf.pcap", f"{port_name}-wire.pcap", f"{port_name}-drops.pcapng"]
    return [*names, "stats.json", *PLOT_FILES]


def write_outputs(
    report: RunReport, kept: dict[tuple[str, int], list[Batch]], out: Path, built: ScenarioRun
) -> list[Path]:
    """Into ``out`` (checked by `prepare_out`): a pcap per VF (what its VM received, empty when
    it got nothing) and of the PF's pool, per port a pcap of what left on the wire and a pcapng
    of the frames dropped with the reason as each frame's comment, and the stats JSON. Every
    timestamp is the frame's own (nanosecond pcap). The manifest listing them is written first."""
    import json

    from sriov.traffic import write_pcap, write_pcapng
    from sriov.wire import DropReason

    (out / OUTPUT_MANIFEST).write_text("\n".join([*output_names(built), OUTPUT_MANIFEST]) + "\n")
    written = []

    def capture(name: str, batch: Batch) -> None:
        path = out / name
        write_pcap(path, batch)
        written.append(path)

    for port_name, vf, _vm, _nic in sorted(built.nics, key=lambda e: e[:2]):
        capture(f"{port_name}-vf{vf}.pcap", _concat(kept.get((port_name, vf), [])))
    names = [reason.name for reason in DropReason]
    for port_name, port in built.ports.items():
        capture(f"{port_name}-pf.pcap", _concat(kept.get((port_name, PF_KEY), [])))
        sent = port.wire.sent
        capture(f"{port_name}-wire.pcap", sent.compact() if len(sent) else Batch.empty())
        pieces = built.drops.get(port_name, [])
        codes = np.concatenate([c for _, c in pieces]).astype(np.int64) if pieces else np.zeros(0, np.int64)
        path = out / f"{port_name}-drops.pcapng"
        write_pcapng(path, _concat([b for b, _ in pieces]), comment_codes=codes, comment_names=names)
        written.append(path)
    stats_path = out / "stats.json"
    try:
        stats_path.write_text(json.dumps(report.to_json(), indent=2))
    except OSError as exc:
        raise ConfigError(f"{stats_path}: cannot write: {exc.strerror or exc}") from None
    written.append(stats_path)
    return written
