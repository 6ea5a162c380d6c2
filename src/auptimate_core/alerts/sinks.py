"""Alert sinks: where alerts go. A sink is any callable taking an :class:`Alert`.

The engine hands every alert to every sink; a sink that raises is reported and skipped, and the
other sinks still get the alert. The webhook sink lives in
:mod:`auptimate_core.integrations.webhook` because it does network I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from .alert import Alert

AlertCallback = Callable[[Alert], object]


@runtime_checkable
class AlertSink(Protocol):
    """An object that receives alerts; plain callables are accepted wherever a sink is."""

    def __call__(self, alert: Alert) -> object: ...


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
