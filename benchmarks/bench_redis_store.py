"""Throughput of the Redis window store against per-event round trips and `limits`, one run.

    python -m benchmarks.bench_redis_store [--quick] [--events N]

All peers run against one local redis-server that the benchmark starts, on the same stream of
events over 1,000 pools, each event recorded and then counted in a 1-minute and a 1-hour window:

- ``RedisWindowStore.observe_many`` in batches of 5,000 and of 50,000 (pipelined script calls,
  one per pool in the batch; a pool's run of events costs one script call, so larger batches
  spread that cost over more events);
- the same in batches of 5,000 with ids remembered for the windows only (a dedup horizon of a
  microsecond, against the default day): the horizon's cost in speed, and in the server's
  memory (``used_memory`` grown over the run, and the ids the pools hold at its end);
- the same on a three-node Redis Cluster started on this machine (the nodes work in parallel);
- ``RedisWindowStore.observe``, one round trip per event;
- the ``limits`` library's Redis moving window (``MovingWindowRateLimiter.hit`` and
  ``get_window_stats`` for two limits per event). It keeps wall-clock windows, not event-time
  ones, so it is a peer for the cost of a shared sliding window, not for its semantics.

Results go to benchmarks/results/redis_store.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import Interval, Observation
from auptimate_core.testing.servers import RedisClusterServers, RedisServer

RESULTS = Path(__file__).parent / "results"
MINUTE = 60_000_000
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]
BATCHES = (5_000, 50_000)


def stream(n: int, pools: int = 1_000, seed: int = 3) -> tuple[list[str], list[str], list[int]]:
    rng = random.Random(seed)
    at = 1_700_000_000_000_000
    keys, ids, ats = [], [], []
    for i in range(n):
        at += rng.randrange(0, 50_000)
        keys.append(f"pool-{rng.randrange(pools)}")
        ids.append(f"t{i}")
        ats.append(at)
    return keys, ids, ats


def server_cpu(url: str) -> float:
    """CPU seconds the redis-server process has used so far (INFO cpu)."""
    import redis

    with redis.Redis.from_url(url) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def server_memory(url: str, namespace: str) -> tuple[int, int]:
    """The server's ``used_memory`` and the ids the pools of ``namespace`` hold."""
    import redis

    with redis.Redis.from_url(url) as client:
        held = sum(client.zcard(key) for key in client.scan_iter(f"{namespace}:*:ev"))
        return int(client.info("memory")["used_memory"]), held


