"""Run a scenario: build the host it describes, offer its traffic to the wire, collect what each VM got.

This is what `sriov run` does. Traffic is offered in chunks in arrival-time order; after each
chunk the simulation clock advances to the chunk's last arrival, so interrupts, the PF's mailbox
work and the guests' NAPI polls run where they fall in time, and every guest driver then drains
its ring (`rx_poll`), as a guest that keeps up would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sriov.batch import Batch
from sriov.errors import ConfigError
from sriov.host import Host
from sriov.scenario import Scenario, TrafficSpec

CHUNK_NS = 20_000  # offer at most 20 us of wire time per chunk: a guest polls well before its ring fills
MAX_CHUNK_FRAMES = 4096
PF_KEY = -1  # the PF's own pool in per-function maps
SAMPLE_NS = 500_000  # throughput samples for the plots every 500 us of simulated time


_COUNTERS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

#: JSON Schema of the `sriov run --json` document (also in the README, "JSON output").
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sriov run result",
    "type": "object",
    "required": ["schema", "scenario", "frames_offered", "sim_time_ns", "conserved", "ports", "vfs",
                 "drops_by_reason", "timings"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "sriov-run/1"},
        "scenario": {"type": "string"},
        "frames_offered": {"type": "integer", "minimum": 0},
        "sim_time_ns": {"type": "integer", "minimum": 0},
        "conserved": {"type": "boolean"},
        "ports": {"type": "object", "additionalProperties": _COUNTERS},
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

    def to_json(self) -> dict[str, Any]:
        """The `--json` document (schema: README, "JSON output")."""
        return {
            "schema": "sriov-run/1",
            "scenario": self.scenario,
            "frames_offered": self.frames_offered,
            "sim_time_ns": self.sim_time_ns,
            "conserved": self.conserved,
            "ports": self.ports,
            "vfs": [
                {"port": v.port, "vf": v.vf, "vm": v.vm, "mac": v.mac, "stats": v.stats} for v in self.vfs
            ],
            "drops_by_reason": self.drops_by_reason,
            "timings": self.timings,
        }


def traffic_batch(spec: TrafficSpec, seed: int) -> Batch:
    """The frames a traffic entry offers: its capture, or its generator's output."""
    if spec.pcap is not None:
        from sriov.traffic import read_pcap

        batch = read_pcap(spec.pcap)
    else:
        from sriov.traffic.synth import from_scenario

        batch = from_scenario(spec.generator or {}, seed=seed)
    if spec.repeat > 1:
        batch = _repeat(batch, spec.repeat)
    return batch


def _repeat(batch: Batch, times: int) -> Batch:
    span = int(batch.timestamps_ns[-1] - batch.timestamps_ns[0]) + 1 if len(batch) else 0
    n = len(batch)
    offsets = np.tile(batch.offsets, times)
    lengths = np.tile(batch.lengths, times)
    ts = np.tile(batch.timestamps_ns, times) + np.repeat(np.arange(times, dtype=np.int64) * span, n)
    return Batch(batch.data, offsets, lengths, ts)


