"""PNG plots of a scenario run: what each function received over time, drops by reason, interrupts.

Each figure has one panel per port; each panel shows that port's VFs and its PF (the host's own
pool). The time axis covers only the span in which something happened (in ms, or s for a long
run); a panel with nothing to show says so instead of drawing empty axes; a reason that dropped
nothing gets no bar. A run that received only a few frames (a small capture spread over
seconds) is drawn as cumulative counts with integer ticks, where rates would be spikes.

A sweep's plots: each metric against the first axis, one line per value of the second.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

#: the files `write_run_plots` writes, in order
PLOT_FILES = ("throughput.png", "drops.png", "interrupts.png")

# positions in a sample's per-function tuple (see `sriov.runner.ScenarioRun._sample`)
RX_PACKETS, RX_BYTES, QUEUE_IRQS, MBX_IRQS, TX_PACKETS = range(5)
SPARSE_FRAMES = 2000  # fewer frames received in all: plot counts, not rates
LONG_RUN_MS = 10_000  # past this much simulated time the axis is in seconds


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt

    return plt


class _Figure:
    """What every panel of a run shares: the samples, the function keys, the time unit."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples
        self.keys = [k for k in (samples[0] if samples else {}) if k != "t_ns"]
        end_ms = samples[-1]["t_ns"] / 1e6 if samples else 0.0
        self.per_unit_ns, self.unit = (1e9, "s") if end_ms > LONG_RUN_MS else (1e6, "ms")
        self.sparse = bool(samples) and sum(samples[-1][k][RX_PACKETS] for k in self.keys) < SPARSE_FRAMES

    def keys_of(self, port: str) -> list[str]:
        return [k for k in self.keys if k.split("/", 1)[0] == port]

    def counts(self, key: str, index: int) -> tuple[list[float], list[int]]:
        """A cumulative counter at each sample, counted from the first sample."""
        first = int(self.samples[0][key][index])
        return [row["t_ns"] / self.per_unit_ns for row in self.samples], [
            int(row[key][index]) - first for row in self.samples
        ]

    def rates(self, key: str, index: int, scale: float) -> tuple[list[float], list[float]]:
        """Per-second rates of a cumulative counter between consecutive samples (at each interval's end)."""
        times, rates = [], []
        for prev, cur in itertools.pairwise(self.samples):
            dt = (cur["t_ns"] - prev["t_ns"]) / 1e9
            if dt > 0:
                times.append(cur["t_ns"] / self.per_unit_ns)
                rates.append((cur[key][index] - prev[key][index]) / dt * scale)
        return times, rates

    def span(self, keys: list[str], fields: tuple[int, ...]) -> tuple[float, float] | None:
        """From the first sample interval in which one of these counters moved to the last (axis units)."""
        moved = [
            (prev["t_ns"], cur["t_ns"])
            for prev, cur in itertools.pairwise(self.samples)
            if any(cur[k][f] != prev[k][f] for k in keys for f in fields)
        ]
        if not moved:
            return None
        lo, hi = moved[0][0], moved[-1][1]
        pad = (hi - lo) * 0.02
        return ((lo - pad) / self.per_unit_ns, (hi + pad) / self.per_unit_ns) if hi > lo else None

    def line(self, ax: Any, key: str, index: int, scale: float, label: str, **style: Any) -> bool:
        """One function's counter as a count (sparse run) or a rate; False when it never moved."""
        if self.sparse:
            t, y = self.counts(key, index)
            if not y or not y[-1]:
                return False
            ax.step(t, y, where="post", label=label, **style)
            return True
        t, rate = self.rates(key, index, scale)
        if not any(rate):
            return False
        ax.plot(t, rate, label=label, **style)
        return True

    def finish(self, ax: Any, port: str, drawn: bool, span: Any, ylabel: str, empty: str) -> None:
        ax.set_title(f"port {port}")
        if not drawn:
            _nothing(ax, empty)
            return
        ax.set_xlabel(f"simulated time ({self.unit})")
        ax.set_ylabel(ylabel)
        if span is not None:
            ax.set_xlim(*span)
        ax.set_ylim(bottom=0)
        if self.sparse:
            _integer_ticks(ax, "y")
        ax.legend(fontsize="small", ncol=2)
        ax.grid(alpha=0.3)


