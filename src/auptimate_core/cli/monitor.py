"""`auptimate monitor FILE`: replay a file of transactions through the alert engine.

The file is read by the vectorised reader (:func:`auptimate_core.io.vectorised.column_batches`:
the input pipeline's rows and errors, a CSV file's plain parts read by polars) and fed to the
engine a block at a time: a block of plain rows in UTC as columns
(:meth:`~auptimate_core.alerts.AlertEngine.process_columns`, no Transaction per row), any other
batch as Transactions (``process_many``). By default the windows of a large file live in the
columnar store, the fastest for a whole file at once.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import tzinfo

import click

from ..alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from ..columns import TransactionColumns
from ..domain import Transaction
from ..errors import AuptimateError
from ..io.plain import VECTORISE_FROM
from ..store import WindowStore
from ._common import (
    BadInput,
    Input,
    input_options,
    observability_options,
    progress_wanted,
    rule_options,
)

logger = logging.getLogger("auptimate_core.cli")

# A large file's blocks of columns are decided in batches of this many rows on the store of
# this process: fewer numpy rounds than the engine's default, while a batch's arrays stay in
# the processor's caches.
WHOLE_FILE_BATCH = 50_000

TABLE = "{at:<32} {rule:<10} {state:<9} {pool:<14} {tx:<10} {observed:>14} {limit:>14}  {message}"


def open_store(url: str, whole_file: bool = False) -> WindowStore:
    """The window store a ``--store`` value names: ``memory`` or a store URL. ``memory`` is the
    memory store, or with ``whole_file`` (a large file replayed in blocks) the columnar store
    when numpy is installed: the fastest for batches of thousands, and slower than the memory
    store for a few transactions at a time."""
    if url == "memory":
        # Built here rather than through the URL registry, whose import costs a whole-file
        # replay more than its windows' set-up.
        if whole_file and importlib.util.find_spec("numpy") is not None:
            from ..backends.columnar import ColumnarWindowStore

            return ColumnarWindowStore()
        from ..backends.memory import MemoryWindowStore

        return MemoryWindowStore()
    from ..backends.registry import window_store_from_url

    try:
        return window_store_from_url(url)
    except (AuptimateError, ValueError, ImportError) as error:
        raise click.UsageError(f"--store {url}: {error}") from None


class Printer:
    """A sink that prints each alert as it is raised, as a table row or a JSON line."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.count: Counter[tuple[str, str]] = Counter()
        self._header = False

    def __call__(self, alert: Alert) -> None:
        try:
            self._print(alert)
        except BrokenPipeError:
            # The reader has gone (`auptimate monitor ... | head`): stop quietly, as cat does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(0) from None

    def _print(self, alert: Alert) -> None:
        self.count[(alert.rule, alert.state)] += 1
        if self.fmt == "jsonl":
            click.echo(json.dumps(alert.to_dict()))
            return
        if not self._header:
            click.echo(TABLE.format(at="at", rule="rule", state="state", pool="pool",
                                    tx="transaction", observed="observed", limit="limit",
                                    message="message"))
            self._header = True
        click.echo(TABLE.format(
            at=alert.at.isoformat(), rule=alert.rule, state=alert.state, pool=alert.pool_id,
            tx=alert.transaction_id or "-", observed=str(alert.observed), limit=str(alert.limit),
            message=alert.message,
        ))


_PROGRESS_EVERY = 50_000


def _large_file(path: str) -> bool:
    return path != "-" and os.path.isfile(path) and os.path.getsize(path) >= VECTORISE_FROM


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the garbage collector less often while a file is replayed. Each batch makes
    thousands of Transactions that live until the batch is decided; collecting after every 700
    allocations, the default, makes a replay about a third slower, and a replay makes no
    cycles worth collecting early."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(200_000, before[1], 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@click.command("monitor")
