"""Pictures of alerts: transactions per minute of the pools that alerted, alerts marked.

matplotlib is an optional extra (``pip install 'auptimate-core[plot]'``); it is imported only
when a plot is drawn.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .alerts.alert import Alert
from .domain import Transaction, from_micros, to_micros
from .errors import MissingExtra

_MARK = {("threshold", "firing"): ("v", "tab:red"), ("spike", "firing"): ("^", "tab:orange"),
         ("spike", "resolved"): ("o", "tab:green")}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingExtra("matplotlib", "plot") from error
    return plt


def plot_alerts(
    transactions: Iterable[Transaction],
    alerts: Sequence[Alert],
    path: str | Path | None = None,
    *,
    pools: Sequence[str] | None = None,
    bucket: timedelta = timedelta(minutes=1),
    context: timedelta = timedelta(hours=2),
    max_pools: int = 6,
) -> Any:
    """Draw transactions per ``bucket`` around each alert for the pools that alerted.

    One panel per pool (at most ``max_pools``, most alerted first), covering ``context`` before
    the pool's first alert to ``context`` after its last; alerts are marked on the curve.
    Returns the matplotlib Figure and writes it to ``path`` when given.
    """
    plt = _pyplot()
    if pools is None:
        ranked = Counter(a.pool_id for a in alerts).most_common(max_pools)
        pools = [pool for pool, _ in ranked]
    wanted = set(pools)
    width = bucket // timedelta(microseconds=1)
    spans: dict[str, tuple[int, int]] = {}
    for alert in alerts:
        if alert.pool_id in wanted:
            at = to_micros(alert.at)
            low, high = spans.get(alert.pool_id, (at, at))
            spans[alert.pool_id] = (min(low, at), max(high, at))
    margin = context // timedelta(microseconds=1)
    counts: dict[str, Counter[int]] = {pool: Counter() for pool in pools}
    for tx in transactions:
        if tx.pool_id in wanted:
            at = to_micros(tx.timestamp)
            low, high = spans.get(tx.pool_id, (at, at))
            if low - margin <= at <= high + margin:
                counts[tx.pool_id][at // width] += 1
    fig, axes = plt.subplots(max(1, len(pools)), 1, figsize=(10, 2.6 * max(1, len(pools))),
                             squeeze=False)
    for ax, pool in zip(axes[:, 0], pools):
        series = counts[pool]
        if series:
            first, last = min(series), max(series)
            xs = list(range(first, last + 1))
            ax.plot([from_micros(x * width) for x in xs], [series.get(x, 0) for x in xs],
                    color="tab:blue", linewidth=1, label="transactions")
        for alert in alerts:
            if alert.pool_id != pool:
                continue
            marker, color = _MARK.get((alert.rule, alert.state), ("s", "tab:purple"))
            slot = to_micros(alert.at) // width
            ax.scatter([_at(slot, width)], [series.get(slot, 0)], marker=marker, color=color,
                       s=60, zorder=3, label=f"{alert.rule} {alert.state}")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8)
        ax.set_title(f"pool {pool}", fontsize=10)
        ax.set_ylabel(f"per {_span(bucket)}")
    fig.autofmt_xdate()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _at(slot: int, width: int) -> datetime:
    return from_micros(slot * width)


def _span(bucket: timedelta) -> str:
    seconds = int(bucket.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
