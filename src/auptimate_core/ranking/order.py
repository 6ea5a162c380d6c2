"""The order of a ranking's lines and how many it has, the same for every form of the ranking:
``unique_pools`` descending, then ``total_amount`` descending, then ``investor_id`` ascending
(:func:`rank_key`), and ``n`` checked by :func:`check_n`."""

from __future__ import annotations

from decimal import Decimal

from ..errors import ValidationError

__all__ = ["RankKey", "check_n", "rank_key"]

RankKey = tuple[int, Decimal, str]
"""``(-unique_pools, -total_amount, investor_id)``: ascending order of keys is ranking order."""


def rank_key(investor_id: str, unique_pools: int, total_amount: Decimal) -> RankKey:
    """The sort key putting ranks in contract order (copy_negate is exact, unlike ``-``)."""
    return (-unique_pools, total_amount.copy_negate(), investor_id)


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
