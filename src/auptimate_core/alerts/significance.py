"""A one-sided Poisson rate-ratio test, done exactly as a binomial tail.

Few events make ratios noisy: three transactions after one in the previous hour is a "33x
spike" by ratio alone. Given ``k`` events in a window of length ``w`` and ``m`` in a baseline of
length ``b``, the test asks how surprising ``k`` is if the recent rate were only ``factor`` times
the baseline rate. Conditional on ``n = k + m`` events in all, ``k`` is then binomial with
``p = factor*w / (factor*w + b)``, and the p-value is ``P(K >= k)``.

>>> round(rate_ratio_p_value(3, 1, window=1, baseline=60, factor=10), 4)
0.0104
>>> rate_ratio_p_value(0, 5, window=1, baseline=60, factor=10)
1.0
"""

from __future__ import annotations

from fractions import Fraction
from math import comb, exp, lgamma, log

EXACT_UP_TO = 400
"""Above this many events in all, the tail is summed in floating point (log space)."""


def rate_ratio_p_value(
    recent: int, base: int, *, window: int, baseline: int, factor: Fraction | int
) -> float:
    """P(K >= recent) for K ~ Binomial(recent + base, factor*window / (factor*window + baseline)).

    ``O(recent + base)`` terms: exact rational arithmetic up to :data:`EXACT_UP_TO` events,
    floating point in log space beyond (where a p-value's last digits no longer matter).
    """
    if recent <= 0:
        return 1.0
    n = recent + base
    p = Fraction(factor) * window / (Fraction(factor) * window + baseline)
    if n > EXACT_UP_TO:
        return _float_tail(recent, n, float(p))
    q = 1 - p
    # Sum the shorter side exactly; Fractions keep tiny p-values from underflowing to zero.
    upper = recent > n // 2
    terms = range(recent, n + 1) if upper else range(recent)
    total = Fraction(0)
    for j in terms:
        total += comb(n, j) * p**j * q ** (n - j)
    tail = total if upper else 1 - total
    return float(tail)


def _float_tail(k: int, n: int, p: float) -> float:
    if p >= 1.0:
        return 1.0
    log_p, log_q = log(p), log(1 - p)
    terms = [
        lgamma(n + 1) - lgamma(j + 1) - lgamma(n - j + 1) + j * log_p + (n - j) * log_q
        for j in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, exp(top) * sum(exp(t - top) for t in terms))
