"""The pools ledger: pools, members, investments and distributions, with live positions.

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

import hashlib
import importlib
import itertools
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from .. import metrics
from ..clock import Clock, SystemClock
from ..domain import Investor, Pool, Transaction, check_amount, check_id, check_timestamp, to_micros
from ..errors import (
    AuditError,
    IdempotencyConflict,
    LedgerError,
    LedgerValidationError,
    PermissionDenied,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from ..money import minor_unit, require_exact
from ..ranking import InvestorRank, check_n
from .audit import ADMIT, CREATE, GENESIS, AuditChain, Entry, pool_detail
from .changes import Change, Recorded, check_limit, decode_cursor, encode_cursor
from .events import (
    Distributed,
    FeeCharged,
    Invested,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    PoolCreated,
    Refunded,
    Subscriber,
    Unsubscribe,
)
from .memory import MemoryLedgerRepository
from .policy import Policy
from .position import Amounts, PoolTotals, Position
from .repository import LedgerRepository, LedgerSession, PoolRecord, Receipt
from .waterfall import Split, check_carry, split_distribution, split_fee

logger = logging.getLogger("auptimate_core.pools")

R = TypeVar("R")

_WAIT_SLICE = 30.0
"""Seconds a follower without a timeout waits before reading the feed again anyway."""

_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (PermissionDenied, "permission_denied"),
    (IdempotencyConflict, "idempotency_conflict"),
    (UnknownPool, "unknown_pool"),
    (UnknownInvestor, "unknown_investor"),
    (ValidationError, "invalid"),
)


@attrs.frozen(slots=True)
class _Outcome(Generic[R]):
    """What a unit of work returns: the caller's result and the event to publish (None when
    nothing was written: a replay or a repeated no-op)."""

    result: R
    event: LedgerEvent | None


def _fingerprint(action: str, *fields: object) -> str:
    text = json.dumps([action, *fields], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(amount: Decimal) -> str:
    """An amount as text independent of trailing zeros (``100`` and ``100.00`` agree)."""
    return format(amount.normalize(), "f")


def _tidy(total: Decimal) -> Decimal:
    """A ranking total at two decimals, or at as many more as it needs (up to four)."""
    for digits in (2, 3, 4):
        exact = total.quantize(Decimal(1).scaleb(-digits))
        if exact == total:
            return exact
    return total


def _zero(currency: str) -> Decimal:
    return minor_unit(currency) * 0


def _unknown_pool(pool_id: str) -> UnknownPool:
    return UnknownPool(f"unknown pool {pool_id!r}")


class PoolLedger:
    """Pools, their members and their money, with exact positions, audit and live updates.

    ``repository`` stores everything (:class:`MemoryLedgerRepository` by default; see
    :meth:`from_url` for databases). ``clock`` gives the time of each change when ``at`` is
    not given; ``policy`` decides who may do what; ``audit_key`` (secret bytes) turns the audit
    hashes into HMACs.

    Every write takes the acting user (``actor``) and refuses, with
    :class:`~auptimate_core.errors.PermissionDenied` and without writing anything, what the
    policy does not allow. Money writes take an ``idempotency_key``: repeating the same request
    with it returns the first result and writes nothing; another request with it raises
    :class:`~auptimate_core.errors.IdempotencyConflict`. Keys are unique across the ledger.
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
        self.repository: LedgerRepository = (
            MemoryLedgerRepository() if repository is None else repository)
        self.clock: Clock = SystemClock() if clock is None else clock
        self.policy = Policy() if policy is None else policy
        self._chain = AuditChain(audit_key)
        self._subscribers: tuple[Subscriber, ...] = ()
        self._subscribers_lock = threading.Lock()
        self._outbox: deque[LedgerEvent] = deque()
        self._delivering = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None, policy: Policy | None = None,
                 audit_key: bytes | None = None, **options: Any) -> PoolLedger:
        """A ledger on the storage ``url`` names.

        ``memory://`` keeps everything in this process; ``sqlite:///path.db`` (``sqlite://``
        for an in-memory database) and ``postgresql+psycopg://user@host/db`` use SQLAlchemy
        (extras ``sql`` / ``postgres``); ``options`` go to
        :class:`~auptimate_core.backends.sql.ledger.SqlLedgerRepository` (``schema``,
        ``create``, ``engine_options``).
        """
        scheme = url.split("://", 1)[0].lower() if "://" in url else url.lower()
        repository: LedgerRepository
        if scheme == "memory":
            repository = MemoryLedgerRepository()
        elif scheme.split("+", 1)[0] in ("sqlite", "postgresql", "postgres"):
            # Imported by name: the domain does not depend on any backend.
            backend = importlib.import_module("auptimate_core.backends.sql.ledger")
            repository = backend.SqlLedgerRepository.from_url(url, **options)
        else:
            raise ValidationError("url", f"{url!r} names no ledger storage; use memory://, "
                                  "sqlite:///... or postgresql+psycopg://...")
        return cls(repository, clock=clock, policy=policy, audit_key=audit_key)

    def close(self) -> None:
        """Release the repository's connections."""
        self.repository.close()

    # -- the change feed ----------------------------------------------------------------------

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
        check_limit(limit)
        self.policy.check_read_all(actor, "read_changes")
        identity = self.repository.identity

        def body(session: LedgerSession) -> list[Recorded]:
            position = self._position(session, after, identity)
            return session.changes(position, limit)

        return [self._change(recorded, identity) for recorded in self.repository.read(body)]

    def cursor(self, *, actor: str | None = None) -> str:
        """The cursor of the last committed change (of the feed's start when it is empty):
        ``follow(after=ledger.cursor())`` yields only what commits from now on."""
        self.policy.check_read_all(actor, "read_changes")
        identity = self.repository.identity
        return encode_cursor(identity, self.repository.read(lambda s: s.feed_head()))

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
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, int | float)
                                    or not 0 <= timeout < math.inf):
            raise ValidationError("timeout", "must be None (for ever) or a finite number of "
                                  f"seconds >= 0, not {timeout!r}")
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 10_000:
            raise ValidationError("batch", f"must be an int from 1 to 10,000, not {batch!r}")
        self.policy.check_read_all(actor, "read_changes")
        identity = self.repository.identity
        start = self.repository.read(lambda s: self._position(s, after, identity))
        return self._follow(start, None if timeout is None else float(timeout), batch)

    def _follow(self, position: int, timeout: float | None, batch: int) -> Iterator[Change]:
        identity = self.repository.identity
        # Listening starts before the first read: a commit after that read always wakes us.
        watch = self.repository.watch()
        try:
            idle_since = time.monotonic()
            while True:
                found = self._read_changes(position, batch)
                for recorded in found:
                    yield self._change(recorded, identity)
                if found:
                    position = found[-1].position
                    idle_since = time.monotonic()
                if len(found) == batch:
                    continue  # more may be waiting
                # Caught up: whatever commits next wakes the watch, which was listening first.
                if timeout is None:
                    watch.wait(position, _WAIT_SLICE)
                    continue
                left = timeout - (time.monotonic() - idle_since)
                if left <= 0:
                    return
                watch.wait(position, min(left, _WAIT_SLICE))
        finally:
            watch.close()

    def _read_changes(self, after: int, limit: int) -> list[Recorded]:
        return self.repository.read(lambda session: session.changes(after, limit))

    @staticmethod
    def _position(session: LedgerSession, after: str | None, identity: str) -> int:
        return 0 if after is None else decode_cursor(after, identity, session.feed_head())

    @staticmethod
    def _change(recorded: Recorded, identity: str) -> Change:
        return Change(recorded.event, recorded.at, encode_cursor(identity, recorded.position))

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Unsubscribe:
        """Call ``callback(event)`` after every committed change; return the unsubscribe handle.

        Events come once each, in commit order (see :mod:`auptimate_core.pools.events`).
        """
        if not callable(callback):
            raise TypeError(f"callback: must be callable, not {type(callback).__name__}")
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, callback)
        done = threading.Event()

        def unsubscribe() -> None:
            if done.is_set():
                return
            done.set()
            with self._subscribers_lock:
                found = list(self._subscribers)
                for index, item in enumerate(found):
                    if item is callback:
                        del found[index]
                        break
                self._subscribers = tuple(found)

        return unsubscribe

    def _on_commit(self, outcome: _Outcome[Any]) -> None:
        if outcome.event is not None:
            self._outbox.append(outcome.event)

    def _deliver(self) -> None:
        """Hand queued events to the subscribers, in order, from one thread at a time.

        A writer that finds another thread delivering leaves its event to that thread, which
        looks at the queue again after letting go of the delivery lock.
        """
        while self._outbox:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while self._outbox:
                    event = self._outbox.popleft()
                    for callback in self._subscribers:
                        try:
                            callback(event)
                        except Exception:
                            metrics.ledger_subscriber_failure(type(event).__name__)
                            logger.exception("a ledger subscriber raised on %s; it will not "
                                             "see this event again (the change feed keeps it)",
                                             type(event).__name__)
            finally:
                self._delivering.release()

    # -- the unit-of-work plumbing ------------------------------------------------------------

    def _write(self, action: str, body: Callable[[LedgerSession], _Outcome[R]]) -> R:
        def unit(session: LedgerSession) -> _Outcome[R]:
            outcome = body(session)
            if outcome.event is not None:
                session.publish(outcome.event, self.clock)
            return outcome

        try:
            outcome = self.repository.write(unit, on_commit=self._on_commit)
        except (LedgerError, ValidationError) as error:
            for kind, reason in _REFUSALS:
                if isinstance(error, kind):
                    metrics.ledger_refusal(reason)
                    break
            raise
        if outcome.event is None:
            metrics.ledger_replay(action)
        else:
            metrics.ledger_write(action)
        self._deliver()
        return outcome.result

    def _at(self, at: datetime | None) -> datetime:
        moment = self.clock.now() if at is None else check_timestamp(at, "at")
        return moment.astimezone(UTC)

    @staticmethod
    def _record(session: LedgerSession, pool_id: str, *, lock: bool = False) -> PoolRecord:
        record = session.pool(pool_id, lock=lock)
        if record is None:
            raise _unknown_pool(pool_id)
        return record

    @staticmethod
    def _investor(session: LedgerSession, investor_id: str) -> Investor:
        investor = session.investor(investor_id)
        if investor is None:
            raise UnknownInvestor(f"unknown investor {investor_id!r}")
        return investor

    def _replay(self, session: LedgerSession, key: str, fingerprint: str,
                action: str) -> list[Transaction] | None:
        """The first result of ``key`` when it was used for this request; None when unused."""
        receipt = session.receipt(key)
        if receipt is None:
            return None
        if receipt.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for another request "
                f"({receipt.action} on pool {receipt.pool_id!r}); this {action} wrote nothing")
        last = receipt.first_seq + receipt.count - 1
        return [entry.transaction()
                for entry in session.entries(receipt.pool_id, receipt.first_seq, last)]

    def _append(self, session: LedgerSession, record: PoolRecord,
                members: Mapping[str, Amounts],
                items: Sequence[tuple[str, str, Decimal]], at: datetime, actor: str,
                receipt_for: tuple[str, str, str] | None = None,
                ) -> tuple[PoolRecord, list[Entry], dict[str, Amounts]]:
        """Seal ``items`` (kind, investor, amount) as the pool's next entries and store them.

        ``members`` are the pool's members as read in this unit of work. Returns the new
        record, the entries and the members the change touched, with their new totals.
        """
        pool = record.pool
        changed: dict[str, Amounts] = {}
        entries: list[Entry] = []
        totals, prev, seq = record.totals, record.head_hash, record.head_seq
        for kind, investor_id, amount in items:
            seq += 1
            entry = self._chain.seal(pool.id, seq, kind, investor_id, amount, at, actor, "",
                                     prev)
            entries.append(entry)
            prev = entry.hash
            if kind == ADMIT:
                changed[investor_id] = Amounts.zero(pool.currency)
                continue
            if kind != "carry":
                held = changed.get(investor_id, members.get(investor_id))
                assert held is not None, "a transaction for a member"
                changed[investor_id] = held.add(kind, amount)
            totals = totals.add(kind, amount)
        new = PoolRecord(pool, seq, prev, totals)
        receipt = None
        if receipt_for is not None:
            key, fingerprint, action = receipt_for
            receipt = Receipt(key, fingerprint, action, pool.id, record.head_seq + 1,
                              len(entries))
        session.append(new, entries, changed, receipt)
        return new, entries, changed

    @staticmethod
    def _positions(record: PoolRecord, members: Mapping[str, Amounts]) -> tuple[Position, ...]:
        capital = record.totals.capital
        return tuple(Position.of(record.pool.id, investor_id, held, capital)
                     for investor_id, held in sorted(members.items()))

    @staticmethod
    def _totals(record: PoolRecord) -> PoolTotals:
        return PoolTotals.of(record.pool.id, record.pool.currency, record.totals)

    # -- writes -------------------------------------------------------------------------------

    def register_investor(self, investor: Investor, *, actor: str | None = None) -> Investor:
        """Register ``investor`` (by themselves, or by the host application with no actor).

        Registering the same investor again changes nothing; another one with the same id is
        an :class:`~auptimate_core.errors.IdempotencyConflict`.
        """
        if not isinstance(investor, Investor):
            raise TypeError(f"investor: expected an Investor, not {type(investor).__name__}")
        if actor is not None:
            check_id("actor", actor)

        def body(session: LedgerSession) -> _Outcome[Investor]:
            self.policy.check_register(investor, actor)
            found = session.investor(investor.id)
            if found is not None:
                if found != investor:
                    raise IdempotencyConflict(
                        f"investor {investor.id!r} is already registered with other details")
                return _Outcome(found, None)
            session.add_investor(investor)
            return _Outcome(investor, InvestorRegistered(actor=actor, investor=investor))

        return self._write("register_investor", body)

    def create_pool(self, pool: Pool, *, actor: str) -> Pool:
        """Create ``pool``; ``actor`` must be its manager.

        Creating the same pool again changes nothing; another pool with the same id is an
        :class:`~auptimate_core.errors.IdempotencyConflict`.
        """
        if not isinstance(pool, Pool):
            raise TypeError(f"pool: expected a Pool, not {type(pool).__name__}")
        check_id("actor", actor)
        at = self._at(None)

        def body(session: LedgerSession) -> _Outcome[Pool]:
            self.policy.check_create(pool, actor)
            found = session.pool(pool.id, lock=True)
            if found is not None:
                if found.pool != pool:
                    raise IdempotencyConflict(
                        f"pool {pool.id!r} already exists with another manager, name or "
                        "currency")
                return _Outcome(found.pool, None)
            entry = self._chain.seal(pool.id, 1, CREATE, pool.manager_id,
                                     _zero(pool.currency), at, actor,
                                     pool_detail(pool), GENESIS)
            record = PoolRecord(pool, 1, entry.hash, Amounts.zero(pool.currency))
            session.add_pool(record, entry)
            return _Outcome(pool, PoolCreated(actor=actor, pool_id=pool.id, seq=1,
                                              totals=self._totals(record), pool=pool))

        return self._write("create_pool", body)

    def admit(self, pool_id: str, investor_id: str, *, actor: str) -> None:
        """Make a registered investor a member of the pool; only its manager may.

        Admitting a member again changes nothing.
        """
        check_id("pool_id", pool_id)
        check_id("investor_id", investor_id)
        check_id("actor", actor)
        at = self._at(None)

        def body(session: LedgerSession) -> _Outcome[None]:
            record = self._record(session, pool_id, lock=True)
            self.policy.check_manager(record.pool, actor, "admit")
            self._investor(session, investor_id)
            if session.holding(pool_id, investor_id) is not None:
                return _Outcome(None, None)
            new, _, changed = self._append(
                session, record, {}, [(ADMIT, investor_id, _zero(record.pool.currency))],
                at, actor)
            return _Outcome(None, InvestorAdmitted(
                actor=actor, pool_id=pool_id, seq=new.head_seq, totals=self._totals(new),
                positions=self._positions(new, changed), investor_id=investor_id))

        self._write("admit", body)

    def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Transaction:
        """Record an investment by a member of the pool; ``actor`` must be that investor.

        ``amount`` must be whole minor units of the pool's currency. ``at`` (the event time)
        defaults to the ledger's clock.
        """
        check_id("pool_id", pool_id)
        check_id("investor_id", investor_id)
        value = self._money_args(amount, "amount", actor, idempotency_key)
        when = self._at(at)
        fingerprint = _fingerprint("invest", pool_id, investor_id, _plain(value), actor,
                                   None if at is None else to_micros(when))

        def body(session: LedgerSession) -> _Outcome[Transaction]:
            record = self._record(session, pool_id, lock=True)
            self.policy.check_invest(record.pool, investor_id, actor)
            replay = self._replay(session, idempotency_key, fingerprint, "invest")
            if replay is not None:
                return _Outcome(replay[0], None)
            self._investor(session, investor_id)
            held = session.holding(pool_id, investor_id)
            if held is None:
                raise PermissionDenied(actor, "invest",
                                       f"{investor_id!r} is not a member of pool {pool_id!r}")
            exact = require_exact(value, record.pool.currency)
            new, entries, changed = self._append(
                session, record, {investor_id: held}, [("investment", investor_id, exact)],
                when, actor,
                (idempotency_key, fingerprint, "invest"))
            tx = entries[0].transaction()
            return _Outcome(tx, Invested(
                actor=actor, transactions=(tx,), pool_id=pool_id, seq=new.head_seq,
                totals=self._totals(new), positions=self._positions(new, changed),
                transaction=tx))

        return self._write("invest", body)

    def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Transaction:
        """Give back part of a member's money still in the pool; only the manager may.

        A refund lowers the member's net invested capital and cannot exceed their balance
        (invested minus refunded minus fees).
        """
        check_id("pool_id", pool_id)
        check_id("investor_id", investor_id)
        value = self._money_args(amount, "amount", actor, idempotency_key)
        when = self._at(at)
        fingerprint = _fingerprint("refund", pool_id, investor_id, _plain(value), actor,
                                   None if at is None else to_micros(when))

        def body(session: LedgerSession) -> _Outcome[Transaction]:
            record = self._record(session, pool_id, lock=True)
            self.policy.check_manager(record.pool, actor, "refund")
            replay = self._replay(session, idempotency_key, fingerprint, "refund")
            if replay is not None:
                return _Outcome(replay[0], None)
            self._investor(session, investor_id)
            held = session.holding(pool_id, investor_id)
            if held is None:
                raise LedgerValidationError(
                    "investor_id", f"{investor_id!r} is not a member of pool {pool_id!r}")
            exact = require_exact(value, record.pool.currency)
            if exact > held.balance:
                raise LedgerValidationError(
                    "amount", f"a refund of {exact} exceeds the {held.balance} "
                    f"{investor_id!r} has left in pool {pool_id!r}")
            new, entries, changed = self._append(
                session, record, {investor_id: held}, [("refund", investor_id, exact)], when, actor,
                (idempotency_key, fingerprint, "refund"))
            tx = entries[0].transaction()
            return _Outcome(tx, Refunded(
                actor=actor, transactions=(tx,), pool_id=pool_id, seq=new.head_seq,
                totals=self._totals(new), positions=self._positions(new, changed),
                transaction=tx))

        return self._write("refund", body)

    def charge_fee(self, pool_id: str, total: Decimal | int, *, actor: str,
                   idempotency_key: str, at: datetime | None = None) -> list[Transaction]:
        """Charge the members a fee of ``total``, pro rata to net invested capital, exactly.

        Only the manager may. All or nothing: a fee that would take any member's balance
        below zero is refused whole. Returns one ``fee`` transaction per member charged.
        """
        check_id("pool_id", pool_id)
        value = self._money_args(total, "total", actor, idempotency_key)
        when = self._at(at)
        fingerprint = _fingerprint("charge_fee", pool_id, _plain(value), actor,
                                   None if at is None else to_micros(when))

        def body(session: LedgerSession) -> _Outcome[list[Transaction]]:
            record = self._record(session, pool_id, lock=True)
            self.policy.check_manager(record.pool, actor, "charge_fee")
            replay = self._replay(session, idempotency_key, fingerprint, "charge_fee")
            if replay is not None:
                return _Outcome(replay, None)
            exact = require_exact(value, record.pool.currency, "total")
            members = session.holdings(pool_id)
            split = split_fee(exact, members, record.pool.currency)
            items = [("fee", i, amount) for i, amount in split.shares.items()]
            new, entries, changed = self._append(
                session, record, members, items, when, actor,
                (idempotency_key, fingerprint, "charge_fee"))
            txs = [entry.transaction() for entry in entries]
            return _Outcome(txs, FeeCharged(
                actor=actor, transactions=tuple(txs), pool_id=pool_id, seq=new.head_seq,
                totals=self._totals(new), positions=self._positions(new, changed),
                total=exact))

        return self._write("charge_fee", body)

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
        check_id("pool_id", pool_id)
        value = self._money_args(total, "total", actor, idempotency_key)
        rate = check_carry(carry)
        when = self._at(at)
        fingerprint = _fingerprint("distribute", pool_id, _plain(value), actor,
                                   None if at is None else to_micros(when),
                                   None if rate is None else _plain(rate))

        def body(session: LedgerSession) -> _Outcome[list[Transaction]]:
            record = self._record(session, pool_id, lock=True)
            pool = record.pool
            self.policy.check_manager(pool, actor, "distribute")
            replay = self._replay(session, idempotency_key, fingerprint, "distribute")
            if replay is not None:
                return _Outcome(replay, None)
            exact = require_exact(value, pool.currency, "total")
            members = session.holdings(pool_id)
            split: Split = split_distribution(exact, members, pool.currency, rate)
            items = [("distribution", i, amount) for i, amount in split.shares.items()]
            if split.carry > 0:
                items.append(("carry", pool.manager_id, split.carry))
            new, entries, changed = self._append(
                session, record, members, items, when, actor,
                (idempotency_key, fingerprint, "distribute"))
            txs = [entry.transaction() for entry in entries]
            return _Outcome(txs, Distributed(
                actor=actor, transactions=tuple(txs), pool_id=pool_id, seq=new.head_seq,
                totals=self._totals(new), positions=self._positions(new, changed),
                total=exact, carry=rate, carry_amount=split.carry))

        return self._write("distribute", body)

    @staticmethod
    def _money_args(amount: object, field: str, actor: str, key: str) -> Decimal:
        check_id("actor", actor)
        check_id("idempotency_key", key)
        return check_amount(amount, field)

    # -- reads --------------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        """The pool with this id (:class:`~auptimate_core.errors.UnknownPool` if none)."""
        return self.repository.read(lambda s: self._record(s, pool_id).pool)

    def positions(self, pool_id: str, *, actor: str | None = None) -> list[Position]:
        """Every member's position in the pool, by investor id.

        With an ``actor``, only the pool's manager and members may read it.
        """

        def body(session: LedgerSession) -> list[Position]:
            record = self._record(session, pool_id)
            members = session.holdings(pool_id)
            self.policy.check_read_pool(record.pool, members, actor, "read_positions")
            return list(self._positions(record, members))

        return self.repository.read(body)

    def portfolio(self, investor_id: str, *, actor: str | None = None) -> list[Position]:
        """The investor's position in every pool they are a member of, by pool id.

        With an ``actor``, only the investor may read it.
        """
        self.policy.check_read_investor(investor_id, actor, "read_portfolio")

        def body(session: LedgerSession) -> list[Position]:
            self._investor(session, investor_id)
            return [Position.of(record.pool.id, investor_id, held, record.totals.capital)
                    for record, held in session.memberships(investor_id)]

        return self.repository.read(body)

    def pool_totals(self, pool_id: str, *, actor: str | None = None) -> PoolTotals:
        """The pool's totals (the sums of its members' positions, and the carry paid)."""

        def body(session: LedgerSession) -> PoolTotals:
            record = self._record(session, pool_id)
            if actor is not None:
                self.policy.check_read_pool(record.pool, session.holdings(pool_id), actor,
                                            "read_totals")
            return PoolTotals.of(pool_id, record.pool.currency, record.totals)

        return self.repository.read(body)

    def history(self, pool_id: str | None = None, *,
                actor: str | None = None) -> list[Transaction]:
        """The transactions of one pool in the order recorded, or of every pool by event time
        (then pool id, then order recorded). Reading every pool is for the host application
        (``actor=None``); a pool's history is for its manager and members."""
        if pool_id is None:
            self.policy.check_read_all(actor, "read_history")

            def every(session: LedgerSession) -> list[Transaction]:
                found = [e for e in session.entries() if e.is_transaction]
                found.sort(key=lambda e: (e.at, e.pool_id, e.seq))
                return [e.transaction() for e in found]

            return self.repository.read(every)

        def one(session: LedgerSession) -> list[Transaction]:
            record = self._record(session, pool_id)
            if actor is not None:
                self.policy.check_read_pool(record.pool, session.holdings(pool_id), actor,
                                            "read_history")
            return [e.transaction() for e in session.entries(pool_id) if e.is_transaction]

        return self.repository.read(one)

    def top_investors(self, n: int = 5, *, actor: str | None = None) -> list[InvestorRank]:
        """Problem 1 on the ledger's own data: the ``n`` investors in the most pools, then
        with the largest total invested (``investment`` transactions), then by id."""
        check_n(n)
        self.policy.check_read_all(actor, "top_investors")
        ranks = self.repository.read(lambda session: session.top_investors(n))
        return [InvestorRank(r.investor_id, r.unique_pools, _tidy(r.total_amount))
                for r in ranks]

    def verify(self) -> int:
        """Check every pool's audit chain and stored positions; return the entries checked.

        Raises :class:`~auptimate_core.errors.AuditError` naming the pool and entry at fault
        (see :mod:`auptimate_core.pools.audit`). ``O(entries + members)``, one consistent read.
        """

        def body(session: LedgerSession) -> int:
            records = {record.pool.id: record for record in session.pools()}
            # Everything but the entries first: no other query runs while they stream.
            members = {pool_id: session.holdings(pool_id) for pool_id in records}
            seen: set[str] = set()
            checked = 0
            for pool_id, entries in itertools.groupby(session.entries(),
                                                      key=lambda e: e.pool_id):
                record = records.get(pool_id)
                if record is None:
                    raise AuditError(f"entries of pool {pool_id!r} remain but the pool does not")
                seen.add(pool_id)
                checked += self._check(record, entries, members[pool_id])
            for pool_id in sorted(records.keys() - seen):
                checked += self._check(records[pool_id], iter(()), members[pool_id])
            return checked

        return self.repository.read(body)

    def _check(self, record: PoolRecord, entries: Iterable[Entry],
               members: Mapping[str, Amounts]) -> int:
        return self._chain.check(record.pool, record.head_seq, record.head_hash, record.totals,
                                 entries, members)
