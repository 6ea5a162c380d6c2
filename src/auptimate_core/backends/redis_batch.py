"""One ``observe_many`` call of the Redis window store: its pools' runs encoded for
``lua/observe.lua``, the replies read back, and the process's copies of the pools' windows
from which the client answers a run itself and vouches for it.

Why vouch: answering a run on the server costs the window edges of every pool of a batch (a few
reads and their replies), and Redis's Lua spends more per event than the client does in C's
bisect. A :class:`PoolCopy` holds what the server holds of one pool's windows (its event times
after newest - keep, its newest and first times) *as of a version*: every script run that records
anything for a pool gives it a new version (a nonce unique to the call and the run's number). The
client answers a run from its copy and sends the answers with the version they assume; the
server records them as they stand when the pool is at that version and every id is new, and
otherwise answers the run itself and tells the client the pool's windows. A copy can only be
stale, never wrong: the server checks it on every use.

A pool not seen yet is taken for a new one (an empty copy, vouched for as a pool without state);
a copy is made when the server tells a pool's windows (asked by a run's mode ``+``, or after a
vouched run it refused); a pool whose vouched runs are refused again and again (another process
writes it) is answered by the server for a while, twice as long after each refusal, before the
client asks for a copy again. Copies hold the times of the windows only (at most ``keep`` back
from the pool's newest event), for at most :data:`POOLS` pools and :data:`EVENTS` events in all
(then they start again).

Thread-safe: the copies are read and changed under one lock.
"""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ..store import Interval, Status

__all__ = ["EVENTS", "POOLS", "BatchCall", "PoolCopy", "WindowCopies"]

POOLS = 100_000
"""Pools whose windows a store keeps a copy of (then it starts again)."""
EVENTS = 1_000_000
"""Events the copies of a store's pools hold in all (then they start again): about 80 MB."""
_EXACT = 2**53
"""Times within this bound are exact as Redis scores (doubles): a copy holds no others."""
_STATUS = (Status.NEW, Status.DUPLICATE, Status.LATE, Status.FUTURE)
_LIMB = 10**6


class PoolCopy:
    """This process's copy of one pool's windows at ``version`` (None: none held; the pool is
    answered by the server for ``wait`` more runs): its event times in order, and the sums of
    their amounts before each (``sums[i + 1] - sums[j]`` is the sum of events j..i). A run
    vouched for from it changes it at once, and leaves it ``pending`` (the run's new version)
    until the server's reply."""

    __slots__ = ("counted", "first", "misses", "newest", "pending", "sums", "times", "version",
                 "wait")

    def __init__(self) -> None:
        self.version: str | None = None
        self.pending: str | None = None
        self.newest: int | None = None
        self.first: int | None = None
        self.times: list[int] = []
        self.sums: list[int] = [0]
        self.misses = 0
        self.wait = 0
        self.counted = 0  # the times counted in the copies' total

    def drop(self, wait: int) -> None:
        """Hold no copy; ask for one again after ``wait`` runs."""
        self.version = self.pending = None
        self.times, self.sums = [], [0]
        self.wait = wait

    def add(self, at: int, amount: int) -> None:
        """Take one more event (in time order but for ties: after those at the same time)."""
        times, sums = self.times, self.sums
        if not times or at >= times[-1]:
            times.append(at)
            sums.append(sums[-1] + amount)
            return
        place = bisect_right(times, at)
        times.insert(place, at)
        sums.insert(place + 1, sums[place])
        for i in range(place + 1, len(sums)):  # the events since: within the lateness
            sums[i] += amount


