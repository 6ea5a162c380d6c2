"""auptimate_core: top investors, real-time alerts and investment pools for syndicate platforms.

The names below are the public face; everything else is reached through its package
(``auptimate_core.alerts``, ``auptimate_core.pools``, ``auptimate_core.backends``). The alert
engine, its rules and the window store factory are imported on first use, so that
``import auptimate_core`` stays light. Exceptions live in :mod:`auptimate_core.errors`; the
most used are also here.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .alerts import AlertEngine, AmountSpikeRule, SpikeRule, ThresholdRule
    from .backends.registry import window_store_from_url

__version__ = "0.1.0"

_LAZY = {
    "AlertEngine": "alerts",
    "AmountSpikeRule": "alerts",
    "SpikeRule": "alerts",
    "ThresholdRule": "alerts",
    "window_store_from_url": "backends.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auptimate_core' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "KINDS",
    "AlertEngine",
    "AmountSpikeRule",
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
    "SpikeRule",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "ThresholdRule",
    "TopInvestors",
    "Transaction",
    "UnknownInvestor",
    "UnknownPool",
    "ValidationError",
    "WindowStore",
    "__version__",
    "top_investors",
    "window_store_from_url",
]
