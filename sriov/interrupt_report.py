"""rx-usecs sweeps: interrupt rate, batch per interrupt, latency and drops against the arithmetic.

What `sriov bench` and benchmarks/RESULTS.md show for interrupt moderation, and the PNG
plot of interrupt rate and p99 latency against rx-usecs.

Two sources: `sweep` runs the Numba timeline (`sriov.timeline`) alone; `full_sweep` runs the
full model (a `Host` with a port, the PF driver, one VF assigned to a VM with the VF driver's
NAPI, frames offered through `Host.run_traffic`) and puts the timeline's answer for the same
arrivals and settings beside it. Command line:
``python -m sriov.interrupt_report [--frames N] [--per-frame-ns NS] [--plot PNG]``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sriov.batch import Batch
from sriov.hw.eitr import eitr_from_usecs, interval_ns_from_eitr
from sriov.timeline import ModerationSettings, simulate

WIRE_OVERHEAD_BYTES = 24  # 4 FCS + 20 preamble/SFD/inter-frame gap


def line_rate_arrivals(frames: int, frame_bytes: int = 60, gbps: float = 10.0) -> np.ndarray:
    """Arrival times (ns) of back-to-back frames of ``frame_bytes`` captured bytes at line rate."""
    gap_ns = (frame_bytes + WIRE_OVERHEAD_BYTES) * 8 / gbps
    return np.floor(np.arange(frames) * gap_ns).astype(np.int64)


@dataclass(frozen=True)
class SweepRow:
    """One rx-usecs setting's measured timeline next to the interval arithmetic."""

    rx_usecs: int
    interval_us: float
    interrupts_per_s: float
    expected_interrupts_per_s: float  # 1 / interval when moderation binds (inf for 0)
    frames_per_interrupt: float
    expected_frames_per_interrupt: float  # interval / frame gap
    p50_us: float
    p99_us: float
    p999_us: float
    dropped: int
    frames: int


def sweep(
    arrivals_ns: np.ndarray, rx_usecs: list[int], base: ModerationSettings | None = None
) -> list[SweepRow]:
    """Simulate one queue at each rx-usecs value."""
    base = base or ModerationSettings()
    gap = float(np.mean(np.diff(arrivals_ns))) if len(arrivals_ns) > 1 else float("nan")
    rows = []
    for usecs in rx_usecs:
        s = replace(base, rx_usecs=usecs)
        tl = simulate(arrivals_ns, s)
        pct = tl.latency_percentiles((50, 99, 99.9))
        interval = s.interval_ns
        rows.append(
            SweepRow(
                rx_usecs=usecs,
                interval_us=interval / 1000,
                interrupts_per_s=tl.interrupts_per_second(),
                expected_interrupts_per_s=1e9 / interval if interval else float("inf"),
                frames_per_interrupt=tl.frames_per_interrupt(),
                expected_frames_per_interrupt=interval / gap if interval else 1.0,
                p50_us=pct[50] / 1000,
                p99_us=pct[99] / 1000,
                p999_us=pct[99.9] / 1000,
                dropped=tl.dropped,
                frames=len(arrivals_ns),
            )
        )
    return rows


def markdown_table(rows: list[SweepRow]) -> str:
    """The sweep as a Markdown table."""
    head = (
        "| rx-usecs | interval (us) | interrupts/s | 1/interval | frames/irq | interval/gap "
        "| p50 (us) | p99 (us) | p99.9 (us) | dropped |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r.rx_usecs} | {r.interval_us:.2f} | {r.cycle_us:.2f} | {r.interrupts_per_s:,.0f} "
        f"| {r.expected_interrupts_per_s:,.0f} "
        f"| {r.frames_per_interrupt:.1f} | {r.expected_frames_per_interrupt:.1f} | {r.p50_us:.2f} "
        f"| {r.p99_us:.2f} | {r.p999_us:.2f} | {r.dropped:,} of {r.frames:,} |\n"
        for r in rows
    )
    return head + body


