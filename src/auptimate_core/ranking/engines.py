"""The vectorised engines' pass over a CSV file for the top-investors ranking (see
:mod:`auptimate_core.ranking.vectorised`, which turns what they find into the ranking).

:func:`start_ranking` checks the file's header, imports the engine and starts its pass in a
thread (both engines free the GIL while they read), so the caller can import what it needs for
the answer meanwhile; :meth:`Started.found` waits for it. This module imports nothing of the
ranking's other forms, nor of the input pipeline but its rules for plain rows.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, NamedTuple

from ..errors import MissingExtra, ValidationError
from ..io.formats import detect_format
from ..io.plain import (
    AMOUNT,
    ID_RE2,
    ID_RUST,
    TIME,
    NotVectorised,
    field_limit,
    plain_header,
    read_header,
)
from ..money import EXACT
from .invested import ADDS, COUNTED, SUBTRACTS
from .order import check_n, rank_key

__all__ = ["ENGINES", "Found", "Line", "Started", "start_ranking"]

Top = list[tuple[str, int, Decimal | None, int]]
"""The first investors in ranking order (those who invested in no pool last): id, distinct
pools invested in, total invested, most fraction digits of a counted amount."""


Line = tuple[str, int, Decimal]
"""A line of the ranking: investor id, distinct pools invested in, total invested."""


class Found(NamedTuple):
    """What an engine found: the top investors, the rows read, and how many rows (or investor
    ids) are not plain."""

    top: Top
    rows: int
    odd: int


_Engine = Callable[["_File", Sequence[str], dict[str, str], int], Found]


_CHUNK: Final = 1 << 22


class _LineBreaks(threading.Thread):
    """Counts a file's line breaks, and whether it ends with one, in a thread while DuckDB
    reads it (DuckDB frees the GIL): DuckDB skips blank lines, and could read fewer rows than
    the file has lines without an error, so its count of rows is checked against the lines.
    ``O(bytes)``, memory ``O(1)``."""

    def __init__(self, path: str) -> None:
        super().__init__(name="auptimate-line-breaks", daemon=True)
        self.path = path
        self._result: tuple[int, bool] | None = None
        self._error: OSError | None = None

    def run(self) -> None:
        breaks = 0
        last = b""
        try:
            with open(self.path, "rb", buffering=0) as handle:
                while chunk := handle.read(_CHUNK):
                    breaks += chunk.count(b"\n")
                    last = chunk
        except OSError as error:
            self._error = error
            return
        self._result = (breaks, last.endswith(b"\n"))

    def lines(self) -> int:
        """The number of lines (a last line without a break counts)."""
        self.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        breaks, ends_with_break = self._result
        return breaks if ends_with_break else breaks + 1


def _sql_set(kinds: frozenset[str]) -> str:
    return "(" + ", ".join(f"'{kind}'" for kind in sorted(kinds)) + ")"


def _plain_id_sql(expr: str) -> str:
    """SQL true when ``expr`` is a plain id (NULL when it is NULL)."""
    return f"(regexp_full_match({expr}, '{ID_RE2}') AND length({expr}) <= {field_limit()})"


def _query(header: Sequence[str], columns: dict[str, str], n: int) -> str:
    """One pass: per investor, the ranking's figures and the rows that are not plain; the top
    ``n`` picked in SQL, with the whole file's counts beside each of them."""

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    spec = ", ".join(f"'{name}': 'VARCHAR'" for name in header)
    investor, pool = q(columns["investor_id"]), q(columns["pool_id"])
    amount, stamp = q(columns["amount"]), q(columns["timestamp"])
    checks = [f"regexp_full_match({amount}, '{AMOUNT}')",
              f"regexp_full_match({stamp}, '{TIME}')", _plain_id_sql(pool)]
    if "id" in columns:
        checks.append(_plain_id_sql(q(columns["id"])))
    value = f"TRY_CAST({amount} AS DECIMAL(38, 6))"
    dot = f"instr({amount}, '.')"
    places = f"CASE WHEN {dot} > 0 THEN length({amount}) - {dot} ELSE 0 END"
    if "kind" in columns:
        from ..domain import KINDS

        kind = q(columns["kind"])
        checks.append(f"{kind} IN {_sql_set(KINDS)}")
        adds = f"{kind} IN {_sql_set(ADDS)}"
        figures = (
            f"COUNT(DISTINCT {pool}) FILTER (WHERE {adds}) AS pools, "
            f"SUM(CASE WHEN {adds} THEN {value} WHEN {kind} IN {_sql_set(SUBTRACTS)} "
            f"THEN -{value} END) AS total, "
            f"MAX({places}) FILTER (WHERE {kind} IN {_sql_set(COUNTED)}) AS places")
    else:  # every row is an investment
        figures = (f"COUNT(DISTINCT {pool}) AS pools, SUM({value}) AS total, "
                   f"MAX({places}) AS places")
    return f"""
        WITH investors AS (
            SELECT {investor} AS investor, {figures}, COUNT(*) AS rows,
                   COUNT(*) FILTER (WHERE NOT coalesce({" AND ".join(checks)}, false)) AS odd
            FROM read_csv($path, header = true, auto_detect = false, delim = ',', quote = '',
                          escape = '', columns = {{{spec}}})
            GROUP BY {investor}
        )
        SELECT investor, pools, total, coalesce(places, 0), SUM(rows) OVER (),
               SUM(odd) OVER () + SUM(CASE WHEN coalesce({_plain_id_sql("investor")}, false)
                                      THEN 0 ELSE 1 END) OVER ()
        FROM investors
        ORDER BY pools DESC, total DESC NULLS LAST, investor
        LIMIT {n}
    """


