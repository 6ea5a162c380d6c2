"""The memory store pinned to literal values: options and their messages, defaults, and the
tallies of each interval shape (the inline shortcuts and the general path) worked out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.errors import ValidationError
from auptimate_core.store import Interval, Observation, Status

SECOND = 1_000_000
TIMES = [0, 5, 10, 15, 20]
AMOUNTS = [1, 2, 3, 4, 5]

# Counts and totals at each of TIMES, by hand: an interval (offset, length) at t holds the
# events with t - offset - length < at <= t - offset.
SHAPES: list[tuple[str, Sequence[Interval], list[tuple[int, int]], list[tuple[int, int]]]] = [
    # (t-10, t] and (t-20, t-10]: the spike rule's chained pair.
    ("chained", (Interval(0, 10), Interval(10, 10)),
     [(1, 0), (2, 0), (2, 1), (2, 2), (2, 2)],
     [(1, 0), (3, 0), (5, 1), (7, 3), (9, 5)]),
    # (t-10, t] and (t-20, t]: both end now.
    ("both end now", (Interval(0, 10), Interval(0, 20)),
     [(1, 1), (2, 2), (2, 3), (2, 4), (2, 4)],
     [(1, 1), (3, 3), (5, 6), (7, 10), (9, 14)]),
    # (t-10, t] and (t-25, t-5]: overlapping, the second ending in the past (no shortcut).
    ("overlapping", (Interval(0, 10), Interval(5, 20)),
     [(1, 0), (2, 1), (2, 2), (2, 3), (2, 4)],
     [(1, 0), (3, 1), (5, 3), (7, 6), (9, 10)]),
    # (t-15, t-5] and (t-10, t]: the first not ending now (no shortcut).
    ("first in the past", (Interval(5, 10), Interval(0, 10)),
     [(0, 1), (1, 2), (2, 2), (2, 2), (2, 2)],
     [(0, 1), (1, 3), (3, 5), (5, 7), (7, 9)]),
    # (t-10, t] and (t-15, t-5] and (t-20, t]: three intervals.
    ("three", (Interval(0, 10), Interval(5, 10), Interval(0, 20)),
     [(1, 0, 1), (2, 1, 2), (2, 2, 3), (2, 2, 4), (2, 2, 4)],
     [(1, 0, 1), (3, 1, 3), (5, 3, 6), (7, 5, 10), (9, 7, 14)]),
]


LATENESS = timedelta(microseconds=50)  # small, so the rings of 7us buckets stay small


def _stores() -> list[MemoryWindowStore]:
    return [MemoryWindowStore(LATENESS),
            MemoryWindowStore(LATENESS, window="ring", bucket_width=timedelta(microseconds=7))]


@pytest.mark.parametrize("shift", [0, -(10**15)], ids=["after 1970", "before 1970"])
@pytest.mark.parametrize(("name", "intervals", "counts", "totals"), SHAPES,
                         ids=[s[0] for s in SHAPES])
def test_each_shape_one_event_at_a_time(name: str, intervals: Sequence[Interval],
                                        counts: list[tuple[int, ...]],
                                        totals: list[tuple[int, ...]], shift: int) -> None:
    for store in _stores():
        # The same sequence object every time, as an engine passes it: the shortcuts apply.
        got = [store.observe(Observation("p", f"e{i}", at + shift, amount), intervals)
               for i, (at, amount) in enumerate(zip(TIMES, AMOUNTS))]
        assert [o.status for o in got] == [Status.NEW] * 5
        assert [tuple(t.count for t in o.tallies) for o in got] == counts
        assert [tuple(t.total for t in o.tallies) for o in got] == totals
        assert {o.first_seen for o in got} == {shift}


@pytest.mark.parametrize(("name", "intervals", "counts", "totals"), SHAPES,
                         ids=[s[0] for s in SHAPES])
def test_each_shape_as_a_batch(name: str, intervals: Sequence[Interval],
                               counts: list[tuple[int, ...]],
                               totals: list[tuple[int, ...]]) -> None:
    for store in _stores():
        for totals_too in (True, False):
            store = MemoryWindowStore(LATENESS, window=store.window,
                                      bucket_width=store.bucket_width)
            batch = store.observe_many(["p"] * 5, [f"e{i}" for i in range(5)], TIMES, AMOUNTS,
                                       intervals, totals=totals_too)
            assert list(zip(*batch.counts)) == counts
            if totals_too:
                assert list(zip(*batch.totals)) == totals
            # Then one more event of the key, one at a time and in a batch.
            again = store.observe(Observation("p", "e5", 25, 6), intervals)
            assert again.status is Status.NEW
            assert len(again.tallies) == len(intervals)
            assert again.tallies[0].count == 2  # (15, 25]: 20 and 25


def test_shortcut_keeps_order_duplicates_lateness_and_the_clock() -> None:
    spike = (Interval(0, 10 * SECOND), Interval(10 * SECOND, 60 * SECOND))
    store = MemoryWindowStore(allowed_lateness=timedelta(seconds=5))
    assert store.observe(Observation("p", "a", 100 * SECOND, 1), spike).status is Status.NEW
    assert store.observe(Observation("p", "b", 101 * SECOND, 1), spike).status is Status.NEW
    # A duplicate, on the shortcut's key, with a newer time: still a duplicate.
    assert store.observe(Observation("p", "a", 102 * SECOND), spike).status is Status.DUPLICATE
    # Out of order but within the lateness: counted (general path), then in order again.
    late_ok = store.observe(Observation("p", "c", 96 * SECOND, 1), spike)
    assert late_ok.status is Status.NEW
    assert [t.count for t in late_ok.tallies] == [1, 0]  # (86, 96]: only itself
    assert store.observe(Observation("p", "d", 95 * SECOND), spike).status is Status.LATE
    assert store.observe(Observation("p", "f", 96 * SECOND), spike).status is Status.NEW
    nxt = store.observe(Observation("p", "g", 106 * SECOND, 1), spike)
    # (96, 106]: 100, 101 and 106; (46, 96]: c and f, at 96.
    assert [t.count for t in nxt.tallies] == [3, 2]
    # Ahead of the caller's clock: FUTURE, kept out of the windows.
    ahead = store.observe(Observation("p", "h", 200 * SECOND), spike, not_after=150 * SECOND)
    assert ahead.status is Status.FUTURE
    assert ahead.tallies == ()
    at_clock = store.observe(Observation("p", "i", 150 * SECOND), spike, not_after=150 * SECOND)
    assert at_clock.status is Status.NEW


def test_options_and_defaults() -> None:
    store = MemoryWindowStore()
    assert (store.window, store.bucket_width) == ("exact", timedelta(minutes=5))
    with pytest.raises(ValidationError) as caught:
        MemoryWindowStore(window="tree")  # type: ignore[arg-type]
    assert str(caught.value) == "window: must be 'exact' or 'ring', not 'tree'"
    with pytest.raises(ValidationError) as caught:
        MemoryWindowStore(window="columnar")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "window: must be 'exact' or 'ring', not 'columnar' (numpy columns are a store of "
        "their own: ColumnarWindowStore, from auptimate_core.backends.columnar)")
    with pytest.raises(ValidationError) as caught:
        MemoryWindowStore(bucket_width=timedelta(0))
    assert str(caught.value) == "bucket_width: must be at least a microsecond, not 0:00:00"
    assert MemoryWindowStore(bucket_width=timedelta(microseconds=1)).bucket_width == timedelta(
        microseconds=1)


def test_default_lateness_is_five_minutes_and_ids_last_a_day() -> None:
    store = MemoryWindowStore()
    minute = 60 * SECOND
    window = (Interval(0, minute),)
    assert store.observe(Observation("p", "a", 10 * minute), window).status is Status.NEW
    assert store.observe(Observation("p", "b", 5 * minute), window).status is Status.NEW
    assert store.observe(Observation("p", "c", 5 * minute - 1), window).status is Status.LATE
    day = 24 * 60 * minute
    assert store.observe(Observation("p", "z", 10 * minute + day), window).status is Status.NEW
    assert store.observe(Observation("p", "a", 10 * minute + day), window).status is (
        Status.DUPLICATE)


@pytest.mark.parametrize("intervals", [(Interval(0, 10), Interval(10, 10)),
                                       (Interval(0, 10), Interval(0, 20))],
                         ids=["chained", "both end now"])
def test_observe_event_without_totals_answers_zeros(intervals: Sequence[Interval]) -> None:
    store = MemoryWindowStore(LATENESS)
    answers = [store.observe_event("p", f"e{i}", at, amount, intervals, False, None)
               for i, (at, amount) in enumerate(zip(TIMES, AMOUNTS))]
    assert [tuple(a[2]) for a in answers] == [(0, 0)] * 5
    assert [a[0] for a in answers] == [Status.NEW] * 5
    with_totals = MemoryWindowStore(LATENESS)
    answers = [with_totals.observe_event("p", f"e{i}", at, amount, intervals, True, None)
               for i, (at, amount) in enumerate(zip(TIMES, AMOUNTS))]
    assert [a[2][0] for a in answers] == [1, 3, 5, 7, 9]
    assert {a[3] for a in answers} == {0}


@pytest.mark.parametrize("intervals", [(Interval(0, 10), Interval(10, 10)),
                                       (Interval(0, 10), Interval(0, 20))],
                         ids=["chained", "both end now"])
@pytest.mark.parametrize("amounts", [[0, 0, 3, 4, 5], [2, 0, 3, 4, 5]])
def test_observe_event_inline_totals_start_at_the_first_amount(
        intervals: Sequence[Interval], amounts: list[int]) -> None:
    """The inline path (taken once observe_many has seen the intervals) keeps no sums while
    every amount is 0 and starts them at the first other one."""
    store = MemoryWindowStore(LATENESS)
    store.observe_many([], [], [], [], intervals)
    answers = [store.observe_event("p", f"e{i}", at, amount, intervals, True, None)
               for i, (at, amount) in enumerate(zip(TIMES, amounts))]
    def inside(at: int, interval: Interval) -> list[int]:
        low = at - interval.offset - interval.length
        return [x for t, x in zip(TIMES, amounts) if low < t <= at - interval.offset]

    assert [tuple(a[2]) for a in answers] == [
        tuple(sum(inside(at, iv)) for iv in intervals) for at in TIMES]
    assert [tuple(a[1]) for a in answers] == [
        tuple(len(inside(at, iv)) for iv in intervals) for at in TIMES]


def test_a_ring_of_too_many_buckets_is_refused_naming_bucket_width() -> None:
    with pytest.raises(ValidationError) as caught:
        MemoryWindowStore(window="ring", bucket_width=timedelta(microseconds=1))
    assert str(caught.value) == (
        "bucket_width: 0:00:00.000001 is too narrow for the allowed_lateness (0:05:00 to "
        "hold): 300,000,002 buckets a pool, at most 100,000; use at least 0:00:00.003001")
    MemoryWindowStore(window="ring", bucket_width=timedelta(microseconds=3_001))
    store = MemoryWindowStore(window="ring", bucket_width=timedelta(milliseconds=5))
    hour = (Interval(0, 3_600 * SECOND),)
    with pytest.raises(ValidationError) as caught:
        store.observe_many(["p"], ["a"], [1], [0], hour)
    assert str(caught.value).startswith(
        "bucket_width: 0:00:00.005000 is too narrow for the allowed lateness and the longest "
        "interval (1:05:00 to hold): 780,002 buckets a pool")
    minute = (Interval(0, 60 * SECOND),)
    assert store.observe_many(["p"], ["a"], [1], [0], minute).counts == [[1]]  # unchanged
    # An exact window has no buckets: any width is taken.
    MemoryWindowStore(bucket_width=timedelta(microseconds=1))


def test_a_ring_asked_for_a_longer_interval_holds_that_much_more_from_then_on() -> None:
    store = MemoryWindowStore(window="ring", bucket_width=timedelta(seconds=10))
    minute, hour = (Interval(0, 60 * SECOND),), (Interval(0, 3_600 * SECOND),)
    for k in range(60):  # ten minutes, asked for a minute: a ring of about six minutes
        store.observe(Observation("p", f"a{k}", k * 10 * SECOND), minute)
    for k in range(180):  # thirty minutes more, asked for an hour
        got = store.observe(Observation("p", f"b{k}", (600 + k * 10) * SECOND), hour)
    assert got.tallies[0].count >= 180  # every event since the hour was first asked for
    store._check()