def plot(rows: list[SweepRow], path: str | Path, title: str = "EITR moderation") -> Path:
    """Interrupt rate and p99 latency against rx-usecs, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [max(r.rx_usecs, 0.5) for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4), dpi=110)
    ax1.plot(x, [r.interrupts_per_s for r in rows], "o-", color="tab:blue", label="interrupts/s")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("rx-usecs (ethtool -C; 0 drawn at 0.5)")
    ax1.set_ylabel("interrupts per second", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(x, [r.p99_us for r in rows], "s--", color="tab:red", label="p99 latency")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 arrival-to-guest latency (us)", color="tab:red")
    ax1.set_title(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


# -- the full model: device + PF driver + VF driver (NAPI) on the simulation clock ----------------------
VF_MAC = "02:00:00:00:00:10"
SETTLE_NS = 10_000_000  # after bring-up: every mailbox exchange and link check is over


def line_rate_batch(frames: int, mac: str = VF_MAC, frame_bytes: int = 60, gbps: float = 10.0) -> Batch:
    """``frames`` copies of one UDP-like frame to ``mac`` at line rate (one buffer, no copies)."""
    dst = bytes.fromhex(mac.replace(":", ""))
    head = dst + bytes.fromhex("020000000099") + b"\x08\x00"
    data = np.frombuffer(head + bytes(max(0, frame_bytes - len(head))), np.uint8).copy()
    return Batch.from_arrays(
        data,
        np.zeros(frames, np.int64),
        np.full(frames, len(data), np.uint32),
        line_rate_arrivals(frames, frame_bytes, gbps),
    )


def full_model(settings: ModerationSettings, seed: int = 0):
    """(host, port, nic): one port, VF 0 with ``VF_MAC`` in a VM, its driver up with ``settings``.

    The VM's injection latency, the NAPI budget and guest costs come from ``settings``; the ring
    is the VF driver's own (512 descriptors, 511 usable: ``settings.ring_size`` is not used).
    """
    from sriov.drivers.napi import NapiConfig
    from sriov.host import Host

    host = Host(seed=seed, injection_latency_ns=settings.injection_latency_ns)
    port = host.add_port("eth0")
    port.pf.set_numvfs(1)
    port.pf.set_vf(0, mac=VF_MAC)
    vm = host.add_vm("vm0", memory=16 << 20)
    nic = host.assign(port.vf(0), vm)
    nic.napi.configure(
        NapiConfig(
            budget=settings.budget,
            poll_overhead_ns=settings.poll_overhead_ns,
            per_frame_ns=settings.per_frame_ns,
        )
    )
    nic.up()
    nic.set_coalesce(settings.rx_usecs)
    host.clock.advance(SETTLE_NS)
    return host, port, nic


@dataclass(frozen=True)
class FullRow:
    """One rx-usecs setting measured on the full model, with the timeline's answer beside it."""

    rx_usecs: int
    interval_us: float
    frames: int
    interrupts: int
    interrupts_per_s: float
    frames_per_interrupt: float
    p50_us: float
    p99_us: float
    p999_us: float
    dropped: int  # ring overflow (rx_no_dma_resources at the port, rx_dropped of the pool)
    ring_capacity: int
    cycle_us: float  # `napi_cycle_ns`: the shortest gap between interrupts the guest allows
    expected_interrupts_per_s: float  # 1 / max(interval, cycle)
    frames_per_interval: float  # max(interval, cycle) / frame gap: what one interrupt should carry
    overflow_expected: bool  # frames per interval > ring capacity
    expected_frames_per_interrupt: (
        float  # frames_per_interval, or the ring-bound figure (`ring_bound_frames`)
    )
    timeline_interrupts: int
    timeline_dropped: int
    agrees: bool  # identical interrupt times, hand-off times and drops
    wall_s: float


