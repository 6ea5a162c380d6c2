"""The SQL ledger on MySQL 8 and MariaDB 10.11+ (InnoDB) through PyMySQL: what differs from
PostgreSQL and SQLite.

Tables: ``utf8mb4`` with a binary collation that does not pad, ids of at most
:data:`~auptimate_core.backends.sql.mysql_tables.ID_LENGTH` characters (InnoDB's limit on an
index key; see :mod:`auptimate_core.backends.sql.mysql_tables`). A longer id is an
:class:`~auptimate_core.errors.InvalidId` naming the field before anything is written (the other
backends have no such limit; idempotency keys are kept as hashes, so any key fits). Money
stays ``BIGINT`` minor units and time ``BIGINT`` microseconds, as on the other backends.

Writes run at ``READ COMMITTED``: InnoDB's ``REPEATABLE READ`` would read every plain
``SELECT`` of a unit of work in the snapshot of its first one, taken before the pool's lock was
granted, and build on a holding another writer has since changed. At ``READ COMMITTED`` each
statement reads what was committed when it started, and a write reads its pool's rows only
after locking the pool's row (``SELECT ... FOR UPDATE``, which always reads the latest
committed row), so it sees everything the writer before it committed. Reads run at
``REPEATABLE READ``, one snapshot for all their statements, as on PostgreSQL. Each transaction
sets its level with a statement (:func:`begin`) unless it is the engine's default.

What a write costs: an admission is eight statements, an investment or a refund nine (the
pool's lock, one read, one per table written, the feed's head moved and read, the change),
whatever the size of the pool.

Retries: a deadlock (1213), a lock wait timeout (1205) and MariaDB's "record has changed since
last read" (1020) run the unit of work again, like PostgreSQL's 40001 and 40P01. A server that
cannot be reached or went away (2002, 2003, 2006, 2013, ...) is
:class:`~auptimate_core.errors.StoreUnavailable`.

Creating the tables from many processes at once is serialised with ``GET_LOCK`` (MySQL's DDL
commits at once, so no transaction-scoped lock would cover it), and an "already exists" that
slips through is retried.

:func:`engine_url` and :func:`engine_options` give the engines made from URLs
(:func:`~auptimate_core.backends.sql.engines.new_engine`) a PyMySQL engine with the
connection in ``utf8mb4``, strict SQL mode (a value that does not fit is an error, never
silently cut) and ``READ COMMITTED`` as its default, so that writes need no statement to set
it.

This module imports no driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from ...domain import Investor
from ...errors import InvalidId, InvalidURL, LedgerError, StoreUnavailable
from ...pools.audit import Entry
from ...pools.position import Amounts
from ...pools.repository import MemberRead, PoolRecord, Receipt
from ...urls import redact
from .driver_errors import describe
from .mysql_tables import ID_LENGTH, NAMES, fit_tables
from .session import SqlSession
from .statements import Statements
from .tables import TOTALS, LedgerTables

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql
    from sqlalchemy.engine import URL, Connection, Dialect
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = [
    "ID_LENGTH",
    "NAMES",
    "MySqlSession",
    "MySqlStatements",
    "begin",
    "check_id",
    "create_lock",
    "create_race",
    "engine_options",
    "engine_url",
    "fit_tables",
    "is_mysql",
    "mapped",
    "retryable",
    "unavailable",
]

WRITE_ISOLATION: Final = "READ COMMITTED"
READ_ISOLATION: Final = "REPEATABLE READ"

_RETRY: Final = frozenset({1213, 1205, 1020})  # deadlock, lock wait timeout, changed (MariaDB)
_CREATE: Final = frozenset({1050, 1061, 1062, 1007})  # table, index, key, database exists
# Can't connect (socket, TCP), server gone away, lost connection, server shutdown, killed,
# too many connections, disconnected for inactivity (MySQL 8).
_GONE: Final = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927, 1040, 4031})
_TOO_LONG: Final = 1406


def is_mysql(dialect: Dialect) -> bool:
    """Whether ``dialect`` is MySQL's or MariaDB's."""
    return dialect.name in NAMES


def check_id(field: str, value: str) -> None:
    """:class:`InvalidId` when ``value`` is longer than MySQL's ids may be."""
    if len(value) > ID_LENGTH:
        raise InvalidId(field, f"at most {ID_LENGTH} characters on MySQL and MariaDB (InnoDB's "
                               f"limit on an index key), not {len(value)}")


# -- statements and the unit of work -----------------------------------------------------------


class MySqlStatements(Statements):
    """The prebuilt statements on MySQL: the pool's lock, the holdings' upsert and the feed
    head's move (no ``UPDATE ... RETURNING``: the head is read after it)."""

    def __init__(self, tables: LedgerTables, dialect: Dialect, *, pipeline: bool = True) -> None:
        super().__init__(tables, dialect, pipeline=pipeline)
        p, m, head = tables.pools, tables.members, tables.feed_head
        self.lock_pool: Any = (sa.select(p.c.head_seq).where(p.c.id == sa.bindparam("pid"))
                               .with_for_update())
        """Lock a pool's row (parameter ``pid``)."""
        upsert = mysql.insert(m)
        self.upsert_members = upsert.on_duplicate_key_update(
            {name: upsert.inserted[name] for name in TOTALS})
        name = dialect.identifier_preparer.format_table(head)
        self.next_position = sa.text(
            f"UPDATE {name} SET position = position + :n, at_us = GREATEST(at_us, :now) "
            "WHERE id = :head_id")
        self.read_position: Any = (sa.select(head.c.position, head.c.at_us)
                                   .where(head.c.id == sa.bindparam("head_id")))
        """The head's position and time, read by the writer that has just moved it."""


