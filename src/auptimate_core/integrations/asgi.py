"""ASGI endpoints for web services on :mod:`auptimate_core.aio`: a ledger's change feed and
the alerts as server-sent events, and the library's errors as RFC 9457 problem answers.

Everything here is a plain ASGI callable (``await app(scope, receive, send)``), so it runs
under any ASGI server and mounts in any ASGI framework without this module importing one:

- :class:`ChangeFeed`: ``GET`` streams the ledger's committed changes, each event's id its
  cursor; a client that reconnects sends the last id it saw as ``Last-Event-ID`` and the
  stream resumes right after it (a first connection may name a cursor as ``?after=``);
- :class:`AlertFeed`: ``GET`` streams the alerts published to a
  :class:`~auptimate_core.aio.Fanout` (made an engine's sink) from the moment it connects;
- :class:`ProblemResponse` answers one error as ``application/problem+json`` with the
  error's status (:func:`~auptimate_core.aio.http_status`), and :func:`problem_handler` is
  an exception handler for Starlette and FastAPI that answers with it (a framework's report
  of a malformed request too, as the library's 422).

With FastAPI or Starlette::

    app.add_route("/changes", ChangeFeed(ledger), methods=["GET"])
    app.add_route("/alerts", AlertFeed(alerts), methods=["GET"])
    app.add_exception_handler(AuptimateError, problem_handler)
    app.add_exception_handler(RequestValidationError, problem_handler)  # FastAPI's

Both feeds hold every pool's data: put them behind the application's authentication. A feed
stops following when its client disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs

from ..aio.fanout import Fanout, Overflow
from ..aio.ledger import AsyncPoolLedger
from ..aio.sse import change_stream, event_stream, sse_message
from ..aio.status import http_status, problem
from ..alerts.alert import Alert
from ..errors import AuptimateError, ValidationError
from ..pools.changes import check_interval

__all__ = [
    "AlertFeed",
    "ChangeFeed",
    "MethodNotAllowed",
    "ProblemResponse",
    "Receive",
    "RequestFaults",
    "Scope",
    "Send",
    "alert_message",
    "problem_handler",
    "request_fault",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # a proxy (nginx) passes each event on at once
]


class ProblemResponse:
    """An ASGI answer to ``error``: its status and its problem report
    (:func:`~auptimate_core.aio.problem`) as ``application/problem+json``. A status of 500
    or more is logged with the error's traceback (the report itself hides the details)."""

    def __init__(self, error: BaseException, *, headers: dict[str, str] | None = None) -> None:
        self.error = error
        self.status = http_status(error)
        self.body = json.dumps(problem(error), separators=(",", ":")).encode()
        self.headers = dict(headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.status >= 500:
            logger.error("%s answered %d", type(self.error).__name__, self.status,
                         exc_info=self.error)
        headers = [(b"content-type", b"application/problem+json"),
                   (b"content-length", str(len(self.body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@runtime_checkable
class RequestFaults(Protocol):
    """A framework's report of a malformed request (FastAPI's ``RequestValidationError``,
    pydantic's ``ValidationError``): each fault a mapping with its ``loc`` (where, e.g.
    ``("body", "amount")``) and ``msg``."""

    def errors(self) -> Sequence[Mapping[str, Any]]: ...


def request_fault(report: RequestFaults) -> ValidationError:
    """The first fault of ``report`` as the library's :class:`ValidationError`, naming the
    field (the last part of its ``loc``; ``body`` for a missing or unreadable body).

    >>> class Report:
    ...     def errors(self): return [{"loc": ("body", "amount"), "msg": "Field required"}]
    >>> request_fault(Report())
    ValidationError('amount: Field required')
    """
    faults = report.errors()
    if not faults:
        return ValidationError("request", "is malformed")
    first = faults[0]
    where = [str(part) for part in first.get("loc", ()) if not isinstance(part, int)]
    return ValidationError(where[-1] if where else "request", str(first.get("msg", "invalid")))


async def problem_handler(request: object, error: Exception) -> ProblemResponse:
    """An exception handler with Starlette's and FastAPI's signature:
    ``app.add_exception_handler(AuptimateError, problem_handler)`` answers the library's
    errors as :class:`ProblemResponse` (404 unknown pool, 422 bad input, 403, 409, 503...).
    Registered for a framework's malformed-request error (:class:`RequestFaults`, FastAPI's
    ``RequestValidationError``) it answers that as the library's 422, naming the field;
    registered for ``Exception``, anything else as a bare 500."""
    if isinstance(error, RequestFaults):
        return ProblemResponse(request_fault(error))
    return ProblemResponse(error)


class MethodNotAllowed(AuptimateError):
    """A feed was asked with another method than ``GET`` (answered 405, with ``Allow``)."""

    http_status = 405


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope, name: str) -> str | None:
    values = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"),
                      keep_blank_values=True).get(name)
    return values[-1] if values else None


def _check_get(scope: Scope) -> None:
    if scope["type"] != "http":
        raise ValueError(f"scope: an event stream answers HTTP requests, not {scope['type']!r}")
    if scope["method"] != "GET":
        raise MethodNotAllowed(f"{scope['method']} is not allowed here: use GET")


async def _stream(receive: Receive, send: Send, events: AsyncIterator[bytes],
                  end: Callable[[Exception], bytes | None]) -> None:
    """Send ``events`` as the body of a ``text/event-stream`` answer until they end or the
    client leaves. An error of ``events`` after the answer has started: ``end(error)`` gives
    the stream's last bytes, or ``None`` to raise the error to the server."""

    async def pump() -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": _STREAM_HEADERS})
        try:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception as error:
            last = end(error)
            if last is None:
                raise
            await send({"type": "http.response.body", "body": last, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    sending = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({sending, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, watching):
            task.cancel()
        await asyncio.gather(sending, watching, return_exceptions=True)
        if isinstance(events, AsyncGenerator):  # its clean-up (a follower leaving) runs now
            await events.aclose()
    if sending.done() and not sending.cancelled():
        error = sending.exception()
        if error is not None and not isinstance(error, OSError):  # OSError: the client left
            raise error


class ChangeFeed:
    """``GET``: the changes of ``ledger`` as server-sent events
    (:func:`~auptimate_core.aio.change_stream`): every committed change, in order, each
    event's ``id`` its cursor, ``event`` its type and ``data`` ``Change.to_dict()`` as JSON;
    a comment every ``heartbeat`` seconds while nothing commits.

    Where it starts: after the request's ``Last-Event-ID`` header (a reconnecting browser's
    ``EventSource`` sends it), else after its ``after`` query parameter, else at the start of
    the feed (``start="all"``) or at the changes committed from now on (``start="now"``).
    A cursor that is not one of this ledger's is answered 422 (problem JSON) before any
    stream starts, and an unreachable database 503; another method than ``GET`` 405.
    """

    def __init__(self, ledger: AsyncPoolLedger, *, heartbeat: float = 15.0,
                 start: Literal["all", "now"] = "all") -> None:
        if start not in ("all", "now"):
            raise ValidationError("start", f"must be 'all' or 'now', not {start!r}")
        self.ledger = ledger
        self.heartbeat = check_interval(heartbeat, "heartbeat")
        self.start = start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            _check_get(scope)
            after = _header(scope, b"last-event-id") or _query(scope, "after") or None
            if after is None and self.start == "now":
                after = await self.ledger.cursor()
            events = await change_stream(self.ledger, after, heartbeat=self.heartbeat)
        except AuptimateError as error:
            await ProblemResponse(error, headers=_allow(error))(scope, receive, send)
            return
        await _stream(receive, send, events, _feed_ended)


def _feed_ended(error: Exception) -> bytes | None:
    if not isinstance(error, AuptimateError):
        return None
    # The database went away mid-stream (a lost LISTEN connection): ending the stream makes
    # the client reconnect, and its Last-Event-ID resumes it where it was.
    logger.warning("change feed stream ended: %s", error)
    return b""


def alert_message(alert: Alert) -> bytes:
    """One alert as a server-sent event: ``event`` its state (``firing``, ``resolved``),
    ``data`` ``Alert.to_dict()`` as JSON."""
    return sse_message(json.dumps(alert.to_dict(), separators=(",", ":")), event=alert.state)


def _overflowed(error: Exception) -> bytes | None:
    if not isinstance(error, Overflow):
        return None
    return sse_message(json.dumps({"error": "Overflow", "detail": str(error)}),
                       event="overflow")


class AlertFeed:
    """``GET``: the alerts published to ``alerts`` (a :class:`~auptimate_core.aio.Fanout`
    given to an engine as a sink) from the moment the client connects, as server-sent events
    (:func:`alert_message`), with a comment every ``heartbeat`` seconds while none comes.

    Alerts are not kept: what a client missed while away is gone (the engine's sinks or the
    alert log hold them). A client that falls ``maxsize`` alerts behind (the fan-out's bound
    unless given) gets an ``overflow`` event and the stream ends; its ``EventSource``
    reconnects. Another method than ``GET`` is answered 405.
    """

    def __init__(self, alerts: Fanout[Alert], *, heartbeat: float = 15.0,
                 maxsize: int | None = None) -> None:
        if maxsize is not None and (isinstance(maxsize, bool) or not isinstance(maxsize, int)
                                    or maxsize < 1):
            raise ValidationError("maxsize", f"must be an int of at least 1, not {maxsize!r}")
        self.alerts = alerts
        self.heartbeat = check_interval(heartbeat, "heartbeat")
        self.maxsize = maxsize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            _check_get(scope)
        except AuptimateError as error:
            await ProblemResponse(error, headers=_allow(error))(scope, receive, send)
            return
        with contextlib.closing(self.alerts.listen(self.maxsize)) as listener:
            events = event_stream(listener, alert_message, heartbeat=self.heartbeat)
            await _stream(receive, send, events, _overflowed)


def _allow(error: AuptimateError) -> dict[str, str] | None:
    return {"Allow": "GET"} if isinstance(error, MethodNotAllowed) else None
