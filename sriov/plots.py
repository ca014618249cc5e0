"""PNG plots of a scenario run: receive throughput over time, drops by reason, interrupt rate.

Each figure has one panel per port; each panel shows that port's VFs and its PF (the host's own
pool). The time axis covers only the span in which something happened; a panel with nothing to
show says so instead of drawing empty axes; counts get integer ticks; a reason that dropped
nothing gets no bar.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

#: the files `write_run_plots` writes, in order
PLOT_FILES = ("throughput.png", "drops.png", "interrupts.png")

# positions in a sample's per-function tuple (see `sriov.runner.ScenarioRun._sample`)
RX_PACKETS, RX_BYTES, QUEUE_IRQS, MBX_IRQS, TX_PACKETS = range(5)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt

    return plt


def write_run_plots(report: Any, built: Any, out: Path) -> list[Path]:
    """Write throughput.png, drops.png and interrupts.png for a finished run into ``out``."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    ports = list(built.ports)
    samples = built.samples
    title = getattr(report, "title", "") or report.scenario
    keys = [k for k in (samples[0] if samples else {}) if k != "t_ns"]
    written = []

    fig, axes = _panels(plt, len(ports))
    for ax, port in zip(axes, ports, strict=True):
        drawn = False
        for key in _keys_of(keys, port):
            t, mbps = _rates(samples, key, RX_BYTES, scale=8e-6)
            if any(mbps):
                ax.plot(t, mbps, label=_label(key), **_style(key))
                drawn = True
        span = _active_span(samples, _keys_of(keys, port), (RX_BYTES,))
        _finish(ax, port, drawn, span, "received (Mbit/s)", "no traffic received")
    fig.suptitle(f"{title}: receive throughput per function")
    written.append(_save(plt, fig, out / PLOT_FILES[0]))

    fig, axes = _panels(plt, len(ports))
    from sriov.runner import DROP_COUNTERS

    for ax, port in zip(axes, ports, strict=True):
        counters = report.ports.get(port, {})
        reasons = [(name, int(counters.get(name, 0))) for name in DROP_COUNTERS if counters.get(name)]
        reasons.sort(key=lambda kv: kv[1])
        if reasons:
            colors = ["tab:orange" if name.startswith("tx_") else "tab:red" for name, _ in reasons]
            ax.barh([name for name, _ in reasons], [v for _, v in reasons], color=colors)
            for i, (_, v) in enumerate(reasons):
                ax.annotate(f" {v:,}", (v, i), va="center", fontsize="small")
            ax.set_xlabel("frames (or pool copies) dropped: receive red, transmit orange")
            ax.margins(x=0.15)
            _integer_ticks(ax, "x")
            ax.grid(alpha=0.3, axis="x")
        else:
            _nothing(ax, "no frame dropped")
        ax.set_title(f"port {port}")
    fig.suptitle(f"{title}: drops by reason")
    written.append(_save(plt, fig, out / PLOT_FILES[1]))

    fig, axes = _panels(plt, len(ports))
    for ax, port in zip(axes, ports, strict=True):
        drawn = False
        for key in _keys_of(keys, port):
            for index, what, style in ((QUEUE_IRQS, "TxRx", "-"), (MBX_IRQS, "mailbox", ":")):
                t, rate = _rates(samples, key, index, scale=1e-3)
                if any(rate):
                    ax.plot(t, rate, style, label=f"{_label(key)} {what}")
                    drawn = True
        span = _active_span(samples, _keys_of(keys, port), (QUEUE_IRQS, MBX_IRQS))
        _finish(ax, port, drawn, span, "interrupts (thousand per second)", "no interrupts")
    fig.suptitle(
        f"{title}: interrupt rate per VF vector\n"
        "(ixgbevf's TxRx vector serves receive and transmit alike; the PF's vectors are not counted)",
        fontsize="medium",
    )
    written.append(_save(plt, fig, out / PLOT_FILES[2]))
    return written


def _panels(plt: Any, n: int) -> tuple[Any, list[Any]]:
    """A figure with one panel per port, stacked, sharing the time axis."""
    fig, axes = plt.subplots(max(n, 1), 1, figsize=(8, 1.0 + 3.5 * max(n, 1)), squeeze=False)
    return fig, [row[0] for row in axes]


def _keys_of(keys: list[str], port: str) -> list[str]:
    return [k for k in keys if k.split("/", 1)[0] == port]


def _label(key: str) -> str:
    who = key.split("/", 1)[1]
    return "PF (host)" if who == "pf" else who.upper()


def _style(key: str) -> dict[str, Any]:
    return {"linestyle": "--", "color": "black"} if key.endswith("/pf") else {}


def _finish(
    ax: Any, port: str, drawn: bool, span: tuple[float, float] | None, ylabel: str, empty: str
) -> None:
    ax.set_title(f"port {port}")
    if not drawn:
        _nothing(ax, empty)
        return
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel(ylabel)
    if span is not None:
        ax.set_xlim(*span)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", ncol=2)
    ax.grid(alpha=0.3)


def _nothing(ax: Any, text: str) -> None:
    """A panel with nothing to plot: the sentence, no axes."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize="large", color="gray", transform=ax.transAxes)
    ax.set_axis_off()


def _integer_ticks(ax: Any, axis: str) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{int(v):,}"))


def _active_span(
    samples: list[dict[str, Any]], keys: list[str], fields: tuple[int, ...]
) -> tuple[float, float] | None:
    """The time (ms) from the first sample interval in which one of these counters moved to the last."""
    moved = [
        (prev["t_ns"] / 1e6, cur["t_ns"] / 1e6)
        for prev, cur in itertools.pairwise(samples)
        if any(cur[k][f] != prev[k][f] for k in keys for f in fields)
    ]
    if not moved:
        return None
    lo, hi = moved[0][0], moved[-1][1]
    return (lo, hi) if hi > lo else None


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rates(
    samples: list[dict[str, Any]], key: str, index: int, scale: float
) -> tuple[list[float], list[float]]:
    """Per-second rates of a cumulative counter between consecutive samples, plotted at each
    interval's end."""
    times, rates = [], []
    for prev, cur in itertools.pairwise(samples):
        dt = (cur["t_ns"] - prev["t_ns"]) / 1e9
        if dt <= 0:
            continue
        times.append(cur["t_ns"] / 1e6)
        rates.append((cur[key][index] - prev[key][index]) / dt * scale)
    return times, rates
