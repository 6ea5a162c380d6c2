"""The columnar store and its windows: the store contract, the dedup horizon, future events,
and memory bounded by the horizons (quiet keys give their events back, idle keys are dropped
whole).

:class:`ColumnarWindowStore` passes the contract and matches the naive store; the structure's
documented exceptions are checked through :class:`ColumnarStore`, a thin :class:`WindowStore`
over :class:`ColumnarWindows` that leaves the keys it drops for the test to take."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta

import attrs
import pytest

from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.lifecycle import LifecycleTable
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.registry import window_store_from_url
from auptimate_core.errors import InvalidURL, StoreError, ValidationError
from auptimate_core.store import (
    DAY,
    Interval,
    LifecycleState,
    Observation,
    Observed,
    ObservedBatch,
    Status,
    Tally,
    Transition,
    WindowStore,
)
from auptimate_core.testing.window_store import WindowStoreContract
from auptimate_core.windows import columnar, composites, idlog, keycodes
from auptimate_core.windows.columnar import ColumnarWindows

from .naive_store import NaiveWindowStore

MINUTE = 60_000_000
HOUR = 60 * MINUTE
SPIKE = [Interval(0, MINUTE), Interval(MINUTE, 60 * MINUTE)]


class ColumnarStore:
    """A WindowStore on :class:`ColumnarWindows` alone (no lock: one thread)."""

    def __init__(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> None:
        self.windows = ColumnarWindows(dedup_horizon_us)
        self.lateness = allowed_lateness_us
        self.reach = 0
        self.lifecycle = LifecycleTable()
        self.keep_dropped = False  # leave the dropped keys for the test to take

    @property
    def keep(self) -> int:
        return self.lateness + self.reach

    def observe(
        self, observation: Observation, intervals: Sequence[Interval], *,
        not_after: int | None = None,
    ) -> Observed:
        return self.observe_many(
            [observation.key], [observation.event_id], [observation.at], [observation.amount],
            intervals, totals=True, not_after=not_after).observed(0)

    def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        deliveries: Sequence[str] | None = None, batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        spans = [(iv.offset, iv.reach) for iv in intervals]
        self.reach = max([self.reach, *(reach for _, reach in spans)])
        got = self.windows.observe_many(keys, event_ids, ats, amounts, spans, totals,
                                        self.lateness, self.keep, not_after=not_after)
        if not self.keep_dropped:
            self.lifecycle.forget(self.windows.take_dropped())
        return got

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        return self.windows.tally(key, at, [(iv.offset, iv.reach) for iv in intervals])

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        return self.lifecycle.states(pairs, batch)

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        return self.lifecycle.transition(transitions)

    def firing(self, rule: str) -> frozenset[str]:
        return self.lifecycle.firing(rule)

    def close(self) -> None:
        pass


class TestColumnarWindowStore(WindowStoreContract):
    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        return ColumnarWindowStore(
            allowed_lateness=timedelta(microseconds=allowed_lateness_us),
            dedup_horizon=timedelta(microseconds=dedup_horizon_us))


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Compactions (events, ids, keys) from a few dozen entries on."""
    monkeypatch.setattr(columnar, "_MIN_COMPACT", 64)
    monkeypatch.setattr(columnar, "_MIN_EVENTS", 64)
    monkeypatch.setattr(idlog, "_SMALL_CHUNK", 16)
    yield


def test_the_memory_store_points_to_the_columnar_store() -> None:
    with pytest.raises(ValidationError, match="ColumnarWindowStore") as caught:
        MemoryWindowStore(window="columnar")  # type: ignore[arg-type]
    assert caught.value.field == "window"


def test_urls_name_the_columnar_store() -> None:
    for url in ("memory+columnar://", "memory+columnar", "memory://?window=columnar"):
        store = window_store_from_url(url, dedup_horizon=timedelta(hours=1))
        assert isinstance(store, ColumnarWindowStore), url
        assert store.dedup_horizon == timedelta(hours=1)
    with pytest.raises(InvalidURL, match="nothing after it"):
        window_store_from_url("memory+columnar://somewhere?window=exact")


