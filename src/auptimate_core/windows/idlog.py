"""``IdLog``: the event ids a store holds, each with its key's code, behind a Bloom filter.

A columnar store asks, for every event of a batch, "is this id already held?", and almost
always the answer is no. A Python ``dict`` answers that with one interpreter-driven probe per
id into a table of a few hundred thousand entries, which on a real machine is a cache miss per
id, and it pays another to insert. ``IdLog`` answers the common "no" for a whole batch in numpy:

- a blocked Bloom filter (each id sets :data:`PROBES` bits of one 64-bit word, so a lookup
  reads one word) of at least ``BITS_PER_ID`` bits per id held answers "certainly not held"
  for all but a few ids in ten thousand: ``O(b)`` vectorised work per batch of ``b`` ids;
- ids that pass the filter are looked up exactly in the log (hash, then the string itself):
  a scan of the log's hashes per id when there are few, one sort of them when there are many
  (a batch delivered again);
- the log is append-only: ids, their hashes, the code of their key and an ``int64`` value each
  (the owner stores the time it recorded the id at). An id is held per key: the same id under
  another key is another entry, and an id held again by the same key (after the owner stopped
  counting its first entry) is appended again; :meth:`find` returns the newest entry of the
  same id and key, which is what the owner asks;
- :meth:`keep_only` drops the entries the owner no longer needs and makes the filter again,
  ``O(n)`` in numpy; the owner calls it once the log has grown to a few times what it keeps.
  The ids themselves sit in chunks, a list each as they came (:class:`_Names`): adding a batch
  copies its list once, and a compaction drops whole chunks that hold nothing live and
  rewrites only those that hold some of both, so the strings of the live ids (the newest
  chunks, usually) are never copied or touched again.
- a batch's filter probes are computed once (:func:`hashes`, :meth:`IdLog.probes`) and serve
  both the lookup and the insert.

Hashes of ``str`` are salted per process, which is fine: the log lives in one process.

>>> log = IdLog()
>>> log.add(["a", "b"], np.array([0, 1]), np.array([10, 20]))
>>> log.find(["b", "c", "a", "a"], np.array([1, 0, 0, 1]))
{0: 20, 2: 10}
>>> log.names(), log.codes().tolist(), log.values().tolist()
(['a', 'b'], [0, 1], [10, 20])
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import chain, compress
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]
Words = npt.NDArray[np.uint64]
Probes = tuple[Words, Words]  # each id's filter word, and the bits it sets in that word

PROBES = 5  # bits set per id, in its word
BITS_PER_ID = 32
_MIN_BITS = 1 << 16
_FEW = 16  # more candidates than this are looked up through one sort of the log
_SMALL_CHUNK = 4_096  # a chunk this short takes the next batch's ids into itself
_SIX = np.uint64(63)


def hashes(ids: Sequence[str]) -> Ints:
    """Python's hash of each id, as an ``int64`` array."""
    return np.fromiter(map(hash, ids), np.int64, len(ids))


class _Names:
    """The ids of the log in chunks (lists, oldest first), and where each chunk starts."""

    __slots__ = ("chunks", "starts")

    def __init__(self) -> None:
        self.chunks: list[list[str]] = []
        self.starts: list[int] = []

    def append(self, ids: Sequence[str], at: int) -> None:
        """Add ``ids`` as entries ``at`` onwards."""
        if not len(ids):
            return
        if self.chunks and len(self.chunks[-1]) < _SMALL_CHUNK:
            self.chunks[-1].extend(ids)  # keeps one call per event from making a chunk each
        else:
            self.chunks.append(list(ids))
            self.starts.append(at)

    def __getitem__(self, j: int) -> str:
        c = bisect_right(self.starts, j) - 1
        return self.chunks[c][j - self.starts[c]]

    def every(self) -> list[str]:
        return list(chain.from_iterable(self.chunks))

    def keep_only(self, keep: Flags) -> None:
        """Keep the entries ``keep`` marks: whole chunks dropped or kept where they can be."""
        if not self.chunks:
            return
        keep = np.ascontiguousarray(keep, np.bool_)
        live = np.add.reduceat(keep.astype(np.int64), self.starts).tolist()
        flags = keep.view(np.uint8)
        chunks: list[list[str]] = []
        starts: list[int] = []
        at = 0
        for chunk, start, alive in zip(self.chunks, self.starts, live):
            if not alive:
                continue
            if alive < len(chunk):
                chunk = list(compress(chunk, flags[start:start + len(chunk)].tobytes()))
            chunks.append(chunk)
            starts.append(at)
            at += alive
        self.chunks, self.starts = chunks, starts


