"""What :class:`~auptimate_core.backends.memory.MemoryWindowStore` keeps per key (its window
structure, ids, newest and first event times, and when its sweep looks at it next), and what it
derives once from the intervals it is asked for."""

from __future__ import annotations

from collections.abc import Sequence

from ..store import Interval
from ..windows.exact import ExactWindow
from ..windows.ring import BucketRing

NEVER = -(1 << 62)
NO_FIRST = 1 << 62  # a key's first event time before it has one in its windows (this very
# object: the store's in-order paths test ``first is NO_FIRST``)
SLACK = 8  # events an exact window may hold past its live ones and a quarter more
SMALL = 2 * SLACK + 2  # an exact window of at most this many events (and of that cap) is small


class ExactKey(ExactWindow):
    """Everything a store keeps for one key, on an exact window. ``cap``: the length its
    times may reach before the events no interval can reach are trimmed."""

    __slots__ = ("ahead", "cap", "due", "first", "id_limit", "ids", "key", "last")

    def __init__(self, key: str, first: int, newest: int) -> None:
        super().__init__()
        self.key = key
        self.due = NEVER  # when the sweep is to look at it next (see MemoryWindowStore._file)
        self.cap = SLACK
        self.ids: dict[str, int] = {}
        self.last = newest  # the key's newest event time
        self.first = first
        self.id_limit = 64
        self.ahead = NEVER  # the newest time an id of an event ahead of the clock was kept at


class RingKey(BucketRing):
    """Everything a store keeps for one key, on a bucket ring."""

    __slots__ = ("ahead", "due", "first", "id_limit", "ids", "key", "last")

    def __init__(self, key: str, first: int, newest: int, width: int, span: int) -> None:
        super().__init__(width, span)
        self.key = key
        self.due = NEVER  # when the sweep is to look at it next (see MemoryWindowStore._file)
        self.ids: dict[str, int] = {}
        self.last = newest  # the key's newest event time
        self.first = first
        self.id_limit = 64
        self.ahead = NEVER  # the newest time an id of an event ahead of the clock was kept at


Key = ExactKey | RingKey


class Shape:
    """What a store derives from the intervals it is asked for, kept while the caller passes
    the same sequence (an engine passes one tuple for ever).

    Two shapes get an inline path for in-order events on exact windows (``two``): the spike
    rule's (0, w) then (w, w + b) (``chained``) and windows that both end now, (0, a) and
    (0, b)."""

    __slots__ = ("chained", "r0", "r1", "reach", "spans", "two")

    def __init__(self, intervals: Sequence[Interval]) -> None:
        self.spans = [(iv.offset, iv.offset + iv.length) for iv in intervals]
        spans = self.spans
        self.reach = max((high for _, high in spans), default=0)
        pair = len(spans) == 2 and spans[0][0] == 0
        self.chained = pair and spans[1][0] == spans[0][1]
        self.two = self.chained or (pair and spans[1][0] == 0)
        self.r0 = spans[0][1] if pair else 0
        self.r1 = spans[1][1] if pair else 0


def cap_of(live: int) -> int:
    """How many events after its start an exact window of ``live`` events may hold before
    its next trim: a quarter more, and SLACK."""
    return live + (live >> 2) + SLACK


def forget_ids(state: Key, horizon: int) -> None:
    """Forget the ids recorded at or before ``horizon`` (past the dedup horizon)."""
    state.ids = {k: v for k, v in state.ids.items() if v > horizon}
    state.id_limit = 2 * len(state.ids) + 64