def _with_duckdb(file: _File, header: Sequence[str], columns: dict[str, str], n: int) -> Found:
    """DuckDB reads quotes as characters (``quote = ''``) and refuses a line with another
    number of fields or a carriage return inside it; its rows must be the file's lines. It
    reads a name with ``*``, ``?`` or ``[`` as a pattern of names: such a file goes to the
    pipeline."""
    import duckdb

    name = file.name
    if any(char in name for char in "*?["):
        raise NotVectorised("DuckDB would read the file's name as a pattern")
    lines = _LineBreaks(name)
    lines.start()
    connection = duckdb.connect(":memory:")
    try:
        # Its progress bar would write on our standard output, among the ranking.
        connection.execute("SET enable_progress_bar = false")
        found = connection.execute(_query(header, columns, n), {"path": name}).fetchall()
    except duckdb.Error as error:
        raise NotVectorised(f"DuckDB could not read the file as plain CSV: {error}") from None
    finally:
        connection.close()
        lines.join()
    rows = int(found[0][4]) if found else 0
    if lines.lines() != rows + 1:
        raise NotVectorised("the file has blank lines, or lines DuckDB did not read as rows")
    return Found([row[:4] for row in found], rows, int(found[0][5]) if found else 0)


def _with_polars(file: _File, header: Sequence[str], columns: dict[str, str], n: int) -> Found:
    """polars reads quotes as characters: a quoted field (or half of one split at a comma or a
    line break) has a quote in it and is not plain. A blank line is a row of nulls, not plain.

    One pass over the file (polars' streaming engine, on all cores) checks every row and makes
    its figures, and gives two things at once: each investor's figures (investments, which
    bound its distinct pools; total; most fraction digits of a counted amount; rows not plain),
    and the rows' investors and pools, kept for :func:`_pools_of_contenders`, which counts
    distinct pools only for the investors that can be among the first ``n``. An expression
    inside a grouping would run once per investor (on a hundred thousand investors several
    times the whole read), so every figure is made per row before the rows are grouped;
    investor ids are checked once each, on the groups."""
    import polars as pl

    limit = field_limit()

    def plain_id(column: pl.Expr) -> pl.Expr:
        # Bytes, which a string's view holds, for the limit in characters: an id under it in
        # characters but not in bytes is left to the pipeline.
        return column.str.contains(ID_RUST) & (column.str.len_bytes() <= limit)

    investor, amount, stamp, pool = (pl.col(columns[field]) for field in
                                     ("investor_id", "amount", "timestamp", "pool_id"))
    plain = (amount.str.contains(f"^(?:{AMOUNT})$") & stamp.str.contains(f"^(?:{TIME})$")
             & plain_id(pool))
    if "id" in columns:
        plain = plain & plain_id(pl.col(columns["id"]))
    value = amount.cast(pl.Decimal(38, 6), strict=False)
    # A plain amount's fraction digits: after its point, if it has one.
    places = (amount.str.len_bytes() - amount.str.find(".", literal=True) - 1).fill_null(0)
    if "kind" in columns:
        from ..domain import KINDS

        kind = pl.col(columns["kind"])
        plain = plain & kind.is_in(sorted(KINDS))
        adds = kind.is_in(sorted(ADDS))
        counted = kind.is_in(sorted(COUNTED))
        figures = [  # null where the row does not count
            pl.when(adds).then(pool).alias("pool"),
            pl.when(adds).then(value).when(kind.is_in(sorted(SUBTRACTS))).then(-value)
            .alias("value"),
            pl.when(counted).then(places).alias("places"),
        ]
    else:  # every row is an investment
        figures = [pool.alias("pool"), value.alias("value"), places.alias("places")]
    rows = (pl.scan_csv(file.contents(), infer_schema=False, quote_char=None, separator=",",
                        glob=False)
            .select(investor.alias("investor"), *figures,
                    (~plain.fill_null(False)).alias("odd")))
    try:
        pairs, investors = pl.collect_all([
            rows.select("investor", "pool"),
            # An investor's investments bound its distinct pools.
            rows.group_by("investor").agg(
                pl.col("pool").count().alias("bound"), pl.col("value").sum().alias("total"),
                pl.col("places").max().fill_null(0).alias("places"),
                pl.col("odd").sum().alias("odd"), pl.len().alias("rows")),
        ])
    except pl.exceptions.PolarsError as error:
        raise NotVectorised(f"polars could not read the file as plain CSV: {error}") from None
    height, odd = investors.select(pl.col("rows").sum(), pl.col("odd").sum()).row(0)
    if odd:
        return Found([], height, odd)
    odd = int((~plain_id(pl.col("investor")).fill_null(False)).sum()
              .pipe(investors.select).item())
    ranked = _pools_of_contenders(pl, pairs, investors, n)
    # Investor ids are distinct, so these keys order the investors fully.
    top = ranked.top_k(n, by=["pools", "total", "investor"], reverse=[False, False, True])
    return Found(top.select("investor", "pools", "total", "places").rows(), height, odd)


