"""One unit of work of the SQL ledger on one connection: what it reads as the ledger's values,
and what it writes as rows (see :mod:`auptimate_core.backends.sql.tables`).

Reads run when asked. Writes of the pools' chains (``append``) and the changes (``publish``)
are kept until :meth:`SqlSession.flush`, the unit of work's last step, which writes them with the
statements of :mod:`auptimate_core.backends.sql.statements`: on PostgreSQL in one statement per
pool written, on SQLite in one per table. The appends of a batch to one pool are written
together, its changes too.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from ...clock import Clock
from ...domain import Investor, Pool, from_micros, to_micros
from ...money import minor_unit
from ...pools.audit import AuditChain, Entry
from ...pools.changes import Recorded, new_identity
from ...pools.events import LedgerEvent
from ...pools.position import Amounts
from ...pools.repository import RANKED, BatchRead, MemberRead, PoolRecord, Receipt
from ...ranking import InvestorRank
from ...store import from_units, to_units
from . import feed as changes_feed
from .driver_errors import DriverError, describe, driver_error
from .ranking import TransactionsTable, top_investors_sql
from .statements import ENTRY_COLUMNS, RECEIPT_COLUMNS, Statements
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


def amount_of(units: int, currency: str | None) -> Decimal:
    """Stored units as an amount at the currency's minor unit; kept as is if that would round
    (a value edited in the database then fails the audit instead of being hidden)."""
    return _amount(units, None if currency is None else minor_unit(currency))


def _amount(units: int, unit: Decimal | None) -> Decimal:
    value = from_units(int(units))
    if unit is None:
        return value
    exact = value.quantize(unit)
    return exact if exact == value else value


def amounts_of(row: Any, currency: str, carry: bool = False, prefix: str = "") -> Amounts:
    return amounts_in(row._mapping, currency, carry, prefix)


def amounts_in(values: Mapping[str, Any], currency: str, carry: bool = False,
               prefix: str = "") -> Amounts:
    unit = minor_unit(currency)

    def get(name: str) -> Decimal:
        return _amount(values[prefix + name], unit)

    return Amounts(invested=get("invested"), refunded=get("refunded"), fees=get("fees"),
                   distributed=get("distributed"), carry=get("carry") if carry else unit * 0)


def record_of(values: Mapping[str, Any]) -> PoolRecord:
    """A pool's record from its row's values."""
    currency = values["currency"]
    pool = Pool(values["id"], values["manager_id"], values["name"], currency)
    return PoolRecord(pool, int(values["head_seq"]), values["head_hash"],
                      amounts_in(values, currency, carry=True))


def units_of(totals: Amounts, names: Sequence[str]) -> dict[str, int]:
    return {name: to_units(getattr(totals, name)) for name in names}


_Append: TypeAlias = tuple[PoolRecord, Sequence[Entry], Mapping[str, Amounts], list[Receipt]]
_CHUNK = 500  # values per IN (...) of a batch's reads: far below any driver's limit


def _entry_row(entry: Entry) -> tuple[Any, ...]:
    return (entry.seq, entry.kind, entry.investor_id, to_units(entry.amount),
            to_micros(entry.at), entry.actor, entry.detail, entry.prev_hash, entry.hash)


class SqlSession:
    """One unit of work on one connection (see :class:`~auptimate_core.pools.LedgerSession`
    and :class:`~auptimate_core.pools.MemberSession`)."""

    def __init__(self, conn: Connection, tables: LedgerTables, statements: Statements,
                 chain: AuditChain | None = None) -> None:
        self._conn = conn
        self._t = tables
        self._s = statements
        self._chain = AuditChain() if chain is None else chain
        self._lockable = conn.dialect.name != "sqlite"
        self._appends: list[_Append] = []
        self._ready: list[tuple[str, dict[str, Any], str | None]] | None = None
        self.published: list[tuple[LedgerEvent, Clock]] = []

    def _record(self, row: Any) -> PoolRecord:
        return record_of(row._mapping)

    def _fetch(self, sql: str, params: Mapping[str, Any], pipelined: bool = False,
               commit: bool = False) -> Any:
        """The first row of ``sql`` (compiled for this dialect) run on the DBAPI cursor.

        SQLAlchemy's own path for a statement on a cursor (its cursor events, logging and
        error mapping), without the execution context and result it builds for ``execute``:
        the hot statements of PostgreSQL run here. With ``pipelined`` (psycopg's pipeline
        mode) the ``BEGIN`` the driver sends before a unit of work's first statement goes with
        that statement, in one round trip. With ``commit`` (pipeline mode too) the ``COMMIT``
        goes behind the statement: one round trip, and the server commits without waiting for
        this process; a statement that fails aborts the commit (the transaction is rolled
        back).
        """
        fairy = self._conn.connection
        cursor = fairy.cursor()
        try:
            if not (pipelined or commit):
                self._conn._cursor_execute(cursor, sql, params)
                return cursor.fetchone()
            driver: Any = fairy.driver_connection
            try:
                with driver.pipeline():
                    self._conn._cursor_execute(cursor, sql, params)
                    if commit:
                        driver.commit()
            except self._s.driver_error as error:
                # What _cursor_execute does for an error raised at once: map it, invalidate
                # the connection if it broke.
                self._conn._handle_dbapi_exception(error, sql, params, cursor, None)
            return cursor.fetchone()
        finally:
            cursor.close()

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
        by_pool: dict[str, list[str]] = {}
        for pool_id, investor_id in pairs:
            if pool_id in records:
                by_pool.setdefault(pool_id, []).append(investor_id)
        holdings: dict[tuple[str, str], Amounts] = {}
        m = t.members
        for pool_id, investors in sorted(by_pool.items()):
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
            {"pool_id": e.pool_id, **dict(zip(ENTRY_COLUMNS, _entry_row(e), strict=True))}
            for e in entries])

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        self._appends.append((record, list(entries), dict(holdings),
                              [] if receipt is None else [receipt]))

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
                statements = self._postgres_statements(_by_pool(self._appends), channel)
            self._appends, self._ready = [], None
            return self._send(statements, commit)
        appends, self._appends = _by_pool(self._appends), []
        for pending in appends:
            self._append_rows(*pending)
        if self.published:
            changes = self.published
            row = self._move_head({"head_id": changes_feed.HEAD_ID, "n": len(changes),
                                   "now": to_micros(changes[-1][1].now())})
            first = int(row.position) - len(changes) + 1
            rows = []
            for n, (event, _) in enumerate(changes):
                kind, pool_id, payload = changes_feed.payload(event)
                rows.append({"position": first + n, "at_us": row.at_us, "type": kind,
                             "pool_id": pool_id, "event": payload})
            self._conn.execute(self._s.insert_change, rows)
        return False

    def _move_head(self, params: Mapping[str, Any]) -> Any:
        """Move the feed's head past ``params["n"]`` changes (not on PostgreSQL, whose last
        statement moves it); the row of its new ``position`` and ``at_us``."""
        return self._conn.execute(self._s.next_position, params).one()

    def prepare(self, channel: str | None) -> None:
        """On PostgreSQL, build the unit of work's statements and send all but the last (the
        one that moves the feed's head), leaving :meth:`flush` only that one to send: the
        repository calls it before its turn to commit, so that the turn holds no more than
        the last statement and the commit. Nothing to do on SQLite."""
        if not self._s.postgres:
            return
        statements = self._postgres_statements(_by_pool(self._appends), channel)
        self._appends = []
        self._send(statements[:-1], False)
        self._ready = statements[-1:]

    def _postgres_statements(self, appends: list[_Append], channel: str | None
                             ) -> list[tuple[str, dict[str, Any], str | None]]:
        """The statements of the unit of work: one per pool written, the changes in the last."""
        s = self._s
        change: dict[str, Any] = {}
        many = len(self.published) > 1
        if self.published:
            clock = self.published[-1][1]
            change = {"head_id": changes_feed.HEAD_ID, "now": to_micros(clock.now()),
                      "channel": channel}
            if many:
                change["n"] = len(self.published)
                change["changes"] = _changes_json(event for event, _ in self.published)
            else:
                kind, pool_id, payload = changes_feed.payload(self.published[0][0])
                change.update(event_type=kind, event_pool=pool_id, event=payload)
        statements: list[tuple[str, dict[str, Any], str | None]] = []
        for n, pending in enumerate(appends):
            last = n == len(appends) - 1
            single = last and bool(change) and not many and _single(*pending)
            sql = (s.append_one_and_publish_sql if single else
                   s.append_and_publish_many_sql if last and many else
                   s.append_and_publish_sql if last and change else s.append_sql)
            params = _append_params(*pending, single=single, chain=self._chain)
            if last:
                params.update(change)
            statements.append((sql, params, pending[0].pool.id))
        if change and not appends:
            statements.append((s.publish_many_sql if many else s.publish_sql, change, None))
        return statements

    def _send(self, statements: list[tuple[str, dict[str, Any], str | None]],
              commit: bool) -> bool:
        """Run ``statements`` in order, the last with the ``COMMIT`` when ``commit``; raise
        :class:`HeadMoved` if one found its pool's head moved."""
        for n, (sql, params, pool_id) in enumerate(statements):
            last = n == len(statements) - 1
            row = self._fetch(sql, params, commit=last and commit)
            if row[0] != 1:
                raise HeadMoved(f"pool {pool_id!r} changed under this write")
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
                {"pool_id": pool_id, **dict(zip(ENTRY_COLUMNS, _entry_row(e), strict=True))}
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
                for r, mark in zip(receipts, _receipt_marks(self._chain, receipts, entries),
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


def _changes_json(events: Iterable[LedgerEvent]) -> str:
    """A batch's changes as a JSON array of ``{"type", "pool_id", "event"}`` objects, each event
    the JSON object the feed keeps (put in as it is, not as a string to decode again)."""
    found = []
    for event in events:
        kind, pool_id, payload = changes_feed.payload(event)
        found.append(f'{{"type":{json.dumps(kind)},"pool_id":{json.dumps(pool_id)},'
                     f'"event":{payload}}}')
    return f"[{','.join(found)}]"


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _by_pool(appends: list[_Append]) -> list[_Append]:
    """The appends of each pool as one (its last record, every entry in order, each holding's
    last value, every receipt), pools in the order first appended."""
    if len(appends) < 2:
        return appends
    merged: dict[str, tuple[PoolRecord, list[Entry], dict[str, Amounts], list[Receipt]]] = {}
    for record, entries, holdings, receipts in appends:
        before = merged.get(record.pool.id)
        if before is None:
            merged[record.pool.id] = (record, list(entries), dict(holdings), list(receipts))
            continue
        _, all_entries, all_holdings, all_receipts = before
        all_entries.extend(entries)
        all_holdings.update(holdings)
        all_receipts.extend(receipts)
        merged[record.pool.id] = (record, all_entries, all_holdings, all_receipts)
    return list(merged.values())


def _single(record: PoolRecord, entries: Sequence[Entry], holdings: Mapping[str, Amounts],
            receipts: list[Receipt]) -> bool:
    return len(entries) == 1 and len(holdings) <= 1 and len(receipts) <= 1


def _receipt_marks(chain: AuditChain, receipts: Sequence[Receipt],
                   entries: Sequence[Entry]) -> list[str]:
    """The marks of ``receipts``, each bound to the hash of its first entry (in ``entries``)."""
    if not receipts:
        return []
    hashes = {e.seq: e.hash for e in entries}
    return [chain.receipt_mark(r.key, r.fingerprint, r.action, r.pool_id, r.first_seq, r.count,
                               hashes[r.first_seq]) for r in receipts]


def _append_params(record: PoolRecord, entries: Sequence[Entry], holdings: Mapping[str, Amounts],
                   receipts: list[Receipt], single: bool = False,
                   chain: AuditChain | None = None) -> dict[str, Any]:
    """The parameters of the PostgreSQL append: the pool's new head, its mark and totals, and
    the rows of the entries, holdings and receipts (with ``single``, the only row's values, None
    for a table without one; otherwise each table's rows as JSON)."""
    chain = AuditChain() if chain is None else chain
    params: dict[str, Any] = {
        "pid": record.pool.id, "old_seq": record.head_seq - len(entries),
        "new_seq": record.head_seq, "head_hash": record.head_hash,
        "head_mark": chain.head_mark(record.pool.id, record.head_seq, record.head_hash),
        **units_of(record.totals, (*TOTALS, "carry"))}
    entry_rows = [_entry_row(entry) for entry in entries]
    member_rows = [(investor_id, *(to_units(getattr(amounts, name)) for name in TOTALS))
                   for investor_id, amounts in sorted(holdings.items())]
    receipt_rows = [(r.key, r.fingerprint, r.action, r.first_seq, r.count, mark)
                    for r, mark in zip(receipts, _receipt_marks(chain, receipts, entries),
                                       strict=True)]
    for prefix, columns, rows in (("e", ENTRY_COLUMNS, entry_rows),
                                  ("m", ("investor_id", *TOTALS), member_rows),
                                  ("r", RECEIPT_COLUMNS, receipt_rows)):
        if single:
            for n, column in enumerate(columns):
                params[f"{prefix}_{column}"] = rows[0][n] if rows else None
        else:
            params[f"{prefix}_rows"] = json.dumps(
                [dict(zip(columns, row, strict=True)) for row in rows],
                separators=(",", ":"), ensure_ascii=False)
    return params
