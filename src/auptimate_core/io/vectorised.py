"""The vectorised reader: a CSV file's transactions in batches, its plain parts read by polars.

:func:`transaction_batches` gives the transactions, and the rejected rows, that
:func:`~auptimate_core.io.readers.read_transactions` gives for the same file, in the same order,
in lists of thousands. The file is cut at line breaks into blocks of a few megabytes; polars
splits a block into fields (quotes read as characters) and checks every row against the plain
patterns of :mod:`auptimate_core.io.plain`. A block whose rows are all plain becomes
Transactions straight away (amounts by ``Decimal``, times by ``datetime.fromisoformat``, as the
input pipeline reads plain values), while a thread reads the next block and polars splits it;
any other block goes through the pipeline
(:func:`~auptimate_core.io.readers.read_csv_part`), which accepts or rejects each of its rows
and names the line and the field. A quote can join lines into one row, so from the first block
holding one, the rest of the file goes through the pipeline. Standard input, JSON Lines, a
header that is not plain, or no polars: the pipeline reads the whole file, in batches.

:func:`column_batches` gives a plain block whose times are all in UTC as
:class:`~auptimate_core.columns.TransactionColumns` in their array forms, made in the splitting
thread: pools as codes into the block's names, amounts with their millionths (exact, as plain
amounts have at most six decimals; their Decimals made only when read), times in UTC
microseconds (read from fixed places when every time of the block is written one way, else
field by field), ids as strings already hashed.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, BinaryIO, Final, NamedTuple, overload

from ..columns import AmountColumn, TransactionColumns
from ..domain import KINDS, Transaction
from ..errors import RowError
from .plain import (
    AMOUNT,
    ID_RUST,
    TIME,
    VECTORISE_FROM,
    NotVectorised,
    plain_header,
    read_header,
)
from .readers import Position, field_limit, file_format, read_csv_part, read_transactions
from .schema import RejectedRow

__all__ = ["BLOCK", "VECTORISE_FROM", "Batch", "column_batches", "transaction_batches"]

BLOCK: Final = 1 << 23
"""Bytes read at a time (whole lines; the first few blocks are smaller): about a hundred
thousand rows of a typical file."""

_BATCH = 1 << 16  # transactions per batch on the pipeline's path


def transaction_batches(
    source: str,
    *,
    skip_invalid: bool = False,
    on_reject: Callable[[RejectedRow], object] | None = None,
    assume_tz: tzinfo | None = None,
    block: int = BLOCK,
    vectorise_from: int = VECTORISE_FROM,
) -> Iterator[list[Transaction]]:
    """The transactions of ``source`` (a path, or ``"-"`` for standard input) in lists, the
    same and in the same order as :func:`~auptimate_core.io.readers.read_transactions` with the
    same arguments gives them one by one, rejected rows and errors included. ``block`` is the
    number of bytes polars reads at a time; a file under ``vectorise_from`` bytes is read by
    the pipeline alone."""
    if skip_invalid and on_reject is None:
        raise ValueError("on_reject: needed with skip_invalid, so no rejected row goes unseen")
    header = _vectorised_header(source, vectorise_from)
    if header is None:
        rows = read_transactions(source, skip_invalid=skip_invalid, on_reject=on_reject,
                                 assume_tz=assume_tz, name=source)
        while batch := list(itertools.islice(rows, _BATCH)):
            yield batch
        return
    yield from _Blocks(source, header, skip_invalid, on_reject, assume_tz, block)


def _vectorised_header(source: str, vectorise_from: int) -> list[str] | None:
    """The header of ``source`` when polars reads it (a plain CSV file of ``vectorise_from``
    bytes or more, polars installed); None when the row pipeline reads it alone."""
    try:
        if source == "-" or not os.path.isfile(source) or file_format(source) != "csv":
            raise NotVectorised("not a CSV file")
        if os.path.getsize(source) < vectorise_from:
            raise NotVectorised("a small file")
        if importlib.util.find_spec("polars") is None:
            raise NotVectorised("polars is not installed")
        header = read_header(source)
        plain_header(header)
    except NotVectorised:
        return None
    return header


Batch = TransactionColumns | list[Transaction]
"""A batch of :func:`column_batches`: columns of plain rows, or Transactions."""


def column_batches(
    source: str,
    *,
    skip_invalid: bool = False,
    on_reject: Callable[[RejectedRow], object] | None = None,
    assume_tz: tzinfo | None = None,
    block: int = BLOCK,
    vectorise_from: int = VECTORISE_FROM,
) -> Iterator[Batch]:
    """The rows :func:`transaction_batches` gives, in the same order, with the same rejected
    rows and errors; a plain block whose times are all in UTC comes as
    :class:`~auptimate_core.columns.TransactionColumns` (see the module notes), any other
    batch as a list of Transactions."""
    if skip_invalid and on_reject is None:
        raise ValueError("on_reject: needed with skip_invalid, so no rejected row goes unseen")
    header = _vectorised_header(source, vectorise_from)
    if header is None:
        yield from transaction_batches(source, skip_invalid=skip_invalid, on_reject=on_reject,
                                       assume_tz=assume_tz, block=block, vectorise_from=0)
        return
    yield from _Blocks(source, header, skip_invalid, on_reject, assume_tz, block, columns=True)


class _Blocks:
    """The batches of one CSV file whose header is plain."""

    def __init__(self, path: str, header: list[str], skip_invalid: bool,
                 on_reject: Callable[[RejectedRow], object] | None, assume_tz: tzinfo | None,
                 block: int, columns: bool = False) -> None:
        import numpy
        import polars

        self.np = numpy
        self.pl = polars
        self.path = path
        self.header = header
        self.skip_invalid = skip_invalid
        self.on_reject = on_reject
        self.assume_tz = assume_tz
        self.block = block
        _, self.columns = plain_header(header)
        self.plain = _plain_expression(polars, self.columns)
        self.plain_pools = _plain_id(polars, self.columns["pool_id"]).fill_null(False).all()
        self.position = Position(line=1)
        self.as_columns = columns
        self.times = _micros_expression(polars, self.columns["timestamp"]) if columns else None

    def __iter__(self) -> Iterator[Any]:
        with open(self.path, "rb") as handle, ThreadPoolExecutor(1) as splitter:
            handle.readline()  # the header
            parts = self._parts(handle)

            def read() -> tuple[bytes, bytes | None, _Split | None] | None:
                """The next block, read and (without a quote) split by polars."""
                found = next(parts, None)
                if found is None:
                    return None
                part, carry = found
                return part, carry, None if carry is not None else self._split(part)

            # A thread reads the next block and polars splits and checks it (freeing the
            # GIL) while this one is handed on.
            pending: Future[tuple[bytes, bytes | None, _Split | None] | None] = (
                splitter.submit(read))
            while (got := pending.result()) is not None:
                part, carry, found = got
                del got
                if carry is not None:  # a quote: the rest of the file goes to the pipeline
                    yield from self._pipeline(_rest(part, carry, handle))
                    return
                pending = splitter.submit(read)
                if found is None:
                    yield from self._pipeline(_lines(part))
                    continue
                batch = self._columns(found) if self.as_columns else self._transactions(found)
                # The block's bytes and frame go before the batch is replayed, so that fewer
                # blocks' memory is held at once.
                del part, found
                yield batch

    def _parts(self, handle: BinaryIO) -> Iterator[tuple[bytes, bytes | None]]:
        """Blocks of whole lines, each with None; a block with a quote comes with ``b""``
        (the rest of the file is read from the handle) and ends the parts. The first blocks
        are smaller (an eighth of ``block``, doubling up to it): the engine waits for the
        first one alone."""
        size = max(self.block >> 3, 1)
        while data := handle.read(size):
            size = min(size * 2, self.block)
            if not data.endswith(b"\n"):
                data += handle.readline()  # to the end of the line
            if b'"' in data:
                yield data, b""
                return
            yield data, None

    def _pipeline(self, raw: Iterator[bytes]) -> Iterator[list[Transaction]]:
        """The input pipeline's batches of these lines (the position follows)."""
        batch: list[Transaction] = []
        for item in read_csv_part(raw, self.header, self.position, assume_tz=self.assume_tz):
            if isinstance(item, RowError):
                if not self.skip_invalid:
                    raise item
                assert self.on_reject is not None
                self.on_reject(RejectedRow.from_error(item))
                continue
            batch.append(item)
            if len(batch) >= _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _split(self, part: bytes) -> _Split | None:
        """``part`` (whole lines) split into fields by polars and checked, or None when a line
        is not a plain row (or not a row: a blank line, bytes that are not UTF-8)."""
        pl = self.pl
        # numpy counts bytes faster than bytes.count does.
        breaks = int(self.np.count_nonzero(self.np.frombuffer(part, self.np.uint8) == 10))
        lines = breaks + (0 if part.endswith(b"\n") else 1)
        try:
            frame = pl.read_csv(part, has_header=False, new_columns=self.header,
                                schema=dict.fromkeys(self.header, pl.String), quote_char=None,
                                separator=",")
            stamp = pl.col(self.columns["timestamp"])
            size = stamp.str.len_bytes()
            # A block holds few pools: their ids are checked once each.
            names = frame[self.columns["pool_id"]].unique(maintain_order=True)
            checked = frame.select(
                self.plain.all().alias("plain"), size.min().alias("shortest"),
                size.max().alias("longest"), stamp.str.ends_with("+00:00").all().alias("utc"),
                stamp.str.ends_with("Z").all().alias("z"))
        except pl.exceptions.PolarsError:
            return None
        plain, shortest, longest, utc_offset, utc_z = checked.row(0)
        if frame.height != lines or not plain or not names.to_frame().select(
                self.plain_pools).item():
            return None
        times = utc = None
        if self.times is not None:
            suffix = 6 if utc_offset else 1 if utc_z else 0 if longest == 10 else None
            if shortest == longest and suffix is not None:
                # One layout for every time, all in UTC: its fields at fixed places.
                times, utc = _fixed_micros(frame[self.columns["timestamp"]], longest,
                                           suffix), True
            else:
                micros, offset = self.times
                found = frame.select(micros.alias("times"), (offset == 0).all().alias("utc"))
                if found["times"].null_count():  # not expected of plain rows
                    return None
                times, utc = found["times"].to_numpy(), bool(found["utc"][0])
            if utc:
                return _Split(frame, lines, shortest > 10, times, utc, self._arrays(frame, names))
        return _Split(frame, lines, shortest > 10, times, utc)

    def _arrays(self, frame: Any, names: Any) -> _Arrays:
        """What is made of a block's columns in the splitting thread: its ids as strings,
        pool codes into ``names`` (its pools, in order), and amounts in millionths when every
        one fits in 64 bits."""
        pl, columns = self.pl, self.columns
        pools = frame[columns["pool_id"]]
        micros = (frame[columns["amount"]].str.to_decimal(scale=6).to_physical()
                  .cast(pl.Int64, strict=False))
        ids = frame[columns["id"]].to_list() if "id" in columns else None
        if ids is not None:
            # Python caches a string's hash in it: hashed here, the ids cost the main
            # thread's duplicate check (which hashes every id) a lookup each.
            deque(map(hash, ids), maxlen=0)
        return _Arrays(ids, pools.cast(pl.Enum(names)).to_physical().to_numpy(),
                       names.to_list(),
                       None if micros.null_count() else micros.to_numpy(),
                       "kind" not in columns or bool((frame[columns["kind"]] == "investment")
                                                     .all()))

    def _columns(self, split: _Split) -> Batch:
        """The columns of a block that split into plain rows (its Transactions when a time has
        an offset other than UTC's, which columns of UTC microseconds would not keep)."""
        if not split.utc:
            batch = self._transactions(split)
            assert batch is not None
            return batch
        frame, lines, columns = split.frame, split.lines, self.columns
        position = self.position
        first_row = position.row + 1
        position.line += lines
        position.row += lines
        kinds = None
        assert split.times is not None and split.arrays is not None
        ids, codes, names, micros, investments = split.arrays
        if ids is None:
            ids = list(map(str, range(first_row, first_row + lines)))
        if not investments:
            kinds = frame[columns["kind"]].to_list()
        texts = frame[columns["amount"]]
        return TransactionColumns.from_arrays(
            ids=ids, investors=_Text(frame[columns["investor_id"]]), pool_codes=codes,
            pool_names=names, amounts=(list(map(Decimal, texts.to_list())) if micros is None
                                       else AmountColumn(_Text(texts), micros)),
            times=split.times, kinds=kinds)

    def _transactions(self, split: _Split | None) -> list[Transaction] | None:
        """The transactions of a block that split into plain rows (None when it did not)."""
        if split is None:
            return None
        frame, lines, columns = split.frame, split.lines, self.columns
        position = self.position
        first_row = position.row + 1
        position.line += lines
        position.row += lines
        ids: Any = (frame[columns["id"]].to_list() if "id" in columns
                    else map(str, range(first_row, first_row + lines)))
        amounts = map(Decimal, frame[columns["amount"]].to_list())
        stamps = frame[columns["timestamp"]].to_list()
        times = map(datetime.fromisoformat if split.all_timed else _timestamp, stamps)
        kinds: Any = (frame[columns["kind"]].to_list() if "kind" in columns
                      else itertools.repeat("investment"))
        return list(map(Transaction, ids, frame[columns["investor_id"]].to_list(),
                        frame[columns["pool_id"]].to_list(), amounts, times, kinds))


