"""The top-investors ranking computed by a database, through SQLAlchemy Core.

What counts is :mod:`auptimate_core.ranking.invested`'s definition (investments less refunds,
pools invested in), as one ``GROUP BY`` query with the contract's tie-break::

    SELECT investor_id,
           COUNT(DISTINCT CASE WHEN kind = 'investment' THEN pool_id END) AS unique_pools,
           SUM(CASE WHEN kind = 'refund' THEN -amount ELSE amount END) AS total
    FROM transactions WHERE kind IN ('investment', 'refund') GROUP BY investor_id
    HAVING unique_pools > 0
    ORDER BY unique_pools DESC, total DESC, investor_id ASC LIMIT 5

A row whose kind is NULL, or every row of a table without a kind column (a syndicate-style
table), is an investment.

It runs on SQLite, PostgreSQL (psycopg) and DuckDB (duckdb-engine), on the library's own tables
or on a user's existing table described by a :class:`TransactionsTable`. The answer equals
:func:`auptimate_core.top_investors` on the same rows, with exact Decimal totals:

- amounts kept as integer minor units (``scale=2`` for cents) are summed as integers everywhere;
- otherwise PostgreSQL sums ``NUMERIC`` (exact), DuckDB sums ``DECIMAL``/integer columns natively;
- where the database could only sum floats (SQLite's non-integer ``NUMERIC`` and text values,
  DuckDB text or floating-point columns), the rows are grouped exactly in Python instead, from
  each amount's text. Note that SQLite itself keeps non-integer ``NUMERIC`` values as floats, so
  read back they have at most 15 significant digits: store minor units or text for exactness.

Investor ids are ordered by code point (``COLLATE "C"`` on PostgreSQL), as Python orders strings.
Driver errors are mapped: an unreachable server is
:class:`~auptimate_core.errors.StoreUnavailable`, any other failure
:class:`~auptimate_core.errors.StoreError`.

>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> with engine.begin() as conn:
...     _ = conn.exec_driver_sql(
...         "CREATE TABLE payments (investor_id TEXT, syndicate_id TEXT, "
...         "transaction_amount TEXT, transaction_date TEXT)")
...     _ = conn.exec_driver_sql(
...         "INSERT INTO payments VALUES ('ann', 's1', '10.50', '2024-01-01'), "
...         "('ann', 's2', '5', '2024-01-02'), ('bob', 's1', '99', '2024-01-03')")
>>> top_investors_sql(engine, TransactionsTable.brief("payments"), n=2)
[InvestorRank(investor_id='ann', unique_pools=2, total_amount=Decimal('15.50')), \
InvestorRank(investor_id='bob', unique_pools=1, total_amount=Decimal('99'))]
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from ...domain import Transaction
from ...errors import InvalidAmount, MissingExtra, StoreError, StoreUnavailable, ValidationError
from ...io.schema import parse_amount
from ...money import EXACT
from ...ranking import (
    ADDS,
    COUNTED,
    SUBTRACTS,
    WITHOUT_KIND,
    InvestorRank,
    RankFilter,
    check_n,
    rank_totals,
    tally,
)

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["TransactionsTable", "load_transactions", "top_investors_sql"]

_DUCKDB_NATIVE = ("DECIMAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


def _valid_scale(value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError("scale", f"must be None or a non-negative int, not {value!r}")


def _check_scale(_instance: object, _attribute: attrs.Attribute[int | None],
                 value: int | None) -> None:
    _valid_scale(value)


@attrs.frozen(slots=True, init=False)
class TransactionsTable:
    """Where a database keeps transactions: a table and the names of the columns the ranking reads.

    The column arguments are named after the Transaction's fields (``investor_id``,
    ``pool_id``, ``amount``, ``timestamp``, ``kind``), as in
    :func:`~auptimate_core.integrations.sqlalchemy.columns_converter` and
    :func:`~auptimate_core.integrations.django.top_investors_django`; the older
    ``investor=``/``pool=`` still work, with a :class:`DeprecationWarning`.

    ``table`` is a table name (with an optional ``schema``) or a :class:`sqlalchemy.Table`.
    ``scale`` says the amount column holds integer minor units: the amount is
    ``value * 10**-scale`` (``scale=2`` for cents); ``None`` means it holds decimal numbers
    (``NUMERIC``/``DECIMAL`` or text). ``kind`` tells investments from refunds and the kinds
    that do not count (``None`` when the table has no such column: every row is then an
    investment, as in a syndicate-style table). ``timestamp`` is read only when a ranking filters on
    time (``None`` when the table has no such column).

    On SQLite a ``timestamp`` column is compared as text, so it must hold UTC times in
    SQLAlchemy's ``DateTime`` format (``YYYY-MM-DD HH:MM:SS.ffffff``) unless ``table`` is a
    :class:`sqlalchemy.Table` whose column type says otherwise.
    """

    table: str | sa.Table
    investor_id: str = "investor_id"
    pool_id: str = "pool_id"
    amount: str = "amount"
    scale: int | None = attrs.field(default=None, validator=_check_scale)
    timestamp: str | None = "timestamp"
    kind: str | None = "kind"
    schema: str | None = None

    def __init__(self, table: str | sa.Table, investor_id: str = "investor_id",
                 pool_id: str = "pool_id", amount: str = "amount", scale: int | None = None,
                 timestamp: str | None = "timestamp", kind: str | None = "kind",
                 schema: str | None = None, *, investor: str | None = None,
                 pool: str | None = None) -> None:
        for old, new, value in (("investor", "investor_id", investor),
                                ("pool", "pool_id", pool)):
            if value is not None:
                warnings.warn(f"TransactionsTable({old}=...) is deprecated: use {new}=...",
                              DeprecationWarning, stacklevel=2)
        self.__attrs_init__(table, investor if investor is not None else investor_id,
                            pool if pool is not None else pool_id, amount, scale, timestamp,
                            kind, schema)

    @property
    def investor(self) -> str:
        """Deprecated spelling of :attr:`investor_id`."""
        return self.investor_id

    @property
    def pool(self) -> str:
        """Deprecated spelling of :attr:`pool_id`."""
        return self.pool_id

    @classmethod
    def brief(cls, table: str | sa.Table = "transactions", *, schema: str | None = None,
              scale: int | None = None) -> TransactionsTable:
        """A syndicate-style table: investor_id, syndicate_id, transaction_amount, date."""
        return cls(table, pool_id="syndicate_id", amount="transaction_amount",
                   timestamp="transaction_date", kind=None, schema=schema, scale=scale)

    def resolve(self) -> ResolvedTable:
        """The table as a SQLAlchemy selectable with its columns looked up (once per query)."""
        if isinstance(self.table, sa.Table):
            table: sa.TableClause = self.table
        else:
            names = sorted({name for name in (self.investor_id, self.pool_id, self.amount,
                                              self.timestamp, self.kind) if name is not None})
            table = sa.table(self.table, *(sa.column(name) for name in names),
                             schema=self.schema)
        return ResolvedTable(self, table)


class ResolvedTable:
    """A :class:`TransactionsTable` bound to one SQLAlchemy selectable."""

    __slots__ = ("spec", "table")

    def __init__(self, spec: TransactionsTable, table: sa.TableClause) -> None:
        self.spec = spec
        self.table = table

    def column(self, role: str) -> sa.ColumnElement[Any]:
        """The column playing ``role`` (investor_id, pool_id, amount, timestamp, kind)."""
        name = getattr(self.spec, role)
        if name is None:
            raise ValidationError(role, f"this table description has no {role} column")
        try:
            column: sa.ColumnElement[Any] = self.table.c[name]
        except KeyError:
            raise ValidationError(
                role, f"table {self.table.name!r} has no column {name!r}") from None
        return column


def _source(source: TransactionsTable | str | sa.Table) -> TransactionsTable:
    if isinstance(source, TransactionsTable):
        return source
    if isinstance(source, str | sa.Table):
        return TransactionsTable(source)
    raise TypeError(f"expected a TransactionsTable, a table name or a Table, not {source!r}")


@contextmanager
def _connected(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection from ``bind``, with driver errors mapped to the library's."""
    try:
        if isinstance(bind, Connection):
            yield bind
            return
        try:
            conn = bind.connect()
        except sa.exc.DBAPIError as error:
            raise StoreUnavailable(f"cannot connect to {bind.url!r}: {error.orig}") from error
        with conn:
            yield conn
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated or isinstance(error, sa.exc.InterfaceError):
            raise StoreUnavailable(f"database connection lost: {error.orig}") from error
        raise StoreError(f"database error: {error.orig}") from error


