"""The synthetic stream, kept importable here: it lives in :mod:`auptimate_core.generate`."""

from ..generate import QUIET_GAP, START, Anomaly, SyntheticStream, generate_stream

__all__ = ["QUIET_GAP", "START", "Anomaly", "SyntheticStream", "generate_stream"]
