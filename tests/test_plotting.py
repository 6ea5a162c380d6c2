"""plot_alerts: each alert in its context, every panel with its own dated axis."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.alerts.alert import Alert
from auptimate_core.alerts.rules import AmountSpikeRule
from auptimate_core.cli import main
from auptimate_core.errors import MissingExtra, ValidationError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from auptimate_core.plotting import plot_alerts  # noqa: E402

mdates: Any = import_module("matplotlib.dates")

START = datetime(2026, 1, 10, tzinfo=UTC)
BURSTS = {"busy": [datetime(2026, 1, 11, 12, 0, tzinfo=UTC)],
          "quiet": [datetime(2026, 1, 16, 5, 0, tzinfo=UTC),
                    datetime(2026, 1, 19, 5, 10, tzinfo=UTC)]}
LARGE_AT = datetime(2026, 1, 13, 18, 0, 30, tzinfo=UTC)


def stream() -> list[Transaction]:
    """A busy pool (one every 4 minutes), a quiet one (one every 40 minutes), bursts of 8 in
    half a minute, and one large transaction among amounts of 1,000 to 20,000."""
    txs: list[Transaction] = []

    def add(pool: str, at: datetime, amount: int) -> None:
        txs.append(Transaction(f"t{len(txs):05d}", f"inv{len(txs) % 13}", pool,
                               Decimal(amount), at))

    for i in range(10 * 24 * 15):
        add("busy", START + timedelta(minutes=4 * i, seconds=7), 1_000 + (i * 7_919) % 19_000)
    for i in range(10 * 24 * 3 // 2):
        add("quiet", START + timedelta(minutes=40 * i, seconds=11), 2_000 + (i * 613) % 5_000)
    for pool, moments in BURSTS.items():
        for at in moments:
            for j in range(8):
                add(pool, at + timedelta(seconds=4 * j), 500)
    add("busy", LARGE_AT, 900_000)
    return sorted(txs, key=lambda t: t.timestamp)


@pytest.fixture(scope="module")
def replay() -> tuple[list[Transaction], list[Alert]]:
    txs = stream()
    alerts = AlertEngine([ThresholdRule(limit=Decimal("250000")), SpikeRule()]).process_many(txs)
    return txs, alerts


@pytest.fixture(scope="module")
def drawn(replay: tuple[list[Transaction], list[Alert]],
          tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The replay's figure, written to a PNG and drawn (so tick labels exist)."""
    txs, alerts = replay
    path = tmp_path_factory.mktemp("plot") / "alerts.png"
    fig = plot_alerts(txs, alerts, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig.canvas.draw()
    yield fig
    plt.close(fig)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    before = set(plt.get_fignums())
    yield
    for number in set(plt.get_fignums()) - before:
        plt.close(number)


def _firing(alerts: list[Alert], rule: str) -> list[Alert]:
    return sorted((a for a in alerts if a.rule == rule and a.state == "firing"),
                  key=lambda a: a.at)


def _panel_of(fig: Any, alert: Alert) -> Any:
    (ax,) = [ax for ax in fig.axes if f"{alert.at:%Y-%m-%d %H:%M:%S}" in ax.get_title()]
    return ax


def test_the_replay_raises_what_the_plots_need(replay: tuple[list[Transaction], list[Alert]],
                                               ) -> None:
    _, alerts = replay
    assert [a.at.date() for a in _firing(alerts, "spike")] == [
        at.date() for moments in BURSTS.values() for at in moments]
    assert [a.at for a in _firing(alerts, "threshold")] == [LARGE_AT]


def test_every_panel_has_its_own_dated_time_axis(
        replay: tuple[list[Transaction], list[Alert]], drawn: Any) -> None:
    fig, (_, alerts) = drawn, replay
    firing = sorted(_firing(alerts, "spike") + _firing(alerts, "threshold"), key=lambda a: a.at)
    assert len(fig.axes) == len(firing) == 4
    for ax, alert in zip(fig.axes, firing):
        labels = [label for label in ax.get_xticklabels() if label.get_visible()]
        assert len(labels) >= 3 and all(label.get_text() for label in labels)
        assert ax.xaxis.get_ticklabels()[0].get_visible()
        # The panel's own date: in the offset (hours on the ticks) or on the ticks (days).
        dated = ax.xaxis.get_offset_text().get_text() + " ".join(t.get_text() for t in labels)
        assert (f"{alert.at:%Y-%m-%d}" in dated or f"{alert.at:%d %b}" in dated), dated
        low, high = (mdates.num2date(x) for x in ax.get_xlim())
        assert low < alert.at < high


def test_a_spike_panel_shows_the_baseline_before_the_alert(
        replay: tuple[list[Transaction], list[Alert]], drawn: Any) -> None:
    fig, (_, alerts) = drawn, replay
    for alert in _firing(alerts, "spike"):
        ax = _panel_of(fig, alert)
        low, high = (mdates.num2date(x) for x in ax.get_xlim())
        # From the start of the hour the rule compared with, and the marker well inside.
        assert low <= alert.at - timedelta(hours=1, minutes=1)
        assert high - alert.at >= timedelta(minutes=20)
        (curve,) = [line for line in ax.get_lines() if line.get_label().startswith("transact")]
        times, counts = curve.get_xdata(), curve.get_ydata()
        quiet = [c for t, c in zip(times, counts) if t < alert.at - timedelta(minutes=1)]
        assert quiet and max(quiet) < alert.limit  # the quiet before the burst is drawn
        assert max(counts) >= 8
        assert ax.get_ylabel() == "count in 1 min"


def test_a_threshold_panel_shows_the_pools_amounts_on_a_log_axis(
        replay: tuple[list[Transaction], list[Alert]], drawn: Any) -> None:
    fig, (txs, alerts) = drawn, replay
    (alert,) = _firing(alerts, "threshold")
    ax = _panel_of(fig, alert)
    assert ax.get_yscale() == "log"
    bottom, top = ax.get_ylim()
    low, high = (mdates.num2date(x) for x in ax.get_xlim())
    shown = [float(t.amount) for t in txs if t.pool_id == "busy" and low <= t.timestamp <= high]
    assert len(shown) > 80
    assert bottom <= min(shown) and top >= 900_000 and top / bottom > 100
    assert any(line.get_label() == "limit 250,000" for line in ax.get_lines())
    assert high - low >= timedelta(hours=4)


def test_a_lone_large_transaction_is_drawn_against_its_limit(tmp_path: Path) -> None:
    tx = Transaction("big", "inv", "solo", Decimal("600000"), LARGE_AT)
    alert = ThresholdRule(limit=Decimal("250000")).check(tx)
    assert alert is not None
    fig = plot_alerts([tx], [alert], tmp_path / "solo.png")
    (ax,) = fig.axes
    bottom, top = ax.get_ylim()
    assert ax.get_yscale() == "log" and bottom < 250_000 and top > 600_000
    low, high = (mdates.num2date(x) for x in ax.get_xlim())
    assert low <= LARGE_AT - timedelta(hours=2) and high >= LARGE_AT + timedelta(hours=2)


def test_an_amount_spike_is_drawn_as_totals(tmp_path: Path) -> None:
    txs = [Transaction(f"a{i}", "inv", "fund", Decimal(1_000), START + timedelta(minutes=5 * i))
           for i in range(40)]
    burst = START + timedelta(hours=3, minutes=2)
    txs += [Transaction(f"b{i}", "inv", "fund", Decimal(60_000), burst + timedelta(seconds=i))
            for i in range(3)]
    alerts = AlertEngine([AmountSpikeRule()]).process_many(sorted(txs, key=lambda t: t.timestamp))
    (firing,) = [a for a in alerts if a.state == "firing"]
    fig = plot_alerts(txs, alerts, tmp_path / "amounts.png")
    ax = _panel_of(fig, firing)
    assert ax.get_ylabel() == "amount in 1 min"
    (curve,) = [line for line in ax.get_lines() if line.get_label().startswith("total")]
    assert max(curve.get_ydata()) == 180_000


def test_panels_are_capped_and_the_title_says_so(
        replay: tuple[list[Transaction], list[Alert]]) -> None:
    txs, alerts = replay
    fig = plot_alerts(txs, alerts, max_panels=2)
    assert len(fig.axes) == 2
    assert fig.get_suptitle() == "2 of 4 alert panels drawn (max_panels=2, max_pools=6)"
    # Each pool and each rule its turn (quiet alerted most: its first spike; then busy's
    # threshold alert, a rule not drawn yet), shown in time order.
    assert [ax.get_title().split(",")[0] for ax in fig.axes] == [
        "threshold firing on pool busy", "spike firing on pool quiet"]
    fig = plot_alerts(txs, alerts, max_pools=1)
    assert len(fig.axes) == 2 and all("pool quiet" in ax.get_title() for ax in fig.axes)
    assert fig.get_suptitle() == "2 of 4 alert panels drawn (max_panels=8, max_pools=1)"


def test_pools_choose_whose_alerts_are_drawn(
        replay: tuple[list[Transaction], list[Alert]]) -> None:
    txs, alerts = replay
    fig = plot_alerts(txs, alerts, pools=["quiet"])
    assert len(fig.axes) == 2 and all("pool quiet" in ax.get_title() for ax in fig.axes)
    for ax in fig.axes:  # each burst's resolution, 10 and 20 minutes later, is marked
        assert "spike resolved" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_a_resolution_long_after_the_burst_is_named_in_the_title() -> None:
    burst = [Transaction(f"b{i}", "inv", "lone", Decimal(100), START + timedelta(seconds=i))
             for i in range(6)]
    later = Transaction("next", "inv", "lone", Decimal(100), START + timedelta(hours=7))
    alerts = AlertEngine([SpikeRule()]).process_many([*burst, later])
    assert [a.state for a in alerts] == ["firing", "resolved"]
    (ax,) = plot_alerts([*burst, later], alerts).axes
    assert ax.get_title().endswith("; resolved 2026-01-10 07:00:00")


def test_no_alerts_still_writes_a_picture(tmp_path: Path) -> None:
    fig = plot_alerts(stream()[:10], [], tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 0
    assert fig.axes[0].texts[0].get_text() == "no alerts to draw"


@pytest.mark.parametrize(("option", "value"), [
    ("bucket", timedelta(0)), ("context", timedelta(minutes=-1)), ("max_pools", 0),
    ("max_panels", 0)])
def test_bad_options_name_themselves(option: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"^{option}: "):
        plot_alerts([], [], **{option: value})  # type: ignore[arg-type]


def test_without_matplotlib_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra, match=r"auptimate-core\[plot\]"):
        plot_alerts([], [])


def test_monitor_plot_writes_the_picture(tmp_path: Path) -> None:
    data, picture = tmp_path / "tx.csv", tmp_path / "alerts.png"
    lines = ["id,investor_id,pool_id,amount,timestamp,kind"]
    lines += [f"{t.id},{t.investor_id},{t.pool_id},{t.amount},{t.timestamp.isoformat()},"
              f"investment" for t in stream() if t.timestamp < datetime(2026, 1, 14, tzinfo=UTC)]
    data.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["monitor", str(data), "--plot", str(picture)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert f"plot written to {picture}" in result.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
