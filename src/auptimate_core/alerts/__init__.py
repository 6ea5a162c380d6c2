"""Real-time alerts: rules, the engine, and the sinks alerts go to.

The names below are imported on first use, so that a module of this package (the rule
registry a command line reads, say) can be imported without the engine and what it needs.
"""

from typing import TYPE_CHECKING, Any

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
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auptimate_core.alerts' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