def _kind(src: ResolvedTable) -> sa.ColumnElement[Any] | None:
    """The row's kind (NULL read as an investment), or None for a table without kinds."""
    if src.spec.kind is None:
        return None
    return sa.func.coalesce(src.column("kind"), WITHOUT_KIND)


def _counted_kinds(src: ResolvedTable, accept: RankFilter) -> frozenset[str]:
    if accept.kinds is None:
        return COUNTED
    if src.spec.kind is None:
        raise ValidationError("kinds", "filtering on kinds needs the table's kind column")
    return COUNTED & accept.kinds


def _where(src: ResolvedTable, accept: RankFilter, dialect: str) -> list[sa.ColumnElement[Any]]:
    clauses: list[sa.ColumnElement[Any]] = [src.column("investor_id").is_not(None)]
    kind = _kind(src)
    if kind is not None:
        clauses.append(kind.in_(sorted(_counted_kinds(src, accept))))
    for bound, name in ((accept.since, "since"), (accept.until, "until")):
        if bound is None:
            continue
        if src.spec.timestamp is None:
            raise ValidationError(name, f"filtering on {name} needs the table's timestamp column")
        column = src.column("timestamp")
        value = _time_bind(bound, column, dialect)
        clauses.append(column >= value if name == "since" else column < value)
    return clauses


