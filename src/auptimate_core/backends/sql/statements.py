"""The statements of the SQL ledger's writes, built once per repository and reused.

A write reads in one statement and writes in one more on PostgreSQL, whatever the pool's size:

- :attr:`Statements.member` reads what an admission, investment or refund needs (the pool's row,
  locked on PostgreSQL, the investor, their holding and the idempotency key's receipt) with
  outer joins on primary keys. On PostgreSQL it also reads the pool's head as of the
  statement's snapshot (``seen_seq``): when the statement had to wait for the pool's lock, the
  locked row is the latest one but the joined rows are those of the snapshot, and the two
  heads differ; the session then reads again, now holding the lock (every change of a holding
  moves its pool's head).
- :func:`append_sql` (PostgreSQL) writes a whole unit of work in one statement of
  data-modifying ``WITH`` queries: the pool's new head and totals, its entries, the holdings
  it changed (an upsert), the receipt, and the change feed (the head's next position and the
  change, then ``pg_notify``). A distribution's entries and holdings arrive as JSON arrays
  (``jsonb_array_elements``), so paying ten thousand members is still one statement and one
  round trip; a write of one member passes its rows as scalars. Every part of it writes only if the
  pool's head moved, so that the statement can go with its ``COMMIT`` in one round trip
  (:attr:`Statements.pipelined`) and still leave nothing behind when the head had moved.
- On SQLite (in-process, no round trips) the same rows are written by one statement per table:
  executemany for the entries and holdings.

The feed's head also keeps the time of the last change (``at_us``): each change's time is the
later of the writer's clock and the one before it, so times follow positions even when two
writers read their clocks in the other order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .tables import TOTALS, LedgerTables

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.engine import Dialect
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["ENTRY_COLUMNS", "HELD_COLUMNS", "RECEIPT_COLUMNS", "Statements", "append_sql"]

ENTRY_COLUMNS: Final = ("seq", "kind", "investor_id", "amount", "at_us", "actor", "detail",
                        "prev_hash", "hash")
"""The columns of an entry after its pool id, in the order the statements take them."""

_ENTRY_TYPES: Final = ("INTEGER", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "VARCHAR",
                       "VARCHAR", "VARCHAR", "VARCHAR")
HELD_COLUMNS: Final = ("investor_id", *TOTALS)
"""The columns of a holding after its pool id, in the order the statements take them."""
_HELD_TYPES: Final = ("VARCHAR",) + ("BIGINT",) * len(TOTALS)
RECEIPT_COLUMNS: Final = ("key", "fingerprint", "action", "first_seq", "count", "hash")
"""The columns of a receipt after its pool id, in the order the statements take them."""
_RECEIPT_TYPES: Final = ("VARCHAR", "VARCHAR", "VARCHAR", "INTEGER", "INTEGER", "VARCHAR")
_HELD_LABELS: Final = tuple(f"held_{name}" for name in TOTALS)


_MOVED: Final = "EXISTS (SELECT FROM head)"


def _rows(prefix: str, columns: Sequence[str], types: Sequence[str], single: bool) -> str:
    """The rows of one table, none unless the pool's head moved: a JSON array of arrays, each
    a row's values in the order of ``columns`` (parameter ``<prefix>_rows``), or one row of
    scalars (``<prefix>_<column>``; none when the first is NULL)."""
    if not single:
        fields = ", ".join(f"CAST(r.value->>{n} AS {kind})" for n, kind in enumerate(types))
        return (f"(SELECT {fields} FROM jsonb_array_elements(CAST(:{prefix}_rows AS JSONB)) "
                f"AS r) AS {prefix}_rows WHERE {_MOVED}")
    values = ", ".join(f"CAST(:{prefix}_{column} AS {kind})"
                       for column, kind in zip(columns, types, strict=True))
    return (f"(SELECT {values}) AS {prefix}_row "
            f"WHERE CAST(:{prefix}_{columns[0]} AS {types[0]}) IS NOT NULL AND {_MOVED}")


class Statements:
    """The prebuilt statements of one repository's tables on one dialect (see the module)."""

    def __init__(self, tables: LedgerTables, dialect: Dialect, *, pipeline: bool = True) -> None:
        self.postgres = dialect.name == "postgresql"
        dbapi: Any = dialect.loaded_dbapi
        self.driver_error: type[Exception] = dbapi.Error
        """The driver's base error class."""
        self.pipelined = (pipeline and self.postgres and dialect.driver == "psycopg"
                          and not dialect.is_async and _pipelines())
        """Whether a write's last statement and its commit go in one round trip (psycopg's
        pipeline mode, on libpq 14 or later; not on an asyncio engine)."""
        p, m, i, r = tables.pools, tables.members, tables.investors, tables.receipts
        head, feed = tables.feed_head, tables.feed

        pid: sa.BindParameter[str] = sa.bindparam("pid", type_=sa.String)
        iid: sa.BindParameter[str] = sa.bindparam("iid", type_=sa.String)
        key: sa.BindParameter[str] = sa.bindparam("key", type_=sa.String)
        columns: list[Any] = [
            *p.c,
            *(m.c[name].label(label) for name, label in zip(TOTALS, _HELD_LABELS, strict=True)),
            i.c.id.label("investor"),
            r.c.fingerprint.label("receipt_fp"), r.c.action.label("receipt_action"),
            r.c.pool_id.label("receipt_pool"), r.c.first_seq.label("receipt_first"),
            r.c.count.label("receipt_count"),
        ]
        if self.postgres:
            seen = p.alias("seen")
            columns.append(sa.select(seen.c.head_seq).where(seen.c.id == p.c.id)
                           .scalar_subquery().label("seen_seq"))
        joined = (p.outerjoin(m, sa.and_(m.c.pool_id == p.c.id, m.c.investor_id == iid))
                  .outerjoin(i, i.c.id == iid).outerjoin(r, r.c.key == key))
        member = sa.select(*columns).select_from(joined).where(p.c.id == pid)
        if self.postgres:
            member = member.with_for_update(of=p)
        self.member: Any = member
        """What one member's write reads (parameters ``pid``, ``iid``, ``key``)."""
        self.member_columns: tuple[str, ...] = tuple(member.selected_columns.keys())
        """The names of :attr:`member`'s columns, in order."""

        # SQLite: one statement per table; the pool's SET names the columns given to it.
        self.update_pool: Any = sa.update(p).where(p.c.id == sa.bindparam("pid"),
                                                   p.c.head_seq == sa.bindparam("old_seq"))
        self.insert_entries: Any = sa.insert(tables.entries)
        upsert = sqlite_dialect.insert(m)
        self.upsert_members: Any = upsert.on_conflict_do_update(
            index_elements=[m.c.pool_id, m.c.investor_id],
            set_={name: upsert.excluded[name] for name in TOTALS})
        self.insert_receipt: Any = sa.insert(r)
        now = sa.bindparam("now", type_=sa.BigInteger)
        self.next_position: Any = (
            sa.update(head).where(head.c.id == sa.bindparam("head_id"))
            .values(position=head.c.position + sa.bindparam("n", type_=sa.BigInteger),
                    at_us=sa.case((head.c.at_us > now, head.c.at_us), else_=now))
            .returning(head.c.position, head.c.at_us))
        self.insert_change: Any = sa.insert(feed)

        # PostgreSQL: one statement for the whole write, compiled here and run on the cursor.
        name = dialect.identifier_preparer.format_table
        chain = (name(p), name(tables.entries), name(m), name(r))
        feed_tables = (name(head), name(feed))

        def compiled(statement: Any) -> str:
            return str(statement.compile(dialect=dialect))

        self.member_sql = compiled(member)
        """:attr:`member` as the driver runs it."""
        self.append_sql = compiled(sa.text(append_sql(*chain, None)))
        """A unit of work's rows, without a change."""
        self.append_and_publish_sql = compiled(sa.text(append_sql(*chain, feed_tables)))
        """A unit of work's rows and its change."""
        self.append_one_and_publish_sql = compiled(
            sa.text(append_sql(*chain, feed_tables, single=True)))
        """A unit of work's row of each table (at most one) and its change."""
        self.append_and_publish_many_sql = compiled(
            sa.text(append_sql(*chain, feed_tables, many=True)))
        """A unit of work's rows and its changes (a batch)."""
        self.publish_sql = compiled(sa.text(
            f"WITH head AS (SELECT 1), {_feed_ctes(*feed_tables)} "
            f"SELECT 1 AS moved, {_NOTIFY}"))
        """A change alone (after a new investor or pool)."""
        self.publish_many_sql = compiled(sa.text(
            f"WITH head AS (SELECT 1), {_feed_ctes(*feed_tables, many=True)} "
            f"SELECT 1 AS moved, {_NOTIFY}"))
        """Changes alone."""

        # PostgreSQL: a batch's reads, each given its ids as one JSON array.
        listed = "IN (SELECT json_array_elements_text(CAST(:ids AS JSON)))"
        self.pool_columns: tuple[str, ...] = tuple(c.name for c in p.c)
        """The columns :attr:`lock_pools_sql` reads, in order."""
        self.lock_pools_sql = compiled(sa.text(
            f"SELECT {', '.join(self.pool_columns)} FROM {name(p)} WHERE id {listed} "
            "ORDER BY id FOR UPDATE"))
        """Lock and read the pools of a JSON array of ids (``ids``), in the order of their ids."""
        self.registered_sql = compiled(sa.text(f"SELECT id FROM {name(i)} WHERE id {listed}"))
        """Which of a JSON array of investor ids (``ids``) are registered."""
        self.holdings_sql = compiled(sa.text(
            f"SELECT m.pool_id, m.investor_id, {', '.join(f'm.{t}' for t in TOTALS)} "
            f"FROM json_array_elements(CAST(:pairs AS JSON)) AS q JOIN {name(m)} AS m "
            "ON m.pool_id = q.value->>0 AND m.investor_id = q.value->>1"))
        """The holdings of a JSON array of ``[pool id, investor id]`` pairs (``pairs``)."""
        self.receipts_sql = compiled(sa.text(
            "SELECT key, fingerprint, action, pool_id, first_seq, count "
            f"FROM {name(r)} WHERE key {listed}"))
        """The receipts of a JSON array of keys (``ids``)."""


