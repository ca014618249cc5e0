"""Sweeps: one scenario run many times with some of its keys varied, on a Dask `distributed` cluster.

A sweep file (TOML, validated before anything runs: an error names the file and the key) says
which scenario to start from, which keys to vary (axes: a key path into the scenario and the
values it takes), grid or random points, which seeds, and which metrics to keep. The built-in
example, ``sriov/sweeps/default.toml``, documents the format.

Each point is one `sriov run` of the derived scenario, executed on a Dask worker by `run_point`
(scenario and seed in, measurements out: nothing else). Rows stream into ``DIR/results.jsonl``
(the record) and ``DIR/results.csv`` as points finish; resuming skips the points already
recorded, keyed by their axis values and seed. When the sweep ends both files are rewritten in
point order, so a sweep gives the same bytes serially, on a `LocalCluster` or on a cluster of
machines (the ``wall_s`` field, each line's last, aside).

``sriov.sweep`` is the `sweep` function (the public API), which hides this module as an
attribute of the package: import its other names with ``from sriov.sweep import ...``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO

from sriov.errors import ConfigError, SriovError
from sriov.scenario import Scenario, from_document, read_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

INSTALL_HINT = "sriov sweep needs Dask's distributed package: pip install 'sriov[dask]'"
MODES = ("grid", "random")
#: what a row can keep besides its axis values, seed, status, error and conserved flag (always kept)
METRICS = (
    "frames_offered",  # every frame offered: on the wires and sent by the guests
    "frames_delivered",  # frames the VMs' drivers received (a frame copied to two VFs counts twice)
    "frames_dropped",  # the sum of drops_by_reason
    "drops",  # drops by reason (port counter name -> count), the non-zero ones
    "interrupts_per_s",  # per VF ("eth0/vf0"): its queue vector's interrupts per second of traffic
    "interrupts_per_s_mean",  # the mean over the VFs
    "latency_p50_us",  # a wire frame's arrival at the device -> the guest's stack, over every VF
    "latency_p99_us",
    "latency_p999_us",
    "sim_time_ns",  # simulated time at the end of the run (bring-up included)
)
NOT_PLOTTED = ("drops", "interrupts_per_s")  # one value per reason / VF, not one number
_KEY_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


class SweepError(ConfigError):
    """A sweep file (or dict) that does not validate, or a sweep that cannot go on."""


class DaskMissing(SriovError):
    """The `distributed` package is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


@dataclass(frozen=True)
class Axis:
    """One varied key: a path into the scenario (``vm[0].nic[0].rx_usecs``) and its values."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the axis values (as written in the sweep), the seed, the scenario."""

    index: int
    values: tuple[tuple[str, Any], ...]
    seed: int
    scenario: Scenario = field(repr=False)

    @property
    def key(self) -> str:
        """The point's identity in the results: its axis values and seed."""
        return point_key(dict(self.values), self.seed)


@dataclass
class Sweep:
    """A validated sweep: the base scenario document, axes, points, what to keep."""

    name: str
    source: str
    base_source: str  # where its relative paths resolve, and the name its errors carry
    base_doc: dict[str, Any]
    axes: list[Axis]
    mode: str = "grid"
    samples: int | None = None
    sample_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    retries: int = 2
    folder: Path = field(default_factory=Path)  # relative capture paths in axis values resolve here

    @property
    def columns(self) -> list[str]:
        """The row fields, in order (``wall_s`` last)."""
        return [a.key for a in self.axes] + ["seed", "status", "error", *self.metrics, "conserved", "wall_s"]

    def fingerprint(self) -> str:
        """A digest of everything that decides the rows: resuming checks it."""
        content = [
            self.base_doc,
            [[a.key, list(a.values)] for a in self.axes],
            self.mode,
            self.samples,
            self.sample_seed,
            self.seeds,
            self.metrics,
        ]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def points(self) -> list[Point]:
        """Every point, each scenario derived and validated (grid order; random: a sorted draw)."""
        sizes = [len(a.values) for a in self.axes]
        total = 1
        for n in sizes:
            total *= n
        if self.mode == "grid":
            combos: list[int] | range = range(total)
        else:
            assert self.samples is not None
            if self.samples > total:
                raise SweepError(
                    f"{self.source}: samples: {self.samples} is not allowed "
                    f"(1..{total}: the grid has {total} points)"
                )
            combos = sorted(random.Random(self.sample_seed).sample(range(total), self.samples))
        out = []
        for combo in combos:
            values = []
            rest = combo
            for axis, n in zip(reversed(self.axes), reversed(sizes), strict=True):  # last axis fastest
                values.append((axis.key, axis.values[rest % n]))
                rest //= n
            values.reverse()
            scenario = self._derive(values)
            out += [Point(len(out) + i, tuple(values), seed, scenario) for i, seed in enumerate(self.seeds)]
        return out

    def _derive(self, values: list[tuple[str, Any]]) -> Scenario:
        from sriov.traffic.synth import profile_from_scenario

        doc = json.loads(json.dumps(self.base_doc))  # a deep copy of plain TOML data
        for key, value in values:
            set_key(doc, key, self._resolved(key, value), f"{self.source}: axes.{key}")
        where = ", ".join(f"{k} = {v!r}" for k, v in values)
        try:
            scenario = from_document(doc, self.base_source)
            for t in scenario.traffic:  # generator tables are read at run time: check them now
                if t.generator is not None:
                    profile_from_scenario(t.generator)
        except ConfigError as exc:
            raise SweepError(f"{self.source}: the point {where} is not a valid scenario: {exc}") from None
        return scenario

    def _resolved(self, key: str, value: Any) -> Any:
        """A capture path in an axis value is relative to the sweep file."""
        if key.endswith(".pcap") and isinstance(value, str) and not Path(value).is_absolute():
            return str(self.folder / value)
        return value


