"""Storage URLs: which backend a URL names, one :class:`Registry` per kind of storage.

A URL picks a backend the same way everywhere (the command line, the examples, a host
application's settings). Each kind of storage has a registry mapping URL schemes to
``"module:attribute"``, where the attribute is a callable taking the URL and the caller's
options and returning the backend:

- :data:`WINDOW_STORES` (``memory://``, ``redis://``, ``rediss://``, ``redis+cluster://``,
  ``unix://`` for a Redis server's socket),
  opened by :func:`auptimate_core.backends.registry.window_store_from_url`;
- :data:`LEDGER_REPOSITORIES` (``memory://``, ``sqlite:///...``, ``postgresql+psycopg://...``,
  ``mysql+pymysql://...`` and ``mariadb+pymysql://...``),
  opened by :meth:`auptimate_core.PoolLedger.from_url` and
  :func:`auptimate_core.backends.registry.ledger_repository_from_url`;
- :data:`ASYNC_LEDGER_STORAGES` and :data:`ASYNC_WINDOW_STORES`, the same schemes for
  :mod:`auptimate_core.aio` (``sqlite+aiosqlite://`` too), opened by
  :meth:`auptimate_core.aio.AsyncPoolLedger.from_url` and
  :func:`auptimate_core.aio.window_store_from_url`.

A backend's module is imported only when its scheme is first used, so this module imports no
backend and no driver; a driver that is not installed is a
:class:`~auptimate_core.errors.MissingExtra` naming the extra to install. A URL that is not one,
or whose scheme no backend serves, is an :class:`~auptimate_core.errors.InvalidURL` naming the
URL (password hidden) and the known schemes.

Another package adds a backend with an entry point in its own ``pyproject.toml``; the entry's
name is the scheme and its value the callable::

    [project.entry-points."auptimate_core.window_stores"]
    mystore = "mypackage.store:MyStore.from_url"

(``auptimate_core.ledger_repositories`` for ledgers). Entry points are read when a scheme is not
otherwise known; they add schemes, and never replace a built-in or a :meth:`Registry.register`
one. The registries live beside the domain rather than under ``backends/`` because
:meth:`~auptimate_core.PoolLedger.from_url` reads one, and nothing in the domain imports a
module of ``backends/``.

>>> LEDGER_REPOSITORIES.scheme("postgresql+psycopg://app@db.example/pools")
'postgresql+psycopg'
>>> redact("redis://:s3cret@cache:6379/0")
'redis://:***@cache:6379/0'
>>> WINDOW_STORES.open("mongodb://db")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
auptimate_core.errors.InvalidURL: url: 'mongodb://db' names no window store; known schemes: \
memory://, ...redis://, ...
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from .errors import InvalidURL, MissingExtra

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SCHEME_PREFIX: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_USERINFO: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^/?#:@]*):[^@]*@")
_LOOSE_USERINFO: Final = re.compile(r"([^/?#:@\s]*):[^@\s]*@")
_SECRET_QUERY: Final = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&#]*")


def redact(url: str) -> str:
    """``url`` with the password of its user part, and of a ``password=`` option, as ``***``
    (in text that is not a URL, whatever looks like ``user:password@``)."""
    if _SCHEME_PREFIX.match(url):
        hidden = _USERINFO.sub(r"\1:***@", url)
    else:
        hidden = _LOOSE_USERINFO.sub(r"\1:***@", url)
    return _SECRET_QUERY.sub(r"\1***", hidden)


@attrs.frozen(slots=True)
class Backend:
    """Where a scheme's backend lives: ``target`` is ``"module:attribute"`` (the attribute may
    be dotted, ``"module:Class.from_url"``), a callable ``(url, **options) -> backend``;
    ``extra`` is the package extra its driver comes with (None when it needs none); ``source``
    names who registered it (``"auptimate-core"`` or the distribution of an entry point).

    With ``takes_url=False`` the callable gets the options only (a class of a store in this
    process, say), and a URL with anything after ``scheme://`` is refused.
    """

    target: str = attrs.field()
    extra: str | None = None
    source: str = "auptimate-core"
    takes_url: bool = True

    @target.validator
    def _check(self, _: object, value: str) -> None:
        module, colon, attribute = value.partition(":")
        if not (module and colon and attribute):
            raise ValueError(f"target: expected 'module:attribute', not {value!r}")

    def load(self) -> Callable[..., Any]:
        """Import the module and return the callable (:class:`MissingExtra` without a driver)."""
        module_name, _, attribute = self.target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except MissingExtra as error:
            if self.extra is None or self.extra == error.extra:
                raise
            raise MissingExtra(error.module, self.extra) from error
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if self.extra is None or not missing or module_name.startswith(missing):
                raise
            raise MissingExtra(missing, self.extra) from error
        for part in attribute.split("."):
            found = getattr(found, part)
        if not callable(found):
            raise TypeError(f"{self.target} (from {self.source}) is not callable")
        opener: Callable[..., Any] = found
        return opener


class Registry:
    """The backends of one kind of storage, by URL scheme (see the module notes).

    ``kind`` names the storage in messages (``"window store"``); ``group`` is the entry point
    group other packages register in; ``builtins`` maps schemes to :class:`Backend`. Schemes
    are case-insensitive. Safe to share between threads.
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, Backend]) -> None:
        self.kind = kind
        self.group = group
        self._backends: dict[str, Backend] = {k.lower(): v for k, v in builtins.items()}
        self._lock = threading.Lock()

    def register(self, scheme: str, target: str, *, extra: str | None = None,
                 takes_url: bool = True, replace: bool = False) -> None:
        """Serve ``scheme`` with the callable at ``target`` (``"module:attribute"``; ``extra``
        and ``takes_url`` as in :class:`Backend`).

        A scheme already served is a :class:`ValueError` unless ``replace=True``.
        """
        if not isinstance(scheme, str) or _SCHEME.fullmatch(scheme) is None:
            raise ValueError(f"scheme: {scheme!r} is not a URL scheme (a letter, then letters, "
                             "digits, '+', '-' or '.')")
        backend = Backend(target, extra, "register()", takes_url)
        with self._lock:
            if not replace and scheme.lower() in self._backends:
                raise ValueError(f"scheme: {scheme.lower()}:// already names a {self.kind} "
                                 f"({self._backends[scheme.lower()].target})")
            self._backends[scheme.lower()] = backend

    def schemes(self) -> list[str]:
        """Every scheme served: built in, registered, or by an installed entry point."""
        with self._lock:
            served = set(self._backends)
        return sorted(served | self._entry_points().keys())

    def scheme(self, url: object) -> str:
        """The scheme of ``url`` (lower case), or :class:`InvalidURL` when it is not a URL.

        A bare scheme (``"memory"``) stands for ``memory://``.
        """
        if not isinstance(url, str):
            raise InvalidURL(repr(url), f"a {self.kind} URL is a string such as "
                             f"{self._example()}, not {type(url).__name__}")
        scheme = url.partition("://")[0]
        if _SCHEME.fullmatch(scheme) is None:
            shown = redact(url)[:200]
            raise InvalidURL(shown, f"{shown!r} is not a {self.kind} URL (scheme://...), "
                             f"such as {self._example()}", tuple(self.schemes()))
        try:
            urlsplit(url).port  # noqa: B018 - reading it checks the port
        except ValueError as error:
            shown = redact(url)[:200]
            raise InvalidURL(shown, f"{shown!r} is malformed: {error}",
                             tuple(self.schemes())) from None
        return scheme.lower()

    def backend(self, url: str) -> Backend:
        """The backend serving ``url``'s scheme, or :class:`InvalidURL` naming those known."""
        scheme = self.scheme(url)
        found = self._backends.get(scheme)
        if found is None:
            found = self._entry_points().get(scheme)
        if found is None:
            known = tuple(self.schemes())
            shown = redact(url)[:200]
            raise InvalidURL(shown, f"{shown!r} names no {self.kind}; known schemes: "
                             + ", ".join(f"{s}://" for s in known), known)
        return found

    def open(self, url: str, **options: Any) -> Any:
        """The backend ``url`` names, made by its callable with ``url`` and ``options``."""
        backend = self.backend(url)
        opener = backend.load()
        full = url if "://" in url else f"{url}://"
        if backend.takes_url:
            return opener(full, **options)
        if full.partition("://")[2].strip("/"):
            shown = redact(url)[:200]
            raise InvalidURL(shown, f"{shown!r}: {self.scheme(url)}:// takes nothing after the "
                             "scheme; give its options as arguments", tuple(self.schemes()))
        return opener(**options)

    def _entry_points(self) -> dict[str, Backend]:
        # Read on each call: only when a scheme is not built in, and for error messages.
        from importlib.metadata import entry_points

        found: dict[str, Backend] = {}
        with self._lock:
            served = set(self._backends)
        for entry in entry_points(group=self.group):
            scheme = entry.name.lower()
            if scheme in served or scheme in found:
                continue
            source = entry.dist.name if entry.dist is not None else "an entry point"
            found[scheme] = Backend(f"{entry.module}:{entry.attr}", None, source)
        return found

    def _example(self) -> str:
        first = next(iter(self._backends), "memory")
        return f"{first}://"


