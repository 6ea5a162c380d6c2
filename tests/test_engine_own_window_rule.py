"""A window rule of our own on three intervals (not the linear two of the spike rules): its
lifecycle and the values its alerts carry are the same whether the transactions come one at a
time or in batches, and equal to counts made by brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction
from auptimate_core.alerts import Alert, AlertEngine
from auptimate_core.alerts.alert import FIRING, make_alert
from auptimate_core.store import Interval, LifecycleState

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
S = 1_000_000  # a second in microseconds
SPANS = (Interval(0, 10 * S), Interval(10 * S, 20 * S), Interval(30 * S, 30 * S))


class ThreeWindows:
    """Holds when the last 10 s have at least 3 transactions and the 50 s before them none."""

    name = kind = "three"
    intervals = SPANS
    measure = "count"

    def holds(self, *values: int) -> bool:
        recent, before, older = values
        return recent >= 3 and before + older == 0

    def may_fire(self, at: int, first_seen: int | None, state: LifecycleState) -> bool:
        return True

    def alert(self, state: str, pool_id: str, at: datetime, transaction_id: str | None,
              investor_id: str | None, values: tuple[int, ...]) -> Alert:
        return make_alert(self.kind, state, pool_id, at, transaction_id,  # type: ignore[arg-type]
                          Decimal(values[0]), Decimal(3), f"{values}", self.name, investor_id,
                          tuple(zip(("recent", "before", "older"), map(str, values))))


def _counts(txs: list[Transaction], upto: int) -> tuple[int, ...]:
    tx = txs[upto]
    end = tx.timestamp
    mine = [t.timestamp for t in txs[:upto + 1] if t.pool_id == tx.pool_id]
    out = []
    for span in SPANS:
        high = end - timedelta(microseconds=span.offset)
        low = high - timedelta(microseconds=span.length)
        out.append(sum(low < at <= high for at in mine))
    return tuple(out)


@settings(max_examples=60)
@given(gaps=st.lists(st.integers(0, 15), min_size=1, max_size=60),
       pools=st.lists(st.integers(0, 2), min_size=60, max_size=60),
       batch=st.integers(1, 25))
def test_three_interval_rule_alike_per_event_and_in_batches(
        gaps: list[int], pools: list[int], batch: int) -> None:
    at = T0
    txs = []
    for i, gap in enumerate(gaps):
        at += timedelta(seconds=gap)
        txs.append(Transaction(f"t{i}", "inv", f"p{pools[i]}", Decimal(1), at))
    one = AlertEngine([ThreeWindows()])  # type: ignore[list-item]
    each = [alert for tx in txs for alert in one.process(tx)]
    many = AlertEngine([ThreeWindows()], batch_size=batch)  # type: ignore[list-item]
    batched = many.process_many(txs)
    assert [a.to_dict() for a in batched] == [a.to_dict() for a in each]
    place = {tx.id: i for i, tx in enumerate(txs)}
    for alert in each:
        assert alert.transaction_id is not None
        values = _counts(txs, place[alert.transaction_id])
        assert dict(alert.context) == dict(zip(("recent", "before", "older"), map(str, values)))
        assert ThreeWindows().holds(*values) is (alert.state == FIRING)


def test_three_interval_rule_fires_resolves_and_fires_again() -> None:
    txs = [Transaction(f"t{i}", "inv", "p0", Decimal(1), T0 + timedelta(seconds=s))
           for i, s in enumerate([0, 1, 2, 30, 100, 101, 102])]
    expected = [("firing", "t2", "(3, 0, 0)"), ("resolved", "t3", "(1, 2, 1)"),
                ("firing", "t6", "(3, 0, 0)")]
    for size in (1, 3, 7):
        engine = AlertEngine([ThreeWindows()], batch_size=size)  # type: ignore[list-item]
        got = engine.process_many(txs)
        assert [(a.state, a.transaction_id, a.message) for a in got] == expected
