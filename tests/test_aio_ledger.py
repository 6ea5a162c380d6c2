"""AsyncPoolLedger: the whole ledger contract awaited on memory, SQLite (aiosqlite) and a real
PostgreSQL (psycopg's asyncio driver); the same results as PoolLedger; follow() seeing the
commits of another process. (The event loop kept free: tests/test_aio_loop.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import multiprocessing
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

import tests.test_ledger as memory_ledger_tests
from auptimate_core import (
    Investor,
    ManualClock,
    PermissionDenied,
    Pool,
    PoolLedger,
    UnknownPool,
    ValidationError,
)
from auptimate_core.aio import AsyncPoolLedger, MemoryStorage
from auptimate_core.aio.greenlets import run_sync
from auptimate_core.aio.sql import SqlStorage
from auptimate_core.aio.storage import LedgerStorage
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.errors import InvalidURL, LedgerValidationError
from auptimate_core.pools import Change
from auptimate_core.testing.ledger_contract import START, LedgerContract
from tests.test_ledger_sql import RawSql, fresh_schema

D = Decimal
T = TypeVar("T")


class LoopThread:
    """An event loop running in a thread of its own; :meth:`run` awaits a coroutine on it
    from any other thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class BlockingRepository:
    """A storage's repository seen as a sync one: its units of work awaited on the loop
    thread, where the storage runs them."""

    def __init__(self, storage: LedgerStorage, loop: LoopThread) -> None:
        self.storage = storage
        self._loop = loop

    def read(self, body: Callable[[Any], T]) -> T:
        storage = self.storage
        return self._loop.run(storage.read(storage.repository.read, body))

    def write(self, body: Callable[[Any], T]) -> T:
        storage = self.storage
        return self._loop.run(storage.write(storage.repository.write, body))


