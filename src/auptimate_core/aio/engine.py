"""The alert engine for asyncio: :class:`AsyncAlertEngine`, an
:class:`~auptimate_core.AlertEngine` whose calls are awaited.

>>> import asyncio
>>> from datetime import UTC, datetime
>>> from decimal import Decimal
>>> from auptimate_core import ThresholdRule, Transaction
>>> async def main() -> list[str]:
...     engine = AsyncAlertEngine([ThresholdRule(limit=Decimal("1000"))])
...     tx = Transaction("t1", "ann", "fund-a", Decimal("5000"),
...                      datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
...     alerts = await engine.process(tx)
...     await engine.close()
...     return [alert.rule for alert in alerts]
>>> asyncio.run(main())
['threshold']
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from ..alerts.alert import Alert
from ..alerts.engine import AlertEngine
from ..alerts.rules import TransactionRule, WindowRule
from ..alerts.sinks import AlertCallback
from ..alerts.stats import EngineStats
from ..columns import TransactionColumns
from ..domain import Transaction
from ..store import WindowStore
from .stores import AsyncLocalWindowStore, AsyncWindowStore

__all__ = ["AsyncAlertEngine"]


class AsyncAlertEngine:
    """An :class:`~auptimate_core.AlertEngine` for asyncio: ``process``, ``process_many`` and
    ``evaluate`` awaited, with the same arguments, alerts and errors.

    It *is* an ``AlertEngine`` underneath (:attr:`engine`): the rules, the batching, the
    decisions of :mod:`auptimate_core.alerts.decisions`, duplicates, late and future
    transactions and the retry after :class:`~auptimate_core.errors.StoreUnavailable` are that
    class's code, run on ``store``'s bridged store (see :mod:`auptimate_core.aio.stores`):

    - ``None`` or an in-process :class:`~auptimate_core.WindowStore` (the memory store): each
      call runs on the event loop's thread, which gets a turn between the engine's batches;
    - an :class:`~auptimate_core.aio.AsyncWindowStore` such as
      :class:`~auptimate_core.backends.redis_async.AsyncRedisWindowStore`: the loop runs other
      tasks while each round trip to Redis is under way.

    ``batch_size`` (200 here, where the sync engine takes 500) bounds how long the loop waits
    for its next turn, since the work of one batch is done in one go: a batch of 200 is a few
    milliseconds of work on the memory store at most (alerts on most transactions), against
    about 90% of the sync engine's throughput. ``sinks`` and the other options are
    ``AlertEngine``'s; plain callable sinks are called on the loop's thread and must not block
    (give slow work to a background sink, or to a :class:`~auptimate_core.aio.Fanout`).

    Calls take turns in arrival order, as the sync engine's lock makes them; engines in other
    processes sharing the store share the lifecycle, as with the sync engine.
    """

    def __init__(
        self,
        rules: Sequence[TransactionRule | WindowRule],
        store: AsyncWindowStore | WindowStore | None = None,
        sinks: Iterable[AlertCallback] = (),
        *,
        batch_size: int = 200,
        **options: Any,
    ) -> None:
        if store is None or not isinstance(store, AsyncWindowStore):
            store = AsyncLocalWindowStore(store)
        self.store: AsyncWindowStore = store
        self.engine = AlertEngine(rules, store.bridged, sinks, batch_size=batch_size,
                                  **options)
        """The sync engine this one awaits."""

    @property
    def rules(self) -> tuple[TransactionRule | WindowRule, ...]:
        """The engine's rules."""
        return self.engine.rules

    @property
    def stats(self) -> EngineStats:
        """What the engine has processed, held back and raised."""
        return self.engine.stats

    @property
    def sinks(self) -> list[AlertCallback]:
        """The sinks every alert goes to (a copy; change them with :meth:`add_sink`)."""
        return self.engine.sinks

    def add_sink(self, sink: AlertCallback) -> Callable[[], None]:
        """Add a sink; returns a function that removes it again."""
        return self.engine.add_sink(sink)

    async def process(self, tx: Transaction) -> list[Alert]:
        """:meth:`AlertEngine.process <auptimate_core.AlertEngine.process>`, awaited."""
        return await self.store.run_brief(self.engine.process, tx)

    async def process_many(self, transactions: Iterable[Transaction], *,
                           deliveries: Sequence[str] | None = None) -> list[Alert]:
        """:meth:`AlertEngine.process_many <auptimate_core.AlertEngine.process_many>`,
        awaited: the alerts of awaiting :meth:`process` on each transaction in order."""
        return await self.store.run(self.engine.process_many, transactions,
                                    deliveries=deliveries)

    async def process_columns(self, columns: TransactionColumns) -> list[Alert]:
        """:meth:`AlertEngine.process_columns <auptimate_core.AlertEngine.process_columns>`,
        awaited: the alerts of :meth:`process_many` on the rows of trusted columns."""
        return await self.store.run(self.engine.process_columns, columns)

    async def evaluate(self, now: datetime) -> list[Alert]:
        """:meth:`AlertEngine.evaluate <auptimate_core.AlertEngine.evaluate>`, awaited."""
        return await self.store.run(self.engine.evaluate, now)

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what the background sinks still have queued (waiting up to ``timeout``
        seconds in a worker thread, not on the loop), then close the store."""
        try:
            await asyncio.to_thread(self.engine.close, timeout)
        finally:
            await self.store.close()

    async def __aenter__(self) -> AsyncAlertEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
