"""The vectorised file ranking: same answer as the input pipeline and top_investors, or a clear
hand-off to the pipeline."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction, ValidationError, top_investors
from auptimate_core.money import MAX_AMOUNT
from auptimate_core.ranking.vectorised import ENGINES, NotVectorised, fast_top_investors
from tests.ranking_model import BASE, INVESTORS, KINDS_DRAWN, POOLS

pytest.importorskip("polars")
pytest.importorskip("duckdb")

BRIEF = ["investor_id", "syndicate_id", "transaction_amount", "transaction_date"]
LIBRARY = ["id", "investor_id", "pool_id", "amount", "timestamp", "kind"]


def write(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]],
          newline: str = "\n") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def brief_rows(txs: Sequence[Transaction]) -> list[list[str]]:
    return [[t.investor_id, t.pool_id, format(t.amount, "f"), t.timestamp.date().isoformat()]
            for t in txs]


def library_rows(txs: Sequence[Transaction]) -> list[list[str]]:
    return [[t.id, t.investor_id, t.pool_id, format(t.amount, "f"), t.timestamp.isoformat(),
             t.kind] for t in txs]


amounts = st.one_of(
    st.sampled_from(["1", "2", "1.5", "0.5", "1.50", "3", "100.25", "007.10"]),
    st.decimals(min_value=Decimal("0.000001"), max_value=MAX_AMOUNT,
                places=6).map(lambda d: format(d, "f")),
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                           timezone(timedelta(hours=-8))])


@st.composite
def plain_transactions(draw: st.DrawFn) -> list[Transaction]:
    size = draw(st.integers(0, 50))
    ids = st.sampled_from([*INVESTORS, "ä-1", "x y"])
    return [
        Transaction(
            f"t{i}", draw(ids), draw(st.sampled_from([*POOLS, "p 9"])), Decimal(draw(amounts)),
            (BASE + timedelta(minutes=draw(st.integers(0, 100_000)),
                              microseconds=draw(st.sampled_from([0, 1, 500_000]))))
            .astimezone(draw(offsets)),
            draw(KINDS_DRAWN),
        )
        for i in range(size)
    ]


def same(a: list[object], b: list[object]) -> None:
    assert a == b
    assert [str(r.total_amount) for r in a] == [str(r.total_amount) for r in b]  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", sorted(ENGINES))
@given(txs=plain_transactions(), n=st.integers(1, 9), crlf=st.booleans())
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_plain_files_in_both_styles_match_top_investors(
    tmp_path: Path, engine: str, txs: list[Transaction], n: int, crlf: bool
) -> None:
    newline = "\r\n" if crlf else "\n"
    brief = write(tmp_path / "brief.csv", BRIEF, brief_rows(txs), newline)
    got = fast_top_investors(brief, n, engine=engine)
    assert got.rows == len(txs) and got.style == "brief"
    # The brief's header has no kind: every row is an investment.
    as_investments = [attrs.evolve(t, kind="investment") for t in txs]
    same(got.ranks, top_investors(as_investments, n))  # type: ignore[arg-type]
    library = write(tmp_path / "library.csv", LIBRARY, library_rows(txs), newline)
    got = fast_top_investors(library, n, engine=engine)
    assert got.style == "library"
    same(got.ranks, top_investors(txs, n))  # type: ignore[arg-type]


def test_columns_may_come_in_any_order_and_id_and_kind_are_optional(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", ["amount", "timestamp", "pool_id", "investor_id"],
                 [["5.5", "2024-01-01", "p1", "ann"], ["1", "2024-01-02T10:00:00Z", "p2", "ann"]])
    result = fast_top_investors(path)
    assert [(r.investor_id, r.unique_pools, str(r.total_amount)) for r in result.ranks] == [
        ("ann", 2, "6.5")]


GOOD = ["ann", "p1", "10.00", "2024-01-01"]


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("field", "value"), [
    (0, ""), (0, " ann"), (0, "ann\t"), (0, "ann\u00a0"), (1, ""), (1, "p1 "),
    (2, "0"), (2, "0.00"), (2, "-1"), (2, "1e3"), (2, " 5"), (2, "1.1234567"), (2, ".5"),
    (2, "5."), (2, "1_000"), (2, ""), (2, "NaN"), (2, "123456789012345678901"),
    (2, "1000000000000000.000001"),
    (3, ""), (3, "2024-02-30"), (3, "2023-02-29"),
    (3, "2100-02-29"), (3, "1900-02-29"), (3, "2024-04-31"), (3, "2024-13-01"), (3, "2024-1-1"),
    (3, "2024-01-01T10:00:00"), (3, "2024-01-01T24:00:00Z"), (3, "2024-01-01T10:00:60Z"),
    (3, "2024-01-01T10:00:00.1234567Z"), (3, "yesterday"), (3, "0999-01-01"),
])
def test_rows_that_are_not_plain_go_to_the_input_pipeline(
    tmp_path: Path, engine: str, field: int, value: str
) -> None:
    odd = list(GOOD)
    odd[field] = value
    path = write(tmp_path / "x.csv", BRIEF, [GOOD, odd, GOOD])
    with pytest.raises(NotVectorised, match="not plain"):
        fast_top_investors(path, engine=engine)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty"),
    (b"\xef\xbb\xbfinvestor_id,syndicate_id,transaction_amount,transaction_date\n", "byte-order"),
    (b"Investor_ID,syndicate_id,amount,transaction_date\nann,p1,1,2024-01-01\n", "header"),
    (b"investor_id,syndicate_id,pool_id,amount,transaction_date\nann,p1,p1,1,2024-01-01\n",
     "header"),
    (b"investor_id,investor_id,transaction_amount,transaction_date\n", "repeats"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date,note\n", "header"),
    (b'investor_id,syndicate_id,transaction_amount,transaction_date\n"ann",p1,1,2024-01-01\n',
     "quotes|not plain"),
    (b'investor_id,syndicate_id,transaction_amount,transaction_date\n"a,b",p1,1,2024-01-01\n',
     "quotes|not plain|could not read"),
    (b'investor_id,syndicate_id,transaction_amount,transaction_date\n"a\nb",p1,1,2024-01-01\n',
     "quotes|not plain|could not read"),
    (b'investor_id,syndicate_id,transaction_amount,transaction_date\nann,p1,"1",2024-01-01\n',
     "quotes|not plain"),
    (b'id,investor_id,pool_id,amount,timestamp,kind\n"t1",ann,p1,1,2024-01-01,fee\n',
     "quotes|not plain"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\nann\rbob,p1,1,2024-01-01\n",
     "not plain|could not read"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\nann,p1,1,2024-01-01\n\n"
     b"bob,p1,1,2024-01-01\n", "blank|not plain"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\nann,p1,1,2024-01-01,x\n",
     "could not read"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\nann,p1\n",
     "could not read|not plain"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\n\xff,p1,1,2024-01-01\n",
     "could not read"),
    (b"investor_id,syndicate_id,transaction_amount,transaction_date\nann\x00,p1,1,2024-01-01\n",
     "could not read|not plain"),
    (b"id,investor_id,pool_id,amount,timestamp,kind\nt1,ann,p1,1,2024-01-01,gift\n",
     "not plain"),
    (b"id,investor_id,pool_id,amount,timestamp,kind\n,ann,p1,1,2024-01-01,fee\n", "not plain"),
])
def test_files_that_are_not_plain_go_to_the_input_pipeline(
    tmp_path: Path, engine: str, content: bytes, reason: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(NotVectorised, match=reason):
        fast_top_investors(path, engine=engine)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_leap_days_and_month_ends_are_plain(tmp_path: Path, engine: str) -> None:
    days = ["2024-02-29", "2000-02-29", "1600-02-29", "2023-01-31", "2023-12-31T23:59:59.999999Z",
            "2024-02-29 00:00+14:00", "8999-12-31"]
    rows = [["ann", f"p{i}", "1", day] for i, day in enumerate(days)]
    result = fast_top_investors(write(tmp_path / "x.csv", BRIEF, rows), engine=engine)
    assert result.rows == len(days) and result.ranks[0].unique_pools == len(days)


def test_a_header_alone_ranks_nobody(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", BRIEF, [])
    for engine in ENGINES:
        assert fast_top_investors(path, engine=engine).ranks == []


def test_arguments_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", BRIEF, [GOOD])
    with pytest.raises(ValidationError, match="engine: must be 'auto' or one of"):
        fast_top_investors(path, engine="spark")
    with pytest.raises(ValidationError, match="^n: "):
        fast_top_investors(path, 0)
    with pytest.raises(FileNotFoundError):
        fast_top_investors(tmp_path / "missing.csv")


ODD_IDS = ["ann", "bob", " ann", "ann ", "", "a\tb", "ä", "\u00a0x", "x\u2003", "\"q\"", "a;b"]
ODD_AMOUNTS = ["1", "2.50", "0", "0.0", "-1", "1e2", " 3", "3 ", "1_0", ".5", "5.", "1.1234567",
               "0001.5", "99999999999999999999.999999", "NaN", "Infinity", ""]
ODD_TIMES = ["2024-01-01", "2024-02-30", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00",
             "2024-01-01 10:00+02:00", "2024-01-01T10:00:00.5-08:00", "20240101", " 2024-01-01",
             "2024-01-01T10:00:00+00:00:00", "9999-12-31", ""]


@given(rows=st.lists(st.tuples(st.sampled_from(ODD_IDS), st.sampled_from(ODD_IDS),
                               st.sampled_from(ODD_AMOUNTS), st.sampled_from(ODD_TIMES)),
                     max_size=12))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fast_path_answers_only_what_the_input_pipeline_answers_the_same(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str, str]]
) -> None:
    """For any file, the fast path hands off, or gives exactly the pipeline's ranking (and never
    ranks a file the pipeline would reject a row of)."""
    from auptimate_core import RowError
    from auptimate_core.io.readers import read_transactions

    path = write(tmp_path_factory.mktemp("odd") / "x.csv", BRIEF, [list(r) for r in rows])
    try:
        expected: list[object] | None = top_investors(read_transactions(path), 9)
    except RowError:
        expected = None
    for engine in ENGINES:
        try:
            got = fast_top_investors(path, 9, engine=engine).ranks
        except NotVectorised:
            continue
        assert expected is not None, (engine, "ranked a file the reader rejects")
        same(got, expected)  # type: ignore[arg-type]
