"""Top investors: who backs the most distinct pools, and with how much money.

Problem 1 of the brief, in two forms that give the same list:

- :func:`top_investors` ranks a collection of transactions in one pass;
- :class:`TopInvestors` keeps the ranking current as transactions arrive, so asking for the top
  ``n`` costs ``O(log m + n)`` for ``m`` investors instead of a recount.

The order is fixed by the public contract: ``unique_pools`` descending, then ``total_amount``
descending, then ``investor_id`` ascending. Totals are exact Decimals: sums are taken with
unlimited precision, so no amount is ever rounded on the way.

>>> from datetime import datetime, timezone
>>> from decimal import Decimal
>>> at = datetime(2026, 3, 1, tzinfo=timezone.utc)
>>> txs = [Transaction("1", "ann", "p1", Decimal("100"), at),
...        Transaction("2", "ann", "p2", Decimal("50"), at),
...        Transaction("3", "bob", "p1", Decimal("500"), at),
...        Transaction("4", "cy", "p3", Decimal("500"), at)]
>>> for rank in top_investors(txs, n=2):
...     print(rank.investor_id, rank.unique_pools, rank.total_amount)
ann 2 150
bob 1 500
"""

from __future__ import annotations

import decimal
import heapq
import threading
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final

import attrs
from sortedcontainers import SortedList

from .domain import KINDS, Transaction, check_timestamp
from .errors import InvalidKind, ValidationError

EXACT: Final = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
)
"""A decimal context in which additions of finite Decimals are never rounded."""

_ZERO: Final = Decimal(0)

RankKey = tuple[int, Decimal, str]
"""``(-unique_pools, -total_amount, investor_id)``: ascending order of keys is ranking order."""


@attrs.frozen(slots=True)
class InvestorRank:
    """One line of the ranking: an investor, how many distinct pools they are in, their total.

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
        return {
            "investor_id": self.investor_id,
            "unique_pools": self.unique_pools,
            "total_amount": format(self.total_amount, "f"),
        }


def rank_key(investor_id: str, unique_pools: int, total_amount: Decimal) -> RankKey:
    """The sort key putting ranks in contract order (copy_negate is exact, unlike ``-``)."""
    return (-unique_pools, total_amount.copy_negate(), investor_id)


def _from_key(key: RankKey) -> InvestorRank:
    return InvestorRank(key[2], -key[0], key[1].copy_negate())


def check_n(n: object) -> int:
    """Return ``n`` if it is a positive int (bools excluded), else raise ``ValidationError``.

    >>> check_n(0)
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: n: must be a positive integer, not 0
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValidationError("n", f"must be a positive integer, not {type(n).__name__} {n!r}")
    if n < 1:
        raise ValidationError("n", f"must be a positive integer, not {n}")
    return n


def rank_totals(
    totals: Iterable[tuple[str, int, Decimal]], n: int
) -> list[InvestorRank]:
    """The top ``n`` of ``(investor_id, unique_pools, total_amount)`` triples, in contract order.

    The other forms (SQL, the vectorised file reader) aggregate their own way and finish here.
    ``O(m log n)`` for ``m`` triples.
    """
    check_n(n)
    keys = (rank_key(inv, pools, total) for inv, pools, total in totals)
    return [_from_key(key) for key in heapq.nsmallest(n, keys)]


def _kind_set(kinds: Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        return frozenset((kinds,))
    return frozenset(kinds)


@attrs.frozen(slots=True)
class RankFilter:
    """Which transactions a ranking counts: an event-time range and a set of kinds.

    ``since`` is inclusive and ``until`` exclusive (``since <= timestamp < until``); ``None``
    leaves that side open. ``kinds=None`` counts every kind.
    """

    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] | None = attrs.field(default=None, converter=_kind_set)

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
        """Whether ``tx`` is counted."""
        if self.kinds is not None and tx.kind not in self.kinds:
            return False
        if self.since is not None and tx.timestamp < self.since:
            return False
        return self.until is None or tx.timestamp < self.until


def _check_transaction(item: object) -> Transaction:
    if not isinstance(item, Transaction):
        raise TypeError(f"expected a Transaction, not {type(item).__name__}")
    return item


