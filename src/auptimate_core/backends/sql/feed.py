"""The ledger's change feed on SQL: two tables, the writer's last step, and followers' wake-ups.

Tables (prefixed ``auptimate_`` like the ledger's):

- ``feed_head``: one row holding the ledger's identity (made when the row is first written),
  the position of the last change and its time (``at_us``);
- ``feed``: one row per committed change: its position, commit time (integer microseconds since
  the epoch, UTC), the event's type and pool, and the event as JSON (``LedgerEvent.to_dict``).

Why a follower never misses or repeats a change. A sequence (or an auto-increment key) hands out
numbers when a transaction *asks*, not when it *commits*: writer A takes 7, writer B takes 8 and
commits first, a reader sees 8 without 7 and moves its cursor past 7 for good. Here the position
is assigned by ``UPDATE feed_head SET position = position + 1 ... RETURNING position``, the last
write of every writing transaction (on PostgreSQL part of its one writing statement, see
:mod:`auptimate_core.backends.sql.statements`; MySQL has no ``UPDATE ... RETURNING``, so the
writer reads the head it has just moved, holding its lock, see
:mod:`auptimate_core.backends.sql.mysql`). The update holds the head's row lock until the
transaction ends, so a second writer waits there until the first has committed (or rolled back,
giving its position back), and only then reads the head, which the first writer's commit has
moved. Positions are therefore handed out in commit order with no gap, and since a
transaction's commit is visible before its locks are released, any snapshot that sees position
``n`` sees every position below it: the committed positions are always ``1..head``. A reader
asking for ``position > cursor`` gets exactly what it has not seen, in order. InnoDB (MariaDB's
at least) takes a snapshot without stopping commits, so a snapshot can, rarely, see ``n + 1``
without ``n``: on MySQL and MariaDB a reader gives the rows only as far as they follow on from
its cursor, and when the first is missing it reads them again with a locking read, which sees
every committed row. The same holds
when reading a hot standby, which applies commits in the order the primary wrote them (but
notifications are not sent to standbys: a follower listens on the primary).

A change's time is the writer's clock read just before that update, or the time of the change
before it when that is later (the same update sets ``at_us = max(at_us, now)``): times follow
positions even when two writers read their clocks in the other order than they commit.

The price is that the commits of all writers of a ledger queue on one row, from the head's
update to the commit (the reads of a write, its pool's own lock and its other rows come
before). PostgreSQL serialises the commits of transactions that send a notification in the
same way (a lock taken before the commit and held until after it, across the whole server), so
the wake-up below adds no second queue. On SQLite every write
transaction is ``BEGIN IMMEDIATE``: writers already take turns, and the head only numbers them.
On MySQL and MariaDB the head is locked as on PostgreSQL, from its update to the commit.

Wake-ups carry nothing a follower relies on: on PostgreSQL a writer sends ``NOTIFY`` on the
ledger's channel in the same transaction (delivered only if it commits) and a follower holds a
``LISTEN`` connection; on SQLite, MySQL and MariaDB (which have no notifications) a follower
polls the head every ``poll_interval`` seconds, one primary-key read each time (and is woken at
once by commits made through the same repository object). Either way, the follower
then reads the feed, the only source of truth.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from ...domain import from_micros
from ...errors import StoreUnavailable
from ...pools.changes import Recorded
from ...pools.events import LedgerEvent
from .driver_errors import bare, describe, driver_error

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

HEAD_ID: Final = 1
"""The key of the head's only row."""


def feed_tables(md: sa.MetaData, prefix: str) -> tuple[sa.Table, sa.Table]:
    """The head and feed tables, in ``md``."""
    head = sa.Table(
        f"{prefix}feed_head", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("identity", sa.String(16), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False, server_default="0"),
    )
    feed = sa.Table(
        f"{prefix}feed", md,
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("pool_id", sa.String, nullable=True),
        sa.Column("event", sa.Text, nullable=False),
    )
    return head, feed


def channel_of(identity: str) -> str:
    """The PostgreSQL notification channel of the ledger named ``identity``."""
    return f"auptimate_feed_{identity}"


def read_identity(conn: Connection, head: sa.Table) -> str | None:
    """The ledger's identity, or None when the head row is not written yet."""
    row = conn.execute(sa.select(head.c.identity).where(head.c.id == HEAD_ID)).first()
    return None if row is None else str(row.identity)


def write_identity(conn: Connection, head: sa.Table, identity: str) -> None:
    """Write the head row (a unique key refuses a second one: the caller reads it again)."""
    conn.execute(sa.insert(head).values(id=HEAD_ID, identity=identity, position=0, at_us=0))


def upgrade(conn: Connection, head: sa.Table) -> None:
    """Add the head's ``at_us`` to a head table made before it existed."""
    columns = {column["name"] for column in sa.inspect(conn).get_columns(head.name, head.schema)}
    if "at_us" not in columns:
        name = conn.dialect.identifier_preparer.format_table(head)
        conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN at_us BIGINT NOT NULL DEFAULT 0"))


