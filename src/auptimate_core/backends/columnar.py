"""``ColumnarWindowStore``: the WindowStore of one process on numpy columns, a batch at a time.

Every key's events sit in one sorted numpy array
(:class:`~auptimate_core.windows.columnar.ColumnarWindows`), and a whole batch is ranked,
checked for lateness and duplicates and merged in at once, in numpy. On batches of thousands
(``AlertEngine.process_many``, ``auptimate monitor``, a backfill, a notebook) that is several
times the throughput of :class:`~auptimate_core.backends.memory.MemoryWindowStore`, the
default; ``benchmarks/bench_windows.py`` and ``benchmarks/bench_engine.py`` measure both on the
same work. It needs numpy (the ``fast`` extra); importing this module without it raises
:class:`~auptimate_core.errors.MissingExtra`. URL: ``memory+columnar://``.

Its limits, beside the memory store's:

- **One call per event is slow.** Each call pays a fixed cost of some tens of numpy calls and
  merges into the whole array of held events: ``O(N)`` for the ``N`` events the windows hold,
  where the memory store's in-order event is amortised ``O(1)``. On a busy store that is a
  hundred times the memory store's cost per call or more; feed it batches (hundreds of events
  and up) or keep the default.
- **Time span.** The allowed lateness plus the longest interval must stay under 2**40
  microseconds (about 12.7 days); a longer one is refused, naming ``intervals`` (and a longer
  ``allowed_lateness`` at construction). Times are kept relative to an origin that follows the
  store's newest event, so an event whose windows reach more than about 12.7 days behind it is
  ``LATE`` whatever its key's own newest; event times must lie within 2**60 microseconds of
  the epoch.
- **Keys.** At most 2**21 (about two million) keys held at once; one more raises
  :class:`~auptimate_core.errors.StoreError`. Keys idle for the dedup horizon are dropped
  whole and free their place.
- **Quiet and dropped keys.** The contract lets a store give back what a quiet key holds and
  forget an idle key whole; this store does both in bulk at its compactions (see
  :mod:`auptimate_core.windows.columnar`), so an event of a key that went quiet is ``LATE``
  when its windows would reach the events given back, and an event of a key the store holds
  nothing of is ``LATE`` when it is older than the newest event of a key dropped so far plus
  the longest interval. Compactions run at the end of a call, so for those events alone the
  answer can depend on how the stream was cut into calls (the memory store's cannot).
- **Memory** is bounded by the windows and the dedup horizon as in the memory store, but the
  array is compacted once it has grown by half and the id log once it has tripled, so it may
  hold up to about twice what the windows need between compactions.

Thread-safe: one lock serialises every call, so engines in many threads may share it.

>>> from auptimate_core.store import Interval, Observation
>>> store = ColumnarWindowStore()
>>> minute = 60_000_000
>>> got = store.observe_many(["p", "p", "q", "p"], ["a", "b", "c", "a"], [1, 2, 3, 4],
...                          [1, 1, 1, 1], [Interval(0, minute)])
>>> [s.value for s in got.statuses], got.counts
(['new', 'new', 'new', 'duplicate'], [[1, 2, 1, 0]])
>>> store.tally("p", 5, [Interval(0, minute)])[0].count
2
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..errors import InvalidURL, MissingExtra, ValidationError
from ..store import Interval, Observation, Observed, ObservedBatch, Tally, observe_one
from ..urls import redact
from .local import LocalStore

try:
    import numpy  # noqa: F401  (the fast extra: its absence is named here, not deep inside)
except ImportError as error:
    raise MissingExtra("numpy", "fast") from error

from ..windows.columnar import MAX_KEEP, ColumnarWindows


class ColumnarWindowStore(LocalStore):
    """A thread-safe, in-process :class:`~auptimate_core.store.WindowStore` on numpy columns.

    ``allowed_lateness``: how far behind a key's newest event an event may arrive and still be
    counted; an older one is ``LATE`` (not counted). Five minutes by default; under about 12.7
    days with the windows (see the module docstring).
    ``dedup_horizon``: how long (in a key's event time) an id is remembered after it was
    recorded, so that a redelivery is a duplicate; a day by default.
    """

    def __init__(
        self,
        allowed_lateness: timedelta = timedelta(minutes=5),
        *,
        dedup_horizon: timedelta = timedelta(days=1),
    ) -> None:
        super().__init__(allowed_lateness, dedup_horizon)
        if self._lateness >= MAX_KEEP:
            raise ValidationError(
                "allowed_lateness", "must be under 2**40 microseconds (about 12.7 days) on "
                f"columnar windows, not {allowed_lateness}; use MemoryWindowStore")
        self._windows = ColumnarWindows(dedup_horizon=self._horizon)
        self._reach = 0  # the longest interval asked for so far

    @classmethod
    def from_url(cls, url: str = "memory+columnar://", **options: Any) -> ColumnarWindowStore:
        """The store ``memory+columnar://`` names; ``options`` go to the constructor (the URL
        carries nothing after its scheme)."""
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "memory+columnar" or rest.strip("/"):
            shown = redact(url)
            raise InvalidURL(shown, f"{shown!r}: the columnar store's URL is memory+columnar:// "
                             "with nothing after it; give its options as arguments")
        return cls(**options)

    def observe(
        self, observation: Observation, intervals: Sequence[Interval], *,
        not_after: int | None = None,
    ) -> Observed:
        """One event: a batch of one (see the module docstring for what that costs)."""
        return observe_one(self, observation, intervals, not_after)

    def observe_many(
        self,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        intervals: Sequence[Interval],
        *,
        totals: bool = False,
        deliveries: Sequence[str] | None = None,
        batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        """See :meth:`WindowStore.observe_many`; the answer is a
        :class:`~auptimate_core.store.ColumnarBatch` (the same values as numpy columns too).
        ``deliveries`` and ``batch`` are ignored (a call on this store cannot fail half-way,
        so it is never retried)."""
        spans = [(iv.offset, iv.reach) for iv in intervals]
        with self._lock:
            reach = max(self._reach, *(high for _, high in spans), 0)
            got = self._windows.observe_many(
                keys, event_ids, ats, amounts, spans, totals, self._lateness,
                self._lateness + reach, not_after=not_after)
            self._reach = reach  # only once the columns took it
            dropped = self._windows.take_dropped()
            if dropped:
                self._lifecycle.forget(dropped)
            return got

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        with self._lock:
            return self._windows.tally(key, at, [(iv.offset, iv.reach) for iv in intervals])

    def size(self) -> dict[str, int]:
        """How much the store holds: keys, events and remembered ids (those not yet compacted
        included), and ``slots`` (always 0), for memory tests."""
        with self._lock:
            return self._windows.size()

    def _check(self) -> None:
        """Assert the invariants of the columns."""
        with self._lock:
            self._windows._check()

