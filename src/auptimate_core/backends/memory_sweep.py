"""When :class:`~auptimate_core.backends.memory.MemoryWindowStore` looks at a key that may have
gone quiet, and what it does with it then.

:class:`SweepSchedule` files each key by the time it may next need a look, in buckets of a
fixed width with their start times in a heap, so that a sweep visits the keys due a look and no
other: filing is ``O(1)`` (``O(log b)`` when it opens one of ``b`` buckets), and taking the due
keys costs ``O(1)`` per key filed. :func:`look` is what a sweep does with one such key: give
back what it holds, drop it whole, or say when it is due again.

>>> from .memory_keys import ExactKey
>>> schedule = SweepSchedule(slot=10)
>>> a, b = ExactKey("a", 0, 0), ExactKey("b", 0, 0)
>>> schedule.file(a, 12); schedule.file(b, 35); schedule.due
20
>>> [key.key for key in schedule.take(25)], schedule.due
(['a'], 40)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from heapq import heappop, heappush

from .memory_keys import NEVER, NO_FIRST, SLACK, SMALL, ExactKey, Key, forget_ids

DROPPED = 1 << 62
"""The due time of a key no longer held: the sweep skips whatever it filed."""


class SweepSchedule:
    """Keys by the time they are due a look, in buckets of ``slot`` microseconds.

    A key is filed anew by setting its ``due`` and adding it to its bucket; the entry it
    leaves behind in an older bucket is skipped when that bucket is taken (``due`` names the
    one entry that counts). ``due`` is the store's newest event time at which the first
    bucket's every key is due (``NO_FIRST`` while nothing is filed).
    """

    __slots__ = ("buckets", "due", "slot", "starts")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.buckets: dict[int, list[Key]] = {}
        self.starts: list[int] = []  # the buckets' start times, a heap
        self.due = NO_FIRST

    def __bool__(self) -> bool:
        return bool(self.starts)

    def file(self, state: Key, due: int) -> None:
        """Have the first sweep after the store's newest event passes ``due`` look at
        ``state``."""
        state.due = due
        start = due - due % self.slot
        bucket = self.buckets.get(start)
        if bucket is None:
            self.buckets[start] = [state]
            heappush(self.starts, start)
            if start + self.slot < self.due:
                self.due = start + self.slot
        else:
            bucket.append(state)

    def take(self, newest: int) -> Iterator[Key]:
        """The keys of every bucket whose every due time ``newest`` has passed, bucket by
        bucket; each is out of the schedule until it is filed again. A key filed again while
        this runs must be due after ``newest``: one filed into a bucket already due would be
        taken again, for ever."""
        starts, buckets, slot = self.starts, self.buckets, self.slot
        while starts and starts[0] + slot <= newest:
            start = heappop(starts)
            for state in buckets.pop(start):
                due = state.due
                if due - due % slot == start:  # else filed again since, or dropped
                    yield state
        self.due = starts[0] + slot if starts else NO_FIRST

    def check(self, states: Iterable[Key]) -> None:
        """Assert that the buckets and the heap agree and that every key of ``states`` is in
        the bucket its ``due`` names."""
        assert sorted(self.starts) == sorted(self.buckets)
        slot = self.slot
        filed = {(start, id(state)) for start, held in self.buckets.items() for state in held}
        for state in states:
            assert (state.due - state.due % slot, id(state)) in filed


def look(state: Key, newest: int, keep: int, memory: int) -> int | None:
    """What a sweep at the store's newest event time ``newest`` does with a key due a look:
    ``None`` to drop it whole, else the time it is next due one.

    ``keep`` is how long an event can be reached behind a key's newest (the allowed lateness
    and the longest interval), ``memory`` how long ids are remembered. A key whose newest
    event is older than ``newest - keep`` gives back its events and its newest moves up by
    ``keep``, so that an event of it old enough to need them is ``LATE``; one quiet for longer
    than ``memory`` holds nothing anyone can ask for and is dropped, unless it kept the id of
    an event ahead of the clock more recently (``ahead``): it is kept for that id's horizon.
    A key with only ids of events kept out of its windows is measured by its newest id.
    """
    last = state.last
    if last == NEVER:
        last = max(state.ids.values(), default=NEVER)
        # Nothing to give back, only ids to forget: due when it may be dropped (``last`` may
        # lie more than ``keep`` behind ``newest``, so ``last + keep`` may be due already).
        return None if last < newest - memory else last + memory
    recent = state.ahead  # kept at the caller's clock: may be newer than every event it holds
    if last < newest - memory:
        if recent < newest - memory:
            return None
    elif last >= newest - keep:
        if isinstance(state, ExactKey) and state.cap <= SMALL and (
                len(state._times) - state._start <= SMALL):
            return last + memory  # a small window, nothing to give back before it is dropped
        return last + keep
    if isinstance(state, ExactKey):
        if state._start < len(state._times):
            # Every event it holds is at or before ``last``: all given back, the window
            # left as a new one (what trim(last) would leave).
            last = state.last = last + keep
            state.clear()
            state.cap = SLACK
        held = 0
    else:
        if len(state):
            last = state.last = last + keep
            state.trim(last)
        held = len(state)
    if len(state.ids) > 2 * held + 64:
        forget_ids(state, last - memory)
    # (A ring trims whole buckets: one wider than ``keep`` may still hold given-back events,
    # which no event it accepts can reach, until new buckets push it out or it is dropped.)
    return max(last, recent) + memory
