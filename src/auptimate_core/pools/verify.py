"""The ledger's audit: every pool's hash chain and stored positions, in one consistent read.

:class:`~.audit.AuditChain` checks one pool; :func:`verify` walks every pool with it, so that an
edited, deleted or reordered entry, an edited position or manager, and entries of a pool that
no longer exists are all found (:class:`~auptimate_core.errors.AuditError` naming the pool and
entry at fault). ``O(entries + members)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from ..errors import AuditError
from .audit import AuditChain, Entry
from .position import Amounts
from .repository import LedgerRepository, LedgerSession, PoolRecord


def verify(repository: LedgerRepository, chain: AuditChain) -> int:
    """Check every pool of ``repository`` with ``chain``; return the entries checked."""

    def body(session: LedgerSession) -> int:
        records = {record.pool.id: record for record in session.pools()}
        # Everything but the entries first: no other query runs while they stream.
        members = {pool_id: session.holdings(pool_id) for pool_id in records}
        seen: set[str] = set()
        checked = 0
        for pool_id, entries in itertools.groupby(session.entries(), key=lambda e: e.pool_id):
            record = records.get(pool_id)
            if record is None:
                raise AuditError(f"entries of pool {pool_id!r} remain but the pool does not")
            seen.add(pool_id)
            checked += _check(chain, record, entries, members[pool_id])
        for pool_id in sorted(records.keys() - seen):
            checked += _check(chain, records[pool_id], iter(()), members[pool_id])
        return checked

    return repository.read(body)


def _check(chain: AuditChain, record: PoolRecord, entries: Iterable[Entry],
           members: Mapping[str, Amounts]) -> int:
    return chain.check(record.pool, record.head_seq, record.head_hash, record.totals, entries,
                       members)
