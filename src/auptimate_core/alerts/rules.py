"""Alert rules: small objects that declare what they need and decide from it.

There are two kinds of rule, told apart by what they declare:

- a :class:`TransactionRule` looks at one transaction alone (:class:`ThresholdRule`);
- a :class:`WindowRule` declares the windows it needs (as :class:`~auptimate_core.store.Interval`
  objects) and decides from their tallies whether its condition holds at a transaction's event
  time. The engine keeps its lifecycle: one ``firing`` alert when the condition becomes true,
  nothing while it stays true, one ``resolved`` alert when it is next found false
  (:class:`SpikeRule`, :class:`AmountSpikeRule`).

A rule of your own is any object with the attributes and methods of one of the two protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import compress, count
from operator import attrgetter
from typing import Protocol, runtime_checkable

from ..domain import Transaction, check_id
from ..errors import ValidationError
from ..store import Interval, LifecycleState, to_units
from .alert import FIRING, Alert, AlertState, make_alert
from .significance import rate_ratio_p_value

_US = timedelta(microseconds=1)
_AMOUNT = attrgetter("amount")
_CACHED = 4_096  # figures a spike rule keeps per pair of values before starting afresh
_Figures = tuple[tuple[tuple[str, str], ...], str, str, str, Decimal, Decimal]
"""An alert's figures (see _RatioRule._figures)."""
_PLACES = Decimal("0.0001")


@runtime_checkable
class TransactionRule(Protocol):
    """A rule that decides from one transaction alone, with no state."""

    @property
    def name(self) -> str: ...

    def check(self, tx: Transaction) -> Alert | None:
        """A ``firing`` alert if ``tx`` breaks the rule, else None."""
        ...


