"""The ledger scenarios about money: exact splits, carry, fees, refunds, bad amounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from ...domain import Pool
from ...errors import LedgerValidationError, ValidationError
from .harness import D, LedgerHarness


class MoneyScenarios(LedgerHarness):
    """The ledger scenarios about money: exact splits, carry, fees, refunds, bad amounts."""

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
