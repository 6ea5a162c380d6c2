"""`auptimate demo`: the whole story on embedded defaults, no server needed."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import click

from ..alerts import Alert, AlertEngine, CollectingSink, SpikeRule, ThresholdRule
from ..clock import ManualClock
from ..generate import SyntheticStream
from ..ranking import top_investors
from .monitor import open_store

LIMIT = Decimal("250000")


def _title(text: str) -> None:
    click.echo()
    click.secho(text, bold=True)
    click.echo("-" * len(text))


def _alerts_section(stream: SyntheticStream, alerts: list[Alert]) -> None:
    _title("2. Real-time alerts, decided on each transaction as it arrives")
    counts = Counter((a.rule, a.state) for a in alerts)
    summary = ", ".join(f"{n} {rule} {state}" for (rule, state), n in sorted(counts.items()))
    click.echo(f"   {summary}")
    firing = [a for a in alerts if a.state == "firing"]
    for alert in firing[:6]:
        click.echo(f"   {alert.at:%Y-%m-%d %H:%M:%S}  {alert.rule:<9}  {alert.message}")
    if len(firing) > 6:
        click.echo(f"   ... and {len(firing) - 6} more")
    raised = {a.transaction_id for a in firing}
    found = 0
    for anomaly in stream.anomalies:
        if raised.intersection(anomaly.transaction_ids):
            found += 1
    extra = [
        a for a in firing
        if not any(a.transaction_id in an.transaction_ids for an in stream.anomalies)
    ]
    mark = "every" if found == len(stream.anomalies) else "NOT every"
    click.echo(f"   {found} of {len(stream.anomalies)} injected anomalies found ({mark} one), "
               f"{len(extra)} alerts on ordinary traffic")


def _ranking_section(stream: SyntheticStream) -> None:
    _title("3. Top 5 investors by distinct pools, then total invested")
    ranks = top_investors(stream.transactions(), n=5)
    click.echo(f"   {'investor':<12} {'pools':>6} {'total':>16}")
    for rank in ranks:
        click.echo(f"   {rank.investor_id:<12} {rank.unique_pools:>6} {rank.total_amount:>16,}")


def _ledger_section(stream: SyntheticStream, db: str | None) -> None:
    _title("4. An investment pool: funding, an exit with carry, live positions, an alert")
    from .. import Distributed, PoolLedger

    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    ledger = PoolLedger.from_url(db, clock=clock) if db else PoolLedger(clock=clock)
    pool = stream.pools()[0]
    manager = pool.manager_id
    investors = stream.investors()[:10]
    sink = CollectingSink()
    engine = AlertEngine([SpikeRule()], sinks=[sink])
    events: list[Any] = []
    ledger.subscribe(events.append)
    # The alert engine watches the ledger's own investments, as they are committed.
    ledger.subscribe(lambda event: engine.process_many(
        tx for tx in event.transactions if tx.kind == "investment"))
    ledger.create_pool(pool, actor=manager)
    for investor in investors:
        ledger.register_investor(investor)
        ledger.admit(pool.id, investor.id, actor=manager)
    for investor in investors:
        clock.advance(timedelta(seconds=5))
        ledger.invest(pool.id, investor.id, Decimal("10000"), actor=investor.id,
                      idempotency_key=f"demo-invest-{investor.id}")
    clock.advance(timedelta(days=1))
    ledger.charge_fee(pool.id, Decimal("8000"), actor=manager, idempotency_key="demo-setup-fee")
    clock.advance(timedelta(days=700))
    exit_args: dict[str, Any] = {"actor": manager, "idempotency_key": "demo-exit",
                                 "carry": Decimal("0.20")}
    paid = ledger.distribute(pool.id, Decimal("500000"), **exit_args)
    again = ledger.distribute(pool.id, Decimal("500000"), **exit_args)
    carry = sum((tx.amount for tx in paid if tx.kind == "carry"), Decimal(0))
    click.echo(f"   pool {pool.id} (manager {manager}): {len(investors)} investors put in "
               "10,000 each; a setup fee of 8,000 charged pro rata;")
    click.echo(f"   an exit of 500,000 with 20% carry: capital back first, then {carry:,} "
               "of carry to the manager")
    click.echo(f"   (the retried exit wrote nothing and returned the same "
               f"{len(again)} transactions: {again == paid})")
    click.echo(f"   {'investor':<12} {'invested':>10} {'fees':>8} {'distributed':>12} "
               f"{'share':>7}")
    for position in ledger.positions(pool.id):
        click.echo(f"   {position.investor_id:<12} {position.invested:>10,} "
                   f"{position.fees:>8,} {position.distributed:>12,} "
                   f"{position.share:>7.1%}")
    for alert in sink.alerts:
        click.echo(f"   alert from the ledger's own transactions: {alert.message}")
    if not events:
        click.echo("   (all of it was already in the database: every request was answered "
                   "from the record, nothing written twice)")
    exits = sum(1 for event in events if isinstance(event, Distributed))
    click.echo(f"   {len(events)} changes pushed to subscribers ({exits} exit), each with the "
               f"positions it touched and the pool's totals; audit chain verified over "
               f"{ledger.verify()} entries")
    ledger.close()


@click.command("demo")
@click.option("--transactions", "-n", type=click.IntRange(min=5_000), default=50_000,
              show_default=True, help="Size of the generated stream.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--store", "store_url", default="memory", show_default=True,
              help="Window store for the alerts: memory, or redis://host:port/db.")
@click.option("--db", default=None, help="Ledger database URL (default: in memory), "
              "e.g. sqlite:///pools.db or postgresql+psycopg://...")
def demo_command(transactions: int, seed: int, store_url: str, db: str | None) -> None:
    """Generate a stream, raise alerts, rank investors and run a pool, with no server.

    Everything runs in this process on embedded defaults; --store and --db run the same story
    on a real Redis and a real database.
    """
    started = time.perf_counter()
    _title("1. A synthetic stream of investments, with anomalies injected")
    stream = SyntheticStream(transactions, seed=seed, anomalies=True)
    bursts = sum(1 for a in stream.anomalies if a.kind == "burst")
    click.echo(f"   {transactions:,} transactions by {len(stream.investor_ids):,} investors in "
               f"{len(stream.pool_ids):,} pools over {stream.span.days} days; injected: "
               f"{len(stream.anomalies) - bursts} transactions over {LIMIT:,} and {bursts} bursts")
    engine = AlertEngine(
        [ThresholdRule(limit=LIMIT), SpikeRule()], store=open_store(store_url),
    )
    try:
        alerts = engine.process_many(stream.transactions())
    finally:
        engine.close()
    _alerts_section(stream, alerts)
    _ranking_section(stream)
    _ledger_section(stream, db)
    click.echo(f"\nDone in {time.perf_counter() - started:.1f} s. Next: auptimate --help, "
               "docs/, examples/.")
