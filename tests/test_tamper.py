"""Every column of every ledger table edited outside the ledger, one edit at a time, on SQLite
and on a real PostgreSQL: ``verify()`` finds each one (an ``AuditError``, never a raw error).

The edits a keyless ledger cannot find (a chain cut short with its head, totals, positions and
receipt wound back consistently) are found with an ``audit_key``; docs/integrity.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from auptimate_core import AuditError, IdempotencyConflict, Investor, Pool, PoolLedger
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.testing.schemas import scratch_schema

D = Decimal
KEY = b"the ledger's secret"

# (table, column, SQL expression of the new value, WHERE clause): one edit each.
EDITS: list[tuple[str, str, str, str]] = [
    ("investors", "id", "'zed'", "id = 'ann'"),
    ("investors", "name", "'Someone Else'", "id = 'ann'"),
    ("investors", "email", "'else@example.com'", "id = 'ann'"),
    ("investors", "email", "NULL", "id = 'ann'"),
    ("investors", "hash", "'0000'", "id = 'ann'"),
    ("pools", "id", "'fund-z'", "id = 'fund-a'"),
    ("pools", "manager_id", "'mallory'", "id = 'fund-a'"),
    ("pools", "name", "'Renamed'", "id = 'fund-a'"),
    ("pools", "currency", "'EUR'", "id = 'fund-a'"),
    ("pools", "head_seq", "head_seq - 1", "id = 'fund-a'"),
    ("pools", "head_hash", "'ab'", "id = 'fund-a'"),
    ("pools", "invested", "invested + 100", "id = 'fund-a'"),
    ("pools", "refunded", "refunded + 100", "id = 'fund-a'"),
    ("pools", "fees", "fees + 100", "id = 'fund-a'"),
    ("pools", "distributed", "distributed + 100", "id = 'fund-a'"),
    ("pools", "carry", "carry + 100", "id = 'fund-a'"),
    ("pools", "head_mark", "'0000'", "id = 'fund-a'"),
    ("members", "pool_id", "'fund-z'", "investor_id = 'ann'"),
    ("members", "investor_id", "'zed'", "investor_id = 'ann'"),
    ("members", "invested", "invested + 100", "investor_id = 'ann'"),
    ("members", "refunded", "refunded + 100", "investor_id = 'bob'"),
    ("members", "fees", "fees + 1", "investor_id = 'ann'"),
    ("members", "distributed", "distributed + 1", "investor_id = 'ann'"),
    ("entries", "pool_id", "'fund-z'", "seq = 4"),
    ("entries", "seq", "99", "seq = 4"),
    ("entries", "kind", "'refund'", "seq = 4"),
    ("entries", "investor_id", "'bob'", "seq = 4"),
    ("entries", "amount", "amount + 10000", "seq = 4"),
    ("entries", "at_us", "at_us + 1", "seq = 4"),
    ("entries", "actor", "'m1'", "seq = 4"),
    ("entries", "detail", "'[]'", "seq = 4"),
    ("entries", "prev_hash", "'ab'", "seq = 4"),
    ("entries", "hash", "'ab'", "seq = 4"),
    ("receipts", "key", "'other-key'", "first_seq = 4"),
    ("receipts", "fingerprint", "'ab'", "first_seq = 4"),
    ("receipts", "action", "'refund'", "first_seq = 4"),
    ("receipts", "pool_id", "'fund-b'", "first_seq = 4"),
    ("receipts", "first_seq", "5", "first_seq = 4"),
    ("receipts", "count", "2", "first_seq = 4"),
    ("receipts", "hash", "'0000'", "first_seq = 4"),
]
"""Entry 4 is ann's investment of 300.00 (1 create, 2 and 3 admissions)."""

DELETES: list[tuple[str, str]] = [
    ("investors", "id = 'ann'"),
    ("pools", "id = 'fund-a'"),
    ("members", "investor_id = 'bob'"),
    ("entries", "seq = 4"),
    ("entries", "seq = (SELECT max(seq) FROM {entries} WHERE pool_id = 'fund-a')"),
    ("receipts", "first_seq = 4"),
    ("receipts", "first_seq = 5"),
]

