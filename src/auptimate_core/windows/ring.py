"""A ring of fixed-width time buckets that still counts exactly at any boundary.

:class:`BucketRing` keeps one key's events for the long baseline windows. Time is cut into
buckets of ``width`` microseconds (bucket ``b`` holds the times ``b * width <= at < (b + 1) *
width``) and the ring has one slot per bucket it must reach, so the newest bucket overwrites the
slot of one that fell out of reach: memory is bounded by ``span / width + 2`` buckets whatever the
length of the stream.

How the ring stays exact (buckets alone would only count to the nearest bucket). Each bucket
holds:

- ``base``: the running count (and amount sum) of every event added to the ring in the older
  buckets, since the ring was made. It never changes when old buckets are forgotten, so the
  number of events at or before a time ``x`` is ``base[bucket(x)]`` plus the events of that one
  bucket at or before ``x``;
- its event times, sorted, in a compact ``array('q')`` (8 bytes an event, not a Python int),
  with the prefix sums of their amounts beside them.

A window ``(low, high]`` is then ``rank(high) - rank(low)``: the buckets it covers whole are
answered by the two ``base`` values in ``O(1)``, and only the two edge buckets are searched,
each by one binary search over that bucket's own few events. So each bucket is a small exact
window (what :class:`~auptimate_core.windows.exact.ExactWindow` is for a whole key), and the
ring is how many of them are chained so that the interior costs nothing. There is no second
structure to keep in step, and the spike rule's boundaries (``t - w`` and ``t - w - b`` at any
microsecond) are exact. (The other way to combine them, an exact window for the edges beside a
counting-only ring for the interior, was rejected: the baseline's far edge lies a whole
baseline back, so the exact window would have to hold all of it anyway.)

Costs, with ``m`` the events of one bucket:

- ``add`` of an event in the newest bucket, at or after its newest event: ``O(1)`` amortised;
  moving to a new bucket also resets the slots of the buckets skipped over (slice assignments,
  at most one ring's worth); a late event costs ``O(m)`` to take its place in its bucket and
  rebuild that bucket's sums, plus ``O(d)`` to raise the ``base`` of the ``d`` newer buckets
  (``d`` is bounded by the allowed lateness over the width);
- ``count``/``total``: ``O(log m)``, whatever the window's length;
- memory: ``O(span / width)`` slots, two small arrays per non-empty bucket, and 16 bytes per
  event held.

An event more than one ring behind the newest bucket is refused with ``ValueError`` (the owner
applies its allowed lateness first, so nothing is silently misplaced); a late one within the
ring is always taken, even into a bucket that had been forgotten or never opened. Times are
microseconds that fit 64 bits, as every ``datetime`` does.

>>> ring = BucketRing(width=10, span=20)
>>> for at, amount in [(3, 5), (12, 7), (12, 1), (27, 2), (41, 4)]:
...     ring.add(at, amount)
>>> ring.count(11, 41), ring.total(11, 41)     # exact inside buckets 1 and 4
(4, 14)
>>> ring.add(25, 100)                            # late, in an older bucket: still exact
>>> ring.count(12, 27), ring.total(12, 27)
(2, 102)
>>> len(ring), ring.oldest_reach                 # bucket 0 fell out when bucket 4 opened
(5, 10)
>>> ring.add(60, 1); len(ring)                   # buckets 1 and 2 fall out
2
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import MutableSequence
from itertools import pairwise

_NO_TIMES: array[int] = array("q")
_NO_SUMS: array[int] = array("q", [0])


class BucketRing:
    """Fixed-width time buckets in a ring, exact at the edges. Not thread-safe on its own.

    ``width``: the width of a bucket in microseconds. ``span``: how far back from the newest
    event the ring must hold every event; older buckets fall out as newer ones open.
    """

    __slots__ = ("_base_n", "_base_s", "_cap", "_cum", "_head", "_n", "_s", "_tail", "_times",
                 "width")

    def __init__(self, width: int, span: int) -> None:
        if width <= 0:
            raise ValueError(f"width: must be positive, not {width}")
        if span < 0:
            raise ValueError(f"span: must not be negative, not {span}")
        self.width = width
        self._cap = span // width + 2
        self._times: list[array[int]] = [_NO_TIMES] * self._cap
        # _cum[slot][i]: the amounts of that bucket's first i events (a list once too big).
        self._cum: list[MutableSequence[int]] = [_NO_SUMS] * self._cap
        self._base_n: list[int] = [0] * self._cap
        self._base_s: list[int] = [0] * self._cap
        self._n = 0  # events ever added
        self._s = 0  # their amounts
        self._head = 0  # newest bucket (meaningless while _n == 0)
        self._tail = 1  # oldest bucket held; _tail > _head means the ring is empty

    @property
    def span(self) -> int:
        """How far back from the newest event every event is guaranteed to be held."""
        return (self._cap - 2) * self.width

    @property
    def oldest_reach(self) -> int | None:
        """The start of the oldest bucket held (events before it are forgotten), or None."""
        return self._tail * self.width if self._tail <= self._head else None

    def __len__(self) -> int:
        if self._tail > self._head:
            return 0
        return self._n - self._base_n[self._tail % self._cap]

    def _open(self, bucket: int) -> None:
        """Make ``bucket`` the newest: reset the slots from ``_head + 1`` up to it."""
        cap = self._cap
        n, s = self._n, self._s
        if self._tail > self._head or bucket - self._head >= cap:
            self._times = [_NO_TIMES] * cap
            self._cum = [_NO_SUMS] * cap
            self._base_n = [n] * cap
            self._base_s = [s] * cap
            self._head = self._tail = bucket
            return
        first = (self._head + 1) % cap
        count = bucket - self._head
        for start, stop in ((first, min(cap, first + count)), (0, first + count - cap)):
            if stop > start:
                k = stop - start
                self._times[start:stop] = [_NO_TIMES] * k
                self._cum[start:stop] = [_NO_SUMS] * k
                self._base_n[start:stop] = [n] * k
                self._base_s[start:stop] = [s] * k
        self._head = bucket
        self._tail = max(self._tail, bucket - cap + 1)

    def add(self, at: int, amount: int = 0) -> None:
        """Add one event; ``ValueError`` if it is more than one ring behind the newest bucket
        (see :attr:`accepts_from`)."""
        bucket = at // self.width
        if bucket > self._head or self._tail > self._head:
            self._open(bucket)
        elif bucket < self._tail:
            self._reopen(bucket, at)
        slot = bucket % self._cap
        times = self._times[slot]
        if times is _NO_TIMES:
            self._times[slot] = array("q", (at,))
            self._cum[slot] = _sums(0, amount)
        elif at >= times[-1]:
            times.append(at)
            cum = self._cum[slot]
            try:
                cum.append(cum[-1] + amount)
            except OverflowError:
                self._cum[slot] = [*cum, cum[-1] + amount]
        else:
            self._insert(slot, times, at, amount)
        if bucket < self._head:
            self._raise_bases(bucket, amount)
        self._n += 1
        self._s += amount

    def _reopen(self, bucket: int, at: int) -> None:
        """Hold the buckets from ``bucket`` up to the oldest one held again, as empty ones
        (their slots are free while they are within one ring of the newest bucket)."""
        if bucket <= self._head - self._cap:
            raise ValueError(
                f"at: {at} is older than the ring can hold (it takes times from "
                f"{(self._head - self._cap + 1) * self.width} on)"
            )
        cap = self._cap
        oldest = self._tail % cap
        n, s = self._base_n[oldest], self._base_s[oldest]
        for b in range(bucket, self._tail):
            slot = b % cap
            self._times[slot], self._cum[slot] = _NO_TIMES, _NO_SUMS
            self._base_n[slot], self._base_s[slot] = n, s
        self._tail = bucket

    @property
    def accepts_from(self) -> int | None:
        """The earliest time :meth:`add` still takes (None while the ring is empty: any)."""
        if self._tail > self._head:
            return None
        return (self._head - self._cap + 1) * self.width

    def _insert(self, slot: int, times: array[int], at: int, amount: int) -> None:
        """Put a late event in its place inside one bucket and rebuild that bucket's sums."""
        i = bisect_right(times, at)
        times.insert(i, at)
        sums = list(self._cum[slot])
        sums.insert(i + 1, sums[i])
        for j in range(i + 1, len(sums)):
            sums[j] += amount
        self._cum[slot] = _compact(sums)

    def _raise_bases(self, bucket: int, amount: int) -> None:
        """A late event in ``bucket``: every newer bucket has one more event before it."""
        cap = self._cap
        base_n, base_s = self._base_n, self._base_s
        for b in range(bucket + 1, self._head + 1):
            slot = b % cap
            base_n[slot] += 1
            base_s[slot] += amount

    def _rank(self, at: int) -> tuple[int, int]:
        """The count and amount of the events added at or before ``at`` (forgotten ones
        counting as before)."""
        bucket = at // self.width
        if bucket > self._head:
            return self._n, self._s
        cap = self._cap
        if bucket < self._tail:
            slot = self._tail % cap
            return self._base_n[slot], self._base_s[slot]
        slot = bucket % cap
        i = bisect_right(self._times[slot], at)
        return self._base_n[slot] + i, self._base_s[slot] + self._cum[slot][i]

    def count(self, low: int, high: int) -> int:
        """Events held with ``low < at <= high``."""
        if high <= low or self._tail > self._head:
            return 0
        return self._rank(high)[0] - self._rank(low)[0]

    def total(self, low: int, high: int) -> int:
        """The sum of the amounts of the events held with ``low < at <= high``."""
        if high <= low or self._tail > self._head:
            return 0
        return self._rank(high)[1] - self._rank(low)[1]

    def trim(self, before: int) -> int:
        """Forget the buckets whose every time is at or before ``before``; returns how many
        events were forgotten. Events of a bucket that reaches past ``before`` stay."""
        if self._tail > self._head:
            return 0
        held = len(self)
        cap = self._cap
        keep_from = (before + 1) // self.width
        for bucket in range(self._tail, min(keep_from, self._head + 1)):
            slot = bucket % cap
            self._times[slot] = _NO_TIMES
            self._cum[slot] = _NO_SUMS
        self._tail = min(max(self._tail, keep_from), self._head + 1)
        return held - len(self)

    def widen(self, span: int) -> None:
        """Hold at least ``span`` behind the newest event from now on (a ring never narrows)."""
        cap = span // self.width + 2
        if cap <= self._cap:
            return
        times: list[array[int]] = [_NO_TIMES] * cap
        cum: list[MutableSequence[int]] = [_NO_SUMS] * cap
        base_n, base_s = [self._n] * cap, [self._s] * cap
        for bucket in range(self._tail, self._head + 1):
            old, new = bucket % self._cap, bucket % cap
            times[new], cum[new] = self._times[old], self._cum[old]
            base_n[new], base_s[new] = self._base_n[old], self._base_s[old]
        self._cap = cap
        self._times, self._cum, self._base_n, self._base_s = times, cum, base_n, base_s

    def record(
        self,
        at: int,
        amount: int,
        spans: list[tuple[int, int]],
        counts: list[list[int]],
        sums: list[list[int]] | None,
        row: int,
    ) -> None:
        """The store's hot path in one call: ``add``, then tally each span ending at ``at``.

        ``spans`` holds ``(offset, reach)`` pairs: the interval ``(at - reach, at - offset]``.
        ``counts[j][row]`` (and ``sums[j][row]``) receive span ``j``'s tally.
        """
        width = self.width
        bucket = at // width
        times = self._times[bucket % self._cap] if bucket == self._head else _NO_TIMES
        if times and at >= times[-1]:
            times.append(at)
            cum = self._cum[bucket % self._cap]
            try:
                cum.append(cum[-1] + amount)
            except OverflowError:
                self._cum[bucket % self._cap] = [*cum, cum[-1] + amount]
            self._n += 1
            self._s += amount
        else:
            self.add(at, amount)
        newest = bool(times) and at >= times[-1]
        if sums is not None:
            for j, (offset, reach) in enumerate(spans):
                high_n, high_s = self._rank(at - offset)
                low_n, low_s = self._rank(at - reach)
                counts[j][row] = high_n - low_n
                sums[j][row] = high_s - low_s
            return
        cap, tail, head, n = self._cap, self._tail, self._head, self._n
        all_times, base_n = self._times, self._base_n
        for j, (offset, reach) in enumerate(spans):
            if offset == 0 and newest:
                hi = n
            else:
                high = at - offset
                hb = high // width
                if hb > head:
                    hi = n
                elif hb < tail:
                    hi = base_n[tail % cap]
                else:
                    hi = base_n[hb % cap] + bisect_right(all_times[hb % cap], high)
            low = at - reach
            lb = low // width
            if lb < tail:
                lo = base_n[tail % cap]
            elif lb > head:
                lo = n
            else:
                lo = base_n[lb % cap] + bisect_right(all_times[lb % cap], low)
            counts[j][row] = hi - lo

    def _check(self) -> None:
        """Assert the invariants: sorted buckets inside their bounds, prefix sums and bases
        consistent, nothing held outside the ring."""
        cap, width = self._cap, self.width
        if self._tail > self._head:
            assert self._tail == self._head + 1
            return
        assert 0 <= self._head - self._tail < cap
        n, s = self._base_n[self._tail % cap], self._base_s[self._tail % cap]
        for bucket in range(self._tail, self._head + 1):
            slot = bucket % cap
            times, cum = self._times[slot], self._cum[slot]
            assert (self._base_n[slot], self._base_s[slot]) == (n, s), bucket
            assert len(cum) == len(times) + 1 and cum[0] == 0
            assert all(bucket * width <= t < (bucket + 1) * width for t in times)
            assert all(a <= b for a, b in pairwise(times))
            n += len(times)
            s += cum[-1]
        assert (n, s) == (self._n, self._s)
        assert not _NO_TIMES and list(_NO_SUMS) == [0]  # the shared empties stay empty


def _sums(first: int, amount: int) -> MutableSequence[int]:
    return _compact([first, first + amount])


def _compact(values: list[int]) -> MutableSequence[int]:
    """``values`` as an ``array('q')``, or left a list when a value does not fit 64 bits."""
    try:
        return array("q", values)
    except OverflowError:
        return values
