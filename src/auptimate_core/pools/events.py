"""What the ledger tells its followers and subscribers: one event per committed change.

Every event of a pool carries what the change did, not the whole pool: ``seq``, the number of
the pool's last audit entry after the change; ``positions``, the positions of the members the
change touched (the investor of an investment or a refund, the new member of an admission,
every member charged a fee or paid a distribution), after it; and ``totals``, the pool's new
:class:`~auptimate_core.PoolTotals`. A member the change did not touch kept their amounts; only
their ``share`` moved, and it is their capital over ``totals.capital``. ``transactions`` holds the
transactions the change recorded (empty for a new pool or an admission), so an alert engine can
subscribe directly::

    ledger.subscribe(lambda event: engine.process_many(event.transactions))

Events are the same objects in :meth:`~auptimate_core.PoolLedger.subscribe` (this process, after
the commit) and in the change feed (:meth:`~auptimate_core.PoolLedger.changes`, any process).
``to_dict()`` gives JSON-ready values (Decimals as text, datetimes in ISO 8601, a ``"type"``
naming the class), ``to_json()`` the same as compact JSON text (what the change feed keeps), and
``LedgerEvent.from_dict`` turns such a dict back into the right class.

Match on the type to tell changes apart::

    match event:
        case Distributed(total=total, carry=carry): ...
        case Invested(transaction=tx): ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Self

import attrs

from ..domain import Investor, Pool, Transaction
from ..errors import ValidationError
from . import codec
from .position import PoolTotals, Position


@attrs.frozen(slots=True, kw_only=True)
class LedgerEvent:
    """Base of every event: who made the change and what it recorded."""

    actor: str | None
    transactions: tuple[Transaction, ...] = ()

    _types: ClassVar[dict[str, type[LedgerEvent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LedgerEvent._types[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: ``{"type": <class name>, <field>: <value>, ...}``."""
        data: dict[str, Any] = {"type": type(self).__name__}
        for field in attrs.fields(type(self)):
            data[field.name] = _ENCODERS[field.name](getattr(self, field.name))
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text (non-ASCII characters kept as they are): the
        text ``json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)``
        gives, made without building the dict."""
        kind = type(self)
        fields = _JSON_FIELDS.get(kind)
        if fields is None:
            fields = _JSON_FIELDS[kind] = tuple(
                (f',"{f.name}":', f.name, _JSON[f.name]) for f in attrs.fields(kind))
        parts = ['{"type":', _quote(kind.__name__)]
        for label, name, encode in fields:
            parts.append(label)
            parts.append(encode(getattr(self, name)))
        parts.append("}")
        return "".join(parts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The event :meth:`to_dict` gave: of the class its ``"type"`` names, which must be
        ``cls`` or one of its subclasses. Bad input is a ValidationError naming the field."""
        found = codec.mapping(data, "event")
        name = codec.text(found, "type", "event")
        kind = LedgerEvent._types.get(name)
        if kind is None or not issubclass(kind, cls) or kind in _ABSTRACT:
            raise ValidationError("event.type", f"{name!r} is not a kind of {cls.__name__}")
        values = {field.name: _DECODERS[field.name](codec.get(found, field.name, "event"))
                  for field in attrs.fields(kind)}
        event: Self = kind(**values)
        return event


@attrs.frozen(slots=True, kw_only=True)
class InvestorRegistered(LedgerEvent):
    """A new investor was registered."""

    investor: Investor


