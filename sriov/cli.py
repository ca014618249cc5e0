"""The `sriov` command: run a scenario, run the benchmark scenarios, set VF options like `ip link`.

sriov run [SCENARIO.toml] [--pcap IN] [--out DIR] [--json]
sriov vf PORT N [mac M] [vlan V [qos Q]] [spoofchk on|off] [trust on|off] [state auto|enable|disable]
         [--scenario SCENARIO.toml] [--json]
sriov bench [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sriov.errors import SriovError
from sriov.scenario import Scenario, default, load

_VF_TABLE_COLUMNS = ("rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes", "tx_spoofed")


def _load(path: str | None) -> Scenario:
    return load(path) if path else default()


def _cmd_run(args: argparse.Namespace) -> int:
    from sriov import runner

    sc = _load(args.scenario)
    keep = args.out is not None
    if args.json:
        report, built, kept = runner.run(sc, pcap=args.pcap, keep_frames=keep)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"scenario {sc.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report, built, kept = runner.run(sc, pcap=args.pcap, keep_frames=keep, progress=progress)
    written: list[Path] = []
    if args.out is not None:
        out = Path(args.out)
        written = runner.write_outputs(report, kept, out, built)
        from sriov.plots import write_run_plots

        written += write_run_plots(report, built, out)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report, written)
    return 0 if report.conserved else 3


def _print_report(report: Any, written: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    t = report.timings
    frames = report.frames_offered
    rate = frames / t["datapath_s"] / 1e6 if t["datapath_s"] > 0 else float("nan")
    console.print(
        f"[bold]scenario {report.scenario}[/bold]: {frames:,} frames offered, "
        f"{report.sim_time_ns / 1e6:.3f} ms simulated, datapath {t['datapath_s']:.2f} s host time "
        f"({rate:.2f} Mpps including the guests' polling)"
    )
    table = Table(title="per-VF counters (ethtool -S names)")
    for col in ("port", "vf", "vm", "mac", *_VF_TABLE_COLUMNS):
        table.add_column(col, justify="right" if col not in ("port", "vm", "mac") else "left")
    for v in report.vfs:
        table.add_row(v.port, str(v.vf), v.vm, v.mac, *(f"{v.stats.get(c, 0):,}" for c in _VF_TABLE_COLUMNS))
    console.print(table)
    for name, stats in report.ports.items():
        ptable = Table(title=f"port {name}")
        ptable.add_column("counter")
        ptable.add_column("value", justify="right")
        for key, value in stats.items():
            if value:
                ptable.add_row(key, f"{value:,}")
        console.print(ptable)
    verdict = "[green]yes[/green]" if report.conserved else "[red]NO[/red]"
    console.print(f"frames conserved (delivered + dropped by named reason = offered): {verdict}")
    for path in written:
        console.print(f"wrote {path}")


_ON_OFF = {"on": True, "off": False}


def parse_vf_words(words: Sequence[str]) -> dict[str, Any]:
    """`ip link set dev PF vf N ...` words after N, as `set_vf` keyword arguments."""
    out: dict[str, Any] = {}
    allowed = "mac, vlan, qos, spoofchk, trust, state"
    i = 0
    while i < len(words):
        key = words[i]
        if i + 1 >= len(words):
            raise SriovError(f"vf option {key!r} needs a value")
        value = words[i + 1]
        if key == "mac":
            out["mac"] = value
        elif key in ("vlan", "qos"):
            try:
                out[key] = int(value, 0)
            except ValueError:
                raise SriovError(f"{key} must be an integer, got {value!r}") from None
        elif key in ("spoofchk", "trust"):
            if value not in _ON_OFF:
                raise SriovError(f"{key} must be on or off, got {value!r}")
            out[key] = _ON_OFF[value]
        elif key == "state":
            out["state"] = value
        else:
            raise SriovError(f"unknown vf option {key!r} (allowed: {allowed})")
        i += 2
    return out


def _cmd_vf(args: argparse.Namespace) -> int:
    from sriov.runner import ScenarioRun

    sc = _load(args.scenario)
    settings = parse_vf_words(args.words)
    built = ScenarioRun(sc)
    if args.port not in built.ports:
        raise SriovError(f"no port {args.port!r} in scenario {sc.name} (ports: {', '.join(built.ports)})")
    port = built.ports[args.port]
    port.pf.set_vf(args.vf, **settings)
    built.host.clock.advance(12_000_000_000)  # past ixgbevf's 10 s reset hold-off: the VF re-initialises
    info = port.pf.vf_config(args.vf)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key:>12}: {value}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from sriov.bench import run_standard

    results = run_standard(quick=args.quick)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="sriov bench (this machine, one run each)")
        for col in ("scenario", "frames", "Mpps", "Gbit/s", "x 10GbE", "x 40GbE", "x 100GbE"):
            table.add_column(col, justify="right" if col != "scenario" else "left")
        for r in results["scenarios"]:
            table.add_row(
                r["name"], f"{r['frames']:,}", f"{r['mpps']:.1f}", f"{r['gbps']:.1f}",
                f"{r['x_line_rate']['10G']:.2f}", f"{r['x_line_rate']['40G']:.2f}",
                f"{r['x_line_rate']['100G']:.2f}",
            )  # fmt: skip
        Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sriov.sweep import main as sweep_main

    return sweep_main(args.sweep, args.scheduler, args.workers, args.out, args.resume)


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    p = argparse.ArgumentParser(prog="sriov", description="A software model of an SR-IOV NIC (82599).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a scenario (no file: the built-in default)")
    r.add_argument("scenario", nargs="?", help="scenario TOML file")
    r.add_argument("--pcap", help="offer this capture to the first port instead of the scenario's traffic")
    r.add_argument("--out", help="directory for per-VF pcaps, stats.json and PNG plots")
    r.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    r.set_defaults(func=_cmd_run)
    v = sub.add_parser("vf", help="set VF options as `ip link set dev PORT vf N ...` does, then show it")
    v.add_argument("port")
    v.add_argument("vf", type=int)
    v.add_argument(
        "words", nargs="*", help="mac M | vlan V | qos Q | spoofchk on|off | trust on|off | state S"
    )
    v.add_argument("--scenario", help="scenario TOML file (default: the built-in one)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_cmd_vf)
    b = sub.add_parser("bench", help="run the standard benchmark scenarios")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quick", action="store_true", help="smaller runs")
    b.set_defaults(func=_cmd_bench)
    w = sub.add_parser("sweep", help="run a scenario many times, keys varied, on Dask (no file: the example)")
    w.add_argument("sweep", nargs="?", help="sweep TOML file (default: the built-in rx-usecs x VF count)")
    w.add_argument("--scheduler", help="submit to the Dask cluster at this address (tcp://HOST:8786)")
    w.add_argument("--workers", type=int, help="local worker processes (default: the cores; 0: no Dask)")
    w.add_argument("--out", help="results folder (default: sweep-NAME)")
    w.add_argument("--resume", action="store_true", help="skip the points already in --out's results")
    w.set_defaults(func=_cmd_sweep)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sriov` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SriovError as exc:
        print(f"sriov: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