# Text where an integer belongs: SQLite keeps it (PostgreSQL refuses the edit itself).
TEXT_IN_INTEGERS: list[tuple[str, str, str]] = [
    ("entries", "amount", "seq = 4"),
    ("entries", "at_us", "seq = 4"),
    ("entries", "seq", "seq = 4"),
    ("pools", "head_seq", "id = 'fund-a'"),
    ("pools", "invested", "id = 'fund-a'"),
    ("members", "fees", "investor_id = 'ann'"),
    ("receipts", "count", "first_seq = 4"),
    ("receipts", "first_seq", "first_seq = 4"),
]


IN_POOLS = ("members", "entries", "receipts")


def build(ledger: PoolLedger) -> None:
    """Two pools; ann and bob in fund-a with every kind of transaction, carry included."""
    ledger.create_pool(Pool("fund-a", "m1", "Fund A"), actor="m1")
    ledger.create_pool(Pool("fund-b", "m1", "Fund B"), actor="m1")
    ledger.register_investor(Investor("ann", "Ann Example", "ann@example.com"))
    ledger.register_investor(Investor("bob", "Bob Example"))
    ledger.register_investor(Investor("cy"))
    for investor in ("ann", "bob"):
        ledger.admit("fund-a", investor, actor="m1")
    ledger.admit("fund-b", "bob", actor="m1")
    ledger.invest("fund-a", "ann", D("300.00"), actor="ann", idempotency_key="a1")
    ledger.invest("fund-a", "bob", D("100.00"), actor="bob", idempotency_key="b1")
    ledger.invest("fund-b", "bob", D("50.00"), actor="bob", idempotency_key="b2")
    ledger.charge_fee("fund-a", D("8.00"), actor="m1", idempotency_key="f1")
    ledger.refund("fund-a", "bob", D("10.00"), actor="m1", idempotency_key="r1")
    ledger.distribute("fund-a", D("500.00"), actor="m1", idempotency_key="d1",
                      carry=D("0.20"))
    assert ledger.pool_totals("fund-a").carry > 0


