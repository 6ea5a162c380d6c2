"""`auptimate top-investors`: both header styles, every format, both paths, bad rows."""

from __future__ import annotations

import csv
import gc
import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction, top_investors
from auptimate_core.cli.top_investors import render, top_investors_command
from tests.ranking_model import BASE, transactions

BRIEF = ["investor_id", "syndicate_id", "transaction_amount", "transaction_date"]
LIBRARY = ["id", "investor_id", "pool_id", "amount", "timestamp", "kind"]
ENGINES = ["auto", "python", "duckdb", "polars"]


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(top_investors_command, list(args), input=stdin)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def brief(txs: Sequence[Transaction]) -> list[list[str]]:
    """Rows of the brief's header, which has no kind: every row is read as an investment."""
    return [[t.investor_id, t.pool_id, format(t.amount, "f"), t.timestamp.date().isoformat()]
            for t in txs]


def as_investments(txs: Sequence[Transaction]) -> list[Transaction]:
    """What a brief file written from ``txs`` holds: the same rows, all investments."""
    return [attrs.evolve(t, kind="investment") for t in txs]


def library(txs: Sequence[Transaction]) -> list[list[str]]:
    return [[t.id, t.investor_id, t.pool_id, format(t.amount, "f"), t.timestamp.isoformat(),
             t.kind] for t in txs]


