"""The memory store passes the shared contract, stays bounded, and is thread-safe; the bounds
and thread-safety tests run on the columnar store too."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest

from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.store import DAY, Interval, Observation, Status, WindowStore
from auptimate_core.testing.window_store import WindowStoreContract

from .naive_store import NaiveWindowStore

MINUTE = 60_000_000
TINY = timedelta(microseconds=1)  # a dedup horizon shorter than the windows: they bound the ids
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]


def local_store(window: str, **options: Any) -> MemoryWindowStore | ColumnarWindowStore:
    """The memory store on ``window`` ("exact", "ring"), or the columnar store ("columnar")."""
    if window == "columnar":
        return ColumnarWindowStore(**options)
    return MemoryWindowStore(window=window, **options)  # type: ignore[arg-type]


class TestMemoryStore(WindowStoreContract):
    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return MemoryWindowStore(allowed_lateness=timedelta(microseconds=allowed_lateness_us),
                                 dedup_horizon=timedelta(microseconds=dedup_horizon_us))


class TestMemoryStoreOnRings(WindowStoreContract):
    """The same store on bucket rings (narrow buckets, so windows span many of them)."""

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return MemoryWindowStore(allowed_lateness=timedelta(microseconds=allowed_lateness_us),
                                 window="ring", bucket_width=timedelta(microseconds=7),
                                 dedup_horizon=timedelta(microseconds=dedup_horizon_us))


class TestNaiveStore(WindowStoreContract):
    """The reference store of the engine's tests keeps the same contract."""

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return NaiveWindowStore(allowed_lateness_us, dedup_horizon_us)


@pytest.mark.parametrize("window", ["exact", "columnar"])
def test_memory_is_bounded_by_the_windows_not_the_stream(window: str) -> None:
    store = local_store(window, dedup_horizon=TINY)
    rng = random.Random(3)
    at = 0
    peak_events = peak_keys = 0
    for step in range(300):
        keys, ids, ats = [], [], []
        for i in range(1_000):
            at += rng.randrange(0, 4_000_000)  # about 30 events a minute in all
            keys.append(f"pool-{rng.randrange(2_000)}")
            ids.append(f"t{step}-{i}")
            ats.append(at)
        store.observe_many(keys, ids, ats, [1] * len(keys), SPIKE)
        size = store.size()
        peak_events = max(peak_events, size["events"])
        peak_keys = max(peak_keys, size["keys"])
        assert size["ids"] <= _id_bound(window, size)
        store._check()
    # 300,000 events over ~10 days; an hour and six minutes of them is about 2,000. An exact
    # window trims once it holds a quarter more than its live events and 8 more (over 2,000
    # pools); columnar windows compact once their array has doubled, and not below 65,536.
    assert peak_events < (5_000 + 2_000 * 8 if window == "exact" else 2 * 65_536)
    assert peak_keys <= 2_000


def test_one_event_at_a_time_drops_the_pools_that_went_quiet() -> None:
    """observe_event (the per-event path of process(tx)) sweeps as observe_many does: pools
    that go quiet are dropped, so the keys held follow the pools in use, not every pool seen."""
    store = MemoryWindowStore(dedup_horizon=TINY)
    spike = tuple(SPIKE)
    rng = random.Random(5)
    at = 0
    peak_keys = 0
    for step in range(100):
        for i in range(1_000):
            at += rng.randrange(0, 4_000_000)
            # 200 pools in use at a time; every tenth step, 200 new ones
            store.observe_event(f"pool-{step // 10}-{rng.randrange(200)}", f"t{step}-{i}", at,
                                1, spike, False, None)
        peak_keys = max(peak_keys, store.size()["keys"])
    store._check()
    assert peak_keys <= 600  # 2,000 pools seen


def _id_bound(window: str, size: dict[str, int]) -> int:
    """Ids held at most, with a dedup horizon shorter than the windows: per-pool maps forget
    lazily (at twice what they need, 64 at least) the ids of twice the windows' horizon (a
    quiet key's newest may move up by one horizon); the columnar id log once it has tripled
    since its last compaction (65,536 at least)."""
    if window == "columnar":
        return max(4 * size["events"], 2 * 65_536)
    return 4 * size["events"] + 64 * size["keys"]


def test_late_and_duplicate_statuses() -> None:
    store = MemoryWindowStore(allowed_lateness=timedelta(seconds=10))
    seconds = 1_000_000
    assert store.observe(Observation("p", "a", 100 * seconds), SPIKE).status is Status.NEW
    assert store.observe(Observation("p", "b", 90 * seconds), SPIKE).status is Status.NEW
    assert store.observe(Observation("p", "c", 89 * seconds), SPIKE).status is Status.LATE
    assert store.observe(Observation("p", "a", 100 * seconds), SPIKE).status is Status.DUPLICATE
    assert store.observe(Observation("q", "c", 1), SPIKE).status is Status.NEW


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        MemoryWindowStore(window="tree")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bucket_width"):
        MemoryWindowStore(window="ring", bucket_width=timedelta(0))
    with pytest.raises(ValueError, match="allowed_lateness"):
        MemoryWindowStore(allowed_lateness=timedelta(seconds=-1))


