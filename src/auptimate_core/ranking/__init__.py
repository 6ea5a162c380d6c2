"""Top investors: who invested in the most distinct pools, and how much.

One definition of what counts (:mod:`.invested`: investments less refunds, pools invested in)
and one order (:mod:`.ranks`), in the forms that give the same list:

- :func:`top_investors` ranks a collection of transactions in one pass (:mod:`.listing`);
- :class:`TopInvestors` keeps the ranking current as transactions arrive (:mod:`.incremental`);
- :func:`~auptimate_core.ranking.vectorised.fast_top_investors` ranks a large CSV file in polars
  or DuckDB (:mod:`.vectorised`, imported on use);
- :func:`~auptimate_core.backends.sql.ranking.top_investors_sql` asks a database (it lives with
  the SQL backend, since it needs SQLAlchemy, and takes its definition from here).

Totals are exact Decimals: sums are taken in :data:`~auptimate_core.money.EXACT`, so no amount
is ever rounded on the way. Each name here is imported from its module on first use, so that
the vectorised ranking starts reading a file before the other forms are imported.

>>> from datetime import datetime, timezone
>>> from decimal import Decimal
>>> from auptimate_core import Transaction
>>> from auptimate_core.ranking import top_investors
>>> at = datetime(2026, 3, 1, tzinfo=timezone.utc)
>>> txs = [Transaction("1", "ann", "p1", Decimal("100"), at),
...        Transaction("2", "ann", "p2", Decimal("50"), at),
...        Transaction("3", "bob", "p1", Decimal("500"), at)]
>>> [(r.investor_id, r.unique_pools, r.total_amount) for r in top_investors(txs, n=2)]
[('ann', 2, Decimal('150')), ('bob', 1, Decimal('500'))]
"""

from typing import TYPE_CHECKING

from ..exports import lazy_exports
from ..money import EXACT

if TYPE_CHECKING:
    from .incremental import TopInvestors
    from .invested import ADDS, COUNTED, SUBTRACTS, WITHOUT_KIND, tally
    from .listing import top_investors
    from .order import RankKey, check_n, rank_key
    from .ranks import InvestorRank, RankFilter, rank_totals

_MODULES = {
    "order": ("RankKey", "check_n", "rank_key"),
    "incremental": ("TopInvestors",),
    "invested": ("ADDS", "COUNTED", "SUBTRACTS", "WITHOUT_KIND", "tally"),
    "listing": ("top_investors",),
    "ranks": ("InvestorRank", "RankFilter", "rank_totals"),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)

__all__ = [
    "ADDS",
    "COUNTED",
    "EXACT",
    "SUBTRACTS",
    "WITHOUT_KIND",
    "InvestorRank",
    "RankFilter",
    "RankKey",
    "TopInvestors",
    "check_n",
    "rank_key",
    "rank_totals",
    "tally",
    "top_investors",
]
