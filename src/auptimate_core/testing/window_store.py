"""The contract every :class:`~auptimate_core.store.WindowStore` passes.

Subclass :class:`WindowStoreContract` in a test module and give it a factory::

    class TestMyStore(WindowStoreContract):
        def make_store(self, allowed_lateness_us: int) -> WindowStore:
            return MyStore(allowed_lateness=timedelta(microseconds=allowed_lateness_us))

Every test asks for a fresh, empty store. The property tests hold the store against
:class:`ModelStore`, a brute-force model that keeps every event in a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..store import (
    DAY,
    IDLE,
    ColumnarBatch,
    Interval,
    LifecycleState,
    Observation,
    Observed,
    Status,
    Tally,
    Transition,
    WindowStore,
)

LATENESS = 50
AHEAD = 300
"""How far past the stream's clock ``not_after`` lies in the generated streams."""


class ModelStore:
    """The contract, written as plainly as possible (quadratic, obviously right).

    Ids are remembered for ``max(dedup_horizon, lateness + longest reach)`` behind the key's
    newest event; the contract allows a store to remember them longer (up to twice the
    horizon), which streams shorter than the horizon never see.
    """

    def __init__(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> None:
        self.lateness = allowed_lateness_us
        self.horizon = dedup_horizon_us
        self.events: dict[str, list[tuple[str, int, int]]] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.first: dict[str, int] = {}
        self.lifecycle: dict[tuple[str, str], LifecycleState] = {}
        self.before: dict[tuple[str, str], tuple[str, LifecycleState]] = {}
        self.reach = 0

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        out = []
        for interval in intervals:
            low, high = interval.bounds(at)
            hits = [amount for _, t, amount in self.events.get(key, []) if low < t <= high]
            out.append(Tally(len(hits), sum(hits)))
        return tuple(out)

    def observe(
        self, obs: Observation, intervals: Sequence[Interval], *, not_after: int | None = None
    ) -> Observed:
        self.reach = max([self.reach, *(iv.reach for iv in intervals)])
        events = self.events.setdefault(obs.key, [])
        newest = max((t for _, t, _ in events), default=None)
        memory = max(self.horizon, self.lateness + self.reach)
        recorded = self.ids.get((obs.key, obs.event_id))
        first = self.first.get(obs.key)
        if recorded is not None and (newest is None or recorded > newest - memory):
            return Observed(Status.DUPLICATE, (), first)
        if not_after is not None and obs.at > not_after:
            self.ids[(obs.key, obs.event_id)] = not_after
            return Observed(Status.FUTURE, (), first)
        if newest is not None and obs.at < newest - self.lateness:
            self.ids[(obs.key, obs.event_id)] = newest
            return Observed(Status.LATE, (), first)
        self.ids[(obs.key, obs.event_id)] = obs.at
        events.append((obs.event_id, obs.at, obs.amount))
        self.first[obs.key] = min(self.first.get(obs.key, obs.at), obs.at)
        return Observed(Status.NEW, self.tally(obs.key, obs.at, intervals), self.first[obs.key])

    def transition(self, changes: Sequence[Transition]) -> list[bool]:
        applied = []
        for change in changes:
            pair = (change.key, change.rule)
            current = self.lifecycle.get(pair, IDLE)
            if change.batch is not None and self.before.get(pair, ("",))[0] != change.batch:
                self.before[pair] = (change.batch, current)
            target = LifecycleState(change.firing, change.at, change.cause)
            ok = (change.cause is not None and current == target) or (
                current.firing != change.firing)
            if ok:
                self.lifecycle[pair] = target
            applied.append(ok)
        return applied

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        out = {}
        for pair in pairs:
            before = self.before.get(pair)
            if batch is not None and before is not None and before[0] == batch:
                out[pair] = before[1]
            else:
                out[pair] = self.lifecycle.get(pair, IDLE)
        return out


intervals_st = st.lists(
    st.builds(Interval, st.integers(0, 120), st.integers(1, 200)), min_size=1, max_size=3
)


@st.composite
def observations(draw: st.DrawFn, max_size: int = 40) -> list[tuple[Observation, int]]:
    """Streams over a few keys, each event with the ``not_after`` it is observed under: mostly
    in order, ties, late and too-late ones, some far in the future, odd key text, and
    redeliveries with their original time or a new one."""
    keys = draw(st.lists(st.sampled_from(["a", "b:{x}", "c d", "{b}"]), min_size=1,
                         max_size=2, unique=True))
    n = draw(st.integers(1, max_size))
    out: list[tuple[Observation, int]] = []
    clock = 1_000
    for i in range(n):
        step = draw(st.sampled_from([0, 0, 1, 3, 10, 40, 120, -20, -60]))
        clock = max(0, clock + step)
        not_after = clock + AHEAD
        kind = draw(st.integers(0, 19))
        if out and kind < 2:  # a redelivery, as it came
            out.append((draw(st.sampled_from(out))[0], not_after))
            continue
        if out and kind < 4:  # a redelivery with a new time
            again = draw(st.sampled_from(out))[0]
            out.append((attrs.evolve(again, at=clock), not_after))
            continue
        at = clock + draw(st.sampled_from([AHEAD + 1, 5 * AHEAD])) if kind == 4 else clock
        out.append((Observation(draw(st.sampled_from(keys)), f"e{i}", at,
                                draw(st.integers(0, 10**12))), not_after))
    return out


@st.composite
def shaped_intervals(draw: st.DrawFn) -> list[Interval]:
    """Two windows that overlap (``(0, 10), (5, 20)``), nest, end in the past, both end now,
    or almost chain (a gap or an overlap of one where the spike rule's pair meets)."""
    a = draw(st.integers(1, 120))
    b = draw(st.integers(1, 120))
    off = draw(st.integers(1, 60))
    shapes = [
        [Interval(0, a), Interval(off, a + b)],          # overlapping, second reaches further
        [Interval(0, a + b + off), Interval(off, a)],    # nested inside the first
        [Interval(off, a), Interval(off + a + 1, b)],    # both end in the past, a gap between
        [Interval(0, a), Interval(0, b)],                # both end now
        [Interval(0, a), Interval(a + 1, b)],            # the spike pair with a one-unit gap
        [Interval(0, a + 1), Interval(a, b)],            # the spike pair overlapping by one
        [Interval(off, a), Interval(0, b)],              # the past window first
    ]
    return draw(st.sampled_from(shapes))


class WindowStoreContract:
    """Tests every WindowStore must pass; subclasses define :meth:`make_store`."""

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        raise NotImplementedError

    def _fresh(self, dedup_horizon_us: int = DAY) -> WindowStore:
        return self.make_store(LATENESS, dedup_horizon_us)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=observations(), intervals=intervals_st)
    def test_observe_matches_the_model(
        self, stream: list[tuple[Observation, int]], intervals: list[Interval]
    ) -> None:
        store, model = self._fresh(), ModelStore(LATENESS)
        try:
            for obs, not_after in stream:
                want = model.observe(obs, intervals, not_after=not_after)
                assert store.observe(obs, intervals, not_after=not_after) == want, obs
        finally:
            store.close()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=observations(), intervals=intervals_st, batch=st.integers(1, 15),
           totals=st.booleans(), probe=st.integers(0, 2_000))
    def test_observe_many_matches_observe_in_order(
        self, stream: list[tuple[Observation, int]], intervals: list[Interval], batch: int,
        totals: bool, probe: int,
    ) -> None:
        store, model = self._fresh(), ModelStore(LATENESS)
        try:
            for start in range(0, len(stream), batch):
                not_after = stream[start][1]
                chunk = [obs for obs, _ in stream[start:start + batch]]
                got = store.observe_many(
                    [o.key for o in chunk], [o.event_id for o in chunk], [o.at for o in chunk],
                    [o.amount for o in chunk], intervals, totals=totals, not_after=not_after,
                )
                assert len(got) == len(chunk)
                if isinstance(got, ColumnarBatch):  # a store's numpy columns: the same values
                    assert [list(map(int, a)) for a in got.count_arrays] == got.counts
                    assert [list(map(int, a)) for a in got.total_arrays] == got.totals
                for i, obs in enumerate(chunk):
                    want = model.observe(obs, intervals, not_after=not_after)
                    assert got.statuses[i] is want.status
                    assert got.first_seen[i] == want.first_seen
                    if want.status is Status.NEW:
                        assert [c[i] for c in got.counts] == [t.count for t in want.tallies]
                        if totals:
                            assert [s[i] for s in got.totals] == [t.total for t in want.tallies]
                    else:
                        assert all(c[i] == 0 for c in got.counts)
                    if not totals:
                        assert got.totals == []
            for key in {o.key for o, _ in stream}:
                newest = max((t for _, t, _ in model.events.get(key, [])), default=0)
                at = newest + probe - 1_000  # tallies at times the stream still reaches
                if at >= newest - LATENESS:
                    assert store.tally(key, at, intervals) == model.tally(key, at, intervals)
        finally:
            store.close()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(st.tuples(
        st.sampled_from(["a", "b"]), st.sampled_from(["spike", "x"]), st.booleans(),
        st.integers(0, 100), st.sampled_from([None, "t1", "t2"]),
        st.sampled_from([None, "b1", "b2"])), max_size=8), max_size=4))
    def test_lifecycle_is_compare_and_set(
        self, calls: list[list[tuple[str, str, bool, int, str | None, str | None]]]
    ) -> None:
        store, model = self._fresh(), ModelStore(LATENESS)
        pairs = [(k, r) for k in "ab" for r in ("spike", "x")]
        try:
            for changes in calls:
                transitions = [Transition(*change) for change in changes]
                assert store.transition(transitions) == model.transition(transitions)
                for batch in (None, "b1", "b2"):
                    assert store.states(pairs, batch=batch) == model.states(pairs, batch=batch)
            for rule in ("spike", "x"):
                want = {k for (k, r), s in model.lifecycle.items() if r == rule and s.firing}
                assert store.firing(rule) == frozenset(want)
        finally:
            store.close()

    def test_unknown_keys_are_empty_and_idle(self) -> None:
        store = self._fresh()
        try:
            assert store.tally("nobody", 10, [Interval(0, 5)]) == (Tally(0, 0),)
            assert store.states([("nobody", "spike")]) == {("nobody", "spike"): IDLE}
            assert store.firing("spike") == frozenset()
        finally:
            store.close()

    def test_keys_do_not_collide(self) -> None:
        store = self._fresh()
        try:
            names = ["p", "p:", ":p", "{p}", "p}", "{p", "p q", "p\\", "ü"]
            for i, key in enumerate(names):
                store.observe(Observation(key, "same-id", 100 + i), [Interval(0, 10)])
            for i, key in enumerate(names):
                assert store.tally(key, 100 + i, [Interval(0, 1_000)]) == (Tally(1, 0),), key
        finally:
            store.close()

    def test_late_and_future_ids_are_remembered_and_stay_out_of_the_windows(self) -> None:
        store = self._fresh()
        window = [Interval(0, 1_000)]
        try:
            assert store.observe(Observation("p", "a", 1_000), window).status is Status.NEW
            far = Observation("p", "far", 10**15)
            assert store.observe(far, window, not_after=2_000).status is Status.FUTURE
            assert store.observe(far, window, not_after=2_000).status is Status.DUPLICATE
            # The future event moved nothing: an event just after the first is not late.
            got = store.observe(Observation("p", "b", 1_010), window, not_after=2_000)
            assert got.status is Status.NEW and got.tallies == (Tally(2, 0),)
            old = Observation("p", "old", 1_010 - LATENESS - 1)
            assert store.observe(old, window).status is Status.LATE
            assert store.observe(old, window).status is Status.DUPLICATE
            assert store.observe(attrs.evolve(old, at=1_020), window).status is Status.DUPLICATE
            assert store.tally("p", 1_020, window) == (Tally(2, 0),)
        finally:
            store.close()

    def test_ids_are_remembered_for_the_dedup_horizon_not_the_windows(self) -> None:
        horizon = 100_000
        store = self._fresh(dedup_horizon_us=horizon)
        window = [Interval(0, 10)]
        try:
            assert store.observe(Observation("p", "x", 0), window).status is Status.NEW
            for i, at in enumerate(range(1_000, horizon - 1, 1_000)):
                store.observe(Observation("p", f"n{i}", at), window)
            # Redelivered with a new time, and with its original one (now too late).
            assert store.observe(Observation("p", "x", horizon - 1), window).status is (
                Status.DUPLICATE)
            assert store.observe(Observation("p", "x", 0), window).status is Status.DUPLICATE
            # Well past twice the horizon the id is forgotten: memory is bounded.
            for i in range(3):
                store.observe(Observation("p", f"m{i}", 2 * horizon + 10_000 * (i + 1)), window)
            again = store.observe(Observation("p", "x", 2 * horizon + 40_000), window)
            assert again.status is Status.NEW
        finally:
            store.close()

    # -- interval shapes the engine's own rules never ask for, and times before 1970 ----------

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=observations(), intervals=shaped_intervals(),
           shift=st.sampled_from([0, -1_000, -(10**15)]))
    def test_overlapping_nested_and_past_windows_match_the_model(
        self, stream: list[tuple[Observation, int]], intervals: list[Interval], shift: int
    ) -> None:
        """Pairs that overlap, nest, end in the past or both end now, on every path of
        ``observe`` and ``observe_many``; ``shift`` moves the stream before 1970 (negative
        microseconds)."""
        store, model = self._fresh(), ModelStore(LATENESS)
        moved = [(attrs.evolve(obs, at=obs.at + shift), not_after + shift)
                 for obs, not_after in stream]
        try:
            half = len(moved) // 2
            for obs, not_after in moved[:half]:
                want = model.observe(obs, intervals, not_after=not_after)
                assert store.observe(obs, intervals, not_after=not_after) == want, obs
            chunk = [obs for obs, _ in moved[half:]]
            if chunk:
                not_after = moved[half][1]
                got = store.observe_many(
                    [o.key for o in chunk], [o.event_id for o in chunk], [o.at for o in chunk],
                    [o.amount for o in chunk], intervals, totals=True, not_after=not_after,
                )
                for i, obs in enumerate(chunk):
                    want = model.observe(obs, intervals, not_after=not_after)
                    assert got.statuses[i] is want.status, obs
                    assert got.first_seen[i] == want.first_seen, obs
                    if want.status is Status.NEW:
                        assert [c[i] for c in got.counts] == [t.count for t in want.tallies], obs
                        assert [s[i] for s in got.totals] == [t.total for t in want.tallies], obs
            for key in {o.key for o, _ in moved}:
                newest = max((t for _, t, _ in model.events.get(key, [])), default=None)
                if newest is not None:
                    assert store.tally(key, newest, intervals) == model.tally(
                        key, newest, intervals), key
        finally:
            store.close()

    def test_the_issue_shape_overlapping_pair(self) -> None:
        """``[Interval(0, 10), Interval(5, 20)]``: two overlapping windows, the second not
        starting where the first ends."""
        store, model = self._fresh(), ModelStore(LATENESS)
        intervals = [Interval(0, 10), Interval(5, 20)]
        try:
            for i, at in enumerate([-30, -12, -7, -3, 0, 4, 9, 10, 15, 26]):
                obs = Observation("p", f"e{i}", at, 100 + i)
                assert store.observe(obs, intervals) == model.observe(obs, intervals), obs
            assert store.tally("p", 26, intervals) == (Tally(1, 109), Tally(4, 426))
        finally:
            store.close()

