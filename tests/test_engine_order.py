"""A batch's alerts come in the order one call per transaction gives them: transaction rules
(a threshold, a second threshold, a rule of our own whose flagged() answers in reverse) and
window rules mixed, with few window alerts in a batch (placed one by one) and many (sorted)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction
from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.alerts.alert import FIRING, make_alert

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class EvenIds:
    """A transaction rule of our own: fires on transactions whose id ends in an even digit;
    its flagged() gives their indices last first."""

    name = "even"

    def check(self, tx: Transaction) -> Alert | None:
        if int(tx.id[-1]) % 2:
            return None
        return make_alert("even", FIRING, tx.pool_id, tx.timestamp, tx.id, tx.amount,
                          Decimal(0), "even id", "even", tx.investor_id, ())

    def flagged(self, txs: Sequence[Transaction]) -> list[int]:
        return [i for i in reversed(range(len(txs))) if not int(txs[i].id[-1]) % 2]


def rules(extra: bool) -> list[object]:
    chosen: list[object] = [
        ThresholdRule(limit=Decimal("500")),
        SpikeRule(window=timedelta(seconds=10), baseline=timedelta(minutes=5), factor=2,
                  min_count=2, name="spike"),
    ]
    if extra:
        chosen += [ThresholdRule(limit=Decimal("800"), name="big"), EvenIds()]
    return chosen


def stream(gaps: list[int], amounts: list[int], pools: list[int]) -> list[Transaction]:
    at = T0
    out = []
    for i, (gap, amount, pool) in enumerate(zip(gaps, amounts, pools)):
        at += timedelta(seconds=gap)
        out.append(Transaction(f"t{i}", "inv", f"p{pool}", Decimal(amount), at))
    return out


def keys(alerts: list[Alert]) -> list[tuple[str, str, str | None]]:
    return [(a.name, a.state, a.transaction_id) for a in alerts]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 120),
    seed=st.data(),
    extra=st.booleans(),
    batch=st.sampled_from([1, 7, 50, 1_000]),
)
def test_batches_give_the_order_of_one_call_per_transaction(
    size: int, seed: st.DataObject, extra: bool, batch: int
) -> None:
    gaps = seed.draw(st.lists(st.integers(0, 40), min_size=size, max_size=size))
    amounts = seed.draw(st.lists(st.sampled_from([10, 600, 900]), min_size=size, max_size=size))
    pools = seed.draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))
    txs = stream(gaps, amounts, pools)
    one = AlertEngine(rules(extra))  # type: ignore[arg-type]
    expected = [alert for tx in txs for alert in one.process(tx)]
    many = AlertEngine(rules(extra), batch_size=batch)  # type: ignore[arg-type]
    assert keys(many.process_many(txs)) == keys(expected)


def test_many_window_alerts_among_a_thresholds_alerts_are_sorted_in() -> None:
    # Pools that each fire (two transactions a second apart) and resolve (one more later),
    # every transaction over the threshold: more window alerts in one batch than are placed
    # one by one.
    txs = []
    for p in range(60):
        for k, second in enumerate((0, 1, 30)):
            at = T0 + timedelta(seconds=100 * p + second)
            txs.append(Transaction(f"t{p}-{k}", "inv", f"p{p}", Decimal(600), at))
    one = AlertEngine(rules(False))  # type: ignore[arg-type]
    expected = [alert for tx in txs for alert in one.process(tx)]
    assert sum(a.rule == "spike" for a in expected) > 32
    many = AlertEngine(rules(False))  # type: ignore[arg-type]
    assert keys(many.process_many(txs)) == keys(expected)
