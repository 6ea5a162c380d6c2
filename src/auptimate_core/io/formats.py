"""Which format a file is read in: CSV or JSON Lines, by its name and its first line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["Format", "detect_format"]

Format = Literal["csv", "jsonl"]

_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


def detect_format(name: str, first_line: str) -> Format:
    """JSON Lines for .jsonl/.ndjson/.json files, CSV for .csv; otherwise JSON Lines when the
    first line that is not blank starts with ``{``, else CSV.

    >>> detect_format("tx.csv", '{"id": "1"}'), detect_format("tx", '{"id": "1"}')
    ('csv', 'jsonl')
    """
    suffix = Path(name).suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"
