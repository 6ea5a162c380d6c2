"""The audit chain's fixed encoding, pinned to literal bytes and hashes.

A change to the genesis hash, the version, the field order or the encoding of one field makes
every chain already stored fail to verify; these tests fail first. Every expected value is
written out by hand (the SHA-256s once from the bytes above them, with ``hashlib`` alone).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from auptimate_core.domain import Investor, Pool
from auptimate_core.errors import AuditError
from auptimate_core.pools.audit import (
    ADMIT,
    CREATE,
    ENTRY_KINDS,
    GENESIS,
    AuditChain,
    Entry,
    pool_detail,
    transaction_id,
)
from auptimate_core.pools.position import Amounts

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))

GOLDEN_BYTES = (
    b'[1,"fund-a",3,"investment","ann","1234.50",1767315845678901,"ann","",'
    b'"0000000000000000000000000000000000000000000000000000000000000000"]'
)
GOLDEN_SHA256 = "2fe46dcbd9b1dc197cb4d313f0259847a624ea88023035ddab67d0dbfd8e53d1"
GOLDEN_HMAC = "cb11f3d7f92bad7a4592a2a5694d91f5988b650aa2878e2aa7848cd287e15b6c"


def test_genesis_and_kinds() -> None:
    assert GENESIS == "0000000000000000000000000000000000000000000000000000000000000000"
    assert (CREATE, ADMIT) == ("create", "admit")
    assert sorted(ENTRY_KINDS) == [
        "admit", "carry", "create", "distribution", "fee", "investment", "refund"]
    assert transaction_id("fund-a", 7) == "fund-a:7"


def test_golden_bytes_and_sha256_of_one_entry() -> None:
    payload = AuditChain.encode("fund-a", 3, "investment", "ann", Decimal("1234.50"), AT,
                                "ann", "", GENESIS)
    assert payload == GOLDEN_BYTES
    assert hashlib.sha256(GOLDEN_BYTES).hexdigest() == GOLDEN_SHA256
    entry = AuditChain().seal("fund-a", 3, "investment", "ann", Decimal("1234.50"), AT, "ann",
                              "", GENESIS)
    assert entry == Entry("fund-a", 3, "investment", "ann", Decimal("1234.50"),
                          datetime(2026, 1, 2, 1, 4, 5, 678901, tzinfo=UTC), "ann", "",
                          GENESIS, GOLDEN_SHA256)
    assert entry.at.tzinfo is UTC
    assert AuditChain().digest(entry) == GOLDEN_SHA256


def test_golden_hmac_under_a_key() -> None:
    assert hmac.new(b"secret", GOLDEN_BYTES, hashlib.sha256).hexdigest() == GOLDEN_HMAC
    chain = AuditChain(b"secret")
    entry = chain.seal("fund-a", 3, "investment", "ann", Decimal("1234.50"), AT, "ann", "",
                       GENESIS)
    assert entry.hash == GOLDEN_HMAC
    assert chain.digest(entry) == GOLDEN_HMAC
    assert AuditChain(b"other").digest(entry) != GOLDEN_HMAC


def test_encoding_of_text_times_before_1970_and_amounts() -> None:
    detail = pool_detail(Pool("f\u00e9", "m1", "Fund A", "EUR"))
    assert detail == '{"currency":"EUR","manager_id":"m1","name":"Fund A"}'
    payload = AuditChain.encode("f\u00e9", 1, "create", "m1", Decimal(0),
                                datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), "m1", detail,
                                GENESIS)
    assert payload == (
        b'[1,"f\xc3\xa9",1,"create","m1","0",-1000000,"m1",'
        b'"{\\"currency\\":\\"EUR\\",\\"manager_id\\":\\"m1\\",\\"name\\":\\"Fund A\\"}",'
        b'"0000000000000000000000000000000000000000000000000000000000000000"]')
    assert hashlib.sha256(payload).hexdigest() == (
        "408cc5f41dc8569c2b1b0dec901c12bc1693e95b1c27837f4b35814960c7b3df")
    # Amounts are written in full, never in exponent form, and keep their trailing zeros.
    big = AuditChain.encode("p", 2, "fee", "i", Decimal("1E+6"), AT, "m", "", "h")
    assert b',"1000000",' in big
    assert b',"0.10",' in AuditChain.encode("p", 2, "fee", "i", Decimal("0.10"), AT, "m", "",
                                            "h")


def test_key_must_be_non_empty_bytes() -> None:
    for key in (b"", "secret"):
        with pytest.raises(ValueError) as caught:
            AuditChain(key)  # type: ignore[arg-type]
        assert str(caught.value) == "audit_key: must be non-empty bytes or None"


def test_entry_transaction() -> None:
    entry = AuditChain().seal("fund-a", 3, "investment", "ann", Decimal("1234.50"), AT, "ann",
                              "", GENESIS)
    assert entry.is_transaction is True
    assert entry.transaction_id == "fund-a:3"
    tx = entry.transaction()
    assert (tx.id, tx.investor_id, tx.pool_id, tx.amount, tx.kind) == (
        "fund-a:3", "ann", "fund-a", Decimal("1234.50"), "investment")
    create = AuditChain().seal("fund-a", 1, "create", "m1", Decimal(0), AT, "m1", "{}", GENESIS)
    assert create.is_transaction is False


# -- check(): a small chain and one edit at a time ---------------------------------------------

POOL = Pool("fund-a", "m1", "Fund A", "USD")
T = datetime(2026, 1, 1, tzinfo=UTC)


def _chain(chain: AuditChain) -> list[Entry]:
    rows = [
        (CREATE, "m1", Decimal(0), "m1", pool_detail(POOL)),
        (ADMIT, "ann", Decimal(0), "m1", ""),
        ("investment", "ann", Decimal("100.00"), "ann", ""),
        ("fee", "ann", Decimal("8.00"), "m1", ""),
    ]
    out: list[Entry] = []
    prev = GENESIS
    for seq, (kind, investor, amount, actor, detail) in enumerate(rows, 1):
        entry = chain.seal(POOL.id, seq, kind, investor, amount, T + timedelta(seconds=seq),
                           actor, detail, prev)
        out.append(entry)
        prev = entry.hash
    return out


HOLDINGS = {"ann": Amounts.zero("USD").add("investment", Decimal("100.00"))
            .add("fee", Decimal("8.00"))}
TOTALS = HOLDINGS["ann"]


def _check(entries: list[Entry], head_seq: int | None = None, head_hash: str | None = None,
           holdings: dict[str, Amounts] | None = None, totals: Amounts | None = None,
           pool: Pool = POOL) -> int:
    last = entries[-1] if entries else None
    return AuditChain().check(
        pool, head_seq if head_seq is not None else (last.seq if last else 0),
        head_hash if head_hash is not None else (last.hash if last else GENESIS),
        totals if totals is not None else TOTALS, entries,
        holdings if holdings is not None else HOLDINGS)


def _refused(call: Callable[[], object], text: str) -> None:
    with pytest.raises(AuditError) as caught:
        call()
    assert str(caught.value) == text


def test_a_sound_chain_verifies() -> None:
    entries = _chain(AuditChain())
    assert _check(entries) == 4
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]


def _resealed(entries: list[Entry], index: int, **changes: object) -> list[Entry]:
    """``entries`` with entry ``index`` changed and itself and every later one re-sealed."""
    chain = AuditChain()
    out = list(entries[:index])
    prev = out[-1].hash if out else GENESIS
    for i, entry in enumerate(entries[index:]):
        if i == 0:
            entry = attrs.evolve(entry, **changes)
        e = chain.seal(entry.pool_id, entry.seq, entry.kind, entry.investor_id, entry.amount,
                       entry.at, entry.actor, entry.detail, prev)
        out.append(e)
        prev = e.hash
    return out


def test_each_break_is_named() -> None:
    entries = _chain(AuditChain())
    _refused(lambda: _check([attrs.evolve(entries[0], pool_id="other"), *entries[1:]]),
             "pool 'fund-a': entry 1 belongs to pool 'other'")
    _refused(lambda: _check([entries[0], entries[2], entries[3]]),
             "pool 'fund-a': entry 2 is missing or out of order (found entry 3 in its place)")
    _refused(lambda: _check([entries[0], attrs.evolve(entries[1], prev_hash=GENESIS),
                             *entries[2:]]),
             "pool 'fund-a': entry 2 does not follow entry 1 (its previous hash differs): "
             "entries deleted or reordered")
    _refused(lambda: _check([*entries[:2], attrs.evolve(entries[2], amount=Decimal("1.00")),
                             *entries[3:]]),
             "pool 'fund-a': entry 3 was altered (its hash does not match)")
    _refused(lambda: _check([]), "pool 'fund-a': the pool has no entries: its chain was deleted")
    _refused(lambda: _check(entries[:3], head_seq=4, head_hash=entries[3].hash),
             "pool 'fund-a': the chain ends at entry 3 but the pool's head is entry 4: "
             "entries deleted or the head edited")
    _refused(lambda: _check(entries, head_hash=entries[2].hash),
             "pool 'fund-a': the chain ends at entry 4 but the pool's head is entry 4: "
             "entries deleted or the head edited")


def test_replay_breaks_are_named() -> None:
    entries = _chain(AuditChain())
    _refused(lambda: _check(entries, pool=Pool("fund-a", "m2", "Fund A", "USD")),
             "pool 'fund-a': entry 1 does not record the pool as it is stored (manager, name "
             "or currency edited)")
    _refused(lambda: _check(_resealed(entries, 0, kind=ADMIT)),
             "pool 'fund-a': entry 1 does not record the pool as it is stored (manager, name "
             "or currency edited)")
    _refused(lambda: _check(_resealed(entries, 2, kind=ADMIT)),
             "pool 'fund-a': entry 3 admits 'ann' twice")
    _refused(lambda: _check(_resealed(entries, 2, kind="gift")),
             "pool 'fund-a': entry 3 has an unknown kind 'gift'")
    _refused(lambda: _check(_resealed(entries, 2, investor_id="bob")),
             "pool 'fund-a': entry 3 is for 'bob', who was never admitted")
    # Carry goes to the manager, who is not a member: it changes the totals only.
    carried = _resealed(entries, 3, kind="carry", investor_id="m1")
    held = {"ann": Amounts.zero("USD").add("investment", Decimal("100.00"))}
    totals = held["ann"].add("carry", Decimal("8.00"))
    assert _check(carried, holdings=held, totals=totals) == 4


def test_stored_positions_and_totals_are_compared() -> None:
    entries = _chain(AuditChain())
    _refused(lambda: _check(entries, holdings={**HOLDINGS, "bob": Amounts.zero("USD")}),
             "pool 'fund-a': the members stored differ from the audit trail: ['bob']")
    _refused(lambda: _check(entries, holdings={}),
             "pool 'fund-a': the members stored differ from the audit trail: ['ann']")
    _refused(lambda: _check(entries, holdings={"ann": TOTALS.add("fee", Decimal("0.01"))}),
             "pool 'fund-a': the position of 'ann' differs from the audit trail (edited "
             "outside the ledger)")
    _refused(lambda: _check(entries, totals=TOTALS.add("fee", Decimal("0.01"))),
             "pool 'fund-a': the pool's totals differ from the audit trail (edited outside "
             "the ledger)")


def test_golden_marks_of_heads_investors_and_receipts() -> None:
    chain = AuditChain()
    head = b'[1,"mark","head","fund-a",3,"ab"]'
    assert hashlib.sha256(head).hexdigest() == (
        "712aa15730c30aed65ab4781e9be29581fbf3c08d1ecc6f83af55469942ac261")
    assert chain.head_mark("fund-a", 3, "ab") == hashlib.sha256(head).hexdigest()
    assert chain.mark("head", "fund-a", 3, "ab") == hashlib.sha256(head).hexdigest()
    assert AuditChain(b"secret").head_mark("fund-a", 3, "ab") == hmac.new(
        b"secret", head, hashlib.sha256).hexdigest()
    assert chain.investor_mark(Investor("bob")) == hashlib.sha256(
        b'[1,"mark","investor","bob","",null]').hexdigest()
    assert chain.investor_mark(Investor("ann", "Ann", "ann@example.com")) == (
        "8af073df03cd3abacdebc27e0fc6912b3ff0a03c0c4720c4a0acf2b859d1da17")
    assert chain.receipt_mark("k1", "fp", "invest", "fund-a", 3, 1, "ab") == hashlib.sha256(
        b'[1,"mark","receipt","k1","fp","invest","fund-a",3,1,"ab"]').hexdigest()
