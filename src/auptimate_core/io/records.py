"""Turning one row of a file into a :class:`~auptimate_core.Transaction`, or a clear error.

Two header sets are understood, in CSV headers and JSON keys alike:

- the library's: ``id, investor_id, pool_id, amount, timestamp, kind``;
- the original brief's: ``investor_id, syndicate_id, transaction_amount, transaction_date``
  (``syndicate_id`` is the pool; with no id column, the row number is the id).

A date alone (``2026-03-01``) means midnight UTC. A date and time without an offset is
ambiguous: it is rejected unless the reader is given a time zone to assume.

>>> mapping = column_map(["investor_id", "syndicate_id", "transaction_amount", "transaction_date"])
>>> to_transaction(mapping.pick(["ann", "fund-a", "250.50", "2026-03-01"]), line=2, row=1)
Transaction(id='1', investor_id='ann', pool_id='fund-a', amount=Decimal('250.50'), \
timestamp=datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.timezone.utc), kind='investment')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from ..domain import Transaction
from ..errors import RowError, ValidationError

LIBRARY_HEADER: Final = ("id", "investor_id", "pool_id", "amount", "timestamp", "kind")
BRIEF_HEADER: Final = ("investor_id", "syndicate_id", "transaction_amount", "transaction_date")

ALIASES: Final[Mapping[str, str]] = {
    "id": "id", "transaction_id": "id",
    "investor_id": "investor_id",
    "pool_id": "pool_id", "syndicate_id": "pool_id",
    "amount": "amount", "transaction_amount": "amount",
    "timestamp": "timestamp", "transaction_date": "timestamp",
    "kind": "kind", "transaction_type": "kind",
}
REQUIRED: Final = ("investor_id", "pool_id", "amount", "timestamp")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@attrs.frozen(slots=True)
class RejectedRow:
    """A row that could not be read: where it is, which field, why, and its raw text."""

    line: int
    field: str
    message: str
    raw: str = ""

    @classmethod
    def from_error(cls, error: RowError) -> RejectedRow:
        return cls(error.line, error.field, error.reason, error.raw)

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@attrs.frozen(slots=True)
class ColumnMap:
    """Where each Transaction field sits in a row (``None`` when the column is absent)."""

    names: tuple[str, ...]
    positions: Mapping[str, int]

    def pick(self, row: Sequence[str]) -> dict[str, str]:
        return {field: row[i] for field, i in self.positions.items()}


def column_map(header: Sequence[str], line: int = 1) -> ColumnMap:
    """Map a header (either naming) to Transaction fields; a missing column is a RowError."""
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        field = ALIASES.get(name.strip().lower().lstrip("\ufeff"))
        if field is None:
            continue  # extra columns are allowed and ignored
        if field in positions:
            raise RowError(line, name, "two columns name the same field", ",".join(header))
        positions[field] = i
    for field in REQUIRED:
        if field not in positions:
            raise RowError(
                line, field,
                f"missing column (expected {', '.join(LIBRARY_HEADER)} "
                f"or {', '.join(BRIEF_HEADER)})",
                ",".join(header),
            )
    return ColumnMap(tuple(header), positions)


def parse_amount(text: object) -> Decimal:
    """An amount from text (or a JSON number), exactly; no thousands separators, no NaN."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, int | Decimal):
        return Decimal(text)
    if not isinstance(text, str):
        raise ValueError(f"must be a number or a string, not {type(text).__name__}")
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain decimal number")
    try:
        return Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{value!r} is not a number") from error


def parse_timestamp(text: object, assume_tz: tzinfo | None = None) -> datetime:
    """A timezone-aware datetime from ISO 8601 text; a bare date means midnight UTC."""
    if not isinstance(text, str):
        raise ValueError(f"must be ISO 8601 text, not {type(text).__name__}")
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    if _DATE_ONLY.fullmatch(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from error
    if moment.tzinfo is None:
        if assume_tz is None:
            raise ValueError(
                f"{value!r} has no UTC offset; add one (e.g. +00:00) or choose a time zone "
                "to assume (--timezone / assume_tz)"
            )
        moment = moment.replace(tzinfo=assume_tz)
    return moment


def _text_id(field: str, value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"must be a string, not {type(value).__name__}")


def to_transaction(
    fields: Mapping[str, Any], *, line: int, row: int, assume_tz: tzinfo | None = None,
    raw: str = "",
) -> Transaction:
    """Build a Transaction from mapped fields, or raise a RowError naming line and field."""
    field = "id"
    try:
        tx_id = _text_id("id", fields["id"]) if fields.get("id") not in (None, "") else str(row)
        field = "investor_id"
        investor = _text_id(field, fields.get(field))
        field = "pool_id"
        pool = _text_id(field, fields.get(field))
        field = "amount"
        amount = parse_amount(fields.get(field))
        field = "timestamp"
        moment = parse_timestamp(fields.get(field), assume_tz)
        field = "kind"
        kind = fields.get("kind") or "investment"
        if not isinstance(kind, str):
            raise ValueError(f"must be a string, not {type(kind).__name__}")
        return Transaction(tx_id, investor, pool, amount, moment, kind.strip())
    except ValidationError as error:
        raise RowError(line, error.field, error.reason, raw) from error
    except (ValueError, TypeError) as error:
        raise RowError(line, field, str(error), raw) from error
