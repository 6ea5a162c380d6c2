"""Where an :class:`~auptimate_core.aio.AsyncPoolLedger` keeps everything: a
:class:`LedgerStorage`, which holds a sync :class:`~auptimate_core.pools.LedgerRepository` and
says how calls on it are awaited.

The ledger's own code (its commands, reads, feed and audit: every rule) runs unchanged on the
storage's ``repository``; the storage only decides where that code runs. In memory it runs on
the loop's thread once the loop has had a turn: nothing waits on I/O, and each call holds the
event loop for as long as the same call takes on :class:`~auptimate_core.PoolLedger`. On SQL
it runs in a greenlet over SQLAlchemy's asyncio drivers (:mod:`auptimate_core.aio.sql`), and
the loop runs other tasks while it waits on the database.

A storage also tells followers of the change feed when another process may have committed
(:meth:`LedgerStorage.listen`); commits made through the ledger itself wake its followers at
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..pools.changes import check_interval
from ..pools.memory import MemoryLedgerRepository
from ..pools.repository import LedgerRepository, LedgerSession

T = TypeVar("T")

__all__ = ["LedgerStorage", "MemoryStorage", "feed_head", "poll_head"]


class LedgerStorage(Protocol):
    """What an async ledger needs of its storage."""

    @property
    def repository(self) -> LedgerRepository:
        """The sync repository the ledger's code runs on, inside :meth:`read` and
        :meth:`write` (on SQL it reaches the database only there)."""

    async def open(self) -> None:
        """Connect and make what is missing (tables, the ledger's identity); at most once.
        :meth:`read` and :meth:`write` open the storage first if need be."""

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)``, ledger code that only reads."""

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)``, ledger code that writes. Once started it runs to its
        end even if the awaiting task is cancelled (the write commits or is refused as if it
        had been awaited)."""

    async def listen(self, wake: Callable[[], None], ready: Callable[[], None]) -> None:
        """Until cancelled, call ``wake()`` whenever the feed may have grown through a commit
        made elsewhere (another process, another ledger object); ``ready()`` once listening,
        so that a commit after it always wakes. Raises
        :class:`~auptimate_core.errors.StoreUnavailable` when it cannot go on."""

    async def aclose(self) -> None:
        """Release connections (the storage is not used afterwards)."""


def feed_head(repository: LedgerRepository) -> int:
    """The position of the last change in ``repository``'s feed (sync ledger code)."""
    return repository.read(_head)


def _head(session: LedgerSession) -> int:
    return session.feed_head()


async def poll_head(storage: LedgerStorage, interval: float, wake: Callable[[], None],
                    ready: Callable[[], None]) -> None:
    """:meth:`LedgerStorage.listen` by reading the feed's head every ``interval`` seconds."""
    head = await storage.read(feed_head, storage.repository)
    ready()
    while True:
        await asyncio.sleep(interval)
        now = await storage.read(feed_head, storage.repository)
        if now != head:
            head = now
            wake()


class MemoryStorage:
    """A :class:`~auptimate_core.pools.MemoryLedgerRepository` (a new one by default), called on
    the loop's thread. Each call first gives the loop a turn, so a task awaiting many calls in a
    row lets the others run between them; writes also take turns (in arrival order, one per
    turn of the loop), so many writes gathered at once hold the loop for one write at a time,
    not for all of them back to back.
    ``poll_interval`` is how often (seconds) a followed ledger looks for commits made through
    other ledger objects on the same repository (its own wake its followers at once).
    """

    def __init__(self, repository: MemoryLedgerRepository | None = None, *,
                 poll_interval: float = 0.05) -> None:
        check_interval(poll_interval)
        self._repository = MemoryLedgerRepository() if repository is None else repository
        self.poll_interval = poll_interval
        self._turns = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStorage:
        """Storage for ``memory://`` (``poll_interval`` is its only option)."""
        interval = options.pop("poll_interval", 0.05)
        return cls(MemoryLedgerRepository.from_url(url, **options), poll_interval=interval)

    @property
    def repository(self) -> MemoryLedgerRepository:
        return self._repository

    async def open(self) -> None:
        pass

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        await asyncio.sleep(0)
        return fn(*args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._turns:
            # Holding the turn across this yield makes the writes gathered with this one
            # wait for it, so each runs in a turn of the loop of its own. Cancelled here,
            # nothing was written.
            await asyncio.sleep(0)
            return fn(*args, **kwargs)

    async def listen(self, wake: Callable[[], None], ready: Callable[[], None]) -> None:
        await poll_head(self, self.poll_interval, wake, ready)

    async def aclose(self) -> None:
        self._repository.close()
