"""``ColumnarWindows``: the recent events of every key in one sorted numpy array, a batch at a time.

The per-key structures (:mod:`.exact`, :mod:`.ring`) pay a fixed number of interpreter steps per
event, which in CPython caps a store at about half a million events a second. This structure
moves the per-event work of a batch into numpy: it keeps every held event of every key as one
``int64`` *composite* ``code << 41 | (at - base)`` (``code`` numbers the key, ``base`` is a
store-wide time origin), in one sorted array, with the events' amounts alongside. A key's events
are then one contiguous, time-ordered run of that array, and "how many events of key ``k`` lie in
``(low, high]``" is two ``searchsorted`` calls, done for a whole batch at once.

One batch (:meth:`ColumnarWindows.observe_many`) costs:

- ``O(b)`` work in numpy for the event ids: a sort of their hashes finds repeats within the
  batch, and the id log's Bloom filter (:mod:`.idlog`) the redeliveries; only those are
  looked at one by one;
- ``O(b log b)`` to sort the batch by key (stable, so arrival order holds within a key), from
  which each event's running "newest so far" and "first so far" of its key come by a
  grouped ``maximum.accumulate``: that decides which events are late, in the order they arrived;
- ``O(N + b)`` to merge the new events into the ``N`` held (``np.insert``), and ``O(b log N)``
  to rank each window edge;
- for keys whose events arrived out of time order in this batch, a correction in Python,
  ``O(m log m)`` for the ``m`` events of such a key: an event is counted by the events that
  arrived before it, and ranking in the merged array also sees the ones that arrived after it.

So per event the work is a few dozen machine steps in C instead of interpreter steps; per batch
there is a fixed overhead of some tens of numpy calls (tens of microseconds), which is why the
structure is for batches (hundreds of events and up), not for single calls.

Results are exactly those of observing each event in order (see the
:class:`~auptimate_core.store.WindowStore` contract). A batch is cut into *rounds* where that
would otherwise need per-event care: at the second arrival of an id within the batch, at a
redelivery whose duplicate status depends on events earlier in the same batch, and at an event
past the time range; each round starts where the cause is gone.

Bounds and limits:

- Relative times have 41 bits (about 25 days). ``base`` starts 2**40 microseconds (about 12.7
  days) before the first event and moves forward when an event would not fit (before a batch
  when the whole batch then fits, else at that event), to no later than 2**40 microseconds
  before the newest event and never past anything the batch can count. What lies before it is
  forgotten: events more than 2**40 microseconds older than the store's newest event may be
  refused as ``LATE`` even where the key's own lateness would allow them (a redelivery of such
  an event too, which is then not counted twice either), and the id of an event that old is
  forgotten with it. The windows plus the allowed lateness must span less than that
  (:data:`MAX_KEEP`).
- Key codes have 21 bits: about two million distinct keys in a store's lifetime.
- Memory: held events are compacted to each key's horizon (newest minus ``keep``) whenever the
  array has grown by half since the last compaction (every window edge is a binary search of
  it and every batch a merge into it, so a shorter array pays for the more frequent ``O(N)``
  compactions); ids once they have tripled. What stays per key for ever is two integers (its
  newest and first event times) and its code.

Amounts are ``int64`` while the sum of every amount held fits comfortably, and Python integers
(an ``object`` array, slower, still exact) past that.

Not thread-safe on its own: the owning store locks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import StoreError, ValidationError
from ..store import ObservedBatch, Status, Tally
from .idlog import IdLog, hashes

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

TIME_BITS = 41
SPAN = 1 << TIME_BITS  # relative times lie in [0, SPAN)
MAX_KEEP = 1 << 40  # how far before the newest event the base may lie, at least
CODE_LIMIT = 1 << 21
_MASK = SPAN - 1
_PACK = 42  # shift for the grouped running max: code above, a 42-bit value below
_PACK_MASK = (1 << _PACK) - 1
_NEVER = -(1 << 62)
_NO_FIRST = 1 << 62
_SAFE_TOTAL = float(1 << 61)
_STATUS = (Status.NEW, Status.DUPLICATE, Status.LATE)
_MIN_COMPACT = 1 << 16


class ColumnarWindows:
    """Every key's recent events, ids, newest and first times, in columnar form.

    >>> windows = ColumnarWindows()
    >>> got = windows.observe_many(["p", "p", "q", "p"], ["a", "b", "c", "a"], [10, 20, 20, 30],
    ...                            [1, 2, 4, 8], [(0, 15)], True, 5, 15)
    >>> [s.value for s in got.statuses], got.counts, got.totals
    (['new', 'new', 'new', 'duplicate'], [[1, 2, 1, 0]], [[1, 3, 4, 0]])
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._newest: Ints = np.full(64, _NEVER, np.int64)  # per code, absolute
        self._first: Ints = np.full(64, _NO_FIRST, np.int64)  # per code, absolute
        self._base: int | None = None
        self._comp: Ints = np.empty(0, np.int64)
        self._amount: npt.NDArray[Any] | None = None  # None while every amount was 0
        self._cum: npt.NDArray[Any] | None = None  # prefix sums of _amount, made on demand
        self._held_total = 0.0  # an upper bound of the sum of |amount| held
        self._ids = IdLog()  # event ids, each with the composite of its event
        self._compact_at = _MIN_COMPACT
        self._id_limit = _MIN_COMPACT
        self.newest = _NEVER  # the newest event time of the whole store

    # -- public -------------------------------------------------------------------------------

    def observe_many(
        self,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        spans: Sequence[tuple[int, int]],
        totals: bool,
        lateness: int,
        keep: int,
    ) -> ObservedBatch:
        """Observe each event in order; ``spans`` are ``(offset, reach)`` pairs: the window
        ``(at - reach, at - offset]``. ``keep`` is ``lateness`` plus the longest reach asked for
        (what no window can see past), below :data:`MAX_KEEP`."""
        if keep >= MAX_KEEP:
            raise ValidationError(
                "intervals", "columnar windows hold at most 2**40 microseconds (about 12.7 days) "
                "of allowed lateness plus window; use window='exact' for longer ones")
        n = len(keys)
        out = _Output(len(spans), totals)
        codes = self._code_array(keys)
        start = 0
        while start < n:
            start = self._round(
                codes, event_ids, ats, amounts, start, spans, totals, lateness, keep, out)
        return ObservedBatch(out.statuses, out.counts, out.sums, out.first_seen, out.arrays())

    def tally(self, key: str, at: int, spans: Sequence[tuple[int, int]]) -> tuple[Tally, ...]:
        """Counts and sums of ``key``'s events in each span ending at ``at``; nothing recorded."""
        code = self._codes.get(key)
        if code is None or self._base is None:
            return tuple(Tally(0, 0) for _ in spans)
        floor = code << TIME_BITS
        rel = at - self._base
        out = []
        for offset, reach in spans:
            hi = self._rank(floor + min(max(rel - offset, -1), _MASK))
            lo = self._rank(floor + min(max(rel - reach, -1), _MASK))
            out.append(Tally(hi - lo, self._sum(lo, hi)))
        return tuple(out)

    def size(self) -> dict[str, int]:
        return {"keys": len(self._codes), "events": len(self._comp),
                "ids": len(self._ids), "slots": 0}

    def _check(self) -> None:
        """Assert the invariants: sorted composites, amounts aligned, codes known."""
        comp = self._comp
        assert bool(np.all(comp[1:] >= comp[:-1]))
        assert self._amount is None or len(self._amount) == len(comp)
        if len(comp):
            assert int(comp[-1] >> TIME_BITS) < len(self._codes)
            assert int(comp[0]) >= 0

    # -- one round ----------------------------------------------------------------------------

    def _round(
        self, codes: Ints, event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], start: int, spans: Sequence[tuple[int, int]], totals: bool,
        lateness: int, keep: int, out: _Output,
    ) -> int:
        """Observe a prefix of ``[start:]`` in one go; returns where the next round starts."""
        try:
            t: Ints = np.array(ats[start:], dtype=np.int64)
        except OverflowError:
            raise ValidationError("at", "event times must fit in 64 bits") from None
        if self._base is None:
            self._base = int(t.min()) - MAX_KEEP
        rel = t - self._base
        m = len(t)
        if int(rel.max()) >= SPAN:
            # Move the origin before the batch when the whole batch then fits: no event of it
            # is older than the new origin, and nothing it could count is dropped.
            lowest, highest = int(t.min()), int(t.max())
            base = min(highest - MAX_KEEP, lowest - keep - 1)
            if base > self._base and highest - base < SPAN:
                self._rebase(base)
                rel = t - base
        far = np.flatnonzero(rel >= SPAN)
        if len(far) and far[0] == 0:
            self._rebase(int(t[0]) - MAX_KEEP)
            return start
        cut = int(far[0]) if len(far) else m
        ids = event_ids[start:start + cut]
        c = codes[start:start + cut]
        t, rel = t[:cut], rel[:cut]
        comp = (c << TIME_BITS) | np.clip(rel, 0, _MASK)
        h = hashes(ids)
        if _may_repeat(h):
            cut = _first_repeat(ids)
            ids, c, t, rel, comp, h = ids[:cut], c[:cut], t[:cut], rel[:cut], comp[:cut], h[:cut]
        probes = self._ids.probes(h)
        stored_newest = self._newest[c] - self._base
        dup = np.zeros(cut, np.bool_)
        hits = self._ids.find(
            ids, lambda i, held: held >> TIME_BITS == codes[start + i], h, probes)
        if hits:
            before = _running_max_before(c, _by_key(c), np.clip(rel, -1, _MASK))
            upper = np.maximum(stored_newest, before)
            again = _classify(hits, stored_newest, upper, keep, dup)
            if again < cut:
                cut = again
                ids, c, t, rel, comp = ids[:cut], c[:cut], t[:cut], rel[:cut], comp[:cut]
                dup, stored_newest, h = dup[:cut], stored_newest[:cut], h[:cut]
                probes = (probes[0][:cut], probes[1][:cut])
        assert cut > 0  # the front event's key has no earlier event in the batch: decided
        order = _by_key(c)
        by_comp = _by_composite(comp, order)
        if by_comp is order:
            # Each key's events in time order: none is behind an earlier one of the batch, so
            # only the key's stored newest can make one late or out of order.
            newest = stored_newest
        else:
            clipped = np.where(dup, -1, np.clip(rel, -1, _MASK))
            newest = np.maximum(stored_newest, _running_max_before(c, order, clipped))
        late = ~dup & ((rel < 0) | (rel < newest - lateness))
        new = ~dup & ~late
        counts, sums = self._record(comp, by_comp, new, rel < newest, amounts, start, spans,
                                    totals)
        nix = np.flatnonzero(new)
        # The usual round (every event new, each key's in time order, none before its key's
        # first): each event's first-seen is its key's first once the round is recorded.
        known = self._first[c]
        simple = len(nix) == cut and by_comp is order and not bool(
            np.any((t < known) & (known != _NO_FIRST)))
        first = None if simple else self._first_seen(c, order, rel, new)
        if len(nix):
            tn = t[nix]
            _update_extremes(self._newest, self._first, c, t, order[new[order]])
            self.newest = max(self.newest, int(tn.max()))
            if len(nix) == cut:
                self._ids.add(ids, comp, h, probes)
            else:
                self._ids.add(list(compress(ids, new.tolist())), comp[nix], h[nix],
                              (probes[0][nix], probes[1][nix]))
        if first is None:
            first = self._first[c].tolist()
        if len(nix) == cut:
            out.statuses.extend([Status.NEW] * cut)
        else:
            status = np.where(dup, 1, np.where(late, 2, 0)).tolist()
            out.statuses.extend(map(_STATUS.__getitem__, status))
        out.first_seen.extend(first)
        for j in range(len(spans)):
            out.counts[j].extend(counts[j].tolist())
            out.count_parts[j].append(counts[j])
            if totals:
                out.sums[j].extend(sums[j].tolist())
                out.sum_parts[j].append(sums[j])
        self._tidy(keep)
        return start + cut

    # -- ids ----------------------------------------------------------------------------------

    # -- windows ------------------------------------------------------------------------------

    def _record(
        self, comp: Ints, by_comp: Ints, new: Flags, behind: Flags, amounts: Sequence[int],
        start: int, spans: Sequence[tuple[int, int]], totals: bool,
    ) -> tuple[list[Ints], list[npt.NDArray[Any]]]:
        """Merge the ``new`` events into the array; tally each span for each of them (0 for
        the others). ``comp`` are the round's composites, ``by_comp`` sorts them (stably);
        ``behind`` marks the events that arrived after a newer one of their key."""
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
        keep = np.ones(len(self._comp) + len(sel), np.bool_)
        keep[slots] = False
        self._comp = _merge(self._comp, keep, slots, ranked)
        self._add_amounts(amounts, start, sel, keep, slots)
        floor = (ranked >> TIME_BITS) << TIME_BITS
        rel = ranked - floor
        edges: list[tuple[Ints, Ints]] = []
        ranks: dict[int, Ints] = {}  # by distance back from the event (the spike rule's
        # recent window starts where its baseline ends: one search serves both)

        def rank(back: int) -> Ints:
            if back not in ranks:
                # Queries in composite order, so each binary search starts near the last one.
                ranks[back] = self._ranks(floor + np.clip(rel - back + 1, 0, SPAN))
            return ranks[back]

        for j, (offset, reach) in enumerate(spans):
            hi = slots + 1 if offset == 0 else rank(offset)
            lo = rank(reach)
            edges.append((lo, hi))
            counts[j][sel] = hi - lo
        if totals:
            cum = self._prefix()
            for lo, hi in edges:
                column = np.zeros(m, cum.dtype)
                column[sel] = cum[hi] - cum[lo]
                sums.append(column)
        if disorder:
            self._correct(comp, new, behind, amounts, start, spans, counts, sums)
        return counts, sums

    def _places(self, ranked: Ints, disorder: bool) -> Ints:
        """Where each of the sorted composites ``ranked`` goes in the held array (after equal
        ones). In a batch in time order every new event of a key is at or after all the key
        holds, so it goes at the end of its key's run: one search per key, not per event."""
        if disorder:
            return np.searchsorted(self._comp, ranked, side="right")
        codes = ranked >> TIME_BITS
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
        ends = np.searchsorted(self._comp, (codes[starts] + 1) << TIME_BITS, side="left")
        return np.repeat(ends, np.diff(np.append(starts, len(ranked))))

    def _correct(
        self, comp: Ints, new: Flags, behind: Flags, amounts: Sequence[int], start: int,
        spans: Sequence[tuple[int, int]], counts: list[Ints], sums: list[npt.NDArray[Any]],
    ) -> None:
        """Take out of each tally the events of its key that arrived after it in this batch
        (ranking saw them): only keys with an event out of time order can have any."""
        codes = (comp >> TIME_BITS).tolist()
        times = (comp & _MASK).tolist()
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

    def _ranks(self, comps: Ints) -> Ints:
        return np.searchsorted(self._comp, comps, side="left")

    def _rank(self, comp: int) -> int:
        return int(np.searchsorted(self._comp, comp, side="right"))

    def _add_amounts(
        self, amounts: Sequence[int], start: int, sel: Ints, keep: Flags, slots: Ints
    ) -> None:
        self._cum = None
        chunk = amounts[start:start + int(sel.max()) + 1]
        if self._amount is None and not any(chunk):
            return
        try:
            values: npt.NDArray[Any] = np.array(chunk, dtype=np.int64)[sel]
            bound = float(np.abs(values).sum(dtype=np.float64))
        except OverflowError:
            values = np.array(chunk, dtype=object)[sel]
            bound = float("inf")
        if self._amount is None:
            if not values.any():
                return
            self._amount = np.zeros(len(self._comp) - len(sel), np.int64)
        self._held_total += bound
        if self._held_total > _SAFE_TOTAL and self._amount.dtype != object:
            self._amount = self._amount.astype(object)
        self._amount = _merge(self._amount, keep, slots, values.astype(self._amount.dtype))

    def _prefix(self) -> npt.NDArray[Any]:
        if self._cum is None:
            if self._amount is None:
                self._cum = np.zeros(len(self._comp) + 1, np.int64)
            else:
                cum = np.zeros(len(self._amount) + 1, self._amount.dtype)
                np.cumsum(self._amount, out=cum[1:])
                self._cum = cum
        return self._cum

    def _sum(self, lo: int, hi: int) -> int:
        cum = self._prefix()
        return int(cum[hi] - cum[lo])

    def _first_seen(self, c: Ints, order: Ints, rel: Ints, new: Flags) -> list[int | None]:
        """The first event time of each event's key once it is observed."""
        assert self._base is not None
        cs = c[order]
        value = np.where(new, SPAN - rel, 0)[order]  # the largest is the earliest new event
        best = np.maximum.accumulate((cs << _PACK) | value) & _PACK_MASK
        earliest = np.empty(len(c), np.int64)
        earliest[order] = np.where(best > 0, self._base + SPAN - best, _NO_FIRST)
        first: list[int | None] = np.minimum(self._first[c], earliest).tolist()
        if _NO_FIRST in first:
            return [None if at == _NO_FIRST else at for at in first]
        return first

    # -- keys, time base, compaction ----------------------------------------------------------

    def _code_array(self, keys: Sequence[str]) -> Ints:
        codes = self._codes
        try:
            return np.fromiter(map(codes.__getitem__, keys), np.int64, len(keys))
        except KeyError:
            for key in keys:
                if key not in codes:
                    self._add_key(key)
            return np.fromiter(map(codes.__getitem__, keys), np.int64, len(keys))

    def _add_key(self, key: str) -> None:
        code = len(self._codes)
        if code >= CODE_LIMIT:
            raise StoreError(
                f"columnar windows number at most {CODE_LIMIT:,} keys in a store's lifetime; "
                f"key {key!r} is one more (use window='exact')")
        if code >= len(self._newest):
            grow = len(self._newest)
            self._newest = np.concatenate([self._newest, np.full(grow, _NEVER, np.int64)])
            self._first = np.concatenate([self._first, np.full(grow, _NO_FIRST, np.int64)])
        self._codes[key] = code

    def _rebase(self, base: int) -> None:
        """Move the time origin forward to ``base``, forgetting what lies before it."""
        assert self._base is not None and base > self._base
        shift = base - self._base
        rel = (self._comp & _MASK) - shift
        live = rel >= 0
        self._comp = ((self._comp >> TIME_BITS) << TIME_BITS)[live] | rel[live]
        if self._amount is not None:
            self._amount = self._amount[live]
        self._cum = None
        self._ids.keep_only((self._ids.values() & _MASK) >= shift)
        self._ids.shift_values(shift)
        self._base = base

    def _tidy(self, keep: int) -> None:
        """Compact the events to each key's horizon once they have grown by half, the ids once
        they have tripled."""
        assert self._base is not None
        if len(self._comp) > self._compact_at:
            horizon = self._newest[self._comp >> TIME_BITS] - self._base - keep
            live = (self._comp & _MASK) > horizon
            self._comp = self._comp[live]
            if self._amount is not None:
                self._amount = self._amount[live]
                self._held_total = float(np.abs(self._amount).sum(dtype=np.float64))
            self._cum = None
            self._compact_at = max(3 * len(self._comp) // 2, _MIN_COMPACT)
        if len(self._ids) > self._id_limit:
            held = self._ids.values()
            horizon = self._newest[held >> TIME_BITS] - self._base - keep
            self._ids.keep_only((held & _MASK) > horizon)
            self._id_limit = max(3 * len(self._ids), _MIN_COMPACT)


class _Output:
    """The columns of an :class:`ObservedBatch`, filled round by round."""

    __slots__ = ("count_parts", "counts", "first_seen", "statuses", "sum_parts", "sums")

    def __init__(self, spans: int, totals: bool) -> None:
        self.statuses: list[Status] = []
        self.counts: list[list[int]] = [[] for _ in range(spans)]
        self.sums: list[list[int]] = [[] for _ in range(spans)] if totals else []
        self.first_seen: list[int | None] = []
        self.count_parts: list[list[Ints]] = [[] for _ in range(spans)]
        self.sum_parts: list[list[npt.NDArray[Any]]] = [[] for _ in range(spans)] if totals else []

    def arrays(self) -> tuple[list[Any], list[Any]]:
        """The columns as numpy arrays, for :attr:`ObservedBatch.arrays`."""
        def join(parts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
            return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else (
                np.zeros(0, np.int64))
        return [join(p) for p in self.count_parts], [join(p) for p in self.sum_parts]


def _classify(
    hits: dict[int, int], stored_newest: Ints, upper: Ints, keep: int, dup: Flags
) -> int:
    """Mark in ``dup`` the held ids (``hits``: position -> composite held for the same key)
    that are duplicates; returns the first that cannot be decided in bulk (or ``len``).

    A held id is a duplicate while its event lies within ``keep`` of its key's newest event,
    which the events before it in the batch may move: between ``stored_newest`` and ``upper``.
    Where those two disagree, the hit is left to a round of its own."""
    for i in sorted(hits):
        seen = hits[i] & _MASK
        if seen > int(upper[i]) - keep:
            dup[i] = True
        elif seen > int(stored_newest[i]) - keep:
            return i
    return len(dup)


def _may_repeat(h: Ints) -> bool:
    """False where the ids of hashes ``h`` are certainly all different (no two hashes equal):
    a sort in numpy instead of a set of the ids."""
    ranked = np.sort(h)
    return bool(np.any(ranked[1:] == ranked[:-1]))


def _first_repeat(ids: Sequence[str]) -> int:
    seen: set[str] = set()
    for i, event_id in enumerate(ids):
        if event_id in seen:
            return i
        seen.add(event_id)
    return len(ids)


def _update_extremes(newest: Ints, first: Ints, c: Ints, t: Ints, chosen: Ints) -> None:
    """Raise ``newest`` and lower ``first`` (per key code) to the times of the ``chosen``
    events (indices sorted by key)."""
    cs = c[chosen]
    ts = t[chosen]
    starts = np.flatnonzero(np.concatenate(([True], cs[1:] != cs[:-1])))
    keys = cs[starts]
    newest[keys] = np.maximum(newest[keys], np.maximum.reduceat(ts, starts))
    first[keys] = np.minimum(first[keys], np.minimum.reduceat(ts, starts))


def _merge(old: npt.NDArray[Any], keep: Flags, slots: Ints, values: npt.NDArray[Any]
           ) -> npt.NDArray[Any]:
    """``old`` with ``values`` at ``slots`` of the result (``keep`` marks the other places)."""
    merged = np.empty(len(keep), old.dtype)
    merged[slots] = values
    merged[keep] = old
    return merged


def _by_key(c: Ints) -> Ints:
    """A stable sort of the events by key (a radix sort while the codes fit 16 bits)."""
    if len(c) and int(c.max()) < 1 << 16:
        return np.argsort(c.astype(np.uint16), kind="stable")
    return np.argsort(c, kind="stable")


def _by_composite(comp: Ints, by_key: Ints) -> Ints:
    """A stable sort of the events by composite: ``by_key`` itself when each key's events
    came in time order (the usual batch), else a sort of its own."""
    ranked = comp[by_key]
    if bool(np.all(ranked[1:] >= ranked[:-1])):
        return by_key
    return np.argsort(comp, kind="stable")


def _running_max_before(c: Ints, order: Ints, values: Ints) -> Ints:
    """For each event, the largest of ``values`` (each in ``[-1, SPAN)``) over the events of
    its key before it (``order`` sorts by key, stably), or a very small number if none."""
    cs = c[order]
    packed = (cs << _PACK) | (values[order] + 1)
    best = np.maximum.accumulate(packed)
    before = np.empty_like(best)
    before[0] = 0
    before[1:] = best[:-1]
    fresh = np.ones(len(cs), np.bool_)
    fresh[1:] = cs[1:] != cs[:-1]
    value = (before & _PACK_MASK) - 1
    out = np.empty(len(c), np.int64)
    out[order] = np.where(fresh | (value < 0), _NEVER, value)
    return out
