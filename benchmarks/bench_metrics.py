"""What Prometheus metrics cost the alert engine: the same stream with metrics off and on, one run.

    python -m benchmarks.bench_metrics [--quick] [--transactions N] [--rounds R]

Peers, all fed the same generated stream with injected anomalies (threshold + spike rules on
``MemoryWindowStore``, the default store, whose calls are in-process, so the metrics' share is
not hidden behind a network round trip):

- ``process_many, metrics off``: the hooks are no-ops (what a user without the extra gets);
- ``process_many, metrics on``: ``enable_metrics`` on a fresh ``CollectorRegistry``, every hook
  counting into prometheus_client (counters per batch, latency histogram per store call);
- ``process() one by one``, off and on: one store round per transaction, the worst case for
  per-batch hooks (a tenth of the stream).

Off and on runs alternate, round after round, and each keeps its best time, so drift of a shared
machine falls on both. Also timed: one hook call, off and on. The metrics' cost is
``best(on) / best(off) - 1``; the target is under 5% for ``process_many``. Results go to
benchmarks/results/metrics.{md,json}.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
import timeit
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import Transaction, metrics
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore

from .data import anomalous_stream

RESULTS = Path(__file__).parent / "results"
TARGET = 0.05


def rules() -> list[Any]:
    return [
        ThresholdRule(limit=Decimal("250000")),
        SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                  min_count=5),
    ]


def many(txs: list[Transaction]) -> list[Any]:
    return AlertEngine(rules(), store=MemoryWindowStore()).process_many(txs)


def one_by_one(txs: list[Transaction]) -> list[Any]:
    engine = AlertEngine(rules(), store=MemoryWindowStore())
    alerts: list[Any] = []
    for tx in txs:
        alerts += engine.process(tx)
    return alerts


def once(fn: Callable[[], list[Any]], on: bool) -> tuple[float, list[Any]]:
    from prometheus_client import CollectorRegistry

    if on:
        metrics.enable_metrics(CollectorRegistry())
    else:
        metrics.disable_metrics()
    gc.collect()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        metrics.disable_metrics()


def compare(fn: Callable[[], list[Any]], rounds: int) -> dict[str, Any]:
    """Best time off and on over alternating rounds, and the cost of turning metrics on."""
    best = {"off": float("inf"), "on": float("inf")}
    alerts: dict[str, list[Any]] = {}
    for i in range(rounds):
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            seconds, alerts[mode] = once(fn, mode == "on")
            best[mode] = min(best[mode], seconds)
    keys = {mode: [(a.rule, a.state, a.transaction_id) for a in found]
            for mode, found in alerts.items()}
    assert keys["on"] == keys["off"], "metrics changed the alerts"
    return {"off_seconds": round(best["off"], 4), "on_seconds": round(best["on"], 4),
            "cost": round(best["on"] / best["off"] - 1, 4), "alerts": len(alerts["on"])}


def per_call(peer: dict[str, Any]) -> dict[str, Any]:
    """``peer`` with the extra microseconds per transaction that metrics cost."""
    extra = (peer["on_seconds"] - peer["off_seconds"]) / peer["transactions"] * 1e6
    return {**peer, "extra_us": round(extra, 2)}


def hook_cost(number: int = 200_000) -> dict[str, float]:
    """Nanoseconds per hook call, off and on (best of 5)."""
    from prometheus_client import CollectorRegistry

    def per_call(stmt: Callable[[], None]) -> float:
        return round(min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e9, 1)

    def call() -> None:
        metrics.engine_batch("MemoryWindowStore", 10_000, 0, 0)

    metrics.disable_metrics()
    off = per_call(call)
    metrics.enable_metrics(CollectorRegistry())
    try:
        on = per_call(call)
        store_call = per_call(lambda: metrics.store_call("MemoryWindowStore", "states", 0.001))
    finally:
        metrics.disable_metrics()
    return {"engine_batch_off_ns": off, "engine_batch_on_ns": on, "store_call_on_ns": store_call}


def run(transactions: int, rounds: int) -> dict[str, Any]:
    txs, _ = anomalous_stream(transactions)
    few = txs[: max(1, transactions // 10)]
    return {
        "transactions": len(txs),
        "rounds": rounds,
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}",
        "peers": {
            "process_many": per_call({"transactions": len(txs),
                                      **compare(lambda: many(txs), rounds)}),
            "process() one by one": per_call({"transactions": len(few),
                                              **compare(lambda: one_by_one(few), rounds)}),
        },
        "hooks": hook_cost(),
        "target": TARGET,
    }


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    batch = report["peers"]["process_many"]
    verdict = "under" if batch["cost"] < report["target"] else "OVER"
    noise = (" (no measurable cost: a negative share is the noise of a shared machine)"
             if batch["cost"] <= 0 else "")
    lines = [
        "# Metrics: what Prometheus costs the alert engine",
        "",
        f"{report['transactions']:,} generated transactions with injected anomalies; threshold "
        "and spike rules on MemoryWindowStore; metrics off (no-op hooks) against on "
        "(prometheus_client on a fresh registry), alternating, best of "
        f"{report['rounds']} each. Machine: {report['machine']}.",
        "",
        "| path | transactions | off: tx/s | on: tx/s | cost of metrics | alerts |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, peer in report["peers"].items():
        lines.append(
            f"| {name} | {peer['transactions']:,} | "
            f"{round(peer['transactions'] / peer['off_seconds']):,} | "
            f"{round(peer['transactions'] / peer['on_seconds']):,} | "
            f"{peer['cost'] * 100:+.1f}% | {peer['alerts']} |"
        )
    hooks = report["hooks"]
    one = report["peers"]["process() one by one"]
    lines += [
        "",
        f"`process_many` pays {batch['cost'] * 100:+.1f}% with metrics on: {verdict} the "
        f"{report['target'] * 100:.0f}% target{noise}. The engine calls the hooks once per batch "
        "(counts by status) and once per store call (latency), never per transaction; alerts "
        "and sink deliveries are counted as they happen, and they are rare.",
        "",
        f"One hook call: {hooks['engine_batch_off_ns']} ns off, {hooks['engine_batch_on_ns']} ns "
        f"on (`engine_batch`); {hooks['store_call_on_ns']} ns on for a histogram observation "
        "(`store_call`). `process()` one transaction at a time makes one batch per transaction, "
        "so there the hooks' cost is a share of a much smaller unit of work: "
        f"{one['extra_us']} µs more per call (a timed histogram observation per store call and "
        "the batch counts), small beside the request or database commit that usually surrounds "
        "such a call.",
    ]
    (RESULTS / "metrics.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stream, three rounds")
    parser.add_argument("--transactions", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = 30_000 if args.quick else args.transactions
    report = run(n, 3 if args.quick else args.rounds)
    write(report)
    print((RESULTS / "metrics.md").read_text())


if __name__ == "__main__":
    main()