WINDOW_STORES: Final = Registry("window store", "auptimate_core.window_stores", {
    "memory": Backend("auptimate_core.backends.registry:memory_window_store"),
    "memory+columnar": Backend("auptimate_core.backends.columnar:ColumnarWindowStore.from_url"),
    "redis": Backend("auptimate_core.backends.redis:RedisWindowStore.from_url", "redis"),
    "rediss": Backend("auptimate_core.backends.redis:RedisWindowStore.from_url", "redis"),
    "redis+cluster": Backend("auptimate_core.backends.redis:RedisWindowStore.from_url",
                             "redis"),
    "unix": Backend("auptimate_core.backends.redis:RedisWindowStore.from_url", "redis"),
})
"""Window stores (:class:`~auptimate_core.WindowStore`) by URL scheme."""

_SQL_LEDGER: Final = "auptimate_core.backends.sql.ledger:SqlLedgerRepository.from_url"

LEDGER_REPOSITORIES: Final = Registry("ledger", "auptimate_core.ledger_repositories", {
    "memory": Backend("auptimate_core.pools.memory:MemoryLedgerRepository.from_url"),
    "sqlite": Backend(_SQL_LEDGER, "sql"),
    "sqlite+pysqlite": Backend(_SQL_LEDGER, "sql"),
    "postgresql": Backend(_SQL_LEDGER, "postgres"),
    "postgres": Backend(_SQL_LEDGER, "postgres"),
    "postgresql+psycopg": Backend(_SQL_LEDGER, "postgres"),
    "mysql": Backend(_SQL_LEDGER, "mysql"),
    "mysql+pymysql": Backend(_SQL_LEDGER, "mysql"),
    "mariadb": Backend(_SQL_LEDGER, "mysql"),
    "mariadb+pymysql": Backend(_SQL_LEDGER, "mysql"),
})
"""Ledger repositories (:class:`~auptimate_core.pools.LedgerRepository`, with their change
feed) by URL scheme."""

