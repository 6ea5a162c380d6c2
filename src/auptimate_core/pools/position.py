"""What the ledger keeps per membership and per pool, and what it shows: :class:`Position`.

:class:`Amounts` is the running total of each kind of money movement, kept for every
(pool, investor) membership and for the pool as a whole; :class:`Position` and
:class:`PoolTotals` are the public views of them.

>>> held = Amounts().add("investment", Decimal("100.00")).add("fee", Decimal("8.00"))
>>> held.capital, held.balance
(Decimal('100.00'), Decimal('92.00'))
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import attrs

from ..money import MAX_TOTAL, check_total, minor_unit
from ..ranking import EXACT
from . import codec

ZERO: Final = Decimal(0)
_SHARE: Final = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)

_FIELD_OF_KIND: Final = {
    "investment": "invested",
    "refund": "refunded",
    "fee": "fees",
    "distribution": "distributed",
    "carry": "carry",
}
_TOTALS: Final = ("invested", "refunded", "fees", "distributed", "carry")
_INDEX_OF_KIND: Final = {kind: _TOTALS.index(name) for kind, name in _FIELD_OF_KIND.items()}
_REQUEST_FIELD: Final = {"investment": "amount", "refund": "amount"}


@attrs.frozen(slots=True)
class Amounts:
    """Running totals of one membership (or of a whole pool), one per kind of transaction.

    ``carry`` is non-zero only for a pool's totals: carry goes to the manager, not to a member.
    Sums are exact (never rounded). ``add`` is ``O(1)``.
    """

    invested: Decimal = ZERO
    refunded: Decimal = ZERO
    fees: Decimal = ZERO
    distributed: Decimal = ZERO
    carry: Decimal = ZERO

    @property
    def capital(self) -> Decimal:
        """Net invested capital, fees included: invested minus refunded. Pro-rata weight."""
        return EXACT.subtract(self.invested, self.refunded)

    @property
    def balance(self) -> Decimal:
        """Money still held for the investor: invested minus refunded minus fees."""
        return EXACT.subtract(self.capital, self.fees)

    @classmethod
    def zero(cls, currency: str) -> Amounts:
        """All totals zero, written at ``currency``'s minor unit (``0.00`` for USD)."""
        nothing = minor_unit(currency) * 0
        return cls(nothing, nothing, nothing, nothing, nothing)

    def add(self, kind: str, amount: Decimal) -> Amounts:
        """These totals after a transaction of ``kind`` for ``amount``.

        A total above :data:`~auptimate_core.money.MAX_TOTAL` is a
        :class:`~auptimate_core.errors.ValidationError` naming the request's field (``amount``
        of an investment or refund, ``total`` of a fee or distribution): every backend keeps
        every total exactly.
        """
        index = _INDEX_OF_KIND[kind]
        values = [self.invested, self.refunded, self.fees, self.distributed, self.carry]
        total = values[index] = EXACT.add(values[index], amount)
        if total > MAX_TOTAL:
            check_total(total, _REQUEST_FIELD.get(kind, "total"), f"the {_TOTALS[index]} total")
        return Amounts(*values)

    def negative(self) -> str | None:
        """The name of a total that is below zero (an invariant broken), or None."""
        for name in ("invested", "refunded", "fees", "distributed", "carry", "balance"):
            if getattr(self, name) < 0:
                return name
        return None


def share_of(part: Decimal, whole: Decimal) -> Decimal:
    """``part / whole`` to 28 significant digits, or zero when ``whole`` is zero.

    >>> share_of(Decimal(1), Decimal(4))
    Decimal('0.25')
    """
    if whole <= 0:
        return ZERO
    return _SHARE.divide(part, whole)


