"""How many lines a ranking has: ``n``, checked the same way by every form of the ranking."""

from __future__ import annotations

from ..errors import ValidationError

__all__ = ["check_n"]


def check_n(n: object) -> int:
    """Return ``n`` if it is a positive int (bools excluded), else raise ``ValidationError``.

    >>> check_n(0)
    Traceback (most recent call last):
    ...
    auptimate_core.errors.ValidationError: n: must be a positive integer, not 0
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValidationError("n", f"must be a positive integer, not {type(n).__name__} {n!r}")
    if n < 1:
        raise ValidationError("n", f"must be a positive integer, not {n}")
    return n
