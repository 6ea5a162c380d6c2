"""The benchmark runner: discovery, arguments, tables from each module's results, the README block.

No benchmark is run here (speed is never a test); the tables are built from results in the
format each module writes, so a module that changes its format is noticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks import run

LOOP = "hand-written deque loop, per event"
ONE = "process(tx) per event, MemoryWindowStore (default)"
MANY = "process_many, MemoryWindowStore (default), batches of 10,000"
COLUMNAR = "process_many, ColumnarWindowStore, batches of 10,000"
SCAN = "minute scan (the brief's design), per event"


def _row(rate: int, vs_loop: float, alerts: int = 3, same: bool | None = True) -> dict[str, Any]:
    return {"transactions": 1000, "seconds": 1000 / rate, "tx_per_second": rate,
            "vs_loop": vs_loop, "spread": 0.01, "alerts": alerts, "same_alerts": same}


ENGINE: dict[str, Any] = {
    "transactions": 1000, "pools": 100, "rounds": 3, "batch": 10_000,
    "peers": {LOOP: _row(4000, 1.0), ONE: _row(1000, 0.25), MANY: _row(2000, 0.5),
              COLUMNAR: _row(8000, 2.0), SCAN: _row(200, 0.05, 2, None)},
    "event_time_delay": {SCAN: {"alerts": 2, "mean_s": 30.0, "max_s": 55.0}},
    "history": {"transactions": 500, "histories": [100, 100_000], "slowdown": 1.2, "rows": {
        f"{ONE}, 100 pools alerted before": _row(1200, 0.3) | {"history_pools": 100},
        f"{LOOP}, 100 pools alerted before": _row(4000, 1.0) | {"history_pools": 100},
        f"{ONE}, 100,000 pools alerted before": _row(1000, 0.25) | {"history_pools": 100_000},
        f"{LOOP}, 100,000 pools alerted before": _row(4000, 1.0) | {"history_pools": 100_000},
    }},
    "alert_heavy": {"share_over": 1 / 3, "rows": {LOOP: _row(3000, 1.0, 333),
                                                  MANY: _row(1500, 0.5, 333)}},
    "alert_cost": {rule: {"transactions": 600, **{path: {
        "alerting_seconds": 0.2, "silent_seconds": 0.1, "alerts": 200, "us_per_alert": 500.0,
        "spread": 0.02} for path in ("per event", "batches")}} for rule in ("threshold", "spike")},
    "latency": {"transactions": 600, ONE: {"alerts": 200, "p50_us": 12.5, "p99_us": 40.0,
                                           "max_us": 90.0, "batch": 1}},
    "scaling_pools": {"transactions": 500, "by_pools": {
        str(p): {LOOP: _row(4000 // k, 1.0), ONE: _row(1000 // k, 0.25)}
        for k, p in enumerate((10, 1000, 100_000), start=1)}},
    "scaling_alerts": {"transactions": 500, "by_share": {
        f"{s:.3f}": {"share_over": s, "alerts_per_1000": s * 1000,
                     "rows": {LOOP: _row(4000, 1.0), ONE: _row(900, 0.22)}}
        for s in (0.0, 0.1, 1.0)}},
    "redis_batches": {"transactions": 500, "by_batch": {
        str(b): {"batch": b, "seconds": 1.0, "tx_per_second": b * 10, "spread": 0.0,
                 "alerts": 3} for b in (100, 1000)}},
}

RANKING: dict[str, Any] = {"repeat": 3, "one_shot": [{
    "rows": 1_000_000,
    "peers": {"auptimate top-investors": {"seconds": 0.2}, "duckdb": {"seconds": 0.3},
              "polars": {"seconds": 0.1}, "pandas": {"seconds": 0.25},
              "sqlite (query only)": {"seconds": 0.9, "load_seconds": 5.0}},
    "same_top5_ids": {"auptimate top-investors": True, "duckdb": True, "polars": True,
                      "pandas": True, "sqlite (query only)": True},
}]}

REDIS_STORE: dict[str, Any] = {"pools": 1000, "peers": {
    "observe_many (batches of 5,000)": {"events": 300_000, "seconds": 3.0,
                                        "events_per_second": 100_000},
    "observe (one round trip per event)": {"events": 20_000, "seconds": 2.0,
                                           "events_per_second": 10_000},
    "limits MovingWindowRateLimiter (Redis)": {"events": 10_000, "seconds": 4.0,
                                               "events_per_second": 2_500},
}}


def test_discovery_finds_every_bench_module() -> None:
    names = run.discover()
    assert "bench_engine" in names and "bench_ranking" in names
    assert all(name.startswith("bench_") for name in names)
    assert names == sorted(names)


def test_quick_arguments_use_each_modules_quick_option() -> None:
    for name in run.discover():
        source = (run.HERE / f"{name}.py").read_text()
        assert ("--quick" in run.arguments(name, quick=True)) == ("--quick" in source)


def test_engine_table_has_each_path_its_rate_against_the_loop_and_the_check() -> None:
    tables = run.tables_for("engine", ENGINE)
    rows = {row[0]: row for row in tables[0].rows}
    assert rows[f"**{ONE}** (ours)"][2:] == ["1,000", "0.25x", "3", "yes"]
    assert rows[LOOP][3] == "1.00x"
    assert rows[SCAN][-1] == "-"  # other rules by design: not compared
    titles = [table.title for table in tables]
    assert any("after a history" in title for title in titles)
    assert any("alert-heavy" in title for title in titles)
    assert any("raising an alert" in title for title in titles)
    assert any("latency in process" in title for title in titles)
    assert any("against pools" in title for title in titles)
    assert any("RedisWindowStore against the batch size" in title for title in titles)


def test_engine_headlines_name_store_batching_and_size_and_measure_latency() -> None:
    lines = run.headlines({"engine": ENGINE})
    text = "\n".join(lines)
    assert "latency: 0 s" not in text and "alert latency in process" in text
    per_event = next(line for line in lines if line.startswith("`process(tx)` per event on"))
    assert "MemoryWindowStore" in per_event and "0.25x" in per_event
    batch = next(line for line in lines if line.startswith("`process_many` on the default"))
    assert "batches of 10,000" in batch and "third of the transactions" in batch
    columnar = next(line for line in lines if "ColumnarWindowStore" in line)
    assert "not the default" in columnar and "2.00x" in columnar
    assert any("1,000 transactions over 100 pools" in line for line in lines)
    assert any("after 100 and after 100,000 pools" in line for line in lines)
    assert any("p50 12.5 µs, p99 40.0 µs" in line for line in lines)
    assert any("threshold 500.0 µs per event" in line for line in lines)
    ENGINE["alert_cost"]["spike"]["batches"]["us_per_alert"] = -1.0
    try:
        lines = run.headlines({"engine": ENGINE})
    finally:
        ENGINE["alert_cost"]["spike"]["batches"]["us_per_alert"] = 500.0
    assert any("under the run's noise in batches" in line for line in lines)


def test_ranking_headline_names_every_peer_and_the_fastest_where_it_wins() -> None:
    [line] = run.headlines({"ranking": RANKING})
    for peer in ("duckdb 0.30 s", "polars 0.10 s", "pandas 0.25 s", "sqlite (query only)"):
        assert peer in line
    assert "fastest peer: polars, ours takes 2.00x its time" in line
    assert "1,000,000-row" in line


def test_redis_store_compares_per_event_with_per_event_and_batches_apart() -> None:
    per_event, batches = run.tables_for("redis_store", REDIS_STORE)
    assert [row[0] for row in per_event.rows] == [
        "**observe (one round trip per event)** (ours)", "limits MovingWindowRateLimiter (Redis)"]
    assert per_event.rows[1][-1] == "4.00x"  # 10,000 / 2,500: not the batched 40x
    assert batches.rows == [["**observe_many (batches of 5,000)** (ours)", "batches of 5,000",
                             "300,000", "100,000", "1.00x"]]
    lines = run.headlines({"redis_store": REDIS_STORE})
    assert "4.00x the rate of limits MovingWindowRateLimiter (Redis) (2,500)" in lines[0]
    assert "one call per event" in lines[0]
    assert "limits" not in lines[1] and "no peer in this run has a batch call" in lines[1]


def test_redis_store_rows_say_their_batch_and_whether_they_are_ours() -> None:
    def peer(events_per_second: int, batch: int, ours: bool) -> dict[str, Any]:
        return {"events": 1000, "seconds": 1.0, "events_per_second": events_per_second,
                "batch": batch, "ours": ours}

    data = {"pools": 1000, "batch": 5_000, "peers": {
        "observe_many (batches of 5,000)": peer(100_000, 5_000, True),
        "observe_many (batches of 500)": peer(50_000, 500, True),
        "observe_many (batches of 5,000, with window sums)": peer(90_000, 5_000, True),
        "by hand: ZADD + 2 ZCOUNT per event, pipelined (batches of 5,000)":
            peer(200_000, 5_000, False),
        "observe (one call per event)": peer(10_000, 1, True),
        "by hand: ZADD + 2 ZCOUNT per event, one pipelined round trip each":
            peer(12_500, 1, False),
    }}
    per_event, batches = run.tables_for("redis_store", data)
    assert per_event.rows[1][0].startswith("by hand") and per_event.rows[1][-1] == "0.80x"
    assert batches.columns[-1] == "observe_many (batches of 5,000) is faster by"
    assert batches.rows[3][-1] == "0.50x"  # the hand-written batches win: shown, not hidden
    single, batched = run.headlines({"redis_store": data})
    assert "0.80x the rate of by hand" in single
    assert "batches of 5,000" in batched and "0.50x the rate of by hand" in batched


def test_windows_headline_says_columnar_window_store() -> None:
    peers = {
        "ColumnarWindowStore.observe_many (batches of 10,000)": {"events_per_second": 1_000_000},
        "MemoryWindowStore.observe_many, exact (batches of 10,000)": {
            "events_per_second": 500_000},
        "MemoryWindowStore.observe, one call per event": {"events_per_second": 100_000},
        "deque per pool, ids remembered (same job)": {"events_per_second": 800_000},
        "deque per pool, no ids (floor, not idempotent)": {"events_per_second": 1_600_000},
        "limits MovingWindowRateLimiter + MemoryStorage": {"events_per_second": 20_000},
    }
    data = {"events": 1000, "pools": 10, "batch": 10_000, "windows": ["1 minute", "1 hour"],
            "peers": {name: {"seconds": 1.0, "same_counts": True, **p}
                      for name, p in peers.items()}}
    lines = run.headlines({"windows": data})
    assert lines[0].startswith("in-memory windows per event") and "5.00x the `limits`" in lines[0]
    assert lines[1].startswith("columnar window store (`ColumnarWindowStore.observe_many`")
    assert "limits" not in lines[1]  # batches are not compared with a per-event peer
    assert not any("memory window store (columnar" in line for line in lines)


def test_workers_report_alerts_checked_and_latency() -> None:
    data = {"transactions": 100, "alerts": 3, "rows": {
        "1 worker (Redis Streams)": {"seconds": 1.0, "per_second": 100, "alerts": 3,
                                     "same_alerts": True, "redis_busy": 0.5},
        "1 engine in process, memory store": {"seconds": 0.1, "per_second": 1000, "alerts": 3,
                                              "same_alerts": True}},
        "latency": {"transactions": 60, "rate": 2000, "alerts": 20, "same_alerts": True,
                    "p50_ms": 3, "p99_ms": 9.5, "max_ms": 12}}
    tables = run.tables_for("workers", data)
    assert tables[0].rows[0][3] == "yes"
    assert tables[1].rows == [["20", "yes", "3", "9.5", "12"]]
    assert any("p50 3 ms, p99 9.5 ms" in line for line in run.headlines({"workers": data}))


def test_pictures_are_drawn_from_the_results(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import plots

    written = plots.draw(tmp_path, {"engine": ENGINE, "ranking": RANKING,
                                    "redis_store": REDIS_STORE})
    assert sorted(path.name for path in written) == [
        "engine_alerts.png", "engine_pools.png", "ranking_rows.png", "redis_batches.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
    assert plots.redis_series(ENGINE, REDIS_STORE)[
        "store observe_many, one redis-server (events/s)"] == [(5000, 100_000)]
    assert plots.draw(tmp_path, {}) == []


def test_an_unknown_module_gets_generic_tables_with_its_first_peer_as_ours() -> None:
    data = {"cases": [{"peers": {"ours": {"seconds": 2.0}, "theirs": {"seconds": 6.0}}}]}
    [table] = run.tables_for("newthing", data)
    assert table.rows == [["**ours** (ours)", "2", "1.00x"], ["theirs", "6", "3.00x"]]
    rated = {"peers": {"a": {"seconds": 1.0, "events_per_second": 900},
                       "b": {"seconds": 1.0, "events_per_second": 300}}}
    assert run.tables_for("rates", rated)[0].rows[1] == ["b", "300", "3.00x"]


def test_a_changed_format_falls_back_to_the_generic_reading() -> None:
    changed = {"peers": {"engine/memory": {"seconds": 1.0}, "other": {"seconds": 2.0}}}
    [table] = run.tables_for("engine", changed)
    assert table.rows[1] == ["other", "2", "2.00x"]


def test_committed_results_render(tmp_path: Path) -> None:
    results = {path.stem: json.loads(path.read_text())
               for path in sorted(run.RESULTS.glob("*.json"))}
    outcome = run.Outcome("all", [], 1.0, 0, results)
    text = run.report([outcome], {"cpu": "test cpu", "cores": "2"}, quick=False, when="today")
    assert "Machine: cpu test cpu; cores 2." in text
    assert "a full run (`python -m benchmarks`)" in text
    quick = run.report([outcome], {}, quick=True, when="today")
    assert "a quick run (`python -m benchmarks --quick`)" in quick
    for name in results:
        assert f"[{name}.md]({name}.md)" in text
    assert "(ours)" in text


def test_readme_block_is_replaced_and_quick_never_overwrites_full(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    report = tmp_path / "benchmarks" / "results" / "README.md"
    readme.write_text(f"intro\n{run.BEGIN}\nold\n{run.END}\noutro\n")
    picture = report.parent / run.README_PICTURE
    assert run.update_readme(["ratio one"], False, report, "today", readme, picture=picture)
    text = readme.read_text()
    assert "- ratio one" in text and "old" not in text
    assert "](benchmarks/results/engine_pools.png)" in text
    assert "(benchmarks/results/README.md)" in text and text.endswith("outro\n")
    assert not run.update_readme(["quick ratio"], True, report, "later", readme)
    assert "quick ratio" not in readme.read_text()


def test_dedup_table_keeps_per_event_and_batch_rows_apart_from_a_ratio() -> None:
    data = {"transactions": 100, "rounds": 3, "stream_span_hours": 2.0, "alerts": 4,
            "store": "MemoryWindowStore (exact windows)",
            "peers": {"dedup 24 h, process(tx) per event": {
                "seconds": 1.0, "transactions_per_second": 100.0}},
            "memory": {"dedup 24 h": {"ids_held": 100, "events_held": 50,
                                      "peak_bytes": 2**20}}}
    speed, memory = run.tables_for("dedup", data)
    assert speed.rows == [["**dedup 24 h, process(tx) per event** (ours)", "100"]]
    assert memory.rows == [["dedup 24 h", "100", "50", "1.0"]]
