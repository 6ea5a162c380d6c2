"""The one definition of an input row: column names, how each value is read, what is refused.

Every reader of files goes through here: the CSV and JSON Lines readers
(:mod:`auptimate_core.io.readers`, behind every command that reads a file) build their
transactions with :func:`to_transaction` and :func:`transaction_from`, and the vectorised
readers (the file ranking, and :mod:`auptimate_core.io.vectorised` behind ``monitor``) map their
header with :func:`column_map` (see :mod:`auptimate_core.io.plain`) and read only rows they can
show are read the same way, handing every other row to the readers above.

**Columns** (:mod:`auptimate_core.io.header`). Two header sets are understood, in CSV headers
and JSON keys alike, compared without case and surrounding whitespace:

- the library's: ``id, investor_id, pool_id, amount, timestamp, kind``;
- syndicate-style: ``investor_id, syndicate_id, transaction_amount, transaction_date``
  (``syndicate_id`` is the pool). ``transaction_id`` and ``transaction_type`` also name the id
  and the kind.

Other columns are ignored. Two columns naming one field (``pool_id`` beside ``syndicate_id``,
or ``amount`` twice) are an error, as is a missing required column. With no id column, the row
number (1 for the first row) is the id.

**Values.** Whitespace around every value is dropped. Ids must then be non-empty
(:func:`~auptimate_core.domain.check_id`). An amount is a plain decimal number written with
ASCII digits (``1000``, ``250.50``, ``1e3``; no ``1,000``, ``1_000``, NaN or infinity), read
exactly; JSON numbers are read exactly too. A timestamp is ISO 8601 in its extended form:
``2026-03-01`` (midnight UTC), or a date and a time of at least hours and minutes, to the
microsecond, with ``Z`` or a ``+HH:MM`` offset (``20260301`` and week dates are refused). A time
without an offset is ambiguous: refused unless a time zone to assume is given. An empty kind is
an investment.

>>> mapping = column_map(["investor_id", "syndicate_id", "transaction_amount", "transaction_date"])
>>> to_transaction(mapping.pick(["ann", "fund-a", "250.50", "2026-03-01"]), line=2, row=1)
Transaction(id='1', investor_id='ann', pool_id='fund-a', amount=Decimal('250.50'), \
timestamp=datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.timezone.utc), kind='investment')
>>> parse_amount("1_000")
Traceback (most recent call last):
...
ValueError: '1_000' is not a plain decimal number
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation

import attrs

from ..domain import Transaction
from ..errors import RowError, ValidationError
from .header import (
    ALIASES,
    BRIEF_HEADER,
    FIELDS,
    LIBRARY_HEADER,
    REQUIRED,
    ColumnMap,
    column_map,
    field_of,
    field_positions,
)

__all__ = [
    "ALIASES", "BRIEF_HEADER", "FIELDS", "LIBRARY_HEADER", "REQUIRED", "ColumnMap", "RejectedRow",
    "column_map", "describe", "field_of", "parse_amount", "parse_id", "parse_kind",
    "parse_timestamp", "to_transaction", "transaction_from",
]

_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?P<time>[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?)?"
)


def describe(value: object) -> str:
    """What a value read from a file is, in JSON's words (``text``, ``a number``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _text(value: object) -> str:
    if type(value) is str or isinstance(value, str):
        return value.strip()
    raise ValueError(f"must be text, not {describe(value)}")


def parse_id(value: object) -> str:
    """An id from text (whitespace around it dropped) or a JSON integer; its checks are
    :func:`~auptimate_core.domain.check_id`'s, made by the Transaction."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def parse_amount(value: object) -> Decimal:
    """An amount from text (or a JSON number), exactly; no separators, no NaN, no infinity."""
    if type(value) is not str:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if isinstance(value, int | Decimal):
            return Decimal(value)
        if not isinstance(value, str):
            raise ValueError(f"must be a number or text, not {describe(value)}")
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain decimal number")
    try:
        return Decimal(text)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{text!r} is not a number") from error


def parse_timestamp(value: object, assume_tz: tzinfo | None = None) -> datetime:
    """A timezone-aware datetime from ISO 8601 text; a bare date means midnight UTC."""
    text = _text(value)
    if not text:
        raise ValueError("is empty")
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time (write 2026-03-01 or "
                         "2026-03-01T09:30:00+00:00)")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date or time ({error})") from None
    if match["time"] is None:
        return moment.replace(tzinfo=UTC)
    if match["offset"] is None:
        if assume_tz is None:
            raise ValueError(
                f"{text!r} has no UTC offset; add one (e.g. +00:00) or choose a time zone "
                "to assume (--timezone / assume_tz)"
            )
        moment = moment.replace(tzinfo=assume_tz)
    return moment


def parse_kind(value: object) -> str:
    """A kind from text; empty means an investment. Whether it is a known kind is checked by
    the Transaction."""
    return _text(value) or "investment"


def _build(fields: Mapping[str, object], default_id: str, assume_tz: tzinfo | None
           ) -> Transaction:
    """A Transaction from values by field, or ValidationError naming the field at fault."""
    field = "id"
    try:
        tx_id = parse_id(fields["id"]) if "id" in fields else default_id
        field = "investor_id"
        investor = parse_id(fields["investor_id"])
        field = "pool_id"
        pool = parse_id(fields["pool_id"])
        field = "amount"
        amount = parse_amount(fields["amount"])
        field = "timestamp"
        moment = parse_timestamp(fields["timestamp"], assume_tz)
        field = "kind"
        kind = parse_kind(fields["kind"]) if "kind" in fields else "investment"
        return Transaction(tx_id, investor, pool, amount, moment, kind)
    except ValidationError:
        raise
    except KeyError:
        raise ValidationError(field, "is missing") from None
    except (ValueError, TypeError) as error:
        raise ValidationError(field, str(error)) from None


def to_transaction(
    fields: Mapping[str, object], *, line: int, row: int, assume_tz: tzinfo | None = None,
    raw: str = "",
) -> Transaction:
    """A Transaction from values by field (``row`` is the id when there is no id field), or a
    RowError naming ``line`` and the field."""
    try:
        return _build(fields, str(row), assume_tz)
    except ValidationError as error:
        raise RowError(line, error.field, error.reason, raw) from None


def transaction_from(
    record: Mapping[str, object], *, default_id: str | None = None,
    assume_tz: tzinfo | None = None,
) -> Transaction:
    """A Transaction from a mapping of column names (either naming) to values, as a JSON Lines
    object or a stream entry holds it; ValidationError naming the field at fault.

    ``default_id`` is the id when the record has none (without one, an id is required).

    >>> transaction_from({"id": "t1", "investor_id": "ann", "syndicate_id": "p",
    ...                   "amount": "5", "timestamp": "20260301"})
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: timestamp: '20260301' is not an ISO 8601 date or \
time (write 2026-03-01 or 2026-03-01T09:30:00+00:00)
    """
    names = list(record)
    positions = field_positions(names)
    if "id" not in positions and default_id is None:
        raise ValidationError("id", "missing")
    fields = {field: record[names[i]] for field, i in positions.items()}
    return _build(fields, default_id or "", assume_tz)


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
