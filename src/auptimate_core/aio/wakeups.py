"""The wake-ups of one async ledger's feed followers: :class:`Wakeups`.

A follower reads the feed, and once it has caught up waits for a wake-up, then reads again: a
wake-up carries nothing, the feed stays the only truth. Wake-ups come from two places:

- commits made through the ledger itself (its internal subscriber calls :meth:`Wakeups.notify`,
  from whatever thread the write ran in);
- commits made elsewhere, which the storage's :meth:`~.storage.LedgerStorage.listen` reports
  (one listener per ledger, running while it has followers).

A follower takes a *mark* before it reads and waits on that mark, so a commit between its read
and its wait still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib

from .fanout import call_in_loop
from .storage import LedgerStorage

__all__ = ["Wakeups"]


class Wakeups:
    """Wake-ups for the followers of one ledger on ``storage`` (one event loop's)."""

    def __init__(self, storage: LedgerStorage) -> None:
        self._storage = storage
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._followers = 0
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._failure: Exception | None = None

    def notify(self, *_: object) -> None:
        """The feed may have grown: wake every follower. Callable from any thread (it has
        the signature of a ledger subscriber)."""
        if self._loop is not None and not self._loop.is_closed():
            call_in_loop(self._loop, self._fire)

    def _fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def mark(self) -> asyncio.Event:
        """What to wait on after the next read (see the module notes)."""
        return self._event

    async def wait(self, mark: asyncio.Event, timeout: float) -> None:
        """Return when ``mark`` is set or after ``timeout`` seconds; raise the listener's
        failure if it has stopped on one."""
        if not mark.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mark.wait(), timeout)
        if self._failure is not None:
            raise self._failure

    async def join(self) -> None:
        """A follower starts: make sure the listener runs, and wait until it listens."""
        self._loop = asyncio.get_running_loop()
        self._followers += 1
        if self._listener is None or self._listener.done():
            self._failure = None
            self._ready = ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(ready))
        assert self._ready is not None
        ready_wait = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait((ready_wait, self._listener),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready_wait.cancel()
        if self._failure is not None:
            raise self._failure

    async def leave(self) -> None:
        """A follower ends: stop the listener when it was the last."""
        self._followers -= 1
        if self._followers == 0 and self._listener is not None:
            listener, self._listener = self._listener, None
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, ready: asyncio.Event) -> None:
        try:
            await self._storage.listen(self.notify, ready.set)
        except Exception as error:  # followers raise it (StoreUnavailable, as a rule)
            self._failure = error
            self._fire()