class Backend:
    """Makes a fresh ledger and runs raw SQL on its tables."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema

    def ledger(self, key: bytes | None) -> PoolLedger:
        options = {} if self.schema is None else {"schema": self.schema}
        return PoolLedger.from_url(self.url, audit_key=key, **options)

    def run(self, ledger: PoolLedger, sql: str) -> int:
        repository = ledger.repository
        assert isinstance(repository, SqlLedgerRepository)
        names = {name: getattr(repository.tables, name).fullname
                 for name in ("investors", "pools", "members", "entries", "receipts")}
        with repository.engine.begin() as conn:
            count: int = conn.execute(sa.text(sql.format(**names))).rowcount
        return count


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Backend]:
    yield Backend(f"sqlite:///{tmp_path / 'ledger.db'}", None)


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Backend]:
    with scratch_schema(postgres_url, "tamper") as schema:
        yield Backend(postgres_url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(request.param)
    return found


def fresh(backend: Backend, key: bytes | None) -> PoolLedger:
    ledger = backend.ledger(key)
    build(ledger)
    assert ledger.verify() > 0
    return ledger


def in_fund_a(table: str, where: str) -> str:
    return f"pool_id = 'fund-a' AND {where}" if table in IN_POOLS else where


def update(table: str, column: str, value: str, where: str) -> str:
    return f"UPDATE {{{table}}} SET {column} = {value} WHERE {in_fund_a(table, where)}"


@pytest.mark.parametrize("key", [None, KEY], ids=["keyless", "keyed"])
@pytest.mark.parametrize(("table", "column", "value", "where"), EDITS,
                         ids=[f"{t}.{c}={v}" for t, c, v, _ in EDITS])
def test_every_column_edited_is_found(backend: Backend, key: bytes | None, table: str,
                                      column: str, value: str, where: str) -> None:
    ledger = fresh(backend, key)
    assert backend.run(ledger, update(table, column, value, where)) == 1
    with pytest.raises(AuditError):
        ledger.verify()
    ledger.close()


@pytest.mark.parametrize(("table", "where"), DELETES, ids=[f"{t}:{w}" for t, w in DELETES])
def test_every_row_deleted_is_found(backend: Backend, table: str, where: str) -> None:
    ledger = fresh(backend, None)
    assert backend.run(ledger, f"DELETE FROM {{{table}}} WHERE {in_fund_a(table, where)}") == 1
    with pytest.raises(AuditError):
        ledger.verify()
    ledger.close()


@pytest.mark.parametrize(("table", "column", "where"), TEXT_IN_INTEGERS,
                         ids=[f"{t}.{c}" for t, c, _ in TEXT_IN_INTEGERS])
def test_text_in_an_integer_column_is_an_audit_error_naming_table_and_column(
        sqlite: Backend, table: str, column: str, where: str) -> None:
    ledger = fresh(sqlite, None)
    assert sqlite.run(ledger, update(table, column, "'lots'", where)) == 1
    # Text sorts after numbers: an entry numbered 'lots' is read last, after the gap it left.
    named = "entry 4 is missing" if column == "seq" else rf"table '{table}'.*column '{column}'"
    with pytest.raises(AuditError, match=named):
        ledger.verify()


def truncate_last_write(backend: Backend, ledger: PoolLedger) -> None:
    """Delete fund-b's last write (bob's 50.00) and wind everything back consistently: the
    edit a keyless chain cannot tell from a ledger that never had it."""
    before = "(SELECT hash FROM {entries} WHERE pool_id = 'fund-b' AND seq = 2)"
    for sql in (
        f"UPDATE {{pools}} SET head_seq = 2, head_hash = {before}, invested = 0 "
        "WHERE id = 'fund-b'",
        "UPDATE {members} SET invested = 0 WHERE pool_id = 'fund-b'",
        "DELETE FROM {entries} WHERE pool_id = 'fund-b' AND seq = 3",
        "DELETE FROM {receipts} WHERE pool_id = 'fund-b'",
    ):
        assert backend.run(ledger, sql) == 1


def test_a_truncated_chain_wound_back_passes_without_a_key(backend: Backend) -> None:
    ledger = fresh(backend, None)
    truncate_last_write(backend, ledger)
    backend.run(ledger, "UPDATE {pools} SET head_mark = NULL WHERE id = 'fund-b'")
    ledger.verify()  # documented: without a key this cannot be told apart


def test_a_truncated_chain_wound_back_is_found_with_a_key(backend: Backend) -> None:
    ledger = fresh(backend, KEY)
    truncate_last_write(backend, ledger)
    with pytest.raises(AuditError, match="head_mark"):
        ledger.verify()
    backend.run(ledger, "UPDATE {pools} SET head_mark = NULL WHERE id = 'fund-b'")
    with pytest.raises(AuditError, match="no mark"):
        ledger.verify()


def test_a_receipt_re_pointed_at_another_investors_write_is_found(backend: Backend) -> None:
    """The attack of the issue: alice's retry would be answered with bob's transaction."""
    ledger = fresh(backend, None)
    backend.run(ledger, "UPDATE {receipts} SET first_seq = 5, hash = NULL "
                        "WHERE pool_id = 'fund-a' AND first_seq = 4")
    with pytest.raises(AuditError, match="receipt"):
        ledger.verify()


def test_a_keyless_ledger_keeps_working_and_verifying_after_its_writes(
        backend: Backend) -> None:
    ledger = fresh(backend, None)
    with pytest.raises(IdempotencyConflict):
        ledger.invest("fund-a", "ann", D("1.00"), actor="ann", idempotency_key="a1")
    assert ledger.verify() == 14


def test_a_retry_on_a_leftover_receipt_is_an_audit_error_not_an_index_error(
        backend: Backend) -> None:
    ledger = fresh(backend, None)
    backend.run(ledger, "DELETE FROM {entries} WHERE pool_id = 'fund-b' AND seq = 3")
    with pytest.raises(AuditError, match="'b2'.*not all there"):
        ledger.invest("fund-b", "bob", D("50.00"), actor="bob", idempotency_key="b2")
    ledger.close()
