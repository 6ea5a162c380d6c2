"""A brute-force model of the top-investors ranking, and strategies for data full of ties.

The model sorts every investor with Python's stable sort on exact Fractions; nothing in it is
shared with the code under test. What it counts is API.md's: ``unique_pools`` the distinct
pools an investor invested in, ``total_amount`` their investments less their refunds (fees,
distributions and carry are not investments); an investor who invested in no pool is not ranked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import strategies as st

from auptimate_core import InvestorRank, Transaction

Row = tuple[str, int, Fraction]

BASE = datetime(2026, 1, 1, tzinfo=UTC)
INVESTORS = ["a", "b", "c", "d", "e", "f"]
POOLS = ["p1", "p2", "p3", "p4"]
# Few distinct amounts, some equal in value but not in form, so totals tie often.
AMOUNTS = [Decimal("1"), Decimal("2"), Decimal("1.5"), Decimal("0.5"), Decimal("1.50"),
           Decimal("3"), Decimal("100.25")]
KIND_LIST = ["investment", "refund", "distribution", "fee", "carry"]
# Half of the random transactions are investments, the rest spread over the other kinds.
KINDS_DRAWN = st.one_of(st.just("investment"), st.sampled_from(KIND_LIST))


def model_top(
    transactions: Iterable[Transaction], n: int, *, dedupe: bool = False,
    since: datetime | None = None, until: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[Row]:
    kind_set = None if kinds is None else set(kinds)
    pools: dict[str, set[str]] = {}
    totals: dict[str, Fraction] = {}
    seen: set[str] = set()
    for tx in transactions:
        if kind_set is not None and tx.kind not in kind_set:
            continue
        if since is not None and tx.timestamp < since:
            continue
        if until is not None and tx.timestamp >= until:
            continue
        if dedupe:
            if tx.id in seen:
                continue
            seen.add(tx.id)
        if tx.kind == "investment":
            pools.setdefault(tx.investor_id, set()).add(tx.pool_id)
            totals[tx.investor_id] = totals.get(tx.investor_id, Fraction(0)) + Fraction(tx.amount)
        elif tx.kind == "refund":
            totals[tx.investor_id] = totals.get(tx.investor_id, Fraction(0)) - Fraction(tx.amount)
    rows = [(inv, len(p), totals[inv]) for inv, p in pools.items()]
    rows.sort(key=lambda r: r[0])
    rows.sort(key=lambda r: r[2], reverse=True)
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:n]


def as_rows(ranks: Sequence[InvestorRank]) -> list[Row]:
    return [(r.investor_id, r.unique_pools, Fraction(r.total_amount)) for r in ranks]


@st.composite
def transactions(draw: st.DrawFn, *, max_size: int = 60, id_space: int | None = None,
                 exotic: bool = True) -> list[Transaction]:
    """Random transactions over few investors, pools, amounts and times.

    ``id_space`` draws ids from a small range so that ids repeat (with different contents).
    """
    size = draw(st.integers(0, max_size))
    amount = st.sampled_from(AMOUNTS)
    if exotic:
        amount = st.one_of(
            amount,
            st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e12"), places=4,
                        allow_nan=False, allow_infinity=False),
        )
    out = []
    for i in range(size):
        tx_id = str(draw(st.integers(0, id_space - 1))) if id_space else f"t{i}"
        out.append(Transaction(
            tx_id,
            draw(st.sampled_from(INVESTORS)),
            draw(st.sampled_from(POOLS)),
            draw(amount),
            BASE + timedelta(hours=draw(st.integers(0, 10))),
            draw(KINDS_DRAWN),
        ))
    return out
