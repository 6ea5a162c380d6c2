"""auptimate_core: top investors, real-time alerts and investment pools for syndicate platforms.

The names below are the public contract (see API.md); everything else is internal.
"""

from .clock import Clock, ManualClock, SystemClock
from .domain import KINDS, Investor, Pool, Transaction
from .errors import (
    AuditError,
    AuptimateError,
    IdempotencyConflict,
    InvalidAmount,
    InvalidId,
    InvalidKind,
    InvalidTimestamp,
    LateEvent,
    LedgerError,
    LedgerValidationError,
    MissingExtra,
    PermissionDenied,
    RowError,
    StoreError,
    StoreUnavailable,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from .pools import (
    Change,
    Distributed,
    FeeCharged,
    Invested,
    InvestorAdmitted,
    InvestorRegistered,
    LedgerEvent,
    PoolCreated,
    PoolEvent,
    PoolLedger,
    PoolTotals,
    Position,
    Refunded,
)
from .ranking import InvestorRank, TopInvestors, top_investors
from .store import WindowStore

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "AuditError",
    "AuptimateError",
    "Change",
    "Clock",
    "Distributed",
    "FeeCharged",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidId",
    "InvalidKind",
    "InvalidTimestamp",
    "Invested",
    "Investor",
    "InvestorAdmitted",
    "InvestorRank",
    "InvestorRegistered",
    "LateEvent",
    "LedgerError",
    "LedgerEvent",
    "LedgerValidationError",
    "ManualClock",
    "MissingExtra",
    "PermissionDenied",
    "Pool",
    "PoolCreated",
    "PoolEvent",
    "PoolLedger",
    "PoolTotals",
    "Position",
    "Refunded",
    "RowError",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "TopInvestors",
    "Transaction",
    "UnknownInvestor",
    "UnknownPool",
    "ValidationError",
    "WindowStore",
    "__version__",
    "top_investors",
]
