"""One registry of URLs for window stores: a URL picks a backend.

``memory://`` (one process), ``redis://`` and ``rediss://`` (a Redis server, TLS with the
second), ``redis+cluster://`` (a Redis Cluster). Drivers are imported only when their scheme is
used; a missing one raises :class:`~auptimate_core.errors.MissingExtra`.

>>> type(window_store_from_url("memory://")).__name__
'MemoryWindowStore'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..store import WindowStore

SCHEMES = ("memory", "redis", "rediss", "redis+cluster")


def window_store_from_url(url: str, **options: Any) -> WindowStore:
    """The window store ``url`` names; ``options`` go to the store's constructor."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else url.lower()
    if scheme == "memory":
        from .memory import MemoryWindowStore

        return MemoryWindowStore(**options)
    if scheme in ("redis", "rediss", "redis+cluster"):
        from .redis import RedisWindowStore

        store: WindowStore = RedisWindowStore.from_url(url, **options)
        return store
    raise ValueError(
        f"url: {url!r} names no window store; use one of "
        + ", ".join(f"{s}://" for s in SCHEMES)
    )
