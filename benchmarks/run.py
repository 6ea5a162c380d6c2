"""Run every benchmark of benchmarks/ in one go and write one report: benchmarks/results/README.md.

    python -m benchmarks [--quick] [--only NAME ...] [--skip NAME ...] [--list]
    python benchmarks/run.py ...              (the same)

Where results go: a full run writes into benchmarks/results/ (each module's ``<name>.md`` and
``.json``, and the report ``README.md``) and refreshes the headline figures between the
``benchmarks`` markers of the project README. A ``--quick`` run is a smoke check: it writes into
benchmarks/results/quick/, so it never overwrites full-size figures, and it touches the README's
figures only while they are quick ones too.

Discovery: every module ``benchmarks/bench_*.py`` is a benchmark. Each is run in its own
process, one after the other (the machine's cores go to the benchmark, not to a neighbour), the
way it runs alone: ``python -m benchmarks.bench_x [args]``, with its module-level ``RESULTS``
directory pointed at this run's output directory. The arguments are ``--quick`` with
``--quick`` (when the module has that option) and otherwise the size chosen below for a
2-core machine, or the module's own defaults for a module not listed.

Interface expected of a benchmark module (all of them have it): a ``main()`` that parses
``sys.argv`` with argparse, a ``--quick`` option for a small size, and its results written to
``RESULTS / "<name>.json"`` (and ``.md``). The report reads the JSON files written during this
run only, so every figure in it comes from this one run. A module's JSON is turned into tables
by an adapter below when there is one, otherwise generically: every ``"peers"`` mapping of
``{peer name: {"seconds": ..., ...}}`` becomes a table whose first peer is ours.

In every table the ratio says how many times faster ours is than the peer (peer time / our
time, or our rate / peer rate): above 1 we are faster, below 1 the peer is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
QUICK_RESULTS = RESULTS / "quick"
README = ROOT / "README.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"

# Sizes that fit a 2-core machine in a few minutes per module (the modules' own defaults
# otherwise). --quick replaces them with the module's --quick.
FULL_ARGS: dict[str, list[str]] = {
    "bench_engine": ["--transactions", "300000", "--redis"],
    "bench_ranking": ["--big"],
    "bench_redis_store": [],
}
QUICK_EXTRA: dict[str, list[str]] = {"bench_engine": ["--redis"]}
PEER_LIBRARIES = ("redis", "limits", "duckdb", "polars", "pandas", "sqlalchemy", "psycopg")

Row = list[str]


@dataclass
class Table:
    """One capability: our figure and each peer's, from the same run."""

    title: str
    columns: list[str]
    rows: list[Row]
    note: str = ""


@dataclass
class Outcome:
    """What running one benchmark module gave."""

    module: str
    args: list[str]
    seconds: float
    returncode: int
    results: dict[str, Any] = field(default_factory=dict)  # JSON file stem -> its content


# -- running --------------------------------------------------------------------------------


def discover() -> list[str]:
    """The benchmark modules, by name, in alphabetical order."""
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def arguments(module: str, quick: bool) -> list[str]:
    source = (HERE / f"{module}.py").read_text()
    if quick:
        return (["--quick"] if "--quick" in source else []) + QUICK_EXTRA.get(module, [])
    return list(FULL_ARGS.get(module, []))


_LAUNCH = """\
import importlib, pathlib, sys
module = importlib.import_module(sys.argv[1])
if hasattr(module, "RESULTS"):
    module.RESULTS = pathlib.Path(sys.argv[2])
sys.argv = [sys.argv[1], *sys.argv[3:]]
module.main()
"""


def run_module(module: str, args: list[str], out: Path, timeout: float) -> Outcome:
    """Run ``benchmarks.<module>`` in a child process with its RESULTS set to ``out``."""
    before = {path: path.stat().st_mtime for path in out.glob("*.json")}
    command = [sys.executable, "-c", _LAUNCH, f"benchmarks.{module}", str(out), *args]
    print(f"\n=== {module} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    try:
        code = subprocess.run(command, cwd=ROOT, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"=== {module}: stopped after {timeout:.0f} s", flush=True)
        code = -1
    seconds = time.perf_counter() - start
    written = {
        path.stem: json.loads(path.read_text())
        for path in sorted(out.glob("*.json"))
        if path.stat().st_mtime != before.get(path)
    }
    print(f"=== {module}: exit {code} in {seconds:.1f} s, wrote "
          f"{', '.join(sorted(written)) or 'no results'}", flush=True)
    return Outcome(module, args, seconds, code, written)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
        mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        memory = f"{int(mem.group(1)) / 1024**2:.1f} GiB" if mem else ""
    except OSError:
        pass
    versions = []
    for name in PEER_LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    server = ""
    try:
        text = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                              timeout=10, check=False).stdout
        found = re.search(r"v=(\S+)", text)
        server = f"redis-server {found.group(1)}" if found else ""
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "peers": ", ".join(filter(None, [*versions, server])),
    }