_ASYNC_SQL: Final = "auptimate_core.aio.sql:SqlStorage.from_url"
_ASYNC_REDIS: Final = "auptimate_core.backends.redis_async:AsyncRedisWindowStore.from_url"

ASYNC_LEDGER_STORAGES: Final = Registry(
    "async ledger", "auptimate_core.async_ledger_storages", {
    "memory": Backend("auptimate_core.aio.storage:MemoryStorage.from_url"),
    "sqlite": Backend(_ASYNC_SQL, "aio"),
    "sqlite+aiosqlite": Backend(_ASYNC_SQL, "aio"),
    "postgresql": Backend(_ASYNC_SQL, "aio"),
    "postgres": Backend(_ASYNC_SQL, "aio"),
    "postgresql+psycopg": Backend(_ASYNC_SQL, "aio"),
})
"""Storages of :class:`~auptimate_core.aio.AsyncPoolLedger` (a sync ledger repository and how
its calls are awaited) by URL scheme: the sync ledger's schemes, on asyncio drivers."""

ASYNC_WINDOW_STORES: Final = Registry(
    "async window store", "auptimate_core.async_window_stores", {
    "memory": Backend("auptimate_core.aio.stores:AsyncLocalWindowStore.from_url"),
    "memory+columnar": Backend("auptimate_core.aio.stores:AsyncLocalWindowStore.from_url"),
    "redis": Backend(_ASYNC_REDIS, "aio"),
    "rediss": Backend(_ASYNC_REDIS, "aio"),
    "redis+cluster": Backend(_ASYNC_REDIS, "aio"),
    "unix": Backend(_ASYNC_REDIS, "aio"),
})
"""Window stores of :class:`~auptimate_core.aio.AsyncAlertEngine` by URL scheme: the sync
registry's schemes, on redis-py's asyncio client."""

__all__ = ["ASYNC_LEDGER_STORAGES", "ASYNC_WINDOW_STORES", "LEDGER_REPOSITORIES",
           "WINDOW_STORES", "Backend", "Registry", "redact"]
