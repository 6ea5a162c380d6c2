"""The Prometheus recorders that :func:`~auptimate_core.metrics.enable_metrics` installs, and the
table of every metric they export (:data:`METRICS`).

- :class:`PrometheusRecorder` (one process): the hooks count into plain cells, and a collector
  presents them to a ``prometheus_client`` registry when it is scraped.
- :class:`MultiprocessRecorder` (prometheus_client's multiprocess mode, chosen when
  ``PROMETHEUS_MULTIPROC_DIR`` is set): the hooks write through prometheus_client's own metric
  objects into that directory, one file per process, and a collector registered on the
  scraped registry reads every process's files and sums them (counters and histograms; the
  gauges take the value last written by any process, see :data:`METRICS`).

Importing this module imports no ``prometheus_client``: the recorders import it when they are
built. Label values pass through :func:`clean_label`, once per new label set, and each metric
holds at most :data:`~auptimate_core.metrics.MAX_SERIES` label sets. Safe to share between
threads: the cells add under a lock, a gauge is set by one assignment, and prometheus_client's
metric objects hold their own locks.
"""

from __future__ import annotations

import os
import platform
import re
import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from ..errors import ValidationError
from . import MAX_SERIES, OTHER, STORE_BUCKETS, Recorder

__all__ = [
    "METRICS",
    "MetricSpec",
    "MultiprocessRecorder",
    "PrometheusRecorder",
    "clean_label",
    "multiprocess_directory",
    "sample_names",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>\-]{0,79}\Z")


def clean_label(value: str) -> str:
    """``value`` when it is a short name, else ``"other"``: no e-mail, no number, no id soup.

    >>> clean_label("RedisWindowStore"), clean_label("a@b.example"), clean_label("250000.00")
    ('RedisWindowStore', 'other', 'other')
    """
    return value if _NAME.match(value) else OTHER


GaugeMerge = Literal["all", "max", "mostrecent"]


class MetricSpec(NamedTuple):
    """One exported metric: ``name`` as registered (a counter's without ``_total``, which the
    exposition appends), ``kind`` (``counter``, ``gauge`` or ``histogram``), its help text, its
    label names, and for a gauge how multiprocess mode merges the processes' values
    (prometheus_client's ``multiprocess_mode``); ``attr`` names it on the recorder, and
    ``clean`` says whether its label values go through :func:`clean_label`."""

    attr: str
    name: str
    kind: str
    doc: str
    labels: tuple[str, ...]
    merge: GaugeMerge = "all"
    clean: bool = True


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("processed", "auptimate_transactions_processed", "counter",
               "Transactions handed to an alert engine.", ("store",)),
    MetricSpec("duplicates", "auptimate_duplicates_skipped", "counter",
               "Transactions whose id the store had already counted.", ("store",)),
    MetricSpec("late", "auptimate_late_events_rejected", "counter",
               "Transactions older than the store's allowed lateness, kept out of the windows "
               "(their transaction rules ran).", ("store",)),
    MetricSpec("future", "auptimate_future_events_held_out", "counter",
               "Transactions too far ahead of the engine's clock, kept out of the windows "
               "(their transaction rules ran).", ("store",)),
    MetricSpec("alerts", "auptimate_alerts", "counter",
               "Alerts raised, by rule and state.", ("rule", "state")),
    # Every engine on a shared store reads the same lifecycle: the last value read wins.
    MetricSpec("firing", "auptimate_alerts_firing", "gauge",
               "Pools for which a window rule is firing, as last read from the store's "
               "lifecycle.", ("store", "rule"), merge="mostrecent"),
    MetricSpec("deliveries", "auptimate_sink_deliveries", "counter",
               "Alerts a sink accepted.", ("sink",)),
    MetricSpec("failures", "auptimate_sink_failures", "counter",
               "Alerts a sink raised an error on.", ("sink",)),
    MetricSpec("store_latency", "auptimate_store_call_duration_seconds", "histogram",
               "Latency of window store calls made by the engine.", ("store", "operation")),
    MetricSpec("store_errors", "auptimate_store_errors", "counter",
               "Store calls that raised, by error type.", ("store", "operation", "error")),
    # Every worker of a group reports the group's own numbers, read from Redis.
    MetricSpec("pending", "auptimate_worker_pending_entries", "gauge",
               "Stream entries delivered to the group and not yet acknowledged.",
               ("stream", "group"), merge="mostrecent"),
    MetricSpec("unread", "auptimate_worker_unread_entries", "gauge",
               "Stream entries not yet delivered to the group.", ("stream", "group"),
               merge="mostrecent"),
    MetricSpec("worker_done", "auptimate_worker_entries_processed", "counter",
               "Stream entries processed and acknowledged.", ("stream", "group")),
    MetricSpec("worker_claimed", "auptimate_worker_entries_reclaimed", "counter",
               "Stream entries claimed from a consumer that stopped.", ("stream", "group")),
    MetricSpec("worker_bad", "auptimate_worker_entries_rejected", "counter",
               "Stream entries that could not be processed.", ("stream", "group")),
    MetricSpec("ledger_writes", "auptimate_ledger_writes", "counter",
               "Changes recorded by the pools ledger.", ("kind",)),
    MetricSpec("ledger_latency", "auptimate_ledger_write_duration_seconds", "histogram",
               "Time a ledger write took, from its start to its commit.", ("kind",)),
    MetricSpec("ledger_refusals", "auptimate_ledger_refusals", "counter",
               "Requests the pools ledger refused.", ("reason",)),
    MetricSpec("ledger_replays", "auptimate_ledger_idempotent_replays", "counter",
               "Retries answered from the record by their idempotency key.", ("kind",)),
    MetricSpec("ledger_subscriber_failures", "auptimate_ledger_subscriber_failures", "counter",
               "Events an in-process ledger subscriber raised on (the change feed keeps them).",
               ("event",)),
    # Versions start with a digit, which clean_label refuses: they come from the code itself.
    MetricSpec("build", "auptimate_build_info", "gauge",
               "Always 1: the library's version and the Python running it.",
               ("version", "python"), merge="max", clean=False),
)
"""Every metric the recorders export, in the order they are exposed."""


