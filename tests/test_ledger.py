"""The ledger contract on the in-memory repository, and what only memory can show."""

from __future__ import annotations

import hashlib
import threading
from decimal import Decimal

import attrs
import pytest

from auptimate_core import AuditError, Investor, PermissionDenied, Pool, PoolLedger
from auptimate_core.pools import MemoryLedgerRepository
from auptimate_core.pools.audit import AuditChain
from auptimate_core.pools.repository import LedgerRepository
from auptimate_core.testing.ledger_contract import LedgerContract

D = Decimal


class TestMemoryLedger(LedgerContract):
    def make_repository(self) -> LedgerRepository:
        return MemoryLedgerRepository()

    @staticmethod
    def _chain(repository: MemoryLedgerRepository, pool_id: str) -> list:
        return repository._state.entries[pool_id]

    def tamper_amount(self, repository, pool_id, seq, amount):
        chain = self._chain(repository, pool_id)
        chain[seq - 1] = attrs.evolve(chain[seq - 1], amount=amount)

    def tamper_delete(self, repository, pool_id, seq):
        del self._chain(repository, pool_id)[seq - 1]

    def tamper_swap(self, repository, pool_id, seq_a, seq_b):
        chain = self._chain(repository, pool_id)
        chain[seq_a - 1], chain[seq_b - 1] = chain[seq_b - 1], chain[seq_a - 1]

    def tamper_position(self, repository, pool_id, investor_id, invested):
        members = repository._state.holdings[pool_id]
        members[investor_id] = attrs.evolve(members[investor_id], invested=invested)

    def tamper_manager(self, repository, pool_id, manager_id):
        record = repository._state.pools[pool_id]
        repository._state.pools[pool_id] = attrs.evolve(
            record, pool=attrs.evolve(record.pool, manager_id=manager_id))


def _rewrite_tail(ledger: PoolLedger, pool_id: str, seq: int, amount: Decimal,
                  chain: AuditChain) -> None:
    """Edit one entry and reseal it and every later one, and the head: a careful intruder."""
    repository = ledger.repository
    assert isinstance(repository, MemoryLedgerRepository)
    entries = repository._state.entries[pool_id]
    prev = entries[seq - 2].hash
    for index in range(seq - 1, len(entries)):
        entry = entries[index]
        if index == seq - 1:
            entry = attrs.evolve(entry, amount=amount)
        entry = chain.seal(entry.pool_id, entry.seq, entry.kind, entry.investor_id,
                           entry.amount, entry.at, entry.actor, entry.detail, prev)
        entries[index] = entry
        prev = entry.hash
    record = repository._state.pools[pool_id]
    repository._state.pools[pool_id] = attrs.evolve(record, head_hash=prev)


def _funded(ledger: PoolLedger) -> PoolLedger:
    ledger.create_pool(Pool("p", "m"), actor="m")
    ledger.register_investor(Investor("a"))
    ledger.admit("p", "a", actor="m")
    ledger.invest("p", "a", D(100), actor="a", idempotency_key="k1")
    ledger.invest("p", "a", D(50), actor="a", idempotency_key="k2")
    return ledger


def test_a_resealed_edit_breaks_the_link_to_the_next_entry() -> None:
    ledger = _funded(PoolLedger())
    entries = ledger.repository._state.entries["p"]  # type: ignore[attr-defined]
    edited = attrs.evolve(entries[2], amount=D("1.00"))
    entries[2] = AuditChain().seal(*(getattr(edited, f.name) for f in attrs.fields(type(edited))
                                     if f.name != "hash"))
    with pytest.raises(AuditError, match="entry 4 does not follow entry 3"):
        ledger.verify()


def test_a_secret_audit_key_stops_an_intruder_who_reseals_the_whole_tail() -> None:
    # Without a key, anyone who can write the storage can rebuild a consistent chain (only the
    # positions, replayed from it, then disagree): the hashes alone prove nothing.
    plain = _funded(PoolLedger())
    _rewrite_tail(plain, "p", 4, D("100.00"), AuditChain())
    with pytest.raises(AuditError, match="position"):
        plain.verify()
    # With a key the intruder cannot compute the hashes.
    keyed = _funded(PoolLedger(audit_key=b"secret"))
    _rewrite_tail(keyed, "p", 4, D("100.00"), AuditChain())
    with pytest.raises(AuditError, match="altered"):
        keyed.verify()


def test_audit_hashes_are_sha256_of_the_canonical_encoding() -> None:
    ledger = _funded(PoolLedger())
    entry = ledger.repository._state.entries["p"][0]  # type: ignore[attr-defined]
    payload = AuditChain.encode(entry.pool_id, entry.seq, entry.kind, entry.investor_id,
                                entry.amount, entry.at, entry.actor, entry.detail,
                                entry.prev_hash)
    assert hashlib.sha256(payload).hexdigest() == entry.hash
    assert b'"0000000000000000' in payload  # the previous hash is part of what is hashed


def test_from_url_picks_the_repository() -> None:
    assert isinstance(PoolLedger.from_url("memory://").repository, MemoryLedgerRepository)
    with pytest.raises(ValueError, match="url"):
        PoolLedger.from_url("ftp://example")


