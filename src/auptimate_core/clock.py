"""Clocks: time is injected, never read from the system inside the domain.

>>> from datetime import datetime, timedelta, timezone
>>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> clock.advance(timedelta(minutes=5)).isoformat()
'2026-01-01T00:05:00+00:00'
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now()`` returning a timezone-aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC. Safe to share between threads."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; for tests and replays. Thread-safe."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start: a timezone-aware datetime is required")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("moment: a timezone-aware datetime is required")
        with self._lock:
            self._now = moment
        return moment

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now
