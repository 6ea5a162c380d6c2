"""A brute-force WindowStore: every event in a list, every tally a scan.

It exists to show the engine needs nothing but the protocol, and as an obviously-right
reference when a faster store disagrees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from auptimate_core.store import (
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


class NaiveWindowStore:
    def __init__(self, allowed_lateness_us: int = 300_000_000) -> None:
        self.lateness = allowed_lateness_us
        self.events: dict[str, list[tuple[int, int]]] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.reach = 0
        self.first: dict[str, int] = {}
        self.lifecycle: dict[tuple[str, str], LifecycleState] = {}
        self.before: dict[tuple[str, str], tuple[str, LifecycleState]] = {}

    def _tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        out = []
        for interval in intervals:
            low, high = interval.bounds(at)
            hits = [amount for t, amount in self.events.get(key, []) if low < t <= high]
            out.append(Tally(len(hits), sum(hits)))
        return tuple(out)

    def observe(self, observation: Observation, intervals: Sequence[Interval]) -> Observed:
        key, at = observation.key, observation.at
        self.reach = max([self.reach, *(iv.reach for iv in intervals)])
        events = self.events.setdefault(key, [])
        newest = max((t for t, _ in events), default=None)
        seen = self.ids.get((key, observation.event_id))
        if seen is not None and newest is not None and seen > newest - self.lateness - self.reach:
            return Observed(Status.DUPLICATE, (), self.first.get(key))
        if newest is not None and at < newest - self.lateness:
            return Observed(Status.LATE, (), self.first.get(key))
        self.ids[(key, observation.event_id)] = at
        events.append((at, observation.amount))
        self.first[key] = min(self.first.get(key, at), at)
        return Observed(Status.NEW, self._tally(key, at, intervals), self.first[key])

    def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        tokens: Sequence[str] | None = None,
    ) -> ObservedBatch:
        results = [
            self.observe(Observation(k, e, a, m), intervals)
            for k, e, a, m in zip(keys, event_ids, ats, amounts)
        ]
        counts = [[r.tallies[j].count if r.tallies else 0 for r in results]
                  for j in range(len(intervals))]
        sums = [[r.tallies[j].total if r.tallies else 0 for r in results]
                for j in range(len(intervals))] if totals else []
        return ObservedBatch([r.status for r in results], counts, sums,
                             [r.first_seen for r in results])

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        return self._tally(key, at, intervals)

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        out = {}
        for pair in pairs:
            before = self.before.get(pair)
            use_before = batch is not None and before is not None and before[0] == batch
            out[pair] = before[1] if use_before and before else self.lifecycle.get(pair, IDLE)
        return out

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        applied = []
        for t in transitions:
            pair = (t.key, t.rule)
            current = self.lifecycle.get(pair, IDLE)
            if t.batch is not None and self.before.get(pair, ("",))[0] != t.batch:
                self.before[pair] = (t.batch, current)
            target = LifecycleState(t.firing, t.at, t.cause)
            again = t.cause is not None and current == target
            ok = again or current.firing != t.firing
            if ok:
                self.lifecycle[pair] = target
            applied.append(ok)
        return applied

    def firing(self, rule: str) -> frozenset[str]:
        return frozenset(k for (k, r), s in self.lifecycle.items() if r == rule and s.firing)

    def close(self) -> None:
        pass
