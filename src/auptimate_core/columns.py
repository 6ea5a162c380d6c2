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

A reader that has its columns as arrays (polars, numpy) gives them in the faster forms, which
are sequences too (:meth:`TransactionColumns.from_arrays`): a text column as integer codes into
a table of names (:class:`CodedText`, which a columnar store numbers its keys from without
reading a string per row) and times as an ``int64`` array (:class:`IntColumn`, which numpy
takes without a copy per value).

>>> import numpy as np
>>> fast = TransactionColumns.from_arrays(
...     ids=["t1", "t2"], investors=["i1", "i2"], pool_codes=np.array([1, 1]),
...     pool_names=["q", "p"], amounts=[Decimal("10"), Decimal("20.5")],
...     times=np.array([to_micros(datetime(2026, 1, 1, tzinfo=UTC))] * 2))
>>> list(fast.pools), fast.times[1], fast.transaction(1) == cols.transaction(1)
(['p', 'p'], 1767225600000000, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any, overload

import attrs

from .domain import EPOCH, Transaction, from_micros
from .errors import ValidationError

if TYPE_CHECKING:
    import numpy.typing as npt

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

    @classmethod
    def from_arrays(
        cls, *, ids: Sequence[str], investors: Sequence[str], pool_codes: npt.ArrayLike,
        pool_names: Sequence[str], amounts: Sequence[Decimal], times: npt.ArrayLike,
        kinds: Sequence[str] | None = None,
    ) -> TransactionColumns:
        """Columns whose pools are ``pool_names[pool_codes[i]]`` (codes: a one-dimensional
        integer array) and whose times are a one-dimensional integer array of UTC microseconds
        since the epoch, each checked for its shape and range (a :class:`ValidationError`
        naming the field); the rest as for the constructor. Needs numpy."""
        return cls(ids=ids, investors=investors, pools=CodedText(pool_codes, pool_names),
                   amounts=amounts, times=IntColumn(times, "times"), kinds=kinds)

    def transaction(self, i: int) -> Transaction:
        """Row ``i`` as a :class:`~auptimate_core.domain.Transaction` (validated as any), its
        timestamp in UTC."""
        return Transaction(
            self.ids[i], self.investors[i], self.pools[i], self.amounts[i],
            from_micros(self.times[i]),
            "investment" if self.kinds is None else self.kinds[i],
        )


class CodedText(Sequence[str]):
    """A text column as ``codes`` (a one-dimensional integer numpy array) into ``names``
    (distinct): row ``i`` is ``names[codes[i]]``. Slices share the codes and the names. Checked
    at construction: the codes' shape and type, each one a place in ``names``, the names
    distinct.

    >>> import numpy as np
    >>> pools = CodedText(np.array([0, 1, 0]), ("p", "q"))
    >>> list(pools), pools[1], list(pools[1:])
    (['p', 'q', 'p'], 'q', ['q', 'p'])
    """

    __slots__ = ("codes", "names")

    def __init__(self, codes: npt.ArrayLike, names: Sequence[str], *,
                 checked: bool = False) -> None:
        import numpy as np

        array = np.asarray(codes)
        if not checked:
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise ValidationError(
                    "pool_codes", f"must be a one-dimensional integer array, not {array.dtype} "
                    f"of shape {array.shape}")
            if len(set(names)) != len(names):
                raise ValidationError("pool_names", "must be distinct")
            if len(array) and (int(array.min()) < 0 or int(array.max()) >= len(names)):
                raise ValidationError(
                    "pool_codes", f"must lie between 0 and {len(names) - 1} (places in "
                    f"pool_names), not {int(array.min())}..{int(array.max())}")
        self.codes: Any = array
        self.names = names

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> CodedText: ...

    def __getitem__(self, index: int | slice) -> str | CodedText:
        if isinstance(index, slice):
            return CodedText(self.codes[index], self.names, checked=True)
        name: str = self.names[self.codes[index]]
        return name

    def __iter__(self) -> Iterator[str]:
        return map(self.names.__getitem__, self.codes.tolist())


class IntColumn(Sequence[int]):
    """A column of integers held as a one-dimensional ``int64`` numpy array (``values``); its
    items are Python ints, and ``numpy.asarray`` gives the array itself. Slices share it.

    >>> import numpy as np
    >>> times = IntColumn(np.array([5, 6, 7]))
    >>> times[0], list(times[1:]), np.asarray(times[1:]).dtype.name
    (5, [6, 7], 'int64')
    """

    __slots__ = ("values",)

    def __init__(self, values: npt.ArrayLike, field: str = "values") -> None:
        import numpy as np

        array = np.asarray(values)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValidationError(
                field, f"must be a one-dimensional integer array, not {array.dtype} of shape "
                f"{array.shape}")
        if array.dtype != np.int64:
            if array.dtype == np.uint64 and len(array) and int(array.max()) >= 1 << 63:
                raise ValidationError(field, "must fit in 64-bit signed integers")
            array = array.astype(np.int64)
        self.values: Any = array

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> IntColumn: ...

    def __getitem__(self, index: int | slice) -> int | IntColumn:
        if isinstance(index, slice):
            return IntColumn(self.values[index])
        return int(self.values[index])

    def __iter__(self) -> Iterator[int]:
        return iter(self.values.tolist())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        return self.values if dtype is None else self.values.astype(dtype, copy=False)


class AmountColumn(Sequence[Decimal]):
    """Amounts as written (``texts``: row ``i`` is ``Decimal(texts[i])``, made when read) and
    their values in millionths (``micros``: a one-dimensional ``int64`` numpy array, each
    amount times 10**6, exact, so no amount has more than six decimals). A consumer that
    computes on the values reads ``micros`` (:meth:`over`, :meth:`units`) instead of making a
    Decimal per row. Checked at construction: the shape and type of ``micros``, its length
    against ``texts``, every value greater than zero; that each text is its value is the
    caller's word (trusted input, as every column).

    >>> import numpy as np
    >>> amounts = AmountColumn(["10", "250000.5", "0.00005"], np.array([10**7, 250000500000, 50]))
    >>> amounts[1], amounts.over(Decimal("250000")), amounts.units()
    (Decimal('250000.5'), [1], [100000, 2500005000, 0])
    >>> list(amounts[1:]) == [Decimal("250000.5"), Decimal("0.00005")]
    True
    """

    __slots__ = ("micros", "texts")

    def __init__(self, texts: Sequence[str], micros: npt.ArrayLike, *,
                 checked: bool = False) -> None:
        import numpy as np

        array = np.asarray(micros)
        if not checked:
            if array.ndim != 1 or array.dtype != np.int64:
                raise ValidationError(
                    "amounts", f"micros must be a one-dimensional int64 array, not "
                    f"{array.dtype} of shape {array.shape}")
            if len(array) != len(texts):
                raise ValidationError(
                    "amounts", f"has {len(array)} micros for {len(texts)} texts")
            if len(array) and int(array.min()) <= 0:
                raise ValidationError("amounts", "must all be greater than zero")
        self.texts = texts
        self.micros: Any = array

    def __len__(self) -> int:
        return len(self.micros)

    @overload
    def __getitem__(self, index: int) -> Decimal: ...

    @overload
    def __getitem__(self, index: slice) -> AmountColumn: ...

    def __getitem__(self, index: int | slice) -> Decimal | AmountColumn:
        if isinstance(index, slice):
            return AmountColumn(self.texts[index], self.micros[index], checked=True)
        return Decimal(self.texts[index])

    def __iter__(self) -> Iterator[Decimal]:
        return map(Decimal, self.texts)

    def over(self, limit: Decimal) -> list[int]:
        """The indices of the amounts strictly greater than ``limit``, in order."""
        import numpy as np

        # amount > limit exactly when micros > floor(limit * 10**6), micros being whole.
        edge = int(limit.scaleb(6).to_integral_value(ROUND_FLOOR))
        if edge >= 1 << 63:
            return []
        found: list[int] = np.flatnonzero(self.micros > max(edge, -1)).tolist()
        return found

    def units(self) -> list[int]:
        """Each amount in the windows' units (:func:`~auptimate_core.store.to_units`: four
        decimals, rounded half to even)."""
        import numpy as np

        whole, rest = np.divmod(self.micros, 100)
        up = (rest > 50) | ((rest == 50) & (whole % 2 == 1))
        units: list[int] = (whole + up).tolist()
        return units


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
