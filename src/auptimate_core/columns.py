"""``TransactionColumns``: transactions as parallel columns, for a reader that already has them.

A reader that parses a file into columns (the ``monitor`` command, a dataframe) hands them to
:meth:`~auptimate_core.alerts.AlertEngine.process_columns` without building one
:class:`~auptimate_core.domain.Transaction` per row. The columns are **trusted input**: every
value must already have passed the input pipeline's checks (the same ones a ``Transaction``
makes: non-empty ids, positive finite Decimal amounts within the documented maximum). The
constructor checks only that the columns have equal lengths; a ``Transaction`` is built (and so
validated) only for a row that needs one, such as a late transaction handed to ``on_late``.

>>> from datetime import UTC, datetime
>>> from decimal import Decimal
>>> from auptimate_core.domain import to_micros
>>> cols = TransactionColumns(ids=["t1", "t2"], investors=["i1", "i2"], pools=["p", "p"],
...                           amounts=[Decimal("10"), Decimal("20.5")],
...                           times=[to_micros(datetime(2026, 1, 1, tzinfo=UTC))] * 2)
>>> len(cols), cols.transaction(1).amount, cols.transaction(1).timestamp.isoformat()
(2, Decimal('20.5'), '2026-01-01T00:00:00+00:00')
>>> TransactionColumns.from_transactions([cols.transaction(0)]).ids
('t1',)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter

import attrs

from .domain import EPOCH, Transaction, from_micros
from .errors import ValidationError

_FIELDS = ("ids", "investors", "pools", "amounts", "times")


@attrs.frozen(slots=True)
class TransactionColumns:
    """Equal-length columns of transactions: row ``i`` is one transaction.

    ``ids``, ``investors`` and ``pools`` are its id, investor id and pool id; ``amounts`` its
    Decimal amount; ``times`` its event time in UTC microseconds since the Unix epoch;
    ``kinds`` its kind (``None``: every row is an ``investment``). Trusted input, see the module
    docstring: the constructor checks the lengths only. Immutable as long as the sequences
    given are not changed afterwards (tuples or lists the caller no longer touches).
    """

    ids: Sequence[str]
    investors: Sequence[str]
    pools: Sequence[str]
    amounts: Sequence[Decimal]
    times: Sequence[int]
    kinds: Sequence[str] | None = None

    def __attrs_post_init__(self) -> None:
        size = len(self.ids)
        for name in _FIELDS[1:]:
            if len(getattr(self, name)) != size:
                raise ValidationError(
                    name, f"has {len(getattr(self, name))} rows where ids has {size}")
        if self.kinds is not None and len(self.kinds) != size:
            raise ValidationError("kinds", f"has {len(self.kinds)} rows where ids has {size}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_transactions(cls, transactions: Iterable[Transaction]) -> TransactionColumns:
        """The columns of ``transactions`` (kinds kept only when one is not an investment)."""
        txs = list(transactions)
        kinds = tuple(map(_KIND, txs))
        return cls(
            ids=tuple(map(_ID, txs)),
            investors=tuple(map(_INVESTOR, txs)),
            pools=tuple(map(_POOL, txs)),
            amounts=tuple(map(_AMOUNT, txs)),
            times=tuple(_micros(tx.timestamp) for tx in txs),
            kinds=kinds if any(kind != "investment" for kind in kinds) else None,
        )

    def transaction(self, i: int) -> Transaction:
        """Row ``i`` as a :class:`~auptimate_core.domain.Transaction` (validated as any), its
        timestamp in UTC."""
        return Transaction(
            self.ids[i], self.investors[i], self.pools[i], self.amounts[i],
            from_micros(self.times[i]),
            "investment" if self.kinds is None else self.kinds[i],
        )


def unchecked_transaction(columns: TransactionColumns, i: int) -> Transaction:
    """Row ``i`` of ``columns`` as a :class:`~auptimate_core.domain.Transaction` built without
    the checks its constructor makes (the columns are trusted input): what the engine hands
    its transaction rules, at a fraction of the cost of :meth:`TransactionColumns.transaction`.
    """
    tx = _new(Transaction)
    _set(tx, "id", columns.ids[i])
    _set(tx, "investor_id", columns.investors[i])
    _set(tx, "pool_id", columns.pools[i])
    _set(tx, "amount", columns.amounts[i])
    _set(tx, "timestamp", EPOCH + timedelta(0, 0, columns.times[i]))
    _set(tx, "kind", "investment" if columns.kinds is None else columns.kinds[i])
    return tx


_new = object.__new__
_set = object.__setattr__  # how attrs itself sets the fields of a frozen instance
_ID = attrgetter("id")
_INVESTOR = attrgetter("investor_id")
_POOL = attrgetter("pool_id")
_AMOUNT = attrgetter("amount")
_KIND = attrgetter("kind")


def _micros(moment: datetime) -> int:
    d = moment - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
