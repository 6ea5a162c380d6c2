"""The ledger's audit: every stored row that can change an answer, in one consistent read.

:class:`~.audit.AuditChain` checks one pool's chain; :func:`verify` walks every pool with it and
checks, beside the chains:

- the pools (definition, head, totals) and the members' positions against a replay of the
  entries, and each pool's head against its mark when the storage keeps one (with a key, a
  chain cut short and its head wound back to an earlier entry no longer passes);
- the idempotency receipts: each points at the first entry of one write of its pool, covers
  exactly that write's entries (all of the action's kinds, one time, one actor), carries the
  fingerprint of that request and its mark; every transaction entry is covered by exactly one
  receipt (a deleted receipt, which would let a retry write twice, is found, and so is one
  re-pointed at another investor's transaction or left pointing past the chain);
- the investors: each against its mark, and every member of a pool is a registered investor.

A row that cannot be read as a value is an :class:`~auptimate_core.errors.AuditError` naming the
table, the row and what is wrong. Receipts and investors are read through the optional
:class:`AuditSession` (the SQL ledger's sessions have it; the in-memory ledger, which no other
program can edit, checks its chains and positions only). Rows written before the marks existed
have none: without a key they are checked without one, with a key a missing mark is an error.
``O(entries + members + receipts + investors)``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, runtime_checkable

from ..domain import Investor, to_micros
from ..errors import AuditError, AuptimateError
from .audit import ADMIT, CREATE, AuditChain, Entry
from .position import Amounts
from .repository import LedgerRepository, LedgerSession, PoolRecord, Receipt
from .unit import fingerprint, plain

_KINDS_OF_ACTION = {
    "invest": frozenset({"investment"}),
    "refund": frozenset({"refund"}),
    "charge_fee": frozenset({"fee"}),
    "distribute": frozenset({"distribution", "carry"}),
}
_ONE_ENTRY = frozenset({"invest", "refund"})


class AuditRows(Protocol):
    """Every stored row the audit checks, each read as a value or refused with an
    :class:`~auptimate_core.errors.AuditError` naming its table, row and column; marks are
    None where a row has none."""

    def investors(self) -> list[tuple[Investor, str | None]]:
        """Every investor with its mark."""

    def pools(self) -> list[tuple[PoolRecord, str | None]]:
        """Every pool's record with its head's mark, by pool id."""

    def holdings(self) -> dict[str, dict[str, Amounts]]:
        """Every membership's totals, by pool id then investor id."""

    def entries(self) -> Iterator[Entry]:
        """Every entry, by pool id then number."""

    def receipts(self) -> list[tuple[Receipt, str | None]]:
        """Every idempotency receipt with its mark."""


@runtime_checkable
class AuditSession(Protocol):
    """A session whose storage can be edited by other programs, read whole for the audit."""

    def audit_rows(self) -> AuditRows:
        """The checked reads of every table, in this session's transaction."""


def verify(repository: LedgerRepository, chain: AuditChain) -> int:
    """Check every row of ``repository`` with ``chain`` (see the module); return the number of
    entries checked. Raises :class:`~auptimate_core.errors.AuditError` at the first fault."""

    def body(session: LedgerSession) -> int:
        if isinstance(session, AuditSession):
            return _verify_rows(session.audit_rows(), chain)
        return _verify_chains(session, chain)

    return repository.read(body)


def _verify_chains(session: LedgerSession, chain: AuditChain) -> int:
    """The chains and positions of a session without :class:`AuditSession`."""
    records = {record.pool.id: record for record in session.pools()}
    # Everything but the entries first: no other query runs while they stream.
    members = {pool_id: session.holdings(pool_id) for pool_id in records}
    return sum(_check(chain, record, entries, members[record.pool.id])
               for record, entries in _by_pool(records, session.entries()))


