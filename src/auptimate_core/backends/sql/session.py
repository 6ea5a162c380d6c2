"""One unit of work of the SQL ledger on one connection: what it reads as the ledger's values,
and what it writes as rows (see :mod:`auptimate_core.backends.sql.tables`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ...clock import Clock
from ...domain import Investor, Pool, from_micros, to_micros
from ...errors import LedgerError
from ...money import minor_unit
from ...pools.audit import Entry
from ...pools.changes import Recorded, new_identity
from ...pools.events import LedgerEvent
from ...pools.position import Amounts
from ...pools.repository import RANKED, PoolRecord, Receipt
from ...ranking import InvestorRank
from ...store import from_units, to_units
from . import feed as changes_feed
from .ranking import TransactionsTable, top_investors_sql
from .tables import SCALE, TOTALS, LedgerTables

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["HeadMoved", "SqlSession"]


class HeadMoved(Exception):
    """A pool's head moved between reading and writing it: run the unit of work again."""


def amount_of(units: int, currency: str | None) -> Decimal:
    """Stored units as an amount at the currency's minor unit; kept as is if that would round
    (a value edited in the database then fails the audit instead of being hidden)."""
    value = from_units(int(units))
    if currency is None:
        return value
    exact = value.quantize(minor_unit(currency))
    return exact if exact == value else value


def amounts_of(row: Any, currency: str, carry: bool = False, prefix: str = "") -> Amounts:
    values = row._mapping

    def get(name: str) -> Decimal:
        return amount_of(values[prefix + name], currency)

    return Amounts(invested=get("invested"), refunded=get("refunded"), fees=get("fees"),
                   distributed=get("distributed"),
                   carry=get("carry") if carry else minor_unit(currency) * 0)


def units_of(totals: Amounts, names: Sequence[str]) -> dict[str, int]:
    return {name: to_units(getattr(totals, name)) for name in names}


class SqlSession:
    """One unit of work on one connection (see :class:`~auptimate_core.pools.LedgerSession`)."""

    def __init__(self, conn: Connection, tables: LedgerTables) -> None:
        self._conn = conn
        self._t = tables
        self._lockable = conn.dialect.name != "sqlite"
        self.published: tuple[LedgerEvent, Clock] | None = None

    def _record(self, row: Any) -> PoolRecord:
        pool = Pool(row.id, row.manager_id, row.name, row.currency)
        return PoolRecord(pool, int(row.head_seq), row.head_hash,
                          amounts_of(row, row.currency, carry=True))

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
        return {row.investor_id: amounts_of(row, row.currency)
                for row in self._conn.execute(query)}

    def holding(self, pool_id: str, investor_id: str) -> Amounts | None:
        m, p = self._t.members, self._t.pools
        query = (sa.select(m, p.c.currency).join(p, p.c.id == m.c.pool_id)
                 .where(m.c.pool_id == pool_id, m.c.investor_id == investor_id))
        row = self._conn.execute(query).first()
        return None if row is None else amounts_of(row, row.currency)

    def memberships(self, investor_id: str) -> list[tuple[PoolRecord, Amounts]]:
        m, p = self._t.members, self._t.pools
        held = {name: m.c[name].label(f"held_{name}") for name in TOTALS}
        query = (sa.select(p, *held.values()).join(m, m.c.pool_id == p.c.id)
                 .where(m.c.investor_id == investor_id))
        found = []
        for row in self._conn.execute(query):
            found.append((self._record(row), amounts_of(row, row.currency, prefix="held_")))
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
                        amount_of(row.amount, row.currency), from_micros(int(row.at_us)),
                        row.actor, row.detail, row.prev_hash, row.hash)

    def top_investors(self, n: int) -> list[InvestorRank]:
        source = TransactionsTable(self._t.entries, amount="amount", scale=SCALE,
                                   timestamp=None, kind="kind")
        return top_investors_sql(self._conn, source, n, kinds=RANKED)

    def add_investor(self, investor: Investor) -> None:
        self._conn.execute(sa.insert(self._t.investors).values(
            id=investor.id, name=investor.name, email=investor.email))

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        pool = record.pool
        self._conn.execute(sa.insert(self._t.pools).values(
            id=pool.id, manager_id=pool.manager_id, name=pool.name, currency=pool.currency,
            head_seq=record.head_seq, head_hash=record.head_hash,
            **units_of(record.totals, (*TOTALS, "carry"))))
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
                    **units_of(record.totals, (*TOTALS, "carry"))))
        if moved.rowcount != 1:
            raise HeadMoved(f"pool {pool_id!r} changed under this write")
        self._insert_entries(entries)
        for investor_id, held in sorted(holdings.items()):
            values = units_of(held, TOTALS)
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
