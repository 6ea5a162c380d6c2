"""Transactions inserted into a table with the library's column names, each value in the form
its column type keeps exactly (:func:`load_transactions`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any

from ...domain import Transaction
from ...errors import InvalidAmount, MissingExtra, StoreError, ValidationError
from ...money import EXACT
from .connections import connected
from .transactions_table import valid_scale

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["load_transactions"]


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
    valid_scale(scale)
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

    def insert(conn: Connection) -> int:
        count = 0
        for batch in rows():
            conn.execute(statement, batch)
            count += len(batch)
        return count

    if isinstance(bind, Connection):
        with connected(bind) as conn:
            return insert(conn)
    try:
        with bind.begin() as conn:
            return insert(conn)
    except sa.exc.DBAPIError as error:
        raise StoreError(f"database error while loading transactions: {error.orig}") from error
