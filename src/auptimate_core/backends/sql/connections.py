"""A connection from an Engine or a Connection, for the SQL ranking and its loader, with the
driver's errors mapped: an unreachable server is :class:`~auptimate_core.errors.StoreUnavailable`,
any other failure :class:`~auptimate_core.errors.StoreError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import MissingExtra, StoreError, StoreUnavailable

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["connected"]


@contextmanager
def connected(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection from ``bind`` (a Connection is used as is), with driver errors mapped to the
    library's."""
    try:
        if isinstance(bind, Connection):
            yield bind
            return
        try:
            conn = bind.connect()
        except sa.exc.DBAPIError as error:
            raise StoreUnavailable(f"cannot connect to {bind.url!r}: {error.orig}") from error
        with conn:
            yield conn
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated or isinstance(error, sa.exc.InterfaceError):
            raise StoreUnavailable(f"database connection lost: {error.orig}") from error
        raise StoreError(f"database error: {error.orig}") from error
