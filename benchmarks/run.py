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
time, or our rate / peer rate): above 1 we are faster, below 1 the peer is. The engine's tables
give each path's rate against the hand-written loop's instead. Headlines name the store, the
batching and the size they were measured on, and compare per-event calls with per-event calls
and batches with batches; the report states the run's mode (full or quick) and each module's
arguments.

Pictures: after the modules, :mod:`benchmarks.plots` draws the scaling pictures (PNG, the
``plot`` extra) from this run's results into the same directory; the README block shows the
engine's throughput against pools.
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
    "bench_cli": ["--big"],  # top investors at 10M rows too, as the ranking
    "bench_redis_store": [],
    "bench_ledger": ["--big"],  # pools of 10,000 members and a distribution over 10,000 too
    # limits' moving window runs every round like the rest: half a million events keep the
    # module within a few minutes.
    "bench_windows": ["--events", "500000"],
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
    if ratio < 0.1:
        return f"{ratio:.3f}x"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def _ours(name: str) -> str:
    return f"**{name}** (ours)"


def _same(same: bool | None, compared: str | None = None) -> str:
    if same is None:
        return "-"
    return f"{compared}: {'yes' if same else 'NO'}" if compared else "yes" if same else "NO"


def _us(value: float) -> str:
    """Microseconds measured as a difference: at or below zero it is under the noise."""
    return f"{value:.1f}" if value > 0 else "under the run's noise"


LOOP_NOTE = (
    "The hand-written loop is the same two rules over per-pool deques, one transaction at a "
    "time, with no library around it: the floor for every way of calling the engine. The "
    "ratio is our rate over the loop's on the same transactions in the same rounds (above 1: "
    "ours is faster)."
)


def _engine_rows(rows: dict[str, Any]) -> list[Row]:
    return [[name if name.startswith(("hand-written", "minute scan")) else _ours(name),
             f"{r['transactions']:,}", _rate(r["tx_per_second"]), _times(r["vs_loop"]),
             f"{r['alerts']:,}", _same(r.get("same_alerts"), r.get("compared"))]
            for name, r in rows.items()]


ENGINE_COLUMNS = ["path (calls, store, batches)", "transactions", "transactions/s",
                  "x the loop's rate", "alerts", "same alerts as the loop"]