class MySqlSession(SqlSession):
    """One unit of work on MySQL or MariaDB (see the module notes): locks the pool's row before
    reading a member's, checks ids against :data:`ID_LENGTH` before writing them, and moves
    the feed's head in two statements."""

    def __init__(self, conn: Connection, tables: LedgerTables, statements: Statements) -> None:
        if not isinstance(statements, MySqlStatements):
            raise TypeError("a MySQL session needs MySqlStatements")
        super().__init__(conn, tables, statements)
        self._my = statements

    def member(self, pool_id: str, investor_id: str, key: str | None) -> MemberRead | None:
        # Locked first, so the read below (its own snapshot at READ COMMITTED) sees all that
        # the pool's previous writer committed.
        self._conn.execute(self._my.lock_pool, {"pid": pool_id})
        return super().member(pool_id, investor_id, key)

    def add_investor(self, investor: Investor) -> None:
        check_id("investor.id", investor.id)
        super().add_investor(investor)

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        check_id("pool.id", record.pool.id)
        check_id("pool.manager_id", record.pool.manager_id)
        _check_entries([entry])
        super().add_pool(record, entry)

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        _check_entries(entries)
        for investor_id in holdings:
            check_id("investor_id", investor_id)
        if receipt is not None:
            check_id("idempotency_key", receipt.key)
        super().append(record, entries, holdings, receipt)

    def _move_head(self, params: Mapping[str, Any]) -> Any:
        # No UPDATE ... RETURNING on MySQL: the head is read after it is moved, under its lock.
        self._conn.execute(self._my.next_position, params)
        return self._conn.execute(self._my.read_position, params).one()


def _check_entries(entries: Sequence[Entry]) -> None:
    for entry in entries:
        check_id("investor_id", entry.investor_id)
        check_id("actor", entry.actor)


# -- opening, creating, errors -----------------------------------------------------------------


def engine_url(url: URL) -> URL:
    """``url`` on PyMySQL (a bare ``mysql://`` or ``mariadb://`` names it) with the connection
    in ``utf8mb4``; another character set is an :class:`InvalidURL`."""
    if url.drivername in NAMES:
        url = url.set(drivername=f"{url.drivername}+pymysql")
    charset = url.query.get("charset", "utf8mb4")
    if charset != "utf8mb4":
        shown = redact(url.render_as_string(hide_password=False))
        raise InvalidURL(shown, f"{shown!r}: the ledger needs charset=utf8mb4 (every id the "
                                f"other backends store), not {charset!r}")
    return url.update_query_dict({"charset": "utf8mb4"})


def engine_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for :func:`sqlalchemy.create_engine` with the ledger's defaults on MySQL:
    ``READ COMMITTED``, strict SQL mode on each new connection, connections recycled hourly
    (before a server's ``wait_timeout`` closes them), no warnings of cartesian products."""
    found = dict(options)
    found.setdefault("isolation_level", WRITE_ISOLATION)
    # SQLAlchemy's MySQL compiler records a chain of outer joins as one edge, and warns of a
    # cartesian product in the member's read, which has none.
    found.setdefault("enable_from_linting", False)
    found.setdefault("pool_recycle", 3600)
    connect_args = dict(found.pop("connect_args", {}))
    connect_args.setdefault(
        "init_command",
        "SET SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT_WS(',', @@SESSION.sql_mode, "
        "'STRICT_ALL_TABLES', 'NO_ENGINE_SUBSTITUTION'))")
    found["connect_args"] = connect_args
    return found


def begin(conn: Connection, write: bool) -> None:
    """Set the isolation of the transaction ``conn`` is starting: ``READ COMMITTED`` for a
    write, ``REPEATABLE READ`` for a read (one statement, none when it is the engine's default;
    a statement, unlike SQLAlchemy's isolation option, whose driver errors are mapped)."""
    level = WRITE_ISOLATION if write else READ_ISOLATION
    if conn.dialect.default_isolation_level != level:
        conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {level}")


@contextmanager
def create_lock(conn: Connection, key: int, timeout: int = 120) -> Iterator[None]:
    """Hold the server-wide lock of creators of the ledger's tables numbered ``key``."""
    name = f"auptimate_ledger_{key}"
    got = conn.execute(sa.select(sa.func.get_lock(name, timeout))).scalar()
    if got != 1:
        raise LedgerError(f"waited {timeout}s for another process creating the ledger's tables")
    try:
        yield
    finally:
        conn.execute(sa.select(sa.func.release_lock(name)))


def _errno(error: sa.exc.DBAPIError) -> int | None:
    args = () if error.orig is None else error.orig.args
    return args[0] if args and isinstance(args[0], int) else None


def retryable(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` (on MySQL) asks to run the unit of work again."""
    return _errno(error) in _RETRY


def create_race(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` (on MySQL) is what a concurrent creator of the tables can cause."""
    return _errno(error) in _CREATE | _RETRY


def unavailable(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` (on MySQL) says the server could not be reached or went away."""
    return _errno(error) in _GONE


def mapped(error: sa.exc.DBAPIError) -> Exception | None:
    """The library's error for ``error`` when MySQL's needs one of its own: a value too long
    for its column (strict mode) is an :class:`InvalidId` naming the column."""
    if _errno(error) == _TOO_LONG and error.orig is not None:
        message = str(error.orig.args[1]) if len(error.orig.args) > 1 else str(error.orig)
        column = message.split("'")[1] if message.count("'") >= 2 else "value"
        return InvalidId(column, f"too long for MySQL's column ({message})")
    if unavailable(error):
        return StoreUnavailable(f"the ledger database cannot be reached: {describe(error)}")
    return None
