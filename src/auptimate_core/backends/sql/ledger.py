"""The pools ledger on a SQL database, through SQLAlchemy Core: SQLite, PostgreSQL (psycopg) or
MySQL 8 / MariaDB 10.11+ (PyMySQL; what differs there is in
:mod:`auptimate_core.backends.sql.mysql`).

The tables are in :mod:`auptimate_core.backends.sql.tables`, one unit of work on them in
:mod:`auptimate_core.backends.sql.session`, the change feed in
:mod:`auptimate_core.backends.sql.feed`.

Concurrency: every write to a pool first locks the pool's row (``SELECT ... FOR UPDATE`` on
PostgreSQL and MySQL; on SQLite every write transaction is ``BEGIN IMMEDIATE``, so writers take
turns), and the update of the pool's head also checks that the head has not moved. Two
processes writing to one pool therefore never lose an update: the second waits for the first
and builds on what it committed. A race that only a unique key can catch (two processes
creating one pool, or using one idempotency key in two pools at once) rolls back and runs the
unit of work again, which then sees the other's row. Reads run in one snapshot
(``REPEATABLE READ`` on PostgreSQL and MySQL). The last write of a unit of work appends its
event to the change feed, in the same transaction.

What writers of different pools share: the feed's head row, locked by each from its last
statement to its commit (see :mod:`auptimate_core.backends.sql.feed`), and, between the threads
of one process, a turn (a lock) from that statement to the commit and the ``on_commit`` call,
so that subscribers get events in commit order. Everything else of a write (its reads, the
building of its statements, a batch's statements but the last) happens before,
outside both. On PostgreSQL the last statement and the commit go in one round trip.

What a write costs: an admission, an investment or a refund is two statements on PostgreSQL
(one read, one write sent with the commit; see :mod:`auptimate_core.backends.sql.statements`)
and eight on SQLite, whatever the size of the pool; a fee or a distribution reads the pool's
members once and writes in one statement on PostgreSQL, one per table on SQLite.

Opening the storage is safe from any number of processes at once: creating the tables is
serialised (a transaction-scoped advisory lock on PostgreSQL, ``GET_LOCK`` on MySQL,
``BEGIN IMMEDIATE`` on SQLite) and retried on each database's "already exists" error, and the
ledger's identity is written once.

Driver errors never leak: a server that cannot be reached is
:class:`~auptimate_core.errors.StoreUnavailable`, any other database failure a
:class:`~auptimate_core.errors.LedgerError` whose cause is the driver's error
without its parameters (nor the row a PostgreSQL ``DETAIL`` quotes: see
:func:`~auptimate_core.backends.sql.driver_errors.driver_error`).

>>> from auptimate_core import PoolLedger, Pool
>>> ledger = PoolLedger.from_url("sqlite://")
>>> ledger.create_pool(Pool("fund-a", "m1"), actor="m1").id
'fund-a'
>>> ledger.verify()
1
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, TypeVar

from ...errors import LedgerError, MissingExtra, StoreUnavailable
from ...pools.audit import AuditChain
from ...pools.changes import FeedWatch, check_interval
from ...pools.repository import LedgerSession
from . import feed as changes_feed
from . import mysql as mysql_sql
from .driver_errors import bare, describe, driver_error
from .engines import SYNC_DRIVERS, new_engine
from .session import HeadMoved, SqlSession
from .statements import Statements
from .tables import LedgerTables, ledger_tables

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.pool import StaticPool
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["LedgerTables", "SqlLedgerRepository", "ledger_tables"]

T = TypeVar("T")

_RETRY_SQLSTATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# What concurrent creators of one schema may meet: duplicate schema, table, object, key.
_CREATE_SQLSTATES: Final = frozenset({"42P06", "42P07", "42710", "23505"})


def _nothing() -> None:
    pass


def _retryable(error: BaseException) -> bool:
    if isinstance(error, HeadMoved | sa.exc.IntegrityError):
        return True
    if isinstance(error, sa.exc.DBAPIError) and mysql_sql.retryable(error):
        return True
    if isinstance(error, sa.exc.OperationalError):
        state = getattr(error.orig, "sqlstate", None)
        return state in _RETRY_SQLSTATES or "database is locked" in str(error.orig)
    return False


def _create_race(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` is what a concurrent creator of the same tables can cause."""
    if mysql_sql.create_race(error):
        return True
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:
        return str(state) in _CREATE_SQLSTATES or str(state) in _RETRY_SQLSTATES
    message = str(error.orig).lower()  # SQLite names the race only in its message
    return isinstance(error, sa.exc.OperationalError) and (
        "already exists" in message or "database is locked" in message)


