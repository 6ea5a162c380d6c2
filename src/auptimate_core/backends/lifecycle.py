"""``LifecycleTable``: the alert lifecycle of a store that lives in one process.

The semantics of :meth:`~auptimate_core.store.AlertLifecycle.states` and
:meth:`~auptimate_core.store.AlertLifecycle.transition` on dicts, one pair at a time as well
(:class:`~auptimate_core.store.SwitchesOne`), with a live index of the keys firing per rule
(:class:`~auptimate_core.store.IndexesFiring`).
:class:`~auptimate_core.backends.local.LocalStore` keeps one under its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from itertools import repeat
from typing import Any

from ..store import IDLE, LifecycleState, Transition, new_state

_Entry = tuple[Any, ...]
"""A rule's entry in a :class:`LifecycleTable`: (rule, firing, since, cause, tag, then firing,
then since, then cause); a key holds one, or a tuple of them (typed alike)."""


def _entry_of(held: _Entry | None, rule: str) -> _Entry | None:
    """The entry of ``rule`` among a key's (one entry, or a tuple of them)."""
    if held is None:
        return None
    if held[0] == rule:  # one entry, of that rule (an entry is never equal to a name)
        return held
    if type(held[0]) is tuple:
        entry: _Entry
        for entry in held:
            if entry[0] == rule:
                return entry
    return None


def _now(entry: _Entry | None) -> LifecycleState:
    """An entry's state now (``IDLE`` for no entry, or one that never changed)."""
    if entry is None or entry[2] is None:
        return IDLE
    return new_state(entry[1], entry[2], entry[3])


class LifecycleTable:
    """The alert lifecycle held in one process: the semantics of :meth:`WindowStore.states` and
    :meth:`WindowStore.transition` on dicts, with an index of the keys firing per rule. Not
    thread-safe: its owner locks.

    A key holds one entry per rule changed for it (the entry alone, or a tuple of them when it
    has several): the rule's name, its state, the last batch that asked to change it and its
    state before that batch, all in one flat tuple of strings, ints, bools and None; never a
    :class:`LifecycleState`. The cyclic garbage collector stops tracking such a tuple the first
    time it meets it (a key's tuple of several entries, the next time), so a table of many pools
    adds nothing to the collections that a process full of alerts runs (a held object would be
    traversed by every full collection, and counted towards the next); and forgetting a key is
    one ``pop`` by its name.

    O(rules of the key) per pair asked or changed, and per key forgotten; :meth:`firing` is
    O(keys firing for that rule).
    """

    __slots__ = ("_firing", "_pairs")

    def __init__(self) -> None:
        # Per key, per rule changed for it: (rule, firing, since, cause, tag, then firing, then
        # since, then cause). ``tag`` is the last batch that asked to change it, then its
        # state before that batch's transitions (None without a tag).
        self._pairs: dict[str, _Entry] = {}
        self._firing: dict[str, set[str]] = {}

    def states(
        self, pairs: Iterable[tuple[str, str]], batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        out = {}
        held = self._pairs
        for pair in pairs:
            found = _entry_of(held.get(pair[0]), pair[1])
            if batch is not None and found is not None and found[4] == batch:
                # Its state before that batch's transitions.
                out[pair] = (new_state(found[5], found[6], found[7])
                             if found[6] is not None else IDLE)
            else:
                out[pair] = _now(found)
        return out

    def state_of(self, key: str, rule: str) -> LifecycleState:
        """The state of one pair, outside any batch."""
        return _now(_entry_of(self._pairs.get(key), rule))

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        switch = self.switch
        return [switch(change.key, change.rule, change.firing, change.at, change.cause,
                       change.batch) for change in transitions]

    def switch(self, key: str, rule: str, firing: bool, at: int, cause: str | None,
               batch: str | None = None) -> bool:
        """Apply ``Transition(key, rule, firing, at, cause, batch)`` if it changes the state
        (see :meth:`transition`); whether it applied."""
        held = self._pairs
        entries = held.get(key)
        found = _entry_of(entries, rule)
        if found is None:
            now, since, was, tag, then, then_since, then_was = (
                False, None, None, None, None, None, None)
        else:
            _, now, since, was, tag, then, then_since, then_was = found
        write = False
        if batch is not None and tag != batch:
            tag, then, then_since, then_was, write = batch, now, since, was, True
        if now == firing:
            # Already so: applied only if it is this very change, decided again.
            applied = cause is not None and since == at and was == cause
        else:
            now, since, was, write, applied = firing, at, cause, True, True
            keys = self._firing.get(rule)
            if keys is None:
                keys = self._firing[rule] = set()
            if firing:
                keys.add(key)
            else:
                keys.discard(key)
        if write:
            entry = (rule, now, since, was, tag, then, then_since, then_was)
            if entries is None or entries is found:
                held[key] = entry
            elif found is None:
                held[key] = ((entries, entry) if type(entries[0]) is str
                             else (*entries, entry))
            else:
                held[key] = tuple([entry if e is found else e
                                   for e in entries])
        return applied

    def firing(self, rule: str) -> frozenset[str]:
        return frozenset(self._firing.get(rule, ()))

    def firing_view(self, rule: str) -> AbstractSet[str]:
        """The live set of keys firing for ``rule`` (one object per rule, for ever)."""
        return self._firing.setdefault(rule, set())

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the states of ``keys`` that are not firing (they read as ``IDLE`` again)."""
        held = self._pairs
        keys = list(keys)
        before = len(held)
        firing = [named for named in self._firing.values() if named]
        # A key firing for some rule keeps the entries of the rules firing for it.
        kept: list[tuple[str, _Entry]] = []
        for key in set().union(*firing).intersection(keys) if firing else ():
            entries = held[key]
            if type(entries[0]) is str:
                kept.append((key, entries))  # its one rule is the one firing
            else:
                firing_ones = tuple([e for e in entries if e[1]])
                kept.append((key, firing_ones[0] if len(firing_ones) == 1
                             else firing_ones))
        deque(map(held.pop, keys, repeat(None)), maxlen=0)  # one C loop: most keys go
        held.update(kept)
        if before - len(held) > len(held):  # most left: the rest copied close together
            self._pairs = dict(held)
