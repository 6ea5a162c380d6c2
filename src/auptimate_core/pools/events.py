"""What subscribers of a :class:`~auptimate_core.PoolLedger` receive: one event per change.

Every event is delivered after its change is committed, once, in commit order; a refused,
failed or replayed request delivers nothing. Each event of a pool carries ``seq``, the number of
the pool's last audit entry after the change, and ``positions``, every member's position after
it. ``transactions`` holds the transactions the change recorded (empty for a new pool or an
admission), so an alert engine can subscribe directly::

    ledger.subscribe(lambda event: engine.process_many(event.transactions))

Match on the type to tell changes apart::

    match event:
        case Distributed(total=total, carry=carry): ...
        case Invested(transaction=tx): ...
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs

from ..domain import Investor, Pool, Transaction
from .position import Position


@attrs.frozen(slots=True, kw_only=True)
class LedgerEvent:
    """Base of every event: who made the change and what it recorded."""

    actor: str | None
    transactions: tuple[Transaction, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class InvestorRegistered(LedgerEvent):
    """A new investor was registered."""

    investor: Investor


@attrs.frozen(slots=True, kw_only=True)
class PoolEvent(LedgerEvent):
    """A change to one pool; ``positions`` are its members' positions after the change."""

    pool_id: str
    seq: int
    positions: tuple[Position, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class PoolCreated(PoolEvent):
    """A pool was created by its manager."""

    pool: Pool


@attrs.frozen(slots=True, kw_only=True)
class InvestorAdmitted(PoolEvent):
    """The manager admitted an investor to the pool."""

    investor_id: str


@attrs.frozen(slots=True, kw_only=True)
class Invested(PoolEvent):
    """An investor recorded an investment (``transaction``, also in ``transactions``)."""

    transaction: Transaction


@attrs.frozen(slots=True, kw_only=True)
class Refunded(PoolEvent):
    """The manager refunded an investor (``transaction``, also in ``transactions``)."""

    transaction: Transaction


@attrs.frozen(slots=True, kw_only=True)
class FeeCharged(PoolEvent):
    """The manager charged a fee of ``total``, split pro rata in ``transactions``."""

    total: Decimal


@attrs.frozen(slots=True, kw_only=True)
class Distributed(PoolEvent):
    """The manager distributed ``total``; with a ``carry`` rate, ``carry_amount`` went to them.

    ``transactions`` holds one ``distribution`` per investor paid and, when there was carry,
    the manager's ``carry`` transaction last.
    """

    total: Decimal
    carry: Decimal | None = None
    carry_amount: Decimal = Decimal(0)


Subscriber = Callable[[LedgerEvent], object]
"""A callable receiving every event; its return value is ignored."""

Unsubscribe = Callable[[], None]
"""Calling it stops the deliveries to one subscriber; calling it again does nothing."""
