"""Window structures: the exact per-key window and the time-bucket ring.

The columnar structure of all keys at once (:mod:`.columnar`, with :mod:`.composites`,
:mod:`.keycodes`, :mod:`.grouped` and its id log :mod:`.idlog`) needs numpy (the ``fast``
extra), so it is imported from its own modules, not from here.
"""

from .exact import ExactWindow
from .ring import BucketRing

__all__ = ["BucketRing", "ExactWindow"]