def test_the_columnar_store_refuses_what_it_cannot_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="allowed_lateness"):
        ColumnarWindowStore(allowed_lateness=timedelta(days=13))
    store = ColumnarWindowStore()
    with pytest.raises(ValidationError, match="12.7 days"):
        store.observe(Observation("p", "a", 0), [Interval(0, 13 * DAY)])
    # Times far apart rebase the columns; what is older than the horizon is late.
    assert store.observe(Observation("p", "a", 0), SPIKE).status is Status.NEW
    assert store.observe(Observation("p", "b", 400 * DAY), SPIKE).status is Status.NEW
    assert store.observe(Observation("q", "c", 1), SPIKE).status is Status.LATE
    assert store.tally("p", 400 * DAY, SPIKE)[0].count == 1
    store._check()
    monkeypatch.setattr(keycodes, "CODE_LIMIT", 3)
    with pytest.raises(StoreError, match="3 keys"):
        store.observe_many(["r", "s"], ["r1", "s1"], [400 * DAY] * 2, [1, 1], SPIKE)


def test_a_dropped_key_loses_its_lifecycle_unless_firing(small: None) -> None:
    store = ColumnarWindowStore(dedup_horizon=timedelta(hours=1))
    store.observe_many(["a", "b"], ["a1", "b1"], [0, 0], [1, 1], SPIKE)
    assert store.transition([Transition("a", "spike", True, 0), Transition("b", "spike", True, 0),
                             Transition("b", "spike", False, 1)]) == [True, True, True]
    for step in range(1, 40):  # three hours and more of traffic elsewhere
        at = step * 5 * MINUTE
        store.observe_many(["c"] * 10, [f"c{step}-{i}" for i in range(10)],
                           [at + i for i in range(10)], [1] * 10, SPIKE)
    assert store.size()["keys"] == 1
    states = store.states([("a", "spike"), ("b", "spike")])
    assert states[("a", "spike")].firing and states[("b", "spike")] == LifecycleState()
    assert store.firing("spike") == frozenset({"a"})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_the_naive_store_through_compactions(seed: int, small: None) -> None:
    """A long messy stream (redeliveries old and new, events out of order within the allowed
    lateness and past it, idle pools coming back, batches of every size) against the naive
    store, with the columnar store compacting its events and ids every few batches."""
    rng = random.Random(seed)
    lateness = 2 * MINUTE
    store = ColumnarWindowStore(allowed_lateness=timedelta(microseconds=lateness))
    naive = NaiveWindowStore(lateness)
    sent: list[tuple[str, str, int, int]] = []
    at = 0
    for serial in range(6_000):
        at += rng.randrange(0, 3 * 1_000_000)
        roll = rng.random()
        if sent and roll < 0.08:
            sent.append(rng.choice(sent[-200:] if roll < 0.05 else sent))  # redelivered
            continue
        pool = f"p{rng.randrange(8 if roll < 0.9 else 40)}"  # a few busy, many idle ones
        when = at - rng.randrange(0, 3 * lateness) if roll > 0.95 else at
        sent.append((pool, f"e{serial}", when, rng.randrange(0, 1_000)))
    start = 0
    while start < len(sent):
        size = rng.choice([1, 7, 64, 300, 900])
        part = sent[start:start + size]
        start += size
        args = ([p for p, _, _, _ in part], [e for _, e, _, _ in part],
                [t for _, _, t, _ in part], [m for _, _, _, m in part], SPIKE)
        got, want = store.observe_many(*args, totals=True), naive.observe_many(*args, totals=True)
        assert (got.statuses, got.counts, got.totals, got.first_seen) == (
            want.statuses, want.counts, want.totals, want.first_seen)
        store._check()
    for pool in ("p0", "p3", "p39"):
        assert store.tally(pool, at, SPIKE) == naive.tally(pool, at, SPIKE)


def test_a_future_event_changes_no_window_state() -> None:
    store = ColumnarStore(5 * MINUTE)
    windows = store.windows
    assert store.observe(Observation("p", "a", HOUR), SPIKE).status is Status.NEW
    before = (windows.base, windows.newest, windows.size()["events"])
    # A year ahead, and far enough to have moved the time origin, in a batch and alone.
    year = 365 * 24 * HOUR
    got = store.observe_many(["p", "q", "p"], ["f1", "f2", "f3"], [year, 2 * year, HOUR + 1],
                             [1, 1, 1], SPIKE, not_after=2 * HOUR)
    assert got.statuses == [Status.FUTURE, Status.FUTURE, Status.NEW]
    assert got.first_seen == [HOUR, None, HOUR]
    assert store.observe(Observation("q", "f4", year), SPIKE, not_after=HOUR).status is (
        Status.FUTURE)
    assert (windows.base, windows.newest, windows.size()["events"]) == (
        before[0], HOUR + 1, before[2] + 1)
    # Later events of every key are on time; the future ones are remembered.
    for key, at in (("p", HOUR + 2), ("q", HOUR - MINUTE), ("r", HOUR)):
        assert store.observe(Observation(key, f"{key}-on-time", at), SPIKE).status is Status.NEW
    again = store.observe_many(["p", "q"], ["f1", "f2"], [HOUR + 3, HOUR + 3], [1, 1], SPIKE,
                               not_after=2 * HOUR)
    assert again.statuses == [Status.DUPLICATE, Status.DUPLICATE]


