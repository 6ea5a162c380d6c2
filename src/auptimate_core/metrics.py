"""Prometheus metrics for the engine, the stores, the workers and the ledger: off until enabled.

Importing this module imports no ``prometheus_client``. Every hook below is a plain function
that does nothing until :func:`enable_metrics` installs the Prometheus recorder, so calling a
hook on a hot path costs one function call while metrics are off. Call hooks through the module
(``from auptimate_core import metrics``; ``metrics.ledger_write("invest")``): the recorder is
looked up at call time, so metrics enabled after the caller was imported are still counted.

Public interface (also in notes/metrics_api.md)::

    enable_metrics(registry=None) -> Recorder   install Prometheus; registry=None means
                                                prometheus_client.REGISTRY (a host passes its
                                                own CollectorRegistry); raises MissingExtra
                                                when prometheus_client is not installed
    disable_metrics() -> None                   back to the no-op recorder
    metrics_enabled() -> bool
    recorder() -> Recorder                      the current recorder (check ``.enabled`` before
                                                paying for a timer)
    serve_metrics(port, addr="127.0.0.1", registry=None) -> (server, thread)
                                                enable and serve /metrics over HTTP

    # engine and stores (the engine calls these once per batch, never per transaction)
    engine_batch(store, processed, duplicates, late)
    alert_raised(rule, state)
    sink_delivery(sink, ok)
    store_call(store, operation, seconds)
    store_error(store, operation, error)

    # Redis Streams workers
    worker_lag(stream, group, pending, unread)  gauges; unread may be None (unknown)
    worker_processed(n, stream="", group="")
    worker_reclaimed(n, stream="", group="")    entries claimed from a dead consumer
    worker_rejected(n, stream="", group="")     entries that could not be processed

    # pools ledger
    ledger_write(kind)                          kind: "create_pool", "invest", "distribute" ...
    ledger_refusal(reason)                      reason: "permission_denied", "unknown_pool" ...
    ledger_replay(kind="other")                 an idempotent retry answered from the record
    ledger_subscriber_failure(event="other")    an in-process subscriber raised on an event

Label values are short names chosen by the code (a store's class name, a rule name, an
operation, a kind): never an investor id, an e-mail or an amount. As a guard, the Prometheus
recorder replaces any label value that is not a name (starts with a letter or ``_``, at most 80
characters of letters, digits and ``_.:<>-``, so no ``@`` and no number) by ``"other"``, and
caps each metric at :data:`MAX_SERIES` label sets. Both checks run once per new label set.

Safe to share between threads: every hook of the Prometheus recorder adds under a lock, and
the values are read by a collector when the registry is scraped.
"""

from __future__ import annotations

import re
import threading
import weakref
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from .errors import MissingExtra

if TYPE_CHECKING:
    from threading import Thread
    from wsgiref.simple_server import WSGIServer

__all__ = [
    "MAX_SERIES",
    "STORE_BUCKETS",
    "Recorder",
    "alert_raised",
    "disable_metrics",
    "enable_metrics",
    "engine_batch",
    "ledger_refusal",
    "ledger_replay",
    "ledger_subscriber_failure",
    "ledger_write",
    "metrics_enabled",
    "recorder",
    "serve_metrics",
    "sink_delivery",
    "store_call",
    "store_error",
    "worker_lag",
    "worker_processed",
    "worker_reclaimed",
    "worker_rejected",
]

MAX_SERIES = 1000
"""At most this many label sets per metric; later ones are counted under ``"other"``."""

STORE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)
"""Histogram buckets (seconds) of store call latency: 100 µs to 10 s."""

OTHER = "other"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>\-]{0,79}\Z")


class Recorder:
    """The no-op recorder: every hook does nothing. :func:`enable_metrics` replaces it."""

    enabled = False

    def engine_batch(
        self, store: str, processed: int, duplicates: int, late: int, future: int = 0
    ) -> None:
        pass

    def alert_raised(self, rule: str, state: str) -> None:
        pass

    def sink_delivery(self, sink: str, ok: bool) -> None:
        pass

    def store_call(self, store: str, operation: str, seconds: float) -> None:
        pass

    def store_error(self, store: str, operation: str, error: str) -> None:
        pass

    def worker_lag(self, stream: str, group: str, pending: int, unread: int | None) -> None:
        pass

    def worker_processed(self, n: int, stream: str, group: str) -> None:
        pass

    def worker_reclaimed(self, n: int, stream: str, group: str) -> None:
        pass

    def worker_rejected(self, n: int, stream: str, group: str) -> None:
        pass

    def ledger_write(self, kind: str) -> None:
        pass

    def ledger_refusal(self, reason: str) -> None:
        pass

    def ledger_replay(self, kind: str) -> None:
        pass

    def ledger_subscriber_failure(self, event: str) -> None:
        pass


_NOOP = Recorder()
_recorder: Recorder = _NOOP
_lock = threading.Lock()
# Weak keys: a registry that is gone must not hand its recorder to a new one at its address.
_by_registry: weakref.WeakKeyDictionary[Any, Recorder] = weakref.WeakKeyDictionary()


