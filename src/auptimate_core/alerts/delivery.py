"""Alert delivery that never blocks its caller on I/O and never drops an alert silently.

A :class:`Dispatcher` owns the sinks. :meth:`Dispatcher.submit` calls the in-process sinks
(plain callables) at once, in the caller's thread, and queues each alert for every
:class:`~auptimate_core.alerts.sinks.BackgroundSink`; one worker thread delivers the queues,
one attempt at a time, each with a deadline, and retries with exponential backoff. Every
delivery ends in one of two ways: a sink accepted it, or it is handed to the dead-letter
destination with the reason (retries exhausted, an answer that retrying cannot change, a full
queue, or still queued when :meth:`Dispatcher.close` ran out of time).

Delivery to background sinks is at least once: an attempt that timed out may still have
reached its receiver, and a receiver deduplicates by :attr:`Alert.key
<auptimate_core.alerts.Alert.key>` (the webhook sends it as ``Idempotency-Key``). Each sink
gets its alerts in the order they were submitted: a failing alert holds back the sink's later
ones until it is delivered or dead-lettered, and never holds back the other sinks.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Protocol, runtime_checkable

import attrs

from .. import metrics as _metrics
from ..clock import Clock, SystemClock
from ..errors import ValidationError
from ..logs import redact_secrets
from .alert import Alert
from .dead_letters import DeadLetter as DeadLetter
from .dead_letters import DeadLetterDestination, dead_letter_destination
from .dead_letters import JsonLinesDeadLetters as JsonLinesDeadLetters
from .dead_letters import read_dead_letters as read_dead_letters
from .lanes import Lane, earliest_due, next_due
from .sinks import AlertCallback, BackgroundSink, DeliveryError, RetryPolicy

__all__ = ["DeliveryStats", "Dispatcher", "ErrorHandler", "sink_name"]

logger = logging.getLogger("auptimate_core.alerts")

ErrorHandler = Callable[[AlertCallback, Alert, BaseException], object]
"""``on_error(sink, alert, error)``: called once for each delivery given up on."""

_IDLE_EXIT = 5.0  # seconds without work after which the worker thread ends (restarted on need)
_CLOSE_GRACE = 0.25  # how long close() waits past its timeout for an attempt at its deadline


@runtime_checkable
class NamedSink(Protocol):
    """A sink that names itself for logs, metrics and dead letters (``name``)."""

    @property
    def name(self) -> str: ...


def sink_name(sink: AlertCallback) -> str:
    """A sink's name for logs, metrics and dead letters: its own ``name`` attribute, or its
    function or class name; a lambda's is ``lambda:`` and where it was written.

    >>> sink_name(print), sink_name(lambda alert: None)
    ('print', 'lambda:auptimate_core.alerts.delivery:1')
    """
    if isinstance(sink, BackgroundSink | NamedSink) and isinstance(sink.name, str) and sink.name:
        return sink.name
    if isinstance(sink, FunctionType) and sink.__name__ == "<lambda>":
        return f"lambda:{sink.__module__}:{sink.__code__.co_firstlineno}"
    if isinstance(sink, FunctionType | BuiltinFunctionType | MethodType):
        return sink.__qualname__
    return type(sink).__qualname__


@attrs.frozen
class DeliveryStats:
    """What a dispatcher has done, counted per delivery (one alert to one sink).

    ``delivered`` a sink accepted; ``failed`` were given up on (after their attempts, at once
    for an answer retrying cannot change, or without an attempt: ``overflowed`` by a full
    queue, or still queued when ``close`` ran out of time); every failed one is
    ``dead_lettered``, or ``lost`` when the dead-letter destination itself raised (logged at
    CRITICAL). ``retried`` counts attempts after a failed one; ``pending`` what is queued now.
    """

    pending: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    overflowed: int = 0
    dead_lettered: int = 0
    lost: int = 0


_Route = tuple[AlertCallback, Lane | None]
_GiveUp = tuple[AlertCallback, str, Alert, BaseException, int]


class Dispatcher:
    """Hands every alert to every sink without blocking its caller on I/O.

    ``sinks`` are callables or :class:`~auptimate_core.alerts.sinks.BackgroundSink` objects.
    A plain callable is called in the thread that calls :meth:`submit`, once per alert; if it
    raises, the delivery is given up at once (no retry). A background sink is fed from a queue
    of at most ``capacity`` alerts by a daemon worker thread (started when there is work, ended
    after some idle seconds): one attempt at a time, each finished by its deadline (the sink's
    ``timeout`` from the start of the attempt, and never later than :meth:`close`'s), tried
    again after a failure by the sink's :class:`~auptimate_core.alerts.sinks.RetryPolicy` or
    else ``retry``, unless the error says retrying cannot help.

    When a sink's queue is full, :meth:`submit` waits up to ``overflow_wait`` seconds for room
    (0 by default: a slow sink never slows the caller) and then dead-letters the alert for that
    sink, counted in :attr:`stats` as ``overflowed``.

    A delivery given up on is logged at ERROR (sink name, alert key, HTTP status if any; never
    credentials), counted by the metrics hook ``sink_delivery(name, ok=False)``, written to
    ``dead_letter`` (see :func:`~auptimate_core.alerts.dead_letters.dead_letter_destination`:
    a path is a JSON Lines file; a callable takes a
    :class:`~auptimate_core.alerts.dead_letters.DeadLetter`; ``None`` logs on
    ``auptimate_core.alerts.dead_letters`` with the alert's key, pool and transaction) and
    passed to ``on_error(sink, alert, error)``.
    ``clock`` stamps the dead letters.

    At interpreter exit a dispatcher that was not closed is closed with ``exit_timeout``.
    Safe to share between threads.
    """

    def __init__(
        self,
        sinks: Iterable[AlertCallback] = (),
        *,
        dead_letter: str | os.PathLike[str] | DeadLetterDestination | None = None,
        retry: RetryPolicy | None = None,
        capacity: int = 10_000,
        overflow_wait: float = 0.0,
        on_error: ErrorHandler | None = None,
        clock: Clock | None = None,
        exit_timeout: float = 5.0,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValidationError("capacity", f"must be an int of at least 1, not {capacity!r}")
        for field, seconds in (("overflow_wait", overflow_wait), ("exit_timeout", exit_timeout)):
            if not seconds >= 0:
                raise ValidationError(field, f"must be 0 or more seconds, not {seconds!r}")
        self.dead_letter = dead_letter_destination(dead_letter)
        self.retry = retry or RetryPolicy()
        self.capacity = capacity
        self.overflow_wait = float(overflow_wait)
        self.on_error = on_error
        self.clock: Clock = clock or SystemClock()
        self.exit_timeout = float(exit_timeout)
        self._cond = threading.Condition()
        self._routes: tuple[_Route, ...] = ()  # replaced whole, so submit reads it unlocked
        self._lanes: list[Lane] = []  # every lane with work or a route, in turn order
        self._turn = 0
        self._worker: threading.Thread | None = None
        self._closing = False
        self._close_by = 0.0
        self._stopped = False
        self._settling = 0  # deliveries given up on whose dead letter is being written
        self._counts = dict.fromkeys(
            ("delivered", "retried", "failed", "overflowed", "dead_lettered", "lost"), 0)
        for sink in sinks:
            self.add(sink)
        _open.add(self)

    # -- sinks --------------------------------------------------------------------------------

    @property
    def sinks(self) -> list[AlertCallback]:
        """The sinks, in the order they receive each alert (a copy)."""
        return [sink for sink, _ in self._routes]

    def add(self, sink: AlertCallback) -> Callable[[], None]:
        """Add a sink; returns a function that removes it again (:meth:`remove`)."""
        if not callable(sink):
            raise ValidationError("sinks", f"a sink must be callable, not {sink!r}")
        with self._cond:
            lane = Lane(sink) if isinstance(sink, BackgroundSink) else None
            if lane is not None:
                self._lanes.append(lane)
            self._routes = (*self._routes, (sink, lane))
        return lambda: self.remove(sink)

    def remove(self, sink: AlertCallback) -> None:
        """Stop giving new alerts to ``sink`` (its first entry, if added twice); what is
        already queued for it is still delivered. Removing a sink that is not there does
        nothing."""
        with self._cond:
            for i, (known, _) in enumerate(self._routes):
                if known is sink:
                    self._routes = self._routes[:i] + self._routes[i + 1:]
                    self._prune()
                    return

    # -- delivering ---------------------------------------------------------------------------

    def submit(self, alerts: Iterable[Alert]) -> None:
        """Hand ``alerts`` to every sink: queue them for the background sinks, then call the
        plain ones, in order. Returns without waiting for any background delivery."""
        routes = self._routes
        if not routes:
            return
        batch = alerts if isinstance(alerts, list) else list(alerts)
        if not batch:
            return
        lanes = [lane for _, lane in routes if lane is not None]
        if lanes:
            self._enqueue(lanes, batch)
        if len(lanes) < len(routes):
            inline = [sink for sink, lane in routes if lane is None]
            for alert in batch:
                for sink in inline:
                    self._call(sink, alert)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert is delivered or dead-lettered; False if ``timeout``
        seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._idle() and not self._settling, timeout)

    def close(self, timeout: float = 5.0) -> DeliveryStats:
        """Deliver what is queued for up to ``timeout`` seconds, then dead-letter what is left
        and stop. Alerts submitted afterwards still reach the plain sinks; for the background
        sinks they are dead-lettered. Closing again does nothing. Returns the final stats."""
        with self._cond:
            if self._closing:
                worker = None
            else:
                self._closing = True
                self._close_by = time.monotonic() + max(0.0, timeout)
                self._cond.notify_all()
                worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, self._close_by - time.monotonic()) + _CLOSE_GRACE)
        leftovers: list[_GiveUp] = []
        with self._cond:
            self._stopped = True
            for lane in self._lanes:
                error = DeliveryError("not delivered before the dispatcher closed")
                leftovers.extend((lane.sink, lane.name, alert, error, attempts)
                                 for alert, attempts in lane.take_all())
            self._prune()
            self._settling += len(leftovers)
        self._give_up(leftovers)
        _open.discard(self)
        return self.stats

    @property
    def stats(self) -> DeliveryStats:
        """A snapshot of the counters."""
        with self._cond:
            return DeliveryStats(pending=sum(len(lane.jobs) for lane in self._lanes),
                                 **self._counts)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Dispatcher({self.sinks!r})"

    # -- the caller's side --------------------------------------------------------------------

    def _call(self, sink: AlertCallback, alert: Alert) -> None:
        try:
            sink(alert)
        except Exception as error:  # a sink's failure must not stop the caller or other sinks
            with self._cond:
                self._settling += 1
            self._give_up([(sink, sink_name(sink), alert, error, 1)])
        else:
            with self._cond:
                self._counts["delivered"] += 1
            recorder = _metrics.recorder()
            if recorder.enabled:
                recorder.sink_delivery(sink_name(sink), True)

    def _enqueue(self, lanes: list[Lane], batch: list[Alert]) -> None:
        refused: list[_GiveUp] = []
        with self._cond:
            if self._closing:
                error = DeliveryError("submitted after the dispatcher closed")
                refused = [(lane.sink, lane.name, alert, error, 0)
                           for lane in lanes for alert in batch]
            else:
                wait_until = time.monotonic() + self.overflow_wait
                full = DeliveryError(f"queue full ({self.capacity} alerts)")
                closed = DeliveryError("submitted while the dispatcher closed")
                for lane in lanes:
                    for alert in batch:
                        if len(lane.jobs) >= self.capacity and self.overflow_wait:
                            self._start()
                            self._cond.notify_all()
                            self._wait_for_room(lane, wait_until)
                        if self._closing:
                            refused.append((lane.sink, lane.name, alert, closed, 0))
                        elif len(lane.jobs) < self.capacity:
                            lane.jobs.append(alert)
                        else:
                            refused.append((lane.sink, lane.name, alert, full, 0))
                            self._counts["overflowed"] += 1
                self._start()
                self._cond.notify_all()
            self._settling += len(refused)
        self._give_up(refused)

    def _wait_for_room(self, lane: Lane, until: float) -> None:
        """Wait (under the lock) until ``lane`` has room, the dispatcher closes, or ``until``."""
        while len(lane.jobs) >= self.capacity and not self._closing:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _start(self) -> None:
        """Start the worker if there is none (under the lock)."""
        if self._worker is None and not self._stopped:
            worker = threading.Thread(
                target=self._work, name="auptimate-alert-delivery", daemon=True)
            try:
                worker.start()
            except RuntimeError:  # no thread to be had now: the queue waits for the next try
                logger.exception("alert delivery could not start its worker thread")
                return
            self._worker = worker

    # -- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                picked = self._pick()
                while picked is None:
                    if self._stopped or (self._closing and (
                            self._idle() or time.monotonic() >= self._close_by)):
                        self._worker = None
                        self._cond.notify_all()
                        return
                    wait = self._wait_time()
                    self._cond.wait(wait)
                    picked = self._pick()
                    if picked is None and wait == _IDLE_EXIT and self._idle() \
                            and not self._closing:
                        self._worker = None
                        return
                lane, alert, deadline = picked
            self._attempt(lane, alert, deadline)

    def _pick(self) -> tuple[Lane, Alert, float] | None:
        """The next lane whose head is due, in turn (under the lock)."""
        now = time.monotonic()
        if self._closing and now >= self._close_by:
            return None
        i = next_due(self._lanes, self._turn, now)
        if i is None:
            return None
        lane = self._lanes[i]
        self._turn = i + 1
        if lane.attempts:
            self._counts["retried"] += 1
        deadline = now + lane.sink.timeout
        if self._closing:
            deadline = min(deadline, self._close_by)
        return lane, lane.jobs[0], deadline

    def _wait_time(self) -> float:
        """How long the worker may sleep before a head falls due (under the lock)."""
        until = earliest_due(self._lanes)
        if until is None:
            return max(0.0, self._close_by - time.monotonic()) if self._closing else _IDLE_EXIT
        if self._closing:
            until = min(until, self._close_by)
        return max(0.0, until - time.monotonic())

    def _idle(self) -> bool:
        return not any(lane.jobs for lane in self._lanes)

    def _attempt(self, lane: Lane, alert: Alert, deadline: float) -> None:
        try:
            lane.sink.send(alert, deadline)
        except Exception as error:  # any failure is one failed attempt
            failure: Exception | None = error
        else:
            failure = None
        gave_up: list[_GiveUp] = []
        retry_in = 0.0
        with self._cond:
            if self._stopped or not lane.jobs or lane.jobs[0] is not alert:
                return  # close() took it over while the attempt ran past its deadline
            lane.attempts += 1
            attempts = lane.attempts
            policy = lane.sink.retry or self.retry
            retryable = not (isinstance(failure, DeliveryError) and not failure.retryable)
            if failure is None or not retryable or attempts >= policy.attempts:
                lane.finish_head()
                if failure is None:
                    self._counts["delivered"] += 1
                else:
                    gave_up.append((lane.sink, lane.name, alert, failure, attempts))
                    self._settling += 1
                self._prune()
            else:
                retry_in = policy.delay(attempts)
                lane.due = time.monotonic() + retry_in
            self._cond.notify_all()
        if failure is None:
            recorder = _metrics.recorder()
            if recorder.enabled:
                recorder.sink_delivery(lane.name, True)
        elif gave_up:
            self._give_up(gave_up)
        else:
            logger.warning(
                "alert sink %s failed on %s (attempt %d of %d), retrying in %.2fs: %s",
                redact_secrets(lane.name), alert.key, attempts, policy.attempts, retry_in,
                redact_secrets(str(failure)),
                extra={**_fields(lane.name, alert, failure), "attempt": attempts})

    def _prune(self) -> None:
        """Forget lanes that have no route and nothing queued (under the lock)."""
        routed = {id(lane) for _, lane in self._routes if lane is not None}
        self._lanes = [lane for lane in self._lanes if lane.jobs or id(lane) in routed]

    # -- giving up ----------------------------------------------------------------------------

    def _give_up(self, failures: list[_GiveUp]) -> None:
        """Log, count, dead-letter and report each delivery given up on (outside the lock);
        the caller has counted them in ``_settling``, for :meth:`flush` to wait on."""
        if not failures:
            return
        recorder = _metrics.recorder()
        for sink, name, alert, error, attempts in failures:
            logger.error(
                "alert sink %s failed on %s after %d attempt(s): %s", redact_secrets(name),
                alert.key, attempts, redact_secrets(str(error)),
                extra={**_fields(name, alert, error), "attempts": attempts})
            if recorder.enabled:
                recorder.sink_delivery(name, False)
            letter = DeadLetter(alert, name, _describe(error), attempts, self.clock.now())
            try:
                self.dead_letter(letter)
            except Exception:  # the destination failed too: say so loudly
                outcome = "lost"
                logger.critical(
                    "dead letter for sink %s could not be written: alert %s is lost",
                    redact_secrets(name), alert.key, exc_info=True,
                    extra=_fields(name, alert, error))
            else:
                outcome = "dead_lettered"
            if self.on_error is not None:
                try:
                    self.on_error(sink, alert, error)
                except Exception:
                    logger.exception("on_error handler failed for alert %s", alert.key)
            with self._cond:
                self._counts["failed"] += 1
                self._counts[outcome] += 1
                self._settling -= 1
                self._cond.notify_all()


def _describe(error: BaseException) -> str:
    """An error as logs and dead letters show it: credentials in it hidden."""
    return redact_secrets(f"{type(error).__name__}: {error}")


def _fields(name: str, alert: Alert, error: BaseException) -> dict[str, object]:
    return {"sink": redact_secrets(name), "alert_key": alert.key, "alert_rule": alert.name,
            "alert_state": alert.state, "pool_id": alert.pool_id,
            "transaction_id": alert.transaction_id,
            "status": error.status if isinstance(error, DeliveryError) else None}


_open: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


@atexit.register
def _close_open_dispatchers() -> None:
    for dispatcher in list(_open):
        dispatcher.close(dispatcher.exit_timeout)
