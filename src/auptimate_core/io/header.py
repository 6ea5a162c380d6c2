"""The columns of an input row: the two header sets, the names each field goes by, and where
each field sits in a row (see :mod:`auptimate_core.io.schema`, which reads the values).

Apart from the rest of the schema, so that a vectorised reader judges a header without
importing what builds transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

from ..errors import RowError, ValidationError

__all__ = [
    "ALIASES", "BRIEF_HEADER", "FIELDS", "LIBRARY_HEADER", "REQUIRED", "ColumnMap", "column_map",
    "field_of", "field_positions",
]

LIBRARY_HEADER: Final = ("id", "investor_id", "pool_id", "amount", "timestamp", "kind")
BRIEF_HEADER: Final = ("investor_id", "syndicate_id", "transaction_amount", "transaction_date")
FIELDS: Final = LIBRARY_HEADER
"""The fields of a row, in the order they are checked."""

ALIASES: Final[Mapping[str, str]] = {
    "id": "id", "transaction_id": "id",
    "investor_id": "investor_id",
    "pool_id": "pool_id", "syndicate_id": "pool_id",
    "amount": "amount", "transaction_amount": "amount",
    "timestamp": "timestamp", "transaction_date": "timestamp",
    "kind": "kind", "transaction_type": "kind",
}
"""Column name (lower case) -> the field it holds."""

REQUIRED: Final = ("investor_id", "pool_id", "amount", "timestamp")


def field_of(name: str) -> str | None:
    """The field a column (or JSON key) named ``name`` holds, or None if it holds none.

    >>> field_of(" Syndicate_ID "), field_of("note")
    ('pool_id', None)
    """
    return ALIASES.get(name.strip().lower())


def field_positions(names: Sequence[str]) -> dict[str, int]:
    """Field -> index in ``names``; ValidationError naming the field for a repeat or a gap."""
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        field = field_of(name)
        if field is None:
            continue  # extra columns are allowed and ignored
        if field in positions:
            first = names[positions[field]]
            raise ValidationError(field, f"named twice, by {first!r} and {name!r}")
        positions[field] = i
    for field in REQUIRED:
        if field not in positions:
            raise ValidationError(
                field,
                f"missing column (expected {', '.join(LIBRARY_HEADER)} "
                f"or {', '.join(BRIEF_HEADER)})",
            )
    return positions


class ColumnMap(NamedTuple):
    """Where each field sits in a row (a field without a column is absent)."""

    names: tuple[str, ...]
    positions: Mapping[str, int]

    @property
    def style(self) -> str:
        """``"brief"`` when the pool column is named ``syndicate_id``, else ``"library"``."""
        return "brief" if self.names[self.positions["pool_id"]].strip().lower() == (
            "syndicate_id") else "library"

    def pick(self, row: Sequence[str]) -> dict[str, str]:
        """The row's values by field."""
        return {field: row[i] for field, i in self.positions.items()}


def column_map(header: Sequence[str], line: int = 1) -> ColumnMap:
    """Map a header (either naming) to fields; a repeated or missing field is a RowError.

    >>> column_map(["investor_id", "pool_id", "syndicate_id", "amount", "timestamp"])
    Traceback (most recent call last):
    ...
    auptimate_core.errors.RowError: line 1: pool_id: named twice, by 'pool_id' and 'syndicate_id'
    """
    try:
        return ColumnMap(tuple(header), field_positions(header))
    except ValidationError as error:
        raise RowError(line, error.field, error.reason, ",".join(header)) from None
