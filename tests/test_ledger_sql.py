"""The ledger contract on SQLite, on a real PostgreSQL and on a real MariaDB, edits made with raw
SQL, concurrent writers in separate processes, and driver errors mapped to the library's."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa

from auptimate_core import (
    IdempotencyConflict,
    Investor,
    LedgerError,
    Pool,
    PoolLedger,
    StoreUnavailable,
)
from auptimate_core.backends.sql.driver_errors import DriverError
from auptimate_core.backends.sql.feed import channel_of
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.pools import AuditChain, LedgerSession, PoolRecord
from auptimate_core.pools.position import Amounts
from auptimate_core.pools.repository import LedgerRepository
from auptimate_core.testing.ledger.feed import FeedScenarios
from auptimate_core.testing.ledger.harness import START
from auptimate_core.testing.ledger.money import MoneyScenarios
from auptimate_core.testing.ledger_contract import LedgerContract
from auptimate_core.testing.schemas import drop_schemas
from auptimate_core.testing.servers import free_port
from tests.test_privacy import assert_clean, chain, texts_of

D = Decimal


class RawSql:
    """Tamper hooks that go straight to the tables with hand-written SQL."""

    @staticmethod
    def _run(repository: SqlLedgerRepository, *statements: tuple[str, dict[str, Any]]) -> None:
        with repository.engine.begin() as conn:
            for sql, params in statements:
                assert conn.execute(sa.text(sql), params).rowcount == 1

    @staticmethod
    def _name(table: sa.Table) -> str:
        return table.fullname

    def tamper_amount(self, repository: Any, pool_id: str, seq: int, amount: Decimal) -> None:
        entries = self._name(repository.tables.entries)
        self._run(repository, (f"UPDATE {entries} SET amount = :units "
                               "WHERE pool_id = :p AND seq = :s",
                               {"units": int(amount * 10_000), "p": pool_id, "s": seq}))

    def tamper_delete(self, repository: Any, pool_id: str, seq: int) -> None:
        entries = self._name(repository.tables.entries)
        self._run(repository, (f"DELETE FROM {entries} WHERE pool_id = :p AND seq = :s",
                               {"p": pool_id, "s": seq}))

    def tamper_swap(self, repository: Any, pool_id: str, seq_a: int, seq_b: int) -> None:
        entries = self._name(repository.tables.entries)
        move = f"UPDATE {entries} SET seq = :to WHERE pool_id = :p AND seq = :s"
        self._run(repository, (move, {"to": -1, "p": pool_id, "s": seq_a}),
                  (move, {"to": seq_a, "p": pool_id, "s": seq_b}),
                  (move, {"to": seq_b, "p": pool_id, "s": -1}))

    def tamper_position(self, repository: Any, pool_id: str, investor_id: str,
                        invested: Decimal) -> None:
        members = self._name(repository.tables.members)
        self._run(repository, (f"UPDATE {members} SET invested = :u "
                               "WHERE pool_id = :p AND investor_id = :i",
                               {"u": int(invested * 10_000), "p": pool_id, "i": investor_id}))

    def tamper_manager(self, repository: Any, pool_id: str, manager_id: str) -> None:
        pools = self._name(repository.tables.pools)
        self._run(repository, (f"UPDATE {pools} SET manager_id = :m WHERE id = :p",
                               {"m": manager_id, "p": pool_id}))


class TestSqliteLedger(RawSql, LedgerContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_repository(self) -> LedgerRepository:
        path = self.directory / f"{uuid.uuid4().hex}.db"
        return SqlLedgerRepository.from_url(f"sqlite:///{path}")


@pytest.mark.postgres
class TestPostgresLedger(RawSql, LedgerContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_repository(self) -> LedgerRepository:
        return SqlLedgerRepository.from_url(self.url, schema=f"t_{uuid.uuid4().hex[:12]}")


@pytest.mark.postgres
class TestPostgresLedgerCommittingApart(MoneyScenarios, FeedScenarios):
    """The money and feed scenarios with each write's commit sent after its statement."""

    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_repository(self) -> LedgerRepository:
        return SqlLedgerRepository.from_url(self.url, schema=f"t_{uuid.uuid4().hex[:12]}",
                                            pipeline=False)


