"""Where a database keeps transactions: :class:`TransactionsTable` names the table and the columns
the SQL ranking reads, :class:`ResolvedTable` binds it to one SQLAlchemy selectable.

>>> spec = TransactionsTable.brief("payments")
>>> spec.pool_id, spec.amount, spec.kind
('syndicate_id', 'transaction_amount', None)
>>> str(spec.resolve().column("amount"))
'payments.transaction_amount'
"""

from __future__ import annotations

import warnings
from typing import Any

import attrs

from ...errors import MissingExtra, ValidationError
from ...ranking import WITHOUT_KIND

try:
    import sqlalchemy as sa
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["ResolvedTable", "TransactionsTable", "as_table", "valid_scale"]


def valid_scale(value: object) -> None:
    """Raise :class:`~auptimate_core.errors.ValidationError` unless ``value`` is None or a
    non-negative int (the number of decimals of an amount kept as integer minor units)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError("scale", f"must be None or a non-negative int, not {value!r}")


def _check_scale(_instance: object, _attribute: attrs.Attribute[int | None],
                 value: int | None) -> None:
    valid_scale(value)


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

    def kind(self) -> sa.ColumnElement[Any] | None:
        """The row's kind (NULL read as an investment), or None for a table without kinds."""
        if self.spec.kind is None:
            return None
        return sa.func.coalesce(self.column("kind"), WITHOUT_KIND)


def as_table(source: TransactionsTable | str | sa.Table) -> TransactionsTable:
    """``source`` as a :class:`TransactionsTable` (a bare name or Table: the library's column
    names)."""
    if isinstance(source, TransactionsTable):
        return source
    if isinstance(source, str | sa.Table):
        return TransactionsTable(source)
    raise TypeError(f"expected a TransactionsTable, a table name or a Table, not {source!r}")
