"""The Redis store's copies of the pools' windows: answers vouched for by the client and checked
by the server are the memory store's answers, whoever else writes the pools."""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import Interval, Observation, ObservedBatch, Tally
from auptimate_core.testing.window_store import ModelStore

pytestmark = pytest.mark.redis

MINUTE = 60_000_000
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]
LATENESS = timedelta(minutes=5)

Batch = tuple[list[str], list[str], list[int], list[int]]


def batches(n: int, size: int, pools: int, seed: int = 5, again: float = 0.05) -> list[Batch]:
    """Batches over a few pools: mostly in order, some late, some (``again``) redelivered."""
    rng = random.Random(seed)
    at, out, sent = 10 * MINUTE, [], []
    for b in range(n):
        keys, ids, ats, amounts = [], [], [], []
        for i in range(size):
            at += rng.randrange(0, 20_000_000)
            if sent and rng.random() < again:
                key, event, when = rng.choice(sent)  # a redelivery
            else:
                late = rng.random() < 0.05
                key, event, when = f"p{rng.randrange(pools)}", f"e{b}.{i}", (
                    at - rng.randrange(0, 8 * MINUTE) if late else at)
                sent.append((key, event, when))
            keys.append(key)
            ids.append(event)
            ats.append(when)
            amounts.append(rng.randrange(1, 1000))
        out.append((keys, ids, ats, amounts))
    return out


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    store = RedisWindowStore.from_url(redis_url, namespace=name)
    store.flush_namespace()
    store.close()


def _same(got: ObservedBatch, want: ObservedBatch, where: str) -> None:
    assert got.statuses == want.statuses, where
    assert got.counts == want.counts, where
    assert got.totals == want.totals, where
    assert got.first_seen == want.first_seen, where


@pytest.mark.parametrize("totals", [False, True])
def test_two_stores_writing_the_same_pools_answer_as_one_memory_store(
    redis_url: str, namespace: str, totals: bool,
) -> None:
    # Each store's copies go stale whenever the other writes: the server refuses them, answers
    # itself, and the answers stay the memory store's.
    stores = [RedisWindowStore.from_url(redis_url, namespace=namespace) for _ in range(2)]
    memory = MemoryWindowStore(allowed_lateness=LATENESS)
    rng = random.Random(1)
    for n, (keys, ids, ats, amounts) in enumerate(batches(40, 60, pools=6)):
        store = stores[0] if rng.random() < 0.7 else stores[1]
        got = store.observe_many(keys, ids, ats, amounts, SPIKE, not_after=max(ats),
                                 totals=totals)
        _same(got, memory.observe_many(keys, ids, ats, amounts, SPIKE, not_after=max(ats),
                                       totals=totals), f"batch {n}")
    for store in stores:
        store.close()


def test_a_copy_made_stale_by_a_flush_is_refused(redis_url: str, namespace: str) -> None:
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    memory = MemoryWindowStore(allowed_lateness=LATENESS)
    work = batches(6, 50, pools=3)
    for keys, ids, ats, amounts in work[:3]:
        store.observe_many(keys, ids, ats, amounts, SPIKE)
    store.flush_namespace()  # the server forgets all: the copies must not be believed
    for n, (keys, ids, ats, amounts) in enumerate(work[3:]):
        got = store.observe_many(keys, ids, ats, amounts, SPIKE)
        _same(got, memory.observe_many(keys, ids, ats, amounts, SPIKE), f"batch {n}")
    store.close()