@attrs.frozen(slots=True, kw_only=True)
class PoolEvent(LedgerEvent):
    """A change to one pool: the positions it touched and the pool's totals, after it."""

    pool_id: str
    seq: int
    totals: PoolTotals
    positions: tuple[Position, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class PoolCreated(PoolEvent):
    """A pool was created by its manager."""

    pool: Pool


@attrs.frozen(slots=True, kw_only=True)
class InvestorAdmitted(PoolEvent):
    """The manager admitted an investor to the pool."""

    investor_id: str


@attrs.frozen(slots=True, kw_only=True)
class Invested(PoolEvent):
    """An investor recorded an investment (``transaction``, also in ``transactions``)."""

    transaction: Transaction


@attrs.frozen(slots=True, kw_only=True)
class Refunded(PoolEvent):
    """The manager refunded an investor (``transaction``, also in ``transactions``)."""

    transaction: Transaction


@attrs.frozen(slots=True, kw_only=True)
class FeeCharged(PoolEvent):
    """The manager charged a fee of ``total``, split pro rata in ``transactions``."""

    total: Decimal


@attrs.frozen(slots=True, kw_only=True)
class Distributed(PoolEvent):
    """The manager distributed ``total``; with a ``carry`` rate, ``carry_amount`` went to them.

    ``transactions`` holds one ``distribution`` per investor paid and, when there was carry,
    the manager's ``carry`` transaction last.
    """

    total: Decimal
    carry: Decimal | None = None
    carry_amount: Decimal = Decimal(0)


_ABSTRACT: tuple[type[LedgerEvent], ...] = (LedgerEvent, PoolEvent)


def _same(value: Any) -> Any:
    return value


def _text(value: object, field: str) -> str:
    return codec.text({field: value}, field, "event")


def _decimal(value: object, field: str) -> Decimal:
    return codec.decimal({field: value}, field, "event")


def _seq(value: object) -> int:
    return codec.integer({"seq": value}, "seq", "event")


def _list(value: object, field: str) -> list[Any]:
    return codec.items({field: value}, field, "event")


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "actor": _same, "pool_id": _same, "seq": _same, "investor_id": _same,
    "transactions": lambda txs: [codec.transaction_to_dict(tx) for tx in txs],
    "transaction": codec.transaction_to_dict,
    "positions": lambda positions: [p.to_dict() for p in positions],
    "totals": PoolTotals.to_dict,
    "investor": codec.investor_to_dict,
    "pool": codec.pool_to_dict,
    "total": str, "carry_amount": str,
    "carry": lambda rate: None if rate is None else str(rate),
}

_quote: Callable[[str], str] = json.encoder.encode_basestring  # json.dumps' own, in C
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _optional_text_json(value: object) -> str:
    return "null" if value is None else _quote(str(value))


def _texts_json(values: Mapping[str, str]) -> str:
    """A JSON object of text values, as ``_dumps`` writes it: its keys' template made once."""
    keys = tuple(values)
    template = _TEMPLATES.get(keys)
    if template is None:
        template = _TEMPLATES[keys] = "{{" + ",".join(f"{_quote(k)}:{{}}" for k in keys) + "}}"
    return template.format(*map(_quote, values.values()))


_TEMPLATES: dict[tuple[str, ...], str] = {}


_last_transaction: tuple[Transaction | None, str] = (None, "")


def _transaction_json(tx: Transaction) -> str:
    # An Invested or Refunded event carries its transaction twice: encoded once.
    global _last_transaction
    last, text = _last_transaction
    if last is not tx:
        text = _texts_json(codec.transaction_to_dict(tx))
        _last_transaction = (tx, text)
    return text


def _transactions_json(txs: tuple[Transaction, ...]) -> str:
    return f"[{','.join(map(_transaction_json, txs))}]"


def _positions_json(positions: tuple[Position, ...]) -> str:
    return f"[{','.join(p.to_json() for p in positions)}]"


_JSON: dict[str, Callable[[Any], str]] = {
    "actor": _optional_text_json, "pool_id": _quote, "investor_id": _quote, "seq": str,
    "transactions": _transactions_json, "transaction": _transaction_json,
    "positions": _positions_json, "totals": PoolTotals.to_json,
    "investor": lambda investor: _dumps(codec.investor_to_dict(investor)),
    "pool": lambda pool: _dumps(codec.pool_to_dict(pool)),
    "total": lambda value: _quote(str(value)), "carry_amount": lambda value: _quote(str(value)),
    "carry": _optional_text_json,
}
"""Each field's JSON text: what :data:`_ENCODERS` gives, encoded."""

_JSON_FIELDS: dict[type[LedgerEvent], tuple[tuple[str, str, Callable[[Any], str]], ...]] = {}

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "actor": lambda v: None if v is None else _text(v, "actor"),
    "pool_id": lambda v: _text(v, "pool_id"),
    "investor_id": lambda v: _text(v, "investor_id"),
    "seq": _seq,
    "transactions": lambda v: tuple(codec.transaction_from_dict(tx, "event.transactions")
                                    for tx in _list(v, "transactions")),
    "transaction": lambda v: codec.transaction_from_dict(v, "event.transaction"),
    "positions": lambda v: tuple(Position.from_dict(p, "event.positions")
                                 for p in _list(v, "positions")),
    "totals": lambda v: PoolTotals.from_dict(v, "event.totals"),
    "investor": lambda v: codec.investor_from_dict(v, "event.investor"),
    "pool": lambda v: codec.pool_from_dict(v, "event.pool"),
    "total": lambda v: _decimal(v, "total"),
    "carry_amount": lambda v: _decimal(v, "carry_amount"),
    "carry": lambda v: None if v is None else _decimal(v, "carry"),
}


Subscriber = Callable[[LedgerEvent], object]
"""A callable receiving every event; its return value is ignored."""

Unsubscribe = Callable[[], None]
"""Calling it stops the deliveries to one subscriber; calling it again does nothing."""
