"""What the ledger's reads answer: pools, positions, portfolios, totals, history, the ranking.

Each read is one consistent view of committed data (one repository read) and checks who may
see it with the policy. The documentation of each is on :class:`~auptimate_core.PoolLedger`.
"""

from __future__ import annotations

from decimal import Decimal

from ..domain import Pool, Transaction
from ..ranking import InvestorRank, check_n
from .parts import Parts, find_investor, find_pool, positions_of
from .position import PoolTotals, Position
from .repository import LedgerSession


def tidy(total: Decimal) -> Decimal:
    """A ranking total at two decimals, or at as many more as it needs (up to four).

    >>> tidy(Decimal("12.5")), tidy(Decimal("0.125")), tidy(Decimal("0.00001"))
    (Decimal('12.50'), Decimal('0.125'), Decimal('0.00001'))
    """
    for digits in (2, 3, 4):
        exact = total.quantize(Decimal(1).scaleb(-digits))
        if exact == total:
            return exact
    return total


class Reads:
    """The reads of one ledger (thread-safe: each is one repository read)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    def pool(self, pool_id: str) -> Pool:
        return self._parts.repository.read(lambda s: find_pool(s, pool_id).pool)

    def positions(self, pool_id: str, actor: str | None) -> list[Position]:
        policy = self._parts.policy

        def body(session: LedgerSession) -> list[Position]:
            record = find_pool(session, pool_id)
            members = session.holdings(pool_id)
            policy.check_read_pool(record.pool, members, actor, "read_positions")
            return list(positions_of(record, members))

        return self._parts.repository.read(body)

    def portfolio(self, investor_id: str, actor: str | None) -> list[Position]:
        self._parts.policy.check_read_investor(investor_id, actor, "read_portfolio")

        def body(session: LedgerSession) -> list[Position]:
            find_investor(session, investor_id)
            return [Position.of(record.pool.id, investor_id, held, record.totals.capital)
                    for record, held in session.memberships(investor_id)]

        return self._parts.repository.read(body)

    def pool_totals(self, pool_id: str, actor: str | None) -> PoolTotals:
        policy = self._parts.policy

        def body(session: LedgerSession) -> PoolTotals:
            record = find_pool(session, pool_id)
            if actor is not None:
                policy.check_read_pool(record.pool, session.holdings(pool_id), actor,
                                       "read_totals")
            return PoolTotals.of(pool_id, record.pool.currency, record.totals)

        return self._parts.repository.read(body)

    def history(self, pool_id: str | None, actor: str | None) -> list[Transaction]:
        policy = self._parts.policy
        if pool_id is None:
            policy.check_read_all(actor, "read_history")

            def every(session: LedgerSession) -> list[Transaction]:
                found = [e for e in session.entries() if e.is_transaction]
                found.sort(key=lambda e: (e.at, e.pool_id, e.seq))
                return [e.transaction() for e in found]

            return self._parts.repository.read(every)

        def one(session: LedgerSession) -> list[Transaction]:
            record = find_pool(session, pool_id)
            if actor is not None:
                policy.check_read_pool(record.pool, session.holdings(pool_id), actor,
                                       "read_history")
            return [e.transaction() for e in session.entries(pool_id) if e.is_transaction]

        return self._parts.repository.read(one)

    def top_investors(self, n: int, actor: str | None) -> list[InvestorRank]:
        check_n(n)
        self._parts.policy.check_read_all(actor, "top_investors")
        ranks = self._parts.repository.read(lambda session: session.top_investors(n))
        return [InvestorRank(r.investor_id, r.unique_pools, tidy(r.total_amount))
                for r in ranks]
