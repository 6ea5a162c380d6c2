"""Feed every committed row of a user's SQLAlchemy model into an :class:`AlertEngine`.

Usage: ``watch_model(SessionFactory, Payment, engine)`` once, at start-up.

Rows are collected when the session flushes them and handed to the engine only after the
session's transaction commits: a rolled-back row never reaches the engine, and a retried commit
cannot count a row twice (the engine counts each transaction id once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..alerts.engine import AlertEngine
from ..domain import Transaction
from ..errors import MissingExtra

try:
    from sqlalchemy import event
    from sqlalchemy.orm import Session, sessionmaker
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

logger = logging.getLogger("auptimate_core.integrations.sqlalchemy")

_PENDING = "auptimate_pending_transactions"

Converter = Callable[[Any], Transaction]


def columns_converter(
    *,
    id: str = "id",
    investor_id: str = "investor_id",
    pool_id: str = "pool_id",
    amount: str = "amount",
    timestamp: str = "timestamp",
    kind: str | None = None,
) -> Converter:
    """A converter reading a model instance's attributes by the given names."""

    def convert(row: Any) -> Transaction:
        value = getattr(row, amount)
        return Transaction(
            id=str(getattr(row, id)),
            investor_id=str(getattr(row, investor_id)),
            pool_id=str(getattr(row, pool_id)),
            amount=value if isinstance(value, Decimal | int) else Decimal(str(value)),
            timestamp=getattr(row, timestamp),
            kind=getattr(row, kind) if kind else "investment",
        )

    return convert


class ModelWatch:
    """The listeners installed by :func:`watch_model`; :meth:`remove` uninstalls them."""

    def __init__(
        self,
        target: type[Session] | sessionmaker[Any] | Session,
        model: type[Any],
        engine: AlertEngine,
        convert: Converter,
        on_error: Callable[[BaseException], object] | None,
    ) -> None:
        self.target = target
        self.model = model
        self.engine = engine
        self.convert = convert
        self.on_error = on_error
        self._listeners: list[tuple[str, Callable[..., None]]] = [
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        ]
        for name, fn in self._listeners:
            event.listen(target, name, fn)

    def _after_flush(self, session: Session, _context: Any) -> None:
        rows = [obj for obj in session.new if isinstance(obj, self.model)]
        if rows:
            # Converted now, while the values are loaded: after the commit they are expired.
            session.info.setdefault(_PENDING, []).extend(self.convert(row) for row in rows)

    def _after_commit(self, session: Session) -> None:
        pending: list[Transaction] = session.info.pop(_PENDING, [])
        if not pending:
            return
        try:
            self.engine.process_many(pending)
        except Exception as error:  # the commit stands; the caller decides what to do
            logger.error("alert engine failed on %d committed rows: %s", len(pending), error)
            if self.on_error is None:
                raise
            self.on_error(error)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_PENDING, None)

    def remove(self) -> None:
        for name, fn in self._listeners:
            event.remove(self.target, name, fn)


def watch_model(
    target: type[Session] | sessionmaker[Any] | Session,
    model: type[Any],
    engine: AlertEngine,
    convert: Converter | None = None,
    *,
    on_error: Callable[[BaseException], object] | None = None,
) -> ModelWatch:
    """Send every committed new ``model`` row of sessions of ``target`` through ``engine``.

    ``target`` is a Session class, a sessionmaker or one Session. ``convert`` turns a row into a
    :class:`~auptimate_core.Transaction` (default: attributes named like the Transaction's
    fields; see :func:`columns_converter`). An engine error after a commit is passed to
    ``on_error`` when given, else raised from ``commit()`` (the data is committed either way).
    """
    return ModelWatch(target, model, engine, convert or columns_converter(), on_error)
