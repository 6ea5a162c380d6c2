"""``MemoryWindowStore``: the WindowStore of one process, one window structure per key.

Each key (pool) holds its recent event times and amounts, the ids of those events (for
idempotency), its newest event time and the time of its first event. Two window structures are
available, both exact at every boundary (``window=``):

- ``"exact"`` (the default): :class:`~auptimate_core.windows.exact.ExactWindow`, one flat sorted
  list per key. The fastest per event in CPython: an in-order event is an append and two binary
  searches.
- ``"ring"``: :class:`~auptimate_core.windows.ring.BucketRing`, fixed-width buckets
  (``bucket_width``, five minutes by default) of compact ``array('q')`` times, with running
  totals so a window's interior costs nothing and only its two edge buckets are searched. It
  holds an event's time and running sum in 16 bytes instead of two Python ints and two list
  slots, but each key pays a ring of ``horizon / bucket_width + 2`` slots and every bucket two
  small arrays. So it pays where pools are busy (many events a bucket) and memory is what
  counts; on quiet pools it holds no less and does more work per event. It is an option, not
  the default; ``benchmarks/bench_windows.py`` measures both.

Every key's events in one numpy array, a batch at a time, is a store of its own:
:class:`~auptimate_core.backends.columnar.ColumnarWindowStore`.

Memory is bounded by the windows and the dedup horizon, not by the stream: a key forgets the
events no interval can reach any more (older than its newest event minus the allowed lateness
minus the longest interval asked for; the exact window trims lazily, once it holds a quarter
more than its live events and eight more, the ring drops whole buckets as new ones open) and
the ids recorded more than the dedup horizon before its newest event. Every 4,096 events (once
the store's newest event has passed the time one is due) the store looks at the keys that may
have gone quiet, and at no other: each key is filed by the time it may next need a look (its
newest event plus the windows' horizon if it holds more than a few events, else plus the time
after which a quiet key is dropped, below), in buckets of an eighth of the windows' horizon
(:mod:`~auptimate_core.backends.memory_sweep`). A
look costs ``O(1)`` per key due one, and a key is due one about once per horizon of its own
events or once it has gone quiet, not at every sweep:

- a key whose newest event is older than the store's newest minus the windows' horizon gives
  its events back, and its newest time moves up by that horizon, so that an event of it old
  enough to need the dropped events is ``LATE`` (the windows of any event it still accepts
  begin after them);
- a key quiet for longer than the dedup horizon as well (plus that move) is dropped whole:
  events, ids, times, and its lifecycle unless a rule is firing for it. It is a new key if it
  comes back; since the events it had are gone, an event of a key with no window (a new key,
  or one that only ever had late or future events) is ``LATE`` when its intervals reach back
  to the newest event of any key dropped so far, as it may need the events dropped.

The sweep runs between the same two events however a stream is cut into calls (it is looked
for before each event of a batch, after each event observed alone), so one call per event and
batches of any size give the same answers.

Costs per observation: amortised ``O(1)`` to record an in-order event, ``O(log n)`` per interval
tallied (``O(log m)`` in one bucket of ``m`` events for the ring), more for a late event that
newer ones must make room for (see each structure).

Thread-safe: one lock serialises every call, so engines in many threads may share it.

>>> store = MemoryWindowStore()
>>> from auptimate_core.store import Interval, Observation
>>> minute = 60_000_000
>>> [store.observe(Observation("p", f"t{i}", i * 1_000_000), [Interval(0, minute)]).tallies[0].count
...  for i in range(3)]
[1, 2, 3]
>>> store.observe(Observation("p", "t1", 1_000_000), [Interval(0, minute)]).status.value
'duplicate'
>>> ring = MemoryWindowStore(window="ring", bucket_width=timedelta(seconds=10))
>>> ring.observe(Observation("p", "a", 5), [Interval(0, minute)]).tallies[0].count
1
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import timedelta
from operator import is_
from typing import Literal

from ..errors import ValidationError
from ..store import (
    EventAnswer,
    Interval,
    Observation,
    Observed,
    ObservedBatch,
    Status,
    Tally,
)
from .local import US, LocalStore
from .memory_keys import (
    NEVER,
    NO_FIRST,
    SMALL,
    ExactKey,
    Key,
    RingKey,
    Shape,
    cap_of,
    forget_ids,
)
from .memory_sweep import DROPPED, SweepSchedule, look

_SWEEP_MIN = 4_096  # events between two sweeps, at least
MAX_RING_SLOTS = 100_000
"""The most buckets a ring window may have a key (``window="ring"``)."""
_NEW = Status.NEW
_NONE2 = (None, None)
_ZEROS = (0, 0)
_ALONE_CHAINED = (1, 0)  # the counts of an event alone in both intervals: chained ones
_ALONE_BOTH = (1, 1)  # and both ending now


class MemoryWindowStore(LocalStore):
    """A thread-safe, in-process :class:`~auptimate_core.store.WindowStore`.

    ``allowed_lateness``: how far behind a key's newest event an event may arrive and still be
    counted; an older one is ``LATE`` (not counted). Five minutes by default.
    ``dedup_horizon``: how long (in a key's event time) an id is remembered after it was
    recorded, so that a redelivery is a duplicate; a day by default.
    ``window``: ``"exact"`` (default) or ``"ring"``, the structure the keys are kept in (see
    the module docstring); ``bucket_width``: the ring's bucket width.
    """

    def __init__(
        self,
        allowed_lateness: timedelta = timedelta(minutes=5),
        *,
        window: Literal["exact", "ring"] = "exact",
        bucket_width: timedelta = timedelta(minutes=5),
        dedup_horizon: timedelta = timedelta(days=1),
    ) -> None:
        super().__init__(allowed_lateness, dedup_horizon)
        # (intervals, shape, items): what observe_many derived from the intervals it was last
        # asked for; ``items`` is None for a tuple, else the intervals the sequence held then
        # (a list may be changed in place: it is known again only while it holds the same).
        self._shape: tuple[Sequence[Interval], Shape, tuple[Interval, ...] | None] = (
            (), Shape(()), None)
        if window not in ("exact", "ring"):
            moved = (" (numpy columns are a store of their own: ColumnarWindowStore, from "
                     "auptimate_core.backends.columnar)" if str(window) == "columnar" else "")
            raise ValidationError("window", f"must be 'exact' or 'ring', not {window!r}{moved}")
        if bucket_width < US:
            raise ValidationError(
                "bucket_width", f"must be at least a microsecond, not {bucket_width}")
        self.window = window
        self.bucket_width = bucket_width
        self._ring = window == "ring"
        self._width = bucket_width // US
        self._check_ring(self._lateness, "allowed_lateness")
        self._keys: dict[str, Key] = {}
        self._reach = 0
        self._keep = self._lateness  # the allowed lateness and the longest interval asked for
        self._memory = max(self._keep, self._horizon) + self._keep  # how long ids are kept
        # (intervals, chained, r0, r1, reach, first, second): the intervals observe_event
        # decides inline, once observe_many has seen them (see Shape), or (None, ...);
        # ``first`` and ``second`` are the two intervals a sequence other than a tuple held.
        self._inline: tuple[Sequence[Interval] | None, bool, int, int, int,
                            Interval | None, Interval | None] = (
            None, False, 0, 0, 0, None, None)
        self._newest = NEVER
        # The newest event time of any key dropped whole so far (see _sweep): an event of a
        # key that has no window is LATE when its windows would reach back to it.
        self._floor = NEVER
        self._since_sweep = 0
        # The sweep's schedule (see _file), in buckets of an eighth of the horizon.
        self._schedule = SweepSchedule(max(self._keep // 8, 1))

    def _new_key(self, key: str) -> Key:
        first, newest = NO_FIRST, NEVER
        state: Key
        if self._ring:
            state = RingKey(key, first, newest, self._width, self._lateness + self._reach)
        else:
            state = ExactKey(key, first, newest)
        self._keys[key] = state
        self._file(state, NEVER)
        return state

    def _file(self, state: Key, due: int) -> None:
        """Have the first sweep after the store's newest event passes ``due`` look at a key.

        Every key is filed, and never later than it needs a look: a key dropped once quiet for
        longer than the dedup horizon (``memory``) at its newest time plus that, and one that
        holds more than a few events (a ring; an exact window of more than ``SMALL`` events,
        or allowed to grow past that before it trims) at its newest plus ``keep`` as well,
        so that what it holds is given back once it goes quiet. A key filed too early is
        filed again when looked at."""
        self._schedule.file(state, due)

    def _check_ring(self, span: int, by: str) -> None:
        """Refuse a ring of more than MAX_RING_SLOTS buckets a key (``span`` behind its newest
        event, in buckets of ``bucket_width``): each bucket costs every key some 32 bytes."""
        if not self._ring:
            return
        slots = span // self._width + 2
        if slots > MAX_RING_SLOTS:
            widest = (span // (MAX_RING_SLOTS - 2)) + 1
            raise ValidationError("bucket_width", (
                f"{self.bucket_width} is too narrow for the {by} ({timedelta(microseconds=span)}"
                f" to hold): {slots:,} buckets a pool, at most {MAX_RING_SLOTS:,}; use at least "
                f"{timedelta(microseconds=widest)}"))

    def _widen(self, reach: int) -> None:
        """A longer interval was asked for: hold that much more from now on."""
        keep = self._lateness + reach
        self._check_ring(keep, "allowed lateness and the longest interval")
        self._reach = reach
        self._keep = keep
        self._memory = max(keep, self._horizon) + keep
        if not self._schedule:  # nothing filed yet: buckets of an eighth of the horizon
            self._schedule.slot = max(keep // 8, 1)
        if self._ring:
            for state in self._keys.values():
                assert isinstance(state, RingKey)
                state.widen(keep)

    # -- recording and tallying ---------------------------------------------------------------

    def _compact(self, state: ExactKey, at: int) -> None:
        """An in-order event at ``at`` took an exact window past its cap: forget the ids past
        the dedup horizon, trim what no interval can reach, set the next cap and file the key
        for the sweep. Ids are forgotten here, not checked at every event: a key trims at
        least once a quarter of its live events and SLACK more."""
        if len(state.ids) > state.id_limit:
            forget_ids(state, at - self._memory)
        keep = self._keep
        state.trim(at - keep)
        state.cap = cap_of(len(state._times) - state._start)
        if state.cap > SMALL and state.due > at + keep:
            self._file(state, at + keep)

    def observe(
        self, observation: Observation, intervals: Sequence[Interval], *,
        not_after: int | None = None,
    ) -> Observed:
        status, counts, totals, first = self.observe_event(
            observation.key, observation.event_id, observation.at, observation.amount,
            intervals, True, not_after)
        return Observed(status, tuple(map(Tally, counts, totals)), first)

    def firing_view(self, rule: str) -> AbstractSet[str]:
        with self._lock:
            return self._lifecycle.firing_view(rule)

    def observe_event(
        self, key: str, event_id: str, at: int, amount: int, intervals: Sequence[Interval],
        totals: bool, not_after: int | None,
    ) -> EventAnswer:
        """One event (see :class:`~auptimate_core.store.ObservesEvents`): an in-order event of
        a key on exact windows with two intervals of the shapes :class:`Shape` names is
        decided inline, anything else as a batch of one."""
        self._lock.acquire()  # not a with block: a measurable share of this path
        try:
            inline = self._inline
            if intervals is inline[0] and (inline[5] is None or (
                    len(intervals) == 2 and intervals[0] is inline[5]
                    and intervals[1] is inline[6])):
                state: ExactKey | None = self._keys.get(key)  # type: ignore[assignment]
                if state is None:  # inline shapes are only kept on exact windows
                    state = self._new_key(key)  # type: ignore[assignment]
                    assert state is not None
                newest = state.last
                ids = state.ids
                seen = ids.get(event_id)
                # Else out of order, ahead or a duplicate: the general path.
                if at >= newest and (not_after is None or at <= not_after) and (
                        seen is None or seen <= newest - self._memory) and (
                        newest != NEVER or at >= self._floor + inline[4]):
                    ids[event_id] = at
                    first = state.first
                    if first is NO_FIRST and at < first:  # see observe_many
                        state.first = first = at
                        if state.due > at + self._memory:  # see observe_many
                            self._file(state, at + self._memory)
                    state.last = at
                    if at > self._newest:
                        self._newest = at
                    times = state._times
                    times.append(at)
                    cum = state._cum
                    if cum is not None:
                        cum.append(cum[-1] + amount)
                    elif amount:
                        cum = state.first_amount(amount)
                    begin = state._start
                    size = len(times)
                    if size - begin > state.cap:
                        self._compact(state, at)
                        times = state._times
                        cum = state._cum
                        begin = state._start
                        size = len(times)
                    _, chained, r0, r1, reach, _, _ = inline
                    lo0 = size - 1
                    sums = _ZEROS
                    if times[lo0 - 1] <= at - reach:  # alone in both intervals: see observe_many
                        if chained:
                            counts = _ALONE_CHAINED
                            if totals and cum is not None:
                                sums = (cum[size] - cum[lo0], 0)
                        else:
                            counts = _ALONE_BOTH
                            if totals and cum is not None:
                                sums = (cum[size] - cum[lo0],) * 2
                    elif chained:
                        lo0 = bisect_right(times, at - r0, begin)
                        lo1 = bisect_right(times, at - r1, begin, lo0)
                        counts = (size - lo0, lo0 - lo1)
                        if totals and cum is not None:
                            sums = (cum[size] - cum[lo0], cum[lo0] - cum[lo1])
                    else:
                        lo0 = bisect_right(times, at - r0, begin)
                        lo1 = bisect_right(times, at - r1, begin)
                        counts = (size - lo0, size - lo1)
                        if totals and cum is not None:
                            sums = (cum[size] - cum[lo0], cum[size] - cum[lo1])
                    since = self._since_sweep = self._since_sweep + 1
                    if since >= _SWEEP_MIN and self._newest >= self._schedule.due:
                        self._sweep()
                    return _NEW, counts, sums, first
        finally:
            self._lock.release()
        got = self.observe_many((key,), (event_id,), (at,), (amount,), intervals,
                                totals=totals, not_after=not_after)
        status = got.statuses[0]
        if status is not _NEW:
            return status, (), (), got.first_seen[0]
        return (status, [column[0] for column in got.counts],
                [column[0] for column in got.totals] if totals else [0] * len(got.counts),
                got.first_seen[0])

    def observe_many(
        self,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        intervals: Sequence[Interval],
        *,
        totals: bool = False,
        deliveries: Sequence[str] | None = None,
        batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        """See :meth:`WindowStore.observe_many`; ``deliveries`` and ``batch`` are ignored (a call
        on this store cannot fail half-way, so it is never retried)."""
        n = len(keys)
        cached = self._shape  # one tuple, read and replaced whole: safe without the lock
        items = cached[2]
        if cached[0] is intervals and (items is None or (
                len(intervals) == len(items) and all(map(is_, intervals, items)))):
            shape = cached[1]
        else:
            shape = Shape(intervals)
            items = None if type(intervals) is tuple else tuple(intervals)
            self._shape = (intervals, shape, items)
        spans = shape.spans
        counts = [[0] * n for _ in spans]
        sums = [[0] * n for _ in spans] if totals else []
        sums_or_none = sums if totals else None
        statuses = [Status.NEW] * n
        first_seen: list[int | None] = [None] * n
        duplicate, late, future = Status.DUPLICATE, Status.LATE, Status.FUTURE
        ahead = not_after if not_after is not None else NO_FIRST
        two, chained, r0, r1, reach = shape.two, shape.chained, shape.r0, shape.r1, shape.reach
        c0, c1 = (counts[0], counts[1]) if two else ([], [])
        s0, s1 = (sums[0], sums[1]) if two and totals else ([], [])
        with self._lock:
            if shape.reach > self._reach:
                self._widen(shape.reach)
            if shape.two and not self._ring and (
                    self._inline[0] is not intervals or self._inline[5:] != (items or _NONE2)):
                self._inline = (intervals, shape.chained, shape.r0, shape.r1, shape.reach,
                                *(items or _NONE2))
            lateness = self._lateness
            keep = lateness + self._reach
            # A quiet key's newest may be moved up by ``keep`` (see _sweep): remember that
            # much longer, so an id is never forgotten before the horizon.
            memory = max(keep, self._horizon) + keep
            # Exact windows trim once they hold a quarter more than their live events and
            # SLACK more (see cap_of): stale events are never counted (every lower bound is past
            # the horizon), and a quiet pool is not trimmed at every one of its events.
            inline = two and not self._ring
            get = self._keys.get
            newest_all = self._newest
            floor = self._floor
            # The sweep runs between the same two events however the stream is cut into calls:
            # the per-event path looks after each event, this loop before each and after the
            # last, so that no answer depends on the cut.
            swept = 0  # the index of the first event after the last sweep of this call
            sweep_from = _SWEEP_MIN - self._since_sweep
            for i, key, event_id, at in zip(range(n), keys, event_ids, ats):
                if i >= sweep_from and newest_all >= self._schedule.due:
                    self._newest = newest_all
                    self._sweep()
                    get = self._keys.get  # the sweep may have copied the keys anew
                    floor = self._floor
                    swept = i
                    sweep_from = i + _SWEEP_MIN
                state = get(key)
                if state is None:
                    state = self._new_key(key)
                ids = state.ids
                newest = state.last
                seen = ids.get(event_id)
                if seen is not None and seen > newest - memory:
                    statuses[i] = duplicate
                    first_seen[i] = state.first if state.first != NO_FIRST else None
                    continue
                if newest <= at <= ahead and (newest != NEVER or at >= floor + reach):
                    # In order (the usual case). A key's first event is at or before its
                    # newest once it has one, so only a key without one (NO_FIRST itself)
                    # needs the test.
                    ids[event_id] = at
                    first = state.first
                    if first is NO_FIRST and at < first:
                        state.first = first = at
                        if state.due > at + memory:
                            # Filed by the ids of events ahead of the clock it had: looked at
                            # by the time its own events would have it dropped.
                            self._file(state, at + memory)
                    state.last = at
                    if at > newest_all:
                        newest_all = at
                    if inline:
                        # An append, a rare trim, two searches.
                        exact: ExactKey = state  # type: ignore[assignment]
                        times = exact._times
                        times.append(at)
                        cum = exact._cum
                        if cum is not None:
                            cum.append(cum[-1] + amounts[i])
                        elif amounts[i]:
                            cum = exact.first_amount(amounts[i])
                        begin = exact._start
                        size = len(times)
                        if size - begin > exact.cap:
                            self._compact(exact, at)
                            times = exact._times
                            cum = exact._cum
                            begin = exact._start
                            size = len(times)
                        if times[size - 2] <= at - reach:
                            # No other event it holds is in either interval (the usual
                            # case on a quiet pool): counts of 1 (the rows hold 0). Holding
                            # no other, times[size - 2] is ``at`` itself or a trimmed
                            # event, and the searches below find the same.
                            c0[i] = 1
                            if not chained:
                                c1[i] = 1
                            if totals and cum is not None:
                                s0[i] = own = cum[size] - cum[size - 1]
                                if not chained:
                                    s1[i] = own
                            first_seen[i] = first
                            continue
                        lo0 = bisect_right(times, at - r0, begin)
                        if chained:
                            lo1 = bisect_right(times, at - r1, begin, lo0)
                            c0[i] = size - lo0
                            c1[i] = lo0 - lo1
                            if totals and cum is not None:
                                s0[i] = cum[size] - cum[lo0]
                                s1[i] = cum[lo0] - cum[lo1]
                        else:
                            lo1 = bisect_right(times, at - r1, begin)
                            c0[i] = size - lo0
                            c1[i] = size - lo1
                            if totals and cum is not None:
                                s0[i] = cum[size] - cum[lo0]
                                s1[i] = cum[size] - cum[lo1]
                        first_seen[i] = first
                        continue
                    newest = at
                elif at > ahead or at < newest - lateness or newest == NEVER:
                    # Kept out of the windows (ahead of the clock, late for its key, or, on
                    # a key with no window yet, older than the floor), remembered for the
                    # horizon from now: its key's newest, or the store's for a key with none.
                    statuses[i] = future if at > ahead else late
                    now = newest if newest != NEVER else newest_all
                    if at > ahead:
                        ids[event_id] = ahead
                        if ahead > state.ahead:
                            state.ahead = ahead  # may be newer than every event it holds
                    else:
                        ids[event_id] = now
                    if len(ids) > state.id_limit:
                        forget_ids(state, now - memory)
                    first_seen[i] = state.first if state.first != NO_FIRST else None
                    continue
                else:
                    ids[event_id] = at
                    if at < state.first:
                        state.first = at
                if len(ids) > state.id_limit:
                    forget_ids(state, at - memory)
                if isinstance(state, ExactKey):
                    state.record(at, amounts[i], newest - keep, spans, counts, sums_or_none, i)
                    big = len(state) > SMALL
                else:
                    state.record(at, amounts[i], spans, counts, sums_or_none, i)
                    big = True
                if big and state.due > state.last + keep:
                    self._file(state, state.last + keep)
                first_seen[i] = state.first
            self._newest = newest_all
            self._since_sweep += n - swept  # a sweep set it to 0
            if self._since_sweep >= _SWEEP_MIN and newest_all >= self._schedule.due:
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
                    out.append(Tally(state.count(low, high), state.total(low, high)))
            return tuple(out)

    def _sweep(self) -> None:
        """Look at the keys due a look (see :meth:`_file` and
        :func:`~.memory_sweep.look`): give back what a quiet key holds, drop one quiet for
        longer than the dedup horizon (with its lifecycle unless a rule is firing for it;
        :meth:`AlertEngine.evaluate` resolves that), file any other again. Called once a
        bucket is due and at least _SWEEP_MIN events came since the last sweep."""
        self._since_sweep = 0
        newest, keep, memory = self._newest, self._keep, self._memory
        schedule = self._schedule
        dropped = []
        for state in schedule.take(newest):
            due = look(state, newest, keep, memory)
            if due is not None:
                schedule.file(state, due)
                continue
            state.due = DROPPED
            dropped.append(state.key)
            if state.last > self._floor:  # a window it had: its newest is the floor
                self._floor = state.last
        if dropped:
            keys = self._keys
            deque(map(keys.__delitem__, dropped), maxlen=0)  # one C loop for what may be many
            self._lifecycle.forget(dropped)
            if len(dropped) > len(keys):
                # A dict keeps its size when keys leave: most left, so the rest are copied
                # close together again.
                self._keys = dict(keys)

    # -- introspection ------------------------------------------------------------------------

    def size(self) -> dict[str, int]:
        """How much the store holds: keys, events, remembered ids, and ring slots (0 for exact
        windows), for memory tests."""
        with self._lock:
            states = self._keys.values()
            return {
                "keys": len(states),
                "events": sum(len(s) for s in states),
                "ids": sum(len(s.ids) for s in states),
                "slots": sum(s._cap for s in states if isinstance(s, RingKey)),
            }

    def _check(self) -> None:
        """Assert the invariants: every structure sound, the id of every event a window can
        still reach remembered."""
        with self._lock:
            keep = self._lateness + self._reach
            self._schedule.check(self._keys.values())
            for key, state in self._keys.items():
                state._check()
                assert len(state.ids) >= state.count(state.last - keep, state.last)
                assert state.first <= state.last or (state.first, state.last) == (
                    NO_FIRST, NEVER)
                assert state.key == key
                # (an id taken ahead of the clock may be newer than its newest event)
                assert state.due <= max(state.last, state.ahead) + self._memory or (
                    state.last == NEVER)
                if isinstance(state, RingKey):
                    # Or all it holds given back (a bucket wider than keep keeps them).
                    assert state.due <= state.last + keep or not state.count(
                        state.last - keep, NO_FIRST)
                elif len(state) > SMALL or state.cap > SMALL:
                    assert state.due <= state.last + keep
