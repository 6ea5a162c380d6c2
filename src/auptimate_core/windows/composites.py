"""``Composites``: the held events of every key in one sorted ``int64`` array, with amounts.

An event is held as the *composite* ``code << TIME_BITS | (at - base)`` (``code`` numbers its
key, ``base`` is a store-wide time origin kept by the owner), so a key's events are one
contiguous, time-ordered run of the array and "how many events of key ``k`` lie in
``(low, high]``" is two ``searchsorted`` calls. Amounts sit alongside, with prefix sums made on
demand for the totals.

Merging a round of ``b`` new events into the ``N`` held costs ``O(N + b)``; ranking each window
edge ``O(b log N)``; events that arrived out of time order within a round are corrected in
Python, ``O(m log m)`` for the ``m`` events of such a key.

Amounts are ``int64`` while the sum of every amount held fits comfortably, and Python integers
(an ``object`` array, slower, still exact) past that. Not thread-safe: the owner locks.

>>> held = Composites()
>>> comp = np.array([(0 << TIME_BITS) | 10, (1 << TIME_BITS) | 5], np.int64)
>>> counts, sums = held.record(comp, np.arange(2), np.ones(2, np.bool_),
...                            np.zeros(2, np.bool_), [3, 4], 0, [(0, 20)], True)
>>> counts[0].tolist(), sums[0].tolist(), len(held)
([1, 1], [3, 4], 2)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

TIME_BITS = 41
SPAN = 1 << TIME_BITS  # relative times lie in [0, SPAN)
MASK = SPAN - 1
NEVER = -(1 << 62)  # a time before every other
NO_FIRST = 1 << 62  # a key's first event time before it has one
_SAFE_TOTAL = float(1 << 61)


class Composites:
    """The sorted composites of every held event and their amounts."""

    __slots__ = ("_cum", "amount", "comp", "held_total")

    def __init__(self) -> None:
        self.comp: Ints = np.empty(0, np.int64)
        self.amount: npt.NDArray[Any] | None = None  # None while every amount was 0
        self._cum: npt.NDArray[Any] | None = None  # prefix sums of amount, made on demand
        self.held_total = 0.0  # an upper bound of the sum of |amount| held

    def __len__(self) -> int:
        return len(self.comp)

    # -- a round ------------------------------------------------------------------------------

    def record(
        self, comp: Ints, by_comp: Ints, new: Flags, behind: Flags, amounts: Sequence[int],
        start: int, spans: Sequence[tuple[int, int]], totals: bool,
    ) -> tuple[list[Ints], list[npt.NDArray[Any]]]:
        """Merge the ``new`` events into the array; tally each span for each of them (0 for
        the others). ``comp`` are the round's composites, ``by_comp`` sorts them (stably);
        ``behind`` marks the events that arrived after a newer one of their key; the round's
        amounts are ``amounts[start:]``."""
        m = len(comp)
        sel = by_comp[new[by_comp]]  # the new events, in composite order
        counts = [np.zeros(m, np.int64) for _ in spans]
        sums: list[npt.NDArray[Any]] = []
        if not len(sel):
            return counts, [np.zeros(m, np.int64) for _ in spans] if totals else []
        ranked = comp[sel]
        disorder = bool((behind & new).any())
        pos = self._places(ranked, disorder)
        slots = pos + np.arange(len(sel))  # each new event's place in the merged array
        keep = np.ones(len(self.comp) + len(sel), np.bool_)
        keep[slots] = False
        self.comp = _merge(self.comp, keep, slots, ranked)
        self._add_amounts(amounts, start, sel, keep, slots)
        floor = (ranked >> TIME_BITS) << TIME_BITS
        rel = ranked - floor
        edges: list[tuple[Ints, Ints]] = []
        ranks: dict[int, Ints] = {}  # by distance back from the event (the spike rule's
        # recent window starts where its baseline ends: one search serves both)

        def rank(back: int) -> Ints:
            if back not in ranks:
                # Queries in composite order, so each binary search starts near the last one.
                ranks[back] = self.ranks(floor + np.clip(rel - back + 1, 0, SPAN))
            return ranks[back]

        for j, (offset, reach) in enumerate(spans):
            hi = slots + 1 if offset == 0 else rank(offset)
            lo = rank(reach)
            edges.append((lo, hi))
            counts[j][sel] = hi - lo
        if totals:
            cum = self.prefix()
            for lo, hi in edges:
                column = np.zeros(m, cum.dtype)
                column[sel] = cum[hi] - cum[lo]
                sums.append(column)
        if disorder:
            _correct(comp, new, behind, amounts, start, spans, counts, sums)
        return counts, sums

    def _places(self, ranked: Ints, disorder: bool) -> Ints:
        """Where each of the sorted composites ``ranked`` goes in the held array (after equal
        ones). In a batch in time order every new event of a key is at or after all the key
        holds, so it goes at the end of its key's run: one search per key, not per event."""
        if disorder:
            return np.searchsorted(self.comp, ranked, side="right")
        codes = ranked >> TIME_BITS
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        ends = np.searchsorted(self.comp, (codes[starts] + 1) << TIME_BITS, side="left")
        return np.repeat(ends, np.diff(np.append(starts, len(ranked))))

    def _add_amounts(
        self, amounts: Sequence[int], start: int, sel: Ints, keep: Flags, slots: Ints
    ) -> None:
        self._cum = None
        chunk = amounts[start:start + int(sel.max()) + 1]
        if self.amount is None and not any(chunk):
            return
        try:
            values: npt.NDArray[Any] = np.array(chunk, dtype=np.int64)[sel]
            bound = float(np.abs(values).sum(dtype=np.float64))
        except OverflowError:
            values = np.array(chunk, dtype=object)[sel]
            bound = float("inf")
        if self.amount is None:
            if not values.any():
                return
            self.amount = np.zeros(len(self.comp) - len(sel), np.int64)
        self.held_total += bound
        if self.held_total > _SAFE_TOTAL and self.amount.dtype != object:
            self.amount = self.amount.astype(object)
        self.amount = _merge(self.amount, keep, slots, values.astype(self.amount.dtype))

    # -- queries ------------------------------------------------------------------------------

    def ranks(self, comps: Ints) -> Ints:
        """How many held composites lie below each of ``comps``."""
        return np.searchsorted(self.comp, comps, side="left")

    def rank(self, comp: int) -> int:
        """How many held composites lie at or below ``comp``."""
        return int(np.searchsorted(self.comp, comp, side="right"))

    def prefix(self) -> npt.NDArray[Any]:
        """The prefix sums of the amounts (``len + 1`` of them)."""
        if self._cum is None:
            if self.amount is None:
                self._cum = np.zeros(len(self.comp) + 1, np.int64)
            else:
                cum = np.zeros(len(self.amount) + 1, self.amount.dtype)
                np.cumsum(self.amount, out=cum[1:])
                self._cum = cum
        return self._cum

    def sum(self, lo: int, hi: int) -> int:
        """The sum of the amounts of the held events ``lo`` to ``hi`` (excluded)."""
        cum = self.prefix()
        return int(cum[hi] - cum[lo])

    def codes(self) -> Ints:
        """The key code of every held event."""
        codes: Ints = self.comp >> TIME_BITS
        return codes

    # -- forgetting ---------------------------------------------------------------------------

    def keep_only(self, live: Flags) -> None:
        """Keep the held events ``live`` marks."""
        self.comp = self.comp[live]
        if self.amount is not None:
            self.amount = self.amount[live]
            self.held_total = float(np.abs(self.amount).sum(dtype=np.float64))
        self._cum = None

    def rebase(self, shift: int) -> None:
        """Move the time origin forward by ``shift``, forgetting the events before it."""
        rel = (self.comp & MASK) - shift
        live = rel >= 0
        self.comp = (self.codes() << TIME_BITS)[live] | rel[live]
        if self.amount is not None:
            self.amount = self.amount[live]
        self._cum = None

    def recode(self, alive: Flags, remap: Ints) -> None:
        """Forget the events of the key codes ``alive`` does not mark, and give the others the
        code ``remap[code]`` (the same order, so the array stays sorted)."""
        if not len(self.comp):
            return
        held = alive[self.codes()]
        if not held.all():
            self.comp = self.comp[held]
            if self.amount is not None:
                self.amount = self.amount[held]
            self._cum = None
        self.comp = (remap[self.codes()] << TIME_BITS) | (self.comp & MASK)

    def check(self) -> None:
        """Assert the invariants: sorted, not negative, amounts aligned."""
        comp = self.comp
        assert bool(np.all(comp[1:] >= comp[:-1]))
        assert not len(comp) or int(comp[0]) >= 0
        assert self.amount is None or len(self.amount) == len(comp)


