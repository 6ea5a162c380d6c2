"""The ledger scenarios about the audit and concurrent writers."""

from __future__ import annotations

import threading

import pytest

from ...domain import Pool
from ...errors import AuditError
from ...pools import LedgerEvent, PoolEvent, PoolLedger
from .harness import D, LedgerHarness


class AuditScenarios(LedgerHarness):
    """The ledger scenarios about the audit and concurrent writers."""

    def _audited(self) -> PoolLedger:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300)})
        ledger.distribute("p", D(40), actor="m", idempotency_key="d")
        assert ledger.verify() == 7
        return ledger

    def test_verify_finds_an_edited_amount(self) -> None:
        ledger = self._audited()
        self.tamper_amount(ledger.repository, "p", 4, D("1000.00"))
        with pytest.raises(AuditError, match="entry 4"):
            ledger.verify()

    def test_verify_finds_a_deleted_entry(self) -> None:
        ledger = self._audited()
        self.tamper_delete(ledger.repository, "p", 3)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_a_deleted_last_entry(self) -> None:
        ledger = self._audited()
        self.tamper_delete(ledger.repository, "p", 7)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_reordered_entries(self) -> None:
        ledger = self._audited()
        self.tamper_swap(ledger.repository, "p", 4, 7)
        with pytest.raises(AuditError, match="'p'"):
            ledger.verify()

    def test_verify_finds_an_edited_position(self) -> None:
        ledger = self._audited()
        self.tamper_position(ledger.repository, "p", "b", D("3000.00"))
        with pytest.raises(AuditError, match="'b'"):
            ledger.verify()

    def test_verify_finds_an_edited_manager(self) -> None:
        ledger = self._audited()
        self.tamper_manager(ledger.repository, "p", "mallory")
        with pytest.raises(AuditError, match="manager"):
            ledger.verify()

    # -- concurrency --------------------------------------------------------------------------

    def test_concurrent_writers_never_lose_an_update(self) -> None:
        ledger = self.ledger()
        investors = [f"t{n}" for n in range(4)]
        self.members(ledger, Pool("hot", "m"), dict.fromkeys(investors, D(0)))
        self.members(ledger, Pool("cold", "m"), dict.fromkeys(investors, D(0)))
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        rounds = 15
        failures: list[BaseException] = []

        def work(investor: str) -> None:
            try:
                for n in range(rounds):
                    pool = "hot" if n % 3 else "cold"
                    ledger.invest(pool, investor, D(n + 1), actor=investor,
                                  idempotency_key=f"{investor}/{n}")
                    if n % 5 == 0:
                        ledger.distribute(pool, D(1), actor="m",
                                          idempotency_key=f"{investor}/d{n}")
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in investors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        hot = sum(D(n + 1) for n in range(rounds) if n % 3)
        cold = sum(D(n + 1) for n in range(rounds) if not n % 3)
        for pool, each in (("hot", hot), ("cold", cold)):
            positions = ledger.positions(pool)
            assert [p.invested for p in positions] == [each] * 4
            assert sum(p.distributed for p in positions) == ledger.pool_totals(pool).distributed
        distributions = 3 * len(investors)
        assert ledger.pool_totals("hot").distributed + ledger.pool_totals(
            "cold").distributed == distributions
        assert len(events) == len(investors) * (rounds + 3)
        for pool in ("hot", "cold"):
            seqs = [e.seq for e in events if isinstance(e, PoolEvent) and e.pool_id == pool]
            assert seqs == sorted(seqs)
        # The feed's order is the order of the commits, which subscribers follow too.
        feed = [change.event for change in ledger.changes(limit=10_000)]
        assert feed[-len(events):] == events
        assert ledger.verify() == len(ledger.history()) + 2 * (1 + len(investors))