class _Text(Sequence[str]):
    """A text column left in polars, its values made Python strings when read: the engine
    reads investor ids only for the rows it raises alerts on, and amounts' texts only where
    it needs their Decimals (it compares their millionths)."""

    __slots__ = ("series",)

    def __init__(self, series: Any) -> None:
        self.series = series

    def __len__(self) -> int:
        return len(self.series)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> _Text: ...

    def __getitem__(self, index: int | slice) -> str | _Text:
        if isinstance(index, slice):
            return _Text(self.series[index])
        value: str = self.series[index]
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.series.to_list())


class _Split(NamedTuple):
    """A block polars split into plain rows: the frame, its lines, whether every timestamp
    has a time (else some are dates alone, read as midnight UTC), and for columns its times."""

    frame: Any
    lines: int
    all_timed: bool
    times: Any = None
    """With columns: the times in UTC microseconds (numpy)."""
    utc: bool | None = None
    """With columns: whether every time is in UTC (offset zero, or a date alone)."""
    arrays: _Arrays | None = None
    """With columns in UTC: the columns polars computed."""


class _Arrays(NamedTuple):
    """A block's ids (None without an id column), pool codes (numpy) and names, its amounts
    in millionths (numpy; None when one does not fit in 64 bits), and whether every row is an
    investment."""

    ids: list[str] | None
    pool_codes: Any
    pool_names: list[str]
    micros: Any
    investments: bool


