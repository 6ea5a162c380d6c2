"""Per-round numpy helpers of the columnar windows: sorts by key and running maxima per key.

A round of :class:`~auptimate_core.windows.columnar.ColumnarWindows` is a slice of a batch,
its events numbered by arrival. Questions such as "the newest event of this event's key before
it" are answered for the whole round at once: a stable sort by key code, then one
``maximum.accumulate`` over ``code << PACK | value``, which cannot carry a value from one key to
the next since the code dominates. Every function is ``O(m)`` or ``O(m log m)`` in numpy for a
round of ``m`` events.

>>> import numpy as np
>>> c = np.array([1, 0, 1, 1], np.int64)
>>> running_max_before(c, by_key(c), np.array([5, 9, 3, 7], np.int64)).tolist()[2:]
[5, 5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .composites import MASK, NEVER, NO_FIRST, SPAN

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

PACK = 42  # shift for the grouped running max: code above, a 42-bit value below
PACK_MASK = (1 << PACK) - 1


def by_key(c: Ints) -> Ints:
    """A stable sort of the events by key (a radix sort while the codes fit 16 bits)."""
    if len(c) and int(c.max()) < 1 << 16:
        return np.argsort(c.astype(np.uint16), kind="stable")
    return np.argsort(c, kind="stable")


def by_composite(comp: Ints, order: Ints) -> Ints:
    """A stable sort of the events by composite: ``order`` (the sort by key) itself when each
    key's events came in time order (the usual batch), else a sort of its own."""
    ranked = comp[order]
    if bool(np.all(ranked[1:] >= ranked[:-1])):
        return order
    return np.argsort(comp, kind="stable")


def running_max_before(c: Ints, order: Ints, values: Ints) -> Ints:
    """For each event, the largest of ``values`` (each in ``[-1, SPAN)``) over the events of
    its key before it (``order`` sorts by key, stably), or :data:`NEVER` if none."""
    cs = c[order]
    packed = (cs << PACK) | (values[order] + 1)
    best = np.maximum.accumulate(packed)
    before = np.empty_like(best)
    before[0] = 0
    before[1:] = best[:-1]
    fresh = np.ones(len(cs), np.bool_)
    fresh[1:] = cs[1:] != cs[:-1]
    value = (before & PACK_MASK) - 1
    out = np.empty(len(c), np.int64)
    out[order] = np.where(fresh | (value < 0), NEVER, value)
    return out


def newest_before(
    c: Ints, order: Ints, rel: Ints, skip: Flags | None, stored: Ints, base: int
) -> Ints:
    """Each event's key's newest event time before it (absolute, :data:`NEVER` if none): the
    key's ``stored`` newest or an earlier event of the round, except those ``skip`` marks."""
    values = np.clip(rel, -1, MASK)
    if skip is not None:
        values[skip] = -1
    before = running_max_before(c, order, values)
    newest: Ints = np.maximum(stored, np.where(before == NEVER, NEVER, before + base))
    return newest


def store_newest_before(t: Ints, new: Flags, stored: int) -> Ints:
    """The store's newest event time before each event: ``stored`` (before the round), or the
    latest ``new`` event before it in the round."""
    running = np.maximum.accumulate(np.where(new, t, stored))
    before: Ints = np.empty_like(running)
    before[0] = stored
    before[1:] = np.maximum(running[:-1], stored)
    return before


def earliest_new(c: Ints, order: Ints, rel: Ints, new: Flags, base: int) -> Ints:
    """For each event, the earliest time of a ``new`` event of its key up to it in the round
    (itself included), or :data:`NO_FIRST` if none."""
    cs = c[order]
    value = np.where(new, SPAN - rel, 0)[order]  # the largest is the earliest new event
    best = np.maximum.accumulate((cs << PACK) | value) & PACK_MASK
    earliest = np.empty(len(c), np.int64)
    earliest[order] = np.where(best > 0, base + SPAN - best, NO_FIRST)
    return earliest


def classify(hits: dict[int, int], lower: Ints, upper: Ints, memory: int, dup: Flags) -> int:
    """Mark in ``dup`` the held ids (``hits``: position -> the time the id was recorded at for
    the same key) that are duplicates; returns the first that cannot be decided in bulk (or
    ``len``).

    A held id is a duplicate while its key's newest event is less than ``memory`` past the time
    it was recorded at (always, while the key has none). The events before it in the round may
    move that newest: it lies between ``lower`` and ``upper``. Where the two disagree, the hit
    is left to a round of its own."""
    for i in sorted(hits):
        recorded = hits[i]
        if recorded > int(upper[i]) - memory:
            dup[i] = True
        elif recorded > int(lower[i]) - memory:
            return i
    return len(dup)


def may_repeat(h: Ints) -> bool:
    """False where the ids of hashes ``h`` are certainly all different (no two hashes equal):
    a sort in numpy instead of a set of the ids."""
    ranked = np.sort(h)
    return bool(np.any(ranked[1:] == ranked[:-1]))


def first_repeat(ids: Sequence[str]) -> int:
    """The place of the first id seen before in ``ids`` (or ``len``)."""
    seen: set[str] = set()
    for i, event_id in enumerate(ids):
        if event_id in seen:
            return i
        seen.add(event_id)
    return len(ids)


def either(a: Flags | None, b: Flags | None) -> Flags | None:
    """``a | b``, where ``None`` marks nothing."""
    if a is None:
        return b
    return a if b is None else a | b


def head(flags: Flags | None, n: int) -> Flags | None:
    """The first ``n`` flags (``None`` stays ``None``)."""
    return None if flags is None else flags[:n]
