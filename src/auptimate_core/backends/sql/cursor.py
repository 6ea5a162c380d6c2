"""The hot statements of the SQL ledger on PostgreSQL, run on the driver's cursor.

SQLAlchemy's own path for a statement on a cursor (its cursor events, logging and error
mapping), without the execution context and result it builds for ``execute``. On psycopg's
pipeline mode (libpq 14 or later) several statements, or a statement and the ``COMMIT``, go
without waiting for each answer: :func:`fetch` with ``pipelined`` sends the ``BEGIN`` the driver
sends before a unit of work's first statement with that statement, in one round trip; with
``commit`` the ``COMMIT`` goes behind the statement, and the server commits without waiting for
this process (a statement that fails aborts the commit: the transaction is rolled back).
:class:`Ahead` sends a unit of work's statements in one pipeline, each as soon as it is built,
so that the server writes the rows of one while this process goes on.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

try:
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["Ahead", "Sent", "Statement", "fetch", "fetch_all"]

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


class Ahead:
    """Statements sent ahead on ``conn`` in one pipeline, each as soon as it is given, their
    answers read when the pipeline ends (:meth:`end`): the server runs each while this process
    goes on (builds the next). Nothing is sent, and no pipeline entered, until :meth:`send`."""

    def __init__(self, conn: Connection, driver_error: type[Exception]) -> None:
        self._conn = conn
        self._driver_error = driver_error
        self._pipeline: contextlib.ExitStack | None = None
        self._sent: list[tuple[Any, Statement]] = []
        self._pgconn: Any = None

    @property
    def open(self) -> bool:
        """Whether statements were sent and the pipeline is not ended."""
        return self._pipeline is not None

    def send(self, statement: Statement) -> None:
        """Send ``statement``: what the socket does not take at once (while the server is busy
        with the statement before) is kept by libpq and sent by :meth:`pump` or :meth:`end`."""
        fairy = self._conn.connection
        driver: Any = fairy.driver_connection
        if self._pipeline is None:
            self._pipeline = contextlib.ExitStack()
            self._pipeline.enter_context(driver.pipeline())
        self._sent.append((fairy.cursor(), statement))
        self._conn._cursor_execute(self._sent[-1][0], statement[0], statement[1])
        self._pgconn = driver.pgconn

    def pump(self) -> None:
        """Send what the socket takes now of what libpq keeps, without waiting: called as the
        unit of work goes on, so that the server gets each statement whole as soon as it can
        read it."""
        self._pgconn.flush()

    def end(self) -> Sent:
        """End the pipeline, waiting for every statement sent; return the first row of each
        (with the statement). A statement that failed raises its error, mapped as SQLAlchemy
        maps it."""
        pipeline, sent = self._pipeline, self._sent
        self._pipeline, self._sent = None, []
        if pipeline is None:
            return []
        try:
            try:
                try:
                    _flush(self._pgconn)
                finally:
                    pipeline.close()  # out of pipeline mode, whatever happened
            except self._driver_error as error:
                cursor, (sql, params, _) = sent[-1]
                self._conn._handle_dbapi_exception(error, sql, params, cursor, None)
            return [(cursor.fetchone(), statement) for cursor, statement in sent]
        finally:
            for cursor, _ in sent:
                cursor.close()

    def abandon(self, error: BaseException) -> None:
        """End the pipeline without reading its answers, as ``error`` ends the unit of work
        (its transaction is rolled back next)."""
        pipeline, sent = self._pipeline, self._sent
        self._pipeline, self._sent = None, []
        if pipeline is not None:
            pipeline.__exit__(type(error), error, error.__traceback__)
        for cursor, _ in sent:
            cursor.close()


def _flush(pgconn: Any) -> None:
    """Send all that libpq keeps of the statements sent, waiting on the socket: libpq's own way
    (``PQflush``)."""
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