@pytest.mark.mariadb
class TestMariaDBLedger(RawSql, LedgerContract):
    @pytest.fixture(autouse=True)
    def _server(self, mariadb_url: str) -> None:
        self.url = mariadb_url

    def make_repository(self) -> LedgerRepository:
        return SqlLedgerRepository.from_url(self.url, schema=f"t_{uuid.uuid4().hex[:12]}")


# -- processes writing to one pool on a server -------------------------------------------------

WORKERS = 3
ROUNDS = 30


def _writer(url: str, schema: str, worker: int, start: Any) -> None:
    ledger = PoolLedger.from_url(url, schema=schema)
    start.wait()
    investor = f"w{worker}"
    for n in range(ROUNDS):
        ledger.invest("shared", investor, D(n + 1), actor=investor,
                      idempotency_key=f"{investor}/{n}")
        if n % 10 == 0:
            ledger.distribute("shared", D("1.00"), actor="m", idempotency_key=f"{investor}/d{n}")
        # Halfway, every worker uses one and the same key in the other pool: keys are scoped
        # to their actor, so none conflicts with another's.
        if n == ROUNDS // 2:
            with contextlib.suppress(IdempotencyConflict):
                ledger.invest("side", investor, D(1), actor=investor,
                              idempotency_key="same-moment")
    ledger.close()


def assert_scrubbed(error: BaseException) -> None:
    """Every driver error in ``error``'s chain is the scrubbed one (parameters hidden, its
    ``orig`` a DriverError), none is the driver's own, and no personal data is in its texts."""
    links = list(chain(error))
    wrapped = [link for link in links if isinstance(link, sa.exc.DBAPIError)]
    assert wrapped, "the database's error is still said"
    for link in wrapped:
        assert link.params is None and isinstance(link.orig, DriverError), repr(link)
    assert not [link for link in links if type(link).__module__.startswith("psycopg")]
    assert_clean(texts_of(error))


def listening_pid(url: str, identity: str, terminate: bool = False) -> int:
    """The server process of the connection listening for the changes of the ledger
    ``identity`` (waited for, up to 10 s), ended first with ``terminate``."""
    engine = sa.create_engine(url)
    query = sa.text("SELECT pid, CASE WHEN :end THEN pg_terminate_backend(pid) END "
                    "FROM pg_stat_activity WHERE query = :listening")
    listening = f'LISTEN "{channel_of(identity)}"'
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            # A transaction each time: pg_stat_activity is one snapshot in a transaction.
            with engine.begin() as conn:
                found = conn.execute(query, {"end": terminate, "listening": listening}).first()
            if found is not None:
                return int(found.pid)
            time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError(f"nothing listens on {listening}")


SERVERS: Final = [pytest.param("postgres", marks=pytest.mark.postgres),
                  pytest.param("mariadb", marks=pytest.mark.mariadb)]
"""The real servers a fixture's ``params`` name for :func:`fresh_schema`."""


def fresh_schema(request: pytest.FixtureRequest, where: str) -> tuple[str, str | None]:
    """``(url, schema)`` for one test: a fresh SQLite file (no schema) for ``"sqlite"``, a new
    PostgreSQL schema for ``"postgres"`` or MariaDB database for ``"mariadb"``, dropped when
    the test is done (the SQL ledger's, feed's and async ledger's fixtures)."""
    if where == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        return f"sqlite:///{tmp_path / 'fresh.db'}", None
    url: str = request.getfixturevalue("postgres_url" if where == "postgres" else "mariadb_url")
    schema = f"c_{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: drop_schemas(url, [schema]))
    return url, schema


