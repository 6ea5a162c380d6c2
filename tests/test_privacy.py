"""No personal data and no credentials leave the library: the hostile requests of a new user run
on memory, SQLite and a real PostgreSQL, and every log record, exception text and exception chain
is searched for the seeded names, e-mails and tokens."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from auptimate_core import (
    AuptimateError,
    IdempotencyConflict,
    Investor,
    LedgerError,
    PermissionDenied,
    Pool,
    PoolLedger,
    ValidationError,
)
from auptimate_core.alerts import Alert
from auptimate_core.alerts.delivery import Dispatcher
from auptimate_core.backends.sql.ledger import SqlLedgerRepository
from auptimate_core.integrations.webhook import WebhookSink
from auptimate_core.logs import JsonFormatter, TextFormatter
from auptimate_core.testing.schemas import scratch_schema
from auptimate_core.testing.servers import free_port

D = Decimal
NAME, EMAIL = "Grace Hopper", "grace.hopper@example.com"
OTHER_NAME, OTHER_EMAIL = "Ada Lovelace", "ada@example.org"
TOKEN = "s3cr3t-t0ken"
PASSWORD = "hunter2-pw"
SECRETS = (NAME, EMAIL, OTHER_NAME, OTHER_EMAIL, TOKEN, PASSWORD, "Grace", "Hopper")


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every cause and context below it."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        found = stack.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        stack.extend(e for e in (found.__cause__, found.__context__) if e is not None)


def texts_of(error: BaseException) -> list[str]:
    found = []
    for link in chain(error):
        found += [str(link), repr(link), *(str(arg) for arg in link.args)]
        for attribute in ("params", "statement", "orig"):
            value = getattr(link, attribute, None)  # a driver error's parts, if any survive
            if value is not None:
                found.append(str(value))
    return found


def assert_clean(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:300]}"


class Captured(logging.Handler):
    """Every record of the library, formatted both ways, and raw (message and fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts += [JsonFormatter().format(record), TextFormatter().format(record),
                       record.getMessage(),
                       *(str(value) for key, value in record.__dict__.items()
                         if key not in ("msg", "args", "exc_info", "exc_text"))]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    loggers = [logging.getLogger(name) for name in ("auptimate_core", "sqlalchemy")]
    levels = [logger.level for logger in loggers]
    # SQLAlchemy at INFO logs every statement and its parameters (hidden); at DEBUG it logs
    # the rows it reads too, which is reading the data, not leaking it.
    for logger, level in zip(loggers, (logging.DEBUG, logging.INFO), strict=True):
        logger.addHandler(handler)
        logger.setLevel(level)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        base: str = request.getfixturevalue("postgres_url")
        with scratch_schema(base, "privacy") as schema:
            yield f"{base}?options=-csearch_path%3D{schema}"


def open_ledger(url: str) -> PoolLedger:
    if url.startswith("postgresql"):
        base, _, options = url.partition("?")
        schema = options.rsplit("%3D", 1)[1]
        return PoolLedger.from_url(base, schema=schema)
    return PoolLedger.from_url(url)


def hostile(ledger: PoolLedger) -> list[BaseException]:
    """The hostile new user's requests: every refusal is returned."""
    errors: list[BaseException] = []

    def attempt(call: Callable[[], object]) -> None:
        try:
            call()
        except (AuptimateError, ValueError, TypeError) as error:
            errors.append(error)

    ledger.create_pool(Pool("fund-a", "m1", "Fund A"), actor="m1")
    ledger.register_investor(Investor("grace", NAME, EMAIL))
    ledger.register_investor(Investor("ada", OTHER_NAME, OTHER_EMAIL))
    ledger.admit("fund-a", "grace", actor="m1")
    ledger.invest("fund-a", "grace", D("900000000000000"), actor="grace", idempotency_key="g1")
    for call in (
        lambda: ledger.register_investor(Investor("grace", OTHER_NAME, OTHER_EMAIL)),
        lambda: ledger.register_investor(Investor("eve", NAME + "\x00", EMAIL)),
        lambda: ledger.register_investor(Investor("eve", NAME + "\ud800", EMAIL)),
        lambda: ledger.register_investor(Investor("eve", NAME, "\ud800" + EMAIL)),
        lambda: ledger.register_investor(Investor("eve", NAME, "no-at-sign " + NAME)),
        lambda: ledger.invest("fund-a", "grace", D("900000000000000"), actor="grace",
                              idempotency_key="g2"),
        lambda: ledger.invest("fund-a", "grace", D("1E+30"), actor="grace",
                              idempotency_key="g3"),
        lambda: ledger.invest("fund-a", "ada", D(1), actor="ada", idempotency_key="g1"),
        lambda: ledger.invest("fund-a", "grace", D(1), actor="ada", idempotency_key="g1"),
        lambda: ledger.admit("fund-a", "ada", actor="ada"),
        lambda: ledger.invest("fund-a", "grace\ud800", D(1), actor="grace",
                              idempotency_key="g4"),
    ):
        attempt(call)
    return errors


def test_the_hostile_suite_leaks_no_personal_data(ledger_url: str,
                                                  captured: Captured) -> None:
    ledger = open_ledger(ledger_url)
    events: list[object] = []
    ledger.subscribe(events.append)
    errors = hostile(ledger)
    assert len(errors) == 11
    assert any(isinstance(e, ValidationError) and "MAX_TOTAL" in str(e) for e in errors)
    texts = [text for error in errors for text in texts_of(error)]
    texts += [repr(event) for event in events] + [str(event) for event in events]
    texts += [repr(change) for change in ledger.changes()]
    texts += [repr(ledger.repository)]
    assert_clean(texts + captured.texts)
    assert ledger.verify() > 0
    ledger.close()


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_driver_error_is_re_raised_without_its_parameters(
        where: str, tmp_path: Path, captured: Captured, request: pytest.FixtureRequest) -> None:
    """The database refuses the investor's row (a constraint added behind the ledger's back):
    the LedgerError's chain holds neither the statement's parameters nor the row."""
    schema = None
    if where == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"privacy_{uuid.uuid4().hex[:10]}"
    repository = SqlLedgerRepository.from_url(url, schema=schema)
    table = repository.tables.investors.fullname
    with repository.engine.begin() as conn:
        if where == "sqlite":
            conn.execute(sa.text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.name = '{NAME}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"))
        else:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT refuse "
                                 f"CHECK (name <> '{NAME}')"))
    captured.texts.clear()  # the test's own statement above names the investor
    ledger = PoolLedger(repository)
    with pytest.raises(LedgerError) as caught:
        ledger.register_investor(Investor("grace", NAME, EMAIL))
    links = list(chain(caught.value))
    assert all(link.params is None for link in links if isinstance(link, sa.exc.StatementError))
    assert "refuse" in str(caught.value)  # what went wrong is still said
    assert_clean(texts_of(caught.value) + captured.texts)
    if schema is not None:
        with repository.engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    ledger.close()


