"""The pools ledger on a SQL database, through SQLAlchemy Core: SQLite or PostgreSQL (psycopg).

Seven tables (names prefixed ``auptimate_``, in ``schema`` when given):

- ``investors`` (id, name, email);
- ``pools`` (definition, the head of the audit chain, the pool's totals);
- ``members`` (one row per pool and investor: their totals);
- ``entries`` (the audit chain: one row per pool and number, with both hashes);
- ``receipts`` (idempotency keys: what each was used for and where its entries are);
- ``feed_head`` and ``feed`` (the change feed, see :mod:`auptimate_core.backends.sql.feed`).

Money is kept as integers of 1/10,000 of the currency (exact everywhere, summed as integers),
time as integer microseconds since the Unix epoch (UTC).

Concurrency: every write to a pool first locks the pool's row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite every write transaction is ``BEGIN IMMEDIATE``, so writers take turns),
and the update of the pool's head also checks that the head has not moved. Two processes writing
to one pool therefore never lose an update: the second waits for the first and builds on what it
committed. A race that only a unique key can catch (two processes creating one pool, or using one
idempotency key in two pools at once) rolls back and runs the unit of work again, which then sees
the other's row. Reads run in one snapshot (``REPEATABLE READ`` on PostgreSQL). The last
statements of a write append its event to the change feed, in the same transaction.

Opening the storage is safe from any number of processes at once: creating the tables is
serialised (a transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and
retried on each database's "already exists" error, and the ledger's identity is written once.

Driver errors never leak: a server that cannot be reached is
:class:`~auptimate_core.errors.StoreUnavailable`, any other database failure a
:class:`~auptimate_core.errors.LedgerError` whose cause is the driver's error.

>>> from auptimate_core import PoolLedger, Pool
>>> ledger = PoolLedger.from_url("sqlite://")
>>> ledger.create_pool(Pool("fund-a", "m1"), actor="m1").id
'fund-a'
>>> ledger.verify()
1
"""

from __future__ import annotations

import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs

from ...clock import Clock
from ...domain import Investor, Pool, from_micros, to_micros
from ...errors import LedgerError, MissingExtra, StoreUnavailable, ValidationError
from ...money import minor_unit
from ...pools.audit import Entry
from ...pools.changes import FeedWatch, Recorded, new_identity
from ...pools.events import LedgerEvent
from ...pools.position import Amounts
from ...pools.repository import LedgerSession, PoolRecord, Receipt
from ...ranking import InvestorRank
from ...store import from_units, to_units
from . import feed as changes_feed
from .ranking import TransactionsTable, top_investors_sql

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.pool import StaticPool
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["LedgerTables", "SqlLedgerRepository", "ledger_tables"]

T = TypeVar("T")

SCALE: Final = 4
"""Amounts are stored as integers of ``10**-SCALE`` of the currency."""

_RETRY_SQLSTATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# What concurrent creators of one schema may meet: duplicate schema, table, object, key.
_CREATE_SQLSTATES: Final = frozenset({"42P06", "42P07", "42710", "23505"})
_TOTALS: Final = ("invested", "refunded", "fees", "distributed")


@attrs.frozen(slots=True)
class LedgerTables:
    """The ledger's tables in one :class:`sqlalchemy.MetaData`."""

    metadata: sa.MetaData
    investors: sa.Table
    pools: sa.Table
    members: sa.Table
    entries: sa.Table
    receipts: sa.Table
    feed_head: sa.Table
    feed: sa.Table


def _money(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, default=0)


