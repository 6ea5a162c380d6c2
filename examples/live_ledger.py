"""One investment from the process that writes it to a follower and, via the relay, an alert.

    REDIS_URL=redis://localhost:6379/0 python examples/live_ledger.py

Without REDIS_URL it starts a throwaway redis-server of its own (redis-server must be
installed). A second process (standing for an API server) writes investments to a SQLite
ledger. This process follows the ledger's change feed and prints each change as it commits,
while a relay forwards the ledger's transactions to a Redis Stream and an alert worker raises
the alerts: the 900,000 investment reaches the alert log exactly once.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from auptimate_core import Invested, Investor, Pool, PoolLedger
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.integrations.redis_streams import StreamWorker, lag, read_alerts
from auptimate_core.integrations.relay import LedgerRelay

AMOUNTS = ("1200", "900000", "2500")


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    if "REDIS_URL" in os.environ:
        yield os.environ["REDIS_URL"]
        return
    from auptimate_core.testing.servers import RedisServer

    with RedisServer() as server:
        yield server.url


def api_server(url: str) -> None:
    """Another process: the investments, one commit each."""
    ledger = PoolLedger.from_url(url)
    for n, amount in enumerate(AMOUNTS):
        ledger.invest("seed", "ann", Decimal(amount), actor="ann", idempotency_key=f"ann-{n}")
        time.sleep(0.2)
    ledger.close()


def follow(ledger: PoolLedger, start: str) -> str:
    """Print the investments as they commit, in any process; return the last one's cursor."""
    for seen, change in enumerate(ledger.follow(after=start, timeout=30), start=1):
        match change.event:
            case Invested(transaction=tx, totals=totals):
                size = len(json.dumps(change.to_dict()))
                print(f"follower: {tx.investor_id} invested {tx.amount} in {tx.pool_id}, "
                      f"pool capital now {totals.capital} ({size} bytes as JSON)")
        if seen == len(AMOUNTS):
            return change.cursor
    raise SystemExit("the follower heard nothing for 30 s")


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="live-ledger-"))
    url = f"sqlite:///{folder / 'pools.db'}"
    ledger = PoolLedger.from_url(url)
    ledger.create_pool(Pool("seed", manager_id="lead"), actor="lead")
    ledger.register_investor(Investor("ann"))
    ledger.admit("seed", "ann", actor="lead")
    start = ledger.cursor()  # follow what commits from now on
    stream = f"live-{uuid.uuid4().hex[:8]}"

    with redis_url() as redis:
        relay = LedgerRelay(ledger, redis, stream, shards=4)
        engine = AlertEngine([ThresholdRule(limit=Decimal("250000")), SpikeRule()],
                             store=RedisWindowStore.from_url(redis, namespace=stream))
        worker = StreamWorker(redis, engine, stream=stream)
        threads = [threading.Thread(target=relay.run), threading.Thread(target=worker.run)]
        for thread in threads:
            thread.start()
        try:
            writer = multiprocessing.get_context("spawn").Process(target=api_server,
                                                                  args=(url,))
            writer.start()
            last = follow(ledger, start)
            writer.join()
            # The relay reaches the last change, then the worker drains the stream.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (relay.position().cursor != last
                                                   or lag(redis, stream).total):
                time.sleep(0.05)
        finally:
            relay.stop()
            worker.stop()
            for thread in threads:
                thread.join()
            engine.close()
        alerts = read_alerts(redis, stream)
    ledger.close()

    for alert in alerts:
        print(f"alert log: {alert.rule} {alert.state} on {alert.pool_id}: {alert.message}")
    big = [a for a in alerts if a.rule == "threshold"]
    print(f"relayed: {relay.appended} transactions; the 900,000 investment alerted "
          f"{len(big)} time(s)")
    if len(big) != 1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
