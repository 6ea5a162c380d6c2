"""The one-shot top-investors ranking of a large CSV file, vectorised in polars or DuckDB.

Reading every row into a :class:`~auptimate_core.Transaction` in Python (the input pipeline of
:mod:`auptimate_core.io`) costs seconds per million rows. This module answers the same question
in one vectorised pass: the engine (polars, extra ``fast``, or DuckDB, extra ``duckdb``) reads
the file as text, checks every row, and sums amounts as ``DECIMAL(38, 6)``, exactly, counting
what :mod:`auptimate_core.ranking.invested` counts (investments less refunds).

It only ever answers for files that the input pipeline reads without rejecting a row, and that
it reads the same way. A row counts as *plain* when:

- its ids are non-empty with no whitespace at either end (so dropping that whitespace changes
  nothing), no NUL and no line break, and no longer than the CSV reader's field limit;
- its amount is written ``digits[.digits]`` (at most 20 integer and 6 fraction digits) and is
  greater than zero and at most :data:`~auptimate_core.money.MAX_AMOUNT`;
- its timestamp is an ISO 8601 date (midnight UTC), or a date and time with an explicit offset
  (``Z`` or ``+HH:MM``), at most microseconds, within the years 1000..8999;
- its kind, when the file has a kind column, is one of the known kinds, written exactly.

Every plain row is accepted by the pipeline, with the same investor, pool, kind and amount. When
any row is not plain, or the file has quotes, blank lines, a byte-order mark, columns other
than the ranking's, a header the pipeline would refuse or a malformed line,
:class:`NotVectorised` says why and the caller reads the file through the pipeline instead,
which accepts or rejects each such row and reports the line. So the answer, and every error,
is the pipeline's; only the time differs.

Totals carry the exponent a Decimal sum of the same amounts would have (the most fraction digits
among the investor's counted amounts), so they print the same as
:func:`auptimate_core.top_investors`'s.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Final

import attrs

from ..domain import KINDS
from ..errors import AuptimateError, MissingExtra, RowError, ValidationError
from ..io.readers import field_limit
from ..io.schema import column_map
from ..money import EXACT, MAX_AMOUNT
from .invested import ADDS, COUNTED, SUBTRACTS, WITHOUT_KIND
from .ranks import InvestorRank, check_n, rank_totals

__all__ = ["ENGINES", "FastRanking", "NotVectorised", "fast_top_investors"]

# Whitespace in Python's sense (str.isspace) at either end of an id would be kept by one reader
# and perhaps stripped by another: such ids are not plain. DuckDB's regular expressions are RE2
# (ASCII \s), polars' are Rust's (Unicode \s); both classes below are exactly str.isspace.
_SPACE_RE2 = r"\s\p{Z}\x{0b}\x{1c}-\x{1f}\x{85}"
_SPACE_RUST = r"\s\x1c-\x1f"
_ID_RE: Final = rf"[^{_SPACE_RE2}\x{{00}}](?:[^\x{{00}}\r\n]*[^{_SPACE_RE2}\x{{00}}])?"
# polars reads quotes as plain characters, so a quoted id is not plain there (see _with_polars).
_ID_RUST: Final = rf'^[^{_SPACE_RUST}\x00"](?:[^\x00\r\n"]*[^{_SPACE_RUST}\x00"])?$'
_AMOUNT_RE: Final = r"[0-9]{1,20}(?:\.[0-9]{1,6})?"
_LEAP_YEAR = r"(?:[1-8][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[1357][26]|[2468][048])00)"
_DATE_RE = (  # a real calendar date of the years 1000..8999, leap days included
    r"(?:[1-8][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME_RE: Final = (
    _DATE_RE + r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?"
)
_CHUNK: Final = 1 << 22


class NotVectorised(AuptimateError):
    """The file needs the input pipeline; ``reason`` says why (not an error in the file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen(slots=True)
class FastRanking:
    """The ranking of a file, how many rows were read (all of them valid), and the header's
    style (``brief`` or ``library``)."""

    ranks: list[InvestorRank]
    rows: int
    style: str


def _columns(header: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The header style and field -> column name, or NotVectorised."""
    if len(set(header)) != len(header):
        raise NotVectorised("the header repeats a column name")
    if any(name != name.strip().lower() for name in header):
        raise NotVectorised("the header has capitals or spaces in its names")
    try:
        mapping = column_map(header)
    except RowError as error:
        raise NotVectorised(f"the header is not one the reader accepts ({error})") from None
    if len(mapping.positions) != len(header):
        raise NotVectorised(f"the header {list(header)} has columns the ranking does not read")
    return mapping.style, {field: header[i] for field, i in mapping.positions.items()}


def _header(path: str) -> list[str]:
    """The header's column names, or NotVectorised when the first line is not plain."""
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


def _scan(path: str) -> tuple[int, bool]:
    """The number of line breaks, and whether the file ends with one. Raises on quotes.

    Quoted fields are the one part of CSV where DuckDB's reader and Python's csv module could
    split a line differently, so files with quotes go to the input pipeline. ``O(bytes)``,
    memory ``O(1)``.
    """
    breaks = 0
    last = b""
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(_CHUNK):
            if chunk.find(b'"') >= 0:
                raise NotVectorised("the file has quotes")
            breaks += chunk.count(b"\n")
            last = chunk
    return breaks, last.endswith(b"\n")


class _Scan(threading.Thread):
    def __init__(self, path: str) -> None:
        super().__init__(name="auptimate-scan", daemon=True)
        self.path = path
        self._result: tuple[int, bool] | None = None
        self._error: NotVectorised | OSError | None = None

    def run(self) -> None:
        try:
            self._result = _scan(self.path)
        except (NotVectorised, OSError) as error:
            self._error = error

    def result(self) -> tuple[int, bool]:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _plain_id_sql(expr: str) -> str:
    """SQL true when ``expr`` is a plain id (NULL when it is NULL)."""
    return f"(regexp_full_match({expr}, '{_ID_RE}') AND length({expr}) <= {field_limit()})"


def _sql_set(kinds: frozenset[str]) -> str:
    return "(" + ", ".join(f"'{kind}'" for kind in sorted(kinds)) + ")"


def _query(header: Sequence[str], columns: dict[str, str]) -> str:
    """One pass: per (investor, pool) pair, then per investor; checks ride along."""

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    spec = ", ".join(f"'{name}': 'VARCHAR'" for name in header)
    amount, stamp = q(columns["amount"]), q(columns["timestamp"])
    row_checks = [
        f"regexp_full_match({amount}, '{_AMOUNT_RE}')",
        f"regexp_full_match({stamp}, '{_TIME_RE}')",
    ]
    if "id" in columns:
        row_checks.append(_plain_id_sql(q(columns["id"])))
    kind = f"'{WITHOUT_KIND}'"
    if "kind" in columns:
        kind = q(columns["kind"])
        row_checks.append(f"{kind} IN {_sql_set(KINDS)}")
    value = "TRY_CAST(amount AS DECIMAL(38, 6))"
    return f"""
        WITH source AS (
            SELECT {q(columns["pool_id"])} AS pool, {q(columns["investor_id"])} AS investor,
                   {amount} AS amount, {kind} AS kind,
                   coalesce({" AND ".join(row_checks)}, false) AS plain
            FROM read_csv($path, header = true, auto_detect = false, delim = ',',
                          quote = '"', escape = '"', columns = {{{spec}}})
        ), pairs AS (
            SELECT investor, pool,
                   SUM(CASE WHEN kind IN {_sql_set(ADDS)} THEN {value}
                            WHEN kind IN {_sql_set(SUBTRACTS)} THEN -{value} END) AS total,
                   MIN({value}) AS low, MAX({value}) AS high,
                   MAX(length(amount) - instr(amount, '.')) FILTER (
                       WHERE instr(amount, '.') > 0 AND kind IN {_sql_set(COUNTED)}) AS places,
                   COUNT(*) AS rows, COUNT(*) FILTER (WHERE NOT plain) AS odd,
                   COUNT(*) FILTER (WHERE kind IN {_sql_set(ADDS)}) AS invested
            FROM source GROUP BY investor, pool
        )
        SELECT investor, COUNT(*) FILTER (WHERE invested > 0) AS unique_pools,
               SUM(total) AS total, MIN(low) AS low, MAX(high) AS high,
               coalesce(MAX(places), 0) AS places, SUM(rows) AS rows,
               SUM(odd) + COUNT(*) FILTER (
                   WHERE NOT coalesce({_plain_id_sql("pool")}, false))
               + CASE WHEN coalesce({_plain_id_sql("investor")}, false)
                      THEN 0 ELSE 1 END AS odd
        FROM pairs GROUP BY investor
    """


Groups = list[tuple[str, int, Decimal | None, Decimal | None, Decimal | None, int, int, int]]
"""Per investor: id, distinct pools invested in, total invested, smallest and largest amount
of any kind, most fraction digits of a counted amount, rows, rows or ids not plain."""


def _with_duckdb(name: str, header: Sequence[str], columns: dict[str, str]) -> Groups:
    try:
        import duckdb
    except ImportError as error:
        raise MissingExtra("duckdb", "duckdb") from error
    scan = _Scan(name)  # reads the file in a thread while DuckDB works (it frees the GIL)
    scan.start()
    connection = duckdb.connect(":memory:")
    try:
        rows: Groups = connection.execute(_query(header, columns), {"path": name}).fetchall()
    except duckdb.Error as error:
        raise NotVectorised(f"DuckDB could not read the file as plain CSV: {error}") from None
    finally:
        connection.close()
        scan.join()
    # DuckDB skips blank lines: count them back from the line breaks.
    breaks, ends_with_break = scan.result()
    if breaks != sum(row[6] for row in rows) + (1 if ends_with_break else 0):
        raise NotVectorised("the file has blank lines")
    return rows


def _with_polars(name: str, header: Sequence[str], columns: dict[str, str]) -> Groups:
    """polars reads quotes as characters: a quoted field (or half of one split at a comma or a
    line break) has a quote in it and is not plain. A blank line is a row of nulls, not plain."""
    try:
        import polars as pl
    except ImportError as error:
        raise MissingExtra("polars", "fast") from error
    limit = field_limit()

    def plain_id(column: pl.Expr) -> pl.Expr:
        return column.str.contains(_ID_RUST) & (column.str.len_chars() <= limit)

    amount, stamp = pl.col(columns["amount"]), pl.col(columns["timestamp"])
    checks = [
        amount.str.contains(f"^{_AMOUNT_RE}$"),
        stamp.str.contains(f"^{_TIME_RE}$"),
    ]
    if "id" in columns:
        checks.append(plain_id(pl.col(columns["id"])))
    kind = pl.lit(WITHOUT_KIND)
    if "kind" in columns:
        kind = pl.col(columns["kind"])
        checks.append(kind.is_in(sorted(KINDS)))
    plain = checks[0]
    for check in checks[1:]:
        plain = plain & check
    value = amount.cast(pl.Decimal(38, 6), strict=False)
    adds, subtracts = kind.is_in(sorted(ADDS)), kind.is_in(sorted(SUBTRACTS))
    signed = pl.when(adds).then(value).when(subtracts).then(-value).otherwise(None)
    dot = amount.str.find(".", literal=True)
    places = (pl.when(dot.is_not_null() & kind.is_in(sorted(COUNTED)))
              .then(amount.str.len_bytes() - dot - 1).otherwise(0))
    not_id = ~plain_id(pl.col("pool")).fill_null(False)
    query = (
        pl.scan_csv(name, infer_schema=False, quote_char=None, separator=",")
        .select(
            pl.col(columns["investor_id"]).alias("investor"),
            pl.col(columns["pool_id"]).alias("pool"),
            value.alias("value"), signed.alias("signed"), places.alias("places"),
            adds.fill_null(False).alias("adds"), plain.fill_null(False).alias("plain"),
        )
        .group_by("investor", "pool")
        .agg(pl.col("signed").sum().alias("total"), pl.col("value").min().alias("low"),
             pl.col("value").max().alias("high"), pl.col("places").max().alias("places"),
             pl.len().alias("rows"), (~pl.col("plain")).sum().alias("odd"),
             pl.col("adds").sum().alias("invested"))
        .group_by("investor")
        .agg((pl.col("invested") > 0).sum().alias("unique_pools"), pl.col("total").sum(),
             pl.col("low").min(), pl.col("high").max(), pl.col("places").max(),
             pl.col("rows").sum(), (pl.col("odd").sum() + not_id.sum()).alias("odd"))
        .with_columns(pl.col("odd") + (~plain_id(pl.col("investor"))
                                       .fill_null(False)).cast(pl.UInt32))
    )
    try:
        frame = query.collect()
    except pl.exceptions.PolarsError as error:
        raise NotVectorised(f"polars could not read the file as plain CSV: {error}") from None
    groups: Groups = frame.rows()
    return groups


ENGINES: Final = {"polars": _with_polars, "duckdb": _with_duckdb}
"""The vectorised engines, in order of preference (polars is the faster on two cores)."""


def fast_top_investors(
    path: str | os.PathLike[str], n: int = 5, *, engine: str = "auto"
) -> FastRanking:
    """Rank a CSV file's investors in polars or DuckDB, exactly as reading it through the input
    pipeline and :func:`~auptimate_core.top_investors` would.

    ``engine`` is ``"polars"``, ``"duckdb"`` or ``"auto"`` (the first of them installed).
    Raises :class:`NotVectorised` when the file needs the input pipeline (see the module
    notes), and :class:`~auptimate_core.errors.MissingExtra` when no engine is installed.
    One pass over the file (on all cores), then ``O(m log n)`` in Python for ``m`` investors.
    """
    check_n(n)
    run = _engine(engine)
    name = os.fspath(path)
    header = _header(name)
    style, columns = _columns(header)
    rows = run(name, header, columns)
    count = sum(row[6] for row in rows)
    odd = sum(row[7] for row in rows) + sum(
        1 for row in rows if row[3] is None or row[3] <= 0 or row[4] is None
        or row[4] > MAX_AMOUNT)
    if odd:
        raise NotVectorised(f"{odd} rows (or ids) are not plain")
    exponent = {places: Decimal(1).scaleb(-places) for places in {row[5] for row in rows}}
    totals = [
        (inv, pools, total.quantize(exponent[places], context=EXACT))
        for inv, pools, total, _, _, places, _, _ in rows
        if pools and total is not None
    ]
    return FastRanking(rank_totals(totals, n), count, style)


def _engine(engine: str) -> Callable[[str, Sequence[str], dict[str, str]], Groups]:
    if engine == "auto":
        for name in ENGINES:
            if importlib.util.find_spec(name) is not None:
                return ENGINES[name]
        raise MissingExtra("polars or duckdb", "fast")
    try:
        return ENGINES[engine]
    except KeyError:
        raise ValidationError(
            "engine", f"must be 'auto' or one of {sorted(ENGINES)}, not {engine!r}") from None
