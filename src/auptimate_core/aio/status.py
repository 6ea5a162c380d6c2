"""The library's errors as HTTP answers: :func:`http_status` and :func:`problem`.

- 404: ``UnknownPool``, ``UnknownInvestor``;
- 403: ``PermissionDenied``;
- 409: ``IdempotencyConflict``;
- 422: ``ValidationError`` (bad input, a refused ledger request, a bad cursor);
- 503: ``StoreUnavailable`` (Redis or the database cannot be reached);
- 500: anything else (``AuditError``, other store and ledger errors, errors not of the
  library).

>>> from auptimate_core.errors import UnknownPool
>>> problem(UnknownPool("unknown pool 'fund-z'"))
{'type': 'about:blank', 'title': 'Not Found', 'status': 404, \
'detail': "unknown pool 'fund-z'", 'error': 'UnknownPool'}
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ..errors import AuptimateError, ValidationError

__all__ = ["http_status", "problem"]


def http_status(error: BaseException) -> int:
    """The HTTP status that answers ``error``: its class's ``http_status`` for an error of the
    library (see the table in the module notes), 500 for any other."""
    return error.http_status if isinstance(error, AuptimateError) else 500


def problem(error: BaseException) -> dict[str, Any]:
    """A JSON-ready problem report (RFC 9457) for ``error``: ``type``, ``title``,
    ``status``, ``detail``, the error's class name as ``error`` and, for bad input, the
    ``field`` at fault. For a status of 500 or more the detail is the title alone: a driver's
    message (host names, SQL) stays in the server's log."""
    status = http_status(error)
    title = HTTPStatus(status).phrase
    found: dict[str, Any] = {
        "type": "about:blank", "title": title, "status": status,
        "detail": str(error) if status < 500 else title,
        "error": type(error).__name__ if isinstance(error, AuptimateError) else "Error",
    }
    if isinstance(error, ValidationError):
        found["field"] = error.field
    return found
