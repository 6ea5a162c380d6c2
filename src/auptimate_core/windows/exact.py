"""An exact sliding window of one key's events: sorted event times with running amount sums.

:class:`ExactWindow` answers "how many events, and how much money, lie in ``(low, high]``"
exactly at any boundary, because it keeps every event time. It is built for the common case of
events arriving in time order, with occasional ties and late arrivals:

- ``add`` is amortised ``O(1)`` for an event at or after the newest one (an append) and
  ``O(log n + k)`` for a late one (``k`` events newer than it shift by one);
- ``count`` and ``total`` are ``O(log n)`` (two binary searches; the upper one is free when
  ``high`` is at or after the newest event, the usual case);
- ``trim(before)`` forgets events at or before a time in amortised ``O(1)`` per event: the
  front is skipped lazily and compacted when more than half the list is dead.

Memory is ``O(n)`` for the ``n`` events younger than the horizon the owner trims to.

The structure is three flat parallel lists rather than a ``sortedcontainers.SortedList``: a
pool's window holds at most an hour or so of that pool's events, and at that size one flat list
with ``bisect`` does the same work with less overhead per call.

>>> window = ExactWindow()
>>> for at, amount in [(10, 5), (20, 7), (20, 1), (35, 2)]:
...     window.add(at, amount)
>>> window.count(10, 35), window.total(10, 35), window.count(0, 20)
(3, 10, 3)
>>> window.add(15, 100)           # late, still exact
>>> window.count(10, 20), window.total(10, 20)
(3, 108)
>>> window.trim(15), len(window)
(2, 3)
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise


class ExactWindow:
    """Sorted event times and prefix sums of their amounts. Not thread-safe on its own."""

    __slots__ = ("_cum", "_start", "_times")

    def __init__(self) -> None:
        self._times: list[int] = []
        # _cum[i] is the sum of the amounts of events [0, i) (with _cum[0] == 0); None while
        # every amount is 0 (an owner that never asks for totals records 0 each time), which
        # spares a list per window and a sum per event.
        self._cum: list[int] | None = None
        self._start = 0

    def __len__(self) -> int:
        return len(self._times) - self._start

    @property
    def newest(self) -> int | None:
        return self._times[-1] if len(self._times) > self._start else None

    @property
    def oldest(self) -> int | None:
        return self._times[self._start] if len(self._times) > self._start else None

    def add(self, at: int, amount: int = 0) -> None:
        times = self._times
        cum = self._cum
        if not times or at >= times[-1]:
            times.append(at)
            if cum is not None:
                cum.append(cum[-1] + amount)
            elif amount:
                self.first_amount(amount)
            return
        i = bisect_right(times, at, self._start)
        if cum is None:
            if not amount:
                times.insert(i, at)
                return
            cum = self._cum = [0] * (len(times) + 1)
        times.insert(i, at)
        cum.insert(i + 1, cum[i] + amount)
        for j in range(i + 2, len(cum)):
            cum[j] += amount

    def first_amount(self, amount: int) -> list[int]:
        """The prefix sums once the newest event (just appended) brings the first amount
        other than 0: zeros up to it, then ``amount``."""
        cum = self._cum = [0] * len(self._times)
        cum.append(amount)
        return cum

    def _rank(self, at: int) -> int:
        times = self._times
        if not times or at >= times[-1]:
            return len(times)
        return bisect_right(times, at, self._start)

    def count(self, low: int, high: int) -> int:
        """Events with ``low < at <= high``."""
        if high <= low:
            return 0
        return self._rank(high) - max(self._start, self._rank(low))

    def total(self, low: int, high: int) -> int:
        """The sum of the amounts of events with ``low < at <= high``."""
        if high <= low:
            return 0
        cum = self._cum
        if cum is None:
            return 0
        return cum[self._rank(high)] - cum[max(self._start, self._rank(low))]

    def trim(self, before: int) -> int:
        """Forget events with ``at <= before``; returns how many were forgotten."""
        times = self._times
        start = self._start
        if start >= len(times) or times[start] > before:
            return 0
        cut = bisect_right(times, before, start)
        self._start = cut
        if cut * 2 > len(times):
            del times[:cut]
            cum = self._cum
            if cum is not None:
                base = cum[cut]
                self._cum = [value - base for value in cum[cut:]]
            self._start = 0
        return cut - start

    def clear(self) -> None:
        """Forget every event (what ``trim`` at or after the newest leaves), in ``O(1)``."""
        self._times = []
        self._cum = None
        self._start = 0

    def record(
        self,
        at: int,
        amount: int,
        horizon: int,
        spans: list[tuple[int, int]],
        counts: list[list[int]],
        sums: list[list[int]] | None,
        row: int,
    ) -> None:
        """The store's hot path in one call: ``add``, ``trim(horizon)``, then tally each span.

        ``spans`` holds ``(offset, reach)`` pairs: the interval ``(at - reach, at - offset]``.
        ``counts[j][row]`` (and ``sums[j][row]``) receive span ``j``'s tally. The same results
        as the separate calls, without their per-call overhead.
        """
        times = self._times
        if not times or at >= times[-1]:
            times.append(at)
            cum = self._cum
            if cum is not None:
                cum.append(cum[-1] + amount)
            elif amount:
                self.first_amount(amount)
        else:
            self.add(at, amount)
        start = self._start
        if times[start] <= horizon:
            self.trim(horizon)
            times = self._times
            start = self._start
        cum = self._cum
        size = len(times)
        newest = times[-1]
        for j, (offset, reach) in enumerate(spans):
            high = at - offset
            hi = size if high >= newest else bisect_right(times, high, start)
            lo = bisect_right(times, at - reach, start)
            counts[j][row] = hi - lo
            if sums is not None:
                sums[j][row] = cum[hi] - cum[lo] if cum is not None else 0

    def _check(self) -> None:
        """Assert the invariants (live times sorted, consistent prefix sums).

        Only the live part ``times[_start:]`` is kept sorted: a late event older than some
        trimmed (dead, not yet compacted) events goes in at ``_start``, after them.
        """
        times = self._times
        assert self._cum is None or len(self._cum) == len(times) + 1
        assert 0 <= self._start <= len(times)
        assert all(a <= b for a, b in pairwise(times[self._start:]))
