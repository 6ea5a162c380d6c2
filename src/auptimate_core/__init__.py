"""auptimate_core: top investors, real-time alerts and investment pools for syndicate platforms.

The names below are the public face; everything else is reached through its package
(``auptimate_core.alerts``, ``auptimate_core.pools``, ``auptimate_core.backends``). Each is
imported on first use, so that ``import auptimate_core`` (and with it every command line
start-up) imports nothing but this module. Exceptions live in :mod:`auptimate_core.errors`; the
most used are also here.
"""

from typing import TYPE_CHECKING

from .exports import lazy_exports

if TYPE_CHECKING:
    from .alerts import AlertEngine, AmountSpikeRule, SpikeRule, ThresholdRule
    from .backends.registry import window_store_from_url
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

_MODULES = {
    "alerts": ("AlertEngine", "AmountSpikeRule", "SpikeRule", "ThresholdRule"),
    "backends.registry": ("window_store_from_url",),
    "clock": ("Clock", "ManualClock", "SystemClock"),
    "domain": ("KINDS", "Investor", "Pool", "Transaction"),
    "errors": (
        "AuditError", "AuptimateError", "IdempotencyConflict", "InvalidAmount", "InvalidId",
        "InvalidKind", "InvalidTimestamp", "LateEvent", "LedgerError", "LedgerValidationError",
        "MissingExtra", "PermissionDenied", "RowError", "StoreError", "StoreUnavailable",
        "UnknownInvestor", "UnknownPool", "ValidationError",
    ),
    "pools": (
        "Change", "Distributed", "FeeCharged", "Invested", "InvestorAdmitted",
        "InvestorRegistered", "LedgerEvent", "PoolCreated", "PoolEvent", "PoolLedger",
        "PoolTotals", "Position", "Refunded",
    ),
    "ranking": ("InvestorRank", "TopInvestors", "top_investors"),
    "store": ("WindowStore",),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)

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