def engine_tables(data: dict[str, Any]) -> list[Table]:
    n, pools, rounds = data["transactions"], data["pools"], data["rounds"]
    tables = [Table(
        f"Alert engine, each path: threshold + spike rules, {n:,} transactions over {pools:,} "
        f"pools", ENGINE_COLUMNS, _engine_rows(data["peers"]),
        f"{LOOP_NOTE} Best of {rounds} interleaved round(s). The minute scan is the original "
        "brief's design (the last hour in a list, scanned every minute; other alerts by "
        "design, not compared).",
    )]
    if "per_event_columnar" in data:
        head = next(iter(data["per_event_columnar"].values()))["transactions"]
        tables.append(Table(
            f"Alert engine, one call per event on the columnar store: the first {head:,} "
            "transactions", ENGINE_COLUMNS, _engine_rows(data["per_event_columnar"]),
            "ColumnarWindowStore is built for batches; this is what `process(tx)` costs on it.",
        ))
    if "history" in data:
        hist = data["history"]
        tables.append(Table(
            f"Alert engine after a history: {hist['transactions']:,} transactions after "
            + " and after ".join(f"{s:,}" for s in hist["histories"])
            + " other pools fired a spike and saw it resolve", ENGINE_COLUMNS,
            _engine_rows(hist["rows"]),
            f"The history is fed untimed. `process(tx)` after {hist['histories'][0]:,} such "
            f"pools runs at {hist['slowdown']:.2f}x its rate after {hist['histories'][-1]:,}.",
        ))
    if "alert_heavy" in data:
        tables.append(Table(
            f"Alert engine, alert-heavy: {n:,} transactions, a third over the threshold, "
            "fresh engines (a cold start)", ENGINE_COLUMNS,
            _engine_rows(data["alert_heavy"]["rows"]),
            " ".join(filter(None, (LOOP_NOTE, data["alert_heavy"].get("floor_note")))),
        ))
    if "alert_cost" in data:
        rows = []
        for rule, cost in data["alert_cost"].items():
            for path in ("per event", "batches"):
                c = cost[path]
                rows.append([rule, path, f"{cost['transactions']:,}",
                             str(cost.get("rounds", "-")), f"{c['alerts']:,}",
                             _us(c["us_per_alert"]),
                             f"{c.get('us_low', '-')} to {c.get('us_high', '-')}"])
        tables.append(Table(
            "What raising an alert costs (default store)",
            ["rule", "calls", "transactions", "rounds", "alerts", "µs per alert (median)",
             "rounds' range µs"], rows,
            "The same stream under rules that alert and rules that cannot (a threshold above "
            "every amount; a spike needing a million transactions in its window), back to back "
            "in each round: the extra time over the extra alerts, the median of the rounds. "
            "Threshold stream: every transaction over it; spike stream: pools that each fire "
            "and resolve. Per event: `process(tx)`; batches: `process_many` in batches of "
            f"{data.get('batch', 10_000):,}.",
        ))
    if "latency" in data:
        lat = data["latency"]
        tables.append(Table(
            f"Alert latency in process: wall clock from arrival to the sink, "
            f"{lat['transactions']:,} transactions of the alert-heavy stream",
            ["path", "alerts", "p50 µs", "p99 µs", "max µs"],
            [[_ours(name), f"{v['alerts']:,}", f"{v['p50_us']:,}", f"{v['p99_us']:,}",
              f"{v['max_us']:,}"] for name, v in lat.items() if isinstance(v, dict)],
            "A transaction arrives when the call handing it to the engine starts (a batch's "
            "transactions arrive together at its call); its alert leaves when a plain callable "
            "sink receives it. One pass each. Through Redis Streams workers: see the workers "
            "section.",
        ))
    scan = data.get("event_time_delay", {}).get(next(
        (name for name in data["peers"] if name.startswith("minute scan")), ""), {})
    if scan.get("alerts"):
        tables.append(Table(
            "The minute scan's delay in event time",
            ["peer", "alerts compared", "mean s", "max s"],
            [["minute scan", str(scan["alerts"]), f"{scan['mean_s']}", f"{scan['max_s']}"]],
            "Event time from the transaction at which the rules first hold (where the engine "
            "and the loop alert) to the minute scan's alert.",
        ))
    for key, label, axis in (("scaling_pools", "pools", "by_pools"),
                             ("scaling_alerts", "alerts", "by_share")):
        scaling = data.get(key)
        if not scaling:
            continue
        cases = scaling[axis]
        first = next(iter(cases.values()))
        paths = list(first.get("rows", first))
        rows = []
        for case_key, case in cases.items():
            found = case.get("rows", case)
            head = (f"{int(case_key):,}" if label == "pools" else
                    f"{case['share_over']:.1%} over, {case['alerts_per_1000']} alerts per 1,000")
            rows.append([head, *[_rate(found[p]["tx_per_second"]) for p in paths]])
        tables.append(Table(
            f"Alert engine throughput against {label}: {scaling['transactions']:,} "
            "transactions (transactions/s)", [label, *paths], rows,
            f"Picture: [engine_{label}.png](engine_{label}.png).",
        ))
    sweep = data.get("redis_batches")
    if sweep:
        tables.append(Table(
            f"Alert engine on RedisWindowStore against the batch size: "
            f"{sweep['transactions']:,} transactions",
            ["batch", "transactions/s", "alerts"],
            [[f"{r['batch']:,}", _rate(r["tx_per_second"]), str(r["alerts"])]
             for r in sweep["by_batch"].values()],
            "`process_many` with the engine's `batch_size` set; one local redis-server. "
            "Picture: [redis_batches.png](redis_batches.png).",
        ))
    return tables


def ranking_tables(data: dict[str, Any]) -> list[Table]:
    tables = []
    for case in data.get("one_shot", []):
        peers = case["peers"]
        ours = peers["auptimate top-investors"]["seconds"]
        rows = []
        for name, peer in peers.items():
            label = _ours(name) if name.startswith("auptimate") else name
            same = "yes" if case["same_top5_ids"].get(name) else "NO"
            load = f" (load {peer['load_seconds']:.1f} s)" if "load_seconds" in peer else ""
            rows.append([label, f"{peer['seconds']:.3f}{load}", same,
                         _times(peer["seconds"] / ours)])
        tables.append(Table(
            f"Top investors, one shot: rank a CSV file of {case['rows']:,} rows",
            ["peer", "seconds", "same top 5", "`auptimate top-investors` is faster by"], rows,
            "Ours reads and checks every row and sums exact Decimals; the peers run the bare "
            "GROUP BY on float amounts and check nothing. SQLite's time is the query alone, on "
            "a table loaded beforehand. Best of "
            f"{data.get('repeat', 1)} interleaved rounds, every peer once a round.",
        ))
    case = data.get("streaming")
    if case:
        peers = case["peers"]
        ours = peers["auptimate TopInvestors"]["seconds"]
        rows = [[_ours(name) if name.startswith("auptimate") else name,
                 f"{peer['per_ask_ms']:.2f}", "yes" if case["same_top5_ids"].get(name) else "NO",
                 _times(peer["seconds"] / ours)] for name, peer in peers.items()]
        tables.append(Table(
            f"Top investors, streaming: {case['transactions']:,} transactions, the top 5 asked "
            f"after every {case['batch']:,}",
            ["peer", "ms per ask", "same top 5", "TopInvestors is faster by"], rows,
            "TopInvestors keeps the ranking current; the peers recount everything so far.",
        ))
    return tables


