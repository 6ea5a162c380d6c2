"""The change feed on SQL (SQLite, PostgreSQL, MariaDB) across threads and processes: concurrent
writers committing out of start order, followers in another process, many processes opening a
fresh database at once."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from auptimate_core import (
    Change,
    Invested,
    Investor,
    Pool,
    PoolLedger,
    StoreUnavailable,
    ValidationError,
)
from auptimate_core.aio import MemoryStorage
from auptimate_core.aio.sql import SqlStorage
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.testing.schemas import drop_schemas
from tests.test_ledger_sql import (
    SERVERS,
    assert_scrubbed,
    fresh_schema,
    listening_pid,
)

D = Decimal


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """A fresh schema on a real server: (url, schema)."""
    return fresh_schema(request, request.param)


class SleepyClock:
    """The wall clock, after a short random pause. The ledger reads it just before the
    statement that numbers the change, so writers reach that statement in a shuffled order."""

    def now(self) -> datetime:
        time.sleep(random.uniform(0, 0.004))
        return datetime.now(UTC)


def pause_after_numbering(ledger: PoolLedger) -> None:
    """Sleep a little after each statement that numbers a change, before its commit: writers
    that would commit out of the order they were numbered in (a sequence read before commit)
    do so often."""
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    head = repository.tables.feed_head.name

    def pause(*args: Any) -> None:
        if head in args[2] and "SET position = position +" in args[2]:
            time.sleep(random.uniform(0, 0.004))

    sa.event.listen(repository.engine, "after_cursor_execute", pause)


def _fund(ledger: PoolLedger, pools: list[str], investor: str = "a") -> None:
    ledger.register_investor(Investor(investor))
    for pool in pools:
        ledger.create_pool(Pool(pool, "m"), actor="m")
        ledger.admit(pool, investor, actor="m")


# -- concurrent writers, a concurrent follower ------------------------------------------------

WRITERS = 4
WRITES = 25


def test_a_polling_follower_sees_each_change_once_in_order_while_writers_race(
        server: tuple[str, str]) -> None:
    url, schema = server
    setup = PoolLedger.from_url(url, schema=schema)
    pools = [f"p{n}" for n in range(WRITERS)]
    _fund(setup, pools)
    start = setup.cursor()
    go = threading.Barrier(WRITERS + 1)
    failures: list[BaseException] = []

    def write(pool: str) -> None:
        # One ledger object per writer, as on separate servers; each writes to its own pool, so
        # only the feed orders them.
        ledger = PoolLedger.from_url(url, schema=schema, clock=SleepyClock())
        pause_after_numbering(ledger)
        try:
            go.wait()
            for n in range(WRITES):
                ledger.invest(pool, "a", D(n + 1), actor="a", idempotency_key=f"{pool}/{n}")
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            ledger.close()

    seen: list[Change] = []
    follower = PoolLedger.from_url(url, schema=schema)

    def follow() -> None:
        cursor = start
        go.wait()
        deadline = time.monotonic() + 60
        while len(seen) < WRITERS * WRITES and time.monotonic() < deadline:
            page = follower.changes(after=cursor, limit=3)
            seen.extend(page)
            cursor = page[-1].cursor if page else cursor

    threads = [threading.Thread(target=write, args=(pool,)) for pool in pools]
    threads.append(threading.Thread(target=follow))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert failures == []
    everything = setup.changes(after=start, limit=10_000)
    assert len(everything) == WRITERS * WRITES
    # Each change once, in the feed's order: nothing skipped while an earlier one was pending.
    assert [c.cursor for c in seen] == [c.cursor for c in everything]
    assert seen == everything
    for pool in pools:
        amounts = [c.event.transactions[0].amount for c in seen
                   if isinstance(c.event, Invested) and c.event.pool_id == pool]
        assert amounts == [D(n + 1) for n in range(WRITES)]
    # Commit times follow the feed's order: each was read after the one before had committed.
    ats = [c.at for c in everything]
    assert ats == sorted(ats)
    setup.close()
    follower.close()


# -- a follower in this process, a writer in another ------------------------------------------

CROSS_WRITES = 20


def _write_elsewhere(url: str, options: dict[str, Any], ready: Any) -> None:
    ledger = PoolLedger.from_url(url, **options)
    ready.wait(60)
    for n in range(CROSS_WRITES):
        ledger.invest("p", "a", D(n + 1), actor="a", idempotency_key=f"x{n}")
        time.sleep(random.uniform(0, 0.01))
    ledger.close()


def _follow_a_writer_process(url: str, options: dict[str, Any]) -> None:
    ledger = PoolLedger.from_url(url, **options)
    _fund(ledger, ["p"])
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    writer = spawn.Process(target=_write_elsewhere, args=(url, options, ready))
    writer.start()
    seen: list[Change] = []
    changes = ledger.follow(after=ledger.cursor(), timeout=60)
    ready.set()  # the follower listens from here: the writer may start
    for change in changes:
        seen.append(change)
        if len(seen) == CROSS_WRITES:
            break
    writer.join(60)
    assert writer.exitcode == 0
    assert [c.event.transactions[0].amount for c in seen] == [
        D(n + 1) for n in range(CROSS_WRITES)]
    assert seen == ledger.changes()[-CROSS_WRITES:]
    ledger.close()


def test_follow_sees_the_commits_of_another_process_on_sqlite(tmp_path: Path) -> None:
    _follow_a_writer_process(f"sqlite:///{tmp_path / 'feed.db'}", {})


def test_follow_sees_the_commits_of_another_process_on_a_server(
        server: tuple[str, str]) -> None:
    # PostgreSQL wakes the follower with LISTEN/NOTIFY; MariaDB has neither: it polls.
    url, schema = server
    _follow_a_writer_process(url, {"schema": schema})


@pytest.mark.postgres
def test_a_follower_whose_listening_connection_is_cut_is_store_unavailable(
        request: pytest.FixtureRequest) -> None:
    """The server ends the follower's LISTEN connection: StoreUnavailable, the driver's error
    scrubbed (as on the async ledger: tests/test_aio_privacy.py)."""
    url, schema = fresh_schema(request, "postgres")
    ledger = PoolLedger.from_url(url, schema=schema)
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            for _ in ledger.follow(timeout=60):
                pass
        except StoreUnavailable as error:
            failures.append(error)

    follower = threading.Thread(target=follow)
    follower.start()
    listening_pid(url, ledger.repository.identity, terminate=True)
    follower.join(60)
    assert len(failures) == 1 and "listening" in str(failures[0])
    assert_scrubbed(failures[0])
    ledger.close()


# -- many processes opening a fresh database at once ------------------------------------------

OPENERS = 4
ROUNDS = 6


def _open_fresh(urls: list[str], schemas: list[str | None], barrier: Any, worker: int) -> None:
    for url, schema in zip(urls, schemas):
        barrier.wait(60)
        options = {} if schema is None else {"schema": schema}
        ledger = PoolLedger.from_url(url, **options)
        # Every opener writes, so a table missing in any of them would show.
        ledger.register_investor(Investor(f"w{worker}"))
        ledger.close()


def _race_to_open(urls: list[str], schemas: list[str | None]) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(OPENERS)
    workers = [spawn.Process(target=_open_fresh, args=(urls, schemas, barrier, n))
               for n in range(OPENERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * OPENERS
    for url, schema in zip(urls, schemas):
        options = {} if schema is None else {"schema": schema}
        ledger = PoolLedger.from_url(url, **options)
        identities = {ledger.changes()[0].cursor.split(".")[1]}
        assert len(ledger.changes()) == OPENERS
        assert identities == {ledger.repository.identity}
        ledger.close()


def test_processes_opening_a_fresh_sqlite_file_at_once(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'fresh{n}.db'}" for n in range(ROUNDS)]
    _race_to_open(urls, [None] * ROUNDS)


@pytest.mark.mariadb
def test_processes_opening_a_fresh_mariadb_database_at_once(mariadb_url: str) -> None:
    schemas: list[str | None] = [f"o_{uuid.uuid4().hex[:12]}" for _ in range(ROUNDS)]
    _race_to_open([mariadb_url] * ROUNDS, schemas)
    drop_schemas(mariadb_url, schemas)


@pytest.mark.postgres
def test_processes_opening_a_fresh_postgres_schema_at_once(postgres_url: str) -> None:
    schemas: list[str | None] = [f"o_{uuid.uuid4().hex[:12]}" for _ in range(ROUNDS)]
    _race_to_open([postgres_url] * ROUNDS, schemas)
    drop_schemas(postgres_url, schemas)


# -- identity -----------------------------------------------------------------------------------


def test_a_reopened_database_keeps_its_identity_and_cursors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    first = PoolLedger.from_url(url)
    _fund(first, ["p"])
    cursor = first.changes()[1].cursor
    first.close()
    again = PoolLedger.from_url(url)
    assert [c.cursor for c in again.changes(after=cursor)] == [
        c.cursor for c in again.changes()[2:]]
    again.close()
    elsewhere = PoolLedger.from_url(f"sqlite:///{tmp_path / 'other.db'}")
    _fund(elsewhere, ["p"])
    with pytest.raises(ValidationError, match="another ledger"):
        elsewhere.changes(after=cursor)
    elsewhere.close()


@pytest.fixture(params=["sqlite", *SERVERS])
def ledger_url(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """A fresh SQLite file, or a fresh PostgreSQL schema or MariaDB database: (url, options)."""
    url, schema = fresh_schema(request, request.param)
    return url, {} if schema is None else {"schema": schema}


def test_the_feed_is_written_with_the_change_or_not_at_all(
        ledger_url: tuple[str, dict[str, Any]]) -> None:
    # On PostgreSQL the failing statement went with its commit (pipeline mode): the commit is
    # not made, and the driver's error is the library's like any other.
    url, options = ledger_url
    ledger = PoolLedger.from_url(url, retries=1, **options)
    _fund(ledger, ["p"])
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    before = ledger.changes()
    # A feed row already at the next position: the write's append fails, and so does the write.
    with repository.engine.begin() as conn:
        conn.execute(sa.insert(repository.tables.feed).values(
            position=len(before) + 1, at_us=0, type="Invested", pool_id="p", event="{}"))
    with pytest.raises(Exception, match="database error"):
        ledger.invest("p", "a", D(5), actor="a", idempotency_key="k")
    assert ledger.history("p") == []
    with repository.engine.begin() as conn:
        conn.execute(sa.delete(repository.tables.feed).where(
            repository.tables.feed.c.position == len(before) + 1))
    ledger.invest("p", "a", D(5), actor="a", idempotency_key="k")
    assert len(ledger.changes()) == len(before) + 1
    ledger.close()


def test_a_bad_poll_interval_is_refused(tmp_path: Path) -> None:
    """By the sync ledger and both async storages alike."""
    for interval in (0, -1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValidationError, match="poll_interval"):
            PoolLedger.from_url(f"sqlite:///{tmp_path / 'x.db'}", poll_interval=interval)
        with pytest.raises(ValidationError, match="poll_interval"):
            SqlStorage.from_url(f"sqlite:///{tmp_path / 'y.db'}", poll_interval=interval)
        with pytest.raises(ValidationError, match="poll_interval"):
            MemoryStorage(poll_interval=interval)  # type: ignore[arg-type]


def test_a_feed_head_made_before_it_kept_times_is_given_the_column_on_open(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    ledger = PoolLedger.from_url(url)
    _fund(ledger, ["p"])
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    with repository.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE auptimate_feed_head DROP COLUMN at_us"))
    ledger.close()
    again = PoolLedger.from_url(url)
    again.invest("p", "a", D(5), actor="a", idempotency_key="k")
    changes = again.changes()
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    assert isinstance(changes[-1].event, Invested)
    again.close()
