"""The vectorised ranking started in a thread (ranking.engines): what can be told before the
file is read is raised at once, the engine's own errors when its result is asked for, and
nothing of the ranking's other forms or of attrs is imported before the engine starts."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import ValidationError, top_investors
from auptimate_core.io.plain import NotVectorised
from auptimate_core.io.readers import read_transactions
from auptimate_core.money import MAX_AMOUNT
from auptimate_core.ranking import engines
from auptimate_core.ranking.engines import ENGINES, start_ranking
from auptimate_core.ranking.vectorised import fast_top_investors, finish_ranking
from tests.ranking_model import KINDS_DRAWN, model_top

pytest.importorskip("polars")
pytest.importorskip("duckdb")

HEADER = "investor_id,syndicate_id,transaction_amount,transaction_date\n"
ROWS = "ann,p1,10.50,2026-03-01\nann,p2,1,2026-03-01\nbob,p1,100,2026-03-01\n"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_started_then_finished_is_the_ranking(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + ROWS)
    started = start_ranking(path, 2, engine=engine)
    assert (started.n, started.style) == (2, "brief")
    ranking = finish_ranking(started)
    assert ranking == fast_top_investors(path, 2, engine=engine)
    assert [(r.investor_id, r.unique_pools, str(r.total_amount)) for r in ranking.ranks] == [
        ("ann", 2, "11.50"), ("bob", 1, "100")]


@pytest.mark.parametrize("name", ["tx.jsonl", "tx.ndjson", "tx.json", "TX.JSONL"])
def test_a_file_the_pipeline_reads_as_json_lines_is_handed_back(tmp_path: Path,
                                                                 name: str) -> None:
    path = tmp_path / name
    path.write_text(HEADER + ROWS)
    for engine in ENGINES:
        with pytest.raises(NotVectorised, match="JSON Lines"):
            start_ranking(path, 2, engine=engine)


def test_what_is_known_before_the_read_is_raised_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + ROWS)
    with pytest.raises(ValidationError, match="n: must be a positive integer"):
        start_ranking(path, 0)
    with pytest.raises(ValidationError, match="engine: must be 'auto' or one of"):
        start_ranking(path, 1, engine="pandas")
    path.write_text("investor_id,pool_id,amount\n" + ROWS)
    with pytest.raises(NotVectorised, match="header"):
        start_ranking(path, 1)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_engines_own_refusal_comes_when_the_result_is_asked_for(tmp_path: Path,
                                                                     engine: str) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + ROWS + "cy,p1,5,2026-03-01,extra\n")
    started = start_ranking(path, 2, engine=engine)
    with pytest.raises(NotVectorised):
        finish_ranking(started)
    with pytest.raises(NotVectorised):  # odd rows: the pipeline decides
        fast_top_investors(_write(tmp_path / "odd.csv", HEADER + ROWS + "cy,p1,-5,2026-03-01\n"),
                           2, engine=engine)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_nothing_but_the_engine_is_imported_before_it_starts(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx.csv", HEADER + ROWS)
    code = (
        "import json, sys\n"
        "import auptimate_core.cli.top_investors\n"
        "from auptimate_core.ranking.engines import start_ranking\n"
        f"started = start_ranking({str(path)!r}, 2, engine='polars')\n"
        "before = sorted(sys.modules)\n"
        "started.found()\n"
        "print(json.dumps(before))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    before = set(json.loads(done.stdout))
    assert "polars" in before
    unwanted = {"attrs", "attr", "auptimate_core.domain", "auptimate_core.io.schema",
                "auptimate_core.io.readers", "auptimate_core.ranking.ranks",
                "auptimate_core.ranking.incremental", "auptimate_core.ranking.vectorised",
                "sortedcontainers"}
    assert sorted(before & unwanted) == []


@pytest.mark.parametrize("name", ["tx[1].csv", "tx*.csv", "tx?.csv"])
def test_a_name_with_glob_characters_is_the_file_itself(tmp_path: Path, name: str) -> None:
    """polars reads the file named; DuckDB would read the name as a pattern, and hands the
    file back to the pipeline."""
    _write(tmp_path / "tx1.csv", HEADER + "zed,p9,5,2026-03-01\n")
    path = _write(tmp_path / name, HEADER + ROWS)
    ranking = fast_top_investors(path, 2, engine="polars")
    assert [r.investor_id for r in ranking.ranks] == ["ann", "bob"]
    with pytest.raises(NotVectorised, match="pattern"):
        fast_top_investors(path, 2, engine="duckdb")


def test_a_file_over_the_read_ahead_size_is_read_by_polars_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "tx.csv", HEADER + ROWS)
    read_ahead = fast_top_investors(path, 2, engine="polars")
    monkeypatch.setattr(engines, "_READ_AHEAD_UP_TO", 0)
    assert fast_top_investors(path, 2, engine="polars") == read_ahead


def test_a_file_that_cannot_be_read_ahead_is_handed_to_the_pipeline(tmp_path: Path) -> None:
    missing = engines._File(str(tmp_path / "gone.csv"), read_ahead=True)
    with pytest.raises(NotVectorised, match="could not read the file"):
        missing.contents()
    assert engines._File("x.csv", read_ahead=False).contents() == "x.csv"


LIBRARY = "id,investor_id,pool_id,amount,timestamp,kind\n"
# Amounts near the documented maximum (sums far past 64 bits), tiny ones, equal values written
# differently (ties), and ids up to the CSV reader's field limit.
HOSTILE_AMOUNTS = st.one_of(
    st.sampled_from(["1", "1.5", "1.50", "0.000001", "999999999999999.999999",
                     "1000000000000000", "1000000000000000.000000", "0001.25", "2"]),
    st.decimals(min_value=Decimal("0.000001"), max_value=MAX_AMOUNT, places=6)
    .map(lambda d: format(d, "f")),
)
HOSTILE_IDS = st.sampled_from(["a", "b", "c", "ä-ü", "x y", "L" * 1000, "M" * 131_072])


@st.composite
def hostile_rows(draw: st.DrawFn) -> list[tuple[str, str, str, str]]:
    return [(draw(HOSTILE_IDS), draw(st.sampled_from(["p1", "p2", "p3", "q" * 300])),
             draw(HOSTILE_AMOUNTS), draw(KINDS_DRAWN))
            for _ in range(draw(st.integers(0, 40)))]


@pytest.mark.parametrize("engine", sorted(ENGINES))
@given(rows=hostile_rows(), n=st.integers(1, 8))
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_lines_are_the_brute_force_models_on_hostile_files(
    tmp_path: Path, engine: str, rows: list[tuple[str, str, str, str]], n: int
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(LIBRARY + "".join(f"t{i},{investor},{pool},{amount},2026-03-01T00:00:00Z,"
                                      f"{kind}\n"
                                      for i, (investor, pool, amount, kind) in enumerate(rows)))
    txs = list(read_transactions(path))
    lines, read = start_ranking(path, n, engine=engine).lines()
    assert read == len(rows)
    assert [(inv, pools, Fraction(total)) for inv, pools, total in lines] == model_top(txs, n)
    # Printed as a Decimal sum of the same amounts prints.
    assert [str(total) for _, _, total in lines] == [
        str(rank.total_amount) for rank in top_investors(txs, n)]
