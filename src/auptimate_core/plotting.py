"""Pictures of alerts: each alert drawn in the context it was raised in.

One panel per alert (alerts of one pool and rule close in time share a panel), each with its own
dated time axis in UTC:

- a spike (or any alert naming its rule's ``window``) as the rule measures it: the pool's count
  (or, for ``amount_spike``, total) over the trailing window at every moment, from the start of
  the baseline the rule compared with to half that span after the alert, with the baseline and
  the window shaded, the value needed to fire as a line and a tick under the axis for each
  transaction;
- a threshold alert among the pool's amounts around it on a log scale, with the limit as a line,
  so a single large transaction stands out against the ordinary ones.

matplotlib is an optional extra (``pip install 'auptimate-core[plot]'``); it is imported only
when a plot is drawn.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import import_module
from itertools import accumulate
from pathlib import Path
from typing import Any, Final

import attrs

from .alerts.alert import Alert
from .domain import Transaction, from_micros, to_micros
from .errors import AuptimateError, MissingExtra, ValidationError

_MARK: Final = {("threshold", "firing"): ("v", "tab:red"),
                ("spike", "firing"): ("^", "tab:orange"),
                ("amount_spike", "firing"): ("^", "tab:orange"),
                ("spike", "resolved"): ("o", "tab:green"),
                ("amount_spike", "resolved"): ("o", "tab:green")}
_NEIGHBOURS: Final = 40
"""A threshold panel widens until it shows this many of the pool's transactions on each side of
the alert (when the pool has them), so the ordinary amounts are there to compare with."""
_US: Final = timedelta(microseconds=1)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingExtra("matplotlib", "plot") from error
    return plt


@attrs.define
class _Series:
    """One pool's transactions in time order: event times in microseconds and amounts."""

    times: list[int] = attrs.Factory(list)
    amounts: list[float] = attrs.Factory(list)
    sums: list[float] = attrs.Factory(list)

    def prepare(self) -> None:
        order = sorted(range(len(self.times)), key=self.times.__getitem__)
        self.times = [self.times[i] for i in order]
        self.amounts = [self.amounts[i] for i in order]
        self.sums = [0.0, *accumulate(self.amounts)]

    def span(self, low: int, high: int) -> slice:
        """The transactions with ``low <= time <= high``."""
        return slice(bisect_left(self.times, low), bisect_right(self.times, high))

    def trailing(self, at: int, window: int, total: bool) -> float:
        """The count (or total) of the transactions in ``(at - window, at]``."""
        first, last = bisect_right(self.times, at - window), bisect_right(self.times, at)
        return self.sums[last] - self.sums[first] if total else float(last - first)


@attrs.define
class _Panel:
    """A stretch of one pool's history around one or more alerts of one rule."""

    pool: str
    anchor: Alert
    low: int
    high: int
    window: int | None
    baseline: int | None
    alerts: list[Alert]
    later: list[Alert] = attrs.Factory(list)

    @property
    def amounts(self) -> bool:
        return self.window is None


