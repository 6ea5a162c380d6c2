"""Alerts are never lost: late, future, redelivered, retried and extreme transactions, on every
store, held against the brute-force model of API.md."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import ManualClock, Transaction
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
from auptimate_core.errors import InvalidAmount, LateEvent, StoreUnavailable
from auptimate_core.store import Interval, Transition, WindowStore
from auptimate_core.testing.servers import RedisServer

from .alert_model import ReferenceAlerts
from .naive_store import NaiveWindowStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)  # the engines' clock: every stream below lies before it
LATENESS = timedelta(minutes=5)
AHEAD = timedelta(minutes=5)
WINDOW = timedelta(minutes=1)
BASELINE = timedelta(minutes=10)
MEMORY_KINDS = ("exact", "ring", "columnar")


def memory_store(kind: str) -> WindowStore:
    """An in-process store: the memory store on ``kind``'s windows, or the columnar store."""
    if kind == "columnar":
        return ColumnarWindowStore(allowed_lateness=LATENESS)
    return MemoryWindowStore(allowed_lateness=LATENESS, window=kind)  # type: ignore[arg-type]


@pytest.fixture(params=[*MEMORY_KINDS, "naive", pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], WindowStore]]:
    made: list[WindowStore] = []

    def factory() -> WindowStore:
        store: WindowStore
        if request.param == "redis":
            from auptimate_core.backends.redis import RedisWindowStore

            store = RedisWindowStore.from_url(
                request.getfixturevalue("redis_url"), namespace=f"g{uuid.uuid4().hex[:12]}",
                allowed_lateness=LATENESS)
        elif request.param == "naive":
            store = NaiveWindowStore(LATENESS // timedelta(microseconds=1))
        else:
            store = memory_store(request.param)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def rules() -> list[ThresholdRule | SpikeRule]:
    return [ThresholdRule(limit=Decimal("250000")),
            SpikeRule(window=WINDOW, baseline=BASELINE, factor=3, min_count=3)]


def engine_on(store: WindowStore, **options: object) -> AlertEngine:
    return AlertEngine(rules(), store=store, clock=ManualClock(NOW), **options)  # type: ignore[arg-type]


def tx(tid: str, amount: int | str, at: datetime, pool: str = "p1") -> Transaction:
    return Transaction(tid, "alice", pool, Decimal(amount), at)


def keys(alerts: Sequence[Alert]) -> list[tuple[str, str, str | None]]:
    return [(a.rule, a.state, a.transaction_id) for a in alerts]


# -- the six scenarios of the issue -----------------------------------------------------------


def test_a_late_large_transaction_still_alerts(make_store: Callable[[], WindowStore]) -> None:
    engine = engine_on(make_store())
    engine.process(tx("t1", 10, T0 + timedelta(minutes=10)))
    alerts = engine.process(tx("t2", 5_000_000, T0))
    assert keys(alerts) == [("threshold", "firing", "t2")]
    assert engine.stats.late == 1
    assert engine.process(tx("t2", 5_000_000, T0)) == []  # its redelivery: once
    assert engine.stats.duplicates == 1


def test_late_raises_only_when_asked_and_carries_the_alerts(
    make_store: Callable[[], WindowStore],
) -> None:
    engine = engine_on(make_store(), on_late="raise")
    engine.process(tx("t1", 10, T0 + timedelta(minutes=10)))
    with pytest.raises(LateEvent, match="1 transaction") as info:
        engine.process_many([tx("t2", 5_000_000, T0), tx("t3", 900_000, NOW - timedelta(hours=1))])
    assert [a.transaction_id for a in info.value.alerts] == ["t2", "t3"]
    assert [t.id for t in info.value.late] == ["t2"]


def test_one_far_future_timestamp_switches_nothing_off(
    make_store: Callable[[], WindowStore],
) -> None:
    engine = engine_on(make_store())
    far = tx("f", 1, datetime(2100, 1, 1, tzinfo=UTC))
    assert engine.process(far) == [] and engine.stats.future == 1
    start = NOW - timedelta(minutes=30)
    big = [tx(f"b{i}", 900_000, start + timedelta(seconds=i), pool=f"p{i % 2}")
           for i in range(10)]
    alerts = engine.process_many(big)
    assert [a.transaction_id for a in alerts if a.rule == "threshold"] == [t.id for t in big]
    # The windows still run for the pool the future transaction named: a burst alerts.
    burst = [tx(f"s{i}", 1, start + timedelta(minutes=5, seconds=i)) for i in range(5)]
    assert ("spike", "firing") in [(a.rule, a.state) for a in engine.process_many(burst)]
    assert engine.process(far) == []  # redelivered: a duplicate
    assert engine.stats.late == 0 and engine.stats.duplicates == 1


def test_a_future_large_transaction_alerts_at_once(make_store: Callable[[], WindowStore]) -> None:
    engine = engine_on(make_store())
    alerts = engine.process(tx("f", 5_000_000, NOW + timedelta(hours=2)))
    assert keys(alerts) == [("threshold", "firing", "f")]


def test_a_redelivery_hours_later_is_a_duplicate(make_store: Callable[[], WindowStore]) -> None:
    engine = engine_on(make_store())
    original = tx("big", 900_000, T0)
    assert keys(engine.process(original)) == [("threshold", "firing", "big")]
    later = [tx(f"n{i}", 5, T0 + timedelta(minutes=10 * i)) for i in range(1, 19)]
    engine.process_many(later)  # three hours of the pool's traffic
    assert engine.process(tx("big", 900_000, T0 + timedelta(hours=3))) == []
    assert engine.process(original) == []
    assert engine.stats.duplicates == 2 and engine.stats.late == 0


def test_an_amount_past_the_bound_is_refused_at_the_edge() -> None:
    with pytest.raises(InvalidAmount, match="amount: must be at most"):
        tx("x", "1E+308", T0)
    # The largest allowed amount goes through every rule, next to an ordinary one.
    engine = AlertEngine([AmountSpikeRule(), ThresholdRule(limit=Decimal(100))],
                         store=memory_store("exact"), clock=ManualClock(NOW))
    alerts = engine.process_many([tx("max", 10**15, T0), tx("small", "5.00", T0)])
    assert [a.transaction_id for a in alerts if a.rule == "threshold"] == ["max"]
    assert engine.stats.processed == 2


class _KillBetweenRoundTrips:
    """Kills the real redis-server just before the engine's first ``transition``."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.armed = True

    def __call__(self) -> None:
        if self.armed:
            self.armed = False
            self.server.kill()


@pytest.mark.redis
def test_a_call_retried_after_the_store_failed_returns_its_alerts_once() -> None:
    from auptimate_core.backends.redis import RedisWindowStore

    with RedisServer(persistent=True) as server:
        kill = _KillBetweenRoundTrips(server)

        class Dying(RedisWindowStore):
            def transition(self, transitions: Sequence[Transition]) -> list[bool]:
                kill()
                return super().transition(transitions)

        store = Dying.from_url(server.url, allowed_lateness=LATENESS, retries=1,
                               backoff=0.01)
        sink = CollectingSink()
        engine = AlertEngine(rules(), store=store, sinks=[sink], clock=ManualClock(NOW),
                             batch_size=4)
        calm = [tx(f"c{i}", 10, T0 + timedelta(minutes=i)) for i in range(5)]
        engine.process_many(calm)
        burst = [tx(f"b{i}", 10, T0 + timedelta(minutes=6, seconds=i)) for i in range(5)]
        batch = [*burst, tx("big", 900_000, T0 + timedelta(minutes=6, seconds=9))]
        expected = keys(AlertEngine(rules(), store=memory_store("exact"),
                                    clock=ManualClock(NOW)).process_many([*calm, *batch]))
        with pytest.raises(StoreUnavailable):
            engine.process_many(batch)
        server.start()  # the same port and append-only file: what was written survived
        got = engine.process_many(batch)
        assert keys(got) == expected and expected
        assert sorted(keys(sink.alerts)) == sorted(expected)  # each once
        assert engine.process_many(batch) == []  # now it is done: duplicates
        store.close()


# -- bounded memory ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exact", "ring"])
def test_memory_returns_to_its_baseline_once_pools_go_quiet(kind: str) -> None:
    spike = [Interval(0, 60_000_000), Interval(60_000_000, 3_600_000_000)]
    store = MemoryWindowStore(window=kind,  # type: ignore[arg-type]
                              dedup_horizon=timedelta(hours=1))
    minute = 60_000_000
    gc.collect()
    tracemalloc.start()
    try:
        store.observe_many(["warm"], ["w"], [0], [1], spike)
        baseline = tracemalloc.get_traced_memory()[0]
        n = 100_000
        store.observe_many([f"pool-{i}" for i in range(n)], [f"t{i}" for i in range(n)],
                           [minute] * n, [1] * n, spike)
        burst = 50_000
        store.observe_many(["bursty"] * burst, [f"b{i}" for i in range(burst)],
                           [minute + i for i in range(burst)], [1] * burst, spike)
        full = tracemalloc.get_traced_memory()[0]
        # Five hours of traffic elsewhere, a minute at a time: a quiet pool gives its events
        # back once the windows (66 minutes) are past, and is dropped once the dedup horizon
        # (an hour) and twice the windows are, at the next sweep (every 4,096 events here).
        for step in range(300):
            at = 2 * minute + step * minute
            store.observe_many(["busy"] * 50, [f"x{step}-{i}" for i in range(50)],
                               [at + i for i in range(50)], [1] * 50, spike)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert store.size()["keys"] <= 3
    assert after - baseline < (full - baseline) / 10, (baseline, full, after)


# -- the property: every alert once, whatever the stream ---------------------------------------


@st.composite
def hostile_streams(draw: st.DrawFn, max_size: int = 50) -> list[Transaction]:
    """Streams over a day: in order, late, too late, far ahead of the clock, and redeliveries
    of earlier transactions (same id, original or new time, up to 23 hours later)."""
    n = draw(st.integers(1, max_size))
    out: list[Transaction] = []
    t = T0
    for i in range(n):
        t += timedelta(seconds=draw(st.sampled_from([0, 1, 5, 20, 60, 400, 3_600, 7_200])))
        t = min(t, NOW - timedelta(hours=1))
        kind = draw(st.integers(0, 11))
        pool = draw(st.sampled_from(["p0", "p1", "p2"]))
        amount = draw(st.sampled_from([1, 100, 250_000, 250_001, 10**15]))
        if out and kind == 0:
            out.append(draw(st.sampled_from(out)))  # redelivered as it was
        elif out and kind == 1:
            again = draw(st.sampled_from(out))  # redelivered with a new time
            out.append(Transaction(again.id, again.investor_id, again.pool_id, again.amount, t))
        elif kind == 2:  # late or too late
            back = timedelta(seconds=draw(st.sampled_from([30, 299, 301, 3_600])))
            out.append(tx(f"t{i}", amount, t - back, pool))
        elif kind == 3:  # ahead of the clock
            ahead = draw(st.sampled_from([AHEAD + timedelta(seconds=1), timedelta(days=30_000)]))
            out.append(tx(f"t{i}", amount, NOW + ahead, pool))
        else:
            out.append(tx(f"t{i}", amount, t, pool))
    return out


def reference(stream: list[Transaction]) -> list[tuple[str, str, str | None]]:
    model = ReferenceAlerts(limit=Decimal("250000"), window=WINDOW, baseline=BASELINE,
                            factor=3, min_count=3, lateness=LATENESS, not_after=NOW + AHEAD)
    return [(rule, state, tid) for rule, state, _, tid, _ in model.process_many(stream)]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(stream=hostile_streams(), batch=st.integers(1, 12))
def test_every_memory_store_matches_the_model(stream: list[Transaction], batch: int) -> None:
    expected = reference(stream)
    for kind in MEMORY_KINDS:
        engine = engine_on(memory_store(kind), batch_size=batch)
        assert keys(engine.process_many(stream)) == expected, kind
    one = engine_on(memory_store("exact"))
    assert keys([a for t in stream for a in one.process(t)]) == expected


@pytest.mark.redis
def test_the_redis_store_matches_the_model(redis_url: str) -> None:
    from auptimate_core.backends.redis import RedisWindowStore

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=hostile_streams(), batch=st.integers(1, 12))
    def check(stream: list[Transaction], batch: int) -> None:
        store = RedisWindowStore.from_url(redis_url, namespace=f"h{uuid.uuid4().hex[:12]}",
                                          allowed_lateness=LATENESS)
        try:
            got = engine_on(store, batch_size=batch).process_many(stream)
            assert keys(got) == reference(stream)
        finally:
            store.close()

    check()