def test_a_longer_window_asked_later_is_counted_in_full(
    redis_url: str, namespace: str,
) -> None:
    # The memory store may forget what a minute no longer reaches; the model forgets nothing,
    # as the Redis store, which keeps every id for the dedup horizon.
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    model = ModelStore(LATENESS // timedelta(microseconds=1))
    for n, (keys, ids, ats, amounts) in enumerate(batches(8, 40, pools=2)):
        intervals = [Interval(0, MINUTE)] if n < 4 else SPIKE  # copies made for a minute
        got = store.observe_many(keys, ids, ats, amounts, intervals)
        for i, observation in enumerate(map(Observation, keys, ids, ats, amounts)):
            want = model.observe(observation, intervals)
            assert got.statuses[i] is want.status, (n, i)
            assert [c[i] for c in got.counts] == (
                [t.count for t in want.tallies] or [0] * len(intervals)), (n, i)
            assert got.first_seen[i] == want.first_seen, (n, i)
    store.close()


def test_threads_sharing_a_store_and_its_pools_lose_nothing(
    redis_url: str, namespace: str,
) -> None:
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    base = 100 * MINUTE
    failures: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for b in range(30):
                n = 20
                keys = [f"p{(b + i) % 5}" for i in range(n)]
                ids = [f"{thread}.{b}.{i}" for i in range(n)]
                ats = [base + b * 1_000 + i for i in range(n)]
                got = store.observe_many(keys, ids, ats, [1] * n, SPIKE)
                # Each new event counts at least itself, at most every event sent so far.
                assert all(1 <= c <= 4 * 30 * n for c in got.counts[0])
        except BaseException as error:  # the test thread reports it
            failures.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    for p in range(5):  # every event of every thread counted once
        assert store.tally(f"p{p}", base + MINUTE // 2, [Interval(0, MINUTE)]) == (
            Tally(4 * 30 * 20 // 5, 4 * 30 * 20 // 5),)
    store.close()


def test_known_pools_cost_the_server_one_insert_per_event_and_no_window_reads(
    redis_url: str, namespace: str,
) -> None:
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    first, second = batches(2, 200, pools=10, seed=9, again=0)
    store.observe_many(*first, SPIKE)  # the store learns the pools' windows
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    store.observe_many(*second, SPIKE)  # late events among them
    stats = client.info("commandstats")
    assert "cmdstat_zcount" not in stats and "cmdstat_zrangebyscore" not in stats
    assert stats["cmdstat_zadd"]["calls"] == len(set(second[0]))  # one per pool
    client.close()
    store.close()


def test_a_pool_is_a_hash_table_and_a_skip_list_from_its_first_event(
    redis_url: str, namespace: str,
) -> None:
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    store.observe_many(["p"], ["a"], [1], [1], SPIKE)
    events, amounts = store._keys("p")
    assert store.client.object("encoding", events) == b"skiplist"
    assert store.client.object("encoding", amounts) == b"hashtable"
    # The edge member that makes it so is outside every window and every count.
    assert store.tally("p", 1, [Interval(0, 10**15)]) == (Tally(1, 1),)
    store.close()


def test_copies_start_again_past_their_budget(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from auptimate_core.backends import redis_batch

    monkeypatch.setattr(redis_batch, "POOLS", 3)
    monkeypatch.setattr(redis_batch, "EVENTS", 40)
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    memory = MemoryWindowStore(allowed_lateness=LATENESS)
    held = []
    for n, (keys, ids, ats, amounts) in enumerate(batches(20, 30, pools=6)):
        got = store.observe_many(keys, ids, ats, amounts, SPIKE, totals=True)
        _same(got, memory.observe_many(keys, ids, ats, amounts, SPIKE, totals=True),
              f"batch {n}")
        assert len(store._copies.pools) <= 6  # at most the cap and the pools of one call
        held.append(store._copies.held)
    assert any(later < earlier for earlier, later in itertools.pairwise(held))  # started again
    store.close()


def test_a_pool_with_events_and_no_state_is_not_taken_for_a_new_one(
    redis_url: str, namespace: str,
) -> None:
    # As the store's older layout left them (its state in a key of its own).
    store = RedisWindowStore.from_url(redis_url, namespace=namespace)
    events, amounts = store._keys("p")
    store.client.zadd(events, {"old": 100})
    store.client.hset(amounts, "old", "5:x.0.0:C1")
    got = store.observe_many(["p", "p"], ["a", "b"], [110, 120], [1, 1], [Interval(0, 100)])
    assert got.counts == [[2, 3]]
    store.close()