class IdLog:
    """Ids in arrival order with a key code and an ``int64`` value each, and a Bloom filter.
    Not thread-safe."""

    def __init__(self) -> None:
        self._names = _Names()
        self._hash: Ints = np.empty(1024, np.int64)
        self._code: Codes = np.empty(1024, np.int32)
        self._value: Ints = np.empty(1024, np.int64)
        self._n = 0
        self._size_filter(0)

    def __len__(self) -> int:
        return self._n

    def _size_filter(self, held: int) -> None:
        bits = max(_MIN_BITS, 1 << (4 * BITS_PER_ID * max(held, 1) - 1).bit_length())
        self._shift = np.uint64(64 - (bits.bit_length() - 1 - 6))
        self._words = np.zeros(bits >> 6, np.uint64)
        self._capacity = bits // BITS_PER_ID  # ids the filter is sized for
        self._marked = 0  # ids marked in it, held or dropped since

    def probes(self, h: Ints) -> Probes:
        """The filter word of each id (from the top bits of its hash), and the ``PROBES``
        bits it sets in that word (from six low bits each). Python's ``str`` hash (SipHash)
        is uniform over 64 bits, so its fields serve as independent hashes."""
        u = h.view(np.uint64)
        one = np.uint64(1)
        pattern = one << (u & _SIX)
        for j in range(1, PROBES):
            pattern |= one << ((u >> np.uint64(6 * j)) & _SIX)
        return u >> self._shift, pattern

    def maybe(self, h: Ints, probes: Probes | None = None) -> Flags:
        """False where the id of hash ``h`` is certainly not held."""
        word, pattern = self.probes(h) if probes is None else probes
        held: Flags = (self._words[word] & pattern) == pattern
        return held

    def add(
        self, ids: Sequence[str], codes: Ints, values: Ints, h: Ints | None = None,
        probes: Probes | None = None,
    ) -> None:
        """Append ids (with their key codes and values) to the log; ``probes`` of ``h`` if the
        caller has them from :meth:`find` (the filter has not been made again since)."""
        if h is None:
            h = hashes(ids)
        k = len(h)
        if self._marked + k > self._capacity:
            # Full of ids, held or dropped since it was made: make it again, for those held.
            self._size_filter(self._n + k)
            self._mark(self._hash[:self._n])
            probes = None  # the new filter has another size, so other words
        if self._n + k > len(self._hash):
            size = max(2 * len(self._hash), self._n + k)
            self._hash = _grown(self._hash, self._n, size)
            self._code = _grown(self._code, self._n, size)
            self._value = _grown(self._value, self._n, size)
        self._hash[self._n:self._n + k] = h
        self._code[self._n:self._n + k] = codes
        self._value[self._n:self._n + k] = values
        self._names.append(ids, self._n)
        self._n += k
        self._mark(h, probes)

    def _mark(self, h: Ints, probes: Probes | None = None) -> None:
        self._marked += len(h)
        word, pattern = self.probes(h) if probes is None else probes
        # A buffered |= keeps one write per word; where ids of this batch share a word, the
        # few that lost their bits set them again, unbuffered.
        self._words[word] |= pattern
        lost = (self._words[word] & pattern) != pattern
        if lost.any():
            np.bitwise_or.at(self._words, word[lost], pattern[lost])

    def find(
        self, ids: Sequence[str], codes: Ints, h: Ints | None = None,
        probes: Probes | None = None,
    ) -> dict[int, int]:
        """``{position in ids: value}`` of the newest entry of each id held for the same key
        code (``codes[position]``)."""
        if h is None:
            h = hashes(ids)
        candidates = np.flatnonzero(self.maybe(h, probes)).tolist()
        if not candidates:
            return {}
        held = self._hash[:self._n]
        if len(candidates) <= _FEW:
            places = [np.flatnonzero(held == h[i]).tolist() for i in candidates]
        else:
            order = np.argsort(held, kind="stable")
            ranked = held[order]
            los = np.searchsorted(ranked, h[candidates], side="left").tolist()
            his = np.searchsorted(ranked, h[candidates], side="right").tolist()
            places = [order[lo:hi].tolist() for lo, hi in zip(los, his)]
        found: dict[int, int] = {}
        for i, same in zip(candidates, places):
            for j in reversed(same):
                if self._code[j] == codes[i] and self._names[j] == ids[i]:
                    found[i] = int(self._value[j])
                    break
        return found

    def values(self) -> Ints:
        """The value of every entry, oldest first."""
        return self._value[:self._n]

    def codes(self) -> Codes:
        """The key code of every entry, oldest first."""
        return self._code[:self._n]

    def names(self) -> list[str]:
        """The id of every entry, oldest first."""
        return self._names.every()

    def recode(self, mapping: Ints) -> None:
        """Give every entry the key code ``mapping[code]``."""
        self._code[:self._n] = mapping[self._code[:self._n]]

    def keep_only(self, keep: Flags) -> None:
        """Drop the entries ``keep`` does not mark (one flag per entry, oldest first), and
        make the filter again for those that stay (a filter full of dropped ids' bits lets
        through more false positives, each an exact lookup in the log)."""
        self._names.keep_only(keep)
        self._hash = self._hash[:self._n][keep]
        self._code = self._code[:self._n][keep]
        self._value = self._value[:self._n][keep]
        self._n = len(self._hash)
        if self._n == 0:
            self._hash = np.empty(1024, np.int64)
            self._code = np.empty(1024, np.int32)
            self._value = np.empty(1024, np.int64)
        self._size_filter(self._n)
        self._mark(self._hash[:self._n])


def _grown(values: npt.NDArray[Any], n: int, size: int) -> npt.NDArray[Any]:
    """A new array of ``size`` (uninitialised past ``n``) starting with ``values[:n]``."""
    out = np.empty(size, values.dtype)
    out[:n] = values[:n]
    return out
