"""The SQL ranking on SQLite, PostgreSQL, MariaDB and DuckDB, against the brute-force model.

Each database holds the same random transactions in three layouts: amounts as integer minor
units, as exact decimals (NUMERIC/DECIMAL) and as text, so that every summing path is exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auptimate_core import (
    InvalidAmount,
    InvestorRank,
    StoreError,
    StoreUnavailable,
    Transaction,
    ValidationError,
    top_investors,
)
from tests.ranking_model import BASE, KIND_LIST, as_rows, model_top, transactions

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy.dialects import mysql  # noqa: E402

from auptimate_core.backends.sql.ranking import (  # noqa: E402
    TransactionsTable,
    load_transactions,
    top_investors_sql,
)

SCALE = 4  # the random amounts have at most four decimals


def layouts(metadata: sa.MetaData, prefix: str, decimal_type: sa.types.TypeEngine[Decimal],
            tz: bool) -> dict[str, tuple[sa.Table, int | None]]:
    def make(name: str, amount_type: sa.types.TypeEngine[object]) -> sa.Table:
        return sa.Table(
            f"{prefix}_{name}", metadata,
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("investor_id", sa.String(40), nullable=False),
            sa.Column("pool_id", sa.String(40), nullable=False),
            sa.Column("amount", amount_type, nullable=False),
            # MySQL's DATETIME keeps whole seconds unless told to keep microseconds.
            sa.Column("timestamp", sa.DateTime(timezone=tz).with_variant(
                mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
        )

    return {
        "minor": (make("minor", sa.BigInteger()), SCALE),
        "decimal": (make("decimal", decimal_type), None),
        "text": (make("text", sa.String(60)), None),
    }


class Database:
    def __init__(self, engine: sa.Engine, decimal_type: sa.types.TypeEngine[Decimal],
                 tz: bool, exact_decimal: bool) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.tables = layouts(self.metadata, "rk", decimal_type, tz)
        # SQLite keeps non-integer NUMERIC as float: exact only up to 15 significant digits.
        self.exact_decimal = exact_decimal
        self.metadata.create_all(engine)

    def fill(self, txs: list[Transaction]) -> None:
        with self.engine.begin() as conn:
            for table, scale in self.tables.values():
                conn.execute(table.delete())
                load_transactions(conn, table, txs, scale=scale, batch_size=7)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("rank") / "rank.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    yield Database(engine, sa.Numeric(30, 4), tz=False, exact_decimal=False)
    engine.dispose()


@pytest.fixture(scope="module")
def duckdb_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    pytest.importorskip("duckdb_engine")
    path = tmp_path_factory.mktemp("rank") / "rank.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    yield Database(engine, sa.Numeric(30, 4), tz=True, exact_decimal=True)
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_db(postgres_url: str) -> Iterator[Database]:
    engine = sa.create_engine(postgres_url)
    db = Database(engine, sa.Numeric(), tz=True, exact_decimal=True)
    yield db
    db.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def mariadb_db(mariadb_url: str) -> Iterator[Database]:
    engine = sa.create_engine(mariadb_url)
    db = Database(engine, sa.Numeric(65, SCALE), tz=False, exact_decimal=True)
    yield db
    db.metadata.drop_all(engine)
    engine.dispose()


def check_database(db: Database, txs: list[Transaction], n: int) -> None:
    db.fill(txs)
    expected = model_top(txs, n)
    for name, (table, scale) in db.tables.items():
        exotic = any(len(t.amount.as_tuple().digits) > 15 for t in txs)
        if name == "decimal" and not db.exact_decimal and exotic:
            continue
        by_table = top_investors_sql(db.engine, TransactionsTable(table, scale=scale), n)
        assert as_rows(by_table) == expected, name
        by_name = top_investors_sql(db.engine, TransactionsTable(table.name, scale=scale), n)
        assert by_name == by_table, name


SQL_SETTINGS = settings(max_examples=40, deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(transactions(max_size=40), st.integers(1, 7))
@SQL_SETTINGS
def test_sqlite_matches_model(sqlite_db: Database, txs: list[Transaction], n: int) -> None:
    check_database(sqlite_db, txs, n)


@given(transactions(max_size=40), st.integers(1, 7))
@SQL_SETTINGS
def test_duckdb_matches_model(duckdb_db: Database, txs: list[Transaction], n: int) -> None:
    check_database(duckdb_db, txs, n)


@pytest.mark.postgres
@given(transactions(max_size=40), st.integers(1, 7))
@SQL_SETTINGS
def test_postgres_matches_model(postgres_db: Database, txs: list[Transaction], n: int) -> None:
    check_database(postgres_db, txs, n)


@pytest.mark.mariadb
@given(transactions(max_size=40), st.integers(1, 7))
@SQL_SETTINGS
def test_mariadb_matches_model(mariadb_db: Database, txs: list[Transaction], n: int) -> None:
    check_database(mariadb_db, txs, n)


def check_filters(db: Database, txs: list[Transaction], since_h: int | None,
                  until_h: int | None, kinds: set[str] | None) -> None:
    since = None if since_h is None else BASE + timedelta(hours=since_h)
    until = None if until_h is None else BASE + timedelta(hours=until_h)
    if since is not None and until is not None and until <= since:
        return
    db.fill(txs)
    expected = model_top(txs, 6, since=since, until=until, kinds=kinds)
    for table, scale in db.tables.values():
        for source in (TransactionsTable(table, scale=scale),
                       TransactionsTable(table.name, scale=scale)):
            got = top_investors_sql(db.engine, source, 6, since=since, until=until, kinds=kinds)
            assert as_rows(got) == expected, (table.name, source.table)


FILTERS = (
    transactions(max_size=30, exotic=False),
    st.none() | st.integers(0, 10), st.none() | st.integers(0, 11),
    st.none() | st.sets(st.sampled_from(KIND_LIST), min_size=1),
)


@given(*FILTERS)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_filters_on_sqlite_and_duckdb(
    sqlite_db: Database, duckdb_db: Database, txs: list[Transaction], since_h: int | None,
    until_h: int | None, kinds: set[str] | None,
) -> None:
    for db in (sqlite_db, duckdb_db):
        check_filters(db, txs, since_h, until_h, kinds)


@pytest.mark.postgres
@given(*FILTERS)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_filters_on_postgres(
    postgres_db: Database, txs: list[Transaction], since_h: int | None,
    until_h: int | None, kinds: set[str] | None,
) -> None:
    check_filters(postgres_db, txs, since_h, until_h, kinds)


@pytest.mark.mariadb
@given(*FILTERS)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_filters_on_mariadb(
    mariadb_db: Database, txs: list[Transaction], since_h: int | None,
    until_h: int | None, kinds: set[str] | None,
) -> None:
    check_filters(mariadb_db, txs, since_h, until_h, kinds)


def check_code_point_order(db: Database) -> None:
    # Linguistic collations put "b" before "C"; the contract (and Python) put "C" first.
    txs = [Transaction(str(i), inv, "p1", Decimal(1), BASE)
           for i, inv in enumerate(["b", "C", "a", "_x", "ä", "\U0001f600"])]
    db.fill(txs)
    table, scale = db.tables["minor"]
    assert top_investors_sql(db.engine, TransactionsTable(table, scale=scale), 6) == (
        top_investors(txs, 6))


@pytest.mark.postgres
def test_postgres_orders_ids_by_code_point(postgres_db: Database) -> None:
    check_code_point_order(postgres_db)


@pytest.mark.mariadb
def test_mariadb_orders_ids_by_code_point(mariadb_db: Database) -> None:
    check_code_point_order(mariadb_db)


@pytest.mark.mariadb
def test_brief_table_on_mariadb(mariadb_url: str) -> None:
    # The brief's own table: a MySQL schema with DECIMAL(18,2) amounts.
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS transactions")
        conn.exec_driver_sql(
            "CREATE TABLE transactions (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "investor_id VARCHAR(64) NOT NULL, syndicate_id VARCHAR(64) NOT NULL, "
            "transaction_amount DECIMAL(18,2) NOT NULL, transaction_date DATETIME NOT NULL)")
        conn.exec_driver_sql(
            "INSERT INTO transactions (investor_id, syndicate_id, transaction_amount, "
            "transaction_date) VALUES ('ann','s1',0.10,'2024-01-01'),"
            "('ann','s2',0.20,'2024-01-02'),('bob','s2',9999999999999999.99,'2024-01-03'),"
            "('bob','s2',0.01,'2024-01-04')")
        ranks = top_investors_sql(conn, TransactionsTable.brief(), n=5)
        conn.exec_driver_sql("DROP TABLE transactions")
    engine.dispose()
    assert ranks == [InvestorRank("ann", 2, Decimal("0.30")),
                     InvestorRank("bob", 1, Decimal("10000000000000000.00"))]


def test_brief_table_and_text_amounts_on_sqlite() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE transactions (investor_id TEXT, syndicate_id TEXT, "
            "transaction_amount TEXT, transaction_date TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO transactions VALUES ('ann','s1','0.1','2024-01-01 00:00:00.000000'),"
            "('ann','s1','0.2','2024-01-02 00:00:00.000000'),"
            "('bob','s2','12345678901234567890.123456789','2024-01-03 00:00:00.000000')")
        ranks = top_investors_sql(conn, TransactionsTable.brief(), n=5)
    assert ranks == [InvestorRank("bob", 1, Decimal("12345678901234567890.123456789")),
                     InvestorRank("ann", 1, Decimal("0.3"))]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO transactions VALUES ('cy','s1','lots','2024-01-01')")
        with pytest.raises(InvalidAmount, match="transaction_amount: .*'lots'"):
            top_investors_sql(conn, TransactionsTable.brief())


def test_bad_descriptions_are_named() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("investor_id", sa.String),
                     sa.Column("pool_id", sa.String), sa.Column("amount", sa.Integer),
                     sa.Column("kind", sa.String))
    table.create(engine)
    with pytest.raises(ValidationError, match="kind: table 't' has no column 'type'"):
        top_investors_sql(engine, TransactionsTable(table, kind="type"))
    with pytest.raises(ValidationError, match="amount: table 't' has no column 'amt'"):
        top_investors_sql(engine, TransactionsTable(table, amount="amt"))
    with pytest.raises(ValidationError, match="since: .*timestamp column"):
        top_investors_sql(engine, TransactionsTable(table, timestamp=None), since=BASE)
    with pytest.raises(ValidationError, match="kinds: .*kind column"):
        top_investors_sql(engine, TransactionsTable(table, kind=None), kinds=["fee"])
    with pytest.raises(ValidationError, match="^n: "):
        top_investors_sql(engine, table, 0)
    with pytest.raises(ValidationError, match="scale"):
        TransactionsTable(table, scale=-1)
    with pytest.raises(StoreError, match="no such table"):
        top_investors_sql(engine, "missing")


def test_load_refuses_amounts_finer_than_the_minor_unit() -> None:
    engine = sa.create_engine("sqlite://")
    table = layouts(sa.MetaData(), "x", sa.Numeric(), tz=False)["minor"][0]
    table.create(engine)
    txs = [Transaction("1", "a", "p", Decimal("1.25"), BASE),
           Transaction("2", "a", "p", Decimal("1.255"), BASE)]
    with pytest.raises(InvalidAmount, match="finer than the column's minor unit"):
        load_transactions(engine, table, txs, scale=2)
    with engine.connect() as conn:  # all or nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    assert load_transactions(engine, table, txs[:1], scale=2) == 1
    assert top_investors_sql(engine, TransactionsTable(table, scale=2)) == [
        InvestorRank("a", 1, Decimal("1.25"))]


def test_unreachable_server_is_store_unavailable(tmp_path: Path) -> None:
    from auptimate_core.testing.servers import free_port

    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        top_investors_sql(engine, "transactions")


@pytest.mark.mariadb
def test_mariadb_case_insensitive_table_keeps_ids_apart(mariadb_url: str) -> None:
    # MySQL's usual collations are case-insensitive; the library's ids are exact strings.
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS ci_tx")
        conn.exec_driver_sql(
            "CREATE TABLE ci_tx (investor_id VARCHAR(64) NOT NULL, pool_id VARCHAR(64) NOT NULL,"
            " amount VARCHAR(40) NOT NULL) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        conn.exec_driver_sql(
            "INSERT INTO ci_tx VALUES ('Ann','P1','1.10'),('ann','p1','2.20'),"
            "('ann','P1','0.30'),('bob','p1','5')")
        source = TransactionsTable("ci_tx", kind=None, timestamp=None)
        ranks = top_investors_sql(conn, source, n=5)
        conn.exec_driver_sql("ALTER TABLE ci_tx MODIFY amount DECIMAL(18,2) NOT NULL")
        exact = top_investors_sql(conn, source, n=5)
        conn.exec_driver_sql("ALTER TABLE ci_tx MODIFY amount VARCHAR(40) NOT NULL")
        conn.exec_driver_sql("INSERT INTO ci_tx VALUES ('cy','p2','lots')")
        with pytest.raises(InvalidAmount, match="'lots'"):
            top_investors_sql(conn, source)
        conn.exec_driver_sql("DROP TABLE ci_tx")
    engine.dispose()
    assert ranks == [InvestorRank("ann", 2, Decimal("2.50")),
                     InvestorRank("bob", 1, Decimal("5")), InvestorRank("Ann", 1, Decimal("1.10"))]
    assert exact == [InvestorRank("ann", 2, Decimal("2.50")),
                     InvestorRank("bob", 1, Decimal("5.00")),
                     InvestorRank("Ann", 1, Decimal("1.10"))]