@pytest.mark.parametrize("window", ["exact", "ring", "columnar"])
def test_safe_to_share_between_threads(window: str) -> None:
    store = local_store(window)

    def feed(worker: int) -> None:
        for start in range(0, 5_000, 100):
            n = range(start, start + 100)
            store.observe_many([f"p{i % 7}" for i in n], [f"w{worker}-{i}" for i in n],
                               [i * 1_000 for i in n], [1] * 100, SPIKE)

    threads = [threading.Thread(target=feed, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store._check()
    total = sum(store.tally(f"p{k}", 5_000 * 1_000, [Interval(0, 10**9)])[0].count
                for k in range(7))
    assert total == 4 * 5_000


@pytest.mark.parametrize(("window", "events"),
                         [("exact", 1_000_000), ("ring", 200_000), ("columnar", 1_000_000)])
def test_peak_size_is_bounded_on_a_long_fast_stream(window: str, events: int) -> None:
    """A million events (rings: fewer, they are slower on quiet pools) over 10,000 pools and
    ten hours of event time: the peak size is set by what the horizon (an hour and six minutes,
    plus the lazy trim's quarter) holds, not by the length of the stream, and stays flat once
    the first horizon has passed."""
    store = local_store(window, dedup_horizon=TINY)
    rng = random.Random(11)
    pools = [f"pool-{i}" for i in range(10_000)]
    gap = 36_000_000_000 // events  # ten hours in all
    keep = 66 * MINUTE  # allowed lateness (5 minutes) plus the spike reach (61 minutes)
    at, peak, peak_first_half = 0, {"events": 0, "ids": 0, "keys": 0, "slots": 0}, 0
    batch = 10_000
    for start in range(0, events, batch):
        ats = []
        for _ in range(batch):
            at += rng.randrange(0, 2 * gap)
            ats.append(at)
        keys = [pools[i] for i in rng.choices(range(10_000), k=batch)]
        ids = [f"e{start + i}" for i in range(batch)]
        store.observe_many(keys, ids, ats, [1] * batch, SPIKE)
        size = store.size()
        peak = {name: max(value, size[name]) for name, value in peak.items()}
        if start < events // 2:
            peak_first_half = peak["events"]
        assert size["ids"] <= _id_bound(window, size)
    # A ring may hold two of its (five-minute) buckets past the horizon.
    reach = keep + (2 * 5 * MINUTE if window == "ring" else 0)
    per_horizon = events * reach // 36_000_000_000
    # Columnar windows compact once their array has doubled since the last compaction.
    # Exact windows hold up to a quarter more than their live events, and 8 more, per pool.
    slack = 2.3 if window == "columnar" else 1.35
    extra = 8 * 10_000 if window == "exact" else 0
    assert peak["events"] <= slack * per_horizon + extra, (peak, per_horizon)
    assert peak["events"] <= 1.1 * peak_first_half  # flat after the first horizon
    assert peak["keys"] <= 10_000
    if window == "ring":
        assert peak["slots"] <= 10_000 * (keep // MINUTE + 2)
    store._check()


def test_a_pool_with_only_events_ahead_of_the_clock_forgets_their_ids() -> None:
    """Its ids are remembered for the dedup horizon of the store's time, not for ever: such a
    pool has no newest event of its own to measure the horizon from."""
    intervals = (Interval(0, 60_000_000), Interval(60_000_000, 3_600_000_000))
    store = MemoryWindowStore()
    day = 86_400_000_000
    for k in range(200):  # twenty days, ten steps a day
        at = k * day // 10
        store.observe_many(["p"], [f"p{k}"], [at], [0], intervals, not_after=at + 1)
        ahead = [f"q{k}-{j}" for j in range(50)]
        got = store.observe_many(["q"] * 50, ahead, [at + 10**12] * 50, [0] * 50, intervals,
                                 not_after=at + 1)
        assert {status.value for status in got.statuses} == {"future"}
    assert store.size()["ids"] < 1_000  # of the 10,000 ids ahead: about a day and a half's
    again = store.observe_many(["q"], ["q199-0"], [10**13], [0], intervals, not_after=1)
    assert again.statuses[0].value == "duplicate"


@pytest.mark.parametrize("per_event", [True, False])
def test_a_pool_first_seen_ahead_of_the_clock_is_swept_in_time(per_event: bool) -> None:
    """A backfill: the clock is far past the events. A pool whose first event was ahead even
    of it is filed for a look when that id would be forgotten; once its own events come, it
    is filed again by them, as every pool is (the invariants of ``_check``)."""
    intervals = (Interval(0, 60_000_000), Interval(60_000_000, 3_600_000_000))
    store = MemoryWindowStore()
    store.observe_many([], [], [], [], intervals)
    clock = 10**14

    def observe(key: str, event: str, at: int) -> None:
        if per_event:
            store.observe_event(key, event, at, 0, intervals, False, clock)
        else:
            store.observe_many([key], [event], [at], [0], intervals, not_after=clock)

    observe("q", "ahead", 10**15)
    at = 0
    for k in range(6_000):
        at += 1_000_000
        observe(f"p{k % 30}", f"e{k}", at)
        if k == 5_000:
            observe("q", "own", at)
    store._check()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("window", ["exact", "ring"])
def test_a_sweep_ends_when_a_pool_has_only_ids_from_long_ago(window: str) -> None:
    """A pool whose only event came ahead of the clock, looked at first by a sweep that comes
    long after (the store's newest far past its id, still inside the dedup horizon), is filed
    for a later sweep: a ring store's sweep once filed it again into a bucket already due,
    looking at it for ever."""
    store = MemoryWindowStore(window=window)  # type: ignore[arg-type]
    start = 100 * 60 * MINUTE
    store.observe_many(["p"], ["a"], [start], [0], SPIKE)
    ahead = store.observe_many(["q"], ["ahead"], [start + 10 * MINUTE], [0], SPIKE,
                               not_after=start + MINUTE)
    assert ahead.statuses == [Status.FUTURE]
    at = start
    for k in range(6_000):  # ten seconds apart: the first sweep comes some 11 hours later
        at += 10_000_000
        store.observe_many(["p"], [f"e{k}"], [at], [0], SPIKE)
    store._check()
    again = store.observe_many(["q"], ["ahead"], [at], [0], SPIKE)
    assert again.statuses == [Status.DUPLICATE]


@pytest.mark.parametrize("window", ["exact", "ring"])
def test_a_pool_quiet_past_its_windows_gives_them_back_but_keeps_its_ids(window: str) -> None:
    """Quiet for three hours (past the windows, inside the dedup horizon): the sweep gives back
    the pool's events, not its ids, so a redelivery is still a duplicate."""
    store = MemoryWindowStore(window=window)  # type: ignore[arg-type]
    start = 100 * 60 * MINUTE
    n = 30  # more than a small window holds: filed for a look once its windows have passed
    store.observe_many(["q"] * n, [f"q{k}" for k in range(n)],
                       [start + k for k in range(n)], [0] * n, SPIKE)
    at = start
    for k in range(3 * 3_600):
        at += 1_000_000
        store.observe_many(["p"], [f"p{k}"], [at], [0], SPIKE)
    assert store.size()["events"] < 3_600 + 1_000  # q's events were given back
    again = store.observe_many(["q", "q"], ["q0", "q29"], [start, at], [0, 0], SPIKE)
    assert again.statuses == [Status.DUPLICATE, Status.DUPLICATE]
    store._check()


@pytest.mark.parametrize("window", ["exact", "ring"])
def test_a_sweep_keeps_a_small_pool_still_inside_its_windows(window: str) -> None:
    """The first sweep looks at every pool (each is filed when it is new); one with a few
    recent events keeps them and its ids."""
    store = MemoryWindowStore(window=window)  # type: ignore[arg-type]
    start = 100 * 60 * MINUTE
    store.observe_many(["q"] * 3, ["q0", "q1", "q2"], [start, start + 1, start + 2], [0] * 3,
                       SPIKE)
    at = start
    for k in range(5_000):  # ten milliseconds apart: a sweep comes within the minute
        at += 10_000
        store.observe_many(["p"], [f"p{k}"], [at], [0], SPIKE)
    got = store.observe_many(["q", "q"], ["q1", "q3"], [start + 1, at], [0, 0], SPIKE)
    assert got.statuses == [Status.DUPLICATE, Status.NEW]
    assert got.counts[0][1] == 4  # its three events and itself, in the last minute
    store._check()


def test_a_batch_sweeps_before_an_event_at_the_very_time_a_bucket_falls_due() -> None:
    """The store's newest lands exactly on the time the sweep's next bucket falls due, and the
    next event is of a pool that sweep gives back: one batch answers as one call per event
    does (the sweep comes first: LATE)."""
    second = 1_000_000
    keys = ["q"] * 30 + ["p"] * 8_200 + ["q"]
    ids = [f"e{i}" for i in range(len(keys))]
    # q's 30 events are due a look in the bucket that falls due at 4,455 s (the windows'
    # horizon is 66 minutes, the buckets an eighth of it); p's last event lands on it.
    ats = list(range(30)) + [second + (4_454 * second * k) // 8_199 for k in range(8_200)]
    ats.append(1_000 * second)  # in order for q, its windows reaching what is given back
    one_by_one = MemoryWindowStore()
    alone = [one_by_one.observe_many([k], [i], [a], [0], SPIKE).statuses[0]
             for k, i, a in zip(keys, ids, ats)]
    batched = MemoryWindowStore()
    got = batched.observe_many(keys, ids, ats, [0] * len(keys), SPIKE)
    assert alone[-1] is Status.LATE
    assert got.statuses == alone
