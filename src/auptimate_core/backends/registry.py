"""One registry of URLs for window stores: a URL picks a backend.

``memory://`` (one process), ``redis://`` and ``rediss://`` (a Redis server, TLS with the
second), ``redis+cluster://`` (a Redis Cluster). Drivers are imported only when their scheme is
used; a missing one raises :class:`~auptimate_core.errors.MissingExtra`.

``memory://?window=columnar`` (or ``ring``) picks the memory store's window structure.

>>> type(window_store_from_url("memory://")).__name__
'MemoryWindowStore'
>>> window_store_from_url("memory://?window=ring").window
'ring'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..store import WindowStore

SCHEMES = ("memory", "redis", "rediss", "redis+cluster")


def window_store_from_url(url: str, **options: Any) -> WindowStore:
    """The window store ``url`` names; ``options`` go to the store's constructor."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else url.lower()
    if scheme == "memory":
        from .memory import MemoryWindowStore

        query = parse_qs(urlsplit(url).query) if "://" in url else {}
        unknown = sorted(set(query) - {"window"})
        if unknown:
            raise ValueError(f"url: memory:// takes only a window= option, not {unknown}")
        if "window" in query:
            options.setdefault("window", query["window"][-1])
        return MemoryWindowStore(**options)
    if scheme in ("redis", "rediss", "redis+cluster"):
        from .redis import RedisWindowStore

        store: WindowStore = RedisWindowStore.from_url(url, **options)
        return store
    raise ValueError(
        f"url: {url!r} names no window store; use one of "
        + ", ".join(f"{s}://" for s in SCHEMES)
    )
