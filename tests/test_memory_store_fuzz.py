"""Hostile input for ``MemoryWindowStore`` (exact and ring windows): long streams with big time
jumps, events ahead of the clock on new pools, late events, ids shared across pools and
redelivered, ties, pools that go quiet and come back, odd options and interval shapes.

What must hold, and is held here:

- no call hangs (every test has a timeout) and ``_check()`` passes along the way;
- one store kind answers alike however a stream is fed: ``observe`` per event, its inline
  ``observe_event`` path, ``observe_many`` per event and in batches of any sizes;
- on streams whose every event lies within the allowed lateness of the newest event of the
  whole stream (and no id comes back after the dedup horizon), the store answers as the
  brute-force model does (docs/backends.md, "Where the stores may differ").
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.store import Interval, Observation, Status

from .naive_store import NaiveWindowStore

US = 1
MS = 1_000
SEC = 1_000_000
MINUTE = 60 * SEC
HOUR = 60 * MINUTE
DAY = 24 * HOUR

Window = Literal["exact", "ring"]
WINDOWS: tuple[Window, ...] = ("exact", "ring")


@dataclass(frozen=True)
class Event:
    key: str
    event_id: str
    at: int
    amount: int
    not_after: int | None  # the same for every event of one segment
    shape: int = 0  # the intervals it is observed with: 0 the stream's, k the k-th other's


Segment = list[Event]
# status, counts and totals (for a NEW event only), first seen
Answer = tuple[Status, tuple[int, ...], tuple[int, ...], int | None]


@dataclass(frozen=True)
class Options:
    lateness: int
    horizon: int
    width: int

    def store(self, window: Window) -> MemoryWindowStore:
        return MemoryWindowStore(
            timedelta(microseconds=self.lateness), window=window,
            bucket_width=timedelta(microseconds=self.width),
            dedup_horizon=timedelta(microseconds=self.horizon))


def interval_shapes(rng: random.Random) -> tuple[Interval, ...]:
    """The spike rule's chained pair, a pair that both end now, one interval, three, windows
    that end in the past or overlap."""
    w = rng.choice((1, 7 * SEC, MINUTE, 5 * MINUTE))
    b = rng.choice((1, 3 * SEC, HOUR, 3 * HOUR))
    off = rng.choice((1, SEC, 2 * MINUTE))
    return rng.choice((
        (Interval(0, w), Interval(w, b)),
        (Interval(0, w), Interval(0, b)),
        (Interval(0, w),),
        (Interval(0, b),),
        (Interval(0, w), Interval(w, b), Interval(0, w + b)),
        (Interval(off, w), Interval(0, b)),
        (Interval(0, w + off), Interval(off, b)),
    ))


def segment_clocks(rng: random.Random, clock: int, options: Options, ties: float) -> list[int]:
    """The clock at each event of a segment of 1 to 599: it mostly creeps (up to 3 s), stands
    still for a ``ties`` share (less the jumps), and sometimes jumps minutes, hours, exactly
    the dedup horizon or one past it, or days."""
    clocks = []
    for _ in range(rng.randrange(1, 600)):
        roll = rng.random()
        if roll < 0.003:
            clock += rng.choice((HOUR, 12 * HOUR, options.horizon, options.horizon + 1,
                                 30 * HOUR, 3 * DAY))
        elif roll < 0.02:
            clock += rng.randrange(1, 90) * MINUTE
        elif roll >= ties:
            clock += rng.randrange(0, 3 * SEC)
        clocks.append(clock)
    return clocks


def hostile(seed: int, events: int, options: Options, pools: int = 30, shapes: int = 1,
            far: bool = False) -> list[Segment]:
    """``events`` events in segments of a few hundred, each segment under one ``not_after``
    (sometimes none). The clock mostly creeps, sometimes jumps (minutes, hours, past the dedup
    horizon, days); among the events: pools back in order for themselves far behind the
    stream, late and nearly late ones, events ahead of the clock (often the first of a pool),
    ties, ids reused across pools, redeliveries with their own or a new time. ``shapes``:
    how many interval shapes the segments pick from (``Event.shape``); ``far``: ``not_after``
    sometimes lies weeks past the clock (a backfill)."""
    rng = random.Random(seed)
    clock = rng.choice((0, -10 * DAY, 10**15))
    last: dict[str, int] = {}
    out: list[Segment] = []
    sent: list[Event] = []
    n = 0
    fresh = 0
    while n < events:
        ahead = rng.choice((None, MINUTE, 5 * MINUTE, 0, *((40 * DAY, 400 * DAY) if far else ())))
        shape = rng.randrange(shapes)
        segment: Segment = []
        clocks = segment_clocks(rng, clock, options, ties=0.1)
        clock = clocks[-1]
        not_after = None if ahead is None else clock + ahead
        for clock in clocks:
            pool = f"p{min(int(rng.paretovariate(0.8)), pools) - 1}"
            at = clock
            kind = rng.random()
            if kind < 0.04 and last:
                pool = rng.choice(sorted(last))  # back in order for itself, behind the stream
                at = last[pool] + rng.choice((0, 1, SEC))
            elif kind < 0.07:
                at = clock - rng.choice((0, 1, options.lateness, options.lateness + 1,
                                         rng.randrange(0, 900 * SEC)))
            elif kind < 0.09 and not_after is not None:
                at = not_after + rng.choice((1, MINUTE, DAY))  # ahead of the clock
                if rng.random() < 0.5:
                    fresh += 1
                    pool = f"new{fresh}"  # a pool whose first event is ahead
            if kind > 0.97 and sent:
                again = sent[rng.randrange(len(sent))]
                pool = again.key if rng.random() < 0.7 else pool
                at = again.at if rng.random() < 0.5 else at
                event = Event(pool, again.event_id, at, again.amount, not_after, shape)
            else:
                # Ids repeat across pools now and then (each pool has ids of its own).
                name = f"e{n}" if rng.random() < 0.95 else f"e{rng.randrange(n + 1)}"
                event = Event(pool, name, at, rng.choice((0, 1, 100, 10**12)), not_after,
                              shape)
            segment.append(event)
            sent.append(event)
            n += 1
            if not_after is None or at <= not_after:
                last[pool] = max(last.get(pool, at), at)
        out.append(segment)
    return out


def answer(status: Status, counts: Sequence[int], totals: Sequence[int],
           first: int | None) -> Answer:
    if status is Status.NEW:
        return status, tuple(counts), tuple(totals), first
    return status, (), (), first


def feed_observe(store: MemoryWindowStore, stream: list[Segment],
                 intervals: Sequence[Interval], others: Shapes = ()) -> list[Answer]:
    out = []
    for segment in stream:
        for e in segment:
            got = store.observe(Observation(e.key, e.event_id, e.at, e.amount),
                                shape_of(e, intervals, others), not_after=e.not_after)
            out.append(answer(got.status, [t.count for t in got.tallies],
                              [t.total for t in got.tallies], got.first_seen))
    return out


def feed_inline(store: MemoryWindowStore, stream: list[Segment],
                intervals: Sequence[Interval], others: Shapes = ()) -> list[Answer]:
    """``observe_event``, the engine's per-event path (inline for two-interval shapes)."""
    store.observe_many([], [], [], [], intervals)
    out = []
    for segment in stream:
        for e in segment:
            status, counts, totals, first = store.observe_event(
                e.key, e.event_id, e.at, e.amount, shape_of(e, intervals, others), True,
                e.not_after)
            out.append(answer(status, counts, totals, first))
    return out


