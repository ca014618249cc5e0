"""The `sriov` command: run a scenario, show and set VFs like iproute2, run the benchmarks.

sriov run [SCENARIO.toml] [--pcap IN] [--out DIR [--force]] [--json] [--strict] [--lenient]
sriov show [PORT] [-s] [--json] [--scenario SCENARIO.toml]
sriov vf PORT N [mac M] [vlan V [qos Q] [proto 802.1Q]] [spoofchk on|off] [trust on|off]
         [state auto|enable|disable] [query_rss on|off] [--scenario F] [--save F] [--json]
sriov bench [--json] [--quick]
sriov --version;  -v / -q before or after the command: more or less on stderr

Errors are one line on stderr (``sriov: error: ...``) and exit status 2; Ctrl-C is exit 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sriov.errors import SriovError
from sriov.scenario import Scenario, default, load

_VF_TABLE_COLUMNS = ("rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes", "tx_spoofed")
EXIT_ERROR = 2  # bad input, or --strict with warnings
EXIT_NOT_CONSERVED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

logger = logging.getLogger("sriov")


def _load(path: str | None) -> Scenario:
    return load(path) if path else default()


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


# -- sriov run ------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from sriov import runner

    sc = _load(args.scenario)
    if args.pcap is not None and not sc.ports:
        raise SriovError("--pcap needs a scenario with at least one port")
    out = Path(args.out) if args.out is not None else None
    if out is not None:
        runner.prepare_out(out, force=args.force)  # before anything is simulated
    options = {
        "pcap": args.pcap,
        "keep_frames": out is not None,
        "strict": args.strict,
        "lenient": args.lenient,
    }
    if args.json or not sys.stderr.isatty():
        report, built, kept = runner.run(sc, **options)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{Path(args.pcap).name if args.pcap else 'scenario ' + sc.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report, built, kept = runner.run(sc, progress=progress, **options)
    written: list[Path] = []
    if out is not None:
        estimate = runner.capture_bytes_estimate(report.frames_offered, sum(
            int(v.stats.get("rx_bytes", 0)) for v in report.vfs))  # fmt: skip
        if estimate > runner.LARGE_CAPTURES_BYTES:
            logger.warning("--out %s: the captures take about %.1f GB", out, estimate / 1e9)
        written = runner.write_outputs(report, kept, out, built)
        from sriov.plots import write_run_plots

        written += write_run_plots(report, built, out)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report, written)
    return 0 if report.conserved else EXIT_NOT_CONSERVED


def _print_report(report: Any, written: list[Path]) -> None:
    from rich.table import Table

    console = _console()
    t = report.timings
    frames = report.frames_offered
    rate = frames / t["datapath_s"] / 1e6 if t["datapath_s"] > 0 else float("nan")
    what = report.title if report.title == report.scenario else f"{report.title} (scenario {report.scenario})"
    console.print(
        f"[bold]{what}[/bold]: {frames:,} frames offered, "
        f"{report.sim_time_ns / 1e6:.3f} ms simulated, datapath {t['datapath_s']:.2f} s host time "
        f"({rate:.2f} Mpps including the guests' polling)"
    )
    table = Table(title="per-function counters (ethtool -S names; pf: the host's own pool)")
    for col in ("port", "vf", "vm", "mac", *_VF_TABLE_COLUMNS):
        table.add_column(col, justify="right" if col not in ("port", "vm", "mac") else "left")
    for v in report.vfs:
        table.add_row(v.port, str(v.vf), v.vm, v.mac, *(f"{v.stats.get(c, 0):,}" for c in _VF_TABLE_COLUMNS))
    for pf in report.pf.values():
        table.add_row(
            pf.port, "pf", "(host)", pf.mac, *(f"{pf.stats.get(c, 0):,}" for c in _VF_TABLE_COLUMNS)
        )
    console.print(table)
    for name, stats in report.ports.items():
        ptable = Table(title=f"port {name}")
        ptable.add_column("counter")
        ptable.add_column("value", justify="right")
        for key, value in stats.items():
            if value:
                ptable.add_row(key, f"{value:,}")
        console.print(ptable)
    if report.drops_by_reason:
        reasons = ", ".join(
            f"{k} {v:,}" for k, v in sorted(report.drops_by_reason.items(), key=lambda kv: -kv[1])
        )
        console.print(f"drops by reason: {reasons}")
    verdict = "[green]yes[/green]" if report.conserved else "[red]NO[/red]"
    console.print(f"frames conserved (delivered + dropped by named reason = offered): {verdict}")
    if report.warnings:
        console.print(
            f"[yellow]{len(report.warnings)} warning(s)[/yellow]: see stderr (and 'warnings' in --json)"
        )
    for path in written:
        console.print(f"wrote {path}")


# -- sriov vf -------------------------------------------------------------------------------------
_ON_OFF = {"on": True, "off": False}
VF_WORDS = "mac, vlan, qos, proto, spoofchk, trust, state, query_rss"


def parse_vf_words(words: Sequence[str]) -> dict[str, Any]:
    """`ip link set dev PF vf N ...` words after N, as `set_vf` keyword arguments."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        key = words[i]
        if i + 1 >= len(words):
            raise SriovError(f"vf option {key!r} needs a value")
        value = words[i + 1]
        if key == "mac":
            _check_unicast(value)
            out["mac"] = value
        elif key in ("vlan", "qos"):
            try:
                out[key] = int(value, 0)
            except ValueError:
                raise SriovError(f"{key} must be an integer, got {value!r}") from None
        elif key == "proto":
            if value.lower() not in ("802.1q", "0x8100"):
                raise SriovError(
                    f"proto {value!r} is not supported: ixgbe takes only 802.1Q port VLANs "
                    "(802.1ad: EPROTONOSUPPORT)"
                )
        elif key in ("spoofchk", "trust", "query_rss"):
            if value not in _ON_OFF:
                raise SriovError(f"{key} must be on or off, got {value!r}")
            out[key] = _ON_OFF[value]
        elif key == "state":
            out["state"] = value
        else:
            raise SriovError(f"unknown vf option {key!r} (allowed: {VF_WORDS})")
        i += 2
    return out


