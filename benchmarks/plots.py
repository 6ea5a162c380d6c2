"""Scaling pictures from one run's results: PNG files beside the report (matplotlib, the ``plot``
extra).

    python -m benchmarks.plots [DIR]      (DIR: a results directory, benchmarks/results by default)

Each picture is drawn from the JSON a benchmark module wrote in that directory, so it shows the
same run as the report:

- ``ranking_rows.png``: seconds to rank a CSV file against its rows, ours and every peer
  (``ranking.json``, one point per file size that ran);
- ``engine_pools.png``: transactions a second against the number of pools, each path of the
  engine and the hand-written loop (``engine.json``);
- ``engine_alerts.png``: the same against the alerts raised per 1,000 transactions;
- ``redis_batches.png``: transactions (engine) or events (store) a second on Redis against
  the batch size (``engine.json`` with ``--redis``, and the batch rows of
  ``redis_store.json``);
- ``ledger_clients.png``: ledger investments a second on PostgreSQL against the concurrent
  clients, over one pool and over 100, beside pgbench's (``ledger.json``); the pool sizes of
  ``ledger.json`` (writes a second against members, each backend) in ``ledger_sizes.png``.

A picture whose results are missing is left out; :func:`draw` returns the files it wrote.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Series = dict[str, list[tuple[float, float]]]


def ranking_series(data: dict[str, Any]) -> Series:
    series: Series = {}
    for case in data.get("one_shot", []):
        for peer, entry in case["peers"].items():
            series.setdefault(peer, []).append((case["rows"], entry["seconds"]))
    return series


def engine_pool_series(data: dict[str, Any]) -> Series:
    series: Series = {}
    for pools, rows in data.get("scaling_pools", {}).get("by_pools", {}).items():
        for path, row in rows.items():
            series.setdefault(path, []).append((int(pools), row["tx_per_second"]))
    return series


def engine_alert_series(data: dict[str, Any]) -> Series:
    series: Series = {}
    for case in data.get("scaling_alerts", {}).get("by_share", {}).values():
        for path, row in case["rows"].items():
            series.setdefault(path, []).append((case["alerts_per_1000"], row["tx_per_second"]))
    return series


_BATCH = re.compile(r"observe_many \(batches of ([\d,]+)\)")


def redis_series(engine: dict[str, Any], store: dict[str, Any]) -> Series:
    series: Series = {}
    for row in engine.get("redis_batches", {}).get("by_batch", {}).values():
        series.setdefault("engine process_many, RedisWindowStore (transactions/s)", []).append(
            (row["batch"], row["tx_per_second"]))
    for name, peer in store.get("peers", {}).items():
        found = _BATCH.fullmatch(name)
        if found:
            series.setdefault("store observe_many, one redis-server (events/s)", []).append(
                (int(found.group(1).replace(",", "")), peer["events_per_second"]))
    return {name: sorted(points) for name, points in series.items()}


_CLIENTS = re.compile(r"(ledger\.invest|pgbench TPC-B-like), (\d+) clients?, (.+)")


def ledger_client_series(data: dict[str, Any]) -> Series:
    series: Series = {}
    for name, row in data.get("concurrency", {}).get("peers", {}).items():
        found = _CLIENTS.fullmatch(name)
        if found and "pipeline=False" not in found.group(3):
            series.setdefault(f"{found.group(1)}, {found.group(3)}", []).append(
                (int(found.group(2)), row["per_second"]))
    return series


def ledger_size_series(data: dict[str, Any]) -> Series:
    return {f"ledger.invest, {backend}": [(int(size), row["per_second"])
                                          for size, row in section.get("sizes", {}).items()]
            for backend, section in data.get("sequential", {}).items()}


def _figure(path: Path, series: Series, title: str, xlabel: str, ylabel: str,
            xlog: bool = True, ylog: bool = True, note: str = "") -> Path | None:
    series = {name: points for name, points in series.items() if points}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name, points in series.items():
        xs, ys = zip(*sorted(points))
        bold = name.startswith(("auptimate", "process", "engine", "store", "ledger"))
        ax.plot(xs, ys, marker="o", linewidth=2.2 if bold else 1.2,
                linestyle="-" if bold else "--", label=name)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:,.10g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    heights = [y for points in series.values() for _, y in points]
    narrow = max(heights) < 20 * min(heights)  # within about a decade: label the minor ticks too
    ax.yaxis.set_minor_formatter(plain if narrow else FuncFormatter(lambda value, _: ""))
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, alpha=0.7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw(directory: Path, results: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Draw every picture whose results are in ``results`` (by JSON stem; read from
    ``directory`` when not given) into ``directory``; the files written."""
    if results is None:
        results = {path.stem: json.loads(path.read_text())
                   for path in sorted(directory.glob("*.json"))}
    engine, ranking = results.get("engine", {}), results.get("ranking", {})
    ledger = results.get("ledger", {})
    pools = engine.get("scaling_pools", {}).get("transactions")
    alerts = engine.get("scaling_alerts", {}).get("transactions")
    jobs: list[Callable[[], Path | None]] = [
        lambda: _figure(directory / "ranking_rows.png", ranking_series(ranking),
                        "Top investors of a CSV file: seconds against rows (best round)",
                        "rows", "seconds"),
        lambda: _figure(directory / "engine_pools.png", engine_pool_series(engine),
                        f"Alert engine: transactions/s against pools ({pools or 0:,} "
                        "transactions, threshold + spike)", "pools", "transactions/s"),
        lambda: _figure(directory / "engine_alerts.png", engine_alert_series(engine),
                        f"Alert engine: transactions/s against alerts ({alerts or 0:,} "
                        f"transactions, {engine.get('pools', 0):,} pools)",
                        "alerts per 1,000 transactions",
                        "transactions/s", xlog=False),
        lambda: _figure(directory / "redis_batches.png",
                        redis_series(engine, results.get("redis_store", {})),
                        "Redis: throughput against the batch size (one local redis-server)",
                        "batch size", "per second"),
        lambda: _figure(directory / "ledger_clients.png", ledger_client_series(ledger),
                        "Ledger on PostgreSQL: investments/s against concurrent clients "
                        "(one process each)", "clients", "writes/s",
                        note=f"{ledger.get('machine', '')}: clients and server share its cores"),
        lambda: _figure(directory / "ledger_sizes.png", ledger_size_series(ledger),
                        "Ledger: investments/s from one client against the pool's members",
                        "members", "writes/s"),
    ]
    return [path for job in jobs if (path := job()) is not None]


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results"
    for path in draw(directory):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
