"""The Redis store on a real redis-server: the shared contract, encoding, redeliveries,
processes (failures: test_redis_failures.py)."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.errors import ValidationError
from auptimate_core.store import (
    DAY,
    Interval,
    Observation,
    ObservedBatch,
    Status,
    Tally,
    WindowStore,
)
from auptimate_core.testing.window_store import (
    LATENESS,
    ModelStore,
    WindowStoreContract,
    intervals_st,
    observations,
)

pytestmark = pytest.mark.redis

MINUTE = 60_000_000
HOUR = 60 * MINUTE
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]
MAX_AMOUNT = 10**19
"""The domain's largest amount, 10**15 in the currency, in store units of 1/10,000."""


class TestRedisStore(WindowStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return RedisWindowStore.from_url(
            self.url, namespace=f"t{uuid.uuid4().hex[:12]}",
            allowed_lateness=timedelta(microseconds=allowed_lateness_us),
            dedup_horizon=timedelta(microseconds=dedup_horizon_us),
        )


class TestRedisStoreAnsweringEveryRun(WindowStoreContract):
    """The same contract with no copies: the server answers every run itself."""

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return RedisWindowStore.from_url(
            self.url, namespace=f"t{uuid.uuid4().hex[:12]}", copies=False,
            allowed_lateness=timedelta(microseconds=allowed_lateness_us),
            dedup_horizon=timedelta(microseconds=dedup_horizon_us),
        )


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisWindowStore]:
    s = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    yield s
    s.flush_namespace()
    s.close()


def test_keys_share_one_hash_tag_per_pool_and_never_collide(store: RedisWindowStore) -> None:
    for pool in ["a:b", "{a}", "a b", "a}b{", "a%7Bb"]:
        keys = store._keys(pool)
        tags = {key[key.index("{") + 1:key.index("}")] for key in keys}
        assert len(tags) == 1 and "{" not in tags.pop()
    assert len({store._base(p) for p in ["a:b", "a%3Ab", "a b", "a+b", "{a}", "%7Ba%7D"]}) == 6


def test_scripts_reload_after_flush(store: RedisWindowStore) -> None:
    assert store.observe(Observation("p", "a", 10), SPIKE).status is Status.NEW
    store.client.script_flush()
    assert store.observe(Observation("p", "b", 20), SPIKE).tallies[0] == Tally(2, 0)


def test_memory_and_redis_agree_on_a_generated_stream(store: RedisWindowStore) -> None:
    from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
    from auptimate_core.generate import SyntheticStream

    stream = SyntheticStream(20_000, seed=11, anomalies=True)
    txs = list(stream.transactions())

    def rules() -> list[object]:
        return [ThresholdRule(limit=250_000), SpikeRule()]

    memory = AlertEngine(rules(), store=MemoryWindowStore()).process_many(txs)  # type: ignore[arg-type]
    shared = AlertEngine(rules(), store=store, batch_size=997).process_many(txs)  # type: ignore[arg-type]
    assert shared == memory
    assert len(memory) >= len(stream.anomalies)


def test_a_resent_batch_is_answered_as_the_first_time(store: RedisWindowStore) -> None:
    # A batch applied on the server whose reply was lost is resent with the same token.
    keys, ids, ats = ["p"] * 3, ["a", "b", "c"], [1, 2, 3]
    first = store.observe_many(keys, ids, ats, [1, 1, 1], SPIKE)
    assert [s.value for s in first.statuses] == ["new"] * 3
    again = store.observe_many(keys, ids, ats, [1, 1, 1], SPIKE)
    assert [s.value for s in again.statuses] == ["duplicate"] * 3  # a new delivery: counted once


def _mixed_call(store: WindowStore, batch: str | None, *, totals: bool = True) -> ObservedBatch:
    """One call with every answer in it: new in two pools, a redelivery within the call, a late
    one and a future one (not_after 10 minutes), after the pools' history up to 30 minutes."""
    return store.observe_many(
        ["p", "q", "p", "p", "q", "p", "p"],
        ["n1", "m1", "n1", "late", "far", "n2", "n3"],
        [30 * MINUTE + 1, 30 * MINUTE + 2, 30 * MINUTE + 5, 20 * MINUTE, 10 * HOUR,
         30 * MINUTE + 3, 30 * MINUTE + 3],
        [5, 7, 5, 11, 13, 17, MAX_AMOUNT], SPIKE, totals=totals, batch=batch,
        not_after=40 * MINUTE,
    )


