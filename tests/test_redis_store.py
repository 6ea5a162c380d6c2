"""The Redis store on a real redis-server: the shared contract, encoding, failures, processes."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.errors import StoreUnavailable
from auptimate_core.store import DAY, Interval, Observation, Status, Tally, WindowStore
from auptimate_core.testing.servers import RedisServer, free_port
from auptimate_core.testing.window_store import WindowStoreContract

pytestmark = pytest.mark.redis

MINUTE = 60_000_000
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]


class TestRedisStore(WindowStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return RedisWindowStore.from_url(
            self.url, namespace=f"t{uuid.uuid4().hex[:12]}",
            allowed_lateness=timedelta(microseconds=allowed_lateness_us),
            dedup_horizon=timedelta(microseconds=dedup_horizon_us),
        )


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisWindowStore]:
    s = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    yield s
    s.flush_namespace()
    s.close()


def test_keys_share_one_hash_tag_per_pool_and_never_collide(store: RedisWindowStore) -> None:
    for pool in ["a:b", "{a}", "a b", "a}b{", "a%7Bb"]:
        keys = store._keys(pool)
        tags = {key[key.index("{") + 1:key.index("}")] for key in keys}
        assert len(tags) == 1 and "{" not in tags.pop()
    assert len({store._base(p) for p in ["a:b", "a%3Ab", "a b", "a+b", "{a}", "%7Ba%7D"]}) == 6


def test_scripts_reload_after_flush(store: RedisWindowStore) -> None:
    assert store.observe(Observation("p", "a", 10), SPIKE).status is Status.NEW
    store.client.script_flush()
    assert store.observe(Observation("p", "b", 20), SPIKE).tallies[0] == Tally(2, 0)


def test_unreachable_server_is_store_unavailable() -> None:
    store = RedisWindowStore.from_url(f"redis://127.0.0.1:{free_port()}/0", retries=1,
                                      backoff=0.01, socket_connect_timeout=0.5)
    with pytest.raises(StoreUnavailable, match="failed after 2 tries"):
        store.observe(Observation("p", "a", 1), SPIKE)


def test_memory_and_redis_agree_on_a_generated_stream(store: RedisWindowStore) -> None:
    from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
    from auptimate_core.io.generate import SyntheticStream

    stream = SyntheticStream(20_000, seed=11, anomalies=True)
    txs = list(stream.transactions())

    def rules() -> list[object]:
        return [ThresholdRule(limit=250_000), SpikeRule()]

    memory = AlertEngine(rules(), store=MemoryWindowStore()).process_many(txs)  # type: ignore[arg-type]
    shared = AlertEngine(rules(), store=store, batch_size=997).process_many(txs)  # type: ignore[arg-type]
    assert shared == memory
    assert len(memory) >= len(stream.anomalies)


def test_a_resent_batch_is_answered_as_the_first_time(store: RedisWindowStore) -> None:
    # A batch applied on the server whose reply was lost is resent with the same token.
    keys, ids, ats = ["p"] * 3, ["a", "b", "c"], [1, 2, 3]
    first = store.observe_many(keys, ids, ats, [1, 1, 1], SPIKE)
    assert [s.value for s in first.statuses] == ["new"] * 3
    again = store.observe_many(keys, ids, ats, [1, 1, 1], SPIKE)
    assert [s.value for s in again.statuses] == ["duplicate"] * 3  # a new delivery: counted once


def _feed(url: str, namespace: str, part: int, parts: int, n: int) -> None:
    # Processes run at their own pace: allow them to be hours apart in event time.
    store = RedisWindowStore.from_url(url, namespace=namespace,
                                      allowed_lateness=timedelta(hours=5))
    rows = [i for i in range(n) if i % parts == part]
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        store.observe_many([f"p{i % 13}" for i in chunk], [f"e{i}" for i in chunk],
                           [i * 1_000_000 for i in chunk], [i for i in chunk], SPIKE)
    store.close()


def test_four_processes_one_truth(redis_url: str) -> None:
    namespace = f"mp{uuid.uuid4().hex[:8]}"
    n = 8_000
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_feed, args=(redis_url, namespace, p, 4, n)) for p in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    memory = MemoryWindowStore(allowed_lateness=timedelta(hours=5))
    memory.observe_many([f"p{i % 13}" for i in range(n)], [f"e{i}" for i in range(n)],
                        [i * 1_000_000 for i in range(n)], list(range(n)), SPIKE)
    shared = RedisWindowStore.from_url(redis_url, namespace=namespace,
                                       allowed_lateness=timedelta(hours=5))
    end = n * 1_000_000
    wide = [Interval(0, 3 * 3600 * 1_000_000)]
    for k in range(13):
        assert shared.tally(f"p{k}", end, wide) == memory.tally(f"p{k}", end, wide)
    shared.flush_namespace()


def test_kill_and_restart_loses_no_acknowledged_event() -> None:
    server = RedisServer(persistent=True).start()
    try:
        store = RedisWindowStore.from_url(server.url, retries=2, backoff=0.05,
                                          socket_timeout=2, socket_connect_timeout=1)
        acknowledged = 0
        for start in range(0, 2_000, 100):
            rows = range(start, start + 100)
            store.observe_many(["p"] * 100, [f"e{i}" for i in rows],
                               [i * 1_000 for i in rows], [1] * 100, SPIKE)
            acknowledged = start + 100
            if start == 1_000:
                server.kill()
                with pytest.raises(StoreUnavailable):
                    store.observe_many(["p"], ["x"], [1_000_000], [1], SPIKE)
                server.start()
        # Resend the last acknowledged batch as a redelivery would: counted once.
        rows = range(acknowledged - 100, acknowledged)
        again = store.observe_many(["p"] * 100, [f"e{i}" for i in rows],
                                   [i * 1_000 for i in rows], [1] * 100, SPIKE)
        assert set(again.statuses) == {Status.DUPLICATE}
        (tally,) = store.tally("p", 2_000 * 1_000, [Interval(0, 10 * MINUTE)])
        assert tally == Tally(2_000, 2_000)
        store.close()
    finally:
        server.stop()


def test_redis_client_errors_do_not_leak(store: RedisWindowStore) -> None:
    store.client.set(f"{store._base('p')}:ev", "not a zset")
    with pytest.raises(Exception) as info:
        store.observe(Observation("p", "a", 1), SPIKE)
    assert not isinstance(info.value, redis.RedisError)
    assert "redis observe" in str(info.value)
