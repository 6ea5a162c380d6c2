"""What every ledger scenario stands on: a factory of repositories, tamper hooks, helpers.

A backend's test class gives :meth:`LedgerHarness.make_repository`; the tamper hooks (edit the
storage behind the ledger's back, as an intruder with direct access would) are optional, and
the audit scenarios skip without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ...clock import ManualClock
from ...domain import Investor, Pool
from ...errors import UnknownInvestor
from ...pools import LedgerRepository, PoolLedger

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
"""The time of every scenario's manual clock at its start."""

D = Decimal


class LedgerHarness:
    """The factory, hooks and helpers of the ledger scenarios. Each test builds its own ledger."""

    def make_repository(self) -> LedgerRepository:
        raise NotImplementedError

    # -- tamper hooks: override to run the audit scenarios -----------------------------------

    def tamper_amount(self, repository: Any, pool_id: str, seq: int, amount: Decimal) -> None:
        """Change the amount of entry ``seq`` of the pool, leaving its hashes as they are."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_delete(self, repository: Any, pool_id: str, seq: int) -> None:
        """Remove entry ``seq`` of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_swap(self, repository: Any, pool_id: str, seq_a: int, seq_b: int) -> None:
        """Exchange the places of two entries of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_position(self, repository: Any, pool_id: str, investor_id: str,
                        invested: Decimal) -> None:
        """Change a member's stored ``invested`` total."""
        pytest.skip("this backend offers no direct access to its storage")

    def tamper_manager(self, repository: Any, pool_id: str, manager_id: str) -> None:
        """Change the stored manager of the pool."""
        pytest.skip("this backend offers no direct access to its storage")

    # -- helpers ------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _close_ledgers(self) -> Iterator[None]:
        self._ledgers: list[PoolLedger] = []
        yield
        for ledger in self._ledgers:
            ledger.close()

    def ledger(self, **options: Any) -> PoolLedger:
        """A new ledger on a new repository, on a manual clock at :data:`START`."""
        options.setdefault("clock", ManualClock(START))
        ledger = PoolLedger(self.make_repository(), **options)
        self._ledgers.append(ledger)
        return ledger

    @staticmethod
    def members(ledger: PoolLedger, pool: Pool, investors: dict[str, Decimal]) -> None:
        """Create ``pool`` if needed, register and admit ``investors``, record their amounts."""
        ledger.create_pool(pool, actor=pool.manager_id)
        for investor_id, amount in investors.items():
            ledger.register_investor(Investor(investor_id))
            ledger.admit(pool.id, investor_id, actor=pool.manager_id)
            if amount:
                ledger.invest(pool.id, investor_id, amount, actor=investor_id,
                              idempotency_key=f"{pool.id}/{investor_id}/first")

    def worked_example(self, clock: ManualClock | None = None) -> PoolLedger:
        """Ten investors of 10,000 each in pool ``seed`` managed by ``lead``."""
        ledger = self.ledger(clock=clock or ManualClock(START))
        self.members(ledger, Pool("seed", "lead", "Seed round"),
                     {f"inv{n:02}": D("10000") for n in range(10)})
        return ledger

    @staticmethod
    def snapshot(ledger: PoolLedger) -> tuple[object, ...]:
        return (ledger.history(), ledger.verify(),
                [ledger.positions(p.pool_id) for p in ledger.portfolio("inv00")]
                if _registered(ledger, "inv00") else None)


def _registered(ledger: PoolLedger, investor_id: str) -> bool:
    try:
        ledger.portfolio(investor_id)
    except UnknownInvestor:
        return False
    return True
