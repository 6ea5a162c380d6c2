"""A brute-force model of the pools ledger, for the stateful tests.

Everything is kept as a flat list of transactions in integer minor units; positions are summed
from that list on every question, and splits are computed with exact fractions. Requests are
checked in the same order as the ledger (unknown pool, permission, idempotency key, unknown
investor, membership, amounts), so the model predicts which error a refused request raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from auptimate_core.errors import (
    IdempotencyConflict,
    LedgerValidationError,
    PermissionDenied,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from auptimate_core.money import minor_digits

Row = tuple[str, str, int]
"""(kind, investor_id, units) of one transaction."""


def split_units(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Largest remainder with exact fractions: floors, then one unit each to the largest
    remainders, ties to the smaller key. Zero weights get zero."""
    whole = sum(weights.values())
    exact = {key: Fraction(total * weight, whole) for key, weight in weights.items()}
    shares = {key: int(value) for key, value in exact.items()}
    left = total - sum(shares.values())
    ranked = sorted(exact, key=lambda key: (-(exact[key] - shares[key]), key))
    for key in ranked[:left]:
        shares[key] += 1
    return shares


@dataclass
class ModelPool:
    manager: str
    currency: str
    members: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    entries: int = 1  # the creation

    def units(self, amount: Decimal) -> int | None:
        """``amount`` in minor units, or None when it has more digits than the currency."""
        scaled = amount.scaleb(minor_digits(self.currency))
        return int(scaled) if scaled == scaled.to_integral_value() else None

    def amount(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-minor_digits(self.currency))

    def held(self, investor: str, kind: str) -> int:
        return sum(u for k, i, u in self.rows if k == kind and i == investor)

    def capital(self, investor: str) -> int:
        return self.held(investor, "investment") - self.held(investor, "refund")

    def balance(self, investor: str) -> int:
        return self.capital(investor) - self.held(investor, "fee")


@dataclass
class Outcome:
    """What the model expects: an error type, or the rows written (possibly replayed)."""

    error: type[Exception] | None = None
    rows: list[Row] = field(default_factory=list)
    pool: str = ""
    first_seq: int = 0
    replay: bool = False