_BATCHED = re.compile(r"batches of ([\d,]+)")


def _redis_calls(name: str, peer: dict[str, Any]) -> int:
    """Events per call of a Redis store row: 1 for one call per event."""
    if isinstance(peer.get("batch"), int):
        return int(peer["batch"])
    found = _BATCHED.search(name)
    return int(found.group(1).replace(",", "")) if found else 1


def _redis_ours(name: str, peer: dict[str, Any]) -> bool:
    if isinstance(peer.get("ours"), bool):
        return bool(peer["ours"])
    return name.startswith("observe")


def _redis_split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of one call per event, and those of one call per batch."""
    peers = data["peers"]
    single = {n: p for n, p in peers.items() if _redis_calls(n, p) == 1}
    batched = {n: p for n, p in peers.items() if _redis_calls(n, p) > 1}
    return single, batched


def _redis_reference(rows: dict[str, Any], batch: int) -> tuple[str, dict[str, Any]] | None:
    """Our row that the others are compared with: the plain one at the module's batch size."""
    ours = [(n, p) for n, p in rows.items() if _redis_ours(n, p)]
    plain = [(n, p) for n, p in ours if _redis_calls(n, p) in (1, batch) and ", " not in
             n.partition("(")[2]]
    return (plain or ours or [None])[0]


def redis_store_tables(data: dict[str, Any]) -> list[Table]:
    single, batched = _redis_split(data)
    pools, batch = data.get("pools", 1000), data.get("batch", 5_000)
    tables = []
    for rows, title, note in (
        (single, "one call per event", "Every peer makes one call (one round trip, or more "
         "for `limits`) per event."),
        (batched, "one call per batch", "Every peer sends a batch at a time; `limits` has no "
         "batch call, so it is not here: compare it with the per-event table."),
    ):
        if not rows:
            continue
        reference = _redis_reference(rows, batch)
        columns = ["peer", "calls", "events", "events/s"]
        if reference:
            columns.append(f"{reference[0]} is faster by")
        table_rows = []
        for name, peer in rows.items():
            calls = _redis_calls(name, peer)
            row = [_ours(name) if _redis_ours(name, peer) else name,
                   "per event" if calls == 1 else f"batches of {calls:,}",
                   f"{peer['events']:,}", _rate(peer["events_per_second"])]
            if reference:
                row.append(_times(reference[1]["events_per_second"] / peer["events_per_second"]))
            table_rows.append(row)
        tables.append(Table(
            f"Redis window store, {title}: record and count each event in two windows, "
            f"{pools:,} pools", columns, table_rows,
            f"{note} One local redis-server on loopback (three for a cluster row). `limits` "
            "keeps wall-clock windows, not event time, and hand-written peers keep no dedup "
            "horizon or lateness: peers for the cost of a shared sliding window, not the same "
            "job.",
        ))
    return tables


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
            label = _ours(peer_name) if peer_name == ours_name else peer_name
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
        f"{data['transactions']:,} transactions, default store (MemoryWindowStore)",
        ["path", "transactions", "off: tx/s", "on: tx/s", "cost of metrics"], rows,
        "Ours against ours: the peer here is the engine without metrics (no-op hooks). Off and "
        "on alternate, each keeping its best time.",
    )]


def windows_tables(data: dict[str, Any]) -> list[Table]:
    peers = data["peers"]
    ours_name = next(iter(peers))
    ours = peers[ours_name]["events_per_second"]
    rows = [[_ours(name) if peer.get("ours", name.startswith(
                ("MemoryWindowStore", "ColumnarWindowStore", "ExactWindow", "BucketRing")))
             else name, peer.get("calls", "-"), _rate(peer["events_per_second"]),
             "yes" if peer.get("same_counts") else "NO",
             _times(ours / peer["events_per_second"])] for name, peer in peers.items()]
    tables = [Table(
        f"Window structures: record each event and count two windows ({', '.join(data['windows'])}"
        f"), {data['events']:,} events over {data['pools']:,} pools",
        ["peer", "calls", "events/s", "same counts", f"{ours_name} is faster by"], rows,
        "The stores also keep exact amount sums, place late events exactly, answer any "
        "interval and count a redelivered id once; the bare deque does none of that (a floor), "
        "and `limits` is not idempotent. The hand-written loops and `limits` run one event at "
        "a time: compare them with the per-event rows; the loops are also the floor of the "
        "batched ones.",
    )]
    memory = data.get("memory") or {}
    if memory:
        tables.append(Table(
            "Window store memory after the stream (tracemalloc)",
            ["structure", "retained MiB", "peak MiB", "events held"],
            [[name, f"{m['retained_bytes'] / 2**20:.1f}", f"{m['peak_bytes'] / 2**20:.1f}",
              f"{m['events']:,}"] for name, m in memory.items()],
        ))
    single = data.get("single_call_us") or {}
    if single:
        tables.append(Table(
            f"One `observe` call per event, after the stream's first "
            f"{data.get('memory_events', 0):,} events (µs per call)",
            ["store", "µs per call"], [[kind, f"{us:,}"] for kind, us in single.items()],
            "`columnar` is ColumnarWindowStore, `exact` and `ring` MemoryWindowStore on them.",
        ))
    return tables