def _pools_of_contenders(pl: Any, pairs: Any, investors: Any, n: int) -> Any:
    """The investors that can be among the first ``n``, with their distinct pools (columns
    investor, pools, total, places).

    ``pairs`` are the file's rows (investor, pool: null where the row is not an investment)
    and ``investors`` each investor's ``bound`` (investments, at least its distinct pools),
    total and places. Pools are counted first for the investors with as many investments as
    the ``64 n``-th most, ``floor``: ``n`` of them have at least ``least`` pools, the ``n``-th
    most among them (at least one: an investor without pools is not ranked), so an investor
    with fewer than ``least`` investments, who has fewer pools than each of those ``n``, is
    left out. When ``least`` is at least ``floor`` every investor left in has been counted
    already; else those with ``least`` investments or more are counted again. Counting
    distinct pools is the costly part of the ranking (a pass over the rows each time); on
    real files few investors are left in."""

    def counted(ids: Any) -> Any:
        return (pairs.lazy()
                .filter(pl.col("investor").is_in(ids.implode()))
                .group_by("investor")
                .agg(pl.col("pool").drop_nulls().n_unique().alias("pools"))
                .collect())

    floor = investors.select(pl.col("bound").top_k(64 * n).min()).item() or 0
    first = investors.filter(pl.col("bound") >= floor)
    found = counted(first["investor"])
    pools = found["pools"].sort(descending=True)
    least = max(1, pools[n - 1]) if len(pools) >= n else 1
    if least < floor:
        first = investors.filter(pl.col("bound") >= least)
        found = counted(first["investor"])
    return first.join(found, on="investor")


ENGINES: Final[dict[str, _Engine]] = {"polars": _with_polars, "duckdb": _with_duckdb}
"""The vectorised engines, in order of preference (polars is the faster on two cores, its
import included)."""


_EXTRAS: Final = {"polars": "fast", "duckdb": "duckdb"}


_READ_AHEAD_UP_TO: Final = 1 << 26
"""Bytes: a file up to this size is read into memory for polars while polars is imported (a
larger one would still be reading when polars is ready, and cost its size in memory)."""


