"""The :class:`Alert` value type: what the engine tells its sinks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

import attrs

FIRING: Final = "firing"
RESOLVED: Final = "resolved"

AlertState = Literal["firing", "resolved"]


@attrs.frozen(slots=True)
class Alert:
    """One alert: a rule started (``firing``) or stopped (``resolved``) holding for a pool.

    ``rule`` is the rule's kind (``"threshold"``, ``"spike"``, ``"amount_spike"``, ...) and
    ``name`` the rule's own name (the same unless several rules of one kind run together).
    ``at`` is event time: the triggering transaction's timestamp, or the ``now`` given to
    ``AlertEngine.evaluate``. ``observed`` and ``limit`` are what was measured and what it was
    compared with (an amount for thresholds, a count or an amount for spikes). ``context`` holds
    rule-specific figures (recent and baseline counts, expected value, p-value) as text.

    >>> from datetime import UTC
    >>> alert = Alert("threshold", "firing", "p1", datetime(2026, 1, 1, tzinfo=UTC), "t9",
    ...               Decimal("300000"), Decimal("250000"), "amount 300000 > limit 250000")
    >>> alert.to_dict()["observed"], alert.to_dict()["at"]
    ('300000', '2026-01-01T00:00:00+00:00')
    """

    rule: str
    state: AlertState
    pool_id: str
    at: datetime
    transaction_id: str | None
    observed: Decimal
    limit: Decimal
    message: str
    name: str = ""
    investor_id: str | None = None
    context: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.rule)

    @property
    def key(self) -> str:
        """A stable identity: the same alert raised twice has the same key."""
        trigger = self.transaction_id if self.transaction_id is not None else self.at.isoformat()
        return f"{self.name}|{self.state}|{self.pool_id}|{trigger}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: Decimals as strings, datetimes as ISO 8601."""
        return {
            "rule": self.rule,
            "name": self.name,
            "state": self.state,
            "pool_id": self.pool_id,
            "at": self.at.isoformat(),
            "transaction_id": self.transaction_id,
            "investor_id": self.investor_id,
            "observed": str(self.observed),
            "limit": str(self.limit),
            "message": self.message,
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """The inverse of :meth:`to_dict`."""
        return cls(
            rule=data["rule"],
            state=data["state"],
            pool_id=data["pool_id"],
            at=datetime.fromisoformat(data["at"]),
            transaction_id=data.get("transaction_id"),
            observed=Decimal(data["observed"]),
            limit=Decimal(data["limit"]),
            message=data["message"],
            name=data.get("name", ""),
            investor_id=data.get("investor_id"),
            context=tuple(sorted((str(k), str(v)) for k, v in data.get("context", {}).items())),
        )


def _slot_writer() -> Callable[..., Alert]:
    """make_alert, with the slots' setters bound once in its closure."""
    slot = {field.name: Alert.__dict__[field.name].__set__ for field in attrs.fields(Alert)}
    new = object.__new__
    set_rule, set_state, set_pool = slot["rule"], slot["state"], slot["pool_id"]
    set_at, set_tx, set_observed = slot["at"], slot["transaction_id"], slot["observed"]
    set_limit, set_message, set_name = slot["limit"], slot["message"], slot["name"]
    set_investor, set_context = slot["investor_id"], slot["context"]

    def make_alert(
        rule: str, state: AlertState, pool_id: str, at: datetime, transaction_id: str | None,
        observed: Decimal, limit: Decimal, message: str, name: str, investor_id: str | None,
        context: tuple[tuple[str, str], ...],
    ) -> Alert:
        alert: Alert = new(Alert)
        set_rule(alert, rule)
        set_state(alert, state)
        set_pool(alert, pool_id)
        set_at(alert, at)
        set_tx(alert, transaction_id)
        set_observed(alert, observed)
        set_limit(alert, limit)
        set_message(alert, message)
        set_name(alert, name)
        set_investor(alert, investor_id)
        set_context(alert, context)
        return alert

    make_alert.__doc__ = """``Alert(...)`` with every field given and ``name`` not empty, written
    straight into its slots: what the rules build alerts with, on the engine's hot path.

    >>> from datetime import UTC
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> args = ("threshold", "firing", "p1", at, "t9", Decimal("3"), Decimal("2"), "m",
    ...         "threshold", None, ())
    >>> make_alert(*args) == Alert(*args)
    True
    """
    return make_alert


make_alert = _slot_writer()
