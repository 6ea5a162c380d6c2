"""Alert sinks: where alerts go. A sink is any callable taking an :class:`Alert`.

Two kinds of sink:

- a plain callable (a :class:`CollectingSink`, a :class:`LoggingSink`, ``list.append``, a
  function of your own) is in-process and quick: it is called in the caller's thread, once per
  alert;
- a :class:`BackgroundSink` does I/O (a webhook, a pager, a queue): a
  :class:`~auptimate_core.alerts.delivery.Dispatcher` calls it from its worker thread, one
  attempt at a time with a deadline, retries it with backoff and dead-letters what still fails.
  :class:`BackgroundCall` puts a plain callable that does I/O on that path.

The webhook sink lives in :mod:`auptimate_core.integrations.webhook`.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import attrs

from ..errors import AuptimateError, ValidationError
from .alert import Alert

AlertCallback = Callable[[Alert], object]


@runtime_checkable
class AlertSink(Protocol):
    """An object that receives alerts; plain callables are accepted wherever a sink is."""

    def __call__(self, alert: Alert) -> object: ...


class DeliveryError(AuptimateError):
    """An attempt to hand an alert to a sink failed.

    ``retryable`` is False when another attempt cannot help (a redirect, a 4xx answer);
    ``status`` is the HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class DeliveryTimeout(DeliveryError):
    """An attempt did not finish by its deadline (it may be tried again)."""


@attrs.frozen
class RetryPolicy:
    """How often a background delivery is tried: ``attempts`` in all (the first included),
    waiting ``backoff * 2**(n - 1)`` seconds after the n-th failure, at most ``max_backoff``.

    >>> policy = RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5)
    >>> [policy.delay(n) for n in (1, 2, 3)]
    [0.5, 1.0, 1.5]
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) \
                or self.attempts < 1:
            raise ValidationError(
                "attempts", f"must be an int of at least 1, not {self.attempts!r}")
        if not self.backoff >= 0:
            raise ValidationError("backoff", f"must be 0 or more seconds, not {self.backoff!r}")
        if not self.max_backoff >= self.backoff:
            raise ValidationError(
                "max_backoff",
                f"must be at least backoff ({self.backoff}), not {self.max_backoff!r}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts before the next one."""
        return float(min(self.backoff * 2 ** (failures - 1), self.max_backoff))


def _check_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ValidationError("timeout", f"must be more than 0 seconds, not {timeout!r}")
    return float(timeout)


