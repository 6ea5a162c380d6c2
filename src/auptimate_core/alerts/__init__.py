"""Real-time alerts: rules, the engine, and the sinks alerts go to."""

from .alert import FIRING, RESOLVED, Alert
from .engine import AlertEngine, EngineStats
from .rules import AmountSpikeRule, SpikeRule, ThresholdRule, TransactionRule, WindowRule
from .sinks import AlertSink, CollectingSink, LoggingSink

__all__ = [
    "FIRING",
    "RESOLVED",
    "Alert",
    "AlertEngine",
    "AlertSink",
    "AmountSpikeRule",
    "CollectingSink",
    "EngineStats",
    "LoggingSink",
    "SpikeRule",
    "ThresholdRule",
    "TransactionRule",
    "WindowRule",
]
