"""The AlertEngine on the path a user takes, against the same rules hand-written, in one run.

    python -m benchmarks.bench_engine [--quick] [--transactions N] [--pools P] [--redis]

Every case runs the threshold and spike rules (the command line's defaults: over 250,000; 5 in
a minute and 10x the hour's rate) on generated streams, and every engine's alerts are checked
against the hand-written loop's (rule, state and transaction of each):

- **paths**: ``engine.process(tx)`` once per transaction, as a host's observer calls it, on the
  default store (``AlertEngine(rules)``: ``MemoryWindowStore``); ``engine.process_many(txs)`` on
  it (batches of the engine's default 10,000); ``process_many`` on ``ColumnarWindowStore``;
  ``process_many`` on ``RedisWindowStore`` (``--redis``, one local redis-server); the same
  rules hand-written over per-pool deques, one transaction at a time (the floor to match); the
  original brief's minute scan (the last hour in a list, scanned every minute);
- **one call per event on the columnar store**: ``process(tx)`` on ``ColumnarWindowStore``,
  on the stream's first few thousand transactions (it is built for batches), beside the default
  store and the loop on the same transactions;
- **history**: ``process(tx)`` on a stream that follows a history in which 100, then 100,000
  other pools fired a spike and saw it resolve (the history fed untimed, by ``process_many``);
- **alert-heavy**: a third of the transactions over the threshold, on a fresh engine;
- **the cost of an alert**: the same stream under the same rules, once able to alert and once
  not (a threshold above every amount; a spike needing more transactions than any minute
  holds), back to back in each of at least five rounds: the median difference over the alerts
  raised is what raising one costs;
- **latency**: wall clock from a transaction's arrival (the call that hands it to the engine)
  to its alert reaching a sink (a plain callable, called in the engine's thread), p50 and p99
  over every alert of the alert-heavy stream;
- **scaling**: throughput against the number of pools (10, 1,000, 100,000) and against the
  share of transactions that alert; with ``--redis``, ``process_many`` on Redis against the
  engine's batch size.

Every case runs its peers in interleaved rounds, every peer once a round, each keeping its best
round (:mod:`benchmarks.timing`). Results: benchmarks/results/engine.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import Transaction
from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.columns import TransactionColumns
from auptimate_core.money import MAX_AMOUNT

from .data import anomalous_stream, history, with_share_over
from .peers_alerts import DequeLoop, minute_scan, threshold_floor
from .timing import Timing, staged

RESULTS = Path(__file__).parent / "results"
LIMIT = Decimal("250000")
US = 1_000_000
WINDOW, BASELINE, FACTOR, MIN_COUNT = 60 * US, 3600 * US, 10, 5
BATCH = 10_000  # the engine's default batch size
POOL_COUNTS = (10, 1_000, 100_000)
HISTORIES = (100, 100_000)
SHARES = (0.0, 0.01, 0.1, 1 / 3, 1.0)
REDIS_BATCHES = (100, 1_000, 5_000, 10_000)
PER_EVENT_COLUMNAR = 5_000

LOOP = "hand-written deque loop, per event"
PROCESS = "process(tx) per event, MemoryWindowStore (default)"
MANY = f"process_many, MemoryWindowStore (default), batches of {BATCH:,}"
COLUMNS = f"process_columns, MemoryWindowStore (default), batches of {BATCH:,}"
COLUMNAR = f"process_many, ColumnarWindowStore, batches of {BATCH:,}"
COLUMNAR_ONE = "process(tx) per event, ColumnarWindowStore"
REDIS = f"process_many, RedisWindowStore, batches of {BATCH:,}"
SCAN = "minute scan (the brief's design), per event"
FLOOR = ("hand-written floor: ids, event times and an Alert per transaction over the threshold, "
         "no spike rule, per event")

Key = tuple[str, str, str | None]


def rules(limit: Decimal = LIMIT, min_count: int = MIN_COUNT) -> list[Any]:
    return [
        ThresholdRule(limit=limit),
        SpikeRule(window=timedelta(microseconds=WINDOW), baseline=timedelta(microseconds=BASELINE),
                  factor=FACTOR, min_count=min_count),
    ]


def new_loop() -> DequeLoop:
    return DequeLoop(limit=LIMIT, window=WINDOW, baseline=BASELINE, factor=FACTOR,
                     min_count=MIN_COUNT)


def keys(alerts: Sequence[Alert]) -> list[Key]:
    return [(a.rule, a.state, a.transaction_id) for a in alerts]


def loop_keys(found: Sequence[tuple[str, str, str, int]]) -> list[Key]:
    return [(rule, state, tx_id) for rule, state, tx_id, _ in found]


# -- the paths, each a preparation (untimed) returning the timed call --------------------------


def per_event(txs: list[Transaction], engine: Callable[[], AlertEngine] | None = None,
              before: list[Transaction] | None = None) -> Callable[[], Callable[[], Any]]:
    """``process(tx)`` for each transaction, on a fresh engine fed ``before`` first."""
    def prepare() -> Callable[[], list[Key]]:
        e = engine() if engine else AlertEngine(rules())
        if before:
            e.process_many(before)

        def call() -> list[Key]:
            process = e.process
            found: list[Alert] = []
            for tx in txs:
                found += process(tx)
            return keys(found)
        return call
    return prepare


def batched(txs: list[Transaction], engine: Callable[[], AlertEngine] | None = None
            ) -> Callable[[], Callable[[], Any]]:
    """``process_many(txs)`` on a fresh engine."""
    def prepare() -> Callable[[], list[Key]]:
        e = engine() if engine else AlertEngine(rules())
        return lambda: keys(e.process_many(txs))
    return prepare


def columned(txs: list[Transaction]) -> Callable[[], Callable[[], Any]]:
    """``process_columns`` on a fresh engine, the columns made beforehand (untimed: a reader
    that has columns hands them over as they are)."""
    columns = TransactionColumns.from_transactions(txs)

    def prepare() -> Callable[[], list[Key]]:
        e = AlertEngine(rules())
        return lambda: keys(e.process_columns(columns))
    return prepare


def looped(txs: list[Transaction], before: list[Transaction] | None = None
           ) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], list[Key]]:
        loop = new_loop()
        if before:
            loop.feed(before)
        return lambda: loop_keys(loop.feed(txs))
    return prepare


def floored(txs: list[Transaction]) -> Callable[[], Callable[[], Any]]:
    # The floor writes the rule's message out again: its alerts must be the rule's, whole.
    head, rule = txs[:1_000], ThresholdRule(limit=LIMIT)
    assert threshold_floor(head, limit=LIMIT) == [
        alert for tx in head if (alert := rule.check(tx)) is not None]

    def prepare() -> Callable[[], list[Key]]:
        return lambda: keys(threshold_floor(txs, limit=LIMIT))
    return prepare


def columnar() -> AlertEngine:
    return AlertEngine(rules(), store=ColumnarWindowStore())


def measure(txs: list[Transaction], peers: dict[str, Callable[[], Callable[[], Any]]],
            rounds: int, reference: str = LOOP, partial: dict[str, str] | None = None
            ) -> dict[str, dict[str, Any]]:
    """Interleaved rounds of ``peers`` on ``txs``; each row's rate, its rate against the
    reference's, its alerts, and whether they are the reference's alerts (for a peer named in
    ``partial``, the reference's alerts of the rule it names)."""
    timed = staged(peers, rounds)
    agreed = timed[reference].result
    base = len(txs) / timed[reference].best
    rows = {}
    for name, timing in timed.items():
        rows[name] = row(len(txs), timing, base)
        rule = (partial or {}).get(name)
        if rule is None:
            rows[name]["same_alerts"] = timing.result == agreed
        else:
            rows[name]["same_alerts"] = timing.result == [k for k in agreed if k[0] == rule]
            rows[name]["compared"] = f"its {rule} alerts"
    wrong = [name for name, r in rows.items() if not r["same_alerts"]]
    assert not wrong, f"alerts differ from the {reference}'s: {wrong}"
    return rows


def row(n: int, timing: Timing, base: float) -> dict[str, Any]:
    rate = n / timing.best
    return {"transactions": n, "seconds": round(timing.best, 4),
            "tx_per_second": round(rate), "vs_loop": round(rate / base, 3),
            "spread": round(timing.spread, 3), "alerts": len(timing.result)}


# -- the cases -----------------------------------------------------------------------------


def main_case(txs: list[Transaction], rounds: int, url: str | None) -> dict[str, Any]:
    peers = {LOOP: looped(txs), PROCESS: per_event(txs), MANY: batched(txs),
             COLUMNS: columned(txs), COLUMNAR: batched(txs, columnar)}
    if url is not None:
        from auptimate_core.backends.redis import RedisWindowStore

        peers[REDIS] = redis_batched(txs, url, BATCH, RedisWindowStore)
    timed = staged({**peers, SCAN: lambda: lambda: minute_scan(
        txs, limit=LIMIT, window=WINDOW, baseline=BASELINE, factor=FACTOR,
        min_count=MIN_COUNT)}, rounds)
    base = len(txs) / timed[LOOP].best
    out: dict[str, Any] = {}
    for name, timing in timed.items():
        out[name] = row(len(txs), timing, base)
        out[name]["same_alerts"] = timing.result == timed[LOOP].result
    # The minute scan decides once a minute, on other figures: its alerts are not compared.
    out[SCAN]["same_alerts"] = None
    wrong = [name for name, r in out.items() if r["same_alerts"] is False]
    assert not wrong, f"alerts differ from the loop's: {wrong}"
    return {"rows": out, "scan_alerts": timed[SCAN].result}


def redis_batched(txs: list[Transaction], url: str, batch: int, store_type: Any
                  ) -> Callable[[], Callable[[], Any]]:
    """``process_many`` on a Redis store emptied beforehand (untimed)."""
    def prepare() -> Callable[[], list[Key]]:
        import redis

        with redis.Redis.from_url(url) as client:
            client.flushdb()
        engine = AlertEngine(rules(), store=store_type.from_url(url), batch_size=batch)

        def call() -> list[Key]:
            try:
                return keys(engine.process_many(txs))
            finally:
                engine.close()
        return call
    return prepare


def history_case(txs: list[Transaction], rounds: int, sizes: Sequence[int]) -> dict[str, Any]:
    peers: dict[str, Callable[[], Callable[[], Any]]] = {}
    befores = {size: history(size) for size in sizes}
    for size, before in befores.items():
        peers[f"{PROCESS}, {size:,} pools alerted before"] = per_event(txs, before=before)
        peers[f"{LOOP}, {size:,} pools alerted before"] = looped(txs, before=before)
    timed = staged(peers, rounds)
    out: dict[str, Any] = {"transactions": len(txs), "histories": list(sizes), "rows": {}}
    reference = timed[f"{LOOP}, {sizes[0]:,} pools alerted before"].result
    for size in sizes:
        base = len(txs) / timed[f"{LOOP}, {size:,} pools alerted before"].best
        for name in (f"{PROCESS}, {size:,} pools alerted before",
                     f"{LOOP}, {size:,} pools alerted before"):
            out["rows"][name] = row(len(txs), timed[name], base)
            out["rows"][name]["same_alerts"] = timed[name].result == reference
            out["rows"][name]["history_pools"] = size
    wrong = [name for name, r in out["rows"].items() if not r["same_alerts"]]
    assert not wrong, f"alerts differ after a history: {wrong}"
    first = out["rows"][f"{PROCESS}, {sizes[0]:,} pools alerted before"]["tx_per_second"]
    last = out["rows"][f"{PROCESS}, {sizes[-1]:,} pools alerted before"]["tx_per_second"]
    out["slowdown"] = round(first / last, 3)
    # The loop keeps every pool and id it saw, so the history slows it too: the same figure
    # for it, beside ours, says how much of ours is the history's weight on any program.
    loop_first = out["rows"][f"{LOOP}, {sizes[0]:,} pools alerted before"]["tx_per_second"]
    loop_last = out["rows"][f"{LOOP}, {sizes[-1]:,} pools alerted before"]["tx_per_second"]
    out["loop_slowdown"] = round(loop_first / loop_last, 3)
    return out


def alert_cost(name: str, txs: list[Transaction], loud: list[Any], quiet: list[Any],
               rounds: int) -> dict[str, Any]:
    """Microseconds per alert: the same stream under rules that alert and rules that do not.

    The two run back to back in every round; each round gives one difference, and the median
    of the rounds' differences over the alerts raised is the figure (a drift of the machine
    falls on both runs of a pair)."""
    def engine(chosen: list[Any]) -> Callable[[], AlertEngine]:
        return lambda: AlertEngine(chosen)

    peers = {
        "per event, alerting": per_event(txs, engine(loud)),
        "per event, silent": per_event(txs, engine(quiet)),
        "batches, alerting": batched(txs, engine(loud)),
        "batches, silent": batched(txs, engine(quiet)),
    }
    timed = staged(peers, rounds)
    out: dict[str, Any] = {"transactions": len(txs), "rounds": rounds}
    for path in ("per event", "batches"):
        loud_t, quiet_t = timed[f"{path}, alerting"], timed[f"{path}, silent"]
        raised = len(loud_t.result) - len(quiet_t.result)
        assert raised > 0, f"{name}: the alerting rules raised no more alerts than the silent"
        each = sorted((a - q) / raised * 1e6 for a, q in zip(loud_t.times, quiet_t.times))
        out[path] = {
            "alerting_seconds": round(loud_t.best, 4), "silent_seconds": round(quiet_t.best, 4),
            "alerts": raised, "us_per_alert": round(statistics.median(each), 2),
            "us_low": round(each[0], 2), "us_high": round(each[-1], 2),
            "spread": round(max(loud_t.spread, quiet_t.spread), 3),
        }
    return out


def latency_case(txs: list[Transaction]) -> dict[str, Any]:
    """Wall clock from a transaction's arrival to its alert reaching a sink, one pass each."""
    out: dict[str, Any] = {"transactions": len(txs)}
    paths: list[tuple[str, int]] = [(PROCESS, 1), ("process_many, MemoryWindowStore "
                                                   "(default), batches of 1,000", 1_000),
                                    (MANY, BATCH)]
    agreed: list[Key] | None = None
    for name, size in paths:
        arrived = [0]
        delays: list[int] = []
        found: list[Alert] = []

        def sink(alert: Alert, delays: list[int] = delays, found: list[Alert] = found,
                 arrived: list[int] = arrived) -> None:
            delays.append(time.perf_counter_ns() - arrived[0])
            found.append(alert)

        engine = AlertEngine(rules(), sinks=[sink])
        if size == 1:
            for tx in txs:
                arrived[0] = time.perf_counter_ns()
                engine.process(tx)
        else:
            for i in range(0, len(txs), size):
                arrived[0] = time.perf_counter_ns()
                engine.process_many(txs[i:i + size])
        engine.close()
        if agreed is None:
            agreed = keys(found)
        assert keys(found) == agreed, f"latency pass of {name}: other alerts"
        out[name] = percentiles(delays, 1e3, "us") | {"batch": size}
    return out


def percentiles(values: Sequence[float], per_unit: float, unit: str) -> dict[str, Any]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"alerts": len(values), f"p50_{unit}": round(cuts[49] / per_unit, 1),
            f"p99_{unit}": round(cuts[98] / per_unit, 1),
            f"max_{unit}": round(max(values) / per_unit, 1)}