def test_redelivered_hours_later_is_a_duplicate_through_compactions(small: None) -> None:
    """Redelivered 3 hours (then 23 hours) later, with its original time and with a new one,
    while other traffic compacts events and ids many times over: one count."""
    store = ColumnarStore(5 * MINUTE)
    assert store.observe(Observation("p", "x", 0, 7), SPIKE).status is Status.NEW
    late_one = Observation("p", "late", 0)  # LATE once p has moved on: remembered too
    at = 0
    for hours, serial in ((3, 0), (23, 1)):
        while at < hours * HOUR:
            at += 30_000_000
            store.observe_many(["p", "q"], [f"p{at}", f"q{at}"], [at, at], [1, 1], SPIKE)
            if at == 10 * MINUTE and serial == 0:
                assert store.observe(late_one, SPIKE).status is Status.LATE
        assert store.windows.size()["events"] < 1_000  # compacted all along
        for when in (0, at, at - MINUTE):
            assert store.observe(Observation("p", "x", when), SPIKE).status is (
                Status.DUPLICATE), (hours, when)
            assert store.observe(attrs.evolve(late_one, at=when), SPIKE).status is (
                Status.DUPLICATE)
    at += 2 * DAY
    store.observe_many(["p"], ["after"], [at], [1], SPIKE)
    store.observe_many(["p"], ["after2"], [at + 1], [1], SPIKE)
    assert store.observe(Observation("p", "x", at), SPIKE).status is Status.NEW
    store.windows._check()


NEVER = composites.NEVER


class GiveBackModel:
    """The contract's model (see :class:`ModelStore`) with the columnar store's documented
    exceptions, following the store's own choices of when to make them (:meth:`follow`):

    - a key's *floor*: its events up to it were given back, so an event of it whose windows
      reach the floor is ``LATE``; a key new to the store starts with the newest event time of
      any key dropped so far as its floor;
    - a key dropped whole is forgotten (events, ids, first-seen time).

    ``follow`` checks that each choice was one the store may make."""

    def __init__(self, lateness: int, horizon: int) -> None:
        self.lateness, self.horizon = lateness, horizon
        self.events: dict[str, list[tuple[int, int]]] = {}
        self.newest: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.floor: dict[str, int] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.store_newest: int | None = None
        self.dropped = NEVER
        self.reach = 0

    @property
    def memory(self) -> int:
        return max(self.horizon, self.lateness + self.reach)

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        out = []
        for interval in intervals:
            low, high = interval.bounds(at)
            hits = [amount for t, amount in self.events.get(key, []) if low < t <= high]
            out.append(Tally(len(hits), sum(hits)))
        return tuple(out)

    def observe(
        self, obs: Observation, intervals: Sequence[Interval], not_after: int | None
    ) -> Observed:
        self.reach = max([self.reach, *(iv.reach for iv in intervals)])
        key = obs.key
        if key not in self.events:
            self.events[key] = []
            if self.dropped > NEVER:
                self.floor[key] = self.dropped
        newest = self.newest.get(key)
        first = self.first.get(key)
        recorded = self.ids.get((key, obs.event_id))
        if recorded is not None and (newest is None or recorded > newest - self.memory):
            return Observed(Status.DUPLICATE, (), first)
        if not_after is not None and obs.at > not_after:
            self.ids[(key, obs.event_id)] = not_after
            return Observed(Status.FUTURE, (), first)
        floor = self.floor.get(key)
        if (newest is not None and obs.at < newest - self.lateness) or (
                floor is not None and obs.at < floor + self.reach):
            if newest is None:
                newest = max(obs.at, self.store_newest if self.store_newest is not None
                             else obs.at)
            self.ids[(key, obs.event_id)] = newest
            return Observed(Status.LATE, (), first)
        self.ids[(key, obs.event_id)] = obs.at
        self.events[key].append((obs.at, obs.amount))
        self.newest[key] = max(self.newest.get(key, obs.at), obs.at)
        self.first[key] = min(self.first.get(key, obs.at), obs.at)
        self.store_newest = max(self.store_newest or obs.at, obs.at)
        return Observed(Status.NEW, self.tally(key, obs.at, intervals), self.first[key])

    def follow(self, windows: ColumnarWindows) -> None:
        """Take the store's give-backs and drops since the last call, checking each."""
        keep = self.lateness + self.reach
        now = self.store_newest if self.store_newest is not None else NEVER
        dropped = windows.take_dropped()
        assert len(set(dropped)) == len(dropped)
        for key in list(self.events):
            code = windows.keys.codes.get(key)
            assert (code is None) is (key in dropped), key
            if code is None:
                ids = [at for (k, _), at in self.ids.items() if k == key]
                assert max([self.newest.get(key, NEVER), *ids]) <= now - self.memory, key
                self.dropped = max(self.dropped, self.newest.get(key, NEVER))
                for name in (self.events, self.newest, self.first, self.floor):
                    name.pop(key, None)  # type: ignore[attr-defined]
                self.ids = {pair: at for pair, at in self.ids.items() if pair[0] != key}
                continue
            floor = int(windows.keys.floor[code])
            if floor == self.floor.get(key, NEVER):
                continue
            if floor == NEVER:  # no longer in reach of any event on time
                assert self.newest[key] >= self.floor[key] + keep
                del self.floor[key]
                continue
            assert floor == self.newest[key] <= now - keep, key  # quiet: events given back
            self.floor[key] = floor
            self.events[key] = [(t, m) for t, m in self.events[key] if t > floor]
        assert windows.keys.dropped == self.dropped