def _verify_rows(rows: AuditRows, chain: AuditChain) -> int:
    investors = _check_investors(rows.investors(), chain)
    pools = rows.pools()
    records = {record.pool.id: record for record, _ in pools}
    for head, mark in pools:
        _check_mark(chain, mark, chain.head_mark(head.pool.id, head.head_seq, head.head_hash),
                    f"table 'pools', row id={head.pool.id!r}: column 'head_mark'",
                    "the head was edited, or entries deleted and the head wound back")
    members = rows.holdings()
    for pool_id, held in members.items():
        for investor_id in held:
            if investor_id not in investors:
                raise AuditError(f"table 'members', row pool_id={pool_id!r}, "
                                 f"investor_id={investor_id!r}: no such investor is "
                                 "registered (investor deleted or renamed)")
    receipts: dict[str, list[tuple[Receipt, str | None]]] = {}
    for receipt, mark in rows.receipts():
        if receipt.pool_id not in records:
            raise AuditError(f"table 'receipts', row key={receipt.key!r}: its pool "
                             f"{receipt.pool_id!r} does not exist")
        receipts.setdefault(receipt.pool_id, []).append((receipt, mark))
    checked = 0
    for record, entries in _by_pool(records, rows.entries()):
        pool_id = record.pool.id
        writes = _Writes(chain, pool_id, receipts.get(pool_id, []))
        checked += _check(chain, record, writes.watch(entries), members.get(pool_id, {}))
        writes.end()
    return checked


def _by_pool(records: Mapping[str, PoolRecord],
             entries: Iterable[Entry]) -> Iterator[tuple[PoolRecord, Iterator[Entry]]]:
    """Each pool's record with its entries as they stream (grouped by pool id; each group must
    be read before the next is drawn), then each pool without entries with none, which its
    chain's check refuses. Entries of a pool that does not exist are an
    :class:`~auptimate_core.errors.AuditError`."""
    seen: set[str] = set()
    for pool_id, group in itertools.groupby(entries, key=lambda e: e.pool_id):
        record = records.get(pool_id)
        if record is None:
            raise AuditError(f"entries of pool {pool_id!r} remain but the pool does not")
        seen.add(pool_id)
        yield record, group
    for pool_id in sorted(records.keys() - seen):
        yield records[pool_id], iter(())


def _check_investors(found: Iterable[tuple[Investor, str | None]],
                     chain: AuditChain) -> set[str]:
    ids = set()
    for investor, mark in found:
        _check_mark(chain, mark, chain.investor_mark(investor),
                    f"table 'investors', row id={investor.id!r}: column 'hash'",
                    "the investor's id, name or e-mail was edited")
        ids.add(investor.id)
    return ids


def _check_mark(chain: AuditChain, mark: str | None, expected: str, where: str,
                meaning: str) -> None:
    if mark is None:
        if chain.keyed:
            raise AuditError(f"{where}: the row has no mark (written before marks were kept, "
                             "or the mark was removed)")
        return
    if mark != expected:
        raise AuditError(f"{where}: the mark does not match: {meaning}")


def _check(chain: AuditChain, record: PoolRecord, entries: Iterable[Entry],
           members: Mapping[str, Amounts]) -> int:
    try:
        return chain.check(record.pool, record.head_seq, record.head_hash, record.totals,
                           entries, members)
    except AuditError:
        raise
    except (AuptimateError, ValueError, TypeError, ArithmeticError, KeyError) as error:
        # A replay of edited amounts beyond every bound, an unknown kind's totals...
        raise AuditError(f"pool {record.pool.id!r}: its entries cannot be replayed "
                         f"({type(error).__name__}: {error}): edited outside the ledger"
                         ) from None


