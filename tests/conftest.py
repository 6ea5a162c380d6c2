"""Shared fixtures: real Redis, PostgreSQL and MariaDB servers started on free loopback ports.

A test that needs a server it cannot start fails under CI (``CI=true``) and is skipped elsewhere,
with the reason either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from auptimate_core.testing.servers import (
    MariaDBServer,
    PostgresServer,
    RedisServer,
    ServerError,
)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, error: Exception) -> None:
    message = f"cannot start {what}: {error}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (each test uses its own namespace or flushes)."""
    try:
        server = RedisServer().start()
    except ServerError as error:
        _unavailable("redis-server", error)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except ServerError as error:
        _unavailable("PostgreSQL", error)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    try:
        server = MariaDBServer().start()
    except ServerError as error:
        _unavailable("MariaDB", error)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_url(mariadb_server: MariaDBServer) -> str:
    pytest.importorskip("pymysql")
    return mariadb_server.url()
