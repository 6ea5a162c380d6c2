"""End to end through Redis Streams: produce, consume, alert, with 1, 2 and 4 workers.

    python -m benchmarks.bench_workers [--quick] [--transactions N]

For each worker count, on a fresh local redis-server: the workers (`auptimate worker`
processes) start, a producer appends the generated stream (sharded by pool, 16 shards), and the
clock stops when the consumer group has nothing pending or unread. Reported: transactions per
second end to end, the Redis server's CPU seconds over the run (its share of one core is the
scaling limit of one server), and, as peers in the same run, one in-process engine on the same
Redis store (no stream) and one on the memory store.

Results go to benchmarks/results/workers.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.domain import Transaction
from auptimate_core.integrations.redis_streams import StreamProducer, lag
from auptimate_core.generate import SyntheticStream
from auptimate_core.testing.servers import RedisServer

from .bench_redis_store import server_cpu

RESULTS = Path(__file__).parent / "results"
WORKER = [sys.executable, "-c", "from auptimate_core.cli import main; main()", "worker",
          "--quiet", "--stream", "bench"]


def rules() -> list[Any]:
    from datetime import timedelta

    return [ThresholdRule(limit=Decimal("250000")),
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                      factor=Decimal(10), min_count=5)]


def through_workers(txs: list[Transaction], workers: int) -> dict[str, float]:
    with RedisServer() as server:
        StreamProducer(server.url, "bench", shards=16).close()
        procs = [subprocess.Popen([*WORKER, "--store", server.url, "--consumer", f"w{i}"],
                                  stderr=subprocess.DEVNULL) for i in range(workers)]
        try:
            time.sleep(1.0)  # let the workers start and take their shards
            cpu = server_cpu(server.url)
            start = time.perf_counter()
            producer = StreamProducer(server.url, "bench")
            producer.send(txs)
            produced = time.perf_counter() - start
            while lag(server.url, "bench").total:
                time.sleep(0.05)
            seconds = time.perf_counter() - start
            cpu = server_cpu(server.url) - cpu
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
    return {"seconds": seconds, "produce_seconds": produced, "server_cpu": cpu}


def in_process(txs: list[Transaction], store: str) -> dict[str, float]:
    if store == "memory":
        engine = AlertEngine(rules())
        start = time.perf_counter()
        engine.process_many(txs)
        return {"seconds": time.perf_counter() - start}
    with RedisServer() as server:
        engine = AlertEngine(rules(), store=RedisWindowStore.from_url(server.url))
        cpu = server_cpu(server.url)
        start = time.perf_counter()
        engine.process_many(txs)
        seconds = time.perf_counter() - start
        out = {"seconds": seconds, "server_cpu": server_cpu(server.url) - cpu}
        engine.close()
    return out


def run(n: int, counts: tuple[int, ...]) -> dict[str, Any]:
    txs = list(SyntheticStream(n, seed=21, anomalies=True).transactions())
    rows: dict[str, dict[str, float]] = {}
    for workers in counts:
        rows[f"{workers} worker{'s' if workers > 1 else ''} (Redis Streams)"] = through_workers(
            txs, workers)
    rows["1 engine in process, Redis store (no stream)"] = in_process(txs, "redis")
    rows["1 engine in process, memory store"] = in_process(txs, "memory")
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "transactions": n, "rows": {}}
    for name, row in rows.items():
        entry: dict[str, Any] = {"seconds": round(row["seconds"], 2),
                                 "per_second": round(n / row["seconds"])}
        if "server_cpu" in row:
            entry["redis_cpu_seconds"] = round(row["server_cpu"], 2)
            entry["redis_busy"] = round(row["server_cpu"] / row["seconds"], 2)
        if "produce_seconds" in row:
            entry["produce_per_second"] = round(n / row["produce_seconds"])
        report["rows"][name] = entry
    return report


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workers.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Workers: end to end through Redis Streams",
        "",
        f"{report['transactions']:,} generated transactions with injected anomalies, threshold "
        "and spike rules, 16 shards, one local redis-server. Machine: "
        f"{report['machine']}.",
        "",
        "| run | seconds | transactions/s | Redis CPU s | Redis busy (share of a core) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in report["rows"].items():
        lines.append(f"| {name} | {row['seconds']} | {row['per_second']:,} | "
                     f"{row.get('redis_cpu_seconds', '-')} | {row.get('redis_busy', '-')} |")
    lines += [
        "",
        "Workers and the Redis server share the machine's cores, so past the point where Redis "
        "is busy most of a core, more workers cannot help: more Redis servers (a Redis Cluster,"
        " one stream per shard of pools) can. See docs/workers.md.",
    ]
    (RESULTS / "workers.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transactions", type=int, default=100_000)
    args = parser.parse_args()
    n = 10_000 if args.quick else args.transactions
    write(run(n, (1, 2, 4)))
    print((RESULTS / "workers.md").read_text())


if __name__ == "__main__":
    main()
