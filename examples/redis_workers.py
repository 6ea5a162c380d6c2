"""Several worker processes sharing one Redis: the same alerts as one engine on the whole stream.

    REDIS_URL=redis://localhost:6379/0 python examples/redis_workers.py

Without REDIS_URL it starts a throwaway redis-server of its own (redis-server must be
installed). It publishes a generated stream with injected anomalies to a Redis Stream, lets
three worker processes consume it, and checks the alert log against one in-memory engine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.generate import SyntheticStream
from auptimate_core.integrations.redis_streams import StreamProducer, read_alerts, run_worker

RULES = [
    ThresholdRule(limit=Decimal("250000")),
    SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=Decimal(10),
              min_count=5),
]
STREAM = "example:transactions"


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    if "REDIS_URL" in os.environ:
        yield os.environ["REDIS_URL"]
        return
    from auptimate_core.testing.servers import RedisServer

    with RedisServer() as server:
        yield server.url


def work(url: str, name: str) -> None:
    run_worker(url, RULES, stream=STREAM, namespace="example", consumer=name, until_idle=1.0)


def main() -> None:
    transactions = list(SyntheticStream(20_000, seed=4, anomalies=True).transactions())
    expected = AlertEngine(RULES).process_many(transactions)
    with redis_url() as url:
        import redis

        with redis.Redis.from_url(url) as client:  # a clean slate for the example's keys
            for key in client.scan_iter(match="*example*"):
                client.delete(key)
        StreamProducer(url, STREAM, shards=8).send(transactions)
        workers = [multiprocessing.Process(target=work, args=(url, f"worker-{i}"))
                   for i in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        alerts = read_alerts(url, STREAM)
    print(f"{len(transactions):,} transactions, 3 workers, {len(alerts)} alerts in the log")
    for alert in alerts:
        print(f"  {alert.at:%Y-%m-%d %H:%M:%S}  {alert.rule:<9} {alert.state:<8} "
              f"{alert.pool_id}  {alert.message}")
    same = sorted(a.key for a in alerts) == sorted(a.key for a in expected)
    print("the same alerts as one engine on the whole stream:", "yes" if same else "NO")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