_NOTIFY: Final = ("(SELECT pg_notify(:channel, CAST(position AS VARCHAR)) FROM next) "
                  "AS notified")


def _pipelines() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _feed_ctes(head: str, feed: str, after: Sequence[str] = (), many: bool = False) -> str:
    # Reading the other queries' counts makes them run first: the head's lock comes last.
    first = "".join(f" AND (SELECT count(*) FROM {name}) >= 0" for name in after)
    step = "CAST(:n AS BIGINT)" if many else "1"
    # A batch's events arrive as one text, separated by the record separator (U+001E), which
    # JSON text never holds unescaped; their types and pools as a JSON array of pairs.
    rows = ("SELECT next.position - :n + c.n, next.at_us, c.kind->>0, c.kind->>1, c.event "
            "FROM next, ROWS FROM (unnest(string_to_array(:events, chr(30))), "
            "json_array_elements(CAST(:changes AS JSON))) WITH ORDINALITY AS c(event, kind, n)"
            if many else "SELECT position, at_us, :event_type, :event_pool, :event FROM next")
    return (f"next AS (UPDATE {head} SET position = position + {step}, "
            f"at_us = GREATEST(at_us, :now) WHERE id = :head_id AND {_MOVED}{first} "
            "RETURNING position, at_us), "
            f"change AS (INSERT INTO {feed} (position, at_us, type, pool_id, event) {rows})")