def _time_bind(moment: datetime, column: sa.ColumnElement[Any], dialect: str) -> Any:
    """``moment`` as the column expects it: UTC, naive where the column is naive."""
    utc = moment.astimezone(UTC)
    column_type = column.type
    if isinstance(column_type, sa.DateTime):
        value: datetime = utc if column_type.timezone else utc.replace(tzinfo=None)
        return sa.bindparam(None, value, type_=column_type)
    if dialect == "sqlite":
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return sa.bindparam(None, utc, type_=sa.DateTime(timezone=True))


def _sum(src: ResolvedTable, amount: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """SUM of ``amount``, negated on the rows whose kind takes it off the total invested.

    NullType: the driver's own value (an int or a Decimal), untouched by result processors
    (duckdb-engine's Numeric processor would pass the sum through a float).
    """
    kind = _kind(src)
    signed = amount
    if kind is not None:
        number = sa.type_coerce(amount, sa.Numeric())  # a text column still negates in SQL
        signed = sa.case((kind.in_(sorted(SUBTRACTS)), -number), else_=number)
    return sa.func.sum(signed, type_=sa.types.NullType())


def _total_expression(src: ResolvedTable, conn: Connection) -> sa.ColumnElement[Any] | None:
    """The exact SUM expression for this database, or None when only Python can sum exactly."""
    amount = src.column("amount")
    dialect = conn.dialect.name
    if src.spec.scale is not None:
        return _sum(src, amount)
    if dialect == "postgresql":
        return _sum(src, sa.cast(amount, sa.Numeric))
    table = src.table
    if dialect == "duckdb":
        probe = conn.execute(sa.select(sa.func.typeof(amount)).select_from(table).limit(1))
        kind = probe.scalar()
        # An empty table has no row to probe: the scan in Python is then free.
        if kind is not None and str(kind).upper().startswith(_DUCKDB_NATIVE):
            return _sum(src, amount)
        return None
    if dialect in _MYSQL and not isinstance(amount.type, sa.Integer | sa.Numeric):
        return None  # MySQL sums text as a double, and reads "lots" as 0 with a warning
    if dialect == "sqlite":
        inexact = conn.execute(
            sa.select(sa.literal(1)).select_from(table)
            .where(sa.func.typeof(amount).not_in(["integer", "null"])).limit(1)
        ).first()
        return _sum(src, amount) if inexact is None else None
    return _sum(src, amount)


def _to_decimal(value: object, scale: int | None, investor: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise StoreError(
            f"the database summed investor {investor!r}'s amounts to a {type(value).__name__}, "
            "not an exact number: store integer minor units and pass scale="
        )
    total = Decimal(value)
    return total.scaleb(-scale, EXACT) if scale else total


def top_investors_sql(
    bind: Engine | Connection,
    source: TransactionsTable | str | sa.Table,
    n: int = 5,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[InvestorRank]:
    """The ``n`` top investors of a transactions table, as :func:`~auptimate_core.top_investors`.

    ``bind`` is an Engine or a Connection (a Connection is used as is, inside whatever
    transaction it is in). ``source`` describes the table (a bare name or Table means the
    library's column names). ``since``/``until``/``kinds`` filter as in
    :class:`~auptimate_core.ranking.RankFilter`, through the table's timestamp and kind columns.
    Every row counts, as in a ``GROUP BY`` query (a table with a unique id counts each id once).

    One ``GROUP BY`` query, ``LIMIT n`` in the database; where the database cannot sum exactly
    (see the module notes) one scan grouped in Python instead, ``O(rows)``.
    """
    check_n(n)
    src = _source(source).resolve()
    accept = RankFilter(since, until, None if kinds is None else kinds)
    if not _counted_kinds(src, accept):
        return []
    with _connected(bind) as conn:
        dialect = conn.dialect.name
        where = _where(src, accept, dialect)
        total = _total_expression(src, conn)
        if total is None:
            return _rank_in_python(conn, src, where, n)
        return _rank_in_database(conn, src, where, total, n)


_MYSQL = frozenset({"mysql", "mariadb"})


def _exact(column: sa.ColumnElement[Any], dialect: sa.Dialect) -> sa.ColumnElement[Any]:
    """``column`` compared as the library compares ids: code point by code point.

    PostgreSQL's linguistic collations and MySQL's default case-insensitive ones would merge
    ``"Ann"`` with ``"ann"`` (MySQL's padding ones ``"a"`` with ``"a "``) or order ``"b"``
    before ``"C"``; ``C`` and the binary no-pad ``utf8mb4`` collations do not.
    """
    if dialect.name == "postgresql":
        return column.collate("C")
    if dialect.name in _MYSQL:
        from .mysql_tables import binary_collation

        return column.collate(binary_collation(dialect))
    return column


def _unique_pools(src: ResolvedTable, dialect: sa.Dialect) -> sa.ColumnElement[Any]:
    pool = src.column("pool_id")
    if dialect.name in _MYSQL:
        pool = _exact(pool, dialect)
    kind = _kind(src)
    if kind is None:
        return sa.func.count(sa.distinct(pool))
    return sa.func.count(sa.distinct(sa.case((kind.in_(sorted(ADDS)), pool))))


def _rank_in_database(
    conn: Connection, src: ResolvedTable, where: list[sa.ColumnElement[Any]],
    total: sa.ColumnElement[Any], n: int,
) -> list[InvestorRank]:
    investor = src.column("investor_id")
    pools = _unique_pools(src, conn.dialect)
    unique_pools = pools.label("unique_pools")
    total_label = total.label("total_amount")
    tie_break = _exact(investor, conn.dialect)
    grouped = tie_break if conn.dialect.name in _MYSQL else investor
    query = (
        sa.select(grouped.label(investor.name), unique_pools, total_label)
        .select_from(src.table)
        .where(*where)
        .group_by(grouped)
        .having(pools > 0)
        .order_by(unique_pools.desc(), total_label.desc(), tie_break.asc())
        .limit(n)
    )
    return [
        InvestorRank(str(inv), int(count), _to_decimal(amount, src.spec.scale, str(inv)))
        for inv, count, amount in conn.execute(query)
    ]


def _rank_in_python(
    conn: Connection, src: ResolvedTable, where: list[sa.ColumnElement[Any]], n: int,
) -> list[InvestorRank]:
    """Group the rows in Python from each amount's text: exact where the database is not."""
    kind = _kind(src)
    query = (
        sa.select(src.column("investor_id"), src.column("pool_id"),
                  sa.cast(src.column("amount"), sa.String),
                  sa.literal(WITHOUT_KIND) if kind is None else kind)
        .select_from(src.table)
        .where(*where)
    )
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)

    def rows() -> Iterator[tuple[str, str, str, Decimal]]:
        for investor, pool, text, row_kind in result:
            if text is None:
                continue
            try:
                amount = parse_amount(text)
            except ValueError:
                raise InvalidAmount(
                    src.spec.amount, f"investor {investor!r} has an amount that is not a number: "
                    f"{text!r}") from None
            yield str(investor), str(pool), str(row_kind), amount

    return rank_totals(tally(rows()), n)


def _amount_value(tx: Transaction, column: sa.ColumnElement[Any], scale: int | None,
                  text_only: bool) -> object:
    if isinstance(column.type, sa.Integer):
        units = tx.amount.scaleb(scale or 0, EXACT)
        if units != units.to_integral_value():
            raise InvalidAmount(
                "amount", f"{tx.amount} (transaction {tx.id!r}) is finer than the column's "
                f"minor unit (scale={scale or 0})")
        return int(units)
    if text_only or isinstance(column.type, sa.String):
        return format(tx.amount, "f")
    return tx.amount


def _time_value(tx: Transaction, column: sa.ColumnElement[Any]) -> object:
    utc = tx.timestamp.astimezone(UTC)
    if isinstance(column.type, sa.String):
        return utc.isoformat()
    if isinstance(column.type, sa.DateTime) and not column.type.timezone:
        return utc.replace(tzinfo=None)
    return utc


def _dialect_name(bind: Engine | Connection) -> str:
    return bind.dialect.name


def load_transactions(
    bind: Engine | Connection,
    table: sa.Table,
    transactions: Iterable[Transaction],
    *,
    scale: int | None = None,
    batch_size: int = 10_000,
) -> int:
    """Insert ``transactions`` into ``table`` (the library's column names), in batches.

    Values follow the column types: an integer amount column gets minor units at ``scale``
    (an amount finer than that is an error, never rounded), a text column the exact decimal
    text, a numeric one the Decimal; a text timestamp column gets ISO 8601 in UTC, a naive
    ``DateTime`` column naive UTC. With an Engine the whole load is one transaction (all or
    nothing); a Connection is used as is. Returns the number of rows inserted.
    ``O(rows)``, memory ``O(batch_size)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, not {batch_size!r}")
    _valid_scale(scale)
    columns = table.c
    for name in ("id", "investor_id", "pool_id", "amount", "timestamp"):
        if name not in columns:
            raise ValidationError("table", f"table {table.name!r} has no column {name!r}")
    has_kind = "kind" in columns
    amount_col, time_col = columns["amount"], columns["timestamp"]
    statement = table.insert()
    # duckdb-engine passes a Numeric parameter through a float; text cast by DuckDB is exact.
    text_only = _dialect_name(bind) == "duckdb" and not isinstance(amount_col.type, sa.Integer)
    if text_only:
        statement = statement.values(
            amount=sa.cast(sa.bindparam("amount", type_=sa.String()), amount_col.type))

    def rows() -> Iterator[list[dict[str, object]]]:
        batch: list[dict[str, object]] = []
        for tx in transactions:
            if not isinstance(tx, Transaction):
                raise TypeError(f"expected a Transaction, not {type(tx).__name__}")
            row: dict[str, object] = {
                "id": tx.id, "investor_id": tx.investor_id, "pool_id": tx.pool_id,
                "amount": _amount_value(tx, amount_col, scale, text_only),
                "timestamp": _time_value(tx, time_col),
            }
            if has_kind:
                row["kind"] = tx.kind
            batch.append(row)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    count = 0
    if isinstance(bind, Connection):
        with _connected(bind) as conn:
            for batch in rows():
                conn.execute(statement, batch)
                count += len(batch)
        return count
    try:
        with bind.begin() as conn:
            for batch in rows():
                conn.execute(statement, batch)
                count += len(batch)
    except sa.exc.DBAPIError as error:
        raise StoreError(f"database error while loading transactions: {error.orig}") from error
    return count
