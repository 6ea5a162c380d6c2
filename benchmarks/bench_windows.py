"""Add-then-count-two-windows: the in-process window stores and structures against plain peers.

    python -m benchmarks.bench_windows [--quick] [--events N] [--pools P] [--batch B]

One stream (1,000,000 events over 1,000 pools by default, gaps of 0-50 ms of event time, in
order), and for every event: record it, then count the pool's events in the 1-minute and in the
1-hour window ending at its time. Peers, all in this run, on the same stream:

- ``ColumnarWindowStore.observe_many`` (numpy) in batches (``--batch``, 10,000 like the
  engine), and ``MemoryWindowStore.observe_many`` on exact windows (the default) and on bucket
  rings (``window="ring"``);
- ``MemoryWindowStore.observe``, one call per event;
- ``ExactWindow`` and ``BucketRing`` used directly, one per pool (add, then two counts);
- a plain ``deque`` per pool, two ways: remembering the ids of the hour's events so a redelivery
  counts once (the job the store does), and without ids at all (a floor: it would count a
  redelivered event twice);
- the ``limits`` library's in-memory moving window (``MovingWindowRateLimiter`` on
  ``MemoryStorage``: ``hit`` and ``get_window_stats`` for a per-minute and a per-hour limit). It
  reads ``time.time()``, so the benchmark points its module clock at the stream's event time for
  the run (and puts it back), which makes it count the same windows.

The peers run in three rounds, every peer once a round (the slow ones too), and each peer's
best round counts (:mod:`benchmarks.timing`: the machine's speed drifts, and a drift must not
fall on one peer alone).
Every peer's counts are checked against the store's. The store and the structures also keep
amounts (exact sums on demand), the store rejects late events and answers any interval; the
deques and ``limits`` do neither. Retained memory (tracemalloc, in a separate untimed pass) is
reported for the stores, and so is what one call per event costs on each once it holds the
windows of a busy stream. Results: benchmarks/results/windows.{md,json}.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.store import Interval, Observation, WindowStore
from auptimate_core.windows.exact import ExactWindow
from auptimate_core.windows.ring import BucketRing

from .timing import interleaved

RESULTS = Path(__file__).parent / "results"
MINUTE = 60_000_000
HOUR = 60 * MINUTE
WINDOWS = [Interval(0, MINUTE), Interval(0, HOUR)]
BUSY_POOLS = 20  # the memory pass also runs the stream over this few (busy) pools
MEMORY_EVENTS = 400_000
SINGLE_CALLS = 1_000  # one call per event, timed after the stream's first MEMORY_EVENTS
STORES = ("columnar", "exact", "ring")
ROUNDS = 3  # every peer once a round, its best round counts
OURS = ("ColumnarWindowStore", "MemoryWindowStore", "ExactWindow", "BucketRing")

Stream = tuple[list[str], list[str], list[int]]
Counts = tuple[list[int], list[int]]


def make_stream(n: int, pools: int, seed: int = 3) -> Stream:
    rng = random.Random(seed)
    at = 1_700_000_000_000_000
    keys, ids, ats = [], [], []
    for i in range(n):
        at += rng.randrange(0, 50_000)
        keys.append(f"pool-{rng.randrange(pools)}")
        ids.append(f"t{i}")
        ats.append(at)
    return keys, ids, ats


def make_store(kind: str) -> ColumnarWindowStore | MemoryWindowStore:
    """``"columnar"``: ColumnarWindowStore(); ``"exact"``, ``"ring"``: MemoryWindowStore on it."""
    if kind == "columnar":
        return ColumnarWindowStore()
    return MemoryWindowStore(window=kind)  # type: ignore[arg-type]


def store_batches(kind: str, batch: int) -> Callable[[Stream], Counts]:
    def run(stream: Stream) -> Counts:
        keys, ids, ats = stream
        store = make_store(kind)
        ones = [1] * batch
        minute: list[int] = []
        hour: list[int] = []
        for i in range(0, len(keys), batch):
            j = i + batch
            got = store.observe_many(keys[i:j], ids[i:j], ats[i:j], ones[:len(keys[i:j])],
                                     WINDOWS)
            minute += got.counts[0]
            hour += got.counts[1]
        return minute, hour
    return run


def store_per_event(stream: Stream) -> Counts:
    keys, ids, ats = stream
    store = MemoryWindowStore()
    minute, hour = [], []
    for key, event_id, at in zip(keys, ids, ats):
        tallies = store.observe(Observation(key, event_id, at, 1), WINDOWS).tallies
        minute.append(tallies[0].count)
        hour.append(tallies[1].count)
    return minute, hour


def exact_direct(stream: Stream) -> Counts:
    keys, _, ats = stream
    windows: dict[str, ExactWindow] = {}
    minute, hour = [], []
    for key, at in zip(keys, ats):
        window = windows.get(key)
        if window is None:
            window = windows[key] = ExactWindow()
        window.add(at, 1)
        window.trim(at - HOUR)
        minute.append(window.count(at - MINUTE, at))
        hour.append(window.count(at - HOUR, at))
    return minute, hour


def ring_direct(stream: Stream) -> Counts:
    keys, _, ats = stream
    rings: dict[str, BucketRing] = {}
    minute, hour = [], []
    for key, at in zip(keys, ats):
        ring = rings.get(key)
        if ring is None:
            ring = rings[key] = BucketRing(MINUTE, HOUR)
        ring.add(at, 1)
        minute.append(ring.count(at - MINUTE, at))
        hour.append(ring.count(at - HOUR, at))
    return minute, hour


def deque_with_ids(stream: Stream) -> Counts:
    """Two deques of times per pool, and the hour's ids (forgotten as they leave the hour)."""
    keys, ids, ats = stream
    pools: dict[str, tuple[deque[int], deque[int], deque[str], set[str]]] = {}
    minute, hour = [0] * len(keys), [0] * len(keys)
    for i, (key, event_id, at) in enumerate(zip(keys, ids, ats)):
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = (deque(), deque(), deque(), set())
        last_minute, last_hour, hour_ids, seen = pool
        if event_id in seen:
            continue
        seen.add(event_id)
        last_minute.append(at)
        last_hour.append(at)
        hour_ids.append(event_id)
        edge = at - MINUTE
        while last_minute[0] <= edge:
            last_minute.popleft()
        edge = at - HOUR
        while last_hour[0] <= edge:
            last_hour.popleft()
            seen.discard(hour_ids.popleft())
        minute[i] = len(last_minute)
        hour[i] = len(last_hour)
    return minute, hour


