"""Reading a ledger's change feed: pages of changes, the current cursor, and following.

The feed and its cursors are described in :mod:`.changes`; what each call promises is on
:class:`~auptimate_core.PoolLedger` (``changes``, ``cursor``, ``follow``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from ..errors import ValidationError
from .changes import Change, Recorded, check_limit, decode_cursor, encode_cursor
from .parts import Parts
from .repository import LedgerRepository, LedgerSession

WAIT_SLICE = 30.0
"""Seconds a follower without a timeout waits before reading the feed again anyway."""


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
            idle_since = time.monotonic()
            while True:
                found = _read(repository, position, batch)
                for recorded in found:
                    yield _change(recorded, identity)
                if found:
                    position = found[-1].position
                    idle_since = time.monotonic()
                if len(found) == batch:
                    continue  # more may be waiting
                # Caught up: whatever commits next wakes the watch, which was listening first.
                if timeout is None:
                    watch.wait(position, WAIT_SLICE)
                    continue
                left = timeout - (time.monotonic() - idle_since)
                if left <= 0:
                    return
                watch.wait(position, min(left, WAIT_SLICE))
        finally:
            watch.close()
