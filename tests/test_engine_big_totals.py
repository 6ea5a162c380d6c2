"""An amount spike rule's products of totals and its factors can pass int64: a batch whose
pools are picked on numpy columns must then pick them in Python ints, with the answers of one
call per transaction (a spike missed where a product wraps, none raised where one would)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, AmountSpikeRule
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATE = T0 + timedelta(minutes=61)


def _quiet() -> list[Transaction]:
    """70 quiet pools: a batch long enough for numpy."""
    return [Transaction(f"q{i}", "inv", f"quiet-{i}", Decimal(1), LATE + timedelta(seconds=i))
            for i in range(70)]


def _big_baseline() -> list[Transaction]:
    """Pool "big": 1,600,000 in the baseline hour, then 120,000 in the last minute: 120,000
    against an expected 1,600,000 / 60 * 10 = 266,667 does not hold; the baseline's product
    (1.6e10 units times the window's 6e8) is past int64."""
    txs = [Transaction(f"b{i}", "inv", "big", Decimal(100_000), T0 + timedelta(minutes=2 + 3 * i))
           for i in range(16)]
    return [*txs, *_quiet(),
            Transaction("r", "inv", "big", Decimal(120_000), LATE + timedelta(seconds=70))]


def _big_recent() -> list[Transaction]:
    """Pool "huge": one transaction of 300,000 on an empty baseline: a spike, whose recent
    product (3e9 units times the hour's 3.6e9) is past int64."""
    return [*_quiet(),
            Transaction("h", "inv", "huge", Decimal(300_000), LATE + timedelta(seconds=71))]


def _keys(engine: AlertEngine, txs: list[Transaction], batches: bool) -> list[str]:
    if batches:
        return [alert.key for alert in engine.process_many(txs)]
    return [alert.key for tx in txs for alert in engine.process(tx)]


@pytest.mark.parametrize("store", [MemoryWindowStore, ColumnarWindowStore])
def test_a_baseline_past_int64_in_products_raises_no_spike(store: type) -> None:
    txs = _big_baseline()
    each = _keys(AlertEngine([AmountSpikeRule(min_total=Decimal(100_000))]), txs, False)
    assert not any(key.endswith("|r") for key in each)  # 120,000 < 266,667
    batched = AlertEngine([AmountSpikeRule(min_total=Decimal(100_000))], store=store())
    assert _keys(batched, txs, True) == each


@pytest.mark.parametrize("store", [MemoryWindowStore, ColumnarWindowStore])
def test_a_recent_total_past_int64_in_products_is_a_spike(store: type) -> None:
    txs = _big_recent()
    each = _keys(AlertEngine([AmountSpikeRule(min_total=Decimal(100_000))]), txs, False)
    assert each == ["amount_spike|firing|huge|h"]
    batched = AlertEngine([AmountSpikeRule(min_total=Decimal(100_000))], store=store())
    assert _keys(batched, txs, True) == each
