"""Streaming readers of transactions from CSV or JSON Lines: constant memory, every row judged.

>>> import io
>>> text = io.StringIO("investor_id,syndicate_id,transaction_amount,transaction_date\\n"
...                    "ann,fund-a,100,2026-03-01\\nbob,fund-a,oops,2026-03-01\\n")
>>> rejected = []
>>> [tx.id for tx in read_transactions(text, skip_invalid=True, on_reject=rejected.append)]
['1']
>>> str(rejected[0])
"line 3: amount: 'oops' is not a plain decimal number"
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO, Literal

from ..domain import Transaction
from ..errors import RowError
from .records import RejectedRow, column_map, to_transaction

Format = Literal["csv", "jsonl"]
Source = str | Path | IO[str]
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


def detect_format(name: str, first_line: str) -> Format:
    """JSON Lines for .jsonl/.ndjson/.json files or text starting with ``{``, else CSV."""
    if Path(name).suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    if Path(name).suffix.lower() == ".csv":
        return "csv"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def open_source(source: Source, stack: ExitStack) -> tuple[IO[str], str]:
    """A text stream for a path, ``"-"`` (standard input) or an open stream, and its name."""
    if isinstance(source, str | Path):
        if str(source) == "-":
            return sys.stdin, "-"
        return stack.enter_context(open(source, encoding="utf-8", newline="")), str(source)
    return source, getattr(source, "name", "<stream>")


def read_transactions(
    source: Source,
    *,
    format: Format | None = None,
    skip_invalid: bool = False,
    on_reject: Callable[[RejectedRow], object] | None = None,
    assume_tz: tzinfo | None = None,
) -> Iterator[Transaction]:
    """Yield the transactions of a CSV or JSON Lines source, one row at a time.

    A bad row raises :class:`~auptimate_core.errors.RowError` naming its line and field; with
    ``skip_invalid=True`` it is passed to ``on_reject`` instead (and counted there, never
    dropped silently: ``skip_invalid`` without ``on_reject`` is refused). Blank lines are not
    rows. With no id column, a row's id is its row number (1 for the first data row).
    """
    if skip_invalid and on_reject is None:
        raise ValueError("on_reject: needed with skip_invalid, so no rejected row goes unseen")
    with ExitStack() as stack:
        stream, name = open_source(source, stack)
        first = stream.readline()
        fmt = format or detect_format(name, first)
        rows = _csv_rows(first, stream, assume_tz) if fmt == "csv" else _jsonl_rows(
            first, stream, assume_tz
        )
        for item in rows:
            if isinstance(item, RowError):
                if not skip_invalid:
                    raise item
                assert on_reject is not None
                on_reject(RejectedRow.from_error(item))
            else:
                yield item


def _csv_rows(
    first: str, stream: IO[str], assume_tz: tzinfo | None
) -> Iterator[Transaction | RowError]:
    lines = _chain(first, stream)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    mapping = column_map(header)  # a bad header stops the read whatever skip_invalid says
    width = len(header)
    positions = list(mapping.positions.items())
    row_number = 0
    for row in reader:
        if not row:
            continue
        row_number += 1
        line = reader.line_num
        if len(row) != width:
            yield (RowError(
                line, "row", f"has {len(row)} fields where the header has {width}",
                ",".join(row),
            ))
            continue
        fields = {field: row[i] for field, i in positions}
        try:
            yield to_transaction(fields, line=line, row=row_number, assume_tz=assume_tz,
                                 raw=",".join(row))
        except RowError as error:
            yield error


def _jsonl_rows(
    first: str, stream: IO[str], assume_tz: tzinfo | None
) -> Iterator[Transaction | RowError]:
    row_number = 0
    for line, text in enumerate(_chain(first, stream), start=1):
        if not text.strip():
            continue
        row_number += 1
        raw = text.rstrip("\r\n")
        try:
            record = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as error:
            yield (RowError(line, "row", f"is not valid JSON ({error.msg})", raw))
            continue
        if not isinstance(record, dict):
            yield (RowError(line, "row", "is not a JSON object", raw))
            continue
        try:
            mapping = column_map(list(record), line)
        except RowError as error:
            yield error
            continue
        fields = {field: record[mapping.names[i]] for field, i in mapping.positions.items()}
        try:
            yield to_transaction(fields, line=line, row=row_number, assume_tz=assume_tz, raw=raw)
        except RowError as error:
            yield error


def _chain(first: str, stream: IO[str]) -> Iterator[str]:
    if first:
        yield first
    yield from stream
