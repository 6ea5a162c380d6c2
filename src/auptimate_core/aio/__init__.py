"""asyncio for the ledger, the engine and the live feed: thin shells over the same decisions.

- :class:`AsyncPoolLedger`: a :class:`~auptimate_core.PoolLedger` whose calls are awaited,
  in memory or on SQL (``sqlite+aiosqlite://``, ``postgresql+psycopg://``), with
  ``async for change in ledger.follow(after=cursor)`` and batches (:class:`AsyncBatch`);
- :class:`AsyncAlertEngine`: an :class:`~auptimate_core.AlertEngine` whose calls are awaited,
  on an in-process store (:class:`AsyncLocalWindowStore`) or on Redis
  (:class:`~auptimate_core.backends.redis_async.AsyncRedisWindowStore`);
- :class:`Fanout`: events from any thread to many asyncio consumers (a ledger's subscribers,
  an engine's alerts), and :func:`change_stream` / :func:`event_stream` for server-sent events;
- :func:`http_status` and :func:`problem`: the library's errors as HTTP answers.

Each class runs the sync class's own code (see :mod:`auptimate_core.aio.greenlets` for how):
there is one copy of every rule, and the same contract suites run on both. The names are
imported on first use, so ``import auptimate_core.aio`` loads no driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import AsyncBatch
    from .engine import AsyncAlertEngine
    from .fanout import Fanout, Overflow
    from .ledger import AsyncPoolLedger
    from .sse import change_stream, event_stream, sse_message
    from .status import http_status, problem
    from .storage import LedgerStorage, MemoryStorage
    from .stores import AsyncLocalWindowStore, AsyncWindowStore, window_store_from_url

_MODULES = {
    "batch": ("AsyncBatch",),
    "engine": ("AsyncAlertEngine",),
    "fanout": ("Fanout", "Overflow"),
    "ledger": ("AsyncPoolLedger",),
    "sse": ("change_stream", "event_stream", "sse_message"),
    "status": ("http_status", "problem"),
    "storage": ("LedgerStorage", "MemoryStorage"),
    "stores": ("AsyncLocalWindowStore", "AsyncWindowStore", "window_store_from_url"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "AsyncAlertEngine",
    "AsyncBatch",
    "AsyncLocalWindowStore",
    "AsyncPoolLedger",
    "AsyncWindowStore",
    "Fanout",
    "LedgerStorage",
    "MemoryStorage",
    "Overflow",
    "change_stream",
    "event_stream",
    "http_status",
    "problem",
    "sse_message",
    "window_store_from_url",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
