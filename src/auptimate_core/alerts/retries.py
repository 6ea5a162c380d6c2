"""The names an engine decides its batches under, and the batches whose call failed, kept so
that a retry with the same transactions is decided under the same name (see
:class:`~auptimate_core.alerts.engine.AlertEngine`: the store then answers it as the first
time, and the sinks receive each alert once).

>>> log = RetryLog("e1")
>>> log.tag(), log.tag()
('e1.0', 'e1.1')
>>> log.fail(("t1",), "e1.0")
>>> bool(log.failed), log.find(("t1",)).tag
(True, 'e1.0')
>>> log.succeeded(("t1",)); bool(log.failed)
False
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from .alert import Alert

REMEMBERED = 64  # failed batches remembered for a retry


class Unfinished:
    """A batch whose call failed: the name it was decided under, and the alerts its sinks
    already received."""

    __slots__ = ("delivered", "tag")

    def __init__(self, tag: str, delivered: list[Alert]) -> None:
        self.tag = tag
        self.delivered = delivered


class RetryLog:
    """An engine's batch names (``name.0``, ``name.1``, ...) and its failed batches by their
    transaction ids, the :data:`REMEMBERED` newest. Not thread-safe: the engine locks.

    ``failed`` (read it, never change it) is empty unless a failed batch waits for its retry:
    a dict, so that the engine's test of it at every call costs no Python call."""

    __slots__ = ("_counter", "failed", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._counter = itertools.count()
        self.failed: OrderedDict[tuple[str, ...], Unfinished] = OrderedDict()

    def tag(self) -> str:
        """A new batch's name."""
        return f"{self.name}.{next(self._counter)}"

    def find(self, ids: tuple[str, ...]) -> Unfinished | None:
        """The failed batch of these transaction ids, if one is remembered."""
        return self.failed.get(ids)

    def succeeded(self, ids: tuple[str, ...]) -> None:
        """A remembered batch was decided again and its call returned: forget it."""
        del self.failed[ids]

    def fail(self, ids: tuple[str, ...], tag: str) -> None:
        """A batch of one call failed before its sinks received anything."""
        self.remember([(ids, Unfinished(tag, []))])

    def remember(self, batches: list[tuple[tuple[str, ...], Unfinished]]) -> None:
        """Keep the names of a failed call's batches (those done included: the caller never
        got their alerts) for a retry with the same transactions."""
        failed = self.failed
        for ids, record in batches:
            if not ids:
                continue
            failed[ids] = record
            failed.move_to_end(ids)
        while len(failed) > REMEMBERED:
            failed.popitem(last=False)