@runtime_checkable
class WindowRule(Protocol):
    """A rule that decides from window tallies at an event time, with a firing/resolved lifecycle.

    ``intervals`` are the windows it needs; ``measure`` says whether it reads their event counts
    (``"count"``) or their amount totals (``"total"``, in store units). ``holds`` receives one
    value per interval, in order, and must be cheap: it runs on every transaction of the pool.
    ``may_fire`` can hold back a firing (cold start, cooldown); it runs only on a would-be firing.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def intervals(self) -> tuple[Interval, ...]: ...

    @property
    def measure(self) -> str: ...

    def holds(self, *values: int) -> bool: ...

    def may_fire(self, at: int, first_seen: int | None, state: LifecycleState) -> bool: ...

    def alert(
        self, state: AlertState, pool_id: str, at: datetime, transaction_id: str | None,
        investor_id: str | None, values: tuple[int, ...],
    ) -> Alert: ...


@runtime_checkable
class FlaggingRule(Protocol):
    """A transaction rule that can find, in one pass over a batch, the transactions it would
    alert on (so the engine calls :meth:`TransactionRule.check` on those alone)."""

    def flagged(self, txs: Sequence[Transaction]) -> list[int]: ...


@runtime_checkable
class LinearRule(Protocol):
    """A window rule on two values whose condition may be exactly ``v0 >= floor and
    v0 * a >= v1 * b``: ``linear`` is then ``(floor, a, b)`` (else None), and the engine tests
    it inline, or on whole numpy columns, instead of calling :meth:`WindowRule.holds`."""

    @property
    def linear(self) -> tuple[int, int, int] | None: ...


def _money(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValidationError(field, f"must be a Decimal or an int, not {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValidationError(field, f"must be a finite amount >= 0, not {amount}")
    return amount


def _micros(span: timedelta, field: str) -> int:
    if not isinstance(span, timedelta):
        raise ValidationError(field, f"must be a timedelta, not {type(span).__name__}")
    micros = span // _US
    if micros <= 0:
        raise ValidationError(field, f"must be positive, not {span}")
    return micros


def _factor(value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
        raise ValidationError("factor", f"must be a number, not {type(value).__name__}")
    factor = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    if factor <= 0:
        raise ValidationError("factor", f"must be positive, not {value}")
    return factor


def _span_text(micros: int) -> str:
    seconds, rest = divmod(micros, 1_000_000)
    if rest:  # exactly, never in exponent form: 0.000001s, 1.000001s
        return f"{Decimal(micros).scaleb(-6):f}".rstrip("0") + "s"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _decimal(fraction: Fraction) -> Decimal:
    return _plain((Decimal(fraction.numerator) / Decimal(fraction.denominator)).quantize(
        _PLACES))


def _from_units(units: int) -> Decimal:
    """``_decimal(Fraction(units, 10_000))`` without a Fraction: exact, units are 1/10,000."""
    return _plain(Decimal(units).scaleb(-4).quantize(_PLACES))


def _plain(value: Decimal) -> Decimal:
    # Without trailing zeros, and never in exponent form: 1000000, not 1E+6.
    return value.to_integral_value() if value == value.to_integral_value() else value.normalize()


class ThresholdRule:
    """Fire once for every transaction whose amount is strictly greater than its pool's limit.

    ``per_pool`` overrides ``limit`` for the pools it names. Stateless and thread-safe.

    >>> from datetime import UTC
    >>> rule = ThresholdRule(limit=Decimal("250000"), per_pool={"small": Decimal("1000")})
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> rule.check(Transaction("t1", "i", "big", Decimal("250000"), t)) is None
    True
    >>> rule.check(Transaction("t2", "i", "small", Decimal("1000.01"), t)).message
    'amount 1000.01 > limit 1000 in pool small'
    """

    kind = "threshold"

    def __init__(
        self,
        limit: Decimal | int,
        per_pool: Mapping[str, Decimal | int] | None = None,
        *,
        name: str = "threshold",
    ) -> None:
        self.limit = _money(limit, "limit")
        self.per_pool = {
            check_id("per_pool", pool): _money(value, f"per_pool[{pool!r}]")
            for pool, value in (per_pool or {}).items()
        }
        self.name = name
        # The last limit an alert named, and its part of the message.
        self._limit_text = (self.limit, f" > limit {self.limit} in pool ")

    def limit_for(self, pool_id: str) -> Decimal:
        return self.per_pool.get(pool_id, self.limit)

    def check(self, tx: Transaction) -> Alert | None:
        limit = self.per_pool.get(tx.pool_id, self.limit) if self.per_pool else self.limit
        amount = tx.amount
        if amount <= limit:
            return None
        pool = tx.pool_id
        text = self._limit_text
        if text[0] is not limit:  # another pool's limit, or limit was set anew
            text = self._limit_text = (limit, f" > limit {limit} in pool ")
        # ``!s``: the same text as Decimal.__format__ with no spec gives, at a third of its cost.
        return make_alert(
            self.kind, FIRING, pool, tx.timestamp, tx.id, amount, limit,
            f"amount {amount!s}{text[1]}{pool}", self.name or self.kind, tx.investor_id, ())

    def flagged(self, txs: Sequence[Transaction]) -> list[int]:
        """The indices of the transactions :meth:`check` alerts on (one pass, no alerts)."""
        limit = self.limit
        if not self.per_pool:
            # One comparison per transaction finds the batches with nothing to flag (most).
            if not txs or max(map(_AMOUNT, txs)) <= limit:
                return []
            return list(compress(count(), map(limit.__lt__, map(_AMOUNT, txs))))
        get = self.per_pool.get
        return [i for i, tx in enumerate(txs) if tx.amount > get(tx.pool_id, limit)]

    def __repr__(self) -> str:
        return f"ThresholdRule(limit={self.limit!r}, per_pool={self.per_pool!r})"


class _RatioRule:
    """Shared logic of the spike rules: a recent window against the baseline just before it.

    The condition at event time ``t`` is ``recent >= floor`` and ``recent >= factor * expected``
    where ``expected = base * window / baseline``; it is decided in exact integer arithmetic
    (``recent * baseline * den >= base * window * num`` for ``factor = num/den``), so every store
    gives the same answer.
    """

    kind = "spike"
    measure = "count"

    def __init__(
        self,
        window: timedelta,
        baseline: timedelta,
        factor: int | float | Decimal | Fraction,
        floor: int,
        *,
        name: str,
        min_history: timedelta | None,
        cooldown: timedelta | None,
        significance: float | None,
    ) -> None:
        self.window = window
        self.baseline = baseline
        self._w = _micros(window, "window")
        self._b = _micros(baseline, "baseline")
        self.factor = _factor(factor)
        self._floor = floor
        self._lhs = self._b * self.factor.denominator
        self._rhs = self._w * self.factor.numerator
        self.intervals = (Interval(0, self._w), Interval(self._w, self._b))
        self.name = name
        self._min_history = None if min_history is None else _micros(min_history, "min_history")
        self._cooldown = None if cooldown is None else _micros(cooldown, "cooldown")
        if significance is not None and not 0 < significance < 1:
            raise ValidationError("significance", f"must be between 0 and 1, not {significance}")
        self.significance = significance
        # What an alert's texts take from the rule alone, and (see alert()) from its values,
        # which repeat: made once.
        self._window_text = _span_text(self._w)
        self._baseline_text = _span_text(self._b)
        self._factor_text = str(_decimal(self.factor))
        self._by_values: dict[tuple[int, ...], _Figures] = {}

    @property
    def linear(self) -> tuple[int, int, int] | None:
        """``(floor, a, b)`` when the condition is exactly ``recent >= floor and
        recent * a >= base * b`` (so the engine may test it inline), else None."""
        if self.significance is not None:
            return None
        return self._floor, self._lhs, self._rhs

    def holds(self, *values: int) -> bool:
        recent, base = values
        if recent < self._floor or recent * self._lhs < base * self._rhs:
            return False
        if self.significance is None:
            return True
        return self.p_value(recent, base) <= self.significance

    def p_value(self, recent: int, base: int) -> float:
        return rate_ratio_p_value(
            recent, base, window=self._w, baseline=self._b, factor=self.factor
        )

    def may_fire(self, at: int, first_seen: int | None, state: LifecycleState) -> bool:
        if self._min_history is not None and (
            first_seen is None or at - first_seen < self._min_history
        ):
            return False
        return not (
            self._cooldown is not None
            and state.since is not None
            and not state.firing
            and at < state.since + self._cooldown
        )

    def expected(self, base: int) -> Fraction:
        return Fraction(base * self._w, self._b)

    def _base_figures(self, base: int) -> tuple[str, str, Decimal]:
        """An alert's figures that depend on the baseline value alone: its text, the expected
        value's text, and the limit (the bar the recent value had to reach)."""
        expected = self.expected(base)
        bar = max(Fraction(self._floor), self.factor * expected)
        return str(base), str(_decimal(expected)), _decimal(bar)

    def _recent_figures(self, recent: int) -> tuple[str, Decimal]:
        """An alert's figures from the recent value: its text, and the observed value."""
        return str(recent), Decimal(recent)

    def _figures(self, recent: int, base: int) -> _Figures:
        """An alert's figures for its two values: its context, the texts of the recent value,
        the expected value and the baseline value, the observed value and the limit."""
        base_text, expected_text, limit = self._base_figures(base)
        recent_text, observed = self._recent_figures(recent)
        # The context's pairs in the order of their names.
        context: tuple[tuple[str, str], ...] = (
            ("baseline", base_text), ("baseline_span", self._baseline_text),
            ("expected", expected_text), ("factor", self._factor_text))
        if self.significance is not None:
            context += (("p_value", f"{self.p_value(recent, base):.3g}"),)
        context += (("recent", recent_text), ("window", self._window_text))
        return context, recent_text, expected_text, base_text, observed, limit

    def alert(
        self, state: AlertState, pool_id: str, at: datetime, transaction_id: str | None,
        investor_id: str | None, values: tuple[int, ...],
    ) -> Alert:
        # The figures repeat (the same few counts over and over): made once and shared, which
        # spares an alert's allocations as well as its formatting.
        figures = self._by_values.get(values)
        if figures is None:
            figures = self._figures(*values)
            if len(self._by_values) >= _CACHED:
                self._by_values.clear()
            self._by_values[values] = figures
        context, recent_text, expected_text, base_text, observed, limit = figures
        return make_alert(
            self.kind, state, pool_id, at, transaction_id, observed, limit,
            self._message(state, pool_id, recent_text, expected_text, base_text),
            self.name or self.kind, investor_id, context)

    def _message(
        self, state: AlertState, pool_id: str, recent: str, expected: str, base: str
    ) -> str:
        what = "spike" if state == FIRING else "spike over"
        noun = "transaction" if recent == "1" else "transactions"
        return (
            f"{what} in pool {pool_id}: {recent} {noun} in the last {self._window_text} "
            f"against {expected} expected from {base} in the {self._baseline_text} before"
        )


