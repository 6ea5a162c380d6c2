"""The in-memory ledger repository: dictionaries behind one lock.

Writes of a unit of work are buffered and applied together once the body returns, so a body
that raises leaves nothing behind. Every unit of work holds the lock from start to end: the
repository is safe to share between threads, and writes are serialised (one at a time). The
change feed is a list appended under that lock, so its positions follow the commits; followers
wait on a condition of the same lock, notified by every write that published a change.

Complexity: a write touching ``k`` members is ``O(k)`` plus ``O(log m)`` per investment for the
ranking of ``m`` investors; ``holdings`` of a pool is ``O(members)``; ``holding`` of one member
and ``member`` (the four reads of a one-member write) are ``O(1)``; ``batch`` is ``O(1)`` per
pool, investor, holding and key asked for; ``memberships`` of an
investor is ``O(their pools)``; ``entries`` of a pool is ``O(entries)``; ``top_investors(n)`` is
``O(log m + n)`` (an incremental :class:`~auptimate_core.TopInvestors`).

>>> repo = MemoryLedgerRepository()
>>> repo.read(lambda session: session.pools())
[]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from ..clock import Clock
from ..domain import Investor
from ..errors import InvalidURL, ValidationError
from ..ranking import InvestorRank, TopInvestors
from ..urls import redact
from .audit import Entry
from .changes import Recorded, new_identity
from .events import LedgerEvent
from .position import Amounts
from .repository import RANKED, BatchRead, LedgerSession, MemberRead, PoolRecord, Receipt

T = TypeVar("T")


class _State:
    __slots__ = ("entries", "feed", "holdings", "investors", "memberships", "pools", "ranking",
                 "receipts")

    def __init__(self) -> None:
        self.investors: dict[str, Investor] = {}
        self.pools: dict[str, PoolRecord] = {}
        self.holdings: dict[str, dict[str, Amounts]] = {}
        self.memberships: dict[str, set[str]] = {}
        self.entries: dict[str, list[Entry]] = {}
        self.receipts: dict[str, Receipt] = {}
        self.ranking = TopInvestors(kinds=RANKED)
        self.feed: list[Recorded] = []


class _Session:
    """A unit of work: reads from the committed state, buffers writes until :meth:`apply`."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._pending: list[Callable[[], None]] = []

    def investor(self, investor_id: str) -> Investor | None:
        return self._state.investors.get(investor_id)

    def pool(self, pool_id: str, *, lock: bool = False) -> PoolRecord | None:
        return self._state.pools.get(pool_id)

    def pools(self) -> list[PoolRecord]:
        return [self._state.pools[key] for key in sorted(self._state.pools)]

    def holdings(self, pool_id: str) -> dict[str, Amounts]:
        return dict(self._state.holdings.get(pool_id, {}))

    def holding(self, pool_id: str, investor_id: str) -> Amounts | None:
        return self._state.holdings.get(pool_id, {}).get(investor_id)

    def member(self, pool_id: str, investor_id: str, key: str | None) -> MemberRead | None:
        state = self._state
        record = state.pools.get(pool_id)
        if record is None:
            return None
        return MemberRead(record, investor_id in state.investors,
                          state.holdings[pool_id].get(investor_id),
                          None if key is None else state.receipts.get(key))

    def batch(self, pool_ids: Collection[str], investor_ids: Collection[str],
              pairs: Collection[tuple[str, str]], keys: Collection[str]) -> BatchRead:
        state = self._state
        pools, holdings, receipts = state.pools, state.holdings, state.receipts
        records = {p: pools[p] for p in pool_ids if p in pools}
        found = {}
        for pool_id, investor_id in pairs:
            held = holdings.get(pool_id, {}).get(investor_id)
            if held is not None:
                found[pool_id, investor_id] = held
        return BatchRead(records, frozenset(i for i in investor_ids if i in state.investors),
                         found, {k: receipts[k] for k in keys if k in receipts})

    def memberships(self, investor_id: str) -> list[tuple[PoolRecord, Amounts]]:
        state = self._state
        return [(state.pools[pool_id], state.holdings[pool_id][investor_id])
                for pool_id in sorted(state.memberships.get(investor_id, ()))]

    def receipt(self, key: str) -> Receipt | None:
        return self._state.receipts.get(key)

    def entries(self, pool_id: str | None = None, first_seq: int = 1,
                last_seq: int | None = None) -> Iterator[Entry]:
        chains = self._state.entries
        for key in sorted(chains) if pool_id is None else (pool_id,):
            chain = chains.get(key, [])
            # Entries are found by position, which stays right while nothing edits the lists.
            yield from chain[first_seq - 1: None if last_seq is None else last_seq]

    def top_investors(self, n: int) -> list[InvestorRank]:
        return self._state.ranking.top(n)

    def add_investor(self, investor: Investor) -> None:
        self._pending.append(lambda: self._state.investors.__setitem__(investor.id, investor))

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        def apply() -> None:
            state = self._state
            state.pools[record.pool.id] = record
            state.holdings[record.pool.id] = {}
            state.entries[record.pool.id] = [entry]

        self._pending.append(apply)

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        entries, holdings = list(entries), dict(holdings)

        def apply() -> None:
            state = self._state
            pool_id = record.pool.id
            state.pools[pool_id] = record
            state.entries[pool_id].extend(entries)
            members = state.holdings[pool_id]
            for investor_id, held in holdings.items():
                members[investor_id] = held
                state.memberships.setdefault(investor_id, set()).add(pool_id)
            if receipt is not None:
                state.receipts[receipt.key] = receipt
            state.ranking.add_many(e.transaction() for e in entries if e.kind in RANKED)

        self._pending.append(apply)

    def publish(self, event: LedgerEvent, clock: Clock) -> None:
        feed = self._state.feed
        self._pending.append(lambda: feed.append(Recorded(len(feed) + 1, clock.now(), event)))

    def feed_head(self) -> int:
        return len(self._state.feed)

    def changes(self, after: int, limit: int) -> list[Recorded]:
        return self._state.feed[after:after + limit]

    def apply(self) -> None:
        for change in self._pending:
            change()
        self._pending.clear()


class _Watch:
    """Waits on the repository's condition until its feed grows past a position."""

    def __init__(self, changed: threading.Condition, state: _State) -> None:
        self._changed = changed
        self._state = state

    def wait(self, after: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: len(self._state.feed) > after, timeout)

    def close(self) -> None:
        pass


class MemoryLedgerRepository:
    """Ledger storage in this process's memory (see the module notes). Thread-safe."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._identity = new_identity()

    @classmethod
    def from_url(cls, url: str, **options: object) -> MemoryLedgerRepository:
        """A new, empty repository for ``memory://`` (it takes no options)."""
        if urlsplit(url).query:
            shown = redact(url)
            raise InvalidURL(shown, f"{shown!r}: memory:// takes no options")
        if options:
            raise ValidationError("options", f"memory:// takes no options, not {sorted(options)}")
        return cls()

    @property
    def identity(self) -> str:
        return self._identity

    def watch(self) -> _Watch:
        return _Watch(self._changed, self._state)

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        with self._lock:
            return body(_Session(self._state))

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        with self._lock:
            session = _Session(self._state)
            result = body(session)
            session.apply()
            self._changed.notify_all()
            if on_commit is not None:
                on_commit(result)
            return result

    def close(self) -> None:
        pass
