"""Scratch schemas for tests on a shared database server: a fresh name, and everything under it
dropped afterwards (a schema on PostgreSQL, a database on MySQL and MariaDB)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def drop_schemas(url: str, schemas: Iterable[str | None]) -> None:
    """Drop each of ``schemas`` (a database on MySQL and MariaDB) on ``url``'s server, with
    all it holds; None stands for no schema."""
    engine = sa.create_engine(url)
    drop = ("DROP DATABASE IF EXISTS {}" if engine.dialect.name in ("mysql", "mariadb")
            else "DROP SCHEMA IF EXISTS {} CASCADE")
    try:
        with engine.begin() as conn:
            for schema in schemas:
                if schema is not None:
                    conn.execute(sa.text(drop.format(schema)))
    finally:
        engine.dispose()


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """A new schema name on ``url``'s server, starting with ``prefix``; on leaving, the schema
    (if anything made it) is dropped with all it holds."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_schemas(url, [name])
