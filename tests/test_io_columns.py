"""The column reader behind ``monitor`` (``column_batches``) gives the input pipeline's rows, and
the engine raises the same alerts from its columns as from the pipeline's Transactions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import RowError, Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.cli import main
from auptimate_core.columns import AmountColumn, CodedText, TransactionColumns
from auptimate_core.io.plain import VECTORISE_FROM
from auptimate_core.io.readers import read_transactions
from auptimate_core.io.schema import RejectedRow

pytest.importorskip("polars")

from auptimate_core.io.vectorised import Batch, column_batches

BRIEF = "investor_id,syndicate_id,transaction_amount,transaction_date\n"
LIBRARY = "id,investor_id,pool_id,amount,timestamp,kind\n"


def rows_of(batch: Batch) -> list[Transaction]:
    if isinstance(batch, TransactionColumns):
        amounts = batch.amounts
        if isinstance(amounts, AmountColumn):  # its millionths are its amounts'
            assert [Decimal(m).scaleb(-6) for m in amounts.micros.tolist()] == list(amounts)
        pools = batch.pools
        if isinstance(pools, CodedText):
            assert len(set(pools.names)) == len(pools.names)
        return [batch.transaction(i) for i in range(len(batch))]
    return batch


def key(tx: Transaction) -> tuple[str, ...]:
    return (tx.id, tx.investor_id, tx.pool_id, repr(tx.amount), tx.timestamp.isoformat(),
            tx.kind)


def same(path: Path, block: int) -> list[Batch]:
    """Column batches of ``path`` give the pipeline's rows, rejections and first error."""
    rejected: list[RejectedRow] = []
    expected = [key(tx) for tx in read_transactions(path, skip_invalid=True,
                                                    on_reject=rejected.append)]
    got_rejected: list[RejectedRow] = []
    batches = list(column_batches(str(path), skip_invalid=True, on_reject=got_rejected.append,
                                  block=block, vectorise_from=0))
    assert all(len(batch) for batch in batches)
    assert [key(tx) for batch in batches for tx in rows_of(batch)] == expected
    assert got_rejected == rejected
    first = rejected[0] if rejected else None
    try:
        for _ in column_batches(str(path), block=block, vectorise_from=0):
            pass
        assert first is None
    except RowError as error:
        assert first is not None and (error.line, error.field) == (first.line, first.field)
    return batches


def library_line(i: int, when: str, amount: str = "10.50", kind: str = "investment") -> str:
    return f"t{i},inv{i % 7},p{i % 3},{amount},{when},{kind}\n"


@pytest.mark.parametrize("block", [64, 500, 1 << 20])
def test_utc_blocks_come_as_columns_and_others_as_transactions(tmp_path: Path,
                                                                block: int) -> None:
    times = ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5+00:00", "2026-03-01",
             "2026-03-01 10:00-00:00", "2026-03-01T10:00:00.123456Z"]
    lines = [library_line(i, times[i % len(times)], kind="refund" if i % 11 == 0
                          else "investment") for i in range(200)]
    lines[150] = library_line(150, "2026-03-01T11:00:00+01:00")  # kept with its offset
    path = tmp_path / "tx.csv"
    path.write_text(LIBRARY + "".join(lines))
    batches = same(path, block)
    # One block holds them all when it is large: then all are Transactions.
    assert any(isinstance(batch, TransactionColumns) for batch in batches) == (block < 1 << 20)
    offset = [batch for batch in batches if any(tx.id == "t150" for tx in rows_of(batch))]
    assert isinstance(offset[0], list)
    assert offset[0][[tx.id for tx in offset[0]].index("t150")].timestamp.isoformat() == (
        "2026-03-01T11:00:00+01:00")


