"""The test servers are real: a Redis and a PostgreSQL answer on loopback."""

from __future__ import annotations

import pytest

pytestmark = []


@pytest.mark.redis
def test_redis_server_answers(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    assert client.info("server")["redis_version"]
    client.close()


@pytest.mark.postgres
def test_postgres_server_answers(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert "PostgreSQL" in conn.execute(sa.text("select version()")).scalar_one()
    engine.dispose()
