"""``LocalStore``: what every store that lives in one process shares.

The options every such store takes (``allowed_lateness``, ``dedup_horizon``) and their checks,
the lock that serialises its calls, and the alert lifecycle kept in a
:class:`~auptimate_core.backends.lifecycle.LifecycleTable` under that lock.
:class:`~auptimate_core.backends.memory.MemoryWindowStore` and
:class:`~auptimate_core.backends.columnar.ColumnarWindowStore` build their event windows on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import timedelta

from ..errors import ValidationError
from ..store import LifecycleState, Transition
from .lifecycle import LifecycleTable

US = timedelta(microseconds=1)


class LocalStore:
    """The lock, the options and the alert lifecycle of an in-process store.

    ``allowed_lateness``: how far behind a key's newest event an event may arrive and still be
    counted; an older one is ``LATE`` (not counted). ``dedup_horizon``: how long (in a key's
    event time) an id is remembered after it was recorded, so that a redelivery is a duplicate.

    Thread-safe: one lock (``_lock``, which subclasses take around their own state too)
    serialises every call.
    """

    def __init__(self, allowed_lateness: timedelta, dedup_horizon: timedelta) -> None:
        if allowed_lateness < timedelta(0):
            raise ValidationError(
                "allowed_lateness", f"must not be negative, not {allowed_lateness}")
        if dedup_horizon < US:
            raise ValidationError(
                "dedup_horizon", f"must be at least a microsecond, not {dedup_horizon}")
        self.allowed_lateness = allowed_lateness
        self.dedup_horizon = dedup_horizon
        self._lateness = allowed_lateness // US
        self._horizon = dedup_horizon // US
        self._lifecycle = LifecycleTable()
        self._lock = threading.Lock()

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        with self._lock:
            return self._lifecycle.states(pairs, batch)

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        with self._lock:
            return self._lifecycle.transition(transitions)

    def firing(self, rule: str) -> frozenset[str]:
        with self._lock:
            return self._lifecycle.firing(rule)

    def state_of(self, key: str, rule: str) -> LifecycleState:
        with self._lock:
            return self._lifecycle.state_of(key, rule)

    def switch(self, key: str, rule: str, firing: bool, at: int, cause: str | None) -> bool:
        with self._lock:
            return self._lifecycle.switch(key, rule, firing, at, cause)

    def close(self) -> None:
        """Nothing to release; the store stays usable."""
