"""The audit trail: each pool's entries form an append-only hash chain.

Every change to a pool (its creation, each admission, each transaction) is an :class:`Entry`
numbered from 1 in the pool, carrying the hash of the entry before it (:data:`GENESIS` for the
first) and its own hash: SHA-256 over a canonical encoding of all its fields, that previous hash
included (HMAC-SHA-256 when the ledger is given a secret ``audit_key``). The pool's record keeps
the number and hash of its last entry. :meth:`AuditChain.check` walks a pool's entries and finds

- an edited entry (its hash no longer matches its fields),
- a deleted, inserted or reordered entry (a gap in the numbers, or a previous hash that is not the
  hash of the entry before it), a deleted last entry (the pool's head no longer matches),
- positions or totals edited apart from the entries (they differ from a replay of the entries).

Without a key anyone able to write the database can rebuild a consistent chain; with a secret
key they cannot, and publishing each pool's head hash somewhere else anchors it either way.

Beside the chain, storage that other programs can write (SQL) keeps *marks* made with the same
key (:meth:`AuditChain.mark`): over each pool's head (its number and hash, so that deleting the
last entries and winding the head back to an earlier entry is found when there is a key), over
each idempotency receipt and the hash of the entry it points to (a receipt re-pointed, re-keyed
or edited is found), and over each investor. :mod:`.verify` checks them all.

>>> from datetime import datetime, timezone
>>> chain = AuditChain()
>>> at = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> first = chain.seal("p1", 1, "create", "m1", Decimal(0), at, "m1", "{}", GENESIS)
>>> chain.digest(first) == first.hash
True
>>> chain.digest(attrs.evolve(first, actor="mallory")) == first.hash
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

import attrs

from ..domain import KINDS, Investor, Pool, Transaction, to_micros
from ..errors import AuditError
from .position import Amounts

GENESIS: Final = "0" * 64
"""The previous hash of a pool's first entry."""

CREATE: Final = "create"
ADMIT: Final = "admit"
ENTRY_KINDS: Final = frozenset({CREATE, ADMIT}) | KINDS
_VERSION: Final = 1


def transaction_id(pool_id: str, seq: int) -> str:
    """The id of the transaction recorded as entry ``seq`` of ``pool_id``: unique ledger-wide.

    >>> transaction_id("fund-a", 7)
    'fund-a:7'
    """
    return f"{pool_id}:{seq}"


# The canonical JSON of what is hashed, by one encoder made once (json.dumps with options
# builds a new one at every call).
_canonical = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def pool_detail(pool: Pool) -> str:
    """The canonical text of a pool's definition, sealed into its ``create`` entry."""
    return json.dumps({"currency": pool.currency, "manager_id": pool.manager_id,
                       "name": pool.name}, sort_keys=True, separators=(",", ":"))


@attrs.frozen(slots=True)
class Entry:
    """One sealed entry of a pool's chain.

    ``kind`` is ``create``, ``admit`` or a transaction kind; ``investor_id`` is the investor
    concerned (the manager for ``create`` and ``carry``); ``amount`` is zero for ``create`` and
    ``admit``; ``detail`` holds the pool's definition in a ``create`` entry.
    """

    pool_id: str
    seq: int
    kind: str
    investor_id: str
    amount: Decimal
    at: datetime
    actor: str
    detail: str
    prev_hash: str
    hash: str

    @property
    def is_transaction(self) -> bool:
        return self.kind in KINDS

    @property
    def transaction_id(self) -> str:
        return transaction_id(self.pool_id, self.seq)

    def transaction(self) -> Transaction:
        """The transaction this entry records (only for transaction kinds)."""
        return Transaction(self.transaction_id, self.investor_id, self.pool_id, self.amount,
                           self.at, self.kind)


