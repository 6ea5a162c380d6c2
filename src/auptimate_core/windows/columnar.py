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

Results are those of observing each event in order (see the
:class:`~auptimate_core.store.WindowStore` contract), with the exceptions listed under "Memory"
and "Time origin" below. A batch is cut into *rounds* where that would otherwise need per-event
care: at the second arrival of an id within the batch, at a redelivery whose duplicate status
depends on events earlier in the same batch, and at an event past the time range; each round
starts where the cause is gone.

Ids. Each id is remembered with its key and the time it was recorded at (its own time when
``NEW``, its key's newest when ``LATE``, ``not_after`` when ``FUTURE``), for the *dedup horizon*
(``dedup_horizon``, or the windows plus the allowed lateness if longer) of its key's event time:
a second arrival while its key's newest event is less than that past the recorded time, with
its original time or a new one, is ``DUPLICATE``. Ids are kept in an append-only log
(:mod:`.idlog`) and forgotten in bulk.

Memory is bounded by the windows and the dedup horizon, measured against the store's newest
event (``NEW`` events only: ``FUTURE`` ones move nothing), not by the length of the stream:

- each key's events older than its newest minus ``keep`` are dropped at each compaction;
- a *quiet* key (newest event more than ``keep`` behind the store's newest) gives all its
  events back. Its windows are then gone, so from then on an event of it whose windows would
  reach back to them (older than its newest plus the longest reach) is ``LATE``, even where
  its own lateness would have taken it;
- a key with nothing recorded within the dedup horizon of the store's newest event (its
  newest event and every id's recorded time at least that far behind) is dropped whole:
  events, ids, newest and first-seen times, and its code (:meth:`ColumnarWindows.take_dropped`
  tells the owner which). It is a new key to the store if it comes back. Since its windows
  are gone, an event of a key the store holds nothing of that is older than the newest event
  of a key dropped so far plus the longest reach is ``LATE`` (it may belong to a dropped key
  whose windows it would need);
- held events are compacted once the array has grown by half since the last compaction
  (every window edge is a binary search of the array and every batch a merge into it, so a
  shorter array pays for the more frequent ``O(N)`` compactions), and, at most once per
  ``keep`` of the store's time, when a key has gone quiet; ids are forgotten once the log has
  tripled, and keys dropped then or, at most once per half dedup horizon, when one has been
  idle for the whole horizon. So the log holds at most three times the ids still counted, and
  an idle key is dropped within about one and a half dedup horizons. Stores under 65,536
  events (ids and keys) are compacted on growth only.

Time origin. Relative times have 41 bits (about 25 days). ``base`` starts 2**40 microseconds
(about 12.7 days) before the first event that is not ``FUTURE`` and moves forward when such an
event would not fit (before a batch when the whole batch then fits, else at that event), to no
later than 2**40 microseconds before the newest event and never past anything the batch can
count; ``FUTURE`` events never move it. What lies before it is forgotten, so an event whose
windows would reach before it (more than 2**40 microseconds less the longest reach older than
the store's newest event) is ``LATE``. The windows plus the allowed lateness must span less
than 2**40 microseconds (:data:`MAX_KEEP`); event times must lie within 2**60 microseconds of
the epoch.

Key codes have 21 bits: about two million keys held at once.

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
from ..store import DAY, ColumnarBatch, ObservedBatch, Status, Tally
from .idlog import IdLog, Probes, hashes

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

TIME_BITS = 41
SPAN = 1 << TIME_BITS  # relative times lie in [0, SPAN)
MAX_KEEP = 1 << 40  # how far before the newest event the base may lie, at least
CODE_LIMIT = 1 << 21
MAX_TIME = 1 << 60  # event times, not_after and the dedup horizon lie within this of 0
_MASK = SPAN - 1
_PACK = 42  # shift for the grouped running max: code above, a 42-bit value below
_PACK_MASK = (1 << _PACK) - 1
_NEVER = -(1 << 62)
_NO_FIRST = 1 << 62
_SAFE_TOTAL = float(1 << 61)
_STATUS = (Status.NEW, Status.DUPLICATE, Status.LATE, Status.FUTURE)
_MIN_COMPACT = 1 << 16


class ColumnarWindows:
    """Every key's recent events, ids, newest and first times, in columnar form.

    ``dedup_horizon``: how long (microseconds of its key's event time, a day by default) an id
    is remembered from the time it was recorded at; the windows' own horizon if that is longer.

    >>> windows = ColumnarWindows()
    >>> got = windows.observe_many(
    ...     ["p", "p", "q", "p", "p"], ["a", "b", "c", "a", "d"], [10, 20, 20, 30, 99],
    ...     [1, 2, 4, 8, 16], [(0, 15)], True, 5, 15, not_after=50)
    >>> [s.value for s in got.statuses], got.counts, got.totals
    (['new', 'new', 'new', 'duplicate', 'future'], [[1, 2, 1, 0, 0]], [[1, 3, 4, 0, 0]])
    """

    def __init__(self, dedup_horizon: int = DAY) -> None:
        if not 0 <= dedup_horizon < MAX_TIME:
            raise ValidationError(
                "dedup_horizon", f"must be between 0 and 2**60 microseconds, not {dedup_horizon}")
        self.dedup_horizon = dedup_horizon
        self._codes: dict[str, int] = {}
        self._keys: list[str] = []  # by code
        self._newest: Ints = np.full(64, _NEVER, np.int64)  # per code, absolute
        self._first: Ints = np.full(64, _NO_FIRST, np.int64)  # per code, absolute
        # Per code: its events at or before this time were given back (see the module doc).
        self._floor: Ints = np.full(64, _NEVER, np.int64)
        # Per code: the latest time one of its ids was recorded at past its newest event.
        self._ahead: Ints = np.full(64, _NEVER, np.int64)
        self._floored = False  # whether any key has a floor
        self._dropped = _NEVER  # the newest event of any key dropped whole
        self._dropped_keys: list[str] = []  # dropped whole since the owner last asked
        self._base: int | None = None
        self._comp: Ints = np.empty(0, np.int64)
        self._amount: npt.NDArray[Any] | None = None  # None while every amount was 0
        self._cum: npt.NDArray[Any] | None = None  # prefix sums of _amount, made on demand
        self._held_total = 0.0  # an upper bound of the sum of |amount| held
        self._ids = IdLog()  # event ids, each with its key's code and the time recorded at
        self._keep = 0  # the longest keep asked for
        self._compact_at = _MIN_COMPACT
        self._id_limit = _MIN_COMPACT
        self._events_due = _NEVER  # newest event time at which events are compacted anyway
        self._ids_due = _NEVER  # newest event time at which ids and keys are compacted anyway
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
        *,
        not_after: int | None = None,
    ) -> ObservedBatch:
        """Observe each event in order; ``spans`` are ``(offset, reach)`` pairs: the window
        ``(at - reach, at - offset]``. ``keep`` is ``lateness`` plus the longest reach asked for
        (what no window can see past), below :data:`MAX_KEEP`. Events after ``not_after``
        (when given) are ``FUTURE``."""
        if keep >= MAX_KEEP:
            raise ValidationError(
                "intervals", "columnar windows hold at most 2**40 microseconds (about 12.7 days) "
                "of allowed lateness plus window; use window='exact' for longer ones")
        if not 0 <= lateness <= keep:
            raise ValidationError(
                "lateness", f"must lie between 0 and keep ({keep}), not {lateness}")
        if not_after is not None and not -MAX_TIME < not_after < MAX_TIME:
            raise ValidationError(
                "not_after", f"must lie within 2**60 microseconds of the epoch, not {not_after}")
        n = len(keys)
        out = _Output(len(spans), totals)
        self._keep = max(self._keep, keep)
        codes = self._code_array(keys)
        start = 0
        while start < n:
            start = self._round(codes, event_ids, ats, amounts, start, spans, totals, lateness,
                                keep, not_after, out)
        self._tidy()
        count_arrays, total_arrays = out.arrays()
        return ColumnarBatch(out.statuses, out.counts, out.sums, out.first_seen,
                             count_arrays, total_arrays)

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

    def take_dropped(self) -> list[str]:
        """The keys dropped whole since the last call (see the module docstring), so that the
        owner can forget what it keeps for them."""
        dropped, self._dropped_keys = self._dropped_keys, []
        return dropped

    def size(self) -> dict[str, int]:
        return {"keys": len(self._keys), "events": len(self._comp),
                "ids": len(self._ids), "slots": 0}

    def _check(self) -> None:
        """Assert the invariants: sorted composites, amounts aligned, codes known and dense."""
        comp = self._comp
        assert bool(np.all(comp[1:] >= comp[:-1]))
        assert self._amount is None or len(self._amount) == len(comp)
        n = len(self._keys)
        assert len(self._codes) == n and all(self._codes[k] == i for i, k in enumerate(self._keys))
        assert len(self._newest) == len(self._first) == len(self._floor) == len(self._ahead) >= n
        if len(comp):
            assert int(comp[-1] >> TIME_BITS) < n
            assert int(comp[0]) >= 0
            held = np.unique(comp >> TIME_BITS)
            assert bool(np.all(self._newest[held] > _NEVER))
        if len(self._ids):
            assert int(self._ids.codes().max()) < n

    # -- one round ----------------------------------------------------------------------------

    def _round(
        self, codes: Ints, event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], start: int, spans: Sequence[tuple[int, int]], totals: bool,
        lateness: int, keep: int, not_after: int | None, out: _Output,
    ) -> int:
        """Observe a prefix of ``[start:]`` in one go; returns where the next round starts."""
        try:
            t: Ints = np.array(ats[start:], dtype=np.int64)
        except OverflowError:
            raise ValidationError("at", "event times must fit in 64 bits") from None
        lowest, highest = int(t.min()), int(t.max())
        if highest >= MAX_TIME or lowest <= -MAX_TIME:
            raise ValidationError("at", "event times must lie within 2**60 microseconds of "
                                  "the epoch")
        ahead: Flags | None = None  # events after not_after: FUTURE unless duplicates
        if not_after is not None and highest > not_after:
            ahead = t > not_after
            inside = t[~ahead]
            if len(inside):
                lowest, highest = int(inside.min()), int(inside.max())
        inside_any = ahead is None or not ahead.all()
        if self._base is None and inside_any:
            self._base = lowest - MAX_KEEP
        base = 0 if self._base is None else self._base  # 0: every event is FUTURE
        rel = t - base
        if inside_any and highest - base >= SPAN:
            # Move the origin before the batch when the whole batch then fits: no event of it
            # is older than the new origin, and nothing it could count is dropped.
            moved = min(highest - MAX_KEEP, lowest - keep - 1)
            if moved > base and highest - moved < SPAN:
                self._rebase(moved)
                base = moved
                rel = t - base
        far: Ints = np.empty(0, np.int64)
        if inside_any and highest - base >= SPAN:
            beyond = rel >= SPAN
            if ahead is not None:
                beyond &= ~ahead
            far = np.flatnonzero(beyond)
        if len(far) and far[0] == 0:
            self._rebase(int(t[0]) - MAX_KEEP)
            return start
        cut = int(far[0]) if len(far) else len(t)
        ids = event_ids[start:start + cut]
        c = codes[start:start + cut]
        t, rel = t[:cut], rel[:cut]
        fut = None if ahead is None else ahead[:cut]
        h = hashes(ids)
        if _may_repeat(h):
            cut = _first_repeat(ids)
            ids, c, t, rel, h = ids[:cut], c[:cut], t[:cut], rel[:cut], h[:cut]
            fut = None if fut is None else fut[:cut]
        # Events whose windows would reach what was given back (before the origin, or up to
        # their key's floor) are late whatever their key's newest.
        reach = keep - lateness
        origin = max(reach - 1, 0)
        blocked = rel < origin if lowest - base < origin else None
        if self._floored:
            blocked = _either(blocked, rel < self._floor[c] - base + reach)
        stay = _either(blocked, fut)  # events that cannot move their key's newest
        stored = self._newest[c]
        probes = self._ids.probes(h)
        dup = np.zeros(cut, np.bool_)
        hits = self._ids.find(ids, c, h, probes)
        if hits:
            upper = _newest_before(c, _by_key(c), rel, stay, stored, base)
            again = _classify(hits, stored, upper, max(self.dedup_horizon, keep), dup)
            if again < cut:
                cut = again
                ids, c, t, rel, h = ids[:cut], c[:cut], t[:cut], rel[:cut], h[:cut]
                dup, stored = dup[:cut], stored[:cut]
                blocked, stay, fut = _head(blocked, cut), _head(stay, cut), _head(fut, cut)
                probes = (probes[0][:cut], probes[1][:cut])
        assert cut > 0  # the front event's key has no earlier event in the batch: decided
        comp = (c << TIME_BITS) | np.clip(rel, 0, _MASK)
        order = _by_key(c)
        by_comp = _by_composite(comp, order)
        newest: Ints | None = None  # each event's key's newest before it, absolute
        if by_comp is order:
            # Each key's events in time order: none is behind an earlier one of the batch, so
            # only the key's stored newest can make one late or out of order.
            newest_rel = stored - base
        else:
            newest = _newest_before(c, order, rel, _either(dup, stay), stored, base)
            newest_rel = newest - base
        late = rel < newest_rel - lateness
        if blocked is not None:
            late |= blocked
        gone = _either(dup if hits else None, fut)  # duplicates and future events
        if gone is not None:
            late &= ~gone
            new = ~late & ~gone
        else:
            new = ~late
        counts, sums = self._record(comp, by_comp, new, rel < newest_rel, amounts, start, spans,
                                    totals)
        nix = np.flatnonzero(new)
        # The usual round (every event new, each key's in time order, none before its key's
        # first): each event's first-seen is its key's first once the round is recorded.
        known = self._first[c]
        simple = len(nix) == cut and by_comp is order and not bool(
            np.any((t < known) & (known != _NO_FIRST)))
        first = None if simple else self._first_seen(c, order, rel, new, base)
        store_newest = self.newest
        if len(nix):
            _update_extremes(self._newest, self._first, c, t, order[new[order]])
            self.newest = max(self.newest, int(t[nix].max()))
        if len(nix) == cut:
            self._ids.add(ids, c, t, h, probes)
            out.statuses.extend([Status.NEW] * cut)
        else:
            if newest is None and late.any():
                newest = _newest_before(c, order, rel, _either(dup, stay), stored, base)
            self._remember(ids, c, t, h, probes, dup, late, fut, newest, not_after,
                           _store_newest_before(t, new, store_newest))
            other = 0 if fut is None else np.where(fut, 3, 0)
            status = np.where(dup, 1, np.where(late, 2, other))
            out.statuses.extend(map(_STATUS.__getitem__, status.tolist()))
        if first is None:
            first = self._first[c].tolist()
        out.first_seen.extend(first)
        for j in range(len(spans)):
            out.counts[j].extend(counts[j].tolist())
            out.count_parts[j].append(counts[j])
            if totals:
                out.sums[j].extend(sums[j].tolist())
                out.sum_parts[j].append(sums[j])
        return start + cut

    # -- ids ----------------------------------------------------------------------------------

    def _remember(
        self, ids: Sequence[str], c: Ints, t: Ints, h: Ints, probes: Probes, dup: Flags,
        late: Flags, fut: Flags | None, newest: Ints | None, not_after: int | None,
        store_newest: Ints,
    ) -> None:
        """Log the ids of a round's events that are not duplicates, each at the time it is
        recorded at: its own (``NEW``), its key's newest (``LATE``; the store's newest, or its
        own time if later, for a key with none), ``not_after`` (``FUTURE``). ``newest`` and
        ``store_newest`` are the key's and the store's newest before each event."""
        recorded = t.copy()
        if newest is not None:
            lat = np.flatnonzero(late)
            at = newest[lat]
            keyless = at == _NEVER
            at[keyless] = np.maximum(t[lat[keyless]], store_newest[lat[keyless]])
            recorded[lat] = at
            np.maximum.at(self._ahead, c[lat[keyless]], at[keyless])
        if fut is not None and not_after is not None:
            f = np.flatnonzero(fut & ~dup)
            recorded[f] = not_after
            np.maximum.at(self._ahead, c[f], not_after)
        kept = np.flatnonzero(~dup)
        if len(kept):
            self._ids.add(list(compress(ids, (~dup).tolist())), c[kept], recorded[kept],
                          h[kept], (probes[0][kept], probes[1][kept]))

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

    def _first_seen(
        self, c: Ints, order: Ints, rel: Ints, new: Flags, base: int
    ) -> list[int | None]:
        """The first event time of each event's key once it is observed."""
        cs = c[order]
        value = np.where(new, SPAN - rel, 0)[order]  # the largest is the earliest new event
        best = np.maximum.accumulate((cs << _PACK) | value) & _PACK_MASK
        earliest = np.empty(len(c), np.int64)
        earliest[order] = np.where(best > 0, base + SPAN - best, _NO_FIRST)
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
        code = len(self._keys)
        if code >= CODE_LIMIT:
            raise StoreError(
                f"columnar windows hold at most {CODE_LIMIT:,} keys at once; key {key!r} is "
                "one more (use window='exact')")
        if code >= len(self._newest):
            size = 2 * len(self._newest)
            self._newest = _resized(self._newest, size, _NEVER)
            self._first = _resized(self._first, size, _NO_FIRST)
            self._floor = _resized(self._floor, size, _NEVER)
            self._ahead = _resized(self._ahead, size, _NEVER)
        self._codes[key] = code
        self._keys.append(key)
        if self._dropped > _NEVER:
            # It may be a key dropped before, whose windows are gone.
            self._floor[code] = self._dropped
            self._floored = True

    def _rebase(self, base: int) -> None:
        """Move the time origin forward to ``base``, forgetting the events before it."""
        assert self._base is not None and base > self._base
        shift = base - self._base
        rel = (self._comp & _MASK) - shift
        live = rel >= 0
        self._comp = ((self._comp >> TIME_BITS) << TIME_BITS)[live] | rel[live]
        if self._amount is not None:
            self._amount = self._amount[live]
        self._cum = None
        self._base = base

    def _tidy(self) -> None:
        """Compact the events once they have grown by half, or (at most once per ``keep`` of
        the store's time) once a key has gone quiet; forget ids and drop keys once the log
        has tripled, or (at most once per half dedup horizon) once a key has been idle for
        the whole dedup horizon. Small stores are compacted on growth only."""
        newest = self.newest
        n = len(self._keys)
        if len(self._comp) > self._compact_at:
            self._compact_events(newest)
        elif newest >= self._events_due and len(self._comp) >= _MIN_COMPACT:
            last = self._newest[:n]
            if bool(np.any((last <= newest - self._keep) & (last > self._floor[:n]))):
                self._compact_events(newest)
            else:
                self._events_due = newest + max(self._keep, 1)
        if len(self._ids) > self._id_limit:
            self._forget(newest)
        elif newest >= self._ids_due and len(self._ids) + n >= _MIN_COMPACT:
            if bool(np.any(self._idle(newest))):
                self._forget(newest)
            else:
                self._ids_due = newest + max(self._memory // 2, 1)

    @property
    def _memory(self) -> int:
        """How long ids are remembered: the dedup horizon, or the windows' if longer."""
        return max(self.dedup_horizon, self._keep)

    def _idle(self, newest: int) -> Flags:
        """The keys with nothing recorded within the dedup horizon of ``newest``."""
        n = len(self._keys)
        if newest == _NEVER:
            return np.zeros(n, np.bool_)
        idle: Flags = np.maximum(self._newest[:n], self._ahead[:n]) <= newest - self._memory
        return idle

    def _compact_events(self, newest: int) -> None:
        """Keep each key's events its windows can still reach: none for quiet keys (whose
        floor rises to their newest event), those after its newest minus ``keep`` for the
        others."""
        assert self._base is not None
        keep = self._keep
        n = len(self._keys)
        last = self._newest[:n]
        floor = self._floor[:n]
        quiet = (last <= newest - keep) & (last > floor)
        floor[quiet] = last[quiet]
        floor[(last >= floor + keep) & (floor > _NEVER)] = _NEVER  # no longer in reach
        self._floored = bool(np.any(floor > _NEVER))
        code = self._comp >> TIME_BITS
        edge = np.maximum(self._newest[code] - keep, self._floor[code]) - self._base
        live = (self._comp & _MASK) > edge
        self._comp = self._comp[live]
        if self._amount is not None:
            self._amount = self._amount[live]
            self._held_total = float(np.abs(self._amount).sum(dtype=np.float64))
        self._cum = None
        self._compact_at = max(3 * len(self._comp) // 2, _MIN_COMPACT)
        self._events_due = newest + max(keep, 1)

    def _forget(self, newest: int) -> None:
        """Forget the ids their keys no longer count, and drop the keys with nothing recorded
        within the dedup horizon of the store's newest event."""
        memory = self._memory
        codes = self._ids.codes()
        live = self._ids.values() > self._newest[codes] - memory
        gone = self._idle(newest)
        if gone.any():
            live &= ~gone[codes]
        if not live.all():
            self._ids.keep_only(live)
        if gone.any():
            self._drop(gone)
        self._id_limit = max(3 * len(self._ids), _MIN_COMPACT)
        self._ids_due = newest + max(memory // 2, 1)

    def _drop(self, gone: Flags) -> None:
        """Drop the keys ``gone`` marks whole (their ids are already forgotten), and number
        the others again, in the same order (so the held composites stay sorted)."""
        n = len(gone)
        alive = ~gone
        self._dropped = max(self._dropped, int(self._newest[:n][gone].max()))
        remap = np.cumsum(alive) - 1
        if len(self._comp):
            held = alive[self._comp >> TIME_BITS]
            if not held.all():
                self._comp = self._comp[held]
                if self._amount is not None:
                    self._amount = self._amount[held]
                self._cum = None
            self._comp = (remap[self._comp >> TIME_BITS] << TIME_BITS) | (self._comp & _MASK)
        self._ids.recode(remap)
        self._dropped_keys += compress(self._keys, gone.tolist())
        self._keys = list(compress(self._keys, alive.tolist()))
        self._codes = {key: code for code, key in enumerate(self._keys)}
        size = max(64, 2 * len(self._keys))
        self._newest = _resized(self._newest[:n][alive], size, _NEVER)
        self._first = _resized(self._first[:n][alive], size, _NO_FIRST)
        self._floor = _resized(self._floor[:n][alive], size, _NEVER)
        self._ahead = _resized(self._ahead[:n][alive], size, _NEVER)
        self._floored = self._floored or self._dropped > _NEVER


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
        """The columns as numpy arrays, for a :class:`ColumnarBatch`."""
        def join(parts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
            return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else (
                np.zeros(0, np.int64))
        return [join(p) for p in self.count_parts], [join(p) for p in self.sum_parts]


def _classify(
    hits: dict[int, int], lower: Ints, upper: Ints, memory: int, dup: Flags
) -> int:
    """Mark in ``dup`` the held ids (``hits``: position -> the time the id was recorded at for
    the same key) that are duplicates; returns the first that cannot be decided in bulk (or
    ``len``).

    A held id is a duplicate while its key's newest event is less than ``memory`` past the time
    it was recorded at (always, while the key has none). The events before it in the batch may
    move that newest: it lies between ``lower`` and ``upper``. Where the two disagree, the hit
    is left to a round of its own."""
    for i in sorted(hits):
        recorded = hits[i]
        if recorded > int(upper[i]) - memory:
            dup[i] = True
        elif recorded > int(lower[i]) - memory:
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


def _newest_before(
    c: Ints, order: Ints, rel: Ints, skip: Flags | None, stored: Ints, base: int
) -> Ints:
    """Each event's key's newest event time before it (absolute, ``_NEVER`` if none): the
    key's ``stored`` newest or an earlier event of the batch, except those ``skip`` marks."""
    values = np.clip(rel, -1, _MASK)
    if skip is not None:
        values[skip] = -1
    before = _running_max_before(c, order, values)
    newest: Ints = np.maximum(stored, np.where(before == _NEVER, _NEVER, before + base))
    return newest


def _store_newest_before(t: Ints, new: Flags, stored: int) -> Ints:
    """The store's newest event time before each event: ``stored`` (before the round), or the
    latest ``new`` event before it in the round."""
    running = np.maximum.accumulate(np.where(new, t, stored))
    before: Ints = np.empty_like(running)
    before[0] = stored
    before[1:] = np.maximum(running[:-1], stored)
    return before


def _either(a: Flags | None, b: Flags | None) -> Flags | None:
    """``a | b``, where ``None`` marks nothing."""
    if a is None:
        return b
    return a if b is None else a | b


def _head(flags: Flags | None, n: int) -> Flags | None:
    return None if flags is None else flags[:n]


def _resized(values: Ints, size: int, fill: int) -> Ints:
    """``values`` cut or padded with ``fill`` to ``size``."""
    out = np.full(size, fill, np.int64)
    out[:min(size, len(values))] = values[:size]
    return out
