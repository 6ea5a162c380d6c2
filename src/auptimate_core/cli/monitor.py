"""`auptimate monitor FILE`: replay a file of transactions through the alert engine."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import tzinfo

import click

from ..alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from ..domain import Transaction
from ..errors import AuptimateError
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

TABLE = "{at:<32} {rule:<10} {state:<9} {pool:<14} {tx:<10} {observed:>14} {limit:>14}  {message}"


def open_store(url: str) -> WindowStore:
    """The window store a ``--store`` value names: ``memory`` or a Redis URL."""
    from ..backends.registry import window_store_from_url

    try:
        return window_store_from_url("memory://" if url == "memory" else url)
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


def _with_progress(txs: Iterator[Transaction], show: bool, every: int = 50_000
                   ) -> Iterator[Transaction]:
    count = 0
    for count, tx in enumerate(txs, start=1):
        if show and count % every == 0:
            click.echo(f"\r{count:,} transactions read", err=True, nl=False)
        yield tx
    if show and count >= every:
        click.echo(f"\r{count:,} transactions read", err=True)


@click.command("monitor")
@observability_options
@click.argument("file", type=str)
@rule_options
@click.option("--store", "store_url", default="memory", show_default=True,
              help="Where the windows live: memory, or redis://host:port/db.")
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

    store = open_store(store_url)
    engine = AlertEngine(rules, store=store, sinks=[printer], on_late=on_late,
                         on_future=on_future)
    kept: list[Transaction] = []
    with Input(file, skip_invalid=skip_invalid, rejects=rejects, assume_tz=assume_tz) as source:
        txs = _with_progress(source.transactions(), progress_wanted(progress))
        if plot:
            txs = _keep(txs, kept)
        try:
            alerts = engine.process_many(txs)
        except AuptimateError as error:
            if isinstance(error, BadInput):
                raise
            raise BadInput(str(error)) from None
        finally:
            engine.close()
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


def _keep(txs: Iterator[Transaction], kept: list[Transaction]) -> Iterator[Transaction]:
    for tx in txs:
        kept.append(tx)
        yield tx
