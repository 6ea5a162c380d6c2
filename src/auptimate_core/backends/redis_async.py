"""``AsyncRedisWindowStore``: the Redis window store on redis-py's asyncio client.

It is :class:`~auptimate_core.backends.redis.RedisWindowStore` itself, the same keys, Lua
scripts, encoding, retries and answers, given a client that is redis-py's asyncio client seen
as the sync one (:class:`Awaited`): the store's code runs in a greenlet
(:mod:`auptimate_core.aio.greenlets`) and each of its round trips is awaited on the event loop.
A sync store and an async store on one namespace are one store.

The store's calls take turns (one at a time per store object, in arrival order): the sync
store holds a :mod:`threading` lock across I/O the first time it checks the server's
persistence. An engine's calls are serialised anyway. While a failed call is retried, the sync
store's backoff (50 ms, then doubled, ``retries`` times at most) is awaited: the loop runs
other tasks meanwhile.

A Redis Cluster (``redis+cluster://``) is reached through ``redis.asyncio.cluster``; the store
pipelines its script calls per node as it does on the sync cluster client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..aio.greenlets import wait
from ..aio.stores import BridgedWindowStore
from ..errors import MissingExtra, ValidationError
from .redis import RedisWindowStore

try:
    import redis.asyncio as aioredis
    from redis.asyncio.client import Pipeline
    from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
    from redis.asyncio.connection import AbstractConnection, ConnectionPool
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "aio") from error

__all__ = ["AsyncRedisWindowStore", "Awaited"]

_SEEN_AS_SYNC = (Pipeline, ClusterPipeline, ConnectionPool, AbstractConnection)


def _iterate(found: AsyncIterator[Any]) -> Iterator[Any]:
    while True:
        try:
            yield wait(found.__anext__())
        except StopAsyncIteration:
            return


def _synced(value: Any) -> Any:
    """A value of the asyncio client as the sync client gives it."""
    if isinstance(value, _SEEN_AS_SYNC):  # pipelines are awaitable too: test them first
        return Awaited(value)
    if inspect.isawaitable(value):
        value = wait(value)
        if isinstance(value, _SEEN_AS_SYNC):
            return Awaited(value)
    if isinstance(value, AsyncIterator):
        return _iterate(value)
    return value


def _raw(value: Any) -> Any:
    return value.target if isinstance(value, Awaited) else value


class Awaited:
    """An object of redis-py's asyncio client (``target``: a client, pipeline, pool or
    connection) seen as its sync twin, for sync code run in a greenlet: a call whose result is
    awaitable is awaited there, the client's pipelines, pools and connections are seen the
    same way, and an async iterator (``scan_iter``) is an iterator. Attributes are the
    target's; the methods of the two clients have the same names and arguments."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def retry_pause(self, seconds: float) -> None:
        """The backoff before a retry, awaited on the loop (see
        :class:`~auptimate_core.backends.redis_client.PausesOnLoop`)."""
        wait(asyncio.sleep(seconds))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if not callable(value):
            return _synced(value)

        def call(*args: Any, **kwargs: Any) -> Any:
            return _synced(value(*map(_raw, args), **kwargs))

        return call


class _NodePool:
    """A cluster node's connections, as a sync client's per-node pool gives them."""

    def __init__(self, node: ClusterNode) -> None:
        self._node: Any = node  # (the type stubs lack release())
        self.connection_kwargs = node.connection_kwargs

    def get_connection(self, *_: Any, **__: Any) -> Awaited:
        return Awaited(self._node.acquire_connection())

    def release(self, connection: Any) -> None:
        self._node.release(_raw(connection))


class _NodeServer:
    """What the sync store asks of one node of a sync cluster client
    (``get_redis_connection(node)``): its pool and its configuration."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node
        self.connection_pool = _NodePool(node)

    def config_get(self, pattern: str) -> Any:
        return wait(self._node.execute_command("CONFIG GET", pattern))


class AwaitedCluster(Awaited):
    """:class:`Awaited` for ``redis.asyncio.cluster.RedisCluster``, whose nodes hold their
    connections themselves where the sync client has a client per node."""

    __slots__ = ()

    def get_redis_connection(self, node: ClusterNode) -> _NodeServer:
        return _NodeServer(node)


class AsyncRedisWindowStore(BridgedWindowStore):
    """An :class:`~auptimate_core.aio.AsyncWindowStore` on Redis (see the module notes).

    ``client`` is a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``;
    ``namespace`` and ``options`` are those of
    :class:`~auptimate_core.backends.redis.RedisWindowStore`, whose instance (on the awaited
    client) is :attr:`sync_store`.
    """

    def __init__(self, client: Any, namespace: str = "auptimate", **options: Any) -> None:
        self.client = client
        self.owns_client = False
        seen = AwaitedCluster(client) if isinstance(client, RedisCluster) else Awaited(client)
        self.sync_store = RedisWindowStore(seen, namespace, **options)
        super().__init__(self.sync_store)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncRedisWindowStore:
        """A store on ``redis://[:password@]host:port/db``, ``rediss://`` (TLS), ``unix://``
        (a socket) or ``redis+cluster://host:port`` (a Redis Cluster, discovered from that
        node), as :meth:`RedisWindowStore.from_url
        <auptimate_core.backends.redis.RedisWindowStore.from_url>`. Nothing connects before
        the first call."""
        client_options = {key: options.pop(key) for key in
                          ("socket_timeout", "socket_connect_timeout") if key in options}
        client_options.setdefault("socket_timeout", 10.0)
        client_options.setdefault("socket_connect_timeout", 5.0)
        client: Any
        if url.startswith("redis+cluster://"):
            client = RedisCluster.from_url("redis://" + url[len("redis+cluster://"):],
                                           **client_options)
        elif url.startswith(("redis://", "rediss://", "unix://")):
            client = aioredis.Redis.from_url(url, **client_options)
        else:
            raise ValidationError("url", f"{url!r} is not a redis://, rediss://, unix:// or "
                                  "redis+cluster:// URL")
        store = cls(client, **options)
        store.owns_client = True
        return store

    @property
    def namespace(self) -> str:
        """The prefix of every key of this store."""
        return self.sync_store.namespace

    async def flush_namespace(self) -> int:
        """Delete every key of this namespace (for tests and resets); returns how many."""
        return await self.run(self.sync_store.flush_namespace)

    async def close(self) -> None:
        """Close the client if this store made it (``from_url``); a given client is the
        caller's to close."""
        if self.owns_client:
            with contextlib.suppress(RedisError):  # a server already gone is no error here
                await self.client.aclose()
