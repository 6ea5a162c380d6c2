"""Ids at the CSV reader's field limit: the vectorised readers measure an id in bytes, so an id
within the limit in characters but over it in bytes is left to the input pipeline, which reads
it; the answers stay the pipeline's."""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from auptimate_core import top_investors
from auptimate_core.cli import main
from auptimate_core.io.plain import NotVectorised
from auptimate_core.io.readers import field_limit, read_transactions

pytest.importorskip("polars")
pytest.importorskip("duckdb")

from auptimate_core.io.vectorised import column_batches, transaction_batches
from auptimate_core.ranking.vectorised import ENGINES, fast_top_investors


def _file(path: Path, investor: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["investor_id", "syndicate_id", "transaction_amount", "transaction_date"])
        writer.writerows([[investor, "p1", "10", "2026-01-01"], ["bob", "p1", "5", "2026-01-02"],
                          [investor, "p2", "1.5", "2026-01-03"]])
    return path


@pytest.mark.parametrize("investor", ["a" * field_limit(), "ä" * field_limit()],
                         ids=["ascii", "two-byte"])
def test_an_id_at_the_limit_ranks_as_the_pipeline_ranks(tmp_path: Path, investor: str) -> None:
    path = _file(tmp_path / "x.csv", investor)
    expected = top_investors(read_transactions(path), 3)
    assert expected[0].investor_id == investor
    for engine in ENGINES:
        with contextlib.suppress(NotVectorised):  # else left to the pipeline
            assert fast_top_investors(path, 3, engine=engine).ranks == expected
        shown = CliRunner().invoke(main, ["top-investors", str(path), "--engine", engine,
                                          "--format", "csv"])
        assert shown.exit_code == 0, shown.output
        assert shown.stdout.splitlines()[1] == f"{investor},2,11.5"


@pytest.mark.parametrize("investor", ["a" * field_limit(), "ä" * field_limit()],
                         ids=["ascii", "two-byte"])
def test_an_id_at_the_limit_is_read_as_the_pipeline_reads_it(tmp_path: Path,
                                                             investor: str) -> None:
    path = _file(tmp_path / "x.csv", investor)
    expected = list(read_transactions(path))
    for read in (column_batches, transaction_batches):
        got = [tx for batch in read(str(path), vectorise_from=0) for tx in
               (batch if isinstance(batch, list) else map(batch.transaction, range(len(batch))))]
        assert got == expected