class _File:
    """The file an engine reads: its ``name``, and with ``read_ahead`` its bytes, read in a
    thread from the moment the ranking starts (the read frees the GIL, so it goes on while the
    engine is imported, on a core that would idle), which polars then parses in place of
    reading the file itself."""

    def __init__(self, name: str, read_ahead: bool) -> None:
        self.name = name
        self._bytes: bytes | None = None
        self._error: OSError | None = None
        self._reader: threading.Thread | None = None
        if read_ahead:
            self._reader = threading.Thread(target=self._read, name="auptimate-read-ahead")
            self._reader.start()

    def _read(self) -> None:
        try:
            with open(self.name, "rb", buffering=0) as handle:
                self._bytes = handle.read()
        except OSError as error:
            self._error = error

    def contents(self) -> bytes | str:
        """The file's bytes when read ahead, else its name."""
        if self._reader is None:
            return self.name
        self._reader.join()
        if self._error is not None:
            raise NotVectorised(f"could not read the file: {self._error}")
        assert self._bytes is not None
        return self._bytes


class Started:
    """An engine's pass over a file, under way in a thread: the file's header ``style``
    (``brief`` or ``library``) and ``n``, known at once; :meth:`found` waits for the rest."""

    def __init__(self, run: _Engine, file: _File, header: Sequence[str],
                 columns: dict[str, str], n: int, style: str) -> None:
        self.n = n
        self.style = style
        self._found: Found | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(run, file, header, columns, n),
                                        name="auptimate-ranking")
        self._thread.start()

    def _run(self, run: _Engine, file: _File, header: Sequence[str], columns: dict[str, str],
             n: int) -> None:
        try:
            self._found = run(file, header, columns, n)
        except BaseException as error:  # handed to the caller by found()
            self._error = error

    def lines(self) -> tuple[list[Line], int]:
        """The ranking's lines, in order, and the rows read (all of them valid), once the
        engine is done; :class:`NotVectorised` when a row (or an id) is not plain.

        Totals carry the exponent a Decimal sum of the same amounts would have (the most
        fraction digits among the investor's counted amounts), so they print the same as
        :func:`~auptimate_core.top_investors`'s."""
        found = self.found()
        if found.odd:
            raise NotVectorised(f"{found.odd} rows (or ids) are not plain")
        lines = [(investor, pools, total.quantize(Decimal(1).scaleb(-places), context=EXACT))
                 for investor, pools, total, places in found.top if pools and total is not None]
        lines.sort(key=lambda line: rank_key(*line))
        return lines[:self.n], found.rows

    def found(self) -> Found:
        """What the engine found; the engine's error, if it failed, raised here."""
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._found is not None
        return self._found


def start_ranking(path: str | os.PathLike[str], n: int, *, engine: str = "auto") -> Started:
    """Start ranking the CSV file at ``path`` in ``engine`` (``"polars"``, ``"duckdb"``, or
    ``"auto"``: the first of them installed). Raises at once what can be told before the file
    is read: a bad ``n`` or ``engine``, a missing engine
    (:class:`~auptimate_core.errors.MissingExtra`), and :class:`NotVectorised` for a file the
    input pipeline does not read as CSV (by its name) or whose header is not plain."""
    check_n(n)
    chosen = _engine(engine)
    name = os.fspath(path)
    header = read_header(name)
    if detect_format(name, ",".join(header)) != "csv":
        raise NotVectorised("the input pipeline reads the file as JSON Lines")
    style, columns = plain_header(header)
    file = _File(name, chosen == "polars" and os.path.getsize(name) <= _READ_AHEAD_UP_TO)
    try:
        # Imported here, in the calling thread: an engine that is not installed is told at
        # once, and the engine's thread only reads.
        importlib.import_module(chosen)
    except ImportError as error:
        raise MissingExtra(chosen, _EXTRAS[chosen]) from error
    return Started(ENGINES[chosen], file, header, columns, n, style)


def _engine(engine: str) -> str:
    if engine == "auto":
        for name in ENGINES:
            if importlib.util.find_spec(name) is not None:
                return name
        raise MissingExtra("polars or duckdb", "fast")
    if engine in ENGINES:
        return engine
    raise ValidationError(
        "engine", f"must be 'auto' or one of {sorted(ENGINES)}, not {engine!r}")
