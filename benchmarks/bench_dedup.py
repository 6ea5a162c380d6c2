"""What the dedup horizon costs: the same stream with ids remembered for 24 hours (the default)
and only as long as the windows reach, in one run.

    python -m benchmarks.bench_dedup [--quick] [--transactions N] [--rounds R]

Peers, all fed the same generated stream with injected anomalies (threshold + spike rules, the
defaults of the command line), on ``MemoryWindowStore`` (exact windows, the default store):

- ``dedup 24 h``: ``MemoryWindowStore()``, a redelivery up to a day later is a duplicate;
- ``windows only``: ``MemoryWindowStore(dedup_horizon=1 µs)``: ids are remembered only while the
  windows (lateness plus the spike's reach, 66 minutes) need them, as before the horizon existed.

Each is timed two ways, per event (``engine.process(tx)`` for every transaction, as a host's
observer calls it) and per batch (``engine.process_many(txs)``), in interleaved rounds (best
round each, see benchmarks/timing.py); memory is the ids held at the end and the peak traced by
``tracemalloc`` over one separate run of each. Results go to benchmarks/results/dedup.{md,json}.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore

from .data import anomalous_stream
from .timing import interleaved

RESULTS = Path(__file__).parent / "results"
HORIZONS = {"dedup 24 h": timedelta(days=1), "windows only": timedelta(microseconds=1)}


def engine(horizon: timedelta) -> AlertEngine:
    rules = [ThresholdRule(limit=Decimal("250000")),
             SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                       min_count=5)]
    return AlertEngine(rules, store=MemoryWindowStore(dedup_horizon=horizon))


def per_event(txs: list[Transaction], horizon: timedelta) -> Callable[[], int]:
    def run() -> int:
        e = engine(horizon)
        process = e.process
        for tx in txs:
            process(tx)
        return e.stats.alerts
    return run


def per_batch(txs: list[Transaction], horizon: timedelta) -> Callable[[], int]:
    def run() -> int:
        e = engine(horizon)
        e.process_many(txs)
        return e.stats.alerts
    return run


def memory(txs: list[Transaction], horizon: timedelta) -> dict[str, int]:
    gc.collect()
    tracemalloc.start()
    try:
        e = engine(horizon)
        e.process_many(txs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = e.store.size()  # type: ignore[attr-defined]
    return {"peak_bytes": peak, "ids_held": size["ids"], "events_held": size["events"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stream, one round")
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = 20_000 if args.quick else args.transactions
    rounds = 1 if args.quick else args.rounds
    txs, _ = anomalous_stream(n)
    span = txs[-1].timestamp - txs[0].timestamp
    peers: dict[str, Callable[[], int]] = {}
    for name, horizon in HORIZONS.items():
        peers[f"{name}, process(tx) per event"] = per_event(txs, horizon)
        peers[f"{name}, process_many(txs)"] = per_batch(txs, horizon)
    timed = interleaved(peers, rounds)
    alerts = {result for _, result in timed.values()}
    assert len(alerts) == 1, f"the peers disagree on the alerts: {timed}"
    rows: dict[str, dict[str, Any]] = {}
    for name, (seconds, _) in timed.items():
        rows[name] = {"seconds": seconds, "transactions_per_second": n / seconds}
    sizes = {name: memory(txs, horizon) for name, horizon in HORIZONS.items()}
    out = {
        "benchmark": "dedup", "transactions": n, "rounds": rounds,
        "stream_span_hours": round(span / timedelta(hours=1), 1),
        "store": "MemoryWindowStore (exact windows)", "alerts": alerts.pop(),
        "python": platform.python_version(), "peers": rows, "memory": sizes,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dedup.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# The dedup horizon's cost",
        "",
        f"{n:,} transactions over {out['stream_span_hours']} hours of event time, threshold and "
        f"spike rules, `MemoryWindowStore` (exact windows), {rounds} interleaved round(s), best "
        "round each.",
        "",
        "| peer | seconds | transactions/s |",
        "|---|---:|---:|",
        *(f"| {name} | {r['seconds']:.3f} | {r['transactions_per_second']:,.0f} |"
          for name, r in rows.items()),
        "",
        "| horizon | ids held at the end | events held | peak traced memory |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {m['ids_held']:,} | {m['events_held']:,} | "
          f"{m['peak_bytes'] / 2**20:,.1f} MiB |" for name, m in sizes.items()),
        "",
    ]
    (RESULTS / "dedup.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
