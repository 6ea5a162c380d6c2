"""Running the library's sync code on the event loop: :func:`run_sync` and :func:`wait`.

The sync code (the ledger's commands, the engine, the Redis store) runs unchanged in a greenlet
started by :func:`run_sync`; wherever it reaches I/O, the driver underneath is an asyncio one
and :func:`wait` hands the awaitable to the event loop, which runs other tasks until it is
done, then switches back. This is how SQLAlchemy's asyncio extension runs its whole sync core on
asyncio drivers, and these two functions are its own (``greenlet_spawn`` and ``await_``).

Sync code holds locks of the :mod:`threading` module across I/O. In a greenlet the I/O lets
other greenlets of the same thread run, and a second greenlet blocking on a lock the first
holds would block the event loop's thread for good; so every caller of :func:`run_sync` in this
package lets one greenlet at a time into an object whose locks are held across I/O (an
:class:`asyncio.Lock` around the call, see :class:`Serial`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import Any, TypeVar

from ..errors import MissingExtra

try:
    from sqlalchemy.util import greenlet_spawn
    from sqlalchemy.util.concurrency import await_only
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "aio") from error
if find_spec("greenlet") is None:  # pragma: no cover - sqlalchemy imports it only on first use
    raise MissingExtra("greenlet", "aio")

T = TypeVar("T")

__all__ = ["Serial", "run_sync", "wait"]


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Await ``fn(*args, **kwargs)`` run in a greenlet, where :func:`wait` may be called."""
    return await greenlet_spawn(fn, *args, **kwargs)


def wait(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited on the event loop, from sync code that
    :func:`run_sync` runs (anywhere else it raises ``sqlalchemy.exc.MissingGreenlet``)."""
    return await_only(awaitable)


class Serial:
    """One caller at a time into an object whose sync code holds locks across I/O.

    ``await serial.run(fn, *args)`` runs ``fn`` in a greenlet (:func:`run_sync`) once the
    callers before it have finished. The wait is an :class:`asyncio.Lock`, fair in arrival
    order (it binds to a loop only when a caller waits, so a ``Serial`` may be made before the
    loop runs).
    """

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self.lock:
            return await greenlet_spawn(fn, *args, **kwargs)