def _correct(
    comp: Ints, new: Flags, behind: Flags, amounts: Sequence[int], start: int,
    spans: Sequence[tuple[int, int]], counts: list[Ints], sums: list[npt.NDArray[Any]],
) -> None:
    """Take out of each tally the events of its key that arrived after it in the round
    (ranking saw them): only keys with an event out of time order can have any."""
    codes = (comp >> TIME_BITS).tolist()
    times = (comp & MASK).tolist()
    groups: dict[int, list[int]] = {k: [] for k in set(
        (comp[behind & new] >> TIME_BITS).tolist())}
    for i in np.flatnonzero(new).tolist():
        group = groups.get(codes[i])
        if group is not None:
            group.append(i)
    for group in groups.values():
        later: list[int] = []  # times of the group's events after this one, sorted
        paid: list[int] = []  # their amounts, in the same order
        for i in reversed(group):
            at = times[i]
            for s, (offset, reach) in enumerate(spans):
                a = bisect_right(later, at - reach)
                b = bisect_right(later, at - offset if offset else at - 1)
                if b > a:
                    counts[s][i] -= b - a
                    if sums:
                        sums[s][i] -= sum(paid[a:b])
            place = bisect_right(later, at)
            later.insert(place, at)
            paid.insert(place, amounts[start + i])


def _merge(old: npt.NDArray[Any], keep: Flags, slots: Ints, values: npt.NDArray[Any]
           ) -> npt.NDArray[Any]:
    """``old`` with ``values`` at ``slots`` of the result (``keep`` marks the other places)."""
    merged = np.empty(len(keep), old.dtype)
    merged[slots] = values
    merged[keep] = old
    return merged
