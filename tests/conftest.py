"""Shared fixtures: real Redis, PostgreSQL and MariaDB servers started on free loopback ports.

A test that needs a server it cannot start fails under CI (``CI=true``) and is skipped elsewhere,
with the reason either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings

from auptimate_core.testing.servers import (
    MariaDBServer,
    PostgresServer,
    RedisClusterServers,
    RedisServer,
    ServerError,
)

ServerT = TypeVar("ServerT", RedisServer, RedisClusterServers, PostgresServer, MariaDBServer)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Property tests hold behaviour, not speed: on a busy two-core machine the generation of an
# example may be slow, which is no failure of the code under test.
settings.register_profile(
    "suite", deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("suite")


def _unavailable(what: str, error: Exception) -> None:
    message = f"cannot start {what}: {error}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _serve(what: str, server: Callable[[], ServerT]) -> Iterator[ServerT]:
    """A started server for the session, stopped at its end (skipped or failed if it cannot
    start)."""
    try:
        started = server().start()
    except ServerError as error:
        _unavailable(what, error)
        raise
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (each test uses its own namespace or flushes)."""
    yield from _serve("redis-server", RedisServer)


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """One Redis Cluster of three masters for the session (tests use namespaces of their own)."""
    yield from _serve("a Redis Cluster", RedisClusterServers)


@pytest.fixture(scope="session")
def cluster_url(redis_cluster: RedisClusterServers) -> str:
    return redis_cluster.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from _serve("PostgreSQL", PostgresServer)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    yield from _serve("MariaDB", MariaDBServer)


@pytest.fixture(scope="session")
def mariadb_url(mariadb_server: MariaDBServer) -> str:
    pytest.importorskip("pymysql")
    return mariadb_server.url()
