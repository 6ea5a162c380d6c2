"""Real-time alerts: rules, the engine, and the sinks alerts go to."""

from .alert import FIRING, RESOLVED, Alert
from .delivery import DeadLetter, Dispatcher, read_dead_letters
from .engine import AlertEngine, EngineStats
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
