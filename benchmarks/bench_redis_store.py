"""The Redis window store against `limits` and hand-written Redis, per event and per batch.

    python -m benchmarks.bench_redis_store [--quick] [--events N] [--per-event N] [--rounds R]

One stream of events over 1,000 pools, each event recorded and then counted in a 1-minute and a
1-hour window (the spike rule's two windows), on one local redis-server on loopback that the
benchmark starts (and a three-node Redis Cluster for one peer). Like is measured with like:

- **Per event**, one call per event: ``RedisWindowStore.observe``; the ``limits`` library's
  Redis moving window (``MovingWindowRateLimiter.hit`` and ``get_window_stats`` for two limits:
  four round trips); and by hand, ``ZADD`` and two ``ZCOUNT`` in one pipelined round trip.
- **Per batch**, one call per batch: ``RedisWindowStore.observe_many`` in batches of 500, 5,000
  and 50,000; of 5,000 with ids kept for the windows only (a dedup horizon of a microsecond,
  against the default day: the horizon's cost in speed and in the server's memory); of 5,000
  with window sums (``totals=True``, as the amount spike rule asks); of 5,000 on the cluster;
  and by hand, the same three commands per event pipelined in one round trip per batch of
  5,000. ``limits`` has no batch call.

`limits` keeps wall-clock windows, not event-time ones, and the hand-written peers keep no
dedup horizon, lateness or redelivery answers: they are peers for the cost of a shared sliding
window, a floor rather than the same job.

Every peer runs the same number of rounds, interleaved (:func:`benchmarks.timing.staged`, best
round kept), each round on fresh keys made before its timing starts. Answers are checked: every
peer of ours and the hand-written ones give, event for event, the statuses and counts the memory
store gives on the same input (and the sums, for the peer with sums); ``limits`` is checked to
have counted every hit. The machine's load average is recorded before and after.

Results go to RESULTS/redis_store.{md,json} (benchmarks/results by default).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import Interval, Observation, Status
from auptimate_core.testing.servers import RedisClusterServers, RedisServer

from .timing import Timing, staged

RESULTS = Path(__file__).parent / "results"
MINUTE = 60_000_000
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]
POOLS = 1_000
BATCH = 5_000
LATENESS = timedelta(minutes=5)

Stream = tuple[list[str], list[str], list[int], list[int]]
Answers = tuple[list[Status], list[list[int]], list[list[int]]]


def stream(n: int, pools: int = POOLS, seed: int = 3) -> Stream:
    """Keys, ids, event times (25 ms apart on average, in order) and amounts (units)."""
    rng = random.Random(seed)
    at = 1_700_000_000_000_000
    keys, ids, ats, amounts = [], [], [], []
    for i in range(n):
        at += rng.randrange(0, 50_000)
        keys.append(f"pool-{rng.randrange(pools)}")
        ids.append(f"t{i}")
        ats.append(at)
        amounts.append(rng.randrange(1, 10**9))
    return keys, ids, ats, amounts


def memory_answers(data: Stream, totals: bool) -> Answers:
    """The memory store's answers for the stream, in one call: the answers to check against."""
    keys, ids, ats, amounts = data
    got = MemoryWindowStore(allowed_lateness=LATENESS).observe_many(
        keys, ids, ats, amounts, SPIKE, totals=totals)
    return got.statuses, got.counts, got.totals


