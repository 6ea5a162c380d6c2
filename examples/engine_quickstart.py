"""The alert engine in one page: rules, event time, the lifecycle, duplicates and sinks.

    python examples/engine_quickstart.py

Everything runs in memory; swap ``store=None`` for
``window_store_from_url("redis://localhost:6379/0")`` to share the windows between processes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from auptimate_core import Transaction
from auptimate_core.alerts import (
    AlertEngine,
    AmountSpikeRule,
    CollectingSink,
    LoggingSink,
    SpikeRule,
    ThresholdRule,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def tx(number: int, pool: str, amount: str, seconds: float, investor: str = "alice") -> Transaction:
    return Transaction(f"t{number}", investor, pool, Decimal(amount),
                       T0 + timedelta(seconds=seconds))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s", stream=sys.stdout)
    collected = CollectingSink()
    engine = AlertEngine(
        rules=[
            # Strictly greater than the limit; one pool has a lower limit of its own.
            ThresholdRule(limit=Decimal("250000"), per_pool={"seed-fund": Decimal("50000")}),
            # 5 or more in the last minute, and at least 10x the rate of the hour before it.
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                      factor=10, min_count=5),
            # The same formula on money: at least 1,000,000 in a minute and 10x the usual flow.
            AmountSpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1),
                            factor=10, min_total=Decimal("1000000")),
        ],
        store=None,  # a MemoryWindowStore
        sinks=[collected, LoggingSink()],
    )

    print("(the LoggingSink prints 'log:' lines; the returned alerts follow them)")
    print("One transaction at a time: process() returns the alerts it caused")
    assert engine.process(tx(1, "growth-fund", "250000", 0)) == []  # equal to the limit: no
    [alert] = engine.process(tx(2, "growth-fund", "250000.01", 30))
    print(f"  returned: {alert.rule} {alert.state} at {alert.at:%H:%M:%S} on "
          f"{alert.transaction_id}")
    [alert] = engine.process(tx(3, "seed-fund", "60000", 40))  # over the pool's own limit
    print(f"  returned: {alert.rule} {alert.state} on {alert.transaction_id} (per-pool limit)")

    print("A burst, all at once: process_many() gives what process() in order would")
    burst = [tx(10 + i, "quiet-fund", "200000", 600 + 8 * i, investor=f"inv-{i}")
             for i in range(6)]
    alerts = engine.process_many(burst)
    print(f"  returned: {[(a.rule, a.state, a.transaction_id) for a in alerts]}")

    print("The same transaction id again is counted once and raises nothing")
    assert engine.process(burst[-1]) == []
    print(f"  engine stats: {engine.stats.as_dict()}")

    print("Time passes without transactions: evaluate(now) resolves what stopped holding")
    alerts = engine.evaluate(T0 + timedelta(minutes=15))
    summary = [(a.rule, a.state, f"{a.at:%H:%M}", a.transaction_id) for a in alerts]
    print(f"  returned: {summary}")

    print("Alerts are JSON-ready for webhooks and queues")
    print("  " + json.dumps(collected.alerts[0].to_dict())[:110] + " ...")

    kinds = [(a.rule, a.state) for a in collected]
    assert kinds.count(("threshold", "firing")) == 2, kinds
    assert ("spike", "firing") in kinds and ("spike", "resolved") in kinds, kinds
    assert ("amount_spike", "firing") in kinds, kinds
    engine.close()


if __name__ == "__main__":
    main()
