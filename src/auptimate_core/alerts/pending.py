"""A batch's alerts waiting for their lifecycle changes, and the order they are given in.

:class:`PendingAlerts` keeps three parallel lists rather than a tuple per alert: a batch's
alerts live until its end, and a tuple holding an alert would be one more object that the
cyclic garbage collector tracks, promotes and traverses for each of them (ints are never
tracked).
"""

from __future__ import annotations

from bisect import bisect_right

from .alert import Alert

_FEW = 32  # window alerts placed one by one among a transaction rule's; more: one sort


class PendingAlerts:
    """Alerts in the order they were found, each with its place and its change.

    An alert's place is ``index * rules + order``: its transaction's index in the batch, then
    its rule's order among ``rules`` rules. Its change is the index of the lifecycle
    transition it waits for, or -1 when it needs none (a transaction rule's). Append to the
    three lists together (the deciding loops do, without a call per alert).
    """

    __slots__ = ("alerts", "changes", "places", "rules")

    def __init__(self, rules: int) -> None:
        self.rules = rules
        self.alerts: list[Alert] = []
        self.places: list[int] = []
        self.changes: list[int] = []

    def __len__(self) -> int:
        return len(self.alerts)

    def in_order(self, window: int, runs: int) -> None:
        """Put the alerts in the order a loop per transaction gives: the transaction rules'
        ``runs`` (each in order) up to ``window``, then the window rules' (in order).

        One run and a few window alerts: each placed by binary search, O(k log n); else one
        sort of the places, O(n log n)."""
        places = self.places
        n = len(places)
        if runs > 1 or (runs and n - window > _FEW):
            by_place = sorted(range(n), key=places.__getitem__)
            self.places = [places[k] for k in by_place]
            self.alerts = [self.alerts[k] for k in by_place]
            self.changes = [self.changes[k] for k in by_place]
        elif runs and n > window:
            alerts, changes = self.alerts, self.changes
            tail = list(zip(places[window:], alerts[window:], changes[window:]))
            del places[window:], alerts[window:], changes[window:]
            for place, alert, change in tail:
                at = bisect_right(places, place)
                places.insert(at, place)
                alerts.insert(at, alert)
                changes.insert(at, change)

    def kept(self, applied: list[bool]) -> list[Alert]:
        """The alerts that need no change or whose change ``applied``."""
        return [alert for alert, change in zip(self.alerts, self.changes)
                if change < 0 or applied[change]]
