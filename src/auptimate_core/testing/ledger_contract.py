"""The scenarios every ledger repository passes, run through :class:`~auptimate_core.PoolLedger`.

Subclass :class:`LedgerContract` in a test module and give it a factory of empty repositories::

    class TestMyRepository(LedgerContract):
        def make_repository(self) -> LedgerRepository:
            return MyRepository(...)

The tamper hooks (``tamper_*``) edit the storage behind the ledger's back, as an intruder with
direct access would; a backend that implements them gets the audit scenarios too, the others
skip them. The change feed scenarios (``changes``, ``cursor``, ``follow``) run on every backend.
Needs pytest (the suite is a pytest class).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ..alerts import AlertEngine, CollectingSink, ThresholdRule
from ..clock import ManualClock
from ..domain import Investor, Pool, Transaction
from ..errors import (
    AuditError,
    IdempotencyConflict,
    LedgerValidationError,
    PermissionDenied,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from ..pools import (
    Change,
    Distributed,
    FeeCharged,
    Invested,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    LedgerRepository,
    PoolCreated,
    PoolEvent,
    PoolLedger,
    Refunded,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
D = Decimal


class LedgerContract:
    """The contract (see the module notes). Each test builds its own ledger."""

    def make_repository(self) -> LedgerRepository:
        raise NotImplementedError

    # -- tamper hooks: override to run the audit scenarios -----------------------------------

    def tamper_amount(self, repository: Any, pool_id: str, seq: int, amount: Decimal) -> None:
        """Change the amount of entry ``seq`` of the pool, leaving its hashes as they are."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_delete(self, repository: Any, pool_id: str, seq: int) -> None:
        """Remove entry ``seq`` of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_swap(self, repository: Any, pool_id: str, seq_a: int, seq_b: int) -> None:
        """Exchange the places of two entries of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_position(self, repository: Any, pool_id: str, investor_id: str,
                        invested: Decimal) -> None:
        """Change a member's stored ``invested`` total."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_manager(self, repository: Any, pool_id: str, manager_id: str) -> None:
        """Change the stored manager of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    # -- helpers ------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _close_ledgers(self) -> Iterator[None]:
        self._ledgers: list[PoolLedger] = []
        yield
        for ledger in self._ledgers:
            ledger.close()

    def ledger(self, **options: Any) -> PoolLedger:
        """A new ledger on a new repository, on a manual clock at :data:`START`."""
        options.setdefault("clock", ManualClock(START))
        ledger = PoolLedger(self.make_repository(), **options)
        self._ledgers.append(ledger)
        return ledger

    @staticmethod
    def members(ledger: PoolLedger, pool: Pool, investors: dict[str, Decimal]) -> None:
        """Create ``pool`` if needed, register and admit ``investors``, record their amounts."""
        ledger.create_pool(pool, actor=pool.manager_id)
        for investor_id, amount in investors.items():
            ledger.register_investor(Investor(investor_id))
            ledger.admit(pool.id, investor_id, actor=pool.manager_id)
            if amount:
                ledger.invest(pool.id, investor_id, amount, actor=investor_id,
                              idempotency_key=f"{pool.id}/{investor_id}/first")

    def worked_example(self, clock: ManualClock | None = None) -> PoolLedger:
        """Ten investors of 10,000 each in pool ``seed`` managed by ``lead``."""
        ledger = self.ledger(clock=clock or ManualClock(START))
        self.members(ledger, Pool("seed", "lead", "Seed round"),
                     {f"inv{n:02}": D("10000") for n in range(10)})
        return ledger

    @staticmethod
    def snapshot(ledger: PoolLedger) -> tuple[object, ...]:
        return (ledger.history(), ledger.verify(),
                [ledger.positions(p.pool_id) for p in ledger.portfolio("inv00")]
                if _registered(ledger, "inv00") else None)

    # -- money --------------------------------------------------------------------------------

    def test_worked_example_with_carry(self) -> None:
        ledger = self.worked_example()
        fees = ledger.charge_fee("seed", D("8000"), actor="lead", idempotency_key="setup-fee")
        assert [tx.amount for tx in fees] == [D("800.00")] * 10
        txs = ledger.distribute("seed", D("500000"), actor="lead", idempotency_key="exit",
                                carry=D("0.20"))
        assert [(tx.kind, tx.amount) for tx in txs[:-1]] == [("distribution", D("42000.00"))] * 10
        assert (txs[-1].kind, txs[-1].investor_id, txs[-1].amount) == (
            "carry", "lead", D("80000.00"))
        for position in ledger.positions("seed"):
            assert (position.invested, position.fees, position.distributed) == (
                D("10000.00"), D("800.00"), D("42000.00"))
            assert position.share == D("0.1")
        totals = ledger.pool_totals("seed")
        assert (totals.distributed, totals.carry, totals.fees) == (
            D("420000.00"), D("80000.00"), D("8000.00"))

    def test_distribution_is_exact_by_largest_remainder(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"c": D(100), "a": D(100), "b": D(100)})
        txs = ledger.distribute("p", D("10.00"), actor="m", idempotency_key="d")
        # Equal remainders: the extra cent goes to the smaller id.
        assert [(tx.investor_id, tx.amount) for tx in txs] == [
            ("a", D("3.34")), ("b", D("3.33")), ("c", D("3.33"))]
        txs = ledger.distribute("p", D("0.02"), actor="m", idempotency_key="d2")
        assert [(tx.investor_id, tx.amount) for tx in txs] == [("a", D("0.01")),
                                                               ("b", D("0.01"))]

    def test_distribution_in_a_currency_without_cents(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("yen", "m", currency="JPY"),
                     {"a": D(1000), "b": D(2000), "c": D(3000)})
        txs = ledger.distribute("yen", D(100), actor="m", idempotency_key="d")
        assert [tx.amount for tx in txs] == [D(17), D(33), D(50)]
        with pytest.raises(ValidationError, match="total"):
            ledger.distribute("yen", D("100.5"), actor="m", idempotency_key="d2")

    def test_members_without_capital_get_nothing(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(0)})
        txs = ledger.distribute("p", D(50), actor="m", idempotency_key="d")
        assert [(tx.investor_id, tx.amount) for tx in txs] == [("a", D("50.00"))]
        empty = self.ledger()
        self.members(empty, Pool("p", "m"), {"a": D(0)})
        with pytest.raises(LedgerValidationError, match="no invested capital"):
            empty.distribute("p", D(50), actor="m", idempotency_key="d")

    def test_carry_returns_capital_first(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(300), "b": D(100)})
        # Less than the capital: all of it returns capital, pro rata, and there is no carry.
        first = ledger.distribute("p", D(200), actor="m", idempotency_key="d1",
                                  carry=D("0.2"))
        assert [(tx.investor_id, tx.amount) for tx in first] == [("a", D("150.00")),
                                                                ("b", D("50.00"))]
        # Then 200 of capital remains to return; of 1,200 the profit is 1,000, carry 200.
        second = ledger.distribute("p", D(1200), actor="m", idempotency_key="d2",
                                   carry=D("0.2"))
        assert [(tx.kind, tx.investor_id, tx.amount) for tx in second] == [
            ("distribution", "a", D("750.00")), ("distribution", "b", D("250.00")),
            ("carry", "m", D("200.00"))]
        assert ledger.pool_totals("p").carry == D("200.00")

    def test_fee_is_pro_rata_and_all_or_nothing(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(300), "b": D(100)})
        ledger.refund("p", "b", D(90), actor="m", idempotency_key="r")
        # b's capital is 10 and so is its balance; a fee of 100 would charge b 2.50 of 10: fine.
        fees = ledger.charge_fee("p", D(100), actor="m", idempotency_key="f")
        assert [(tx.investor_id, tx.amount) for tx in fees] == [("a", D("96.77")),
                                                               ("b", D("3.23"))]
        before = self.snapshot(ledger)
        with pytest.raises(LedgerValidationError, match="more than"):
            ledger.charge_fee("p", D(300), actor="m", idempotency_key="f2")
        assert self.snapshot(ledger) == before

    def test_refund_is_bounded_by_the_balance(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100)})
        ledger.charge_fee("p", D(30), actor="m", idempotency_key="f")
        with pytest.raises(LedgerValidationError, match="amount"):
            ledger.refund("p", "a", D("70.01"), actor="m", idempotency_key="r")
        tx = ledger.refund("p", "a", D(70), actor="m", idempotency_key="r")
        assert (tx.kind, tx.amount) == ("refund", D("70.00"))
        position = ledger.positions("p")[0]
        assert (position.capital, position.balance, position.share) == (D("30.00"), D("0.00"),
                                                                        D(1))
        # The first result comes back even though the same refund would now be refused.
        assert ledger.refund("p", "a", D(70), actor="m", idempotency_key="r") == tx

    def test_bad_input_is_refused_by_name(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100)})
        before = self.snapshot(ledger)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("amount", lambda: ledger.invest("p", "a", 1.5, actor="a",  # type: ignore[arg-type]
                                             idempotency_key="k")),
            ("amount", lambda: ledger.invest("p", "a", D("0.001"), actor="a",
                                             idempotency_key="k")),
            ("amount", lambda: ledger.invest("p", "a", D(-5), actor="a", idempotency_key="k")),
            ("amount", lambda: ledger.invest("p", "a", 0, actor="a", idempotency_key="k")),
            ("at", lambda: ledger.invest("p", "a", 5, actor="a", idempotency_key="k",
                                         at=datetime(2026, 1, 1))),
            ("idempotency_key", lambda: ledger.invest("p", "a", 5, actor="a",
                                                      idempotency_key="")),
            ("actor", lambda: ledger.distribute("p", 5, actor="", idempotency_key="k")),
            ("carry", lambda: ledger.distribute("p", 5, actor="m", idempotency_key="k",
                                                carry=D(1))),
            ("carry", lambda: ledger.distribute("p", 5, actor="m", idempotency_key="k",
                                                carry=0.2)),  # type: ignore[arg-type]
        ]
        for field, call in cases:
            with pytest.raises(ValidationError) as caught:
                call()
            assert caught.value.field == field
        assert self.snapshot(ledger) == before

    # -- who may do what ----------------------------------------------------------------------

    def test_refusals_name_actor_and_action_and_write_nothing(self) -> None:
        ledger = self.worked_example()
        ledger.register_investor(Investor("outsider"))
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        before = self.snapshot(ledger)
        refused: list[tuple[str, str, Callable[[], object]]] = [
            ("inv01", "admit", lambda: ledger.admit("seed", "outsider", actor="inv01")),
            ("inv01", "distribute", lambda: ledger.distribute(
                "seed", D(10), actor="inv01", idempotency_key="x1")),
            ("inv01", "charge_fee", lambda: ledger.charge_fee(
                "seed", D(10), actor="inv01", idempotency_key="x2")),
            ("inv01", "refund", lambda: ledger.refund(
                "seed", "inv01", D(10), actor="inv01", idempotency_key="x3")),
            ("inv01", "invest", lambda: ledger.invest(
                "seed", "inv02", D(10), actor="inv01", idempotency_key="x4")),
            ("lead", "invest", lambda: ledger.invest(
                "seed", "inv02", D(10), actor="lead", idempotency_key="x5")),
            ("outsider", "invest", lambda: ledger.invest(
                "seed", "outsider", D(10), actor="outsider", idempotency_key="x6")),
            ("inv01", "create_pool", lambda: ledger.create_pool(
                Pool("other", "lead"), actor="inv01")),
            ("inv01", "register_investor", lambda: ledger.register_investor(
                Investor("someone"), actor="inv01")),
        ]
        for actor, action, call in refused:
            with pytest.raises(PermissionDenied) as caught:
                call()
            assert (caught.value.actor, caught.value.action) == (actor, action)
            assert actor in str(caught.value) and action in str(caught.value)
        assert self.snapshot(ledger) == before
        assert events == []
        # A refused request leaves its key unused.
        ledger.invest("seed", "inv02", D(10), actor="inv02", idempotency_key="x4")

    def test_reads_are_for_the_manager_members_or_host(self) -> None:
        ledger = self.worked_example()
        ledger.register_investor(Investor("outsider"))
        assert len(ledger.positions("seed", actor="lead")) == 10
        assert len(ledger.positions("seed", actor="inv03")) == 10
        assert ledger.portfolio("inv03", actor="inv03")[0].pool_id == "seed"
        assert len(ledger.history("seed", actor="inv03")) == 10
        for call in (lambda: ledger.positions("seed", actor="outsider"),
                     lambda: ledger.history("seed", actor="outsider"),
                     lambda: ledger.pool_totals("seed", actor="outsider"),
                     lambda: ledger.portfolio("inv03", actor="inv04"),
                     lambda: ledger.history(actor="lead"),
                     lambda: ledger.top_investors(actor="lead")):
            with pytest.raises(PermissionDenied):
                call()

    def test_unknown_pool_and_investor(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100)})
        with pytest.raises(UnknownPool, match="nope"):
            ledger.invest("nope", "a", D(1), actor="a", idempotency_key="k")
        with pytest.raises(UnknownPool):
            ledger.positions("nope")
        with pytest.raises(UnknownInvestor, match="ghost"):
            ledger.admit("p", "ghost", actor="m")
        with pytest.raises(UnknownInvestor):
            ledger.portfolio("ghost")
        with pytest.raises(KeyError):  # both are KeyErrors too
            ledger.pool("nope")

    # -- idempotency --------------------------------------------------------------------------

    def test_a_repeated_request_returns_the_first_result_and_writes_nothing(self) -> None:
        clock = ManualClock(START)
        ledger = self.worked_example(clock)
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        first = ledger.invest("seed", "inv01", D("250"), actor="inv01", idempotency_key="t1")
        clock.advance(timedelta(hours=1))
        again = ledger.invest("seed", "inv01", D("250.00"), actor="inv01", idempotency_key="t1")
        assert again == first
        paid = ledger.distribute("seed", D(999), actor="lead", idempotency_key="d")
        before = self.snapshot(ledger)
        assert ledger.distribute("seed", D(999), actor="lead", idempotency_key="d") == paid
        assert self.snapshot(ledger) == before
        assert len(events) == 2

    def test_a_key_reused_for_another_request_is_a_conflict(self) -> None:
        ledger = self.worked_example()
        self.members(ledger, Pool("other", "lead"), {"inv01": D(5)})
        ledger.invest("seed", "inv01", D(250), actor="inv01", idempotency_key="t1")
        before = self.snapshot(ledger)
        for call in (
            lambda: ledger.invest("seed", "inv01", D(251), actor="inv01", idempotency_key="t1"),
            lambda: ledger.invest("other", "inv01", D(250), actor="inv01", idempotency_key="t1"),
            lambda: ledger.distribute("seed", D(250), actor="lead", idempotency_key="t1"),
            lambda: ledger.invest("seed", "inv01", D(250), actor="inv01", idempotency_key="t1",
                                  at=START),
        ):
            with pytest.raises(IdempotencyConflict, match="t1"):
                call()
        assert self.snapshot(ledger) == before

    def test_creating_registering_admitting_again_changes_nothing(self) -> None:
        ledger = self.ledger()
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        pool = Pool("p", "m", "Fund", "EUR")
        assert ledger.create_pool(pool, actor="m") == pool
        assert ledger.create_pool(pool, actor="m") == pool
        with pytest.raises(IdempotencyConflict):
            ledger.create_pool(Pool("p", "m", "Fund", "USD"), actor="m")
        ledger.register_investor(Investor("a", "Ann", "ann@example.com"), actor="a")
        ledger.register_investor(Investor("a", "Ann", "ann@example.com"))
        with pytest.raises(IdempotencyConflict):
            ledger.register_investor(Investor("a", "Annie"))
        ledger.admit("p", "a", actor="m")
        ledger.admit("p", "a", actor="m")
        assert [type(e) for e in events] == [PoolCreated, InvestorRegistered, InvestorAdmitted]
        assert ledger.pool("p") == pool
        assert ledger.verify() == 2

    # -- reading ------------------------------------------------------------------------------

    def test_positions_portfolio_history_and_ranking(self) -> None:
        clock = ManualClock(START)
        ledger = self.ledger(clock=clock)
        self.members(ledger, Pool("p1", "m"), {"ann": D(100), "bob": D(300)})
        clock.advance(timedelta(minutes=1))
        self.members(ledger, Pool("p2", "m", currency="JPY"), {"bob": D(5000), "cy": D(7)})
        early = START - timedelta(days=1)
        ledger.invest("p1", "ann", D(50), actor="ann", idempotency_key="late", at=early)
        assert [(p.pool_id, p.invested, p.share) for p in ledger.portfolio("bob")] == [
            ("p1", D("300.00"), D("0.6666666666666666666666666667")),
            ("p2", D(5000), D("0.9986019572598362292790093869"))]
        assert [tx.id for tx in ledger.history("p1")] == ["p1:3", "p1:5", "p1:6"]
        everything = ledger.history()
        assert [tx.id for tx in everything] == ["p1:6", "p1:3", "p1:5", "p2:3", "p2:5"]
        assert everything[0].timestamp == early
        assert ledger.history("p2")[0].timestamp == START + timedelta(minutes=1)
        ranks = ledger.top_investors(2)
        assert [(r.investor_id, r.unique_pools, r.total_amount) for r in ranks] == [
            ("bob", 2, D("5300.00")), ("ann", 1, D("150.00"))]
        totals = ledger.pool_totals("p1")
        assert (totals.invested, totals.balance, totals.currency) == (D("450.00"),
                                                                      D("450.00"), "USD")

    # -- subscribers --------------------------------------------------------------------------

    def test_each_committed_change_is_delivered_once_in_order(self) -> None:
        ledger = self.ledger()
        events: list[LedgerEvent] = []
        unsubscribe = ledger.subscribe(events.append)
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300)})
        ledger.charge_fee("p", D(4), actor="m", idempotency_key="f")
        ledger.refund("p", "a", D(10), actor="m", idempotency_key="r")
        ledger.distribute("p", D(800), actor="m", idempotency_key="d", carry=D("0.1"))
        with pytest.raises(PermissionDenied):
            ledger.distribute("p", D(1), actor="a", idempotency_key="d9")
        ledger.distribute("p", D(800), actor="m", idempotency_key="d", carry=D("0.1"))
        assert [type(e) for e in events] == [
            PoolCreated, InvestorRegistered, InvestorAdmitted, Invested, InvestorRegistered,
            InvestorAdmitted, Invested, FeeCharged, Refunded, Distributed]
        seqs = [e.seq for e in events if isinstance(e, PoolEvent)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        last = events[-1]
        assert isinstance(last, Distributed)
        assert last.positions == tuple(ledger.positions("p"))
        assert list(last.transactions) == ledger.history("p")[-3:]
        assert (last.total, last.carry, last.carry_amount) == (D("800.00"), D("0.1"),
                                                               D("41.00"))
        invested = events[3]
        assert isinstance(invested, Invested)
        assert invested.transactions == (invested.transaction,)
        assert [p.invested for p in invested.positions] == [D("100.00")]
        unsubscribe()
        unsubscribe()
        ledger.invest("p", "a", D(1), actor="a", idempotency_key="i")
        assert len(events) == 10

    def test_an_alert_engine_subscribes_to_the_ledger(self) -> None:
        ledger = self.ledger()
        sink = CollectingSink()
        engine = AlertEngine([ThresholdRule(limit=D(50_000))], sinks=[sink])
        ledger.subscribe(lambda event: engine.process_many(event.transactions))
        self.members(ledger, Pool("p", "m"), {"a": D(10_000), "b": D(60_000)})
        assert [(a.rule, a.transaction_id, a.observed) for a in sink.alerts] == [
            ("threshold", "p:5", D("60000.00"))]

    def test_a_failing_subscriber_does_not_fail_the_write(self) -> None:
        ledger = self.ledger()
        seen: list[LedgerEvent] = []

        def broken(event: LedgerEvent) -> None:
            raise RuntimeError("subscriber bug")

        ledger.subscribe(broken)
        ledger.subscribe(seen.append)
        ledger.create_pool(Pool("p", "m"), actor="m")
        assert len(seen) == 1 and ledger.verify() == 1

    def test_time_comes_from_the_clock_unless_given(self) -> None:
        clock = ManualClock(START)
        ledger = self.ledger(clock=clock)
        self.members(ledger, Pool("p", "m"), {"a": D(1)})
        clock.advance(timedelta(hours=2))
        tx = ledger.invest("p", "a", D(1), actor="a", idempotency_key="k")
        assert tx.timestamp == START + timedelta(hours=2)
        given = datetime(2026, 5, 1, 12, 30, 15, 250, tzinfo=UTC)
        tx = ledger.invest("p", "a", D(1), actor="a", idempotency_key="k2", at=given)
        assert tx.timestamp == given and ledger.history("p")[-1].timestamp == given

    # -- audit --------------------------------------------------------------------------------

    def _audited(self) -> PoolLedger:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300)})
        ledger.distribute("p", D(40), actor="m", idempotency_key="d")
        assert ledger.verify() == 7
        return ledger

    def test_verify_finds_an_edited_amount(self) -> None:
        ledger = self._audited()
        self.tamper_amount(ledger.repository, "p", 4, D("1000.00"))
        with pytest.raises(AuditError, match="entry 4"):
            ledger.verify()

    def test_verify_finds_a_deleted_entry(self) -> None:
        ledger = self._audited()
        self.tamper_delete(ledger.repository, "p", 3)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_a_deleted_last_entry(self) -> None:
        ledger = self._audited()
        self.tamper_delete(ledger.repository, "p", 7)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_reordered_entries(self) -> None:
        ledger = self._audited()
        self.tamper_swap(ledger.repository, "p", 4, 7)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_an_edited_position(self) -> None:
        ledger = self._audited()
        self.tamper_position(ledger.repository, "p", "b", D("3000.00"))
        with pytest.raises(AuditError, match="'b'"):
            ledger.verify()

    def test_verify_finds_an_edited_manager(self) -> None:
        ledger = self._audited()
        self.tamper_manager(ledger.repository, "p", "mallory")
        with pytest.raises(AuditError, match="manager"):
            ledger.verify()

    # -- concurrency --------------------------------------------------------------------------

    def test_concurrent_writers_never_lose_an_update(self) -> None:
        ledger = self.ledger()
        investors = [f"t{n}" for n in range(4)]
        self.members(ledger, Pool("hot", "m"), dict.fromkeys(investors, D(0)))
        self.members(ledger, Pool("cold", "m"), dict.fromkeys(investors, D(0)))
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        rounds = 15
        failures: list[BaseException] = []

        def work(investor: str) -> None:
            try:
                for n in range(rounds):
                    pool = "hot" if n % 3 else "cold"
                    ledger.invest(pool, investor, D(n + 1), actor=investor,
                                  idempotency_key=f"{investor}/{n}")
                    if n % 5 == 0:
                        ledger.distribute(pool, D(1), actor="m",
                                          idempotency_key=f"{investor}/d{n}")
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in investors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        hot = sum(D(n + 1) for n in range(rounds) if n % 3)
        cold = sum(D(n + 1) for n in range(rounds) if not n % 3)
        for pool, each in (("hot", hot), ("cold", cold)):
            positions = ledger.positions(pool)
            assert [p.invested for p in positions] == [each] * 4
            assert sum(p.distributed for p in positions) == ledger.pool_totals(pool).distributed
        distributions = 3 * len(investors)
        assert ledger.pool_totals("hot").distributed + ledger.pool_totals(
            "cold").distributed == distributions
        assert len(events) == len(investors) * (rounds + 3)
        for pool in ("hot", "cold"):
            seqs = [e.seq for e in events if isinstance(e, PoolEvent) and e.pool_id == pool]
            assert seqs == sorted(seqs)
        # The feed's order is the order of the commits, which subscribers follow too.
        feed = [change.event for change in ledger.changes(limit=10_000)]
        assert feed[-len(events):] == events
        assert ledger.verify() == len(ledger.history()) + 2 * (1 + len(investors))


    # -- the change feed ----------------------------------------------------------------------

    def test_the_feed_holds_each_committed_change_once_in_order(self) -> None:
        clock = ManualClock(START)
        ledger = self.ledger(clock=clock)
        assert ledger.changes() == []
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300)})
        clock.advance(timedelta(minutes=1))
        ledger.distribute("p", D(40), actor="m", idempotency_key="d", carry=D("0.1"))
        ledger.distribute("p", D(40), actor="m", idempotency_key="d", carry=D("0.1"))
        with pytest.raises(PermissionDenied):
            ledger.charge_fee("p", D(1), actor="a", idempotency_key="f")
        ledger.admit("p", "a", actor="m")
        changes = ledger.changes()
        # Refused, replayed and no-op requests are not changes; the feed is what subscribers saw.
        assert [change.event for change in changes] == events
        assert len(changes) == 8
        assert len({change.cursor for change in changes}) == 8
        assert [change.at for change in changes] == [START] * 7 + [START + timedelta(minutes=1)]
        for n, change in enumerate(changes):
            assert ledger.changes(after=change.cursor) == changes[n + 1:]
        assert ledger.changes(after=changes[-1].cursor) == []
        assert ledger.cursor() == changes[-1].cursor

    def test_the_feed_reads_in_pages(self) -> None:
        ledger = self.worked_example()
        everything = ledger.changes(limit=10_000)
        assert len(everything) == 1 + 3 * 10
        pages: list[Change] = []
        cursor = None
        while True:
            page = ledger.changes(after=cursor, limit=7)
            if not page:
                break
            assert len(page) <= 7
            pages += page
            cursor = page[-1].cursor
        assert pages == everything
        assert ledger.changes(limit=1) == everything[:1]
        assert ledger.changes(after=everything[4].cursor, limit=2) == everything[5:7]

    def test_a_bad_limit_is_refused(self) -> None:
        ledger = self.ledger()
        for limit in (0, -1, 10_001, True, 2.0, "5", None):
            with pytest.raises(ValidationError) as caught:
                ledger.changes(limit=limit)  # type: ignore[arg-type]
            assert caught.value.field == "limit"
        assert ledger.changes(limit=10_000) == []

    def test_a_cursor_of_another_ledger_or_garbage_is_refused(self) -> None:
        ledger = self.worked_example()
        other = self.ledger()
        other.create_pool(Pool("q", "m"), actor="m")
        theirs = other.changes()[0].cursor
        ours = ledger.changes()[-1].cursor
        head = ours.rsplit(".", 1)[0]
        bad: list[Any] = [theirs, "", "0", "garbage", ours + "0", ours[:-1] + "g",
                          ours.upper(), f"{head}.{10**6:x}", 17, b"c1"]
        for cursor in bad:
            for read in (ledger.changes, ledger.follow):
                with pytest.raises(ValidationError) as caught:
                    read(after=cursor)
                assert caught.value.field == "after"
        with pytest.raises(ValidationError, match="another ledger"):
            ledger.changes(after=theirs)
        with pytest.raises(ValidationError, match="past the end"):
            ledger.changes(after=f"{head}.{10**6:x}")

    def test_only_the_host_reads_the_feed(self) -> None:
        ledger = self.worked_example()
        for call in (lambda: ledger.changes(actor="lead"), lambda: ledger.cursor(actor="inv01"),
                     lambda: ledger.follow(actor="lead", timeout=0)):
            with pytest.raises(PermissionDenied):
                call()

    def test_every_change_round_trips_through_json(self) -> None:
        ledger = self.worked_example()
        ledger.refund("seed", "inv03", D("0.01"), actor="lead", idempotency_key="r")
        ledger.charge_fee("seed", D("1000"), actor="lead", idempotency_key="f")
        ledger.distribute("seed", D("500000"), actor="lead", idempotency_key="x",
                          carry=D("0.2"))
        ledger.register_investor(Investor("zed", "Zed", "zed@example.com"))
        changes = ledger.changes()
        for change in changes:
            text = json.dumps(change.to_dict())
            assert Change.from_dict(json.loads(text)) == change
            assert type(LedgerEvent.from_dict(change.event.to_dict())) is type(change.event)

    def test_events_carry_what_changed_and_the_totals(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300), "c": D(0)})
        tx = ledger.invest("p", "a", D(100), actor="a", idempotency_key="more")
        invested = ledger.changes()[-1].event
        assert isinstance(invested, Invested) and invested.transaction == tx
        assert invested.positions == tuple(p for p in ledger.positions("p")
                                           if p.investor_id == "a")
        assert invested.totals == ledger.pool_totals("p")
        ledger.distribute("p", D(50), actor="m", idempotency_key="d")
        paid = ledger.changes()[-1].event
        assert isinstance(paid, Distributed)
        # c has no capital, so no distribution: untouched, not in the event.
        assert [p.investor_id for p in paid.positions] == ["a", "b"]
        assert paid.totals.distributed == D("50.00")
        created = ledger.changes(limit=1)[0].event
        assert isinstance(created, PoolCreated) and created.positions == ()
        assert created.totals.invested == 0

    def test_follow_yields_changes_committed_by_other_threads(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(1)})
        start = ledger.cursor()
        writes = 12
        seen: list[Change] = []
        listening = threading.Event()

        def follower() -> None:
            # Follows from before the writes; stops once it has them all (or after 20 s).
            iterator = ledger.follow(after=start, timeout=20)
            listening.set()
            for change in iterator:
                seen.append(change)
                if len(seen) == writes:
                    break

        thread = threading.Thread(target=follower)
        thread.start()
        listening.wait(10)
        for n in range(writes):
            ledger.invest("p", "a", D(n + 1), actor="a", idempotency_key=f"k{n}")
        thread.join(30)
        assert not thread.is_alive()
        assert seen == ledger.changes(after=start)
        assert [c.event.transactions[0].amount for c in seen] == [D(n + 1) for n in
                                                                   range(writes)]

    def test_follow_ends_after_the_timeout_without_news(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(1)})
        everything = ledger.changes()
        assert list(ledger.follow(timeout=0)) == everything
        assert list(ledger.follow(after=everything[1].cursor, timeout=0.05)) == everything[2:]
        assert list(ledger.follow(after=ledger.cursor(), timeout=0.01)) == []
        for timeout in (-1, float("nan"), float("inf"), True, "1"):
            with pytest.raises(ValidationError, match="timeout"):
                ledger.follow(timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="batch"):
            ledger.follow(batch=0)

    def test_follow_reads_in_batches(self) -> None:
        ledger = self.worked_example()
        assert list(ledger.follow(timeout=0, batch=4)) == ledger.changes()


def _registered(ledger: PoolLedger, investor_id: str) -> bool:
    try:
        ledger.portfolio(investor_id)
    except UnknownInvestor:
        return False
    return True


__all__ = ["START", "LedgerContract", "Transaction"]
