"""How an engine decides its window rules: which pools a batch can change, and the lifecycle
changes of each, in transaction order.

:class:`WindowDecisions` holds an engine's window rules as :class:`RuleSlot` values (each
rule's place in the store's answer) and turns one :class:`~auptimate_core.store.ObservedBatch`
into alerts and :class:`~auptimate_core.store.Transition` requests. Its cost is a pass over the
batch's columns per rule (on whole numpy columns when the store gives them) plus a walk of the
transactions of the pools where a state can change; the others are not visited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..columns import CodedText
from ..domain import Transaction
from ..store import (
    IDLE,
    AlertLifecycle,
    ColumnarBatch,
    Interval,
    LifecycleState,
    ObservedBatch,
    Status,
    Transition,
    WindowStore,
    new_state,
)
from .alert import FIRING, RESOLVED, Alert
from .pending import PendingAlerts
from .rules import LinearRule, WindowRule

try:
    import numpy as _np
except ImportError:  # numpy is optional (the fast extra): the pure-Python path is the same
    _np = None  # type: ignore[assignment]

StoreCall = Callable[..., Any]
"""``call(operation, method, *args, **kwargs)``: how the engine makes (and times) a store call."""

class Rows(Protocol):
    """A batch of transactions as the deciding code reads it: parallel columns, and the event
    time and investor of a row (for its alerts)."""

    @property
    def keys(self) -> Sequence[str]: ...

    @property
    def ids(self) -> Sequence[str]: ...

    @property
    def ats(self) -> Sequence[int]: ...

    def moment(self, i: int) -> datetime: ...

    def investor(self, i: int) -> str: ...


_INT64 = 1 << 62  # products below this are safe in numpy's int64


class RuleSlot:
    """A window rule as the engine runs it: where its values sit in the store's answer.

    ``linear`` is ``(floor, a, b)`` when the rule's condition on two values is exactly
    ``v0 >= floor and v0 * a >= v1 * b``: the engine then tests it inline, without a call.
    """

    __slots__ = ("columns", "linear", "rule", "uses_totals")

    def __init__(self, rule: WindowRule, columns: tuple[int, ...]) -> None:
        self.rule = rule
        self.columns = columns
        self.uses_totals = rule.measure == "total"
        linear = rule.linear if isinstance(rule, LinearRule) else None
        self.linear: tuple[int, int, int] | None = linear if len(columns) == 2 else None

    def holds(self, values: Sequence[int]) -> bool:
        """Whether the rule holds for its ``values`` (one per interval of the rule)."""
        linear = self.linear
        if linear is None:
            return self.rule.holds(*values)
        v0 = values[0]
        return v0 >= linear[0] and v0 * linear[1] >= values[1] * linear[2]


class WindowDecisions:
    """An engine's window rules, and the intervals their store answers (each once)."""

    __slots__ = ("_names", "_places", "intervals", "slots", "totals")

    def __init__(self, rules: Sequence[WindowRule]) -> None:
        intervals: list[Interval] = []
        self.slots: list[RuleSlot] = []
        for rule in rules:
            columns = []
            for interval in rule.intervals:
                if interval not in intervals:
                    intervals.append(interval)
                columns.append(intervals.index(interval))
            self.slots.append(RuleSlot(rule, tuple(columns)))
        self.intervals = tuple(intervals)
        self.totals = any(slot.uses_totals for slot in self.slots)
        # The place of each name of the last coded keys' table (see _rows_of).
        self._names: Sequence[str] | None = None
        self._places: dict[str, int] = {}

    def decide_one(
        self, call: StoreCall, lifecycle: AlertLifecycle, tx: Transaction, at: int,
        batch: ObservedBatch, tag: str,
    ) -> list[tuple[Transition, Alert]]:
        """The lifecycle changes of a batch of one new transaction, in rule order, each with
        the alert it raises if it applies: the same decisions as :meth:`decide`, with one
        ``states`` call for the pool's rules."""
        pool = tx.pool_id
        known = call("states", lifecycle.states, [(pool, slot.rule.name) for slot in self.slots])
        found = []
        for slot in self.slots:
            column = batch.totals if slot.uses_totals else batch.counts
            values = tuple(column[c][0] for c in slot.columns)
            holds = slot.holds(values)
            if holds is not known.get((pool, slot.rule.name), IDLE).firing:
                found.append((slot.rule, values, holds))
        changes = self.changes(lambda name: known.get((pool, name), IDLE), tx, at,
                               batch.first_seen[0], found)
        return [(Transition(pool, rule.name, holds, at, tx.id, tag), alert)
                for rule, holds, alert in changes]

    @staticmethod
    def changes(
        state_of: Callable[[str], LifecycleState], tx: Transaction, at: int,
        first_seen: int | None, found: list[tuple[WindowRule, tuple[int, ...], bool]],
    ) -> list[tuple[WindowRule, bool, Alert]]:
        """The lifecycle changes that ``found`` makes, in order, each with its alert: ``found``
        holds each window rule whose state may change for ``tx``'s pool (one that holds where
        it was not firing, or the reverse), its values, and whether it holds. ``state_of(name)``
        is asked only for the rules that hold (may_fire reads it): a rule that does not hold
        was firing, its resolution needs no state, and the transition checks that it still
        was."""
        pool = tx.pool_id
        changes = []
        for rule, values, holds in found:
            if holds:
                state = state_of(rule.name)
                if state.firing or not rule.may_fire(at, first_seen, state):
                    continue
            changes.append((rule, holds, rule.alert(FIRING if holds else RESOLVED, pool,
                                                    tx.timestamp, tx.id, tx.investor_id,
                                                    values)))
        return changes

    def resolutions(
        self, call: StoreCall, store: WindowStore, slot: RuleSlot, now: datetime, now_us: int
    ) -> list[tuple[Transition, Alert]]:
        """The pools for which ``slot``'s rule is firing but no longer holds at ``now`` (time
        passed without transactions), in order, each with its change and its alert."""
        rule = slot.rule
        changes = []
        for key in sorted(call("firing", store.firing, rule.name)):
            tallies = call("tally", store.tally, key, now_us, rule.intervals)
            values = tuple([t.total if slot.uses_totals else t.count for t in tallies])
            if rule.holds(*values):
                continue
            alert = rule.alert(RESOLVED, key, now, None, None, values)
            changes.append((Transition(key, rule.name, False, now_us), alert))
        return changes

    def decide(
        self, call: StoreCall, lifecycle: AlertLifecycle, rows: Rows,
        batch: ObservedBatch, every_new: bool, tag: str,
        again: bool, base: int, pending: PendingAlerts, transitions: list[Transition],
    ) -> None:
        """The window rules' lifecycle changes of a batch, decided in transaction order.

        Only the pools where something can change are walked: a pool whose rules hold at none
        of its transactions of the batch and were not firing at its start keeps its state.

        ``call(operation, method, *args)`` makes each store call (the engine times them);
        ``again`` says the batch may have been decided before under ``tag``, so its lifecycle
        is read as it was then. Alerts go to ``pending`` (their rules' orders from ``base``),
        their changes to ``transitions``.
        """
        slots = self.slots
        statuses = batch.statuses
        keys, ats = rows.keys, rows.ats
        new = Status.NEW
        columns = [
            tuple((batch.totals if s.uses_totals else batch.counts)[c] for c in s.columns)
            for s in slots
        ]
        vectors = [
            tuple((batch.total_arrays if s.uses_totals else batch.count_arrays)[c]
                  for c in s.columns)
            for s in slots
        ] if isinstance(batch, ColumnarBatch) else [None] * len(slots)
        if not again:
            # Pools that were firing, and those where a rule holds: nowhere else can a
            # state change (those of the batch, found below).
            active: set[str] = set()
            for slot in slots:
                active.update(call("firing", lifecycle.firing, slot.rule.name))
        else:
            # A batch decided again is decided from the states it found the first time,
            # which only the states themselves tell: ask for every pool of the batch.
            known = call(
                "states", lifecycle.states,
                [(pool, s.rule.name) for pool in set(keys) for s in slots], batch=tag)
            active = {key for (key, _), state in known.items() if state.firing}
        for slot, cols, vector in zip(slots, columns, vectors):
            active.update(keys[i] for i in _holding(slot, cols, vector)
                          if every_new or statuses[i] is new)
        if not active:
            return
        walk = self._rows_of(keys, active)
        active = {keys[i] for i in walk}
        if not active:
            return
        known = call(
            "states", lifecycle.states,
            [(pool, s.rule.name) for pool in active for s in slots], batch=tag)
        # Each pool's (firing, since, cause) per rule as the batch goes: plain tuples, which the
        # cyclic collector stops tracking (a state object is made for may_fire alone).
        states = [
            {pool: _plain(known.get((pool, s.rule.name), IDLE)) for pool in active}
            for s in slots
        ]
        first_seen = batch.first_seen
        window_work = list(enumerate(zip(slots, states, columns), base))
        width = pending.rules
        alerts, places, changes = pending.alerts, pending.places, pending.changes
        for i in walk:
            if not (every_new or statuses[i] is new):
                continue
            key = keys[i]
            for order, (slot, pool_states, cols) in window_work:
                state = pool_states[key]
                linear = slot.linear
                if linear is not None:
                    v0 = cols[0][i]
                    holds = v0 >= linear[0] and v0 * linear[1] >= cols[1][i] * linear[2]
                else:
                    holds = slot.rule.holds(*[col[i] for col in cols])
                if holds is state[0]:
                    continue
                rule = slot.rule
                at = ats[i]
                if holds and not rule.may_fire(at, first_seen[i], new_state(*state)):
                    continue
                pool_states[key] = (holds, at, None)
                values = (cols[0][i], cols[1][i]) if linear is not None else tuple(
                    [col[i] for col in cols])
                tx_id = rows.ids[i]
                alerts.append(rule.alert(
                    FIRING if holds else RESOLVED, key, rows.moment(i), tx_id,
                    rows.investor(i), values
                ))
                places.append(i * width + order)
                changes.append(len(transitions))
                transitions.append(Transition(key, rule.name, holds, at, tx_id, tag))


    def _rows_of(self, keys: Sequence[str], pools: set[str]) -> list[int]:
        """The indices of the rows of ``keys`` whose pool is one of ``pools``, in order:
        for coded keys, found from the codes of those pools in numpy."""
        if isinstance(keys, CodedText) and _np is not None:
            names = keys.names
            if names is not self._names:
                self._names = names
                self._places = {name: place for place, name in enumerate(names)}
            places = self._places
            wanted = [places[pool] for pool in pools if pool in places]
            if not wanted:
                return []
            found: list[int] = _np.flatnonzero(_np.isin(keys.codes, wanted)).tolist()
            return found
        return [i for i, key in enumerate(keys) if key in pools]