def _schema(request: pytest.FixtureRequest, where: str) -> str:
    schema = fresh_schema(request, where)[1]
    assert schema is not None
    return schema


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL schema for one test, dropped afterwards."""
    return _schema(request, "postgres")


@pytest.fixture
def my_schema(request: pytest.FixtureRequest) -> str:
    """A MariaDB database (MySQL's schema) for one test, dropped afterwards."""
    return _schema(request, "mariadb")


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """A fresh schema on a real server: (url, schema)."""
    return fresh_schema(request, request.param)


def test_processes_writing_to_one_pool_never_lose_an_update(server: tuple[str, str]) -> None:
    url, schema = server
    ledger = PoolLedger.from_url(url, schema=schema)
    investors = [f"w{n}" for n in range(WORKERS)]
    for pool in (Pool("shared", "m"), Pool("side", "m")):
        ledger.create_pool(pool, actor="m")
        for investor in investors:
            ledger.register_investor(Investor(investor))
            ledger.admit(pool.id, investor, actor="m")
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    workers = [spawn.Process(target=_writer, args=(url, schema, n, start))
               for n in range(WORKERS)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    each = sum(D(n + 1) for n in range(ROUNDS))
    positions = ledger.positions("shared")
    assert [p.invested for p in positions] == [each] * WORKERS
    totals = ledger.pool_totals("shared")
    assert totals.invested == each * WORKERS
    assert totals.distributed == sum(p.distributed for p in positions) == D(3 * WORKERS)
    # Every worker used one key in "side", each as its own actor: keys are the actor's own,
    # so each wrote (docs/integrity.md).
    assert len(ledger.history("side")) == WORKERS
    assert ledger.verify() == len(ledger.history()) + 2 * (1 + WORKERS)
    ledger.close()


def _lock_waiters(conn: sa.Connection, schema: str) -> int:
    """How many transactions wait for a row lock (the pools' rows of ``schema``)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            f"AND query LIKE 'SELECT {schema}.auptimate_pools.id%'")).scalar_one())
    return int(conn.execute(sa.text("SELECT count(*) FROM information_schema.innodb_trx "
                                    "WHERE trx_state = 'LOCK WAIT'")).scalar_one())


def test_a_write_that_waited_for_the_pools_lock_builds_on_what_committed_meanwhile(
        server: tuple[str, str]) -> None:
    # Two investments queue on the pool's row, held by another transaction. Once it lets go,
    # the second to get the lock read the holding in a snapshot older than the first one's
    # commit (InnoDB's REPEATABLE READ snapshot on MariaDB): it must read again, or it would
    # write the holding without the first investment.
    url, schema = server
    ledger = PoolLedger.from_url(url, schema=schema)
    ledger.create_pool(Pool("p", "m"), actor="m")
    ledger.register_investor(Investor("a"))
    ledger.admit("p", "a", actor="m")
    ledger.invest("p", "a", D(100), actor="a", idempotency_key="first")
    engine = sa.create_engine(url)
    failures: list[BaseException] = []

    def invest(amount: int) -> None:
        try:
            ledger.invest("p", "a", D(amount), actor="a", idempotency_key=f"k{amount}")
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    with engine.connect() as holder, engine.connect() as watcher:
        holder.execute(sa.text(f"SELECT 1 FROM {schema}.auptimate_pools WHERE id = 'p' "
                               "FOR UPDATE"))
        threads = [threading.Thread(target=invest, args=(n,)) for n in (10, 20)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline:
            waiting = _lock_waiters(watcher, schema)
            watcher.rollback()
            if waiting == 2:
                break
            time.sleep(0.2)  # InnoDB refreshes innodb_trx when last read over 0.1s before
        assert waiting == 2, failures
        holder.rollback()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert [p.invested for p in ledger.positions("p")] == [D(130)]
    assert ledger.verify() == 5
    ledger.close()
    engine.dispose()


@pytest.fixture(params=["sqlite", *SERVERS])
def database(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """A fresh SQLite file, or a PostgreSQL schema or MariaDB database dropped afterwards:
    (url, schema)."""
    return fresh_schema(request, request.param)


def test_a_head_that_moved_under_a_write_is_retried_then_refused(
        database: tuple[str, str | None]) -> None:
    # The pool's head is read and written in one unit of work; a record whose head is not the
    # stored one (another writer's change in between) fails the write and it runs again. This
    # unit of work publishes no change: the write without the feed's part.
    url, schema = database
    repository = SqlLedgerRepository.from_url(url, schema=schema, retries=2)
    ledger = PoolLedger(repository)
    ledger.create_pool(Pool("p", "m"), actor="m")
    chain = AuditChain()
    runs = []

    def stale(session: LedgerSession) -> None:
        runs.append(1)
        record = session.pool("p", lock=True)
        assert record is not None
        entry = chain.seal("p", record.head_seq + 2, "admit", "a", D(0), START, "m", "",
                           record.head_hash)
        session.append(PoolRecord(record.pool, record.head_seq + 2, entry.hash, record.totals),
                       [entry], {}, None)

    with pytest.raises(LedgerError, match="gave up after 3 tries"):
        repository.write(stale)
    assert len(runs) == 3
    assert ledger.verify() == 1

    def fresh(session: LedgerSession) -> None:
        record = session.pool("p", lock=True)
        assert record is not None
        entry = chain.seal("p", record.head_seq + 1, "admit", "a", D("0.00"), START, "m", "",
                           record.head_hash)
        session.append(PoolRecord(record.pool, record.head_seq + 1, entry.hash, record.totals),
                       [entry], {"a": Amounts.zero("USD")}, None)

    ledger.register_investor(Investor("a"))
    before = ledger.changes()
    repository.write(fresh)
    assert ledger.verify() == 2 and ledger.changes() == before
    assert [p.investor_id for p in ledger.positions("p")] == ["a"]
    ledger.close()


# -- errors ------------------------------------------------------------------------------------


def test_an_unreachable_server_is_store_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
        PoolLedger.from_url(url)
    assert_scrubbed(caught.value)


@pytest.mark.postgres
def test_a_read_on_a_pooled_connection_the_driver_knows_dead_is_store_unavailable(
        postgres_url: str, pg_schema: str) -> None:
    """A read sets its isolation before any statement: on a connection the driver has seen
    die, that fails with the driver's bare error. It is StoreUnavailable, its cause scrubbed,
    and the dead connection leaves the pool (the next read works)."""
    # Without a rollback on return, the pool keeps what the driver knows of the connection.
    ledger = PoolLedger.from_url(postgres_url, schema=pg_schema, engine_options={
        "pool_size": 1, "max_overflow": 0, "pool_reset_on_return": None})
    ledger.create_pool(Pool("p", "m"), actor="m")
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    pooled = repository.engine.raw_connection()
    driver: Any = pooled.driver_connection
    killer = sa.create_engine(postgres_url)
    with killer.begin() as conn:
        conn.execute(sa.select(sa.func.pg_terminate_backend(driver.info.backend_pid)))
    killer.dispose()
    deadline = time.monotonic() + 10
    while not driver.broken and time.monotonic() < deadline:  # until the driver sees it
        with contextlib.suppress(Exception):
            driver.pgconn.consume_input()
        time.sleep(0.01)
    assert driver.broken
    pooled.close()
    with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
        ledger.pool("p")
    assert_scrubbed(caught.value)
    assert ledger.pool("p") == Pool("p", "m")
    ledger.close()


def test_other_driver_errors_are_ledger_errors(tmp_path: Path) -> None:
    ledger = PoolLedger.from_url(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.create_pool(Pool("p", "m"), actor="m")
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    with repository.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE auptimate_members"))
    with pytest.raises(LedgerError, match="database error") as caught:
        ledger.positions("p")
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
    ledger.close()


def test_a_plain_postgresql_url_means_psycopg() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreUnavailable):
        PoolLedger.from_url(url)


def test_in_memory_sqlite_is_shared_by_threads() -> None:
    ledger = PoolLedger.from_url("sqlite://")
    ledger.create_pool(Pool("p", "m"), actor="m")
    assert PoolLedger(ledger.repository).pool("p") == Pool("p", "m")
