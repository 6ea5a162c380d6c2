"""Random sequences of ledger operations, refused and repeated ones included, held to the model,
on the memory, SQLite and (a few examples) PostgreSQL and MariaDB backends.

After every step: positions and totals equal the model's, the members' positions add up to the
pool's totals, no position is negative, the audit chain verifies, subscribers have received
exactly one event per committed change, and the change feed holds those same events in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from auptimate_core import Investor, ManualClock, Pool, PoolLedger, Transaction
from auptimate_core.money import minor_digits
from tests.ledger_model import LedgerModel, Outcome

POOLS = ("p1", "p1", "p2")
MANAGERS = ("m1", "m2")
INVESTORS = ("ann", "bob", "cy")
ACTORS = (*MANAGERS, *INVESTORS)
KEYS = tuple(f"k{n}" for n in range(24))
START = datetime(2026, 1, 1, tzinfo=UTC)

units = st.integers(min_value=1, max_value=40_000)
carries = st.sampled_from([None, None, Decimal("0"), Decimal("0.2"), Decimal("0.25")])
# None stands for the actor who may do it (the manager, or the investor): mostly allowed requests.
actors = st.sampled_from([None] * 8 + list(ACTORS))


class LedgerMachine(RuleBasedStateMachine):
    """Drives a ledger and the model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.ledger = self.make_ledger(self.clock)
        self.model = LedgerModel()
        self.events: list[Any] = []
        self.ledger.subscribe(self.events.append)
        self.feed: list[Any] = []
        self.cursor: str | None = None
        self.requests: dict[str, tuple[str, tuple[Any, ...]]] = {}

    def make_ledger(self, clock: ManualClock) -> PoolLedger:
        return PoolLedger(clock=clock)

    def teardown(self) -> None:
        self.ledger.close()

    @initialize()
    def open_a_pool(self) -> None:
        self.create_pool("p1", "m1", "USD", None)
        for n, investor in enumerate(("ann", "bob")):
            self.register(investor)
            self.admit("p1", investor, None)
            self.invest("p1", investor, 1_000 * (n + 1), False, None, f"start-{investor}")

    # -- helpers ------------------------------------------------------------------------------

    def _manager(self, pool_id: str, actor: str | None) -> str:
        if actor is not None:
            return actor
        pool = self.model.pools.get(pool_id)
        return pool.manager if pool else "m1"

    def _amount(self, pool_id: str, n: int, odd: bool) -> Decimal:
        pool = self.model.pools.get(pool_id)
        digits = minor_digits(pool.currency if pool else "USD")
        return Decimal(n * 10 + 1).scaleb(-digits - 1) if odd else Decimal(n).scaleb(-digits)

    def _check(self, expected: Outcome, call: Callable[[], object]) -> object:
        self.clock.advance(timedelta(seconds=1))
        if expected.error is not None:
            with pytest.raises(expected.error):
                call()
            return None
        result = call()
        if expected.rows:
            txs = result if isinstance(result, list) else [result]
            assert all(isinstance(tx, Transaction) for tx in txs)
            pool = self.model.pools[expected.pool]
            assert [(tx.kind, tx.investor_id, tx.amount) for tx in txs] == [
                (kind, investor, pool.amount(n)) for kind, investor, n in expected.rows]
            assert [tx.id for tx in txs] == [
                f"{expected.pool}:{expected.first_seq + i}" for i in range(len(txs))]
        return result

    def _money(self, op: str, args: tuple[Any, ...], key: str) -> None:
        expected = getattr(self.model, op)(*args, key)
        self._check(expected, lambda: self._call(op, args, key))
        if expected.error is None and not expected.replay:
            self.requests[key] = (op, args)

    def _call(self, op: str, args: tuple[Any, ...], key: str) -> object:
        if op == "invest":
            pool_id, investor, amount, actor = args
            return self.ledger.invest(pool_id, investor, amount, actor=actor,
                                      idempotency_key=key)
        if op == "refund":
            pool_id, investor, amount, actor = args
            return self.ledger.refund(pool_id, investor, amount, actor=actor,
                                      idempotency_key=key)
        if op == "charge_fee":
            pool_id, total, actor = args
            return self.ledger.charge_fee(pool_id, total, actor=actor, idempotency_key=key)
        pool_id, total, actor, carry = args
        return self.ledger.distribute(pool_id, total, actor=actor, idempotency_key=key,
                                      carry=carry)

    # -- rules --------------------------------------------------------------------------------

    @rule(pool_id=st.sampled_from(POOLS), manager=st.sampled_from(MANAGERS),
          currency=st.sampled_from(["USD", "USD", "JPY"]), actor=actors)
    def create_pool(self, pool_id: str, manager: str, currency: str, actor: str | None) -> None:
        actor = manager if actor is None else actor
        expected = self.model.create_pool(pool_id, manager, currency, actor)
        self._check(expected, lambda: self.ledger.create_pool(
            Pool(pool_id, manager, currency=currency), actor=actor))

    @rule(investor=st.sampled_from(INVESTORS))
    def register(self, investor: str) -> None:
        expected = self.model.register(investor)
        self._check(expected, lambda: self.ledger.register_investor(Investor(investor)))

    @rule(pool_id=st.sampled_from(POOLS), investor=st.sampled_from((*INVESTORS, "zed")),
          actor=actors)
    def admit(self, pool_id: str, investor: str, actor: str | None) -> None:
        actor = self._manager(pool_id, actor)
        expected = self.model.admit(pool_id, investor, actor)
        self._check(expected, lambda: self.ledger.admit(pool_id, investor, actor=actor))

    @rule(pool_id=st.sampled_from(POOLS), investor=st.sampled_from((*INVESTORS, "zed")),
          n=units, odd=st.booleans(), actor=actors, key=st.sampled_from(KEYS))
    def invest(self, pool_id: str, investor: str, n: int, odd: bool, actor: str | None,
               key: str) -> None:
        actor = investor if actor is None else actor
        amount = self._amount(pool_id, n, odd and n % 7 == 0)
        self._money("invest", (pool_id, investor, amount, actor), key)

    @precondition(lambda self: any(p.members for p in self.model.pools.values()))
    @rule(data=st.data(), n=units, key=st.sampled_from(KEYS))
    def member_invests(self, data: st.DataObject, n: int, key: str) -> None:
        pool_id = data.draw(st.sampled_from(
            sorted(p for p, pool in self.model.pools.items() if pool.members)))
        investor = data.draw(st.sampled_from(sorted(self.model.pools[pool_id].members)))
        self.invest(pool_id, investor, n, False, None, key)

    @precondition(lambda self: any(p.members for p in self.model.pools.values()))
    @rule(data=st.data(), n=st.integers(1, 200_000), key=st.sampled_from(KEYS), carry=carries)
    def manager_pays_out(self, data: st.DataObject, n: int, key: str,
                         carry: Decimal | None) -> None:
        pool_id = data.draw(st.sampled_from(
            sorted(p for p, pool in self.model.pools.items() if pool.members)))
        what = data.draw(st.sampled_from(["distribute", "distribute", "charge_fee", "refund"]))
        if what == "distribute":
            self.distribute(pool_id, n, False, None, key, carry)
        elif what == "charge_fee":
            self.charge_fee(pool_id, n % 3_000 + 1, None, key)
        else:
            investor = data.draw(st.sampled_from(sorted(self.model.pools[pool_id].members)))
            self.refund(pool_id, investor, n % 2_000 + 1, None, key)

    @rule(pool_id=st.sampled_from(POOLS), investor=st.sampled_from(INVESTORS),
          n=st.integers(1, 5_000), actor=actors, key=st.sampled_from(KEYS))
    def refund(self, pool_id: str, investor: str, n: int, actor: str | None, key: str) -> None:
        actor = self._manager(pool_id, actor)
        amount = self._amount(pool_id, n, False)
        self._money("refund", (pool_id, investor, amount, actor), key)

    @rule(pool_id=st.sampled_from(POOLS), n=st.integers(1, 9_000),
          actor=actors, key=st.sampled_from(KEYS))
    def charge_fee(self, pool_id: str, n: int, actor: str | None, key: str) -> None:
        actor = self._manager(pool_id, actor)
        self._money("charge_fee", (pool_id, self._amount(pool_id, n, False), actor), key)

    @rule(pool_id=st.sampled_from(POOLS), n=st.integers(1, 200_000), odd=st.booleans(),
          actor=actors, key=st.sampled_from(KEYS), carry=carries)
    def distribute(self, pool_id: str, n: int, odd: bool, actor: str | None, key: str,
                   carry: Decimal | None) -> None:
        actor = self._manager(pool_id, actor)
        amount = self._amount(pool_id, n, odd and n % 5 == 0)
        self._money("distribute", (pool_id, amount, actor, carry), key)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.requests)))
        op, args = self.requests[key]
        written = len(self.ledger.history())
        self._money(op, args, key)
        assert len(self.ledger.history()) == written

    # -- after every step ---------------------------------------------------------------------

    @invariant()
    def agrees_with_model(self) -> None:
        model = self.model
        for pool_id, pool in model.pools.items():
            positions = self.ledger.positions(pool_id)
            assert [p.investor_id for p in positions] == sorted(pool.members)
            for p in positions:
                assert {"invested": p.invested, "refunded": p.refunded, "fees": p.fees,
                        "distributed": p.distributed} == model.position(pool_id, p.investor_id)
                assert min(p.invested, p.refunded, p.fees, p.distributed, p.balance) >= 0
            totals = self.ledger.pool_totals(pool_id)
            assert {"invested": totals.invested, "refunded": totals.refunded,
                    "fees": totals.fees, "distributed": totals.distributed,
                    "carry": totals.carry} == model.totals(pool_id)
            # Money is conserved: the members' positions add up to the pool's totals.
            assert sum(p.balance for p in positions) == totals.balance
            assert sum(p.distributed for p in positions) == totals.distributed
            assert sum(p.capital for p in positions) == totals.capital
            if totals.capital > 0:
                assert abs(sum(p.share for p in positions) - 1) < Decimal("1e-20")
            assert [(tx.kind, tx.investor_id, tx.amount) for tx in self.ledger.history(pool_id)
                    ] == [(k, i, pool.amount(n)) for k, i, n in pool.rows]
        assert self.ledger.verify() == model.entries()
        assert len(self.events) == model.changes
        new = self.ledger.changes(after=self.cursor)
        self.feed += [change.event for change in new]
        self.cursor = new[-1].cursor if new else self.cursor
        assert self.feed == self.events