def _plain(state: LifecycleState) -> tuple[bool, int | None, str | None]:
    return state.firing, state.since, state.cause


def _holding(
    slot: RuleSlot, columns: tuple[list[int], ...], vectors: tuple[Any, ...] | None = None
) -> list[int]:
    """The indices at which ``slot``'s rule holds (statuses not considered); ``vectors`` are
    the same columns as numpy arrays, when the store gave them."""
    linear = slot.linear
    if linear is None:
        holds = slot.rule.holds
        return [i for i, values in enumerate(zip(*columns)) if holds(*values)]
    floor, a, b = linear
    c0, c1 = columns
    if _np is not None and len(c0) >= 64:
        if vectors is not None and all(v.dtype == _np.int64 for v in vectors):
            v0, v1 = vectors
            fits = int(v0.max()) * a < _INT64 and int(v1.max()) * b < _INT64
        else:  # checked before converting: a total of 2**63 units or more is no int64
            fits = max(c0) * a < _INT64 and max(c1) * b < _INT64
            if fits:
                v0, v1 = _np.array(c0, dtype=_np.int64), _np.array(c1, dtype=_np.int64)
        if fits:
            found: list[int] = _np.flatnonzero((v0 >= floor) & (v0 * a >= v1 * b)).tolist()
            return found
    return [i for i, (v0, v1) in enumerate(zip(*columns)) if v0 >= floor and v0 * a >= v1 * b]