def measure_full(batch: Batch, settings: ModerationSettings, seed: int = 0) -> FullRow:
    """Offer ``batch`` to the full model at its arrival times; measure, and compare with the timeline."""
    import time

    from sriov.hw import counters as C

    host, port, nic = full_model(settings, seed)
    nic.on_receive = _count_only
    capacity = nic.rx_ring.count - 1
    start = host.clock.now + 1_000
    dropped0 = int(port.device.state.pool_counters[0, C.POOL["rx_dropped"]])
    t0 = time.perf_counter()
    host.run_traffic(port, batch, start_ns=start)
    interval = interval_ns_from_eitr(eitr_from_usecs(settings.rx_usecs))
    host.clock.advance(interval + 1_000_000)  # the last interval expires and the guest drains
    wall = time.perf_counter() - t0
    trace = nic.napi.trace
    dropped = int(port.device.state.pool_counters[0, C.POOL["rx_dropped"]]) - dropped0
    arrivals = batch.timestamps_ns - batch.timestamps_ns[0] + start
    tl = simulate(arrivals, replace(settings, ring_size=capacity))
    irqs = trace.irq.view() - settings.injection_latency_ns  # delivery -> the device's fire time
    handed = tl.handed_ns[tl.handed_ns >= 0]
    agrees = (
        np.array_equal(irqs, tl.irq_times_ns)
        and np.array_equal(trace.handed.view(), handed)
        and dropped == tl.dropped
    )
    span = max(1, int(arrivals[-1] - arrivals[0])) if len(arrivals) > 1 else 1
    lat = trace.latencies_ns()
    pct = np.percentile(lat, (50, 99, 99.9)) if len(lat) else np.full(3, np.nan)
    gap = span / max(1, len(arrivals) - 1)
    cycle = napi_cycle_ns(settings, gap)
    period = max(interval, cycle)
    n_irq = trace.irq.n
    return FullRow(
        rx_usecs=settings.rx_usecs,
        interval_us=interval / 1000,
        frames=len(batch),
        interrupts=n_irq,
        interrupts_per_s=n_irq * 1e9 / span,
        frames_per_interrupt=trace.handed.n / n_irq if n_irq else 0.0,
        p50_us=float(pct[0]) / 1000,
        p99_us=float(pct[1]) / 1000,
        p999_us=float(pct[2]) / 1000,
        dropped=dropped,
        ring_capacity=capacity,
        cycle_us=cycle / 1000,
        expected_interrupts_per_s=1e9 / period if period else float("inf"),
        frames_per_interval=period / gap,
        overflow_expected=period / gap > capacity,
        expected_frames_per_interrupt=min(period / gap, ring_bound_frames(settings, gap, capacity)),
        timeline_interrupts=tl.interrupts,
        timeline_dropped=tl.dropped,
        agrees=bool(agrees),
        wall_s=wall,
    )


def napi_cycle_ns(settings: ModerationSettings, gap_ns: float) -> float:
    """The arithmetic of an unmoderated interrupt cycle under a steady stream (one frame per ``gap_ns``).

    An interrupt is injected after ``L``; the guest polls ``n`` times (``O`` each) and handles
    the ``T / gap`` frames of the cycle at ``f`` each; the next interrupt fires as it re-enables.
    So ``T = L + n * O + (T / gap) * f``, i.e. ``T = (L + n * O) / (1 - f / gap)``, with the
    smallest ``n`` whose budget covers the cycle's frames. Infinite when the guest is slower
    than the wire (``f >= gap``: NAPI never completes). With moderation the gap between
    interrupts is ``max(interval, T)``.
    """
    if settings.per_frame_ns >= gap_ns:
        return float("inf")
    for n in range(1, 1 << 16):
        cycle = (settings.injection_latency_ns + n * settings.poll_overhead_ns) / (
            1 - settings.per_frame_ns / gap_ns
        )
        if cycle / gap_ns <= n * settings.budget:
            return cycle
    return float("inf")