class AuditChain:
    """Seals and checks entries; with ``key`` the hashes are HMAC-SHA-256 under that secret.

    Stateless apart from the key: safe to share between threads.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and (not isinstance(key, bytes) or not key):
            raise ValueError("audit_key: must be non-empty bytes or None")
        self._key = key

    def _hash(self, payload: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(payload).hexdigest()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    @staticmethod
    def encode(pool_id: str, seq: int, kind: str, investor_id: str, amount: Decimal,
               at: datetime, actor: str, detail: str, prev_hash: str) -> bytes:
        """The canonical bytes hashed for an entry (a JSON array, amounts and times exact)."""
        fields = [_VERSION, pool_id, seq, kind, investor_id, format(amount, "f"),
                  to_micros(at), actor, detail, prev_hash]
        return _canonical(fields).encode()

    def seal(self, pool_id: str, seq: int, kind: str, investor_id: str, amount: Decimal,
             at: datetime, actor: str, detail: str, prev_hash: str) -> Entry:
        """A new entry with its hash computed."""
        payload = self.encode(pool_id, seq, kind, investor_id, amount, at, actor, detail,
                              prev_hash)
        return Entry(pool_id, seq, kind, investor_id, amount, at.astimezone(UTC), actor, detail,
                     prev_hash, self._hash(payload))

    def digest(self, entry: Entry) -> str:
        """The hash ``entry`` should carry, recomputed from its fields."""
        return self._hash(self.encode(entry.pool_id, entry.seq, entry.kind, entry.investor_id,
                                      entry.amount, entry.at, entry.actor, entry.detail,
                                      entry.prev_hash))

    @property
    def keyed(self) -> bool:
        """Whether the hashes are HMACs under a secret key."""
        return self._key is not None

    def mark(self, what: str, *fields: str | int | None) -> str:
        """The mark of a stored row: a hash (an HMAC with the key) of ``what`` and ``fields``.

        >>> chain = AuditChain(b"secret")
        >>> chain.mark("head", "p1", 3, "ab") == chain.mark("head", "p1", 2, "ab")
        False
        """
        return self._hash(_canonical([_VERSION, "mark", what, *fields]).encode())

    def head_mark(self, pool_id: str, head_seq: int, head_hash: str) -> str:
        """The mark of a pool's head: entry ``head_seq`` with hash ``head_hash`` is its last."""
        return self.mark("head", pool_id, head_seq, head_hash)

    def investor_mark(self, investor: Investor) -> str:
        """The mark of a registered investor's row."""
        return self.mark("investor", investor.id, investor.name, investor.email)

    def receipt_mark(self, key: str, fingerprint: str, action: str, pool_id: str,
                     first_seq: int, count: int, first_hash: str) -> str:
        """The mark of an idempotency receipt, bound to the hash of the first entry it gives."""
        return self.mark("receipt", key, fingerprint, action, pool_id, first_seq, count,
                         first_hash)

    def check(self, pool: Pool, head_seq: int, head_hash: str, totals: Amounts,
              entries: Iterable[Entry], holdings: Mapping[str, Amounts]) -> int:
        """Check one pool's chain against its record; return the number of entries checked.

        ``entries`` must come in the order stored (by number). Raises :class:`AuditError`
        naming the pool and the first entry that does not verify. ``O(entries + members)``.
        """
        where = f"pool {pool.id!r}"
        prev, seq = GENESIS, 0
        replayed: dict[str, Amounts] = {}
        replayed_totals = Amounts.zero(pool.currency)
        for entry in entries:
            seq += 1
            if entry.pool_id != pool.id:
                raise AuditError(f"{where}: entry {seq} belongs to pool {entry.pool_id!r}")
            if entry.seq != seq:
                raise AuditError(f"{where}: entry {seq} is missing or out of order "
                                 f"(found entry {entry.seq} in its place)")
            if entry.prev_hash != prev:
                raise AuditError(f"{where}: entry {seq} does not follow entry {seq - 1} "
                                 "(its previous hash differs): entries deleted or reordered")
            if self.digest(entry) != entry.hash:
                raise AuditError(f"{where}: entry {seq} was altered (its hash does not match)")
            replayed_totals = _replay(where, pool, entry, replayed, replayed_totals)
            prev = entry.hash
        if seq == 0:
            raise AuditError(f"{where}: the pool has no entries: its chain was deleted")
        if seq != head_seq or prev != head_hash:
            raise AuditError(f"{where}: the chain ends at entry {seq} but the pool's head is "
                             f"entry {head_seq}: entries deleted or the head edited")
        _compare(where, replayed, holdings, replayed_totals, totals)
        return seq


@runtime_checkable
class MarkedStorage(Protocol):
    """A repository whose rows carry the audit's marks (see the module notes): the ledger
    hands it its chain, so the marks are made with the ledger's key."""

    def mark_with(self, chain: AuditChain) -> None:
        """Make the marks of every later write with ``chain``."""


def _replay(where: str, pool: Pool, entry: Entry, members: dict[str, Amounts],
            totals: Amounts) -> Amounts:
    """Apply ``entry`` to the replayed members; return the replayed pool totals."""
    if entry.seq == 1:
        if entry.kind != CREATE or entry.detail != pool_detail(pool):
            raise AuditError(f"{where}: entry 1 does not record the pool as it is stored "
                             "(manager, name or currency edited)")
        return Amounts.zero(pool.currency)
    if entry.kind == ADMIT:
        if entry.investor_id in members:
            raise AuditError(f"{where}: entry {entry.seq} admits {entry.investor_id!r} twice")
        members[entry.investor_id] = Amounts.zero(pool.currency)
        return totals
    if entry.kind not in KINDS:
        raise AuditError(f"{where}: entry {entry.seq} has an unknown kind {entry.kind!r}")
    if entry.kind != "carry":
        held = members.get(entry.investor_id)
        if held is None:
            raise AuditError(f"{where}: entry {entry.seq} is for {entry.investor_id!r}, "
                             "who was never admitted")
        members[entry.investor_id] = held.add(entry.kind, entry.amount)
    return totals.add(entry.kind, entry.amount)


def _compare(where: str, replayed: Mapping[str, Amounts], stored: Mapping[str, Amounts],
             replayed_totals: Amounts, totals: Amounts) -> None:
    if set(replayed) != set(stored):
        odd = sorted(set(replayed) ^ set(stored))
        raise AuditError(f"{where}: the members stored differ from the audit trail: {odd}")
    for investor_id in sorted(replayed):
        if replayed[investor_id] != stored[investor_id]:
            raise AuditError(f"{where}: the position of {investor_id!r} differs from the "
                             "audit trail (edited outside the ledger)")
    if replayed_totals != totals:
        raise AuditError(f"{where}: the pool's totals differ from the audit trail "
                         "(edited outside the ledger)")