class ScenarioRun:
    """A host built from a scenario, ready to take traffic."""

    def __init__(self, sc: Scenario, trace: bool = False) -> None:
        """``trace``: record every VF's arrival and hand-off times (``nic.napi.trace``, for latencies)."""
        self.scenario = sc
        self.trace = trace
        self.host = Host(seed=sc.seed)
        self.ports = {}
        self.nics: list[tuple[str, int, str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.drops: dict[str, list[tuple[Batch, np.ndarray]]] = {}  # per port, when frames are kept
        for p in sc.ports:
            port = self.host.add_port(p.name)
            if p.mtu != 1500:
                port.pf.set_mtu(p.mtu)
            if p.promisc:
                port.pf.set_promisc(True)
            if p.num_vfs:
                port.pf.set_numvfs(p.num_vfs)
            for a in p.vfs:
                port.pf.set_vf(a.index, mac=a.mac, vlan=a.vlan, qos=a.qos, spoofchk=a.spoofchk,
                               trust=a.trust, state=a.state)  # fmt: skip
            self.ports[p.name] = port
        for v in sc.vms:
            vm = self.host.add_vm(v.name, memory=v.memory_mb << 20)
            for n in v.nics:
                nic = self.host.assign(self.ports[n.port].vf(n.vf), vm)
                nic.up()
                if n.mac:
                    nic.set_mac(n.mac)
                for vid in n.vlans:
                    nic.add_vlan(vid)
                if n.multicast:
                    nic.set_multicast(n.multicast)
                if n.mtu != 1500:
                    nic.set_mtu(n.mtu)
                if n.promisc or n.allmulti:
                    nic.set_rx_mode(promisc=n.promisc, allmulti=n.allmulti)
                if n.rx_usecs is not None:
                    nic.set_coalesce(rx_usecs=n.rx_usecs)
                self.nics.append((n.port, n.vf, v.name, nic))
        self.host.clock.advance(1_000_000)  # let every bring-up message settle
        self.ready_ns = self.host.clock.now  # the traffic comes after: rates count from here

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
        """Offer every stream at once, interleaved in arrival-time order: a wire stream arrives at
        its port, a sender stream (``sender`` = N) is handed to VF N's guest driver to transmit.
        Every stream's first frame comes 1 us from now; guests drain their rings as time passes."""
        clock = self.host.clock
        kept: dict[tuple[str, int], list[Batch]] = {}
        base = clock.now + 1_000
        cursors = []
        for stream in streams:
            if not len(stream.batch):
                continue
            b = stream.batch
            # times moved to start at `base`; a frame stamped earlier than the one before it
            # (captures merged from several interfaces) arrives right after it, in file order
            ts = np.maximum.accumulate(b.timestamps_ns - int(b.timestamps_ns[0]) + base)
            cursors.append([Batch(b.data, b.offsets, b.lengths, ts, validate=False), 0, stream])
        while cursors:
            cursor = min(cursors, key=lambda c: int(c[0].timestamps_ns[c[1]]))
            shifted, start, stream = cursor
            ts = shifted.timestamps_ns
            stop = int(np.searchsorted(ts, ts[start] + CHUNK_NS, side="left"))
            stop = min(max(stop, start + 1), start + MAX_CHUNK_FRAMES, len(shifted))
            chunk = shifted[start:stop]
            clock.run_until(int(ts[start]))
            if stream.sender is not None:
                self._transmit(self._nic(stream.port, stream.sender), chunk)
            else:
                result = self._receive(stream.port, chunk)
                if keep_frames:
                    self._keep_drops(stream.port, chunk, result)
            clock.run_until(int(ts[stop - 1]))
            self._drain(keep_frames, kept)
            self._sample()
            if progress is not None:
                progress(stop - start)
            cursor[1] = stop
            if stop == len(shifted):
                cursors.remove(cursor)
        return kept

    def _receive(self, port_name: str, chunk: Batch) -> Any:
        """The chunk (one `CHUNK_NS` slice) reaches the port's device at once, at its first frame's
        time (or now, when another stream's chunk took the clock past it): that is each frame's
        arrival in the traces, so a latency is never negative (a frame is not taken off the ring
        before it reached the device)."""
        at = max(int(chunk.timestamps_ns[0]), self.host.clock.now)
        arrived = Batch(chunk.data, chunk.offsets, chunk.lengths, np.full(len(chunk), at, np.int64))
        return self.host.run_traffic(self.ports[port_name], arrived, chunk_ns=CHUNK_NS,
                                     max_chunk=MAX_CHUNK_FRAMES, trace=self.trace)  # fmt: skip

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

    def _sample(self) -> None:
        """Record the guests' cumulative counters at this instant (for the throughput plots)."""
        now = self.host.clock.now
        if self.samples and now - self.samples[-1]["t_ns"] < SAMPLE_NS:
            return
        row: dict[str, Any] = {"t_ns": now}
        for port_name, vf, _vm, nic in self.nics:
            stats = nic.stats()
            irqs = sum(nic.interrupts().values()) if hasattr(nic, "interrupts") else 0
            row[f"{port_name}/vf{vf}"] = (
                int(stats.get("rx_packets", 0)),
                int(stats.get("rx_bytes", 0)),
                irqs,
            )
        self.samples.append(row)

    def _drain(self, keep: bool, kept: dict[tuple[str, int], list[Batch]]) -> None:
        """Every guest (and the host's own stack, on the PF's pool) takes what its ring holds."""
        drivers = [(p, vf, nic) for p, vf, _vm, nic in self.nics]
        drivers += [(name, PF_KEY, port.pf) for name, port in self.ports.items()]
        for port_name, vf, driver in drivers:
            while True:
                frames = driver.rx_poll(budget=256)
                if frames is None or not len(frames):
                    break
                if keep:
                    kept.setdefault((port_name, vf), []).append(frames.compact())


def run(
    sc: Scenario,
    pcap: str | None = None,
    keep_frames: bool = False,
    progress: Callable[[int, int], None] | None = None,
    trace: bool = False,
) -> tuple[RunReport, ScenarioRun, dict[tuple[str, int], list[Batch]]]:
    """Build the scenario's host, offer its traffic (or ``pcap`` to its first port), report.
    ``trace``: keep each VF's arrival/hand-off times in ``nic.napi.trace`` (latency figures)."""
    t0 = time.perf_counter()
    built = ScenarioRun(sc, trace=trace)
    t_build = time.perf_counter() - t0
    if pcap is not None:
        if not sc.ports:
            raise ConfigError("--pcap needs a scenario with at least one port")
        specs = [TrafficSpec(port=sc.ports[0].name, pcap=pcap)]
    else:
        specs = sc.traffic
    t1 = time.perf_counter()
    batches = [(s.port, s.vf, traffic_batch(s, sc.seed + i)) for i, s in enumerate(specs)]
    t_traffic = time.perf_counter() - t1
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
    return report, built, kept


#: pool counters the host sees for a VF (`ip -s link show` on the PF) that the guest cannot read
HOST_SIDE_POOL_COUNTERS = ("rx_dropped", "rx_dma_faults", "rx_queue_disabled", "tx_spoofed", "tx_dropped",
                           "tx_dma_faults")  # fmt: skip


def vf_stats(device: Any, vf: int, nic: Any) -> dict[str, int]:
    """The guest driver's counters plus the host's per-pool drop counters for that VF."""
    from sriov.hw import counters as C

    stats = {k: int(v) for k, v in nic.stats().items()}
    row = device.state.pool_counters[vf]
    for name in HOST_SIDE_POOL_COUNTERS:
        if name in C.POOL:
            stats[name] = int(row[C.POOL[name]])
    return stats


def _report(built: ScenarioRun, offered: int, timings: dict[str, float]) -> RunReport:
    from sriov.invariants import check_conservation

    ports = {name: dict(port.stats()) for name, port in built.ports.items()}
    vfs = [
        VfReport(port=p, vf=vf, vm=vm, mac=nic.mac, stats=vf_stats(built.ports[p].device, vf, nic))
        for p, vf, vm, nic in built.nics
    ]
    drops: dict[str, int] = {}
    for stats in ports.values():
        for name, value in stats.items():
            if name.startswith("rx_drop_") or name in _PORT_DROP_NAMES:
                drops[name] = drops.get(name, 0) + int(value)
    conserved = all(not check_conservation(port.device) for port in built.ports.values())
    return RunReport(
        scenario=built.scenario.name,
        frames_offered=offered,
        ports=ports,
        vfs=vfs,
        drops_by_reason=drops,
        timings=timings,
        sim_time_ns=built.host.clock.now,
        conserved=conserved,
    )


_PORT_DROP_NAMES = (
    "rx_length_errors",
    "rx_long_length_errors",
    "rx_vlan_filtered",
    "rx_no_pool",
    "rx_no_dma_resources",
    "rx_dma_faults",
    "rx_queue_disabled",
)


def write_outputs(
    report: RunReport, kept: dict[tuple[str, int], list[Batch]], out: Path, built: ScenarioRun | None = None
) -> list[Path]:
    """Into ``out``: a pcap per VF (what its VM received) and of the PF's pool, per port a pcap
    of what left on the wire and a pcapng of the frames dropped with the reason as each frame's
    comment, and the stats JSON."""
    import json

    from sriov.traffic import write_pcap, write_pcapng
    from sriov.wire import DropReason

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for (port_name, vf), batches in sorted(kept.items()):
        frames = [f for b in batches for f in b]
        ts = np.concatenate([b.timestamps_ns for b in batches]) if batches else None
        path = out / (f"{port_name}-pf.pcap" if vf == PF_KEY else f"{port_name}-vf{vf}.pcap")
        write_pcap(path, Batch.from_frames(frames, ts))
        written.append(path)
    if built is not None:
        names = [reason.name for reason in DropReason]
        for port_name, port in built.ports.items():
            sent = port.wire.sent
            path = out / f"{port_name}-wire.pcap"
            write_pcap(path, sent.compact() if len(sent) else Batch.empty())
            written.append(path)
            pieces = built.drops.get(port_name, [])
            frames = [f for b, _ in pieces for f in b]
            ts = np.concatenate([b.timestamps_ns for b, _ in pieces]) if pieces else None
            codes = (
                np.concatenate([c for _, c in pieces]).astype(np.int64) if pieces else np.zeros(0, np.int64)
            )
            path = out / f"{port_name}-drops.pcapng"
            write_pcapng(path, Batch.from_frames(frames, ts), comment_codes=codes, comment_names=names)
            written.append(path)
    stats_path = out / "stats.json"
    stats_path.write_text(json.dumps(report.to_json(), indent=2))
    written.append(stats_path)
    return written
