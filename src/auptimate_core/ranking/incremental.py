"""The incremental top-investors ranking: current as transactions arrive, asked at any time.

Asking for the top ``n`` costs ``O(log m + n)`` for ``m`` investors instead of a recount; the
answer is the list form's (:func:`~auptimate_core.top_investors`) over the distinct transaction
ids added so far.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sortedcontainers import SortedList

from ..domain import Transaction
from ..money import EXACT
from .invested import ADDS, SUBTRACTS
from .ranks import (
    InvestorRank,
    RankFilter,
    RankKey,
    check_n,
    check_transaction,
    kind_set,
    rank_key,
    rank_of_key,
)

__all__ = ["TopInvestors"]


class _Holding:
    """What the ranking knows of one investor: the pools they invested in and their total.

    ``total`` is None until an investment or a refund of theirs is counted; the investor is in
    the order once ``pools`` is not empty.
    """

    __slots__ = ("pools", "total")

    def __init__(self) -> None:
        self.pools: set[str] = set()
        self.total: Decimal | None = None

    def key(self, investor_id: str) -> RankKey | None:
        if not self.pools:
            return None
        assert self.total is not None
        return rank_key(investor_id, len(self.pools), self.total)


def _signed(tx: Transaction) -> Decimal | None:
    """What ``tx`` adds to its investor's total invested, or None if it adds nothing."""
    if tx.kind in ADDS:
        return tx.amount
    if tx.kind in SUBTRACTS:
        return tx.amount.copy_negate()
    return None


class TopInvestors:
    """The incremental ranking: add transactions as they arrive, ask for the top at any time.

    What counts is what counts for :func:`~auptimate_core.top_investors`: investments less
    refunds, pools invested in. Each transaction id counts once: a repeated id (a retry, a
    replayed stream) changes nothing. Transactions outside the ``since``/``until`` range or not
    of one of ``kinds`` are ignored (see :class:`~auptimate_core.ranking.RankFilter`) and their
    ids are not remembered.

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
    ...                   Transaction("3", "bob", "p2", Decimal("30"), at),
    ...                   Transaction("4", "bob", "p2", Decimal("5"), at, "fee")])
    3
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
        self.filter = RankFilter(since, until, kind_set(kinds))
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
        return len(self._order)

    def __repr__(self) -> str:
        return (f"TopInvestors(investors={len(self._order)}, "
                f"transactions={len(self._seen)}, filter={self.filter!r})")

    @property
    def transactions(self) -> int:
        """The number of transactions counted so far (every kind, each id once)."""
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

    def _update(self, investor_id: str, pools: Iterable[str], added: Decimal) -> None:
        """Add to an investor's holding and put them back in the order. Caller holds the lock."""
        holding = self._holdings.get(investor_id)
        if holding is None:
            holding = self._holdings[investor_id] = _Holding()
        else:
            old = holding.key(investor_id)
            if old is not None:
                self._order.remove(old)
        holding.pools.update(pools)
        holding.total = added if holding.total is None else EXACT.add(holding.total, added)
        new = holding.key(investor_id)
        if new is not None:
            self._order.add(new)

    def add(self, tx: Transaction) -> bool:
        """Count ``tx``; return False if it was not counted (a repeated id, or filtered out).

        A transaction that is not an investment or a refund is counted (its id is remembered)
        but changes no total.
        """
        check_transaction(tx)
        with self._lock:
            if not self._admit(tx):
                return False
            signed = _signed(tx)
            if signed is not None:
                pools = (tx.pool_id,) if tx.kind in ADDS else ()
                self._update(tx.investor_id, pools, signed)
            return True

    def add_many(self, transactions: Iterable[Transaction]) -> int:
        """Count each of ``transactions`` as :meth:`add` would; return how many were counted.

        Every item is checked before any is counted, so a bad item changes nothing. Each
        investor's place in the order is updated once per batch, not once per transaction.
        """
        batch = [check_transaction(item) for item in transactions]
        with self._lock:
            pools: dict[str, set[str]] = {}
            sums: dict[str, Decimal] = {}
            counted = 0
            with decimal.localcontext(EXACT):
                for tx in batch:
                    if not self._admit(tx):
                        continue
                    counted += 1
                    signed = _signed(tx)
                    if signed is None:
                        continue
                    investor = tx.investor_id
                    if investor in sums:
                        sums[investor] = sums[investor] + signed
                    else:
                        pools[investor] = set()
                        sums[investor] = signed
                    if tx.kind in ADDS:
                        pools[investor].add(tx.pool_id)
                for investor, added in sums.items():
                    self._update(investor, pools[investor], added)
            return counted

    def top(self, n: int = 5) -> list[InvestorRank]:
        """The first ``n`` of the ranking (fewer if fewer investors). ``O(log m + n)``."""
        check_n(n)
        with self._lock:
            return [rank_of_key(key) for key in self._order.islice(0, n)]

    def get(self, investor_id: str) -> InvestorRank | None:
        """The investor's current line of the ranking, or None if they have none. ``O(1)``."""
        with self._lock:
            holding = self._holdings.get(investor_id)
            key = None if holding is None else holding.key(investor_id)
            return None if key is None else rank_of_key(key)

    def position(self, investor_id: str) -> int | None:
        """The investor's 1-based place in the ranking, or None. ``O(log m)``."""
        with self._lock:
            holding = self._holdings.get(investor_id)
            key = None if holding is None else holding.key(investor_id)
            return None if key is None else self._order.index(key) + 1

    def _check(self) -> None:
        """Assert the invariants: one key per investor with a pool, each matching the holding."""
        with self._lock:
            ranked = {inv: h for inv, h in self._holdings.items() if h.pools}
            assert len(self._order) == len(ranked)
            for key in self._order:
                holding = ranked[key[2]]
                assert key == holding.key(key[2])
            for holding in self._holdings.values():
                assert holding.total is not None
