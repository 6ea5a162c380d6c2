"""One error hierarchy for the whole library.

Every error the library raises on purpose is an :class:`AuptimateError`. Errors about bad input
are also :class:`ValueError` (through :class:`ValidationError`) and name the field at fault, so
callers can catch either the library's type or the built-in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AuptimateError(Exception):
    """Base class of every error raised by auptimate_core.

    ``http_status`` is the status a web host answers it with (500 unless a subclass says
    otherwise; see :func:`auptimate_core.aio.status.problem` for a whole answer)."""

    http_status: int = 500


class ValidationError(AuptimateError, ValueError):
    """A value failed validation. ``field`` names the offending field."""

    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class InvalidURL(ValidationError):
    """A storage URL is malformed or names no known backend (the field is ``url``).

    ``url`` is the URL as given with any password replaced by ``***``; ``schemes`` are the
    schemes known for that kind of storage (empty when the URL could not be read at all).
    """

    def __init__(self, url: str, message: str, schemes: tuple[str, ...] = ()) -> None:
        super().__init__("url", message)
        self.url = url
        self.schemes = schemes


class InvalidAmount(ValidationError):
    """An amount is not a positive, finite Decimal (or int)."""


class InvalidTimestamp(ValidationError):
    """A timestamp is not a timezone-aware datetime."""


class InvalidId(ValidationError):
    """An identifier is not a non-empty string."""


class InvalidKind(ValidationError):
    """A transaction kind is not one of the known kinds."""


class RowError(ValidationError):
    """A row of an input file could not be turned into a transaction.

    ``line`` is the 1-based line number in the file (for CSV, the line the record ends on).
    """

    def __init__(self, line: int, field: str, message: str, raw: str = "") -> None:
        self.line = line
        self.raw = raw
        super().__init__(field, message)
        self.args = (f"line {line}: {field}: {message}",)

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


class LateEvent(ValidationError):
    """Transactions were kept out of the windows: ``late`` ones (older than the store's allowed
    lateness allows) and ``future`` ones (too far ahead of the engine's clock). Raised only when
    asked for (``AlertEngine(on_late="raise")``), after the whole call: ``alerts`` are all the
    alerts of the call, which the sinks have already received. (``late`` and ``future`` hold
    :class:`~auptimate_core.Transaction` values and ``alerts``
    :class:`~auptimate_core.alerts.Alert` values; they are typed ``Any`` here because this
    module is below every other and imports none of them.)"""

    def __init__(
        self, field: str, message: str, *, late: Sequence[Any] = (),
        future: Sequence[Any] = (), alerts: Sequence[Any] = (),
    ) -> None:
        super().__init__(field, message)
        self.late = list(late)
        self.future = list(future)
        self.alerts = list(alerts)

    @property
    def transactions(self) -> list[Any]:
        """The late transactions, then the future ones."""
        return self.late + self.future


class StoreError(AuptimateError):
    """A window store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store's server could not be reached (after the allowed retries)."""

    http_status = 503


class MissingExtra(AuptimateError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed: pip install 'auptimate-core[{extra}]'"
        )
        self.module = module
        self.extra = extra


class LedgerError(AuptimateError):
    """Base class of the pools ledger's errors."""


class PermissionDenied(LedgerError):
    """The actor may not perform the action. Nothing was written."""

    http_status = 403

    def __init__(self, actor: str, action: str, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"{actor!r} may not {action}{detail}")
        self.actor = actor
        self.action = action


class IdempotencyConflict(LedgerError):
    """An idempotency key was reused for a different request."""

    http_status = 409


class UnknownPool(LedgerError, KeyError):
    """No pool has this id."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown pool"


class UnknownInvestor(LedgerError, KeyError):
    """No investor has this id."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown investor"


class AuditError(LedgerError):
    """The ledger's hash chain does not verify: an entry was edited, deleted or reordered."""


class LedgerValidationError(LedgerError, ValidationError):
    """A ledger request is invalid (for example a distribution to a pool with no capital)."""
