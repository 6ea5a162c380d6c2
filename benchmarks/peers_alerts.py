"""Hand-written peers of the alert engine, for the benchmarks: no library, no abstraction.

- :class:`DequeLoop` (and :func:`deque_loop`, one fresh loop over a whole stream): the same two
  rules (threshold and spike, same semantics) as a straightforward loop over per-pool deques,
  one transaction at a time: the floor our engine must match.
- :func:`threshold_floor`: less than either rule set decides, on purpose: what any
  implementation that answers with the library's :class:`~auptimate_core.alerts.Alert` cannot
  avoid on an alert-heavy stream (ids, event times, one Alert per transaction over the
  threshold), so that the report shows how much of a stream's time the answer's type alone takes.
- :func:`minute_scan`: the original brief's design: keep the last hour of transactions in a
  list and scan it once a minute (here: at each minute boundary of event time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

from auptimate_core import Transaction
from auptimate_core.alerts import Alert
from auptimate_core.alerts.alert import make_alert
from auptimate_core.domain import EPOCH

_US = timedelta(microseconds=1)


class DequeLoop:
    """The two rules over per-pool deques, fed as often as asked: state kept between feeds (a
    history first, then the stream that is timed)."""

    def __init__(self, *, limit: Decimal, window: int, baseline: int, factor: int,
                 min_count: int) -> None:
        self.limit, self.window, self.baseline = limit, window, baseline
        self.factor, self.min_count = factor, min_count
        self.recent_q: dict[str, deque[int]] = {}
        self.base_q: dict[str, deque[int]] = {}
        self.firing: dict[str, bool] = {}
        self.seen: set[str] = set()

    def feed(self, txs: Iterable[Transaction]) -> list[tuple[str, str, str, int]]:
        """(rule, state, transaction id, event time) of every alert, like the engine's."""
        recent_q, base_q, firing, seen = self.recent_q, self.base_q, self.firing, self.seen
        limit, window, baseline = self.limit, self.window, self.baseline
        factor, min_count = self.factor, self.min_count
        out: list[tuple[str, str, str, int]] = []
        for tx in txs:
            if tx.id in seen:
                continue
            seen.add(tx.id)
            t = (tx.timestamp - EPOCH) // _US
            pool = tx.pool_id
            if tx.amount > limit:
                out.append(("threshold", "firing", tx.id, t))
            recent = recent_q.get(pool)
            if recent is None:
                recent = recent_q[pool] = deque()
                base_q[pool] = deque()
            base = base_q[pool]
            recent.append(t)
            edge = t - window
            while recent[0] <= edge:
                base.append(recent.popleft())
            far = edge - baseline
            while base and base[0] <= far:
                base.popleft()
            n = len(recent)
            holds = n >= min_count and n * baseline >= factor * len(base) * window
            if holds != firing.get(pool, False):
                firing[pool] = holds
                out.append(("spike", "firing" if holds else "resolved", tx.id, t))
        return out


def deque_loop(
    txs: Sequence[Transaction], *, limit: Decimal, window: int, baseline: int, factor: int,
    min_count: int,
) -> list[tuple[str, str, str, int]]:
    """(rule, state, transaction id, event time) of every alert, like the engine's: a fresh
    :class:`DequeLoop` fed the whole stream."""
    return DequeLoop(limit=limit, window=window, baseline=baseline, factor=factor,
                     min_count=min_count).feed(txs)


def threshold_floor(txs: Iterable[Transaction], *, limit: Decimal) -> list[Alert]:
    """The threshold rule's alerts, built as the engine builds them, and nothing else: each
    repeated id dropped, each event time turned into microseconds and kept (as any window
    must), and for each transaction over ``limit`` the :class:`Alert` with the message
    ``ThresholdRule`` gives, through the slot writer the engine uses. No windows and no spike
    rule: less than any implementation of the two rules that returns these Alerts must do,
    not a peer that decides the same."""
    seen: set[str] = set()
    times: list[int] = []
    out: list[Alert] = []
    text = f" > limit {limit} in pool "
    for tx in txs:
        if tx.id in seen:
            continue
        seen.add(tx.id)
        times.append((tx.timestamp - EPOCH) // _US)
        amount = tx.amount
        if amount > limit:
            pool = tx.pool_id
            out.append(make_alert("threshold", "firing", pool, tx.timestamp, tx.id, amount,
                                  limit, f"amount {amount!s}{text}{pool}", "threshold",
                                  tx.investor_id, ()))
    return out


def minute_scan(
    txs: Sequence[Transaction], *, limit: Decimal, window: int, baseline: int, factor: int,
    min_count: int,
) -> list[tuple[str, str, int, int]]:
    """The brief's cron job: every minute, scan the last hour's list for each pool.

    Returns (rule, pool, event time of the scan, event time of the triggering data) per alert;
    thresholds are checked at the scan too, as the brief's job does.
    """
    minute = 60_000_000
    kept: list[tuple[int, str, str, Decimal]] = []
    firing: set[str] = set()
    out: list[tuple[str, str, int, int]] = []
    next_scan: int | None = None
    for tx in txs:
        t = (tx.timestamp - EPOCH) // _US
        if next_scan is None:
            next_scan = (t // minute + 1) * minute
        while t >= next_scan:
            horizon = next_scan - window - baseline
            kept = [row for row in kept if row[0] > horizon]
            counts: dict[str, list[int]] = {}
            for at, pool, tx_id, amount in kept:
                pair = counts.setdefault(pool, [0, 0])
                if at > next_scan - window:
                    pair[0] += 1
                    if amount > limit:
                        out.append(("threshold", tx_id, next_scan, at))
                else:
                    pair[1] += 1
            for pool, (recent, base) in counts.items():
                holds = recent >= min_count and recent * baseline >= factor * base * window
                if holds and pool not in firing:
                    firing.add(pool)
                    out.append(("spike", pool, next_scan, next_scan))
                elif not holds:
                    firing.discard(pool)
            next_scan += minute
        kept.append((t, tx.pool_id, tx.id, tx.amount))
    return out
