"""Throughput and alert latency of the AlertEngine against hand-written peers, in one run.

    python -m benchmarks.bench_engine [--quick] [--transactions N] [--redis]

Peers, all fed the same generated stream with injected anomalies:

- ``engine/memory``: ``AlertEngine.process_many`` (threshold + spike) on the default store,
  ``MemoryWindowStore()``;
- ``engine/columnar``: the same on ``ColumnarWindowStore()`` (numpy, a batch at a time);
- ``engine/redis``: the same on ``RedisWindowStore`` against a local redis-server (``--redis``);
- ``deque loop``: the same two rules hand-written over per-pool deques (the floor to match);
- ``minute scan``: the original brief's design: the last hour in a list, scanned every minute.

Latency is measured in event time, from the first transaction at which a burst qualifies (or
the large transaction itself) to the alert: the engine alerts on that transaction; the minute
scan alerts at the next minute boundary. The peers run in rounds, every peer once a round, and
each peer's best round counts (:mod:`benchmarks.timing`). Results go to
benchmarks/results/engine.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.domain import to_micros
from auptimate_core.store import WindowStore

from .data import anomalous_stream
from .peers_alerts import deque_loop, minute_scan
from .timing import interleaved

RESULTS = Path(__file__).parent / "results"
LIMIT = Decimal("250000")
WINDOW = timedelta(minutes=1)
BASELINE = timedelta(hours=1)
US = 1_000_000


def rules() -> list[Any]:
    return [
        ThresholdRule(limit=LIMIT),
        SpikeRule(window=WINDOW, baseline=BASELINE, factor=10, min_count=5),
    ]


def run(transactions: int, use_redis: bool, repeat: int) -> dict[str, Any]:
    txs, manifest = anomalous_stream(transactions)
    peers: dict[str, dict[str, Any]] = {}
    kwargs = dict(limit=LIMIT, window=60 * US, baseline=3600 * US, factor=10, min_count=5)

    def engine_on(store: Callable[[], WindowStore]) -> Callable[[], list[Any]]:
        return lambda: AlertEngine(rules(), store=store()).process_many(txs)

    timed = interleaved({
        "engine/memory": engine_on(MemoryWindowStore),
        "engine/columnar": engine_on(ColumnarWindowStore),
        "deque loop": lambda: deque_loop(txs, **kwargs),
        "minute scan": lambda: minute_scan(txs, **kwargs),
    }, repeat)
    for name, (seconds, found) in timed.items():
        peers[name] = {"seconds": seconds, "alerts": found}
    alerts = peers["engine/memory"]["alerts"]
    loop_alerts = peers["deque loop"]["alerts"]
    scan_alerts = peers["minute scan"]["alerts"]
    assert peers["engine/columnar"]["alerts"] == alerts, "columnar store != memory store"
    if use_redis:
        from auptimate_core.backends.redis import RedisWindowStore
        from auptimate_core.testing.servers import RedisServer

        with RedisServer() as server:
            def engine_redis() -> list[Any]:
                store = RedisWindowStore.from_url(server.url)
                store_client = getattr(store, "client", None)
                if store_client is not None:
                    store_client.flushdb()
                engine = AlertEngine(rules(), store=store)
                try:
                    return engine.process_many(txs)
                finally:
                    engine.close()

            seconds, redis_alerts = interleaved({"engine/redis": engine_redis}, 1)[
                "engine/redis"]
            peers["engine/redis"] = {"seconds": seconds, "alerts": redis_alerts}

    # Correctness first: every peer on the same stream finds the same anomalies.
    engine_keys = [(a.rule, a.state, a.transaction_id) for a in alerts]
    assert engine_keys == [(r, s, t) for r, s, t, _ in loop_alerts], "engine != deque loop"
    if "engine/redis" in peers:
        redis_keys = [(a.rule, a.state, a.transaction_id) for a in peers["engine/redis"]["alerts"]]
        assert redis_keys == engine_keys, "redis engine != memory engine"

    latency = latencies(txs, manifest, alerts, scan_alerts)
    report: dict[str, Any] = {
        "transactions": len(txs),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}",
        "peers": {},
        "latency_seconds": latency,
    }
    floor = peers["deque loop"]["seconds"]
    for name, peer in peers.items():
        report["peers"][name] = {
            "seconds": round(peer["seconds"], 4),
            "tx_per_second": round(len(txs) / peer["seconds"]),
            "time_vs_deque_loop": round(peer["seconds"] / floor, 2),
            "alerts": len(peer["alerts"]),
        }
    return report


def latencies(
    txs: list[Transaction], manifest: dict[str, Any], alerts: list[Any],
    scan: list[tuple[str, str, int, int]],
) -> dict[str, dict[str, float]]:
    """Event-time delay from each injected anomaly's qualifying transaction to its alert."""
    when = {tx.id: to_micros(tx.timestamp) for tx in txs}
    engine_delay, scan_delay = [], []
    for burst in manifest["bursts"]:
        fired = [a for a in alerts if a.rule == "spike" and a.state == "firing"
                 and a.pool_id == burst["pool_id"] and a.transaction_id in burst["ids"]]
        if not fired:
            continue
        start = when[fired[0].transaction_id]
        engine_delay.append(0.0)
        later = [at for rule, pool, at, _ in scan
                 if rule == "spike" and pool == burst["pool_id"] and at >= start]
        if later:
            scan_delay.append((min(later) - start) / US)
    for tx_id in manifest["large"]:
        engine_delay.append(0.0)
        found = [at for rule, ident, at, _ in scan if rule == "threshold" and ident == tx_id]
        if found:
            scan_delay.append((found[0] - when[tx_id]) / US)

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"n": 0}
        return {"n": len(values), "mean": round(statistics.fmean(values), 2),
                "max": round(max(values), 2)}

    return {"engine": summary(engine_delay), "minute scan": summary(scan_delay)}


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Alert engine: throughput and latency",
        "",
        f"{report['transactions']:,} generated transactions with injected anomalies; threshold "
        "250,000 and spike (1 minute against 1 hour, factor 10, min_count 5). "
        f"Machine: {report['machine']}.",
        "",
        "| peer | seconds | transactions/s | time vs deque loop | alerts |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, peer in report["peers"].items():
        lines.append(
            f"| {name} | {peer['seconds']} | {peer['tx_per_second']:,} | "
            f"{peer['time_vs_deque_loop']}x | {peer['alerts']} |"
        )
    lines += ["", "Alert latency in event time (seconds from the qualifying transaction):", "",
              "| peer | anomalies | mean | max |", "|---|---:|---:|---:|"]
    for name, lat in report["latency_seconds"].items():
        lines.append(f"| {name} | {lat.get('n', 0)} | {lat.get('mean', '-')} | "
                     f"{lat.get('max', '-')} |")
    (RESULTS / "engine.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stream, one repeat")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--redis", action="store_true", help="also run on a local Redis")
    args = parser.parse_args()
    n = 50_000 if args.quick else args.transactions
    report = run(n, args.redis, 1 if args.quick else 3)
    write(report)
    print((RESULTS / "engine.md").read_text())


if __name__ == "__main__":
    main()