def test_threads_stress_the_memory_ledger() -> None:
    ledger = PoolLedger()
    pools = [Pool(f"p{n}", f"m{n}") for n in range(3)]
    investors = [f"i{n}" for n in range(6)]
    for pool in pools:
        ledger.create_pool(pool, actor=pool.manager_id)
        for investor in investors:
            ledger.register_investor(Investor(investor))
            ledger.admit(pool.id, investor, actor=pool.manager_id)
    seen: list[object] = []
    ledger.subscribe(seen.append)
    barrier = threading.Barrier(len(investors))

    def work(investor: str) -> None:
        barrier.wait()
        for n in range(60):
            pool = pools[n % 3]
            ledger.invest(pool.id, investor, D(1), actor=investor, idempotency_key=f"{investor}{n}")
            # Every investor also retries some requests: counted once.
            ledger.invest(pool.id, investor, D(1), actor=investor, idempotency_key=f"{investor}{n}")
            if n % 20 == 0:
                ledger.distribute(pool.id, D("0.07"), actor=pool.manager_id,
                                  idempotency_key=f"{investor}d{n}")
            ledger.positions(pool.id)

    threads = [threading.Thread(target=work, args=(i,)) for i in investors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for pool in pools:
        assert [p.invested for p in ledger.positions(pool.id)] == [D(20)] * len(investors)
    assert len(seen) == len(investors) * 63
    assert ledger.verify() == len(ledger.history()) + 3 * (1 + len(investors))


def test_a_subscriber_may_write_to_the_ledger() -> None:
    ledger = PoolLedger()
    ledger.create_pool(Pool("p", "m"), actor="m")
    order: list[str] = []

    def admit_newcomers(event: object) -> None:
        order.append(type(event).__name__)
        investor = getattr(event, "investor", None)
        if investor is not None:
            ledger.admit("p", investor.id, actor="m")

    ledger.subscribe(admit_newcomers)
    ledger.register_investor(Investor("a"))
    assert order == ["InvestorRegistered", "InvestorAdmitted"]
    assert [p.investor_id for p in ledger.positions("p")] == ["a"]


def test_ledger_metrics_hooks_are_called(monkeypatch: pytest.MonkeyPatch) -> None:
    from auptimate_core import metrics

    calls: list[tuple[str, str]] = []

    class Recording(metrics.Recorder):
        def ledger_write(self, kind: str, seconds: float | None = None) -> None:
            assert seconds is not None and seconds >= 0
            calls.append(("write", kind))

        def ledger_refusal(self, reason: str) -> None:
            calls.append(("refusal", reason))

        def ledger_replay(self, kind: str) -> None:
            calls.append(("replay", kind))

    monkeypatch.setattr(metrics, "_recorder", Recording())
    ledger = _funded(PoolLedger())
    ledger.invest("p", "a", D(100), actor="a", idempotency_key="k1")
    with pytest.raises(PermissionDenied):
        ledger.distribute("p", D(1), actor="a", idempotency_key="x")
    assert calls == [("write", "create_pool"), ("write", "register_investor"),
                     ("write", "admit"), ("write", "invest"), ("write", "invest"),
                     ("replay", "invest"), ("refusal", "permission_denied")]


def test_a_failing_subscriber_is_counted_and_logged(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from auptimate_core import metrics

    failures: list[str] = []

    class Recording(metrics.Recorder):
        def ledger_subscriber_failure(self, event: str) -> None:
            failures.append(event)

    monkeypatch.setattr(metrics, "_recorder", Recording())
    ledger = PoolLedger()

    def broken(event: object) -> None:
        raise RuntimeError("the alert queue is down")

    ledger.subscribe(broken)
    with caplog.at_level("ERROR", logger="auptimate_core.pools"):
        _funded(ledger)
    assert failures == ["PoolCreated", "InvestorRegistered", "InvestorAdmitted", "Invested",
                        "Invested"]
    assert "a ledger subscriber raised on Invested" in caplog.text
    assert "the alert queue is down" in caplog.text
    # The feed still has every change the subscriber missed.
    assert [type(c.event).__name__ for c in ledger.changes()] == failures


def test_the_subscriber_failure_counter_is_exposed() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from auptimate_core import metrics

    registry = prometheus_client.CollectorRegistry()
    metrics.enable_metrics(registry)
    try:
        ledger = PoolLedger()
        ledger.subscribe(lambda event: 1 / 0)
        ledger.create_pool(Pool("p", "m"), actor="m")
        value = registry.get_sample_value("auptimate_ledger_subscriber_failures_total",
                                          {"event": "PoolCreated"})
        assert value == 1
    finally:
        metrics.disable_metrics()


def test_the_demo_runs_a_pool() -> None:
    from click.testing import CliRunner

    from auptimate_core.cli.demo import demo_command

    result = CliRunner().invoke(demo_command, ["--transactions", "5000"])
    assert result.exit_code == 0, result.output
    section = result.output.split("4. An investment pool")[1]
    assert section.count("42,000.00") == 10 and "80,000.00 of carry" in section
    assert "returned the same 11 transactions: True" in section
    assert "alert from the ledger's own transactions: spike in pool" in section
    assert "audit chain verified over 42 entries" in section