def event_time_delay(txs: list[Transaction], loop: list[tuple[str, str, str, int]],
                     scan: list[tuple[str, str, int, int]]) -> dict[str, Any]:
    """Event time from the transaction at which the rules first hold (the loop's alert) to
    the minute scan's alert for the same pool or transaction."""
    pool_of = {tx.id: tx.pool_id for tx in txs}
    delays = []
    for rule, state, tx_id, at in loop:
        if state != "firing":
            continue
        if rule == "threshold":
            found = [when for r, ident, when, _ in scan if r == "threshold" and ident == tx_id]
        else:
            found = [when for r, pool, when, _ in scan
                     if r == "spike" and pool == pool_of[tx_id] and when >= at]
        if found:
            delays.append((min(found) - at) / US)
    if not delays:
        return {"alerts": 0}
    return {"alerts": len(delays), "mean_s": round(statistics.fmean(delays), 2),
            "max_s": round(max(delays), 2)}


def scaling_pools(n: int, counts: Sequence[int], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pools in counts:
        txs, _ = anomalous_stream(n, pools=pools)
        out[str(pools)] = measure(txs, {LOOP: looped(txs), PROCESS: per_event(txs),
                                        MANY: batched(txs), COLUMNAR: batched(txs, columnar)},
                                  rounds)
    return {"transactions": n, "by_pools": out}


def scaling_alerts(txs: list[Transaction], shares: Sequence[float], rounds: int
                   ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for share in shares:
        loud = with_share_over(txs, share)
        rows = measure(loud, {LOOP: looped(loud), PROCESS: per_event(loud),
                              MANY: batched(loud), COLUMNAR: batched(loud, columnar)}, rounds)
        out[f"{share:.3f}"] = {"share_over": share,
                               "alerts_per_1000": round(rows[LOOP]["alerts"] / len(loud) * 1000,
                                                        1),
                               "rows": rows}
    return {"transactions": len(txs), "by_share": out}


def redis_sweep(txs: list[Transaction], url: str, rounds: int) -> dict[str, Any]:
    from auptimate_core.backends.redis import RedisWindowStore

    peers = {f"batches of {b:,}": redis_batched(txs, url, b, RedisWindowStore)
             for b in REDIS_BATCHES}
    timed = staged(peers, rounds)
    reference = next(iter(timed.values())).result
    out: dict[str, Any] = {}
    for (name, timing), size in zip(timed.items(), REDIS_BATCHES):
        assert timing.result == reference, f"redis {name}: other alerts"
        out[str(size)] = {"batch": size, "seconds": round(timing.best, 4),
                          "tx_per_second": round(len(txs) / timing.best),
                          "spread": round(timing.spread, 3), "alerts": len(timing.result)}
    return {"transactions": len(txs), "by_batch": out}


def run(n: int, pools: int, use_redis: bool, rounds: int, quick: bool) -> dict[str, Any]:
    txs, _ = anomalous_stream(n, pools=pools)
    scale_n = min(n, 20_000 if quick else 100_000)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
                   f"{platform.python_version()}, {platform.system()}",
        "transactions": n, "pools": pools, "rounds": rounds, "batch": BATCH,
        "rules": "threshold 250,000; spike 5 in 1 minute at 10x the hour's rate",
    }

    def step(label: str) -> None:
        print(f"  {label} ({time.strftime('%H:%M:%S')})", flush=True)

    server = None
    if use_redis:
        from auptimate_core.testing.servers import RedisServer

        server = RedisServer()
        server.__enter__()
    try:
        url = server.url if server is not None else None
        step("paths")
        main = main_case(txs, rounds, url)
        report["peers"] = main["rows"]
        loop_alerts = new_loop().feed(txs)
        report["event_time_delay"] = {SCAN: event_time_delay(txs, loop_alerts,
                                                              main["scan_alerts"])}
        step("one call per event on the columnar store")
        head = txs[:min(n, PER_EVENT_COLUMNAR)]
        report["per_event_columnar"] = measure(head, {
            LOOP: looped(head), PROCESS: per_event(head), COLUMNAR_ONE: per_event(head, columnar),
        }, rounds)
        step("history")
        sizes = (100, 5_000) if quick else HISTORIES
        report["history"] = history_case(txs[:scale_n], rounds, sizes)
        step("alert-heavy")
        heavy = with_share_over(txs, 1 / 3)
        report["alert_heavy"] = {"share_over": 1 / 3, "rows": measure(heavy, {
            LOOP: looped(heavy), PROCESS: per_event(heavy), MANY: batched(heavy),
            COLUMNS: columned(heavy), COLUMNAR: batched(heavy, columnar),
            FLOOR: floored(heavy)}, rounds, partial={FLOOR: "threshold"}),
            "floor_note": FLOOR_NOTE}
        step("alert cost")
        cost_n = min(n, 10_000 if quick else 50_000)
        cost_rounds = max(rounds, 5)
        report["alert_cost"] = {
            "threshold": alert_cost("threshold", with_share_over(txs[:cost_n], 1.0), rules(),
                                    rules(limit=MAX_AMOUNT), cost_rounds),
            "spike": alert_cost("spike", history(cost_n // 6), rules(), rules(min_count=10**6),
                                cost_rounds),
        }
        step("latency")
        report["latency"] = latency_case(heavy[:scale_n])
        step("scaling: pools")
        report["scaling_pools"] = scaling_pools(scale_n, POOL_COUNTS, rounds)
        step("scaling: alerts")
        report["scaling_alerts"] = scaling_alerts(txs[:scale_n], SHARES, rounds)
        if url is not None:
            step("scaling: redis batches")
            report["redis_batches"] = redis_sweep(txs[:min(n, 10_000 if quick else 50_000)],
                                                  url, rounds)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return report


# -- the module's own report -----------------------------------------------------------------


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| path | transactions | transactions/s | x the loop's rate | alerts | "
             "same alerts as the loop | worst round slower by |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['transactions']:,} | {r['tx_per_second']:,} | "
                     f"{_ratio(r['vs_loop'])} | {r['alerts']:,} | "
                     f"{_same(r['same_alerts'], r.get('compared'))} | {r['spread'] * 100:.0f}% |")
    return lines


def _ratio(ratio: float) -> str:
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def _same(same: bool | None, compared: str | None = None) -> str:
    if same is None:
        return "not compared (other rules)"
    return f"{compared}: {'yes' if same else 'NO'}" if compared else "yes" if same else "NO"


def write(report: dict[str, Any], out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine.json").write_text(json.dumps(report, indent=2) + "\n")
    n, rounds = report["transactions"], report["rounds"]
    lines = [
        "# Alert engine: the path a user takes, against the hand-written loop",
        "",
        f"Rules: {report['rules']}. Each figure is the best of {rounds} interleaved round(s), "
        "every path once a round; the last column is how much slower the worst round was "
        f"(the run's noise). Machine: {report['machine']}.",
        "",
        f"## Paths: {n:,} generated transactions over {report['pools']:,} pools (a quiet "
        "stream with a few injected anomalies)",
        "",
        *_table(report["peers"]),
        "",
        "The minute scan alerts at the next minute boundary: "
        + _delay(report["event_time_delay"][SCAN]) + ".",
        "",
        f"## One call per event on the columnar store: the first "
        f"{next(iter(report['per_event_columnar'].values()))['transactions']:,} transactions",
        "",
        *_table(report["per_event_columnar"]),
    ]
    hist = report["history"]
    lines += [
        "", f"## After a history: {hist['transactions']:,} transactions, after "
        + " and after ".join(f"{s:,}" for s in hist["histories"])
        + " other pools fired a spike and saw it resolve (fed untimed)", "",
        *_table(hist["rows"]), "",
        f"`process(tx)` after {hist['histories'][0]:,} pools alerted is "
        f"{hist['slowdown']:.2f}x its rate after {hist['histories'][-1]:,}; the hand-written "
        f"loop's is {hist['loop_slowdown']:.2f}x its own.",
    ]
    lines += ["", f"## Alert-heavy: {n:,} transactions, a third over the threshold, fresh "
              "engines", "", *_table(report["alert_heavy"]["rows"]), "", FLOOR_NOTE]
    lines += ["", "## What raising an alert costs", "",
              "The same stream under rules that alert and under rules that cannot (a threshold "
              "above every amount; a spike needing a million transactions), back to back in "
              "each round: the extra time over the extra alerts, the median of the rounds "
              "(lowest and highest beside it; a figure at or below 0 is under the run's noise). "
              "Threshold: every transaction over it. Spike: pools that each fire and resolve "
              "(five transactions in a second, one two minutes later).", "",
              "| rule | path | transactions | rounds | alerts | best alerting s | best silent s "
              "| µs per alert (median) | lowest, highest |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rule, cost in report["alert_cost"].items():
        for path in ("per event", "batches"):
            c = cost[path]
            lines.append(f"| {rule} | {path} | {cost['transactions']:,} | {cost['rounds']} | "
                         f"{c['alerts']:,} | {c['alerting_seconds']} | {c['silent_seconds']} | "
                         f"{c['us_per_alert']} | {c['us_low']}, {c['us_high']} |")
    lat = report["latency"]
    lines += ["", f"## Latency: wall clock from arrival to the sink, {lat['transactions']:,} "
              "transactions of the alert-heavy stream, one pass each", "",
              "A transaction arrives when the call that hands it to the engine starts (a batch's "
              "transactions arrive together); its alert leaves when a plain callable sink "
              "receives it.", "",
              "| path | alerts | p50 µs | p99 µs | max µs |", "|---|---:|---:|---:|---:|"]
    for name, value in lat.items():
        if isinstance(value, dict):
            lines.append(f"| {name} | {value['alerts']:,} | {value['p50_us']:,} | "
                         f"{value['p99_us']:,} | {value['max_us']:,} |")
    pools = report["scaling_pools"]
    lines += ["", f"## Throughput against pools: {pools['transactions']:,} transactions", "",
              "| pools | " + " | ".join(next(iter(pools["by_pools"].values()))) + " |",
              "|---:|" + "---:|" * len(next(iter(pools["by_pools"].values())))]
    for count, rows in pools["by_pools"].items():
        lines.append(f"| {int(count):,} | " + " | ".join(
            f"{r['tx_per_second']:,}" for r in rows.values()) + " |")
    shares = report["scaling_alerts"]
    first = next(iter(shares["by_share"].values()))["rows"]
    lines += ["", f"## Throughput against alerts: {shares['transactions']:,} transactions, a "
              "share of them over the threshold", "",
              "| share over | alerts per 1,000 | " + " | ".join(first) + " |",
              "|---:|---:|" + "---:|" * len(first)]
    for case in shares["by_share"].values():
        lines.append(f"| {case['share_over']:.1%} | {case['alerts_per_1000']} | " + " | ".join(
            f"{r['tx_per_second']:,}" for r in case["rows"].values()) + " |")
    if "redis_batches" in report:
        sweep = report["redis_batches"]
        lines += ["", f"## process_many on RedisWindowStore against the batch size: "
                  f"{sweep['transactions']:,} transactions", "",
                  "| batch | transactions/s | alerts |", "|---:|---:|---:|"]
        lines += [f"| {r['batch']:,} | {r['tx_per_second']:,} | {r['alerts']} |"
                  for r in sweep["by_batch"].values()]
    (out / "engine.md").write_text("\n".join(lines) + "\n")


FLOOR_NOTE = (
    "The floor decides less than the loop on purpose: it drops repeated ids, turns each event "
    "time into microseconds and keeps it, and builds the engine's own `Alert` (frozen attrs, "
    "with its message, through the engine's slot writer) for each transaction over the "
    "threshold; no windows, no spike rule. A loop per event that returned these alerts as "
    "`Alert` objects would do at least this much; its alerts are checked against the loop's "
    "threshold alerts.")


def _delay(found: dict[str, Any]) -> str:
    if not found.get("alerts"):
        return "no alert of the loop had a minute-scan alert to compare with"
    return (f"{found['mean_s']} s of event time on average (up to {found['max_s']} s) after "
            f"the transaction at which the rules first hold, over {found['alerts']} alerts")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small streams, one round")
    parser.add_argument("--transactions", type=int, default=300_000)
    parser.add_argument("--pools", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", action="store_true", help="also run on a local Redis")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="the folder engine.md and engine.json go to (default: %(default)s)")
    args = parser.parse_args()
    n = 30_000 if args.quick else args.transactions
    report = run(n, args.pools, args.redis, 1 if args.quick else args.rounds, args.quick)
    write(report, args.out)
    print((args.out / "engine.md").read_text())


if __name__ == "__main__":
    main()
