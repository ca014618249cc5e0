"""rx-usecs sweeps: interrupt rate, batch per interrupt, latency and drops against the arithmetic.

What `sriov bench` and benchmarks/RESULTS.md show for interrupt moderation, and the PNG
plot of interrupt rate and p99 latency against rx-usecs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

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
        f"| {r.rx_usecs} | {r.interval_us:.2f} | {r.interrupts_per_s:,.0f} "
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
