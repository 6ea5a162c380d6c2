"""The top-investors ranking of a collection of transactions, in one pass.

>>> from datetime import datetime, timezone
>>> from decimal import Decimal
>>> at = datetime(2026, 3, 1, tzinfo=timezone.utc)
>>> txs = [Transaction("1", "ann", "p1", Decimal("100"), at),
...        Transaction("2", "ann", "p2", Decimal("50"), at),
...        Transaction("3", "bob", "p1", Decimal("500"), at),
...        Transaction("4", "bob", "p1", Decimal("200"), at, "refund"),
...        Transaction("5", "cy", "p3", Decimal("500"), at),
...        Transaction("6", "cy", "p4", Decimal("90"), at, "distribution")]
>>> for rank in top_investors(txs, n=3):
...     print(rank.investor_id, rank.unique_pools, rank.total_amount)
ann 2 150
cy 1 500
bob 1 300
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from ..domain import Transaction
from .invested import tally
from .ranks import InvestorRank, RankFilter, check_n, check_transaction, kind_set, rank_totals

__all__ = ["top_investors"]


def _rows(
    transactions: Iterable[Transaction], accept: RankFilter
) -> Iterator[tuple[str, str, str, Decimal]]:
    everything = accept.everything
    for item in transactions:
        tx = check_transaction(item)
        if everything or accept.accepts(tx):
            yield tx.investor_id, tx.pool_id, tx.kind, tx.amount


def top_investors(
    transactions: Iterable[Transaction],
    n: int = 5,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[InvestorRank]:
    """The ``n`` investors in the most distinct pools, with their total invested, in contract
    order.

    ``unique_pools`` counts the distinct pools an investor invested in; ``total_amount`` is
    their investments less their refunds (fees, distributions and carry are not investments; see
    :mod:`auptimate_core.ranking.invested`). Every transaction given counts, as a ``GROUP BY``
    query would (one listed twice counts twice: use :class:`~auptimate_core.TopInvestors` to
    count each transaction id once). ``since``/``until``/``kinds`` restrict what is looked at,
    as in :class:`~auptimate_core.ranking.RankFilter`. Fewer than ``n`` investors give a shorter
    list. One pass, ``O(t + m log n)`` time for ``t`` transactions of ``m`` investors,
    ``O(m + distinct investor-pool pairs)`` memory.

    >>> top_investors([], n=0)
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: n: must be a positive integer, not 0
    """
    check_n(n)
    accept = RankFilter(since, until, kind_set(kinds))
    return rank_totals(tally(_rows(transactions, accept)), n)
