"""``KeyCodes``: the keys of the columnar windows, numbered densely, and their times per code.

Each key held gets a *code* (``0 .. len - 1``, in the order keys arrived), which is what the
held events and the id log carry instead of the key. Per code, in ``int64`` arrays:

- ``newest`` and ``first``: the times of the key's newest and first ``NEW`` events;
- ``floor``: its events at or before this time were given back, so an event whose windows
  would reach them is late (:data:`~auptimate_core.windows.composites.NEVER` when none was);
- ``ahead``: the latest time one of its ids was recorded at past its newest event (an id of a
  ``LATE`` event of a key with no events, or of a ``FUTURE`` one).

Dropping keys whole numbers the others again, in the same order, so composites that carry
codes stay sorted. Codes have :data:`CODE_BITS` bits: at most :data:`CODE_LIMIT` keys held at
once (a key dropped whole frees its code). Not thread-safe: the owner locks.

>>> keys = KeyCodes()
>>> keys.code_array(["p", "q", "p"]).tolist(), len(keys)
([0, 1, 0], 2)
>>> keys.drop(np.array([True, False])).tolist(), keys.codes, keys.take_dropped()
([-1, 0], {'q': 0}, ['p'])
>>> keys.code_array(CodedText(np.array([1, 0, 1]), ["q", "r"])).tolist(), len(keys)
([1, 0, 1], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress

import numpy as np
import numpy.typing as npt

from ..columns import CodedText
from ..errors import StoreError
from .composites import NEVER, NO_FIRST

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

CODE_BITS = 21
CODE_LIMIT = 1 << CODE_BITS


class KeyCodes:
    """Key codes and per-code times; see the module docstring."""

    __slots__ = ("_names", "_table", "ahead", "codes", "dropped", "dropped_keys", "first",
                 "floor", "floored", "keys", "newest")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.keys: list[str] = []  # by code
        self.newest: Ints = np.full(64, NEVER, np.int64)
        self.first: Ints = np.full(64, NO_FIRST, np.int64)
        self.floor: Ints = np.full(64, NEVER, np.int64)
        self.ahead: Ints = np.full(64, NEVER, np.int64)
        self.floored = False  # whether any key has a floor
        self.dropped = NEVER  # the newest event of any key dropped whole
        self.dropped_keys: list[str] = []  # dropped whole since the owner last asked
        # The code of each name of the last CodedText's table (-1: not numbered yet).
        self._names: Sequence[str] | None = None
        self._table: Ints = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def code_array(self, keys: Sequence[str]) -> Ints:
        """The code of each of ``keys``, new keys numbered as they come."""
        if isinstance(keys, CodedText):
            return self._coded(keys)
        codes = self.codes
        try:
            return np.fromiter(map(codes.__getitem__, keys), np.int64, len(keys))
        except KeyError:
            for key in keys:
                if key not in codes:
                    self._add(key)
            return np.fromiter(map(codes.__getitem__, keys), np.int64, len(keys))

    def _coded(self, keys: CodedText) -> Ints:
        """:meth:`code_array` of coded keys: each name of their table looked up once, not
        each row."""
        names = keys.names
        if names is not self._names:
            self._names = names
            self._table = np.full(len(names), -1, np.int64)
        table = self._table
        got: Ints = table[keys.codes]
        unknown = got < 0
        if unknown.any():
            found = keys.codes[unknown]
            places, first = np.unique(found, return_index=True)
            places = places[np.argsort(first, kind="stable")]  # in order of arrival
            codes = self.codes
            wanted = [names[place] for place in places.tolist()]
            self._add_many([name for name in wanted if name not in codes])
            table[places] = np.fromiter(map(codes.__getitem__, wanted), np.int64, len(wanted))
            got = table[keys.codes]
        return got

    def _add_many(self, keys: list[str]) -> None:
        """Number new keys (distinct, none held), in order: what :meth:`_add` does for each."""
        start = len(self.keys)
        end = start + len(keys)
        if len(keys) < 8 or end > CODE_LIMIT:
            for key in keys:
                self._add(key)
            return
        if end > len(self.newest):
            self._grow(max(2 * len(self.newest), end))
        self.codes.update(zip(keys, range(start, end)))
        self.keys.extend(keys)
        if self.dropped > NEVER:
            self.floor[start:end] = self.dropped
            self.floored = True

    def _add(self, key: str) -> None:
        code = len(self.keys)
        if code >= CODE_LIMIT:
            raise StoreError(
                f"columnar windows hold at most {CODE_LIMIT:,} keys at once; key {key!r} is "
                "one more (MemoryWindowStore has no such limit)")
        if code >= len(self.newest):
            self._grow(2 * len(self.newest))
        self.codes[key] = code
        self.keys.append(key)
        if self.dropped > NEVER:
            # It may be a key dropped before, whose windows are gone.
            self.floor[code] = self.dropped
            self.floored = True

    def _grow(self, size: int) -> None:
        """Make room for ``size`` codes in the per-code arrays."""
        self.newest = _resized(self.newest, size, NEVER)
        self.first = _resized(self.first, size, NO_FIRST)
        self.floor = _resized(self.floor, size, NEVER)
        self.ahead = _resized(self.ahead, size, NEVER)

    def raise_extremes(self, c: Ints, t: Ints, chosen: Ints) -> None:
        """Raise ``newest`` and lower ``first`` (per code) to the times ``t`` of the ``chosen``
        events (indices sorted by their codes ``c``)."""
        cs = c[chosen]
        ts = t[chosen]
        starts = np.flatnonzero(np.concatenate(([True], cs[1:] != cs[:-1])))
        codes = cs[starts]
        self.newest[codes] = np.maximum(self.newest[codes], np.maximum.reduceat(ts, starts))
        self.first[codes] = np.minimum(self.first[codes], np.minimum.reduceat(ts, starts))

    def idle(self, newest: int, memory: int) -> Flags:
        """The keys with nothing recorded within ``memory`` of ``newest``."""
        n = len(self.keys)
        if newest == NEVER:
            return np.zeros(n, np.bool_)
        idle: Flags = np.maximum(self.newest[:n], self.ahead[:n]) <= newest - memory
        return idle

    def drop(self, gone: Flags) -> Ints:
        """Drop the keys ``gone`` marks and number the others again, in the same order;
        returns the new code of each old one (-1 for those dropped)."""
        n = len(gone)
        alive = ~gone
        self.dropped = max(self.dropped, int(self.newest[:n][gone].max()))
        remap: Ints = np.cumsum(alive) - 1
        remap[gone] = -1
        self.dropped_keys += compress(self.keys, gone.tolist())
        self.keys = list(compress(self.keys, alive.tolist()))
        self.codes = {key: code for code, key in enumerate(self.keys)}
        if len(self._table):
            table = self._table
            self._table = np.where(table >= 0, remap[table], -1)
        size = max(64, 2 * len(self.keys))
        self.newest = _resized(self.newest[:n][alive], size, NEVER)
        self.first = _resized(self.first[:n][alive], size, NO_FIRST)
        self.floor = _resized(self.floor[:n][alive], size, NEVER)
        self.ahead = _resized(self.ahead[:n][alive], size, NEVER)
        self.floored = self.floored or self.dropped > NEVER
        return remap

    def take_dropped(self) -> list[str]:
        """The keys dropped whole since the last call."""
        dropped, self.dropped_keys = self.dropped_keys, []
        return dropped

    def check(self) -> None:
        """Assert the invariants: codes dense and known, per-code arrays long enough."""
        n = len(self.keys)
        assert len(self.codes) == n and all(self.codes[k] == i for i, k in enumerate(self.keys))
        assert len(self.newest) == len(self.first) == len(self.floor) == len(self.ahead) >= n


def _resized(values: Ints, size: int, fill: int) -> Ints:
    """``values`` cut or padded with ``fill`` to ``size``."""
    out = np.full(size, fill, np.int64)
    out[:min(size, len(values))] = values[:size]
    return out
