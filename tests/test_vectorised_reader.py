"""The vectorised reader gives what the input pipeline gives: the same transactions in the same
order, the same rejected rows and the same first error, whatever the block size."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import RowError, Transaction
from auptimate_core.io.readers import read_transactions
from auptimate_core.io.schema import RejectedRow

pytest.importorskip("polars")

from auptimate_core.io.vectorised import transaction_batches

BRIEF = "investor_id,syndicate_id,transaction_amount,transaction_date\n"
LIBRARY = "id,investor_id,pool_id,amount,timestamp,kind\n"


def key(tx: Transaction) -> tuple[str, ...]:
    return (tx.id, tx.investor_id, tx.pool_id, repr(tx.amount), repr(tx.timestamp), tx.kind)


def pipeline(path: Path) -> tuple[list[tuple[str, ...]], list[RejectedRow], RowError | None]:
    rejected: list[RejectedRow] = []
    rows = [key(tx) for tx in read_transactions(path, skip_invalid=True,
                                                on_reject=rejected.append)]
    try:
        for _ in read_transactions(path):
            pass
        first = None
    except RowError as error:
        first = error
    return rows, rejected, first


def vectorised(path: Path, block: int
               ) -> tuple[list[tuple[str, ...]], list[RejectedRow], RowError | None]:
    rejected: list[RejectedRow] = []
    batches = list(transaction_batches(str(path), skip_invalid=True, on_reject=rejected.append,
                                       block=block, vectorise_from=0))
    assert all(batches)
    try:
        for _ in transaction_batches(str(path), block=block, vectorise_from=0):
            pass
        first = None
    except RowError as error:
        first = error
    return [key(tx) for batch in batches for tx in batch], rejected, first


def same(path: Path, block: int) -> None:
    rows, rejected, first = pipeline(path)
    got_rows, got_rejected, got_first = vectorised(path, block)
    assert got_rows == rows
    assert got_rejected == rejected
    assert (got_first is None) == (first is None)
    if first is not None and got_first is not None:
        assert str(got_first) == str(first)


def library_line(i: int, amount: str = "10.50", when: str = "2026-03-01T10:00:00+01:00",
                 kind: str = "investment") -> str:
    return f"t{i},inv{i % 7},p{i % 3},{amount},{when},{kind}\n"


@pytest.mark.parametrize("block", [40, 333, 4096, 1 << 20])
def test_plain_blocks_bad_rows_blank_lines_and_a_late_quote(tmp_path: Path, block: int) -> None:
    lines = [library_line(i) for i in range(300)]
    lines[50] = library_line(50, amount="1_000")
    lines[120] = "\n"
    lines[121] = library_line(121, when="2026-03-01T10:00:00")  # no offset: rejected
    lines[180] = library_line(180, kind="gift")
    lines[200] = library_line(200, when="2026-03-01")
    lines[250] = 't250,"inv,1",p1,5,2026-03-01,fee\n'
    lines[251] = 't251,inv1,"p\n1",5,2026-03-01,fee\n'
    path = tmp_path / "tx.csv"
    path.write_text(LIBRARY + "".join(lines))
    same(path, block)


@pytest.mark.parametrize("block", [30, 500, 1 << 20])
def test_row_numbers_are_ids_across_blocks_of_either_kind(tmp_path: Path, block: int) -> None:
    rows = [f"inv{i % 5},p{i % 4},{i + 1}.25,2026-03-0{1 + i % 9}\n" for i in range(200)]
    rows[70] = "\n"
    rows[90] = "inv1,p1,oops,2026-03-01\n"
    rows[91] = "   \n"
    path = tmp_path / "brief.csv"
    path.write_text(BRIEF + "".join(rows) + "inv9,p9,1,2026-03-09")  # no final line break
    same(path, block)
    ids = [row[0] for row in vectorised(path, block)[0]]
    assert ids == [row[0] for row in pipeline(path)[0]] and ids[-1] == "199"


def test_crlf_lines_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_bytes(LIBRARY.encode() + b"".join(
        library_line(i).replace("\n", "\r\n").encode() for i in range(40))
        + b"t99,inv\xff,p1,5,2026-03-01,fee\r\n" + library_line(41).encode())
    for block in (64, 1 << 20):
        same(path, block)


def test_standard_input_and_json_lines_go_through_the_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "tx.jsonl"
    path.write_text('{"id": "t1", "investor_id": "a", "pool_id": "p", "amount": "5", '
                    '"timestamp": "2026-03-01"}\n{"id": "t2"}\n')
    same(path, 1 << 20)


ODD_IDS = ["ann", "bob", " ann", "", "ä", '"q"', "a b"]
ODD_AMOUNTS = ["1", "2.50", "0", "-1", "1e2", " 3", ".5", "5.", "1.1234567", "0001.5", ""]
ODD_TIMES = ["2026-01-01", "2026-02-30", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00",
             "2026-01-01 10:00+02:00", "20260101", ""]


@given(rows=st.lists(st.one_of(
    st.tuples(st.sampled_from(ODD_IDS), st.sampled_from(ODD_IDS), st.sampled_from(ODD_AMOUNTS),
              st.sampled_from(ODD_TIMES)).map(lambda r: ",".join(r) + "\n"),
    st.sampled_from(["\n", "ann,p1\n", "ann,p1,1,2026-01-01,x\n"])), max_size=40),
    block=st.sampled_from([8, 64, 1 << 20]))
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_file_reads_as_the_pipeline_reads_it(
    tmp_path_factory: pytest.TempPathFactory, rows: list[str], block: int
) -> None:
    path = tmp_path_factory.mktemp("odd") / "x.csv"
    path.write_text(BRIEF + "".join(rows), encoding="utf-8")
    same(path, block)
