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
- ``O(N + b)`` to merge the new events into the ``N`` held, and ``O(b log N)`` to rank each
  window edge (:mod:`.composites`);
- for keys whose events arrived out of time order in this batch, a correction in Python,
  ``O(m log m)`` for the ``m`` events of such a key: an event is counted by the events that
  arrived before it, and ranking in the merged array also sees the ones that arrived after it.

So per event the work is a few dozen machine steps in C instead of interpreter steps; per batch
there is a fixed overhead of some tens of numpy calls (tens of microseconds), which is why the
structure is for batches (hundreds of events and up), not for single calls.

This module holds the rounds; the held events and their amounts are :mod:`.composites`, the
keys and their times :mod:`.keycodes`, the per-round sorts and running maxima :mod:`.grouped`,
the ids :mod:`.idlog`.

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
  idle for the whole horizon. So the log holds at most three times the ids still counted, and
  an idle key is dropped within about one and a half dedup horizons. Under 4,096 held events,
  and under 65,536 ids and keys, a store is compacted on growth only. (Held events are
  compacted early because every window edge is a search of them and every round a merge into
  them; ids are only appended and probed through their filter.)

Time origin. Relative times have 41 bits (about 25 days). ``base`` starts 2**40 microseconds
(about 12.7 days) before the first event that is not ``FUTURE`` and moves forward when such an
event would not fit (before a batch when the whole batch then fits, else at that event), to no
later than 2**40 microseconds before the newest event and never past anything the batch can
count; ``FUTURE`` events never move it. What lies before it is forgotten, so an event whose
windows would reach before it (more than 2**40 microseconds less the longest reach older than
the store's newest event) is ``LATE``. The windows plus the allowed lateness must span less
than 2**40 microseconds (:data:`MAX_KEEP`); event times must lie within 2**60 microseconds of
the epoch.

Key codes have 21 bits: about two million keys held at once (:mod:`.keycodes`).

Not thread-safe on its own: the owning store locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ValidationError
from ..store import DAY, ColumnarBatch, ObservedBatch, Status, Tally
from .composites import MASK, NEVER, NO_FIRST, SPAN, TIME_BITS, Composites
from .grouped import (
    by_composite,
    by_key,
    classify,
    earliest_new,
    either,
    first_repeat,
    head,
    may_repeat,
    newest_before,
    store_newest_before,
)
from .idlog import IdLog, Probes, hashes
from .keycodes import CODE_LIMIT, KeyCodes

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

MAX_KEEP = 1 << 40  # how far before the newest event the base may lie, at least
MAX_TIME = 1 << 60  # event times, not_after and the dedup horizon lie within this of 0
_STATUS = (Status.NEW, Status.DUPLICATE, Status.LATE, Status.FUTURE)
_MIN_COMPACT = 1 << 16  # ids and keys
_MIN_EVENTS = 1 << 12  # held events

__all__ = ["CODE_LIMIT", "MAX_KEEP", "MAX_TIME", "SPAN", "TIME_BITS", "ColumnarWindows"]


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
        self.keys = KeyCodes()
        self.held = Composites()
        self.base: int | None = None  # the time origin of the held composites
        self._ids = IdLog()  # event ids, each with its key's code and the time recorded at
        self._keep = 0  # the longest keep asked for
        self._compact_at = _MIN_EVENTS
        self._id_limit = _MIN_COMPACT
        self._events_due = NEVER  # newest event time at which events are compacted anyway
        self._ids_due = NEVER  # newest event time at which ids and keys are compacted anyway
        self.newest = NEVER  # the newest event time of the whole store

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
                "of allowed lateness plus window; use MemoryWindowStore for longer ones")
        if not 0 <= lateness <= keep:
            raise ValidationError(
                "lateness", f"must lie between 0 and keep ({keep}), not {lateness}")
        if not_after is not None and not -MAX_TIME < not_after < MAX_TIME:
            raise ValidationError(
                "not_after", f"must lie within 2**60 microseconds of the epoch, not {not_after}")
        n = len(keys)
        out = _Output(len(spans), totals)
        self._keep = max(self._keep, keep)
        codes = self.keys.code_array(keys)
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
        code = self.keys.codes.get(key)
        if code is None or self.base is None:
            return tuple(Tally(0, 0) for _ in spans)
        floor = code << TIME_BITS
        rel = at - self.base
        out = []
        for offset, reach in spans:
            hi = self.held.rank(floor + min(max(rel - offset, -1), MASK))
            lo = self.held.rank(floor + min(max(rel - reach, -1), MASK))
            out.append(Tally(hi - lo, self.held.sum(lo, hi)))
        return tuple(out)

    def take_dropped(self) -> list[str]:
        """The keys dropped whole since the last call (see the module docstring), so that the
        owner can forget what it keeps for them."""
        return self.keys.take_dropped()

    def size(self) -> dict[str, int]:
        return {"keys": len(self.keys), "events": len(self.held),
                "ids": len(self._ids), "slots": 0}

    def _check(self) -> None:
        """Assert the invariants: sorted composites, amounts aligned, codes known and dense."""
        self.held.check()
        self.keys.check()
        n = len(self.keys)
        if len(self.held):
            held = np.unique(self.held.codes())
            assert int(held[-1]) < n
            assert bool(np.all(self.keys.newest[held] > NEVER))
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
        if self.base is None and inside_any:
            self.base = lowest - MAX_KEEP
        base = 0 if self.base is None else self.base  # 0: every event is FUTURE
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
        if may_repeat(h):
            cut = first_repeat(ids)
            ids, c, t, rel, h = ids[:cut], c[:cut], t[:cut], rel[:cut], h[:cut]
            fut = None if fut is None else fut[:cut]
        # Events whose windows would reach what was given back (before the origin, or up to
        # their key's floor) are late whatever their key's newest.
        reach = keep - lateness
        origin = max(reach - 1, 0)
        blocked = rel < origin if lowest - base < origin else None
        if self.keys.floored:
            blocked = either(blocked, rel < self.keys.floor[c] - base + reach)
        stay = either(blocked, fut)  # events that cannot move their key's newest
        stored = self.keys.newest[c]
        probes = self._ids.probes(h)
        dup = np.zeros(cut, np.bool_)
        hits = self._ids.find(ids, c, h, probes)
        if hits:
            upper = newest_before(c, by_key(c), rel, stay, stored, base)
            again = classify(hits, stored, upper, max(self.dedup_horizon, keep), dup)
            if again < cut:
                cut = again
                ids, c, t, rel, h = ids[:cut], c[:cut], t[:cut], rel[:cut], h[:cut]
                dup, stored = dup[:cut], stored[:cut]
                blocked, stay, fut = head(blocked, cut), head(stay, cut), head(fut, cut)
                probes = (probes[0][:cut], probes[1][:cut])
        assert cut > 0  # the front event's key has no earlier event in the batch: decided
        comp = (c << TIME_BITS) | np.clip(rel, 0, MASK)
        order = by_key(c)
        by_comp = by_composite(comp, order)
        newest: Ints | None = None  # each event's key's newest before it, absolute
        if by_comp is order:
            # Each key's events in time order: none is behind an earlier one of the batch, so
            # only the key's stored newest can make one late or out of order.
            newest_rel = stored - base
        else:
            newest = newest_before(c, order, rel, either(dup, stay), stored, base)
            newest_rel = newest - base
        late = rel < newest_rel - lateness
        if blocked is not None:
            late |= blocked
        gone = either(dup if hits else None, fut)  # duplicates and future events
        if gone is not None:
            late &= ~gone
            new = ~late & ~gone
        else:
            new = ~late
        counts, sums = self.held.record(comp, by_comp, new, rel < newest_rel, amounts, start,
                                        spans, totals)
        nix = np.flatnonzero(new)
        # The usual round (every event new, each key's in time order, none before its key's
        # first): each event's first-seen is its key's first once the round is recorded.
        known = self.keys.first[c]
        simple = len(nix) == cut and by_comp is order and not bool(
            np.any((t < known) & (known != NO_FIRST)))
        first = None if simple else self._first_seen(c, order, rel, new, base)
        store_newest = self.newest
        if len(nix):
            self.keys.raise_extremes(c, t, order[new[order]])
            self.newest = max(self.newest, int(t[nix].max()))
        if len(nix) == cut:
            self._ids.add(ids, c, t, h, probes)
            out.statuses.extend([Status.NEW] * cut)
        else:
            if newest is None and late.any():
                newest = newest_before(c, order, rel, either(dup, stay), stored, base)
            self._remember(ids, c, t, h, probes, dup, late, fut, newest, not_after,
                           store_newest_before(t, new, store_newest))
            other = 0 if fut is None else np.where(fut, 3, 0)
            status = np.where(dup, 1, np.where(late, 2, other))
            out.statuses.extend(map(_STATUS.__getitem__, status.tolist()))
        if first is None:
            first = self.keys.first[c].tolist()
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
            keyless = at == NEVER
            at[keyless] = np.maximum(t[lat[keyless]], store_newest[lat[keyless]])
            recorded[lat] = at
            np.maximum.at(self.keys.ahead, c[lat[keyless]], at[keyless])
        if fut is not None and not_after is not None:
            f = np.flatnonzero(fut & ~dup)
            recorded[f] = not_after
            np.maximum.at(self.keys.ahead, c[f], not_after)
        kept = np.flatnonzero(~dup)
        if len(kept):
            self._ids.add(list(compress(ids, (~dup).tolist())), c[kept], recorded[kept],
                          h[kept], (probes[0][kept], probes[1][kept]))

    def _first_seen(
        self, c: Ints, order: Ints, rel: Ints, new: Flags, base: int
    ) -> list[int | None]:
        """The first event time of each event's key once it is observed."""
        earliest = earliest_new(c, order, rel, new, base)
        first: list[int | None] = np.minimum(self.keys.first[c], earliest).tolist()
        if NO_FIRST in first:
            return [None if at == NO_FIRST else at for at in first]
        return first

    # -- time base, compaction ----------------------------------------------------------------

    def _rebase(self, base: int) -> None:
        """Move the time origin forward to ``base``, forgetting the events before it."""
        assert self.base is not None and base > self.base
        self.held.rebase(base - self.base)
        self.base = base

    def _tidy(self) -> None:
        """Compact the events once they have grown by half, or (at most once per ``keep`` of
        the store's time) once a key has gone quiet; forget ids and drop keys once the log
        has tripled, or (at most once per half dedup horizon) once a key has been idle for
        the whole dedup horizon. Small stores are compacted on growth only."""
        newest = self.newest
        n = len(self.keys)
        if len(self.held) > self._compact_at:
            self._compact_events(newest)
        elif newest >= self._events_due and len(self.held) >= _MIN_EVENTS:
            last = self.keys.newest[:n]
            if bool(np.any((last <= newest - self._keep) & (last > self.keys.floor[:n]))):
                self._compact_events(newest)
            else:
                self._events_due = newest + max(self._keep, 1)
        if len(self._ids) > self._id_limit:
            self._forget(newest)
        elif newest >= self._ids_due and len(self._ids) + n >= _MIN_COMPACT:
            if bool(np.any(self.keys.idle(newest, self._memory))):
                self._forget(newest)
            else:
                self._ids_due = newest + max(self._memory // 2, 1)

    @property
    def _memory(self) -> int:
        """How long ids are remembered: the dedup horizon, or the windows' if longer."""
        return max(self.dedup_horizon, self._keep)

    def _compact_events(self, newest: int) -> None:
        """Keep each key's events its windows can still reach: none for quiet keys (whose
        floor rises to their newest event), those after its newest minus ``keep`` for the
        others."""
        assert self.base is not None
        keep = self._keep
        n = len(self.keys)
        last = self.keys.newest[:n]
        floor = self.keys.floor[:n]
        quiet = (last <= newest - keep) & (last > floor)
        floor[quiet] = last[quiet]
        floor[(last >= floor + keep) & (floor > NEVER)] = NEVER  # no longer in reach
        self.keys.floored = bool(np.any(floor > NEVER))
        code = self.held.codes()
        edge = np.maximum(self.keys.newest[code] - keep, self.keys.floor[code]) - self.base
        self.held.keep_only((self.held.comp & MASK) > edge)
        self._compact_at = max(3 * len(self.held) // 2, _MIN_EVENTS)
        self._events_due = newest + max(keep, 1)

    def _forget(self, newest: int) -> None:
        """Forget the ids their keys no longer count, and drop the keys with nothing recorded
        within the dedup horizon of the store's newest event (their events, ids and codes;
        the others are numbered again, in the same order, so the composites stay sorted)."""
        memory = self._memory
        codes = self._ids.codes()
        live = self._ids.values() > self.keys.newest[codes] - memory
        gone = self.keys.idle(newest, memory)
        if gone.any():
            live &= ~gone[codes]
        if not live.all():
            self._ids.keep_only(live)
        if gone.any():
            remap = self.keys.drop(gone)
            self.held.recode(~gone, remap)
            self._ids.recode(remap)
            # The events of the keys dropped are gone too: grown by half is counted from
            # what is left (never later than it was due).
            self._compact_at = min(self._compact_at, max(3 * len(self.held) // 2, _MIN_EVENTS))
        self._id_limit = max(3 * len(self._ids), _MIN_COMPACT)
        self._ids_due = newest + max(memory // 2, 1)


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
