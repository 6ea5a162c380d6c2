"""ExactWindow keeps no prefix sums while every amount is 0, and the first other amount (in
order or late, through add or record) starts them: counts and totals against a brute-force
model all the way."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from auptimate_core.windows.exact import ExactWindow

steps = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(-20, 40), st.sampled_from([0, 0, 0, 0, 5, 1_000])),
    st.tuples(st.just("record"), st.integers(-20, 40), st.sampled_from([0, 0, 0, 7])),
    st.tuples(st.just("ask"), st.integers(-60, 0), st.integers(0, 80)),
    st.tuples(st.just("trim"), st.integers(-60, 0), st.just(0)),
    st.tuples(st.just("clear"), st.just(0), st.just(0)),
), max_size=60)


@given(steps)
def test_totals_and_counts_match_a_model_with_sums_started_late(script: list[tuple[str, int, int]]
                                                               ) -> None:
    window = ExactWindow()
    held: list[tuple[int, int]] = []
    newest = 0
    for op, a, b in script:
        if op == "add":
            at = newest + a
            window.add(at, b)
            held.append((at, b))
            newest = max(newest, at)
        elif op == "record":
            at = newest + a
            counts, sums = [[0]], [[0]]
            window.record(at, b, -10**9, [(0, 30)], counts, sums, 0)
            held.append((at, b))
            newest = max(newest, at)
            hits = [x for t, x in held if at - 30 < t <= at]
            assert (counts[0][0], sums[0][0]) == (len(hits), sum(hits))
        elif op == "ask":
            low, high = newest + a, newest + a + b
            hits = [x for t, x in held if low < t <= high]
            assert (window.count(low, high), window.total(low, high)) == (len(hits), sum(hits))
        elif op == "trim":
            before = newest + a
            assert window.trim(before) == sum(1 for t, _ in held if t <= before)
            held = [(t, x) for t, x in held if t > before]
        else:
            window.clear()
            held = []
        window._check()
        assert len(window) == len(held)
        assert (window._cum is None) <= all(x == 0 for _, x in held)


def test_a_late_event_older_than_trimmed_ones_is_counted_and_trimmed_like_any() -> None:
    window = ExactWindow()
    for at in (0, 1, 2, 3):
        window.add(at, at)
    assert window.trim(1) == 2  # two dead events stay in the list until a compaction
    window.add(0, 5)            # older than both of them
    window._check()
    assert (window.count(-1, 3), window.total(-1, 3)) == (3, 10)
    assert window.oldest == 0
    assert window.trim(1) == 1
    assert (len(window), window.total(-1, 3)) == (2, 5)
    window._check()
