"""AsyncAlertEngine and the async window stores: the window store contract awaited on the
in-process store, a real Redis and a real Redis Cluster; the sync engine's alerts, call for
call; a turn for the event loop between batches (its stalls: tests/test_aio_loop.py)."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from auptimate_core import AlertEngine, ManualClock, SpikeRule, ThresholdRule, Transaction
from auptimate_core.aio import AsyncAlertEngine, AsyncLocalWindowStore, window_store_from_url
from auptimate_core.aio.stores import AsyncWindowStore, TakesTurns
from auptimate_core.alerts import Alert, AmountSpikeRule, CollectingSink
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.backends.redis_async import AsyncRedisWindowStore
from auptimate_core.columns import TransactionColumns
from auptimate_core.errors import LateEvent
from auptimate_core.store import DAY, IndexesFiring, ObservesEvents, WindowStore
from auptimate_core.testing.window_store import WindowStoreContract
from tests.test_aio_ledger import LoopThread

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
D = Decimal


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


class BlockingStore:
    """An async window store seen as a WindowStore, for the sync contract suite: each call is
    awaited on the loop thread."""

    def __init__(self, store: AsyncWindowStore, loop: LoopThread) -> None:
        self.aio = store
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.aio, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(method(*args, **kwargs))

        return call


class AsyncStoreContract(WindowStoreContract):
    @pytest.fixture(autouse=True)
    def _loop(self, loop_thread: LoopThread) -> None:
        self.loop = loop_thread

    def make_async_store(self, lateness: timedelta, horizon: timedelta) -> AsyncWindowStore:
        raise NotImplementedError

    def make_store(self, allowed_lateness_us: int, dedup_horizon_us: int = DAY) -> WindowStore:
        store = self.make_async_store(timedelta(microseconds=allowed_lateness_us),
                                      timedelta(microseconds=dedup_horizon_us))
        return BlockingStore(store, self.loop)  # type: ignore[return-value]


class TestAsyncLocalStore(AsyncStoreContract):
    def make_async_store(self, lateness: timedelta, horizon: timedelta) -> AsyncWindowStore:
        return AsyncLocalWindowStore(MemoryWindowStore(allowed_lateness=lateness,
                                                       dedup_horizon=horizon))


class AsyncRedisContract(AsyncStoreContract):
    """One asyncio client per class, made on the loop thread (a client belongs to a loop)."""

    clients: ClassVar[dict[str, Any]] = {}
    url = ""

    def client(self) -> Any:
        if self.url not in self.clients:
            async def make() -> Any:
                return AsyncRedisWindowStore.from_url(self.url).client

            self.clients[self.url] = self.loop.run(make())
        return self.clients[self.url]

    def make_async_store(self, lateness: timedelta, horizon: timedelta) -> AsyncWindowStore:
        return AsyncRedisWindowStore(self.client(), namespace=f"a{uuid.uuid4().hex[:12]}",
                                     allowed_lateness=lateness, dedup_horizon=horizon)


@pytest.mark.redis
class TestAsyncRedisStore(AsyncRedisContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url


@pytest.mark.redis
class TestAsyncRedisClusterStore(AsyncRedisContract):
    @pytest.fixture(autouse=True)
    def _server(self, cluster_url: str) -> None:
        self.url = cluster_url


# -- the same alerts as the sync engine ---------------------------------------------------------


def _rules() -> list[Any]:
    return [ThresholdRule(limit=D("250000")),
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                      min_count=5),
            AmountSpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=8,
                            min_total=D("100000"))]


def _stream(n: int, seed: int = 7) -> list[Transaction]:
    """Busy pools with bursts, big amounts, repeats, late and future transactions."""
    rng = random.Random(seed)
    txs: list[Transaction] = []
    at = T0
    for i in range(n):
        at += timedelta(seconds=rng.choice((0.2, 1, 5, 30, 120)))
        when = at - timedelta(minutes=30) if rng.random() < 0.01 else at  # late
        if rng.random() < 0.002:
            when = NOW + timedelta(hours=1)  # future
        txs.append(Transaction(f"t{i}", f"i{rng.randrange(40)}", f"p{rng.randrange(12)}",
                               D(rng.randint(1, 300_000)), when))
        if rng.random() < 0.02:
            txs.append(txs[rng.randrange(len(txs))])  # a repeat
    return txs


def _async_store(kind: str, request: pytest.FixtureRequest) -> AsyncWindowStore | None:
    if kind == "memory":
        return None
    if kind == "columnar":
        return AsyncLocalWindowStore(ColumnarWindowStore())
    url = request.getfixturevalue("redis_url" if kind == "redis" else "cluster_url")
    return window_store_from_url(url, namespace=f"e{uuid.uuid4().hex[:12]}")


KINDS = ["memory", "columnar", pytest.param("redis", marks=pytest.mark.redis),
         pytest.param("cluster", marks=pytest.mark.redis)]


@pytest.mark.parametrize("kind", KINDS)
def test_the_async_engine_raises_the_sync_engines_alerts(kind: str,
                                                         request: pytest.FixtureRequest) -> None:
    txs = _stream(3_000)
    sync_sink = CollectingSink()
    sync = AlertEngine(_rules(), MemoryWindowStore(), [sync_sink], clock=ManualClock(NOW))
    expected = ([sync.process(tx) for tx in txs[:300]], sync.process_many(txs[300:]),
                sync.evaluate(NOW))
    assert sum(map(len, expected[0])) + len(expected[1]) > 20 and expected[2]

    async def main() -> tuple[Any, ...]:
        sink = CollectingSink()
        async with AsyncAlertEngine(_rules(), _async_store(kind, request), [sink],
                                    clock=ManualClock(NOW)) as engine:
            found = ([await engine.process(tx) for tx in txs[:300]],
                     await engine.process_many(txs[300:]), await engine.evaluate(NOW))
            assert engine.stats.as_dict() == sync.stats.as_dict()
        assert sink.alerts == sync_sink.alerts
        return found

    assert asyncio.run(main()) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_columns_raise_the_sync_engines_alerts(kind: str, request: pytest.FixtureRequest) -> None:
    txs = [tx for tx in _stream(3_000) if tx.timestamp.utcoffset() is not None]
    sync = AlertEngine(_rules(), MemoryWindowStore(), clock=ManualClock(NOW))
    expected = sync.process_columns(TransactionColumns.from_transactions(txs))
    assert len(expected) > 20

    async def main() -> list[Alert]:
        async with AsyncAlertEngine(_rules(), _async_store(kind, request),
                                    clock=ManualClock(NOW)) as engine:
            return await engine.process_columns(TransactionColumns.from_transactions(txs))

    assert asyncio.run(main()) == expected


def test_the_async_engine_has_every_method_of_the_sync_engine() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(AlertEngine) <= public(AsyncAlertEngine)
    for name in ("process", "process_many", "process_columns", "evaluate", "close"):
        assert inspect.iscoroutinefunction(getattr(AsyncAlertEngine, name)), name


def test_late_transactions_raise_as_in_the_sync_engine() -> None:
    txs = _stream(500)

    def held(error: LateEvent) -> tuple[Any, ...]:
        return (str(error), error.late, error.future, error.alerts)

    with pytest.raises(LateEvent) as sync_error:
        AlertEngine(_rules(), clock=ManualClock(NOW), on_late="raise").process_many(txs)

    async def main() -> LateEvent:
        engine = AsyncAlertEngine(_rules(), clock=ManualClock(NOW), on_late="raise")
        with pytest.raises(LateEvent) as caught:
            await engine.process_many(txs)
        return caught.value

    assert held(asyncio.run(main())) == held(sync_error.value)


@pytest.mark.redis
def test_the_async_registry_opens_each_scheme(redis_url: str) -> None:
    assert isinstance(window_store_from_url("memory://").store, MemoryWindowStore)
    columnar = window_store_from_url("memory+columnar://")
    assert isinstance(columnar, AsyncLocalWindowStore)
    assert isinstance(columnar.store, ColumnarWindowStore)
    redis_store = window_store_from_url(redis_url, namespace="n", retain=7)
    assert isinstance(redis_store, AsyncRedisWindowStore)
    assert redis_store.namespace == "n" and redis_store.sync_store.retain == 7
    asyncio.run(redis_store.close())


def test_a_sync_in_process_store_is_taken_in_turns() -> None:
    store = MemoryWindowStore()
    engine = AsyncAlertEngine(_rules(), store)
    assert isinstance(engine.store, AsyncLocalWindowStore) and engine.store.store is store
    assert isinstance(engine.engine.store, TakesTurns)
    # The memory store's per-event path is shown to the engine; a store without it is not
    # given one.
    turning = engine.engine.store
    assert isinstance(turning, ObservesEvents) and isinstance(turning, IndexesFiring)
    columnar = AsyncAlertEngine(_rules(), ColumnarWindowStore())
    assert not isinstance(columnar.engine.store, ObservesEvents | IndexesFiring)


@pytest.mark.redis
def test_async_and_sync_engines_on_one_namespace_share_the_lifecycle(redis_url: str) -> None:
    namespace = f"s{uuid.uuid4().hex[:12]}"
    rules = [SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                       min_count=3)]
    burst = [Transaction(f"b{i}", "i", "p", D(1), T0 + timedelta(seconds=i)) for i in range(6)]
    sync = AlertEngine(rules, RedisWindowStore.from_url(redis_url, namespace=namespace),
                       clock=ManualClock(NOW))

    async def main() -> list[Alert]:
        store = window_store_from_url(redis_url, namespace=namespace)
        async with AsyncAlertEngine(rules, store, clock=ManualClock(NOW)) as engine:
            alerts = await engine.process_many(burst[:3])
            alerts += sync.process_many(burst[3:])
            return alerts

    alerts = asyncio.run(main())
    # One burst, one firing alert, whichever engine saw it.
    assert [(a.rule, a.state) for a in alerts] == [("spike", "firing")]
    sync.close()


# -- the event loop -----------------------------------------------------------------------------


def test_a_turn_comes_between_batches() -> None:
    turns = 0

    async def main() -> None:
        nonlocal turns
        engine = AsyncAlertEngine(_rules(), clock=ManualClock(NOW), batch_size=100)
        done = False

        async def count() -> None:
            nonlocal turns
            while not done:
                await asyncio.sleep(0)
                turns += 1

        counter = asyncio.create_task(count())
        await asyncio.sleep(0)
        turns = 0
        start = time.perf_counter()
        await engine.process_many(_stream(4_000))
        took = time.perf_counter() - start
        done = True
        await counter
        # A turn at least every TURN seconds of work (2 ms), the batches being short.
        assert turns >= min(10, int(took / 0.004))

    asyncio.run(main())
