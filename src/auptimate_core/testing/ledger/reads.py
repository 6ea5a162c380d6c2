"""The ledger scenarios about reads, subscribers and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ...alerts import AlertEngine, CollectingSink, ThresholdRule
from ...clock import ManualClock
from ...domain import Investor, Pool
from ...errors import PermissionDenied
from ...pools import (
    Distributed,
    FeeCharged,
    Invested,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    LedgerSession,
    MemberRead,
    MemberSession,
    PoolCreated,
    PoolEvent,
    Refunded,
)
from .harness import START, D, LedgerHarness


class ReadScenarios(LedgerHarness):
    """The ledger scenarios about reads, subscribers and the clock."""

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

    def test_the_ranking_counts_investments_less_refunds(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p1", "m"), {"ann": D(100), "bob": D(300)})
        ledger.refund("p1", "bob", D("250.50"), actor="m", idempotency_key="r1")
        ledger.distribute("p1", D(40), actor="m", idempotency_key="d1")
        ranks = ledger.top_investors(2)
        assert [(r.investor_id, r.unique_pools, r.total_amount) for r in ranks] == [
            ("ann", 1, D("100.00")), ("bob", 1, D("49.50"))]

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

    def test_a_sessions_one_member_read_agrees_with_its_four_reads(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(0)})
        ledger.register_investor(Investor("c"))
        asked = [("p", "a", "p/a/first"), ("p", "b", None), ("p", "c", "unused"),
                 ("p", "nobody", "p/a/first"), ("none", "a", "p/a/first")]

        def body(session: LedgerSession) -> list[tuple[MemberRead | None, MemberRead | None]]:
            if not isinstance(session, MemberSession):
                pytest.skip("this backend's sessions read a member's write one read at a time")
            found = []
            for pool_id, investor_id, key in asked:
                record = session.pool(pool_id, lock=True)
                four = None if record is None else MemberRead(
                    record, session.investor(investor_id) is not None,
                    session.holding(pool_id, investor_id),
                    None if key is None else session.receipt(key))
                found.append((session.member(pool_id, investor_id, key), four))
            return found

        for one, four in ledger.repository.write(body):
            assert one == four
