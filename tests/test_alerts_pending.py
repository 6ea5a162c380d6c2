"""PendingAlerts against a brute-force model: alerts found rule run by rule run come out in
(transaction, rule) order, and only those whose change applied are kept."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from auptimate_core.alerts.alert import FIRING, Alert, make_alert
from auptimate_core.alerts.pending import PendingAlerts

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _alert(i: int, order: int) -> Alert:
    return make_alert("r", FIRING, "p", AT, f"t{i}-{order}", Decimal(1), Decimal(0), "m", "r",
                      None, ())


runs_of = st.lists(st.sets(st.integers(0, 300), max_size=60).map(sorted), max_size=4)


@given(tx_runs=runs_of, window=st.sets(st.tuples(st.integers(0, 300), st.integers(0, 1)),
                                        max_size=80).map(sorted), data=st.data())
def test_in_order_and_kept_match_a_sort_by_transaction_then_rule(
        tx_runs: list[list[int]], window: list[tuple[int, int]], data: st.DataObject) -> None:
    rules = len(tx_runs) + 2
    pending = PendingAlerts(rules)
    model = []
    runs = 0
    for order, run in enumerate(tx_runs):
        for i in run:  # a transaction rule's alerts: one run, in order, needing no change
            pending.alerts.append(alert := _alert(i, order))
            pending.places.append(i * rules + order)
            pending.changes.append(-1)
            model.append(((i, order), alert, True))
        runs += bool(run)
    before = len(pending)
    applied = data.draw(st.lists(st.booleans(), min_size=len(window), max_size=len(window)))
    for t, (i, k) in enumerate(window):  # the window rules' (orders after the others')
        order = len(tx_runs) + k
        pending.alerts.append(alert := _alert(i, order))
        pending.places.append(i * rules + order)
        pending.changes.append(t)
        model.append(((i, order), alert, applied[t]))
    pending.in_order(before, runs)
    model.sort(key=lambda entry: entry[0])
    assert pending.alerts == [alert for _, alert, _ in model]
    assert pending.kept(applied) == [alert for _, alert, ok in model if ok]