@observability_options
@click.argument("file", type=str)
@rule_options
@click.option("--store", "store_url", default="memory", show_default=True,
              help="Where the windows live: memory (in this process: the columnar store for a "
                   "file of 1 MiB or more), or a store URL (redis://host:port/db, memory://, "
                   "memory+columnar://).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table",
              show_default=True, help="jsonl: one alert.to_dict() per line.")
@input_options
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Draw transactions per minute of the alerting pools to this PNG.")
@click.option("--progress/--no-progress", default=None,
              help="Progress on stderr (default: when stderr is a terminal).")
def monitor_command(
    file: str, rules: list[ThresholdRule | SpikeRule], store_url: str, fmt: str, skip_invalid: bool,
    rejects: str | None, assume_tz: tzinfo | None, plot: str | None, progress: bool | None,
) -> None:
    """Replay FILE (CSV or JSON Lines, - for stdin) through the alert engine on event time.

    Prints every alert as it is raised: a transaction over --threshold, and a pool whose
    transactions in the last --spike-window reach --min-count and --spike-factor times the
    rate of the --baseline before (firing once, then resolved once).
    """
    printer = Printer(fmt)
    late: list[Transaction] = []
    future: list[Transaction] = []

    def on_late(tx: Transaction) -> None:
        late.append(tx)
        click.echo(f"late: {tx.id} at {tx.timestamp.isoformat()} is older than the allowed "
                   "lateness; kept out of the windows, its threshold checked", err=True)

    def on_future(tx: Transaction) -> None:
        future.append(tx)
        click.echo(f"future: {tx.id} at {tx.timestamp.isoformat()} is ahead of the clock; "
                   "kept out of the windows, its threshold checked", err=True)

    whole_file = _large_file(file)
    store = open_store(store_url, whole_file=whole_file)
    engine = AlertEngine(rules, store=store, sinks=[printer], on_late=on_late,
                         on_future=on_future,
                         batch_size=WHOLE_FILE_BATCH if whole_file and store_url == "memory"
                         else 10_000)
    kept: list[Transaction] = []
    alerts: list[Alert] = []
    show = progress_wanted(progress)
    with Input(file, skip_invalid=skip_invalid, rejects=rejects, assume_tz=assume_tz) as source:
        shown = 0
        try:
            with _fewer_collections():
                for batch in source.column_batches():
                    if isinstance(batch, TransactionColumns):
                        if plot:
                            kept.extend(map(batch.transaction, range(len(batch))))
                        alerts.extend(engine.process_columns(batch))
                    else:
                        if plot:
                            kept.extend(batch)
                        alerts.extend(engine.process_many(batch))
                    if show and source.read // _PROGRESS_EVERY > shown:
                        shown = source.read // _PROGRESS_EVERY
                        click.echo(f"\r{source.read:,} transactions read", err=True, nl=False)
        except AuptimateError as error:
            raise BadInput(str(error)) from None
        finally:
            engine.close()
        if show and source.read >= _PROGRESS_EVERY:
            click.echo(f"\r{source.read:,} transactions read", err=True)
        source.summary()
    counts = ", ".join(f"{n} {rule} {state}" for (rule, state), n in sorted(printer.count.items()))
    click.echo(f"{source.read:,} transactions, {len(alerts)} alerts"
               f"{' (' + counts + ')' if counts else ''}"
               f"{f', {len(late)} late' if late else ''}"
               f"{f', {len(future)} ahead of the clock' if future else ''}"
               f"{f', {engine.stats.duplicates} duplicates' if engine.stats.duplicates else ''}",
               err=True)
    logger.info("monitor finished", extra={
        "transactions": source.read, "alerts": len(alerts), "late": len(late),
        "future": len(future), "duplicates": engine.stats.duplicates,
        "rejected": source.rejected, "store": type(store).__name__})
    if plot:
        from ..plotting import plot_alerts

        try:
            plot_alerts(kept, alerts, plot)
        except ImportError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"plot written to {plot}", err=True)
    sys.stdout.flush()
