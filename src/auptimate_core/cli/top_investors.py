"""``auptimate top-investors FILE``: the top investors of a CSV or JSON Lines file.

A CSV file of at least :data:`~auptimate_core.io.plain.VECTORISE_FROM` bytes (a smaller one
is read before a vectorised engine would be imported) is first offered to the vectorised ranking
(:mod:`auptimate_core.ranking.vectorised`, polars or DuckDB), which answers only when every row
is one it can show the input pipeline reads the same way; anything else (JSON Lines, standard
input, a file with a row it cannot judge, or no engine installed) is read through the input
pipeline row by row, in constant memory, with a progress bar on standard error. Both give the
same answer and the same errors. The vectorised path imports nothing of the ranking's other
forms, of the input pipeline or of attrs.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ..errors import MissingExtra
from ..io.plain import VECTORISE_FROM, NotVectorised
from ..ranking.engines import ENGINES, Line, start_ranking
from ..ranking.order import line_dict
from ._common import Input, input_options
from .lazy import collector_paused

if TYPE_CHECKING:
    from ..domain import Transaction

# The ranking's other forms and the input pipeline are imported where they are used: the
# vectorised path needs none of them, nor attrs.

FORMATS = ("table", "json", "csv")
_PROGRESS_EVERY = 10_000


def render(ranking: list[Line], fmt: str) -> str:
    """The ranking's lines (investor id, distinct pools, total) as text in ``fmt`` (table, json
    or csv), ending with a newline; in JSON as :meth:`~auptimate_core.InvestorRank.to_dict`
    gives them.

    >>> from decimal import Decimal
    >>> print(render([("ann", 2, Decimal("150.50"))], "csv"), end="")
    investor_id,unique_pools,total_amount
    ann,2,150.50
    """
    import csv
    import json

    rows = [line_dict(*line) for line in ranking]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["investor_id", "unique_pools", "total_amount"])
        writer.writerows([row["investor_id"], row["unique_pools"], row["total_amount"]]
                         for row in rows)
        return out.getvalue()
    header = ["rank", "investor_id", "unique_pools", "total_amount"]
    cells = [[str(i), str(row["investor_id"]), str(row["unique_pools"]), str(row["total_amount"])]
             for i, row in enumerate(rows, start=1)]
    widths = [max(len(line[col]) for line in [header, *cells]) for col in range(4)]
    lines = []
    for line in [header, *cells]:
        lines.append("  ".join([line[0].rjust(widths[0]), line[1].ljust(widths[1]),
                                line[2].rjust(widths[2]), line[3].rjust(widths[3])]).rstrip())
    if not cells:
        lines.append("(no transactions)")
    return "\n".join(lines) + "\n"


class _Counting(io.RawIOBase):
    """A binary file that counts the bytes read through it, for the progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Progress:
    """Progress on stderr, by bytes of the file read: one rewritten line on a terminal, a line
    a second otherwise (when asked for with --progress). Silent when not wanted."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.total = total or 0
        self.enabled = enabled and self.total > 0
        self.tty = sys.stderr.isatty()
        self._every = 0.2 if self.tty else 1.0
        self._next = time.monotonic() + self._every

    def _show(self, position: int, rows: int, end: str) -> None:
        percent = min(100, position * 100 // self.total)
        line = f"ranking {percent:3d}%  {rows:,} rows"
        click.echo(("\r" + line if self.tty else line) + end, err=True, nl=False)

    def update(self, position: int, rows: int) -> None:
        if self.enabled and time.monotonic() >= self._next:
            self._next = time.monotonic() + self._every
            self._show(position, rows, "" if self.tty else "\n")

    def close(self, position: int, rows: int) -> None:
        if self.enabled:
            self._show(position, rows, "\n")


def _open(path: str) -> tuple[_Counting, int | None]:
    if path == "-":
        return _Counting(sys.stdin.buffer), None
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    return _Counting(raw), os.fstat(raw.fileno()).st_size


def _stream_rank(source: Input, n: int, progress: bool) -> list[Line]:
    """Rank by reading every row through the input pipeline: constant memory, any input."""
    from ..ranking import top_investors

    counting, size = _open(source.path)
    bar = _Progress(size, progress)
    try:
        def counted() -> Iterator[Transaction]:
            for tx in source.transactions(io.BufferedReader(counting, 1 << 16)):
                if source.read % _PROGRESS_EVERY == 0:
                    bar.update(counting.count, source.read)
                yield tx

        ranks = top_investors(counted(), n)
        bar.close(counting.count, source.read)
        return [(rank.investor_id, rank.unique_pools, rank.total_amount) for rank in ranks]
    finally:
        counting.close()


def _vectorisable(path: str, engine: str) -> bool:
    """Whether to offer the file to the vectorised ranking, which also tells a file the input
    pipeline reads as JSON Lines, by its name or its first line, and hands it back."""
    if path == "-" or not os.path.isfile(path):
        return False
    return engine != "auto" or os.path.getsize(path) >= VECTORISE_FROM


@click.command("top-investors")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-n", "--top", "n", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many investors to list.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people; json (totals as strings) or csv for programs.")
@input_options
@click.option("--engine", type=click.Choice(["auto", *ENGINES, "python"]), default="auto",
              show_default=True,
              help="auto: the vectorised path when the file allows it, else the input "
                   "pipeline row by row; python: always row by row.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr while reading row by row (default: when stderr is "
                   "a terminal).")
def top_investors_command(
    file: str, n: int, fmt: str, skip_invalid: bool, rejects: str | None,
    assume_tz: tzinfo | None, engine: str, progress: bool | None,
) -> None:
    """Rank the investors of FILE by distinct pools invested in, then total invested
    (investments less refunds; fees, distributions and carry are not investments).

    FILE is CSV (the syndicate-style header investor_id, syndicate_id, transaction_amount,
    transaction_date, or the library's id, investor_id, pool_id, amount, timestamp, kind) or
    JSON Lines; - reads standard input. Ties: more pools first, then the larger total, then the
    smaller investor id. A bad row stops the run with exit status 2 unless --skip-invalid.
    """
    with Input(file, skip_invalid=skip_invalid, rejects=rejects, assume_tz=assume_tz) as source:
        lines = None
        if engine != "python" and _vectorisable(file, engine):
            try:
                with collector_paused():
                    lines, source.read = start_ranking(file, n, engine=engine).lines()
            except NotVectorised:
                pass  # the input pipeline decides, and explains any bad row
            except MissingExtra as error:
                if engine != "auto":
                    raise click.UsageError(str(error)) from None
        if lines is None:
            show = sys.stderr.isatty() if progress is None else progress
            lines = _stream_rank(source, n, show)
        source.summary("ranked")
    click.echo(render(lines, fmt), nl=False)