def _history(store: WindowStore) -> None:
    store.observe_many(["p", "q", "p"], ["h1", "h2", "h3"], [0, MINUTE, 30 * MINUTE], [1, 2, 3],
                       SPIKE)


MIXED = [Status.NEW, Status.NEW, Status.DUPLICATE, Status.LATE, Status.FUTURE, Status.NEW,
         Status.NEW]


@pytest.mark.parametrize("totals", [True, False])
def test_a_named_batch_called_again_is_answered_as_the_first_time(
    store: RedisWindowStore, totals: bool
) -> None:
    _history(store)
    first = _mixed_call(store, "call-7", totals=totals)
    assert first.statuses == MIXED
    again = _mixed_call(store, "call-7", totals=totals)
    assert again == first  # new with the same tallies here, late and future again
    # Counted once: the windows hold each new event once.
    (tally,) = store.tally("p", 30 * MINUTE + 5, [Interval(0, HOUR)])
    assert tally == Tally(5, 1 + 3 + 5 + 17 + MAX_AMOUNT)
    # Another name is another call: every event of it is a redelivery.
    other = _mixed_call(store, "call-8", totals=totals)
    assert set(other.statuses) == {Status.DUPLICATE}
    # So is a call without a name.
    assert set(_mixed_call(store, None, totals=totals).statuses) == {Status.DUPLICATE}


def test_a_named_batch_takes_the_place_of_its_events_into_account(
    store: RedisWindowStore,
) -> None:
    # The same events in another order under the same name are other events of that call.
    _history(store)
    store.observe_many(["p", "p"], ["x1", "x2"], [31 * MINUTE, 32 * MINUTE], [1, 1], SPIKE,
                       batch="b")
    swapped = store.observe_many(["p", "p"], ["x2", "x1"], [32 * MINUTE, 31 * MINUTE], [1, 1],
                                 SPIKE, batch="b")
    assert swapped.statuses == [Status.DUPLICATE, Status.DUPLICATE]


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "a\tb"])
def test_batch_names_are_checked(store: RedisWindowStore, bad: str) -> None:
    with pytest.raises(ValidationError, match="batch"):
        store.observe_many(["p"], ["a"], [1], [1], SPIKE, batch=bad)


def test_redelivered_late_and_future_tokens_are_answered_as_the_first_time(
    store: RedisWindowStore,
) -> None:
    # Per-event delivery tokens (a queue's entries) keep late and future answers too.
    _history(store)
    args = (["p", "p", "p"], ["t1", "t2", "t3"], [31 * MINUTE, 20 * MINUTE, 5 * HOUR],
            [1, 2, 3], SPIKE)
    first = store.observe_many(*args, deliveries=["1-0", "2-0", "3-0"], not_after=HOUR)
    assert first.statuses == [Status.NEW, Status.LATE, Status.FUTURE]
    again = store.observe_many(*args, deliveries=["1-0", "2-0", "3-0"], not_after=HOUR)
    assert again == first
    other = store.observe_many(*args, deliveries=["1-1", "2-1", "3-1"], not_after=HOUR)
    assert set(other.statuses) == {Status.DUPLICATE}


