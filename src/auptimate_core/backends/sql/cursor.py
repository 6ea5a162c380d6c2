"""The hot statements of the SQL ledger on PostgreSQL, run on the driver's cursor.

SQLAlchemy's own path for a statement on a cursor (its cursor events, logging and error
mapping), without the execution context and result it builds for ``execute``. On psycopg's
pipeline mode (libpq 14 or later) several statements, or a statement and the ``COMMIT``, go
without waiting for each answer: :func:`fetch` with ``pipelined`` sends the ``BEGIN`` the driver
sends before a unit of work's first statement with that statement, in one round trip; with
``commit`` the ``COMMIT`` goes behind the statement, and the server commits without waiting for
this process (a statement that fails aborts the commit: the transaction is rolled back).
:func:`send_ahead` sends a unit of work's statements in one pipeline, each as soon as it is
built, so that the server writes the rows of one while this process builds the next.
"""

from __future__ import annotations

import itertools
import select
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias

try:
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["Statement", "fetch", "fetch_all", "send_ahead"]

Statement: TypeAlias = tuple[str, dict[str, Any], str | None]
"""A statement of a write: its text (compiled for the dialect), its parameters and the pool it
appends to (None for none)."""


def fetch(conn: Connection, sql: str, params: Mapping[str, Any], driver_error: type[Exception],
          *, pipelined: bool = False, commit: bool = False) -> Any:
    """The first row of ``sql`` run on ``conn``'s cursor (see the module notes on
    ``pipelined`` and ``commit``); ``driver_error`` is the driver's base error class."""
    return _run(conn, sql, params, driver_error, pipelined, commit, _first)


def fetch_all(conn: Connection, sql: str, params: Mapping[str, Any],
              driver_error: type[Exception], *, pipelined: bool = False) -> list[Any]:
    """Every row of ``sql``, run as :func:`fetch` runs it."""
    rows: list[Any] = _run(conn, sql, params, driver_error, pipelined, False, _every)
    return rows


Sent: TypeAlias = list[tuple[Any, Statement]]
"""Statements sent, each with its first row."""


def send_ahead(conn: Connection, ahead: Iterator[Statement], last: Callable[[], Statement | None],
               driver_error: type[Exception]) -> tuple[Sent, Statement | None]:
    """Send the statements of ``ahead`` in one pipeline, each as soon as it is built, then build
    the ``last`` one (not sent) while the server runs them; return the first row of each one
    sent (with the statement) and the last statement. A statement that fails raises its error,
    mapped as SQLAlchemy maps it, once every statement is sent."""
    first = next(ahead, None)
    if first is None:
        return [], last()
    fairy = conn.connection
    driver: Any = fairy.driver_connection
    sent: Sent = []
    final = None
    try:
        try:
            with driver.pipeline():
                for statement in itertools.chain([first], ahead):
                    sent.append((fairy.cursor(), statement))
                    conn._cursor_execute(sent[-1][0], statement[0], statement[1])
                    _flush(driver.pgconn)
                final = last()
        except driver_error as error:
            # Raised as the pipeline ends (a statement failed): mapped as _run maps it.
            cursor, (sql, params, _) = sent[-1]
            conn._handle_dbapi_exception(error, sql, params, cursor, None)
        return [(cursor.fetchone(), statement) for cursor, statement in sent], final
    finally:
        for cursor, _ in sent:
            cursor.close()


def _flush(pgconn: Any) -> None:
    """Send all that libpq keeps of the statements sent (what the socket did not take while the
    server was busy with the statement before), so that the server can run the last one while
    this process builds the next: libpq's own way (``PQflush``), waiting on the socket."""
    while pgconn.flush():
        readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [])
        if readable:
            pgconn.consume_input()


def _run(conn: Connection, sql: str, params: Mapping[str, Any], driver_error: type[Exception],
         pipelined: bool, commit: bool, rows: Callable[[Any], Any]) -> Any:
    fairy = conn.connection
    cursor = fairy.cursor()
    try:
        if not (pipelined or commit):
            conn._cursor_execute(cursor, sql, params)
            return rows(cursor)
        driver: Any = fairy.driver_connection
        try:
            with driver.pipeline():
                conn._cursor_execute(cursor, sql, params)
                if commit:
                    driver.commit()
        except driver_error as error:
            # What _cursor_execute does for an error raised at once: map it, invalidate the
            # connection if it broke.
            conn._handle_dbapi_exception(error, sql, params, cursor, None)
        return rows(cursor)
    finally:
        cursor.close()


def _first(cursor: Any) -> Any:
    return cursor.fetchone()


def _every(cursor: Any) -> list[Any]:
    return list(cursor.fetchall())