def feed_batches(store: MemoryWindowStore, stream: list[Segment],
                 intervals: Sequence[Interval], sizes: Sequence[int],
                 others: Shapes = ()) -> list[Answer]:
    """``observe_many`` in batches cut at ``sizes`` in turn (and at every segment's end)."""
    out = []
    turn = 0
    for segment in stream:
        start = 0
        while start < len(segment):
            size = sizes[turn % len(sizes)]
            turn += 1
            part = segment[start:start + size]
            start += size
            got = store.observe_many(
                [e.key for e in part], [e.event_id for e in part], [e.at for e in part],
                [e.amount for e in part], shape_of(part[0], intervals, others), totals=True,
                not_after=part[0].not_after)
            for i in range(len(part)):
                out.append(answer(got.statuses[i], [c[i] for c in got.counts],
                                  [s[i] for s in got.totals], got.first_seen[i]))
    return out


def feed_mixed(store: MemoryWindowStore, stream: list[Segment], intervals: Sequence[Interval],
               others: Shapes, seed: int) -> list[Answer]:
    """Each segment fed its own way: ``observe``, ``observe_event`` or ``observe_many`` in
    batches (the sweep's event count is carried from one path to the other)."""
    rng = random.Random(seed)
    out = []
    for segment in stream:
        way = rng.randrange(3)
        if way == 0:
            out += feed_observe(store, [segment], intervals, others)
        elif way == 1:
            for e in segment:
                status, counts, totals, first = store.observe_event(
                    e.key, e.event_id, e.at, e.amount, shape_of(e, intervals, others), True,
                    e.not_after)
                out.append(answer(status, counts, totals, first))
        else:
            out += feed_batches(store, [segment], intervals, [rng.randrange(1, 5_000)], others)
    return out


