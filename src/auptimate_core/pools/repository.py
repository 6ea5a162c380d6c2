"""The ledger's only view of storage: :class:`LedgerRepository` and its :class:`LedgerSession`.

The :class:`~auptimate_core.PoolLedger` holds every rule (who may do what, how money splits,
idempotency, the hash chain); a repository only stores and finds what the ledger hands it, in
units of work that commit entirely or not at all. A new backend implements these two protocols
and passes :class:`auptimate_core.testing.ledger_contract.LedgerContract`.

A unit of work is a function ``body(session) -> result``. :meth:`LedgerRepository.write` may run
it more than once (after a conflict with another writer it rolls back and retries), so ``body``
must have no effect other than through the session. The ledger never reads back what it wrote
in the same unit of work.

The change feed lives in the same storage: a unit of work that changes anything ends with
:meth:`LedgerSession.publish`, and the repository writes the event to the feed in that unit of
work, at the next position, so that positions follow the order of the commits (see
:mod:`auptimate_core.pools.changes`).

What a write costs is what it reads and writes here. An admission, an investment or a refund
reads the pool, the investor, their holding and the idempotency key's receipt, and writes the
pool's record, one entry, one holding and the receipt: nothing that grows with the pool. A
session may answer those four reads in one go (:class:`MemberSession`); one that does not
answers them one by one. A fee or a distribution reads and writes every member it touches.

A batch (:meth:`~auptimate_core.PoolLedger.batch`) is one unit of work for many commands: it
locks the pools it touches in the order of their ids, reads what its commands need in one go
(:class:`BatchSession`; one call at a time on a session without it), calls :meth:`append` once
per command and :meth:`publish` once per change, in the order of the commands. A session may
write those appends and changes together (multi-row statements on SQL).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Final, Protocol, TypeVar, runtime_checkable

import attrs

from ..clock import Clock
from ..domain import Investor, Pool
from ..ranking import InvestorRank
from .audit import Entry
from .changes import FeedWatch, Recorded
from .events import LedgerEvent
from .position import Amounts

T = TypeVar("T")

RANKED: Final = ("investment", "refund")
"""The entry kinds a repository's ranking reads: what an investor invested is investments less
refunds (:mod:`auptimate_core.ranking.invested`)."""


@attrs.frozen(slots=True)
class PoolRecord:
    """A pool as stored: its definition, the head of its chain and its totals."""

    pool: Pool
    head_seq: int
    head_hash: str
    totals: Amounts


@attrs.frozen(slots=True)
class Receipt:
    """What an idempotency key was first used for, and where its entries are.

    ``fingerprint`` identifies the request; the result is entries ``first_seq`` to
    ``first_seq + count - 1`` of pool ``pool_id``.
    """

    key: str
    fingerprint: str
    action: str
    pool_id: str
    first_seq: int
    count: int


@attrs.frozen(slots=True)
class MemberRead:
    """What a write about one member of a pool reads: the pool's record (held against other
    writers), whether the investor is registered, their holding in the pool and the idempotency
    key's receipt (each None when there is none)."""

    record: PoolRecord
    registered: bool
    holding: Amounts | None
    receipt: Receipt | None


@attrs.frozen(slots=True)
class BatchRead:
    """What a batch reads before its commands run: the records of the pools found (locked),
    the investors found registered, the holdings found (by pool and investor id) and the
    receipts of the keys found (by key). What was asked for and is missing is not there."""

    records: Mapping[str, PoolRecord]
    registered: frozenset[str]
    holdings: Mapping[tuple[str, str], Amounts]
    receipts: Mapping[str, Receipt]