def workers_tables(data: dict[str, Any]) -> list[Table]:
    rows_in = data["rows"]
    one = next(iter(rows_in.values()))["per_second"]
    rows = [[name, _rate(row["per_second"]), str(row.get("alerts", "-")),
             _same(row.get("same_alerts")), str(row.get("redis_busy", "-")),
             _times(row["per_second"] / one)] for name, row in rows_in.items()]
    tables = [Table(
        f"Workers end to end through Redis Streams: {data['transactions']:,} transactions",
        ["run (all ours)", "transactions/s", "alerts", "same alerts", "Redis busy (share of a "
         "core)", "x one worker"], rows,
        "Produce, consume through a consumer group, alert (default threshold and spike rules, "
        "16 shards, one local redis-server, one run each); the in-process engines on the same "
        "Redis store and on the memory store are the peers that show what the stream costs. "
        "Alerts are compared with the in-process engine's on the memory store.",
    )]
    lat = data.get("latency")
    if lat:
        tables.append(Table(
            f"Alert latency through Redis Streams: one worker, {lat['transactions']:,} "
            f"transactions at {lat['rate']:,} a second, a third over the threshold",
            ["alerts", "same alerts", "p50 ms", "p99 ms", "max ms"],
            [[f"{lat['alerts']:,}", _same(lat.get("same_alerts")), f"{lat['p50_ms']:g}",
              f"{lat['p99_ms']:g}", f"{lat['max_ms']:g}"]],
            "From a transaction's entry in the stream to its alert's entry in the alert log, "
            "both read from the entry ids (the Redis server's clock, whole milliseconds).",
        ))
    return tables


def feed_tables(data: dict[str, Any]) -> list[Table]:
    rows = [[name if name.startswith("bare") else _ours(name), str(row["changes"]),
             f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}"]
            for name, row in data["peers"].items()]
    return [Table(
        f"Change feed: commit to a follower in another process, {data['writes']:,} writes",
        ["path", "changes", "p50 ms", "p99 ms"], rows,
        "Latency, not throughput: writes a few milliseconds apart, each timed from its commit "
        "time to the follower holding it. The bare NOTIFY is the floor of a cross-process "
        "wake-up on PostgreSQL.",
    )]


def dedup_tables(data: dict[str, Any]) -> list[Table]:
    rows = [[_ours(name), f"{row['transactions_per_second']:,.0f}"]
            for name, row in data["peers"].items()]
    memory = [[name, f"{m['ids_held']:,}", f"{m['events_held']:,}",
               f"{m['peak_bytes'] / 2**20:,.1f}"] for name, m in data.get("memory", {}).items()]
    tables = [Table(
        f"The dedup horizon's cost: {data['transactions']:,} transactions over "
        f"{data.get('stream_span_hours', '?')} hours of event time, {data.get('store', '')}",
        ["engine path, horizon", "transactions/s"], rows,
        f"Ours against ours ({data['alerts']} alerts, the same on every row): ids remembered "
        "for a day (the default) or only while the windows need them, per event and in "
        f"batches; best of {data.get('rounds', 1)} interleaved rounds.",
    )]
    if memory:
        tables.append(Table("The dedup horizon's memory",
                            ["horizon", "ids held", "events held", "peak MiB"], memory))
    return tables


def _checked(row: dict[str, Any]) -> str:
    return "yes" if row.get("checked") else "NO"


