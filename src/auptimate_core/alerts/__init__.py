"""Real-time alerts: rules, the engine, and the sinks alerts go to.

The names below are imported on first use, so that a module of this package (the rule
registry a command line reads, say) can be imported without the engine and what it needs.
"""

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .alert import FIRING, RESOLVED, Alert
    from .dead_letters import DeadLetter, read_dead_letters
    from .delivery import Dispatcher
    from .engine import AlertEngine
    from .rules import AmountSpikeRule, SpikeRule, ThresholdRule, TransactionRule, WindowRule
    from .sinks import (
        AlertSink,
        BackgroundCall,
        BackgroundSink,
        CollectingSink,
        DeliveryError,
        LoggingSink,
        RetryPolicy,
    )
    from .stats import EngineStats

_MODULES = {
    "alert": ("FIRING", "RESOLVED", "Alert"),
    "dead_letters": ("DeadLetter", "read_dead_letters"),
    "delivery": ("Dispatcher",),
    "engine": ("AlertEngine",),
    "stats": ("EngineStats",),
    "rules": ("AmountSpikeRule", "SpikeRule", "ThresholdRule", "TransactionRule", "WindowRule"),
    "sinks": ("AlertSink", "BackgroundCall", "BackgroundSink", "CollectingSink", "DeliveryError",
              "LoggingSink", "RetryPolicy"),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)

__all__ = [
    "FIRING",
    "RESOLVED",
    "Alert",
    "AlertEngine",
    "AlertSink",
    "AmountSpikeRule",
    "BackgroundCall",
    "BackgroundSink",
    "CollectingSink",
    "DeadLetter",
    "DeliveryError",
    "Dispatcher",
    "EngineStats",
    "LoggingSink",
    "RetryPolicy",
    "SpikeRule",
    "ThresholdRule",
    "TransactionRule",
    "WindowRule",
    "read_dead_letters",
]
