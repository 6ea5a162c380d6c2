"""What the ledger's commands do: every write, each one unit of work (see :mod:`.unit`).

Membership (``create_pool``, ``register_investor``, ``admit``) is idempotent by its content:
the same request again changes nothing, different details under the same id are a conflict.
Money writes (``invest``, ``refund``, ``charge_fee``, ``distribute``) are idempotent by their
key, scoped to the actor who sent it (:func:`~.unit.scoped_key`). The documentation of each
is on :class:`~auptimate_core.PoolLedger`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..domain import Investor, Pool, Transaction, check_id, to_micros
from ..errors import IdempotencyConflict
from ..money import require_exact
from .audit import ADMIT, CREATE, GENESIS, pool_detail
from .events import (
    Distributed,
    FeeCharged,
    InvestorAdmitted,
    InvestorRegistered,
    PoolCreated,
)
from .member_money import MoneyRequest, check_sender, money_event, money_item, money_request
from .parts import Parts, find_pool, known, positions_of, read_member, totals_of
from .position import Amounts
from .repository import LedgerSession, PoolRecord
from .unit import (
    Outcome,
    append,
    fingerprint,
    moment,
    money_args,
    plain,
    replay_receipt,
    scoped_key,
    write,
    zero,
)
from .waterfall import check_carry, split_distribution, split_fee

_Split = tuple[list[tuple[str, str, Decimal]], dict[str, Any]]
"""A split of a pool-wide write: its entries, and what its event adds to the common fields."""


class Commands:
    """The writes of one ledger (thread-safe: each is one unit of work of the repository)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    def register_investor(self, investor: Investor, actor: str | None) -> Investor:
        if not isinstance(investor, Investor):
            raise TypeError(f"investor: expected an Investor, not {type(investor).__name__}")
        if actor is not None:
            check_id("actor", actor)
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[Investor]:
            parts.policy.check_register(investor, actor)
            found = session.investor(investor.id)
            if found is not None:
                if found != investor:
                    raise IdempotencyConflict(
                        f"investor {investor.id!r} is already registered with other details")
                return Outcome(found, None)
            session.add_investor(investor)
            return Outcome(investor, InvestorRegistered(actor=actor, investor=investor))

        return write(parts, "register_investor", body)

    def create_pool(self, pool: Pool, actor: str) -> Pool:
        if not isinstance(pool, Pool):
            raise TypeError(f"pool: expected a Pool, not {type(pool).__name__}")
        check_id("actor", actor)
        at = moment(self._parts, None)
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[Pool]:
            parts.policy.check_create(pool, actor)
            found = session.pool(pool.id, lock=True)
            if found is not None:
                if found.pool != pool:
                    raise IdempotencyConflict(
                        f"pool {pool.id!r} already exists with another manager, name or "
                        "currency")
                return Outcome(found.pool, None)
            entry = parts.chain.seal(pool.id, 1, CREATE, pool.manager_id, zero(pool.currency),
                                     at, actor, pool_detail(pool), GENESIS)
            record = PoolRecord(pool, 1, entry.hash, Amounts.zero(pool.currency))
            session.add_pool(record, entry)
            return Outcome(pool, PoolCreated(actor=actor, pool_id=pool.id, seq=1,
                                             totals=totals_of(record), pool=pool))

        return write(parts, "create_pool", body)

    def admit(self, pool_id: str, investor_id: str, actor: str) -> None:
        check_id("pool_id", pool_id)
        check_id("investor_id", investor_id)
        check_id("actor", actor)
        at = moment(self._parts, None)
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[None]:
            read = read_member(session, pool_id, investor_id, None)
            record = read.record
            parts.policy.check_manager(record.pool, actor, "admit")
            known(read.registered, investor_id)
            if read.holding is not None:
                return Outcome(None, None)
            new, _, changed = append(
                parts, session, record, {},
                [(ADMIT, investor_id, zero(record.pool.currency))], at, actor)
            return Outcome(None, InvestorAdmitted(
                actor=actor, pool_id=pool_id, seq=new.head_seq, totals=totals_of(new),
                positions=positions_of(new, changed), investor_id=investor_id))

        write(parts, "admit", body)

    def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, actor: str,
               key: str, at: datetime | None) -> Transaction:
        return self._member_money(
            money_request(self._parts, "invest", pool_id, investor_id, amount, actor, key, at))

    def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, actor: str,
               key: str, at: datetime | None) -> Transaction:
        return self._member_money(
            money_request(self._parts, "refund", pool_id, investor_id, amount, actor, key, at))

    def _member_money(self, r: MoneyRequest) -> Transaction:
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[Transaction]:
            read = read_member(session, r.pool_id, r.investor_id, r.key)
            record = read.record
            check_sender(parts, record.pool, r)
            first = replay_receipt(session, read.receipt, r.sent_key, r.request, r.action)
            if first is not None:
                return Outcome(first[0], None)
            held = read.holding
            item = money_item(r, record.pool, read.registered, held)
            assert held is not None, "money_item refuses a non-member"
            new, entries, changed = append(parts, session, record, {r.investor_id: held},
                                           [item], r.at, r.actor, (r.key, r.request, r.action))
            tx = entries[0].transaction()
            return Outcome(tx, money_event(r, new, changed, tx))

        return write(parts, r.action, body)

    def charge_fee(self, pool_id: str, total: Decimal | int, actor: str, key: str,
                   at: datetime | None) -> list[Transaction]:
        def split(exact: Decimal, members: dict[str, Amounts], pool: Pool) -> _Split:
            shares = split_fee(exact, members, pool.currency).shares
            return [("fee", i, amount) for i, amount in shares.items()], {}

        return self._pool_money("charge_fee", FeeCharged, split, pool_id, total, actor, key, at)

    def distribute(self, pool_id: str, total: Decimal | int, actor: str, key: str,
                   at: datetime | None, carry: Decimal | None) -> list[Transaction]:
        rate = check_carry(carry)

        def split(exact: Decimal, members: dict[str, Amounts], pool: Pool) -> _Split:
            done = split_distribution(exact, members, pool.currency, rate)
            items = [("distribution", i, amount) for i, amount in done.shares.items()]
            if done.carry > 0:
                items.append(("carry", pool.manager_id, done.carry))
            return items, {"carry": rate, "carry_amount": done.carry}

        return self._pool_money("distribute", Distributed, split, pool_id, total, actor, key, at,
                                None if rate is None else plain(rate))

    def _pool_money(self, action: str, event: type[FeeCharged | Distributed],
                    split: Callable[[Decimal, dict[str, Amounts], Pool], _Split], pool_id: str,
                    total: Decimal | int, actor: str, key: str, at: datetime | None,
                    *extra: object) -> list[Transaction]:
        """A write that splits ``total`` over every member of the pool (the manager's)."""
        check_id("pool_id", pool_id)
        value = money_args(total, "total", actor, key)
        stored = scoped_key(actor, key)
        when = moment(self._parts, at)
        request = fingerprint(action, pool_id, plain(value), actor,
                              None if at is None else to_micros(when), *extra)
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[list[Transaction]]:
            record = find_pool(session, pool_id, lock=True)
            pool = record.pool
            parts.policy.check_manager(pool, actor, action)
            first = replay_receipt(session, session.receipt(stored), key, request, action)
            if first is not None:
                return Outcome(first, None)
            exact = require_exact(value, pool.currency, "total")
            members = session.holdings(pool_id)
            items, details = split(exact, members, pool)
            new, entries, changed = append(parts, session, record, members, items, when, actor,
                                           (stored, request, action))
            txs = [entry.transaction() for entry in entries]
            return Outcome(txs, event(
                actor=actor, transactions=tuple(txs), pool_id=pool_id, seq=new.head_seq,
                totals=totals_of(new), positions=positions_of(new, changed), total=exact,
                **details))

        return write(parts, action, body)