def top_investors(
    transactions: Iterable[Transaction],
    n: int = 5,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[InvestorRank]:
    """The ``n`` investors in the most distinct pools, with their total, in contract order.

    ``unique_pools`` counts distinct pools; ``total_amount`` sums every transaction given, as the
    brief's ``GROUP BY`` query does (a transaction listed twice counts twice: use
    :class:`TopInvestors` to count each transaction id once). ``since``/``until``/``kinds``
    restrict what is counted, as in :class:`RankFilter`. Fewer than ``n`` investors give a
    shorter list. One pass, ``O(t + m log n)`` time for ``t`` transactions of ``m`` investors,
    ``O(m + distinct investor-pool pairs)`` memory.

    >>> top_investors([], n=0)
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: n: must be a positive integer, not 0
    """
    check_n(n)
    accept = RankFilter(since, until, _kind_set(kinds))
    pools: dict[str, set[str]] = {}
    totals: dict[str, Decimal] = {}
    with decimal.localcontext(EXACT):
        for item in transactions:
            tx = _check_transaction(item)
            if not accept.everything and not accept.accepts(tx):
                continue
            investor = tx.investor_id
            seen = pools.get(investor)
            if seen is None:
                pools[investor] = {tx.pool_id}
                totals[investor] = tx.amount
            else:
                seen.add(tx.pool_id)
                totals[investor] = totals[investor] + tx.amount
    return rank_totals(((inv, len(p), totals[inv]) for inv, p in pools.items()), n)


class _Holding:
    """What the ranking knows of one investor: the pools they are in and their total."""

    __slots__ = ("pools", "total")

    def __init__(self) -> None:
        self.pools: set[str] = set()
        self.total = _ZERO


class TopInvestors:
    """The incremental ranking: add transactions as they arrive, ask for the top at any time.

    Each transaction id counts once: a repeated id (a retry, a replayed stream) changes nothing.
    Transactions outside the ``since``/``until`` range or not of one of ``kinds`` are ignored
    (see :class:`RankFilter`) and their ids are not remembered.

    Complexity, for ``m`` investors: :meth:`add` is ``O(log m)``; :meth:`add_many` of ``k``
    transactions touching ``j`` investors is ``O(k + j log m)``; :meth:`top` is
    ``O(log m + n)``. Memory is ``O(t + p)`` for ``t`` transaction ids (kept to recognise
    repeats) and ``p`` distinct investor-pool pairs.

    Safe to share between threads: every method holds one internal lock, so a reader never sees
    half of a batch.

    >>> from datetime import datetime, timezone
    >>> at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> ranking = TopInvestors()
    >>> ranking.add(Transaction("1", "ann", "p1", Decimal("100"), at))
    True
    >>> ranking.add(Transaction("1", "ann", "p1", Decimal("100"), at))  # the same id again
    False
    >>> ranking.add_many([Transaction("2", "bob", "p1", Decimal("70"), at),
    ...                   Transaction("3", "bob", "p2", Decimal("30"), at)])
    2
    >>> ranking.top(2)
    [InvestorRank(investor_id='bob', unique_pools=2, total_amount=Decimal('100')), \
InvestorRank(investor_id='ann', unique_pools=1, total_amount=Decimal('100'))]
    """

    def __init__(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.filter = RankFilter(since, until, _kind_set(kinds))
        self._holdings: dict[str, _Holding] = {}
        self._order: SortedList[RankKey] = SortedList()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.duplicates = 0
        """Transactions not counted because their id was already counted."""
        self.filtered = 0
        """Transactions not counted because the filter left them out."""

    def __len__(self) -> int:
        """The number of investors ranked so far."""
        return len(self._holdings)

    def __repr__(self) -> str:
        return (f"TopInvestors(investors={len(self._holdings)}, "
                f"transactions={len(self._seen)}, filter={self.filter!r})")

    @property
    def transactions(self) -> int:
        """The number of transactions counted so far."""
        return len(self._seen)

    def _admit(self, tx: Transaction) -> bool:
        """Whether ``tx`` is new and passes the filter; remembers its id. Caller holds the lock."""
        if not self.filter.everything and not self.filter.accepts(tx):
            self.filtered += 1
            return False
        if tx.id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(tx.id)
        return True

    def _holding(self, investor_id: str) -> _Holding:
        """The investor's holding, taken out of the order (caller puts it back)."""
        holding = self._holdings.get(investor_id)
        if holding is None:
            holding = self._holdings[investor_id] = _Holding()
        else:
            self._order.remove(rank_key(investor_id, len(holding.pools), holding.total))
        return holding

    def add(self, tx: Transaction) -> bool:
        """Count ``tx``; return False if it was not counted (a repeated id, or filtered out)."""
        _check_transaction(tx)
        with self._lock:
            if not self._admit(tx):
                return False
            holding = self._holding(tx.investor_id)
            holding.pools.add(tx.pool_id)
            holding.total = EXACT.add(holding.total, tx.amount)
            self._order.add(rank_key(tx.investor_id, len(holding.pools), holding.total))
            return True

    def add_many(self, transactions: Iterable[Transaction]) -> int:
        """Count each of ``transactions`` as :meth:`add` would; return how many were counted.

        Every item is checked before any is counted, so a bad item changes nothing. Each
        investor's place in the order is updated once per batch, not once per transaction.
        """
        batch = [_check_transaction(item) for item in transactions]
        with self._lock:
            pools: dict[str, set[str]] = {}
            sums: dict[str, Decimal] = {}
            counted = 0
            with decimal.localcontext(EXACT):
                for tx in batch:
                    if not self._admit(tx):
                        continue
                    counted += 1
                    investor = tx.investor_id
                    if investor in sums:
                        pools[investor].add(tx.pool_id)
                        sums[investor] = sums[investor] + tx.amount
                    else:
                        pools[investor] = {tx.pool_id}
                        sums[investor] = tx.amount
                for investor, added in sums.items():
                    holding = self._holding(investor)
                    holding.pools |= pools[investor]
                    holding.total = holding.total + added
                    self._order.add(rank_key(investor, len(holding.pools), holding.total))
            return counted

    def top(self, n: int = 5) -> list[InvestorRank]:
        """The first ``n`` of the ranking (fewer if fewer investors). ``O(log m + n)``."""
        check_n(n)
        with self._lock:
            return [_from_key(key) for key in self._order.islice(0, n)]

    def get(self, investor_id: str) -> InvestorRank | None:
        """The investor's current line of the ranking, or None if they have none. ``O(1)``."""
        with self._lock:
            holding = self._holdings.get(investor_id)
            if holding is None:
                return None
            return InvestorRank(investor_id, len(holding.pools), holding.total)

    def position(self, investor_id: str) -> int | None:
        """The investor's 1-based place in the ranking, or None. ``O(log m)``."""
        with self._lock:
            holding = self._holdings.get(investor_id)
            if holding is None:
                return None
            return self._order.index(rank_key(investor_id, len(holding.pools), holding.total)) + 1

    def _check(self) -> None:
        """Assert the invariants: one key per investor, each matching the investor's holding."""
        with self._lock:
            assert len(self._order) == len(self._holdings)
            for key in self._order:
                holding = self._holdings[key[2]]
                assert key == rank_key(key[2], len(holding.pools), holding.total)
                assert holding.pools and holding.total > 0