class SpikeRule(_RatioRule):
    """A sudden rise in the number of a pool's transactions, decided at each transaction.

    At a transaction of pool ``p`` at time ``t``: ``recent`` counts p's transactions in
    ``(t - window, t]``, ``expected`` is the count in ``(t - window - baseline, t - window]``
    times ``window / baseline``; the condition holds when ``recent >= min_count`` and
    ``recent >= factor * expected``.

    Options that keep the rule quiet, all off by default: ``min_history`` (a pool must have that
    much history before it can spike: cold start), ``cooldown`` (no new firing that soon after a
    resolution) and ``significance`` (also require a one-sided Poisson rate-ratio test of
    "recent rate > factor x baseline rate" to pass at that level).

    >>> rule = SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
    ...                  min_count=5)
    >>> rule.holds(5, 0), rule.holds(5, 30), rule.holds(5, 31), rule.holds(4, 0)
    (True, True, False, False)
    """

    def __init__(
        self,
        window: timedelta = timedelta(minutes=1),
        baseline: timedelta = timedelta(hours=1),
        factor: int | float | Decimal | Fraction = 10,
        min_count: int = 5,
        *,
        name: str = "spike",
        min_history: timedelta | None = None,
        cooldown: timedelta | None = None,
        significance: float | None = None,
    ) -> None:
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValidationError("min_count", f"must be an int >= 1, not {min_count!r}")
        self.min_count = min_count
        super().__init__(
            window, baseline, factor, min_count, name=name, min_history=min_history,
            cooldown=cooldown, significance=significance,
        )

    def __repr__(self) -> str:
        return (
            f"SpikeRule(window={self.window!r}, baseline={self.baseline!r}, "
            f"factor={self.factor}, min_count={self.min_count})"
        )


