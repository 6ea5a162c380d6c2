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
from auptimate_core.columns import AmountColumn, CodedText, IntColumn, TransactionColumns
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


def coded(txs: list[Transaction], seed: int = 0) -> TransactionColumns:
    """The columns of ``txs`` in the array forms: pools as codes into a shuffled table of
    names (with names no row uses), amounts with their millionths, times as an int64
    array."""
    np = pytest.importorskip("numpy")
    plain = TransactionColumns.from_transactions(txs)
    names = [*sorted(set(plain.pools)), "unused", "p-none"]
    random.Random(seed).shuffle(names)
    place = {name: i for i, name in enumerate(names)}
    return TransactionColumns.from_arrays(
        ids=plain.ids, investors=plain.investors,
        pool_codes=np.array([place[p] for p in plain.pools], np.int32), pool_names=names,
        amounts=AmountColumn([str(a) for a in plain.amounts],
                             np.array([int(a.scaleb(6)) for a in plain.amounts], np.int64)),
        times=np.array(plain.times, np.int64), kinds=plain.kinds)


FORMS: dict[str, Callable[[list[Transaction], int], TransactionColumns]] = {
    "plain": lambda txs, seed: TransactionColumns.from_transactions(txs),
    "arrays": coded,
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("seed", range(6))
def test_process_columns_is_process_many(store: str, seed: int, form: str) -> None:
    txs = stream(seed)
    batch_size = random.Random(seed).choice([1, 7, 64, 10_000])
    clock = ManualClock(txs[len(txs) // 2].timestamp)
    late: list[Transaction] = []
    future: list[Transaction] = []
    many = engine(store, all_rules(), batch_size, clock)
    cols = AlertEngine(all_rules(), store=STORES[store](), batch_size=batch_size, clock=clock,
                       on_late=late.append, on_future=future.append)
    expected = many.process_many(txs)
    got = cols.process_columns(FORMS[form](txs, seed))
    assert got == expected
    assert [a.to_dict() | {"at": None} for a in got] == [
        a.to_dict() | {"at": None} for a in expected]
    assert cols.stats.as_dict() == many.stats.as_dict()
    assert cols.stats.late + cols.stats.future > 0 and cols.stats.duplicates > 0
    assert [tx.id for tx in late] and len(late) == cols.stats.late
    assert len(future) == cols.stats.future
    # Later calls go on from the same state.
    more = stream(seed + 100, 100)
    assert cols.process_columns(FORMS[form](more, seed)) == many.process_many(more)


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


def test_array_forms_are_sequences_and_check_their_shapes() -> None:
    np = pytest.importorskip("numpy")
    txs = stream(1, 50)
    cols = coded(txs, 1)
    assert [cols.transaction(i) for i in range(len(cols))] == txs
    assert isinstance(cols.pools, CodedText) and isinstance(cols.times, IntColumn)
    assert list(cols.pools[3:7]) == [tx.pool_id for tx in txs[3:7]]
    assert list(cols.times[:2]) == [to_micros(tx.timestamp) for tx in txs[:2]]
    assert np.asarray(cols.times).dtype == np.int64
    good = {"ids": ["a", "b"], "investors": ["i", "i"], "amounts": [Decimal(1)] * 2,
            "pool_names": ["p", "q"]}
    with pytest.raises(ValidationError, match="pool_codes"):
        TransactionColumns.from_arrays(**good, pool_codes=np.array([0, 2]),
                                       times=np.array([1, 2]))
    with pytest.raises(ValidationError, match="pool_codes"):
        TransactionColumns.from_arrays(**good, pool_codes=np.array([0.0, 1.0]),
                                       times=np.array([1, 2]))
    with pytest.raises(ValidationError, match="pool_names"):
        TransactionColumns.from_arrays(**good | {"pool_names": ["p", "p"]},
                                       pool_codes=np.array([0, 1]), times=np.array([1, 2]))
    with pytest.raises(ValidationError, match="times"):
        TransactionColumns.from_arrays(**good, pool_codes=np.array([0, 1]),
                                       times=np.array([[1, 2]]))
    with pytest.raises(ValidationError, match="times"):
        TransactionColumns.from_arrays(**good, pool_codes=np.array([0, 1]),
                                       times=np.array([1]))
    for micros in (np.array([1, 2, 3]), np.array([1, 0]), np.array([1.0, 2.0])):
        with pytest.raises(ValidationError, match="amounts"):
            AmountColumn(["1", "2"], micros)


@pytest.mark.parametrize("limit", ["0", "0.0000005", "1", "99.99", "250000", "250000.009999",
                                   "1E+30", "250000.01"])
def test_amount_column_over_and_units_are_the_decimals(limit: str) -> None:
    np = pytest.importorskip("numpy")
    from auptimate_core.store import to_units

    texts = ["0.000001", "0.00005", "0.00015", "99.99", "250000", "250000.01", "250000.000001",
             "9000000000000", "1.23455", "1.23465"]
    amounts = AmountColumn(texts, np.array([int(Decimal(t).scaleb(6)) for t in texts]))
    assert list(amounts) == [Decimal(t) for t in texts]
    assert amounts.over(Decimal(limit)) == [
        i for i, t in enumerate(texts) if Decimal(t) > Decimal(limit)]
    assert amounts.units() == [to_units(Decimal(t)) for t in texts]


def test_coded_pools_over_many_tables_and_dropped_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A columnar store numbers coded keys from their tables across calls, tables and the
    keys it drops whole (idle past the dedup horizon), as it numbers plain keys."""
    np = pytest.importorskip("numpy")
    from auptimate_core.windows import columnar

    monkeypatch.setattr(columnar, "_MIN_COMPACT", 256)  # compact (and drop keys) early
    rng = random.Random(5)
    rules = [SpikeRule(window=timedelta(minutes=1), baseline=timedelta(minutes=10), factor=3,
                       min_count=3), ThresholdRule(limit=Decimal("250000"))]
    clock = ManualClock(T0 + timedelta(days=30))
    plain = AlertEngine(rules, store=ColumnarWindowStore(dedup_horizon=timedelta(hours=1)),
                        clock=clock)
    fast = AlertEngine(rules, store=ColumnarWindowStore(dedup_horizon=timedelta(hours=1)),
                       clock=clock, batch_size=97)
    at = T0
    for part in range(12):
        txs = []
        for i in range(400):
            at += timedelta(seconds=rng.choice([0, 1, 2, 30, 400]))
            txs.append(Transaction(f"t{part}-{i}", "i", f"p{rng.randrange(40)}",
                                   Decimal(rng.choice(["5", "300000"])), at))
        names = sorted({tx.pool_id for tx in txs})
        rng.shuffle(names)
        place = {name: i for i, name in enumerate(names)}
        cols = TransactionColumns.from_arrays(
            ids=[tx.id for tx in txs], investors=["i"] * len(txs),
            pool_codes=np.array([place[tx.pool_id] for tx in txs]), pool_names=names,
            amounts=[tx.amount for tx in txs], times=np.array([to_micros(tx.timestamp)
                                                               for tx in txs]))
        assert fast.process_columns(cols) == plain.process_many(txs)
    assert fast.stats.as_dict() == plain.stats.as_dict()
    dropped = fast.store._windows.keys.dropped  # type: ignore[attr-defined]
    assert dropped > columnar.NEVER


def test_array_forms_on_the_redis_store(redis_url: str) -> None:
    """The Redis store takes the array forms as any sequences: the same alerts as
    process_many on the memory store."""
    import uuid

    from auptimate_core.backends.redis import RedisWindowStore

    txs = stream(3)
    clock = ManualClock(txs[len(txs) // 2].timestamp)
    store = RedisWindowStore.from_url(redis_url, namespace=f"c{uuid.uuid4().hex[:12]}")
    cols = AlertEngine(all_rules(), store=store, batch_size=64, clock=clock)
    many = engine("exact", all_rules(), 64, clock)
    try:
        assert cols.process_columns(coded(txs, 3)) == many.process_many(txs)
        assert cols.stats.as_dict() == many.stats.as_dict()
    finally:
        cols.close()
