"""The queues a :class:`~auptimate_core.alerts.delivery.Dispatcher` keeps for its background
sinks, one lane per sink, and the turn order its worker serves them in.

A lane holds its sink's alerts in the order they were submitted. The head stays queued while
it is attempted and until it is delivered or given up on, so a failing alert holds back its
own sink's later alerts and no other sink's. The worker takes the lanes round robin, passing
over a lane whose head waits for its retry time. Lanes are not locked: the dispatcher uses
them under its own lock only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from .alert import Alert
from .sinks import BackgroundSink

__all__ = ["Lane", "earliest_due", "next_due"]


class Lane:
    """One background sink's queue: ``jobs`` (the head first), ``attempts`` made on the head,
    and ``due``, the monotonic time before which the head is not tried again. Not safe to
    share between threads without a lock around it.

    >>> from auptimate_core.alerts.sinks import BackgroundCall
    >>> lane = Lane(BackgroundCall(print, name="printer"))
    >>> lane.name, len(lane.jobs), lane.attempts
    ('printer', 0, 0)
    """

    __slots__ = ("attempts", "due", "jobs", "name", "sink")

    def __init__(self, sink: BackgroundSink) -> None:
        self.sink = sink
        self.name = sink.name
        self.jobs: deque[Alert] = deque()
        self.attempts = 0
        self.due = 0.0

    def finish_head(self) -> None:
        """Drop the head (delivered or given up on); the next alert starts afresh."""
        self.jobs.popleft()
        self.attempts = 0
        self.due = 0.0

    def take_all(self) -> list[tuple[Alert, int]]:
        """Empty the lane: each queued alert with the attempts made on it (only the head's
        can be more than 0)."""
        taken = [(alert, self.attempts if i == 0 else 0) for i, alert in enumerate(self.jobs)]
        self.jobs.clear()
        self.attempts = 0
        return taken


def next_due(lanes: Sequence[Lane], turn: int, now: float) -> int | None:
    """The index of the first lane, from ``turn`` on and wrapping round, with a head due at
    ``now``; None when no lane has one. O(len(lanes))."""
    count = len(lanes)
    for step in range(count):
        i = (turn + step) % count
        lane = lanes[i]
        if lane.jobs and lane.due <= now:
            return i
    return None


def earliest_due(lanes: Iterable[Lane]) -> float | None:
    """The earliest time a queued head falls due; None when every lane is empty."""
    return min((lane.due for lane in lanes if lane.jobs), default=None)
