"""The Prometheus recorder that :func:`~auptimate_core.metrics.enable_metrics` installs: the
hooks count into plain cells, and a collector presents them to a ``prometheus_client``
registry when it is scraped.

Importing this module imports no ``prometheus_client``: the collector imports it when it
builds the metric families. Label values pass through :func:`clean_label`, once per new label
set, and each metric holds at most :data:`~auptimate_core.metrics.MAX_SERIES` label sets.
Safe to share between threads: counters and histograms add under a lock, a gauge is set by
one assignment.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from typing import Any

from . import MAX_SERIES, OTHER, STORE_BUCKETS, Recorder

__all__ = ["PrometheusRecorder", "clean_label"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>\-]{0,79}\Z")


def clean_label(value: str) -> str:
    """``value`` when it is a short name, else ``"other"``: no e-mail, no number, no id soup.

    >>> clean_label("RedisWindowStore"), clean_label("a@b.example"), clean_label("250000.00")
    ('RedisWindowStore', 'other', 'other')
    """
    return value if _NAME.match(value) else OTHER


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
    """One labelled metric: its cells by label values. Label checks run once per label set."""

    __slots__ = ("_by_clean", "_children", "_lock", "doc", "kind", "labels", "name")

    def __init__(self, kind: str, name: str, doc: str, *labels: str) -> None:
        self.kind, self.name, self.doc, self.labels = kind, name, doc, labels
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
                clean = tuple(clean_label(v) if v else v for v in values)
                if clean not in self._by_clean and len(self._by_clean) >= MAX_SERIES:
                    clean = tuple(OTHER for _ in values)
                found = self._by_clean.get(clean)
                if found is None:
                    found = _HistogramCell() if self.kind == "histogram" else _Cell()
                    self._by_clean[clean] = found
                self._children[values] = found
        return found

    def cells(self) -> list[tuple[tuple[str, ...], Any]]:
        with self._lock:
            return list(self._by_clean.items())


class _Collector:
    """Presents the families to a prometheus_client registry at scrape time."""

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
            metric = kinds[family.kind](family.name, family.doc, labels=family.labels)
            for labels, cell in family.cells() if samples else ():
                if family.kind == "histogram":
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


class PrometheusRecorder(Recorder):
    """Hooks counting into plain cells, exposed to one registry by a collector at scrape time.

    The cells cost a lock and an addition per hook (a bisect more for the histogram), several
    times less than prometheus_client's own metric objects, which matters when ``process()`` is
    called one transaction at a time.
    """

    enabled = True

    def __init__(self, registry: Any) -> None:
        def counter(name: str, doc: str, *labels: str) -> _Family:
            return _Family("counter", name, doc, *labels)

        def gauge(name: str, doc: str, *labels: str) -> _Family:
            return _Family("gauge", name, doc, *labels)

        # Counter names are given without _total: the exposition appends it.
        self.processed = counter(
            "auptimate_transactions_processed", "Transactions handed to an alert engine.",
            "store")
        self.duplicates = counter(
            "auptimate_duplicates_skipped",
            "Transactions whose id the store had already counted.", "store")
        self.late = counter(
            "auptimate_late_events_rejected",
            "Transactions older than the store's allowed lateness, kept out of the windows "
            "(their transaction rules ran).", "store")
        self.future = counter(
            "auptimate_future_events_held_out",
            "Transactions too far ahead of the engine's clock, kept out of the windows "
            "(their transaction rules ran).", "store")
        self.alerts = counter(
            "auptimate_alerts", "Alerts raised, by rule and state.", "rule", "state")
        self.deliveries = counter(
            "auptimate_sink_deliveries", "Alerts a sink accepted.", "sink")
        self.failures = counter(
            "auptimate_sink_failures", "Alerts a sink raised an error on.", "sink")
        self.store_latency = _Family(
            "histogram", "auptimate_store_call_duration_seconds",
            "Latency of window store calls made by the engine.", "store", "operation")
        self.store_errors = counter(
            "auptimate_store_errors", "Store calls that raised, by error type.",
            "store", "operation", "error")
        self.pending = gauge(
            "auptimate_worker_pending_entries",
            "Stream entries delivered to the group and not yet acknowledged.",
            "stream", "group")
        self.unread = gauge(
            "auptimate_worker_unread_entries",
            "Stream entries not yet delivered to the group.", "stream", "group")
        self.worker_done = counter(
            "auptimate_worker_entries_processed",
            "Stream entries processed and acknowledged.", "stream", "group")
        self.worker_claimed = counter(
            "auptimate_worker_entries_reclaimed",
            "Stream entries claimed from a consumer that stopped.", "stream", "group")
        self.worker_bad = counter(
            "auptimate_worker_entries_rejected",
            "Stream entries that could not be processed.", "stream", "group")
        self.ledger_writes = counter(
            "auptimate_ledger_writes", "Changes recorded by the pools ledger.", "kind")
        self.ledger_refusals = counter(
            "auptimate_ledger_refusals", "Requests the pools ledger refused.", "reason")
        self.ledger_replays = counter(
            "auptimate_ledger_idempotent_replays",
            "Retries answered from the record by their idempotency key.", "kind")
        self.ledger_subscriber_failures = counter(
            "auptimate_ledger_subscriber_failures",
            "Events an in-process ledger subscriber raised on (the change feed keeps them).",
            "event")
        families = [value for value in vars(self).values() if isinstance(value, _Family)]
        registry.register(_Collector(families))

    def engine_batch(
        self, store: str, processed: int, duplicates: int, late: int, future: int = 0
    ) -> None:
        self.processed.child(store).inc(processed)
        if duplicates:
            self.duplicates.child(store).inc(duplicates)
        if late:
            self.late.child(store).inc(late)
        if future:
            self.future.child(store).inc(future)

    def alert_raised(self, rule: str, state: str) -> None:
        self.alerts.child(rule, state).inc()

    def sink_delivery(self, sink: str, ok: bool) -> None:
        (self.deliveries if ok else self.failures).child(sink).inc()

    def store_call(self, store: str, operation: str, seconds: float) -> None:
        self.store_latency.child(store, operation).observe(seconds)

    def store_error(self, store: str, operation: str, error: str) -> None:
        self.store_errors.child(store, operation, error).inc()

    def worker_lag(self, stream: str, group: str, pending: int, unread: int | None) -> None:
        self.pending.child(stream, group).set(pending)
        if unread is not None:
            self.unread.child(stream, group).set(unread)

    def worker_processed(self, n: int, stream: str, group: str) -> None:
        self.worker_done.child(stream, group).inc(n)

    def worker_reclaimed(self, n: int, stream: str, group: str) -> None:
        self.worker_claimed.child(stream, group).inc(n)

    def worker_rejected(self, n: int, stream: str, group: str) -> None:
        self.worker_bad.child(stream, group).inc(n)

    def ledger_write(self, kind: str) -> None:
        self.ledger_writes.child(kind).inc()

    def ledger_refusal(self, reason: str) -> None:
        self.ledger_refusals.child(reason).inc()

    def ledger_replay(self, kind: str) -> None:
        self.ledger_replays.child(kind).inc()

    def ledger_subscriber_failure(self, event: str) -> None:
        self.ledger_subscriber_failures.child(event).inc()