class SqliteLedgerMachine(LedgerMachine):
    def make_ledger(self, clock: ManualClock) -> PoolLedger:
        return PoolLedger.from_url("sqlite://", clock=clock)


class PostgresLedgerMachine(LedgerMachine):
    url = ""

    def make_ledger(self, clock: ManualClock) -> PoolLedger:
        return PoolLedger.from_url(self.url, clock=clock, schema=f"s_{uuid.uuid4().hex[:12]}")


class MariaDBLedgerMachine(PostgresLedgerMachine):
    """On MariaDB: ``schema`` is a database, one per example."""


_settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])

TestMemoryLedgerStateful = LedgerMachine.TestCase
TestMemoryLedgerStateful.settings = _settings
TestSqliteLedgerStateful = SqliteLedgerMachine.TestCase
TestSqliteLedgerStateful.settings = settings(_settings, max_examples=20)


@pytest.mark.postgres
def test_postgres_ledger_stateful(postgres_url: str) -> None:
    PostgresLedgerMachine.url = postgres_url
    run_state_machine_as_test(PostgresLedgerMachine,
                              settings=settings(_settings, max_examples=10))


@pytest.mark.mariadb
def test_mariadb_ledger_stateful(mariadb_url: str) -> None:
    MariaDBLedgerMachine.url = mariadb_url
    run_state_machine_as_test(MariaDBLedgerMachine,
                              settings=settings(_settings, max_examples=10))
