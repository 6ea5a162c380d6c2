"""Several commands in one unit of work: :class:`Batch`, made by ``PoolLedger.batch()``.

A batch queues admissions, investments and refunds, then records them all or none in one unit of
work of the repository (:meth:`Batch.commit`). Each command is what the same call on the ledger
would do, in the order queued: the same checks of its arguments (when queued), the same policy,
the same idempotency (its key replays its first result, made one by one or in an earlier batch,
or earlier in this batch; a key used for another request is a conflict), the same audit entries
and one change in the feed per command that wrote, in order. A command refused (by the policy,
a conflict, an unknown pool or investor, an invalid amount) refuses the whole batch: nothing is
written and nothing published, and the error carries a note naming the command.

What a batch costs: one unit of work whatever its size. It locks the pools it touches in the
order of their ids (so two batches, or a batch and single writes, never wait for each other in
a cycle), reads the investors, holdings and receipts of all its commands in one go
(:class:`~.repository.BatchSession`), and the repository writes the rows of each table and the
changes together (on SQL: on PostgreSQL one multi-row statement per run of at most 128
commands of a pool, those before the last sent ahead in one pipeline as the batch goes on; on
SQLite one statement per table), with one commit.

>>> from decimal import Decimal
>>> from auptimate_core import Investor, Pool, PoolLedger
>>> ledger = PoolLedger()
>>> _ = ledger.create_pool(Pool("fund-a", manager_id="m1"), actor="m1")
>>> _ = ledger.register_investor(Investor("ann"))
>>> batch = ledger.batch()
>>> _ = batch.admit("fund-a", "ann", actor="m1")
>>> _ = batch.invest("fund-a", "ann", Decimal(300), actor="ann", idempotency_key="a1")
>>> _ = batch.refund("fund-a", "ann", Decimal(50), actor="m1", idempotency_key="r1")
>>> [None if r is None else (r.kind, r.amount) for r in batch.commit()]
[None, ('investment', Decimal('300.00')), ('refund', Decimal('50.00'))]
>>> ledger.positions("fund-a")[0].capital, len(ledger.changes())
(Decimal('250.00'), 5)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import NamedTuple, cast

import attrs

from .. import metrics
from ..domain import Transaction
from ..errors import LedgerError, UnknownPool
from .audit import ADMIT
from .events import InvestorAdmitted, LedgerEvent
from .member_money import MoneyRequest, check_sender, money_event, money_item, money_request
from .parts import Parts, known, positions_of, totals_of
from .position import Amounts
from .repository import BatchRead, BatchSession, LedgerSession, PoolRecord, Receipt
from .unit import (
    append,
    check_known,
    check_receipt,
    count_refusal,
    moment,
    replay_receipt,
    zero,
)

Result = Transaction | None
"""What a command of a batch gives: its transaction (an investment or a refund), or None (an
admission)."""


class Investment(NamedTuple):
    """One investment of :meth:`~auptimate_core.PoolLedger.invest_many`: the arguments of
    :meth:`~auptimate_core.PoolLedger.invest` (a plain tuple in this order does as well)."""

    pool_id: str
    investor_id: str
    amount: Decimal | int
    actor: str
    idempotency_key: str
    at: datetime | None = None


@attrs.frozen(slots=True)
class _Command:
    action: str
    pool_id: str
    investor_id: str
    actor: str
    at: datetime
    money: MoneyRequest | None = None  # an investment's or a refund's request

    def describe(self, index: int) -> str:
        what = f"{self.action} of {self.investor_id!r} in pool {self.pool_id!r}"
        if self.money is not None:
            what += f" (idempotency key {self.money.sent_key!r})"
        return f"command {index} of the batch, {what}: the batch wrote nothing"

    @property
    def key(self) -> str | None:
        return None if self.money is None else self.money.key


@attrs.frozen(slots=True)
class _Done:
    results: list[Result]
    events: list[LedgerEvent]
    written: list[str]
    replayed: list[str]


class Batch:
    """Commands queued to be recorded together, all or nothing (see the module notes).

    ``invest``, ``refund`` and ``admit`` take the arguments of the ledger's methods of those
    names, check them at once (raising as the ledger's method would) and return the batch.
    :meth:`commit` records the commands and returns one result per command, in order; used as
    a context manager, the batch commits when its block ends without an exception (the results
    are then in :attr:`results`). Not safe to share between threads while commands are queued;
    a committed batch takes no more commands, and committing it again returns its results.
    """

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._commands: list[_Command] = []
        self._results: list[Result] | None = None
        self._known: set[str] = set()  # ids of queued commands, found valid

    def __len__(self) -> int:
        return len(self._commands)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.commit()

    @property
    def results(self) -> list[Result]:
        """The result of each command, once committed (a LedgerError before)."""
        if self._results is None:
            raise LedgerError("this batch is not committed yet")
        return list(self._results)

    def _queue(self, command: _Command) -> Batch:
        if self._results is not None:
            raise LedgerError("this batch was committed; start another with ledger.batch()")
        self._commands.append(command)
        return self

    def invest(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Batch:
        """Queue :meth:`~auptimate_core.PoolLedger.invest`."""
        return self._queue(self._money("invest", pool_id, investor_id, amount, actor,
                                       idempotency_key, at))

    def refund(self, pool_id: str, investor_id: str, amount: Decimal | int, *, actor: str,
               idempotency_key: str, at: datetime | None = None) -> Batch:
        """Queue :meth:`~auptimate_core.PoolLedger.refund`."""
        return self._queue(self._money("refund", pool_id, investor_id, amount, actor,
                                       idempotency_key, at))

    def admit(self, pool_id: str, investor_id: str, *, actor: str) -> Batch:
        """Queue :meth:`~auptimate_core.PoolLedger.admit`."""
        for field, value in (("pool_id", pool_id), ("investor_id", investor_id),
                             ("actor", actor)):
            check_known(self._known, field, value)
        return self._queue(_Command("admit", pool_id, investor_id, actor,
                                    moment(self._parts, None)))

    def _money(self, action: str, pool_id: str, investor_id: str, amount: object, actor: str,
               key: str, at: datetime | None) -> _Command:
        r = money_request(self._parts, action, pool_id, investor_id, amount, actor, key, at,
                          self._known)
        return _Command(action, pool_id, investor_id, actor, r.at, r)

    def commit(self) -> list[Result]:
        """Record every queued command in one unit of work; return their results in order.

        All or nothing: a command refused raises its error (with a note naming the command)
        and nothing is written. An empty batch writes nothing and returns ``[]``.
        """
        if self._results is not None:
            return list(self._results)
        commands = list(self._commands)
        if not commands:
            self._results = []
            return []
        parts = self._parts

        def body(session: LedgerSession) -> _Done:
            run = _Run(parts, session, _read(session, commands))
            for index, command in enumerate(commands):
                try:
                    run.step(command)
                except (LedgerError, ValueError) as error:
                    error.add_note(command.describe(index))
                    raise
            for event in run.events:
                session.publish(event, parts.clock)
            return _Done(run.results, run.events, run.written, run.replayed)

        def on_commit(done: _Done) -> None:
            for event in done.events:
                parts.subscribers.queue(event)

        try:
            done = parts.repository.write(body, on_commit=on_commit)
        except (LedgerError, ValueError) as error:
            count_refusal(error)
            raise
        for action in done.written:
            metrics.ledger_write(action)
        for action in done.replayed:
            metrics.ledger_replay(action)
        parts.subscribers.deliver()
        self._results = done.results
        return list(done.results)


def _read(session: LedgerSession, commands: Sequence[_Command]) -> BatchRead:
    """What the commands need, the pools locked in the order of their ids."""
    pool_ids = sorted({c.pool_id for c in commands})
    investor_ids = {c.investor_id for c in commands}
    pairs = {(c.pool_id, c.investor_id) for c in commands}
    keys = {c.key for c in commands if c.key is not None}
    if _reads_batches(type(session)):
        return cast(BatchSession, session).batch(pool_ids, investor_ids, pairs, keys)
    records: dict[str, PoolRecord] = {}
    for pool_id in pool_ids:
        record = session.pool(pool_id, lock=True)
        if record is not None:
            records[pool_id] = record
    holdings: dict[tuple[str, str], Amounts] = {}
    for pool_id, investor_id in pairs:
        held = session.holding(pool_id, investor_id) if pool_id in records else None
        if held is not None:
            holdings[pool_id, investor_id] = held
    receipts: dict[str, Receipt] = {}
    for key in keys:
        receipt = session.receipt(key)
        if receipt is not None:
            receipts[key] = receipt
    registered = frozenset(i for i in investor_ids if session.investor(i) is not None)
    return BatchRead(records, registered, holdings, receipts)


@functools.cache
def _reads_batches(kind: type) -> bool:
    return issubclass(kind, BatchSession)


class _Run:
    """The commands of one unit of work, each on the state the ones before it left."""

    def __init__(self, parts: Parts, session: LedgerSession, read: BatchRead) -> None:
        self._parts = parts
        self._session = session
        self._records = dict(read.records)
        self._registered = read.registered
        self._holdings = dict(read.holdings)
        self._receipts = read.receipts
        self._made: dict[str, tuple[Receipt, Transaction]] = {}
        self.results: list[Result] = []
        self.events: list[LedgerEvent] = []
        self.written: list[str] = []
        self.replayed: list[str] = []

    def step(self, command: _Command) -> None:
        record = self._records.get(command.pool_id)
        if record is None:
            raise UnknownPool(f"unknown pool {command.pool_id!r}")
        if command.money is None:
            self._admit(command, record)
        else:
            self._money(command.money, record)

    def _admit(self, c: _Command, record: PoolRecord) -> None:
        self._parts.policy.check_manager(record.pool, c.actor, "admit")
        known(c.investor_id in self._registered, c.investor_id)
        self.results.append(None)
        if (c.pool_id, c.investor_id) in self._holdings:
            return
        new, _, changed = append(self._parts, self._session, record, {},
                                 [(ADMIT, c.investor_id, zero(record.pool.currency))],
                                 c.at, c.actor)
        self._records[c.pool_id] = new
        self._holdings[c.pool_id, c.investor_id] = changed[c.investor_id]
        self.written.append("admit")
        self.events.append(InvestorAdmitted(
            actor=c.actor, pool_id=c.pool_id, seq=new.head_seq, totals=totals_of(new),
            positions=positions_of(new, changed), investor_id=c.investor_id))

    def _money(self, r: MoneyRequest, record: PoolRecord) -> None:
        check_sender(self._parts, record.pool, r)
        first = self._replay(r)
        if first is not None:
            self.results.append(first)
            self.replayed.append(r.action)
            return
        held = self._holdings.get((r.pool_id, r.investor_id))
        item = money_item(r, record.pool, r.investor_id in self._registered, held)
        assert held is not None, "money_item refuses a non-member"
        new, entries, changed = append(
            self._parts, self._session, record, {r.investor_id: held}, [item], r.at, r.actor,
            (r.key, r.request, r.action))
        tx = entries[0].transaction()
        self._records[r.pool_id] = new
        self._holdings[r.pool_id, r.investor_id] = changed[r.investor_id]
        self._made[r.key] = (Receipt(r.key, r.request, r.action, r.pool_id, new.head_seq, 1), tx)
        self.results.append(tx)
        self.written.append(r.action)
        self.events.append(money_event(r, new, changed, tx))

    def _replay(self, r: MoneyRequest) -> Transaction | None:
        """The first result of the request's key, used earlier in this batch or before it."""
        made = self._made.get(r.key)
        if made is not None:
            check_receipt(made[0], r.request, r.action, r.sent_key)
            return made[1]
        first = replay_receipt(self._session, self._receipts.get(r.key), r.sent_key,
                               r.request, r.action)
        return None if first is None else first[0]