def append_sql(pools: str, entries: str, members: str, receipts: str,
               feed: tuple[str, str] | None, single: bool = False, many: bool = False) -> str:
    """The PostgreSQL statement of :class:`Statements` ``append`` (``feed`` None) or
    ``append_and_publish`` (``feed`` the head and feed tables), on the named tables.

    The entries, holdings and receipts come as JSON arrays of objects, or with ``single`` as
    scalars: at most one row of each (an admission, an investment or a refund). With ``many``
    the unit of work's changes (a batch's) come as one text of events (see
    :func:`~auptimate_core.backends.sql.rows.changes_params`), and take consecutive
    positions.

    The statement's queries run in the order of the older one statement per table (the pool,
    the entries, the holdings, the receipt, the feed): the feed's head, read by every writer,
    is locked last, after anything this write could wait for (another writer's receipt of the
    same key), so two writers never wait for each other. Each writes only if the pool's head
    moved (``moved`` is 1): a write that finds its head moved leaves nothing behind, even when
    its commit was sent with it.

    >>> print(append_sql("p", "e", "m", "r", None)[:46])
    WITH head AS (UPDATE p SET head_seq = :new_seq
    """
    totals = ", ".join(f"{name} = :{name}" for name in (*TOTALS, "carry"))
    held = ", ".join(f"{name} = EXCLUDED.{name}" for name in TOTALS)
    ctes = [
        f"head AS (UPDATE {pools} SET head_seq = :new_seq, head_hash = :head_hash, "
        f"head_mark = :head_mark, {totals} "
        "WHERE id = :pid AND head_seq = :old_seq RETURNING 1)",
        f"added AS (INSERT INTO {entries} (pool_id, {', '.join(ENTRY_COLUMNS)}) "
        f"SELECT :pid, * FROM {_rows('e', ENTRY_COLUMNS, _ENTRY_TYPES, single)} RETURNING 1)",
        f"held AS (INSERT INTO {members} (pool_id, investor_id, {', '.join(TOTALS)}) "
        f"SELECT :pid, * FROM {_rows('m', HELD_COLUMNS, _HELD_TYPES, single)} "
        f"ON CONFLICT (pool_id, investor_id) DO UPDATE SET {held} RETURNING 1)",
        f"kept AS (INSERT INTO {receipts} (key, fingerprint, action, first_seq, count, hash, "
        "pool_id) SELECT *, :pid FROM "
        f"{_rows('r', RECEIPT_COLUMNS, _RECEIPT_TYPES, single)} RETURNING 1)",
    ]
    if feed is None:
        return (f"WITH {', '.join(ctes)} SELECT (SELECT count(*) FROM head) AS moved, "
                "(SELECT count(*) FROM added) + (SELECT count(*) FROM held) "
                "+ (SELECT count(*) FROM kept) AS rows")
    ctes.append(_feed_ctes(*feed, after=("added", "held", "kept"), many=many))
    return f"WITH {', '.join(ctes)} SELECT (SELECT count(*) FROM head) AS moved, {_NOTIFY}"