Feed = Callable[[MemoryWindowStore], list[Answer]]
Shapes = Sequence[Sequence[Interval]]


def shape_of(e: Event, intervals: Sequence[Interval], others: Shapes) -> Sequence[Interval]:
    return intervals if e.shape == 0 else others[e.shape - 1]


def first_difference(want: Sequence[Answer], got: Sequence[Answer],
                     stream: list[Segment]) -> str:
    flat = [e for segment in stream for e in segment]
    for i, (a, b) in enumerate(zip(want, got)):
        if a != b:
            return f"event {i} {flat[i]}: {a} != {b}"
    return f"lengths {len(want)} != {len(got)}"


def check_feeds_agree(options: Options, window: Window, stream: list[Segment],
                      intervals: Sequence[Interval], rng: random.Random,
                      others: Shapes = ()) -> list[Answer]:
    sizes = [rng.choice((2, 7, 100, 4_095, 4_096, 5_000)) for _ in range(5)]
    def primed(feed: Feed) -> Feed:
        """Every feed first shows the store the stream's intervals (as ``inline`` must), so
        that all know the same reach from the start: it sets how long ids are kept."""
        def run(store: MemoryWindowStore) -> list[Answer]:
            store.observe_many([], [], [], [], intervals)
            return feed(store)
        return run

    feeds: dict[str, Feed] = {
        "observe": primed(lambda s: feed_observe(s, stream, intervals, others)),
        "inline": lambda s: feed_inline(s, stream, intervals, others),
        "one-by-one": primed(lambda s: feed_batches(s, stream, intervals, [1], others)),
        "batches": primed(lambda s: feed_batches(s, stream, intervals, sizes, others)),
        "mixed": primed(lambda s: feed_mixed(s, stream, intervals, others, sizes[0])),
    }
    want: list[Answer] | None = None
    for name, feed in feeds.items():
        store = options.store(window)
        got = feed(store)
        store._check()
        if want is None:
            want = got
        else:
            assert got == want, (name, first_difference(want, got, stream))
    assert want is not None
    return want