def _check_unicast(mac: str) -> None:
    from sriov.drivers.mailbox import parse_mac

    try:
        first = parse_mac(mac)[0]
    except SriovError as exc:
        raise SriovError(f"mac: {exc}") from None
    if first & 1:
        raise SriovError(f"mac: {mac} is multicast; allowed: a unicast MAC (first byte even)")


def _split_vf_args(words: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Options may come anywhere among the words (``--json`` at the end, as iproute2 users type)."""
    rest: list[str] = []
    opts: dict[str, Any] = {"json": False, "scenario": None, "save": None}
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--json":
            opts["json"] = True
        elif w in ("-v", "--verbose"):
            opts["verbose"] = opts.get("verbose", 0) + 1
        elif w in ("-q", "--quiet"):
            opts["quiet"] = True
        elif w in ("--scenario", "--save") or w.startswith(("--scenario=", "--save=")):
            name, _, value = w.partition("=")
            if not value:
                if i + 1 >= len(words):
                    raise SriovError(f"{name} needs a file name")
                i += 1
                value = words[i]
            opts[name[2:]] = value
        elif w.startswith("-") and not w.lstrip("-").isdigit():
            raise SriovError(f"unknown option {w!r} (allowed: --json, --scenario FILE, --save FILE, -v, -q)")
        else:
            rest.append(w)
        i += 1
    return rest, opts


def _cmd_vf(args: argparse.Namespace) -> int:
    from sriov.runner import ScenarioRun

    words, opts = _split_vf_args(list(args.words))
    args.json = args.json or opts["json"]
    scenario = opts["scenario"] or args.scenario
    save = opts["save"] or args.save
    _configure_logging(args.verbose + opts.get("verbose", 0), args.quiet or opts.get("quiet", False))
    sc = _load(scenario)
    settings = parse_vf_words(words)
    port_spec = next((p for p in sc.ports if p.name == args.port), None)
    if port_spec is None:
        raise SriovError(f"{sc.source}: no port {args.port!r} (ports: {', '.join(p.name for p in sc.ports)})")
    if not 0 <= args.vf < port_spec.num_vfs:
        raise SriovError(
            f"{sc.source}: port {args.port} has no VF {args.vf} (allowed: 0..{port_spec.num_vfs - 1})"
        )
    built = ScenarioRun(sc)
    port = built.ports[args.port]
    port.pf.set_vf(args.vf, **settings)
    built.host.clock.advance(12_000_000_000)  # past ixgbevf's 10 s reset hold-off: the VF re-initialises
    info = port.pf.vf_config(args.vf)
    if save is not None:
        _save_vf(sc, args.port, args.vf, settings, save)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(_ip_vf_line(info))
        print(f"    mailbox api {info['api']}, xcast {info['xcast_mode']}, "
              f"clear to send {_on_off(info['clear_to_send'])}")  # fmt: skip
        if save is not None:
            print(f"saved to {save}")
    return 0


def _save_vf(sc: Scenario, port_name: str, vf: int, settings: dict[str, Any], path: str) -> None:
    """Write the scenario with VF ``vf``'s ``[[port.vf]]`` entry changed (query_rss is not a
    scenario key: it is applied, not saved)."""
    from sriov.scenario import VfAdmin, parse, save

    port = next(p for p in sc.ports if p.name == port_name)
    entry = next((a for a in port.vfs if a.index == vf), None)
    if entry is None:
        entry = VfAdmin(vf)
        port.vfs.append(entry)
    for key, value in settings.items():
        if hasattr(entry, key):
            setattr(entry, key, value.lower() if key == "mac" else value)
    from sriov.scenario import dumps

    parse(dumps(sc, path), str(path))  # what is written must load
    save(sc, path)


def _on_off(value: object) -> str:
    return "on" if value else "off"


def _ip_vf_line(info: dict[str, Any], max_tx_rate: int = 0) -> str:
    """A VF as `ip link show` prints it."""
    parts = [f"vf {info['vf']}     link/ether {info['mac']} brd ff:ff:ff:ff:ff:ff"]
    if info["vlan"] or info["qos"]:
        parts.append(f"vlan {info['vlan']}" + (f", qos {info['qos']}" if info["qos"] else ""))
    parts += [
        f"spoof checking {_on_off(info['spoofchk'])}",
        f"link-state {info['state']}",
        f"trust {_on_off(info['trust'])}",
        f"query_rss {_on_off(info['query_rss'])}",
        f"max_tx_rate {max_tx_rate}Mbps",
    ]
    return "    " + ", ".join(parts)


# -- sriov show -----------------------------------------------------------------------------------
def _cmd_show(args: argparse.Namespace) -> int:
    from sriov import runner
    from sriov.drivers.mailbox import format_mac

    sc = _load(args.scenario)
    names = [p.name for p in sc.ports]
    if args.port is not None and args.port not in names:
        raise SriovError(f"{sc.source}: no port {args.port!r} (ports: {', '.join(names)})")
    if args.stats:  # counters mean something only once the scenario's traffic ran
        _report, built, _kept = runner.run(sc)
    else:
        built = runner.ScenarioRun(sc)
    doc = []
    for index, (name, port) in enumerate(built.ports.items(), start=1):
        if args.port is not None and name != args.port:
            continue
        pf = port.pf
        entry: dict[str, Any] = {
            "ifindex": index, "name": name, "mac": format_mac(pf.mac), "up": pf.is_up,
            "mtu": pf.mtu, "num_vfs": pf.num_vfs, "vfs": [],
        }  # fmt: skip
        if args.stats:
            entry["stats"] = _ip_stats(runner.pool_stats(port.device, pf.pf_pool))
        for vf in range(pf.num_vfs):
            info = dict(pf.vf_config(vf))
            info["max_tx_rate"] = 0  # no transmit rate limiter is modelled: 0 is "no limit"
            if args.stats:
                info["stats"] = _ip_stats(runner.pool_stats(port.device, vf))
            entry["vfs"].append(info)
        doc.append(entry)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    for entry in doc:
        flags = "BROADCAST,MULTICAST,UP,LOWER_UP" if entry["up"] else "BROADCAST,MULTICAST"
        print(f"{entry['ifindex']}: {entry['name']}: <{flags}> mtu {entry['mtu']} state "
              f"{'UP' if entry['up'] else 'DOWN'}")  # fmt: skip
        print(f"    link/ether {entry['mac']} brd ff:ff:ff:ff:ff:ff")
        if args.stats:
            _print_ip_stats(entry["stats"], "    ")
        for info in entry["vfs"]:
            print(_ip_vf_line(info, info["max_tx_rate"]))
            if args.stats:
                _print_ip_stats(info["stats"], "    ")
    return 0


def _ip_stats(pool: dict[str, int]) -> dict[str, dict[str, int]]:
    return {
        "rx": {"bytes": pool["rx_bytes"], "packets": pool["rx_packets"], "mcast": pool["rx_multicast"],
               "dropped": pool["rx_dropped"] + pool["rx_dma_faults"] + pool["rx_queue_disabled"]},
        "tx": {"bytes": pool["tx_bytes"], "packets": pool["tx_packets"], "dropped": pool["tx_dropped"]},
    }  # fmt: skip


def _print_ip_stats(stats: dict[str, dict[str, int]], indent: str) -> None:
    for direction in ("rx", "tx"):
        row = stats[direction]
        print(f"{indent}{direction.upper()}: " + "".join(f"{k:<12}" for k in row))
        print(f"{indent}    " + "".join(f"{v:<12}" for v in row.values()))


# -- sriov bench ----------------------------------------------------------------------------------
BENCH_NOTE = (
    "bench times the receive kernel and the drivers' ring work on traffic offered as fast as the host "
    "takes it, no simulated time; `sriov run` follows the simulation clock (arrival times, interrupts, "
    "NAPI, the guests' polling, counters), so its Mpps is far lower: different questions, both right."
)


def _cmd_bench(args: argparse.Namespace) -> int:
    from sriov.bench import STANDARD, run_standard

    if args.json or not sys.stderr.isatty():
        results = run_standard(quick=args.quick)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("sriov bench", total=len(STANDARD))

            started = [0]

            def progress(name: str) -> None:
                bar.update(task, completed=started[0], description=f"bench: {name}")
                started[0] += 1

            results = run_standard(quick=args.quick, progress=progress)
    if args.json:
        results["note"] = BENCH_NOTE
        print(json.dumps(results, indent=2))
        return 0
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
    console = _console()
    console.print(table)
    console.print(BENCH_NOTE)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sriov.sweep import main as sweep_main

    return sweep_main(args.sweep, args.scheduler, args.workers, args.out, args.resume)


# -- grammar, logging, main -----------------------------------------------------------------------
def _version() -> str:
    from sriov import __version__, kernels

    return f"sriov {__version__} ({kernels.IMPLEMENTATION})"


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    p = argparse.ArgumentParser(
        prog="sriov", description="A software model of an SR-IOV NIC (82599).", parents=[_common(0, False)]
    )
    # after the command too; SUPPRESS keeps a subcommand from resetting what came before it
    common = _common(argparse.SUPPRESS, argparse.SUPPRESS)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", parents=[common], help="run a scenario (no file: the built-in default)")
    r.add_argument("scenario", nargs="?", help="scenario TOML file")
    r.add_argument("--pcap", help="offer this capture to the first port instead of the scenario's traffic")
    r.add_argument("--out", help="a new or empty directory for per-VF pcaps, stats.json and PNG plots")
    r.add_argument("--force", action="store_true",
                   help="--out may hold an earlier run's files: they are deleted first")  # fmt: skip
    r.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    r.add_argument("--strict", action="store_true",
                   help="exit 2 before any traffic if the model downgrades or refuses a request")  # fmt: skip
    r.add_argument("--lenient", action="store_true",
                   help="read damaged captures as tshark does (records over snaplen, frames before damage)",
                   )  # fmt: skip
    r.set_defaults(func=_cmd_run)
    s = sub.add_parser(
        "show", parents=[common], help="the ports and their VFs, as `ip link show` prints them"
    )
    s.add_argument("port", nargs="?", help="only this port")
    s.add_argument("-s", "--stats", action="store_true",
                   help="per-VF statistics, as `ip -s link` (the scenario's traffic runs first)")  # fmt: skip
    s.add_argument("--json", action="store_true")
    s.add_argument("--scenario", help="scenario TOML file (default: the built-in one)")
    s.set_defaults(func=_cmd_show)
    v = sub.add_parser(
        "vf", parents=[common], help="set VF options as `ip link set dev PORT vf N ...`, then show it"
    )
    v.add_argument("port")
    v.add_argument("vf", type=int)
    v.add_argument("words", nargs=argparse.REMAINDER,
                   help="mac M | vlan V [qos Q] [proto 802.1Q] | spoofchk on|off | trust on|off | state S | "
                        "query_rss on|off; --json, --scenario F and --save F may come anywhere")  # fmt: skip
    v.add_argument("--scenario", help="scenario TOML file (default: the built-in one)")
    v.add_argument("--save", help="write the scenario with this change into this file")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_cmd_vf)
    b = sub.add_parser("bench", parents=[common], help="run the standard benchmark scenarios")
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


def _common(verbose_default: Any, quiet_default: Any) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=verbose_default,
                        help="more on stderr: -v the drivers' log lines, -vv debugging")  # fmt: skip
    common.add_argument("-q", "--quiet", action="store_true", default=quiet_default,
                        help="errors only on stderr (no warnings)")  # fmt: skip
    return common


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after set-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"sriov: {level}{record.getMessage()}"


def _configure_logging(verbose: int, quiet: bool) -> None:
    """stderr gets warnings (not with -q); -v adds the drivers' log lines, -vv debugging."""
    root = logging.getLogger("sriov")
    for handler in list(root.handlers):
        if getattr(handler, "_sriov_cli", False):
            root.removeHandler(handler)
    handler = _Stderr()
    handler._sriov_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_OneLine())
    root.addHandler(handler)
    level = (
        logging.ERROR
        if quiet
        else logging.DEBUG
        if verbose > 1
        else logging.INFO
        if verbose
        else logging.WARNING
    )
    root.setLevel(level)
    # the drivers' kernel-log lines (warnings included) are what -v adds: the run reports refusals itself
    logging.getLogger("sriov.drivers").setLevel(level if verbose else logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sriov` console script: an exit status, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except SriovError as exc:
        for warning in getattr(exc, "warnings", ()):
            if args.quiet:  # --strict names what it refused even with -q
                print(f"sriov: warning: {warning}", file=sys.stderr)
        print(f"sriov: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sriov: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `sriov run --json | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sriov: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
