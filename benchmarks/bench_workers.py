"""End to end through Redis Streams: produce, consume, alert, with 1, 2 and 4 workers.

    python -m benchmarks.bench_workers [--quick] [--transactions N]

For each worker count, on a fresh local redis-server: the workers (`auptimate worker`
processes, the default threshold and spike rules) start, a producer appends the generated
stream (sharded by pool, 16 shards), and the clock stops when the consumer group has nothing
pending or unread. Reported: transactions per second end to end, the Redis server's CPU seconds
over the run (its share of one core is the scaling limit of one server), and, as peers in the
same run, one in-process engine on the same Redis store (no stream) and one on the memory store.
Every run's alerts (the workers' alert log, the in-process engines' returns) are checked
against the in-process engine on the memory store: the same (rule, state, transaction) set.

Latency: one worker, and the producer appending an alert-heavy stream (a third of the
transactions over the threshold) in small chunks at a steady rate well under the worker's
throughput; for each alert, the time from its transaction's entry in the stream to the alert's
entry in the alert log, both read from the entry ids (the Redis server's clock, in whole
milliseconds), p50 and p99.

Results go to benchmarks/results/workers.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.domain import Transaction
from auptimate_core.generate import SyntheticStream
from auptimate_core.integrations.redis_streams import StreamProducer, lag, read_alerts
from auptimate_core.testing.servers import RedisServer

from .data import with_share_over

RESULTS = Path(__file__).parent / "results"
STREAM = "bench"
WORKER = [sys.executable, "-c", "from auptimate_core.cli import main; main()", "worker",
          "--quiet", "--stream", STREAM]
LATENCY_RATE = 2_000  # transactions a second the producer appends in the latency run
LATENCY_CHUNK = 20

Key = tuple[str, str, str | None]


def server_cpu(url: str) -> float:
    """CPU seconds the redis-server process has used so far (INFO cpu)."""
    import redis

    with redis.Redis.from_url(url) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def rules() -> list[Any]:
    from datetime import timedelta

    return [ThresholdRule(limit=Decimal("250000")),
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                      factor=Decimal(10), min_count=5)]


def keys(alerts: list[Alert]) -> set[Key]:
    return {(a.rule, a.state, a.transaction_id) for a in alerts}


class Workers:
    """``count`` worker processes on ``url`` until the block ends."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Workers:
        StreamProducer(self.url, STREAM, shards=16).close()
        self.procs = [subprocess.Popen([*WORKER, "--store", self.url, "--consumer", f"w{i}"],
                                       stderr=subprocess.DEVNULL) for i in range(self.count)]
        time.sleep(1.0)  # let the workers start and take their shards
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=60)


def drained(url: str) -> None:
    while lag(url, STREAM).total:
        time.sleep(0.01)


def through_workers(txs: list[Transaction], workers: int) -> dict[str, Any]:
    with RedisServer() as server, Workers(server.url, workers):
        cpu = server_cpu(server.url)
        start = time.perf_counter()
        producer = StreamProducer(server.url, STREAM)
        producer.send(txs)
        produced = time.perf_counter() - start
        drained(server.url)
        seconds = time.perf_counter() - start
        cpu = server_cpu(server.url) - cpu
        found = read_alerts(server.url, STREAM)
    return {"seconds": seconds, "produce_seconds": produced, "server_cpu": cpu,
            "alerts": keys(found), "logged": len(found)}


def latency(txs: list[Transaction]) -> dict[str, Any]:
    """One worker; the producer appends ``txs`` at LATENCY_RATE a second in small chunks.
    Milliseconds from each alerting transaction's entry to its alert's entry in the log."""
    import redis

    from auptimate_core.integrations.alert_log import alerts_key

    with RedisServer() as server, Workers(server.url, 1):
        producer = StreamProducer(server.url, STREAM)
        entry: dict[str, str] = {}
        pause = LATENCY_CHUNK / LATENCY_RATE
        next_at = time.perf_counter()
        for i in range(0, len(txs), LATENCY_CHUNK):
            chunk = txs[i:i + LATENCY_CHUNK]
            for tx, entry_id in zip(chunk, producer.send(chunk)):
                entry[tx.id] = entry_id
            next_at += pause
            time.sleep(max(0.0, next_at - time.perf_counter()))
        drained(server.url)
        with redis.Redis.from_url(server.url) as client:
            logged = client.xrange(alerts_key(STREAM))
    delays, found = [], []
    for log_id, fields in logged:
        alert = Alert.from_dict(json.loads(fields[b"alert"]))
        found.append(alert)
        delays.append(_ms(log_id.decode()) - _ms(entry[alert.transaction_id or ""]))
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {"transactions": len(txs), "rate": LATENCY_RATE, "alerts": len(delays),
            "p50_ms": cuts[49], "p99_ms": cuts[98], "max_ms": max(delays),
            "alert_keys": keys(found)}


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def in_process(txs: list[Transaction], store: str) -> dict[str, Any]:
    if store == "memory":
        engine = AlertEngine(rules())
        start = time.perf_counter()
        found = engine.process_many(txs)
        return {"seconds": time.perf_counter() - start, "alerts": keys(found),
                "logged": len(found)}
    with RedisServer() as server:
        engine = AlertEngine(rules(), store=RedisWindowStore.from_url(server.url))
        cpu = server_cpu(server.url)
        start = time.perf_counter()
        found = engine.process_many(txs)
        seconds = time.perf_counter() - start
        out = {"seconds": seconds, "server_cpu": server_cpu(server.url) - cpu,
               "alerts": keys(found), "logged": len(found)}
        engine.close()
    return out


