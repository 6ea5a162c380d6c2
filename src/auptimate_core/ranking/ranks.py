"""The lines of a ranking, their order, and which transactions a ranking looks at.

The order is fixed by the public contract (:mod:`.order`): ``unique_pools`` descending, then
``total_amount`` descending, then ``investor_id`` ascending. Every form of the ranking (list,
incremental, SQL, vectorised) finishes with :func:`rank_totals` or keeps :func:`rank_key` order
itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import attrs

from ..domain import KINDS, Transaction, check_timestamp
from ..errors import InvalidKind, ValidationError
from .order import RankKey, check_n, line_dict, rank_key

__all__ = ["InvestorRank", "RankFilter", "RankKey", "check_n", "rank_key", "rank_totals"]

@attrs.frozen(slots=True)
class InvestorRank:
    """One line of the ranking: an investor, how many distinct pools they invested in, and
    their total invested.

    >>> InvestorRank("ann", 2, Decimal("150.00"))
    InvestorRank(investor_id='ann', unique_pools=2, total_amount=Decimal('150.00'))
    """

    investor_id: str
    unique_pools: int
    total_amount: Decimal

    def to_dict(self) -> dict[str, str | int]:
        """JSON-ready values: the total as a string, never a float.

        >>> InvestorRank("ann", 2, Decimal("150.00")).to_dict()
        {'investor_id': 'ann', 'unique_pools': 2, 'total_amount': '150.00'}
        """
        return line_dict(self.investor_id, self.unique_pools, self.total_amount)


def rank_of_key(key: RankKey) -> InvestorRank:
    """The line of the ranking a :func:`rank_key` stands for."""
    return InvestorRank(key[2], -key[0], key[1].copy_negate())


def rank_totals(
    totals: Iterable[tuple[str, int, Decimal]], n: int
) -> list[InvestorRank]:
    """The top ``n`` of ``(investor_id, unique_pools, total_amount)`` triples, in contract order.

    The other forms (SQL, the vectorised file reader) aggregate their own way and finish here.
    ``O(m log n)`` for ``m`` triples.
    """
    check_n(n)
    keys = (rank_key(inv, pools, total) for inv, pools, total in totals)
    return [rank_of_key(key) for key in heapq.nsmallest(n, keys)]


def kind_set(kinds: Iterable[str] | None) -> frozenset[str] | None:
    """``kinds`` as a frozenset (a single string is one kind), ``None`` kept."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        return frozenset((kinds,))
    return frozenset(kinds)


@attrs.frozen(slots=True)
class RankFilter:
    """Which transactions a ranking looks at: an event-time range and a set of kinds.

    ``since`` is inclusive and ``until`` exclusive (``since <= timestamp < until``); ``None``
    leaves that side open. ``kinds=None`` looks at every kind; a set narrows what is looked at,
    and of what is looked at only investments and refunds ever count (see
    :mod:`auptimate_core.ranking.invested`).
    """

    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] | None = attrs.field(default=None, converter=kind_set)

    def __attrs_post_init__(self) -> None:
        if self.since is not None:
            check_timestamp(self.since, "since")
        if self.until is not None:
            check_timestamp(self.until, "until")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValidationError("until", f"must be after since ({self.since.isoformat()})")
        if self.kinds is not None:
            if not self.kinds:
                raise InvalidKind("kinds", "must name at least one kind (or be None for all)")
            unknown = self.kinds - KINDS
            if unknown:
                raise InvalidKind("kinds", f"unknown kinds {sorted(unknown)}; "
                                  f"known: {sorted(KINDS)}")

    @property
    def everything(self) -> bool:
        """True when the filter lets every transaction through."""
        return self.since is None and self.until is None and self.kinds is None

    def accepts(self, tx: Transaction) -> bool:
        """Whether ``tx`` is looked at."""
        if self.kinds is not None and tx.kind not in self.kinds:
            return False
        if self.since is not None and tx.timestamp < self.since:
            return False
        return self.until is None or tx.timestamp < self.until


def check_transaction(item: object) -> Transaction:
    """``item`` if it is a Transaction, else TypeError."""
    if not isinstance(item, Transaction):
        raise TypeError(f"expected a Transaction, not {type(item).__name__}")
    return item
