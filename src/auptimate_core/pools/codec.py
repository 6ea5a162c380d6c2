"""JSON-ready forms of the values ledger events carry, and their strict inverses.

Decimals travel as text (``"100.00"``, never a float), datetimes as ISO 8601 with their UTC
offset, domain values (:class:`~auptimate_core.Transaction`, :class:`~auptimate_core.Investor`,
:class:`~auptimate_core.Pool`) as flat objects of those. Reading back is strict: a missing key or a
value of the wrong type is a :class:`~auptimate_core.errors.ValidationError` naming the field,
never a silent default.

>>> from datetime import UTC, datetime
>>> tx = Transaction("p:3", "ann", "p", Decimal("100.00"), datetime(2026, 3, 1, tzinfo=UTC))
>>> transaction_to_dict(tx)["amount"], transaction_to_dict(tx)["timestamp"]
('100.00', '2026-03-01T00:00:00+00:00')
>>> transaction_from_dict(transaction_to_dict(tx)) == tx
True
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..domain import Investor, Pool, Transaction
from ..errors import ValidationError

JsonDict = dict[str, Any]


def mapping(data: object, field: str) -> Mapping[str, Any]:
    """``data`` if it is a mapping, else a :class:`ValidationError` naming ``field``."""
    if not isinstance(data, Mapping):
        raise ValidationError(field, f"must be an object, not {type(data).__name__}")
    return data


def get(data: Mapping[str, Any], key: str, field: str) -> Any:
    """``data[key]``; a missing key is a :class:`ValidationError` naming ``field.key``."""
    try:
        return data[key]
    except KeyError:
        raise ValidationError(f"{field}.{key}", "is missing") from None


def text(data: Mapping[str, Any], key: str, field: str) -> str:
    value = get(data, key, field)
    if not isinstance(value, str):
        raise ValidationError(f"{field}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def optional_text(data: Mapping[str, Any], key: str, field: str) -> str | None:
    return None if get(data, key, field) is None else text(data, key, field)


def integer(data: Mapping[str, Any], key: str, field: str) -> int:
    value = get(data, key, field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field}.{key}", f"must be an integer, not {type(value).__name__}")
    return value


def decimal(data: Mapping[str, Any], key: str, field: str) -> Decimal:
    """A Decimal written as text; a float (which may have lost digits) is refused."""
    value = text(data, key, field)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"{field}.{key}", f"is not a decimal number: {value!r}") from None


def optional_decimal(data: Mapping[str, Any], key: str, field: str) -> Decimal | None:
    return None if get(data, key, field) is None else decimal(data, key, field)


def moment(data: Mapping[str, Any], key: str, field: str) -> datetime:
    """A timezone-aware datetime written in ISO 8601."""
    value = text(data, key, field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{field}.{key}", f"is not an ISO 8601 time: {value!r}") from None
    if parsed.utcoffset() is None:
        raise ValidationError(f"{field}.{key}", f"has no UTC offset: {value!r}")
    return parsed


def items(data: Mapping[str, Any], key: str, field: str) -> list[Any]:
    value = get(data, key, field)
    if not isinstance(value, list):
        raise ValidationError(f"{field}.{key}", f"must be a list, not {type(value).__name__}")
    return value


def transaction_to_dict(tx: Transaction) -> JsonDict:
    return {"id": tx.id, "investor_id": tx.investor_id, "pool_id": tx.pool_id,
            "amount": str(tx.amount), "timestamp": tx.timestamp.isoformat(), "kind": tx.kind}


def transaction_from_dict(data: object, field: str = "transaction") -> Transaction:
    found = mapping(data, field)
    return Transaction(text(found, "id", field), text(found, "investor_id", field),
                       text(found, "pool_id", field), decimal(found, "amount", field),
                       moment(found, "timestamp", field), text(found, "kind", field))


def investor_to_dict(investor: Investor) -> JsonDict:
    return {"id": investor.id, "name": investor.name, "email": investor.email}


def investor_from_dict(data: object, field: str = "investor") -> Investor:
    found = mapping(data, field)
    return Investor(text(found, "id", field), text(found, "name", field),
                    optional_text(found, "email", field))


def pool_to_dict(pool: Pool) -> JsonDict:
    return {"id": pool.id, "manager_id": pool.manager_id, "name": pool.name,
            "currency": pool.currency}


def pool_from_dict(data: object, field: str = "pool") -> Pool:
    found = mapping(data, field)
    return Pool(text(found, "id", field), text(found, "manager_id", field),
                text(found, "name", field), text(found, "currency", field))
