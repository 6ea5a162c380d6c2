"""The Redis store on a real redis-server when things fail: a server that is down, dies, is
killed mid-run or loses a reply; what it persists; driver errors."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.errors import StoreUnavailable
from auptimate_core.store import Interval, Observation, Status, Tally
from auptimate_core.testing.servers import RedisServer, free_port

from .test_redis_store import MINUTE, MIXED, SPIKE, _history, _mixed_call

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisWindowStore]:
    s = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    yield s
    s.flush_namespace()
    s.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "auptimate_core.backends.redis"]


def test_unreachable_server_is_store_unavailable() -> None:
    store = RedisWindowStore.from_url(f"redis://127.0.0.1:{free_port()}/0", retries=1,
                                      backoff=0.01, socket_connect_timeout=0.5)
    with pytest.raises(StoreUnavailable, match="failed after 2 tries"):
        store.observe(Observation("p", "a", 1), SPIKE)


def test_a_batch_retried_after_the_server_died_is_answered_as_the_first_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The engine's failure: a call records its batch, the server dies before the next round
    # trip (the lifecycle's), and the engine calls again with the same batch name once the
    # server is back (from its append-only file).
    server = RedisServer(persistent=True).start()
    try:
        store = RedisWindowStore.from_url(server.url, namespace="retry", retries=1,
                                          backoff=0.01, socket_timeout=2,
                                          socket_connect_timeout=1)
        with caplog.at_level(logging.WARNING, logger="auptimate_core.backends.redis"):
            _history(store)
        assert not _warnings(caplog)  # append-only file: nothing to warn of
        first = _mixed_call(store, "engine-batch-1")
        assert first.statuses == MIXED
        server.kill()
        with pytest.raises(StoreUnavailable):
            store.states([("p", "spike")])
        with pytest.raises(StoreUnavailable):  # a retry while it is down fails the same way
            _mixed_call(store, "engine-batch-1")
        server.start()
        again = _mixed_call(store, "engine-batch-1")
        assert again == first
        assert [s.count for s in store.tally("p", 30 * MINUTE + 5, SPIKE)] == [4, 1]
        store.close()
    finally:
        server.stop()


class _ReplyDropper:
    """A TCP relay to a redis-server that, once armed, passes requests on but answers the next
    reply by closing the client's connection: the network failing after the server has acted.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.armed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
                threading.Thread(target=self._pump, args=(client, server, False),
                                 daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, True),
                                 daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    break
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_batch_whose_reply_was_lost_is_answered_as_the_first_time(redis_url: str) -> None:
    # The server runs the call but its reply never arrives. Called again with the same name,
    # each event is answered as the first time, as the memory store answers the same calls.
    relay = _ReplyDropper(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    store = RedisWindowStore.from_url(f"redis://127.0.0.1:{relay.port}/0", retries=0,
                                      namespace=f"t{uuid.uuid4().hex[:12]}")
    try:
        _history(store)
        relay.armed.set()
        with pytest.raises(StoreUnavailable):
            _mixed_call(store, "lost-1")
        assert not relay.armed.is_set()
        assert store.client.zscore(store._keys("p")[0], "n3") is not None  # it was recorded
        again = _mixed_call(store, "lost-1")
        memory = MemoryWindowStore(allowed_lateness=timedelta(minutes=5))
        _history(memory)
        assert again == _mixed_call(memory, None)
        assert again.statuses == MIXED
    finally:
        store.flush_namespace()
        store.close()
        relay.close()


def test_a_server_that_persists_nothing_is_warned_of_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The session's server runs without save points or an append-only file.
    with caplog.at_level(logging.WARNING, logger="auptimate_core.backends.redis"):
        store = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
        store.observe(Observation("p", "a", 1), SPIKE)
        store.observe(Observation("p", "b", 2), SPIKE)
        store.tally("p", 2, SPIKE)
        store.flush_namespace()
        store.close()
    (record,) = _warnings(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert redis_url.split("//")[1].split("/")[0] in message
    for lost in ("windows", "transaction ids", "firing states"):
        assert lost in message


def test_a_server_that_refuses_config_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer(extra_args=("--rename-command", "CONFIG", "")) as server:
        store = RedisWindowStore.from_url(server.url)
        with caplog.at_level(logging.WARNING, logger="auptimate_core.backends.redis"):
            assert store.observe(Observation("p", "a", 1), SPIKE).status is Status.NEW
        assert not _warnings(caplog)
        store.close()


def test_a_server_with_save_points_is_not_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer(extra_args=("--save", "3600 1")) as server:
        store = RedisWindowStore.from_url(server.url)
        with caplog.at_level(logging.WARNING, logger="auptimate_core.backends.redis"):
            assert store.observe(Observation("p", "a", 1), SPIKE).status is Status.NEW
        assert not _warnings(caplog)
        store.close()


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
