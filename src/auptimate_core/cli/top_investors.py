"""``auptimate top-investors FILE``: the top investors of a CSV or JSON Lines file.

A plain CSV file is ranked by the vectorised path (:mod:`auptimate_core.io.fast_rank`, polars or
DuckDB); anything else (JSON Lines, standard input, a file with rows the fast path cannot judge,
or no engine installed) is streamed through the reader row by row, in constant memory, with a
progress bar on standard error. Both give the same answer and the same errors.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any, BinaryIO

import click

from ..domain import Transaction
from ..errors import MissingExtra, RowError, ValidationError
from ..io.fast_rank import ENGINES, NotVectorised, fast_top_investors
from ..ranking import InvestorRank, top_investors

FORMATS = ("table", "json", "csv")
_PROGRESS_EVERY = 10_000


class BadRow(click.ClickException):
    """A row was rejected and --skip-invalid was not given: exit status 2."""

    exit_code = 2


def render(ranks: list[InvestorRank], fmt: str) -> str:
    """The ranking as text in ``fmt`` (table, json or csv), ending with a newline.

    >>> from decimal import Decimal
    >>> print(render([InvestorRank("ann", 2, Decimal("150.50"))], "csv"), end="")
    investor_id,unique_pools,total_amount
    ann,2,150.50
    """
    rows = [rank.to_dict() for rank in ranks]
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


def _stream_rank(
    path: str, n: int, *, skip_invalid: bool, on_reject: Callable[[RowError], None],
    progress: bool,
) -> tuple[list[InvestorRank], int]:
    """Rank by reading every row into a Transaction: constant memory, any input."""
    counting, size = _open(path)
    bar = _Progress(size, progress)
    read = 0
    try:
        text = io.TextIOWrapper(io.BufferedReader(counting, 1 << 16), encoding="utf-8",
                                newline="")

        def counted() -> Iterator[Transaction]:
            nonlocal read
            for tx in _transactions(text, skip_invalid=skip_invalid, on_reject=on_reject):
                read += 1
                if read % _PROGRESS_EVERY == 0:
                    bar.update(counting.count, read)
                yield tx

        ranks = top_investors(counted(), n)
        bar.close(counting.count, read)
        return ranks, read
    finally:
        counting.close()


_BRIEF = {"syndicate_id": "pool_id", "transaction_amount": "amount",
          "transaction_date": "timestamp"}


def _transactions(
    text: IO[str], *, skip_invalid: bool, on_reject: Callable[[RowError], None]
) -> Iterator[Transaction]:
    """The file's rows as Transactions; a bad row raises RowError, or goes to ``on_reject``."""
    for line, fields, raw in _records(text):
        try:
            if isinstance(fields, RowError):
                raise fields
            yield _transaction(line, fields)
        except RowError as error:
            error.raw = raw
            if not skip_invalid:
                raise
            on_reject(error)


Record = tuple[int, dict[str, Any] | RowError, str]


def _records(text: IO[str]) -> Iterator[Record]:
    """(line number, field values by the library's names or what is wrong, raw text)."""
    first = text.readline()
    if first.lstrip().startswith("{"):
        yield from _json_records(first, text)
        return
    header = next(csv.reader([first]), [])
    names = [_BRIEF.get(name.strip(), name.strip()) for name in header]
    for required in ("investor_id", "pool_id", "amount", "timestamp"):
        if required not in names:
            raise RowError(1, required, f"the header has no {required} column "
                           "(nor its name in the brief's header)")
    reader = csv.reader(text)
    for values in reader:
        line = reader.line_num + 1
        if not values:
            continue
        if len(values) != len(names):
            wrong = RowError(line, "row", f"has {len(values)} fields, the header {len(names)}")
            yield line, wrong, ",".join(values)
            continue
        fields = dict(zip(names, values))
        fields.setdefault("id", str(line))
        yield line, fields, ",".join(values)


