"""A brute-force reference of API.md's alert semantics, for property tests of the engine.

It keeps every event of every pool in a plain list and counts by scanning: slow, obvious, and
written from the text of API.md rather than from the engine's code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from auptimate_core import Transaction

_US = timedelta(microseconds=1)


class ReferenceAlerts:
    """Threshold and spike rules on event time, per pool, with the firing/resolved lifecycle."""

    def __init__(
        self,
        *,
        limit: Decimal | None,
        per_pool: dict[str, Decimal] | None = None,
        window: timedelta = timedelta(minutes=1),
        baseline: timedelta = timedelta(hours=1),
        factor: int = 10,
        min_count: int = 5,
        lateness: timedelta = timedelta(minutes=5),
        spike: bool = True,
        not_after: datetime | None = None,
    ) -> None:
        self.limit = limit
        self.per_pool = per_pool or {}
        self.window = window
        self.baseline = baseline
        self.factor = Fraction(factor)
        self.min_count = min_count
        self.lateness = lateness
        self.spike = spike
        self.not_after = not_after  # the engine's clock plus its max_ahead, when it has one
        self.events: dict[str, list[datetime]] = {}
        self.seen: set[tuple[str, str]] = set()
        self.firing: dict[str, bool] = {}

    def _count(self, pool: str, low: datetime, high: datetime) -> int:
        return sum(1 for at in self.events.get(pool, []) if low < at <= high)

    def holds(self, pool: str, t: datetime) -> bool:
        recent = self._count(pool, t - self.window, t)
        base = self._count(pool, t - self.window - self.baseline, t - self.window)
        # Exact: timedelta / timedelta is a float, and 0.1 as a float is a little over 1/10.
        expected = Fraction(base) * Fraction(self.window // _US, self.baseline // _US)
        return recent >= self.min_count and recent >= self.factor * expected

    def process(self, tx: Transaction) -> list[tuple[str, str, str, str | None, datetime]]:
        """(rule, state, pool, transaction id, at) of each alert ``tx`` causes."""
        if (tx.pool_id, tx.id) in self.seen:
            return []  # a duplicate: nothing at all
        self.seen.add((tx.pool_id, tx.id))
        out: list[tuple[str, str, str, str | None, datetime]] = []
        if self.limit is not None:
            limit = self.per_pool.get(tx.pool_id, self.limit)
            if tx.amount > limit:
                out.append(("threshold", "firing", tx.pool_id, tx.id, tx.timestamp))
        events = self.events.setdefault(tx.pool_id, [])
        if self.not_after is not None and tx.timestamp > self.not_after:
            return out  # future: kept out of the windows
        if events and tx.timestamp < max(events) - self.lateness:
            return out  # late: kept out of the windows
        events.append(tx.timestamp)
        if self.spike:
            now = self.holds(tx.pool_id, tx.timestamp)
            if now != self.firing.get(tx.pool_id, False):
                self.firing[tx.pool_id] = now
                state = "firing" if now else "resolved"
                out.append(("spike", state, tx.pool_id, tx.id, tx.timestamp))
        return out

    def process_many(
        self, txs: Iterable[Transaction]
    ) -> list[tuple[str, str, str, str | None, datetime]]:
        return [alert for tx in txs for alert in self.process(tx)]

    def evaluate(self, now: datetime) -> list[tuple[str, str, str, str | None, datetime]]:
        out: list[tuple[str, str, str, str | None, datetime]] = []
        for pool in sorted(p for p, f in self.firing.items() if f):
            if not self.holds(pool, now):
                self.firing[pool] = False
                out.append(("spike", "resolved", pool, None, now))
        return out