def run(n: int, counts: tuple[int, ...], latency_n: int) -> dict[str, Any]:
    txs = list(SyntheticStream(n, seed=21, anomalies=True).transactions())
    rows: dict[str, dict[str, Any]] = {}
    reference = in_process(txs, "memory")
    for workers in counts:
        rows[f"{workers} worker{'s' if workers > 1 else ''} (Redis Streams)"] = through_workers(
            txs, workers)
    rows["1 engine in process, Redis store (no stream)"] = in_process(txs, "redis")
    rows["1 engine in process, memory store"] = reference
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "transactions": n, "alerts": len(reference["alerts"]), "rows": {}}
    for name, row in rows.items():
        entry: dict[str, Any] = {"seconds": round(row["seconds"], 2),
                                 "per_second": round(n / row["seconds"]),
                                 "alerts": row["logged"],
                                 "same_alerts": row["alerts"] == reference["alerts"]}
        if "server_cpu" in row:
            entry["redis_cpu_seconds"] = round(row["server_cpu"], 2)
            entry["redis_busy"] = round(row["server_cpu"] / row["seconds"], 2)
        if "produce_seconds" in row:
            entry["produce_per_second"] = round(n / row["produce_seconds"])
        report["rows"][name] = entry
    heavy = with_share_over(
        list(SyntheticStream(latency_n, seed=22, anomalies=True).transactions()), 1 / 3)
    found = latency(heavy)
    expected = keys(AlertEngine(rules()).process_many(heavy))
    found["same_alerts"] = found.pop("alert_keys") == expected
    report["latency"] = found
    return report


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workers.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Workers: end to end through Redis Streams",
        "",
        f"{report['transactions']:,} generated transactions with injected anomalies, threshold "
        "and spike rules, 16 shards, one local redis-server; one run each. Alerts are compared "
        "with those of the in-process engine on the memory store "
        f"({report['alerts']} alerts). Machine: {report['machine']}.",
        "",
        "| run | seconds | transactions/s | alerts | same alerts | Redis CPU s | "
        "Redis busy (share of a core) |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, row in report["rows"].items():
        lines.append(f"| {name} | {row['seconds']} | {row['per_second']:,} | {row['alerts']} | "
                     f"{'yes' if row['same_alerts'] else 'NO'} | "
                     f"{row.get('redis_cpu_seconds', '-')} | {row.get('redis_busy', '-')} |")
    lat = report["latency"]
    lines += [
        "",
        f"Latency through one worker: {lat['transactions']:,} transactions (a third over the "
        f"threshold) appended {LATENCY_CHUNK} at a time at {lat['rate']:,} a second; from a "
        "transaction's entry in the stream to its alert's entry in the alert log (Redis's "
        "clock, whole milliseconds):",
        "",
        "| alerts | same alerts | p50 ms | p99 ms | max ms |",
        "|---:|---|---:|---:|---:|",
        f"| {lat['alerts']:,} | {'yes' if lat['same_alerts'] else 'NO'} | {lat['p50_ms']:g} | "
        f"{lat['p99_ms']:g} | {lat['max_ms']:g} |",
        "",
        "Workers and the Redis server share the machine's cores, so past the point where Redis "
        "is busy most of a core, more workers cannot help: more Redis servers (a Redis Cluster,"
        " one stream per shard of pools) can. See docs/workers.md.",
    ]
    (RESULTS / "workers.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--latency-transactions", type=int, default=10_000)
    args = parser.parse_args()
    n = 10_000 if args.quick else args.transactions
    report = run(n, (1, 2, 4), 2_000 if args.quick else args.latency_transactions)
    write(report)
    print((RESULTS / "workers.md").read_text())
    wrong = [name for name, row in report["rows"].items() if not row["same_alerts"]]
    if wrong or not report["latency"]["same_alerts"]:
        raise SystemExit(f"alerts differ from the in-process engine's: {wrong or ['latency']}")


if __name__ == "__main__":
    main()
