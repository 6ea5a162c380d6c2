"""Decimal rules for money: bounds, minor units, quantising, exact sums and pro-rata allocation.

>>> allocate(Decimal("10.00"), {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)}, "USD")
{'a': Decimal('3.34'), 'b': Decimal('3.33'), 'c': Decimal('3.33')}
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Final

from .errors import ValidationError

MAX_AMOUNT: Final = Decimal(10) ** 15
"""The largest amount of one transaction, in the currency, for every store and backend.

A quadrillion: well above any real transaction, and small enough that each store keeps it, and
the sum of a window full of them, exactly (integer units of 1/10,000 in the window stores,
NUMERIC or integer minor units in SQL)."""

MAX_TOTAL: Final = Decimal(9) * Decimal(10) ** 14
"""The largest running total the pools ledger keeps: what a pool's members have invested,
been refunded, charged in fees or paid out, and its carry, each summed over the pool's life.

900 trillion in the currency: stored as integers of 1/10,000 (the SQL ledger's money columns,
``BIGINT``) that is ``9 * 10**18``, just under ``2**63``, so no total, and no member's share of
it, can overflow a column on any backend, whatever the number of entries. A write that would
take a total above it is refused whole (:class:`~auptimate_core.errors.ValidationError` naming
the field), in memory as in SQL. One transaction stays bounded by :data:`MAX_AMOUNT`, as
everywhere else; a ledger's single entry is also bounded by this, its pool's total."""

EXACT: Final = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
)
"""A decimal context in which additions and subtractions of finite Decimals are never rounded.

Sums of money are taken in it (``EXACT.add(a, b)``, or ``with decimal.localcontext(EXACT):``), so
a total keeps every digit of its amounts whatever the default context's precision.

>>> EXACT.add(Decimal("1E+30"), Decimal("0.000001"))
Decimal('1000000000000000000000000000000.000001')
"""

# ISO 4217 currencies whose minor unit is not two digits; every other code has two.
_MINOR_DIGITS: Final[Mapping[str, int]] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
         "UYI", "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_digits(currency: str) -> int:
    """Digits after the decimal point in ``currency``'s minor unit (USD 2, JPY 0, KWD 3)."""
    return _MINOR_DIGITS.get(currency, 2)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal('0.01')`` for USD."""
    return Decimal(1).scaleb(-minor_digits(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` half-even to ``currency``'s minor unit."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_EVEN)


def require_exact(amount: Decimal, currency: str, field: str = "amount") -> Decimal:
    """Return ``amount`` at the minor unit of ``currency``; raise if that would round it.

    >>> require_exact(Decimal("1.5"), "USD")
    Decimal('1.50')
    """
    try:
        exact = amount.quantize(minor_unit(currency), rounding=ROUND_DOWN)
    except decimal.InvalidOperation:
        raise ValidationError(field, f"must be at most {MAX_AMOUNT:,} (the documented maximum), "
                                     f"not {amount}") from None
    if exact != amount:
        raise ValidationError(
            field, f"{amount} has more digits than the {currency} minor unit allows"
        )
    return exact


def check_total(total: Decimal, field: str, what: str) -> Decimal:
    """Return ``total`` if it is at most :data:`MAX_TOTAL`, else raise a
    :class:`~auptimate_core.errors.ValidationError` naming ``field`` and saying ``what`` total
    it would have been.

    >>> check_total(Decimal("900000000000000.00"), "amount", "pool 'p': invested")
    Decimal('900000000000000.00')
    >>> check_total(Decimal("1800000000000000.00"), "amount", "pool 'p': invested")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: amount: this write would take pool 'p': invested ...
    """
    if total > MAX_TOTAL:
        raise ValidationError(field, f"this write would take {what} to {total}, above the "
                                     f"ledger's bound of {MAX_TOTAL:,} (MAX_TOTAL); nothing "
                                     "was written")
    return total


def allocate(total: Decimal, weights: Mapping[str, Decimal], currency: str) -> dict[str, Decimal]:
    """Split ``total`` among ``weights``' keys pro rata, exactly, by largest remainder.

    Every share is a whole number of minor units and the shares add up to ``total`` exactly.
    Each key first gets its share rounded down; the minor units left over go one each to the keys
    with the largest remainders, ties to the smaller key. Keys with zero weight get zero.
    ``O(k log k)`` for ``k`` keys.
    """
    total = require_exact(total, currency, "total")
    if total < 0:
        raise ValidationError("total", f"must not be negative, not {total}")
    if any(w < 0 for w in weights.values()):
        raise ValidationError("weights", "must not be negative")
    weight_sum = sum(weights.values(), Decimal(0))
    if weight_sum <= 0:
        raise ValidationError("weights", "must have a positive sum to allocate pro rata")
    scale = 10 ** minor_digits(currency)
    units = int(total.scaleb(minor_digits(currency)))
    floors: dict[str, int] = {}
    remainders: list[tuple[Decimal, str]] = []
    for key, weight in weights.items():
        numerator = units * weight
        floor = int(numerator // weight_sum)
        floors[key] = floor
        remainders.append((numerator - floor * weight_sum, key))
    left = units - sum(floors.values())
    remainders.sort(key=lambda rk: (-rk[0], rk[1]))
    for _, key in remainders[:left]:
        floors[key] += 1
    exp = minor_unit(currency)
    return {key: (Decimal(n) / scale).quantize(exp) for key, n in floors.items()}
