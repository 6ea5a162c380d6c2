"""What "total invested" means, written once for every form of the ranking.

An investor's total invested is what they put in, less what was given back to them:

- an ``investment`` adds its amount, and its pool counts among the investor's pools;
- a ``refund`` takes its amount off (its pool does not count: a refund is not an investment);
- a ``fee``, a ``distribution`` or ``carry`` is not an investment and counts for nothing.

A row without a kind (a syndicate-style CSV has no kind column) is an investment. An investor
is ranked once they have invested in at least one pool; a refund seen before any investment is
kept and taken off when the investment comes. The list and incremental forms, the SQL pushdown
and the vectorised file reader all take these sets from here.

>>> from decimal import Decimal
>>> rows = [("ann", "p1", "investment", Decimal("100")), ("ann", "p1", "refund", Decimal("30")),
...         ("ann", "p2", "fee", Decimal("5")), ("bob", "p2", "refund", Decimal("10"))]
>>> tally(rows)
[('ann', 1, Decimal('70'))]
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from ..money import EXACT

__all__ = ["ADDS", "COUNTED", "SUBTRACTS", "WITHOUT_KIND", "tally"]

ADDS: Final = frozenset({"investment"})
"""Kinds whose amount adds to the total invested and whose pool counts as one invested in."""

SUBTRACTS: Final = frozenset({"refund"})
"""Kinds whose amount is taken off the total invested."""

COUNTED: Final = ADDS | SUBTRACTS
"""Every kind that changes a ranking; the other kinds are read, checked, and left out."""

WITHOUT_KIND: Final = "investment"
"""The kind of a row that has none."""


def tally(rows: Iterable[tuple[str, str, str, Decimal]]) -> list[tuple[str, int, Decimal]]:
    """``(investor_id, unique_pools, total_invested)`` of every investor who invested, from
    ``(investor_id, pool_id, kind, amount)`` rows.

    Every row given counts (no id, no dedup). Totals are exact and keep the exponent a Decimal
    sum of the counted amounts has. ``O(rows)`` time, ``O(investors + investor-pool pairs)``
    memory.
    """
    pools: dict[str, set[str]] = {}
    totals: dict[str, Decimal] = {}
    with decimal.localcontext(EXACT):
        for investor, pool, kind, amount in rows:
            if kind in ADDS:
                seen = pools.get(investor)
                if seen is None:
                    pools[investor] = {pool}
                else:
                    seen.add(pool)
                signed = amount
            elif kind in SUBTRACTS:
                signed = amount.copy_negate()
            else:
                continue
            total = totals.get(investor)
            totals[investor] = signed if total is None else total + signed
    return [(investor, len(held), totals[investor]) for investor, held in pools.items()]