# -- hooks: one call each, looked up at call time ----------------------------------------------


def recorder() -> Recorder:
    """The recorder hooks go to now; ``recorder().enabled`` is False while metrics are off."""
    return _recorder


def metrics_enabled() -> bool:
    """Whether :func:`enable_metrics` has installed the Prometheus recorder."""
    return _recorder.enabled


def engine_batch(
    store: str, processed: int, duplicates: int, late: int, future: int = 0
) -> None:
    """A batch went through an engine on ``store`` (a class name): counts by status."""
    _recorder.engine_batch(store, processed, duplicates, late, future)


def alert_raised(rule: str, state: str) -> None:
    """An alert of ``rule`` (its name) in ``state`` (``firing``/``resolved``) was raised."""
    _recorder.alert_raised(rule, state)


def sink_delivery(sink: str, ok: bool) -> None:
    """An alert was handed to ``sink`` (a sink's name); ``ok`` False when the sink raised."""
    _recorder.sink_delivery(sink, ok)


def store_call(store: str, operation: str, seconds: float) -> None:
    """A call to ``store.operation`` took ``seconds`` (success or failure)."""
    _recorder.store_call(store, operation, seconds)


def store_error(store: str, operation: str, error: str) -> None:
    """A call to ``store.operation`` raised ``error`` (the exception's class name)."""
    _recorder.store_error(store, operation, error)


def worker_lag(stream: str, group: str, pending: int, unread: int | None) -> None:
    """Entries of ``stream`` delivered to ``group`` but not acknowledged, and not yet read."""
    _recorder.worker_lag(stream, group, pending, unread)


def worker_processed(n: int, stream: str = "", group: str = "") -> None:
    """``n`` stream entries were processed and acknowledged."""
    _recorder.worker_processed(n, stream, group)


def worker_reclaimed(n: int, stream: str = "", group: str = "") -> None:
    """``n`` stream entries were claimed from a consumer that stopped."""
    _recorder.worker_reclaimed(n, stream, group)


def worker_rejected(n: int, stream: str = "", group: str = "") -> None:
    """``n`` stream entries could not be processed (bad payload, dead-lettered)."""
    _recorder.worker_rejected(n, stream, group)


def ledger_write(kind: str) -> None:
    """The ledger recorded a change of ``kind`` (``create_pool``, ``invest``, ...)."""
    _recorder.ledger_write(kind)


def ledger_refusal(reason: str) -> None:
    """The ledger refused a request for ``reason`` (``permission_denied``, ...)."""
    _recorder.ledger_refusal(reason)


def ledger_replay(kind: str = OTHER) -> None:
    """A retried request was answered from the record by its idempotency key."""
    _recorder.ledger_replay(kind)


def ledger_subscriber_failure(event: str = OTHER) -> None:
    """An in-process ledger subscriber raised on an ``event`` (its class name)."""
    _recorder.ledger_subscriber_failure(event)


# -- switching on and off ----------------------------------------------------------------------


def enable_metrics(registry: Any = None) -> Recorder:
    """Install the Prometheus recorder on ``registry`` and return it.

    ``registry`` is a ``prometheus_client.CollectorRegistry``; ``None`` means the default
    ``prometheus_client.REGISTRY``. Enabling again with the same registry reuses its metrics
    (a registry accepts each name once); another registry gets its own set, which then receives
    the hooks. Raises :class:`~auptimate_core.errors.MissingExtra` naming the ``metrics`` extra
    when ``prometheus_client`` is not installed.
    """
    global _recorder
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtra("prometheus_client", "metrics") from None
    target = prometheus_client.REGISTRY if registry is None else registry
    with _lock:
        found = _by_registry.get(target)
        if found is None:
            found = _PrometheusRecorder(target)
            _by_registry[target] = found
        _recorder = found
    return found


def disable_metrics() -> None:
    """Send hooks to the no-op recorder again (the registered metrics stay, unchanged)."""
    global _recorder
    with _lock:
        _recorder = _NOOP


def serve_metrics(
    port: int, addr: str = "127.0.0.1", registry: Any = None
) -> tuple[WSGIServer, Thread]:
    """Enable metrics on ``registry`` and serve ``/metrics`` on ``addr:port`` in a thread.

    Port 0 picks a free port (read it from ``server.server_port``). Stop with
    ``server.shutdown(); server.server_close()``.
    Metrics are enabled only once the server listens, so a port that cannot be bound (an
    ``OSError``) leaves them as they were.
    """
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtra("prometheus_client", "metrics") from None
    target = prometheus_client.REGISTRY if registry is None else registry
    server, thread = prometheus_client.start_http_server(port, addr=addr, registry=target)
    enable_metrics(target)
    return server, thread


# -- the Prometheus recorder -------------------------------------------------------------------


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


class _PrometheusRecorder(Recorder):
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