def sample_names() -> frozenset[str]:
    """The sample names a scrape can show: ``_total`` for counters, ``_bucket``, ``_sum`` and
    ``_count`` for histograms, the name itself for gauges.

    >>> "auptimate_alerts_total" in sample_names(), "auptimate_alerts" in sample_names()
    (True, False)
    """
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return frozenset(spec.name + suffix for spec in METRICS for suffix in suffixes[spec.kind])


def multiprocess_directory() -> str | None:
    """The directory of prometheus_client's multiprocess mode, or None when it is off.

    The mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set. prometheus_client reads the
    variable once, when it is first imported, so it must be set before that (in the
    environment the processes start with), and the directory must exist.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return None
    if not os.path.isdir(directory):
        raise ValidationError(
            "PROMETHEUS_MULTIPROC_DIR",
            f"{directory!r} is not a directory: create it (empty) before the processes start")
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        raise ValidationError(
            "PROMETHEUS_MULTIPROC_DIR",
            "was set after prometheus_client was imported, so this process would keep its "
            "metrics to itself: set it in the environment the processes start with")
    return directory


class _Cell:
    """One counter or gauge value. ``inc`` holds a lock; ``set`` is one atomic assignment."""

    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        with self._lock:
            self.value += amount

    def set(self, value: float) -> None:
        self.value = value

    def sample(self) -> float:
        return self.value


class _HistogramCell:
    """Counts per bucket (the last is +Inf) and the sum of what was observed."""

    __slots__ = ("_lock", "counts", "total")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = [0] * (len(STORE_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        i = bisect_left(STORE_BUCKETS, seconds)  # first bucket whose bound is >= seconds
        with self._lock:
            self.counts[i] += 1
            self.total += seconds

    def sample(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self.counts), self.total


class _Family:
    """One labelled metric: its cells by label values. Label checks run once per label set;
    ``make(values)`` builds the cell of a new (cleaned) label set."""

    __slots__ = ("_by_clean", "_children", "_lock", "make", "spec")

    def __init__(self, spec: MetricSpec, make: Callable[[tuple[str, ...]], Any]) -> None:
        self.spec, self.make = spec, make
        self._children: dict[tuple[str, ...], Any] = {}
        self._by_clean: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def child(self, *values: str) -> Any:
        found = self._children.get(values)
        if found is not None:
            return found
        with self._lock:
            found = self._children.get(values)
            if found is None:
                clean = values
                if self.spec.clean:
                    clean = tuple(clean_label(v) if v else v for v in values)
                if clean not in self._by_clean and len(self._by_clean) >= MAX_SERIES:
                    clean = tuple(OTHER for _ in values)
                found = self._by_clean.get(clean)
                if found is None:
                    found = self.make(clean)
                    self._by_clean[clean] = found
                self._children[values] = found
        return found

    def cells(self) -> list[tuple[tuple[str, ...], Any]]:
        with self._lock:
            return list(self._by_clean.items())


class _Collector:
    """Presents the cells of one process to a prometheus_client registry at scrape time."""

    def __init__(self, families: list[_Family]) -> None:
        self.families = families

    def describe(self) -> list[Any]:
        return self._build(samples=False)

    def collect(self) -> list[Any]:
        return self._build(samples=True)

    def _build(self, samples: bool) -> list[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        kinds = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                 "histogram": HistogramMetricFamily}
        bounds = [repr(b) for b in STORE_BUCKETS] + ["+Inf"]  # as Prometheus writes them
        out = []
        for family in self.families:
            spec = family.spec
            metric = kinds[spec.kind](spec.name, spec.doc, labels=spec.labels)
            for labels, cell in family.cells() if samples else ():
                if spec.kind == "histogram":
                    counts, total = cell.sample()
                    running, buckets = 0, []
                    for bound, count in zip(bounds, counts):
                        running += count
                        buckets.append((bound, running))
                    metric.add_metric(list(labels), buckets, total)
                else:
                    metric.add_metric(list(labels), cell.sample())
            out.append(metric)
        return out


class _FilesCollector:
    """Presents the library's metrics as every process wrote them to the multiprocess
    directory, merged by prometheus_client's MultiProcessCollector (other metrics in the
    directory are the host's: it exposes them itself)."""

    def __init__(self, directory: str) -> None:
        from prometheus_client import multiprocess

        files: Any = multiprocess.MultiProcessCollector  # untyped in prometheus_client
        self._files = files(None, path=directory)
        self._names = frozenset(spec.name for spec in METRICS)

    def collect(self) -> list[Any]:
        return [metric for metric in self._files.collect() if metric.name in self._names]