def ledger_tables(data: dict[str, Any]) -> list[Table]:
    tables = []
    for backend, section in data["sequential"].items():
        peers = section["peers"]
        ours = next(iter(peers.values()))
        tables.append(Table(
            f"Ledger: sequential investments from one client, {backend}",
            ["peer", "writes/s", "p50 ms", "p99 ms", "answers checked", "ours is faster by"],
            [[f"**{name}** (ours)" if name.startswith("ledger.") else name,
              _rate(row["per_second"]),
              f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}", _checked(row),
              _times(row["seconds"] / ours["seconds"])] for name, row in peers.items()],
            "The hand-written transactions write the same rows as an investment and check "
            "nothing; pgbench's TPC-B-like transaction runs from its C client on the same "
            "server." if backend == "postgresql" else ""))
    sizes = data["sizes"]
    tables.append(Table(
        "Ledger: investments against the pool's size (writes/s, one client)",
        ["backend", *(f"{size:,} members" for size in sizes), "statements per investment"],
        [[backend, *(_rate(section["sizes"][str(size)]["per_second"]) for size in sizes),
          " / ".join(str(n) for n in data["statements"].get(backend, {}).values()) or "-"]
         for backend, section in data["sequential"].items()],
        "The same investment on a pool of each size: it reads and writes one member."))
    tables.append(Table(
        "Ledger: distributions (every member of one pool paid)",
        ["backend", "peer", "members", "ms per distribution", "answers checked"],
        [[backend, name if name.startswith("hand") else f"**{name}** (ours)",
          f"{row['members']:,}", f"{row['seconds'] * 1000:.1f}", _checked(row)]
         for backend, section in data["distribution"].items()
         for name, row in section["peers"].items()],
        "The hand-written set-based distribution is a floor: integer pro rata, no exact split, "
        "no audit hashes, no event."))
    for backend, section in data.get("batches", {}).items():
        peers = section["peers"]
        batched = next(iter(peers.values()))
        tables.append(Table(
            f"Ledger: invest_many batches against one by one, one client, {backend}",
            ["peer", "writes/s", "p50 ms", "p99 ms", "answers checked", "batches are faster by"],
            [[f"**{name}** (ours)", _rate(row["per_second"]),
              f"{row.get('batch_p50_ms', row['p50_ms']):.3f}",
              f"{row.get('batch_p99_ms', row['p99_ms']):.3f}", _checked(row),
              _times(batched["per_second"] / row["per_second"])] for name, row in peers.items()],
            "A batch's latency is the whole batch's (every investment in it), each batch on a "
            f"{section['members']:,}-member pool."))
    if data.get("concurrency"):
        tables.append(Table(
            "Ledger: concurrent clients on PostgreSQL (one process each)",
            ["peer", "writes/s", "p50 ms", "p99 ms", "errors", "answers checked"],
            [[name if name.startswith("pgbench") else f"**{name}** (ours)",
              _rate(row["per_second"]), f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}",
              str(row["errors"]), _checked(row)]
             for name, row in data["concurrency"]["peers"].items()],
            data["concurrency"].get("note", "")))
    return tables


ADAPTERS: dict[str, Callable[[dict[str, Any]], list[Table]]] = {
    "engine": engine_tables, "ranking": ranking_tables, "redis_store": redis_store_tables,
    "metrics": metrics_tables, "windows": windows_tables, "workers": workers_tables,
    "feed": feed_tables, "dedup": dedup_tables, "ledger": ledger_tables,
}


def tables_for(name: str, data: dict[str, Any]) -> list[Table]:
    adapter = ADAPTERS.get(name)
    if adapter is not None:
        try:
            return adapter(data)
        except (KeyError, TypeError, ZeroDivisionError, StopIteration):
            pass  # the module changed its format: fall back to the generic reading
    return generic_tables(name, data)


# -- headlines: a few figures worth quoting, each naming what it was measured on -------------