def test_ids_are_remembered_past_the_windows_for_the_dedup_horizon(
    store: RedisWindowStore,
) -> None:
    # A queue redelivers a transaction 3 h of event time later (the windows reach 65 min):
    # with a new time, and with its original one, it is a duplicate.
    assert store.observe(Observation("p", "x", 0, 9), SPIKE).status is Status.NEW
    ats = list(range(MINUTE, 3 * HOUR + 1, MINUTE))
    store.observe_many(["p"] * len(ats), [f"n{i}" for i in range(len(ats))], ats,
                       [1] * len(ats), SPIKE)
    assert store.observe(Observation("p", "x", 3 * HOUR, 9), SPIKE).status is Status.DUPLICATE
    assert store.observe(Observation("p", "x", 0, 9), SPIKE).status is Status.DUPLICATE
    # The windows still hold only what they reach.
    assert store.tally("p", 3 * HOUR, SPIKE) == (Tally(1, 1), Tally(60, 60))
    # A day and more later the id is forgotten, and the sorted set has been trimmed.
    day = 24 * HOUR
    ats = list(range(day - HOUR, day + 2 * HOUR, 5 * MINUTE))
    store.observe_many(["p"] * len(ats), [f"d{i}" for i in range(len(ats))], ats,
                       [1] * len(ats), SPIKE)
    assert store.observe(Observation("p", "x", day + 2 * HOUR, 9), SPIKE).status is Status.NEW
    store.retain = 0
    # Trimming runs as the horizon moves by an eighth of the memory (3 h here).
    store.observe(Observation("p", "last", day + 5 * HOUR, 1), SPIKE)
    held = store.client.zcount(store._keys("p")[0], "-inf", "(+inf")  # the edge member aside
    assert held == len(ats) + 2  # the events since the horizon, x and the last one
    assert store.client.hlen(store._keys("p")[1]) == held + 1  # and the pool's state


def test_late_and_future_ids_are_remembered_exactly_for_the_horizon(redis_url: str) -> None:
    horizon = 10_000
    store = RedisWindowStore.from_url(
        redis_url, namespace=f"t{uuid.uuid4().hex[:12]}",
        allowed_lateness=timedelta(microseconds=50), dedup_horizon=timedelta(microseconds=horizon),
        retain=0,
    )
    window = [Interval(0, 10)]
    late, far = Observation("p", "late", 900), Observation("p", "far", 10**12)
    try:
        assert store.observe(Observation("p", "a", 1_001), window).status is Status.NEW
        assert store.observe(late, window).status is Status.LATE  # recorded at 1,001
        assert store.observe(far, window, not_after=1_003).status is Status.FUTURE  # at 1,003
        store.observe(Observation("p", "b", 1_001 + horizon - 1), window)
        assert store.observe(late, window).status is Status.DUPLICATE
        store.observe(Observation("p", "c", 1_001 + horizon), window)
        assert store.observe(late, window).status is Status.LATE  # forgotten, late again
        assert store.observe(far, window, not_after=1_003).status is Status.DUPLICATE
        store.observe(Observation("p", "d", 1_003 + horizon), window)
        assert store.observe(far, window, not_after=1_003).status is Status.FUTURE
        # A future id that comes back in time, once forgotten, enters the windows.
        store.observe(Observation("p", "e", 1_003 + 2 * horizon), window)
        back = store.observe(attrs.evolve(far, at=1_003 + 2 * horizon), window)
        assert back.status is Status.NEW and back.tallies == (Tally(2, 0),)
    finally:
        store.flush_namespace()
        store.close()


def test_keys_expire_no_sooner_than_the_dedup_horizon(redis_url: str) -> None:
    store = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}",
                                      dedup_horizon=timedelta(days=2),
                                      idle_ttl=timedelta(hours=1))
    try:
        # A pool whose only event is in the future has keys that expire too.
        store.observe(Observation("f", "x", 10 * HOUR), SPIKE, not_after=HOUR)
        store.observe(Observation("p", "x", HOUR), SPIKE)
        for key in [*store._keys("f")[:2], *store._keys("p")]:
            assert 47 * 3_600_000 < store.client.pttl(key) <= 48 * 3_600_000, key
    finally:
        store.flush_namespace()
        store.close()


