"""What the ledger's commands do: every write, each one unit of work (see :mod:`.unit`).

Membership (``create_pool``, ``register_investor``, ``admit``) is idempotent by its content:
the same request again changes nothing, different details under the same id are a conflict.
Money writes (``invest``, ``refund``, ``charge_fee``, ``distribute``) are idempotent by their
key, scoped to the actor who sent it (:func:`~.unit.scoped_key`). The documentation of each
is on :class:`~auptimate_core.PoolLedger`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

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
        check_id("pool_id", pool_id)
        value = money_args(total, "total", actor, key)
        stored = scoped_key(actor, key)
        when = moment(self._parts, at)
        request = fingerprint("charge_fee", pool_id, plain(value), actor,
                              None if at is None else to_micros(when))
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[list[Transaction]]:
            record = find_pool(session, pool_id, lock=True)
            parts.policy.check_manager(record.pool, actor, "charge_fee")
            first = replay_receipt(session, session.receipt(stored), key, request,
                                   "charge_fee")
            if first is not None:
                return Outcome(first, None)
            exact = require_exact(value, record.pool.currency, "total")
            members = session.holdings(pool_id)
            split = split_fee(exact, members, record.pool.currency)
            items = [("fee", i, amount) for i, amount in split.shares.items()]
            new, entries, changed = append(parts, session, record, members, items, when, actor,
                                           (stored, request, "charge_fee"))
            txs = [entry.transaction() for entry in entries]
            return Outcome(txs, FeeCharged(
                actor=actor, transactions=tuple(txs), pool_id=pool_id, seq=new.head_seq,
                totals=totals_of(new), positions=positions_of(new, changed), total=exact))

        return write(parts, "charge_fee", body)

    def distribute(self, pool_id: str, total: Decimal | int, actor: str, key: str,
                   at: datetime | None, carry: Decimal | None) -> list[Transaction]:
        check_id("pool_id", pool_id)
        value = money_args(total, "total", actor, key)
        stored = scoped_key(actor, key)
        rate = check_carry(carry)
        when = moment(self._parts, at)
        request = fingerprint("distribute", pool_id, plain(value), actor,
                              None if at is None else to_micros(when),
                              None if rate is None else plain(rate))
        parts = self._parts

        def body(session: LedgerSession) -> Outcome[list[Transaction]]:
            record = find_pool(session, pool_id, lock=True)
            pool = record.pool
            parts.policy.check_manager(pool, actor, "distribute")
            first = replay_receipt(session, session.receipt(stored), key, request,
                                   "distribute")
            if first is not None:
                return Outcome(first, None)
            exact = require_exact(value, pool.currency, "total")
            members = session.holdings(pool_id)
            split = split_distribution(exact, members, pool.currency, rate)
            items = [("distribution", i, amount) for i, amount in split.shares.items()]
            if split.carry > 0:
                items.append(("carry", pool.manager_id, split.carry))
            new, entries, changed = append(parts, session, record, members, items, when, actor,
                                           (stored, request, "distribute"))
            txs = [entry.transaction() for entry in entries]
            return Outcome(txs, Distributed(
                actor=actor, transactions=tuple(txs), pool_id=pool_id, seq=new.head_seq,
                totals=totals_of(new), positions=positions_of(new, changed),
                total=exact, carry=rate, carry_amount=split.carry))

        return write(parts, "distribute", body)