def _engine_headlines(engine: dict[str, Any]) -> list[str]:
    peers = engine["peers"]
    n, pools, batch = engine["transactions"], engine["pools"], engine.get("batch", 10_000)
    loop = next(r for name, r in peers.items() if name.startswith("hand-written"))

    def path(prefix: str, rows: dict[str, Any] = peers) -> dict[str, Any] | None:
        return next((r for name, r in rows.items() if name.startswith(prefix)), None)

    one = path("process(tx) per event, MemoryWindowStore")
    many = path("process_many, MemoryWindowStore")
    columnar = path("process_many, ColumnarWindowStore")
    stream = f"{n:,} transactions over {pools:,} pools, threshold + spike rules"
    lines = [f"alert engine ({stream}): the hand-written deque loop, per event, runs "
             f"{_rate(loop['tx_per_second'])} transactions/s"]
    if one:
        lines.append(f"`process(tx)` per event on the default store (MemoryWindowStore): "
                     f"{_rate(one['tx_per_second'])} transactions/s, {_times(one['vs_loop'])} "
                     "the loop's rate")
    heavy = engine.get("alert_heavy", {}).get("rows", {})
    if many:
        text = (f"`process_many` on the default store (MemoryWindowStore, batches of "
                f"{batch:,}): {_rate(many['tx_per_second'])} transactions/s, "
                f"{_times(many['vs_loop'])} the loop's rate")
        found = path("process_many, MemoryWindowStore", heavy)
        if found:
            text += (f"; with a third of the transactions over the threshold (fresh engine): "
                     f"{_rate(found['tx_per_second'])}, {_times(found['vs_loop'])} the loop's")
        lines.append(text)
    if columnar:
        text = (f"`process_many` on ColumnarWindowStore (numpy, batches of {batch:,}; not the "
                f"default): {_rate(columnar['tx_per_second'])} transactions/s, "
                f"{_times(columnar['vs_loop'])} the loop's rate")
        found = path("process_many, ColumnarWindowStore", heavy)
        if found:
            text += f"; alert-heavy: {_times(found['vs_loop'])} the loop's"
        lines.append(text)
    floor = path("hand-written floor", heavy)
    if floor:
        lines.append(f"alert-heavy stream, a hand-written floor that only drops repeated ids, "
                     f"keeps event times and builds the threshold rule's `Alert` objects (no "
                     f"spike rule, per event): {_rate(floor['tx_per_second'])} transactions/s, "
                     f"{_times(floor['vs_loop'])} the loop's rate")
    hist = engine.get("history")
    if hist:
        rows = {r["history_pools"]: r for name, r in hist["rows"].items()
                if name.startswith("process(tx)")}
        first, last = hist["histories"][0], hist["histories"][-1]
        lines.append(f"`process(tx)` per event (default store, {hist['transactions']:,} "
                     f"transactions) after {first:,} and after {last:,} pools alerted before: "
                     f"{_rate(rows[first]['tx_per_second'])} and "
                     f"{_rate(rows[last]['tx_per_second'])} transactions/s "
                     f"({hist['slowdown']:.2f}x)")
    cost = engine.get("alert_cost")
    if cost:
        def each(value: float, how: str) -> str:
            return f"{_us(value)} µs {how}" if value > 0 else f"{_us(value)} {how}"

        lines.append(
            "raising an alert on the default store (median of paired rounds): " + "; ".join(
                f"{rule} {each(c['per event']['us_per_alert'], 'per event (`process(tx)`)')}, "
                f"{each(c['batches']['us_per_alert'], 'in batches')}"
                for rule, c in cost.items()))
    latency = engine.get("latency", {})
    v = next((v for v in latency.values() if isinstance(v, dict) and v.get("batch") == 1),
             None)
    if v:
        lines.append(f"alert latency in process, `process(tx)` per event on the default store: "
                     f"p50 {v['p50_us']:,} µs, p99 {v['p99_us']:,} µs from the call to the "
                     f"sink ({v['alerts']:,} alerts, {latency['transactions']:,} transactions "
                     "a third over the threshold)")
    scan = path("minute scan")
    delay = engine.get("event_time_delay", {})
    delay = next(iter(delay.values()), {}) if delay else {}
    if scan and delay.get("alerts"):
        lines.append(f"the brief's minute scan: {_times(scan['vs_loop'])} the loop's rate, its "
                     f"alerts {delay['mean_s']} s of event time late on average (up to "
                     f"{delay['max_s']} s)")
    return lines


def _ranking_headlines(ranking: dict[str, Any]) -> list[str]:
    lines = []
    for case in ranking.get("one_shot", []):
        peers = case["peers"]
        ours = peers["auptimate top-investors"]["seconds"]
        others = {name: p["seconds"] for name, p in peers.items()
                  if not name.startswith("auptimate")}
        fastest = min(others, key=others.__getitem__)
        listed = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in others.items())
        verdict = (f"fastest peer: {fastest}, ours takes {_times(ours / others[fastest])} its "
                   "time" if others[fastest] < ours else
                   f"ours is the fastest, {_times(others[fastest] / ours)} ahead of {fastest}")
        lines.append(f"top investors of a {case['rows']:,}-row CSV (`auptimate top-investors`, "
                     f"in process, every row checked, exact totals): {ours:.2f} s; {listed}; "
                     f"{verdict}")
    streaming = ranking.get("streaming")
    if streaming:
        peers = streaming["peers"]
        ours = peers["auptimate TopInvestors"]["seconds"]
        best = min((p["seconds"], n) for n, p in peers.items() if n != "auptimate TopInvestors")
        lines.append(f"incremental top investors ({streaming['transactions']:,} transactions, "
                     f"top 5 asked every {streaming['batch']:,}): {_times(best[0] / ours)} "
                     f"faster than the best recount ({best[1]})")
    return lines


