"""The pools ledger: pools, members, investments and distributions, with live positions.

:class:`PoolLedger` is the one public class; what it does is in small parts: the writes in
:mod:`.commands` (through the unit of work of :mod:`.unit`), the reads in :mod:`.reads`, the
change feed in :mod:`.feed`, the audit in :mod:`.verify`, the subscribers in :mod:`.outbox`.

>>> from decimal import Decimal
>>> from auptimate_core import Investor, Pool
>>> ledger = PoolLedger()
>>> _ = ledger.create_pool(Pool("fund-a", manager_id="m1"), actor="m1")
>>> for name in ("ann", "bob"):
...     _ = ledger.register_investor(Investor(name))
...     ledger.admit("fund-a", name, actor="m1")
>>> _ = ledger.invest("fund-a", "ann", Decimal("300"), actor="ann", idempotency_key="a1")
>>> _ = ledger.invest("fund-a", "bob", Decimal("100"), actor="bob", idempotency_key="b1")
>>> [(t.investor_id, t.amount) for t in
...  ledger.distribute("fund-a", Decimal("10.01"), actor="m1", idempotency_key="d1")]
[('ann', Decimal('7.51')), ('bob', Decimal('2.50'))]
>>> ledger.positions("fund-a")[1]
Position(pool_id='fund-a', investor_id='bob', invested=Decimal('100.00'), \
distributed=Decimal('2.50'), share=Decimal('0.25'), refunded=Decimal('0.00'), fees=Decimal('0.00'))
>>> ledger.verify()
7
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from ..clock import Clock, SystemClock
from ..domain import Investor, Pool, Transaction
from ..ranking import InvestorRank
from ..urls import LEDGER_REPOSITORIES
from .audit import AuditChain, MarkedStorage
from .batch import Batch, Investment
from .changes import Change
from .commands import Commands
from .events import Subscriber, Unsubscribe
from .feed import Feed
from .memory import MemoryLedgerRepository
from .outbox import Subscribers
from .parts import Parts
from .policy import Policy
from .position import PoolTotals, Position
from .reads import Reads
from .repository import LedgerRepository
from .verify import verify


class PoolLedger:
    """Pools, their members and their money, with exact positions, audit and live updates.

    ``repository`` stores everything (:class:`~.memory.MemoryLedgerRepository` by default; see
    :meth:`from_url` for databases). ``clock`` gives the time of each change when ``at`` is
    not given; ``policy`` decides who may do what; ``audit_key`` (secret bytes) turns the audit
    hashes into HMACs.

    Every write takes the acting user (``actor``) and refuses, with
    :class:`~auptimate_core.errors.PermissionDenied` and without writing anything, what the
    policy does not allow. Money writes take an ``idempotency_key``: repeating the same request
    with it returns the first result and writes nothing; another request with it raises
    :class:`~auptimate_core.errors.IdempotencyConflict`. Keys are the actor's own: another
    actor's same key is an unrelated request (see docs/integrity.md).
    Creating an existing pool, registering an existing investor or admitting a member again
    with the same details changes nothing; with different details it is a conflict.

    Every committed change is also in the ledger's change feed (:meth:`changes`,
    :meth:`follow`), written in the same transaction: the way for any process to see every
    change, and to resume after a crash without losing one.

    Safe to share between threads. Subscribers are called after each commit, in commit order,
    from the thread of one of the writers; a subscriber that raises is logged, counted
    (``auptimate_ledger_subscriber_failures_total``) and skipped: it does not see that event
    again. A subscriber is a convenience of this process; the feed is what never loses one.

    Costs, for a pool of ``m`` members: an admission, investment or refund is ``O(1)`` (it
    reads and writes one member); a fee or distribution is ``O(m)`` to read the members plus
    ``O(k log k)`` for a split among ``k`` of them; each event carries the positions its
    change touched and the pool's totals; ``positions`` is ``O(m)``;
    ``portfolio`` is ``O(pools of the investor)``; ``history`` and ``verify`` are
    ``O(entries)`` (``history()`` of every pool adds a sort by time).
    """


    def __init__(self, repository: LedgerRepository | None = None, *,
                 clock: Clock | None = None, policy: Policy | None = None,
                 audit_key: bytes | None = None) -> None:
        self._parts = Parts(MemoryLedgerRepository() if repository is None else repository,
                            SystemClock() if clock is None else clock,
                            Policy() if policy is None else policy,
                            AuditChain(audit_key), Subscribers())
        if isinstance(self._parts.repository, MarkedStorage):
            self._parts.repository.mark_with(self._parts.chain)
        self._commands = Commands(self._parts)
        self._reads = Reads(self._parts)
        self._feed = Feed(self._parts)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None, policy: Policy | None = None,
                 audit_key: bytes | None = None, **options: Any) -> PoolLedger:
        """A ledger on the storage ``url`` names (see :mod:`auptimate_core.urls`).

        ``memory://`` keeps everything in this process; ``sqlite:///path.db`` (``sqlite://``
        for an in-memory database) and ``postgresql+psycopg://user@host/db`` use SQLAlchemy
        (extras ``sql`` / ``postgres``); ``options`` go to the repository's ``from_url``
        (for :class:`~auptimate_core.backends.sql.ledger.SqlLedgerRepository`: ``schema``,
        ``create``, ``engine_options``...). A URL no backend serves is an
        :class:`~auptimate_core.errors.InvalidURL`.
        """
        repository: LedgerRepository = LEDGER_REPOSITORIES.open(url, **options)
        return cls(repository, clock=clock, policy=policy, audit_key=audit_key)

    @property
    def repository(self) -> LedgerRepository:
        """Where the ledger keeps everything."""
        return self._parts.repository

    @property
    def clock(self) -> Clock:
        """The time of each change made without an ``at``."""
        return self._parts.clock

    @property
    def policy(self) -> Policy:
        """Who may do what."""
        return self._parts.policy

    def close(self) -> None:
        """Release the repository's connections."""
        self._parts.repository.close()

    # -- writes -------------------------------------------------------------------------------

    def register_investor(self, investor: Investor, *, actor: str | None = None) -> Investor:
        """Register ``investor`` (by themselves, or by the host application with no actor).

        Registering the same investor again changes nothing; another one with the same id is
        an :class:`~auptimate_core.errors.IdempotencyConflict`.
        """
        return self._commands.register_investor(investor, actor)

    def create_pool(self, pool: Pool, *, actor: str) -> Pool:
        """Create ``pool``; ``actor`` must be its manager.

        Creating the same pool again changes nothing; another pool with the same id is an
        :class:`~auptimate_core.errors.IdempotencyConflict`.
        """
        return self._commands.create_pool(pool, actor)

    def admit(self, pool_id: str, investor_id: str, *, actor: str) -> None:
        """Make a registered investor a member of the pool; only its manager may.

        Admitting a member again changes nothing.
        """
        self._commands.admit(pool_id, investor_id, actor)

    def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Transaction:
        """Record an investment by a member of the pool; ``actor`` must be that investor.

        ``amount`` must be whole minor units of the pool's currency. ``at`` (the event time)
        defaults to the ledger's clock.
        """
        return self._commands.invest(pool_id, investor_id, amount, actor, idempotency_key, at)

    def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Transaction:
        """Give back part of a member's money still in the pool; only the manager may.

        A refund lowers the member's net invested capital and cannot exceed their balance
        (invested minus refunded minus fees).
        """
        return self._commands.refund(pool_id, investor_id, amount, actor, idempotency_key, at)

    def charge_fee(self, pool_id: str, total: Decimal | int, *, actor: str,
                   idempotency_key: str, at: datetime | None = None) -> list[Transaction]:
        """Charge the members a fee of ``total``, pro rata to net invested capital, exactly.

        Only the manager may. All or nothing: a fee that would take any member's balance
        below zero is refused whole. Returns one ``fee`` transaction per member charged.
        """
        return self._commands.charge_fee(pool_id, total, actor, idempotency_key, at)

    def distribute(self, pool_id: str, total: Decimal | int, *, actor: str,
                   idempotency_key: str, at: datetime | None = None,
                   carry: Decimal | None = None) -> list[Transaction]:
        """Pay ``total`` out to the members; only the manager may. All or nothing.

        Without ``carry`` the total is split pro rata to net invested capital. With a carry
        rate (``Decimal("0.20")``) each member first gets back the contributed capital not
        yet returned to them (fees included), and the carry share of the rest (the profit)
        goes to the manager as a ``carry`` transaction, the remainder to the members pro rata.
        Shares are whole minor units (largest remainder, ties to the smaller investor id) and
        add up to ``total`` exactly. Returns the ``distribution`` transactions by investor id,
        then the ``carry`` transaction if any.
        """
        return self._commands.distribute(pool_id, total, actor, idempotency_key, at, carry)

    def batch(self) -> Batch:
        """A batch: admissions, investments and refunds queued, then recorded together in one
        unit of work, all or nothing, each as its call here would record it (the same checks,
        policy, idempotency, audit entries and one change per command that wrote).

        ``batch.invest(...)``, ``batch.refund(...)`` and ``batch.admit(...)`` take the
        arguments of the methods of those names; ``batch.commit()`` returns one result per
        command (the transaction, or None for an admission). ``with ledger.batch() as b:``
        commits when the block ends (results in ``b.results``). See :mod:`.batch`.
        """
        return Batch(self._parts)

    def invest_many(self, investments: Iterable[Investment | tuple[Any, ...]]
                    ) -> list[Transaction]:
        """Record many investments in one unit of work, all or nothing; return their
        transactions in order. Each item is an :class:`~.batch.Investment` (or a tuple of its
        fields in order): the arguments of :meth:`invest`. A retried call replays every
        investment by its key; a key used for another request refuses the whole call.
        """
        batch = self.batch()
        for item in investments:
            pool_id, investor_id, amount, actor, key, at = Investment(*item)
            batch.invest(pool_id, investor_id, amount, actor=actor, idempotency_key=key, at=at)
        return [cast(Transaction, tx) for tx in batch.commit()]

    # -- reads --------------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        """The pool with this id (:class:`~auptimate_core.errors.UnknownPool` if none)."""
        return self._reads.pool(pool_id)

    def positions(self, pool_id: str, *, actor: str | None = None) -> list[Position]:
        """Every member's position in the pool, by investor id.

        With an ``actor``, only the pool's manager and members may read it.
        """
        return self._reads.positions(pool_id, actor)

    def portfolio(self, investor_id: str, *, actor: str | None = None) -> list[Position]:
        """The investor's position in every pool they are a member of, by pool id.

        With an ``actor``, only the investor may read it.
        """
        return self._reads.portfolio(investor_id, actor)

    def pool_totals(self, pool_id: str, *, actor: str | None = None) -> PoolTotals:
        """The pool's totals (the sums of its members' positions, and the carry paid)."""
        return self._reads.pool_totals(pool_id, actor)

    def history(self, pool_id: str | None = None, *,
                actor: str | None = None) -> list[Transaction]:
        """The transactions of one pool in the order recorded, or of every pool by event time
        (then pool id, then order recorded). Reading every pool is for the host application
        (``actor=None``); a pool's history is for its manager and members."""
        return self._reads.history(pool_id, actor)

    def top_investors(self, n: int = 5, *, actor: str | None = None) -> list[InvestorRank]:
        """The ledger's ``n`` investors in the most pools, then with the largest total invested
        (``investment`` transactions), then by id, as :func:`~auptimate_core.top_investors`."""
        return self._reads.top_investors(n, actor)

    def verify(self) -> int:
        """Check every pool's audit chain and stored positions; return the entries checked.

        Raises :class:`~auptimate_core.errors.AuditError` naming the pool and entry at fault
        (see :mod:`auptimate_core.pools.audit`). ``O(entries + members)``, one consistent read.
        """
        return verify(self._parts.repository, self._parts.chain)

    # -- the change feed and subscribers ------------------------------------------------------

    def changes(self, after: str | None = None, limit: int = 1000, *,
                actor: str | None = None) -> list[Change]:
        """Up to ``limit`` (1 to 10,000) committed changes after the cursor ``after``, in
        commit order; ``after=None`` starts at the first change the feed holds.

        The feed is written in the same database transaction as each change, so it holds
        exactly the committed changes, made by any process on this ledger's storage; reading on
        from the last change's ``cursor`` never misses a change and never repeats one (see
        :mod:`auptimate_core.pools.changes`). A cursor of another ledger, or that is not a
        cursor, is a :class:`~auptimate_core.errors.ValidationError`. Reading the feed is for
        the host application (``actor=None``): it holds every pool's changes.
        """
        return self._feed.changes(after, limit, actor)

    def cursor(self, *, actor: str | None = None) -> str:
        """The cursor of the last committed change (of the feed's start when it is empty):
        ``follow(after=ledger.cursor())`` yields only what commits from now on."""
        return self._feed.cursor(actor)

    def follow(self, after: str | None = None, timeout: float | None = None, *,
               actor: str | None = None, batch: int = 1000) -> Iterator[Change]:
        """Yield every committed change after the cursor ``after``, as they commit anywhere.

        Reads :meth:`changes` (``batch`` at a time) and, once it has caught up, waits for the
        next commit: woken by PostgreSQL ``LISTEN/NOTIFY``, by short polling on SQLite, by a
        condition in memory. The feed stays the source of truth (a wake-up carries nothing),
        so a follower misses nothing and sees nothing twice. With a ``timeout`` (seconds) the
        iterator ends once nothing new has come for that long; ``None`` follows for ever.
        The cursor and arguments are checked here, before the first change.

        Each iterator holds a wake-up of its own (on PostgreSQL a connection) until it ends or
        is closed; close it (``iterator.close()``, or leave a ``for`` loop over it) when done.
        """
        return self._feed.follow(after, timeout, actor, batch)

    def subscribe(self, callback: Subscriber) -> Unsubscribe:
        """Call ``callback(event)`` after every committed change; return the unsubscribe handle.

        Events come once each, in commit order (see :mod:`auptimate_core.pools.events`).
        """
        return self._parts.subscribers.add(callback)
