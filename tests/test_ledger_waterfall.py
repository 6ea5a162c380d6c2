"""The splits of the ledger (pro rata, carry waterfall, fees) against exact fractions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core.errors import LedgerValidationError
from auptimate_core.money import minor_digits
from auptimate_core.pools.position import Amounts
from auptimate_core.pools.waterfall import check_carry, split_distribution, split_fee
from tests.ledger_model import split_units

CURRENCIES = ("USD", "JPY", "KWD")

holding = st.tuples(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**6),
                    st.integers(0, 10**7))
holdings = st.dictionaries(st.text("abcdef", min_size=1, max_size=3), holding, min_size=1,
                           max_size=8)


def _amounts(currency: str, raw: dict[str, tuple[int, int, int, int]]) -> dict[str, Amounts]:
    digits = minor_digits(currency)
    out = {}
    for key, (invested, refunded, fees, distributed) in raw.items():
        refunded = min(refunded, invested)
        fees = min(fees, invested - refunded)
        out[key] = Amounts(*(Decimal(n).scaleb(-digits)
                             for n in (invested, refunded, fees, distributed)))
    return out


def _units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_digits(currency)))


@settings(max_examples=150, deadline=None)
@given(currency=st.sampled_from(CURRENCIES), raw=holdings, total=st.integers(1, 10**9),
       carry=st.sampled_from([None, Decimal(0), Decimal("0.2"), Decimal("0.3333")]))
def test_distribution_matches_exact_fractions(currency: str, raw: dict[str, tuple[int, ...]],
                                              total: int, carry: Decimal | None) -> None:
    held = _amounts(currency, raw)  # type: ignore[arg-type]
    amount = Decimal(total).scaleb(-minor_digits(currency))
    capital = {k: _units(h.capital, currency) for k, h in held.items() if h.capital > 0}
    if not capital:
        with pytest.raises(LedgerValidationError):
            split_distribution(amount, held, currency, carry)
        return
    split = split_distribution(amount, held, currency, carry)
    assert sum(split.shares.values()) + split.carry == amount
    assert all(v > 0 for v in split.shares.values()) and split.carry >= 0
    got = {k: _units(v, currency) for k, v in split.shares.items()}
    if carry is None:
        expected = split_units(total, capital)
        carried = 0
        for key, share in got.items():  # within one minor unit of the exact share
            assert abs(share - Fraction(total * capital[key], sum(capital.values()))) < 1
    else:
        owed = {k: max(c - _units(held[k].distributed, currency), 0) for k, c in capital.items()}
        if total <= sum(owed.values()):
            expected, carried = split_units(total, owed), 0
        else:
            profit = total - sum(owed.values())
            carried = round(profit * Fraction(carry))
            gains = split_units(profit - carried, capital)
            expected = {k: owed[k] + gains[k] for k in capital}
    assert got == {k: v for k, v in expected.items() if v > 0}
    assert _units(split.carry, currency) == carried


@settings(max_examples=100, deadline=None)
@given(currency=st.sampled_from(CURRENCIES), raw=holdings, total=st.integers(1, 10**7))
def test_fees_are_pro_rata_or_refused_whole(currency: str, raw: dict[str, tuple[int, ...]],
                                            total: int) -> None:
    held = _amounts(currency, raw)  # type: ignore[arg-type]
    amount = Decimal(total).scaleb(-minor_digits(currency))
    capital = {k: _units(h.capital, currency) for k, h in held.items() if h.capital > 0}
    if not capital:
        with pytest.raises(LedgerValidationError):
            split_fee(amount, held, currency)
        return
    expected = split_units(total, capital)
    if any(units > _units(held[k].balance, currency) for k, units in expected.items()):
        with pytest.raises(LedgerValidationError, match="more than"):
            split_fee(amount, held, currency)
        return
    split = split_fee(amount, held, currency)
    assert {k: _units(v, currency) for k, v in split.shares.items()} == {
        k: v for k, v in expected.items() if v > 0}


@pytest.mark.parametrize("bad", [Decimal(1), Decimal("-0.1"), Decimal("NaN"), 0.2, "0.2"])
def test_carry_must_be_a_rate_below_one(bad: object) -> None:
    with pytest.raises(LedgerValidationError, match="carry"):
        check_carry(bad)