class WindowCopies:
    """The copies of the pools' windows one store keeps, all told under the same ``keep``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[str, PoolCopy] = {}
        self.keep = 0
        self.held = 0  # events held by the copies (those of runs pending aside)

    def _count(self, copy: PoolCopy) -> None:
        self.held += len(copy.times) - copy.counted
        copy.counted = len(copy.times)

    def mode(self, key: str, keep: int) -> tuple[str, PoolCopy | None]:
        """How to send ``key``'s next run: ``+`` (answer it and tell its windows), the copy's
        version (vouched, with the copy to answer it from) or ``-`` (answer it). Under
        :attr:`lock`."""
        if keep != self.keep or self.held > EVENTS:  # a longer reach: copies may miss events
            self.pools.clear()
            self.keep, self.held = keep, 0
        copy = self.pools.get(key)
        if copy is None:  # a pool not seen yet: vouched for as a new one (most are)
            if len(self.pools) >= POOLS:
                self.pools.clear()
                self.held = 0
            copy = self.pools[key] = PoolCopy()
            copy.version = "~"
            return "~", copy
        if copy.version is not None:
            return copy.version, copy
        copy.wait -= 1
        return ("+" if copy.wait <= 0 else "-"), copy

    def told(self, copy: PoolCopy, fields: list[bytes], pos: int, refused: bool) -> int:
        """Take the windows the server told after ``pos`` (the word after "R"); returns the
        position after them. Under :attr:`lock`."""
        if refused:
            copy.misses += 1
        copy.pending = None
        if fields[pos] == b"!":
            copy.drop(64)
            self._count(copy)
            return pos + 1
        version, newest, first = fields[pos:pos + 3]
        count = int(fields[pos + 3])
        start = pos + 4
        if refused and copy.misses >= 2:  # refused again and again: another writer
            copy.drop(2 ** min(copy.misses - 1, 10))
        else:
            copy.version = version.decode()
            copy.newest = None if newest == b"-" else _whole(newest)
            copy.first = None if first == b"-" else _whole(first)
            told = fields[start:start + 2 * count]
            copy.times = [_whole(x) for x in told[::2]]
            copy.sums = [0, *itertools.accumulate(map(int, told[1::2]))]
            if copy.times and (copy.times[0] <= -_EXACT or copy.times[-1] >= _EXACT):
                copy.drop(64)
        self._count(copy)
        return start + 2 * count

    def commit(self, copy: PoolCopy, version: str, keep: int) -> None:
        """A vouched run was recorded: its copy is at the run's ``version``. Under
        :attr:`lock`."""
        if copy.pending != version:  # another call of this process has moved it meanwhile
            copy.drop(1)
        else:
            copy.version, copy.pending, copy.misses = version, None, 0
            times, newest = copy.times, copy.newest
            if newest is not None and times and times[0] <= newest - keep:
                cut = bisect_right(times, newest - keep)
                if cut > 64 or 2 * cut > len(times):
                    del times[:cut]
                    del copy.sums[:cut]
        self._count(copy)


def _parts(total: int) -> str:
    """A window sum as the script writes it: four parts, high to low, joined base 10**6."""
    high, d = divmod(total, _LIMB)
    high, c = divmod(high, _LIMB)
    a, b = divmod(high, _LIMB)
    return f"{a} {b} {c} {d}"


def _whole(text: bytes) -> int:
    """A score as Redis writes it ("1700000000000000", or "1.2e+18" past 2**53)."""
    try:
        return int(text)
    except ValueError:
        return int(float(text))


class BatchCall:
    """The runs of one ``observe_many`` call: their arguments for the script, and the answers
    read back into the columns of its :class:`~auptimate_core.store.ObservedBatch`."""

    def __init__(
        self,
        copies: WindowCopies | None,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        intervals: Sequence[Interval],
        *,
        totals: bool,
        tokens: Sequence[str] | None,
        call_token: str,
        nonce: str,
        not_after: int | None,
        lateness: int,
        keep: int,
    ) -> None:
        n = len(keys)
        self.copies = copies if copies is not None else WindowCopies()
        self.event_ids, self.ats, self.amounts = event_ids, ats, amounts
        self.bounds = [(iv.offset, iv.reach) for iv in intervals]
        self.totals, self.tokens, self.call_token, self.nonce = totals, tokens, call_token, nonce
        self.not_after, self.lateness, self.keep = not_after, lateness, keep
        self.vouching = (copies is not None and n > 0 and min(ats) > -_EXACT
                         and max(ats) < _EXACT
                         and (not_after is None or -_EXACT < not_after < _EXACT))
        # A pool's events make one run, in order; runs (pools) are independent.
        runs: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            rows = runs.get(key)
            if rows is None:
                runs[key] = [i]
            else:
                rows.append(i)
        self.items = list(runs.items())
        self.statuses: list[Status] = [Status.NEW] * n
        self.first_seen: list[int | None] = [None] * n
        self.counts = [[0] * n for _ in intervals]
        self.sums = [[0] * n for _ in intervals] if totals else []
        # Per run: its copy (None when not vouched or told) and the mode it was sent with.
        self.copy: list[PoolCopy | None] = [None] * len(self.items)
        self.modes: list[str] = ["-"] * len(self.items)

    def encode(self, number: int) -> list[Any]:
        """The arguments of run ``number``: its number, size, mode and events. Under the
        copies' lock."""
        key, rows = self.items[number]
        copy: PoolCopy | None = None
        if self.vouching:
            mode, copy = self.copies.mode(key, self.keep)
        else:
            self.copies.pools.pop(key, None)  # this call moves the pool past any copy
            mode = "-"
        self.copy[number], self.modes[number] = copy, mode
        if mode not in ("+", "-") and copy is not None:
            return self._vouch(number, rows, copy, mode)
        args: list[Any] = [number, len(rows), mode]
        ids, ats, amounts, tokens = self.event_ids, self.ats, self.amounts, self.tokens
        if tokens is None:
            for i in rows:
                args += (ids[i], ats[i], amounts[i])
        else:
            for i in rows:
                args += (ids[i], ats[i], amounts[i], tokens[i])
        return args

    def _vouch(self, number: int, rows: list[int], copy: PoolCopy, mode: str) -> list[Any]:
        """Answer a run from ``copy``, into the columns; its arguments carry the values to
        store for its new events (``units:token:C`` and the counts, or ``T`` and each count
        with its sum in four parts). The copy takes the run's events at once, pending the
        server's word."""
        args: list[Any] = [number, len(rows), mode]
        ids, ats, amounts, tokens = self.event_ids, self.ats, self.amounts, self.tokens
        statuses, first_seen, counts, sums = self.statuses, self.first_seen, self.counts, self.sums
        times, totals, newest, first = copy.times, copy.sums, copy.newest, copy.first
        not_after, lateness, bounds = self.not_after, self.lateness, self.bounds
        new, late, future = Status.NEW, Status.LATE, Status.FUTURE
        carry = f">{'-' if first is None else first}" if tokens is None else ""
        prefix = f"{self.call_token}.{number}."
        # The spike rule's windows, (at - w, at] and (at - w - b, at - w], share an edge: two
        # searches an event, the newest edge being the end of the times when the event is.
        spike = (not sums and tokens is None and len(bounds) == 2 and bounds[0][0] == 0
                 and bounds[0][1] == bounds[1][0])
        if spike:
            (_, near), (_, far) = bounds
            recent, baseline = counts
        for place, i in enumerate(rows):
            at = ats[i]
            if (not_after is not None and at > not_after) or (
                    newest is not None and at < newest - lateness):
                statuses[i] = future if not_after is not None and at > not_after else late
                value: Any = amounts[i]
                for column in counts:
                    column[i] = 0
                for column in sums:
                    column[i] = 0
            elif spike:
                statuses[i] = new
                amount = amounts[i]
                if not times or at >= times[-1]:
                    times.append(at)
                    totals.append(totals[-1] + amount)
                    top = len(times)
                else:
                    copy.add(at, amount)
                    top = bisect_right(times, at)
                middle = bisect_right(times, at - near)
                c1, c2 = top - middle, middle - bisect_right(times, at - far)
                recent[i], baseline[i] = c1, c2
                value = f"{amount}:{prefix}{place}:C{c1} {c2}{carry}"
                carry = ""
                if newest is None or at > newest:
                    newest = at
                if first is None or at < first:
                    first = at
            else:
                statuses[i] = new
                copy.add(at, amounts[i])
                tallies = []
                for j, (offset, reach) in enumerate(bounds):
                    high = bisect_right(times, at - offset)
                    low = bisect_right(times, at - reach)
                    counts[j][i] = high - low
                    tallies.append(str(high - low))
                    if sums:
                        total = sums[j][i] = totals[high] - totals[low]
                        tallies.append(_parts(total))
                token = f"{prefix}{place}" if tokens is None else tokens[i]
                value = f"{amounts[i]}:{token}:{'T' if sums else 'C'}{' '.join(tallies)}{carry}"
                carry = ""
                if newest is None or at > newest:
                    newest = at
                if first is None or at < first:
                    first = at
            first_seen[i] = first
            if tokens is None:
                args += (ids[i], at, value)
            else:
                args += (ids[i], at, value, tokens[i])
        copy.version, copy.pending = None, f"{self.nonce}.{number}"
        copy.newest, copy.first = newest, first
        return args

    def read(self, runs: list[int], reply: bytes) -> None:
        """Read the reply of a script call over ``runs``."""
        fields = reply.split()
        pos = 0
        ats, statuses, first_seen = self.ats, self.statuses, self.first_seen
        counts, sums, totals = self.counts, self.sums, self.totals
        k = len(counts)
        width = 1 + (5 if totals else 1) * k
        for number in runs:
            copy, mode = self.copy[number], self.modes[number]
            if fields[pos] == b"v":
                pos += 1
                if copy is not None:
                    with self.copies.lock:
                        self.copies.commit(copy, f"{self.nonce}.{number}", self.keep)
                continue
            first = None if fields[pos] == b"-" else int(fields[pos])
            pos += 1
            for i in self.items[number][1]:
                code = fields[pos]
                if code == b"0":
                    statuses[i] = Status.NEW
                    at = ats[i]
                    if first is None or at < first:
                        first = at
                    if totals:
                        for j in range(k):
                            p = pos + 1 + 5 * j
                            counts[j][i] = int(fields[p])
                            sums[j][i] = (((int(fields[p + 1]) * _LIMB + int(fields[p + 2]))
                                           * _LIMB + int(fields[p + 3])) * _LIMB
                                          + int(fields[p + 4]))
                    else:
                        for j in range(k):
                            counts[j][i] = int(fields[pos + 1 + j])
                else:
                    statuses[i] = _STATUS[int(code)]
                    for column in counts:
                        column[i] = 0
                    for column in sums:
                        column[i] = 0
                first_seen[i] = first
                pos += width
            if mode != "-" and copy is not None:  # the pool's windows follow
                with self.copies.lock:
                    pos = self.copies.told(copy, fields, pos + 1, mode != "+")
