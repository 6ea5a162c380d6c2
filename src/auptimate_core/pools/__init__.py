"""The investment pools ledger: :class:`PoolLedger` and what it is made of.

Pure domain: nothing here imports a database driver. The SQL repository lives in
:mod:`auptimate_core.backends.sql.ledger`.
"""

from .audit import AuditChain, Entry
from .batch import Batch, Investment
from .changes import Change, FeedWatch
from .events import (
    Distributed,
    FeeCharged,
    Invested,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    PoolCreated,
    PoolEvent,
    Refunded,
)
from .ledger import PoolLedger
from .memory import MemoryLedgerRepository
from .policy import Policy
from .position import PoolTotals, Position
from .repository import (
    LedgerRepository,
    LedgerSession,
    MemberRead,
    MemberSession,
    PoolRecord,
    Receipt,
)

__all__ = [
    "AuditChain",
    "Batch",
    "Change",
    "Distributed",
    "Entry",
    "FeeCharged",
    "FeedWatch",
    "Invested",
    "Investment",
    "InvestorAdmitted",
    "InvestorRegistered",
    "LedgerEvent",
    "LedgerRepository",
    "LedgerSession",
    "MemberRead",
    "MemberSession",
    "MemoryLedgerRepository",
    "Policy",
    "PoolCreated",
    "PoolEvent",
    "PoolLedger",
    "PoolRecord",
    "PoolTotals",
    "Position",
    "Receipt",
    "Refunded",
]
