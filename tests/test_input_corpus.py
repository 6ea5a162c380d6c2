"""One corpus of odd files through every reader and every command that reads files.

Each file of the corpus states what the input pipeline makes of it: the header error that stops
the read, or which rows are rejected (line and field) and how many are accepted. Every path
must agree, row for row:

- the library reader (``read_rows``), on the path and on the bytes as a stream;
- ``auptimate top-investors`` with every engine (python, auto, polars, duckdb), on the path and
  on standard input, with and without ``--skip-invalid`` (and ``--rejects``);
- ``auptimate monitor`` with ``--threshold 0``, so that every accepted row raises one alert
  naming it, and the vectorised readers behind it (``transaction_batches``, and
  ``column_batches`` with its blocks of columns) on blocks of a few bytes up to the whole file,
  with and without ``skip_invalid``;
- ``auptimate publish`` to a real Redis, the entries read back as the worker decodes them;

and where a ranking comes out, it must be the same from the list form, the incremental form,
the vectorised reader (which must hand off every file it cannot answer exactly) and SQL
(SQLite).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner, Result

from auptimate_core import InvestorRank, RowError, TopInvestors, Transaction, top_investors
from auptimate_core.cli import main
from auptimate_core.io.readers import read_rows

BRIEF = b"investor_id,syndicate_id,transaction_amount,transaction_date\n"
LIBRARY = b"id,investor_id,pool_id,amount,timestamp,kind\n"
N = 50  # more than any file's investors: the whole ranking is compared


@attrs.frozen
class Case:
    """A file and what the pipeline makes of it.

    ``fast``: True when the vectorised reader must answer, False when it must hand off, None
    when either is right (it always hands off a file with a rejected row).
    """

    name: str
    content: bytes
    accepted: int = 0
    rejected: tuple[tuple[int, str], ...] = ()
    header_error: tuple[int, str] | None = None
    suffix: str = ".csv"
    fast: bool | None = None


def lines(*rows: str) -> bytes:
    return "".join(row + "\n" for row in rows).encode()


def jsonl(*objects: object) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n"
                    for o in objects)


def obj(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"investor_id": "ann", "pool_id": "p1", "amount": "5",
                               "timestamp": "2026-03-01T10:00:00Z"}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not ...}


PLAIN = lines("ann,p1,100.50,2026-03-01", "ann,p2,20,2026-03-02",
              "bob,p1,500,2026-03-01T10:00:00Z", "cy,p3,7.25,2026-03-01 09:30+05:30")

CORPUS = [
    Case("brief_plain", BRIEF + PLAIN, accepted=4, fast=True),
    Case("library_kinds", LIBRARY + lines(
        "t1,ann,p1,100,2026-03-01T00:00:00Z,investment",
        "t2,ann,p1,30,2026-03-01T01:00:00Z,refund",
        "t3,ann,p2,5,2026-03-01T02:00:00Z,fee",
        "t4,ann,p3,50,2026-03-01T03:00:00Z,distribution",
        "t5,bob,p1,7,2026-03-01T04:00:00Z,carry",
        "t6,bob,p2,10.5,2026-03-01T05:00:00Z,investment",
        "t7,cy,p1,1,2026-03-01T06:00:00Z,refund",
        "t8,cy,p4,200,2026-03-01T07:00:00Z,investment",
        "t9,dee,p4,3,2026-03-01T08:00:00Z,refund",
    ), accepted=9, fast=True),
    Case("bom", b"\xef\xbb\xbf" + BRIEF + PLAIN, accepted=4, fast=False),
    Case("empty", b"", accepted=0),
    Case("header_only", BRIEF, accepted=0, fast=True),
    Case("blank_lines", BRIEF + lines("ann,p1,1,2026-03-01", "", "bob,p1,2,2026-03-01", "   ",
                                      "cy,p2,3,2026-03-01"), accepted=3, fast=False),
    Case("crlf", (BRIEF + PLAIN).replace(b"\n", b"\r\n"), accepted=4, fast=True),
    Case("whitespace", BRIEF + lines("  ann , p1 ,\t10.5 , 2026-03-01 ", "ann,p1,1,2026-03-01"),
         accepted=2, fast=False),
    Case("quoted", BRIEF + lines('"ann","p,1","10","2026-03-01"', "bob,p1,1,2026-03-01"),
         accepted=2, fast=False),
    Case("mixed_styles", b"investor_id,syndicate_id,amount,timestamp\n"
         + lines("ann,p1,5,2026-03-01"), accepted=1, fast=True),
    Case("mixed_case_header", b"Investor_ID, Syndicate_ID ,TRANSACTION_AMOUNT,transaction_date\n"
         + lines("ann,p1,5,2026-03-01"), accepted=1, fast=False),
    Case("extra_columns", b"note,investor_id,syndicate_id,transaction_amount,transaction_date\n"
         + lines("x,ann,p1,5,2026-03-01"), accepted=1, fast=False),
    Case("repeated_extra_column",
         b"investor_id,syndicate_id,transaction_amount,transaction_date,note,note\n"
         + lines("ann,p1,5,2026-03-01,a,b"), accepted=1, fast=False),
    Case("duplicated_column",
         b"investor_id,syndicate_id,transaction_amount,transaction_amount,transaction_date\n"
         + lines("ann,p1,1,2,2026-03-01"), header_error=(1, "amount")),
    Case("pool_and_syndicate", b"investor_id,pool_id,syndicate_id,amount,timestamp\n"
         + lines("ann,p1,p2,1,2026-03-01"), header_error=(1, "pool_id")),
    Case("missing_column", b"investor_id,pool_id,timestamp\n" + lines("ann,p1,2026-03-01"),
         header_error=(1, "amount")),
    Case("header_bad_utf8", BRIEF.replace(b"_date", b"_d\xffate") + lines("ann,p1,1,2026-03-01"),
         header_error=(1, "header")),
    Case("header_open_quote", b'investor_id,"syndicate_id,transaction_amount,transaction_date\n'
         + lines("ann,p1,1,2026-03-01"), header_error=(1, "header")),
    Case("underscore", BRIEF + lines("alice, p1,1_000,2026-03-01", "bob,p1,5,2026-03-01"),
         accepted=1, rejected=((2, "amount"),)),
    Case("amounts", BRIEF + lines(
        "a,p1,0,2026-03-01", "a,p1,-5,2026-03-01", "a,p1,1e3,2026-03-01",
        "a,p1,1000000000000000.01,2026-03-01", 'a,p1,"1,000",2026-03-01', "a,p1,NaN,2026-03-01",
        "a,p1,1000000000000000,2026-03-01", "a,p1,0.1234567,2026-03-01", "a,p1,.5,2026-03-01",
        "a,p1,+5,2026-03-01", "a,p1,\u0663,2026-03-01", "a,p1,$5,2026-03-01", "a,p1,,2026-03-01",
    ), accepted=5, rejected=((2, "amount"), (3, "amount"), (5, "amount"), (6, "amount"),
                             (7, "amount"), (12, "amount"), (13, "amount"), (14, "amount"))),
    Case("timestamps", BRIEF + lines(
        "a,p1,1,20260301", "a,p1,1,2026-W09-7", "a,p1,1,2026-03-01T10", "a,p1,1,2026-02-30",
        "a,p1,1,2026-03-01T10:00:00.1234567Z", "a,p1,1,2026-03-01T10:00:00+0100",
        "a,p1,1,2026-03-01T10:00:00.123456-08:00", "a,p1,1,2026-03-01 10:00Z", "a,p1,1,",
    ), accepted=2, rejected=((2, "timestamp"), (3, "timestamp"), (4, "timestamp"),
                             (5, "timestamp"), (6, "timestamp"), (7, "timestamp"),
                             (10, "timestamp"))),
    Case("naive", BRIEF + lines("ann,p1,10,2026-03-01T10:00:00", "ann,p1,10,2026-03-01 10:00",
                                "bob,p1,1,2026-03-01T10:00:00+01:00"),
         accepted=1, rejected=((2, "timestamp"), (3, "timestamp"))),
    Case("stray_quote", BRIEF + lines("ann,p1,10,2026-03-01", 'bob,"p1,10,2026-03-01',
                                      "cy,p1,10,2026-03-01"),
         accepted=1, rejected=((3, "row"),)),
    Case("text_after_quote", BRIEF + lines('ann,"p1"x,10,2026-03-01', "bob,p1,10,2026-03-01"),
         accepted=1, rejected=((2, "row"),)),
    Case("long_field", BRIEF + b"ann," + b"x" * 200_000 + b",10,2026-03-01\n"
         + lines("bob,p1,10,2026-03-01"), accepted=1, rejected=((2, "row"),)),
    Case("quoted_line_break", BRIEF + lines('ann,"p\n1",10,2026-03-01', "bob,p1,oops,2026-03-01",
                                            "cy,p1,1,2026-03-01"),
         accepted=2, rejected=((4, "amount"),)),
    Case("bad_utf8", BRIEF + b"ann,p1,10,2026-03-01\nb\xffb,p1,10,2026-03-01\n"
         b"cy,p1,1\xe9,2026-03-01\ndee,p1,1,2026-03-01\n",
         accepted=2, rejected=((3, "investor_id"), (4, "amount"))),
    Case("bad_utf8_extra_column", b"investor_id,syndicate_id,transaction_amount,"
         b"transaction_date,note\nann,p1,1,2026-03-01,caf\xe9\nbob,p1,1,2026-03-01,ok\n",
         accepted=1, rejected=((2, "note"),)),
    Case("empty_id", LIBRARY + lines(",ann,p1,10,2026-03-01T00:00:00Z,investment",
                                     "t2,,p1,10,2026-03-01,investment",
                                     "t3,ann, ,10,2026-03-01,", "t4,ann,p1,10,2026-03-01,"),
         accepted=1, rejected=((2, "id"), (3, "investor_id"), (4, "pool_id"))),
    Case("nul", BRIEF + lines("a\x00b,p1,5,2026-03-01", "ab,p1,5,2026-03-01"),
         accepted=1, rejected=((2, "investor_id"),)),
    Case("lone_cr", BRIEF + lines("ann\rbob,p1,10,2026-03-01", "cy,p1,1,2026-03-01"),
         accepted=1, rejected=((2, "row"),)),
    Case("field_count", BRIEF + lines("ann,p1,10", "bob,p1,1,2026-03-01,extra",
                                      "cy,p1,1,2026-03-01"),
         accepted=1, rejected=((2, "row"), (3, "row"))),
    Case("kinds_odd", LIBRARY + lines("t1,ann,p1,5,2026-03-01,Investment",
                                      "t2,ann,p1,5,2026-03-01,gift",
                                      "t3,ann,p1,5,2026-03-01,", "t4,ann,p2,5,2026-03-01, refund "),
         accepted=2, rejected=((2, "kind"), (3, "kind"))),
    Case("jsonl_exact", jsonl(
        b'{"id": "j1", "investor_id": "ann", "pool_id": "p1", "amount": 1.00000000000000000001, '
        b'"timestamp": "2026-03-01T10:00:00Z"}',
        obj(id="j2", amount="2.50", investor_id="bob"),
        b'{"id": 3, "investor_id": "cy", "pool_id": "p2", "amount": 1.2345678901234567890123e12, '
        b'"timestamp": "2026-03-01T10:00:00+01:00"}',
        {"investor_id": "dee", "syndicate_id": "p9", "transaction_amount": 7,
         "transaction_date": "2026-03-02"},
        obj(id="j5", kind="refund", amount="0.5"),
        obj(id="j6", kind="fee", investor_id="bob", pool_id="p7"),
    ), suffix=".jsonl", accepted=6),
    Case("jsonl_odd", jsonl(
        b"[1, 2]", b'"text"', b"5", b"not json", b"",
        b'{"investor_id": "a", "pool_id": "p", "amount": NaN, "timestamp": "2026-03-01"}',
        obj(syndicate_id="p2"),
        b'{"investor_id": "a", "pool_id": "p", "pool_id": "q", "amount": 1, '
        b'"timestamp": "2026-03-01"}',
        obj(investor_id=None), obj(amount=True), obj(amount="1_000"),
        obj(timestamp="20260301"), obj(pool_id={"x": 1}), obj(amount=...),
        b'{"investor_id": "\xff", "pool_id": "p", "amount": 5, "timestamp": "2026-03-01"}',
        obj(id="", investor_id="  "), obj(id="ok", investor_id=" ann "),
        obj(timestamp="2026-03-01T10:00:00"),
    ), suffix=".jsonl", accepted=1, rejected=(
        (1, "row"), (2, "row"), (3, "row"), (4, "row"), (6, "row"), (7, "pool_id"),
        (8, "pool_id"), (9, "investor_id"), (10, "amount"), (11, "amount"), (12, "timestamp"),
        (13, "pool_id"), (14, "amount"), (15, "investor_id"), (16, "id"), (18, "timestamp"))),
    Case("jsonl_bom", b"\xef\xbb\xbf" + jsonl(obj(id="b1"), obj(id="b2", pool_id="p2")),
         suffix=".jsonl", accepted=2),
]


@attrs.frozen
class Outcome:
    header_error: tuple[int, str] | None
    rejected: tuple[tuple[int, str], ...]


def row_key(tx: Transaction) -> tuple[str, ...]:
    return (tx.id, tx.investor_id, tx.pool_id, str(tx.amount), tx.timestamp.isoformat(), tx.kind)


def library_read(source: object) -> tuple[Outcome, list[Transaction]]:
    accepted: list[Transaction] = []
    rejected: list[tuple[int, str]] = []
    try:
        for item in read_rows(source):  # type: ignore[arg-type]
            if isinstance(item, RowError):
                rejected.append((item.line, item.field))
            else:
                accepted.append(item)
    except RowError as error:
        return Outcome((error.line, error.field), ()), []
    return Outcome(None, tuple(rejected)), accepted


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for case in CORPUS:
        path = folder / f"{case.name}{case.suffix}"
        path.write_bytes(case.content)
        paths[case.name] = path
    return paths


def cases() -> Iterator[object]:
    for case in CORPUS:
        yield pytest.param(case, id=case.name)


def invoke(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def told_by_content(case: Case) -> bool:
    """Whether the file's first line tells its format as its name does (a stream, standard
    input, has no name to tell it by)."""
    first = next((line for line in case.content.splitlines() if line.strip()), b"")
    return first.lstrip(b"\xef\xbb\xbf").startswith(b"{") == (case.suffix == ".jsonl")


def header_or_first_rejection(expected: Outcome) -> tuple[int, str] | None:
    if expected.header_error is not None:
        return expected.header_error
    return expected.rejected[0] if expected.rejected else None


def rejects_file(path: Path) -> tuple[tuple[int, str], ...]:
    limit = csv.field_size_limit(1 << 24)  # the rejects keep each row whole, 200 KB ones too
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    finally:
        csv.field_size_limit(limit)
    return tuple((int(row["line"]), row["field"]) for row in rows)


def check_cli_outcome(case: Case, expected: Outcome, result: Result, rejects: Path,
                      what: str) -> None:
    if expected.header_error is not None:
        line, field = expected.header_error
        assert result.exit_code == 2, (what, result.output)
        assert f"line {line}: {field}:" in result.stderr, what
        return
    assert result.exit_code == 0, (what, result.output)
    assert rejects_file(rejects) == expected.rejected, what
    for line, field in expected.rejected:
        assert f"rejected line {line}: {field}:" in result.stderr, what


@pytest.mark.parametrize("case", cases())
def test_library_reader_reads_the_corpus_as_stated(case: Case, corpus: dict[str, Path]) -> None:
    outcome, accepted = library_read(corpus[case.name])
    assert outcome == Outcome(case.header_error, case.rejected)
    assert len(accepted) == case.accepted
    if not told_by_content(case):
        return
    stream_outcome, from_stream = library_read(io.BytesIO(case.content))
    assert stream_outcome == outcome
    assert [row_key(tx) for tx in from_stream] == [row_key(tx) for tx in accepted]


def test_the_corpus_says_what_the_issue_asked() -> None:
    """Spot checks of the values read, beyond acceptance."""
    by_name = {case.name: case for case in CORPUS}
    (_, exact) = library_read(io.BytesIO(by_name["jsonl_exact"].content))
    assert exact[0].amount == Decimal("1.00000000000000000001")
    assert exact[2].id == "3" and exact[3].id == "4" and exact[3].pool_id == "p9"
    (_, spaced) = library_read(io.BytesIO(by_name["whitespace"].content))
    assert {(tx.investor_id, tx.pool_id) for tx in spaced} == {("ann", "p1")}
    (_, quoted) = library_read(io.BytesIO(by_name["quoted"].content))
    assert quoted[0].pool_id == "p,1"
    (_, bom) = library_read(io.BytesIO(by_name["bom"].content))
    assert bom[0].investor_id == "ann"
    (_, odd) = library_read(io.BytesIO(by_name["kinds_odd"].content))
    assert [tx.kind for tx in odd] == ["investment", "refund"]


def expected_outcome(case: Case, corpus: dict[str, Path]) -> tuple[Outcome, list[Transaction]]:
    return library_read(corpus[case.name])


@pytest.mark.parametrize("case", cases())
def test_top_investors_command_agrees_with_the_reader(
    case: Case, corpus: dict[str, Path], tmp_path: Path
) -> None:
    expected, accepted = expected_outcome(case, corpus)
    ranking = [rank.to_dict() for rank in top_investors(accepted, N)]
    path = str(corpus[case.name])
    first = header_or_first_rejection(expected)
    for engine in ("python", "auto", "polars", "duckdb"):
        rejects = tmp_path / f"rejects-{engine}.csv"
        result = invoke("top-investors", path, "-n", str(N), "--format", "json", "--engine",
                        engine, "--skip-invalid", "--rejects", str(rejects))
        check_cli_outcome(case, expected, result, rejects, engine)
        if expected.header_error is None:
            assert json.loads(result.stdout) == ranking, engine
            if expected.rejected:
                assert f"{len(expected.rejected)} rows rejected, {len(accepted)} ranked" in (
                    result.stderr)
        strict = invoke("top-investors", path, "-n", str(N), "--format", "json", "--engine",
                        engine)
        if first is None:
            assert strict.exit_code == 0 and json.loads(strict.stdout) == ranking, engine
        else:
            assert strict.exit_code == 2, (engine, strict.output)
            assert f"line {first[0]}: {first[1]}:" in strict.stderr, engine
            assert "Traceback" not in strict.output
    rejects = tmp_path / "rejects-stdin.csv"
    piped = invoke("top-investors", "-", "-n", str(N), "--format", "json", "--skip-invalid",
                   "--rejects", str(rejects), stdin=case.content)
    if told_by_content(case):
        check_cli_outcome(case, expected, piped, rejects, "stdin")
        if expected.header_error is None:
            assert json.loads(piped.stdout) == ranking


@pytest.mark.parametrize("case", cases())
def test_monitor_accepts_and_reads_the_same_rows(
    case: Case, corpus: dict[str, Path], tmp_path: Path
) -> None:
    expected, accepted = expected_outcome(case, corpus)
    rejects = tmp_path / "rejects.csv"
    result = invoke("monitor", str(corpus[case.name]), "--threshold", "0", "--format", "jsonl",
                    "--skip-invalid", "--rejects", str(rejects))
    check_cli_outcome(case, expected, result, rejects, "monitor")
    if expected.header_error is not None:
        return
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    threshold = [(a["transaction_id"], a["investor_id"], a["pool_id"], a["observed"], a["at"])
                 for a in alerts if a["rule"] == "threshold"]
    assert sorted(threshold) == sorted(
        (tx.id, tx.investor_id, tx.pool_id, str(tx.amount), tx.timestamp.isoformat())
        for tx in accepted)
    assert f"{len(accepted):,} transactions" in result.stderr
    first = header_or_first_rejection(expected)
    if first is not None:
        strict = invoke("monitor", str(corpus[case.name]))
        assert strict.exit_code == 2 and f"line {first[0]}: {first[1]}:" in strict.stderr


@pytest.mark.parametrize("block", [16, 100, 1 << 20])
@pytest.mark.parametrize("case", cases())
def test_vectorised_reader_reads_the_same_rows_in_the_same_order(
    case: Case, corpus: dict[str, Path], block: int
) -> None:
    pytest.importorskip("polars")
    from auptimate_core.io.vectorised import transaction_batches

    expected, accepted = expected_outcome(case, corpus)
    path = str(corpus[case.name])
    rejected: list[tuple[int, str]] = []
    try:
        batches = list(transaction_batches(
            path, skip_invalid=True, on_reject=lambda row: rejected.append((row.line, row.field)),
            block=block, vectorise_from=0))
    except RowError as error:
        assert expected.header_error == (error.line, error.field)
        return
    assert expected.header_error is None
    assert tuple(rejected) == expected.rejected
    assert [row_key(tx) for batch in batches for tx in batch] == [row_key(tx) for tx in accepted]
    assert all(batches)
    first = header_or_first_rejection(expected)
    if first is not None:
        with pytest.raises(RowError) as raised:
            for _ in transaction_batches(path, block=block, vectorise_from=0):
                pass
        assert (raised.value.line, raised.value.field) == first


@pytest.mark.parametrize("block", [16, 100, 1 << 20])
@pytest.mark.parametrize("case", cases())
def test_column_reader_reads_the_same_rows_in_the_same_order(
    case: Case, corpus: dict[str, Path], block: int
) -> None:
    pytest.importorskip("polars")
    from auptimate_core.columns import TransactionColumns
    from auptimate_core.io.vectorised import column_batches

    expected, accepted = expected_outcome(case, corpus)
    path = str(corpus[case.name])
    rejected: list[tuple[int, str]] = []
    try:
        batches = list(column_batches(
            path, skip_invalid=True, on_reject=lambda row: rejected.append((row.line, row.field)),
            block=block, vectorise_from=0))
    except RowError as error:
        assert expected.header_error == (error.line, error.field)
        return
    assert expected.header_error is None
    assert tuple(rejected) == expected.rejected
    rows = [tx for batch in batches for tx in (
        map(batch.transaction, range(len(batch))) if isinstance(batch, TransactionColumns)
        else batch)]
    assert [row_key(tx) for tx in rows] == [row_key(tx) for tx in accepted]
    first = header_or_first_rejection(expected)
    if first is not None:
        with pytest.raises(RowError) as raised:
            for _ in column_batches(path, block=block, vectorise_from=0):
                pass
        assert (raised.value.line, raised.value.field) == first


@pytest.mark.redis
@pytest.mark.parametrize("case", cases())
def test_publish_sends_exactly_the_rows_the_reader_accepts(
    case: Case, corpus: dict[str, Path], tmp_path: Path, redis_url: str
) -> None:
    import redis

    from auptimate_core.integrations.redis_streams import decode, shard_stream

    expected, accepted = expected_outcome(case, corpus)
    stream = f"corpus-{uuid.uuid4().hex}"
    rejects = tmp_path / "rejects.csv"
    result = invoke("publish", str(corpus[case.name]), "--store", redis_url, "--stream", stream,
                    "--shards", "1", "--skip-invalid", "--rejects", str(rejects))
    check_cli_outcome(case, expected, result, rejects, "publish")
    if expected.header_error is not None:
        return
    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange(shard_stream(stream, 0))
        client.delete(shard_stream(stream, 0), f"{stream}:config")
    finally:
        client.close()
    sent = [decode(fields) for _, fields in entries]
    assert [row_key(tx) for tx in sent] == [row_key(tx) for tx in accepted]


def sql_ranking(accepted: list[Transaction]) -> list[InvestorRank]:
    sa = pytest.importorskip("sqlalchemy")
    from auptimate_core.backends.sql.ranking import (
        TransactionsTable,
        load_transactions,
        top_investors_sql,
    )

    engine = sa.create_engine("sqlite://")
    table = sa.Table(
        "tx", sa.MetaData(), sa.Column("id", sa.String), sa.Column("investor_id", sa.String),
        sa.Column("pool_id", sa.String), sa.Column("amount", sa.String),
        sa.Column("timestamp", sa.String), sa.Column("kind", sa.String))
    table.create(engine)
    load_transactions(engine, table, accepted)
    try:
        return top_investors_sql(engine, TransactionsTable(table), N)
    finally:
        engine.dispose()


@pytest.mark.parametrize("case", cases())
def test_every_form_of_the_ranking_gives_the_same_list(
    case: Case, corpus: dict[str, Path]
) -> None:
    pytest.importorskip("polars")
    pytest.importorskip("duckdb")
    from auptimate_core.ranking.vectorised import ENGINES, NotVectorised, fast_top_investors

    expected, accepted = expected_outcome(case, corpus)
    if expected.header_error is not None:
        return
    ranking = top_investors(accepted, N)
    printed = [str(rank.total_amount) for rank in ranking]
    incremental = TopInvestors()
    incremental.add_many(accepted)
    incremental._check()
    assert incremental.top(N) == ranking
    assert sql_ranking(accepted) == ranking
    if case.suffix != ".csv":
        return
    for engine in ENGINES:
        try:
            fast = fast_top_investors(corpus[case.name], N, engine=engine)
        except NotVectorised:
            assert case.fast is not True, (engine, "handed off a file it should answer")
            continue
        assert case.fast is not False, (engine, "answered a file it should hand off")
        assert not expected.rejected, (engine, "answered a file with a rejected row")
        assert fast.ranks == ranking and fast.rows == len(accepted), engine
        assert [str(rank.total_amount) for rank in fast.ranks] == printed, engine