# -- turning results into tables -------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def engine_tables(data: dict[str, Any]) -> list[Table]:
    peers = data["peers"]
    ours = peers["engine/memory"]
    rows = []
    for name, peer in peers.items():
        label = f"**{name}** (ours)" if name.startswith("engine/") else name
        rows.append([label, _rate(peer["tx_per_second"]), str(peer["alerts"]),
                     _times(peer["seconds"] / ours["seconds"])])
    tables = [Table(
        f"Alert engine: threshold + spike rules, {data['transactions']:,} transactions",
        ["peer", "transactions/s", "alerts", "engine/memory is faster by"], rows,
        "The deque loop is the same two rules hand-written over per-pool deques (the floor); the "
        "minute scan is the original brief's design (the last hour in a list, scanned every "
        "minute). engine/redis is ours on the Redis store (one local redis-server).",
    )]
    latency = data.get("latency_seconds", {})
    if latency:
        tables.append(Table(
            "Alert latency in event time (seconds from the qualifying transaction to the alert)",
            ["peer", "anomalies", "mean", "max"],
            [[f"**{name}** (ours)" if name == "engine" else name, str(lat.get("n", 0)),
              str(lat.get("mean", "-")), str(lat.get("max", "-"))]
             for name, lat in latency.items()],
        ))
    return tables


def ranking_tables(data: dict[str, Any]) -> list[Table]:
    tables = []
    for case in data.get("one_shot", []):
        peers = case["peers"]
        ours = peers["auptimate top-investors"]["seconds"]
        rows = []
        for name, peer in peers.items():
            label = f"**{name}** (ours)" if name.startswith("auptimate") else name
            same = "yes" if case["same_top5_ids"].get(name) else "NO"
            rows.append([label, f"{peer['seconds']:.3f}", same, _times(peer["seconds"] / ours)])
        tables.append(Table(
            f"Top investors, one shot: rank a CSV file of {case['rows']:,} rows",
            ["peer", "seconds", "same top 5", "`auptimate top-investors` is faster by"], rows,
            "Ours reads and checks every row and sums exact Decimals; the peers run the bare "
            "GROUP BY on float amounts and check nothing. SQLite's time is the query alone, on a "
            "table loaded beforehand.",
        ))
    case = data.get("streaming")
    if case:
        peers = case["peers"]
        ours = peers["auptimate TopInvestors"]["seconds"]
        rows = [[f"**{name}** (ours)" if name.startswith("auptimate") else name,
                 f"{peer['per_ask_ms']:.2f}", "yes" if case["same_top5_ids"].get(name) else "NO",
                 _times(peer["seconds"] / ours)] for name, peer in peers.items()]
        tables.append(Table(
            f"Top investors, streaming: {case['transactions']:,} transactions, the top 5 asked "
            f"after every {case['batch']:,}",
            ["peer", "ms per ask", "same top 5", "TopInvestors is faster by"], rows,
            "TopInvestors keeps the ranking current; the peers recount everything so far.",
        ))
    return tables


def redis_store_tables(data: dict[str, Any]) -> list[Table]:
    peers = data["peers"]
    ours_name = next(iter(peers))
    ours = peers[ours_name]["events_per_second"]
    rows = [[f"**{name}** (ours)" if name.startswith("observe") else name, f"{peer['events']:,}",
             _rate(peer["events_per_second"]), _times(ours / peer["events_per_second"])]
            for name, peer in peers.items()]
    return [Table(
        f"Redis window store: record and count each event in two windows, "
        f"{data.get('pools', 1000):,} pools",
        ["peer", "events", "events/s", "observe_many is faster by"], rows,
        "One local redis-server on loopback. `limits` keeps wall-clock windows, not event time: "
        "a peer for the cost of a shared sliding window, not for the same semantics.",
    )]


