"""One unit of work of the SQL ledger on one connection: what it reads as the ledger's values,
and what it writes as rows (see :mod:`auptimate_core.backends.sql.tables`).

Reads run when asked (a batch's on PostgreSQL in four statements, each given its ids as a JSON
array). Writes of the pools' chains (``append``) and the changes (``publish``) are written with
the statements of :mod:`auptimate_core.backends.sql.statements` and the rows of
:mod:`auptimate_core.backends.sql.rows`: on SQLite one statement per table, at the unit of
work's end (:meth:`SqlSession.flush`); on PostgreSQL one statement per pool written, a batch's
appends in runs of at most 128 commands, the changes in the last statement. With pipeline mode
a batch's runs are sent ahead in one pipeline as the batch goes on (the server writes their
rows while the next commands run), their answers read before any other statement; the last
statement goes with the commit.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...clock import Clock
from ...domain import Investor, from_micros, to_micros
from ...pools.audit import AuditChain, Entry
from ...pools.changes import Recorded, new_identity
from ...pools.events import LedgerEvent
from ...pools.position import Amounts
from ...pools.repository import RANKED, BatchRead, MemberRead, PoolRecord, Receipt
from ...ranking import InvestorRank
from . import cursor
from . import feed as changes_feed
from .cursor import Statement
from .driver_errors import DriverError, describe, driver_error
from .ranking import TransactionsTable, top_investors_sql
from .rows import (
    Append,
    amount_of,
    amounts_in,
    amounts_of,
    append_params,
    by_pool,
    changes_params,
    entry_row,
    feed_row,
    held_of,
    receipt_marks,
    record_of,
    single,
    units_of,
)
from .statements import ENTRY_COLUMNS, Statements
from .tables import SCALE, TOTALS, LedgerTables

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

if TYPE_CHECKING:
    from .audit import SqlAuditRows

__all__ = ["DriverError", "HeadMoved", "SqlSession", "describe", "driver_error"]


class HeadMoved(Exception):
    """A pool's head moved between reading and writing it: run the unit of work again."""


_CHUNK = 500  # values per IN (...) of a batch's reads on SQLite: far below its limit
_RUN = 128  # a batch's appends sent ahead together on PostgreSQL (see append)


