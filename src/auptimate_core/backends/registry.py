"""A URL picks a backend: window stores and ledger repositories by URL scheme.

Window stores: ``memory://`` (one process), ``redis://``, ``rediss://`` and ``unix://`` (a Redis
server, over TLS with the second, over a local socket with the third), ``redis+cluster://`` (a
Redis Cluster). Ledgers: ``memory://``,
``sqlite:///path.db`` (``sqlite://`` in memory), ``postgresql+psycopg://user@host/db``
(``postgresql://`` means psycopg too). Each scheme's module is imported on first use; a missing
driver raises :class:`~auptimate_core.errors.MissingExtra`, and a URL no backend serves an
:class:`~auptimate_core.errors.InvalidURL` listing the known schemes.

The tables are :data:`~auptimate_core.urls.WINDOW_STORES` and
:data:`~auptimate_core.urls.LEDGER_REPOSITORIES` (see :mod:`auptimate_core.urls`): a new
backend is one entry there, one :meth:`~auptimate_core.urls.Registry.register` call, or an
entry point of another package.

``memory://?window=ring`` (or ``exact``) picks the memory store's window structure;
``memory://?window=columnar`` is the columnar store (``memory+columnar://``).

>>> type(window_store_from_url("memory://")).__name__
'MemoryWindowStore'
>>> window_store_from_url("memory://?window=ring").window
'ring'
>>> type(ledger_repository_from_url("sqlite://")).__name__
'SqlLedgerRepository'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import InvalidURL
from ..urls import LEDGER_REPOSITORIES, WINDOW_STORES, redact

if TYPE_CHECKING:  # the pools package is not imported to open a window store
    from ..pools.repository import LedgerRepository
    from ..store import WindowStore

__all__ = ["LEDGER_REPOSITORIES", "WINDOW_STORES", "ledger_repository_from_url",
           "memory_window_store", "window_store_from_url"]


def window_store_from_url(url: str, **options: Any) -> WindowStore:
    """The window store ``url`` names; ``options`` go to the store's constructor."""
    store: WindowStore = WINDOW_STORES.open(url, **options)
    return store


def ledger_repository_from_url(url: str, **options: Any) -> LedgerRepository:
    """The ledger repository ``url`` names; ``options`` go to its ``from_url`` (for SQL:
    ``schema``, ``create``, ``retries``, ``engine_options``, ``poll_interval``)."""
    repository: LedgerRepository = LEDGER_REPOSITORIES.open(url, **options)
    return repository


def memory_window_store(url: str, **options: Any) -> WindowStore:
    """A :class:`~auptimate_core.backends.memory.MemoryWindowStore` for ``memory://``; the
    only URL option is ``window=`` (the window structure), which ``options`` may also give.
    ``window=columnar`` gives a :class:`~auptimate_core.backends.columnar.ColumnarWindowStore`
    (as ``memory+columnar://`` does)."""
    from .memory import MemoryWindowStore

    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    unknown = sorted(set(query) - {"window"})
    if unknown:
        shown = redact(url)
        raise InvalidURL(shown, f"{shown!r}: memory:// takes only a window= option, "
                         f"not {unknown}")
    if "window" in query:
        options.setdefault("window", query["window"][-1])
    if options.get("window") == "columnar":
        from .columnar import ColumnarWindowStore

        del options["window"]
        return ColumnarWindowStore(**options)
    return MemoryWindowStore(**options)
