"""What a write costs does not grow with the pool: an admission, an investment and a refund send
the same SQL statements (counted by a SQLAlchemy event listener) to a pool of 10 members and to
one of 1,000, on SQLite and PostgreSQL, and in memory they read and write the same single
position. A behaviour test: nothing here is timed (speed is measured in benchmarks/)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from auptimate_core import Investor, Pool, PoolLedger
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.clock import Clock
from auptimate_core.domain import Investor as InvestorType
from auptimate_core.pools import (
    Entry,
    LedgerEvent,
    LedgerSession,
    MemberRead,
    MemberSession,
    MemoryLedgerRepository,
    PoolRecord,
    Receipt,
)
from auptimate_core.pools.changes import FeedWatch, Recorded
from auptimate_core.pools.position import Amounts
from auptimate_core.ranking import InvestorRank

D = Decimal
T = TypeVar("T")
SIZES = (10, 1_000)


def populate(ledger: PoolLedger, members: int) -> None:
    """Pool ``p`` with ``members`` members, the first of whom invested 100; ``new`` registered
    but not admitted."""
    ledger.create_pool(Pool("p", "m"), actor="m")
    for n in range(members):
        ledger.register_investor(Investor(f"i{n:04}"))
        ledger.admit("p", f"i{n:04}", actor="m")
    ledger.invest("p", "i0000", D(100), actor="i0000", idempotency_key="first")
    ledger.register_investor(Investor("new"))


def writes(ledger: PoolLedger) -> dict[str, Callable[[], object]]:
    return {
        "admit": lambda: ledger.admit("p", "new", actor="m"),
        "invest": lambda: ledger.invest("p", "i0000", D(25), actor="i0000",
                                        idempotency_key="k-invest"),
        "refund": lambda: ledger.refund("p", "i0000", D(5), actor="m",
                                        idempotency_key="k-refund"),
        "replayed invest": lambda: ledger.invest("p", "i0000", D(25), actor="i0000",
                                                 idempotency_key="k-invest"),
    }


# -- SQL: the statements each write sends ---------------------------------------------------


def sent(ledger: PoolLedger, write: Callable[[], object]) -> list[str]:
    """The SQL statements ``write`` sends, as SQLAlchemy's cursor events see them."""
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    sa.event.listen(repository.engine, "before_cursor_execute", note)
    try:
        write()
    finally:
        sa.event.remove(repository.engine, "before_cursor_execute", note)
    return seen


def statements_by_size(open_ledger: Callable[[int], PoolLedger],
                       schemas: Mapping[int, str] | None = None) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for size in SIZES:
        ledger = open_ledger(size)
        populate(ledger, size)
        schema = None if schemas is None else schemas[size]
        found[size] = {
            name: [s if schema is None else s.replace(schema, "<schema>")
                   for s in sent(ledger, write)]
            for name, write in writes(ledger).items()}
        assert ledger.positions("p")[0].capital == D(120)
        ledger.verify()
        ledger.close()
    return found


def test_a_write_sends_the_same_statements_to_a_pool_of_10_and_of_1000_on_sqlite() -> None:
    found = statements_by_size(lambda size: PoolLedger.from_url("sqlite://"))
    assert found[10] == found[1_000]
    # BEGIN IMMEDIATE, one read, one statement per table written (pool, entry, holding,
    # receipt, the feed's head and the change).
    assert [len(found[10][name]) for name in ("admit", "invest", "refund")] == [7, 8, 8]
    assert len(found[10]["replayed invest"]) == 3  # BEGIN, the read, the entry replayed


@pytest.mark.postgres
def test_a_write_sends_the_same_statements_to_a_pool_of_10_and_of_1000_on_postgres(
        postgres_url: str) -> None:
    schemas = {size: f"cost_{uuid.uuid4().hex[:10]}" for size in SIZES}
    found = statements_by_size(
        lambda size: PoolLedger.from_url(postgres_url, schema=schemas[size]), schemas)
    assert found[10] == found[1_000]
    # One read (the pool locked, the investor, the holding, the receipt), one write.
    assert [len(found[10][name]) for name in ("admit", "invest", "refund")] == [2, 2, 2]
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for schema in schemas.values():
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_a_distribution_writes_each_table_once_on_postgres_and_per_table_on_sqlite() -> None:
    ledger = PoolLedger.from_url("sqlite://")
    populate(ledger, 50)
    for n in range(1, 50):
        ledger.invest("p", f"i{n:04}", D(10), actor=f"i{n:04}", idempotency_key=f"s{n}")
    statements = sent(ledger, lambda: ledger.distribute("p", D(1000), actor="m",
                                                        idempotency_key="d"))
    inserts = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    # The pool, the entries (one executemany), the holdings (one executemany), the receipt, the
    # feed's head and the change: the same six statements for 50 members as for 5.
    assert len(inserts) == 6
    ledger.verify()
    ledger.close()


# -- memory: the positions each write reads and writes ----------------------------------------