SAMPLE = [
    Transaction("1", "ann", "p1", Decimal("100.50"), BASE),
    Transaction("2", "ann", "p2", Decimal("20"), BASE + timedelta(days=1)),
    Transaction("3", "bob", "p1", Decimal("500"), BASE),
    Transaction("4", "bob", "p3", Decimal("0.50"), BASE, "fee"),
    Transaction("5", "cy", "p1", Decimal("9999"), BASE),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("style", ["brief", "library"])
def test_both_header_styles_every_engine(tmp_path: Path, engine: str, style: str) -> None:
    rows = brief(SAMPLE) if style == "brief" else library(SAMPLE)
    path = write_csv(tmp_path / "tx.csv", BRIEF if style == "brief" else LIBRARY, rows)
    result = run(str(path), "-n", "2", "--format", "json", "--engine", engine)
    assert result.exit_code == 0, result.output
    if style == "brief":  # no kind column: bob's fee row is read as an investment in p3
        assert json.loads(result.stdout) == [
            {"investor_id": "bob", "unique_pools": 2, "total_amount": "500.50"},
            {"investor_id": "ann", "unique_pools": 2, "total_amount": "120.50"},
        ]
    else:  # a fee is not an investment: bob invested in one pool
        assert json.loads(result.stdout) == [
            {"investor_id": "ann", "unique_pools": 2, "total_amount": "120.50"},
            {"investor_id": "cy", "unique_pools": 1, "total_amount": "9999"},
        ]


def test_table_and_csv_formats(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tx.csv", BRIEF, brief(SAMPLE))
    table = run(str(path))
    assert table.exit_code == 0
    assert table.stdout.splitlines() == [
        "rank  investor_id  unique_pools  total_amount",
        "   1  bob                     2        500.50",
        "   2  ann                     2        120.50",
        "   3  cy                      1          9999",
    ]
    as_csv = run(str(path), "--format", "csv", "-n", "1")
    assert as_csv.stdout == "investor_id,unique_pools,total_amount\nbob,2,500.50\n"
    assert render([], "table").endswith("(no transactions)\n")


def test_standard_input_and_json_lines(tmp_path: Path) -> None:
    text = "\n".join(",".join(row) for row in [BRIEF, *brief(SAMPLE)]) + "\n"
    from_stdin = run("-", "--format", "csv", stdin=text)
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout.splitlines()[1] == "bob,2,500.50"
    jsonl = tmp_path / "tx.jsonl"
    jsonl.write_text("".join(json.dumps(dict(zip(LIBRARY, row))) + "\n" for row in library(SAMPLE)))
    result = run(str(jsonl), "--format", "csv", "-n", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "ann,2,120.50"  # bob's fee is not an investment


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_a_bad_row_stops_the_run_with_status_2_naming_line_and_field(
    tmp_path: Path, engine: str
) -> None:
    rows = [*brief(SAMPLE[:2]), ["bob", "p1", "-5", "2024-01-01"], *brief(SAMPLE[2:])]
    path = write_csv(tmp_path / "tx.csv", BRIEF, rows)
    result = run(str(path), "--engine", engine)
    assert result.exit_code == 2
    assert "line 4: amount:" in result.stderr
    assert result.stdout == ""


def test_skip_invalid_reports_every_rejected_row_and_writes_rejects(tmp_path: Path) -> None:
    rows = [["ann", "p1", "10", "2024-01-01"], ["", "p1", "10", "2024-01-01"],
            ["bob", "p1", "ten", "2024-01-01"], ["bob", "p2", "5", "2024-13-01"],
            ["bob", "p2"], ["cy", "p1", "1", "2024-01-02"]]
    path = write_csv(tmp_path / "tx.csv", BRIEF, rows)
    rejects = tmp_path / "rejects.csv"
    result = run(str(path), "--skip-invalid", "--rejects", str(rejects), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ["ann,1,10", "cy,1,1"]
    for line, field in [(3, "investor_id"), (4, "amount"), (5, "timestamp"), (6, "row")]:
        assert f"line {line}: {field}:" in result.stderr
    assert "4 rows rejected, 2 ranked" in result.stderr
    with rejects.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["line"], r["field"]) for r in written] == [
        ("3", "investor_id"), ("4", "amount"), ("5", "timestamp"), ("6", "row")]
    assert written[1]["row"] == "bob,p1,ten,2024-01-01"


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_times_without_an_offset_need_a_time_zone(tmp_path: Path, engine: str) -> None:
    path = write_csv(tmp_path / "tx.csv", BRIEF, [["ann", "p1", "10", "2026-03-01T10:00:00"],
                                                  ["bob", "p1", "20", "2026-03-01"]])
    refused = run(str(path), "--engine", engine)
    assert refused.exit_code == 2 and "line 2: timestamp: " in refused.stderr
    assumed = run(str(path), "--engine", engine, "--timezone", "Europe/London", "--format", "csv")
    assert assumed.exit_code == 0, assumed.output
    assert assumed.stdout.splitlines()[1:] == ["bob,1,20", "ann,1,10"]


def test_usage_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tx.csv", BRIEF, brief(SAMPLE))
    assert run(str(path), "--rejects", str(tmp_path / "r.csv")).exit_code == 2
    assert run(str(path), "-n", "0").exit_code == 2
    assert run(str(path), "--format", "xml").exit_code == 2
    missing = run(str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "nope.csv" in missing.output


def test_progress_bar_goes_to_stderr_when_asked(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tx.csv", BRIEF, brief(SAMPLE) * 5000)
    result = run(str(path), "--engine", "python", "--progress", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "ranking" in result.stderr and "100%" in result.stderr
    assert "ranking" not in result.stdout


@given(txs=transactions(max_size=40, exotic=True), n=st.integers(1, 7))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_path_agrees_with_top_investors(
    tmp_path_factory: pytest.TempPathFactory, txs: list[Transaction], n: int
) -> None:
    folder = tmp_path_factory.mktemp("cli")
    files = {
        write_csv(folder / "brief.csv", BRIEF, brief(txs)): top_investors(as_investments(txs), n),
        write_csv(folder / "library.csv", LIBRARY, library(txs)): top_investors(txs, n),
    }
    for path, ranks in files.items():
        expected = [r.to_dict() for r in ranks]
        for engine in ("auto", "python"):
            result = run(str(path), "-n", str(n), "--format", "json", "--engine", engine)
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout) == expected, (path.name, engine)


@pytest.mark.parametrize("collecting", [True, False])
def test_the_vectorised_path_leaves_the_collector_as_it_found_it(
    tmp_path: Path, collecting: bool
) -> None:
    """The collector is paused while polars is imported and ranks, then put back as it was."""
    path = write_csv(tmp_path / "tx.csv", BRIEF, brief(SAMPLE))
    was = gc.isenabled()
    try:
        if not collecting:
            gc.disable()
        for rows in ([], [["zed", "p1", "-1", "2024-01-01"]]):  # ranked; then NotVectorised
            write_csv(path, BRIEF, [*brief(SAMPLE), *rows])
            result = run(str(path), "--engine", "polars", "--format", "csv", "-n", "1")
            assert result.exit_code == (2 if rows else 0), result.output
            assert gc.isenabled() is collecting
    finally:
        if was:
            gc.enable()