def point_key(values: dict[str, Any], seed: int) -> str:
    """The results key of a point: its axis values (in axis order) and seed, as JSON."""
    return json.dumps([list(values.items()), seed])


def set_key(doc: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set ``key`` (``vm[0].nic[0].rx_usecs``) in a scenario document. Every table and array
    entry on the way must exist; the last name may be new. Setting a traffic entry's ``pcap``
    drops its ``generator`` (an entry has one source of frames)."""
    parts = key.split(".")
    node: Any = doc
    for depth, part in enumerate(parts):
        m = _KEY_PART.match(part)
        if m is None:
            raise SweepError(f"{where}: {part!r} is not a key (a name, or name[N] for an array entry)")
        name, index = m.group(1), m.group(2)
        last = depth == len(parts) - 1
        if not isinstance(node, dict):
            raise SweepError(f"{where}: {'.'.join(parts[:depth])} is not a table")
        if last and index is None:
            if name == "pcap":
                node.pop("generator", None)
            node[name] = value
            return
        if name not in node:
            raise SweepError(f"{where}: the base scenario has no {'.'.join([*parts[:depth], name])}")
        if index is None:
            node = node[name]
            continue
        items = node[name]
        i = int(index)
        if not isinstance(items, list) or i >= len(items):
            have = len(items) if isinstance(items, list) else 0
            raise SweepError(f"{where}: the base scenario has no {name}[{i}] ({have} entries)")
        if last:
            items[i] = value
            return
        node = items[i]


# -- reading sweep files ---------------------------------------------------------------------------
def load(spec: str | Path | dict[str, Any]) -> Sweep:
    """A sweep from a file path or from a dict with the file's keys (paths relative to the cwd)."""
    if isinstance(spec, dict):
        return parse(spec, "<sweep dict>", Path.cwd())
    if not isinstance(spec, str | Path):
        raise SweepError(f"a sweep is a file path or a dict, got {type(spec).__name__}")
    path = Path(spec)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None
    return parse(doc, str(path), path.parent)


def default() -> Sweep:
    """The built-in example: rx-usecs x VF count on the default scenario."""
    text = resources.files("sriov").joinpath("sweeps/default.toml").read_text()
    return parse(tomllib.loads(text), "<built-in sweep>", Path.cwd())


_KEYS = ("name", "scenario", "mode", "samples", "sample_seed", "seeds", "metrics", "retries", "axes")


def parse(doc: dict[str, Any], source: str, folder: Path) -> Sweep:
    """Validate a sweep document; ``folder`` is where its relative paths resolve."""

    def fail(key: str, message: str) -> SweepError:
        return SweepError(f"{source}: {key}: {message}")

    def integer(key: str, lo: int, hi: int) -> int | None:
        v = doc.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
            raise fail(key, f"{v!r} is not allowed (an integer in {lo}..{hi})")
        return v

    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key; allowed: {', '.join(_KEYS)}")
    for key in ("scenario", "axes"):
        if key not in doc:
            raise fail(key, "is required")
    name = doc.get("name", Path(source).stem if source.endswith(".toml") else "sweep")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise fail("name", f"{name!r} is not allowed (letters, digits, '_', '-', '.')")
    base_source, base_doc = _base_scenario(doc["scenario"], folder, fail)
    axes = doc["axes"]
    if not isinstance(axes, dict) or not axes:
        raise fail("axes", 'must be a table of at least one "key.path" = [values]')
    parsed = []
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise fail(f"axes.{key}", "must be a non-empty list of values")
        try:
            distinct = {json.dumps(v, sort_keys=True) for v in values}
        except TypeError:
            raise fail(f"axes.{key}", "values are strings, numbers, booleans, arrays or tables") from None
        if len(distinct) != len(values):
            raise fail(f"axes.{key}", "lists a value twice")
        set_key(json.loads(json.dumps(base_doc)), key, values[0], f"{source}: axes.{key}")  # the path
        parsed.append(Axis(key, tuple(values)))
    mode = doc.get("mode", "grid")
    if mode not in MODES:
        raise fail("mode", f"{mode!r} is not allowed (one of {', '.join(MODES)})")
    samples = integer("samples", 1, 1 << 31)
    if (mode == "random") != (samples is not None):
        raise fail("samples", 'is required with mode = "random", and only then')
    seeds = doc.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and 1 <= seeds <= 1 << 20:
        seeds = list(range(seeds))
    elif not (
        isinstance(seeds, list)
        and seeds
        and all(_is_seed(s) for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        raise fail(
            "seeds", f"{seeds!r} is not allowed (a count of repeats >= 1, or a list of distinct seeds)"
        )
    metrics = doc.get("metrics", list(METRICS))
    if not isinstance(metrics, list) or not metrics:
        raise fail("metrics", f"must be a non-empty list (of {', '.join(METRICS)})")
    for i, m in enumerate(metrics):
        if m not in METRICS or m in metrics[:i]:
            raise fail(f"metrics[{i}]", f"{m!r} is not allowed (one of {', '.join(METRICS)}, once each)")
    return Sweep(
        name=name,
        source=source,
        base_source=base_source,
        base_doc=base_doc,
        axes=parsed,
        mode=mode,
        samples=samples,
        sample_seed=integer("sample_seed", 0, 2**63 - 1) or 0,
        seeds=seeds,
        metrics=list(metrics),
        retries=2 if "retries" not in doc else integer("retries", 0, 100),
        folder=folder,
    )


def _is_seed(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def builtin_scenarios() -> list[str]:
    """Names of the scenarios in the package (``sriov/scenarios/NAME.toml``)."""
    folder = resources.files("sriov").joinpath("scenarios")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _base_scenario(
    value: Any, folder: Path, fail: Callable[[str, str], SweepError]
) -> tuple[str, dict[str, Any]]:
    """(source, document) of the base scenario: a built-in name, or a path to a file."""
    names = builtin_scenarios()
    if not isinstance(value, str) or not value:
        raise fail("scenario", f"{value!r} is not allowed (a built-in name: {', '.join(names)}; or a path)")
    if not value.endswith(".toml"):
        if value not in names:
            raise fail(
                "scenario", f"{value!r} is not a built-in scenario ({', '.join(names)}; a path ends in .toml)"
            )
        text = resources.files("sriov").joinpath(f"scenarios/{value}.toml").read_text()
        source = f"<built-in {value}>"
    else:
        path = Path(value) if Path(value).is_absolute() else folder / value
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail("scenario", f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        source = str(path)
    doc = read_toml(text, source)
    from_document(json.loads(json.dumps(doc)), source)  # the base itself must be valid
    return source, doc


# -- one point ---------------------------------------------------------------------------------------
def run_point(scenario: Scenario, seed: int) -> dict[str, Any]:
    """One `sriov run` of ``scenario`` with its seed set to ``seed``: every metric, the
    conservation flag and the host time it took (``wall_s``). Pure: the same input gives the
    same result on any worker (``wall_s`` aside)."""
    import numpy as np

    from sriov import runner

    t0 = time.perf_counter()
    report, built, _kept = runner.run(dataclasses.replace(scenario, seed=seed), trace=True)
    wall = time.perf_counter() - t0
    span_s = max(report.sim_time_ns - built.ready_ns, 1) / 1e9
    irqs = {}
    latencies = []
    for port, vf, _vm, nic in built.nics:
        irqs[f"{port}/vf{vf}"] = nic.interrupts()[f"{nic.name}-TxRx-0"] / span_s
        if nic.napi.trace is not None:
            latencies.append(nic.napi.trace.latencies_ns())
    lat = np.concatenate(latencies) if latencies else np.zeros(0)
    pct = [float(x) / 1000 for x in np.percentile(lat, (50, 99, 99.9))] if len(lat) else [None] * 3
    drops = {k: int(v) for k, v in sorted(report.drops_by_reason.items()) if v}
    return {
        "frames_offered": int(report.frames_offered),
        "frames_delivered": sum(int(v.stats.get("rx_packets", 0)) for v in report.vfs),
        "frames_dropped": sum(drops.values()),
        "drops": drops,
        "interrupts_per_s": irqs,
        "interrupts_per_s_mean": sum(irqs.values()) / len(irqs) if irqs else None,
        "latency_p50_us": pct[0],
        "latency_p99_us": pct[1],
        "latency_p999_us": pct[2],
        "sim_time_ns": int(report.sim_time_ns),
        "conserved": bool(report.conserved),
        "wall_s": wall,
    }


def make_row(
    sweep: Sweep, point: Point, measured: dict[str, Any] | None, error: str | None
) -> dict[str, Any]:
    """A results row: axis values, seed, status, error, the kept metrics, conserved, wall_s."""
    row: dict[str, Any] = dict(point.values)
    row["seed"] = point.seed
    row["status"] = "ok" if error is None else "failed"
    row["error"] = error or ""
    for name in [*sweep.metrics, "conserved", "wall_s"]:
        row[name] = None if measured is None else measured[name]
    return row


# -- the results folder -------------------------------------------------------------------------------
class Results:
    """``DIR/results.jsonl`` (the record), ``DIR/results.csv`` and ``DIR/sweep.json`` (which sweep
    they belong to). Made, it has checked the folder and read what a resume keeps, writing
    nothing; `open` starts writing; rows are appended as points finish; `finish` rewrites both
    files in point order. A failed point's row is dropped on resume: the point runs again."""

    def __init__(self, out: Path, sweep: Sweep, points: list[Point], resume: bool) -> None:
        self.out = out
        self.columns = sweep.columns
        self.axes = [a.key for a in sweep.axes]
        self.order = {p.key: p.index for p in points}
        self.jsonl = out / "results.jsonl"
        self.csv = out / "results.csv"
        manifest = out / "sweep.json"
        identity = {
            "schema": "sriov-sweep/1",
            "name": sweep.name,
            "fingerprint": sweep.fingerprint(),
            "points": len(points),
        }
        self.rows: dict[str, dict[str, Any]] = {}
        if out.exists() and not out.is_dir():
            raise SweepError(f"--out {out}: is not a folder")
        has_rows = self.jsonl.exists() and self.jsonl.stat().st_size > 0
        if resume and manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise SweepError(f"{manifest}: cannot read: {exc}") from None
            if not isinstance(found, dict) or found.get("fingerprint") != identity["fingerprint"]:
                raise SweepError(
                    f"{out} holds the results of another sweep (or this one changed): choose another --out"
                )
            self.rows = {k: r for k, r in self._read().items() if r.get("status") == "ok"}
        elif has_rows and resume:
            raise SweepError(f"{out}: results.jsonl without sweep.json: not a folder this tool wrote")
        elif has_rows:
            raise SweepError(
                f"{out} already holds sweep results: pass --resume to continue them, or choose another --out"
            )
        self.manifest = manifest
        self.identity = identity
        self._jsonl_file: TextIO | None = None
        self._csv_file: TextIO | None = None

    def open(self) -> None:
        """Start writing: the manifest, the rows kept so far in order (no half-written or failed
        line remains), then the files open for appending."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.manifest.write_text(json.dumps(self.identity, indent=2) + "\n")
            self._rewrite()
            self._jsonl_file = self.jsonl.open("a")
            self._csv_file = self.csv.open("a", newline="")
        except OSError as exc:
            raise SweepError(f"--out {self.out}: cannot write: {exc.strerror}") from None

    def _read(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        if not self.jsonl.exists():
            return rows
        for line in self.jsonl.read_text().splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # cut short by a crash: the point runs again
            try:
                row = json.loads(line)
                key = point_key({a: row[a] for a in self.axes}, row["seed"])
            except (ValueError, KeyError, TypeError):
                raise SweepError(f"{self.jsonl}: a line is not a row of this sweep: {line[:80]!r}") from None
            if key in self.order:
                rows[key] = row
        return rows

    def done(self) -> set[str]:
        """Keys of the points already recorded."""
        return set(self.rows)

    def add(self, key: str, row: dict[str, Any]) -> None:
        """Record one finished point (appended and flushed at once)."""
        self.rows[key] = row
        assert self._jsonl_file is not None and self._csv_file is not None, "open() first"
        self._jsonl_file.write(jsonl_line(row))
        self._jsonl_file.flush()
        self._csv_file.write(self._csv_lines([row], header=False))
        self._csv_file.flush()

    def finish(self) -> None:
        """Both files rewritten in point order (the same bytes whoever ran the points)."""
        self.close()
        self._rewrite()

    def close(self) -> None:
        """Stop appending (what was written stays)."""
        for f in (self._jsonl_file, self._csv_file):
            if f is not None:
                f.close()

    def ordered(self) -> list[dict[str, Any]]:
        """The recorded rows in point order."""
        return [self.rows[k] for k in sorted(self.rows, key=self.order.__getitem__)]

    def _rewrite(self) -> None:
        rows = self.ordered()
        _replace(self.jsonl, "".join(jsonl_line(r) for r in rows))
        _replace(self.csv, self._csv_lines(rows, header=True))

    def _csv_lines(self, rows: list[dict[str, Any]], header: bool) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if header:
            w.writerow(self.columns)
        for row in rows:
            w.writerow(
                [
                    ""
                    if row[c] is None
                    else json.dumps(row[c])
                    if isinstance(row[c], dict | list)
                    else row[c]
                    for c in self.columns
                ]
            )
        return buf.getvalue()


def jsonl_line(row: dict[str, Any]) -> str:
    """One row as a JSON line, ``wall_s`` last (the only field that differs between runs)."""
    return json.dumps(row) + "\n"


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- running ------------------------------------------------------------------------------------------
Outcome = tuple[Point, dict[str, Any] | None, str | None]  # the point, its measurements or its error


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def _serial(todo: list[Point]) -> Iterator[Outcome]:
    """Every point in this process, in order (no Dask; no retries: a failure here repeats)."""
    for point in todo:
        try:
            yield point, run_point(point.scenario, point.seed), None
        except Exception as exc:  # a failed point is recorded with its error; the sweep goes on
            yield point, None, _describe(exc)


def _on_dask(client: Any, todo: list[Point], retries: int) -> Iterator[Outcome]:
    """Every point as a Dask task (retried ``retries`` times), in the order they finish."""
    from distributed import as_completed

    futures = client.map(
        run_point, [p.scenario for p in todo], [p.seed for p in todo], pure=False, retries=retries
    )
    points = {f.key: p for f, p in zip(futures, todo, strict=True)}
    try:
        for future in as_completed(futures):
            point = points[future.key]
            if future.status == "finished":
                yield point, future.result(), None
            elif future.status == "error":
                yield point, None, _describe(future.exception())
            else:
                raise SweepError(
                    f"the Dask cluster dropped the work ({future.status}): "
                    "start it again and rerun with --resume"
                )
            future.release()
    finally:
        client.cancel([f for f in futures if not f.done()])


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def execute(
    spec: str | Path | dict[str, Any] | Sweep | None = None,
    client: Any = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Run a sweep; return its rows in point order and the files written.

    Where the points run: ``client`` (a `distributed.Client`), else the cluster at ``scheduler``,
    else ``workers`` = 0 in this process without Dask, else a `LocalCluster` of ``workers``
    processes (default: the cores). ``out``: the results folder (None: nothing written);
    ``resume``: skip the points already recorded there."""
    sweep = spec if isinstance(spec, Sweep) else default() if spec is None else load(spec)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
        raise SweepError(f"--workers must be an integer >= 0 (0: in this process, no Dask), got {workers!r}")
    if client is None and (workers != 0 or scheduler is not None) and find_spec("distributed") is None:
        raise DaskMissing()  # before anything is written
    points = sweep.points()
    results = Results(Path(out), sweep, points, resume) if out is not None else None
    rows: dict[str, dict[str, Any]] = dict(results.rows) if results else {}
    todo = [p for p in points if p.key not in rows]
    with ExitStack() as stack:
        if not todo:
            outcomes: Iterator[Outcome] = iter(())
        elif client is not None:
            outcomes = _on_dask(client, todo, sweep.retries)
        elif workers == 0 and scheduler is None:
            outcomes = _serial(todo)
        else:
            own = stack.enter_context(_dask_client(scheduler, workers))
            outcomes = _on_dask(own, todo, sweep.retries)
        if results is not None:  # written only now: everything was checked, the cluster is there
            results.open()
            stack.callback(results.close)
        with _Progress(progress, sweep.name, len(points), len(points) - len(todo)) as bar:
            _consume(outcomes, sweep, rows, results, bar)
    ordered = [rows[p.key] for p in points]
    written: list[Path] = []
    if results is not None:
        results.finish()
        from sriov.plots import write_sweep_plots

        written = [results.jsonl, results.csv]
        plotted = [m for m in sweep.metrics if m not in NOT_PLOTTED]
        written += write_sweep_plots(ordered, sweep.axes, plotted, results.out)
    return ordered, written


def _consume(
    outcomes: Iterator[Outcome],
    sweep: Sweep,
    rows: dict[str, dict[str, Any]],
    results: Results | None,
    bar: _Progress,
) -> None:
    for point, measured, error in outcomes:
        row = make_row(sweep, point, measured, error)
        rows[point.key] = row
        if results is not None:
            results.add(point.key, row)
        bar.advance(failed=error is not None)


@contextmanager
def _dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A `distributed.Client` to the cluster at ``scheduler``, or of a new `LocalCluster`."""
    import distributed

    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"--scheduler {scheduler}: cannot connect: {_describe(exc)}") from None
        with client:
            yield client
        return
    import logging

    cluster = distributed.LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never a clash with a dashboard already running
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


class _Progress:
    """A rich progress bar (done/total, failures, ETA), or nothing."""

    def __init__(self, show: bool, name: str, total: int, done: int) -> None:
        self.bar = None
        self.failed = 0
        if show:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task(f"sweep {name}", total=total, completed=done, failed=0)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, failed: bool) -> None:
        self.failed += failed
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)


def sweep(spec: str | Path | dict[str, Any], client: Any = None, **options: Any) -> Any:
    """Run a sweep (a file path, or a dict with a sweep file's keys) and return its rows: a pandas
    DataFrame when pandas is installed, else a list of dicts, in point order.

    ``client``: your `distributed.Client`; without one, a `LocalCluster` of the cores runs the
    points. ``options``: ``scheduler``, ``workers``, ``out``, ``resume``, ``progress`` as `execute`
    takes them (with ``out`` the results and plots are written there, as `sriov sweep` does)."""
    rows, _written = execute(spec, client, **options)
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


def _quiet_dask() -> None:
    """The command speaks in one line per problem: Dask's own log (a lost scheduler's tracebacks
    from its reconnection attempts) stays quiet; what went wrong is said by the sweep."""
    if find_spec("distributed") is None:
        return
    import logging

    import distributed  # noqa: F401 - configures its loggers, which are then turned down

    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name == "distributed" or name.startswith("distributed.")) and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)


def main(file: str | None, scheduler: str | None, workers: int | None, out: str | None, resume: bool) -> int:
    """`sriov sweep`: run, print where the results are; 0 when every point ran and conserved its
    frames, 1 when a point failed, 3 when a run lost a frame."""
    sw = default() if file is None else load(file)
    folder = Path(out) if out is not None else Path(f"sweep-{sw.name}")
    _quiet_dask()
    try:
        rows, written = execute(
            sw, scheduler=scheduler, workers=workers, out=folder, resume=resume, progress=sys.stderr.isatty()
        )
    except KeyboardInterrupt:
        print(
            f"sriov: interrupted; the finished points are in {folder}: rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130
    failed = [r for r in rows if r["status"] != "ok"]
    lost = [r for r in rows if r["status"] == "ok" and not r["conserved"]]
    print(f"sweep {sw.name}: {len(rows)} points, {len(failed)} failed, {len(lost)} not conserving frames")
    for row in failed[:5]:
        print(f"  failed: {row['error']}")
    for path in written:
        print(f"wrote {path}")
    return 1 if failed else 3 if lost else 0


__all__ = [
    "METRICS",
    "Axis",
    "DaskMissing",
    "Point",
    "Sweep",
    "SweepError",
    "execute",
    "load",
    "run_point",
    "sweep",
]