def _redis_headlines(data: dict[str, Any]) -> list[str]:
    single, batched = _redis_split(data)
    pools, batch = data.get("pools", 1000), data.get("batch", 5_000)
    lines = []
    for rows, how in ((single, "one call per event"), (batched, "in batches")):
        reference = _redis_reference(rows, batch)
        if reference is None:
            continue
        name, ours = reference
        calls = _redis_calls(name, ours)
        text = (f"Redis window store, {how} (`{name.split(' ')[0]}`"
                f"{'' if calls == 1 else f', batches of {calls:,}'}, {ours['events']:,} events, "
                f"{pools:,} pools, one local redis-server): {_rate(ours['events_per_second'])} "
                "events/s")
        others = [(n, p) for n, p in rows.items() if not _redis_ours(n, p)]
        if others:
            text += "; " + "; ".join(
                f"{_times(ours['events_per_second'] / p['events_per_second'])} the rate of {n} "
                f"({_rate(p['events_per_second'])})" for n, p in others)
        elif calls > 1:
            text += "; no peer in this run has a batch call"
        lines.append(text)
    return lines


def _label(name: str) -> str:
    """A row's name without the call it names and one pair of outer brackets."""
    label = name.removeprefix("observe_many ")
    if label.startswith("(") and label.endswith(")"):
        label = label[1:-1]
    return label


def _windows_headlines(data: dict[str, Any]) -> list[str]:
    peers = data["peers"]
    rates = {name: p["events_per_second"] for name, p in peers.items()}

    def find(word: str) -> tuple[str, float] | None:
        return next(((n, r) for n, r in rates.items() if word in n), None)

    size = f"{data['events']:,} events over {data['pools']:,} pools, record and count two windows"
    lines = []
    one, limits = find("one call per event"), find("limits")
    ids, bare = find("ids remembered"), find("no ids")
    if one:
        text = (f"in-memory windows per event ({size}): `MemoryWindowStore.observe` "
                f"{_rate(one[1])} events/s")
        if limits:
            text += (f", {_times(one[1] / limits[1])} the `limits` library's in-memory moving "
                     "window")
        if ids:
            text += f", {_times(one[1] / ids[1])} a hand-written deque loop that remembers ids"
        lines.append(text)
    columnar, exact = find("ColumnarWindowStore"), find("exact (batches")
    for found, label in ((columnar, "columnar window store (`ColumnarWindowStore.observe_many`, "
                                    f"batches of {data.get('batch', 10_000):,})"),
                         (exact, "default store in batches (`MemoryWindowStore.observe_many`, "
                                 f"batches of {data.get('batch', 10_000):,})")):
        if not found:
            continue
        text = f"{label}: {_rate(found[1])} events/s"
        if ids:
            text += (f", {_times(found[1] / ids[1])} the hand-written deque loop that remembers "
                     "ids (per event: the floor, it has no call to save)")
        if bare:
            text += (f", {_times(found[1] / bare[1])} a bare deque loop that forgets them (a "
                     "redelivery counted twice)")
        lines.append(text)
    return lines


def headlines(results: dict[str, dict[str, Any]]) -> list[str]:
    """A few figures worth quoting, from this run; each names the store, the batching and the
    size it was measured on, and compares like with like."""
    lines: list[str] = []
    readers: list[tuple[str, Callable[[dict[str, Any]], list[str]]]] = [
        ("engine", _engine_headlines), ("ranking", _ranking_headlines),
        ("redis_store", _redis_headlines), ("windows", _windows_headlines),
        ("workers", _workers_headlines), ("feed", _feed_headlines),
        ("ledger", _ledger_headlines), ("metrics", _metrics_headlines),
    ]
    for name, reader in readers:
        data = results.get(name)
        if data:
            try:
                lines += reader(data)
            except (KeyError, TypeError, ZeroDivisionError, StopIteration, ValueError):
                lines.append(f"{name}: its results are in a format this runner does not read; "
                             f"see [{name}.md]({name}.md)")
    return lines


def _workers_headlines(workers: dict[str, Any]) -> list[str]:
    streams = {n: r for n, r in workers["rows"].items() if "Streams" in n}
    best = max(streams.items(), key=lambda item: item[1]["per_second"])
    agree = all(r.get("same_alerts") for r in workers["rows"].values())
    lines = [f"Redis Streams workers ({workers['transactions']:,} transactions, 16 shards, one "
             f"local redis-server): {_rate(best[1]['per_second'])} transactions/s end to end "
             f"({best[0].split(' (')[0]}); alerts {'the same as' if agree else 'NOT the same as'}"
             " in process"]
    lat = workers.get("latency")
    if lat:
        lines.append(f"alert latency through Redis Streams (one worker, {lat['rate']:,} "
                     f"transactions/s offered, a third over the threshold): p50 "
                     f"{lat['p50_ms']:g} ms, p99 {lat['p99_ms']:g} ms from the transaction's "
                     f"stream entry to its alert's log entry ({lat['alerts']:,} alerts)")
    return lines


