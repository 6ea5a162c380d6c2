"""Readers and writers: every valid transaction round-trips; every bad row is reported."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core import RowError, Transaction
from auptimate_core.io.readers import read_transactions
from auptimate_core.io.schema import RejectedRow
from auptimate_core.io.writers import write_csv, write_jsonl

ids = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s.strip())
amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e12"), places=4,
                      allow_nan=False, allow_infinity=False)
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                         timezone(timedelta(hours=-8))])
moments = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)), zones,
)
transactions = st.builds(
    Transaction, ids, ids, ids, amounts, moments,
    st.sampled_from(["investment", "distribution", "fee", "refund", "carry"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(transactions, max_size=20), st.sampled_from(["csv", "jsonl"]))
def test_every_valid_transaction_round_trips(txs: list[Transaction], fmt: str) -> None:
    buffer = io.StringIO()
    (write_csv if fmt == "csv" else write_jsonl)(txs, buffer)
    buffer.seek(0)
    back = list(read_transactions(buffer, format=fmt))  # type: ignore[arg-type]
    assert back == txs
    assert [tx.timestamp.utcoffset() for tx in back] == [tx.timestamp.utcoffset() for tx in txs]


BAD_VALUES = {
    "amount": ["", "abc", "NaN", "inf", "-5", "0", "1,000", "1e", "0x10", "12.3.4"],
    "timestamp": ["", "yesterday", "2026-13-01", "2026-03-01T10:00:00", "1700000000"],
    "investor_id": ["", "   "],
    "pool_id": ["", " "],
    "kind": ["withdrawal", "INVESTMENT"],
}


@st.composite
def messy_files(draw: st.DrawFn) -> tuple[str, list[tuple[int, str]], int]:
    """A CSV file mixing good rows and rows with one bad field: (text, [(line, field)], good)."""
    n = draw(st.integers(1, 25))
    lines = ["id,investor_id,pool_id,amount,timestamp,kind"]
    bad: list[tuple[int, str]] = []
    good = 0
    for i in range(n):
        row = {"id": f"t{i}", "investor_id": "ann", "pool_id": "p", "amount": "10.5",
               "timestamp": "2026-03-01T10:00:00+00:00", "kind": "investment"}
        field = draw(st.sampled_from([None, None, *BAD_VALUES]))
        if field is not None:
            row[field] = draw(st.sampled_from(BAD_VALUES[field]))
            bad.append((len(lines) + 1, field))
        else:
            good += 1
        lines.append(",".join(f'"{v}"' if "," in v else v for v in row.values()))
    if draw(st.booleans()):
        lines.append("t-extra,ann,p")
        bad.append((len(lines), "row"))
    return "\n".join(lines) + "\n", bad, good


@settings(max_examples=80, deadline=None)
@given(messy_files())
def test_malformed_rows_are_all_reported_with_their_line(
    case: tuple[str, list[tuple[int, str]], int],
) -> None:
    text, bad, good = case
    rejected: list[RejectedRow] = []
    read = list(read_transactions(io.StringIO(text), skip_invalid=True,
                                  on_reject=rejected.append))
    assert len(read) == good
    assert [(r.line, r.field) for r in rejected] == bad
    assert len(read) + len(rejected) == text.count("\n") - 1  # nothing lost
    if bad:
        with pytest.raises(RowError) as info:
            list(read_transactions(io.StringIO(text)))
        assert (info.value.line, info.value.field) == bad[0]


def test_brief_header_uses_row_numbers_and_midnight_utc() -> None:
    text = ("investor_id,syndicate_id,transaction_amount,transaction_date\n"
            "ann,fund-a,100.00,2023-01-15\n\nbob,fund-b,20,2023-01-16 09:30:00+01:00\n")
    txs = list(read_transactions(io.StringIO(text)))
    assert [tx.id for tx in txs] == ["1", "2"]
    assert txs[0].pool_id == "fund-a" and txs[0].amount == Decimal("100.00")
    assert txs[0].timestamp == datetime(2023, 1, 15, tzinfo=UTC)
    assert txs[1].timestamp == datetime(2023, 1, 16, 8, 30, tzinfo=UTC)


def test_naive_datetimes_need_a_time_zone() -> None:
    text = "investor_id,pool_id,amount,timestamp\nann,p,1,2026-03-01 10:00:00\n"
    with pytest.raises(RowError, match="line 2: timestamp: .*no UTC offset"):
        list(read_transactions(io.StringIO(text)))
    (tx,) = read_transactions(io.StringIO(text), assume_tz=UTC)
    assert tx.timestamp == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_missing_column_is_named() -> None:
    with pytest.raises(RowError, match="line 1: amount: missing column"):
        list(read_transactions(io.StringIO("investor_id,pool_id,timestamp\n")))


def test_jsonl_numbers_are_exact_and_errors_are_lined() -> None:
    lines = [
        json.dumps({"id": "a", "investor_id": "i", "pool_id": "p", "amount": "0.1",
                    "timestamp": "2026-03-01T00:00:00Z"}),
        '{"id": "b", "investor_id": "i", "pool_id": "p", "amount": 0.1, '
        '"timestamp": "2026-03-01T00:00:00Z"}',
        "not json",
        "[1, 2]",
        json.dumps({"investor_id": "i", "syndicate_id": "p", "transaction_amount": 5,
                    "transaction_date": "2026-03-02"}),
    ]
    rejected: list[RejectedRow] = []
    txs = list(read_transactions(io.StringIO("\n".join(lines) + "\n"), format="jsonl",
                                 skip_invalid=True, on_reject=rejected.append))
    assert [tx.amount for tx in txs] == [Decimal("0.1"), Decimal("0.1"), Decimal(5)]
    assert txs[2].id == "5"
    assert [(r.line, r.field) for r in rejected] == [(3, "row"), (4, "row")]


def test_skip_invalid_without_a_place_for_rejects_is_refused() -> None:
    with pytest.raises(ValueError, match="on_reject"):
        list(read_transactions(io.StringIO(""), skip_invalid=True))


def test_reads_a_path_and_detects_jsonl(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "x.ndjson"  # type: ignore[operator]
    path.write_text('{"id": "a", "investor_id": "i", "pool_id": "p", "amount": "1", '
                    '"timestamp": "2026-03-01"}\n')
    assert [tx.id for tx in read_transactions(path)] == ["a"]
