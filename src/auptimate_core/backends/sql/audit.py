"""The SQL ledger's rows as the audit reads them: every row of every table the ledger's answers
come from, each column checked (see :class:`~auptimate_core.pools.verify.AuditRows`).

A row that cannot be read as a value (text in an integer column, a NULL, an amount or a time out
of range, a currency that is not one) is an :class:`~auptimate_core.errors.AuditError` naming
the table, the row and the column, never the value of a text column (it may be personal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ...domain import Investor, Pool, from_micros
from ...errors import AuditError, ValidationError
from ...pools.audit import Entry
from ...pools.position import Amounts
from ...pools.repository import PoolRecord, Receipt
from .rows import amount_of, amounts_in
from .tables import TOTALS, LedgerTables

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["SqlAuditRows"]

T = TypeVar("T")


class _Row:
    """One stored row: its table and key, and checked reads of its columns."""

    __slots__ = ("table", "where")

    def __init__(self, table: str, where: str) -> None:
        self.table = table
        self.where = where

    def error(self, what: str) -> AuditError:
        return AuditError(f"table {self.table!r}, row {self.where}: {what} "
                          "(edited outside the ledger)")

    def text(self, column: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.error(f"column {column!r} holds {_kind(value)}, not text")
        return value

    def optional_text(self, column: str, value: object) -> str | None:
        return None if value is None else self.text(column, value)

    def integer(self, column: str, value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.error(f"column {column!r} holds {_kind(value)}, not an integer")

    def read(self, column: str, make: Callable[..., T], *args: Any) -> T:
        """``make(*args)``; a failure to build a value from the row is an AuditError."""
        try:
            return make(*args)
        except ValidationError as error:
            raise self.error(f"column {error.field!r} is invalid: {error.reason}") from None
        except (ValueError, TypeError, ArithmeticError) as error:
            raise self.error(f"column {column!r} is out of range "
                             f"({type(error).__name__})") from None

    def amounts(self, values: Mapping[Any, Any], currency: str, carry: bool = False) -> Amounts:
        names = (*TOTALS, "carry") if carry else TOTALS
        units = {name: self.integer(name, values[name]) for name in names}
        return self.read(", ".join(names), amounts_in, units, currency, carry)


def _kind(value: object) -> str:
    return "NULL" if value is None else type(value).__name__


class SqlAuditRows:
    """Checked reads of every ledger table on one connection, in one transaction."""

    def __init__(self, conn: Connection, tables: LedgerTables) -> None:
        self._conn = conn
        self._t = tables

    def investors(self) -> list[tuple[Investor, str | None]]:
        found = []
        for row in self._conn.execute(sa.select(self._t.investors)):
            values = row._mapping
            where = _Row("investors", f"id={values['id']!r}")
            id_, name = where.text("id", values["id"]), where.text("name", values["name"])
            email = where.optional_text("email", values["email"])
            found.append((where.read("id", Investor, id_, name, email),
                          where.optional_text("hash", values["hash"])))
        return found

    def pools(self) -> list[tuple[PoolRecord, str | None]]:
        found = []
        t = self._t.pools
        for row in self._conn.execute(sa.select(t).order_by(t.c.id)):
            values = row._mapping
            where = _Row("pools", f"id={values['id']!r}")
            fields = [where.text(name, values[name])
                      for name in ("id", "manager_id", "name", "currency")]
            pool = where.read("id", Pool, *fields)
            record = PoolRecord(pool, where.integer("head_seq", values["head_seq"]),
                                where.text("head_hash", values["head_hash"]),
                                where.amounts(values, pool.currency, carry=True))
            found.append((record, where.optional_text("head_mark", values["head_mark"])))
        return found

    def holdings(self) -> dict[str, dict[str, Amounts]]:
        m, p = self._t.members, self._t.pools
        query = sa.select(m, p.c.currency).outerjoin(p, p.c.id == m.c.pool_id)
        found: dict[str, dict[str, Amounts]] = {}
        for row in self._conn.execute(query):
            values = row._mapping
            where = _Row("members", f"pool_id={values['pool_id']!r}, "
                                    f"investor_id={values['investor_id']!r}")
            pool_id = where.text("pool_id", values["pool_id"])
            investor_id = where.text("investor_id", values["investor_id"])
            if values["currency"] is None:
                raise where.error(f"its pool {pool_id!r} does not exist")
            held = where.amounts(values, values["currency"])
            found.setdefault(pool_id, {})[investor_id] = held
        return found

    def entries(self) -> Iterator[Entry]:
        e, p = self._t.entries, self._t.pools
        query = (sa.select(e, p.c.currency).outerjoin(p, p.c.id == e.c.pool_id)
                 .order_by(e.c.pool_id, e.c.seq))
        for row in self._conn.execution_options(yield_per=2_000).execute(query):
            values = row._mapping
            where = _Row("entries", f"pool_id={values['pool_id']!r}, seq={values['seq']!r}")
            units = where.integer("amount", values["amount"])
            at_us = where.integer("at_us", values["at_us"])
            currency = values["currency"]
            yield Entry(
                where.text("pool_id", values["pool_id"]), where.integer("seq", values["seq"]),
                where.text("kind", values["kind"]),
                where.text("investor_id", values["investor_id"]),
                where.read("amount", amount_of, units, currency),
                where.read("at_us", from_micros, at_us),
                where.text("actor", values["actor"]), where.text("detail", values["detail"]),
                where.text("prev_hash", values["prev_hash"]), where.text("hash", values["hash"]))

    def receipts(self) -> list[tuple[Receipt, str | None]]:
        found = []
        for row in self._conn.execute(sa.select(self._t.receipts)):
            values = row._mapping
            where = _Row("receipts", f"key={values['key']!r}")
            receipt = Receipt(
                where.text("key", values["key"]),
                where.text("fingerprint", values["fingerprint"]),
                where.text("action", values["action"]), where.text("pool_id", values["pool_id"]),
                where.integer("first_seq", values["first_seq"]),
                where.integer("count", values["count"]))
            found.append((receipt, where.optional_text("hash", values["hash"])))
        return found