class Server:
    """A redis-server's CPU seconds and memory, read around a peer's run."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])


Call = Callable[[], dict[str, Any]]
Prepare = Callable[[], Call]


def ours_batches(url: str, data: Stream, batch: int, names: itertools.count[int],
                 server: Server | None, totals: bool = False, **options: Any) -> Prepare:
    keys, ids, ats, amounts = data

    def prepare() -> Call:
        store = RedisWindowStore.from_url(url, namespace=f"bench-{next(names)}", **options)
        before = (server.cpu(), server.memory()) if server else (0.0, 0)

        def call() -> dict[str, Any]:
            statuses: list[Status] = []
            counts: list[list[int]] = [[], []]
            sums: list[list[int]] = [[], []]
            for i in range(0, len(keys), batch):
                j = i + batch
                got = store.observe_many(keys[i:j], ids[i:j], ats[i:j], amounts[i:j], SPIKE,
                                         totals=totals)
                statuses += got.statuses
                for column, part in zip(counts, got.counts):
                    column += part
                for column, part in zip(sums, got.totals):
                    column += part
            out: dict[str, Any] = {"answers": (statuses, counts, sums if totals else []),
                                   "store": store}
            if server:
                out["server_cpu"] = server.cpu() - before[0]
                out["memory"] = server.memory() - before[1]
            return out

        return call

    return prepare


def held(store: RedisWindowStore) -> int:
    """The ids a store's pools hold (each sorted set's edge member aside)."""
    return sum(int(store.client.zcount(key, "-inf", "(+inf"))
               for key in store.client.scan_iter(f"{store.namespace}:*:ev"))


def hand_batches(url: str, data: Stream, batch: int, names: itertools.count[int]) -> Prepare:
    """ZADD and two ZCOUNT per event, pipelined: one round trip per batch."""
    keys, ids, ats, _ = data

    def prepare() -> Call:
        client = redis.Redis.from_url(url)
        prefix = f"hand-{next(names)}:"

        def call() -> dict[str, Any]:
            counts: list[list[int]] = [[], []]
            for i in range(0, len(keys), batch):
                pipe = client.pipeline(transaction=False)
                for key, event, at in zip(keys[i:i + batch], ids[i:i + batch],
                                          ats[i:i + batch]):
                    pipe.zadd(prefix + key, {event: at})
                    pipe.zcount(prefix + key, at - MINUTE + 1, at)
                    pipe.zcount(prefix + key, at - 61 * MINUTE + 1, at - MINUTE)
                replies = pipe.execute()
                counts[0] += replies[1::3]
                counts[1] += replies[2::3]
            return {"answers": ([Status.NEW] * len(keys), counts, [])}

        return call

    return prepare


def ours_per_event(url: str, data: Stream, n: int, names: itertools.count[int]) -> Prepare:
    keys, ids, ats, amounts = data

    def prepare() -> Call:
        store = RedisWindowStore.from_url(url, namespace=f"bench-{next(names)}")

        def call() -> dict[str, Any]:
            statuses: list[Status] = []
            counts: list[list[int]] = [[], []]
            for i in range(n):
                got = store.observe(Observation(keys[i], ids[i], ats[i], amounts[i]), SPIKE)
                statuses.append(got.status)
                for j, column in enumerate(counts):
                    column.append(got.tallies[j].count if got.tallies else 0)
            return {"answers": (statuses, counts, [])}

        return call

    return prepare


def hand_per_event(url: str, data: Stream, n: int, names: itertools.count[int]) -> Prepare:
    """ZADD and two ZCOUNT in one pipelined round trip per event."""
    keys, ids, ats, _ = data

    def prepare() -> Call:
        client = redis.Redis.from_url(url)
        prefix = f"hand-{next(names)}:"

        def call() -> dict[str, Any]:
            counts: list[list[int]] = [[], []]
            for key, event, at in zip(keys[:n], ids[:n], ats[:n]):
                pipe = client.pipeline(transaction=False)
                pipe.zadd(prefix + key, {event: at})
                pipe.zcount(prefix + key, at - MINUTE + 1, at)
                pipe.zcount(prefix + key, at - 61 * MINUTE + 1, at - MINUTE)
                _, recent, baseline = pipe.execute()
                counts[0].append(recent)
                counts[1].append(baseline)
            return {"answers": ([Status.NEW] * n, counts, [])}

        return call

    return prepare


def limits_per_event(url: str, data: Stream, n: int, names: itertools.count[int]) -> Prepare:
    """The `limits` moving window: a hit and the window's stats for two limits per event."""
    from limits import RateLimitItemPerHour, RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    keys = data[0]
    minute, hour = RateLimitItemPerMinute(10**9), RateLimitItemPerHour(10**9)

    def prepare() -> Call:
        limiter = MovingWindowRateLimiter(RedisStorage(url))
        prefix = f"limits-{next(names)}:"

        def call() -> dict[str, Any]:
            for key in keys[:n]:
                limiter.hit(minute, prefix + key)
                limiter.hit(hour, prefix + key)
                limiter.get_window_stats(minute, prefix + key)
                limiter.get_window_stats(hour, prefix + key)
            return {"limiter": limiter, "prefix": prefix}

        return call

    return prepare


