"""Window structures: the exact per-key window and the time-bucket ring."""

from .exact import ExactWindow

__all__ = ["ExactWindow"]