@attrs.frozen(slots=True)
class Position:
    """One investor's standing in one pool.

    ``invested`` is the sum of their investments, ``distributed`` the sum paid out to them,
    ``share`` their fraction of the pool's net invested capital (``capital`` over the pool's,
    zero in a pool without capital). ``refunded`` and ``fees`` complete the picture:
    ``capital = invested - refunded`` (fees included) and ``balance = capital - fees``.

    >>> p = Position("p1", "ann", Decimal("100.00"), Decimal("0.00"), Decimal("0.5"))
    >>> p.capital, p.balance
    (Decimal('100.00'), Decimal('100.00'))
    """

    pool_id: str
    investor_id: str
    invested: Decimal
    distributed: Decimal
    share: Decimal
    refunded: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def capital(self) -> Decimal:
        """Net invested capital: invested minus refunded (fees included)."""
        return EXACT.subtract(self.invested, self.refunded)

    @property
    def balance(self) -> Decimal:
        """Money still held for the investor: capital minus fees."""
        return EXACT.subtract(self.capital, self.fees)

    @classmethod
    def of(cls, pool_id: str, investor_id: str, held: Amounts, pool_capital: Decimal) -> Position:
        """The position of ``held`` in a pool whose net invested capital is ``pool_capital``."""
        return cls(pool_id, investor_id, held.invested, held.distributed,
                   share_of(held.capital, pool_capital), held.refunded, held.fees)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready values (amounts and the share as text).

        >>> Position("p1", "ann", Decimal("100.00"), Decimal("0.00"), Decimal("0.5")).to_dict()
        {'pool_id': 'p1', 'investor_id': 'ann', 'invested': '100.00', 'distributed': '0.00', \
'share': '0.5', 'refunded': '0', 'fees': '0'}
        """
        return dict(zip(_POSITION_FIELDS, self._texts(), strict=True))

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text."""
        return _POSITION_JSON.format(*map(_quote, self._texts()))

    def _texts(self) -> tuple[str, ...]:
        return (self.pool_id, self.investor_id, str(self.invested), str(self.distributed),
                str(self.share), str(self.refunded), str(self.fees))

    @classmethod
    def from_dict(cls, data: object, field: str = "position") -> Position:
        """The inverse of :meth:`to_dict`; a missing or malformed value is a ValidationError."""
        found = codec.mapping(data, field)
        return cls(codec.text(found, "pool_id", field), codec.text(found, "investor_id", field),
                   codec.decimal(found, "invested", field),
                   codec.decimal(found, "distributed", field),
                   codec.decimal(found, "share", field), codec.decimal(found, "refunded", field),
                   codec.decimal(found, "fees", field))


@attrs.frozen(slots=True)
class PoolTotals:
    """A pool's totals: what came in, what went out, and what the manager took as carry.

    The sums of the members' positions equal these (``carry`` aside, which goes to the
    manager); ``balance`` is the money still held for the members.
    """

    pool_id: str
    currency: str
    invested: Decimal
    refunded: Decimal
    fees: Decimal
    distributed: Decimal
    carry: Decimal

    @property
    def capital(self) -> Decimal:
        """Net invested capital of the pool: invested minus refunded."""
        return EXACT.subtract(self.invested, self.refunded)

    @property
    def balance(self) -> Decimal:
        """Money still held for the members: capital minus fees."""
        return EXACT.subtract(self.capital, self.fees)

    @classmethod
    def of(cls, pool_id: str, currency: str, totals: Amounts) -> PoolTotals:
        return cls(pool_id, currency, totals.invested, totals.refunded, totals.fees,
                   totals.distributed, totals.carry)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready values (amounts as text)."""
        return dict(zip(_TOTALS_FIELDS, self._texts(), strict=True))

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text."""
        return _TOTALS_JSON.format(*map(_quote, self._texts()))

    def _texts(self) -> tuple[str, ...]:
        return (self.pool_id, self.currency, str(self.invested), str(self.refunded),
                str(self.fees), str(self.distributed), str(self.carry))

    @classmethod
    def from_dict(cls, data: object, field: str = "totals") -> PoolTotals:
        """The inverse of :meth:`to_dict`; a missing or malformed value is a ValidationError."""
        found = codec.mapping(data, field)
        return cls(codec.text(found, "pool_id", field), codec.text(found, "currency", field),
                   *(codec.decimal(found, name, field)
                     for name in ("invested", "refunded", "fees", "distributed", "carry")))


def _json_template(fields: tuple[str, ...]) -> str:
    """A ``str.format`` template of a JSON object of ``fields``, each value given as JSON."""
    return "{{" + ",".join(f'"{name}":{{}}' for name in fields) + "}}"


_quote: Callable[[str], str] = json.encoder.encode_basestring  # json.dumps' own, in C
_POSITION_FIELDS: Final = ("pool_id", "investor_id", "invested", "distributed", "share",
                           "refunded", "fees")
_POSITION_JSON: Final = _json_template(_POSITION_FIELDS)
_TOTALS_FIELDS: Final = ("pool_id", "currency", *_TOTALS)
_TOTALS_JSON: Final = _json_template(_TOTALS_FIELDS)
