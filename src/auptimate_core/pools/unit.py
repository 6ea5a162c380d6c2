"""The unit of work every ledger write goes through: idempotency, the chain, the outbox.

A write is a function ``body(session) -> Outcome``: it checks the policy, answers a repeated
request from its receipt (:func:`replay`), seals its entries onto the pool's chain and stores them
(:func:`append`). :func:`write` runs it in one repository unit of work, adds its event to the
change feed in that same unit of work, counts the outcome, and delivers the event to the
subscribers once committed.

A request is identified by a fingerprint of its action and arguments: an idempotency key used
again with the same fingerprint replays the first result; with another, it is a conflict.

>>> fingerprint("invest", "fund-a", "ann", plain(Decimal("100.00")), "ann", None) == \\
...     fingerprint("invest", "fund-a", "ann", plain(Decimal("100")), "ann", None)
True
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar

import attrs

from .. import metrics
from ..domain import Transaction, check_amount, check_id, check_timestamp
from ..errors import (
    AuditError,
    IdempotencyConflict,
    LedgerError,
    PermissionDenied,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from ..money import minor_unit
from .audit import ADMIT, Entry
from .events import LedgerEvent
from .parts import Parts
from .position import Amounts
from .repository import LedgerSession, PoolRecord, Receipt

R = TypeVar("R")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (PermissionDenied, "permission_denied"),
    (IdempotencyConflict, "idempotency_conflict"),
    (UnknownPool, "unknown_pool"),
    (UnknownInvestor, "unknown_investor"),
    (ValidationError, "invalid"),
)


@attrs.frozen(slots=True)
class Outcome(Generic[R]):
    """What a unit of work returns: the caller's result and the event to publish (None when
    nothing was written: a replay or a repeated no-op)."""

    result: R
    event: LedgerEvent | None


def fingerprint(action: str, *fields: object) -> str:
    """The identity of a request: a hash of its action and arguments."""
    return hashlib.sha256(_dumps([action, *fields]).encode()).hexdigest()


def scoped_key(actor: str, key: str) -> str:
    """An idempotency key as stored: ``key`` scoped to the ``actor`` who sent it (a hash of
    both), so that another actor's use of the same key neither conflicts with the first
    request nor learns anything about it.

    >>> scoped_key("ann", "k1") == scoped_key("bob", "k1")
    False
    """
    return hashlib.sha256(_dumps(["idempotency-key", actor, key]).encode()).hexdigest()


def plain(amount: Decimal) -> str:
    """An amount as text independent of trailing zeros (``100`` and ``100.00`` agree)."""
    return format(amount.normalize(), "f")


def zero(currency: str) -> Decimal:
    """Zero at the currency's minor unit."""
    return minor_unit(currency) * 0


def money_args(amount: object, field: str, actor: str, key: str,
               known: set[str] | None = None) -> Decimal:
    """Check the actor, the idempotency key and the amount of a money write (the actor as
    :func:`check_known` does, with ``known``)."""
    check_known(known, "actor", actor)
    check_id("idempotency_key", key)
    return check_amount(amount, field)


def check_known(known: set[str] | None, field: str, value: object) -> None:
    """:func:`~auptimate_core.domain.check_id`, unless ``value`` is in ``known`` (ids found
    valid before, by a batch); a valid id is added to ``known``."""
    if known is None:
        check_id(field, value)
    elif type(value) is not str or value not in known:
        known.add(check_id(field, value))


def moment(parts: Parts, at: datetime | None) -> datetime:
    """The time of a change: ``at`` (checked) or the ledger's clock, in UTC."""
    when = parts.clock.now() if at is None else check_timestamp(at, "at")
    return when.astimezone(UTC)


def write(parts: Parts, action: str, body: Callable[[LedgerSession], Outcome[R]]) -> R:
    """Run ``body`` in one unit of work, publish its event, count it, deliver it; return the
    caller's result. A refusal is counted by reason and raised."""

    def unit(session: LedgerSession) -> Outcome[R]:
        outcome = body(session)
        if outcome.event is not None:
            session.publish(outcome.event, parts.clock)
        return outcome

    def on_commit(outcome: Outcome[R]) -> None:
        if outcome.event is not None:
            parts.subscribers.queue(outcome.event)

    start = time.perf_counter()
    try:
        outcome = parts.repository.write(unit, on_commit=on_commit)
    except (LedgerError, ValidationError) as error:
        count_refusal(error)
        raise
    if outcome.event is None:
        metrics.ledger_replay(action)
    else:
        metrics.ledger_write(action, time.perf_counter() - start)
    parts.subscribers.deliver()
    return outcome.result


def count_refusal(error: Exception) -> None:
    """Count a refused request by its reason."""
    for kind, reason in _REFUSALS:
        if isinstance(error, kind):
            metrics.ledger_refusal(reason)
            break


def replay(session: LedgerSession, key: str, fingerprint: str,
           action: str) -> list[Transaction] | None:
    """The first result of ``key`` when it was used for this request; None when unused."""
    return replay_receipt(session, session.receipt(key), key, fingerprint, action)


def replay_receipt(session: LedgerSession, receipt: Receipt | None, key: str, fingerprint: str,
                   action: str) -> list[Transaction] | None:
    """As :func:`replay`, with the key's ``receipt`` (None if unused) read already."""
    if receipt is None:
        return None
    check_receipt(receipt, fingerprint, action, key)
    last = receipt.first_seq + receipt.count - 1
    found = [entry.transaction()
             for entry in session.entries(receipt.pool_id, receipt.first_seq, last)]
    if len(found) != receipt.count:  # edited outside the ledger: never a raw IndexError
        raise AuditError(f"idempotency key {key!r}: its receipt points at entries "
                         f"{receipt.first_seq} to {last} of pool {receipt.pool_id!r}, which "
                         f"are not all there (run verify()); this {action} wrote nothing")
    return found


def check_receipt(receipt: Receipt, fingerprint: str, action: str,
                  key: str | None = None) -> None:
    """Raise :class:`~auptimate_core.errors.IdempotencyConflict` unless ``receipt`` (of a key
    used before) is of the request ``fingerprint``; the message names ``key`` (the key as sent;
    the receipt keeps it scoped, :func:`scoped_key`)."""
    if receipt.fingerprint != fingerprint:
        shown = receipt.key if key is None else key
        raise IdempotencyConflict(
            f"idempotency key {shown!r} was already used for another request "
            f"({receipt.action} on pool {receipt.pool_id!r}); this {action} wrote nothing")


def append(parts: Parts, session: LedgerSession, record: PoolRecord,
           members: Mapping[str, Amounts], items: Sequence[tuple[str, str, Decimal]],
           at: datetime, actor: str, receipt_for: tuple[str, str, str] | None = None,
           ) -> tuple[PoolRecord, list[Entry], dict[str, Amounts]]:
    """Seal ``items`` (kind, investor, amount) as the pool's next entries and store them.

    ``members`` are the pool's members as read in this unit of work; ``receipt_for`` is the
    (key, fingerprint, action) of a money write. Returns the new record, the entries and the
    members the change touched, with their new totals.
    """
    pool = record.pool
    changed: dict[str, Amounts] = {}
    entries: list[Entry] = []
    totals, prev, seq = record.totals, record.head_hash, record.head_seq
    for kind, investor_id, amount in items:
        seq += 1
        entry = parts.chain.seal(pool.id, seq, kind, investor_id, amount, at, actor, "", prev)
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
        receipt = Receipt(key, fingerprint, action, pool.id, record.head_seq + 1, len(entries))
    session.append(new, entries, changed, receipt)
    return new, entries, changed
