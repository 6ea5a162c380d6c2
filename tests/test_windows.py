"""The window structures held to brute-force models: the bucket ring and the exact window."""

from __future__ import annotations

import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core.windows.exact import ExactWindow
from auptimate_core.windows.ring import BucketRing


class RingModel:
    """Every event in a list; what the ring holds is decided by the rules it promises."""

    def __init__(self, width: int, span: int) -> None:
        self.width, self.span = width, span
        self.held: list[tuple[int, int]] = []

    def newest(self) -> int | None:
        return max((t for t, _ in self.held), default=None)

    def tally(self, low: int, high: int) -> tuple[int, int]:
        hits = [amount for t, amount in self.held if low < t <= high]
        return len(hits), sum(hits)

    def follow(self, ring: BucketRing, protected: int | None) -> None:
        """Drop what the ring forgot, checking it kept every event after ``protected``."""
        oldest = ring.oldest_reach
        kept = [(t, a) for t, a in self.held if oldest is not None and t >= oldest]
        dropped = [t for t, _ in self.held if oldest is None or t < oldest]
        assert protected is None or all(t <= protected for t in dropped), (dropped, protected)
        self.held = kept
        assert len(ring) == len(kept)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-40, 120), st.integers(0, 10**6)),
        st.tuples(st.just("query"), st.integers(-300, 300), st.integers(0, 400)),
        st.tuples(st.just("trim"), st.integers(-400, 50), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=250, deadline=None)
@given(width=st.integers(1, 40), span=st.integers(0, 150), steps=ops,
       start=st.integers(-10**6, 10**6))
def test_ring_matches_the_model(
    width: int, span: int, steps: list[tuple[str, int, int]], start: int
) -> None:
    ring, model = BucketRing(width, span), RingModel(width, span)
    clock = start
    for op, a, b in steps:
        newest = model.newest()
        if op == "add":
            clock += a
            earliest = ring.accepts_from
            if earliest is not None and clock < earliest:
                with pytest.raises(ValueError, match="at:"):
                    ring.add(clock, b)
            else:
                ring.add(clock, b)
                model.held.append((clock, b))
                newest = model.newest()
                model.follow(ring, None if newest is None else newest - span)
        elif op == "query":
            low = clock - a
            assert (ring.count(low, low + b), ring.total(low, low + b)) == model.tally(low, low + b)
        else:
            before = clock + a
            forgotten = ring.trim(before)
            held = len(model.held)
            model.follow(ring, before)
            assert forgotten == held - len(model.held)
        ring._check()


@settings(max_examples=150, deadline=None)
@given(width=st.integers(1, 30), lateness=st.integers(0, 60), extra=st.integers(0, 60),
       steps=st.lists(st.tuples(st.integers(-60, 30), st.integers(0, 10**15)), max_size=50),
       spans=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 80)), min_size=1,
                      max_size=3),
       totals=st.booleans())
def test_ring_record_tallies_as_the_model(
    width: int, lateness: int, extra: int, steps: list[tuple[int, int]],
    spans: list[tuple[int, int]], totals: bool,
) -> None:
    """How the store drives it: events no later than the lateness, spans within the span."""
    pairs = [(offset, offset + length) for offset, length in spans]
    span = lateness + max(reach for _, reach in pairs) + extra
    ring, model = BucketRing(width, span), RingModel(width, span)
    newest: int | None = None
    for row, (step, amount) in enumerate(steps):
        at = (newest or 0) + step
        if newest is not None and at < newest - lateness:
            continue
        counts = [[-1] * len(steps) for _ in pairs]
        sums = [[-1] * len(steps) for _ in pairs] if totals else None
        ring.record(at, amount, pairs, counts, sums, row)
        model.held.append((at, amount))
        newest = max(at, newest if newest is not None else at)
        model.follow(ring, newest - span)
        for j, (offset, reach) in enumerate(pairs):
            want = model.tally(at - reach, at - offset)
            assert counts[j][row] == want[0]
            if sums is not None:
                assert sums[j][row] == want[1]
        ring._check()


