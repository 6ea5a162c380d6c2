"""A brute-force WindowStore: the contract's model store with the rest of the protocol.

It exists to show the engine needs nothing but the protocol, and as an obviously-right
reference when a faster store disagrees.
"""

from __future__ import annotations

from collections.abc import Sequence

from auptimate_core.store import DAY, Interval, Observation, ObservedBatch
from auptimate_core.testing.window_store import ModelStore


class NaiveWindowStore(ModelStore):
    def __init__(self, allowed_lateness_us: int = 300_000_000,
                 dedup_horizon_us: int = DAY) -> None:
        super().__init__(allowed_lateness_us, dedup_horizon_us)

    def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        deliveries: Sequence[str] | None = None, batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        results = [
            self.observe(Observation(k, e, a, m), intervals, not_after=not_after)
            for k, e, a, m in zip(keys, event_ids, ats, amounts)
        ]
        counts = [[r.tallies[j].count if r.tallies else 0 for r in results]
                  for j in range(len(intervals))]
        sums = [[r.tallies[j].total if r.tallies else 0 for r in results]
                for j in range(len(intervals))] if totals else []
        return ObservedBatch([r.status for r in results], counts, sums,
                             [r.first_seen for r in results])

    def firing(self, rule: str) -> frozenset[str]:
        return frozenset(k for (k, r), s in self.lifecycle.items() if r == rule and s.firing)

    def close(self) -> None:
        pass
