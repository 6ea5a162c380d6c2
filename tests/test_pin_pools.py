"""The pools' money rules pinned to literal values: the waterfall's boundaries, positions, policy.

Every expected amount and message is written out by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from auptimate_core.domain import Investor, Pool
from auptimate_core.errors import LedgerValidationError, PermissionDenied
from auptimate_core.pools.policy import Policy
from auptimate_core.pools.position import Amounts, PoolTotals, Position, share_of
from auptimate_core.pools.waterfall import Split, check_carry, split_distribution, split_fee


def _held(invested: str, distributed: str = "0", refunded: str = "0",
          fees: str = "0") -> Amounts:
    return Amounts(invested=Decimal(invested), refunded=Decimal(refunded), fees=Decimal(fees),
                   distributed=Decimal(distributed))


def _refused(call: Callable[[], object], text: str) -> None:
    with pytest.raises(LedgerValidationError) as caught:
        call()
    assert str(caught.value) == text


D = Decimal
AB = {"a": _held("100.00"), "b": _held("300.00")}


# -- carry rates ------------------------------------------------------------------------------


def test_carry_rate_bounds() -> None:
    assert check_carry(None) is None
    assert check_carry(D("0")) == D("0")
    assert check_carry(D("0.999")) == D("0.999")
    _refused(lambda: check_carry(D("1")), "carry: must be at least 0 and below 1, not 1")
    _refused(lambda: check_carry(D("-0.01")), "carry: must be at least 0 and below 1, not -0.01")
    _refused(lambda: check_carry(0.2), "carry: must be a finite Decimal rate, not 0.2")
    _refused(lambda: check_carry(0), "carry: must be a finite Decimal rate, not 0")
    _refused(lambda: check_carry(D("NaN")),
             "carry: must be a finite Decimal rate, not Decimal('NaN')")
    _refused(lambda: check_carry(D("Infinity")),
             "carry: must be a finite Decimal rate, not Decimal('Infinity')")


# -- distributions ----------------------------------------------------------------------------


def test_plain_pro_rata() -> None:
    assert split_distribution(D("40.00"), AB, "USD") == Split({"a": D("10.00"), "b": D("30.00")})
    assert split_distribution(D("40.00"), AB, "USD").carry == D("0")
    # A share rounded to zero is left out.
    assert split_distribution(D("0.01"), AB, "USD") == Split({"b": D("0.01")})


def test_a_carry_rate_of_zero_returns_capital_then_splits_all_profit() -> None:
    split = split_distribution(D("500.00"), AB, "USD", D("0"))
    assert split.shares == {"a": D("125.00"), "b": D("375.00")}
    assert str(split.carry) == "0.00"


def test_carry_takes_its_rate_of_the_profit_only() -> None:
    split = split_distribution(D("500.00"), AB, "USD", D("0.20"))
    assert split.shares == {"a": D("120.00"), "b": D("360.00")}
    assert str(split.carry) == "20.00"


def test_a_total_equal_to_the_capital_owed_is_all_capital() -> None:
    split = split_distribution(D("400.00"), AB, "USD", D("0.20"))
    assert split == Split({"a": D("100.00"), "b": D("300.00")})
    assert str(split.carry) == "0"
    # One cent more is profit: its carry rounds half-even to nothing, the cent goes pro rata.
    split = split_distribution(D("400.01"), AB, "USD", D("0.20"))
    assert split.shares == {"a": D("100.00"), "b": D("300.01")}
    assert str(split.carry) == "0.00"
    # Below what is owed, the capital comes back pro rata to what is unreturned.
    assert split_distribution(D("200.00"), AB, "USD", D("0.20")).shares == {
        "a": D("50.00"), "b": D("150.00")}


def test_capital_already_returned_is_not_owed_again() -> None:
    held = {"a": _held("100.00", distributed="50.00"), "b": _held("300.00")}
    split = split_distribution(D("400.00"), held, "USD", D("0.20"))
    assert split.shares == {"a": D("60.00"), "b": D("330.00")}
    assert str(split.carry) == "10.00"
    # More than the capital returned: nothing owed to a, never a negative share.
    held = {"a": _held("100.00", distributed="150.00"), "b": _held("300.00")}
    split = split_distribution(D("300.00"), held, "USD", D("0.20"))
    assert split == Split({"b": D("300.00")})


def test_members_without_capital_take_no_part() -> None:
    held = {"a": _held("100.00", refunded="100.00"), "b": _held("300.00")}
    assert split_distribution(D("30.00"), held, "USD") == Split({"b": D("30.00")})
    _refused(lambda: split_distribution(D("1.00"), {"a": held["a"]}, "USD"),
             "total: the pool has no invested capital to distribute to")
    _refused(lambda: split_distribution(D("1.00"), {}, "USD", D("0.2")),
             "total: the pool has no invested capital to distribute to")


# -- fees -------------------------------------------------------------------------------------


def test_a_fee_equal_to_a_whole_remaining_balance_is_allowed() -> None:
    assert split_fee(D("400.00"), AB, "USD") == Split({"a": D("100.00"), "b": D("300.00")})
    held = {"a": _held("100.00", fees="40.00"), "b": _held("300.00")}
    assert split_fee(D("240.00"), held, "USD") == Split({"a": D("60.00"), "b": D("180.00")})


def test_a_fee_above_a_remaining_balance_is_refused() -> None:
    _refused(lambda: split_fee(D("400.04"), AB, "USD"),
             "total: the fee would charge 'a' 100.01, more than the 100.00 they have left in "
             "the pool")
    held = {"a": _held("100.00", fees="40.00"), "b": _held("300.00")}
    _refused(lambda: split_fee(D("240.04"), held, "USD"),
             "total: the fee would charge 'a' 60.01, more than the 60.00 they have left in the "
             "pool")
    _refused(lambda: split_fee(D("1.00"), {}, "USD"),
             "total: the pool has no invested capital to charge a fee on")


# -- positions --------------------------------------------------------------------------------


def test_amounts_fields_and_zero_at_the_minor_unit() -> None:
    assert [str(v) for v in attrs_values(Amounts.zero("USD"))] == ["0.00"] * 5
    assert [str(v) for v in attrs_values(Amounts.zero("JPY"))] == ["0"] * 5
    assert [str(v) for v in attrs_values(Amounts.zero("KWD"))] == ["0.000"] * 5
    held = Amounts()
    for kind, amount in [("investment", "100"), ("refund", "10"), ("fee", "5"),
                         ("distribution", "7"), ("carry", "3")]:
        held = held.add(kind, D(amount))
    assert held == Amounts(invested=D(100), refunded=D(10), fees=D(5), distributed=D(7),
                           carry=D(3))
    assert (held.capital, held.balance) == (D(90), D(85))
    with pytest.raises(KeyError):
        held.add("gift", D(1))


def attrs_values(held: Amounts) -> list[Decimal]:
    return [held.invested, held.refunded, held.fees, held.distributed, held.carry]


def test_amounts_negative_names_the_first_total_below_zero() -> None:
    assert Amounts().negative() is None
    assert _held("0").negative() is None
    assert Amounts(invested=D("-1")).negative() == "invested"
    assert Amounts(refunded=D("-1")).negative() == "refunded"
    assert Amounts(fees=D("-0.01")).negative() == "fees"
    assert Amounts(distributed=D("-1")).negative() == "distributed"
    assert Amounts(carry=D("-1")).negative() == "carry"
    assert _held("10", fees="10.01").negative() == "balance"
    assert _held("10", fees="10").negative() is None


def test_share_of() -> None:
    assert share_of(D(1), D(4)) == D("0.25")
    assert str(share_of(D(1), D(3))) == "0.3333333333333333333333333333"
    assert str(share_of(D(2), D(3))) == "0.6666666666666666666666666667"
    assert share_of(D(1), D(0)) == D(0)
    assert share_of(D(1), D(-1)) == D(0)
    assert share_of(D(0), D("0.01")) == D(0)
    # A pool whose whole capital is one unit or less still has shares.
    assert share_of(D("0.5"), D(1)) == D("0.5")
    assert share_of(D("0.01"), D("0.01")) == D(1)


def test_position_and_totals_views() -> None:
    held = _held("100.00", distributed="7.00", refunded="10.00", fees="5.00")
    position = Position.of("p1", "ann", held, D("360.00"))
    assert position == Position("p1", "ann", D("100.00"), D("7.00"), D("0.25"), D("10.00"),
                                D("5.00"))
    assert (position.capital, position.balance) == (D("90.00"), D("85.00"))
    assert position.to_dict() == {
        "pool_id": "p1", "investor_id": "ann", "invested": "100.00", "distributed": "7.00",
        "share": "0.25", "refunded": "10.00", "fees": "5.00"}
    assert Position.from_dict(position.to_dict()) == position
    totals = PoolTotals.of("p1", "USD", held.add("carry", D("2.00")))
    assert totals == PoolTotals("p1", "USD", D("100.00"), D("10.00"), D("5.00"), D("7.00"),
                                D("2.00"))
    assert (totals.capital, totals.balance) == (D("90.00"), D("85.00"))
    assert totals.to_dict() == {
        "pool_id": "p1", "currency": "USD", "invested": "100.00", "refunded": "10.00",
        "fees": "5.00", "distributed": "7.00", "carry": "2.00"}
    assert PoolTotals.from_dict(totals.to_dict()) == totals


# -- who may do what --------------------------------------------------------------------------

POOL = Pool("p1", "m1")


def _denied(call: Callable[[], object], text: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        call()
    assert str(caught.value) == text


def test_policy_messages() -> None:
    policy = Policy()
    policy.check_create(POOL, "m1")
    _denied(lambda: policy.check_create(POOL, "eve"),
            "'eve' may not create_pool: pool 'p1' must be created by its manager")
    policy.check_register(Investor("ann"), "ann")
    policy.check_register(Investor("ann"), None)
    _denied(lambda: policy.check_register(Investor("ann"), "eve"),
            "'eve' may not register_investor: only 'ann' or the host application may")
    policy.check_manager(POOL, "m1", "distribute")
    _denied(lambda: policy.check_manager(POOL, "ann", "charge_fee"),
            "'ann' may not charge_fee: only the manager of pool 'p1' may")
    policy.check_invest(POOL, "ann", "ann")
    _denied(lambda: policy.check_invest(POOL, "ann", "m1"),
            "'m1' may not invest: only 'ann' may record their own investments")
    for actor in (None, "m1", "ann"):
        policy.check_read_pool(POOL, {"ann"}, actor, "positions")
    _denied(lambda: policy.check_read_pool(POOL, {"ann"}, "eve", "positions"),
            "'eve' may not positions: only the manager and members of pool 'p1' may")
    policy.check_read_investor("ann", "ann", "portfolio")
    policy.check_read_investor("ann", None, "portfolio")
    _denied(lambda: policy.check_read_investor("ann", "m1", "portfolio"),
            "'m1' may not portfolio: only 'ann' may")
    policy.check_read_all(None, "history")
    _denied(lambda: policy.check_read_all("m1", "history"),
            "'m1' may not history: only the host application may read every pool")
