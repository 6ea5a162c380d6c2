"""``AlertEngine.process_columns`` decides as ``process_many`` does, on every in-process store;
``TransactionColumns`` holds rows as given."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import ManualClock, Transaction
from auptimate_core.alerts import AlertEngine, AmountSpikeRule, SpikeRule, ThresholdRule
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.columns import TransactionColumns
from auptimate_core.domain import to_micros
from auptimate_core.errors import LateEvent, ValidationError
from auptimate_core.store import WindowStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STORES: dict[str, Callable[[], WindowStore]] = {
    "exact": lambda: MemoryWindowStore(),
    "ring": lambda: MemoryWindowStore(window="ring", bucket_width=timedelta(seconds=30)),
    "columnar": lambda: ColumnarWindowStore(),
}


def stream(seed: int, n: int = 600) -> list[Transaction]:
    """Bursts and quiet spells over a few pools, with late, duplicate and future rows, some
    over the threshold."""
    rng = random.Random(seed)
    txs: list[Transaction] = []
    at = T0
    for i in range(n):
        at += timedelta(seconds=rng.choice([0, 0, 1, 3, 20, 90, 600]))
        moment = at
        roll = rng.random()
        if roll < 0.05 and txs:
            txs.append(rng.choice(txs))  # a duplicate, original time
            continue
        if roll < 0.08 and txs:
            old = rng.choice(txs)  # a duplicate id with a new time
            txs.append(Transaction(old.id, old.investor_id, old.pool_id, old.amount, at))
            continue
        if roll < 0.14:
            moment = at - timedelta(minutes=rng.choice([1, 4, 6, 30]))  # late or nearly
        elif roll < 0.17:
            moment = at + timedelta(hours=2)  # ahead of the clock
        amount = Decimal(rng.choice(["10", "99.99", "250000", "250000.01", "400000"]))
        txs.append(Transaction(f"t{i}", f"i{rng.randrange(5)}", f"p{rng.randrange(4)}",
                               amount, moment))
    return txs


def engine(store: str, rules: list[ThresholdRule | SpikeRule | AmountSpikeRule],
           batch_size: int, clock: ManualClock) -> AlertEngine:
    return AlertEngine(rules, store=STORES[store](), batch_size=batch_size, clock=clock)


def all_rules() -> list[ThresholdRule | SpikeRule | AmountSpikeRule]:
    return [
        ThresholdRule(limit=Decimal("250000"), per_pool={"p3": Decimal("50")}),
        SpikeRule(window=timedelta(minutes=1), baseline=timedelta(minutes=10), factor=3,
                  min_count=3),
        AmountSpikeRule(window=timedelta(minutes=1), baseline=timedelta(minutes=10), factor=3,
                        min_total=Decimal("300000"), cooldown=timedelta(minutes=2)),
    ]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("seed", range(6))
def test_process_columns_is_process_many(store: str, seed: int) -> None:
    txs = stream(seed)
    batch_size = random.Random(seed).choice([1, 7, 64, 10_000])
    clock = ManualClock(txs[len(txs) // 2].timestamp)
    late: list[Transaction] = []
    future: list[Transaction] = []
    many = engine(store, all_rules(), batch_size, clock)
    cols = AlertEngine(all_rules(), store=STORES[store](), batch_size=batch_size, clock=clock,
                       on_late=late.append, on_future=future.append)
    expected = many.process_many(txs)
    got = cols.process_columns(TransactionColumns.from_transactions(txs))
    assert got == expected
    assert [a.to_dict() | {"at": None} for a in got] == [
        a.to_dict() | {"at": None} for a in expected]
    assert cols.stats.as_dict() == many.stats.as_dict()
    assert cols.stats.late + cols.stats.future > 0 and cols.stats.duplicates > 0
    assert [tx.id for tx in late] and len(late) == cols.stats.late
    assert len(future) == cols.stats.future
    # Later calls go on from the same state.
    more = stream(seed + 100, 100)
    assert cols.process_columns(TransactionColumns.from_transactions(more)) == (
        many.process_many(more))


def test_columns_raise_late_like_process_many() -> None:
    clock = ManualClock(T0 + timedelta(days=1))
    rows = [Transaction("a", "i", "p", Decimal("300000"), T0),
            Transaction("b", "i", "p", Decimal("300001"), T0 - timedelta(hours=1))]
    cols = AlertEngine([ThresholdRule(limit=Decimal("250000"))], clock=clock, on_late="raise")
    with pytest.raises(LateEvent) as raised:
        cols.process_columns(TransactionColumns.from_transactions(rows))
    assert [tx.id for tx in raised.value.late] == ["b"]
    assert [a.transaction_id for a in raised.value.alerts] == ["a", "b"]


def test_columns_of_transactions_round_trip() -> None:
    txs = [Transaction("a", "i", "p", Decimal("1.50"), T0),
           Transaction("b", "j", "q", Decimal("2"), T0 + timedelta(microseconds=1), "fee")]
    cols = TransactionColumns.from_transactions(txs)
    assert len(cols) == 2
    assert cols.times == (to_micros(T0), to_micros(T0) + 1)
    assert [cols.transaction(i) for i in range(2)] == txs
    assert TransactionColumns.from_transactions(txs[:1]).kinds is None


def test_columns_check_lengths_only() -> None:
    with pytest.raises(ValidationError, match="amounts"):
        TransactionColumns(ids=["a", "b"], investors=["i", "i"], pools=["p", "p"],
                           amounts=[Decimal(1)], times=[1, 2])
    empty = TransactionColumns((), (), (), (), ())
    assert len(empty) == 0
    assert AlertEngine([ThresholdRule(limit=Decimal(1))]).process_columns(empty) == []
