"""Plain rows: the rows a vectorised reader (polars, DuckDB) may read itself, because the input
pipeline (:mod:`auptimate_core.io.schema`) is known to read them, and read them the same way.

A vectorised reader checks every row against the patterns below and reads a row itself only
when it is plain; anything else goes to the pipeline, which accepts or rejects it and names the
line and the field. So the vectorised readers answer exactly what the pipeline answers.

A row is *plain* when:

- its ids are non-empty, with no whitespace at either end (so dropping that whitespace changes
  nothing), no quote, no NUL and no line break, and no longer than the CSV reader's field limit;
- its amount is written ``digits[.digits]`` with at most 6 fraction digits and at most 4
  leading zeros, and is greater than zero and at most :data:`~auptimate_core.money.MAX_AMOUNT`;
- its timestamp is an ISO 8601 date (midnight UTC), or a date and time with an explicit offset
  (``Z`` or ``+HH:MM``), at most microseconds, within the years 1000..8999;
- its kind, when the file has a kind column, is one of the known kinds, written exactly.

A file's first line must be a plain header: UTF-8 without a byte-order mark, quotes or carriage
returns, names in lower case without spaces, each naming one field of a row
(:func:`plain_header`).

>>> import re
>>> [bool(re.fullmatch(AMOUNT, text)) for text in ("250.50", "0.000001", "1000000000000000",
...                                                 "0", "1000000000000000.01", "1e3")]
[True, True, True, False, False, False]
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Final

from ..errors import AuptimateError, RowError
from ..money import MAX_AMOUNT
from .header import column_map

__all__ = [
    "AMOUNT", "ID_RE2", "ID_RUST", "TIME", "VECTORISE_FROM", "NotVectorised", "field_limit",
    "plain_header", "read_header",
]

VECTORISE_FROM: Final = 1 << 20
"""Bytes: a smaller file is read by the input pipeline alone, which is done with it before a
vectorised engine would be imported."""


class NotVectorised(AuptimateError):
    """The file (or a part of it) needs the input pipeline; ``reason`` says why (not an error
    in the file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _amount(maximum: int) -> str:
    """A plain amount greater than zero and at most ``maximum`` (a power of ten), in one
    pattern: whole numbers below it with any fraction, itself with a zero fraction, and a zero
    whole part with a fraction that is not all zeros."""
    digits = len(str(maximum)) - 1
    assert maximum == 10**digits, "the pattern is written for a power of ten"
    fraction = r"(?:\.[0-9]{1,6})?"
    tiny = "|".join("0" * zeros + "[1-9]" + (f"[0-9]{{0,{5 - zeros}}}" if zeros < 5 else "")
                    for zeros in range(6))
    return (rf"0{{0,4}}[1-9][0-9]{{0,{digits - 1}}}{fraction}"
            rf"|0{{0,4}}{maximum}(?:\.0{{1,6}})?"
            rf"|0{{1,5}}\.(?:{tiny})")


AMOUNT: Final = _amount(int(MAX_AMOUNT))
"""A plain amount, for a full match (the same in RE2, Rust and Python regular expressions)."""

_LEAP_YEAR = r"(?:[1-8][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[1357][26]|[2468][048])00)"
_DATE = (  # a real calendar date of the years 1000..8999, leap days included
    r"(?:[1-8][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
)
TIME: Final = (
    _DATE + r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?"
)
"""A plain timestamp, for a full match."""

# Whitespace in Python's sense (str.isspace) at either end of an id would be kept by one reader
# and perhaps stripped by another: such ids are not plain. DuckDB's regular expressions are RE2
# (ASCII \s), polars' are Rust's (Unicode \s); both classes below are exactly str.isspace. A
# quote is never plain: the vectorised readers read quotes as characters, the pipeline as CSV.
_SPACE_RE2 = r"\s\p{Z}\x{0b}\x{1c}-\x{1f}\x{85}"
_SPACE_RUST = r"\s\x1c-\x1f"
ID_RE2: Final = (rf'[^{_SPACE_RE2}\x{{00}}"](?:[^\x{{00}}\r\n"]*[^{_SPACE_RE2}\x{{00}}"])?')
"""A plain id in RE2 (DuckDB), for a full match; its length is checked apart."""
ID_RUST: Final = rf'^[^{_SPACE_RUST}\x00"](?:[^\x00\r\n"]*[^{_SPACE_RUST}\x00"])?$'
"""A plain id in Rust's regular expressions (polars), anchored; its length is checked apart."""


def field_limit() -> int:
    """The longest CSV field, in characters, the reader takes (the csv module's limit)."""
    return csv.field_size_limit()


def read_header(path: str) -> list[str]:
    """The column names of the file's first line, or NotVectorised when it is not plain."""
    with open(path, "rb") as handle:
        first = handle.readline()
    if not first:
        raise NotVectorised("the file is empty")
    if first.startswith(b"\xef\xbb\xbf"):
        raise NotVectorised("the file starts with a byte-order mark")
    try:
        header = first.decode("utf-8").rstrip("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise NotVectorised("the header is not UTF-8") from None
    if '"' in header or "\r" in header:
        raise NotVectorised("the header has quotes or carriage returns")
    return header.split(",")


def plain_header(header: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The header's style (``brief`` or ``library``) and field -> column name, or
    NotVectorised when the header is not plain."""
    if len(set(header)) != len(header):
        raise NotVectorised("the header repeats a column name")
    if any(name != name.strip().lower() for name in header):
        raise NotVectorised("the header has capitals or spaces in its names")
    try:
        mapping = column_map(header)
    except RowError as error:
        raise NotVectorised(f"the header is not one the reader accepts ({error})") from None
    if len(mapping.positions) != len(header):
        raise NotVectorised(f"the header {list(header)} has columns the readers do not read")
    return mapping.style, {field: header[i] for field, i in mapping.positions.items()}
