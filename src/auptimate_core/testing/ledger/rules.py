"""The ledger scenarios about who may do what, and idempotency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from ...clock import ManualClock
from ...domain import Investor, Pool
from ...errors import IdempotencyConflict, PermissionDenied, UnknownInvestor, UnknownPool
from ...pools import InvestorAdmitted, InvestorRegistered, LedgerEvent, PoolCreated
from .harness import START, D, LedgerHarness


class RuleScenarios(LedgerHarness):
    """The ledger scenarios about who may do what, and idempotency."""

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
        calls: tuple[Callable[[], object], ...] = (
            lambda: ledger.invest("seed", "inv01", D(251), actor="inv01", idempotency_key="t1"),
            lambda: ledger.invest("other", "inv01", D(250), actor="inv01", idempotency_key="t1"),
            lambda: ledger.invest("seed", "inv01", D(250), actor="inv01", idempotency_key="t1",
                                  at=START),
        )
        for call in calls:
            with pytest.raises(IdempotencyConflict, match="t1"):
                call()
        assert self.snapshot(ledger) == before
        # Keys belong to the actor who sent them: the manager's "t1" is a request of its own.
        paid = ledger.distribute("seed", D(250), actor="lead", idempotency_key="t1")
        assert ledger.distribute("seed", D(250), actor="lead", idempotency_key="t1") == paid

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
