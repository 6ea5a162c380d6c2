"""The benchmark runner: discovery, arguments, tables from each module's results, the README block.

No benchmark is run here (speed is never a test); the tables are built from results in the
format each module writes, so a module that changes its format is noticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import run

ENGINE: dict[str, Any] = {
    "transactions": 1000,
    "peers": {
        "engine/memory": {"seconds": 0.5, "tx_per_second": 2000, "alerts": 3},
        "deque loop": {"seconds": 0.25, "tx_per_second": 4000, "alerts": 3},
        "minute scan": {"seconds": 5.0, "tx_per_second": 200, "alerts": 2},
    },
    "latency_seconds": {"engine": {"n": 2, "mean": 0.0, "max": 0.0},
                        "minute scan": {"n": 2, "mean": 30.0, "max": 55.0}},
}


def test_discovery_finds_every_bench_module() -> None:
    names = run.discover()
    assert "bench_engine" in names and "bench_ranking" in names
    assert all(name.startswith("bench_") for name in names)
    assert names == sorted(names)


def test_quick_arguments_use_each_modules_quick_option() -> None:
    for name in run.discover():
        source = (run.HERE / f"{name}.py").read_text()
        assert ("--quick" in run.arguments(name, quick=True)) == ("--quick" in source)


def test_engine_table_has_our_figure_each_peer_and_the_ratio() -> None:
    tables = run.tables_for("engine", ENGINE)
    rows = {row[0]: row for row in tables[0].rows}
    assert rows["**engine/memory** (ours)"][-1] == "1.00x"
    assert rows["deque loop"][-1] == "0.50x"  # the loop is twice as fast: ratio below 1
    assert rows["minute scan"][-1] == "10x"
    assert tables[1].rows[1] == ["minute scan", "2", "30.0", "55.0"]


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
    for name in results:
        assert f"[{name}.md]({name}.md)" in text
    assert "(ours)" in text


def test_readme_block_is_replaced_and_quick_never_overwrites_full(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    report = tmp_path / "benchmarks" / "results" / "README.md"
    readme.write_text(f"intro\n{run.BEGIN}\nold\n{run.END}\noutro\n")
    assert run.update_readme(["ratio one"], False, report, "today", readme)
    text = readme.read_text()
    assert "- ratio one" in text and "old" not in text
    assert "(benchmarks/results/README.md)" in text and text.endswith("outro\n")
    assert not run.update_readme(["quick ratio"], True, report, "later", readme)
    assert "quick ratio" not in readme.read_text()
