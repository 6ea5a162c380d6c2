"""Reading transactions from CSV or JSON Lines: constant memory, every row judged the same way.

What a row may hold is :mod:`auptimate_core.io.schema`'s; this module splits a file into rows.
Everything wrong with a row becomes a :class:`~auptimate_core.errors.RowError` naming the line
the row starts on and the field at fault, whatever the cause: a bad value, a wrong number of
fields, broken CSV quoting, a field longer than the CSV reader's limit, bytes that are not UTF-8
(named by the line they are on), a JSON line that is not an object. Only a bad header stops a
read whatever the caller asked, since no row after it can be read.

A file is read as bytes and decoded line by line, so that one bad byte costs one row. A leading
byte-order mark is dropped; blank lines are not rows; an empty file, or a header alone, has no
rows. CSV quoting is strict: a quote opens a field only at its start, and a closing quote must
end it.

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
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import tzinfo
from decimal import Decimal
from typing import IO, Any

from ..domain import Transaction
from ..errors import RowError, ValidationError
from .formats import Format, detect_format
from .plain import field_limit
from .schema import ColumnMap, RejectedRow, column_map, field_of, to_transaction, transaction_from

__all__ = [
    "Format", "Position", "Source", "detect_format", "field_limit", "file_format",
    "read_csv_part", "read_rows", "read_transactions",
]

Source = str | os.PathLike[str] | IO[str] | IO[bytes]
"""A path, ``"-"`` for standard input, or an open stream (bytes, or text already decoded)."""

_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of bytes not UTF-8


class _Lines:
    """The lines of a source, numbered and decoded one at a time.

    A line that is not UTF-8 is decoded with ``surrogateescape`` and noted in ``bad``
    (line number -> what is wrong), for the row that holds it to be rejected.
    """

    def __init__(self, raw: Iterable[str | bytes], before: int = 0) -> None:
        self._raw = iter(raw)
        self._ahead: list[tuple[str, str | None]] = []
        self.number = before
        """The number of the line last handed out (1-based; ``before`` lines precede ``raw``)."""
        self.taken: list[str] = []
        """The lines handed out since :meth:`start`."""
        self.bad: dict[int, str] = {}

    def _decode(self, raw: str | bytes, number: int) -> tuple[str, str | None]:
        problem = None
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                text = raw.decode("utf-8", "surrogateescape")
                problem = (f"is not valid UTF-8 (byte 0x{raw[error.start]:02x} at column "
                           f"{error.start + 1})")
        else:
            text = raw
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        return text, problem

    def first_text(self) -> str:
        """The first line that is not blank ("" if none), read ahead without handing it out."""
        for text, _ in self._ahead:
            if text.strip():
                return text
        for raw in self._raw:
            self._ahead.append(self._decode(raw, self.number + len(self._ahead) + 1))
            if self._ahead[-1][0].strip():
                return self._ahead[-1][0]
        return ""

    def __iter__(self) -> Iterator[str]:
        taken, bad = self.taken, self.bad
        while self._ahead:
            text, problem = self._ahead.pop(0)
            self.number += 1
            if problem is not None:
                bad[self.number] = problem
            taken.append(text)
            yield text
        for raw in self._raw:
            self.number += 1
            if isinstance(raw, bytes):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text, problem = self._decode(raw, self.number)
                    bad[self.number] = problem or ""
            else:
                text = raw
            taken.append(text)
            yield text

    def start(self) -> None:
        """Begin a new row: forget the lines taken so far."""
        self.taken.clear()

    def raw(self) -> str:
        """The text of the lines taken since :meth:`start`."""
        return _raw("".join(self.taken))

    def take_bad(self) -> tuple[int, str] | None:
        """The first line noted as bad and what is wrong with it (all notes are forgotten), or
        None when there is none."""
        if not self.bad:
            return None
        line = min(self.bad)
        found = (line, self.bad[line])
        self.bad.clear()
        return found


def _raw(text: str) -> str:
    """A row's text for a report: without its line break, bytes that are not UTF-8 as ``\\xNN``."""
    text = text.rstrip("\r\n")
    if _UNDECODED.search(text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _open(source: Source, stack: ExitStack) -> tuple[Iterable[str | bytes], str]:
    """The lines of a path, ``"-"`` (standard input) or an open stream, and a name for it."""
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if name == "-":
            return sys.stdin.buffer, "-"
        return stack.enter_context(open(name, "rb")), name
    return source, str(getattr(source, "name", "<stream>"))


def file_format(path: str | os.PathLike[str]) -> Format:
    """The format :func:`read_rows` reads the file at ``path`` in (see :func:`detect_format`)."""
    with ExitStack() as stack:
        raw, name = _open(path, stack)
        return detect_format(name, _Lines(raw).first_text())


def read_rows(
    source: Source, *, format: Format | None = None, assume_tz: tzinfo | None = None,
    name: str | None = None,
) -> Iterator[Transaction | RowError]:
    """Every row of ``source``: a Transaction, or the RowError saying what is wrong with it.

    ``format`` is ``"csv"``, ``"jsonl"`` or None to tell by :func:`detect_format` from ``name``
    (by default the path, or the stream's name) and the first line. A bad CSV header is raised,
    not yielded. A text stream is taken as decoded by its owner (open text files with
    ``newline=""``); a path or a binary stream is decoded here, line by line.
    """
    with ExitStack() as stack:
        raw, found = _open(source, stack)
        lines = _Lines(raw)
        first = lines.first_text()  # reads line 1 ahead, where a byte-order mark is dropped
        fmt = format or detect_format(name or found, first)
        if fmt == "csv":
            yield from _csv_rows(lines, assume_tz)
        else:
            yield from _jsonl_rows(lines, assume_tz)


def read_transactions(
    source: Source,
    *,
    format: Format | None = None,
    skip_invalid: bool = False,
    on_reject: Callable[[RejectedRow], object] | None = None,
    assume_tz: tzinfo | None = None,
    name: str | None = None,
) -> Iterator[Transaction]:
    """Yield the transactions of a CSV or JSON Lines source, one row at a time.

    A bad row raises :class:`~auptimate_core.errors.RowError` naming its line and field; with
    ``skip_invalid=True`` it is passed to ``on_reject`` instead (and counted there, never
    dropped silently: ``skip_invalid`` without ``on_reject`` is refused). With no id column, a
    row's id is its row number (1 for the first row). ``assume_tz`` is the time zone of
    timestamps written without an offset (None: such rows are rejected); ``name`` is the
    source's name for telling its format, as for :func:`read_rows`.
    """
    if skip_invalid and on_reject is None:
        raise ValueError("on_reject: needed with skip_invalid, so no rejected row goes unseen")
    for item in read_rows(source, format=format, assume_tz=assume_tz, name=name):
        if isinstance(item, RowError):
            if not skip_invalid:
                raise item
            assert on_reject is not None
            on_reject(RejectedRow.from_error(item))
        else:
            yield item


# -- CSV ---------------------------------------------------------------------------------------

_CSV_PROBLEMS = (  # the csv module's words -> ours
    ("field larger than field limit", "has a field longer than {limit:,} characters"),
    ("expected after", "has text after the closing quote of a field"),
    ("unexpected end of data", "has a quote that is never closed (it runs to the end of the file)"),
    ("new-line character seen in unquoted field", "has a carriage return outside quotes"),
)


def _csv_problem(error: csv.Error, first: int, last: int) -> str:
    """What is wrong with the CSV of the row on lines ``first`` to ``last``."""
    text = str(error)
    for start, message in _CSV_PROBLEMS:
        if start in text:
            problem = message.format(limit=field_limit())
            if last > first and "end of the file" not in problem:
                problem += f" (the row runs from line {first} to {last}: is a quote left open?)"
            return problem
    return f"is not valid CSV ({text})"


def _header(reader: Any, lines: _Lines) -> tuple[int, list[str]] | None:
    """The header row and its line, or None for a file without one; a bad one is raised."""
    while True:
        lines.start()
        first = lines.number + 1
        try:
            row: list[str] = next(reader)
        except StopIteration:
            return None
        except csv.Error as error:
            raise RowError(first, "header", _csv_problem(error, first, lines.number),
                           lines.raw()) from None
        bad = lines.take_bad()
        if bad is not None:
            raise RowError(bad[0], "header", bad[1], lines.raw())
        if row and (len(row) > 1 or row[0].strip()):
            return first, row


def _undecodable(row: list[str], mapping: ColumnMap) -> str:
    """The field (or column) holding the bytes that are not UTF-8, or ``row``."""
    for i, value in enumerate(row):
        if _UNDECODED.search(value):
            if i >= len(mapping.names):
                break
            return field_of(mapping.names[i]) or mapping.names[i].strip()
    return "row"


class Position:
    """Where a reader of CSV rows is: the last line it read and the rows it counted (blank
    lines are not rows). Updated as rows are handed out."""

    __slots__ = ("line", "row")

    def __init__(self, line: int = 0, row: int = 0) -> None:
        self.line = line
        self.row = row


def _csv_rows(lines: _Lines, assume_tz: tzinfo | None) -> Iterator[Transaction | RowError]:
    reader = csv.reader(lines, strict=True)
    found = _header(reader, lines)
    if found is None:
        return  # an empty file: no rows
    header_line, header = found
    mapping = column_map(header, header_line)  # a bad header stops the read
    yield from _csv_body(reader, lines, mapping, assume_tz, Position(lines.number))


def read_csv_part(
    raw: Iterable[bytes], header: Sequence[str], position: Position, *,
    assume_tz: tzinfo | None = None,
) -> Iterator[Transaction | RowError]:
    """The rows of a part of a CSV file read apart from its header (a vectorised reader hands
    over the parts it does not read itself): ``raw`` are the part's lines as bytes, starting
    right after line ``position.line``, whose rows are numbered after ``position.row`` (the id
    of a row when there is no id column). ``position`` follows the read. The rows, and every
    error and its line, are those :func:`read_rows` gives for the same lines of the whole file.
    """
    lines = _Lines(raw, position.line)
    mapping = column_map(header)
    yield from _csv_body(csv.reader(lines, strict=True), lines, mapping, assume_tz, position)


def _csv_body(reader: Any, lines: _Lines, mapping: ColumnMap, assume_tz: tzinfo | None,
              position: Position) -> Iterator[Transaction | RowError]:
    width = len(mapping.names)
    positions = list(mapping.positions.items())
    row_number = position.row
    taken = lines.taken
    taken.clear()
    end = lines.number  # the last line of the row before
    while True:
        try:
            for row in reader:
                first, end = end + 1, lines.number
                position.line = end
                if not row or (len(row) == 1 and not row[0].strip()):
                    lines.take_bad()  # a blank line is not a row
                    taken.clear()
                    continue
                row_number += 1
                position.row = row_number
                if lines.bad:
                    line, problem = lines.take_bad() or (first, "")
                    yield RowError(line, _undecodable(row, mapping), problem, lines.raw())
                elif len(row) != width:
                    yield RowError(first, "row",
                                   f"has {len(row)} fields where the header has {width}",
                                   lines.raw())
                else:
                    fields = {field: row[i] for field, i in positions}
                    try:
                        yield to_transaction(fields, line=first, row=row_number,
                                             assume_tz=assume_tz)
                    except RowError as error:
                        error.raw = lines.raw()
                        yield error
                taken.clear()
            return
        except csv.Error as error:
            first, end = end + 1, lines.number
            position.line = end
            row_number += 1
            position.row = row_number
            lines.take_bad()
            yield RowError(first, "row", _csv_problem(error, first, end), lines.raw())
            taken.clear()


# -- JSON Lines --------------------------------------------------------------------------------


class _Object(dict[str, Any]):
    """A JSON object, with the keys it repeated (``json`` keeps only the last value)."""

    repeated: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        obj.repeated = tuple(key for i, key in enumerate(keys) if key in keys[:i])
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _json_undecodable(record: _Object) -> str:
    for key, value in record.items():
        if _UNDECODED.search(key) or (isinstance(value, str) and _UNDECODED.search(value)):
            return field_of(key) or key.strip()
    return "row"


def _json_row(text: str, line: int, row: int, assume_tz: tzinfo | None,
              bad: str | None) -> Transaction | RowError:
    raw = _raw(text)
    try:
        record = json.loads(text, parse_float=Decimal, parse_constant=_no_constant,
                            object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        return RowError(line, "row", bad or f"is not valid JSON ({error.msg})", raw)
    except ValueError as error:  # a constant refused, or an integer too long to read
        return RowError(line, "row", bad or f"is not valid JSON ({error})", raw)
    if not isinstance(record, _Object):
        return RowError(line, "row", bad or "is not a JSON object", raw)
    if bad is not None:
        return RowError(line, _json_undecodable(record), bad, raw)
    for key in record.repeated:
        field = field_of(key)
        if field is not None:
            return RowError(line, field, f"named twice, by {key!r} and {key!r}", raw)
    try:
        return transaction_from(record, default_id=str(row), assume_tz=assume_tz)
    except ValidationError as error:
        return RowError(line, error.field, error.reason, raw)


def _jsonl_rows(lines: _Lines, assume_tz: tzinfo | None) -> Iterator[Transaction | RowError]:
    row = 0
    for text in lines:
        lines.start()
        bad = lines.take_bad()
        if not text.strip():
            continue
        row += 1
        yield _json_row(text, lines.number, row, assume_tz, None if bad is None else bad[1])