def test_ring_widen_keeps_what_it_holds() -> None:
    ring = BucketRing(width=10, span=20)
    for at in range(0, 100, 3):
        ring.add(at, at)
    before = [(ring.count(low, 100), ring.total(low, 100)) for low in range(60, 100)]
    ring.widen(200)
    assert ring.span >= 200
    ring._check()
    assert [(ring.count(low, 100), ring.total(low, 100)) for low in range(60, 100)] == before
    for at in range(100, 300, 3):
        ring.add(at, 1)
        ring._check()
    assert ring.count(299 - 200, 299) == len(range(100, 300, 3))
    ring.widen(5)  # never narrows
    assert ring.span >= 200


def test_ring_sums_beyond_64_bits_stay_exact() -> None:
    ring = BucketRing(width=100, span=1_000)
    big = 2**62
    for at in (5, 7, 6, 50, 150):
        ring.add(at, big)
    assert ring.total(0, 100) == 4 * big
    assert ring.total(5, 150) == 4 * big
    ring._check()


def test_ring_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="width"):
        BucketRing(0, 10)
    with pytest.raises(ValueError, match="span"):
        BucketRing(10, -1)


def test_ring_buckets_are_compact() -> None:
    ring = BucketRing(width=60, span=3_600)
    for at in range(10_000):
        ring.add(at, 1)
    held = [ring._times[b % ring._cap] for b in range(ring._tail, ring._head + 1)]
    assert all(isinstance(t, array) and t.typecode == "q" for t in held)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ring_seeded_stress(seed: int) -> None:
    """A long random walk with late events and trims, checked after every step."""
    rng = random.Random(seed)
    width, span, lateness = rng.randrange(1, 50), rng.randrange(0, 400), 30
    ring, model = BucketRing(width, span + lateness), RingModel(width, span + lateness)
    newest = 0
    for _ in range(3_000):
        roll = rng.random()
        if roll < 0.85:
            at = newest + rng.randrange(-lateness, 40)
            amount = rng.randrange(0, 1_000)
            ring.add(at, amount)
            model.held.append((at, amount))
            newest = max(newest, at)
            model.follow(ring, newest - span - lateness)
        elif roll < 0.97:
            low = newest - rng.randrange(0, span + lateness + 1)
            high = low + rng.randrange(0, span + 50)
            assert (ring.count(low, high), ring.total(low, high)) == model.tally(low, high)
        else:
            before = newest - rng.randrange(0, span + lateness + 1)
            ring.trim(before)
            model.follow(ring, before)
        ring._check()


@pytest.mark.parametrize("seed", [4, 5])
def test_exact_window_seeded_stress(seed: int) -> None:
    rng = random.Random(seed)
    window: ExactWindow = ExactWindow()
    held: list[tuple[int, int]] = []
    newest = 0
    for _ in range(3_000):
        roll = rng.random()
        if roll < 0.85:
            at = newest + rng.randrange(-30, 40)
            amount = rng.randrange(0, 1_000)
            window.add(at, amount)
            held.append((at, amount))
            newest = max(newest, at)
        elif roll < 0.97:
            low = newest - rng.randrange(0, 500)
            high = low + rng.randrange(0, 600)
            hits = [a for t, a in held if low < t <= high]
            assert (window.count(low, high), window.total(low, high)) == (len(hits), sum(hits))
        else:
            before = newest - rng.randrange(0, 300)
            assert window.trim(before) == sum(1 for t, _ in held if t <= before)
            held = [(t, a) for t, a in held if t > before]
        window._check()
        assert len(window) == len(held)


def test_ring_memory_is_bounded_by_its_span() -> None:
    """A long, fast stream: the ring never holds more than its buckets can reach."""
    ring = BucketRing(width=60_000_000, span=3_900_000_000)
    rng = random.Random(9)
    at, peak = 0, 0
    for _ in range(200_000):
        at += rng.randrange(0, 100_000)
        ring.add(at, 1)
        peak = max(peak, len(ring))
    # 65 minutes plus two buckets of events at ~20 a second is about 80,000.
    assert ring.span >= 3_900_000_000
    assert peak <= (3_900_000_000 + 2 * 60_000_000) // 100_000 * 3
    assert len(ring._times) == ring._cap == 3_900_000_000 // 60_000_000 + 2
