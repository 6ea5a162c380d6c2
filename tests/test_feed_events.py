"""Ledger events, positions, totals and changes as JSON: exact round trips (hypothesis), strict
reading of bad input, and the size of an event in a large pool."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auptimate_core import (
    KINDS,
    Change,
    Distributed,
    FeeCharged,
    Invested,
    Investor,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    Pool,
    PoolCreated,
    PoolEvent,
    PoolLedger,
    PoolTotals,
    Position,
    Refunded,
    Transaction,
    ValidationError,
)

D = Decimal

letters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
ids = st.text(letters, min_size=1, max_size=12).filter(lambda s: not s.isspace())
texts = st.text(letters, max_size=12)
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                         timezone(-timedelta(hours=8)), timezone(timedelta(seconds=3601))])
moments = st.datetimes(min_value=datetime(1971, 1, 1), timezones=zones)
numbers = st.decimals(allow_nan=False, allow_infinity=False)
amounts = st.decimals(min_value=D("0.0001"), max_value=D(10**12), places=4)
transactions = st.builds(Transaction, ids, ids, ids, amounts, moments,
                         st.sampled_from(sorted(KINDS)))
positions = st.builds(Position, ids, ids, numbers, numbers, numbers, numbers, numbers)
totals = st.builds(PoolTotals, ids, st.from_regex(r"[A-Z]{3}", fullmatch=True), numbers,
                   numbers, numbers, numbers, numbers)
investors = st.builds(Investor, ids, texts, st.none() | st.just("someone@example.com"))
pools = st.builds(Pool, ids, ids, texts, st.sampled_from(["USD", "EUR", "JPY"]))

common: dict[str, Any] = {"actor": st.none() | ids,
                          "transactions": st.lists(transactions, max_size=3).map(tuple)}
of_pool: dict[str, Any] = {**common, "pool_id": ids, "seq": st.integers(1, 2**40),
                           "totals": totals,
                           "positions": st.lists(positions, max_size=3).map(tuple)}
events = st.one_of(
    st.builds(InvestorRegistered, **common, investor=investors),
    st.builds(PoolCreated, **of_pool, pool=pools),
    st.builds(InvestorAdmitted, **of_pool, investor_id=ids),
    st.builds(Invested, **of_pool, transaction=transactions),
    st.builds(Refunded, **of_pool, transaction=transactions),
    st.builds(FeeCharged, **of_pool, total=numbers),
    st.builds(Distributed, **of_pool, total=numbers, carry=st.none() | numbers,
              carry_amount=numbers),
)
changes = st.builds(Change, events, moments,
                    st.from_regex(r"c1\.[0-9a-f]{16}\.[0-9a-f]{1,16}", fullmatch=True))


def _through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


@given(positions)
def test_a_position_round_trips(position: Position) -> None:
    again = Position.from_dict(_through_json(position.to_dict()))
    assert again == position and again.to_dict() == position.to_dict()


@given(totals)
def test_pool_totals_round_trip(pool_totals: PoolTotals) -> None:
    again = PoolTotals.from_dict(_through_json(pool_totals.to_dict()))
    assert again == pool_totals and again.to_dict() == pool_totals.to_dict()


@given(events)
def test_every_event_round_trips(event: LedgerEvent) -> None:
    data = event.to_dict()
    assert data["type"] == type(event).__name__
    again = LedgerEvent.from_dict(_through_json(data))
    assert type(again) is type(event) and again == event
    # Exactly, not just equal: 1.0 and 1.00 are equal Decimals but not the same text.
    assert again.to_dict() == data
    assert type(event).from_dict(data) == event


@given(changes)
def test_a_change_round_trips(change: Change) -> None:
    data = change.to_dict()
    again = Change.from_dict(_through_json(data))
    assert again == change and again.to_dict() == data


def test_money_and_time_are_text() -> None:
    tx = Transaction("p:3", "ann", "p", D("100.00"), datetime(2026, 3, 1, 9, tzinfo=UTC))
    event = Invested(actor="ann", transactions=(tx,), pool_id="p", seq=3,
                     totals=PoolTotals("p", "USD", D("100.00"), D(0), D(0), D(0), D(0)),
                     positions=(Position("p", "ann", D("100.00"), D(0), D(1)),), transaction=tx)
    data = event.to_dict()
    assert data["transaction"] == {"id": "p:3", "investor_id": "ann", "pool_id": "p",
                                   "amount": "100.00", "timestamp": "2026-03-01T09:00:00+00:00",
                                   "kind": "investment"}
    assert data["totals"]["invested"] == "100.00" and data["positions"][0]["share"] == "1"


@pytest.mark.parametrize(("data", "field"), [
    ({"type": "Nope"}, "event.type"),
    ({"type": "PoolEvent"}, "event.type"),
    ({}, "event.type"),
    ([], "event"),
    ({"type": "InvestorAdmitted", "actor": "m", "transactions": [], "pool_id": "p",
      "seq": "3", "totals": {}, "positions": [], "investor_id": "a"}, "event.seq"),
    ({"type": "InvestorAdmitted", "actor": "m", "transactions": [], "pool_id": "p",
      "seq": 3, "positions": [], "investor_id": "a"}, "event.totals"),
    ({"type": "FeeCharged", "actor": "m", "transactions": [], "pool_id": "p", "seq": 3,
      "positions": [], "total": 8.5,
      "totals": {"pool_id": "p", "currency": "USD", "invested": "1", "refunded": "0",
                 "fees": "0", "distributed": "0", "carry": "0"}}, "event.total"),
    ({"type": "FeeCharged", "actor": "m", "transactions": [], "pool_id": "p", "seq": 3,
      "positions": [], "total": "8.5",
      "totals": {"pool_id": "p", "currency": "USD", "invested": "x", "refunded": "0",
                 "fees": "0", "distributed": "0", "carry": "0"}}, "event.totals.invested"),
])
def test_bad_input_is_refused_by_name(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LedgerEvent.from_dict(data)
    assert caught.value.field == field


def test_an_event_read_as_another_class_is_refused() -> None:
    event = InvestorRegistered(actor=None, investor=Investor("a"))
    with pytest.raises(ValidationError, match="not a kind of PoolEvent"):
        PoolEvent.from_dict(event.to_dict())
    with pytest.raises(ValidationError, match="change.at"):
        Change.from_dict({"event": event.to_dict(), "at": "yesterday", "cursor": "c"})
    with pytest.raises(ValidationError, match="change.at"):
        Change.from_dict({"event": event.to_dict(), "at": "2026-01-01T00:00:00",
                          "cursor": "c"})


def test_an_investment_into_a_pool_of_a_thousand_is_small() -> None:
    ledger = PoolLedger()
    ledger.create_pool(Pool("big", "m"), actor="m")
    for n in range(1000):
        ledger.register_investor(Investor(f"investor-{n:04}"))
        ledger.admit("big", f"investor-{n:04}", actor="m")
        ledger.invest("big", f"investor-{n:04}", D(1000 + n), actor=f"investor-{n:04}",
                      idempotency_key=f"first-{n}")
    seen: list[LedgerEvent] = []
    ledger.subscribe(seen.append)
    ledger.invest("big", "investor-0500", D("123456.78"), actor="investor-0500",
                  idempotency_key="big-one")
    change = ledger.changes(after=ledger.changes(limit=10_000)[-2].cursor)[0]
    assert change.event == seen[0]
    size = len(json.dumps(change.to_dict()).encode())
    assert size < 2048, size
    event = change.event
    assert isinstance(event, Invested)
    assert [p.investor_id for p in event.positions] == ["investor-0500"]
    assert event.totals == ledger.pool_totals("big")
