"""Prometheus metrics for the engine, the stores, the workers and the ledger: off until enabled.

Importing this module imports no ``prometheus_client``. Every hook below is a plain function
that does nothing until :func:`enable_metrics` installs the Prometheus recorder, so calling a
hook on a hot path costs one function call while metrics are off. Call hooks through the module
(``from auptimate_core import metrics``; ``metrics.ledger_write("invest")``): the recorder is
looked up at call time, so metrics enabled after the caller was imported are still counted.

Public interface::

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
    engine_batch(store, processed, duplicates, late, future=0)
    alert_raised(rule, state)
    alerts_firing(store, rule, pools)           gauge: pools a window rule fires for, as read
                                                from the store's lifecycle
    sink_delivery(sink, ok)
    store_call(store, operation, seconds)
    store_error(store, operation, error)

    # Redis Streams workers
    worker_lag(stream, group, pending, unread)  gauges; unread may be None (unknown)
    worker_processed(n, stream="", group="")
    worker_reclaimed(n, stream="", group="")    entries claimed from a dead consumer
    worker_rejected(n, stream="", group="")     entries that could not be processed

    # pools ledger
    ledger_write(kind, seconds=None)            kind: "create_pool", "invest", "distribute" ...;
                                                seconds: the write's duration, when timed
    ledger_refusal(reason)                      reason: "permission_denied", "unknown_pool" ...
    ledger_replay(kind="other")                 an idempotent retry answered from the record
    ledger_subscriber_failure(event="other")    an in-process subscriber raised on an event

The recorder also exports ``auptimate_build_info{version, python}`` (always 1).

**Several processes.** When ``PROMETHEUS_MULTIPROC_DIR`` names a directory in the environment
the processes start with, :func:`enable_metrics` installs prometheus_client's multiprocess mode
instead: each process writes its values to files in that directory, and the registry given to
:func:`enable_metrics` (or :func:`serve_metrics`) shows the library's metrics of every process,
counters and histograms summed, so one scrape of any process sees them all.

Label values are short names chosen by the code (a store's class name, a rule name, an
operation, a kind): never an investor id, an e-mail or an amount. As a guard, the Prometheus
recorder replaces any label value that is not a name (starts with a letter or ``_``, at most 80
characters of letters, digits and ``_.:<>-``, so no ``@`` and no number) by ``"other"``, and
caps each metric at :data:`MAX_SERIES` label sets. Both checks run once per new label set.
The Prometheus recorders live in :mod:`auptimate_core.metrics.prometheus`, imported by
:func:`enable_metrics`, with the table of every metric they export.

Safe to share between threads: every hook of the Prometheus recorder adds under a lock, and
the values are read by a collector when the registry is scraped.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtra

if TYPE_CHECKING:
    from threading import Thread
    from wsgiref.simple_server import WSGIServer

    from .prometheus import MultiprocessRecorder

__all__ = [
    "MAX_SERIES",
    "STORE_BUCKETS",
    "Recorder",
    "alert_raised",
    "alerts_firing",
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
"""Histogram buckets (seconds) of store calls and ledger writes: 100 µs to 10 s."""

OTHER = "other"
"""The label value that stands for any value that is not a name, and for label sets past
:data:`MAX_SERIES`."""


class Recorder:
    """The no-op recorder: every hook does nothing. :func:`enable_metrics` replaces it."""

    enabled = False

    def engine_batch(
        self, store: str, processed: int, duplicates: int, late: int, future: int = 0
    ) -> None:
        pass

    def alert_raised(self, rule: str, state: str) -> None:
        pass

    def alerts_firing(self, store: str, rule: str, pools: int) -> None:
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

    def ledger_write(self, kind: str, seconds: float | None = None) -> None:
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
_files: MultiprocessRecorder | None = None  # multiprocess mode: the one recorder per process


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


def alerts_firing(store: str, rule: str, pools: int) -> None:
    """``rule`` (a window rule's name) is firing for ``pools`` pools, as the engine has just
    read from the lifecycle of its store (a class name).

    A gauge, set rather than counted from the alerts: the lifecycle is the store's, shared by
    every engine on it and kept across restarts, so the last value read is right wherever the
    firing and resolved alerts were raised.
    """
    _recorder.alerts_firing(store, rule, pools)


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


def ledger_write(kind: str, seconds: float | None = None) -> None:
    """The ledger recorded a change of ``kind`` (``create_pool``, ``invest``, ...) in
    ``seconds`` (from the write's start to its commit; None when it was not timed)."""
    _recorder.ledger_write(kind, seconds)


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

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set when the process started) the hooks
    write to that directory, through one recorder per process whatever the registry, and
    ``registry`` gets a collector that reads the library's metrics of every process there.
    Do not pass a registry that already holds prometheus_client's own ``MultiProcessCollector``:
    it shows the library's metrics already, and they would appear twice. A variable set too
    late, or naming no directory, raises :class:`~auptimate_core.errors.ValidationError`.
    """
    global _recorder, _files
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtra("prometheus_client", "metrics") from None
    from .prometheus import MultiprocessRecorder, PrometheusRecorder, multiprocess_directory

    target = prometheus_client.REGISTRY if registry is None else registry
    directory = multiprocess_directory()
    with _lock:
        found = _by_registry.get(target)
        if found is None:
            if directory is None:
                found = PrometheusRecorder(target)
            else:
                if _files is None:
                    _files = MultiprocessRecorder(directory)
                _files.expose(target)
                found = _files
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
    ``OSError``) leaves them as they were. In multiprocess mode the page shows the library's
    metrics of every process writing to the directory (see :func:`enable_metrics`).
    """
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtra("prometheus_client", "metrics") from None
    target = prometheus_client.REGISTRY if registry is None else registry
    server, thread = prometheus_client.start_http_server(port, addr=addr, registry=target)
    enable_metrics(target)
    return server, thread