def ring_bound_frames(settings: ModerationSettings, gap_ns: float, capacity: int) -> float:
    """Frames one interrupt can carry when the ring overflows between interrupts (arithmetic).

    The guest finds the ring full (``capacity``) and drains it while frames keep arriving into
    the descriptors it gives back, at ``c = f + O / budget`` per frame: it takes
    ``capacity / (1 - c / gap)`` frames before it catches up. Infinite if it never does.
    """
    cost = settings.per_frame_ns + settings.poll_overhead_ns / settings.budget
    return capacity / (1 - cost / gap_ns) if cost < gap_ns else float("inf")


def _count_only(batch: Batch) -> None:
    """The guest stack of the measurements: takes the frames, keeps nothing."""


def full_sweep(batch: Batch, rx_usecs: list[int], base: ModerationSettings | None = None) -> list[FullRow]:
    """`measure_full` at each rx-usecs value."""
    base = base or ModerationSettings()
    return [measure_full(batch, replace(base, rx_usecs=u)) for u in rx_usecs]


def full_markdown_table(rows: list[FullRow]) -> str:
    """The full-model sweep as a Markdown table, the arithmetic and the timeline beside it."""
    head = (
        "| rx-usecs | interval (us) | NAPI cycle (us) | interrupts/s | arithmetic | frames/irq | arithmetic "
        "| p50 (us) | p99 (us) | p99.9 (us) | ring overflow expected | dropped | timeline irqs / dropped "
        "| same as timeline |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|:---:|\n"
    )
    body = "".join(
        f"| {r.rx_usecs} | {r.interval_us:.2f} | {r.cycle_us:.2f} | {r.interrupts_per_s:,.0f} "
        f"| {r.expected_interrupts_per_s:,.0f} "
        f"| {r.frames_per_interrupt:.1f} | {r.expected_frames_per_interrupt:.1f} | {r.p50_us:.2f} "
        f"| {r.p99_us:.2f} "
        f"| {r.p999_us:.2f} | {'yes' if r.overflow_expected else 'no'} | {r.dropped:,} of {r.frames:,} "
        f"| {r.timeline_interrupts:,} / {r.timeline_dropped:,} | {'yes' if r.agrees else 'NO'} |\n"
        for r in rows
    )
    return head + body


def main(argv: list[str] | None = None) -> int:
    """Print the full-model sweep at 10 GbE line rate of 64-byte frames (and optionally plot it)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sriov.interrupt_report", description=main.__doc__)
    ap.add_argument("--frames", type=int, default=2_000_000)
    ap.add_argument("--rx-usecs", type=int, nargs="+", default=[0, 10, 50, 100, 1022])
    ap.add_argument("--injection-ns", type=int, default=2_000)
    ap.add_argument("--poll-overhead-ns", type=int, default=1_000)
    ap.add_argument("--per-frame-ns", type=int, default=25)
    ap.add_argument("--plot", default=None, help="write interrupt rate and p99 against rx-usecs to this PNG")
    args = ap.parse_args(argv)
    base = ModerationSettings(
        injection_latency_ns=args.injection_ns,
        poll_overhead_ns=args.poll_overhead_ns,
        per_frame_ns=args.per_frame_ns,
    )
    rows = full_sweep(line_rate_batch(args.frames), args.rx_usecs, base)
    print(full_markdown_table(rows), end="")
    print(f"host time: {', '.join(f'{r.wall_s:.2f} s' for r in rows)}")
    if args.plot:
        plot(
            [
                SweepRow(
                    r.rx_usecs,
                    r.interval_us,
                    r.interrupts_per_s,
                    r.expected_interrupts_per_s,
                    r.frames_per_interrupt,
                    r.frames_per_interval,
                    r.p50_us,
                    r.p99_us,
                    r.p999_us,
                    r.dropped,
                    r.frames,
                )
                for r in rows
            ],
            args.plot,
            title="EITR moderation, full model (10 GbE, 64 B, one VF)",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
