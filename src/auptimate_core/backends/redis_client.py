"""How the Redis window store talks to Redis: bounded retries with the driver's errors mapped
to the library's, Lua scripts called by SHA, EVALSHA streamed over one connection or pipelined
per node of a Redis Cluster, and a check, on first use, that the server persists anything.

A :class:`RedisCaller` wraps one ``redis.Redis`` or ``redis.cluster.RedisCluster`` client (or
an asyncio client seen as one: :class:`PausesOnLoop`).
Connection errors and timeouts are retried with exponential backoff and then raised as
:class:`~auptimate_core.errors.StoreUnavailable`; any other Redis error is a
:class:`~auptimate_core.errors.StoreError`. A script is loaded on its first call and loaded
again when the server answers ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``). Retrying is safe
only for calls that answer alike when made again: every call the store makes carries its
delivery token for that reason.

Thread-safe: redis-py clients are (a connection pool); a caller keeps no other mutable state
than its script SHAs and whether it has checked the server's persistence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import MissingExtra, StoreError, StoreUnavailable

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "redis") from error
pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack

    pack_command = _hiredis_pack
except ImportError:  # pragma: no cover - hiredis comes with the extra
    pack_command = None

__all__ = ["Call", "ClusterClient", "PausesOnLoop", "RedisCaller", "decoded", "lua_source"]

# The store's logger: what the store's calls log is found under one name.
logger = logging.getLogger("auptimate_core.backends.redis")

T = TypeVar("T")
Call = tuple[list[str], list[Any]]
"""One script call: its keys and its arguments."""
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


@runtime_checkable
class PausesOnLoop(Protocol):
    """A client whose calls are awaited on an event loop (the asyncio store's): the backoff
    before a retry is awaited there too, where ``time.sleep`` would hold the loop."""

    def retry_pause(self, seconds: float) -> None:
        """Wait ``seconds`` before the next try."""


@runtime_checkable
class ClusterClient(Protocol):
    """What a Redis Cluster client gives that a single server's does not: the node of a key,
    the primaries, and a node's own connection (``redis.cluster.RedisCluster``, or the
    asyncio one seen as it)."""

    def get_node_from_key(self, key: str) -> Any: ...

    def get_primaries(self) -> list[Any]: ...

    def get_redis_connection(self, node: Any) -> Any: ...


def _packed(conn: Any, commands: list[tuple[Any, ...]]) -> Any:
    """``commands`` in Redis's protocol, as ``conn`` would pack them: redis-py hands every
    argument to hiredis when it is installed, through a generator per argument; this skips
    the generator."""
    if pack_command is None:  # pragma: no cover - hiredis comes with the extra
        return conn.pack_commands(commands)
    return [pack_command(command) for command in commands]


def lua_source(name: str) -> str:
    """The text of the script ``name`` (``"observe.lua"``) shipped in ``backends/lua/``."""
    return resources.files("auptimate_core.backends").joinpath("lua", name).read_text()


def decoded(raw: Any) -> str:
    """A reply as text (a client without ``decode_responses`` answers bytes).

    >>> decoded(b"1:42"), decoded(7)
    ('1:42', '7')
    """
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisCaller:
    """Calls ``client`` for a store: ``sources`` are its Lua scripts by name, ``retries`` and
    ``backoff`` (seconds, doubled after each failed try) bound the retries of a failed call.
    ``on_volatile`` is called once, with the servers' addresses, when the first script load
    finds a server that persists nothing (no RDB ``save`` points and ``appendonly no``).
    """

    def __init__(
        self,
        client: Any,
        sources: Mapping[str, str],
        *,
        retries: int,
        backoff: float,
        on_volatile: Callable[[list[str]], object],
    ) -> None:
        self.client = client
        self.cluster = isinstance(client, ClusterClient)
        self.retries = retries
        self.backoff = backoff
        self.on_volatile = on_volatile
        self._pause: Callable[[float], None] = (
            client.retry_pause if isinstance(client, PausesOnLoop) else time.sleep)
        self._sources = dict(sources)
        self._shas: dict[str, str] = {}
        self._persistence_checked = False
        self._check_lock = threading.Lock()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with bounded retries on transient errors; map driver errors."""
        attempt = 0
        while True:
            try:
                return fn()
            except NoScriptError:
                self._shas.clear()  # the server lost its scripts (restart, SCRIPT FLUSH)
                attempt += 1
                if attempt > self.retries:
                    raise StoreError(f"redis {what}: scripts could not be loaded") from None
            except _TRANSIENT as error:
                attempt += 1
                if attempt > self.retries:
                    raise StoreUnavailable(
                        f"redis {what} failed after {attempt} tries: {error}"
                    ) from error
                self._pause(self.backoff * 2 ** (attempt - 1))
            except RedisError as error:
                if "NOSCRIPT" in str(error):
                    self._shas.clear()
                    attempt += 1
                    if attempt <= self.retries:
                        continue
                raise StoreError(f"redis {what}: {error}") from error

    def sha(self, name: str) -> str:
        """The SHA of script ``name``, loading it first if the server may not have it."""
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = str(self.client.script_load(self._sources[name]))
            if not self._persistence_checked:
                self._check_persistence()
        return sha

    def _check_persistence(self) -> None:
        """Report once the servers that persist nothing (to ``on_volatile``).

        A server that refuses ``CONFIG`` (renamed or not permitted) is not checked."""
        with self._check_lock:
            if self._persistence_checked:
                return
            servers = ([self.client.get_redis_connection(node)
                        for node in self.client.get_primaries()]
                       if self.cluster else [self.client])
            volatile = []
            try:
                for server in servers:
                    save = server.config_get("save").get("save", "")
                    appendonly = server.config_get("appendonly").get("appendonly", "no")
                    if not decoded(save).strip() and decoded(appendonly) == "no":
                        kwargs = server.connection_pool.connection_kwargs
                        volatile.append(kwargs.get("path")
                                        or f"{kwargs.get('host')}:{kwargs.get('port')}")
            except (RedisConnectionError, RedisTimeoutError):
                return  # checked at the next first use; the call itself reports the failure
            except RedisError as error:
                logger.debug("redis persistence not checked: %s", error)
            self._persistence_checked = True
        if volatile:
            self.on_volatile(volatile)

    def evalsha_many(self, name: str, calls: list[Call]) -> list[Any]:
        """Call script ``name`` once per call, pipelined; the replies in order."""
        def run() -> list[Any]:
            sha = self.sha(name)
            if self.cluster:
                return self._evalsha_on_nodes(sha, calls)
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            results: list[Any] = pipe.execute()
            return results

        return self.call(name, run)

    def evalsha_stream(
        self,
        name: str,
        chunks: Callable[[], Iterable[list[Call]]],
        read: Callable[[int, Any], None],
    ) -> None:
        """Call a script on every chunk of calls, handing each reply to ``read`` in order.

        On a single server one chunk stays in flight while the next is encoded and sent, so
        the client's encoding overlaps the server's work. ``chunks`` is a function, as a
        retry starts the whole sequence again (safe: every run carries its token).
        """

        def run() -> None:
            sha = self.sha(name)
            index = 0
            if self.cluster:
                for calls in chunks():
                    for reply in self._evalsha_on_nodes(sha, calls):
                        read(index, reply)
                        index += 1
                return
            pool = self.client.connection_pool
            conn = pool.get_connection()
            try:
                in_flight = 0
                for calls in chunks():
                    conn.send_packed_command(_packed(
                        conn, [("EVALSHA", sha, len(keys), *keys, *args) for keys, args in calls]))
                    for _ in range(in_flight):
                        read(index, conn.read_response())
                        index += 1
                    in_flight = len(calls)
                for _ in range(in_flight):
                    read(index, conn.read_response())
                    index += 1
            except BaseException:
                conn.disconnect()  # replies may be left unread on it
                raise
            finally:
                pool.release(conn)

        self.call(name, run)

    def _evalsha_on_nodes(self, sha: str, calls: list[Call]) -> list[Any]:
        # A cluster pipeline refuses EVALSHA, so pipeline per node (every key of one call has
        # the same hash tag, hence the same slot and node): all nodes are sent their share
        # before any reply is read, so the nodes work at the same time.
        by_node: dict[str, list[int]] = {}
        nodes: dict[str, Any] = {}
        for index, (keys, _) in enumerate(calls):
            node = self.client.get_node_from_key(keys[0])
            nodes[node.name] = node
            by_node.setdefault(node.name, []).append(index)
        results: list[Any] = [None] * len(calls)
        taken: list[tuple[Any, Any, list[int]]] = []
        try:
            for node_name, indexes in by_node.items():
                pool = self.client.get_redis_connection(nodes[node_name]).connection_pool
                conn = pool.get_connection()
                taken.append((pool, conn, indexes))
                conn.send_packed_command(_packed(
                    conn, [("EVALSHA", sha, len(calls[i][0]), *calls[i][0], *calls[i][1])
                           for i in indexes]))
            for _, conn, indexes in taken:
                for index in indexes:
                    results[index] = conn.read_response()
        except BaseException:
            for _, conn, _ in taken:
                conn.disconnect()  # replies may be left unread on it
            raise
        finally:
            for pool, conn, _ in taken:
                pool.release(conn)
        return results