def sized(options: Options, intervals: Sequence[Interval]) -> Options:
    """Buckets wide enough that a ring has a few thousand slots at most (a ring of
    one-microsecond buckets over hours would take gigabytes), and no wider than the windows'
    horizon (wider ones have their own test below)."""
    span = options.lateness + max(iv.reach for iv in intervals)
    return Options(options.lateness, options.horizon,
                   min(max(options.width, span // 3_000 + 1), span))


OPTIONS = [
    Options(5 * MINUTE, DAY, 5 * MINUTE),
    Options(0, DAY, 7 * SEC),
    Options(1, 10 * MINUTE, 1),
    Options(2 * HOUR, SEC, 3 * HOUR),
    Options(5 * MINUTE, 1, MINUTE),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("case", range(len(OPTIONS)))
def test_every_way_of_feeding_a_hostile_stream_gives_the_same_answers(
    window: Window, case: int
) -> None:
    rng = random.Random(1_000 + case)
    intervals = interval_shapes(rng)
    options = sized(OPTIONS[case], intervals)
    stream = hostile(case, 12_000, options)
    answers = check_feeds_agree(options, window, stream, intervals, rng)
    statuses = {a[0] for a in answers}
    assert {Status.NEW, Status.DUPLICATE, Status.FUTURE} <= statuses


@pytest.mark.timeout(120)
def test_a_ring_with_buckets_wider_than_the_windows_passes_its_check_after_a_sweep() -> None:
    """A ring trims whole buckets: a quiet pool given back by a sweep may keep events in a
    bucket wider than the windows (no event it accepts can reach them) and is filed for when
    it may be dropped, not looked at again and again."""
    store = MemoryWindowStore(timedelta(0), window="ring")  # five-minute buckets
    window = [Interval(0, MINUTE)]
    store.observe(Observation("q", "q0", 10 * SEC), window)  # then quiet, mid-bucket
    for k in range(5_000):  # 5,000 events of p from 10 s to 210 s: one sweep at 4,096
        store.observe(Observation("p", f"p{k}", 10 * SEC + k * 40 * MS), window)
    assert store._keys["q"].last == 70 * SEC  # given back: moved up by keep (one minute)
    assert len(store._keys["q"]) == 1  # but still held: its bucket reaches to 300 s
    store._check()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
def test_an_id_taken_ahead_of_the_clock_on_a_quiet_pool_is_remembered(window: Window) -> None:
    """A pool quiet for days takes an event ahead of the clock (its id recorded at the
    caller's clock): a sweep moments later keeps the pool for that id's horizon."""
    spike = [Interval(0, MINUTE), Interval(MINUTE, HOUR)]
    now = 2 * DAY
    stream = [Event("q", "q0", 0, 1, None), Event("p", "a", now, 1, None),
              Event("q", "f", now + HOUR, 1, now + 5 * MINUTE)]
    stream += [Event("p", f"b{k}", now + k * MS, 1, None) for k in range(5_000)]  # a sweep
    stream += [Event("q", "f", now + 5 * SEC, 1, now + 5 * MINUTE)]  # redelivered, in time
    model = NaiveWindowStore()
    want = [model.observe(Observation(e.key, e.event_id, e.at, e.amount), spike,
                          not_after=e.not_after).status for e in stream]
    assert want[2] is Status.FUTURE and want[-1] is Status.DUPLICATE
    got = feed_observe(MemoryWindowStore(window=window), [stream], spike)
    assert [a[0] for a in got] == want


class FastModel:
    """:class:`ModelStore`'s rules (tests/naive_store.py) with each key's events in a sorted
    list, so that streams of many thousand events take seconds; held to the naive store on
    short streams below."""

    def __init__(self, lateness: int, horizon: int) -> None:
        self.lateness = lateness
        self.horizon = horizon
        self.times: dict[str, list[int]] = {}
        self.amounts: dict[str, list[int]] = {}
        self.newest: dict[str, int] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.first: dict[str, int] = {}
        self.reach = 0

    def observe(self, e: Event, intervals: Sequence[Interval]) -> Answer:
        self.reach = max([self.reach, *(iv.reach for iv in intervals)])
        newest = self.newest.get(e.key)
        memory = max(self.horizon, self.lateness + self.reach)
        recorded = self.ids.get((e.key, e.event_id))
        first = self.first.get(e.key)
        if recorded is not None and (newest is None or recorded > newest - memory):
            return Status.DUPLICATE, (), (), first
        if e.not_after is not None and e.at > e.not_after:
            self.ids[(e.key, e.event_id)] = e.not_after
            return Status.FUTURE, (), (), first
        if newest is not None and e.at < newest - self.lateness:
            self.ids[(e.key, e.event_id)] = newest
            return Status.LATE, (), (), first
        self.ids[(e.key, e.event_id)] = e.at
        times = self.times.setdefault(e.key, [])
        amounts = self.amounts.setdefault(e.key, [])
        i = bisect_right(times, e.at)
        times.insert(i, e.at)
        amounts.insert(i, e.amount)
        self.newest[e.key] = max(e.at, newest if newest is not None else e.at)
        self.first[e.key] = first = min(e.at, first if first is not None else e.at)
        counts, totals = [], []
        for interval in intervals:
            low, high = interval.bounds(e.at)
            lo, hi = bisect_right(times, low), bisect_right(times, high)
            counts.append(hi - lo)
            totals.append(sum(amounts[lo:hi]))
        return Status.NEW, tuple(counts), tuple(totals), first


def within_lateness(seed: int, events: int, options: Options, pools: int = 30) -> list[Segment]:
    """A stream the stores must answer as the model does: every event at most the allowed
    lateness behind the newest event of the whole stream (or ahead of the clock), ids
    redelivered only within half the dedup horizon of their first time. The clock still jumps
    past the windows and the dedup horizon, pools go quiet and come back, ids repeat across
    pools, and events ahead of the clock open new pools."""
    rng = random.Random(seed)
    clock = rng.choice((0, -10 * DAY, 10**15))
    out: list[Segment] = []
    sent: list[Event] = []
    n = fresh = 0
    while n < events:
        ahead = rng.choice((None, MINUTE, 5 * MINUTE, 0))
        clocks = segment_clocks(rng, clock, options, ties=0.2)
        clock = clocks[-1]
        not_after = None if ahead is None else clock + ahead
        segment: Segment = []
        for clock in clocks:
            pool = f"p{min(int(rng.paretovariate(0.8)), pools) - 1}"
            # The newest event of the stream is at most the clock.
            at = clock - rng.choice((0, 0, options.lateness, rng.randrange(options.lateness + 1)))
            kind = rng.random()
            if kind < 0.03 and not_after is not None:
                at = not_after + rng.choice((1, MINUTE, DAY))
                if rng.random() < 0.5:
                    fresh += 1
                    pool = f"new{fresh}"
            recent = [e for e in sent[-50:] if (e.not_after is None or e.at <= e.not_after)
                      and e.at >= clock - options.horizon // 2]
            if kind > 0.93 and recent:
                again = rng.choice(recent)
                key = again.key if kind > 0.96 else pool  # a redelivery, or its id elsewhere
                moment = again.at if key == again.key and rng.random() < 0.5 else at
                event = Event(key, again.event_id, moment, again.amount, not_after)
            else:
                event = Event(pool, f"e{n}", at, rng.choice((0, 1, 100, 10**12)), not_after)
            segment.append(event)
            sent.append(event)
            n += 1
        out.append(segment)
    return out


def model_answers(options: Options, stream: list[Segment],
                  intervals: Sequence[Interval]) -> list[Answer]:
    model = FastModel(options.lateness, options.horizon)
    return [model.observe(e, intervals) for segment in stream for e in segment]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(4))
def test_the_fast_model_is_the_naive_store(seed: int) -> None:
    rng = random.Random(seed)
    intervals = interval_shapes(rng)
    options = OPTIONS[seed]
    stream = within_lateness(seed, 600, options, pools=4)
    naive = NaiveWindowStore(options.lateness, options.horizon)
    want = []
    for e in (e for segment in stream for e in segment):
        got = naive.observe(Observation(e.key, e.event_id, e.at, e.amount), intervals,
                            not_after=e.not_after)
        want.append(answer(got.status, [t.count for t in got.tallies],
                           [t.total for t in got.tallies], got.first_seen))
    assert model_answers(options, stream, intervals) == want


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("case", range(len(OPTIONS)))
def test_a_stream_within_the_lateness_is_answered_as_the_model_does(
    window: Window, case: int
) -> None:
    """docs/backends.md: the stores agree with each other (and the model) on streams whose
    every event lies within the allowed lateness of the newest; fed every way, with sweeps."""
    rng = random.Random(2_000 + case)
    intervals = interval_shapes(rng)
    options = sized(OPTIONS[case], intervals)
    stream = within_lateness(case, 12_000, options)
    want = model_answers(options, stream, intervals)
    # A pool idle for the dedup horizon is dropped whole and new when it comes back: its
    # first-seen time starts again there (documented), so first-seen times are not compared.
    want = [(*a[:3], None) for a in want]
    got = [(*a[:3], None) for a in check_feeds_agree(options, window, stream, intervals, rng)]
    assert got == want, first_difference(want, got, stream)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
def test_a_pool_given_back_is_late_for_events_whose_windows_would_need_its_events(
    window: Window
) -> None:
    """A sweep gives back what a quiet pool holds and moves its newest up by the windows'
    horizon: an event of it in order, but whose windows would reach the events given back, is
    LATE (the model, which forgets nothing, counts it; docs/backends.md says where the stores
    agree: within the allowed lateness of the stream's newest event)."""
    spike = [Interval(0, MINUTE), Interval(MINUTE, HOUR)]
    keep = 5 * MINUTE + MINUTE + HOUR
    stream = [Event("q", "q0", 0, 1, None)]
    stream += [Event("p", f"p{k}", k * SEC, 1, None) for k in range(5_000)]  # a sweep
    stream += [Event("q", "q1", 4_999 * SEC - keep + SEC, 1, None)]  # within keep of 4,999 s
    want = model_answers(Options(5 * MINUTE, DAY, 5 * MINUTE), [stream], spike)
    assert want[-1][:2] == (Status.NEW, (1, 1))
    got = feed_observe(MemoryWindowStore(window=window), [stream], spike)
    assert got[-1][0] is Status.LATE


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
def test_a_list_of_intervals_changed_in_place_is_answered_as_it_now_is(window: Window) -> None:
    """Only a tuple is known again by identity: a list is read anew at every call."""
    store = MemoryWindowStore(window=window)
    intervals = [Interval(0, 10), Interval(0, 20)]
    store.observe(Observation("p", "a", 100), intervals)
    intervals[:] = [Interval(0, 1_000), Interval(0, 2_000)]
    got = store.observe(Observation("p", "b", 150), intervals)
    assert [t.count for t in got.tallies] == [2, 2]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("seed", range(3))
def test_streams_asked_with_changing_intervals_and_far_clocks_are_fed_alike(
    window: Window, seed: int
) -> None:
    """Segments asked with different interval tuples (the store widens to a longer reach
    mid-stream) and backfills whose ``not_after`` lies weeks ahead."""
    rng = random.Random(3_000 + seed)
    intervals = interval_shapes(rng)
    others = [interval_shapes(rng) for _ in range(3)]
    reach = max(iv.reach for shape in [intervals, *others] for iv in shape)
    options = sized(OPTIONS[seed], [Interval(0, reach)])
    stream = hostile(50 + seed, 12_000, options, shapes=4, far=True)
    answers = check_feeds_agree(options, window, stream, intervals, rng, others)
    assert Status.FUTURE in {a[0] for a in answers}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", range(len(OPTIONS)))
def test_exact_and_ring_windows_answer_a_hostile_stream_alike(case: int) -> None:
    """With one set of intervals for the whole stream (a store asked for a longer reach
    mid-stream has forgotten what lies past the old one, as much as each structure trims:
    those answers differ and are not compared)."""
    rng = random.Random(4_000 + case)
    intervals = interval_shapes(rng)
    options = sized(OPTIONS[case], intervals)
    stream = hostile(70 + case, 12_000, options, pools=rng.choice((3, 30, 3_000)), far=True)
    exact = feed_batches(options.store("exact"), stream, intervals, [1, 4_096, 77])
    ring = feed_batches(options.store("ring"), stream, intervals, [3_000, 1, 5])
    assert ring == exact, first_difference(exact, ring, stream)


KEYS = ("a", "b", "c")
GAPS = (0, 1, SEC, MINUTE, 5 * MINUTE + 1, 66 * MINUTE, DAY, DAY + 133 * MINUTE, 3 * DAY)
op = st.one_of(
    # an event of a few pools: in order, late by some gap, ahead of the clock, redelivered
    st.tuples(st.just("event"), st.sampled_from(KEYS), st.sampled_from(GAPS),
              st.sampled_from(("now", "late", "ahead", "again", "again-now"))),
    # the clock moves on
    st.tuples(st.just("jump"), st.sampled_from(KEYS), st.sampled_from(GAPS), st.just("")),
    # 4,100 events of a busy pool over a gap: a sweep runs among them
    st.tuples(st.just("fill"), st.sampled_from(("z", "a")), st.sampled_from(GAPS), st.just("")),
)


def scripted(ops: list[tuple[str, str, int, str]]) -> list[Segment]:
    clock = 10 * DAY
    out: list[Segment] = []
    seen: list[Event] = []
    n = 0
    for what, key, gap, kind in ops:
        if what == "jump":
            clock += gap
            continue
        if what == "fill":
            out.append([Event(key, f"f{n + k}", clock + gap * k // 4_100, 1, clock + gap)
                        for k in range(4_100)])
            n += 4_100
            clock += gap
            continue
        not_after = clock + 5 * MINUTE
        at = {"now": clock, "late": clock - gap, "ahead": not_after + 1 + gap}.get(kind, clock)
        if kind.startswith("again") and seen:
            again = seen[n % len(seen)]
            event = Event(again.key, again.event_id, again.at if kind == "again" else clock,
                          again.amount, not_after)
        else:
            event = Event(key, f"e{n}", at, 100, not_after)
        seen.append(event)
        out.append([event])
        n += 1
    return out


@pytest.mark.timeout(120)
@settings(max_examples=25, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_scripted_streams_with_sweeps_between_their_events(
    ops: list[tuple[str, str, int, str]]
) -> None:
    """Small scripts of pools going quiet, jumps past the windows and the dedup horizon,
    late and future events and redeliveries, with sweeps (4,100 events of a busy pool) between
    them: every feed agrees, on exact and ring windows, and ``_check`` passes. (The two
    kinds are not compared: they may differ on a pool far behind the stream, see
    test_exact_and_ring_answer_alike_for_a_pool_far_behind_the_stream.)"""
    stream = scripted(ops)
    spike = (Interval(0, MINUTE), Interval(MINUTE, HOUR))
    options = Options(5 * MINUTE, DAY, 5 * MINUTE)
    rng = random.Random(0)
    for window in WINDOWS:
        check_feeds_agree(options, window, stream, spike, rng)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("seed", range(3))
def test_amounts_past_64_bits_and_negative_ones_total_as_the_model_does(
    window: Window, seed: int
) -> None:
    """A ring keeps its sums in ``array('q')`` until one does not fit: totals stay exact."""
    rng = random.Random(5_000 + seed)
    intervals = interval_shapes(rng)
    options = sized(OPTIONS[seed], intervals)
    amounts = (-5, 0, 2**63 - 1, 2**63, -(2**63), 2**80, -(2**90))
    stream = [[replace(e, amount=rng.choice(amounts)) for e in segment]
              for segment in within_lateness(90 + seed, 6_000, options, pools=4)]
    want = [(*a[:3], None) for a in model_answers(options, stream, intervals)]
    got = [(*a[:3], None) for a in check_feeds_agree(options, window, stream, intervals, rng)]
    assert got == want, first_difference(want, got, stream)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("case", range(len(OPTIONS)))
def test_tallies_at_the_streams_newest_are_the_models_for_every_pool(
    window: Window, case: int
) -> None:
    """After a stream within the lateness, quiet, given-back and dropped pools included: what
    they gave back lies before every window that ends at or after the stream's newest minus
    the allowed lateness."""
    rng = random.Random(6_000 + case)
    intervals = interval_shapes(rng)
    options = sized(OPTIONS[case], intervals)
    stream = within_lateness(110 + case, 9_000, options, pools=rng.choice((2, 30, 300)))
    model = FastModel(options.lateness, options.horizon)
    for e in (e for segment in stream for e in segment):
        model.observe(e, intervals)
    store = options.store(window)
    feed_batches(store, stream, intervals, [1_000])
    newest = max(model.newest.values())
    for key in model.times:
        times, amounts = model.times[key], model.amounts[key]
        for at in (newest - options.lateness, newest, newest + MINUTE):
            want = []
            for interval in intervals:
                low, high = interval.bounds(at)
                lo, hi = bisect_right(times, low), bisect_right(times, high)
                want.append((hi - lo, sum(amounts[lo:hi])))
            got = [(t.count, t.total) for t in store.tally(key, at, intervals)]
            assert got == want, (key, at)
