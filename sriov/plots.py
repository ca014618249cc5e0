"""PNG plots: of a scenario run (per-VF throughput over time, drops by reason, interrupt rate), and
of a sweep (each metric against the first axis, one line per value of the second)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt

    return plt


def write_run_plots(report: Any, built: Any, out: Path) -> list[Path]:
    """Write throughput.png, drops.png and interrupts.png for a finished run into ``out``."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    samples = built.samples
    keys = [k for k in (samples[0] if samples else {}) if k != "t_ns"]
    written = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in keys:
        t, mbps = _rates(samples, key, index=1, scale=8e-6)
        ax.plot(t, mbps, label=key)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("received (Mbit/s)")
    ax.set_title(f"{report.scenario}: per-VF receive throughput")
    if keys:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    written.append(_save(plt, fig, out / "throughput.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    reasons = sorted(report.drops_by_reason.items(), key=lambda kv: -kv[1])
    ax.barh([r for r, _ in reasons] or ["(none)"], [v for _, v in reasons] or [0], color="tab:red")
    ax.set_xlabel("frames (or pool copies) dropped")
    ax.set_title(f"{report.scenario}: drops by reason")
    ax.grid(alpha=0.3, axis="x")
    written.append(_save(plt, fig, out / "drops.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in keys:
        t, rate = _rates(samples, key, index=2, scale=1.0)
        ax.plot(t, [r / 1000 for r in rate], label=key)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("interrupts (thousand per second)")
    ax.set_title(f"{report.scenario}: interrupt rate per VF")
    if keys:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    written.append(_save(plt, fig, out / "interrupts.png"))
    return written


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rates(
    samples: list[dict[str, Any]], key: str, index: int, scale: float
) -> tuple[list[float], list[float]]:
    """Per-second rates of a cumulative counter between consecutive samples."""
    times, rates = [], []
    for prev, cur in itertools.pairwise(samples):
        dt = (cur["t_ns"] - prev["t_ns"]) / 1e9
        if dt <= 0:
            continue
        times.append(cur["t_ns"] / 1e6)
        rates.append((cur[key][index] - prev[key][index]) / dt * scale)
    return times, rates


def write_sweep_plots(
    rows: list[dict[str, Any]], axes: list[Any], metrics: list[str], out: Path
) -> list[Path]:
    """One PNG per metric (``sweep-METRIC.png``): the metric against the first axis, one line per
    value of the second axis; the mean over seeds and further axes, failed points left out."""
    plt = _pyplot()
    first = axes[0]
    second = axes[1] if len(axes) > 1 else None
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in first.values)
    xs = list(first.values) if numeric else list(range(len(first.values)))
    written = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for line in second.values if second is not None else [None]:
            ys = []
            for x in first.values:
                picked = [
                    r[metric] for r in rows
                    if r["status"] == "ok" and r[metric] is not None and r[first.key] == x
                    and (second is None or r[second.key] == line)
                ]  # fmt: skip
                ys.append(sum(picked) / len(picked) if picked else float("nan"))
            ax.plot(xs, ys, "o-", label=None if second is None else f"{second.key} = {line}")
        if not numeric:
            ax.set_xticks(xs, [str(v) for v in first.values])
        ax.set_xlabel(first.key)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} against {first.key}")
        if second is not None:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        written.append(_save(plt, fig, out / f"sweep-{metric}.png"))
    return written
