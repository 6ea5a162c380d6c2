"""A ledger's subscribers and the queue of events waiting for them, delivered in commit order.

Each commit queues its event (in the repository's ``on_commit``, which runs in commit order);
the writer then delivers what is queued. One thread delivers at a time: a writer that finds
another thread delivering leaves its event to that thread, which looks at the queue again after
letting go of the delivery lock, so every event is delivered once and in order.

>>> seen = []
>>> subscribers = Subscribers()
>>> unsubscribe = subscribers.add(seen.append)
>>> subscribers.queue("event-1"); subscribers.deliver()
>>> unsubscribe(); subscribers.queue("event-2"); subscribers.deliver()
>>> seen
['event-1']
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from .. import metrics
from .events import LedgerEvent, Subscriber, Unsubscribe

logger = logging.getLogger("auptimate_core.pools")


class Subscribers:
    """The callbacks of one ledger and its outbox of committed events. Thread-safe.

    A callback that raises is logged, counted (``auptimate_ledger_subscriber_failures_total``)
    and skipped: it does not see that event again (the change feed still has it).
    """

    def __init__(self) -> None:
        self._callbacks: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._outbox: deque[LedgerEvent] = deque()
        self._delivering = threading.Lock()

    def add(self, callback: Subscriber) -> Unsubscribe:
        """Call ``callback(event)`` for every event delivered from now on; return the handle
        that stops it (calling the handle again does nothing)."""
        if not callable(callback):
            raise TypeError(f"callback: must be callable, not {type(callback).__name__}")
        with self._lock:
            self._callbacks = (*self._callbacks, callback)
        done = threading.Event()

        def unsubscribe() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                found = list(self._callbacks)
                for index, item in enumerate(found):
                    if item is callback:
                        del found[index]
                        break
                self._callbacks = tuple(found)

        return unsubscribe

    def queue(self, event: LedgerEvent) -> None:
        """Queue a committed change's event (called in commit order)."""
        self._outbox.append(event)

    def deliver(self) -> None:
        """Hand queued events to the callbacks, in order, from one thread at a time."""
        while self._outbox:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while self._outbox:
                    event = self._outbox.popleft()
                    for callback in self._callbacks:
                        try:
                            callback(event)
                        except Exception:
                            metrics.ledger_subscriber_failure(type(event).__name__)
                            logger.exception("a ledger subscriber raised on %s; it will not "
                                             "see this event again (the change feed keeps it)",
                                             type(event).__name__)
            finally:
                self._delivering.release()
