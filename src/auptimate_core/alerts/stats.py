"""What an engine counts, and how it reports the transactions it kept out of the windows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from ..domain import Transaction
from ..store import Status

logger = logging.getLogger("auptimate_core.alerts")


class EngineStats:
    """Counters of what an engine has done; read them, don't write them.

    ``late`` and ``future`` count the transactions kept out of the windows (older than the
    store's allowed lateness, or more than ``max_ahead`` ahead of the clock); their
    transaction rules ran all the same. ``duplicates`` were not processed at all.
    """

    __slots__ = ("alerts", "duplicates", "future", "late", "processed", "sink_failures")

    def __init__(self) -> None:
        self.processed = 0
        self.duplicates = 0
        self.late = 0
        self.future = 0
        self.alerts = 0
        self.sink_failures = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def count_held(
        self, statuses: Sequence[Status], row: Callable[[int], Transaction]
    ) -> tuple[int, list[Transaction], list[Transaction]]:
        """Count a batch's duplicates, late and future transactions (``row(i)`` gives the
        ``i``-th); return the count of the first and the others themselves."""
        late: list[Transaction] = []
        future: list[Transaction] = []
        duplicates = 0
        for i, status in enumerate(statuses):
            if status is Status.DUPLICATE:
                duplicates += 1
            elif status is Status.LATE:
                late.append(row(i))
            elif status is Status.FUTURE:
                future.append(row(i))
        self.duplicates += duplicates
        self.late += len(late)
        self.future += len(future)
        return duplicates, late, future


def log_held(
    store: str, max_ahead: timedelta, late: list[Transaction], future: list[Transaction]
) -> None:
    """One warning for the late transactions of a batch and one for those ahead of the clock,
    each naming how many and the first."""
    for what, found in (("older than the allowed lateness", late),
                        (f"more than {max_ahead} ahead of the clock", future)):
        if found:
            logger.warning(
                "%d transaction(s) %s kept out of the windows (transaction rules ran), "
                "first %r at %s", len(found), what, found[0].id, found[0].timestamp.isoformat(),
                extra={"store": store, "count": len(found), "transaction_id": found[0].id,
                       "pool_id": found[0].pool_id})
