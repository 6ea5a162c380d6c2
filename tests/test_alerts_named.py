"""A rule's own name reaches its alerts (``name``), beside its kind (``rule``), for spike and
amount spike rules alike, per event and in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, AmountSpikeRule, SpikeRule

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("batches", [False, True])
def test_named_window_rules_name_their_alerts(batches: bool) -> None:
    rules = [SpikeRule(min_count=2, name="burst"),
             AmountSpikeRule(min_total=Decimal(10), name="flood")]
    txs = [Transaction(f"t{i}", "inv", "p", Decimal(100), T0 + timedelta(seconds=i))
           for i in range(3)]
    engine = AlertEngine(rules)
    alerts = (engine.process_many(txs) if batches
              else [alert for tx in txs for alert in engine.process(tx)])
    assert {(a.rule, a.name) for a in alerts} == {("spike", "burst"), ("amount_spike", "flood")}