def _feed_headlines(feed: dict[str, Any]) -> list[str]:
    found = {name.split(",")[1].split("(")[0].strip(): row
             for name, row in feed["peers"].items() if name.startswith("follow")}
    return ["change feed: a commit reaches a follower in another process in "
            + " and ".join(f"{row['p50_ms']:.1f} ms on {backend} (p99 {row['p99_ms']:.1f} ms)"
                           for backend, row in found.items())]


def _ledger_headlines(ledger: dict[str, Any]) -> list[str]:
    peers = ledger["sequential"]["postgresql"]["peers"]
    ours = next(iter(peers.values()))
    bench = next(p for n, p in peers.items() if n.startswith("pgbench"))
    driver = next(p for n, p in peers.items() if "psycopg" in n)
    return [f"ledger investments on PostgreSQL from one client: {_rate(ours['per_second'])}/s, "
            f"{ours['seconds'] / bench['seconds']:.1f} times the time of pgbench's TPC-B-like "
            f"transaction and {ours['seconds'] / driver['seconds']:.1f} times a hand-written "
            "psycopg transaction writing the same rows"]


def _metrics_headlines(metrics: dict[str, Any]) -> list[str]:
    batch = metrics.get("peers", {}).get("process_many")
    if not batch:
        return []
    return [f"Prometheus metrics on: {batch['cost'] * 100:+.1f}% on `process_many` (default "
            f"store, {metrics['transactions']:,} transactions)"]


# -- writing ------------------------------------------------------------------------------


def _markdown(table: Table) -> list[str]:
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return [*lines, ""]


def mode(quick: bool) -> str:
    """The run's mode, as the report and the README state it."""
    if quick:
        return ("a quick run (`python -m benchmarks --quick`): every module at its small "
                "`--quick` size, a smoke check; its figures are noisier than a full run's")
    return "a full run (`python -m benchmarks`), every module at the size listed below"


def report(outcomes: list[Outcome], about: dict[str, str], quick: bool, when: str,
           pictures: list[Path] | None = None) -> str:
    results = {name: data for outcome in outcomes for name, data in outcome.results.items()}
    lines = [
        "# Benchmark report",
        "",
        f"Every figure below comes from one run on {when}: {mode(quick)}. Each peer was "
        "measured in the same run on the same data as ours. A \"same ...\" column (counts, "
        "alerts, top 5) is a check made in this run that ours and the peer agree; a module "
        "whose check fails exits non-zero and shows as FAILED below. Ratios say how many "
        "times faster ours is than the peer (above 1: ours is faster). Each module's own "
        "report, with more detail, is beside this file.",
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in about.items() if value) + ".",
        "",
    ]
    quotes = headlines(results)
    if quotes:
        lines += ["Headlines:", "", *[f"- {quote}" for quote in quotes], ""]
    if pictures:
        lines += ["Pictures: " + ", ".join(f"[{p.name}]({p.name})" for p in pictures) + ".", ""]
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
README_PICTURE = "engine_pools.png"


def update_readme(quotes: list[str], quick: bool, report_path: Path, when: str,
                  readme: Path = README, picture: Path | None = None) -> bool:
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
    base = readme.resolve().parent
    link = report_path.resolve().relative_to(base).as_posix()
    size = f" {QUICK_MARK}" if quick else ""
    body = [BEGIN, f"Headline figures of the run of {when}{size}, from [its report]({link}):",
            "", *[f"- {quote}" for quote in quotes]]
    if picture is not None:
        body += ["", f"![Alert engine throughput against the number of pools, from the same "
                     f"run]({picture.resolve().relative_to(base).as_posix()})"]
    readme.write_text(head + "\n".join([*body, END]) + tail)
    return True


def draw_pictures(out: Path, results: dict[str, dict[str, Any]]) -> list[Path]:
    """The scaling pictures of this run's results (none, with a note, without matplotlib)."""
    try:
        from benchmarks import plots

        pictures = plots.draw(out, results)
    except ImportError as error:
        print(f"no pictures: {error} (pip install 'auptimate-core[plot]')")
        return []
    for path in pictures:
        print(f"wrote {path}")
    return pictures


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
    results = {name: data for outcome in outcomes for name, data in outcome.results.items()}
    pictures = draw_pictures(out, results)
    text = report(outcomes, machine(), args.quick, when, pictures)
    (out / "README.md").write_text(text)
    print(f"\nwrote {out / 'README.md'}")
    picture = next((p for p in pictures if p.name == README_PICTURE), None)
    if not args.no_readme and out == default_out.resolve() and update_readme(
            headlines(results), args.quick, out / "README.md", when, picture=picture):
        print(f"updated the headline figures in {README}")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: make `benchmarks.*` importable
        sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
