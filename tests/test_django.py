"""The Django integration: alerts after commit only, one batch per block, and the SQL ranking.

Django is configured in this process (``settings.configure``) with two databases: SQLite
(``default``) and the real PostgreSQL the fixtures start (``pg``, filled in when first used).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("django")

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3",
                        "NAME": str(Path(tempfile.mkdtemp()) / "django.sqlite3")},
            "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres"},
        },
        INSTALLED_APPS=[],
        USE_TZ=True,
        TIME_ZONE="UTC",
    )
    django.setup()

from django.db import connections, models, transaction
from django.test.utils import override_settings

from auptimate_core import AlertEngine, SpikeRule, ThresholdRule, Transaction, top_investors
from auptimate_core.alerts.alert import Alert
from auptimate_core.errors import InvalidTimestamp, ValidationError
from auptimate_core.integrations.django import (
    project_time,
    top_investors_django,
    watch_model,
)


class Investment(models.Model):
    investor_id = models.CharField(max_length=40)
    pool_id = models.CharField(max_length=40)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    timestamp = models.DateTimeField()
    kind = models.CharField(max_length=20, null=True)

    class Meta:
        app_label = "auptimate_django_tests"


class CountingEngine(AlertEngine):
    """A real engine that also records the size of every process_many call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def process_many(self, transactions: Iterable[Transaction]) -> list[Alert]:
        rows = list(transactions)
        self.batches.append(len(rows))
        return super().process_many(rows)


_created: set[str] = set()


@pytest.fixture(params=["default", pytest.param("pg", marks=pytest.mark.postgres)])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    if name == "pg" and "pg" not in _created:
        url = urlsplit(request.getfixturevalue("postgres_url"))
        connections.settings["pg"].update(
            NAME=url.path.lstrip("/") or "postgres", USER=url.username or "",
            PASSWORD=url.password or "", HOST=url.hostname or "", PORT=str(url.port or ""))
    if name not in _created:
        with connections[name].schema_editor() as editor:
            editor.create_model(Investment)
        _created.add(name)
    Investment.objects.using(name).all().delete()
    yield name
    Investment.objects.using(name).all().delete()


@pytest.fixture
def engine() -> CountingEngine:
    alerts: list[Alert] = []
    made = CountingEngine(
        rules=[ThresholdRule(limit=Decimal("250000")),
               SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                         min_count=5)],
        sinks=[alerts.append])
    made.received = alerts  # type: ignore[attr-defined]
    return made


@pytest.fixture
def watched(engine: CountingEngine, alias: str) -> Iterator[CountingEngine]:
    watch = watch_model(Investment, engine=engine, using=alias)
    yield engine
    watch.remove()


def received(engine: CountingEngine) -> list[Alert]:
    alerts: list[Alert] = engine.received  # type: ignore[attr-defined]
    return alerts


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def invest(alias: str, amount: str, pool: str = "p1", investor: str = "ann",
           at: datetime | None = None) -> Investment:
    return Investment.objects.using(alias).create(
        investor_id=investor, pool_id=pool, amount=Decimal(amount),
        timestamp=at or now(), kind="investment")


def threshold_ids(engine: CountingEngine) -> list[str | None]:
    return [a.transaction_id for a in received(engine) if a.rule == "threshold"]


def test_a_committed_block_alerts_once(watched: CountingEngine, alias: str) -> None:
    with transaction.atomic(using=alias):
        big = invest(alias, "300000")
        invest(alias, "10")
        assert received(watched) == []  # nothing before the commit
    assert threshold_ids(watched) == [str(big.pk)]
    assert watched.batches == [2]


def test_autocommit_rows_are_processed_at_once(watched: CountingEngine, alias: str) -> None:
    big = invest(alias, "300000")
    assert threshold_ids(watched) == [str(big.pk)]


def test_a_rolled_back_block_raises_nothing(watched: CountingEngine, alias: str) -> None:
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        invest(alias, "300000")
        raise RuntimeError("abort")
    assert received(watched) == [] and watched.batches == []
    # The next block is not polluted by the rolled-back one's rows.
    with transaction.atomic(using=alias):
        small = invest(alias, "260000")
    assert threshold_ids(watched) == [str(small.pk)]
    assert watched.batches == [1]


def test_a_rolled_back_savepoint_raises_nothing_for_its_rows(
    watched: CountingEngine, alias: str
) -> None:
    with transaction.atomic(using=alias):
        before = invest(alias, "300000")
        with pytest.raises(RuntimeError), transaction.atomic(using=alias):
            invest(alias, "400000")
            with transaction.atomic(using=alias):
                invest(alias, "500000")
            raise RuntimeError("abort the savepoint")
        with transaction.atomic(using=alias):
            inner = invest(alias, "600000")
        after = invest(alias, "700000")
    assert threshold_ids(watched) == [str(before.pk), str(inner.pk), str(after.pk)]
    assert watched.batches == [3]


def test_first_row_inside_a_rolled_back_savepoint(watched: CountingEngine, alias: str) -> None:
    with transaction.atomic(using=alias):
        with pytest.raises(RuntimeError), transaction.atomic(using=alias):
            invest(alias, "400000")
            raise RuntimeError("abort the savepoint")
        kept = invest(alias, "300000")
    assert threshold_ids(watched) == [str(kept.pk)]


