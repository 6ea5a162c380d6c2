"""The Redis store on a real three-node Redis Cluster started by the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import DAY, Interval, Observation, WindowStore
from auptimate_core.testing.servers import RedisClusterServers, ServerError
from auptimate_core.testing.window_store import WindowStoreContract

from .conftest import _unavailable

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    try:
        cluster = RedisClusterServers(3).start()
    except ServerError as error:
        _unavailable("a Redis Cluster", error)
        raise
    try:
        yield cluster.url
    finally:
        cluster.stop()


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