class _Writes:
    """Checks one pool's receipts against its entries as they stream by: every transaction
    entry belongs to the write of exactly one receipt, which starts at that write's first entry
    and covers it whole."""

    def __init__(self, chain: AuditChain, pool_id: str,
                 receipts: list[tuple[Receipt, str | None]]) -> None:
        self._chain = chain
        self._pool_id = pool_id
        self._pending = deque(sorted(receipts, key=lambda pair: pair[0].first_seq))
        self._open: Receipt | None = None
        self._entries: list[Entry] = []

    def watch(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        last = 0
        for entry in entries:
            yield entry  # the chain's check first: it names edits, gaps and reorders
            if entry.seq > last:
                self._see(entry)
                last = entry.seq

    def _where(self, receipt: Receipt) -> str:
        return f"table 'receipts', row key={receipt.key!r}"

    def _misplaced(self, why: str) -> AuditError:
        """The error naming the next pending receipt, which points at an entry of this pool that
        no write of it starts (``why`` says what is there)."""
        bad = self._pending[0][0]
        return AuditError(f"{self._where(bad)}: points at entry {bad.first_seq} of pool "
                          f"{self._pool_id!r}, {why}")

    def _see(self, entry: Entry) -> None:
        receipt = self._open
        if receipt is not None:
            self._add(receipt, entry)
            return
        if self._pending and self._pending[0][0].first_seq < entry.seq:
            raise self._misplaced("which does not start a write of it (re-pointed or edited)")
        if self._pending and self._pending[0][0].first_seq == entry.seq:
            receipt, mark = self._pending.popleft()
            _check_mark(self._chain, mark, self._chain.receipt_mark(
                receipt.key, receipt.fingerprint, receipt.action, receipt.pool_id,
                receipt.first_seq, receipt.count, entry.hash),
                f"{self._where(receipt)}: column 'hash'",
                "the receipt was edited or re-pointed")
            if receipt.action not in _KINDS_OF_ACTION:
                raise AuditError(f"{self._where(receipt)}: unknown action {receipt.action!r}")
            if receipt.count < 1 or (receipt.action in _ONE_ENTRY and receipt.count != 1):
                raise AuditError(f"{self._where(receipt)}: a {receipt.action} of "
                                 f"{receipt.count} entries")
            self._open, self._entries = receipt, []
            self._add(receipt, entry)
            return
        if entry.kind not in (CREATE, ADMIT):
            raise AuditError(f"pool {self._pool_id!r}: entry {entry.seq} ({entry.kind}) has no "
                             "idempotency receipt (receipt deleted or re-pointed): a retry of "
                             "its request would be written again")

    def _add(self, receipt: Receipt, entry: Entry) -> None:
        first = self._entries[0] if self._entries else entry
        if (entry.kind not in _KINDS_OF_ACTION[receipt.action] or entry.at != first.at
                or entry.actor != first.actor):
            raise AuditError(f"{self._where(receipt)}: covers entry {entry.seq} of pool "
                             f"{self._pool_id!r}, which is not part of its {receipt.action} "
                             "(count or first entry edited)")
        self._entries.append(entry)
        if len(self._entries) == receipt.count:
            self._close(receipt)

    def _close(self, receipt: Receipt) -> None:
        entries, self._open, self._entries = self._entries, None, []
        if receipt.action == "distribute":
            return  # the carry rate asked for is not in the entries: the mark covers it
        first = entries[0]
        total = plain(sum((e.amount for e in entries), start=first.amount * 0))
        if receipt.action == "charge_fee":
            fields: tuple[object, ...] = (self._pool_id, total, first.actor)
        else:
            fields = (self._pool_id, first.investor_id, total, first.actor)
        expected = {fingerprint(receipt.action, *fields, at)
                    for at in (None, to_micros(first.at))}
        if receipt.fingerprint not in expected:
            raise AuditError(f"{self._where(receipt)}: its fingerprint is not that of the "
                             f"{receipt.action} it points at (edited or re-pointed)")

    def end(self) -> None:
        """Raise for a receipt that covers more than the chain holds or points past it."""
        if self._open is not None:
            raise AuditError(f"{self._where(self._open)}: covers entries past the end of pool "
                             f"{self._pool_id!r}'s chain")
        if self._pending:
            raise self._misplaced("past the end of its chain (a leftover receipt: its entries "
                                  "were deleted)")