def test_a_rush_in_one_block_raises_one_spike(watched: CountingEngine, alias: str) -> None:
    start = now() - timedelta(seconds=30)
    with transaction.atomic(using=alias):
        for i in range(8):
            invest(alias, "100", investor=f"i{i}", at=start + timedelta(seconds=i))
    spikes = [a for a in received(watched) if a.rule == "spike" and a.state == "firing"]
    assert len(spikes) == 1
    assert watched.batches == [8]


def test_bulk_create_through_the_helper_alerts(engine: CountingEngine, alias: str) -> None:
    watch = watch_model(Investment, engine=engine, using=alias)
    try:
        made = watch.bulk_create([
            Investment(investor_id="ann", pool_id="p1", amount=Decimal("500000"),
                       timestamp=now(), kind="investment"),
            Investment(investor_id="bob", pool_id="p1", amount=Decimal("5"),
                       timestamp=now(), kind="investment")])
        assert threshold_ids(engine) == [str(made[0].pk)]
        assert engine.batches == [2]
        # update() sends no signal: the helper feeds the changed row as a revision.
        rows = Investment.objects.using(alias).filter(investor_id="bob")
        rows.update(amount=Decimal("700000"))
        assert watch.after_update(rows) == 1
        assert [a.transaction_id for a in received(engine)][-1].startswith(f"{made[1].pk}~")
        assert watch.after_update(rows) == 1  # the same state again is counted once
        assert len(threshold_ids(engine)) == 2
    finally:
        watch.remove()


def test_naive_times_are_read_in_time_zone_when_use_tz_is_false(engine: CountingEngine) -> None:
    seen: list[Transaction] = []
    naive = datetime.now(ZoneInfo("Asia/Singapore")).replace(tzinfo=None, microsecond=0)
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Singapore"):
        assert project_time(naive) == naive.replace(tzinfo=ZoneInfo("Asia/Singapore"))
        watch = watch_model(Investment, engine=engine, using="default",
                            to_transaction=lambda row: seen.append(convert(row)) or seen[-1])
        try:
            Investment.objects.using("default").all().delete()
            invest("default", "300000", at=naive)
        finally:
            watch.remove()
    assert seen[0].timestamp == naive.replace(tzinfo=ZoneInfo("Asia/Singapore"))
    assert len(threshold_ids(engine)) == 1
    # With USE_TZ=True a naive time has no meaning: the row is refused.
    with pytest.raises(InvalidTimestamp):
        convert(Investment(id=1, investor_id="a", pool_id="p", amount=Decimal(1),
                           timestamp=naive))


def convert(row: Investment) -> Transaction:
    from auptimate_core.integrations.django import fields_converter

    return fields_converter(kind="kind")(row)


def test_watch_model_refuses_what_is_not_a_model() -> None:
    with pytest.raises(TypeError, match="Django model"):
        watch_model(object, engine=AlertEngine(rules=[]))  # type: ignore[arg-type]


def test_top_investors_over_a_model_and_a_queryset(alias: str) -> None:
    base = now() - timedelta(days=1)
    rows = [("ann", "p1", "10.50", "investment"), ("ann", "p2", "5", "investment"),
            ("ann", "p2", "2", "refund"), ("bob", "p1", "99", None), ("bob", "p3", "1", "fee"),
            ("cid", "p1", "0.01", "investment"), ("dee", "p9", "7", "fee")]
    for i, (investor, pool, amount, kind) in enumerate(rows):
        Investment.objects.using(alias).create(
            investor_id=investor, pool_id=pool, amount=Decimal(amount),
            timestamp=base + timedelta(minutes=i), kind=kind)
    expected = top_investors(
        [Transaction(str(i), inv, pool, Decimal(amount), base + timedelta(minutes=i),
                     kind or "investment") for i, (inv, pool, amount, kind) in enumerate(rows)],
        n=5)
    queryset = Investment.objects.using(alias)
    assert top_investors_django(queryset) == expected
    assert top_investors_django(queryset, 1) == expected[:1]
    only_p1 = top_investors_django(queryset.filter(pool_id="p1"))
    assert [(r.investor_id, r.total_amount) for r in only_p1] == [
        ("bob", Decimal("99")), ("ann", Decimal("10.50")), ("cid", Decimal("0.01"))]
    every_row = top_investors_django(queryset, kind=None)
    assert (every_row[0].investor_id, every_row[0].unique_pools, every_row[0].total_amount) == (
        "bob", 2, Decimal("100"))  # every row an investment: bob's fee counts as one
    if alias == "default":
        assert top_investors_django(Investment) == expected
    with pytest.raises(ValidationError, match="no field 'who'"):
        top_investors_django(queryset, investor_id="who")


def test_one_naming_of_the_column_arguments() -> None:
    import warnings

    from auptimate_core.backends.sql.ranking import TransactionsTable

    table = TransactionsTable("payments", investor_id="who", pool_id="fund")
    assert (table.investor_id, table.pool_id) == ("who", "fund")
    with pytest.warns(DeprecationWarning, match="is deprecated: use") as caught:
        old = TransactionsTable("payments", investor="who", pool="fund")
    assert len(caught) == 2
    assert old == table and old.investor == "who"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TransactionsTable.brief("t").pool_id == "syndicate_id"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def test_the_example_project_passes_its_own_tests(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    import os
    import subprocess
    import sys

    project = Path(__file__).resolve().parent.parent / "examples" / "django_project"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "EXAMPLE_DB": str(tmp_path / "example.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("EXAMPLE_PG_URL", None)
    if database == "pg":
        env["EXAMPLE_PG_URL"] = request.getfixturevalue("postgres_url")
    result = subprocess.run([sys.executable, "manage.py", "test", "-v", "1"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 3 tests" in result.stderr