def head_position(conn: Connection, head: sa.Table) -> int:
    row = conn.execute(sa.select(head.c.position).where(head.c.id == HEAD_ID)).first()
    return 0 if row is None else int(row.position)


def read(conn: Connection, feed: sa.Table, after: int, limit: int) -> list[Recorded]:
    """Up to ``limit`` changes after position ``after``, in order."""
    columns = (feed.c.position, feed.c.at_us, feed.c.event)
    query = (sa.select(*columns).where(feed.c.position > after)
             .order_by(feed.c.position).limit(limit))
    rows = list(conn.execute(query))
    if conn.dialect.name in _TORN_VIEWS:
        rows = _settled(conn, sa.select(*columns).order_by(feed.c.position).limit(limit),
                        feed.c.position, after, rows)
    return [Recorded(int(row.position), from_micros(int(row.at_us)),
                     LedgerEvent.from_dict(json.loads(row.event)))
            for row in rows]


_TORN_VIEWS: Final = frozenset({"mysql", "mariadb"})


def _settled(conn: Connection, query: sa.Select[Any], position: sa.Column[int], after: int,
             rows: list[Any]) -> list[Any]:
    """``rows`` (read after ``after``) as far as they follow on from it without a gap.

    InnoDB (MariaDB's at least) builds a snapshot by walking its set of open transactions
    without stopping commits, so a snapshot can miss a change that committed just before
    another it sees: position ``n + 1`` without ``n``. Committed positions have no holes
    (``n + 1`` was handed out only after ``n`` committed), so the rows are given as far as
    they are contiguous. When the first is missing, the rows up to the last one seen are read
    again with a locking read, which reads the latest committed rows (waiting, at worst, for
    a writer between its commit and the release of its locks) and so has them all.
    """
    for n, row in enumerate(rows):
        if int(row.position) != after + 1 + n:
            break
    else:
        return rows
    if n > 0:
        return rows[:n]
    top = int(rows[-1].position)
    locking = query.where(position > after, position <= top).with_for_update(read=True)
    return list(conn.execute(locking))


class PollingWatch:
    """A follower's wake-up by polling: reads the head every ``interval`` seconds, and wakes at
    once when ``commits`` (a condition notified after each local commit) is notified."""

    def __init__(self, head: Callable[[], int], commits: threading.Condition,
                 interval: float) -> None:
        self._head = head
        self._commits = commits
        self._interval = interval

    def wait(self, after: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._head() <= after:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._commits:
                self._commits.wait(min(self._interval, left))

    def close(self) -> None:
        pass


def listening_connection(engine: Engine) -> Any:
    """A driver connection of ``engine`` taken out of its pool for ``LISTEN`` (its user closes
    it). A server that cannot be reached is :class:`StoreUnavailable`, from the driver's error
    scrubbed (:mod:`~auptimate_core.backends.sql.driver_errors`)."""
    failed: sa.exc.DBAPIError | None = None
    try:
        proxied = engine.raw_connection()
    except sa.exc.DBAPIError as error:
        failed = error
    if failed is not None:
        raise StoreUnavailable(f"the ledger database cannot be reached: "
                               f"{describe(failed)}") from driver_error(failed)
    conn = proxied.driver_connection
    proxied.detach()  # this connection leaves the pool: it is closed, not returned
    return conn


def lost_listening(error: sa.exc.DBAPIError) -> StoreUnavailable:
    """The error of a follower whose listening connection failed with ``error`` (see
    :func:`~auptimate_core.backends.sql.driver_errors.bare`): raise it outside the ``except``,
    ``from driver_error(error)``."""
    return StoreUnavailable(f"lost the connection listening for ledger changes: "
                            f"{describe(error)}")


class ListenWatch:
    """A follower's wake-up by PostgreSQL ``LISTEN`` on its own connection (out of the pool)."""

    def __init__(self, engine: Engine, channel: str) -> None:
        import psycopg

        self._errors: tuple[type[Exception], ...] = (psycopg.Error,)
        conn = self._conn = listening_connection(engine)
        failed: sa.exc.DBAPIError | None = None
        try:
            conn.autocommit = True
            conn.execute(f'LISTEN "{channel}"')
        except psycopg.Error as error:
            conn.close()
            failed = bare(error)
        if failed is not None:
            raise StoreUnavailable(f"cannot listen for ledger changes: "
                                   f"{describe(failed)}") from driver_error(failed)

    def wait(self, after: int, timeout: float) -> None:
        failed: sa.exc.DBAPIError | None = None
        try:
            woken = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
            if woken:
                # Others that came with it would only wake the follower again for nothing.
                for _ in self._conn.notifies(timeout=0):
                    pass
        except self._errors as error:
            failed = bare(error)
        if failed is not None:
            raise lost_listening(failed) from driver_error(failed)

    def close(self) -> None:
        self._conn.close()