class BlockingLedger:
    """An AsyncPoolLedger seen as a PoolLedger, for the sync contract suite: each coroutine
    method is awaited on the loop thread, ``follow`` is iterated there step by step."""

    def __init__(self, ledger: AsyncPoolLedger, loop: LoopThread) -> None:
        self.aio = ledger
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.aio, name)
        if not inspect.iscoroutinefunction(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(found(*args, **kwargs))

        return call

    @property
    def repository(self) -> BlockingRepository:
        return BlockingRepository(self.aio.storage, self._loop)

    def follow(self, after: str | None = None, timeout: float | None = None, *,
               actor: str | None = None, batch: int = 1000) -> Iterator[Change]:
        # PoolLedger.follow checks its arguments when called; the async iterator checks them
        # as it starts (tested below): check first, as the sync ledger does.
        aio = self.aio
        self._loop.run(aio.storage.read(aio.ledger.follow, after, timeout, actor=actor,
                                        batch=batch))
        return self._iterate(aio.follow(after, timeout, actor=actor, batch=batch))

    def _iterate(self, changes: AsyncIterator[Change]) -> Iterator[Change]:
        try:
            while True:
                try:
                    yield self._loop.run(anext(changes))
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(changes.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        self._loop.run(self.aio.close())


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


class AsyncLedgerContract(LedgerContract):
    """The ledger contract, each ledger an AsyncPoolLedger behind a BlockingLedger."""

    @pytest.fixture(autouse=True)
    def _loop(self, loop_thread: LoopThread) -> None:
        self.loop = loop_thread

    def make_storage(self) -> LedgerStorage:
        raise NotImplementedError

    def ledger(self, **options: Any) -> Any:
        options.setdefault("clock", ManualClock(START))
        ledger = BlockingLedger(AsyncPoolLedger(self.make_storage(), **options), self.loop)
        self._ledgers.append(ledger)  # type: ignore[arg-type]
        return ledger


class TestAsyncMemoryLedger(AsyncLedgerContract, memory_ledger_tests.TestMemoryLedger):
    def make_storage(self) -> LedgerStorage:
        return MemoryStorage()

    @staticmethod
    def _chain(repository: Any, pool_id: str) -> list[Any]:
        return memory_ledger_tests.TestMemoryLedger._chain(repository.storage.repository,
                                                          pool_id)

    def tamper_position(self, repository: Any, pool_id: str, investor_id: str,
                        invested: Decimal) -> None:
        super().tamper_position(repository.storage.repository, pool_id, investor_id, invested)

    def tamper_manager(self, repository: Any, pool_id: str, manager_id: str) -> None:
        super().tamper_manager(repository.storage.repository, pool_id, manager_id)


class AsyncRawSql(RawSql):
    """The raw SQL tamper hooks, run in a greenlet on the storage's sync repository."""

    loop: LoopThread

    def _tamper(self, hook: Callable[..., None], repository: Any, *args: Any) -> None:
        self.loop.run(run_sync(hook, self, repository.storage.opened, *args))

    def tamper_amount(self, repository: Any, *args: Any) -> None:
        self._tamper(RawSql.tamper_amount, repository, *args)

    def tamper_delete(self, repository: Any, *args: Any) -> None:
        self._tamper(RawSql.tamper_delete, repository, *args)

    def tamper_swap(self, repository: Any, *args: Any) -> None:
        self._tamper(RawSql.tamper_swap, repository, *args)

    def tamper_position(self, repository: Any, *args: Any) -> None:
        self._tamper(RawSql.tamper_position, repository, *args)

    def tamper_manager(self, repository: Any, *args: Any) -> None:
        self._tamper(RawSql.tamper_manager, repository, *args)


class TestAsyncSqliteLedger(AsyncRawSql, AsyncLedgerContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_storage(self) -> LedgerStorage:
        return SqlStorage.from_url(f"sqlite+aiosqlite:///{self.directory}/{uuid.uuid4().hex}.db")


@pytest.mark.postgres
class TestAsyncPostgresLedger(AsyncRawSql, AsyncLedgerContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_storage(self) -> LedgerStorage:
        return SqlStorage.from_url(self.url, schema=f"a_{uuid.uuid4().hex[:12]}")


# -- the same results as the sync ledger --------------------------------------------------------


def _story_sync(ledger: PoolLedger) -> list[Any]:
    out: list[Any] = [ledger.create_pool(Pool("p", "m"), actor="m")]
    for name in ("ann", "bob", "cy"):
        ledger.register_investor(Investor(name))
        ledger.admit("p", name, actor="m")
    out += [ledger.invest("p", n, D(a), actor=n, idempotency_key=f"i-{n}")
            for n, a in (("ann", 300), ("bob", "100.50"), ("cy", 7))]
    out.append(ledger.charge_fee("p", D("3.33"), actor="m", idempotency_key="f"))
    out.append(ledger.refund("p", "cy", D(2), actor="m", idempotency_key="r"))
    out.append(ledger.distribute("p", D("1000.01"), actor="m", idempotency_key="d",
                                 carry=D("0.2")))
    out.append(ledger.distribute("p", D("1000.01"), actor="m", idempotency_key="d",
                                 carry=D("0.2")))
    out += [ledger.positions("p"), ledger.portfolio("bob"), ledger.pool_totals("p"),
            ledger.history(), ledger.top_investors(2), ledger.verify()]
    out.append([(c.event, c.at) for c in ledger.changes()])
    return out


async def _story_async(ledger: AsyncPoolLedger) -> list[Any]:
    out: list[Any] = [await ledger.create_pool(Pool("p", "m"), actor="m")]
    for name in ("ann", "bob", "cy"):
        await ledger.register_investor(Investor(name))
        await ledger.admit("p", name, actor="m")
    out += [await ledger.invest("p", n, D(a), actor=n, idempotency_key=f"i-{n}")
            for n, a in (("ann", 300), ("bob", "100.50"), ("cy", 7))]
    out.append(await ledger.charge_fee("p", D("3.33"), actor="m", idempotency_key="f"))
    out.append(await ledger.refund("p", "cy", D(2), actor="m", idempotency_key="r"))
    out.append(await ledger.distribute("p", D("1000.01"), actor="m", idempotency_key="d",
                                       carry=D("0.2")))
    out.append(await ledger.distribute("p", D("1000.01"), actor="m", idempotency_key="d",
                                       carry=D("0.2")))
    out += [await ledger.positions("p"), await ledger.portfolio("bob"),
            await ledger.pool_totals("p"), await ledger.history(), await ledger.top_investors(2),
            await ledger.verify()]
    out.append([(c.event, c.at) for c in await ledger.changes()])
    return out


STORAGES = ["memory", "sqlite-memory", "sqlite-file",
            pytest.param("postgres", marks=pytest.mark.postgres)]


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if kind == "postgres":
        url, schema = fresh_schema(request, "postgres")
        return url, {"schema": schema}
    return {"memory": ("memory://", {}), "sqlite-memory": ("sqlite+aiosqlite://", {}),
            "sqlite-file": (f"sqlite+aiosqlite:///{tmp_path}/story.db", {})}[kind]


def _same_as_sync(kind: str, tmp_path: Path, request: pytest.FixtureRequest,
                  sync_story: Callable[[PoolLedger], list[Any]],
                  async_story: Callable[[AsyncPoolLedger], Coroutine[Any, Any, list[Any]]],
                  ) -> None:
    """The async story on the ``kind`` of storage tells what the sync story tells in memory."""
    expected = sync_story(PoolLedger(clock=ManualClock(START)))
    url, options = _url(kind, tmp_path, request)

    async def story() -> list[Any]:
        async with AsyncPoolLedger.from_url(url, clock=ManualClock(START), **options) as ledger:
            return await async_story(ledger)

    assert asyncio.run(story()) == expected


@pytest.mark.parametrize("kind", STORAGES)
def test_the_async_ledger_gives_the_sync_ledgers_results(kind: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    _same_as_sync(kind, tmp_path, request, _story_sync, _story_async)


def _batch_story_sync(ledger: PoolLedger) -> list[Any]:
    ledger.create_pool(Pool("p", "m"), actor="m")
    for name in ("ann", "bob"):
        ledger.register_investor(Investor(name))
    out: list[Any] = []
    with ledger.batch() as batch:
        batch.admit("p", "ann", actor="m").admit("p", "bob", actor="m")
        batch.invest("p", "ann", D(300), actor="ann", idempotency_key="a1")
    out.append(batch.results)
    out.append(ledger.invest_many([("p", "bob", D("100.50"), "bob", "b1"),
                                   ("p", "ann", D(5), "ann", "a2")]))
    refused = ledger.batch().invest("p", "ann", D(1), actor="ann", idempotency_key="a3")
    refused.refund("p", "bob", D(1000), actor="m", idempotency_key="r1")
    with pytest.raises(LedgerValidationError) as error:
        refused.commit()
    out.append(type(error.value))
    out.append(ledger.invest_many([("p", "bob", D("100.50"), "bob", "b1")]))  # replayed
    out += [ledger.positions("p"), ledger.verify(), [c.event for c in ledger.changes()]]
    return out


async def _batch_story_async(ledger: AsyncPoolLedger) -> list[Any]:
    await ledger.create_pool(Pool("p", "m"), actor="m")
    for name in ("ann", "bob"):
        await ledger.register_investor(Investor(name))
    out: list[Any] = []
    async with ledger.batch() as batch:
        batch.admit("p", "ann", actor="m").admit("p", "bob", actor="m")
        batch.invest("p", "ann", D(300), actor="ann", idempotency_key="a1")
    out.append(batch.results)
    out.append(await ledger.invest_many([("p", "bob", D("100.50"), "bob", "b1"),
                                         ("p", "ann", D(5), "ann", "a2")]))
    refused = ledger.batch().invest("p", "ann", D(1), actor="ann", idempotency_key="a3")
    refused.refund("p", "bob", D(1000), actor="m", idempotency_key="r1")
    with pytest.raises(LedgerValidationError) as error:
        await refused.commit()
    out.append(type(error.value))
    out.append(await ledger.invest_many([("p", "bob", D("100.50"), "bob", "b1")]))
    out += [await ledger.positions("p"), await ledger.verify(),
            [c.event for c in await ledger.changes()]]
    return out


@pytest.mark.parametrize("kind", STORAGES)
def test_async_batches_give_the_sync_batches_results(kind: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    _same_as_sync(kind, tmp_path, request, _batch_story_sync, _batch_story_async)


def test_the_async_ledger_has_every_method_of_the_sync_ledger() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    # The sync ledger's repository is reached here through the storage (AsyncPoolLedger.storage).
    assert public(PoolLedger) - public(AsyncPoolLedger) == {"repository"}
    not_awaited = {"repository", "from_url", "subscribe", "follow", "batch", "clock", "policy"}
    for name in public(PoolLedger) - not_awaited:
        assert inspect.iscoroutinefunction(getattr(AsyncPoolLedger, name)), name


def test_the_sync_and_async_ledgers_on_one_database_are_one_ledger(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    sync = PoolLedger.from_url(f"sqlite:///{path}")
    sync.create_pool(Pool("p", "m"), actor="m")

    async def main() -> tuple[list[Change], str]:
        async with AsyncPoolLedger.from_url(f"sqlite+aiosqlite:///{path}") as ledger:
            await ledger.register_investor(Investor("ann"))
            return await ledger.changes(), await ledger.cursor()

    changes, cursor = asyncio.run(main())
    assert changes == sync.changes()
    assert cursor == sync.cursor()
    sync.close()


# -- the async API's own behaviour --------------------------------------------------------------


def test_errors_and_checks_are_the_sync_ledgers() -> None:
    async def main() -> None:
        ledger = AsyncPoolLedger()
        with pytest.raises(UnknownPool):
            await ledger.invest("nope", "a", D(1), actor="a", idempotency_key="k")
        with pytest.raises(PermissionDenied):
            await ledger.create_pool(Pool("p", "m"), actor="intruder")
        follower = ledger.follow(after="garbage")
        # follow() returns at once; the cursor is checked as the iteration starts.
        with pytest.raises(ValidationError) as caught:
            await anext(follower)
        assert caught.value.field == "after"
        with pytest.raises(ValidationError, match="timeout"):
            await anext(ledger.follow(timeout=-1))
        with pytest.raises(PermissionDenied):
            await anext(ledger.follow(actor="m", timeout=0))
        await ledger.close()

    asyncio.run(main())


def test_an_unknown_scheme_names_the_async_ones() -> None:
    with pytest.raises(InvalidURL) as caught:
        AsyncPoolLedger.from_url("mysql://db/pools")
    assert "sqlite+aiosqlite" in caught.value.schemes
    assert "postgresql+psycopg" in caught.value.schemes


def test_an_async_engine_from_a_url_has_the_sync_ones_options(tmp_path: Path) -> None:
    """Both from_urls make their engines in one place: parameters hidden, SQLite's connection
    usable from any thread, an in-memory database on one shared connection; a bare scheme on
    the asyncio driver."""
    path = tmp_path / "o.db"
    pairs = [(SqlLedgerRepository.from_url(f"sqlite:///{path}").engine,
              SqlStorage.from_url(f"sqlite:///{path}").engine),
             (SqlLedgerRepository.from_url("sqlite://").engine,
              SqlStorage.from_url("sqlite://").engine)]
    for sync, async_engine in pairs:
        assert async_engine.url.drivername == "sqlite+aiosqlite"
        engine = async_engine.sync_engine
        assert sync.hide_parameters and engine.hide_parameters
        assert (isinstance(sync.pool, sa.pool.StaticPool)
                == isinstance(engine.pool, sa.pool.StaticPool) == (sync is pairs[1][0]))
        sync.dispose()
        asyncio.run(async_engine.dispose())
    assert SqlStorage.from_url("postgresql://u@127.0.0.1:1/x").engine.url.drivername == (
        "postgresql+psycopg")


def test_a_cancelled_write_still_commits_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncPoolLedger.from_url(f"sqlite+aiosqlite:///{tmp_path}/c.db") as ledger:
            await ledger.create_pool(Pool("p", "m"), actor="m")
            await ledger.register_investor(Investor("a"))
            await ledger.admit("p", "a", actor="m")
            write = asyncio.ensure_future(
                ledger.invest("p", "a", D(5), actor="a", idempotency_key="k"))
            await asyncio.sleep(0)  # the write has started
            write.cancel()
            with pytest.raises(asyncio.CancelledError):
                await write
            # The next write takes its turn after the cancelled one, which went on and
            # committed; repeating it with its key returns what it wrote.
            await ledger.register_investor(Investor("b"))
            committed = await ledger.history("p")
            assert [(tx.investor_id, tx.amount) for tx in committed] == [("a", D(5))]
            again = await ledger.invest("p", "a", D(5), actor="a", idempotency_key="k")
            assert again == committed[0]
            assert await ledger.verify() == 3

    asyncio.run(main())


# -- following the feed -------------------------------------------------------------------------


def _write_elsewhere(url: str, options: dict[str, Any], count: int) -> None:
    ledger = PoolLedger.from_url(url, **options)
    for n in range(count):
        ledger.invest("p", "a", D(n + 1), actor="a", idempotency_key=f"elsewhere-{n}")
    ledger.close()


async def _follow_another_process(url: str, options: dict[str, Any], sync_url: str) -> None:
    count = 5
    async with AsyncPoolLedger.from_url(url, **options) as ledger:
        await ledger.create_pool(Pool("p", "m"), actor="m")
        await ledger.register_investor(Investor("a"))
        await ledger.admit("p", "a", actor="m")
        start = await ledger.cursor()
        seen: list[Change] = []
        follower = ledger.follow(after=start, timeout=30)
        first = asyncio.ensure_future(anext(follower))
        await asyncio.sleep(0.2)  # the follower is waiting for a commit
        process = multiprocessing.get_context("spawn").Process(
            target=_write_elsewhere, args=(sync_url, options, count))
        process.start()
        seen.append(await first)
        async for change in follower:
            seen.append(change)
            if len(seen) == count:
                break
        await asyncio.to_thread(process.join, 30)
        assert process.exitcode == 0
        assert seen == await ledger.changes(after=start)
        assert [c.event.transactions[0].amount for c in seen] == [D(n + 1) for n in
                                                                   range(count)]


@pytest.mark.postgres
def test_follow_sees_what_another_process_commits(tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    path = tmp_path / "followed.db"
    asyncio.run(_follow_another_process(f"sqlite+aiosqlite:///{path}", {}, f"sqlite:///{path}"))
    url, schema = fresh_schema(request, "postgres")
    asyncio.run(_follow_another_process(url, {"schema": schema}, url))


def test_followers_share_one_wake_up_and_stop_it_when_done() -> None:
    async def main() -> None:
        ledger = AsyncPoolLedger()
        await ledger.create_pool(Pool("p", "m"), actor="m")
        start = await ledger.cursor()
        followers = [ledger.follow(after=start, timeout=5) for _ in range(3)]
        firsts = [asyncio.ensure_future(anext(f)) for f in followers]
        await asyncio.sleep(0.05)
        wakeups = ledger._wakeups
        assert wakeups._followers == 3 and wakeups._listener is not None
        await ledger.register_investor(Investor("a"))
        changes = await ledger.changes(after=start)
        assert [await first for first in firsts] == changes * 3
        for follower in followers:
            await follower.aclose()  # type: ignore[attr-defined]
        assert wakeups._followers == 0 and wakeups._listener is None

    asyncio.run(main())


def test_a_commit_through_another_ledger_object_wakes_a_memory_follower() -> None:
    async def main() -> None:
        storage = MemoryStorage(poll_interval=0.01)
        ours, theirs = AsyncPoolLedger(storage), PoolLedger(storage.repository)
        theirs.create_pool(Pool("p", "m"), actor="m")
        follower = ours.follow(after=await ours.cursor(), timeout=5)
        pending = asyncio.ensure_future(anext(follower))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(theirs.register_investor, Investor("a"))
        change = await asyncio.wait_for(pending, 2)
        assert change == theirs.changes()[-1]
        await follower.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_lost_listen_connection_ends_followers_with_store_unavailable() -> None:
    from auptimate_core.errors import StoreUnavailable

    class Broken(MemoryStorage):
        async def listen(self, wake: Callable[[], None], ready: Callable[[], None]) -> None:
            ready()
            await asyncio.sleep(0.02)
            raise StoreUnavailable("lost the connection listening for ledger changes")

    async def main() -> None:
        ledger = AsyncPoolLedger(Broken())
        await ledger.create_pool(Pool("p", "m"), actor="m")
        with pytest.raises(StoreUnavailable):
            async for _ in ledger.follow(after=await ledger.cursor()):
                pass
        with contextlib.suppress(StoreUnavailable):
            await ledger.close()

    asyncio.run(main())