def write_run_plots(report: Any, built: Any, out: Path) -> list[Path]:
    """Write throughput.png, drops.png and interrupts.png for a finished run into ``out``."""
    from sriov.runner import DROP_COUNTERS

    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    ports = list(built.ports)
    title = getattr(report, "title", "") or report.scenario
    f = _Figure(built.samples)
    written = []

    fig, axes = _panels(plt, len(ports))
    for ax, port in zip(axes, ports, strict=True):
        keys = f.keys_of(port)
        index, scale = (RX_PACKETS, 1.0) if f.sparse else (RX_BYTES, 8e-6)
        drawn = [f.line(ax, key, index, scale, _label(key), **_style(key)) for key in keys]
        ylabel = "frames received (cumulative)" if f.sparse else "received (Mbit/s)"
        f.finish(ax, port, any(drawn), f.span(keys, (RX_PACKETS,)), ylabel, "no traffic received")
    fig.suptitle(f"{title}: {'frames received' if f.sparse else 'receive throughput'} per function")
    written.append(_save(plt, fig, out / PLOT_FILES[0]))

    fig, axes = _panels(plt, len(ports))
    for ax, port in zip(axes, ports, strict=True):
        counters = report.ports.get(port, {})
        reasons = sorted(
            ((n, int(counters[n])) for n in DROP_COUNTERS if counters.get(n)), key=lambda kv: kv[1]
        )
        ax.set_title(f"port {port}")
        if not reasons:
            _nothing(ax, "no frame dropped")
            continue
        colors = ["tab:orange" if name.startswith("tx_") else "tab:red" for name, _ in reasons]
        ax.barh([name for name, _ in reasons], [v for _, v in reasons], color=colors)
        for i, (_, v) in enumerate(reasons):
            ax.annotate(f" {v:,}", (v, i), va="center", fontsize="small")
        ax.set_xlabel("frames (or pool copies) dropped: receive red, transmit orange")
        ax.margins(x=0.15)
        _integer_ticks(ax, "x")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{title}: drops by reason")
    written.append(_save(plt, fig, out / PLOT_FILES[1]))

    fig, axes = _panels(plt, len(ports))
    for ax, port in zip(axes, ports, strict=True):
        keys = [k for k in f.keys_of(port) if not k.endswith("/pf")]
        drawn = [
            f.line(ax, key, index, 1e-3, f"{_label(key)} {what}", linestyle=style)
            for key in keys
            for index, what, style in ((QUEUE_IRQS, "TxRx", "-"), (MBX_IRQS, "mailbox", ":"))
        ]
        ylabel = "interrupts (cumulative)" if f.sparse else "interrupts (thousand per second)"
        f.finish(ax, port, any(drawn), f.span(keys, (QUEUE_IRQS, MBX_IRQS)), ylabel, "no VF interrupts")
    fig.suptitle(
        f"{title}: interrupts per VF vector\n"
        "(ixgbevf's TxRx vector serves receive and transmit alike; the PF's vectors are not counted)",
        fontsize="medium",
    )
    written.append(_save(plt, fig, out / PLOT_FILES[2]))
    return written


def _panels(plt: Any, n: int) -> tuple[Any, list[Any]]:
    """A figure with one panel per port, stacked."""
    fig, axes = plt.subplots(max(n, 1), 1, figsize=(8, 1.0 + 3.5 * max(n, 1)), squeeze=False)
    return fig, [row[0] for row in axes]


def _label(key: str) -> str:
    who = key.split("/", 1)[1]
    return "PF (host)" if who == "pf" else who.upper()


def _style(key: str) -> dict[str, Any]:
    return {"linestyle": "--", "color": "black"} if key.endswith("/pf") else {}


def _nothing(ax: Any, text: str) -> None:
    """A panel with nothing to plot: the sentence, no axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize="large", color="gray", transform=ax.transAxes)
    ax.set_axis_off()


def _integer_ticks(ax: Any, axis: str) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{int(v):,}"))


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