class AmountSpikeRule(_RatioRule):
    """A sudden rise in the money flowing into a pool: the :class:`SpikeRule` formula on sums.

    ``recent`` is the total amount of the pool's transactions in the window, ``expected`` the
    total in the baseline before it scaled by ``window / baseline``; the condition holds when
    ``recent >= min_total`` and ``recent >= factor * expected``. Same lifecycle and options.

    >>> rule = AmountSpikeRule(min_total=Decimal("100000"))
    >>> rule.holds(100_000 * 10_000, 0), rule.holds(99_999 * 10_000, 0)
    (True, False)
    """

    kind = "amount_spike"
    measure = "total"

    def __init__(
        self,
        window: timedelta = timedelta(minutes=1),
        baseline: timedelta = timedelta(hours=1),
        factor: int | float | Decimal | Fraction = 10,
        min_total: Decimal | int = Decimal("100000"),
        *,
        name: str = "amount_spike",
        min_history: timedelta | None = None,
        cooldown: timedelta | None = None,
    ) -> None:
        self.min_total = _money(min_total, "min_total")
        super().__init__(
            window, baseline, factor, max(1, to_units(self.min_total)), name=name,
            min_history=min_history, cooldown=cooldown, significance=None,
        )

    def _base_figures(self, base: int) -> tuple[str, str, Decimal]:
        expected = self.expected(base)
        bar = max(Fraction(self._floor), self.factor * expected)
        return (str(_from_units(base)), str(_decimal(expected / 10_000)),
                _decimal(bar / 10_000))

    def _recent_figures(self, recent: int) -> tuple[str, Decimal]:
        observed = _from_units(recent)
        return str(observed), observed

    def _message(
        self, state: AlertState, pool_id: str, recent: str, expected: str, base: str
    ) -> str:
        what = "amount spike" if state == FIRING else "amount spike over"
        return (
            f"{what} in pool {pool_id}: {recent} invested in the last {self._window_text} "
            f"against {expected} expected from {base} in the {self._baseline_text} before"
        )

    def __repr__(self) -> str:
        return (
            f"AmountSpikeRule(window={self.window!r}, baseline={self.baseline!r}, "
            f"factor={self.factor}, min_total={self.min_total})"
        )
