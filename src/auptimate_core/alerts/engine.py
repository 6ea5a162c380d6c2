"""The :class:`AlertEngine`: rules applied to each transaction as it arrives, on any WindowStore.

The engine knows storage only through the :class:`~auptimate_core.store.WindowStore` protocol.
One batch of transactions costs a fixed number of store calls whatever its size:
``observe_many`` (record and tally), ``states`` (the lifecycle of the pools in the batch) and
``transition`` (compare-and-set of the changes), so the Redis store pays three round trips per
batch and the memory store three function calls.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from time import perf_counter, time_ns
from typing import Any, Literal, TypeVar

from .. import metrics as _metrics
from ..clock import Clock, SystemClock
from ..columns import AmountColumn, TransactionColumns
from ..domain import EPOCH, Transaction, check_timestamp, to_micros
from ..errors import LateEvent, StoreError, ValidationError
from ..store import (
    DecidesPerEvent,
    EventAnswer,
    Status,
    SwitchesOne,
    Transition,
    WindowStore,
    to_units,
)
from ..urls import WINDOW_STORES
from .alert import Alert
from .dead_letters import DeadLetterDestination
from .decisions import WindowDecisions
from .delivery import Dispatcher
from .event_rules import EventRules, Found
from .pending import PendingAlerts
from .retries import RetryLog, Unfinished
from .rows import ColumnRows, Rows, TxRows, transaction_alerts
from .rules import FlaggingRule, TransactionRule, WindowRule
from .sinks import AlertCallback
from .stats import EngineStats, log_held

logger = logging.getLogger("auptimate_core.alerts")

SinkErrorHandler = Callable[[AlertCallback, Alert, BaseException], object]
_T = TypeVar("_T")
_MICROSECOND = timedelta(microseconds=1)
_NEW = Status.NEW
_DUPLICATE = Status.DUPLICATE


def _untimed(operation: str, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """A store call made without metrics (the engine's ``_call`` when they are off)."""
    return call(*args, **kwargs)


class AlertEngine:
    """Apply ``rules`` to transactions as they arrive and hand the alerts to ``sinks``.

    ``store`` is any :class:`~auptimate_core.store.WindowStore` (``None`` means a new
    :class:`~auptimate_core.backends.memory.MemoryWindowStore`, whose per-pool windows suit one
    transaction at a time; for batches of thousands, see
    :class:`~auptimate_core.backends.columnar.ColumnarWindowStore`). ``sinks`` are callables
    that receive every alert: plain callables at once, background sinks (webhooks) from a queue
    on a worker thread, with a deadline per attempt, retries, and ``dead_letter`` (a JSON Lines
    path or a callable, see :class:`~auptimate_core.alerts.delivery.Dispatcher`) for what still
    fails. A failing sink is logged, counted, passed to ``on_sink_error`` if given, and never
    stops or slows the engine or the other sinks.

    Transaction rules run on every transaction that is not a duplicate. Window rules count
    only what the store let into its windows: a *late* transaction (older than the store's
    allowed lateness) and a *future* one (more than ``max_ahead`` ahead of ``clock``, so that
    one wrong timestamp cannot make every later transaction late) stay out, and are counted in
    :attr:`stats`, in the metrics and in the log. ``on_late`` and ``on_future``, when given,
    are called with each of them; ``on_late="raise"`` makes the call finish and then raise
    :class:`~auptimate_core.errors.LateEvent` carrying ``late``, ``future``, ``transactions``
    (both) and ``alerts`` (all alerts of the call, which the sinks have already received).

    A call that fails with a :class:`~auptimate_core.errors.StoreError` may be retried with
    the same transactions: each batch is decided under a name the store remembers, so the
    retry returns the alerts the failed call would have returned, and the sinks receive each
    alert once.

    Safe to share between threads: calls are serialised by a lock, and the lifecycle lives in the
    store, so engines in other processes sharing that store share it too.
    """

    def __init__(
        self,
        rules: Sequence[TransactionRule | WindowRule],
        store: WindowStore | None = None,
        sinks: Iterable[AlertCallback] = (),
        *,
        on_late: Callable[[Transaction], object] | Literal["raise"] | None = None,
        on_future: Callable[[Transaction], object] | None = None,
        on_sink_error: SinkErrorHandler | None = None,
        batch_size: int = 10_000,
        max_ahead: timedelta = timedelta(minutes=5),
        clock: Clock | None = None,
        dead_letter: str | os.PathLike[str] | DeadLetterDestination | None = None,
    ) -> None:
        if store is None:
            store = WINDOW_STORES.open("memory://")
        self.store: WindowStore = store
        self._store_name = type(store).__name__
        self.rules = tuple(rules)
        names = [rule.name for rule in self.rules]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise ValidationError("rules", f"two rules are named {twice!r}")
        odd = next((rule for rule in self.rules
                    if not isinstance(rule, WindowRule | TransactionRule)), None)
        if odd is not None:
            raise ValidationError(
                "rules", f"{odd!r} is neither a transaction rule nor a window rule")
        # Checked once here: an isinstance() against a Protocol is dear on the hot path.
        self._tx_rules = [
            (rule, rule.flagged if isinstance(rule, FlaggingRule) else None)
            for rule in self.rules
            if isinstance(rule, TransactionRule) and not isinstance(rule, WindowRule)]
        self._windows = WindowDecisions([rule for rule in self.rules
                                         if isinstance(rule, WindowRule)])
        self._intervals = self._windows.intervals
        self._totals = self._windows.totals
        # A store that answers one event as plain values, shows its firing keys live and
        # switches one pair (the stores of this process) gets process() on a path of its own:
        # no batch built, and no call to the lifecycle unless a rule's state may change.
        self._event: Callable[..., EventAnswer] | None = None
        self._one: EventRules | None = None
        self._switch: SwitchesOne | None = None
        if isinstance(store, DecidesPerEvent):
            self._event = store.observe_event
            self._switch = store
            self._one = EventRules([rule for rule, _ in self._tx_rules], self._windows.slots,
                                   store.firing_view)
        self._stats_lock = threading.Lock()
        self._dispatcher = Dispatcher(sinks, on_error=_weakly(self._sink_failed),
                                      dead_letter=dead_letter)
        if not (on_late is None or on_late == "raise" or callable(on_late)):
            raise ValidationError("on_late", f"must be a callable, 'raise' or None, not "
                                  f"{on_late!r}")
        self.on_late = on_late
        self.on_future = on_future
        self.on_sink_error = on_sink_error
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        if not isinstance(max_ahead, timedelta) or max_ahead < timedelta(0):
            raise ValidationError("max_ahead", f"must be a timedelta of at least 0, not "
                                  f"{max_ahead!r}")
        self.max_ahead = max_ahead
        self._ahead = max_ahead // _MICROSECOND
        self._ahead_ns = self._ahead * 1_000
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._wall_clock = type(self.clock) is SystemClock  # read as time_ns(), the same time
        self.stats = EngineStats()
        self._lock = threading.RLock()
        self._retries = RetryLog(uuid.uuid4().hex[:12])

    # -- public API ---------------------------------------------------------------------------

    def process(self, tx: Transaction) -> list[Alert]:
        """Record one transaction and return the alerts it caused (also sent to the sinks).

        The same result as ``process_many([tx])``, on a path of its own: one observation,
        and the lifecycle asked and changed only for a rule whose state may change, so its
        cost depends on neither the number of pools nor the history."""
        event = self._event
        one = self._one
        if event is None or one is None or self._retries.failed or _metrics.recorder().enabled:
            return self._process_alone(tx)
        d = tx.timestamp - EPOCH
        at = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        pool = tx.pool_id
        self._lock.acquire()  # not a with block: a measurable share of this path
        try:
            try:
                status, counts, totals, first = event(
                    pool, tx.id, at, to_units(tx.amount) if self._totals else 0,
                    self._intervals, self._totals,
                    (time_ns() + self._ahead_ns) // 1_000 if self._wall_clock
                    else to_micros(self.clock.now()) + self._ahead)
            except StoreError:
                self._retries.fail((tx.id,), self._retries.tag())
                raise
            self.stats.processed += 1
            simple = one.simple
            if simple is not None and status is _NEW:
                # The default rules on a new transaction, decided here; the usual one (under
                # the limit, the window rule's state as it was) returns at the first test.
                limit, per_pool, threshold, window, firing, use_totals, floor, a, b, c0, c1 = (
                    simple)
                values = totals if use_totals else counts
                v0 = values[c0]
                v1 = values[c1]
                holds = v0 >= floor and v0 * a >= v1 * b
                over = tx.amount > (per_pool.get(pool, limit) if per_pool is not None
                                    else limit)
                if holds is (pool in firing):
                    if not over:
                        return []
                    raised: list[Alert] = [threshold.check(tx)]  # type: ignore[list-item]
                    self._deliver(raised)  # over the limit: check() gave its alert
                    return raised
                # The window rule's state may change: decided with the lifecycle's word.
                raised = [threshold.check(tx)] if over else []  # type: ignore[list-item]
                raised += self._window_alerts(tx, at, first, [(window, (v0, v1), holds)])
                if raised:
                    self._deliver(raised)
                return raised
            alerts, held = self._decide_event(one, tx, at, status, counts, totals, first)
        finally:
            self._lock.release()
        if held is not None:
            self._raise_if_held(held, alerts)
        return alerts

    def _decide_event(
        self, one: EventRules, tx: Transaction, at: int, status: Status,
        counts: Sequence[int], totals: Sequence[int], first: int | None,
    ) -> tuple[list[Alert], tuple[list[Transaction], list[Transaction]] | None]:
        """The rest of :meth:`process` once the store answered (under the engine's lock): the
        alerts, and the late and future transactions held (None when it was new)."""
        held: tuple[list[Transaction], list[Transaction]] | None = None
        if status is not _NEW:
            held = ([], [])
            _metrics.engine_batch(
                self._store_name, 1, *self._count_held([status], lambda _: tx, held))
            if status is _DUPLICATE:
                return [], held
        alerts = one.tx_alerts(tx)
        found = one.may_change(tx.pool_id, counts, totals) if status is _NEW else None
        if found:
            alerts += self._window_alerts(tx, at, first, found)
        if alerts:
            self._deliver(alerts)
        return alerts, held

    def _window_alerts(
        self, tx: Transaction, at: int, first: int | None, found: list[Found]
    ) -> list[Alert]:
        """The alerts of the window rules of ``found`` (those whose state may change at
        ``tx``), each switched in the lifecycle of this process: those whose change applied."""
        switch = self._switch
        assert switch is not None  # the per-event path runs only on a store that switches
        pool = tx.pool_id
        try:
            return [alert for rule, holds, alert in self._windows.changes(
                        partial(switch.state_of, pool), tx, at, first, found)
                    if switch.switch(pool, rule.name, holds, at, tx.id)]
        except StoreError:
            self._retries.fail((tx.id,), self._retries.tag())
            raise

    def _process_alone(self, tx: Transaction) -> list[Alert]:
        """:meth:`process` as a batch of one (a store without the per-event capabilities,
        metrics on, or a retry under way)."""
        if self._retries.failed:  # a retry may be under way: the batch path knows how
            return self.process_many((tx,))
        held: tuple[list[Transaction], list[Transaction]] = ([], [])
        with self._lock:
            d = tx.timestamp - EPOCH
            at = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
            tag = self._retries.tag()
            try:
                alerts = self._process_one(tx, at, tag, held)
            except StoreError:
                self._retries.fail((tx.id,), tag)
                raise
        self._raise_if_held(held, alerts)
        return alerts

    def _process_one(
        self, tx: Transaction, at: int, tag: str,
        held: tuple[list[Transaction], list[Transaction]],
    ) -> list[Alert]:
        timed = _metrics.recorder().enabled
        call = self._call if timed else _untimed
        now = time_ns() // 1_000 if self._wall_clock else to_micros(self.clock.now())
        batch = call(
            "observe_many", self.store.observe_many, (tx.pool_id,), (tx.id,), (at,),
            (to_units(tx.amount) if self._totals else 0,), self._intervals, totals=self._totals,
            batch=tag, not_after=now + self._ahead)
        self.stats.processed += 1
        status = batch.statuses[0]
        if status is not Status.NEW:
            counts = self._count_held([status], lambda _: tx, held)
            _metrics.engine_batch(self._store_name, 1, *counts)
            if status is Status.DUPLICATE:
                return []
        elif timed:
            _metrics.engine_batch(self._store_name, 1, 0, 0, 0)
        alerts = [alert for rule, _ in self._tx_rules if (alert := rule.check(tx)) is not None]
        if status is Status.NEW and self._windows.slots:
            changes = self._windows.decide_one(call, self.store, tx, at, batch, tag)
            if changes:
                moves = [change for change, _ in changes]
                applied = call("transition", self.store.transition, moves)
                alerts += [alert for (_, alert), ok in zip(changes, applied) if ok]
                self._report_firing(moves, applied)
        if alerts:
            self._deliver(alerts)
        return alerts

    def process_many(
        self,
        transactions: Iterable[Transaction],
        *,
        deliveries: Sequence[str] | None = None,
    ) -> list[Alert]:
        """The alerts of calling :meth:`process` on each transaction in order, in batches.

        ``deliveries`` (one per transaction, e.g. a queue's entry ids) names each delivery. A
        transaction delivered again under the same name (its worker died before acknowledging
        it) is decided again, from the lifecycle state its batch found the first time, so the
        alerts it caused are raised again, with the same
        :attr:`~auptimate_core.alerts.Alert.key`, for an outbox to deliver once. Under a new
        name it is a duplicate, as always. This needs a store shared between processes (the
        Redis store); the memory store treats every repeat as a duplicate. Redeliver the same
        batch (the same first name and transactions), with at most the store's ``retain``
        transactions of any one pool: see
        :func:`auptimate_core.integrations.redis_streams.slices`.
        """
        txs: Iterable[Transaction] = transactions
        if deliveries is not None:
            listed = list(transactions)
            if len(deliveries) != len(listed):
                raise ValidationError(
                    "deliveries", f"{len(deliveries)} names for {len(listed)} transactions"
                )
            txs = listed
        size = self.batch_size
        chunks: Iterator[Rows]
        if isinstance(txs, list):
            chunks = (TxRows(txs[i:i + size]) for i in range(0, len(txs), size))
        else:
            iterator = iter(txs)
            chunks = map(TxRows, iter(lambda: list(islice(iterator, size)), []))
        return self._run(chunks, deliveries)

    def process_columns(self, columns: TransactionColumns) -> list[Alert]:
        """The alerts of :meth:`process_many` on the transactions of ``columns``, in order.

        The same decisions, statuses, counts and alerts, without a
        :class:`~auptimate_core.domain.Transaction` object per row: the columns are trusted
        input (see :class:`~auptimate_core.columns.TransactionColumns`), and a row becomes a
        Transaction only where one is handed on (a late or future row to ``on_late`` or
        ``on_future``, or to a transaction rule other than :class:`ThresholdRule`). Alerts
        carry event times in UTC."""
        size = self.batch_size
        n = len(columns)
        return self._run(
            (ColumnRows(columns, i, min(i + size, n)) for i in range(0, n, size)), None)

    def _run(self, chunks: Iterator[Rows], deliveries: Sequence[str] | None) -> list[Alert]:
        """Decide ``chunks`` in order, one batch each, under the engine's lock."""
        alerts: list[Alert] = []
        held: tuple[list[Transaction], list[Transaction]] = ([], [])
        done: list[tuple[tuple[str, ...], Unfinished]] = []
        retries = self._retries
        with self._lock:
            start = 0
            for rows in chunks:
                count = len(rows.ids)
                names = deliveries[start:start + count] if deliveries is not None else None
                start += count
                ids: tuple[str, ...] = ()
                again = None
                if retries.failed:
                    ids = tuple(rows.ids)
                    again = retries.find(ids)
                tag = names[0] if names else again.tag if again else retries.tag()
                record = again or Unfinished(tag, [])
                try:
                    alerts.extend(self._process_batch(
                        rows, held, names, tag, names is not None or again is not None,
                        record.delivered))
                except StoreError:
                    retries.remember([*done, (ids or tuple(rows.ids), record)])
                    raise
                if again is not None:
                    retries.succeeded(ids)
                elif not retries.failed and names is None:
                    done.append((ids, record))
        self._raise_if_held(held, alerts)
        return alerts

    def _raise_if_held(
        self, held: tuple[list[Transaction], list[Transaction]], alerts: list[Alert]
    ) -> None:
        late, future = held
        if (late or future) and self.on_late == "raise":
            first = (late or future)[0]
            raise LateEvent(
                "timestamp",
                f"{len(late)} transaction(s) older than the store's allowed lateness and "
                f"{len(future)} more than {self.max_ahead} ahead of the clock were kept out of "
                f"the windows, first {first.id!r} at {first.timestamp.isoformat()}",
                late=late, future=future, alerts=alerts,
            )

    def evaluate(self, now: datetime) -> list[Alert]:
        """Resolve what stopped holding as time passed without transactions; alerts at ``now``."""
        check_timestamp(now, "now")
        now_us = to_micros(now)
        alerts: list[Alert] = []
        with self._lock:
            for slot in self._windows.slots:
                changes = self._windows.resolutions(self._call, self.store, slot, now, now_us)
                moves = [change for change, _ in changes]
                applied = self._call("transition", self.store.transition, moves)
                alerts.extend(alert for (_, alert), ok in zip(changes, applied) if ok)
                self._report_firing(moves, applied)
            self._deliver(alerts)
        return alerts

    @property
    def sinks(self) -> list[AlertCallback]:
        """The sinks every alert goes to (a copy; change them with :meth:`add_sink`)."""
        return self._dispatcher.sinks

    def add_sink(self, sink: AlertCallback) -> Callable[[], None]:
        """Add a sink; returns a function that removes it again."""
        return self._dispatcher.add(sink)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what the background sinks still have queued (dead-lettering what is left
        after ``timeout`` seconds), then close the store."""
        try:
            self._dispatcher.close(timeout)
        finally:
            self.store.close()

    def __enter__(self) -> AlertEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the hot path -------------------------------------------------------------------------

    def _call(self, operation: str, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``call(*args, **kwargs)``, timed and its StoreError counted when metrics are on."""
        recorder = _metrics.recorder()
        if not recorder.enabled:
            return call(*args, **kwargs)
        start = perf_counter()
        try:
            return call(*args, **kwargs)
        except StoreError as error:
            recorder.store_error(self._store_name, operation, type(error).__name__)
            raise
        finally:
            recorder.store_call(self._store_name, operation, perf_counter() - start)

    def _process_batch(
        self, rows: Rows, held: tuple[list[Transaction], list[Transaction]],
        deliveries: Sequence[str] | None, tag: str, again: bool, delivered: list[Alert],
    ) -> list[Alert]:
        """Decide one batch. ``tag`` names it in the store; ``again`` says it may have been
        decided before (a redelivery or a retry), so its lifecycle is read as it was then;
        ``delivered`` holds its alerts the sinks already have (and gets the new
        ones)."""
        n = len(rows.ids)
        not_after = to_micros(self.clock.now()) + self._ahead
        if not self._totals:
            amounts = [0] * n
        elif isinstance(rows.amounts, AmountColumn):  # exact units from the column's integers
            amounts = rows.amounts.units()
        else:
            amounts = list(map(to_units, rows.amounts))
        extra: dict[str, Any] = {} if deliveries is None else {"deliveries": deliveries}
        batch = self._call(
            "observe_many", self.store.observe_many,
            rows.keys, rows.ids, rows.ats, amounts, self._intervals, totals=self._totals,
            batch=tag, not_after=not_after, **extra,
        )
        statuses = batch.statuses
        stats = self.stats
        stats.processed += n
        new = Status.NEW
        every_new = statuses.count(new) == len(statuses)
        held_counts = (0, 0, 0)
        if not every_new:
            held_counts = self._count_held(statuses, rows.transaction, held)
        _metrics.engine_batch(self._store_name, n, *held_counts)
        # Sorted at the end into the order a loop per transaction gives.
        pending = PendingAlerts(len(self._tx_rules) + len(self._windows.slots))
        runs = transaction_alerts(self._tx_rules, rows, statuses, every_new, pending)
        transitions: list[Transition] = []
        before = len(pending)
        if self._windows.slots:
            self._windows.decide(
                self._call, self.store, rows, batch, every_new, tag, again,
                len(self._tx_rules), pending, transitions)
        if not pending:
            return []
        applied = (
            self._call("transition", self.store.transition, transitions) if transitions else []
        )
        self._report_firing(transitions, applied)
        pending.in_order(before, runs)
        alerts = pending.kept(applied)
        fresh = alerts
        if delivered:  # a batch decided again: its sinks have some of its alerts already
            sent = {alert.key for alert in delivered}
            fresh = [alert for alert in alerts if alert.key not in sent]
        self._deliver(fresh)
        delivered.extend(fresh)
        return alerts

    def _report_firing(self, changes: list[Transition], applied: list[bool]) -> None:
        """While metrics are on, the pools firing now for each rule whose lifecycle changed
        (one ``firing`` call per such rule, read from the store that shares it)."""
        if not _metrics.recorder().enabled:
            return
        for rule in sorted({change.rule for change, ok in zip(changes, applied) if ok}):
            firing = self._call("firing", self.store.firing, rule)
            _metrics.alerts_firing(self._store_name, rule, len(firing))

    def _count_held(
        self, statuses: Sequence[Status], row: Callable[[int], Transaction],
        held: tuple[list[Transaction], list[Transaction]],
    ) -> tuple[int, int, int]:
        """Count (and report) the duplicates, late and future transactions of a batch
        (``row(i)`` gives its ``i``-th)."""
        duplicates, late, future = self.stats.count_held(statuses, row)
        log_held(self._store_name, self.max_ahead, late, future)
        held[0].extend(late)
        held[1].extend(future)
        if callable(self.on_late):
            for tx in late:
                self.on_late(tx)
        if self.on_future is not None:
            for tx in future:
                self.on_future(tx)
        return duplicates, len(late), len(future)

    def _deliver(self, alerts: list[Alert]) -> None:
        """Hand alerts to the sinks: plain callables now, background sinks through their
        queues (never waiting on their I/O)."""
        self.stats.alerts += len(alerts)
        recorder = _metrics.recorder()
        if recorder.enabled:
            for alert in alerts:
                recorder.alert_raised(alert.name, alert.state)
        self._dispatcher.submit(alerts)

    def _sink_failed(self, sink: AlertCallback, alert: Alert, error: BaseException) -> None:
        # Called from the dispatcher's worker thread as well as from callers' threads.
        with self._stats_lock:
            self.stats.sink_failures += 1
        if self.on_sink_error is not None:
            self.on_sink_error(sink, alert, error)


def _weakly(method: Callable[[AlertCallback, Alert, BaseException], None]
            ) -> Callable[[AlertCallback, Alert, BaseException], None]:
    """``method`` called through a weak reference to its object: the engine's dispatcher holds
    its failure handler, and a strong one would make engine and dispatcher a cycle, so that a
    dropped engine (and all its store holds) waited for the cyclic garbage collector."""
    ref = weakref.WeakMethod(method)

    def call(sink: AlertCallback, alert: Alert, error: BaseException) -> None:
        bound = ref()
        if bound is not None:
            bound(sink, alert, error)

    return call
