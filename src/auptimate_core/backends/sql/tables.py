"""The SQL ledger's tables (names prefixed ``auptimate_``, in ``schema`` when given).

- ``investors`` (id, name, email, and ``hash``: the audit's mark over the three);
- ``pools`` (definition, the head of the audit chain, the pool's totals, and ``head_mark``: the
  audit's mark over the head's number and hash, which a truncated chain cannot forge with a key);
- ``members`` (one row per pool and investor: their totals);
- ``entries`` (the audit chain: one row per pool and number, with both hashes);
- ``receipts`` (idempotency keys: what each was used for and where its entries are, and
  ``hash``: the audit's mark binding the receipt to the hash of its first entry);
- ``feed_head`` and ``feed`` (the change feed, see :mod:`auptimate_core.backends.sql.feed`).

Money is kept as integers of 1/10,000 of the currency (:data:`SCALE` decimals; exact everywhere,
summed as integers) in ``BIGINT`` columns: every total the ledger keeps is bounded by
:data:`~auptimate_core.money.MAX_TOTAL` (9 * 10**14, so 9 * 10**18 units, under ``2**63``),
whatever the number of entries. Time is kept as integer microseconds since the Unix epoch (UTC).

The marks (see :meth:`~auptimate_core.pools.audit.AuditChain.mark`) are NULL in rows written
before they existed; :func:`upgrade` adds their columns to tables made before.

>>> sorted(ledger_tables().metadata.tables)[:3]
['auptimate_entries', 'auptimate_feed', 'auptimate_feed_head']
"""

from __future__ import annotations

from typing import Final

import attrs

from . import feed as changes_feed

try:
    import sqlalchemy as sa
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["MARKS", "SCALE", "TOTALS", "LedgerTables", "ledger_tables", "upgrade"]

SCALE: Final = 4
"""Amounts are stored as integers of ``10**-SCALE`` of the currency."""

TOTALS: Final = ("invested", "refunded", "fees", "distributed")
"""The money columns of a member (a pool adds ``carry``)."""

_SCOPED_LENGTH: Final = 64

MARKS: Final = (("investors", "hash"), ("pools", "head_mark"), ("receipts", "hash"))
"""The audit's mark columns, by table (added by :func:`upgrade` to older tables)."""


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
        sa.Column("hash", sa.String(64), nullable=True),
    )
    pools = sa.Table(
        f"{prefix}pools", md,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("manager_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("head_seq", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        *(_money(name) for name in (*TOTALS, "carry")),
        sa.Column("head_mark", sa.String(64), nullable=True),
    )
    members = sa.Table(
        f"{prefix}members", md,
        sa.Column("pool_id", sa.String, primary_key=True),
        sa.Column("investor_id", sa.String, primary_key=True),
        *(_money(name) for name in TOTALS),
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
        sa.Column("hash", sa.String(64), nullable=True),
    )
    feed_head, feed = changes_feed.feed_tables(md, prefix)
    tables = LedgerTables(md, investors, pools, members, entries, receipts, feed_head, feed)

    def upgraded(_target: sa.MetaData, connection: sa.Connection, **_: object) -> None:
        upgrade(connection, tables)

    # create_all then adds what older tables lack, in the same transaction.
    sa.event.listen(md, "after_create", upgraded)
    return tables


def upgrade(conn: sa.Connection, tables: LedgerTables) -> None:
    """Bring tables made by an earlier version up to date: add the mark columns
    (:data:`MARKS`; NULL in the rows already there), and scope the idempotency keys of older
    receipts to the actor of their first entry (:func:`~auptimate_core.pools.unit.scoped_key`),
    so that a retry of a request made before the upgrade still finds its receipt.

    A scoped key is 64 hexadecimal digits: a receipt whose key has another length is an older
    one (a key sent as exactly 64 characters before the upgrade is left as it was). Reading
    them is one scan of the receipts at each opening."""
    inspector = sa.inspect(conn)
    for name, column in MARKS:
        table: sa.Table = getattr(tables, name)
        found = {c["name"] for c in inspector.get_columns(table.name, table.schema)}
        if column not in found:
            quoted = conn.dialect.identifier_preparer.format_table(table)
            conn.execute(sa.text(f"ALTER TABLE {quoted} ADD COLUMN {column} VARCHAR(64)"))
    from ...pools.unit import scoped_key

    r, e = tables.receipts, tables.entries
    older = conn.execute(
        sa.select(r.c.key, e.c.actor)
        .join(e, sa.and_(e.c.pool_id == r.c.pool_id, e.c.seq == r.c.first_seq))
        .where(sa.func.length(r.c.key) != _SCOPED_LENGTH)).all()
    for key, actor in older:
        conn.execute(sa.update(r).where(r.c.key == key).values(key=scoped_key(actor, key)))