class LedgerSession(Protocol):
    """Reads and writes inside one unit of work."""

    def investor(self, investor_id: str) -> Investor | None:
        """The registered investor, or None."""

    def pool(self, pool_id: str, *, lock: bool = False) -> PoolRecord | None:
        """The pool's record, or None. ``lock=True`` (in a write) holds the pool against other
        writers until the unit of work ends, so no two writes to one pool interleave."""

    def pools(self) -> list[PoolRecord]:
        """Every pool, by id."""

    def holdings(self, pool_id: str) -> dict[str, Amounts]:
        """The pool's members and their totals (empty for an unknown pool)."""

    def holding(self, pool_id: str, investor_id: str) -> Amounts | None:
        """One member's totals in the pool, or None when they are not a member."""

    def memberships(self, investor_id: str) -> list[tuple[PoolRecord, Amounts]]:
        """Every pool the investor is a member of, by pool id, with their totals there."""

    def receipt(self, key: str) -> Receipt | None:
        """What the idempotency key was used for, or None."""

    def entries(self, pool_id: str | None = None, first_seq: int = 1,
                last_seq: int | None = None) -> Iterator[Entry]:
        """Entries as stored, ordered by pool id then number; ``pool_id=None`` for all pools."""

    def top_investors(self, n: int) -> list[InvestorRank]:
        """The top investors ranking (:func:`~auptimate_core.top_investors`) over the
        ``investment`` entries of every pool."""

    def add_investor(self, investor: Investor) -> None:
        """Store a new investor."""

    def add_pool(self, record: PoolRecord, entry: Entry) -> None:
        """Store a new pool and the first entry of its chain."""

    def append(self, record: PoolRecord, entries: Sequence[Entry],
               holdings: Mapping[str, Amounts], receipt: Receipt | None) -> None:
        """Append ``entries`` to the pool's chain, replace its record (new head and totals),
        insert or replace the members in ``holdings`` and keep ``receipt``."""

    def publish(self, event: LedgerEvent, clock: Clock) -> None:
        """Add ``event`` to the change feed when this unit of work commits: at the position
        after every change committed before it, stamped with ``clock.now()`` read once that
        position is assigned. Called after the unit of work's other writes: once, or once per
        change of a batch (the changes then take consecutive positions, in the order of the
        calls)."""

    def feed_head(self) -> int:
        """The position of the last change in the feed (0 when it is empty)."""

    def changes(self, after: int, limit: int) -> list[Recorded]:
        """Up to ``limit`` changes of the feed after position ``after``, in order."""


@runtime_checkable
class MemberSession(Protocol):
    """A session that reads what a write about one member needs in one go (one statement on
    SQL) rather than in four calls. Optional: the ledger makes the four calls on a session
    without it."""

    def member(self, pool_id: str, investor_id: str, key: str | None) -> MemberRead | None:
        """The pool (locked, as ``pool(pool_id, lock=True)``), whether the investor is
        registered, their holding and the receipt of ``key`` (None for no key), all as of after
        the lock; None when the pool does not exist."""


@runtime_checkable
class BatchSession(Protocol):
    """A session that reads what a batch needs in a few statements rather than one call per
    command. Optional: the ledger makes the calls one at a time on a session without it."""

    def batch(self, pool_ids: Collection[str], investor_ids: Collection[str],
              pairs: Collection[tuple[str, str]], keys: Collection[str]) -> BatchRead:
        """Lock the pools ``pool_ids`` (as ``pool(pool_id, lock=True)``, in the order of their
        ids), then read which of ``investor_ids`` are registered, the holdings of ``pairs``
        (pool id, investor id) and the receipts of ``keys``, as of after the locks."""


class LedgerRepository(Protocol):
    """Storage for a ledger: units of work over a :class:`LedgerSession`, and its feed."""

    @property
    def identity(self) -> str:
        """The ledger's identity (16 hexadecimal digits), made with its storage and kept in
        it: every process opening the same storage reads the same one."""

    def watch(self) -> FeedWatch:
        """A wake-up for a follower of the feed (see :class:`~.changes.FeedWatch`)."""

    def read(self, body: Callable[[LedgerSession], T]) -> T:
        """Run ``body`` on a consistent view of committed data and return its result."""

    def write(self, body: Callable[[LedgerSession], T],
              on_commit: Callable[[T], object] | None = None) -> T:
        """Run ``body`` and commit what it wrote, all or nothing; return its result.

        If ``body`` raises, nothing is written and the error propagates. ``on_commit(result)``
        runs once the commit has succeeded, and the calls of ``on_commit`` follow the order of
        the commits made through this repository object.
        """

    def close(self) -> None:
        """Release connections (the repository is not used afterwards)."""
