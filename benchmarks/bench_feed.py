"""The ledger's change feed across processes: commit-to-follower latency, p50 and p99.

    python -m benchmarks.bench_feed [--quick] [--writes N]

A writer (this process) records investments one at a time, a few milliseconds apart; a follower
in another OS process runs ``ledger.follow()`` on the same database and notes, for each change,
how long after its commit time (``change.at``: the wall clock read once the change is numbered,
just before its commit) it had the change in hand, read from the feed. On PostgreSQL (a local
server started for the run) the follower is woken by ``LISTEN/NOTIFY``; on SQLite (a file in a
temporary directory) it polls every ``poll_interval`` seconds. The peer is the floor on
PostgreSQL: a bare ``NOTIFY`` carrying its send time to a bare ``LISTEN`` in another process,
with no ledger write and no feed read.

Results go to benchmarks/results/feed.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import Investor, Pool, PoolLedger
from auptimate_core.testing.servers import PostgresServer

RESULTS = Path(__file__).parent / "results"
WARM_UP = 5  # the first changes pay for connections and caches: left out of the figures
POLL = 0.01


def _follow(url: str, options: dict[str, Any], n: int, ready: Any, out: Any) -> None:
    ledger = PoolLedger.from_url(url, **options)
    changes = ledger.follow(after=ledger.cursor(), timeout=60)
    ready.set()
    delays = []
    for change in changes:
        delays.append(time.time() - change.at.timestamp())
        if len(delays) == n:
            break
    ledger.close()
    out.put(delays)


def _pace() -> None:
    time.sleep(random.uniform(0.002, 0.010))


def through_the_feed(url: str, options: dict[str, Any], n: int) -> list[float]:
    """Delays (seconds) of ``n`` changes from their commit to a follower in another process."""
    ledger = PoolLedger.from_url(url, **options)
    ledger.create_pool(Pool("bench", "m"), actor="m")
    ledger.register_investor(Investor("a"))
    ledger.admit("bench", "a", actor="m")
    spawn = multiprocessing.get_context("spawn")
    ready, out = spawn.Event(), spawn.Queue()
    follower = spawn.Process(target=_follow, args=(url, options, n, ready, out))
    follower.start()
    ready.wait(60)
    time.sleep(0.2)
    for i in range(n):
        ledger.invest("bench", "a", Decimal(i + 1), actor="a", idempotency_key=f"k{i}")
        _pace()
    delays: list[float] = out.get(timeout=120)
    follower.join(60)
    ledger.close()
    return delays


def _listen(conninfo: str, n: int, ready: Any, out: Any) -> None:
    import psycopg

    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute("LISTEN bench")
    ready.set()
    delays = [time.time() - float(note.payload)
              for note in conn.notifies(timeout=120, stop_after=n)]
    conn.close()
    out.put(delays[:n])


def bare_notify(conninfo: str, n: int) -> list[float]:
    """Delays of ``n`` bare notifications from one process to another (the floor)."""
    import psycopg

    spawn = multiprocessing.get_context("spawn")
    ready, out = spawn.Event(), spawn.Queue()
    listener = spawn.Process(target=_listen, args=(conninfo, n, ready, out))
    listener.start()
    ready.wait(60)
    time.sleep(0.2)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for _ in range(n):
            conn.execute("SELECT pg_notify('bench', %s)", (repr(time.time()),))
            _pace()
    delays: list[float] = out.get(timeout=120)
    listener.join(60)
    return delays


def summary(delays: list[float]) -> dict[str, Any]:
    kept = sorted(delays[WARM_UP:])
    cuts = statistics.quantiles(kept, n=100, method="inclusive")
    return {"changes": len(kept), "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2), "max_ms": round(kept[-1] * 1000, 2),
            "mean_ms": round(statistics.fmean(kept) * 1000, 2),
            "seconds": round(cuts[49], 6)}


def run(n: int) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    with PostgresServer() as server:
        rows["follow(), PostgreSQL (LISTEN/NOTIFY wake-up, then the feed)"] = summary(
            through_the_feed(server.url(), {"schema": "bench"}, n))
        conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname={server.database}"
        rows["bare NOTIFY to LISTEN, PostgreSQL (no ledger, no feed)"] = summary(
            bare_notify(conninfo, n))
    with tempfile.TemporaryDirectory() as tmp:
        rows[f"follow(), SQLite (polling every {POLL * 1000:g} ms)"] = summary(
            through_the_feed(f"sqlite:///{Path(tmp) / 'feed.db'}",
                             {"poll_interval": POLL}, n))
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "writes": n, "peers": rows,
    }


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "feed.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Change feed: commit-to-follower latency across two processes",
        "",
        f"{report['writes']:,} investments written one at a time, 2 to 10 ms apart; a follower in "
        "another process (the first few changes left out). Milliseconds from a change's commit "
        f"time to the follower holding it. Machine: {report['machine']}.",
        "",
        "| path | changes | p50 ms | p99 ms | max ms | mean ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["peers"].items():
        lines.append(f"| {name} | {row['changes']} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['max_ms']} | {row['mean_ms']} |")
    lines += [
        "",
        "The commit time is read just before the commit, so each figure includes the commit "
        "itself. On SQLite the poll interval bounds the wait for another process's commit; on "
        "PostgreSQL the notification wakes the follower, which then reads the feed (the "
        "difference from the bare NOTIFY row).",
    ]
    (RESULTS / "feed.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--writes", type=int, default=1000)
    args = parser.parse_args()
    write(run(100 if args.quick else args.writes))
    print((RESULTS / "feed.md").read_text())


if __name__ == "__main__":
    main()
