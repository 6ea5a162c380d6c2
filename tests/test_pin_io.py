"""The input row's definition pinned to literal values: columns, values, and every message.

Every expected value and message is written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.errors import RowError, ValidationError
from auptimate_core.io.schema import (
    ALIASES,
    BRIEF_HEADER,
    LIBRARY_HEADER,
    REQUIRED,
    RejectedRow,
    column_map,
    describe,
    field_of,
    parse_amount,
    parse_id,
    parse_kind,
    parse_timestamp,
    to_transaction,
    transaction_from,
)

D = Decimal
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def test_headers_and_aliases() -> None:
    assert LIBRARY_HEADER == ("id", "investor_id", "pool_id", "amount", "timestamp", "kind")
    assert BRIEF_HEADER == ("investor_id", "syndicate_id", "transaction_amount",
                            "transaction_date")
    assert REQUIRED == ("investor_id", "pool_id", "amount", "timestamp")
    assert dict(ALIASES) == {
        "id": "id", "transaction_id": "id", "investor_id": "investor_id",
        "pool_id": "pool_id", "syndicate_id": "pool_id", "amount": "amount",
        "transaction_amount": "amount", "timestamp": "timestamp",
        "transaction_date": "timestamp", "kind": "kind", "transaction_type": "kind"}
    assert field_of(" Syndicate_ID ") == "pool_id"
    assert field_of("note") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("1e3", "1E+3"), (" +.5 ", "0.5"), ("-1.", "-1"), ("250.50", "250.50"), (7, "7"),
    (D("2.50"), "2.50"), ("0", "0"),
])
def test_amounts_read_exactly(value: object, expected: str) -> None:
    assert str(parse_amount(value)) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("", "is empty"), (" ", "is empty"),
    ("1,000", "'1,000' is not a plain decimal number"),
    ("1_000", "'1_000' is not a plain decimal number"),
    ("NaN", "'NaN' is not a plain decimal number"),
    ("inf", "'inf' is not a plain decimal number"),
    ("\u0661", "'\u0661' is not a plain decimal number"),
    (True, "True is not a number"),
    (1.5, "must be a number or text, not a number"),
    (None, "must be a number or text, not null"),
    ([1], "must be a number or text, not an array"),
])
def test_amounts_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_amount(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01", MARCH),
    (" 2026-03-01T09:30Z ", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
    ("2026-03-01 09:30:00.123456+02:00",
     datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))),
    ("1969-12-31T23:59:59Z", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_timestamps_read(value: str, expected: datetime) -> None:
    moment = parse_timestamp(value)
    assert moment == expected
    assert moment.utcoffset() == expected.utcoffset()


ISO_HINT = "is not an ISO 8601 date or time (write 2026-03-01 or 2026-03-01T09:30:00+00:00)"


@pytest.mark.parametrize(("value", "message"), [
    ("", "is empty"),
    (5, "must be text, not a number"),
    ("20260301", f"'20260301' {ISO_HINT}"),
    ("2026-W09", f"'2026-W09' {ISO_HINT}"),
    ("2026-03-01T09Z", f"'2026-03-01T09Z' {ISO_HINT}"),
    ("2026-03-01T09:30:00.1234567Z", f"'2026-03-01T09:30:00.1234567Z' {ISO_HINT}"),
    ("2026-02-30", "'2026-02-30' is not a valid date or time (day is out of range for month)"),
    ("2026-03-01T09:30", "'2026-03-01T09:30' has no UTC offset; add one (e.g. +00:00) or "
                         "choose a time zone to assume (--timezone / assume_tz)"),
])
def test_timestamps_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_timestamp(value)
    assert str(caught.value) == message


def test_a_time_zone_to_assume() -> None:
    five_behind = timezone(timedelta(hours=-5))
    assert parse_timestamp("2026-03-01T09:30", five_behind) == datetime(
        2026, 3, 1, 14, 30, tzinfo=UTC)
    # An offset written in the text wins over the one assumed; a date stays midnight UTC.
    assert parse_timestamp("2026-03-01T09:30+01:00", five_behind).utcoffset() == timedelta(
        hours=1)
    assert parse_timestamp("2026-03-01", five_behind) == MARCH


def test_ids_kinds_and_descriptions() -> None:
    assert parse_id(" a ") == "a"
    assert parse_id(12) == "12"
    for value, message in [(True, "must be text, not a boolean"),
                           (1.5, "must be text, not a number"), (None, "must be text, not null")]:
        with pytest.raises(ValueError) as caught:
            parse_id(value)
        assert str(caught.value) == message
    assert parse_kind("") == "investment"
    assert parse_kind(" fee ") == "fee"
    assert [describe(v) for v in (None, True, 1, 1.0, D(1), "x", {}, [], (), object())] == [
        "null", "a boolean", "a number", "a number", "a number", "text", "an object",
        "an array", "an array", "object"]


def test_column_maps() -> None:
    brief = column_map(["transaction_id", "investor_id", "syndicate_id", "transaction_amount",
                        "transaction_date", "transaction_type", "note"])
    assert dict(brief.positions) == {"id": 0, "investor_id": 1, "pool_id": 2, "amount": 3,
                                     "timestamp": 4, "kind": 5}
    assert brief.style == "brief"
    library = column_map(["a", "investor_id", "pool_id", "amount", "timestamp"])
    assert library.style == "library"
    assert library.pick(["x", "i", "p", "1", "2026-03-01"]) == {
        "investor_id": "i", "pool_id": "p", "amount": "1", "timestamp": "2026-03-01"}
    with pytest.raises(RowError) as caught:
        column_map(["investor_id", "pool_id", "amount"], line=3)
    assert str(caught.value) == (
        "line 3: timestamp: missing column (expected id, investor_id, pool_id, amount, "
        "timestamp, kind or investor_id, syndicate_id, transaction_amount, transaction_date)")
    assert (caught.value.line, caught.value.field, caught.value.raw) == (
        3, "timestamp", "investor_id,pool_id,amount")
    with pytest.raises(RowError) as caught:
        column_map(["Investor_ID ", "POOL_ID", "amount", "timestamp", "Amount"])
    assert str(caught.value) == "line 1: amount: named twice, by 'amount' and 'Amount'"


RECORD = {"investor_id": "i", "pool_id": "p", "amount": "1", "timestamp": "2026-03-01"}


def test_transactions_from_records() -> None:
    assert transaction_from(RECORD, default_id="r9") == Transaction("r9", "i", "p", D(1), MARCH)
    assert transaction_from({**RECORD, "id": 5, "kind": " "}) == Transaction(
        "5", "i", "p", D(1), MARCH)
    for record, text in [
        (RECORD, "id: missing"),
        ({**RECORD, "id": "a", "amount": "x"}, "amount: 'x' is not a plain decimal number"),
        ({**RECORD, "id": ""}, "id: must not be empty"),
        ({**RECORD, "id": "a", "kind": "gift"},
         "kind: must be one of ['carry', 'distribution', 'fee', 'investment', 'refund'], "
         "not 'gift'"),
        ({**RECORD, "id": "a", "investor_id": None}, "investor_id: must be text, not null"),
        ({**RECORD, "id": "a", "pool_id": 1.5}, "pool_id: must be text, not a number"),
        ({**RECORD, "id": "a", "timestamp": 0}, "timestamp: must be text, not a number"),
        ({**RECORD, "id": "a", "kind": 3}, "kind: must be text, not a number"),
    ]:
        with pytest.raises(ValidationError) as caught:
            transaction_from(record)
        assert str(caught.value) == text


def test_rows_name_their_line_and_field() -> None:
    assert to_transaction({**RECORD, "kind": ""}, line=7, row=6) == Transaction(
        "6", "i", "p", D(1), MARCH)
    with pytest.raises(RowError) as caught:
        to_transaction({**RECORD, "amount": "1,0"}, line=7, row=6, raw="i,p,1,0")
    error = caught.value
    assert str(error) == "line 7: amount: '1,0' is not a plain decimal number"
    assert (error.line, error.field, error.reason, error.raw) == (
        7, "amount", "'1,0' is not a plain decimal number", "i,p,1,0")
    rejected = RejectedRow.from_error(error)
    assert rejected == RejectedRow(7, "amount", "'1,0' is not a plain decimal number", "i,p,1,0")
    assert str(rejected) == "line 7: amount: '1,0' is not a plain decimal number"
    missing = {k: v for k, v in RECORD.items() if k != "timestamp"}
    with pytest.raises(RowError) as caught:
        to_transaction(missing, line=2, row=1)
    assert str(caught.value) == "line 2: timestamp: is missing"
    with pytest.raises(RowError) as caught:
        to_transaction({**RECORD, "timestamp": "2026-03-01T09:30"}, line=2, row=1,
                       assume_tz=None)
    assert caught.value.field == "timestamp"
    assert to_transaction({**RECORD, "timestamp": "2026-03-01T09:30"}, line=2, row=1,
                          assume_tz=UTC).timestamp == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
