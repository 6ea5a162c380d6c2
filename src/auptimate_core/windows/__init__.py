"""Window structures: the exact per-key window and the time-bucket ring."""

from .exact import ExactWindow
from .ring import BucketRing

__all__ = ["BucketRing", "ExactWindow"]
