"""Ledger batches for asyncio: :class:`AsyncBatch`, made by ``AsyncPoolLedger.batch()``.

A :class:`~auptimate_core.pools.batch.Batch` of the sync ledger whose commit is awaited:
queueing checks the arguments at once and does no I/O, so ``invest``, ``refund`` and
``admit`` are plain calls; :meth:`AsyncBatch.commit` records the commands in one unit of work,
all or nothing, as the sync batch's commit does (it is that code, run on the ledger's
storage).

>>> import asyncio
>>> from decimal import Decimal
>>> from auptimate_core import Investor, Pool
>>> from auptimate_core.aio import AsyncPoolLedger
>>> async def main() -> list[str]:
...     async with AsyncPoolLedger() as ledger:
...         await ledger.create_pool(Pool("fund-a", manager_id="m1"), actor="m1")
...         await ledger.register_investor(Investor("ann"))
...         async with ledger.batch() as batch:
...             batch.admit("fund-a", "ann", actor="m1")
...             batch.invest("fund-a", "ann", Decimal("300"), actor="ann",
...                          idempotency_key="a1")
...         return [str(p.capital) for p in await ledger.positions("fund-a")]
>>> asyncio.run(main())
['300.00']
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import TracebackType

from ..pools.batch import Batch, Result
from .storage import LedgerStorage

__all__ = ["AsyncBatch"]


class AsyncBatch:
    """Commands queued to be recorded together, all or nothing, with an awaited commit (see
    the module notes and :class:`~auptimate_core.pools.batch.Batch`, whose rules are these).

    Used as an async context manager, the batch commits when its block ends without an
    exception (the results are then in :attr:`results`). Not safe to share between tasks
    while commands are queued.
    """

    def __init__(self, batch: Batch, storage: LedgerStorage) -> None:
        self.batch = batch
        """The sync batch this one commits."""
        self._storage = storage

    def __len__(self) -> int:
        return len(self.batch)

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if kind is None:
            await self.commit()

    @property
    def results(self) -> list[Result]:
        """The result of each command, once committed (a LedgerError before)."""
        return self.batch.results

    def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> AsyncBatch:
        """Queue :meth:`~auptimate_core.aio.AsyncPoolLedger.invest`."""
        self.batch.invest(pool_id, investor_id, amount, actor=actor,
                          idempotency_key=idempotency_key, at=at)
        return self

    def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> AsyncBatch:
        """Queue :meth:`~auptimate_core.aio.AsyncPoolLedger.refund`."""
        self.batch.refund(pool_id, investor_id, amount, actor=actor,
                          idempotency_key=idempotency_key, at=at)
        return self

    def admit(self, pool_id: str, investor_id: str, *, actor: str) -> AsyncBatch:
        """Queue :meth:`~auptimate_core.aio.AsyncPoolLedger.admit`."""
        self.batch.admit(pool_id, investor_id, actor=actor)
        return self

    async def commit(self) -> list[Result]:
        """Record every queued command in one unit of work; return their results in order
        (:meth:`Batch.commit <auptimate_core.pools.batch.Batch.commit>`, awaited)."""
        return await self._storage.write(self.batch.commit)