class CountingSession:
    """A session that counts the positions (one member's totals) read and written."""

    def __init__(self, inner: LedgerSession, counts: dict[str, int]) -> None:
        self._inner = inner
        self._counts = counts

    def _read(self, found: int) -> None:
        self._counts["read"] += found

    def investor(self, investor_id: str) -> InvestorType | None:
        return self._inner.investor(investor_id)

    def pool(self, pool_id: str, *, lock: bool = False) -> PoolRecord | None:
        return self._inner.pool(pool_id, lock=lock)

    def pools(self) -> list[PoolRecord]:
        return self._inner.pools()

    def holdings(self, pool_id: str) -> dict[str, Amounts]:
        found = self._inner.holdings(pool_id)
        self._read(len(found))
        return found

    def holding(self, pool_id: str, investor_id: str) -> Amounts | None:
        found = self._inner.holding(pool_id, investor_id)
        self._read(found is not None)
        return found

    def member(self, pool_id: str, investor_id: str, key: str | None) -> MemberRead | None:
        assert isinstance(self._inner, MemberSession)
        found = self._inner.member(pool_id, investor_id, key)
        self._read(found is not None and found.holding is not None)
        return found

    def memberships(self, investor_id: str) -> list[tuple[PoolRecord, Amounts]]:
        found = self._inner.memberships(investor_id)
        self._read(len(found))
        return found

    def receipt(self, key: str) -> Receipt | None:
        return self._inner.receipt(key)

    def entries(self, pool_id: str | None = None, first_seq: int = 1,
                last_seq: int | None = None) -> Iterator[Entry]:
        return self._inner.entries(pool_id, first_seq, last_seq)

    def top_investors(self, n: int) -> list[InvestorRank]:
        return self._inner.top_investors(n)

    def add_investor(self, investor: InvestorType) -> None:
        self._inner.add_investor(investor)

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        self._inner.add_pool(record, entry)

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        self._counts["written"] += len(holdings)
        self._inner.append(record, entries, holdings, receipt)

    def publish(self, event: LedgerEvent, clock: Clock) -> None:
        self._inner.publish(event, clock)

    def feed_head(self) -> int:
        return self._inner.feed_head()

    def changes(self, after: int, limit: int) -> list[Recorded]:
        return self._inner.changes(after, limit)


class CountingRepository:
    """A memory repository whose units of work count the positions they touch."""

    def __init__(self) -> None:
        self._inner = MemoryLedgerRepository()
        self.counts = {"read": 0, "written": 0}

    @property
    def identity(self) -> str:
        return self._inner.identity

    def watch(self) -> FeedWatch:
        return self._inner.watch()

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        return self._inner.read(lambda session: body(CountingSession(session, self.counts)))

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        return self._inner.write(
            lambda session: body(CountingSession(session, self.counts)), on_commit)

    def close(self) -> None:
        self._inner.close()


def test_a_write_touches_one_position_in_a_pool_of_10_and_of_1000_in_memory() -> None:
    touched: dict[int, dict[str, tuple[int, int]]] = {}
    for size in SIZES:
        repository = CountingRepository()
        ledger = PoolLedger(repository)
        populate(ledger, size)
        touched[size] = {}
        for name, write in writes(ledger).items():
            repository.counts.update(read=0, written=0)
            write()
            touched[size][name] = (repository.counts["read"], repository.counts["written"])
    assert touched[10] == touched[1_000]
    assert touched[10] == {"admit": (0, 1), "invest": (1, 1), "refund": (1, 1),
                           "replayed invest": (1, 0)}


# -- batches: a constant number of statements (one more per 128 commands on PostgreSQL) --------


def batch_statements(ledger: PoolLedger, size: int) -> list[str]:
    """The statements of a batch of ``size`` investments by the members of pool ``p`` (the
    values of an ``IN`` list shown as ``...``)."""
    batch = ledger.batch()
    for n in range(size):
        investor = f"i{n % 50:04}"
        batch.invest("p", investor, D(1), actor=investor, idempotency_key=f"b{size}/{n}")
    in_list = r"IN \((?:[^()]|\([^()]*\))*\)"
    return [re.sub(in_list, "IN (...)", s) for s in sent(ledger, batch.commit)]


def test_a_batch_sends_as_many_statements_for_400_investments_as_for_50_on_sqlite() -> None:
    ledger = PoolLedger.from_url("sqlite://")
    populate(ledger, 50)
    small, large = batch_statements(ledger, 50), batch_statements(ledger, 400)
    assert small == large
    # BEGIN, four reads (the pool, the investors, the holdings, the receipts), one statement
    # per table written (the pool, entries, holdings, receipts, the feed's head, changes).
    assert len(small) == 11
    ledger.verify()
    ledger.close()


@pytest.mark.postgres
def test_a_batch_sends_as_many_statements_for_400_investments_as_for_50_on_postgres(
        postgres_url: str) -> None:
    schema = f"cost_{uuid.uuid4().hex[:10]}"
    ledger = PoolLedger.from_url(postgres_url, schema=schema)
    populate(ledger, 50)
    small, large = batch_statements(ledger, 50), batch_statements(ledger, 400)
    # Four reads, then one write per run of 128 commands of the pool: those before the last
    # sent ahead in one pipeline, the last (with the changes) sent with the commit.
    assert len(small) == 5 and len(large) == 4 + 4
    assert large[:4] == small[:4] and large[-1] == small[-1]
    assert len(set(large[4:-1])) == 1 and "auptimate_feed" not in large[4]
    ledger.verify()
    ledger.close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