def plot_alerts(
    transactions: Iterable[Transaction],
    alerts: Sequence[Alert],
    path: str | Path | None = None,
    *,
    pools: Sequence[str] | None = None,
    bucket: timedelta = timedelta(minutes=1),
    context: timedelta = timedelta(hours=2),
    max_pools: int = 6,
    max_panels: int = 8,
) -> Any:
    """Draw each alert of the pools that alerted in its context; one panel per alert.

    ``pools`` are the pools whose alerts are drawn (default: those that alerted, at most
    ``max_pools`` of them). A firing alert opens a panel; later alerts of the same pool and rule
    inside its span are marked on it, and a resolution after it is named in its title. At most
    ``max_panels`` panels are drawn, chosen so that each pool and each rule gets its turn (the
    most alerted pools first), and shown in time order; the figure's title says how many were
    left out.

    A panel of an alert naming its rule's window and baseline (the spike rules) starts where
    that baseline starts and ends half that span after the alert; ``bucket`` is the window and
    ``context`` the span before for an alert that names neither. A threshold panel shows at
    least ``context`` on each side of the alert, more when that holds fewer than 40 of the
    pool's transactions on a side.

    Returns the matplotlib Figure and writes it (PNG, or the format ``path``'s suffix names) to
    ``path`` when given.
    """
    for name, span in (("bucket", bucket), ("context", context)):
        if span <= timedelta(0):
            raise ValidationError(name, f"must be a positive duration, not {span}")
    for name, limit in (("max_pools", max_pools), ("max_panels", max_panels)):
        if limit < 1:
            raise ValidationError(name, f"must be at least 1, not {limit}")
    plt = _pyplot()
    most_pools: int | None = None
    if pools is None:
        pools = [pool for pool, _ in Counter(a.pool_id for a in alerts).most_common()]
        most_pools = max_pools
    rank = {pool: i for i, pool in enumerate(pools)}
    series = {pool: _Series() for pool in pools}
    for tx in transactions:
        found = series.get(tx.pool_id)
        if found is not None:
            found.times.append(to_micros(tx.timestamp))
            found.amounts.append(float(tx.amount))
    for one in series.values():
        one.prepare()
    panels = _panels([a for a in alerts if a.pool_id in rank], series, bucket, context)
    chosen = _choose(panels, rank, max_panels, most_pools)
    rows = max(1, len(chosen))
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.9 * rows), squeeze=False,
                             layout="constrained")
    for ax, panel in zip(axes[:, 0], chosen):
        if panel.amounts:
            _draw_amounts(ax, panel, series[panel.pool])
        else:
            _draw_window(ax, panel, series[panel.pool])
        _date_axis(ax, panel)
    if not chosen:
        axes[0, 0].text(0.5, 0.5, "no alerts to draw", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    if len(chosen) < len(panels):
        limits = f"max_panels={max_panels}"
        if most_pools is not None:
            limits += f", max_pools={most_pools}"
        fig.suptitle(f"{len(chosen)} of {len(panels)} alert panels drawn ({limits})",
                     fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _panels(alerts: Sequence[Alert], series: dict[str, _Series], bucket: timedelta,
            context: timedelta) -> list[_Panel]:
    """Group the alerts into panels: a firing alert opens one, unless it falls inside the span
    of the last panel of its pool and rule."""
    panels: list[_Panel] = []
    last: dict[tuple[str, str], _Panel] = {}
    for alert in sorted(alerts, key=lambda a: a.at):
        key = (alert.pool_id, alert.name)
        at = to_micros(alert.at)
        open_ = last.get(key)
        if open_ is not None and at <= open_.high:
            open_.alerts.append(alert)
            if alert.state == "firing":
                open_.high = max(open_.high, _span(alert, series[alert.pool_id], bucket,
                                                   context)[1])
            continue
        if open_ is not None and alert.state != "firing":
            open_.later.append(alert)
            continue
        low, high = _span(alert, series[alert.pool_id], bucket, context)
        window, baseline = _window(alert, bucket, context)
        panel = _Panel(alert.pool_id, alert, low, high, window, baseline, [alert])
        panels.append(panel)
        last[key] = panel
    return panels


def _window(alert: Alert, bucket: timedelta, context: timedelta) -> tuple[int | None, int | None]:
    """The rule's window and baseline in microseconds: ``(None, None)`` for a threshold alert
    (drawn as amounts), ``bucket`` and ``context`` for an alert that does not name them."""
    if alert.rule == "threshold":
        return None, None
    figures = dict(alert.context)
    return (_duration(figures.get("window"), bucket) // _US,
            _duration(figures.get("baseline_span"), context) // _US)


def _duration(text: str | None, default: timedelta) -> timedelta:
    from .alerts.registry import parse_duration

    if text is None:
        return default
    try:
        return parse_duration(text)
    except AuptimateError:
        return default


def _span(alert: Alert, series: _Series, bucket: timedelta,
          context: timedelta) -> tuple[int, int]:
    at = to_micros(alert.at)
    window, baseline = _window(alert, bucket, context)
    if window is not None and baseline is not None:
        before = window + baseline
        return at - before, at + before // 2
    half = context // _US
    times = series.times
    here = bisect_left(times, at)
    if here >= _NEIGHBOURS:
        half = max(half, at - times[here - _NEIGHBOURS])
    after = bisect_right(times, at)
    if after + _NEIGHBOURS <= len(times):
        half = max(half, times[after + _NEIGHBOURS - 1] - at)
    if not times:
        return at - half, at + half
    # Widened for one side's neighbours, the other side stops at the pool's first or last
    # transaction rather than showing an empty stretch.
    least = context // _US
    return (max(at - half, min(times[0], at - least)),
            min(at + half, max(times[-1], at + least)))


def _choose(panels: list[_Panel], rank: dict[str, int], most: int,
            most_pools: int | None) -> list[_Panel]:
    """Up to ``most`` panels from up to ``most_pools`` pools, in time order: each pick is the
    panel whose pool, then whose rule, has the fewest panels so far (the most alerted pool and
    the earliest panel first among equals)."""
    left = sorted(panels, key=lambda p: (rank[p.pool], p.anchor.at))
    chosen: list[_Panel] = []
    by_pool: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    while left and len(chosen) < most:
        if most_pools is not None and len(by_pool) >= most_pools:
            left = [p for p in left if p.pool in by_pool]
            if not left:
                break
        pick = min(left, key=lambda p: (by_pool[p.pool], by_rule[p.anchor.name],
                                        rank[p.pool], p.anchor.at))
        left.remove(pick)
        chosen.append(pick)
        by_pool[pick.pool] += 1
        by_rule[pick.anchor.name] += 1
    return sorted(chosen, key=lambda p: p.anchor.at)


def _dates(micros: Iterable[int]) -> list[datetime]:
    return [from_micros(m) for m in micros]


def _mark(ax: Any, alert: Alert) -> None:
    marker, color = _MARK.get((alert.rule, alert.state), ("s", "tab:purple"))
    ax.scatter([alert.at], [float(alert.observed)], marker=marker, color=color, s=70, zorder=4,
               label=f"{alert.name} {alert.state}")


def _draw_window(ax: Any, panel: _Panel, series: _Series) -> None:
    from matplotlib.ticker import MaxNLocator

    assert panel.window is not None and panel.baseline is not None
    window, baseline = panel.window, panel.baseline
    total = panel.anchor.rule == "amount_spike"
    low, high = panel.low, panel.high
    times = series.times
    starts = times[series.span(low + 1, high)]
    ends = [t + window for t in times[series.span(low + 1 - window, high - window)]]
    steps = [low, *sorted(set(starts).union(ends)), high]
    values = [series.trailing(x, window, total) for x in steps]
    unit = "total" if total else "transactions"
    ax.plot(_dates(steps), values, drawstyle="steps-post", color="tab:blue", linewidth=1,
            label=f"{unit} in the last {_text(window)}")
    at = to_micros(panel.anchor.at)
    ax.axvspan(from_micros(at - window - baseline), from_micros(at - window), color="0.9",
               label=f"baseline: the {_text(baseline)} before the window")
    ax.axvspan(from_micros(at - window), panel.anchor.at, color="tab:orange", alpha=0.25,
               label=f"window: {_text(window)}")
    ax.axhline(float(panel.anchor.limit), color="tab:orange", linestyle="--", linewidth=1,
               label=f"needed to fire: {panel.anchor.limit.normalize():,f}")
    shown = times[series.span(low, high)]
    ax.plot(_dates(shown), [0.03] * len(shown), "|", color="black", markersize=7,
            transform=ax.get_xaxis_transform(), label="a transaction")
    for alert in panel.alerts:
        _mark(ax, alert)
    top = max([*values, float(panel.anchor.limit), *(float(a.observed) for a in panel.alerts)])
    ax.set_ylim(-0.12 * top, 1.15 * top)
    if not total:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{'amount' if total else 'count'} in {_text(window)}")


def _draw_amounts(ax: Any, panel: _Panel, series: _Series) -> None:
    part = series.span(panel.low, panel.high)
    amounts = [a for a in series.amounts[part] if a > 0]
    when = [t for t, a in zip(series.times[part], series.amounts[part]) if a > 0]
    ax.scatter(_dates(when), amounts, s=9, color="tab:blue", label="the pool's transactions")
    ax.axhline(float(panel.anchor.limit), color="tab:red", linestyle="--", linewidth=1,
               label=f"limit {panel.anchor.limit.normalize():,f}")
    for alert in panel.alerts:
        _mark(ax, alert)
    seen = [*amounts, float(panel.anchor.limit), *(float(a.observed) for a in panel.alerts)]
    seen = [value for value in seen if value > 0] or [1.0]
    ax.set_yscale("log")
    ax.set_ylim(min(seen) / 3, max(seen) * 3)
    ax.set_ylabel("amount (log scale)")


def _date_axis(ax: Any, panel: _Panel) -> None:
    # matplotlib.dates declares no types for these classes.
    mdates: Any = import_module("matplotlib.dates")
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=9)
    formatter = mdates.ConciseDateFormatter(
        locator, tz=UTC,
        formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y", "%b", "%d %b", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(from_micros(panel.low), from_micros(panel.high))
    ax.set_xlabel("time (UTC)", fontsize=8)
    anchor = panel.anchor
    title = f"{anchor.name} {anchor.state} on pool {panel.pool}, {anchor.at:%Y-%m-%d %H:%M:%S} UTC"
    figures = dict(anchor.context)
    if "recent" in figures and "expected" in figures:
        title += f": {figures['recent']} in {figures.get('window', '')} against " \
                 f"{figures['expected']} expected"
    elif anchor.rule == "threshold":
        title += f": {anchor.observed.normalize():,f} over {anchor.limit.normalize():,f}"
    for alert in panel.later:
        title += f"; {alert.state} {alert.at:%Y-%m-%d %H:%M:%S}"
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1),
              fontsize=8, frameon=False)


def _text(micros: int) -> str:
    seconds, rest = divmod(micros, 1_000_000)
    if rest:
        return f"{micros / 1_000_000:g} s"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
