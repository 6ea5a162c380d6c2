"""The AlertEngine against a brute-force reference of API.md, on every window store."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction
from auptimate_core.alerts import (
    Alert,
    AlertEngine,
    AmountSpikeRule,
    CollectingSink,
    SpikeRule,
    ThresholdRule,
)
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.errors import LateEvent, ValidationError
from auptimate_core.store import WindowStore

from .alert_model import ReferenceAlerts
from .naive_store import NaiveWindowStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=1)
BASELINE = timedelta(minutes=10)
LATENESS = timedelta(minutes=5)


def make_naive() -> WindowStore:
    return NaiveWindowStore(LATENESS // timedelta(microseconds=1))


def make_memory() -> WindowStore:
    return MemoryWindowStore(allowed_lateness=LATENESS)


def make_columnar() -> WindowStore:
    return ColumnarWindowStore(allowed_lateness=LATENESS)


STORES: dict[str, Callable[[], WindowStore]] = {
    "naive": make_naive, "memory": make_memory, "columnar": make_columnar}


@pytest.fixture(params=[*sorted(STORES), pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], WindowStore]]:
    made: list[WindowStore] = []

    def factory() -> WindowStore:
        if request.param == "redis":
            import uuid

            from auptimate_core.backends.redis import RedisWindowStore

            url = request.getfixturevalue("redis_url")
            store: WindowStore = RedisWindowStore.from_url(
                url, namespace=f"e{uuid.uuid4().hex[:12]}", allowed_lateness=LATENESS
            )
        else:
            store = STORES[request.param]()
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def rules(limit: Decimal = Decimal("1000")) -> list[ThresholdRule | SpikeRule]:
    return [
        ThresholdRule(limit=limit, per_pool={"p1": Decimal("500")}),
        SpikeRule(window=WINDOW, baseline=BASELINE, factor=3, min_count=3),
    ]


def model() -> ReferenceAlerts:
    return ReferenceAlerts(
        limit=Decimal("1000"), per_pool={"p1": Decimal("500")}, window=WINDOW,
        baseline=BASELINE, factor=3, min_count=3, lateness=LATENESS,
    )


def key(alert: Alert) -> tuple[str, str, str, str | None, datetime]:
    return (alert.rule, alert.state, alert.pool_id, alert.transaction_id, alert.at)


@st.composite
def streams(draw: st.DrawFn, max_size: int = 60) -> list[Transaction]:
    """Bursty streams over a few pools, in event-time order, with ties and big amounts."""
    n = draw(st.integers(1, max_size))
    gaps = draw(st.lists(st.sampled_from([0, 1, 2, 5, 10, 30, 90, 400, 900]), min_size=n,
                         max_size=n))
    pools = draw(st.lists(st.sampled_from(["p0", "p1", "p2"]), min_size=n, max_size=n))
    amounts = draw(st.lists(st.sampled_from([1, 100, 499, 500, 501, 1000, 1001, 5000]),
                            min_size=n, max_size=n))
    out, t = [], T0
    for i in range(n):
        t += timedelta(seconds=gaps[i])
        out.append(Transaction(f"t{i}", f"i{i % 4}", pools[i], Decimal(amounts[i]), t))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), batch=st.integers(1, 20))
def test_engine_matches_reference(stream: list[Transaction], batch: int) -> None:
    expected = model().process_many(stream)
    for store in (make_memory(), make_naive(), make_columnar()):
        engine = AlertEngine(rules(), store=store, batch_size=batch)
        assert [key(a) for a in engine.process_many(stream)] == expected


@settings(max_examples=100, deadline=None)
@given(stream=streams())
def test_process_and_process_many_agree(stream: list[Transaction]) -> None:
    one = AlertEngine(rules(), store=make_memory())
    many = AlertEngine(rules(), store=make_memory())
    singly = [a for tx in stream for a in one.process(tx)]
    assert singly == many.process_many(stream)


@settings(max_examples=100, deadline=None)
@given(stream=streams(), data=st.data())
def test_duplicates_and_cross_pool_reordering_change_nothing(
    stream: list[Transaction], data: st.DataObject
) -> None:
    clean = AlertEngine(rules(), store=make_memory()).process_many(stream)
    # Interleave the pools' sub-streams differently (each pool keeps its own order, as a
    # partitioned queue delivers it) and re-deliver some transactions.
    by_pool: dict[str, list[Transaction]] = {}
    for tx in stream:
        by_pool.setdefault(tx.pool_id, []).append(tx)
    queues = {pool: list(txs) for pool, txs in by_pool.items()}
    messy: list[Transaction] = []
    while queues:
        pool = data.draw(st.sampled_from(sorted(queues)))
        tx = queues[pool].pop(0)
        messy.append(tx)
        if data.draw(st.booleans()):
            # A redelivery of one of the pool's last few messages (a queue's retry).
            # Only within the allowed lateness: an older redelivery is late, and reported.
            mine = [m for m in messy if m.pool_id == pool]
            top = max(m.timestamp for m in mine)
            recent = [m for m in mine[-3:] if m.timestamp >= top - LATENESS]
            messy.append(data.draw(st.sampled_from(recent)))
        if not queues[pool]:
            del queues[pool]
    # Only reorderings within the allowed lateness are legal input (first deliveries).
    newest: dict[str, datetime] = {}
    first = {tx.id: i for i, tx in reversed(list(enumerate(messy)))}
    for i, tx in enumerate(messy):
        if first[tx.id] != i:
            continue
        assert tx.timestamp >= newest.get(tx.pool_id, tx.timestamp) - LATENESS
        newest[tx.pool_id] = max(newest.get(tx.pool_id, tx.timestamp), tx.timestamp)
    again = AlertEngine(rules(), store=make_memory()).process_many(messy)
    assert sorted(map(key, again)) == sorted(map(key, clean))
    columnar = AlertEngine(rules(), store=make_columnar(), batch_size=7).process_many(messy)
    assert sorted(map(key, columnar)) == sorted(map(key, clean))


def burst(pool: str, start: datetime, n: int, step: timedelta, prefix: str) -> list[Transaction]:
    return [
        Transaction(f"{prefix}{i}", "inv", pool, Decimal(10), start + i * step) for i in range(n)
    ]


def test_spike_fires_once_and_resolves_once(make_store: Callable[[], WindowStore]) -> None:
    engine = AlertEngine([SpikeRule(factor=10, min_count=5)], store=make_store())
    quiet = burst("p", T0, 6, timedelta(minutes=20), "q")
    loud = burst("p", T0 + timedelta(hours=2), 12, timedelta(seconds=2), "b")
    later = burst("p", T0 + timedelta(hours=3), 1, timedelta(seconds=1), "z")
    alerts = engine.process_many(quiet + loud + later)
    assert [(a.state, a.transaction_id) for a in alerts] == [("firing", "b4"), ("resolved", "z0")]
    firing = alerts[0]
    assert firing.observed == Decimal(5) and firing.at == loud[4].timestamp
    assert "5 transactions in the last 1m" in firing.message


def test_evaluate_resolves_when_time_passes(make_store: Callable[[], WindowStore]) -> None:
    engine = AlertEngine([SpikeRule()], store=make_store())
    fired = engine.process_many(burst("p", T0, 5, timedelta(seconds=1), "b"))
    assert [a.state for a in fired] == ["firing"]
    assert engine.evaluate(T0 + timedelta(seconds=30)) == []
    now = T0 + timedelta(minutes=5)
    (resolved,) = engine.evaluate(now)
    assert (resolved.state, resolved.transaction_id, resolved.at) == ("resolved", None, now)
    assert engine.evaluate(now + timedelta(minutes=1)) == []


def test_threshold_is_strict_and_per_pool(make_store: Callable[[], WindowStore]) -> None:
    engine = AlertEngine(
        [ThresholdRule(limit=Decimal("250000"), per_pool={"small": 1000})], store=make_store()
    )
    txs = [
        Transaction("a", "i", "big", Decimal("250000"), T0),
        Transaction("b", "i", "big", Decimal("250000.01"), T0),
        Transaction("c", "i", "small", Decimal("1000"), T0),
        Transaction("d", "i", "small", Decimal("1000.01"), T0),
    ]
    alerts = engine.process_many(txs)
    assert [(a.transaction_id, a.limit) for a in alerts] == [
        ("b", Decimal("250000")), ("d", Decimal("1000"))
    ]
    assert engine.process(txs[1]) == []  # the same id again: counted once, no alert


def test_late_transactions_are_reported_not_lost() -> None:
    engine = AlertEngine([ThresholdRule(limit=10)], store=make_memory(), on_late="raise")
    engine.process(Transaction("a", "i", "p", Decimal(1), T0 + timedelta(hours=1)))
    late = Transaction("b", "i", "p", Decimal(50), T0)
    fresh = Transaction("c", "i", "p", Decimal(50), T0 + timedelta(hours=1))
    with pytest.raises(LateEvent, match="timestamp: 1 transaction") as info:
        engine.process_many([late, fresh])
    assert info.value.transactions == [late]
    assert [a.transaction_id for a in info.value.alerts] == ["b", "c"]
    seen: list[Transaction] = []
    quiet = AlertEngine([ThresholdRule(limit=10)], store=make_memory(), on_late=seen.append)
    quiet.process(Transaction("a", "i", "p", Decimal(1), T0 + timedelta(hours=1)))
    assert [a.transaction_id for a in quiet.process(late)] == ["b"] and seen == [late]
    assert quiet.stats.late == 1
    assert quiet.process(late) == [] and quiet.stats.duplicates == 1


def test_a_failing_sink_does_not_stop_the_others() -> None:
    collected = CollectingSink()
    failures: list[str] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    engine = AlertEngine(
        [ThresholdRule(limit=1)], store=make_memory(), sinks=[broken, collected],
        on_sink_error=lambda sink, alert, error: failures.append(str(error)),
    )
    txs = [Transaction(f"t{i}", "i", "p", Decimal(5), T0) for i in range(3)]
    assert len(engine.process_many(txs)) == 3
    assert len(collected) == 3 and failures == ["sink down"] * 3
    assert engine.stats.sink_failures == 3


def test_alert_to_dict_is_json_ready_and_round_trips() -> None:
    engine = AlertEngine([SpikeRule(significance=0.05)], store=make_memory())
    (alert,) = engine.process_many(burst("p", T0, 5, timedelta(seconds=1), "b"))
    data = alert.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["at"] == "2026-03-01T09:00:04+00:00" and data["observed"] == "5"
    assert Alert.from_dict(data) == alert


def test_cold_start_guard_waits_for_history() -> None:
    rule = SpikeRule(min_history=timedelta(hours=1))
    engine = AlertEngine([rule], store=make_memory())
    assert engine.process_many(burst("p", T0, 10, timedelta(seconds=1), "a")) == []
    engine.process(Transaction("x", "i", "p", Decimal(1), T0 + timedelta(minutes=70)))
    alerts = engine.process_many(burst("p", T0 + timedelta(minutes=90), 6, timedelta(seconds=1),
                                       "b"))
    assert [a.state for a in alerts] == ["firing"]


def test_cooldown_holds_back_a_new_firing() -> None:
    engine = AlertEngine([SpikeRule(cooldown=timedelta(minutes=30))], store=make_memory())
    first = burst("p", T0, 5, timedelta(seconds=1), "a")
    calm = [Transaction("c", "i", "p", Decimal(1), T0 + timedelta(minutes=10))]
    second = burst("p", T0 + timedelta(minutes=20), 5, timedelta(seconds=1), "b")
    third = burst("p", T0 + timedelta(minutes=45), 8, timedelta(seconds=1), "d")
    states = [(a.state, a.transaction_id) for a in engine.process_many(first + calm + second
                                                                        + third)]
    assert states == [("firing", "a4"), ("resolved", "c"), ("firing", "d4")]


def test_significance_silences_small_numbers() -> None:
    base = [Transaction("x", "i", "p", Decimal(1), T0)]
    few = burst("p", T0 + timedelta(minutes=59, seconds=50), 3, timedelta(seconds=1), "b")
    plain = AlertEngine([SpikeRule(min_count=3)], store=make_memory())
    strict = AlertEngine([SpikeRule(min_count=3, significance=0.01)], store=make_memory())
    assert [a.state for a in plain.process_many(base + few)] == ["firing"]
    assert strict.process_many(base + few) == []


def test_amount_spike_rule() -> None:
    engine = AlertEngine([AmountSpikeRule(min_total=Decimal("50000"))], store=make_memory())
    small = [Transaction(f"s{i}", "i", "p", Decimal(100), T0 + timedelta(minutes=5 * i))
             for i in range(12)]
    big = [Transaction("b1", "i", "p", Decimal("30000"), T0 + timedelta(minutes=61)),
           Transaction("b2", "i", "p", Decimal("30000"), T0 + timedelta(minutes=61, seconds=5))]
    alerts = engine.process_many(small + big)
    assert [(a.rule, a.state, a.transaction_id) for a in alerts] == [
        ("amount_spike", "firing", "b2")
    ]
    assert alerts[0].observed == Decimal("60000")


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError, match="factor"):
        SpikeRule(factor=0)
    with pytest.raises(ValidationError, match="min_count"):
        SpikeRule(min_count=0)
    with pytest.raises(ValidationError, match="window"):
        SpikeRule(window=timedelta(0))
    with pytest.raises(ValidationError, match="limit"):
        ThresholdRule(limit=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="two rules"):
        AlertEngine([SpikeRule(), SpikeRule()], store=make_memory())


def test_engine_is_safe_to_share_between_threads() -> None:
    rng = random.Random(7)
    pools = [f"p{i}" for i in range(8)]
    stream = []
    t = T0
    for i in range(4000):
        t += timedelta(seconds=rng.choice([0, 1, 3, 60, 600]))
        stream.append(Transaction(f"t{i}", "i", rng.choice(pools), Decimal(rng.choice([1, 2000])),
                                  t))
    expected = AlertEngine(rules(), store=make_memory()).process_many(stream)
    shared = AlertEngine(rules(), store=make_memory(), batch_size=7)
    results: list[list[Alert]] = []

    def feed(pool: str) -> None:
        results.append(shared.process_many(tx for tx in stream if tx.pool_id == pool))

    threads = [threading.Thread(target=feed, args=(pool,)) for pool in pools]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = [alert for chunk in results for alert in chunk]
    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert shared.stats.processed == len(stream)