def deque_floor(stream: Stream) -> Counts:
    """Two deques of times per pool, nothing else."""
    keys, _, ats = stream
    pools: dict[str, tuple[deque[int], deque[int]]] = {}
    minute, hour = [0] * len(keys), [0] * len(keys)
    for i, (key, at) in enumerate(zip(keys, ats)):
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = (deque(), deque())
        last_minute, last_hour = pool
        last_minute.append(at)
        last_hour.append(at)
        edge = at - MINUTE
        while last_minute[0] <= edge:
            last_minute.popleft()
        edge = at - HOUR
        while last_hour[0] <= edge:
            last_hour.popleft()
        minute[i] = len(last_minute)
        hour[i] = len(last_hour)
    return minute, hour


class _EventClock:
    """Stands in for the ``time`` module inside ``limits.storage.memory``."""

    now = 0.0

    @classmethod
    def time(cls) -> float:
        return cls.now


def limits_moving_window(stream: Stream) -> Counts:
    import limits.storage.memory as limits_memory
    from limits import RateLimitItemPerHour, RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    keys, _, ats = stream
    big = 10**9
    per_minute, per_hour = RateLimitItemPerMinute(big), RateLimitItemPerHour(big)
    real_time = limits_memory.time
    limits_memory.time = _EventClock  # type: ignore[assignment]
    try:
        limiter = MovingWindowRateLimiter(MemoryStorage())
        minute, hour = [], []
        for key, at in zip(keys, ats):
            _EventClock.now = at / 1e6
            limiter.hit(per_minute, key)
            limiter.hit(per_hour, key)
            minute.append(big - limiter.get_window_stats(per_minute, key).remaining)
            hour.append(big - limiter.get_window_stats(per_hour, key).remaining)
        return minute, hour
    finally:
        limits_memory.time = real_time


def retained_bytes(kind: str, stream: Stream, batch: int) -> dict[str, int]:
    """Memory the store holds after the stream, and its peak, under tracemalloc (untimed).

    Each batch's ids and times are made afresh inside the traced region (as a host converting
    its transactions would), so what the store keeps of them is counted."""
    keys, _, ats = stream
    gc.collect()
    tracemalloc.start()
    try:
        store = make_store(kind)
        ones = [1] * batch
        for i in range(0, len(keys), batch):
            j = min(i + batch, len(keys))
            fresh_ids = [f"t{k}" for k in range(i, j)]
            fresh_ats = [at + 1 - 1 for at in ats[i:j]]
            store.observe_many(keys[i:j], fresh_ids, fresh_ats, ones[:j - i], WINDOWS)
            del fresh_ids, fresh_ats
        current, peak = tracemalloc.get_traced_memory()
        size = store.size()
    finally:
        tracemalloc.stop()
    return {"retained_bytes": current, "peak_bytes": peak, **size}


