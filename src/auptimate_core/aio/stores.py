"""Window stores for :class:`~auptimate_core.aio.AsyncAlertEngine`: :class:`AsyncWindowStore`.

An async window store is a sync :class:`~auptimate_core.store.WindowStore` (its ``bridged``
store: the code that records, tallies and keeps the lifecycle, the same as the sync API's)
plus the way calls on it are awaited (:meth:`AsyncWindowStore.run`). The engine's own code
runs inside :meth:`~AsyncWindowStore.run` and calls the bridged store as it calls any store;
the store's methods are also offered awaited (``await store.observe_many(...)``), for the
contract suite and for direct use.

- :class:`AsyncLocalWindowStore` holds an in-process store (the memory store by default): its
  calls do no I/O, so what it adds is a turn for the event loop's other tasks between the
  engine's batches.
- :class:`~auptimate_core.backends.redis_async.AsyncRedisWindowStore` is the Redis store on
  redis-py's asyncio client.

>>> import asyncio
>>> from auptimate_core.store import Interval
>>> async def main() -> int:
...     store = window_store_from_url("memory://")
...     batch = await store.observe_many(["p"], ["t1"], [1_000_000], [0], [Interval(0, 60)])
...     await store.close()
...     return batch.counts[0][0]
>>> asyncio.run(main())
1
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from time import perf_counter
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..store import (
    DecidesPerEvent,
    EventAnswer,
    Interval,
    LifecycleState,
    Observation,
    Observed,
    ObservedBatch,
    Tally,
    Transition,
    WindowStore,
)
from ..urls import ASYNC_WINDOW_STORES, WINDOW_STORES
from .greenlets import Serial, wait

T = TypeVar("T")

__all__ = ["AsyncLocalWindowStore", "AsyncWindowStore", "BridgedWindowStore",
           "TakesTurns", "window_store_from_url"]

TURN = 0.002
"""Seconds of work after which an in-process store gives the event loop a turn (at the start
of the engine's next store call)."""


@runtime_checkable
class AsyncWindowStore(Protocol):
    """A window store for :class:`~auptimate_core.aio.AsyncAlertEngine` (see the module
    notes)."""

    @property
    def bridged(self) -> WindowStore:
        """The sync store, to be called only inside :meth:`run`."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)``, sync code calling :attr:`bridged`, run in a
        greenlet; one call at a time per store, in arrival order."""

    async def run_brief(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`run` for a call known to be short (the engine's ``process`` of one
        transaction): a store without I/O may run it on the loop's thread in its turn,
        without a greenlet."""

    async def observe(self, observation: Observation, intervals: Sequence[Interval], *,
                      not_after: int | None = None) -> Observed: ...

    async def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        deliveries: Sequence[str] | None = None, batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch: ...

    async def tally(self, key: str, at: int,
                    intervals: Sequence[Interval]) -> tuple[Tally, ...]: ...

    async def states(self, pairs: Iterable[tuple[str, str]], *,
                     batch: str | None = None) -> dict[tuple[str, str], LifecycleState]: ...

    async def transition(self, transitions: Sequence[Transition]) -> list[bool]: ...

    async def firing(self, rule: str) -> frozenset[str]: ...

    async def close(self) -> None:
        """Release connections (the store is not used afterwards)."""


class BridgedWindowStore:
    """The awaited methods of an :class:`AsyncWindowStore`, each a :meth:`run` of the bridged
    store's own; a subclass gives the bridged store and :meth:`close`."""

    def __init__(self, bridged: WindowStore) -> None:
        self._bridged = bridged
        self._turns = Serial()

    @property
    def bridged(self) -> WindowStore:
        return self._bridged

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._turns.run(fn, *args, **kwargs)

    async def run_brief(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._turns.run(fn, *args, **kwargs)

    async def observe(self, observation: Observation, intervals: Sequence[Interval], *,
                      not_after: int | None = None) -> Observed:
        return await self.run(self._bridged.observe, observation, intervals,
                              not_after=not_after)

    async def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        deliveries: Sequence[str] | None = None, batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        return await self.run(self._bridged.observe_many, keys, event_ids, ats, amounts,
                              intervals, totals=totals, deliveries=deliveries, batch=batch,
                              not_after=not_after)

    async def tally(self, key: str, at: int,
                    intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        return await self.run(self._bridged.tally, key, at, intervals)

    async def states(self, pairs: Iterable[tuple[str, str]], *,
                     batch: str | None = None) -> dict[tuple[str, str], LifecycleState]:
        return await self.run(self._bridged.states, list(pairs), batch=batch)

    async def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        return await self.run(self._bridged.transition, transitions)

    async def firing(self, rule: str) -> frozenset[str]:
        return await self.run(self._bridged.firing, rule)

    async def close(self) -> None:
        await self.run(self._bridged.close)


class TakesTurns:
    """An in-process :class:`~auptimate_core.store.WindowStore` (``store``) that, called inside
    a greenlet, lets the event loop run other tasks once it has worked for :data:`TURN`
    seconds: at the start of a store call, so between the engine's batches (see
    ``batch_size`` of :class:`~auptimate_core.aio.AsyncAlertEngine`). Everything else is
    ``store``'s."""

    def __init__(self, store: WindowStore) -> None:
        self.store = store
        self.brief = False
        """Set while a brief call runs outside a greenlet: no turn is given then."""
        self._since = perf_counter()

    def _turn(self) -> None:
        if self.brief:
            return
        now = perf_counter()
        if now - self._since >= TURN:
            wait(_give_turn())
            self._since = perf_counter()

    def observe(self, observation: Observation, intervals: Sequence[Interval], *,
                not_after: int | None = None) -> Observed:
        self._turn()
        return self.store.observe(observation, intervals, not_after=not_after)

    def observe_many(
        self, keys: Sequence[str], event_ids: Sequence[str], ats: Sequence[int],
        amounts: Sequence[int], intervals: Sequence[Interval], *, totals: bool = False,
        deliveries: Sequence[str] | None = None, batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        self._turn()
        return self.store.observe_many(keys, event_ids, ats, amounts, intervals,
                                       totals=totals, deliveries=deliveries, batch=batch,
                                       not_after=not_after)

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        self._turn()
        return self.store.tally(key, at, intervals)

    def states(self, pairs: Iterable[tuple[str, str]], *,
               batch: str | None = None) -> dict[tuple[str, str], LifecycleState]:
        self._turn()
        return self.store.states(pairs, batch=batch)

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        self._turn()
        return self.store.transition(transitions)

    def firing(self, rule: str) -> frozenset[str]:
        return self.store.firing(rule)

    def close(self) -> None:
        self.store.close()


class TakesTurnsPerEvent(TakesTurns):
    """:class:`TakesTurns` for a store with the engine's per-event capabilities
    (:class:`~auptimate_core.store.DecidesPerEvent`), which it shows the engine in turn (the
    event's turn is taken when it is observed)."""

    def __init__(self, store: WindowStore) -> None:
        assert isinstance(store, DecidesPerEvent)
        super().__init__(store)
        self._one: DecidesPerEvent = store

    def observe_event(
        self, key: str, event_id: str, at: int, amount: int, intervals: Sequence[Interval],
        totals: bool, not_after: int | None,
    ) -> EventAnswer:
        self._turn()
        return self._one.observe_event(key, event_id, at, amount, intervals, totals,
                                          not_after)

    def firing_view(self, rule: str) -> AbstractSet[str]:
        return self._one.firing_view(rule)

    def state_of(self, key: str, rule: str) -> LifecycleState:
        return self._one.state_of(key, rule)

    def switch(self, key: str, rule: str, firing: bool, at: int, cause: str | None) -> bool:
        return self._one.switch(key, rule, firing, at, cause)


def _taking_turns(store: WindowStore) -> TakesTurns:
    return TakesTurnsPerEvent(store) if isinstance(store, DecidesPerEvent) else TakesTurns(store)


async def _give_turn() -> None:
    # A task resumed after one sleep(0) runs before the timers that fell due while it worked
    # (the loop queues them behind it); after a second, they have run.
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class AsyncLocalWindowStore(BridgedWindowStore):
    """An in-process window store (``store``, a new
    :class:`~auptimate_core.backends.memory.MemoryWindowStore` by default) for the async
    engine: the same answers, with turns for the event loop between batches (see
    :class:`TakesTurns`). A store that does I/O (the sync Redis store) would hold the loop
    while it waits: use an async store for those."""

    def __init__(self, store: WindowStore | None = None) -> None:
        self.store: WindowStore = WINDOW_STORES.open("memory://") if store is None else store
        self._turning = _taking_turns(self.store)
        super().__init__(self._turning)

    async def run_brief(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the loop's thread once the calls before it are done: no greenlet (whose
        start costs more than one transaction's work), no turn for the loop within it."""
        async with self._turns.lock:
            self._turning.brief = True
            try:
                return fn(*args, **kwargs)
            finally:
                self._turning.brief = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncLocalWindowStore:
        """The in-process store the sync registry opens for ``url`` (``memory://``,
        ``memory+columnar://``), with ``options``."""
        return cls(WINDOW_STORES.open(url, **options))


def window_store_from_url(url: str, **options: Any) -> AsyncWindowStore:
    """The async window store ``url`` names (``memory://``, ``redis://``, ``rediss://``,
    ``unix://``, ``redis+cluster://``...); ``options`` go to its constructor, as for
    :func:`auptimate_core.window_store_from_url`."""
    store: AsyncWindowStore = ASYNC_WINDOW_STORES.open(url, **options)
    return store
