"""The Redis store on a real three-node Redis Cluster started by the test."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import DAY, Interval, Observation, WindowStore
from auptimate_core.testing.window_store import WindowStoreContract

pytestmark = pytest.mark.redis


class TestRedisClusterStore(WindowStoreContract):
    client: object = None

    @pytest.fixture(autouse=True)
    def _cluster(self, cluster_url: str) -> None:
        if TestRedisClusterStore.client is None:  # one client: discovery is not free
            TestRedisClusterStore.client = RedisWindowStore.from_url(cluster_url).client

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return RedisWindowStore(
            self.client, namespace=f"c{uuid.uuid4().hex[:12]}",
            allowed_lateness=timedelta(microseconds=allowed_lateness_us),
            dedup_horizon=timedelta(microseconds=dedup_horizon_us),
        )


def test_pools_spread_over_the_slots(cluster_url: str) -> None:
    store = RedisWindowStore.from_url(cluster_url, namespace=f"c{uuid.uuid4().hex[:8]}")
    nodes = set()
    for i in range(30):
        pool = f"pool:{{{i}}} x"
        store.observe(Observation(pool, "e", 1), [Interval(0, 10)])
        node = store.client.get_node_from_key(store._keys(pool)[0])
        nodes.add(node.name)
        for key in store._keys(pool):  # one pool, one slot
            assert store.client.keyslot(key) == store.client.keyslot(store._keys(pool)[0])
    assert len(nodes) == 3
    store.close()


def test_batches_over_many_pools_answer_as_the_memory_store(cluster_url: str) -> None:
    # Runs grouped by hash slot, one script call per group, pipelined per node.
    from auptimate_core.backends.memory import MemoryWindowStore

    store = RedisWindowStore.from_url(cluster_url, namespace=f"c{uuid.uuid4().hex[:8]}",
                                      batch_size=50)
    memory = MemoryWindowStore(allowed_lateness=timedelta(minutes=5))
    window = [Interval(0, 60_000_000), Interval(60_000_000, 3_600_000_000)]
    at = 0
    for b in range(6):
        keys, ids, ats = [], [], []
        for i in range(400):
            at += 10_000 * (i % 7)
            keys.append(f"pool {(i * 37 + b) % 150}")
            ids.append(f"e{b}.{i}" if i % 50 else "e0.1")  # a few redeliveries
            ats.append(at)
        amounts = list(range(1, 401))
        got = store.observe_many(keys, ids, ats, amounts, window, totals=b % 2 == 1)
        want = memory.observe_many(keys, ids, ats, amounts, window, totals=b % 2 == 1)
        assert got == want, b
    store.close()
