"""The vectorised ranking counts distinct pools only for the investors that can be among the
first n (an investor's investments bound its pools): files built so that the investors with
the most investments are not the ones with the most pools still rank as the input pipeline
ranks them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from auptimate_core import top_investors
from auptimate_core.io.readers import read_transactions
from auptimate_core.ranking.vectorised import ENGINES, fast_top_investors

pytest.importorskip("polars")
pytest.importorskip("duckdb")

LIBRARY = ["id", "investor_id", "pool_id", "amount", "timestamp", "kind"]


def _write(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """Library-style rows (investor, pool, amount, kind), ids and times filled in."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LIBRARY)
        for i, (investor, pool, amount, kind) in enumerate(rows):
            writer.writerow([f"t{i}", investor, pool, amount, f"2026-01-01T00:00:{i % 60:02d}Z",
                             kind])
    return path


def _misleading() -> list[tuple[str, str, str, str]]:
    rows = [("many", "p1", "1", "investment")] * 40  # 40 investments, one pool
    rows += [("refunder", f"p{i}", "5", "refund") for i in range(30)]  # no investment at all
    rows += [("fees", f"p{i}", "5", "fee") for i in range(30)]
    for k in range(5):  # 5 pools each in 5 investments, totals apart
        rows += [(f"h{k}", f"p{i}", f"{k + 1}.5", "investment") for i in range(5)]
    # 5 investments in 4 pools, the largest total; 5 in 5 pools, a total tied with h0's.
    rows += [("u", f"p{i % 4}", "900.125", "investment") for i in range(5)]
    rows += [("t", f"p{i}", "1.50", "investment") for i in range(5)]
    for k, investor in enumerate(["b", "c", "d", "e"]):  # 3 or 4 pools in 4 investments
        rows += [(investor, f"p{i % (3 + k % 2)}", f"{k + 1}.25", "investment")
                 for i in range(4)]
    rows += [("h1", "p9", "0.5", "refund"), ("b", "p8", "7", "distribution")]
    return rows


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 8, 9, 12, 20])
def test_investors_with_many_investments_in_few_pools_rank_as_the_pipeline_ranks(
    tmp_path: Path, engine: str, n: int
) -> None:
    path = _write(tmp_path / "x.csv", _misleading())
    expected = top_investors(read_transactions(path), n)
    got = fast_top_investors(path, n, engine=engine)
    assert got.ranks == expected
    assert [str(r.total_amount) for r in got.ranks] == [str(r.total_amount) for r in expected]


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_file_of_refunds_and_fees_alone_ranks_nobody(tmp_path: Path, engine: str) -> None:
    path = _write(tmp_path / "x.csv", [("a", "p1", "5", "refund"), ("b", "p2", "1", "fee")])
    assert fast_top_investors(path, 3, engine=engine).ranks == []


def _many_investors(repeaters: int, spreaders: int) -> list[tuple[str, str, str, str]]:
    """Over a hundred investors: the ones with the most investments put them in few pools
    (``repeaters`` of them, 10 investments in 2 pools), ``spreaders`` invest less in more
    pools (5 in 5), and a hundred invest once."""
    rows = [("many", "p1", "1", "investment")] * 200
    for k in range(repeaters):
        rows += [(f"r{k:03d}", f"p{i % 2}", "3.5", "investment") for i in range(10)]
    for k in range(spreaders):
        rows += [(f"h{k:03d}", f"p{i}", f"{k % 3 + 1}.75", "investment") for i in range(5)]
    rows += [(f"o{k:03d}", "p1", "2", "investment") for k in range(100)]
    return rows


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("repeaters", "spreaders"), [(0, 6), (80, 6), (300, 6), (0, 70)])
@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_rankings_of_many_investors_are_the_pipelines(
    tmp_path: Path, engine: str, repeaters: int, spreaders: int, n: int
) -> None:
    path = _write(tmp_path / "x.csv", _many_investors(repeaters, spreaders))
    expected = top_investors(read_transactions(path), n)
    got = fast_top_investors(path, n, engine=engine)
    assert got.ranks == expected
    assert [str(r.total_amount) for r in got.ranks] == [str(r.total_amount) for r in expected]