def _peer_maps(data: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(data, dict):
        for name in ("peers", "rows"):
            peers = data.get(name)
            if isinstance(peers, dict) and peers and all(
                isinstance(p, dict) and isinstance(p.get("seconds"), int | float)
                for p in peers.values()
            ):
                yield path, peers
        for key, value in data.items():
            if key not in ("peers", "rows"):
                yield from _peer_maps(value, f"{path} {key}".strip())
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _peer_maps(item, f"{path} {index + 1}".strip())


def generic_tables(name: str, data: dict[str, Any]) -> list[Table]:
    """Tables for a module without an adapter: its first peer is ours."""
    tables = []
    for path, peers in _peer_maps(data):
        ours_name, ours = next(iter(peers.items()))
        rate_key = next((k for k in ours if k.endswith("per_second")), None)
        rows = []
        for peer_name, peer in peers.items():
            label = f"**{peer_name}** (ours)" if peer_name == ours_name else peer_name
            if rate_key and peer.get(rate_key):
                figure, ratio = _rate(peer[rate_key]), ours[rate_key] / peer[rate_key]
            else:
                figure, ratio = f"{peer['seconds']:.4g}", peer["seconds"] / ours["seconds"]
            rows.append([label, figure, _times(ratio)])
        unit = rate_key.replace("_", " ") if rate_key else "seconds"
        tables.append(Table(f"{name}{': ' + path if path else ''}",
                            ["peer", unit, f"{ours_name} is faster by"], rows))
    return tables


def metrics_tables(data: dict[str, Any]) -> list[Table]:
    rows = []
    for name, peer in data["peers"].items():
        n = peer["transactions"]
        rows.append([name, f"{n:,}", _rate(n / peer["off_seconds"]), _rate(n / peer["on_seconds"]),
                     f"{peer['cost'] * 100:+.1f}%"])
    return [Table(
        f"Prometheus metrics: the alert engine with metrics off and on, "
        f"{data['transactions']:,} transactions",
        ["path", "transactions", "off: tx/s", "on: tx/s", "cost of metrics"], rows,
        "Ours against ours: the peer here is the engine without metrics (no-op hooks). Off and "
        "on alternate, each keeping its best time.",
    )]


def windows_tables(data: dict[str, Any]) -> list[Table]:
    peers = data["peers"]
    ours_name = next(iter(peers))
    ours = peers[ours_name]["events_per_second"]
    rows = [[f"**{name}** (ours)" if name.startswith(("MemoryWindowStore", "ExactWindow",
                                                      "BucketRing")) else name,
             _rate(peer["events_per_second"]), "yes" if peer.get("same_counts") else "NO",
             _times(ours / peer["events_per_second"])] for name, peer in peers.items()]
    tables = [Table(
        f"Window structures: record each event and count two windows ({', '.join(data['windows'])}"
        f"), {data['events']:,} events over {data['pools']:,} pools",
        ["peer", "events/s", "same counts", f"{ours_name.split(' (')[0]} is faster by"], rows,
        "The store also keeps exact amount sums, places late events exactly, answers any "
        "interval and counts a redelivered id once; the bare deque does none of that (a floor), "
        "and `limits` is not idempotent.",
    )]
    memory = data.get("memory") or {}
    if memory:
        tables.append(Table(
            "Window store memory after the stream (tracemalloc)",
            ["structure", "retained MiB", "peak MiB", "events held"],
            [[name, f"{m['retained_bytes'] / 2**20:.1f}", f"{m['peak_bytes'] / 2**20:.1f}",
              f"{m['events']:,}"] for name, m in memory.items()],
        ))
    return tables


def workers_tables(data: dict[str, Any]) -> list[Table]:
    rows_in = data["rows"]
    one = next(iter(rows_in.values()))["per_second"]
    rows = [[name, _rate(row["per_second"]), str(row.get("redis_busy", "-")),
             _times(row["per_second"] / one)] for name, row in rows_in.items()]
    return [Table(
        f"Workers end to end through Redis Streams: {data['transactions']:,} transactions",
        ["run (all ours)", "transactions/s", "Redis busy (share of a core)", "x one worker"],
        rows,
        "Produce, consume through a consumer group, alert; the in-process engines on the same "
        "Redis store and on the memory store are the peers that show what the stream costs.",
    )]


def feed_tables(data: dict[str, Any]) -> list[Table]:
    rows = [[name if name.startswith("bare") else f"**{name}** (ours)", str(row["changes"]),
             f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}"]
            for name, row in data["peers"].items()]
    return [Table(
        f"Change feed: commit to a follower in another process, {data['writes']:,} writes",
        ["path", "changes", "p50 ms", "p99 ms"], rows,
        "Latency, not throughput: writes a few milliseconds apart, each timed from its commit "
        "time to the follower holding it. The bare NOTIFY is the floor of a cross-process "
        "wake-up on PostgreSQL.",
    )]


ADAPTERS: dict[str, Callable[[dict[str, Any]], list[Table]]] = {
    "engine": engine_tables, "ranking": ranking_tables, "redis_store": redis_store_tables,
    "metrics": metrics_tables, "windows": windows_tables, "workers": workers_tables,
    "feed": feed_tables,
}


def tables_for(name: str, data: dict[str, Any]) -> list[Table]:
    adapter = ADAPTERS.get(name)
    if adapter is not None:
        try:
            return adapter(data)
        except (KeyError, TypeError, ZeroDivisionError):
            pass  # the module changed its format: fall back to the generic reading
    return generic_tables(name, data)


def headlines(results: dict[str, dict[str, Any]]) -> list[str]:
    """A few ratios worth quoting, from this run."""
    lines = []
    engine = results.get("engine")
    if engine:
        peers = engine["peers"]
        ours = peers["engine/memory"]
        loop = peers["deque loop"]["seconds"] / ours["seconds"]
        scan_ratio = peers["minute scan"]["seconds"] / ours["seconds"]
        lines.append(
            f"alert engine: {_rate(ours['tx_per_second'])} transactions/s on the memory store, "
            f"{_times(loop)} the speed of a hand-written deque loop and {_times(scan_ratio)} the "
            "speed of the brief's minute scan"
        )
        scan = engine.get("latency_seconds", {}).get("minute scan", {})
        if scan.get("n"):
            lines.append(f"alert latency: 0 s in event time, against {scan['mean']} s on average "
                         f"(up to {scan['max']} s) for the minute scan")
    ranking = results.get("ranking")
    if ranking:
        for case in ranking.get("one_shot", [])[:1]:
            peers = case["peers"]
            ours = peers["auptimate top-investors"]["seconds"]
            duck, pandas = ours / peers["duckdb"]["seconds"], ours / peers["pandas"]["seconds"]
            lines.append(
                f"top investors of a {case['rows']:,}-row CSV in {_times(duck)} DuckDB's time and "
                f"{_times(pandas)} pandas', with every row checked and exact totals"
            )
        streaming = ranking.get("streaming")
        if streaming:
            peers = streaming["peers"]
            ours = peers["auptimate TopInvestors"]["seconds"]
            best = min((p["seconds"], n) for n, p in peers.items() if n != "auptimate TopInvestors")
            lines.append(f"incremental top investors: {_times(best[0] / ours)} faster than the "
                         f"best recount ({best[1]})")
    redis_store = results.get("redis_store")
    if redis_store:
        peers = redis_store["peers"]
        ours_name = next(iter(peers))
        limits = next((p for n, p in peers.items() if n.startswith("limits")), None)
        if limits:
            lines.append(
                f"Redis window store: {_rate(peers[ours_name]['events_per_second'])} events/s, "
                f"{_times(peers[ours_name]['events_per_second'] / limits['events_per_second'])}"
                " the `limits` library's moving window on the same server"
            )
    windows = results.get("windows")
    if windows:
        peers = windows["peers"]
        ours = next(iter(peers.values()))["events_per_second"]
        limits = next((p for n, p in peers.items() if n.startswith("limits")), None)
        if limits:
            deque = next((p for n, p in peers.items() if "ids remembered" in n), None)
            floor = next((p for n, p in peers.items() if "no ids" in n), None)
            than_deques = (f", {_times(ours / deque['events_per_second'])} a hand-written deque "
                          "loop that remembers ids (the same job)" if deque else "")
            if floor:
                than_deques += (f", {_times(ours / floor['events_per_second'])} a bare deque "
                               "loop that forgets them (a redelivery counted twice)")
            lines.append(f"memory window store (columnar, batches): {_rate(ours)} events/s "
                         f"recorded and counted in two windows, "
                         f"{_times(ours / limits['events_per_second'])} the `limits` library's "
                         f"in-memory moving window{than_deques}")
    workers = results.get("workers")
    if workers:
        best = max(workers["rows"].items(), key=lambda item: item[1]["per_second"]
                   if "Streams" in item[0] else 0)
        lines.append(f"Redis Streams workers: {_rate(best[1]['per_second'])} transactions/s end "
                     f"to end ({best[0].split(' (')[0]})")
    feed = results.get("feed")
    if feed:
        found = {name.split(",")[1].split("(")[0].strip(): row
                 for name, row in feed["peers"].items() if name.startswith("follow")}
        lines.append("change feed: a commit reaches a follower in another process in "
                     + " and ".join(f"{row['p50_ms']:.1f} ms on {backend} (p99 "
                                    f"{row['p99_ms']:.1f} ms)" for backend, row in found.items()))
    batch = results.get("metrics", {}).get("peers", {}).get("process_many")
    if batch:
        lines.append(f"Prometheus metrics on: {batch['cost'] * 100:+.1f}% on `process_many`")
    return lines


# -- writing ------------------------------------------------------------------------------


def _markdown(table: Table) -> list[str]:
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return [*lines, ""]


def report(outcomes: list[Outcome], about: dict[str, str], quick: bool, when: str) -> str:
    results = {name: data for outcome in outcomes for name, data in outcome.results.items()}
    lines = [
        "# Benchmark report",
        "",
        f"Every figure below comes from one run of `python -m benchmarks"
        f"{' --quick' if quick else ''}` on {when}, each peer measured in the same run on the "
        "same data as ours. Ratios say how many times faster ours is than the peer (above 1: "
        "ours is faster). Each module's own report, with more detail, is beside this file.",
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in about.items() if value) + ".",
        "",
    ]
    quotes = headlines(results)
    if quotes:
        lines += ["Headlines:", "", *[f"- {quote}" for quote in quotes], ""]
    lines += ["| benchmark | arguments | seconds | status |", "|---|---|---:|---|"]
    for outcome in outcomes:
        status = "ok" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        lines.append(f"| `{outcome.module}` | `{' '.join(outcome.args) or '(defaults)'}` | "
                     f"{outcome.seconds:.0f} | {status} |")
    lines.append("")
    for outcome in outcomes:
        for name, data in outcome.results.items():
            for table in tables_for(name, data):
                lines += _markdown(table)
            lines += [f"Details: [{name}.md]({name}.md).", ""]
    return "\n".join(lines)