def test_window_totals_are_exact_at_the_amount_bound(store: RedisWindowStore) -> None:
    # A thousand maximal amounts and more: far past 2**53 and 2**64, summed exactly on the server.
    n = 1_200
    amounts = [MAX_AMOUNT - (i % 3) * 999_999 for i in range(n)]
    amounts[7] = 1
    ats = list(range(0, n * 1_000, 1_000))
    window = [Interval(0, HOUR), Interval(0, 1_000_000)]
    got = store.observe_many(["p"] * n, [f"e{i}" for i in range(n)], ats, amounts, window,
                             totals=True)
    assert set(got.statuses) == {Status.NEW}
    assert got.totals[0][-1] == sum(amounts) > 2**64
    assert got.totals[1][-1] == sum(amounts[-1_000:])
    assert all(got.totals[0][i] == sum(amounts[:i + 1]) for i in range(0, n, 97))
    assert store.tally("p", ats[-1], window) == (Tally(n, sum(amounts)),
                                                  Tally(1_000, sum(amounts[-1_000:])))
    one = store.observe(Observation("q", "max", 5, MAX_AMOUNT), window)
    assert one.tallies == (Tally(1, MAX_AMOUNT),) * 2


@pytest.mark.parametrize(("field", "values"), [
    ("amounts", [1, 10**24]), ("amounts", [-1, 1]), ("ats", [0, 2**60]),
    ("ats", [-(2**60), 0]),
])
def test_amounts_and_times_outside_the_range_are_refused(
    store: RedisWindowStore, field: str, values: list[int]
) -> None:
    ats, amounts = ([0, 1], values) if field == "amounts" else (values, [1, 1])
    with pytest.raises(ValidationError, match=field):
        store.observe_many(["p", "p"], ["a", "b"], ats, amounts, SPIKE)


def _feed(url: str, namespace: str, part: int, parts: int, n: int) -> None:
    # Processes run at their own pace: allow them to be hours apart in event time.
    store = RedisWindowStore.from_url(url, namespace=namespace,
                                      allowed_lateness=timedelta(hours=5))
    rows = [i for i in range(n) if i % parts == part]
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        store.observe_many([f"p{i % 13}" for i in chunk], [f"e{i}" for i in chunk],
                           [i * 1_000_000 for i in chunk], [i for i in chunk], SPIKE)
    store.close()


def test_four_processes_one_truth(redis_url: str) -> None:
    namespace = f"mp{uuid.uuid4().hex[:8]}"
    n = 8_000
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_feed, args=(redis_url, namespace, p, 4, n)) for p in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    memory = MemoryWindowStore(allowed_lateness=timedelta(hours=5))
    memory.observe_many([f"p{i % 13}" for i in range(n)], [f"e{i}" for i in range(n)],
                        [i * 1_000_000 for i in range(n)], list(range(n)), SPIKE)
    shared = RedisWindowStore.from_url(redis_url, namespace=namespace,
                                       allowed_lateness=timedelta(hours=5))
    end = n * 1_000_000
    wide = [Interval(0, 3 * 3600 * 1_000_000)]
    for k in range(13):
        assert shared.tally(f"p{k}", end, wide) == memory.tally(f"p{k}", end, wide)
    shared.flush_namespace()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(stream=observations(), intervals=intervals_st, size=st.integers(1, 15),
       totals=st.booleans(), copies=st.booleans())
def test_every_named_call_made_again_answers_the_same(
    redis_url: str, stream: list[tuple[Observation, int]], intervals: list[Interval],
    size: int, totals: bool, copies: bool,
) -> None:
    # Whatever the stream (ties, late, future, redelivered), each call made twice under its
    # name answers the second time exactly as the first, and as the model answers it once,
    # whether the client answers runs from its copies or the server answers them.
    store = RedisWindowStore.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}",
                                      allowed_lateness=timedelta(microseconds=LATENESS),
                                      copies=copies)
    model = ModelStore(LATENESS)
    try:
        for number, start in enumerate(range(0, len(stream), size)):
            not_after = stream[start][1]
            chunk = [obs for obs, _ in stream[start:start + size]]
            columns = ([o.key for o in chunk], [o.event_id for o in chunk],
                       [o.at for o in chunk], [o.amount for o in chunk])
            first = store.observe_many(*columns, intervals, totals=totals,
                                       batch=f"call-{number}", not_after=not_after)
            again = store.observe_many(*columns, intervals, totals=totals,
                                       batch=f"call-{number}", not_after=not_after)
            assert again == first
            for i, obs in enumerate(chunk):
                assert first.observed(i).status is model.observe(
                    obs, intervals, not_after=not_after).status
    finally:
        store.flush_namespace()
        store.close()
