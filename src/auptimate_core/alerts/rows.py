"""A batch's rows as the engine's decisions read them (:class:`~.decisions.Rows`): pools, ids,
amounts and event times as columns, from :class:`~auptimate_core.domain.Transaction` objects
(:class:`TxRows`) or from trusted :class:`~auptimate_core.columns.TransactionColumns`
(:class:`ColumnRows`, which builds a Transaction only for a row that needs one), the
threshold test on those columns (:func:`over_limit`), and the transaction rules run over a
batch (:func:`transaction_alerts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import compress, count
from operator import attrgetter

from ..columns import AmountColumn, TransactionColumns, unchecked_transaction
from ..domain import EPOCH, Transaction, from_micros
from ..store import Status
from .pending import PendingAlerts
from .rules import ThresholdRule, TransactionRule

_POOL = attrgetter("pool_id")
_ID = attrgetter("id")
_TIMESTAMP = attrgetter("timestamp")
_AMOUNT = attrgetter("amount")


class TxRows:
    """A batch of Transaction objects as columns (:class:`~.decisions.Rows`)."""

    __slots__ = ("amounts", "ats", "ids", "keys", "txs")

    def __init__(self, txs: list[Transaction]) -> None:
        self.txs = txs
        self.keys: list[str] = list(map(_POOL, txs))
        self.ids: list[str] = list(map(_ID, txs))
        self.amounts: list[Decimal] = list(map(_AMOUNT, txs))
        # Microseconds since the epoch from the timedelta's fields: exact, and cheaper than
        # dividing one timedelta by another (to_micros) on the hottest line of the engine.
        self.ats = [((d := moment - EPOCH).days * 86_400 + d.seconds) * 1_000_000
                    + d.microseconds for moment in map(_TIMESTAMP, txs)]

    def moment(self, i: int) -> datetime:
        return self.txs[i].timestamp

    def investor(self, i: int) -> str:
        return self.txs[i].investor_id

    def transaction(self, i: int) -> Transaction:
        return self.txs[i]

    def for_rules(self, i: int) -> Transaction:
        return self.txs[i]

    def transactions(self) -> list[Transaction]:
        return self.txs


class ColumnRows:
    """Rows ``start`` to ``stop`` of :class:`TransactionColumns` (:class:`~.decisions.Rows`);
    a Transaction is built only for a row that needs one."""

    __slots__ = ("amounts", "ats", "columns", "ids", "investors", "keys", "start")

    def __init__(self, columns: TransactionColumns, start: int, stop: int) -> None:
        self.columns = columns
        self.start = start
        self.keys = columns.pools[start:stop]
        self.ids = columns.ids[start:stop]
        self.investors = columns.investors[start:stop]
        self.amounts = columns.amounts[start:stop]
        self.ats = columns.times[start:stop]

    def moment(self, i: int) -> datetime:
        return from_micros(self.ats[i])

    def investor(self, i: int) -> str:
        return self.investors[i]

    def transaction(self, i: int) -> Transaction:
        return self.columns.transaction(self.start + i)

    def for_rules(self, i: int) -> Transaction:
        return unchecked_transaction(self.columns, self.start + i)

    def transactions(self) -> list[Transaction]:
        return [self.for_rules(i) for i in range(len(self.ids))]


Rows = TxRows | ColumnRows


def over_limit(
    rule: ThresholdRule, amounts: Sequence[Decimal], pools: Sequence[str]
) -> list[int]:
    """The indices at which ``rule`` alerts (the same as its ``flagged``, on columns)."""
    limit = rule.limit
    if isinstance(amounts, AmountColumn) and not rule.per_pool:
        return amounts.over(limit)
    if not rule.per_pool:
        # One comparison per transaction finds the batches with nothing to flag (most).
        if not amounts or max(amounts) <= limit:
            return []
        return list(compress(count(), map(limit.__lt__, amounts)))
    get = rule.per_pool.get
    return [i for i, (amount, pool) in enumerate(zip(amounts, pools))
            if amount > get(pool, limit)]


def transaction_alerts(
    tx_rules: Sequence[tuple[TransactionRule, Callable[[Sequence[Transaction]], list[int]] | None]],
    rows: Rows, statuses: Sequence[Status], every_new: bool, pending: PendingAlerts,
) -> int:
    """Run each transaction rule (with its ``flagged``, when it is a
    :class:`~.rules.FlaggingRule`) over a batch's rows that are not duplicates, in rule order,
    adding its alerts to ``pending``; returns how many runs of alerts in order came (a rule's
    own ``flagged()`` may give its indices in any order: counted as two)."""
    found, places, unconditional = pending.alerts, pending.places, pending.changes
    width = pending.rules
    duplicate = Status.DUPLICATE
    runs = 0
    for order, (tx_rule, flagged) in enumerate(tx_rules):
        before = len(found)
        candidates: Iterable[int]
        if type(tx_rule) is ThresholdRule:
            candidates = over_limit(tx_rule, rows.amounts, rows.keys)
        elif flagged is not None:
            candidates = flagged(rows.transactions())
            runs += 1
        else:
            candidates = range(len(rows.ids))
        for i in candidates:
            if every_new or statuses[i] is not duplicate:
                alert = tx_rule.check(rows.for_rules(i))
                if alert is not None:
                    found.append(alert)
                    places.append(i * width + order)
                    unconditional.append(-1)
        runs += len(found) > before
    return runs