def ledger_tables(schema: str | None = None, prefix: str = "auptimate_") -> LedgerTables:
    """The ledger's table definitions (``create_all`` on the returned metadata makes them)."""
    md = sa.MetaData(schema=schema)
    investors = sa.Table(
        f"{prefix}investors", md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("email", sa.String, nullable=True),
    )
    pools = sa.Table(
        f"{prefix}pools", md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("manager_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("head_seq", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        *(_money(name) for name in (*_TOTALS, "carry")),
    )
    members = sa.Table(
        f"{prefix}members", md,
        sa.Column("pool_id", sa.String, primary_key=True),
        sa.Column("investor_id", sa.String, primary_key=True),
        *(_money(name) for name in _TOTALS),
        sa.Index(f"{prefix}members_by_investor", "investor_id"),
    )
    entries = sa.Table(
        f"{prefix}entries", md,
        sa.Column("pool_id", sa.String, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("investor_id", sa.String, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Index(f"{prefix}entries_by_kind_investor", "kind", "investor_id"),
    )
    receipts = sa.Table(
        f"{prefix}receipts", md,
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("pool_id", sa.String, nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    feed_head, feed = changes_feed.feed_tables(md, prefix)
    return LedgerTables(md, investors, pools, members, entries, receipts, feed_head, feed)


def _amount(units: int, currency: str | None) -> Decimal:
    """Stored units as an amount at the currency's minor unit; kept as is if that would round
    (a value edited in the database then fails the audit instead of being hidden)."""
    value = from_units(int(units))
    if currency is None:
        return value
    exact = value.quantize(minor_unit(currency))
    return exact if exact == value else value


def _amounts(row: Any, currency: str, carry: bool = False, prefix: str = "") -> Amounts:
    values = row._mapping

    def get(name: str) -> Decimal:
        return _amount(values[prefix + name], currency)

    return Amounts(invested=get("invested"), refunded=get("refunded"), fees=get("fees"),
                   distributed=get("distributed"),
                   carry=get("carry") if carry else minor_unit(currency) * 0)


def _units(totals: Amounts, names: Sequence[str]) -> dict[str, int]:
    return {name: to_units(getattr(totals, name)) for name in names}


class _SqlSession:
    """One unit of work on one connection (see :class:`~auptimate_core.pools.LedgerSession`)."""

    def __init__(self, conn: Connection, tables: LedgerTables) -> None:
        self._conn = conn
        self._t = tables
        self._lockable = conn.dialect.name != "sqlite"
        self.published: tuple[LedgerEvent, Clock] | None = None

    def _record(self, row: Any) -> PoolRecord:
        pool = Pool(row.id, row.manager_id, row.name, row.currency)
        return PoolRecord(pool, int(row.head_seq), row.head_hash,
                          _amounts(row, row.currency, carry=True))

    def investor(self, investor_id: str) -> Investor | None:
        t = self._t.investors
        row = self._conn.execute(sa.select(t).where(t.c.id == investor_id)).first()
        return None if row is None else Investor(row.id, row.name, row.email)

    def pool(self, pool_id: str, *, lock: bool = False) -> PoolRecord | None:
        t = self._t.pools
        query = sa.select(t).where(t.c.id == pool_id)
        if lock and self._lockable:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else self._record(row)

    def pools(self) -> list[PoolRecord]:
        found = [self._record(row) for row in self._conn.execute(sa.select(self._t.pools))]
        return sorted(found, key=lambda record: record.pool.id)

    def holdings(self, pool_id: str) -> dict[str, Amounts]:
        m, p = self._t.members, self._t.pools
        query = (sa.select(m, p.c.currency).join(p, p.c.id == m.c.pool_id)
                 .where(m.c.pool_id == pool_id))
        return {row.investor_id: _amounts(row, row.currency)
                for row in self._conn.execute(query)}

    def holding(self, pool_id: str, investor_id: str) -> Amounts | None:
        m, p = self._t.members, self._t.pools
        query = (sa.select(m, p.c.currency).join(p, p.c.id == m.c.pool_id)
                 .where(m.c.pool_id == pool_id, m.c.investor_id == investor_id))
        row = self._conn.execute(query).first()
        return None if row is None else _amounts(row, row.currency)

    def memberships(self, investor_id: str) -> list[tuple[PoolRecord, Amounts]]:
        m, p = self._t.members, self._t.pools
        held = {name: m.c[name].label(f"held_{name}") for name in _TOTALS}
        query = (sa.select(p, *held.values()).join(m, m.c.pool_id == p.c.id)
                 .where(m.c.investor_id == investor_id))
        found = []
        for row in self._conn.execute(query):
            found.append((self._record(row), _amounts(row, row.currency, prefix="held_")))
        return sorted(found, key=lambda pair: pair[0].pool.id)

    def receipt(self, key: str) -> Receipt | None:
        t = self._t.receipts
        row = self._conn.execute(sa.select(t).where(t.c.key == key)).first()
        if row is None:
            return None
        values = row._mapping
        return Receipt(values["key"], values["fingerprint"], values["action"],
                       values["pool_id"], int(values["first_seq"]), int(values["count"]))

    def entries(self, pool_id: str | None = None, first_seq: int = 1,
                last_seq: int | None = None) -> Iterator[Entry]:
        e, p = self._t.entries, self._t.pools
        query = (sa.select(e, p.c.currency).outerjoin(p, p.c.id == e.c.pool_id)
                 .where(e.c.seq >= first_seq).order_by(e.c.pool_id, e.c.seq))
        if pool_id is not None:
            query = query.where(e.c.pool_id == pool_id)
        if last_seq is not None:
            query = query.where(e.c.seq <= last_seq)
        result = self._conn.execution_options(yield_per=2_000).execute(query)
        for row in result:
            yield Entry(row.pool_id, int(row.seq), row.kind, row.investor_id,
                        _amount(row.amount, row.currency), from_micros(int(row.at_us)),
                        row.actor, row.detail, row.prev_hash, row.hash)

    def top_investors(self, n: int) -> list[InvestorRank]:
        source = TransactionsTable(self._t.entries, amount="amount", scale=SCALE,
                                   timestamp=None, kind="kind")
        return top_investors_sql(self._conn, source, n, kinds=("investment",))

    def add_investor(self, investor: Investor) -> None:
        self._conn.execute(sa.insert(self._t.investors).values(
            id=investor.id, name=investor.name, email=investor.email))

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        pool = record.pool
        self._conn.execute(sa.insert(self._t.pools).values(
            id=pool.id, manager_id=pool.manager_id, name=pool.name, currency=pool.currency,
            head_seq=record.head_seq, head_hash=record.head_hash,
            **_units(record.totals, (*_TOTALS, "carry"))))
        self._insert_entries([entry])

    def _insert_entries(self, entries: Sequence[Entry]) -> None:
        self._conn.execute(sa.insert(self._t.entries), [
            {"pool_id": e.pool_id, "seq": e.seq, "kind": e.kind, "investor_id": e.investor_id,
             "amount": to_units(e.amount), "at_us": to_micros(e.at), "actor": e.actor,
             "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash}
            for e in entries
        ])

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        p, m = self._t.pools, self._t.members
        pool_id = record.pool.id
        moved = self._conn.execute(
            sa.update(p).where(p.c.id == pool_id,
                               p.c.head_seq == record.head_seq - len(entries))
            .values(head_seq=record.head_seq, head_hash=record.head_hash,
                    **_units(record.totals, (*_TOTALS, "carry"))))
        if moved.rowcount != 1:
            raise _HeadMoved(f"pool {pool_id!r} changed under this write")
        self._insert_entries(entries)
        for investor_id, held in sorted(holdings.items()):
            values = _units(held, _TOTALS)
            updated = self._conn.execute(
                sa.update(m).where(m.c.pool_id == pool_id, m.c.investor_id == investor_id)
                .values(**values))
            if updated.rowcount == 0:
                self._conn.execute(sa.insert(m).values(pool_id=pool_id,
                                                       investor_id=investor_id, **values))
        if receipt is not None:
            self._conn.execute(sa.insert(self._t.receipts).values(
                key=receipt.key, fingerprint=receipt.fingerprint, action=receipt.action,
                pool_id=receipt.pool_id, first_seq=receipt.first_seq, count=receipt.count))

    def publish(self, event: LedgerEvent, clock: Clock) -> None:
        # Kept for the repository to write last, just before the commit (see feed.append).
        if self.published is not None:
            raise LedgerError("a unit of work publishes one change at most")
        self.published = (event, clock)

    def feed_head(self) -> int:
        return changes_feed.head_position(self._conn, self._t.feed_head)

    def identity(self) -> str:
        """The ledger's identity, written now if no process has yet."""
        found = changes_feed.read_identity(self._conn, self._t.feed_head)
        if found is None:
            found = new_identity()
            changes_feed.write_identity(self._conn, self._t.feed_head, found)
        return found

    def changes(self, after: int, limit: int) -> list[Recorded]:
        return changes_feed.read(self._conn, self._t.feed, after, limit)


def _nothing() -> None:
    pass


class _HeadMoved(Exception):
    """A pool's head moved between reading and writing it: run the unit of work again."""


def _retryable(error: BaseException) -> bool:
    if isinstance(error, _HeadMoved | sa.exc.IntegrityError):
        return True
    if isinstance(error, sa.exc.OperationalError):
        state = getattr(error.orig, "sqlstate", None)
        return state in _RETRY_SQLSTATES or "database is locked" in str(error.orig)
    return False


def _create_race(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` is what a concurrent creator of the same tables can cause."""
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
    if not isinstance(error, sa.exc.OperationalError):
        return False
    state = getattr(error.orig, "sqlstate", None)
    if state is not None:  # PostgreSQL: connection exceptions (08) and shutdowns (57P)
        return str(state).startswith(("08", "57P"))
    # No answer from a server at all (psycopg), or a database file that cannot be opened.
    message = str(error.orig).lower()
    return "connection" in message or "unable to open database" in message


class SqlLedgerRepository:
    """Ledger storage on a SQLAlchemy engine (see the module notes). Thread-safe.

    ``schema`` puts the tables in a PostgreSQL schema; ``create=True`` creates what is missing
    (``CREATE ... IF NOT EXISTS``); ``retries`` bounds how often a unit of work is run again
    after a conflict with another writer; ``poll_interval`` is how often (seconds) a follower
    of the feed on SQLite looks for commits of other processes.
    """

    def __init__(self, engine: Engine, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, dispose: bool = False, poll_interval: float = 0.01) -> None:
        if isinstance(poll_interval, bool) or not 0 < poll_interval < math.inf:
            raise ValidationError("poll_interval",
                                  f"must be a number of seconds > 0, not {poll_interval!r}")
        self.engine = engine
        self.tables = ledger_tables(schema)
        self.retries = retries
        self.poll_interval = poll_interval
        self._dispose = dispose
        self._sqlite = engine.dialect.name == "sqlite"
        # One shared connection (an in-memory SQLite database) serves one unit of work at a time.
        shared = isinstance(engine.pool, StaticPool)
        self._serial: threading.Lock | None = threading.Lock() if shared else None
        self._commit_order = threading.Lock()
        self._commits = threading.Condition()
        if create:
            self._create(schema)
        self._identity = self._run(self._open_feed, True, None)
        self._channel = None if self._sqlite else changes_feed.channel_of(self._identity)

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, engine_options: Mapping[str, Any] | None = None,
                 poll_interval: float = 0.01) -> SqlLedgerRepository:
        """A repository on a new engine for ``url`` (``postgresql://`` means psycopg)."""
        options = dict(engine_options or {})
        parsed = sa.make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            connect_args = dict(options.pop("connect_args", {}))
            connect_args.setdefault("check_same_thread", False)
            if parsed.database in (None, "", ":memory:"):
                options.setdefault("poolclass", StaticPool)
            else:
                connect_args.setdefault("timeout", 30)
            options["connect_args"] = connect_args
        try:
            engine = sa.create_engine(parsed, **options)
        except (ImportError, sa.exc.NoSuchModuleError) as error:
            raise MissingExtra("psycopg", "postgres") from error
        return cls(engine, schema=schema, create=create, retries=retries, dispose=True,
                   poll_interval=poll_interval)

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
            if not self._sqlite:
                # Creators of one schema take turns: the next one finds the tables made.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
            if schema is not None:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            self.tables.metadata.create_all(conn, checkfirst=True)

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
                    time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                    continue
                raise self._mapped(error) from error

    @staticmethod
    def _open_feed(session: LedgerSession) -> str:
        """The ledger's identity, written by the first process to open the storage."""
        assert isinstance(session, _SqlSession)
        return session.identity()

    def _guard(self) -> AbstractContextManager[Any]:
        return self._serial if self._serial is not None else nullcontext()

    @staticmethod
    def _mapped(error: sa.exc.DBAPIError) -> Exception:
        if _unavailable(error):
            return StoreUnavailable(f"the ledger database cannot be reached: {error.orig}")
        return LedgerError(f"ledger database error: {error.orig}")

    def _begin(self, conn: Connection, write: bool) -> Callable[[], None]:
        """Start the database transaction; return what puts the connection back as it was."""
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

    def _run(self, body: Callable[[LedgerSession], T], write: bool,
             on_commit: Callable[[T], object] | None) -> T:
        for attempt in range(self.retries + 1):
            try:
                with self._guard(), self.engine.connect() as conn:
                    if not write and not self._sqlite:
                        conn.execution_options(isolation_level="REPEATABLE READ")
                    restore: Callable[[], None] = _nothing
                    try:
                        with conn.begin() as transaction:
                            restore = self._begin(conn, write)
                            session = _SqlSession(conn, self.tables)
                            result = body(session)
                            if not write:
                                return result
                            if session.published is not None:
                                event, clock = session.published
                                changes_feed.append(conn, self.tables.feed_head,
                                                    self.tables.feed, event, clock,
                                                    self._channel)
                            with self._commit_order:
                                transaction.commit()
                                if on_commit is not None:
                                    on_commit(result)
                    finally:
                        restore()
                if session.published is not None:
                    with self._commits:
                        self._commits.notify_all()
                return result
            except (sa.exc.DBAPIError, _HeadMoved) as error:
                if attempt < self.retries and _retryable(error):
                    time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
                    continue
                if isinstance(error, _HeadMoved):
                    raise LedgerError(f"gave up after {attempt + 1} tries: {error}") from error
                raise self._mapped(error) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        return self._run(body, False, None)

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        return self._run(body, True, on_commit)

    def close(self) -> None:
        if self._dispose:
            self.engine.dispose()