def _unavailable(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` says the database could not be reached (rather than refused a query)."""
    if error.connection_invalidated or isinstance(error, sa.exc.InterfaceError):
        return True
    if mysql_sql.unavailable(error):
        return True
    if not isinstance(error, sa.exc.OperationalError):
        return False
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:  # PostgreSQL: connection exceptions (08) and shutdowns (57P)
        return str(state).startswith(("08", "57P"))
    # No answer from a server at all (psycopg), or a database file that cannot be opened.
    message = str(error.orig).lower()
    return "connection" in message or "unable to open database" in message


def _library_error(error: sa.exc.DBAPIError) -> Exception:
    """The library's error for the driver's ``error``: :class:`StoreUnavailable` when the
    database could not be reached, else a :class:`LedgerError` (or MySQL's own, see
    :func:`~auptimate_core.backends.sql.mysql.mapped`). Its message describes ``error``
    without parameters; raise it ``from driver_error(error)``, outside the ``except``."""
    found = mysql_sql.mapped(error)
    if found is not None:
        return found
    if _unavailable(error):
        return StoreUnavailable(f"the ledger database cannot be reached: {describe(error)}")
    return LedgerError(f"ledger database error: {describe(error)}")


class SqlLedgerRepository:
    """Ledger storage on a SQLAlchemy engine (see the module notes). Thread-safe.

    ``schema`` puts the tables in a PostgreSQL schema; ``create=True`` creates what is missing
    (``CREATE ... IF NOT EXISTS``); ``retries`` bounds how often a unit of work is run again
    after a conflict with another writer; ``poll_interval`` is how often (seconds) a follower
    of the feed on SQLite looks for commits of other processes.

    ``pipeline`` (PostgreSQL through psycopg, not on an asyncio engine) sends a write's last
    statement and its ``COMMIT`` in one round trip (psycopg's pipeline mode). The feed's head,
    which every writer of the ledger locks from that statement to its commit, is then let go
    as soon as the server has written, whether or not this process is running at that moment:
    writers to different pools queue far less when processes outnumber cores. The pipeline
    costs a little in each write (tens of microseconds from one client on an idle server);
    ``pipeline=False`` sends the commit apart.

    ``sleep`` is how the pause before running a unit of work again is taken (``time.sleep``;
    the asyncio ledger awaits it on its event loop instead).
    """

    def __init__(self, engine: Engine, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, dispose: bool = False, poll_interval: float = 0.01,
                 pipeline: bool = True, sleep: Callable[[float], object] = time.sleep) -> None:
        check_interval(poll_interval)
        self.engine = engine
        self.tables = ledger_tables(schema)
        self._mysql = mysql_sql.is_mysql(engine.dialect)
        if self._mysql:
            mysql_sql.fit_tables(self.tables.metadata)
        self._statements = (mysql_sql.MySqlStatements if self._mysql else Statements)(
            self.tables, engine.dialect, pipeline=pipeline)
        self._session = mysql_sql.MySqlSession if self._mysql else SqlSession
        self._chain = AuditChain()
        self.retries = retries
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._dispose = dispose
        self._sqlite = engine.dialect.name == "sqlite"
        # One shared connection (an in-memory SQLite database) serves one unit of work at a time.
        shared = isinstance(engine.pool, StaticPool)
        self._serial: threading.Lock | None = threading.Lock() if shared else None
        self._commit_order = threading.Lock()
        self._commits = threading.Condition()
        self._channel: str | None = None
        if create:
            self._create(schema)
        self._identity = self._run(self._open_feed, True, None)
        postgres = engine.dialect.name == "postgresql"
        self._channel = changes_feed.channel_of(self._identity) if postgres else None

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, engine_options: Mapping[str, Any] | None = None,
                 poll_interval: float = 0.01, pipeline: bool = True) -> SqlLedgerRepository:
        """A repository on a new engine for ``url`` (``postgresql://`` means psycopg,
        ``mysql://`` and ``mariadb://`` PyMySQL)."""
        engine = new_engine(url, engine_options, sa.create_engine, SYNC_DRIVERS)
        return cls(engine, schema=schema, create=create, retries=retries, dispose=True,
                   poll_interval=poll_interval, pipeline=pipeline)

    @property
    def identity(self) -> str:
        return self._identity

    def watch(self) -> FeedWatch:
        if self._channel is None:
            return changes_feed.PollingWatch(lambda: self.read(lambda s: s.feed_head()),
                                             self._commits, self.poll_interval)
        return changes_feed.ListenWatch(self.engine, self._channel)

    def _create(self, schema: str | None) -> None:
        lock_key = zlib.crc32(f"auptimate_ledger:{schema or ''}".encode())

        def body(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                # Creators of one schema take turns: the next one finds the tables made.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
            with mysql_sql.create_lock(conn, lock_key) if self._mysql else nullcontext():
                if schema is not None:
                    conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
                self.tables.metadata.create_all(conn, checkfirst=True)
                changes_feed.upgrade(conn, self.tables.feed_head)

        for attempt in range(self.retries + 1):
            try:
                with self._guard(), self.engine.connect() as conn:
                    restore: Callable[[], None] = _nothing
                    try:
                        with conn.begin():
                            restore = self._begin(conn, write=True)
                            body(conn)
                    finally:
                        restore()
                return
            except sa.exc.DBAPIError as error:
                # Two processes creating the tables at once: the loser sees them next time.
                if attempt < self.retries and _create_race(error):
                    self._sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                    continue
                failed = error
            # Raised here, outside the except: the driver's error (and its parameters) is
            # neither the cause nor the context of the library's.
            raise _library_error(failed) from driver_error(failed)

    @staticmethod
    def _open_feed(session: LedgerSession) -> str:
        """The ledger's identity, written by the first process to open the storage."""
        assert isinstance(session, SqlSession)
        return session.identity()

    def _guard(self) -> AbstractContextManager[Any]:
        return self._serial if self._serial is not None else nullcontext()

    def _begin(self, conn: Connection, write: bool) -> Callable[[], None]:
        """Start the database transaction; return what puts the connection back as it was."""
        if self._mysql:
            mysql_sql.begin(conn, write)
        if not self._sqlite:
            return _nothing
        # The driver's implicit transactions would start only at the first write, after the
        # reads this unit of work bases it on; turned off, this BEGIN is the only one.
        dbapi: Any = conn.connection.driver_connection
        level = dbapi.isolation_level
        dbapi.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        def restore() -> None:
            if not dbapi.in_transaction:
                dbapi.isolation_level = level

        return restore

    def _read_isolation(self, conn: Connection) -> None:
        """A read's ``REPEATABLE READ`` on PostgreSQL: the driver begins with it, no statement
        of its own. A connection the driver already knows is dead fails here, before any
        statement, with the driver's bare error: it is dropped from the pool and its error
        raised as SQLAlchemy's (mapped and scrubbed as any other: StoreUnavailable)."""
        try:
            conn.execution_options(isolation_level="REPEATABLE READ")
        except self._statements.driver_error as error:
            conn.invalidate()
            raise bare(error) from None

    def _run(self, body: Callable[[LedgerSession], T], write: bool,
             on_commit: Callable[[T], object] | None) -> T:
        for attempt in range(self.retries + 1):
            try:
                with self._guard(), self.engine.connect() as conn:
                    if not write and not self._sqlite and not self._mysql:
                        self._read_isolation(conn)
                    restore: Callable[[], None] = _nothing
                    try:
                        with conn.begin() as transaction:
                            restore = self._begin(conn, write)
                            session = self._session(conn, self.tables, self._statements)
                            session.mark_with(self._chain)
                            try:
                                result = body(session)
                            except BaseException as error:
                                session.abandon(error)  # what it sent ahead, before rollback
                                raise
                            if not write:
                                return result
                            pipelined = self._statements.pipelined
                            if pipelined:
                                # Everything but the statement sent with the commit is built
                                # and sent before the turn below.
                                session.prepare(self._channel)
                            else:
                                session.flush(self._channel)
                            with self._commit_order:
                                if pipelined:
                                    # The flush commits; SQLAlchemy's commit then only ends
                                    # its own record of the transaction.
                                    session.flush(self._channel, commit=True)
                                transaction.commit()
                                if on_commit is not None:
                                    on_commit(result)
                    finally:
                        restore()
                if session.published:
                    with self._commits:
                        self._commits.notify_all()
                return result
            except (sa.exc.DBAPIError, HeadMoved) as error:
                if attempt < self.retries and _retryable(error):
                    self._sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                    continue
                if isinstance(error, HeadMoved):
                    raise LedgerError(f"gave up after {attempt + 1} tries: {error}") from error
                failed = error
            raise _library_error(failed) from driver_error(failed)  # see _create
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        return self._run(body, False, None)

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        return self._run(body, True, on_commit)

    def mark_with(self, chain: AuditChain) -> None:
        """Make the rows' audit marks with ``chain`` (the ledger's, with its key) from now on."""
        self._chain = chain

    def close(self) -> None:
        if self._dispose:
            self.engine.dispose()
