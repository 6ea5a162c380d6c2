"""The scenarios every ledger repository passes, run through :class:`~auptimate_core.PoolLedger`.

Subclass :class:`LedgerContract` in a test module and give it a factory of empty repositories::

    class TestMyRepository(LedgerContract):
        def make_repository(self) -> LedgerRepository:
            return MyRepository(...)

The tamper hooks (``tamper_*``) edit the storage behind the ledger's back, as an intruder with
direct access would; a backend that implements them gets the audit scenarios too, the others
skip them. The change feed scenarios (``changes``, ``cursor``, ``follow``) run on every backend.
Needs pytest (the suite is a pytest class).

The scenarios live by subject in :mod:`auptimate_core.testing.ledger` (money, rules, reads,
audit, feed); a class of one subject runs only those, on the same harness.
"""

from __future__ import annotations

from ..domain import Transaction
from .ledger.audit import AuditScenarios
from .ledger.feed import FeedScenarios
from .ledger.harness import START, LedgerHarness
from .ledger.money import MoneyScenarios
from .ledger.reads import ReadScenarios
from .ledger.rules import RuleScenarios


class LedgerContract(MoneyScenarios, RuleScenarios, ReadScenarios, AuditScenarios,
                     FeedScenarios):
    """The whole contract (see the module notes). Each test builds its own ledger."""


__all__ = ["START", "AuditScenarios", "FeedScenarios", "LedgerContract", "LedgerHarness",
           "MoneyScenarios", "ReadScenarios", "RuleScenarios", "Transaction"]
