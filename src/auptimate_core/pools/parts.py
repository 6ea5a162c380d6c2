"""What the parts of a :class:`~auptimate_core.PoolLedger` share, and the lookups they all use.

The ledger is a facade over small collaborators: :mod:`.commands` (the writes), :mod:`.reads`,
:mod:`.feed` (the change feed) and :mod:`.verify` (the audit). Each holds the same
:class:`Parts`: the repository, the clock, the policy, the audit chain and the subscribers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import cast

import attrs

from ..clock import Clock
from ..domain import Investor
from ..errors import UnknownInvestor, UnknownPool
from .audit import AuditChain
from .outbox import Subscribers
from .policy import Policy
from .position import Amounts, PoolTotals, Position
from .repository import (
    LedgerRepository,
    LedgerSession,
    MemberRead,
    MemberSession,
    PoolRecord,
)


@attrs.define(slots=True, eq=False)
class Parts:
    """The state one ledger's collaborators share (the ledger's attributes read and set it)."""

    repository: LedgerRepository
    clock: Clock
    policy: Policy
    chain: AuditChain
    subscribers: Subscribers


def find_pool(session: LedgerSession, pool_id: str, *, lock: bool = False) -> PoolRecord:
    """The pool's record (:class:`~auptimate_core.errors.UnknownPool` if none); ``lock=True``
    holds the pool against other writers until the unit of work ends."""
    record = session.pool(pool_id, lock=lock)
    if record is None:
        raise UnknownPool(f"unknown pool {pool_id!r}")
    return record


def read_member(session: LedgerSession, pool_id: str, investor_id: str,
                key: str | None) -> MemberRead:
    """What a write about one member reads (see :class:`~.repository.MemberRead`): in one call
    on a :class:`~.repository.MemberSession`, else one read at a time. Raises
    :class:`~auptimate_core.errors.UnknownPool` if the pool does not exist."""
    if _reads_members(type(session)):
        found = cast(MemberSession, session).member(pool_id, investor_id, key)
        if found is None:
            raise UnknownPool(f"unknown pool {pool_id!r}")
        return found
    record = find_pool(session, pool_id, lock=True)
    return MemberRead(record, session.investor(investor_id) is not None,
                      session.holding(pool_id, investor_id),
                      None if key is None else session.receipt(key))


@functools.cache
def _reads_members(kind: type) -> bool:
    # isinstance() against a runtime protocol inspects its members on every call; once a type.
    return issubclass(kind, MemberSession)


def find_investor(session: LedgerSession, investor_id: str) -> Investor:
    """The registered investor (:class:`~auptimate_core.errors.UnknownInvestor` if none)."""
    investor = session.investor(investor_id)
    if investor is None:
        raise _unknown(investor_id)
    return investor


def known(registered: bool, investor_id: str) -> None:
    """Raise :class:`~auptimate_core.errors.UnknownInvestor` unless the investor is
    ``registered``."""
    if not registered:
        raise _unknown(investor_id)


def _unknown(investor_id: str) -> UnknownInvestor:
    return UnknownInvestor(f"unknown investor {investor_id!r}")


def positions_of(record: PoolRecord, members: Mapping[str, Amounts]) -> tuple[Position, ...]:
    """The positions of ``members`` in the pool of ``record``, by investor id."""
    capital = record.totals.capital
    return tuple(Position.of(record.pool.id, investor_id, held, capital)
                 for investor_id, held in sorted(members.items()))


def totals_of(record: PoolRecord) -> PoolTotals:
    """The pool's totals as the events and reads show them."""
    return PoolTotals.of(record.pool.id, record.pool.currency, record.totals)
