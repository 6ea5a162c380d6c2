"""An engine's rules as ``AlertEngine.process`` applies them to one transaction, on a store
of this process that shows its firing keys live (:class:`~auptimate_core.store.IndexesFiring`):
thresholds compared inline, and the window rules read flat, so that the lifecycle is asked
only for a rule whose state may change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal

from ..domain import Transaction
from .alert import Alert
from .decisions import RuleSlot
from .rules import ThresholdRule, TransactionRule, WindowRule

Watch = tuple[RuleSlot, AbstractSet[str], bool, bool, int, int, int, int, int]
"""A window rule read flat: its slot, the live set of pools it fires for, whether it reads
totals (else counts), whether it is linear on two values, and then (floor, a, b, the places of
its two values in the answer), zeros when it is not."""

Simple = tuple[Decimal, "dict[str, Decimal] | None", TransactionRule, WindowRule,
               AbstractSet[str], bool, int, int, int, int, int]
"""The default rules (one ThresholdRule, one linear window rule): the threshold's limit and
limits per pool (or None), the ThresholdRule, the window rule, and its :data:`Watch` from its
firing set on."""

Found = tuple[WindowRule, tuple[int, ...], bool]
"""A window rule whose state may change: its values, and whether it holds."""


def watching(slot: RuleSlot, firing: AbstractSet[str]) -> Watch:
    """``slot`` read flat (see :data:`Watch`)."""
    if slot.linear is None:
        return (slot, firing, slot.uses_totals, False, 0, 0, 0, 0, 0)
    floor, a, b = slot.linear
    c0, c1 = slot.columns
    return (slot, firing, slot.uses_totals, True, floor, a, b, c0, c1)


class EventRules:
    """The rules of one engine, prepared for one transaction at a time.

    ``tx_fast``: each transaction rule with, for a ThresholdRule, its limit and its limits per
    pool (None when it has none): compared inline, ``check()`` called only on a transaction
    over it; other rules as ``(rule, None, None)``, checked on every transaction. ``watch``:
    the window rules (see :data:`Watch`). ``simple``: the default rules, decided from it alone
    (see :data:`Simple`), else None.
    """

    __slots__ = ("simple", "tx_fast", "watch")

    def __init__(
        self, tx_rules: Sequence[TransactionRule], slots: Sequence[RuleSlot],
        firing_view: Callable[[str], AbstractSet[str]],
    ) -> None:
        self.tx_fast: list[tuple[TransactionRule, Decimal | None, dict[str, Decimal] | None]] = [
            (rule, rule.limit, rule.per_pool or None) if type(rule) is ThresholdRule
            else (rule, None, None) for rule in tx_rules]
        self.watch = [watching(slot, firing_view(slot.rule.name)) for slot in slots]
        self.simple: Simple | None = None
        if (len(self.tx_fast) == len(self.watch) == 1 and self.watch[0][3]
                and self.tx_fast[0][1] is not None):
            threshold, limit, per_pool = self.tx_fast[0]
            slot, firing, use_totals, _, floor, a, b, c0, c1 = self.watch[0]
            assert limit is not None
            self.simple = (limit, per_pool, threshold, slot.rule, firing, use_totals, floor,
                           a, b, c0, c1)

    def tx_alerts(self, tx: Transaction) -> list[Alert]:
        """The alerts of the transaction rules on ``tx``."""
        pool = tx.pool_id
        alerts: list[Alert] = []
        amount = tx.amount
        for rule, limit, per_pool in self.tx_fast:
            if limit is not None and amount <= (
                    per_pool.get(pool, limit) if per_pool is not None else limit):
                continue
            alert = rule.check(tx)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def may_change(
        self, pool: str, counts: Sequence[int], totals: Sequence[int]
    ) -> list[Found] | None:
        """The window rules whose state may change for ``pool`` at a new transaction the store
        tallied as ``counts`` and ``totals``: those that hold where they are not firing, or the
        reverse; None when there is none."""
        found: list[Found] | None = None
        for slot, firing, use_totals, linear, floor, a, b, c0, c1 in self.watch:
            values = totals if use_totals else counts
            if linear:
                figures: tuple[int, ...] = (values[c0], values[c1])
                holds = figures[0] >= floor and figures[0] * a >= figures[1] * b
            else:
                figures = tuple([values[c] for c in slot.columns])
                holds = slot.holds(figures)
            if holds is not (pool in firing):
                found = found or []
                found.append((slot.rule, figures, holds))
        return found
