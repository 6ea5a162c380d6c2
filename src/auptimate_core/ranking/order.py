"""The order of a ranking's lines and how many it has, the same for every form of the ranking:
``unique_pools`` descending, then ``total_amount`` descending, then ``investor_id`` ascending
(:func:`rank_key`), and ``n`` checked by :func:`check_n`; and a line's JSON-ready values
(:func:`line_dict`)."""

from __future__ import annotations

from decimal import Decimal

from ..errors import ValidationError

__all__ = ["RankKey", "check_n", "line_dict", "rank_key"]

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


def line_dict(investor_id: str, unique_pools: int, total_amount: Decimal) -> dict[str, str | int]:
    """A ranking line's JSON-ready values: the total as a string, never a float.

    >>> line_dict("ann", 2, Decimal("150.00"))
    {'investor_id': 'ann', 'unique_pools': 2, 'total_amount': '150.00'}
    """
    return {"investor_id": investor_id, "unique_pools": unique_pools,
            "total_amount": format(total_amount, "f")}