class SqlSession:
    """One unit of work on one connection (see :class:`~auptimate_core.pools.LedgerSession`,
    :class:`~auptimate_core.pools.MemberSession` and
    :class:`~auptimate_core.pools.repository.BatchSession`)."""

    def __init__(self, conn: Connection, tables: LedgerTables, statements: Statements,
                 chain: AuditChain | None = None) -> None:
        self._connection = conn
        self._t = tables
        self._s = statements
        self._chain = AuditChain() if chain is None else chain
        self._lockable = conn.dialect.name != "sqlite"
        self._appends: list[Append] = []
        self._ready: list[Statement] | None = None
        self._sent = cursor.Ahead(conn, statements.driver_error)
        self.published: list[tuple[LedgerEvent, Clock]] = []

    @property
    def _conn(self) -> Connection:
        """The connection, once the statements sent ahead have answered (see :meth:`append`):
        every statement but those goes through here."""
        if self._sent.open:
            self._settle()
        return self._connection

    def _settle(self) -> None:
        """End the pipeline of the statements sent ahead; raise :class:`HeadMoved` if one found
        its pool's head moved."""
        for row, (_, _, pool_id) in self._sent.end():
            _check_moved(row, pool_id)

    def abandon(self, error: BaseException) -> None:
        """Drop what this unit of work sent ahead, as ``error`` ends it (before its rollback)."""
        self._sent.abandon(error)

    def _record(self, row: Any) -> PoolRecord:
        return record_of(row._mapping)

    def _fetch(self, sql: str, params: Mapping[str, Any], pipelined: bool = False,
               commit: bool = False) -> Any:
        return cursor.fetch(self._conn, sql, params, self._s.driver_error, pipelined=pipelined,
                            commit=commit)

    def _fetch_all(self, sql: str, params: Mapping[str, Any], pipelined: bool = False
                   ) -> list[Any]:
        return cursor.fetch_all(self._conn, sql, params, self._s.driver_error,
                                pipelined=pipelined)

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

    def member(self, pool_id: str, investor_id: str, key: str | None) -> MemberRead | None:
        s = self._s
        params = {"pid": pool_id, "iid": investor_id, "key": key}
        if s.postgres:
            found = self._fetch(s.member_sql, params, pipelined=s.pipelined)
            row = None if found is None else dict(zip(s.member_columns, found, strict=True))
            if row is not None and row["seen_seq"] != row["head_seq"]:
                # The lock was waited for: read again in a snapshot that has what came before.
                row = dict(zip(s.member_columns, self._fetch(s.member_sql, params), strict=True))
        else:
            result = self._conn.execute(s.member, params).first()
            row = None if result is None else dict(result._mapping)
        if row is None:
            return None
        record = record_of(row)
        held = (None if row["held_invested"] is None
                else amounts_in(row, record.pool.currency, prefix="held_"))
        receipt = None if row["receipt_fp"] is None or key is None else Receipt(
            key, row["receipt_fp"], row["receipt_action"], row["receipt_pool"],
            int(row["receipt_first"]), int(row["receipt_count"]))
        return MemberRead(record, row["investor"] is not None, held, receipt)

    def batch(self, pool_ids: Collection[str], investor_ids: Collection[str],
              pairs: Collection[tuple[str, str]], keys: Collection[str]) -> BatchRead:
        if not self._s.postgres:
            return self._batch_in_chunks(pool_ids, investor_ids, pairs, keys)
        s = self._s
        records: dict[str, PoolRecord] = {}
        for row in self._fetch_all(s.lock_pools_sql, {"ids": _json(pool_ids)},
                                   pipelined=s.pipelined):
            record = record_of(dict(zip(s.pool_columns, row, strict=True)))
            records[record.pool.id] = record
        registered = frozenset(
            found for (found,) in self._fetch_all(s.registered_sql, {"ids": _json(investor_ids)}))
        holdings: dict[tuple[str, str], Amounts] = {}
        asked = [pair for pair in pairs if pair[0] in records]
        if asked:
            for pool_id, investor_id, *units in self._fetch_all(s.holdings_sql,
                                                                {"pairs": _json(asked)}):
                holdings[pool_id, investor_id] = held_of(units, records[pool_id].pool.currency)
        receipts: dict[str, Receipt] = {}
        if keys:
            for key, print_, action, pool_id, first, count in self._fetch_all(
                    s.receipts_sql, {"ids": _json(keys)}):
                receipts[key] = Receipt(key, print_, action, pool_id, int(first), int(count))
        return BatchRead(records, registered, holdings, receipts)

    def _batch_in_chunks(self, pool_ids: Collection[str], investor_ids: Collection[str],
                         pairs: Collection[tuple[str, str]], keys: Collection[str]) -> BatchRead:
        """:meth:`batch` on SQLite and MySQL: ``IN (...)`` lists of at most :data:`_CHUNK`."""
        t, conn = self._t, self._conn
        records: dict[str, PoolRecord] = {}
        for chunk in _chunks(sorted(pool_ids)):
            query = sa.select(t.pools).where(t.pools.c.id.in_(chunk)).order_by(t.pools.c.id)
            if self._lockable:
                query = query.with_for_update()
            records.update((row.id, self._record(row)) for row in conn.execute(query))
        registered: set[str] = set()
        for chunk in _chunks(sorted(investor_ids)):
            registered.update(conn.execute(
                sa.select(t.investors.c.id).where(t.investors.c.id.in_(chunk))).scalars())
        asked: dict[str, list[str]] = {}
        for pool_id, investor_id in pairs:
            if pool_id in records:
                asked.setdefault(pool_id, []).append(investor_id)
        holdings: dict[tuple[str, str], Amounts] = {}
        m = t.members
        for pool_id, investors in sorted(asked.items()):
            currency = records[pool_id].pool.currency
            for chunk in _chunks(sorted(investors)):
                query = sa.select(m).where(m.c.pool_id == pool_id, m.c.investor_id.in_(chunk))
                for row in conn.execute(query):
                    holdings[pool_id, row.investor_id] = amounts_of(row, currency)
        receipts: dict[str, Receipt] = {}
        r = t.receipts
        for chunk in _chunks(sorted(keys)):
            for row in conn.execute(sa.select(r).where(r.c.key.in_(chunk))):
                v = row._mapping
                receipts[v["key"]] = Receipt(v["key"], v["fingerprint"], v["action"],
                                             v["pool_id"], int(v["first_seq"]), int(v["count"]))
        return BatchRead(records, frozenset(registered), holdings, receipts)

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
            id=investor.id, name=investor.name, email=investor.email,
            hash=self._chain.investor_mark(investor)))

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        pool = record.pool
        self._conn.execute(sa.insert(self._t.pools).values(
            id=pool.id, manager_id=pool.manager_id, name=pool.name, currency=pool.currency,
            head_seq=record.head_seq, head_hash=record.head_hash,
            head_mark=self._chain.head_mark(pool.id, record.head_seq, record.head_hash),
            **units_of(record.totals, (*TOTALS, "carry"))))
        self._insert_entries([entry])

    def _insert_entries(self, entries: Sequence[Entry]) -> None:
        self._conn.execute(self._s.insert_entries, [
            {"pool_id": e.pool_id, **dict(zip(ENTRY_COLUMNS, entry_row(e), strict=True))}
            for e in entries])

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        """Keep an append; on PostgreSQL with pipeline mode, once :data:`_RUN` are kept, send
        them ahead (one statement a pool) while the unit of work goes on: the server writes a
        batch's rows while its next commands run. Their answers are read (and checked) before
        any other statement, at the latest by :meth:`prepare`."""
        self._appends.append((record, list(entries), dict(holdings),
                              [] if receipt is None else [receipt]))
        if self._sent.open:
            self._sent.pump()
        if len(self._appends) >= _RUN and self._s.pipelined:
            appends, self._appends = by_pool(self._appends), []
            for statement in self._ahead(appends):
                self._sent.send(statement)

    def publish(self, event: LedgerEvent, clock: Clock) -> None:
        self.published.append((event, clock))

    def flush(self, channel: str | None, commit: bool = False) -> bool:
        """Write what the unit of work kept: its appends, then its change (the last write: from
        the feed head's update to the commit, the unit of work holds the head's lock).
        ``channel`` is the PostgreSQL channel to notify.

        With ``commit`` (PostgreSQL on a driver with pipeline mode) the last statement goes
        with the ``COMMIT`` in one round trip, so the head's lock is let go as soon as the
        server has written, without waiting for this process to answer. Returns whether the
        unit of work was committed here.
        """
        if self._s.postgres:
            statements = self._ready
            if statements is None:
                statements = self._postgres_statements(channel)
            self._ready = None
            return self._send(statements, commit)
        appends, self._appends = by_pool(self._appends), []
        for pending in appends:
            self._append_rows(*pending)
        if self.published:
            changes = self.published
            row = self._move_head({"head_id": changes_feed.HEAD_ID, "n": len(changes),
                                   "now": to_micros(changes[-1][1].now())})
            first = int(row.position) - len(changes) + 1
            rows = []
            for n, (event, _) in enumerate(changes):
                kind, pool_id, payload = feed_row(event)
                rows.append({"position": first + n, "at_us": row.at_us, "type": kind,
                             "pool_id": pool_id, "event": payload})
            self._conn.execute(self._s.insert_change, rows)
        return False

    def _move_head(self, params: Mapping[str, Any]) -> Any:
        """Move the feed's head past ``params["n"]`` changes (not on PostgreSQL, whose last
        statement moves it); the row of its new ``position`` and ``at_us``."""
        return self._conn.execute(self._s.next_position, params).one()

    def prepare(self, channel: str | None) -> None:
        """On PostgreSQL (with pipeline mode), build the unit of work's statements and send all
        but the last (the one that moves the feed's head), leaving :meth:`flush` only that one
        to send: the repository calls it before its turn to commit, so that the turn holds no
        more than the last statement and the commit. Nothing to do on SQLite.

        The statements sent here go in the pipeline of those :meth:`append` sent, each as soon
        as it is built; the last is built while the server runs them."""
        if not self._s.postgres:
            return
        appends, self._appends = by_pool(self._appends, _RUN), []
        for statement in self._ahead(appends[:-1]):
            self._sent.send(statement)
        last = self._last(appends[-1:], channel)
        self._settle()
        self._ready = [] if last is None else [last]

    def _postgres_statements(self, channel: str | None) -> list[Statement]:
        """The statements of the unit of work: one per pool written (a batch's appends to one
        pool in runs of at most :data:`_RUN`), the changes in the last."""
        appends, self._appends = by_pool(self._appends, _RUN), []
        last = self._last(appends[-1:], channel)
        return [*self._ahead(appends[:-1]), *([] if last is None else [last])]

    def _ahead(self, appends: list[Append]) -> Iterator[Statement]:
        """The statements of ``appends`` (all but the unit of work's last), each built when
        asked for."""
        for pending in appends:
            yield self._s.append_sql, append_params(*pending, self._chain), pending[0].pool.id

    def _last(self, appends: list[Append], channel: str | None) -> Statement | None:
        """The unit of work's last statement: the last of ``appends`` (none or one) and the
        changes; None when there is neither."""
        s = self._s
        many = len(self.published) > 1
        change = self._change(channel, many)
        if not appends:
            return (s.publish_many_sql if many else s.publish_sql, change, None) if change \
                else None
        pending = appends[0]
        one = bool(change) and not many and single(*pending)
        sql = (s.append_one_and_publish_sql if one else
               s.append_and_publish_many_sql if many else
               s.append_and_publish_sql if change else s.append_sql)
        params = append_params(*pending, self._chain, one=one)
        params.update(change)
        return sql, params, pending[0].pool.id

    def _change(self, channel: str | None, many: bool) -> dict[str, Any]:
        """The parameters of the unit of work's changes (none when it has none)."""
        if not self.published:
            return {}
        change: dict[str, Any] = {"head_id": changes_feed.HEAD_ID, "channel": channel,
                                  "now": to_micros(self.published[-1][1].now())}
        if many:
            change["n"] = len(self.published)
            change.update(changes_params([event for event, _ in self.published]))
        else:
            kind, pool_id, payload = feed_row(self.published[0][0])
            change.update(event_type=kind, event_pool=pool_id, event=payload)
        return change

    def _send(self, statements: list[Statement], commit: bool) -> bool:
        """Run ``statements`` in order, the last with the ``COMMIT`` when ``commit``; raise
        :class:`HeadMoved` if one found its pool's head moved."""
        for n, (sql, params, pool_id) in enumerate(statements):
            last = n == len(statements) - 1
            _check_moved(self._fetch(sql, params, commit=last and commit), pool_id)
        return commit and bool(statements)

    def _append_rows(self, record: PoolRecord, entries: Sequence[Entry],
                     holdings: Mapping[str, Amounts], receipts: list[Receipt]) -> None:
        s, pool_id = self._s, record.pool.id
        moved = self._conn.execute(s.update_pool, {
            "pid": pool_id, "old_seq": record.head_seq - len(entries),
            "head_seq": record.head_seq, "head_hash": record.head_hash,
            "head_mark": self._chain.head_mark(pool_id, record.head_seq, record.head_hash),
            **units_of(record.totals, (*TOTALS, "carry"))})
        if moved.rowcount != 1:
            raise HeadMoved(f"pool {pool_id!r} changed under this write")
        if entries:
            self._conn.execute(s.insert_entries, [
                {"pool_id": pool_id, **dict(zip(ENTRY_COLUMNS, entry_row(e), strict=True))}
                for e in entries])
        if holdings:
            self._conn.execute(s.upsert_members, [
                {"pool_id": pool_id, "investor_id": investor_id, **units_of(held, TOTALS)}
                for investor_id, held in sorted(holdings.items())])
        if receipts:
            self._conn.execute(s.insert_receipt, [
                {"key": r.key, "fingerprint": r.fingerprint, "action": r.action,
                 "pool_id": r.pool_id, "first_seq": r.first_seq, "count": r.count,
                 "hash": mark}
                for r, mark in zip(receipts, receipt_marks(self._chain, receipts, entries),
                                   strict=True)])

    def mark_with(self, chain: AuditChain) -> None:
        """Make the rows' marks (see :mod:`auptimate_core.pools.audit`) with ``chain``."""
        self._chain = chain

    def audit_rows(self) -> SqlAuditRows:
        """Every table's rows, checked, for the audit (:mod:`auptimate_core.pools.verify`)."""
        from .audit import SqlAuditRows

        return SqlAuditRows(self._conn, self._t)

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


def _check_moved(row: Any, pool_id: str | None) -> None:
    """Raise :class:`HeadMoved` unless a write's statement (its first row) moved its pool's
    head."""
    if row[0] != 1:
        raise HeadMoved(f"pool {pool_id!r} changed under this write")


def _json(values: Collection[Any]) -> str:
    """``values`` as a JSON array (of ids, or of pairs of ids)."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]