def messy_stream(rng: random.Random, n: int, lateness: int) -> list[tuple[Observation, int]]:
    """Events with the ``not_after`` each is observed under: busy keys, many keys that go quiet
    for hours and come back (some with old events), late and too-late events, future ones, and
    redeliveries, with their original time or a new one, minutes or hours later."""
    out: list[tuple[Observation, int]] = []
    clock = 10 * DAY
    for serial in range(n):
        clock += rng.randrange(0, 40_000_000)
        not_after = clock + 5 * MINUTE
        roll = rng.random()
        if out and roll < 0.06:
            again = rng.choice(out[-300:] if roll < 0.03 else out)[0]
            out.append((again if roll < 0.045 else attrs.evolve(again, at=clock), not_after))
            continue
        busy = roll < 0.85
        key = f"p{rng.randrange(6)}" if busy else f"q{rng.randrange(60)}"
        at = clock
        if roll > 0.97:
            at = clock + rng.choice([5 * MINUTE + 1, HOUR, 400 * DAY])  # future
        elif roll > 0.93:
            at = clock - rng.randrange(0, 3 * lateness)  # late, or too late
        elif roll > 0.91:
            at = clock - rng.randrange(0, 4 * HOUR)  # far behind: a quiet key's old event
        out.append((Observation(key, f"e{serial}", at, rng.randrange(0, 1_000)), not_after))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_matches_the_model_through_compactions_give_backs_and_drops(
    seed: int, small: None
) -> None:
    """A long messy stream in batches of every size against the model (with the documented
    exceptions it allows), the store compacting events, forgetting ids and dropping keys
    every few batches."""
    rng = random.Random(seed)
    lateness, horizon = 2 * MINUTE, 90 * MINUTE
    store = ColumnarStore(lateness, horizon)
    store.keep_dropped = True
    model = GiveBackModel(lateness, horizon)
    stream = messy_stream(rng, 6_000, lateness)
    statuses: set[Status] = set()
    start = 0
    while start < len(stream):
        size = rng.choice([1, 7, 64, 300, 900])
        part = stream[start:start + size]
        start += size
        not_after = part[-1][1]  # the clock when the batch is observed
        chunk = [obs for obs, _ in part]
        got = store.observe_many(
            [o.key for o in chunk], [o.event_id for o in chunk], [o.at for o in chunk],
            [o.amount for o in chunk], SPIKE, totals=True, not_after=not_after)
        for i, obs in enumerate(chunk):
            assert got.observed(i) == model.observe(obs, SPIKE, not_after), (start, i, obs)
        statuses.update(got.statuses)
        store.windows._check()
        model.follow(store.windows)
    assert statuses == set(Status)
    assert model.dropped > NEVER and any(f > NEVER for f in store.windows.keys.floor)
    for key, newest in model.newest.items():
        if key not in model.floor:
            assert store.tally(key, newest, SPIKE) == model.tally(key, newest, SPIKE)


