"""Prometheus metrics: a real scrape of /metrics after an engine run, label hygiene, no-op path."""

from __future__ import annotations

import platform
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import auptimate_core
from auptimate_core import Transaction, metrics
from auptimate_core.alerts import Alert, AlertEngine, CollectingSink, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.errors import MissingExtra, StoreUnavailable
from auptimate_core.metrics.prometheus import METRICS, sample_names
from auptimate_core.testing.servers import free_port

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A fresh registry with metrics enabled on it; metrics are off again afterwards."""
    registry = CollectorRegistry()
    metrics.enable_metrics(registry)
    yield registry
    metrics.disable_metrics()


def tx(
    i: int, pool: str, amount: str = "100", seconds: float = 0, investor: str = ""
) -> Transaction:
    return Transaction(
        id=f"t{i}", investor_id=investor or f"inv{i % 7}", pool_id=pool, amount=Decimal(amount),
        timestamp=T0 + timedelta(seconds=seconds),
    )


def rules() -> list[ThresholdRule | SpikeRule]:
    return [
        ThresholdRule(limit=Decimal("1000")),
        SpikeRule(window=timedelta(minutes=1), baseline=timedelta(minutes=10), factor=3,
                  min_count=4),
    ]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def registry_samples(registry: CollectorRegistry) -> Samples:
    from prometheus_client import generate_latest

    return samples(generate_latest(registry).decode())


def failing_sink(alert: Alert) -> None:
    raise RuntimeError("sink down")


def stream() -> list[Transaction]:
    """Quiet baseline on p1 and p2, one big transaction, a burst on p1, duplicates, a late one."""
    txs = [tx(i, "p1" if i % 2 else "p2", seconds=60 * i) for i in range(10)]
    txs.append(tx(10, "p2", amount="5000", seconds=600))
    txs += [tx(11 + k, "p1", seconds=620 + k) for k in range(6)]  # burst: firing
    txs += [tx(11, "p1", seconds=621), tx(12, "p1", seconds=622)]  # duplicates
    txs.append(tx(20, "p1", seconds=10))  # older than the 5 minutes allowed: late
    txs.append(tx(21, "p1", seconds=1300))  # quiet again: resolved
    return txs


def test_scrape_of_metrics_over_http_after_an_engine_run() -> None:
    registry = CollectorRegistry()
    port = free_port()
    server, thread = metrics.serve_metrics(port, addr="127.0.0.1", registry=registry)
    try:
        collected = CollectingSink()
        late: list[Transaction] = []
        engine = AlertEngine(rules(), store=MemoryWindowStore(), sinks=[collected, failing_sink],
                             on_late=late.append, batch_size=5)
        txs = stream()
        alerts = engine.process_many(txs)
        alerts += engine.evaluate(T0 + timedelta(hours=2))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            found = samples(reply.read().decode())
    finally:
        metrics.disable_metrics()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    store = {"store": "MemoryWindowStore"}
    assert len(late) == 1
    assert value(found, "auptimate_transactions_processed_total", **store) == len(txs)
    assert value(found, "auptimate_duplicates_skipped_total", **store) == 2
    assert value(found, "auptimate_late_events_rejected_total", **store) == 1
    by_rule = Counter((a.name, a.state) for a in alerts)
    assert by_rule[("threshold", "firing")] == 1
    assert by_rule[("spike", "firing")] == 1 and by_rule[("spike", "resolved")] == 1
    for (rule, state), n in by_rule.items():
        assert value(found, "auptimate_alerts_total", rule=rule, state=state) == n
    assert value(found, "auptimate_sink_deliveries_total", sink="CollectingSink") == len(alerts)
    assert value(found, "auptimate_sink_failures_total", sink="failing_sink") == len(alerts)
    batches = -(-len(txs) // 5)
    latency = "auptimate_store_call_duration_seconds_count"
    assert value(found, latency, operation="observe_many", **store) == batches
    # Per batch, one window rule: which pools fire (one call), and the states of the pools
    # where something may change, only when there are any; evaluate() asks firing once more,
    # and each change of the spike lifecycle (a firing, a resolution) once for the gauge.
    assert 1 <= value(found, latency, operation="states", **store) <= batches
    assert value(found, latency, operation="firing", **store) == batches + 1 + 2
    assert value(found, "auptimate_alerts_firing", rule="spike", **store) == 0
    assert not any(name == "auptimate_store_errors_total" for name, _ in found)
    assert engine.stats.processed == len(txs) and engine.stats.sink_failures == len(alerts)


def test_store_errors_are_counted_by_type_and_the_error_still_reaches_the_caller(
    registry: CollectorRegistry,
) -> None:
    from auptimate_core.backends.redis import RedisWindowStore

    # Nothing listens on this port: every call fails as the store's real driver reports it.
    store = RedisWindowStore.from_url(f"redis://127.0.0.1:{free_port()}/0", retries=1,
                                      backoff=0.001, socket_connect_timeout=1.0)
    engine = AlertEngine(rules(), store=store)
    with pytest.raises(StoreUnavailable):
        engine.process(tx(1, "p1"))
    with pytest.raises(StoreUnavailable):
        engine.evaluate(T0)
    engine.close()
    found = registry_samples(registry)
    store_label = {"store": "RedisWindowStore", "error": "StoreUnavailable"}
    assert value(found, "auptimate_store_errors_total", operation="observe_many",
                 **store_label) == 1
    assert value(found, "auptimate_store_errors_total", operation="firing", **store_label) == 1
    assert value(found, "auptimate_store_call_duration_seconds_count", store="RedisWindowStore",
                 operation="observe_many") == 1
    assert value(found, "auptimate_transactions_processed_total", store="RedisWindowStore") == 0


@pytest.mark.redis
def test_redis_store_calls_are_timed_by_operation(
    registry: CollectorRegistry, redis_url: str
) -> None:
    import uuid

    from auptimate_core.backends.redis import RedisWindowStore

    store = RedisWindowStore.from_url(redis_url, namespace=f"m{uuid.uuid4().hex[:8]}")
    with AlertEngine(rules(), store=store, batch_size=7) as engine:
        txs = stream()[:17]
        engine.process_many(txs)
    found = registry_samples(registry)
    assert value(found, "auptimate_transactions_processed_total",
                 store="RedisWindowStore") == 17
    assert value(found, "auptimate_duplicates_skipped_total", store="RedisWindowStore") == 0
    assert value(found, "auptimate_store_call_duration_seconds_count", store="RedisWindowStore",
                 operation="observe_many") == 3
    assert value(found, "auptimate_store_call_duration_seconds_sum", store="RedisWindowStore",
                 operation="observe_many") > 0


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(["p1", "p2", "p3"]),
                  st.integers(0, 900), st.sampled_from(["10", "2000"])),
        max_size=60,
    ),
    batch_size=st.integers(1, 9),
)
def test_counters_agree_with_the_engine_stats_and_the_alerts(
    events: list[tuple[int, str, int, str]], batch_size: int
) -> None:
    registry = CollectorRegistry()
    metrics.enable_metrics(registry)
    try:
        engine = AlertEngine(rules(), store=MemoryWindowStore(allowed_lateness=timedelta(0)),
                             on_late=lambda t: None, batch_size=batch_size)
        alerts = engine.process_many(tx(i, pool, amount, seconds) for i, pool, seconds, amount
                                     in events)
    finally:
        metrics.disable_metrics()
    found = registry_samples(registry)
    stats, store = engine.stats, {"store": "MemoryWindowStore"}
    assert value(found, "auptimate_transactions_processed_total", **store) == stats.processed
    assert value(found, "auptimate_duplicates_skipped_total", **store) == stats.duplicates
    assert value(found, "auptimate_late_events_rejected_total", **store) == stats.late
    raised = Counter((a.name, a.state) for a in alerts)
    counted = {(dict(labels)["rule"], dict(labels)["state"]): n
               for (name, labels), n in found.items() if name == "auptimate_alerts_total"}
    assert counted == dict(raised)


def test_no_label_carries_an_investor_id_an_email_an_amount_or_a_transaction_id(
    registry: CollectorRegistry,
) -> None:
    emails = [f"person{i}@fund.example" for i in range(5)]
    txs = [tx(i, "pool-a", amount=str(1000 + i * 1111), seconds=i,
              investor=f"investor-{emails[i % 5]}") for i in range(40)]
    engine = AlertEngine(rules(), sinks=[CollectingSink(), failing_sink])
    assert engine.process_many(txs)
    # Hooks called carelessly are cleaned too: an e-mail or an amount becomes "other".
    metrics.ledger_write("invest")
    metrics.ledger_refusal(emails[0])
    metrics.ledger_replay("1000.00")
    metrics.worker_lag("transactions", "alerts", 3, None)
    metrics.worker_processed(5, "transactions", "alerts")
    metrics.sink_delivery("webhook to https://hooks.example/x?token=1", ok=True)
    # Histogram bucket bounds are numbers by design, and the build's versions come from code.
    labels = {v for (name, labelset) in registry_samples(registry) for k, v in labelset
              if k != "le" and name != "auptimate_build_info"}
    forbidden = {t.investor_id for t in txs} | {t.id for t in txs} | set(emails)
    forbidden |= {str(t.amount) for t in txs} | {"1000.00"}
    assert labels and not labels & forbidden
    assert not any("@" in v or v[:1].isdigit() for v in labels)
    assert {"invest", "other", "transactions", "alerts", "pool-a"} - labels == {"pool-a"}


def test_label_sets_per_metric_are_capped(registry: CollectorRegistry) -> None:
    for i in range(metrics.MAX_SERIES + 50):
        metrics.ledger_write(f"kind_{i}")
    found = registry_samples(registry)
    kinds = {dict(labels)["kind"] for name, labels in found
             if name == "auptimate_ledger_writes_total"}
    assert len(kinds) == metrics.MAX_SERIES + 1 and "other" in kinds
    assert value(found, "auptimate_ledger_writes_total", kind="other") == 50


def test_worker_and_ledger_hooks(registry: CollectorRegistry) -> None:
    metrics.worker_lag("tx", "g", pending=4, unread=10)
    metrics.worker_lag("tx", "g", pending=2, unread=None)  # unknown lag keeps the last value
    metrics.worker_processed(7, "tx", "g")
    metrics.worker_reclaimed(2, "tx", "g")
    metrics.worker_rejected(1, "tx", "g")
    for kind in ("create_pool", "invest", "invest"):
        metrics.ledger_write(kind)
    metrics.ledger_refusal("permission_denied")
    metrics.ledger_replay()
    found = registry_samples(registry)
    group = {"stream": "tx", "group": "g"}
    assert value(found, "auptimate_worker_pending_entries", **group) == 2
    assert value(found, "auptimate_worker_unread_entries", **group) == 10
    assert value(found, "auptimate_worker_entries_processed_total", **group) == 7
    assert value(found, "auptimate_worker_entries_reclaimed_total", **group) == 2
    assert value(found, "auptimate_worker_entries_rejected_total", **group) == 1
    assert value(found, "auptimate_ledger_writes_total", kind="invest") == 2
    assert value(found, "auptimate_ledger_refusals_total", reason="permission_denied") == 1
    assert value(found, "auptimate_ledger_idempotent_replays_total", kind="other") == 1


def test_enable_is_idempotent_per_registry_and_disable_stops_counting() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    try:
        on_first = metrics.enable_metrics(first)
        assert metrics.enable_metrics(first) is on_first and metrics.metrics_enabled()
        metrics.ledger_write("invest")
        assert metrics.enable_metrics(second) is not on_first
        metrics.ledger_write("invest")
    finally:
        metrics.disable_metrics()
    assert not metrics.metrics_enabled() and not metrics.recorder().enabled
    metrics.ledger_write("invest")  # off: counted nowhere
    for registry in (first, second):
        found = registry_samples(registry)
        assert value(found, "auptimate_ledger_writes_total", kind="invest") == 1


def test_a_new_registry_never_inherits_the_recorder_of_a_dead_one() -> None:
    import gc

    try:
        for _ in range(30):  # a new registry often lands at the address of the one just freed
            registry = CollectorRegistry()
            metrics.enable_metrics(registry)
            metrics.ledger_write("invest")
            found = registry_samples(registry)
            assert value(found, "auptimate_ledger_writes_total", kind="invest") == 1
            del registry, found
            gc.collect()
    finally:
        metrics.disable_metrics()


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_off_imports_nothing_and_the_engine_runs() -> None:
    out = _python(
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from decimal import Decimal\n"
        "import auptimate_core\n"
        "from auptimate_core import metrics, Transaction\n"
        "from auptimate_core.alerts import AlertEngine, ThresholdRule\n"
        "import auptimate_core.cli, auptimate_core.logs\n"
        "e = AlertEngine([ThresholdRule(limit=Decimal(1))])\n"
        "t = Transaction(id='t', investor_id='i', pool_id='p', amount=Decimal(5),\n"
        "                timestamp=datetime(2026, 1, 1, tzinfo=UTC))\n"
        "print(len(e.process(t)), metrics.metrics_enabled(), 'prometheus_client' in sys.modules)\n"
    )
    assert out.split() == ["1", "False", "False"]


def test_a_missing_prometheus_client_names_the_extra() -> None:
    out = _python(
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if the extra were not installed\n"
        "from auptimate_core import metrics\n"
        "from auptimate_core.errors import MissingExtra\n"
        "metrics.ledger_write('invest')\n"
        "try:\n"
        "    metrics.enable_metrics()\n"
        "except MissingExtra as error:\n"
        "    print(error.extra, '|', error)\n"
    )
    assert out.startswith("metrics | ") and "auptimate-core[metrics]" in out
    assert issubclass(MissingExtra, ImportError)


def test_monitor_serves_metrics_while_running_and_stops_after(tmp_path: object) -> None:
    from click.testing import CliRunner
    from prometheus_client import REGISTRY

    from auptimate_core.cli import main

    path = Path(str(tmp_path)) / "tx.csv"
    rows = ["id,investor_id,pool_id,amount,timestamp"]
    rows += [f"t{i},inv{i},p{i % 3},{'900000' if i == 5 else '10'},"
             f"2026-03-01T09:{i:02d}:00+00:00" for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    name = "auptimate_transactions_processed_total"
    before = REGISTRY.get_sample_value(name, {"store": "MemoryWindowStore"}) or 0.0
    alerts = {"rule": "threshold", "state": "firing"}
    alerts_before = REGISTRY.get_sample_value("auptimate_alerts_total", alerts) or 0.0
    port = free_port()
    result = CliRunner().invoke(main, ["monitor", str(path), "--metrics-port", str(port),
                                       "--metrics-addr", "127.0.0.1"])
    assert result.exit_code == 0, result.output
    assert REGISTRY.get_sample_value(name, {"store": "MemoryWindowStore"}) == before + 30
    assert REGISTRY.get_sample_value("auptimate_alerts_total", alerts) == alerts_before + 1
    assert not metrics.metrics_enabled()
    import socket

    with socket.socket() as sock:  # the server was shut down with the command: port is free
        sock.bind(("127.0.0.1", port))


def test_monitor_reports_a_port_it_cannot_use() -> None:
    import socket

    from click.testing import CliRunner

    from auptimate_core.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["monitor", "-", "--metrics-port", str(port),
                                           "--metrics-addr", "127.0.0.1"], input="")
    assert result.exit_code == 2
    assert f"--metrics-port {port}" in result.output
    assert not metrics.metrics_enabled()


def test_hooks_from_many_threads_lose_no_count(registry: CollectorRegistry) -> None:
    import threading

    def work() -> None:
        for _ in range(5_000):
            metrics.engine_batch("MemoryWindowStore", 3, 1, 0)
            metrics.store_call("MemoryWindowStore", "states", 0.002)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = registry_samples(registry)
    store = {"store": "MemoryWindowStore"}
    assert value(found, "auptimate_transactions_processed_total", **store) == 60_000
    assert value(found, "auptimate_duplicates_skipped_total", **store) == 20_000
    assert value(found, "auptimate_store_call_duration_seconds_bucket", le="0.0025",
                 operation="states", **store) == 20_000
    assert value(found, "auptimate_store_call_duration_seconds_bucket", le="0.001",
                 operation="states", **store) == 0


def every_hook_once() -> None:
    """Call every hook, so that every metric has a series."""
    metrics.engine_batch("S", 1, 1, 1, 1)
    metrics.alert_raised("spike", "firing")
    metrics.alerts_firing("S", "spike", 1)
    for ok in (True, False):
        metrics.sink_delivery("s", ok)
    metrics.store_call("S", "states", 0.1)
    metrics.store_error("S", "states", "StoreError")
    metrics.worker_lag("s", "g", 1, 1)
    for hook in (metrics.worker_processed, metrics.worker_reclaimed, metrics.worker_rejected):
        hook(1, "s", "g")
    metrics.ledger_write("invest", 0.002)
    metrics.ledger_refusal("invalid")
    metrics.ledger_replay("invest")
    metrics.ledger_subscriber_failure("Invested")


def test_the_recorder_exports_the_metrics_of_its_table(registry: CollectorRegistry) -> None:
    every_hook_once()
    exposed = {name for name, _ in registry_samples(registry)}
    assert exposed == sample_names()
    assert len({spec.name for spec in METRICS}) == len(METRICS)
    assert {spec.attr for spec in METRICS} <= set(vars(metrics.recorder()))


def test_the_operations_page_names_exactly_the_metrics_there_are(
    registry: CollectorRegistry,
) -> None:
    import re

    every_hook_once()
    exposed = {name for name, _ in registry_samples(registry)}
    families = {spec.name + ("_total" if spec.kind == "counter" else "") for spec in METRICS}
    page = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    named = set(re.findall(r"\bauptimate_[a-z_]+", page)) - {"auptimate_core"}
    assert named <= exposed | families, named - exposed - families
    assert families <= named, families - named


def test_build_info_names_the_version_and_python(registry: CollectorRegistry) -> None:
    found = registry_samples(registry)
    assert value(found, "auptimate_build_info", version=auptimate_core.__version__,
                 python=platform.python_version()) == 1
    assert [name for name, _ in found if name == "auptimate_build_info"] == [
        "auptimate_build_info"]


def test_ledger_writes_are_timed_when_the_ledger_says_how_long(
    registry: CollectorRegistry,
) -> None:
    metrics.ledger_write("invest", 0.0003)
    metrics.ledger_write("invest", 0.02)
    metrics.ledger_write("create_pool")  # untimed: counted, not observed
    found = registry_samples(registry)
    name = "auptimate_ledger_write_duration_seconds"
    assert value(found, "auptimate_ledger_writes_total", kind="invest") == 2
    assert value(found, name + "_count", kind="invest") == 2
    assert value(found, name + "_sum", kind="invest") == pytest.approx(0.0203)
    assert value(found, name + "_bucket", kind="invest", le="0.0005") == 1
    assert value(found, name + "_bucket", kind="invest", le="0.025") == 2
    assert value(found, name + "_count", kind="create_pool") == 0


def test_firing_gauge_holds_the_last_count_read(registry: CollectorRegistry) -> None:
    metrics.alerts_firing("RedisWindowStore", "spike", 3)
    metrics.alerts_firing("RedisWindowStore", "spike", 1)
    metrics.alerts_firing("MemoryWindowStore", "spike", 2)
    found = registry_samples(registry)
    assert value(found, "auptimate_alerts_firing", store="RedisWindowStore", rule="spike") == 1
    assert value(found, "auptimate_alerts_firing", store="MemoryWindowStore", rule="spike") == 2


def test_a_store_and_a_sink_have_every_series_from_their_first_use(
    registry: CollectorRegistry,
) -> None:
    """rate() of a counter that never moved reads 0 rather than nothing."""
    metrics.engine_batch("MemoryWindowStore", 5, 0, 0, 0)
    metrics.sink_delivery("pager", ok=True)
    metrics.worker_lag("tx", "alerts", 0, 0)
    found = registry_samples(registry)
    for name in ("auptimate_worker_entries_processed_total",
                 "auptimate_worker_entries_reclaimed_total",
                 "auptimate_worker_entries_rejected_total"):
        assert value(found, name, stream="tx", group="alerts") == 0
        assert (name, frozenset({("stream", "tx"), ("group", "alerts")})) in found
    for name in ("auptimate_duplicates_skipped_total", "auptimate_late_events_rejected_total",
                 "auptimate_future_events_held_out_total"):
        assert (name, frozenset({("store", "MemoryWindowStore")})) in found
    assert ("auptimate_sink_failures_total", frozenset({("sink", "pager")})) in found
    assert value(found, "auptimate_sink_failures_total", sink="pager") == 0


def test_a_lambda_sink_is_labelled_by_where_it_was_written(registry: CollectorRegistry) -> None:
    import inspect

    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    engine = AlertEngine([ThresholdRule(limit=Decimal("1"))], sinks=[lambda alert: None])
    engine.process(tx(1, "p1"))
    found = registry_samples(registry)
    assert value(found, "auptimate_sink_deliveries_total",
                 sink=f"lambda:{__name__}:{line}") == 1


# -- several processes: prometheus_client's multiprocess mode ----------------------------------

WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from auptimate_core import Transaction, metrics
from auptimate_core.alerts import AlertEngine, ThresholdRule

name = sys.argv[1]
metrics.enable_metrics()
engine = AlertEngine([ThresholdRule(limit=Decimal("1000"))], sinks=[lambda alert: None])
t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
engine.process_many(
    Transaction(id=f"{name}-{i}", investor_id="i", pool_id="p", amount=Decimal(amount),
                timestamp=t0 + timedelta(seconds=i))
    for i, amount in enumerate(["10", "5000", "10"]))
for kind in ("create_pool", "invest"):
    metrics.ledger_write(kind, 0.004)
metrics.worker_lag("tx", "alerts", pending=int(sys.argv[2]), unread=int(sys.argv[2]) * 10)
print("done", name)
"""

