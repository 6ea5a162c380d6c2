"""The test servers are real: a Redis, a PostgreSQL and a MariaDB answer on loopback."""

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


@pytest.mark.mariadb
def test_mariadb_server_answers(mariadb_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(mariadb_url)
    with engine.connect() as conn:
        assert "MariaDB" in conn.execute(sa.text("select version()")).scalar_one()
        charset = conn.execute(sa.text(
            "select default_character_set_name, default_collation_name"
            " from information_schema.schemata where schema_name = database()")).one()
        assert tuple(charset) == ("utf8mb4", "utf8mb4_bin")
        conn.execute(sa.text("create table t (id varchar(10) primary key)"))
        conn.execute(sa.text("insert into t values (:a)"), {"a": "\U0001f600x"})
        assert conn.execute(sa.text("select id from t")).scalar_one() == "\U0001f600x"
    engine.dispose()
