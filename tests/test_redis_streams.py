"""Many workers on one Redis Stream raise exactly the alerts of one engine on the whole stream.

Every test runs real `auptimate worker` processes against a real redis-server; one of them is
killed with SIGKILL in the middle of its work.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from auptimate_core import Transaction
from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.generate import SyntheticStream
from auptimate_core.integrations.redis_streams import (
    StreamProducer,
    StreamWorker,
    decode,
    encode,
    lag,
    read_alerts,
    slices,
)

pytestmark = pytest.mark.redis

RULES = [
    ThresholdRule(limit=Decimal("250000")),
    SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=Decimal(10),
              min_count=5),
]
WORKER = [sys.executable, "-c", "from auptimate_core.cli import main; main()", "worker",
          "--quiet", "--lease", "1s", "--batch-size", "500"]


@pytest.fixture(scope="module")
def stream_and_alerts() -> tuple[list[Transaction], list[Alert]]:
    txs = list(SyntheticStream(100_000, seed=11, anomalies=True).transactions())
    return txs, AlertEngine(RULES).process_many(txs)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.flushall()
    yield c
    c.close()


def by_key(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: a.key)


def start_worker(url: str, stream: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*WORKER, "--store", url, "--stream", stream, "--consumer", name],
                            stderr=subprocess.PIPE)


def wait_until_drained(url: str, stream: str, total: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lag(url, stream)
        if found.total == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"workers did not drain {stream} in {timeout} s: {lag(url, stream)}")


def stop_all(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=30)


def test_entries_round_trip() -> None:
    tx = Transaction(id="t 1", investor_id="i:1", pool_id="{p}", amount=Decimal("12.3400"),
                     timestamp=datetime(2026, 1, 1, 9, tzinfo=UTC), kind="investment")
    assert decode(encode(tx)) == tx
    with pytest.raises(ValueError, match="amount"):
        decode({**encode(tx), "amount": "lots"})


def test_a_redelivered_batch_raises_its_alerts_again(redis_url: str, client: redis.Redis,
                                                      stream_and_alerts: tuple[
                                                          list[Transaction], list[Alert]]) -> None:
    txs = stream_and_alerts[0][:20_000]
    names = [f"0/{i}-0" for i in range(len(txs))]
    first = AlertEngine(RULES, store=RedisWindowStore(client, namespace="re"))
    again = AlertEngine(RULES, store=RedisWindowStore(client, namespace="re"))
    raised = []
    for start, stop in slices(txs, 256):
        batch, batch_names = txs[start:stop], names[start:stop]
        alerts = first.process_many(batch, deliveries=batch_names)
        # The worker died before logging them: whoever takes over decides the batch again.
        assert again.process_many(batch, deliveries=batch_names) == alerts
        raised += alerts
    assert raised == stream_and_alerts[1][:len(raised)]
    assert any(a.state == "firing" and a.rule == "spike" for a in raised)
    # The same transactions under new delivery names are duplicates (or, past the horizon,
    # late): never counted twice, never alerting twice.
    tail = txs[start:stop]
    again.on_late = lambda tx: None
    before = (again.stats.duplicates, again.stats.late)
    assert again.process_many(tail, deliveries=[f"1/{i}" for i in range(len(tail))]) == []
    assert (again.stats.duplicates - before[0]) + (again.stats.late - before[1]) == len(tail)
    assert again.stats.duplicates > before[0]


def test_four_workers_raise_exactly_the_alerts_of_one_engine(
    redis_url: str, client: redis.Redis,
    stream_and_alerts: tuple[list[Transaction], list[Alert]],
) -> None:
    txs, expected = stream_and_alerts
    StreamProducer(client, "four", shards=8).send(txs)
    workers = [start_worker(redis_url, "four", f"w{i}") for i in range(4)]
    try:
        wait_until_drained(redis_url, "four", len(txs))
    finally:
        stop_all(workers)
    assert [w.returncode for w in workers] == [0, 0, 0, 0]  # SIGTERM is a clean stop
    got = read_alerts(client, "four")
    assert len(got) == len(expected)
    assert by_key(got) == by_key(expected)
    assert client.xlen("four:rejected") == 0


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
    redis_url: str, client: redis.Redis,
    stream_and_alerts: tuple[list[Transaction], list[Alert]],
) -> None:
    txs, expected = stream_and_alerts
    StreamProducer(client, "kill", shards=8).send(txs)
    workers = [start_worker(redis_url, "kill", f"k{i}") for i in range(4)]
    try:
        # Kill one as soon as it holds unacknowledged entries, so some are in its hands.
        deadline = time.monotonic() + 60
        victim = workers[0]
        while time.monotonic() < deadline:
            pending = sum(
                int(entry["pending"]) for shard in range(8)
                for entry in _consumers(client, f"kill:{shard}") if entry["name"] == b"k0"
            )
            if pending:
                break
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.append(start_worker(redis_url, "kill", "k4"))
        wait_until_drained(redis_url, "kill", len(txs))
    finally:
        stop_all(workers)
    assert victim.returncode == -signal.SIGKILL
    got = read_alerts(client, "kill")
    assert len(got) == len({a.key for a in got})  # nothing twice
    assert by_key(got) == by_key(expected)  # nothing missing, nothing extra


def _consumers(client: redis.Redis, name: str) -> list[dict[str, object]]:
    try:
        return list(client.xinfo_consumers(name, "auptimate"))
    except redis.ResponseError:
        return []


def test_bad_entries_go_to_the_rejected_stream(client: redis.Redis) -> None:
    producer = StreamProducer(client, "bad", shards=1)
    good = Transaction(id="t1", investor_id="i1", pool_id="p1", amount=Decimal("300000"),
                       timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    producer.send([good])
    client.xadd("bad:0", {"id": "t2", "pool_id": "p1", "investor_id": "i1",
                          "amount": "-5", "timestamp": "2026-01-01T00:00:01+00:00"})
    seen: list[Alert] = []
    engine = AlertEngine(RULES, store=RedisWindowStore(client, namespace="bad"))
    worker = StreamWorker(client, engine, stream="bad", sinks=[seen.append])
    worker.run(until_idle=0.2)
    assert [a.transaction_id for a in seen] == ["t1"]
    rejected = client.xrange("bad:rejected")
    assert len(rejected) == 1 and b"amount" in rejected[0][1][b"error"]
    assert lag(client, "bad").total == 0


def test_publish_then_worker_from_the_command_line(redis_url: str, client: redis.Redis,
                                                   tmp_path: Path) -> None:
    data = tmp_path / "tx.csv"
    with data.open("w") as out:
        SyntheticStream(3_000, seed=2, anomalies=True).write_csv(out)
    cli = [sys.executable, "-c", "from auptimate_core.cli import main; main()"]
    done = subprocess.run([*cli, "publish", str(data), "--store", redis_url, "--stream", "cli",
                           "--shards", "4"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "3,000 transactions appended" in done.stderr
    done = subprocess.run([*cli, "worker", "--store", redis_url, "--stream", "cli",
                           "--until-idle", "0.5s"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert printed and printed == [a.to_dict() for a in read_alerts(client, "cli")]
    done = subprocess.run([*cli, "worker", "--store", "memory://", "--stream", "cli"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "redis://" in done.stderr