class PrometheusRecorder(Recorder):
    """Hooks counting into plain cells, exposed to one registry by a collector at scrape time.

    The cells cost a lock and an addition per hook (a bisect more for a histogram), several
    times less than prometheus_client's own metric objects, which matters when ``process()`` is
    called one transaction at a time.
    """

    enabled = True

    processed: _Family
    duplicates: _Family
    late: _Family
    future: _Family
    alerts: _Family
    firing: _Family
    deliveries: _Family
    failures: _Family
    store_latency: _Family
    store_errors: _Family
    pending: _Family
    unread: _Family
    worker_done: _Family
    worker_claimed: _Family
    worker_bad: _Family
    ledger_writes: _Family
    ledger_latency: _Family
    ledger_refusals: _Family
    ledger_replays: _Family
    ledger_subscriber_failures: _Family
    build: _Family

    def __init__(self, registry: Any) -> None:
        def cell(spec: MetricSpec) -> Callable[[tuple[str, ...]], Any]:
            return (lambda _: _HistogramCell()) if spec.kind == "histogram" else (
                lambda _: _Cell())

        self._families = self._build(cell)
        registry.register(_Collector(self._families))

    def _build(
        self, cell: Callable[[MetricSpec], Callable[[tuple[str, ...]], Any]]
    ) -> list[_Family]:
        families = []
        for spec in METRICS:
            family = _Family(spec, cell(spec))
            setattr(self, spec.attr, family)
            families.append(family)
        self._stores: set[str] = set()
        self._sinks: set[str] = set()
        self._groups: set[tuple[str, str]] = set()
        from .. import __version__

        self.build.child(__version__, platform.python_version()).set(1)
        return families

    def engine_batch(
        self, store: str, processed: int, duplicates: int, late: int, future: int = 0
    ) -> None:
        if store not in self._stores:  # every series of a store from its first batch on
            self._stores.add(store)
            for family in (self.duplicates, self.late, self.future):
                family.child(store)
        self.processed.child(store).inc(processed)
        if duplicates:
            self.duplicates.child(store).inc(duplicates)
        if late:
            self.late.child(store).inc(late)
        if future:
            self.future.child(store).inc(future)

    def alert_raised(self, rule: str, state: str) -> None:
        self.alerts.child(rule, state).inc()

    def alerts_firing(self, store: str, rule: str, pools: int) -> None:
        self.firing.child(store, rule).set(pools)

    def sink_delivery(self, sink: str, ok: bool) -> None:
        if sink not in self._sinks:  # a sink's failures read 0, not nothing, until it fails
            self._sinks.add(sink)
            self.deliveries.child(sink)
            self.failures.child(sink)
        (self.deliveries if ok else self.failures).child(sink).inc()

    def store_call(self, store: str, operation: str, seconds: float) -> None:
        self.store_latency.child(store, operation).observe(seconds)

    def store_error(self, store: str, operation: str, error: str) -> None:
        self.store_errors.child(store, operation, error).inc()

    def _new_group(self, stream: str, group: str) -> None:
        if (stream, group) not in self._groups:  # its counters read 0 from the first report
            self._groups.add((stream, group))
            for family in (self.worker_done, self.worker_claimed, self.worker_bad):
                family.child(stream, group)

    def worker_lag(self, stream: str, group: str, pending: int, unread: int | None) -> None:
        self._new_group(stream, group)
        self.pending.child(stream, group).set(pending)
        if unread is not None:
            self.unread.child(stream, group).set(unread)

    def worker_processed(self, n: int, stream: str, group: str) -> None:
        self._new_group(stream, group)
        self.worker_done.child(stream, group).inc(n)

    def worker_reclaimed(self, n: int, stream: str, group: str) -> None:
        self.worker_claimed.child(stream, group).inc(n)

    def worker_rejected(self, n: int, stream: str, group: str) -> None:
        self.worker_bad.child(stream, group).inc(n)

    def ledger_write(self, kind: str, seconds: float | None = None) -> None:
        self.ledger_writes.child(kind).inc()
        if seconds is not None:
            self.ledger_latency.child(kind).observe(seconds)

    def ledger_refusal(self, reason: str) -> None:
        self.ledger_refusals.child(reason).inc()

    def ledger_replay(self, kind: str) -> None:
        self.ledger_replays.child(kind).inc()

    def ledger_subscriber_failure(self, event: str) -> None:
        self.ledger_subscriber_failures.child(event).inc()


