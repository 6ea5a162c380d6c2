"""The :class:`Alert` value type: what the engine tells its sinks."""

from __future__ import annotations

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