def run(n: int, per_event: int, limits_events: int) -> dict[str, Any]:
    keys, ids, ats = stream(n)
    peers: dict[str, dict[str, float]] = {}
    runs: list[tuple[int, str, dict[str, Any]]] = [(batch, "", {}) for batch in BATCHES] + [
        (BATCHES[0], ", ids kept for the windows only",
         {"dedup_horizon": timedelta(microseconds=1)})]
    with RedisServer() as server:
        for number, (batch, label, options) in enumerate(runs):
            namespace = f"bench-batch-{number}"
            store = RedisWindowStore.from_url(server.url, namespace=namespace, **options)
            memory, _ = server_memory(server.url, namespace)
            cpu = server_cpu(server.url)
            start = time.perf_counter()
            for i in range(0, n, batch):
                store.observe_many(keys[i:i + batch], ids[i:i + batch], ats[i:i + batch],
                                   [1] * len(keys[i:i + batch]), SPIKE)
            seconds = time.perf_counter() - start
            cpu = server_cpu(server.url) - cpu
            used, held = server_memory(server.url, namespace)
            peers[f"observe_many (batches of {batch:,}{label})"] = {
                "events": n, "seconds": seconds, "server_cpu": cpu,
                "memory": used - memory, "held": held}
            store.close()

        with RedisClusterServers() as cluster:
            store = RedisWindowStore.from_url(cluster.url, namespace="bench-cluster")
            start = time.perf_counter()
            for i in range(0, n, BATCHES[-1]):
                j = i + BATCHES[-1]
                store.observe_many(keys[i:j], ids[i:j], ats[i:j], [1] * len(keys[i:j]), SPIKE)
            peers[f"observe_many on a 3-node Redis Cluster (batches of {BATCHES[-1]:,})"] = {
                "events": n, "seconds": time.perf_counter() - start}
            store.close()

        store = RedisWindowStore.from_url(server.url, namespace="bench-single")
        start = time.perf_counter()
        for i in range(per_event):
            store.observe(Observation(keys[i], ids[i], ats[i], 1), SPIKE)
        peers["observe (one round trip per event)"] = {
            "events": per_event, "seconds": time.perf_counter() - start}
        store.close()

        from limits import RateLimitItemPerHour, RateLimitItemPerMinute
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        limiter = MovingWindowRateLimiter(RedisStorage(server.url))
        minute, hour = RateLimitItemPerMinute(10**9), RateLimitItemPerHour(10**9)
        start = time.perf_counter()
        for i in range(limits_events):
            limiter.hit(minute, keys[i])
            limiter.hit(hour, keys[i])
            limiter.get_window_stats(minute, keys[i])
            limiter.get_window_stats(hour, keys[i])
        peers["limits MovingWindowRateLimiter (Redis)"] = {
            "events": limits_events, "seconds": time.perf_counter() - start}
    ours = peers["observe_many (batches of 5,000)"]
    ours_rate = ours["events"] / ours["seconds"]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}", "pools": 1_000,
        "span_hours": round((ats[-1] - ats[0]) / 3_600e6, 1), "peers": {}}
    for name, peer in peers.items():
        rate = peer["events"] / peer["seconds"]
        report["peers"][name] = {
            "events": int(peer["events"]), "seconds": round(peer["seconds"], 3),
            "events_per_second": round(rate), "batched_speedup": round(ours_rate / rate, 1),
        }
        if "server_cpu" in peer:
            report["peers"][name]["server_us_per_event"] = round(
                peer["server_cpu"] / peer["events"] * 1e6, 1)
        if "memory" in peer:
            report["peers"][name]["memory_mib"] = round(peer["memory"] / 2**20, 1)
            report["peers"][name]["ids_held"] = int(peer["held"])
    return report


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redis_store.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Redis window store: events per second",
        "",
        "Each event recorded and counted in a 1-minute and a 1-hour window, 1,000 pools, one "
        f"local redis-server on loopback. Machine: {report['machine']}.",
        "",
        "| peer | events | seconds | events/s | observe_many is faster by |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, peer in report["peers"].items():
        lines.append(f"| {name} | {peer['events']:,} | {peer['seconds']} | "
                     f"{peer['events_per_second']:,} | {peer['batched_speedup']}x |")
    lines += ["", "Redis server CPU per event (the ceiling of one single-threaded server): "
              + ", ".join(f"{name}: {peer['server_us_per_event']} µs"
                          for name, peer in report["peers"].items()
                          if "server_us_per_event" in peer) + "."]
    lines += ["", "Redis memory grown over the run, and the ids the pools hold at its end: "
              + ", ".join(f"{name}: {peer['memory_mib']} MiB, {peer['ids_held']:,} ids "
                          f"({peer['memory_mib'] * 2**20 / max(1, peer['ids_held']):.0f} "
                          "bytes each)"
                          for name, peer in report["peers"].items() if "memory_mib" in peer)
              + f". The stream spans {report['span_hours']} hours of event time: the default "
              "dedup horizon of a day remembers every id of it, and with the windows only a "
              "pool still keeps its newest `retain` (256) events for redeliveries. A pool "
              "holds the ids of a day of its events (and at least `retain`), each at the "
              "cost above."]
    lines += ["", "Every new event costs the server three commands inside the script (ZADD NX and "
              "one ZCOUNT per window) plus the script's own work: a single Redis server, which "
              "runs on one core, is the ceiling; a Redis Cluster adds cores, and on a 2-core "
              "machine the client and three servers share them."]
    lines += ["", "`limits` keeps wall-clock windows (not event time): it is a peer for the "
              "cost of a shared sliding window, not for the same semantics."]
    (RESULTS / "redis_store.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    n = 20_000 if args.quick else args.events
    report = run(n, min(n, 5_000 if args.quick else 20_000), min(n, 2_000 if args.quick
                                                                 else 10_000))
    write(report)
    print((RESULTS / "redis_store.md").read_text())


if __name__ == "__main__":
    main()