def single_call_us(kind: str, stream: Stream, batch: int, calls: int) -> float:
    """Microseconds per ``observe`` call (one event each, with totals, as the engine's
    ``process`` asks) for the stream's last ``calls`` events, the rest fed in batches first."""
    keys, ids, ats = stream
    store: WindowStore = make_store(kind)
    head = len(keys) - calls
    for i in range(0, head, batch):
        j = min(i + batch, head)
        store.observe_many(keys[i:j], ids[i:j], ats[i:j], [1] * (j - i), WINDOWS)
    started = time.perf_counter()
    for k in range(head, len(keys)):
        store.observe(Observation(keys[k], ids[k], ats[k], 1), WINDOWS)
    return (time.perf_counter() - started) / calls * 1e6


def run(n: int, pools: int, batch: int, memory: bool) -> dict[str, Any]:
    stream = make_stream(n, pools)
    peers: dict[str, Callable[[Stream], Counts]] = {
        f"ColumnarWindowStore.observe_many (batches of {batch:,})":
            store_batches("columnar", batch),
        f"MemoryWindowStore.observe_many, exact (batches of {batch:,})":
            store_batches("exact", batch),
        f"MemoryWindowStore.observe_many, ring (batches of {batch:,})":
            store_batches("ring", batch),
        "MemoryWindowStore.observe, one call per event": store_per_event,
        "ExactWindow per pool, directly": exact_direct,
        "BucketRing per pool, directly": ring_direct,
        "deque per pool, ids remembered (same job)": deque_with_ids,
        "deque per pool, no ids (floor, not idempotent)": deque_floor,
        "limits MovingWindowRateLimiter + MemoryStorage": limits_moving_window,
    }
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
                   f"{platform.python_version()}, {platform.system()}",
        "events": n, "pools": pools, "batch": batch, "windows": ["1 minute", "1 hour"],
        "peers": {},
    }
    reference: Counts | None = None
    timed = interleaved({name: partial(peer, stream) for name, peer in peers.items()}, ROUNDS)
    for name, (seconds, counts) in timed.items():
        if reference is None:
            reference = counts
        report["peers"][name] = {
            "seconds": round(seconds, 3),
            "events_per_second": round(n / seconds),
            "same_counts": counts == reference,
            "calls": f"batches of {batch:,}" if "batches" in name else "per event",
            "ours": name.startswith(OURS),
        }
    base = next(iter(report["peers"].values()))["events_per_second"]
    for peer in report["peers"].values():
        peer["store_speedup"] = round(base / peer["events_per_second"], 2)
    if memory:
        # The structures are flat once the first horizon (66 minutes, ~160,000 events here)
        # has passed, so the traced passes stop at MEMORY_EVENTS.
        m = min(n, MEMORY_EVENTS)
        quiet = (stream[0][:m], stream[1][:m], stream[2][:m])
        busy = make_stream(m, BUSY_POOLS)
        report["memory_events"] = m
        report["memory"] = {
            f"{kind}, {count:,} pools": retained_bytes(kind, data, batch)
            for count, data in ((pools, quiet), (BUSY_POOLS, busy))
            for kind in STORES
        }
        calls = min(SINGLE_CALLS, m // 2)
        report["single_call_us"] = {
            kind: round(single_call_us(kind, quiet, batch, calls), 1) for kind in STORES}
        report["single_calls"] = calls
    return report


def write(report: dict[str, Any], stem: str = "windows") -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Window store: add, then count two windows",
        "",
        f"{report['events']:,} events over {report['pools']:,} pools (0-50 ms of event time "
        "apart, in order); for each event: record it, then count its pool's events in the "
        "1-minute and the 1-hour window ending at its time; each time is a peer's best of "
        f"{ROUNDS} rounds in which every peer runs once. Machine: "
        f"{report['machine']}.",
        "",
        "| peer | calls | seconds | events/s | the first row is faster by | same counts |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, peer in report["peers"].items():
        lines.append(f"| {name} | {peer['calls']} | {peer['seconds']} | "
                     f"{peer['events_per_second']:,} | {peer['store_speedup']}x | "
                     f"{'yes' if peer['same_counts'] else 'NO'} |")
    if "memory" in report:
        lines += ["", "Memory the store holds after the stream's first "
                  f"{report['memory_events']:,} events (tracemalloc, untimed pass; ids and "
                  "times made afresh per batch so what the store keeps of them counts), on "
                  "this stream and on the same stream over "
                  f"{BUSY_POOLS} busy pools; `columnar` is ColumnarWindowStore, `exact` and "
                  "`ring` MemoryWindowStore on those windows (rings of the default five-minute "
                  "buckets); columnar events and ids include those not yet compacted:", "",
                  "| store, stream | retained MB | peak MB | keys | events | ids | ring slots |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for label, mem in report["memory"].items():
            lines.append(f"| {label} | {mem['retained_bytes'] / 1e6:.1f} | "
                         f"{mem['peak_bytes'] / 1e6:.1f} | {mem['keys']:,} | "
                         f"{mem['events']:,} | {mem['ids']:,} | {mem['slots']:,} |")
    if "single_call_us" in report:
        costs = report["single_call_us"]
        lines += ["", f"One call per event (`observe`, with totals) for {report['single_calls']:,} "
                  f"events after the stream's first {report['memory_events']:,} were fed in "
                  "batches: microseconds per call.", "",
                  "| store | µs per call |", "|---|---:|"]
        lines += [f"| {kind} | {us:,} |" for kind, us in costs.items()]
    lines += [
        "",
        "What was compared: every peer does the same add-then-count on the same stream and "
        "its counts are checked against the store's. The store does more than the peers: it "
        "is idempotent by id (a redelivered event counts once), rejects events older than the "
        "allowed lateness (5 minutes) and places late ones within it exactly, answers any "
        "interval (not only windows ending now), keeps exact amount sums, takes a lock per "
        "call, and returns statuses and first-seen times. The deque with ids does the "
        "idempotency too; the bare deque is a floor that would count a redelivery twice and "
        "breaks on out-of-order events. `limits` runs on event time by pointing its module "
        "clock at the stream for the run; it is not idempotent either.",
        "",
        verdict(report),
        "",
        "How the stores differ. `MemoryWindowStore` keeps per-pool structures (`exact`: a "
        "sorted list of times with running sums; `ring`: buckets) and pays, per event, a dict "
        "lookup and insert for the id, an append, and a binary search per window edge, because "
        "it answers any interval exactly (the spike rule's baseline ends a minute ago, not now) "
        "and takes late events. `ColumnarWindowStore` (numpy) does a batch's work in array "
        "operations: every pool's events in one sorted array of `(pool, time)` composites, a "
        "batch ranked with `searchsorted`, lateness decided with a grouped running maximum, ids "
        "in an append-only log behind a Bloom filter checked in numpy (a possible false "
        "positive is looked up exactly). Each of its calls has a fixed cost of numpy calls and "
        "a merge of the held events, so one call per event belongs on `MemoryWindowStore`: the "
        "last table shows what one call costs on each. The hand-written deques have no call per "
        "event to save: they are the floor of both ways of calling.",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def verdict(report: dict[str, Any]) -> str:
    """Sentences from this run's figures: each way of calling our stores against the peers."""
    peers = report["peers"]
    rates = {name: peer["events_per_second"] for name, peer in peers.items()}

    def find(word: str) -> tuple[str, int]:
        return next((name, rate) for name, rate in rates.items() if word in name)

    def against(rate: int, words: tuple[str, ...]) -> str:
        parts = []
        for word in words:
            name, other = find(word)
            ratio = rate / other
            parts.append(f"{ratio:.2f}x the rate of {name}")
        return "; ".join(parts)

    one_name, one = find("one call per event")
    columnar_name, columnar = find("ColumnarWindowStore")
    exact_name, exact = find("exact (batches")
    return (f"Verdict of this run. Per event: {one_name} at {one:,} events/s, "
            + against(one, ("limits", "ids remembered", "no ids"))
            + f". In batches: {columnar_name} at {columnar:,} events/s, "
            + against(columnar, ("ids remembered", "no ids"))
            + f"; {exact_name} at {exact:,} events/s, "
            + against(exact, ("ids remembered", "no ids")) + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small stream")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pools", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args()
    n = 50_000 if args.quick else args.events
    report = run(n, args.pools, args.batch, memory=not args.no_memory)
    write(report)
    print((RESULTS / "windows.md").read_text())
    wrong = [name for name, peer in report["peers"].items() if not peer["same_counts"]]
    if wrong:
        raise SystemExit(f"counts differ from the first peer's: {wrong}")


if __name__ == "__main__":
    main()