def _json_records(first: str, text: IO[str]) -> Iterator[Record]:
    for line, raw in enumerate(itertools.chain([first], text), start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as error:
            yield line, RowError(line, "row", f"is not JSON: {error.msg}"), raw.rstrip("\n")
            continue
        if not isinstance(fields, dict):
            yield line, RowError(line, "row", "is not a JSON object"), raw.rstrip("\n")
            continue
        for brief, name in _BRIEF.items():
            if brief in fields:
                fields.setdefault(name, fields.pop(brief))
        fields.setdefault("id", str(line))
        yield line, fields, raw.rstrip("\n")


def _transaction(line: int, fields: dict[str, Any]) -> Transaction:
    amount_text, stamp = fields.get("amount"), fields.get("timestamp")
    if amount_text is None:
        raise RowError(line, "amount", "is missing")
    try:
        amount = Decimal(str(amount_text).strip())
    except InvalidOperation:
        raise RowError(line, "amount", f"is not a number: {amount_text!r}") from None
    try:
        moment = datetime.fromisoformat(str(stamp).strip().replace("Z", "+00:00"))
    except ValueError:
        raise RowError(line, "timestamp", f"is not an ISO 8601 date or time: {stamp!r}") from None
    if moment.tzinfo is None:
        if len(str(stamp).strip()) > 10:
            raise RowError(line, "timestamp", f"has no UTC offset: {stamp!r}")
        moment = moment.replace(tzinfo=UTC)
    investor: Any = fields.get("investor_id")
    pool: Any = fields.get("pool_id")
    try:
        return Transaction(str(fields.get("id")), investor, pool, amount, moment,
                           fields.get("kind") or "investment")
    except ValidationError as error:
        raise RowError(line, error.field, error.reason) from None


def _is_csv_file(path: str) -> bool:
    if path == "-" or not os.path.isfile(path):
        return False
    with open(path, "rb") as handle:
        start = handle.read(64).lstrip()
    return not start.startswith((b"{", b"["))


@click.command("top-investors")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-n", "--top", "n", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many investors to list.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people; json (totals as strings) or csv for programs.")
@click.option("--skip-invalid", is_flag=True,
              help="Report bad rows on stderr and go on, instead of stopping at the first.")
@click.option("--rejects", type=click.Path(dir_okay=False, writable=True),
              help="With --skip-invalid: also write every rejected row (line, field, "
                   "reason, row) to this CSV file.")
@click.option("--engine", type=click.Choice(["auto", *ENGINES, "python"]), default="auto",
              show_default=True,
              help="auto: the vectorised path when the file allows it, else the streaming "
                   "reader; python: always the streaming reader.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr while streaming (default: when stderr is a terminal).")
def top_investors_command(
    file: str, n: int, fmt: str, skip_invalid: bool, rejects: str | None, engine: str,
    progress: bool | None,
) -> None:
    """Rank the investors of FILE by distinct pools, then total invested.

    FILE is CSV (the brief's header investor_id, syndicate_id, transaction_amount,
    transaction_date, or the library's id, investor_id, pool_id, amount, timestamp, kind) or
    JSON Lines; - reads standard input. Ties: more pools first, then the larger total, then the
    smaller investor id. A bad row stops the run with exit status 2 unless --skip-invalid.
    """
    if rejects and not skip_invalid:
        raise click.UsageError("--rejects needs --skip-invalid (without it the first bad row "
                               "stops the run)")
    ranks = None
    if engine != "python" and _is_csv_file(file):
        try:
            ranks = fast_top_investors(file, n, engine=engine).ranks
        except NotVectorised:
            pass  # the streaming reader decides, and explains any bad row
        except MissingExtra as error:
            if engine != "auto":
                raise click.UsageError(str(error)) from None
    if ranks is None:
        ranks = _run_streaming(file, n, skip_invalid, rejects, progress)
    click.echo(render(ranks, fmt), nl=False)


def _run_streaming(file: str, n: int, skip_invalid: bool, rejects: str | None,
                   progress: bool | None) -> list[InvestorRank]:
    rejected = 0
    writer: Any = None
    reject_file: IO[str] | None = None
    if rejects:
        reject_file = open(rejects, "w", newline="", encoding="utf-8")  # noqa: SIM115
        writer = csv.writer(reject_file)
        writer.writerow(["line", "field", "reason", "row"])

    def on_reject(error: RowError) -> None:
        nonlocal rejected
        rejected += 1
        click.echo(f"rejected {error}", err=True)
        if writer is not None:
            writer.writerow([error.line, error.field, error.reason, error.raw])

    show = sys.stderr.isatty() if progress is None else progress
    try:
        ranks, read = _stream_rank(file, n, skip_invalid=skip_invalid, on_reject=on_reject,
                                   progress=show)
    except RowError as error:
        raise BadRow(str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise click.FileError(file, str(error)) from None
    finally:
        if reject_file is not None:
            reject_file.close()
    if skip_invalid and rejected:
        click.echo(f"{rejected} rows rejected, {read} ranked", err=True)
    return ranks
