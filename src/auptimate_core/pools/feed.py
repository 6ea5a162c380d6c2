"""Reading a ledger's change feed: pages of changes, the current cursor, and following.

The feed and its cursors are described in :mod:`.changes`; what each call promises is on
:class:`~auptimate_core.PoolLedger` (``changes``, ``cursor``, ``follow``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from ..errors import ValidationError
from .changes import Change, Recorded, check_limit, decode_cursor, encode_cursor
from .parts import Parts
from .repository import LedgerRepository, LedgerSession

WAIT_SLICE = 30.0
"""Seconds a follower without a timeout waits before reading the feed again anyway."""


class Pace:
    """When a follower of the feed reads next: the waiting and the timeout of every follow loop
    (the sync one here, the asyncio one in :mod:`auptimate_core.aio.ledger`), free of I/O.

    ``timeout`` is the seconds without anything new after which following ends (``None``: never),
    ``batch`` the most changes one read returns; ``now`` is the monotonic clock.

    >>> pace = Pace(timeout=5.0, batch=2, now=lambda: 0.0)
    >>> pace.after(2), pace.after(1), pace.after(0)  # a full read, then caught up
    (0.0, 5.0, 5.0)
    >>> Pace(timeout=0.0, batch=2).after(1) is None  # caught up, no time left: stop
    True
    """

    def __init__(self, timeout: float | None, batch: int,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._batch = batch
        self._now = now
        self._idle_since = now()

    def after(self, found: int) -> float | None:
        """After a read that found ``found`` changes (all handed on): ``0.0`` to read again at
        once (a full read: more may be waiting), else how many seconds to wait for a wake-up
        before reading again (at most :data:`WAIT_SLICE`), or ``None`` to stop (``timeout``
        seconds have passed since anything new)."""
        now = self._now()
        if found:
            self._idle_since = now
        if found >= self._batch:
            return 0.0
        if self._timeout is None:
            return WAIT_SLICE
        left = self._timeout - (now - self._idle_since)
        return None if left <= 0 else min(left, WAIT_SLICE)


def _position(session: LedgerSession, after: str | None, identity: str) -> int:
    return 0 if after is None else decode_cursor(after, identity, session.feed_head())


def _read(repository: LedgerRepository, after: int, limit: int) -> list[Recorded]:
    return repository.read(lambda session: session.changes(after, limit))


def _change(recorded: Recorded, identity: str) -> Change:
    return Change(recorded.event, recorded.at, encode_cursor(identity, recorded.position))


class Feed:
    """The change feed of one ledger (thread-safe; each iterator of :meth:`follow` is for one
    thread)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    def changes(self, after: str | None, limit: int, actor: str | None) -> list[Change]:
        check_limit(limit)
        self._parts.policy.check_read_all(actor, "read_changes")
        repository = self._parts.repository
        identity = repository.identity

        def body(session: LedgerSession) -> list[Recorded]:
            return session.changes(_position(session, after, identity), limit)

        return [_change(recorded, identity) for recorded in repository.read(body)]

    def cursor(self, actor: str | None) -> str:
        self._parts.policy.check_read_all(actor, "read_changes")
        repository = self._parts.repository
        return encode_cursor(repository.identity, repository.read(lambda s: s.feed_head()))

    def follow(self, after: str | None, timeout: float | None, actor: str | None,
               batch: int) -> Iterator[Change]:
        """Check the arguments and the cursor now; return the iterator that follows."""
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, int | float)
                                    or not 0 <= timeout < math.inf):
            raise ValidationError("timeout", "must be None (for ever) or a finite number of "
                                  f"seconds >= 0, not {timeout!r}")
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 10_000:
            raise ValidationError("batch", f"must be an int from 1 to 10,000, not {batch!r}")
        self._parts.policy.check_read_all(actor, "read_changes")
        repository = self._parts.repository
        identity = repository.identity
        start = repository.read(lambda s: _position(s, after, identity))
        return self._follow(start, None if timeout is None else float(timeout), batch)

    def _follow(self, position: int, timeout: float | None, batch: int) -> Iterator[Change]:
        repository = self._parts.repository
        identity = repository.identity
        # Listening starts before the first read: a commit after that read always wakes us.
        watch = repository.watch()
        try:
            pace = Pace(timeout, batch)
            while True:
                found = _read(repository, position, batch)
                for recorded in found:
                    yield _change(recorded, identity)
                if found:
                    position = found[-1].position
                wait = pace.after(len(found))
                if wait is None:
                    return
                if wait:
                    # Caught up: whatever commits next wakes the watch, listening since before
                    # the first read.
                    watch.wait(position, wait)
        finally:
            watch.close()