class LedgerModel:
    def __init__(self) -> None:
        self.pools: dict[str, ModelPool] = {}
        self.investors: set[str] = set()
        self.receipts: dict[tuple[str, str], tuple[tuple[object, ...], Outcome]] = {}
        self.changes = 0
        """Committed changes: the number of events subscribers should have received."""

    # -- membership ---------------------------------------------------------------------------

    def create_pool(self, pool_id: str, manager: str, currency: str, actor: str) -> Outcome:
        if actor != manager:
            return Outcome(PermissionDenied)
        found = self.pools.get(pool_id)
        if found is not None:
            same = (found.manager, found.currency) == (manager, currency)
            return Outcome(None if same else IdempotencyConflict, replay=True)
        self.pools[pool_id] = ModelPool(manager, currency)
        self.changes += 1
        return Outcome()

    def register(self, investor: str) -> Outcome:
        if investor in self.investors:
            return Outcome(replay=True)
        self.investors.add(investor)
        self.changes += 1
        return Outcome()

    def admit(self, pool_id: str, investor: str, actor: str) -> Outcome:
        pool = self.pools.get(pool_id)
        if pool is None:
            return Outcome(UnknownPool)
        if actor != pool.manager:
            return Outcome(PermissionDenied)
        if investor not in self.investors:
            return Outcome(UnknownInvestor)
        if investor in pool.members:
            return Outcome(replay=True)
        pool.members.append(investor)
        pool.entries += 1
        self.changes += 1
        return Outcome()

    # -- money --------------------------------------------------------------------------------

    def _start(self, pool_id: str, key: tuple[str, str], request: tuple[object, ...],
               allowed: bool) -> tuple[ModelPool | None, Outcome | None]:
        """The checks before the request's own: pool, permission, idempotency key (the
        actor's own: ``key`` is the actor and the key sent)."""
        pool = self.pools.get(pool_id)
        if pool is None:
            return None, Outcome(UnknownPool)
        if not allowed:
            return None, Outcome(PermissionDenied)
        if key in self.receipts:
            first, outcome = self.receipts[key]
            if first != request:
                return None, Outcome(IdempotencyConflict)
            return None, Outcome(rows=outcome.rows, pool=outcome.pool,
                                 first_seq=outcome.first_seq, replay=True)
        return pool, None

    def _commit(self, pool_id: str, pool: ModelPool, key: tuple[str, str],
                request: tuple[object, ...],
                rows: list[Row]) -> Outcome:
        outcome = Outcome(rows=rows, pool=pool_id, first_seq=pool.entries + 1)
        pool.rows.extend(rows)
        pool.entries += len(rows)
        self.receipts[key] = (request, outcome)
        self.changes += 1
        return outcome

    def invest(self, pool_id: str, investor: str, amount: Decimal, actor: str,
               key: str) -> Outcome:
        request = ("invest", pool_id, investor, amount.normalize(), actor)
        pool, early = self._start(pool_id, (actor, key), request, actor == investor)
        if pool is None:
            assert early is not None
            return early
        if investor not in self.investors:
            return Outcome(UnknownInvestor)
        if investor not in pool.members:
            return Outcome(PermissionDenied)
        units = pool.units(amount)
        if units is None:
            return Outcome(ValidationError)
        return self._commit(pool_id, pool, (actor, key), request, [("investment", investor, units)])

    def refund(self, pool_id: str, investor: str, amount: Decimal, actor: str,
               key: str) -> Outcome:
        request = ("refund", pool_id, investor, amount.normalize(), actor)
        manager = self.pools[pool_id].manager if pool_id in self.pools else None
        pool, early = self._start(pool_id, (actor, key), request, actor == manager)
        if pool is None:
            assert early is not None
            return early
        if investor not in self.investors:
            return Outcome(UnknownInvestor)
        if investor not in pool.members:
            return Outcome(LedgerValidationError)
        units = pool.units(amount)
        if units is None or units > pool.balance(investor):
            return Outcome(ValidationError)
        return self._commit(pool_id, pool, (actor, key), request, [("refund", investor, units)])

    def charge_fee(self, pool_id: str, total: Decimal, actor: str, key: str) -> Outcome:
        request = ("charge_fee", pool_id, total.normalize(), actor)
        manager = self.pools[pool_id].manager if pool_id in self.pools else None
        pool, early = self._start(pool_id, (actor, key), request, actor == manager)
        if pool is None:
            assert early is not None
            return early
        units = pool.units(total)
        weights = {i: pool.capital(i) for i in sorted(pool.members) if pool.capital(i) > 0}
        if units is None or not weights:
            return Outcome(ValidationError)
        shares = split_units(units, weights)
        if any(shares[i] > pool.balance(i) for i in shares):
            return Outcome(LedgerValidationError)
        rows = [("fee", i, u) for i, u in sorted(shares.items()) if u > 0]
        return self._commit(pool_id, pool, (actor, key), request, rows)

    def distribute(self, pool_id: str, total: Decimal, actor: str, carry: Decimal | None,
                   key: str) -> Outcome:
        request = ("distribute", pool_id, total.normalize(), actor,
                   None if carry is None else carry.normalize())
        manager = self.pools[pool_id].manager if pool_id in self.pools else None
        pool, early = self._start(pool_id, (actor, key), request, actor == manager)
        if pool is None:
            assert early is not None
            return early
        units = pool.units(total)
        capital = {i: pool.capital(i) for i in sorted(pool.members) if pool.capital(i) > 0}
        if units is None or not capital:
            return Outcome(ValidationError)
        carried = 0
        if carry is None:
            shares = split_units(units, capital)
        else:
            owed = {i: max(c - pool.held(i, "distribution"), 0) for i, c in capital.items()}
            if units <= sum(owed.values()):
                shares = split_units(units, owed)
            else:
                profit = units - sum(owed.values())
                carried = round(profit * Fraction(carry))
                gains = split_units(profit - carried, capital)
                shares = {i: owed[i] + gains[i] for i in capital}
        rows: list[Row] = [("distribution", i, u) for i, u in sorted(shares.items()) if u > 0]
        if carried:
            rows.append(("carry", pool.manager, carried))
        return self._commit(pool_id, pool, (actor, key), request, rows)

    # -- answers ------------------------------------------------------------------------------

    def position(self, pool_id: str, investor: str) -> dict[str, Decimal]:
        pool = self.pools[pool_id]
        return {name: pool.amount(pool.held(investor, kind)) for name, kind in (
            ("invested", "investment"), ("refunded", "refund"), ("fees", "fee"),
            ("distributed", "distribution"))}

    def totals(self, pool_id: str) -> dict[str, Decimal]:
        pool = self.pools[pool_id]
        return {name: pool.amount(sum(u for k, _, u in pool.rows if k == kind)) for name, kind in (
            ("invested", "investment"), ("refunded", "refund"), ("fees", "fee"),
            ("distributed", "distribution"), ("carry", "carry"))}

    def entries(self) -> int:
        return sum(pool.entries for pool in self.pools.values())
