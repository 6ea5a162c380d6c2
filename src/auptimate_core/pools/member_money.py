"""What an investment or a refund checks and records: one home for the single call
(:mod:`.commands`) and the batch (:mod:`.batch`), so both refuse and write alike.

An investment is sent by the member (``policy.check_invest``), a refund by the pool's manager
(``policy.check_manager``). Both need a registered investor who is a member of the pool; a
refund may not take more than the member has left.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

import attrs

from ..domain import Pool, Transaction, to_micros
from ..errors import LedgerValidationError, PermissionDenied
from ..money import require_exact
from .events import Invested, Refunded
from .parts import Parts, known, positions_of, totals_of
from .position import Amounts
from .repository import PoolRecord
from .unit import check_known, fingerprint, moment, money_args, plain, scoped_key

KINDS: Final = {"invest": "investment", "refund": "refund"}
"""The kind of transaction each action writes."""


@attrs.frozen(slots=True)
class MoneyRequest:
    """An investment or a refund as sent, checked: its identity (``request``) is the same
    whether it comes alone or in a batch, so a key replays across both."""

    action: str
    pool_id: str
    investor_id: str
    actor: str
    amount: Decimal
    at: datetime
    key: str  # as stored: scoped to the actor
    sent_key: str
    request: str


def money_request(parts: Parts, action: str, pool_id: str, investor_id: str, amount: object,
                  actor: str, key: str, at: datetime | None,
                  known: set[str] | None = None) -> MoneyRequest:
    """Check the arguments of an ``invest`` or a ``refund`` (raising as the call would; ids in
    ``known``, a batch's ids found valid before, are not checked again)."""
    check_known(known, "pool_id", pool_id)
    check_known(known, "investor_id", investor_id)
    value = money_args(amount, "amount", actor, key, known)
    when = moment(parts, at)
    request = fingerprint(action, pool_id, investor_id, plain(value), actor,
                          None if at is None else to_micros(when))
    return MoneyRequest(action, pool_id, investor_id, actor, value, when,
                        scoped_key(actor, key), key, request)


def check_sender(parts: Parts, pool: Pool, r: MoneyRequest) -> None:
    """Refuse a sender the policy does not allow (before a replay is looked for)."""
    if r.action == "invest":
        parts.policy.check_invest(pool, r.investor_id, r.actor)
    else:
        parts.policy.check_manager(pool, r.actor, r.action)


def money_item(r: MoneyRequest, pool: Pool, registered: bool,
               held: Amounts | None) -> tuple[str, str, Decimal]:
    """The entry ``r`` writes, ``(kind, investor_id, exact amount)``, or the refusal."""
    known(registered, r.investor_id)
    if held is None:
        where = f"{r.investor_id!r} is not a member of pool {r.pool_id!r}"
        if r.action == "invest":
            raise PermissionDenied(r.actor, "invest", where)
        raise LedgerValidationError("investor_id", where)
    exact = require_exact(r.amount, pool.currency)
    if r.action == "refund" and exact > held.balance:
        raise LedgerValidationError(
            "amount", f"a refund of {exact} exceeds the {held.balance} "
            f"{r.investor_id!r} has left in pool {r.pool_id!r}")
    return KINDS[r.action], r.investor_id, exact


def money_event(r: MoneyRequest, new: PoolRecord, changed: dict[str, Amounts],
                tx: Transaction) -> Invested | Refunded:
    """The change ``r`` made, for subscribers and the feed."""
    event = Invested if r.action == "invest" else Refunded
    return event(actor=r.actor, transactions=(tx,), pool_id=r.pool_id, seq=new.head_seq,
                 totals=totals_of(new), positions=positions_of(new, changed), transaction=tx)
