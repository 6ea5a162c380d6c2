"""How a pool's money is split: pro rata distributions and fees, and exits with carry.

Weights are net invested capital (:attr:`Amounts.capital`: invested minus refunded, fees
included). Every split is exact: shares are whole minor units of the currency, rounded by the
largest-remainder method with ties to the smaller investor id
(:func:`auptimate_core.money.allocate`), and add up to the total.

With a carry rate the split follows the usual syndicate waterfall: first each investor gets back
the contributed capital not yet returned to them (capital minus what was already distributed to
them; pro rata to it if the total does not cover it all); what is left is profit, of which the
carry rate (rounded half-even to the minor unit) goes to the manager and the rest to the
investors pro rata to capital.

>>> from decimal import Decimal
>>> held = {f"i{n:02}": Amounts(invested=Decimal("10000.00"), fees=Decimal("800.00"))
...         for n in range(10)}
>>> split = split_distribution(Decimal("500000.00"), held, "USD", Decimal("0.20"))
>>> split.carry, split.shares["i00"], sum(split.shares.values())
(Decimal('80000.00'), Decimal('42000.00'), Decimal('420000.00'))
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal

import attrs

from ..errors import LedgerValidationError
from ..money import allocate, quantize
from ..ranking import EXACT
from .position import ZERO, Amounts


@attrs.frozen(slots=True)
class Split:
    """The result of a split: each investor's share (non-zero ones only, by id) and the carry."""

    shares: dict[str, Decimal]
    carry: Decimal = ZERO


def _capital(holdings: Mapping[str, Amounts], what: str) -> dict[str, Decimal]:
    capital = {i: held.capital for i, held in sorted(holdings.items()) if held.capital > 0}
    if not capital:
        raise LedgerValidationError("total", f"the pool has no invested capital to {what}")
    return capital


def _nonzero(shares: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {i: amount for i, amount in sorted(shares.items()) if amount > 0}


def check_carry(carry: object) -> Decimal | None:
    """Return a valid carry rate (a Decimal with ``0 <= carry < 1``), None, or raise."""
    if carry is None:
        return None
    if not isinstance(carry, Decimal) or not carry.is_finite():
        raise LedgerValidationError("carry", f"must be a finite Decimal rate, not {carry!r}")
    if not ZERO <= carry < 1:
        raise LedgerValidationError("carry", f"must be at least 0 and below 1, not {carry}")
    return carry


def split_distribution(total: Decimal, holdings: Mapping[str, Amounts], currency: str,
                       carry: Decimal | None = None) -> Split:
    """Split ``total`` among ``holdings`` (plain pro rata, or the carry waterfall).

    ``O(k log k)`` for ``k`` members.
    """
    capital = _capital(holdings, "distribute to")
    if carry is None:
        return Split(_nonzero(allocate(total, capital, currency)))
    with decimal.localcontext(EXACT):
        unreturned = {i: max(c - holdings[i].distributed, ZERO) for i, c in capital.items()}
        owed = sum(unreturned.values(), ZERO)
        if total <= owed:
            return Split(_nonzero(allocate(total, unreturned, currency)))
        profit = total - owed
        carried = quantize(profit * carry, currency)
        gains = allocate(profit - carried, capital, currency)
        shares = {i: unreturned[i] + gains[i] for i in capital}
    return Split(_nonzero(shares), carried)


def split_fee(total: Decimal, holdings: Mapping[str, Amounts], currency: str) -> Split:
    """Split a fee of ``total`` pro rata to capital; refuse one that exceeds a balance."""
    shares = _nonzero(allocate(total, _capital(holdings, "charge a fee on"), currency))
    for investor_id, amount in shares.items():
        left = holdings[investor_id].balance
        if amount > left:
            raise LedgerValidationError(
                "total", f"the fee would charge {investor_id!r} {amount}, more than the "
                f"{left} they have left in the pool")
    return Split(shares)