def limits_hits(result: dict[str, Any], keys: list[str]) -> int:
    """The hits a `limits` run counted in its hour window (the run lasts less than an hour)."""
    limiter, prefix = result["limiter"], result["prefix"]
    from limits import RateLimitItemPerHour

    hour = RateLimitItemPerHour(10**9)
    return sum(10**9 - limiter.get_window_stats(hour, prefix + key).remaining
               for key in set(keys))


def check(name: str, got: Answers, want: Answers) -> None:
    """Raise unless a peer's answers are the memory store's, event for event."""
    statuses, counts, sums = got
    n = len(statuses)
    if statuses != want[0][:n] or [c[:n] for c in want[1]] != counts or (
            sums and [s[:n] for s in want[2]] != sums):
        bad = next((i for i in range(n) if statuses[i] != want[0][i]
                    or any(c[i] != w[i] for c, w in zip(counts, want[1]))), None)
        if bad is None:
            raise AssertionError(f"{name}: the window sums differ from the memory store's")
        raise AssertionError(f"{name}: event {bad} answered {statuses[bad]}, "
                             f"{[c[bad] for c in counts]}; the memory store "
                             f"{want[0][bad]}, {[c[bad] for c in want[1]]}")


def rows(timed: dict[str, Timing], events: int, batches: dict[str, int],
         ours: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, timing in timed.items():
        result = timing.result
        row: dict[str, Any] = {
            "events": events, "batch": batches[name], "ours": name in ours,
            "seconds": round(timing.best, 3), "events_per_second": round(events / timing.best),
            "spread": round(timing.spread, 3)}
        if "server_cpu" in result:
            row["server_us_per_event"] = round(result["server_cpu"] / events * 1e6, 2)
        if "memory" in result:
            row["memory_mib"] = round(result["memory"] / 2**20, 1)
            row["ids_held"] = held(result["store"])
        out[name] = row
    return out


def run(n: int, per_event: int, rounds: int) -> dict[str, Any]:
    data = stream(n)
    want = memory_answers(data, totals=False)
    want_sums = memory_answers(data, totals=True)
    names = itertools.count()
    load = os.getloadavg()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "pools": POOLS, "rounds": rounds, "batch": BATCH,
        "span_hours": round((data[2][-1] - data[2][0]) / 3_600e6, 1)}
    batch = f"batches of {BATCH:,}"
    with RedisServer() as single, RedisClusterServers() as cluster:
        server = Server(single.url)
        url = single.url
        batch_peers: dict[str, Prepare] = {
            f"observe_many ({batch})": ours_batches(url, data, BATCH, names, server),
            "observe_many (batches of 500)": ours_batches(url, data, 500, names, server),
            "observe_many (batches of 50,000)": ours_batches(url, data, 50_000, names, server),
            f"observe_many ({batch}, ids kept for the windows only)": ours_batches(
                url, data, BATCH, names, server, dedup_horizon=timedelta(microseconds=1)),
            f"observe_many ({batch}, with window sums)": ours_batches(
                url, data, BATCH, names, server, totals=True),
            f"observe_many (3-node Redis Cluster, {batch})": ours_batches(
                cluster.url, data, BATCH, names, None),
            f"by hand: ZADD + 2 ZCOUNT per event, pipelined ({batch})": hand_batches(
                url, data, BATCH, names),
        }
        batch_timed = staged(batch_peers, rounds)
        event_peers: dict[str, Prepare] = {
            "observe (one call per event)": ours_per_event(url, data, per_event, names),
            "limits MovingWindowRateLimiter (hit + get_window_stats, two limits, per event)":
                limits_per_event(url, data, per_event, names),
            "by hand: ZADD + 2 ZCOUNT per event, one pipelined round trip each":
                hand_per_event(url, data, per_event, names),
        }
        event_timed = staged(event_peers, rounds)
        for name, timing in batch_timed.items():
            check(name, timing.result["answers"], want_sums if "sums" in name else want)
        for name, timing in event_timed.items():
            if "answers" in timing.result:
                check(name, timing.result["answers"], want)
            elif (hits := limits_hits(timing.result, data[0][:per_event])) != per_event:
                raise AssertionError(f"{name}: {hits} hits counted of {per_event}")
        sizes = {name: 1 for name in event_peers}
        sizes.update({name: int(found.group(1).replace(",", "")) for name in batch_peers
                      if (found := re.search(r"batches of ([\d,]+)", name))})
        ours = {name for name in [*batch_peers, *event_peers] if name.startswith("observe")}
        report["peers"] = {**rows(batch_timed, n, sizes, ours),
                           **rows(event_timed, per_event, sizes, ours)}
    report["load_average"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    report["checked"] = ("every peer's statuses and counts (and sums) equal the memory "
                         "store's on the same input; limits counted every hit")
    return report


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redis_store.json").write_text(json.dumps(report, indent=2) + "\n")
    first_load, last_load = report["load_average"]
    peers = report["peers"]

    def table(rows: dict[str, dict[str, Any]]) -> list[str]:
        ours = next(peer for peer in rows.values() if peer["ours"])
        lines = ["| peer | events | seconds | events/s | spread | server µs/event | "
                 "ours is faster by |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, peer in rows.items():
            label = f"**{name}** (ours)" if peer["ours"] else name
            lines.append(
                f"| {label} | {peer['events']:,} | {peer['seconds']} | "
                f"{peer['events_per_second']:,} | {peer['spread']:.0%} | "
                f"{peer.get('server_us_per_event', '-')} | "
                f"{ours['events_per_second'] / peer['events_per_second']:.2f}x |")
        return lines

    batched = {name: peer for name, peer in peers.items() if peer["batch"] > 1}
    single = {name: peer for name, peer in peers.items() if peer["batch"] == 1}
    lines = [
        "# Redis window store: events per second",
        "",
        f"Each event recorded and counted in a 1-minute and a 1-hour window, {report['pools']:,} "
        f"pools, one local redis-server on loopback (three for the cluster). Machine: "
        f"{report['machine']}; load average {first_load} at the start, {last_load} at the end. "
        f"Best of {report['rounds']} interleaved round(s), every peer the same rounds; spread: "
        f"how much slower its worst round was. Checked: {report['checked']}.",
        "",
        "## One call per batch",
        "",
        *table(batched),
        "",
        "## One call per event",
        "",
        *table(single),
        "",
        "Redis memory grown over a run, and the ids the pools hold at its end: "
        + ", ".join(f"{name}: {peer['memory_mib']} MiB, {peer['ids_held']:,} ids "
                    f"({peer['memory_mib'] * 2**20 / max(1, peer['ids_held']):.0f} bytes each)"
                    for name, peer in peers.items() if "memory_mib" in peer)
        + f". The stream spans {report['span_hours']} hours of event time.",
        "",
        "`limits` keeps wall-clock windows (not event time), and the hand-written peers keep "
        "no dedup horizon, lateness or redelivery answers: they are peers for the cost of a "
        "shared sliding window, not for the same job. `limits` has no batch call.",
    ]
    (RESULTS / "redis_store.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--per-event", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        report = run(20_000, 2_000, 1)
    else:
        report = run(args.events, min(args.events, args.per_event), args.rounds)
    write(report)
    print((RESULTS / "redis_store.md").read_text())


if __name__ == "__main__":
    main()
