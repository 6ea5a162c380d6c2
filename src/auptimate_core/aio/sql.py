"""An async ledger's storage on SQL: the sync
:class:`~auptimate_core.backends.sql.ledger.SqlLedgerRepository`, unchanged, on SQLAlchemy's
asyncio extension (``sqlite+aiosqlite://``, ``postgresql+psycopg://``).

The repository is made on ``AsyncEngine.sync_engine`` and every ledger call runs in a greenlet
(:mod:`auptimate_core.aio.greenlets`): the tables, the statements, the retries after a conflict,
the change feed and the mapping of driver errors are the sync repository's own, and the event
loop runs other tasks whenever a call waits on the database.

Concurrency. The repository orders its commits with a :mod:`threading` lock held across the
commit's round trip; two greenlets of one thread meeting on it would stall the loop's thread. So
the writes of one storage take turns (an :class:`asyncio.Lock`, in arrival order), while reads
run side by side, each on a connection of the pool. Writes of one ledger already queue on the
feed's head row in the database from their last statement to their commit (see
:mod:`auptimate_core.backends.sql.feed`); what the turns add is that a write's first statement
waits for the write before it, in this process. Processes still write side by side. An
in-memory SQLite database (one shared connection) takes every call in turn.

A write that conflicts with another process's is run again after a short pause, as on the
sync repository (milliseconds, growing with each conflict in a row up to about a tenth of a
second); the pause is awaited, and the loop runs other tasks meanwhile.

Followers of the feed are woken by PostgreSQL ``LISTEN`` on one connection per ledger (not per
follower), or by reading the feed's head every ``poll_interval`` on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import LedgerError, MissingExtra
from ..pools.changes import FeedWatch, check_interval
from ..pools.repository import LedgerRepository, LedgerSession
from .greenlets import Serial, run_sync, wait
from .storage import poll_head

try:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
    from sqlalchemy.pool import StaticPool

    from ..backends.sql.driver_errors import bare, driver_error
    from ..backends.sql.engines import ASYNC_DRIVERS, new_engine
    from ..backends.sql.feed import channel_of, listening_connection, lost_listening
    from ..backends.sql.ledger import SqlLedgerRepository
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra(error.name or "sqlalchemy", "aio") from error

T = TypeVar("T")

__all__ = ["SqlStorage"]


def _pause(seconds: float) -> None:
    """The repository's pause before a retry, awaited (it runs in a greenlet)."""
    wait(asyncio.sleep(seconds))


class _Opened:
    """The repository of a storage, reached once the storage has opened it (the ledger is made
    before, so that subscribers may be added before the first call)."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage

    def _target(self) -> SqlLedgerRepository:
        found = self._storage.opened
        if found is None:
            raise LedgerError("the SQL storage is not open yet (await a ledger call first)")
        return found

    @property
    def identity(self) -> str:
        return self._target().identity

    def watch(self) -> FeedWatch:
        return self._target().watch()

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        return self._target().read(body)

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        return self._target().write(body, on_commit)

    def close(self) -> None:
        pass  # the storage's aclose() releases the engine


class SqlStorage:
    """A :class:`~auptimate_core.aio.storage.LedgerStorage` on an ``AsyncEngine`` (see the
    module notes). ``schema``, ``create``, ``retries`` and ``poll_interval`` are as for
    :class:`~auptimate_core.backends.sql.ledger.SqlLedgerRepository`; ``dispose=True`` disposes
    of the engine in :meth:`aclose` (``from_url`` sets it: the engine is the storage's own).
    """

    def __init__(self, engine: AsyncEngine, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, poll_interval: float = 0.01, dispose: bool = False) -> None:
        check_interval(poll_interval)
        self.engine = engine
        self.schema = schema
        self.poll_interval = poll_interval
        self._options: dict[str, Any] = {"schema": schema, "create": create, "retries": retries,
                                         "poll_interval": poll_interval, "sleep": _pause}
        self._dispose = dispose
        self._postgres = engine.dialect.name == "postgresql"
        # One shared connection (an in-memory SQLite database): every call takes its turn.
        self._shared = isinstance(engine.sync_engine.pool, StaticPool)
        self._turns = Serial()
        self._opening = asyncio.Lock()
        self._writes: set[asyncio.Task[Any]] = set()
        self.opened: SqlLedgerRepository | None = None
        self._repository = _Opened(self)

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, create: bool = True,
                 retries: int = 8, engine_options: Mapping[str, Any] | None = None,
                 poll_interval: float = 0.01) -> SqlStorage:
        """Storage on a new ``AsyncEngine`` for ``url``: ``sqlite+aiosqlite:///path.db``
        (``sqlite+aiosqlite://`` in memory) or ``postgresql+psycopg://user@host/db``;
        ``sqlite://`` and ``postgresql://`` name the same drivers. Nothing connects before the
        first call (or :meth:`open`)."""
        engine = new_engine(url, engine_options, create_async_engine, ASYNC_DRIVERS)
        return cls(engine, schema=schema, create=create, retries=retries,
                   poll_interval=poll_interval, dispose=True)

    @property
    def repository(self) -> LedgerRepository:
        return self._repository

    async def open(self) -> None:
        if self.opened is not None:
            return
        async with self._opening:
            if self.opened is None:
                self.opened = await self._turns.run(
                    SqlLedgerRepository, self.engine.sync_engine, **self._options)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.opened is None:
            await self.open()
        if self._shared:
            return await self._turns.run(fn, *args, **kwargs)
        return await run_sync(fn, *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.opened is None:
            await self.open()
        task = asyncio.ensure_future(self._turns.run(fn, *args, **kwargs))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def listen(self, wake: Callable[[], None], ready: Callable[[], None]) -> None:
        if self.opened is None:
            await self.open()
        if not self._postgres:
            await poll_head(self, self.poll_interval, wake, ready)
            return
        import psycopg

        channel = channel_of(self._repository.identity)
        conn: Any = await run_sync(listening_connection, self.engine.sync_engine)
        failed: sa.exc.DBAPIError | None = None
        try:
            await conn.set_autocommit(True)
            await conn.execute(f'LISTEN "{channel}"')
            ready()
            async for _ in conn.notifies():
                wake()
        except psycopg.Error as error:
            failed = bare(error)
        finally:
            await conn.close()
        if failed is not None:  # raised here: the driver's error is not its context
            raise lost_listening(failed) from driver_error(failed)

    async def aclose(self) -> None:
        """Let the writes under way finish, then dispose of the engine if it is this
        storage's own."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._dispose:
            await self.engine.dispose()
