"""The engine's decision code pinned to literal values: rule slots, shared intervals, and the
test of which rows hold, on plain lists and on numpy columns (with its overflow guard)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, AmountSpikeRule, SpikeRule
from auptimate_core.alerts.decisions import _INT64, RuleSlot, WindowDecisions, _holding
from auptimate_core.backends.columnar import ColumnarWindowStore
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.store import Interval, LifecycleState

MINUTE, HOUR = 60_000_000, 3_600_000_000


class _Odd:
    """A window rule without ``linear``: it holds where its first value is odd."""

    name = "odd"
    kind = "odd"
    measure = "count"
    intervals = (Interval(0, MINUTE), Interval(MINUTE, HOUR))

    def holds(self, *values: int) -> bool:
        return values[0] % 2 == 1

    def may_fire(self, at: int, first_seen: int | None, state: LifecycleState) -> bool:
        return True

    def alert(self, *args: object) -> object:
        raise AssertionError("not called here")


def test_intervals_are_shared_and_slots_know_their_columns() -> None:
    decisions = WindowDecisions([SpikeRule(), AmountSpikeRule(),
                                 SpikeRule(window=timedelta(seconds=90), name="s2")])
    assert decisions.intervals == (Interval(0, MINUTE), Interval(MINUTE, HOUR),
                                   Interval(0, 90_000_000), Interval(90_000_000, HOUR))
    assert [slot.columns for slot in decisions.slots] == [(0, 1), (0, 1), (2, 3)]
    assert [slot.uses_totals for slot in decisions.slots] == [False, True, False]
    assert decisions.totals is True
    assert WindowDecisions([SpikeRule()]).totals is False
    assert [slot.linear for slot in decisions.slots] == [
        (5, HOUR, 600_000_000), (1_000_000_000, HOUR, 600_000_000), (5, HOUR, 900_000_000)]
    assert WindowDecisions([SpikeRule(significance=0.01)]).slots[0].linear is None
    assert WindowDecisions([_Odd()]).slots[0].linear is None  # type: ignore[list-item]


def test_a_slot_holds_as_its_rule() -> None:
    spike = RuleSlot(SpikeRule(), (0, 1))
    assert [spike.holds(v) for v in [(5, 0), (4, 0), (5, 30), (5, 31)]] == [
        True, False, True, False]
    # Not a pair of columns: no inline test, the rule decides.
    assert RuleSlot(SpikeRule(), (0,)).linear is None
    odd = RuleSlot(_Odd(), (0, 1))  # type: ignore[arg-type]
    assert [odd.holds(v) for v in [(1, 99), (2, 0)]] == [True, False]


@pytest.mark.parametrize("size", [1, 63, 64, 200])
def test_holding_rows_on_lists_and_numpy(size: int) -> None:
    slot = RuleSlot(SpikeRule(), (0, 1))  # holds when recent >= 5 and recent * 6 >= base
    recent = [i % 7 for i in range(size)]
    base = [(i * 13) % 400 for i in range(size)]
    expected = [i for i in range(size) if recent[i] >= 5 and recent[i] * 6 >= base[i]]
    assert _holding(slot, (recent, base)) == expected
    odd = RuleSlot(_Odd(), (0, 1))  # type: ignore[arg-type]
    assert _holding(odd, (recent, base)) == [i for i in range(size) if recent[i] % 2 == 1]


def test_holding_falls_back_to_python_ints_past_int64() -> None:
    assert _INT64 == 2**62
    slot = RuleSlot(AmountSpikeRule(), (0, 1))  # recent * 3600e6 >= base * 600e6
    # recent * 3600e6 is past 2**63: in int64 it would wrap below zero and fail ">= 0".
    recent = [(3 * 2**62) // HOUR] * 64
    assert _holding(slot, (recent, [0] * 64)) == list(range(64))
    big = 2**62 // HOUR  # the largest recent whose product stays under the guard
    for value in (big, big + 1):
        base = [6 * value] * 63 + [6 * value + 1]
        assert _holding(slot, ([value] * 64, base)) == list(range(63))


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_batch_with_the_largest_amount_decides_as_one_at_a_time() -> None:
    txs = [Transaction(f"t{i}", "i", "p", Decimal(10**15) if i == 0 else Decimal(1),
                       T0 + timedelta(seconds=i)) for i in range(70)]
    one = AlertEngine([AmountSpikeRule()], store=MemoryWindowStore())
    alone = [(a.state, a.transaction_id) for tx in txs for a in one.process(tx)]
    assert alone == [("firing", "t0"), ("resolved", "t60")]
    many = AlertEngine([AmountSpikeRule()], store=MemoryWindowStore())
    assert [(a.state, a.transaction_id) for a in many.process_many(txs)] == alone


def test_rows_of_the_active_pools_on_plain_and_coded_keys() -> None:
    import numpy as np

    from auptimate_core.columns import CodedText

    decisions = WindowDecisions([SpikeRule()])
    assert decisions._rows_of(["p", "q", "p", "r"], {"p", "r"}) == [0, 2, 3]
    coded = CodedText(np.array([0, 1, 0, 2]), ("p", "q", "r"))
    assert decisions._rows_of(coded, {"p", "r"}) == [0, 2, 3]
    assert decisions._rows_of(coded, {"q"}) == [1]  # the same table again: its places kept
    assert decisions._rows_of(coded, {"zed"}) == []
    other = CodedText(np.array([1, 1, 0]), ("r", "p"))  # a new table: places found again
    assert decisions._rows_of(other, {"p"}) == [0, 1]
    assert decisions._rows_of(other, {"r"}) == [2]


def test_one_transaction_at_a_time_on_a_store_without_the_event_path() -> None:
    from tests.naive_store import NaiveWindowStore

    rule = SpikeRule(window=timedelta(seconds=90), baseline=timedelta(hours=1), factor=2,
                     min_count=4)
    engine = AlertEngine([rule], store=NaiveWindowStore())
    seconds = [-3000, -2000, -1000, -500, 0, 30, 60, 80, 150]
    out = [a for i, s in enumerate(seconds)
           for a in engine.process(Transaction(f"t{i + 1}", f"inv{i + 1}", "p1", Decimal(1),
                                               T0 + timedelta(seconds=s)))]
    assert [(a.state, a.transaction_id, a.message) for a in out] == [
        ("firing", "t8", "spike in pool p1: 4 transactions in the last 90s against 0.1 "
                         "expected from 4 in the 1h before"),
        ("resolved", "t9", "spike over in pool p1: 2 transactions in the last 90s against "
                           "0.175 expected from 7 in the 1h before")]


def test_a_batch_fires_when_the_ratio_holds_not_before() -> None:
    # A steady hour (one a minute) then a burst of one a second: with factor 10 the burst
    # fires at its tenth transaction, though min_count (2) is reached at its second.
    rule = SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                     min_count=2)
    steady = [Transaction(f"s{j}", "i", "p", Decimal(1), T0 - timedelta(seconds=60 * j))
              for j in range(60, 0, -1)]
    burst = [Transaction(f"b{k}", "i", "p", Decimal(1), T0 + timedelta(seconds=k))
             for k in range(1, 13)]
    for engine in (AlertEngine([rule], store=MemoryWindowStore()),
                   AlertEngine([rule], store=ColumnarWindowStore())):
        alerts = engine.process_many(steady + burst)
        assert [(a.state, a.transaction_id, a.message) for a in alerts] == [
            ("firing", "b10", "spike in pool p: 10 transactions in the last 1m against 1 "
                              "expected from 60 in the 1h before")]
