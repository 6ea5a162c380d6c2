"""``MemoryWindowStore``: the WindowStore of one process, on :class:`ExactWindow` per key.

Each key (pool) holds an :class:`~auptimate_core.windows.exact.ExactWindow` of its recent event
times and amounts, the ids of those events (for idempotency), its newest event time and the
time of its first event. Counts are exact at every boundary.

Memory is bounded by the windows, not by the stream: after each observation a key forgets the
events no interval can reach any more (older than its newest event minus the allowed lateness
minus the longest interval asked for), and every so often keys that went idle (newest event
older than the newest event of the whole store minus that horizon) are dropped whole. What a
store keeps for ever per key is its ``first_seen`` time and its lifecycle states: two integers
per pool ever seen, not per event.

Costs per observation: amortised ``O(1)`` to record an in-order event, ``O(log n)`` per interval
tallied, ``O(log n + k)`` for a late event that ``k`` newer events must make room for.

Thread-safe: one lock serialises every call, so engines in many threads may share it.

>>> store = MemoryWindowStore()
>>> from auptimate_core.store import Interval, Observation
>>> minute = 60_000_000
>>> [store.observe(Observation("p", f"t{i}", i * 1_000_000), [Interval(0, minute)]).tallies[0].count
...  for i in range(3)]
[1, 2, 3]
>>> store.observe(Observation("p", "t1", 1_000_000), [Interval(0, minute)]).status.value
'duplicate'
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import timedelta

from ..store import (
    IDLE,
    Interval,
    LifecycleState,
    Observation,
    Observed,
    ObservedBatch,
    Status,
    Tally,
    Transition,
)
from ..windows.exact import ExactWindow

_US = timedelta(microseconds=1)
_SWEEP_EVERY = 1 << 16


class _Key:
    """Everything a store keeps for one key."""

    __slots__ = ("first", "id_limit", "ids", "newest", "window")

    def __init__(self, first: int) -> None:
        self.window = ExactWindow()
        self.ids: dict[str, int] = {}
        self.newest = -(1 << 62)
        self.first = first
        self.id_limit = 64

    def forget_ids(self, horizon: int) -> None:
        """Forget the ids of events at or before ``horizon`` (which the window forgot too)."""
        self.ids = {k: v for k, v in self.ids.items() if v > horizon}
        self.id_limit = 2 * len(self.ids) + 64


class MemoryWindowStore:
    """A thread-safe, in-process :class:`~auptimate_core.store.WindowStore`.

    ``allowed_lateness``: how far behind a key's newest event an event may arrive and still be
    counted; an older one is ``LATE`` (not recorded). Five minutes by default.
    """

    def __init__(self, allowed_lateness: timedelta = timedelta(minutes=5)) -> None:
        if allowed_lateness < timedelta(0):
            raise ValueError(f"allowed_lateness: must not be negative, not {allowed_lateness}")
        self.allowed_lateness = allowed_lateness
        self._lateness = allowed_lateness // _US
        self._keys: dict[str, _Key] = {}
        self._first: dict[str, int] = {}
        self._lifecycle: dict[tuple[str, str], LifecycleState] = {}
        self._reach = 0
        self._newest = -(1 << 62)
        self._since_sweep = 0
        self._lock = threading.Lock()

    # -- recording and tallying ---------------------------------------------------------------

    def observe(self, observation: Observation, intervals: Sequence[Interval]) -> Observed:
        batch = self.observe_many(
            (observation.key,), (observation.event_id,), (observation.at,),
            (observation.amount,), intervals, totals=True,
        )
        return batch.observed(0)

    def observe_many(
        self,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        intervals: Sequence[Interval],
        *,
        totals: bool = False,
        tokens: Sequence[str] | None = None,
    ) -> ObservedBatch:
        n = len(keys)
        spans = [(iv.offset, iv.offset + iv.length) for iv in intervals]
        counts = [[0] * n for _ in spans]
        sums = [[0] * n for _ in spans] if totals else []
        sums_or_none = sums if totals else None
        statuses = [Status.NEW] * n
        first_seen: list[int | None] = [None] * n
        duplicate, late = Status.DUPLICATE, Status.LATE
        # The spike rules' shape, (0, w) then (w, w + b), gets a path with three searches.
        chained = len(spans) == 2 and spans[0][0] == 0 and spans[1][0] == spans[0][1]
        near = spans[0][1] if chained else 0
        far = spans[1][1] if chained else 0
        c0, c1 = (counts[0], counts[1]) if chained else ([], [])
        s0, s1 = (sums[0], sums[1]) if chained and totals else ([], [])
        with self._lock:
            if spans:
                self._reach = max(self._reach, max(high for _, high in spans))
            lateness = self._lateness
            keep = lateness + self._reach
            states = self._keys
            newest_all = self._newest
            for i in range(n):
                key = keys[i]
                at = ats[i]
                state = states.get(key)
                if state is None:
                    state = states[key] = _Key(self._first.get(key, at))
                ids = state.ids
                event_id = event_ids[i]
                newest = state.newest
                seen = ids.get(event_id)
                if seen is not None and seen > newest - keep:
                    statuses[i] = duplicate
                    first_seen[i] = state.first
                    continue
                if at < newest - lateness:
                    statuses[i] = late
                    first_seen[i] = state.first
                    continue
                ids[event_id] = at
                if len(ids) > state.id_limit:
                    state.forget_ids(at - keep)
                window = state.window
                if at >= newest and chained:
                    # In order (the usual case): an append, maybe a trim, three searches.
                    state.newest = at
                    if at > newest_all:
                        newest_all = at
                    times = window._times
                    cum = window._cum
                    times.append(at)
                    cum.append(cum[-1] + amounts[i])
                    begin = window._start
                    if times[begin] <= at - keep:
                        window.trim(at - keep)
                        times = window._times
                        cum = window._cum
                        begin = window._start
                    size = len(times)
                    mid = bisect_right(times, at - near, begin)
                    low = bisect_right(times, at - far, begin)
                    c0[i] = size - mid
                    c1[i] = mid - low
                    if totals:
                        s0[i] = cum[size] - cum[mid]
                        s1[i] = cum[mid] - cum[low]
                else:
                    if at > newest:
                        state.newest = newest = at
                        newest_all = max(newest_all, at)
                    window.record(at, amounts[i], newest - keep, spans, counts, sums_or_none, i)
                if at < state.first:
                    state.first = at
                first_seen[i] = state.first
            self._newest = newest_all
            self._since_sweep += n
            if self._since_sweep >= _SWEEP_EVERY:
                self._sweep()
        return ObservedBatch(statuses, counts, sums, first_seen)

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        with self._lock:
            state = self._keys.get(key)
            out = []
            for interval in intervals:
                low, high = interval.bounds(at)
                if state is None:
                    out.append(Tally(0, 0))
                else:
                    out.append(Tally(state.window.count(low, high),
                                     state.window.total(low, high)))
            return tuple(out)

    def _sweep(self) -> None:
        """Drop keys whose newest event is past the horizon of the whole store."""
        self._since_sweep = 0
        horizon = self._newest - self._lateness - self._reach
        idle = [key for key, state in self._keys.items() if state.newest < horizon]
        for key in idle:
            self._first[key] = self._keys.pop(key).first

    # -- lifecycle ----------------------------------------------------------------------------

    def states(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LifecycleState]:
        with self._lock:
            lifecycle = self._lifecycle
            return {pair: lifecycle.get(pair, IDLE) for pair in pairs}

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        applied = []
        with self._lock:
            lifecycle = self._lifecycle
            for change in transitions:
                pair = (change.key, change.rule)
                if lifecycle.get(pair, IDLE).firing == change.firing:
                    applied.append(False)
                else:
                    lifecycle[pair] = LifecycleState(change.firing, change.at, change.cause)
                    applied.append(True)
        return applied

    def firing(self, rule: str) -> frozenset[str]:
        with self._lock:
            return frozenset(
                key for (key, name), state in self._lifecycle.items()
                if name == rule and state.firing
            )

    def close(self) -> None:
        """Nothing to release; the store stays usable."""

    # -- introspection ------------------------------------------------------------------------

    def size(self) -> dict[str, int]:
        """How much the store holds: keys, events and remembered ids (for memory tests)."""
        with self._lock:
            return {
                "keys": len(self._keys),
                "events": sum(len(s.window) for s in self._keys.values()),
                "ids": sum(len(s.ids) for s in self._keys.values()),
            }

    def _check(self) -> None:
        """Assert the invariants: windows sorted, every held event's id remembered."""
        with self._lock:
            for state in self._keys.values():
                state.window._check()
                assert len(state.ids) >= len(state.window)
