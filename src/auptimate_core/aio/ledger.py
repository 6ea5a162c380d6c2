"""The pools ledger for asyncio: :class:`AsyncPoolLedger`, a :class:`~auptimate_core.PoolLedger`
whose calls are awaited.

>>> import asyncio
>>> from decimal import Decimal
>>> from auptimate_core import Investor, Pool
>>> async def main() -> list[str]:
...     async with AsyncPoolLedger() as ledger:
...         await ledger.create_pool(Pool("fund-a", manager_id="m1"), actor="m1")
...         await ledger.register_investor(Investor("ann"))
...         await ledger.admit("fund-a", "ann", actor="m1")
...         await ledger.invest("fund-a", "ann", Decimal("300"), actor="ann",
...                             idempotency_key="a1")
...         return [type(change.event).__name__ async for change in ledger.follow(timeout=0)]
>>> asyncio.run(main())
['PoolCreated', 'InvestorRegistered', 'InvestorAdmitted', 'Invested']
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..clock import Clock
from ..domain import Investor, Pool, Transaction
from ..pools.batch import Investment
from ..pools.changes import Change
from ..pools.events import Subscriber, Unsubscribe
from ..pools.feed import Pace
from ..pools.ledger import PoolLedger
from ..pools.policy import Policy
from ..pools.position import PoolTotals, Position
from ..ranking import InvestorRank
from ..urls import ASYNC_LEDGER_STORAGES
from .batch import AsyncBatch
from .storage import LedgerStorage, MemoryStorage
from .wakeups import Wakeups

__all__ = ["AsyncPoolLedger"]


class AsyncPoolLedger:
    """A :class:`~auptimate_core.PoolLedger` for asyncio: the same methods with the same
    arguments, results and errors, awaited.

    It *is* a ``PoolLedger`` underneath (:attr:`ledger`): every rule (who may do what, how
    money splits, idempotency, the audit chain, the change feed) is that class's code, run on
    ``storage`` (see :mod:`auptimate_core.aio.storage`): in memory by default, on SQL through
    SQLAlchemy's asyncio extension with :meth:`from_url`. ``clock``, ``policy`` and
    ``audit_key`` are as for ``PoolLedger``.

    The event loop is not held while a call waits on the database; in memory a call holds it
    for as long as the same ``PoolLedger`` call takes (no I/O). Writes of one ledger object
    take turns in arrival order (see :mod:`auptimate_core.aio.sql`), reads run side by side.
    A write, once started, finishes even if the awaiting task is cancelled: it commits, or is
    refused, as if awaited; repeating it with the same idempotency key returns its result.

    Subscribers (:meth:`subscribe`) are called after each commit made through this object, in
    commit order, on the event loop's thread; :meth:`follow` sees the commits of every process.
    Use one object per event loop.
    """

    def __init__(self, storage: LedgerStorage | None = None, *, clock: Clock | None = None,
                 policy: Policy | None = None, audit_key: bytes | None = None) -> None:
        self.storage: LedgerStorage = MemoryStorage() if storage is None else storage
        self.ledger = PoolLedger(self.storage.repository, clock=clock, policy=policy,
                                 audit_key=audit_key)
        """The sync ledger this one awaits (its calls reach the database only as awaited
        here)."""
        self._wakeups = Wakeups(self.storage)
        self.ledger.subscribe(self._wakeups.notify)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None, policy: Policy | None = None,
                 audit_key: bytes | None = None, **options: Any) -> AsyncPoolLedger:
        """A ledger on the storage ``url`` names: ``memory://``, ``sqlite+aiosqlite:///path.db``
        (``sqlite+aiosqlite://`` in memory) or ``postgresql+psycopg://user@host/db``
        (``sqlite://`` and ``postgresql://`` name the same asyncio drivers). ``options`` are
        the storage's (for SQL those of
        :class:`~auptimate_core.backends.sql.ledger.SqlLedgerRepository.from_url`). Nothing
        connects before the first call or :meth:`open`. The tables are the sync ledger's:
        ``PoolLedger`` and ``AsyncPoolLedger`` on the same database are the same ledger."""
        storage: LedgerStorage = ASYNC_LEDGER_STORAGES.open(url, **options)
        return cls(storage, clock=clock, policy=policy, audit_key=audit_key)

    @property
    def clock(self) -> Clock:
        """The time of each change made without an ``at``."""
        return self.ledger.clock

    @property
    def policy(self) -> Policy:
        """Who may do what."""
        return self.ledger.policy

    async def open(self) -> None:
        """Connect now and make the tables if need be (the first call does it otherwise):
        an unreachable database is then an error at start-up rather than at the first
        request."""
        await self.storage.open()

    async def close(self) -> None:
        """Let writes under way finish and release the storage's connections."""
        await self.storage.aclose()

    async def __aenter__(self) -> AsyncPoolLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writes (see PoolLedger for what each does) -------------------------------------------

    async def register_investor(self, investor: Investor, *,
                                actor: str | None = None) -> Investor:
        """:meth:`PoolLedger.register_investor <auptimate_core.PoolLedger.register_investor>`,
        awaited."""
        return await self.storage.write(self.ledger.register_investor, investor, actor=actor)

    async def create_pool(self, pool: Pool, *, actor: str) -> Pool:
        """:meth:`PoolLedger.create_pool <auptimate_core.PoolLedger.create_pool>`, awaited."""
        return await self.storage.write(self.ledger.create_pool, pool, actor=actor)

    async def admit(self, pool_id: str, investor_id: str, *, actor: str) -> None:
        """:meth:`PoolLedger.admit <auptimate_core.PoolLedger.admit>`, awaited."""
        await self.storage.write(self.ledger.admit, pool_id, investor_id, actor=actor)

    async def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
                     idempotency_key: str, at: datetime | None = None) -> Transaction:
        """:meth:`PoolLedger.invest <auptimate_core.PoolLedger.invest>`, awaited."""
        return await self.storage.write(self.ledger.invest, pool_id, investor_id, amount,
                                        actor=actor, idempotency_key=idempotency_key, at=at)

    async def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
                     idempotency_key: str, at: datetime | None = None) -> Transaction:
        """:meth:`PoolLedger.refund <auptimate_core.PoolLedger.refund>`, awaited."""
        return await self.storage.write(self.ledger.refund, pool_id, investor_id, amount,
                                        actor=actor, idempotency_key=idempotency_key, at=at)

    async def charge_fee(self, pool_id: str, total: Decimal | int, *, actor: str,
                         idempotency_key: str, at: datetime | None = None) -> list[Transaction]:
        """:meth:`PoolLedger.charge_fee <auptimate_core.PoolLedger.charge_fee>`, awaited."""
        return await self.storage.write(self.ledger.charge_fee, pool_id, total, actor=actor,
                                        idempotency_key=idempotency_key, at=at)

    async def distribute(self, pool_id: str, total: Decimal | int, *, actor: str,
                         idempotency_key: str, at: datetime | None = None,
                         carry: Decimal | None = None) -> list[Transaction]:
        """:meth:`PoolLedger.distribute <auptimate_core.PoolLedger.distribute>`, awaited."""
        return await self.storage.write(self.ledger.distribute, pool_id, total, actor=actor,
                                        idempotency_key=idempotency_key, at=at, carry=carry)

    def batch(self) -> AsyncBatch:
        """:meth:`PoolLedger.batch <auptimate_core.PoolLedger.batch>` with an awaited commit:
        ``async with ledger.batch() as batch: batch.invest(...)`` (see
        :mod:`auptimate_core.aio.batch`)."""
        return AsyncBatch(self.ledger.batch(), self.storage)

    async def invest_many(self, investments: Iterable[Investment | tuple[Any, ...]]
                          ) -> list[Transaction]:
        """:meth:`PoolLedger.invest_many <auptimate_core.PoolLedger.invest_many>`, awaited."""
        return await self.storage.write(self.ledger.invest_many, list(investments))

    # -- reads --------------------------------------------------------------------------------

    async def pool(self, pool_id: str) -> Pool:
        """:meth:`PoolLedger.pool <auptimate_core.PoolLedger.pool>`, awaited."""
        return await self.storage.read(self.ledger.pool, pool_id)

    async def positions(self, pool_id: str, *, actor: str | None = None) -> list[Position]:
        """:meth:`PoolLedger.positions <auptimate_core.PoolLedger.positions>`, awaited."""
        return await self.storage.read(self.ledger.positions, pool_id, actor=actor)

    async def portfolio(self, investor_id: str, *, actor: str | None = None) -> list[Position]:
        """:meth:`PoolLedger.portfolio <auptimate_core.PoolLedger.portfolio>`, awaited."""
        return await self.storage.read(self.ledger.portfolio, investor_id, actor=actor)

    async def pool_totals(self, pool_id: str, *, actor: str | None = None) -> PoolTotals:
        """:meth:`PoolLedger.pool_totals <auptimate_core.PoolLedger.pool_totals>`, awaited."""
        return await self.storage.read(self.ledger.pool_totals, pool_id, actor=actor)

    async def history(self, pool_id: str | None = None, *,
                      actor: str | None = None) -> list[Transaction]:
        """:meth:`PoolLedger.history <auptimate_core.PoolLedger.history>`, awaited."""
        return await self.storage.read(self.ledger.history, pool_id, actor=actor)

    async def top_investors(self, n: int = 5, *, actor: str | None = None) -> list[InvestorRank]:
        """:meth:`PoolLedger.top_investors <auptimate_core.PoolLedger.top_investors>`,
        awaited."""
        return await self.storage.read(self.ledger.top_investors, n, actor=actor)

    async def verify(self) -> int:
        """:meth:`PoolLedger.verify <auptimate_core.PoolLedger.verify>`, awaited (one read of
        every entry: ``O(entries)``)."""
        return await self.storage.read(self.ledger.verify)

    # -- the change feed and subscribers ------------------------------------------------------

    async def changes(self, after: str | None = None, limit: int = 1000, *,
                      actor: str | None = None) -> list[Change]:
        """:meth:`PoolLedger.changes <auptimate_core.PoolLedger.changes>`, awaited."""
        return await self.storage.read(self.ledger.changes, after, limit, actor=actor)

    async def cursor(self, *, actor: str | None = None) -> str:
        """:meth:`PoolLedger.cursor <auptimate_core.PoolLedger.cursor>`, awaited."""
        return await self.storage.read(self.ledger.cursor, actor=actor)

    def follow(self, after: str | None = None, timeout: float | None = None, *,
               actor: str | None = None, batch: int = 1000) -> AsyncIterator[Change]:
        """Every committed change after the cursor ``after``, as they commit anywhere:
        ``async for change in ledger.follow(after=cursor): ...``.

        The same changes as :meth:`PoolLedger.follow <auptimate_core.PoolLedger.follow>`, in
        the same order, none missed or repeated; ``timeout`` (seconds without anything new)
        ends the iteration, ``None`` follows for ever. The arguments and the cursor are checked
        as the iteration starts, before the first change. Waiting for a commit holds no
        thread and no connection of its own: the followers of one ledger object share one
        wake-up (PostgreSQL ``LISTEN`` on one connection, or polling the feed's head), running
        while any of them follows. Close the iterator (``await iterator.aclose()``, or leave
        the ``async for``) when done.
        """
        return self._follow(after, timeout, actor, batch)

    async def _follow(self, after: str | None, timeout: float | None, actor: str | None,
                      batch: int) -> AsyncIterator[Change]:
        # The sync ledger checks the arguments and the cursor as its follow() does; the
        # iterator it returns is dropped unstarted (it holds nothing until its first step).
        await self.storage.read(self.ledger.follow, after, timeout, actor=actor, batch=batch)
        wakeups = self._wakeups
        try:
            await wakeups.join()  # counts this follower first thing: leave() follows it
            cursor = after
            pace = Pace(timeout, batch)
            while True:
                mark = wakeups.mark()
                page = await self.changes(cursor, batch, actor=actor)
                for change in page:
                    yield change
                if page:
                    cursor = page[-1].cursor
                wait = pace.after(len(page))
                if wait is None:
                    return
                if wait:
                    await wakeups.wait(mark, wait)
        finally:
            await wakeups.leave()

    def subscribe(self, callback: Subscriber) -> Unsubscribe:
        """:meth:`PoolLedger.subscribe <auptimate_core.PoolLedger.subscribe>`: ``callback``
        is called (not awaited) after each commit made through this object, on the event
        loop's thread, so it must not block; hand the event to a task or to a
        :class:`~auptimate_core.aio.fanout.Fanout` for anything slow."""
        return self.ledger.subscribe(callback)
