"""Server-sent events (``text/event-stream``) from a ledger's change feed and from any async
stream of items, with heartbeats, for any ASGI framework's streaming response.

:func:`change_stream` sends each committed change as one event whose ``id`` is the change's
cursor: a browser's ``EventSource`` sends it back as ``Last-Event-ID`` when it reconnects, and
the stream resumes right after it, missing and repeating nothing. Each event's ``data`` is
``Change.to_dict()`` as JSON and its ``event`` the event's type (``Invested``...).

>>> sse_message('{"a": 1}', event="Invested", id="c1.00ff.2")
b'id: c1.00ff.2\\nevent: Invested\\ndata: {"a": 1}\\n\\n'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from ..errors import ValidationError
from ..pools.changes import Change
from .ledger import AsyncPoolLedger

T = TypeVar("T")

__all__ = ["KEEP_ALIVE", "change_message", "change_stream", "event_stream", "sse_message"]

KEEP_ALIVE = b": keep-alive\n\n"
"""A comment line: it keeps proxies from closing a quiet stream and carries no event."""


def sse_message(data: str, *, event: str | None = None, id: str | None = None,
                retry: int | None = None) -> bytes:
    """One server-sent event: ``data`` (each of its lines becomes a ``data:`` line), an
    ``event`` type, an ``id`` (the ``Last-Event-ID`` a reconnecting client sends back) and a
    ``retry`` delay in milliseconds. ``event`` and ``id`` may not hold line breaks (nor ``id``
    NUL): a :class:`~auptimate_core.errors.ValidationError` names the field."""
    lines = []
    for field, value in (("id", id), ("event", event)):
        if value is None:
            continue
        if "\n" in value or "\r" in value or (field == "id" and "\0" in value):
            raise ValidationError(field, f"may not hold a line break or NUL, not {value!r}")
        lines.append(f"{field}: {value}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


async def event_stream(items: AsyncIterator[T], encode: Callable[[T], bytes], *,
                       heartbeat: float = 15.0) -> AsyncIterator[bytes]:
    """``encode(item)`` for each of ``items``, and :data:`KEEP_ALIVE` whenever none has come
    for ``heartbeat`` seconds. Closing this stream cancels the wait for the next item (an
    async generator among ``items`` ends there, running its clean-up)."""
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield KEEP_ALIVE
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                if done:
                    pending = None
            yield encode(item)
    finally:
        if pending is not None:  # cancelled, a generator's own clean-up runs
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending


async def change_stream(ledger: AsyncPoolLedger, last_event_id: str | None = None, *,
                        heartbeat: float = 15.0,
                        actor: str | None = None) -> AsyncIterator[bytes]:
    """The ledger's changes after ``last_event_id`` (a cursor; ``None`` or empty for the
    whole feed), as server-sent events, with heartbeats.

    Awaited, it checks the cursor first: a cursor of another ledger, or that is not one, is a
    :class:`~auptimate_core.errors.ValidationError` raised here, before a response starts
    (an HTTP 422 by :func:`~auptimate_core.aio.http_status`), never a stream that starts over.
    """
    after = last_event_id or None
    await ledger.changes(after=after, limit=1, actor=actor)
    return event_stream(ledger.follow(after=after, actor=actor), change_message,
                        heartbeat=heartbeat)


def change_message(change: Change) -> bytes:
    """One change as a server-sent event (see the module notes)."""
    return sse_message(json.dumps(change.to_dict(), separators=(",", ":")),
                       event=type(change.event).__name__, id=change.cursor)
