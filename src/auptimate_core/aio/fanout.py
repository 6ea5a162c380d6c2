"""From threads to asyncio consumers: :class:`Fanout` hands every item published, from any
thread, to every listener of one event loop.

The library calls back from wherever the work happens: a ledger's subscribers after each
commit, an engine's sinks for each alert, sometimes from a worker thread. A web server wants
those items in its event loop, once per connected client. ``Fanout.publish`` is such a
callback; ``Fanout.listen()`` is one client's stream.

Each listener has a bounded queue (``maxsize``). A listener that falls that far behind is
dropped: it gets what was queued before, then :class:`Overflow`, and the others go on
unslowed. For the ledger, a dropped client resumes from its last cursor (the change feed holds
everything); for alerts, what it missed is gone, as for any subscriber.

>>> import asyncio
>>> async def main() -> list[str]:
...     fanout: Fanout[str] = Fanout()
...     async with fanout.listen() as events:
...         fanout.publish("a")
...         fanout.publish("b")
...         return [await anext(events), await anext(events)]
>>> asyncio.run(main())
['a', 'b']
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

from ..errors import AuptimateError

T = TypeVar("T")

__all__ = ["Fanout", "Listener", "Overflow", "call_in_loop"]


class Overflow(AuptimateError):
    """A listener fell ``maxsize`` items behind and was dropped; it missed what came after."""


def call_in_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., object],
                 *args: Any) -> None:
    """``callback(*args)`` on ``loop``'s thread: at once when called from there, else as soon
    as the loop runs; nothing once the loop has closed. Callable from any thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback(*args)
    else:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(callback, *args)


class Listener(Generic[T]):
    """One consumer of a :class:`Fanout`: an async iterator of the items published since it
    was made, and an async context manager that closes it. Made by :meth:`Fanout.listen`."""

    def __init__(self, fanout: Fanout[T], maxsize: int) -> None:
        self._fanout = fanout
        self._maxsize = maxsize
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._overflow = False
        self._closed = False

    def _push(self, item: T) -> None:
        if len(self._items) >= self._maxsize:
            self._overflow = True
            self._fanout._drop(self)
        else:
            self._items.append(item)
        self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._overflow:
                raise Overflow(f"this listener fell {self._maxsize} items behind and was "
                               "dropped")
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        """Stop receiving; the iteration ends once what is queued has been read."""
        self._closed = True
        self._fanout._drop(self)
        self._ready.set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Fanout(Generic[T]):
    """Items published from any thread, delivered to every :class:`Listener` of the event loop
    the first listener was made in. ``maxsize`` is each listener's queue bound (see the module
    notes). Publishing with no listener drops the item.
    """

    def __init__(self, *, maxsize: int = 1_000) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize: must be an int of at least 1, not {maxsize!r}")
        self.maxsize = maxsize
        self._listeners: tuple[Listener[T], ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None

    def listen(self, maxsize: int | None = None) -> Listener[T]:
        """A new listener, receiving what is published from now on (call it in the event
        loop; ``maxsize`` overrides the fanout's)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed() and self._listeners:
                raise RuntimeError("this Fanout delivers to another event loop")
            self._loop = loop
        listener = Listener(self, self.maxsize if maxsize is None else maxsize)
        self._listeners = (*self._listeners, listener)
        return listener

    def publish(self, item: T) -> None:
        """Deliver ``item`` to every listener. Callable from any thread: from the event loop's
        own it is delivered before returning, from another one as soon as the loop runs.
        Usable as a ledger subscriber or an engine sink."""
        if self._loop is not None and self._listeners:
            call_in_loop(self._loop, self._deliver, item)

    def __call__(self, item: T) -> None:
        self.publish(item)

    @property
    def listeners(self) -> int:
        """How many listeners receive what is published."""
        return len(self._listeners)

    def _deliver(self, item: T) -> None:
        for listener in self._listeners:
            listener._push(item)

    def _drop(self, listener: Listener[T]) -> None:
        self._listeners = tuple(other for other in self._listeners if other is not listener)