class BackgroundSink(abc.ABC):
    """A sink that does I/O, delivered from a dispatcher's worker thread, never the caller's.

    Subclasses implement :meth:`send`: one attempt, which returns by ``deadline`` (a
    :func:`time.monotonic` value) and raises on failure; a
    :class:`DeliveryError` with ``retryable=False`` says that trying again cannot help.
    ``timeout`` is the length of one attempt; ``retry`` the sink's own
    :class:`RetryPolicy`, or ``None`` for the dispatcher's. ``name`` labels the sink in logs,
    metrics and dead letters, so it carries no credentials.

    Called directly (``sink(alert)``, as a plain callable outside any dispatcher), it delivers
    in the calling thread with its retries, sleeping between them, and raises the last error.
    """

    def __init__(
        self,
        *,
        name: str,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError("name", f"must be a non-empty string, not {name!r}")
        self.name = name
        self.timeout = _check_timeout(timeout)
        self.retry = retry
        self._sleep = sleep

    @abc.abstractmethod
    def send(self, alert: Alert, deadline: float) -> None:
        """Make one attempt to deliver ``alert``, finished by ``deadline`` (monotonic time)."""

    def __call__(self, alert: Alert) -> None:
        policy = self.retry or RetryPolicy()
        for attempt in range(1, policy.attempts + 1):
            try:
                self.send(alert, time.monotonic() + self.timeout)
                return
            except DeliveryError as error:
                if not error.retryable or attempt == policy.attempts:
                    raise
            except Exception:
                if attempt == policy.attempts:
                    raise
            self._sleep(policy.delay(attempt))


class _Attempt:
    __slots__ = ("alert", "done", "error")

    def __init__(self, alert: Alert) -> None:
        self.alert = alert
        self.done = threading.Event()
        self.error: Exception | None = None


class BackgroundCall(BackgroundSink):
    """Puts a plain callable that does I/O (a pager client, a queue producer) on the
    background path: each attempt runs ``call(alert)`` in a thread of its own, and the
    dispatcher stops waiting at the deadline.

    A call that outlives its deadline counts as a failed attempt; it is left to finish, and a
    late success means the alert may arrive twice (receivers deduplicate by
    :attr:`Alert.key <auptimate_core.alerts.Alert.key>`). While ``max_running`` calls are
    still running, further attempts fail at once instead of starting more threads. Safe to
    share between threads.

    >>> sent = []
    >>> pager = BackgroundCall(sent.append, name="pager", timeout=1.0)
    >>> pager.name, pager.timeout
    ('pager', 1.0)
    """

    def __init__(
        self,
        call: AlertCallback,
        *,
        name: str | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        max_running: int = 4,
    ) -> None:
        if not callable(call):
            raise ValidationError("call", f"must be callable, not {call!r}")
        if max_running < 1:
            raise ValidationError("max_running", f"must be at least 1, not {max_running!r}")
        qualname = getattr(call, "__qualname__", None)
        super().__init__(
            name=name or (qualname if isinstance(qualname, str) else type(call).__qualname__),
            timeout=timeout,
            retry=retry,
        )
        self.call = call
        self.max_running = max_running
        self._running = 0
        self._lock = threading.Lock()

    def send(self, alert: Alert, deadline: float) -> None:
        with self._lock:
            if self._running >= self.max_running:
                raise DeliveryError(
                    f"{self._running} earlier calls of {self.name} are still running")
            self._running += 1
        attempt = _Attempt(alert)
        threading.Thread(
            target=self._run, args=(attempt,), name=f"auptimate-sink-{self.name}", daemon=True
        ).start()
        if not attempt.done.wait(max(0.0, deadline - time.monotonic())):
            raise DeliveryTimeout(f"{self.name} did not return by its deadline")
        if attempt.error is not None:
            raise attempt.error

    def _run(self, attempt: _Attempt) -> None:
        try:
            self.call(attempt.alert)
        except Exception as error:
            attempt.error = error
        finally:
            with self._lock:
                self._running -= 1
            attempt.done.set()

    def __repr__(self) -> str:
        return f"BackgroundCall({self.call!r}, name={self.name!r})"


class CollectingSink:
    """Keeps every alert it receives, in order; for tests and notebooks. Thread-safe.

    >>> sink = CollectingSink()
    >>> len(sink), sink.alerts
    (0, [])
    """

    def __init__(self) -> None:
        self._alerts: list[Alert] = []
        self._lock = threading.Lock()

    def __call__(self, alert: Alert) -> None:
        with self._lock:
            self._alerts.append(alert)

    @property
    def alerts(self) -> list[Alert]:
        """A copy of the alerts received so far."""
        with self._lock:
            return list(self._alerts)

    def clear(self) -> None:
        with self._lock:
            self._alerts.clear()

    def __len__(self) -> int:
        return len(self._alerts)

    def __iter__(self) -> Iterator[Alert]:
        return iter(self.alerts)


class LoggingSink:
    """Logs each alert through :mod:`logging` with structured fields and no personal data.

    Firing alerts log at ``level`` (WARNING by default), resolutions at INFO. The record's
    ``extra`` carries ``alert_rule``, ``alert_state``, ``pool_id`` and ``transaction_id``.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.WARNING) -> None:
        self.logger = logger or logging.getLogger("auptimate_core.alerts")
        self.level = level

    def __call__(self, alert: Alert) -> None:
        level = self.level if alert.state == "firing" else logging.INFO
        self.logger.log(
            level,
            "%s %s: %s",
            alert.name,
            alert.state,
            alert.message,
            extra={
                "alert_rule": alert.name,
                "alert_state": alert.state,
                "pool_id": alert.pool_id,
                "transaction_id": alert.transaction_id,
            },
        )