QUICK_MARK = "(quick sizes)"


def update_readme(quotes: list[str], quick: bool, report_path: Path, when: str,
                  readme: Path = README) -> bool:
    """Replace the figures between the benchmark markers of the README; False if left alone.

    A quick run does not replace the figures of a full run.
    """
    if not readme.exists() or not quotes:
        return False
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    if quick and current.strip() and QUICK_MARK not in current and "- " in current:
        return False
    link = report_path.resolve().relative_to(readme.resolve().parent).as_posix()
    size = f" {QUICK_MARK}" if quick else ""
    body = [BEGIN, f"Headline figures of the run of {when}{size}, from [its report]({link}):",
            "", *[f"- {quote}" for quote in quotes], END]
    readme.write_text(head + "\n".join(body) + tail)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every module at its quick size")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[],
                        help="leave these modules out")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--out", type=Path, default=None,
                        help="where results go (default: benchmarks/results, or its quick/ "
                        "subdirectory with --quick)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per module (default: 600 quick, 3600 full)")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not update the headline figures in the project README")
    args = parser.parse_args(argv)
    modules = discover()
    if args.list:
        for module in modules:
            print(module, " ".join(arguments(module, args.quick)))
        return 0

    def short(name: str) -> str:
        return name.removeprefix("bench_")

    wanted = {short(name) for name in args.only} if args.only else None
    skipped = {short(name) for name in args.skip}
    modules = [m for m in modules if (wanted is None or short(m) in wanted)
               and short(m) not in skipped]
    if not modules:
        parser.error("no benchmark module left to run")
    default_out = QUICK_RESULTS if args.quick else RESULTS
    out: Path = (args.out or default_out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timeout = args.timeout or (600.0 if args.quick else 3600.0)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    outcomes = [run_module(m, arguments(m, args.quick), out, timeout) for m in modules]
    text = report(outcomes, machine(), args.quick, when)
    (out / "README.md").write_text(text)
    print(f"\nwrote {out / 'README.md'}")
    results = {name: data for outcome in outcomes for name, data in outcome.results.items()}
    if not args.no_readme and out == default_out.resolve() and update_readme(
            headlines(results), args.quick, out / "README.md", when):
        print(f"updated the headline figures in {README}")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
        sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