def _timestamp(text: str) -> datetime:
    """A plain timestamp: a date alone is midnight UTC (as the pipeline reads it)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if len(text) == 10 else moment


def _micros_expression(pl: Any, name: str) -> tuple[Any, Any]:
    """Microseconds since the epoch in UTC of a column of plain timestamps (see
    :mod:`auptimate_core.io.plain`: ``YYYY-MM-DD``, or with ``[T ]HH:MM[:SS[.f{1,6}]]`` and
    ``Z`` or ``+HH:MM``), and each one's offset in minutes. Exact on plain text alone (which
    the check before it makes sure of); integer arithmetic throughout."""
    text = pl.col(name)
    size = text.str.len_bytes()
    timed = size > 10
    offset_size = pl.when(~timed).then(0).when(text.str.ends_with("Z")).then(1).otherwise(6)
    clock = size - offset_size  # the date and the time of day, without the offset

    def number(start: int, length: int) -> Any:
        return text.str.slice(start, length).cast(pl.Int64, strict=False)

    day = text.str.slice(0, 10).str.to_date("%Y-%m-%d").cast(pl.Int64)
    hours = pl.when(timed).then(number(11, 2)).otherwise(0)
    minutes = pl.when(timed).then(number(14, 2)).otherwise(0)
    seconds = pl.when(clock >= 19).then(number(17, 2)).otherwise(0)
    fraction = (pl.when(clock > 20)
                .then(text.str.slice(20, clock - 20).str.pad_end(6, "0")
                      .cast(pl.Int64, strict=False))
                .otherwise(0))
    sign = pl.when(text.str.slice(-6, 1) == "-").then(-1).otherwise(1)
    offset = (pl.when(offset_size == 6).then(sign * (number(-5, 2) * 60 + number(-2, 2)))
              .otherwise(0))
    seconds_of_day = hours * 3600 + (minutes - offset) * 60 + seconds
    return (day * 86_400 + seconds_of_day) * 1_000_000 + fraction, offset


def _fixed_micros(texts: Any, size: int, suffix: int) -> Any:
    """Microseconds since the epoch (numpy) of a polars column of plain timestamps that all
    have ``size`` bytes and end in a UTC offset of ``suffix`` bytes (``+00:00``, ``Z``, or none
    for a date alone): a plain timestamp's length without its offset fixes where each digit
    is, so the digits are read from the column's bytes laid out as a table of ``size``
    columns. The check before it makes sure each date is a real one of the years 1000..8999."""
    import numpy as np

    table = np.frombuffer(texts.str.join("").item().encode("ascii"), np.uint8)
    table = table.reshape(-1, size)

    def number(start: int, length: int) -> Any:
        value = table[:, start].astype(np.int32)
        for place in range(start + 1, start + length):
            value *= 10
            value += table[:, place]
        value -= int("1" * length) * ord("0")
        return value

    # Days since 1970-01-01 of a proleptic Gregorian date, counted in eras of 400 years from
    # 0000-03-01 (so a leap day ends its year).
    month = number(5, 2)
    year = number(0, 4) - (month <= 2)
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + number(8, 2) - 1
    days = era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468
    seconds = days.astype(np.int64) * 86_400
    clock = size - suffix
    if clock >= 16:
        seconds += number(11, 2) * 3600 + number(14, 2) * 60
    if clock >= 19:
        seconds += number(17, 2)
    micros = seconds * 1_000_000
    if clock > 20:
        digits = clock - 20
        micros += number(20, digits) * 10 ** (6 - digits)
    return micros


def _plain_id(pl: Any, name: str) -> Any:
    """True for a plain id (see :mod:`auptimate_core.io.plain`), null for a null."""
    # Bytes, which a string's view holds, for the limit in characters: an id under it in
    # characters but not in bytes is left to the pipeline.
    column = pl.col(name)
    return column.str.contains(ID_RUST) & (column.str.len_bytes() <= field_limit())


def _plain_expression(pl: Any, columns: dict[str, str]) -> Any:
    """True for a row that is plain but for its pool id (see :mod:`auptimate_core.io.plain`;
    the pools are checked apart, once each), never null."""
    plain = (pl.col(columns["amount"]).str.contains(f"^(?:{AMOUNT})$")
             & pl.col(columns["timestamp"]).str.contains(f"^(?:{TIME})$")
             & _plain_id(pl, columns["investor_id"]) & pl.col(columns["pool_id"]).is_not_null())
    if "id" in columns:
        plain = plain & _plain_id(pl, columns["id"])
    if "kind" in columns:
        plain = plain & pl.col(columns["kind"]).is_in(sorted(KINDS))
    return plain.fill_null(False)


def _lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, each with its line break (as a binary file hands them out)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start) + 1 or len(data)
        yield data[start:end]
        start = end


def _rest(part: bytes, carry: bytes, handle: BinaryIO) -> Iterator[bytes]:
    """The lines of ``part`` (whole lines), then of ``carry`` (the start of a line) and what
    the file still holds."""
    yield from _lines(part)
    if carry:
        yield carry + handle.readline()
    yield from handle
