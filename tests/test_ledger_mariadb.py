"""What is particular to the ledger on MySQL and MariaDB, on a real MariaDB: odd ids round-trip
and stay apart, the id length limit, the registry's URLs, a write that waited for its pool's lock,
lost connections and a missing driver. The contract suites run in test_ledger_sql.py,
test_feed_sql.py and test_ledger_stateful.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from auptimate_core import (
    InvalidId,
    Investor,
    InvestorRank,
    Pool,
    PoolLedger,
    StoreUnavailable,
)
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.backends.sql.mysql_tables import ID_LENGTH, fit_tables
from auptimate_core.backends.sql.tables import ledger_tables
from auptimate_core.errors import MissingExtra
from auptimate_core.testing.schemas import scratch_schema
from auptimate_core.testing.servers import free_port

D = Decimal

# Ids another backend stores: case, trailing and leading spaces, 4-byte emoji, composed and
# decomposed accents, other scripts, control characters, quotes and SQL wildcards.
ODD_IDS = ("Ann", "ann", "ANN", "a", "a ", " a", "a  ", "😀", "😀😀", "e\u0301", "\u00e9",
           "ß", "ss", "İ", "i", "日本", "עברית", "tab\there", "new\nline", "it's", 'q"q',
           "100%", "_", "\\", "x" * ID_LENGTH)


@pytest.fixture
def schema(mariadb_url: str) -> Iterator[str]:
    with scratch_schema(mariadb_url, "m") as name:
        yield name


@pytest.mark.mariadb
def test_odd_ids_round_trip_and_stay_apart(mariadb_url: str, schema: str) -> None:
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    for n, pool_id in enumerate(ODD_IDS):
        ledger.create_pool(Pool(pool_id, "m", name=f"{pool_id} 🏦"), actor="m")
        ledger.register_investor(Investor(pool_id, name=pool_id, email=f"{n}@example.com"))
        ledger.admit(pool_id, pool_id, actor="m")
        ledger.invest(pool_id, pool_id, D(n + 1), actor=pool_id, idempotency_key=pool_id)
    assert [r.pool.id for r in ledger.repository.read(lambda s: s.pools())] == sorted(ODD_IDS)
    for n, pool_id in enumerate(ODD_IDS):
        found = ledger.repository.read(lambda s, i=pool_id: s.investor(i))  # type: ignore[misc]
        assert found == Investor(pool_id, name=pool_id, email=f"{n}@example.com")
        assert ledger.pool(pool_id) == Pool(pool_id, "m", name=f"{pool_id} 🏦")
        assert [(p.investor_id, p.invested) for p in ledger.positions(pool_id)] == [
            (pool_id, D(n + 1))]
        assert [p.pool_id for p in ledger.portfolio(pool_id)] == [pool_id]
    # Each key is its own: using one again gives back what it did, in its own pool.
    again = ledger.invest("a", "a", D(4), actor="a", idempotency_key="a")
    assert again.amount == D(4) and len(ledger.history("a")) == 1
    assert ledger.verify() == 3 * len(ODD_IDS)
    reopened = PoolLedger.from_url(mariadb_url, schema=schema)
    assert reopened.changes() == ledger.changes()
    reopened.close()
    ledger.close()


@pytest.mark.mariadb
def test_the_ranking_keeps_ids_apart_by_case_and_accent(mariadb_url: str, schema: str) -> None:
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    investors = ("Ann", "ann", "e\u0301", "\u00e9", "😀")
    for pool_id in ("p1", "p2"):
        ledger.create_pool(Pool(pool_id, "m"), actor="m")
    for n, investor in enumerate(investors):
        ledger.register_investor(Investor(investor))
        for pool_id in ("p1", "p2")[: 1 + n % 2]:
            ledger.admit(pool_id, investor, actor="m")
            ledger.invest(pool_id, investor, D(10 * (n + 1)), actor=investor,
                          idempotency_key=f"{pool_id}/{investor}")
    assert ledger.top_investors(n=5) == [
        InvestorRank("\u00e9", 2, D(80)), InvestorRank("ann", 2, D(40)),
        InvestorRank("😀", 1, D(50)), InvestorRank("e\u0301", 1, D(30)),
        InvestorRank("Ann", 1, D(10))]
    ledger.close()


@pytest.mark.mariadb
def test_the_ranking_keeps_ids_apart_by_trailing_spaces(mariadb_url: str, schema: str) -> None:
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    ledger.create_pool(Pool("p", "m"), actor="m")
    for investor, amount in (("a", 1), ("a ", 2)):
        ledger.register_investor(Investor(investor))
        ledger.admit("p", investor, actor="m")
        ledger.invest("p", investor, D(amount), actor=investor, idempotency_key=investor)
    assert ledger.top_investors(n=5) == [InvestorRank("a ", 1, D(2)),
                                         InvestorRank("a", 1, D(1))]
    ledger.close()


@pytest.mark.mariadb
def test_an_id_longer_than_mysql_stores_is_refused_by_name(mariadb_url: str,
                                                            schema: str) -> None:
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    long = "x" * (ID_LENGTH + 1)
    with pytest.raises(InvalidId, match=r"investor\.id: at most 255 characters on MySQL"):
        ledger.register_investor(Investor(long))
    with pytest.raises(InvalidId, match=r"pool\.id: at most 255"):
        ledger.create_pool(Pool(long, "m"), actor="m")
    with pytest.raises(InvalidId, match=r"pool\.manager_id: at most 255"):
        ledger.create_pool(Pool("p", long), actor=long)
    ledger.create_pool(Pool("p", "m"), actor="m")
    ledger.register_investor(Investor("a"))
    ledger.admit("p", "a", actor="m")
    assert ledger.history() == [] and ledger.verify() == 2
    assert [r.pool.id for r in ledger.repository.read(lambda s: s.pools())] == ["p"]
    # Receipts keep a hash of the actor and the key: a key of any length fits.
    key = "k" * 4 * ID_LENGTH
    first = ledger.invest("p", "a", D(1), actor="a", idempotency_key=key)
    assert ledger.invest("p", "a", D(1), actor="a", idempotency_key=key) == first
    ledger.close()


@pytest.mark.mariadb
def test_strict_mode_refuses_a_value_too_long_for_its_column(mariadb_url: str,
                                                              schema: str) -> None:
    # Past the ledger's own checks (a hand-written row), the server refuses rather than cuts.
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    with pytest.raises(sa.exc.DataError, match="1406"), repository.engine.begin() as conn:
        conn.execute(sa.insert(repository.tables.investors).values(
            id="x" * (ID_LENGTH + 1), name=""))
    ledger.close()


@pytest.mark.mariadb
def test_every_mysql_scheme_opens_the_ledger(mariadb_url: str, schema: str) -> None:
    rest = mariadb_url.partition("://")[2]
    for scheme in ("mysql+pymysql", "mariadb+pymysql", "mysql", "mariadb"):
        ledger = PoolLedger.from_url(f"{scheme}://{rest}", schema=schema)
        ledger.register_investor(Investor(scheme))
        ledger.close()
    ledger = PoolLedger.from_url(mariadb_url.partition("?")[0], schema=schema)  # no charset
    assert ledger.repository.read(lambda s: s.investor("mysql")) == Investor("mysql")
    ledger.close()


def test_a_charset_other_than_utf8mb4_is_refused() -> None:
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/x?charset=latin1"
    with pytest.raises(ValueError, match="charset=utf8mb4"):
        PoolLedger.from_url(url)


def test_an_unreachable_mysql_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        PoolLedger.from_url(f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing")


@pytest.mark.mariadb
def test_connections_killed_by_the_server_are_store_unavailable_then_replaced(
        mariadb_url: str, schema: str) -> None:
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    ledger.create_pool(Pool("p", "m"), actor="m")
    engine = sa.create_engine(mariadb_url)
    with engine.connect() as admin:
        own = admin.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
        idle = admin.execute(sa.text(
            "SELECT id FROM information_schema.processlist WHERE command = 'Sleep' "
            "AND id <> :own"), {"own": own}).scalars().all()
        for connection_id in idle:
            admin.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        ledger.pool("p")
    assert ledger.pool("p") == Pool("p", "m")
    ledger.close()


def test_without_pymysql_the_error_names_the_mysql_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['pymysql'] = None\n"
        "from auptimate_core import PoolLedger\n"
        "from auptimate_core.errors import MissingExtra\n"
        "try:\n"
        "    PoolLedger.from_url('mysql+pymysql://root@127.0.0.1:1/x')\n"
        "except MissingExtra as error:\n"
        "    print(error.extra, error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.stdout.startswith("mysql pymysql is not installed: pip install "
                                  "'auptimate-core[mysql]'"), done.stdout + done.stderr
    assert issubclass(MissingExtra, ImportError)


def test_other_dialects_ddl_is_unchanged_by_the_mysql_forms() -> None:
    plain, fitted = ledger_tables(), ledger_tables()
    fit_tables(fitted.metadata)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        for name, table in plain.metadata.tables.items():
            assert (str(CreateTable(table).compile(dialect=dialect))
                    == str(CreateTable(fitted.metadata.tables[name]).compile(dialect=dialect)))


@pytest.mark.mariadb
def test_a_write_sends_the_same_statements_to_a_pool_of_10_and_of_1000_on_mariadb(
        mariadb_url: str) -> None:
    from tests.test_ledger_cost import SIZES, statements_by_size

    schemas = {size: f"cost_{uuid.uuid4().hex[:10]}" for size in SIZES}
    found = statements_by_size(
        lambda size: PoolLedger.from_url(mariadb_url, schema=schemas[size]), schemas)
    assert found[10] == found[1_000]
    # The pool's lock, one read, one statement per table written (pool, entry, holding,
    # receipt), the feed's head moved and read, the change.
    assert [len(found[10][name]) for name in ("admit", "invest", "refund")] == [8, 9, 9]
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        for schema in schemas.values():
            conn.execute(sa.text(f"DROP DATABASE {schema}"))
    engine.dispose()


@pytest.mark.mariadb
def test_a_reader_whose_snapshot_misses_an_earlier_commit_waits_for_it(
        mariadb_url: str, schema: str) -> None:
    # The state a torn InnoDB snapshot shows: position 4 committed, 3 not visible (here: not
    # committed yet, by hand). The reader must not hand out 4 alone and move past 3.
    ledger = PoolLedger.from_url(mariadb_url, schema=schema)
    ledger.create_pool(Pool("p", "m"), actor="m")
    ledger.register_investor(Investor("a"))
    first = ledger.changes()
    assert len(first) == 2
    repository = ledger.repository
    assert isinstance(repository, SqlLedgerRepository)
    feed = repository.tables.feed
    engine = sa.create_engine(mariadb_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(feed).where(feed.c.position == 2)).one()._asdict()
    found: list[list[int]] = []
    with engine.connect() as third:
        third.execute(sa.insert(feed).values({**row, "position": 3}))
        with engine.begin() as fourth:
            fourth.execute(sa.insert(feed).values({**row, "position": 4}))
        reader = threading.Thread(target=lambda: found.append(
            [int(c.cursor.split(".")[-1]) for c in ledger.changes(after=first[-1].cursor)]))
        reader.start()
        reader.join(1.5)
        assert reader.is_alive()  # waiting for position 3's writer
        third.commit()
    reader.join(30)
    assert found == [[3, 4]]
    engine.dispose()
    ledger.close()
