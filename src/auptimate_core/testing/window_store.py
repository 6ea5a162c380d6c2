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

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..store import (
    IDLE,
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


class ModelStore:
    """The contract, written as plainly as possible (quadratic, obviously right)."""

    def __init__(self, allowed_lateness_us: int) -> None:
        self.lateness = allowed_lateness_us
        self.events: dict[str, list[tuple[str, int, int]]] = {}
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

    def observe(self, obs: Observation, intervals: Sequence[Interval]) -> Observed:
        self.reach = max([self.reach, *(iv.reach for iv in intervals)])
        events = self.events.setdefault(obs.key, [])
        newest = max((t for _, t, _ in events), default=None)
        # An id is remembered while its event can still be reached: within the allowed
        # lateness plus the longest interval asked for so far, behind the key's newest event.
        if any(
            event_id == obs.event_id and t > newest - self.lateness - self.reach
            for event_id, t, _ in events
            if newest is not None
        ):
            return Observed(Status.DUPLICATE, (), self.first.get(obs.key))
        if newest is not None and obs.at < newest - self.lateness:
            return Observed(Status.LATE, (), self.first.get(obs.key))
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
def observations(draw: st.DrawFn, max_size: int = 40) -> list[Observation]:
    """Streams over a few keys: mostly in order, ties, late ones, duplicates, odd key text."""
    keys = draw(st.lists(st.sampled_from(["a", "b:{x}", "c d", "{b}"]), min_size=1,
                         max_size=2, unique=True))
    n = draw(st.integers(1, max_size))
    out: list[Observation] = []
    clock = 1_000
    for i in range(n):
        step = draw(st.sampled_from([0, 0, 1, 3, 10, 40, 120, -20, -60]))
        clock = max(0, clock + step)
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # a redelivery
            continue
        out.append(Observation(draw(st.sampled_from(keys)), f"e{i}", clock,
                               draw(st.integers(0, 10**12))))
    return out


class WindowStoreContract:
    """Tests every WindowStore must pass; subclasses define :meth:`make_store`."""

    def make_store(self, allowed_lateness_us: int) -> WindowStore:
        raise NotImplementedError

    def _fresh(self) -> WindowStore:
        return self.make_store(LATENESS)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=observations(), intervals=intervals_st)
    def test_observe_matches_the_model(
        self, stream: list[Observation], intervals: list[Interval]
    ) -> None:
        store, model = self._fresh(), ModelStore(LATENESS)
        try:
            for obs in stream:
                assert store.observe(obs, intervals) == model.observe(obs, intervals), obs
        finally:
            store.close()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stream=observations(), intervals=intervals_st, batch=st.integers(1, 15),
           totals=st.booleans(), probe=st.integers(0, 2_000))
    def test_observe_many_matches_observe_in_order(
        self, stream: list[Observation], intervals: list[Interval], batch: int, totals: bool,
        probe: int,
    ) -> None:
        store, model = self._fresh(), ModelStore(LATENESS)
        try:
            for start in range(0, len(stream), batch):
                chunk = stream[start:start + batch]
                got = store.observe_many(
                    [o.key for o in chunk], [o.event_id for o in chunk], [o.at for o in chunk],
                    [o.amount for o in chunk], intervals, totals=totals,
                )
                assert len(got) == len(chunk)
                if got.arrays is not None:  # a store's numpy columns hold the same values
                    assert [list(map(int, a)) for a in got.arrays[0]] == got.counts
                    assert [list(map(int, a)) for a in got.arrays[1]] == got.totals
                for i, obs in enumerate(chunk):
                    want = model.observe(obs, intervals)
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
            for key in {o.key for o in stream}:
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
