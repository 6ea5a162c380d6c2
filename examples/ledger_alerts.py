"""A pool ledger feeding the alert engine: every committed investment is checked as it happens.

The ledger keeps pools, members and money in a database (SQLite here) and tells its subscribers
about each change after it is committed. One subscription connects it to an AlertEngine, so a
large investment or a sudden rush of investments into a pool raises an alert at once, and a
refused or retried request raises nothing. Every change is also in the ledger's change feed,
which any other process opening the same database reads from a cursor (the last step).

    python examples/ledger_alerts.py [--db sqlite:///pools.db]

Without ``--db`` the database is a file in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from auptimate_core import Investor, ManualClock, PermissionDenied, Pool, PoolLedger
from auptimate_core.alerts import AlertEngine, CollectingSink, SpikeRule, ThresholdRule

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a ledger URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args.db or f"sqlite:///{Path(tmp) / 'pools.db'}")


def run(url: str) -> None:
    clock = ManualClock(START)  # the ledger stamps each change with its clock's time
    ledger = PoolLedger.from_url(url, clock=clock)

    alerts = CollectingSink()
    engine = AlertEngine(
        rules=[ThresholdRule(limit=Decimal("50000")),
               SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                         factor=10, min_count=5)],
        sinks=[alerts, lambda a: print(f"  ALERT {a.rule} {a.state}: {a.message}")],
    )
    # The one line that connects them: investments go through the alert rules after commit.
    ledger.subscribe(lambda event: engine.process_many(
        tx for tx in event.transactions if tx.kind == "investment"))

    print("1. The manager opens a pool and admits eight investors")
    ledger.create_pool(Pool("seed-fund", manager_id="mgr-1", name="Seed Fund"), actor="mgr-1")
    members = [f"inv-{i}" for i in range(8)]
    for member in members:
        ledger.register_investor(Investor(member, name=member.title()))
        ledger.admit("seed-fund", member, actor="mgr-1")

    print("2. Investments through the day: ordinary ones raise nothing")
    for i, member in enumerate(members[:5]):
        clock.advance(timedelta(minutes=20))
        ledger.invest("seed-fund", member, Decimal(5000 + 1000 * i), actor=member,
                      idempotency_key=f"morning-{member}")

    print("3. A 120,000 investment: over the 50,000 limit")
    clock.advance(timedelta(minutes=30))
    ledger.invest("seed-fund", "inv-5", Decimal("120000"), actor="inv-5", idempotency_key="big-1")

    print("4. The same request retried (same idempotency key): nothing new, no second alert")
    ledger.invest("seed-fund", "inv-5", Decimal("120000"), actor="inv-5", idempotency_key="big-1")

    print("5. An investor tries to pay out the pool: refused, nothing written")
    try:
        ledger.distribute("seed-fund", Decimal("1000"), actor="inv-0", idempotency_key="nope")
    except PermissionDenied as error:
        print(f"  refused: {error}")

    print("6. Six investments within a minute: a rush into the pool")
    clock.advance(timedelta(hours=2))
    for i, member in enumerate(members[:6]):
        clock.advance(timedelta(seconds=8))
        ledger.invest("seed-fund", member, Decimal("2000"), actor=member,
                      idempotency_key=f"rush-{i}")

    print("7. Ten minutes later the manager distributes 23,000 pro rata")
    clock.advance(timedelta(minutes=10))
    ledger.distribute("seed-fund", Decimal("23000"), actor="mgr-1", idempotency_key="dist-1")
    engine.evaluate(clock.now())  # time passed with no investment: the rush is over

    print("\nPositions of seed-fund:")
    print(f"  {'investor':<9} {'invested':>11} {'distributed':>12} {'share':>8}")
    for position in ledger.positions("seed-fund"):
        print(f"  {position.investor_id:<9} {position.invested:>11,} "
              f"{position.distributed:>12,} {float(position.share):>8.2%}")
    entries = ledger.verify()
    print(f"\nAudit chain verified: {entries} entries. Alerts: "
          f"{[(a.rule, a.state) for a in alerts]}")

    print("\n8. Another process opening the same database reads the change feed")
    elsewhere = PoolLedger.from_url(url)  # as a second server would
    changes = elsewhere.changes(limit=10_000)
    big = next(c for c in changes if c.event.transactions
               and c.event.transactions[0].amount == Decimal("120000"))
    print(f"  {len(changes)} changes; the 120,000 investment as JSON, what a browser receives:")
    print(f"  {json.dumps(big.to_dict())[:160]}...")
    newer = elsewhere.changes(after=big.cursor)
    print(f"  after its cursor: {len(newer)} changes, the last a "
          f"{type(newer[-1].event).__name__}")

    assert [(a.rule, a.state) for a in alerts] == [
        ("threshold", "firing"), ("spike", "firing"), ("spike", "resolved")]
    positions = ledger.positions("seed-fund")
    assert sum(p.distributed for p in positions) == Decimal("23000")
    assert sum(p.invested for p in positions) == Decimal("167000")
    assert len(changes) == 1 + 8 * 2 + 5 + 1 + 6 + 1
    elsewhere.close()
    ledger.close()


if __name__ == "__main__":
    main()
