"""What a batch writes, as text: events, positions and totals encoded straight to JSON
(``to_json``) give exactly the text of ``json.dumps`` over their ``to_dict``; the rows a
PostgreSQL write passes as JSON arrays decode to the rows' values in the columns' order;
stored units read back as the amounts they were (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from auptimate_core import LedgerEvent, Pool, PoolTotals, Position
from auptimate_core.backends.sql import rows
from auptimate_core.backends.sql.statements import ENTRY_COLUMNS, HELD_COLUMNS, RECEIPT_COLUMNS
from auptimate_core.domain import to_micros
from auptimate_core.money import minor_unit
from auptimate_core.pools.audit import AuditChain
from auptimate_core.pools.position import Amounts
from auptimate_core.pools.repository import PoolRecord, Receipt
from auptimate_core.store import from_units, to_units
from tests.test_feed_events import events, ids, positions, totals

D = Decimal


def _dumped(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@given(events)
def test_an_event_as_json_is_its_dict_dumped(event: LedgerEvent) -> None:
    assert event.to_json() == _dumped(event.to_dict())
    assert LedgerEvent.from_dict(json.loads(event.to_json())) == event


@given(positions, totals)
def test_positions_and_totals_as_json_are_their_dicts_dumped(position: Position,
                                                             pool_totals: PoolTotals) -> None:
    assert position.to_json() == _dumped(position.to_dict())
    assert pool_totals.to_json() == _dumped(pool_totals.to_dict())


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from(["USD", "JPY", "KWD", "EUR", None]))
def test_stored_units_read_back_exactly(units: int, currency: str | None) -> None:
    value = from_units(units)
    if currency is not None and value.quantize(minor_unit(currency)) == value:
        value = value.quantize(minor_unit(currency))
    found = rows.amount_of(units, currency)
    assert found == value and str(found) == str(value)


def test_a_members_missing_carry_is_zero_at_the_minor_unit() -> None:
    held = rows.held_of([250_000, 0, 0, 10_000], "USD")
    assert str(held.invested) == "25.00" and str(held.carry) == "0.00"
    assert str(rows.held_of([10_000, 0, 0, 0], "JPY").invested) == "1"


# Amounts with more decimals than the stored units too: rounded as to_units rounds them.
amounts = st.decimals(min_value=D("0.000001"), max_value=D(10**9), places=6)


@given(st.lists(st.tuples(ids, ids, amounts), min_size=2, max_size=4))
def test_the_rows_of_a_postgresql_write_decode_to_their_values(
        writes: list[tuple[str, str, Decimal]]) -> None:
    chain, at = AuditChain(), datetime(2026, 1, 1, tzinfo=UTC)
    entries, holdings, receipts, prev = [], {}, [], "0" * 64
    for seq, (investor, actor, amount) in enumerate(writes, start=2):
        entry = chain.seal("p", seq, "investment", investor, amount,
                           at + timedelta(microseconds=seq), actor, "", prev)
        entries.append(entry)
        prev = entry.hash
        holdings[investor] = Amounts(invested=amount)
        receipts.append(Receipt(f"key-{actor}", "f" * 64, "invest", "p", seq, 1))
    record = PoolRecord(Pool("p", "m"), 1 + len(writes), prev, Amounts())
    params = rows.append_params(record, entries, holdings, receipts, chain)
    assert json.loads(params["e_rows"]) == [
        [e.seq, e.kind, e.investor_id, to_units(e.amount), to_micros(e.at), e.actor, e.detail,
         e.prev_hash, e.hash] for e in entries]
    assert json.loads(params["m_rows"]) == [[i, to_units(held.invested), 0, 0, 0]
                                            for i, held in sorted(holdings.items())]
    marks = rows.receipt_marks(chain, receipts, entries)
    assert json.loads(params["r_rows"]) == [
        [r.key, r.fingerprint, r.action, r.first_seq, r.count, m]
        for r, m in zip(receipts, marks)]
    assert len(ENTRY_COLUMNS) == 9 and len(HELD_COLUMNS) == 5 and len(RECEIPT_COLUMNS) == 6


@given(st.lists(events, min_size=2, max_size=5))
def test_a_batchs_changes_split_back_into_its_events(found: list[LedgerEvent]) -> None:
    params = rows.changes_params(found)
    texts = params["events"].split("\x1e")
    assert [LedgerEvent.from_dict(json.loads(text)) for text in texts] == found
    assert json.loads(params["changes"]) == [
        [type(e).__name__, e.to_dict().get("pool_id")] for e in found]