def test_an_engine_made_from_a_url_hides_parameters(tmp_path: Path) -> None:
    repository = SqlLedgerRepository.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    assert repository.engine.hide_parameters
    repository.close()


def _alert() -> Alert:
    return Alert(rule="threshold", state="firing", pool_id="p1",
                 at=datetime(2026, 1, 1, tzinfo=UTC), transaction_id="t1",
                 observed=D(10), limit=D(1), message="over the limit")


def test_a_failing_sinks_log_lines_hold_no_credentials(captured: Captured,
                                                       tmp_path: Path) -> None:
    url = f"https://bot:{PASSWORD}@hooks.example/alerts?token={TOKEN}"

    def sink(alert: Alert) -> None:
        raise RuntimeError(f"POST {url} failed; Authorization: Bearer {TOKEN}")

    closed = f"http://127.0.0.1:{free_port()}/hook?token={TOKEN}"
    webhook = WebhookSink(closed, timeout=0.5, retries=1, backoff=0.01)
    dead = tmp_path / "dead.jsonl"
    dispatcher = Dispatcher([sink, webhook], dead_letter=dead)
    dispatcher.submit([_alert()])
    stats = dispatcher.close(timeout=10)
    assert stats.failed == 2
    assert any("failed" in text for text in captured.texts)
    assert_clean([*captured.texts, dead.read_text(), repr(webhook)])


def test_the_log_formatters_hide_urls_credentials() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("auptimate_core.test_privacy")
    logger.addHandler(handler)
    try:
        logger.warning("posting to https://u:%s@h.example/x?token=%s for %s", PASSWORD, TOKEN,
                       EMAIL)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "h.example/x" in line
    assert_clean([line])


def test_another_actors_key_neither_conflicts_nor_tells_anything(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    ledger.create_pool(Pool("fund-a", "m1"), actor="m1")
    ledger.create_pool(Pool("fund-b", "m2"), actor="m2")
    for investor in ("alice", "bob"):
        ledger.register_investor(Investor(investor))
        ledger.admit("fund-a", investor, actor="m1")
    ledger.admit("fund-b", "alice", actor="m2")
    bobs = ledger.invest("fund-a", "bob", D("300.00"), actor="bob", idempotency_key="k1")
    # alice (and a manager) using bob's key: their own requests, written, nothing of bob's.
    alices = ledger.invest("fund-a", "alice", D("5.00"), actor="alice", idempotency_key="k1")
    assert alices.investor_id == "alice" and alices.amount == D("5.00")
    ledger.invest("fund-b", "alice", D("5.00"), actor="alice", idempotency_key="k2")
    ledger.distribute("fund-b", D("1.00"), actor="m2", idempotency_key="k1")
    # bob's retry still replays bob's transaction; his own reuse elsewhere is his conflict.
    assert ledger.invest("fund-a", "bob", D("300"), actor="bob", idempotency_key="k1") == bobs
    with pytest.raises(IdempotencyConflict, match="'k1'"):
        ledger.invest("fund-a", "bob", D("1"), actor="bob", idempotency_key="k1")
    # A stranger's refusal says nothing of bob's request.
    with pytest.raises(LedgerError) as refused:
        ledger.invest("fund-a", "carol", D("1"), actor="carol", idempotency_key="k1")
    assert "bob" not in str(refused.value) and "300" not in str(refused.value)
    with pytest.raises(PermissionDenied) as refused:
        ledger.invest("fund-a", "bob", D("300"), actor="alice", idempotency_key="k1")
    assert "300.00" not in str(refused.value) and "fund-a:" not in str(refused.value)
    assert ledger.verify() > 0
    ledger.close()


def test_receipts_of_an_older_version_are_scoped_on_opening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = PoolLedger.from_url(url)
    ledger.create_pool(Pool("fund-a", "m1"), actor="m1")
    ledger.register_investor(Investor("bob"))
    ledger.admit("fund-a", "bob", actor="m1")
    first = ledger.invest("fund-a", "bob", D("300.00"), actor="bob", idempotency_key="k1")
    ledger.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the receipt as an earlier version kept it: key unscoped
        conn.execute(sa.text("UPDATE auptimate_receipts SET key = 'k1', hash = NULL"))
        conn.execute(sa.text("ALTER TABLE auptimate_pools DROP COLUMN head_mark"))
    engine.dispose()
    reopened = PoolLedger.from_url(url)
    assert reopened.invest("fund-a", "bob", D("300"), actor="bob", idempotency_key="k1") == first
    assert reopened.verify() == 3
    reopened.close()