def _traffic(store: ColumnarStore, start: int, end: int, gap: int, pools: int = 100) -> None:
    """Events every ``gap`` microseconds of ``[start, end)`` over ``pools`` busy keys, in
    batches of a thousand (all made here, so what the store keeps of them is its own)."""
    ats = list(range(start, end, gap))
    for lo in range(0, len(ats), 1_000):
        part = ats[lo:lo + 1_000]
        store.observe_many([f"busy-{at // gap % pools}" for at in part],
                           [f"b-{at}" for at in part], part, [100] * len(part), SPIKE,
                           not_after=part[-1])


def _traced(run: Callable[[], dict[str, int]]) -> dict[str, int]:
    gc.collect()
    tracemalloc.start()
    try:
        return run()
    finally:
        tracemalloc.stop()


def _now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_idle_keys_are_dropped_whole_and_memory_returns_to_its_baseline() -> None:
    """100,000 keys with an event each, then three hours of event time of traffic on other
    keys, dedup horizon one hour: the store ends as large as one that only saw the traffic."""
    start = 10 * DAY

    def run(idle: int) -> dict[str, int]:
        store = ColumnarStore(5 * MINUTE, HOUR)
        for lo in range(0, idle, 10_000):
            n = range(lo, min(lo + 10_000, idle))
            store.observe_many([f"idle-{i}" for i in n], [f"i-{i}" for i in n],
                               [start - i for i in n], [100] * len(n), SPIKE)
        peak = _now()
        _traffic(store, start, start + 3 * HOUR, 500_000)
        store.windows._check()
        return {"peak": peak, "end": _now(), **store.windows.size()}

    baseline = _traced(lambda: run(0))
    idle = _traced(lambda: run(100_000))
    grown = idle["peak"] - baseline["peak"]
    assert grown > 10_000_000, (idle, baseline)  # the idle keys cost something
    assert idle["keys"] == baseline["keys"] == 100
    assert idle["events"] <= baseline["events"] and idle["ids"] <= baseline["ids"]
    assert idle["end"] <= baseline["end"] + 0.05 * grown, (idle, baseline)


def _held_by_columnar() -> int:
    """Bytes the traced allocations made in the columnar modules hold (their arrays: events,
    amounts, per-key times; not the id log's)."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, module.__file__ or "")
         for module in (columnar, composites, keycodes)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_a_quiet_key_gives_its_events_back() -> None:
    """A burst of 200,000 events on one key, then quiet while other keys go on: once the
    store's newest event is past the burst's windows, its events are given back (its ids stay
    for the dedup horizon, a day); an event of it that would need them is LATE."""
    start = 10 * DAY
    burst = 200_000
    gap = 10 * MINUTE // burst

    def run() -> dict[str, int]:
        store = ColumnarStore(5 * MINUTE)
        for lo in range(0, burst, 10_000):
            n = range(lo, lo + 10_000)
            store.observe_many(["burst"] * len(n), [f"x-{i}" for i in n],
                               [start + i * gap for i in n], [100 + i for i in n], SPIKE)
        held = _held_by_columnar()
        last = start + (burst - 1) * gap
        _traffic(store, start, last + 3 * HOUR, 1_000_000)
        size = store.windows.size()
        assert size["events"] < 20_000 and size["ids"] > burst, size
        again = store.observe_many(["burst"] * 3, ["x-5", "x-late", "x-new"],
                                   [start, last + 61 * MINUTE - 1, last + 61 * MINUTE],
                                   [1] * 3, SPIKE)
        assert again.statuses == [Status.DUPLICATE, Status.LATE, Status.NEW]
        assert again.counts == [[0, 0, 1], [0, 0, 0]]
        store.windows._check()
        return {"held": held, "end": _held_by_columnar(), **size}

    used = _traced(run)
    assert used["held"] > 16 * burst  # a time and an amount for each event
    assert used["end"] < 16 * used["events"] + 100_000, used