class MultiprocessRecorder(PrometheusRecorder):
    """The same hooks, written through prometheus_client's metric objects into the multiprocess
    directory (one file per process and kind), so that one scrape sums every process.

    One per process: two would each keep their own copy of a file's values and overwrite each
    other. A forked child reopens files of its own (prometheus_client notices the new pid).
    :meth:`expose` registers, on a registry, the collector that reads every process's files.
    """

    def __init__(self, directory: str) -> None:  # no registry: the files are the store
        from prometheus_client import Counter, Gauge, Histogram

        self.directory = directory

        def cell(spec: MetricSpec) -> Callable[[tuple[str, ...]], Any]:
            metric: Any
            if spec.kind == "counter":
                metric = Counter(spec.name, spec.doc, spec.labels, registry=None)
            elif spec.kind == "gauge":
                metric = Gauge(spec.name, spec.doc, spec.labels, registry=None,
                               multiprocess_mode=spec.merge)
            else:
                metric = Histogram(spec.name, spec.doc, spec.labels, registry=None,
                                   buckets=STORE_BUCKETS)
            return lambda values: metric.labels(*values)

        self._families = self._build(cell)

    def expose(self, registry: Any) -> None:
        """Register on ``registry`` the collector of every process's values of the library."""
        registry.register(_FilesCollector(self.directory))