SCRAPER = """
from prometheus_client import CollectorRegistry, generate_latest
from auptimate_core import metrics

registry = CollectorRegistry()
metrics.enable_metrics(registry)
print(generate_latest(registry).decode())
"""


def _in_processes(directory: Path, code: str, *args: list[str]) -> list[str]:
    """Run ``code`` in one process per argument list, all at once, in multiprocess mode."""
    import os

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    running = [subprocess.Popen([sys.executable, "-c", code, *argv], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for argv in args]
    outs = []
    for process in running:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outs.append(out)
    return outs


def test_one_scrape_sums_the_counters_of_several_processes(tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    assert _in_processes(tmp_path, WRITER, ["a", "4"], ["b", "7"]) == ["done a\n", "done b\n"]

    # The scrape prometheus_client documents for multiprocess mode ...
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    found = samples(generate_latest(registry).decode())
    # ... and the one a host gets from enable_metrics(registry) in a process of its own.
    (page,) = _in_processes(tmp_path, SCRAPER, [])
    assert samples(page) == found

    store = {"store": "MemoryWindowStore"}
    assert value(found, "auptimate_transactions_processed_total", **store) == 6
    assert value(found, "auptimate_duplicates_skipped_total", **store) == 0
    assert value(found, "auptimate_alerts_total", rule="threshold", state="firing") == 2
    assert value(found, "auptimate_sink_deliveries_total", sink="lambda:__main__:11") == 2
    assert value(found, "auptimate_ledger_writes_total", kind="invest") == 2
    latency = "auptimate_ledger_write_duration_seconds"
    assert value(found, latency + "_count", kind="create_pool") == 2
    assert value(found, latency + "_bucket", kind="create_pool", le="0.005") == 2
    assert value(found, latency + "_bucket", kind="create_pool", le="0.0025") == 0
    assert value(found, "auptimate_store_call_duration_seconds_count",
                 operation="observe_many", **store) == 2
    # Gauges are the group's numbers, which every worker reports: the latest one wins.
    assert value(found, "auptimate_worker_pending_entries", stream="tx", group="alerts") in {4, 7}
    assert [labels for name, labels in found if name == "auptimate_build_info"] == [
        frozenset({("version", auptimate_core.__version__),
                   ("python", platform.python_version())})]
    assert {name for name, _ in found} <= sample_names()


def test_a_multiprocess_directory_set_wrong_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auptimate_core.errors import ValidationError

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="PROMETHEUS_MULTIPROC_DIR.*is not a directory"):
        metrics.enable_metrics(CollectorRegistry())
    # This process imported prometheus_client before the variable was set.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ValidationError, match="PROMETHEUS_MULTIPROC_DIR.*set after"):
        metrics.enable_metrics(CollectorRegistry())
    assert not metrics.metrics_enabled()