def test_kinds_are_kept_and_a_file_without_them_is_all_investments(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(LIBRARY + "".join(library_line(i, "2026-03-01T10:00:00Z",
                                                   kind=["investment", "fee", "carry"][i % 3])
                                      for i in range(30)))
    (batch,) = same(path, 1 << 20)
    assert isinstance(batch, TransactionColumns) and batch.kinds is not None
    brief = tmp_path / "brief.csv"
    brief.write_text(BRIEF + "".join(f"inv{i},p{i % 4},{i + 1}.5,2026-03-0{1 + i % 9}\n"
                                     for i in range(40)))
    (batch,) = same(brief, 1 << 20)
    assert isinstance(batch, TransactionColumns) and batch.kinds is None
    assert list(batch.ids) == [str(i) for i in range(1, 41)]


PLAIN_TIMES = st.builds(
    lambda day, clock, offset: day + clock + (offset if clock else ""),
    st.sampled_from(["2026-01-01", "2024-02-29", "1000-01-01", "8999-12-31", "1969-12-31"]),
    st.sampled_from(["", "T00:00", " 23:59", "T12:30:45", "T12:30:45.1", "T12:30:45.000001",
                     "T12:30:45.999999"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59"]))


@given(times=st.lists(st.one_of(PLAIN_TIMES, st.sampled_from(
           ["2026-01-01T10:00:00", "2026-02-30", "20260101", ""])), min_size=1, max_size=30),
       block=st.sampled_from([8, 100, 1 << 20]))
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_time_reads_as_the_pipeline_reads_it(
    tmp_path_factory: pytest.TempPathFactory, times: list[str], block: int
) -> None:
    path = tmp_path_factory.mktemp("times") / "x.csv"
    path.write_text(LIBRARY + "".join(library_line(i, when) for i, when in enumerate(times)))
    same(path, block)


@given(moments=st.lists(st.datetimes(min_value=datetime(1000, 1, 1),
                                      max_value=datetime(8999, 12, 31, 23, 59, 59, 999999)),
                        min_size=1, max_size=30),
       layout=st.sampled_from(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
                               "%Y-%m-%dT%H:%M:%S.%f"]),
       digits=st.integers(1, 6), suffix=st.sampled_from(["Z", "+00:00"]),
       amounts=st.lists(st.decimals(min_value=Decimal("0.000001"), max_value=10**15,
                                    places=6).map(str), min_size=1))
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_times_of_one_layout_and_any_amount_read_as_the_pipeline_reads_them(
    tmp_path_factory: pytest.TempPathFactory, moments: list[datetime], layout: str,
    digits: int, suffix: str, amounts: list[str],
) -> None:
    """Times all written one way in UTC are read from their fixed places; amounts come as
    millionths unless one does not fit in 64 bits."""
    cut = 6 - digits if layout.endswith("%f") else 0
    times = [moment.strftime(layout)[:len(moment.strftime(layout)) - cut]
             + ("" if layout == "%Y-%m-%d" else suffix) for moment in moments]
    path = tmp_path_factory.mktemp("layout") / "x.csv"
    path.write_text(LIBRARY + "".join(
        library_line(i, when, amount=amounts[i % len(amounts)])
        for i, when in enumerate(times)))
    (batch,) = same(path, 1 << 20)
    assert isinstance(batch, TransactionColumns)
    assert isinstance(batch.amounts, AmountColumn) == all(
        Decimal(amount).scaleb(6) < 2**63 for amount in amounts[:len(times)])


def rules() -> list[ThresholdRule | SpikeRule]:
    return [ThresholdRule(limit=Decimal("250000")),
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                      min_count=5)]


def generated(path: Path, transactions: int) -> Path:
    result = CliRunner().invoke(main, ["generate", "--out", str(path), "--transactions",
                                       str(transactions), "--anomalies", "--seed", "3"])
    assert result.exit_code == 0, result.output
    return path


def alerts_of(batches: Sequence[Batch], store: str) -> list[dict[str, object]]:
    from auptimate_core.backends.registry import window_store_from_url

    with AlertEngine(rules(), store=window_store_from_url(store)) as engine:
        alerts = []
        for batch in batches:
            alerts += (engine.process_columns(batch) if isinstance(batch, TransactionColumns)
                       else engine.process_many(batch))
    return [alert.to_dict() for alert in alerts]


@pytest.mark.parametrize("store", ["memory://", "memory+columnar://"])
def test_the_engine_raises_the_same_alerts_from_columns(tmp_path: Path, store: str) -> None:
    path = generated(tmp_path / "tx.csv", 20_000)
    batches = list(column_batches(str(path), block=1 << 16, vectorise_from=0))
    assert all(isinstance(batch, TransactionColumns) for batch in batches)
    expected = alerts_of([list(read_transactions(path))], "memory://")
    assert expected and alerts_of(batches, store) == expected


def test_monitor_on_a_large_file_prints_the_pipelines_alerts(tmp_path: Path) -> None:
    path = generated(tmp_path / "tx.csv", 20_000)
    assert path.stat().st_size >= VECTORISE_FROM
    result = CliRunner().invoke(main, ["monitor", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed == alerts_of([list(read_transactions(path))], "memory://")
    assert "20,000 transactions" in result.stderr


def test_monitor_shows_progress_between_column_batches(tmp_path: Path) -> None:
    path = generated(tmp_path / "tx.csv", 120_000)  # several blocks of the column reader
    result = CliRunner().invoke(main, ["monitor", str(path), "--progress"])
    assert result.exit_code == 0, result.output
    shown = [part for part in result.stderr.replace("\r", "\n").splitlines()
             if part.endswith("transactions read")]
    assert shown[0] != shown[-1] == "120,000 transactions read", shown


def test_monitor_on_a_large_file_stops_at_a_bad_row_or_skips_it(tmp_path: Path) -> None:
    path = generated(tmp_path / "tx.csv", 20_000)
    lines = path.read_text().splitlines(keepends=True)
    lines[15_000] = lines[15_000].replace(",investment", ",gift")
    path.write_text("".join(lines))
    strict = CliRunner().invoke(main, ["monitor", str(path), "--format", "jsonl"])
    assert strict.exit_code == 2 and "line 15001: kind:" in strict.stderr
    rejects = tmp_path / "rejects.csv"
    skipped = CliRunner().invoke(main, ["monitor", str(path), "--format", "jsonl",
                                        "--skip-invalid", "--rejects", str(rejects)])
    assert skipped.exit_code == 0, skipped.output
    assert "rejected line 15001: kind:" in skipped.stderr
    assert "19,999 transactions" in skipped.stderr
    assert "15001,kind," in rejects.read_text()
