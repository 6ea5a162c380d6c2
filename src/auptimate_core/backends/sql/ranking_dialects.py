"""What each database needs for the SQL ranking to answer as the library does: a SUM it computes
exactly (or none, where only Python can), ids compared code point by code point, and time bounds
in the form its column expects. The notes of :mod:`auptimate_core.backends.sql.ranking` say which
database sums what."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...errors import MissingExtra, StoreError
from ...money import EXACT
from ...ranking import SUBTRACTS
from .transactions_table import ResolvedTable

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["MYSQL", "code_point_order", "exact_total", "time_bind", "to_decimal"]

MYSQL = frozenset({"mysql", "mariadb"})
"""SQLAlchemy's names of the MySQL dialects."""

_DUCKDB_NATIVE = ("DECIMAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


def time_bind(moment: datetime, column: sa.ColumnElement[Any], dialect: str) -> Any:
    """``moment`` as the column expects it: UTC, naive where the column is naive."""
    utc = moment.astimezone(UTC)
    column_type = column.type
    if isinstance(column_type, sa.DateTime):
        value: datetime = utc if column_type.timezone else utc.replace(tzinfo=None)
        return sa.bindparam(None, value, type_=column_type)
    if dialect == "sqlite":
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return sa.bindparam(None, utc, type_=sa.DateTime(timezone=True))


def code_point_order(column: sa.ColumnElement[Any],
                     dialect: sa.Dialect) -> sa.ColumnElement[Any]:
    """``column`` compared as the library compares ids: code point by code point.

    PostgreSQL's linguistic collations and MySQL's default case-insensitive ones would merge
    ``"Ann"`` with ``"ann"`` (MySQL's padding ones ``"a"`` with ``"a "``) or order ``"b"``
    before ``"C"``; ``C`` and the binary no-pad ``utf8mb4`` collations do not.
    """
    if dialect.name == "postgresql":
        return column.collate("C")
    if dialect.name in MYSQL:
        from .mysql_tables import binary_collation

        return column.collate(binary_collation(dialect))
    return column


def _sum(src: ResolvedTable, amount: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """SUM of ``amount``, negated on the rows whose kind takes it off the total invested.

    NullType: the driver's own value (an int or a Decimal), untouched by result processors
    (duckdb-engine's Numeric processor would pass the sum through a float).
    """
    kind = src.kind()
    signed = amount
    if kind is not None:
        number = sa.type_coerce(amount, sa.Numeric())  # a text column still negates in SQL
        signed = sa.case((kind.in_(sorted(SUBTRACTS)), -number), else_=number)
    return sa.func.sum(signed, type_=sa.types.NullType())


def exact_total(src: ResolvedTable, conn: Connection) -> sa.ColumnElement[Any] | None:
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
    if dialect in MYSQL and not isinstance(amount.type, sa.Integer | sa.Numeric):
        return None  # MySQL sums text as a double, and reads "lots" as 0 with a warning
    if dialect == "sqlite":
        inexact = conn.execute(
            sa.select(sa.literal(1)).select_from(table)
            .where(sa.func.typeof(amount).not_in(["integer", "null"])).limit(1)
        ).first()
        return _sum(src, amount) if inexact is None else None
    return _sum(src, amount)


def to_decimal(value: object, scale: int | None, investor: str) -> Decimal:
    """A sum :func:`exact_total` read back, as the Decimal amount (minor units scaled back)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise StoreError(
            f"the database summed investor {investor!r}'s amounts to a {type(value).__name__}, "
            "not an exact number: store integer minor units and pass scale="
        )
    total = Decimal(value)
    return total.scaleb(-scale, EXACT) if scale else total
