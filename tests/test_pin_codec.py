"""The ledger events' JSON forms pinned to literal values, and every refusal by its message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from auptimate_core import Investor, Pool, Transaction
from auptimate_core.errors import ValidationError
from auptimate_core.pools import codec

TX = Transaction("p:3", "ann", "p", Decimal("100.00"),
                 datetime(1969, 7, 20, 20, 17, 40, 5, tzinfo=timezone(timedelta(hours=-5))),
                 "refund")


def _refused(call: Callable[[], object], text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert str(caught.value) == text


def test_forms() -> None:
    assert codec.transaction_to_dict(TX) == {
        "id": "p:3", "investor_id": "ann", "pool_id": "p", "amount": "100.00",
        "timestamp": "1969-07-20T20:17:40.000005-05:00", "kind": "refund"}
    back = codec.transaction_from_dict(codec.transaction_to_dict(TX))
    assert back == TX
    assert back.timestamp.utcoffset() == timedelta(hours=-5)
    assert codec.investor_to_dict(Investor("i", "Ada", "a@b")) == {
        "id": "i", "name": "Ada", "email": "a@b"}
    assert codec.investor_from_dict({"id": "i", "name": "", "email": None}) == Investor("i")
    assert codec.investor_from_dict({"id": "i", "name": "Ada", "email": "a@b"}) == Investor(
        "i", "Ada", "a@b")
    assert codec.pool_to_dict(Pool("p", "m", "Fund", "EUR")) == {
        "id": "p", "manager_id": "m", "name": "Fund", "currency": "EUR"}
    assert codec.pool_from_dict(codec.pool_to_dict(Pool("p", "m"))) == Pool("p", "m")


def test_readers() -> None:
    data = {"s": "x", "n": None, "i": 3, "d": "1.50", "t": "2026-01-01T00:00:00Z",
            "l": [1], "b": True, "f": 1.5}
    assert codec.text(data, "s", "f") == "x"
    assert codec.optional_text(data, "n", "f") is None
    assert codec.optional_text(data, "s", "f") == "x"
    assert codec.integer(data, "i", "f") == 3
    assert str(codec.decimal(data, "d", "f")) == "1.50"
    assert codec.optional_decimal(data, "n", "f") is None
    assert codec.optional_decimal(data, "d", "f") == Decimal("1.50")
    assert codec.moment(data, "t", "f") == datetime(2026, 1, 1, tzinfo=UTC)
    assert codec.items(data, "l", "f") == [1]
    assert codec.mapping(data, "f") is data
    _refused(lambda: codec.mapping([], "event"), "event: must be an object, not list")
    _refused(lambda: codec.get(data, "zz", "event"), "event.zz: is missing")
    _refused(lambda: codec.text(data, "i", "event"), "event.i: must be a string, not int")
    _refused(lambda: codec.integer(data, "b", "event"), "event.b: must be an integer, not bool")
    _refused(lambda: codec.integer(data, "s", "event"), "event.s: must be an integer, not str")
    _refused(lambda: codec.decimal(data, "f", "event"), "event.f: must be a string, not float")
    _refused(lambda: codec.decimal(data, "s", "event"), "event.s: is not a decimal number: 'x'")
    _refused(lambda: codec.moment(data, "s", "event"), "event.s: is not an ISO 8601 time: 'x'")
    _refused(lambda: codec.moment({"t": "2026-01-01T00:00:00"}, "t", "event"),
             "event.t: has no UTC offset: '2026-01-01T00:00:00'")
    _refused(lambda: codec.items(data, "s", "event"), "event.s: must be a list, not str")
    _refused(lambda: codec.transaction_from_dict(None), "transaction: must be an object, not "
             "NoneType")
    _refused(lambda: codec.pool_from_dict({"id": "p"}), "pool.manager_id: is missing")
    _refused(lambda: codec.investor_from_dict({"id": "i", "name": "", "email": 5}),
             "investor.email: must be a string, not int")
