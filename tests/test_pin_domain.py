"""The domain's validation pinned to literal values: every bound and every message.

Every expected message is written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

import pytest

from auptimate_core import Investor, Pool, Transaction
from auptimate_core.domain import (
    EPOCH,
    KINDS,
    check_amount,
    check_id,
    check_text,
    check_timestamp,
    from_micros,
    to_micros,
)
from auptimate_core.errors import ValidationError

T = datetime(2026, 1, 1, tzinfo=UTC)


def _tx(**changes: Any) -> Transaction:
    fields: dict[str, Any] = {"id": "t", "investor_id": "i", "pool_id": "p",
                              "amount": Decimal(1), "timestamp": T, "kind": "investment"}
    fields.update(changes)
    return Transaction(**fields)


@pytest.mark.parametrize(("changes", "message"), [
    ({"amount": 1.5}, "amount: must be a Decimal or an int, not float"),
    ({"amount": "1"}, "amount: must be a Decimal or an int, not str"),
    ({"amount": True}, "amount: must be a Decimal or an int, not bool"),
    ({"amount": Decimal("NaN")}, "amount: must be finite, not NaN"),
    ({"amount": Decimal("-Infinity")}, "amount: must be finite, not -Infinity"),
    ({"amount": Decimal(0)}, "amount: must be greater than zero, not 0"),
    ({"amount": 0}, "amount: must be greater than zero, not 0"),
    ({"amount": Decimal("-0.01")}, "amount: must be greater than zero, not -0.01"),
    ({"amount": Decimal("1000000000000000.0001")},
     "amount: must be at most 1,000,000,000,000,000 (the documented maximum), "
     "not 1000000000000000.0001"),
    ({"amount": Decimal("1E+308")},
     "amount: must be at most 1,000,000,000,000,000 (the documented maximum), not 1E+308"),
    ({"timestamp": datetime(2026, 1, 1)},
     "timestamp: must be timezone-aware (naive datetimes are ambiguous)"),
    ({"timestamp": "2026-01-01"}, "timestamp: must be a datetime, not str"),
    ({"kind": "gift"},
     "kind: must be one of ['carry', 'distribution', 'fee', 'investment', 'refund'], "
     "not 'gift'"),
    ({"kind": ""}, "kind: must be one of ['carry', 'distribution', 'fee', 'investment', "
                   "'refund'], not ''"),
    ({"id": ""}, "id: must not be empty"),
    ({"id": " \t"}, "id: must not be empty"),
    ({"id": 5}, "id: must be a string, not int"),
    ({"id": "a\x00"}, "id: must not contain a NUL character"),
    ({"id": "\u00e9\x00"}, "id: must not contain a NUL character"),
    ({"id": "a\ud800"}, "id: must be valid Unicode text, not 'a\\ud800' (it holds a lone "
                        "surrogate)"),
    ({"investor_id": ""}, "investor_id: must not be empty"),
    ({"pool_id": None}, "pool_id: must be a string, not NoneType"),
])
def test_transaction_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _tx(**changes)
    assert str(caught.value) == message


def test_transaction_bounds_that_pass() -> None:
    assert _tx(amount=Decimal("1E+15")).amount == Decimal("1000000000000000")
    assert _tx(amount=Decimal("0.0001")).amount == Decimal("0.0001")
    assert type(_tx(amount=7).amount) is Decimal
    assert str(_tx(amount=7).amount) == "7"
    assert _tx(id="\u00e9").id == "\u00e9"
    assert [_tx(kind=k).kind for k in sorted(KINDS)] == [
        "carry", "distribution", "fee", "investment", "refund"]
    assert _tx(timestamp=datetime(1969, 12, 31, tzinfo=UTC)).timestamp.year == 1969
    assert check_amount(7) == Decimal(7)
    assert check_id("x", "ok") == "ok"
    assert check_text("name", "Ada \u00e9") == "Ada \u00e9"
    assert check_text("name", "") == ""
    moment = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3)))
    assert check_timestamp(moment) is moment


class _NoOffset(tzinfo):
    """A time zone that does not know its offset: an aware-looking but naive time."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


def test_a_time_zone_without_an_offset_is_naive() -> None:
    with pytest.raises(ValidationError) as caught:
        _tx(timestamp=datetime(2026, 1, 1, tzinfo=_NoOffset()))
    assert str(caught.value) == "timestamp: must be timezone-aware (naive datetimes are ambiguous)"


def test_event_times_in_microseconds_around_1970() -> None:
    assert EPOCH.isoformat() == "1970-01-01T00:00:00+00:00"
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    assert to_micros(datetime(1900, 1, 1, tzinfo=UTC)) == -2_208_988_800_000_000
    assert to_micros(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0
    assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_micros(1_767_225_600_000_000) == T


@pytest.mark.parametrize(("changes", "message"), [
    ({"currency": "usd"}, "currency: must be a three-letter ISO 4217 code, not 'usd'"),
    ({"currency": "US"}, "currency: must be a three-letter ISO 4217 code, not 'US'"),
    ({"currency": "USDX"}, "currency: must be a three-letter ISO 4217 code, not 'USDX'"),
    ({"currency": 5}, "currency: must be a three-letter ISO 4217 code, not 5"),
    ({"name": "a\x00"}, "name: must not contain a NUL character"),
    ({"id": ""}, "id: must not be empty"),
    ({"manager_id": ""}, "manager_id: must not be empty"),
])
def test_pool_refusals(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"id": "p", "manager_id": "m"}
    fields.update(changes)
    with pytest.raises(ValidationError) as caught:
        Pool(**fields)
    assert str(caught.value) == message


@pytest.mark.parametrize(("changes", "message"), [
    ({"email": "x"}, "email: must be an e-mail address or None"),
    ({"email": 5}, "email: must be an e-mail address or None"),
    ({"email": "a@b\x00"}, "email: must not contain a NUL character"),
    ({"name": "\ud800"}, "name: must be valid Unicode text (it holds a lone surrogate)"),
    ({"name": 5}, "name: must be a string, not int"),
])
def test_investor_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Investor("i", **changes)
    assert str(caught.value) == message


def test_defaults_and_reprs() -> None:
    assert Pool("p", "m") == Pool("p", "m", "", "USD")
    assert repr(Pool("p", "m", "Fund", "EUR")) == (
        "Pool(id='p', manager_id='m', name='Fund', currency='EUR')")
    assert repr(Investor("i")) == "Investor(id='i', name='', email=None)"
    assert repr(Investor("i", "Ada", "ada@example.com")) == (
        "Investor(id='i', name='<redacted>', email='<redacted>')")
    assert str(Investor("i", "Ada")) == "Investor(id='i', name='<redacted>', email=None)"
    assert _tx().kind == "investment"
    assert repr(_tx(amount=Decimal("2.50"))) == (
        "Transaction(id='t', investor_id='i', pool_id='p', amount=Decimal('2.50'), "
        "timestamp=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), "
        "kind='investment')")
