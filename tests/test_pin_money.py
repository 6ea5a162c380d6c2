"""Money rules pinned to literal values: bounds, ISO 4217 minor units, exactness, allocation.

Every expected value is written out by hand; the library never computes an expectation.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal

import pytest

from auptimate_core.errors import ValidationError
from auptimate_core.money import (
    EXACT,
    MAX_AMOUNT,
    MAX_TOTAL,
    allocate,
    check_total,
    minor_digits,
    minor_unit,
    quantize,
    require_exact,
)

D = Decimal

# Every active ISO 4217 code (and a few withdrawn ones still met in old data) with two digits.
ISO_4217_TWO_DIGITS = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DKK", "DOP",
    "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ",
    "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS",
    "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD",
    "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP",
    "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "USD", "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "YER", "ZAR", "ZMW", "ZWL",
]


@pytest.mark.parametrize("currency", ISO_4217_TWO_DIGITS)
def test_two_digit_currencies(currency: str) -> None:
    assert minor_digits(currency) == 2
    assert str(minor_unit(currency)) == "0.01"


def test_the_other_currencies_of_iso_4217() -> None:
    zero = ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF", "XPF"]
    three = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]
    four = ["CLF", "UYW"]
    assert [minor_digits(c) for c in zero] == [0] * 17
    assert [str(minor_unit(c)) for c in zero] == ["1"] * 17
    assert [minor_digits(c) for c in three] == [3] * 7
    assert [str(minor_unit(c)) for c in three] == ["0.001"] * 7
    assert [minor_digits(c) for c in four] == [4] * 2
    assert [str(minor_unit(c)) for c in four] == ["0.0001"] * 2
    # An unknown code has two digits.
    assert minor_digits("ZZZ") == 2


def test_bounds() -> None:
    assert str(MAX_AMOUNT) == "1000000000000000"
    assert str(MAX_TOTAL) == "900000000000000"
    assert check_total(D("900000000000000.00"), "amount", "x") == D("900000000000000.00")
    with pytest.raises(ValidationError) as caught:
        check_total(D("900000000000000.01"), "amount", "pool 'p': invested")
    assert str(caught.value) == (
        "amount: this write would take pool 'p': invested to 900000000000000.01, above the "
        "ledger's bound of 900,000,000,000,000 (MAX_TOTAL); nothing was written")
    assert caught.value.field == "amount"


def test_exact_context() -> None:
    assert EXACT.prec == decimal.MAX_PREC
    assert EXACT.Emax == decimal.MAX_EMAX
    assert EXACT.Emin == decimal.MIN_EMIN
    assert str(EXACT.add(D("1E+30"), D("0.000001"))) == "1000000000000000000000000000000.000001"


def test_quantize_is_half_even() -> None:
    assert [str(quantize(D(a), "USD")) for a in ("0.005", "0.015", "0.025", "-0.015", "7")] == [
        "0.00", "0.02", "0.02", "-0.02", "7.00"]
    assert [str(quantize(D(a), "JPY")) for a in ("0.5", "1.5", "2.5")] == ["0", "2", "2"]
    assert str(quantize(D("0.00005"), "CLF")) == "0.0000"


def _refused(call: Callable[[], object], text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert str(caught.value) == text


def test_require_exact() -> None:
    assert str(require_exact(D("1.5"), "USD")) == "1.50"
    assert str(require_exact(D("5.0"), "JPY")) == "5"
    assert str(require_exact(D("1E+2"), "USD")) == "100.00"
    assert str(require_exact(D("-1.5"), "USD")) == "-1.50"
    _refused(lambda: require_exact(D("1.001"), "USD"),
             "amount: 1.001 has more digits than the USD minor unit allows")
    _refused(lambda: require_exact(D("0.5"), "JPY", "total"),
             "total: 0.5 has more digits than the JPY minor unit allows")
    _refused(lambda: require_exact(D("1E+30"), "USD"),
             "amount: must be at most 1,000,000,000,000,000 (the documented maximum), "
             "not 1E+30")


def test_allocate_by_largest_remainder() -> None:
    # Equal remainders: the smaller key first, whatever order the weights come in.
    assert allocate(D("0.05"), {"b": D(1), "a": D(1)}, "USD") == {"b": D("0.02"), "a": D("0.03")}
    assert allocate(D("1"), {"b": D(1), "a": D(1)}, "JPY") == {"b": D("0"), "a": D("1")}
    # The largest remainder wins over the smaller key.
    assert allocate(D("0.02"), {"x": D(1), "y": D(2), "z": D(3)}, "USD") == {
        "x": D("0.00"), "y": D("0.01"), "z": D("0.01")}
    assert allocate(D("7"), {"a": D("0.5"), "b": D("0.25")}, "USD") == {
        "a": D("4.67"), "b": D("2.33")}
    shares = allocate(D("7"), {"a": D("0.5"), "b": D("0.25")}, "USD")
    assert [str(v) for v in shares.values()] == ["4.67", "2.33"]
    assert [str(v) for v in allocate(D("3"), {"a": D(1)}, "KWD").values()] == ["3.000"]
    assert allocate(D("0.00"), {"a": D(1)}, "USD") == {"a": D("0.00")}


def test_allocate_refusals() -> None:
    _refused(lambda: allocate(D("-0.01"), {"a": D(1)}, "USD"),
             "total: must not be negative, not -0.01")
    _refused(lambda: allocate(D("1"), {"a": D(-1), "b": D(2)}, "USD"),
             "weights: must not be negative")
    _refused(lambda: allocate(D("1"), {}, "USD"),
             "weights: must have a positive sum to allocate pro rata")
    _refused(lambda: allocate(D("1"), {"a": D(0)}, "USD"),
             "weights: must have a positive sum to allocate pro rata")
    assert allocate(D("1"), {"a": D(0), "b": D("0.001")}, "USD") == {
        "a": D("0.00"), "b": D("1.00")}
