"""The :class:`WindowStore` protocol: the alert engine's only view of storage.

A store keeps, per key (a pool id), the events of the recent past and answers *tallies*: how many
events, and how much money, fall in a window that ends at some moment. It also keeps the alert
lifecycle (which rule is firing for which key), so that engines sharing one store share it.

Everything crosses this boundary as integers, converted once at the edge:

- time is microseconds since the Unix epoch (:func:`auptimate_core.domain.to_micros`);
- money is a count of :data:`AMOUNT_SCALE` units (0.0001 of the currency), see :func:`to_units`.

The protocol is split by capability: :class:`EventWindows` (record and tally) and
:class:`AlertLifecycle` (compare-and-set of firing states), joined in :class:`WindowStore`;
:class:`RetainsRuns` is an optional capability of shared stores. A store that computes on numpy
columns may answer with a :class:`ColumnarBatch`.

A window is an :class:`Interval` relative to an event time ``t``: the half-open span
``(t - offset - length, t - offset]``. The spike rule's "recent" window is ``Interval(0, w)`` and
its baseline is ``Interval(w, b)``.

Contract (``auptimate_core.testing`` holds the test suite every store must pass):

- ``observe`` records an event once per ``event_id`` and key. An id is remembered for the store's
  *dedup horizon* (``dedup_horizon``, 24 hours by default, independent of the windows), measured
  in the key's event time from the moment it was recorded: a second arrival of a remembered id,
  with its original time or a new one, is ``DUPLICATE`` and changes nothing. Memory stays bounded
  by the horizon: a store forgets an id at the latest once its key's newest event is twice the
  horizon past it.
- An event older than the key's newest event minus the store's allowed lateness is ``LATE``; one
  after ``not_after`` (when given: the engine's clock plus its ``max_ahead``) is ``FUTURE``.
  Neither enters the windows, moves the key's newest event or its first one, nor gets tallies;
  both have their id remembered (recorded at the key's newest time, and at ``not_after``), so a
  redelivery of either is a ``DUPLICATE``. Each observation is atomic.
- The tallies of an ``NEW`` observation count every event of its key recorded so far (itself
  included) whose time lies in each interval ending at the observation's own time.
- ``observe_many`` gives exactly the results of calling ``observe`` on each item in order. It is
  the fast path, so it is columnar: parallel sequences in, an :class:`ObservedBatch` of parallel
  lists out, and no object per event on either side.
- A store may forget what no interval it has been asked about can reach any more (memory stays
  bounded by the windows and the dedup horizon, not by the length of the stream). So that a
  pool that went quiet need not keep its events, a store may also answer ``LATE`` for an event
  of a key that has been quiet for longer than the windows' reach (measured against the store's
  newest event) when the event's windows would reach its forgotten events; and it may forget a
  key whole, ids included, once the key has been quiet for longer than the dedup horizon.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Protocol, runtime_checkable

import attrs

DAY: Final = 86_400_000_000
"""A day in microseconds: the default dedup horizon of every store."""

AMOUNT_SCALE: Final = 10_000
"""Window sums are kept in integer units of 1/AMOUNT_SCALE of the currency (four decimals)."""

_UNIT: Final = Decimal(1).scaleb(-4)


def to_units(amount: Decimal) -> int:
    """An amount as integer :data:`AMOUNT_SCALE` units (rounded half-even past four decimals).

    >>> to_units(Decimal("12.345"))
    123450
    """
    return int(amount.quantize(_UNIT, rounding=ROUND_HALF_EVEN).scaleb(4))


def from_units(units: int) -> Decimal:
    """The Decimal amount of ``units`` (inverse of :func:`to_units`).

    >>> from_units(123450)
    Decimal('12.3450')
    """
    return Decimal(units).scaleb(-4)


@attrs.frozen(slots=True)
class Interval:
    """A window relative to an end time ``t``: ``t - offset - length < at <= t - offset``.

    Both fields are microseconds; ``length`` is positive, ``offset`` is not negative.
    """

    offset: int
    length: int

    def __attrs_post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError(f"length: must be positive, not {self.length}")
        if self.offset < 0:
            raise ValueError(f"offset: must not be negative, not {self.offset}")

    @property
    def reach(self) -> int:
        """How far back from the end time this interval reaches."""
        return self.offset + self.length

    def bounds(self, end: int) -> tuple[int, int]:
        """``(low, high)`` with the interval being ``low < at <= high`` for end time ``end``."""
        high = end - self.offset
        return high - self.length, high


@attrs.frozen(slots=True)
class Observation:
    """One event for a store: ``key`` (the pool), ``event_id``, time ``at`` and ``amount`` units."""

    key: str
    event_id: str
    at: int
    amount: int = 0


class Status(enum.Enum):
    """What a store did with an observation."""

    NEW = "new"
    DUPLICATE = "duplicate"
    LATE = "late"
    FUTURE = "future"


@attrs.frozen(slots=True)
class Tally:
    """How many events, and how many amount units in total, an interval holds."""

    count: int
    total: int


EMPTY: Final = Tally(0, 0)


@attrs.frozen(slots=True)
class Observed:
    """The result of one observation.

    ``tallies`` has one :class:`Tally` per requested interval, in order (empty unless ``NEW``).
    ``first_seen`` is the time of the earliest event the store has recorded for the key (the
    start of its history, kept even after that event is evicted).
    """

    status: Status
    tallies: tuple[Tally, ...] = ()
    first_seen: int | None = None


@attrs.frozen(slots=True)
class ObservedBatch:
    """The results of :meth:`EventWindows.observe_many`, as parallel lists (index ``i`` is the
    ``i``-th observation).

    ``counts[j][i]`` and ``totals[j][i]`` tally interval ``j`` for observation ``i``; they are 0
    unless ``statuses[i]`` is ``NEW``. ``totals`` is empty when totals were not asked for.
    """

    statuses: list[Status]
    counts: list[list[int]]
    totals: list[list[int]]
    first_seen: list[int | None]

    def __len__(self) -> int:
        return len(self.statuses)

    def observed(self, i: int) -> Observed:
        """The ``i``-th result as an :class:`Observed` (convenient, not fast)."""
        if self.statuses[i] is not Status.NEW:
            return Observed(self.statuses[i], (), self.first_seen[i])
        totals = [column[i] for column in self.totals] or [0] * len(self.counts)
        return Observed(
            Status.NEW,
            tuple(Tally(column[i], total) for column, total in zip(self.counts, totals)),
            self.first_seen[i],
        )


@attrs.frozen(slots=True)
class ColumnarBatch(ObservedBatch):
    """An :class:`ObservedBatch` that also carries the store's own numpy columns of the same
    values (``count_arrays[j]``, ``total_arrays[j]``), for a consumer that computes on whole
    columns. Not part of equality."""

    count_arrays: Sequence[Any] = attrs.field(default=(), eq=False, repr=False)
    total_arrays: Sequence[Any] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen(slots=True)
class LifecycleState:
    """Whether ``rule`` is firing for a key, the event time of its last change (or None), and
    the id of the transaction that caused that change (``cause``, when the engine gave one)."""

    firing: bool = False
    since: int | None = None
    cause: str | None = None


IDLE: Final = LifecycleState()


def _state_writer() -> Callable[[bool, int | None, str | None], LifecycleState]:
    """LifecycleState(firing, since, cause) written straight into its slots (its fields need
    no check): what the lifecycle table builds a state with at every change."""
    new = object.__new__
    set_firing, set_since, set_cause = (
        LifecycleState.__dict__[name].__set__ for name in ("firing", "since", "cause"))

    def make(firing: bool, since: int | None, cause: str | None) -> LifecycleState:
        state: LifecycleState = new(LifecycleState)
        set_firing(state, firing)
        set_since(state, since)
        set_cause(state, cause)
        return state

    return make


new_state = _state_writer()


@attrs.frozen(slots=True)
class Transition:
    """A request to move ``rule`` for ``key`` to ``firing`` at time ``at``.

    It applies only if the current state differs (compare-and-set), which is what lets many
    engines share one lifecycle: exactly one of them wins each change. A transition with a
    ``cause`` that finds exactly itself already applied (same state, time and cause: the same
    transaction decided again after a redelivery) counts as applied too.

    ``batch`` names the batch of deliveries that asked for it (see
    :meth:`WindowStore.states`); ``None`` outside redeliverable work.
    """

    key: str
    rule: str
    firing: bool
    at: int
    cause: str | None = None
    batch: str | None = None


@runtime_checkable
class EventWindows(Protocol):
    """Storage of event windows: record events once per id and tally intervals. See the
    module docstring for the contract."""

    def observe(
        self, observation: Observation, intervals: Sequence[Interval], *,
        not_after: int | None = None,
    ) -> Observed:
        """Record one event (idempotently by id) and tally ``intervals`` ending at its time."""
        ...

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
        """Observe each ``(keys[i], event_ids[i], ats[i], amounts[i])`` in order, in one batch.

        The same as calling :meth:`observe` for each in order; ``totals=False`` lets a store
        skip summing amounts when no rule needs them. Events after ``not_after`` are
        ``FUTURE`` (see the module docstring).

        Redelivery, for a store shared between processes (a store that lives in one process,
        such as the memory store, may ignore both): ``deliveries`` names each event's delivery
        (a queue's entry id, say; no spaces or colons); ``batch`` names the whole call. An
        event whose id the store holds, arriving again under the same delivery name (or the
        same batch name and place), is answered as it was the first time (``NEW`` with the
        tallies it was first answered with, ``LATE`` or ``FUTURE``): it is the same delivery
        again, after a worker died before acknowledging it or a call failed with
        :class:`~auptimate_core.errors.StoreUnavailable`, and deciding it again is how its
        alerts are not lost.
        """
        ...

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        """Tally ``intervals`` ending at ``at`` for ``key`` without recording anything."""
        ...

    def close(self) -> None:
        """Release connections or other resources. The store is not used afterwards."""
        ...


@runtime_checkable
class AlertLifecycle(Protocol):
    """Storage of the alert lifecycle: which rule is firing for which key, changed by
    compare-and-set so that engines sharing it share one lifecycle."""

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        """The lifecycle state of each ``(key, rule)`` pair (``IDLE`` when never changed).

        With ``batch``: a pair that transitions of that same batch have changed answers with
        its state from before them. A batch decided again after a redelivery is then decided
        from where it started the first time, and makes the same changes, in the same order.
        """
        ...

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        """Apply each transition in order if it changes the state; say which ones applied."""
        ...

    def firing(self, rule: str) -> frozenset[str]:
        """The keys for which ``rule`` is firing now."""
        ...

    def close(self) -> None:
        """Release connections or other resources. The store is not used afterwards."""
        ...


@runtime_checkable
class WindowStore(EventWindows, AlertLifecycle, Protocol):
    """What the alert engine needs of storage: event windows and the alert lifecycle, in one
    object (a store that keeps both where engines can share them)."""


@runtime_checkable
class RetainsRuns(Protocol):
    """A shared store that keeps the newest ``retain`` events of every key past the windows'
    horizon, so that a redelivered run of up to that many events per key is answered as the
    first time. A queue consumer slices its redeliverable work by it."""

    @property
    def retain(self) -> int: ...


EventAnswer = tuple["Status", Sequence[int], Sequence[int], "int | None"]
"""One event's answer as plain values: ``(status, counts, totals, first_seen)``, one count and
one total per interval asked (both empty unless ``NEW``; totals zero when not asked for)."""


@runtime_checkable
class ObservesEvents(Protocol):
    """An optional capability of a store: one event observed on a path of its own, cheaper than
    a batch of one, answered as plain values (no :class:`Observed` or batch built)."""

    def observe_event(
        self, key: str, event_id: str, at: int, amount: int, intervals: Sequence[Interval],
        totals: bool, not_after: int | None,
    ) -> EventAnswer:
        """:meth:`EventWindows.observe` of one event, as an :data:`EventAnswer`."""
        ...


@runtime_checkable
class IndexesFiring(Protocol):
    """An optional capability of a store that keeps its lifecycle in this process: the keys
    firing for a rule as a live set, read without a call."""

    def firing_view(self, rule: str) -> AbstractSet[str]:
        """The keys for which ``rule`` is firing, kept current by :meth:`AlertLifecycle.transition`:
        the same object for the life of the store (read it, never change it)."""
        ...


@runtime_checkable
class SwitchesOne(Protocol):
    """An optional capability of a store that keeps its lifecycle in this process: one pair's
    state read, and one pair switched, without the containers of a batch's calls."""

    def state_of(self, key: str, rule: str) -> LifecycleState:
        """:meth:`AlertLifecycle.states` of one pair, outside any batch."""
        ...

    def switch(self, key: str, rule: str, firing: bool, at: int, cause: str | None) -> bool:
        """:meth:`AlertLifecycle.transition` of one ``Transition(key, rule, firing, at, cause)``
        outside any batch: whether it applied."""
        ...


@runtime_checkable
class DecidesPerEvent(ObservesEvents, IndexesFiring, SwitchesOne, Protocol):
    """A store with all three per-event capabilities (the stores of this process): the engine
    decides ``process(tx)`` on it without building a batch of one."""


def observe_one(
    windows: EventWindows, observation: Observation, intervals: Sequence[Interval],
    not_after: int | None = None,
) -> Observed:
    """:meth:`EventWindows.observe` as a batch of one :meth:`EventWindows.observe_many` (with
    totals): how a store whose fast path is the batch answers one event."""
    batch = windows.observe_many(
        (observation.key,), (observation.event_id,), (observation.at,), (observation.amount,),
        intervals, totals=True, not_after=not_after,
    )
    return batch.observed(0)
