"""What a web service needs around the async ledger and engine: the thread-to-asyncio fan-out,
server-sent events resuming from Last-Event-ID, and the errors as HTTP statuses."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from auptimate_core import (
    Investor,
    ManualClock,
    PermissionDenied,
    Pool,
    ThresholdRule,
    Transaction,
)
from auptimate_core.aio import (
    AsyncAlertEngine,
    AsyncPoolLedger,
    Fanout,
    Overflow,
    change_stream,
    event_stream,
    http_status,
    problem,
    sse_message,
)
from auptimate_core.aio.sse import KEEP_ALIVE
from auptimate_core.alerts import Alert
from auptimate_core.errors import (
    AuditError,
    IdempotencyConflict,
    InvalidURL,
    LedgerError,
    LedgerValidationError,
    StoreError,
    StoreUnavailable,
    UnknownInvestor,
    UnknownPool,
    ValidationError,
)
from auptimate_core.pools import Change, LedgerEvent

D = Decimal
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


# -- fan-out ------------------------------------------------------------------------------------


def test_items_published_from_threads_reach_every_listener_in_order() -> None:
    async def main() -> None:
        fanout: Fanout[int] = Fanout()
        first, second = fanout.listen(), fanout.listen()
        fanout.publish(0)  # from the loop's own thread
        thread = threading.Thread(target=lambda: [fanout.publish(n) for n in range(1, 51)])
        thread.start()
        await asyncio.to_thread(thread.join)
        got = [await anext(first) for _ in range(51)]
        assert got == list(range(51))
        assert [await anext(second) for _ in range(51)] == got
        first.close()
        second.close()
        assert fanout.listeners == 0
        fanout.publish(99)  # nobody listens: dropped

    asyncio.run(main())


def test_a_listener_that_falls_behind_is_dropped_and_told() -> None:
    async def main() -> None:
        fanout: Fanout[int] = Fanout(maxsize=3)
        slow, quick = fanout.listen(), fanout.listen(maxsize=100)
        for n in range(5):
            fanout.publish(n)
        assert [await anext(slow) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(Overflow):
            await anext(slow)
        assert [await anext(quick) for _ in range(5)] == [0, 1, 2, 3, 4]
        assert fanout.listeners == 1
        async with quick:
            pass
        assert [item async for item in quick] == []

    asyncio.run(main())


def test_the_fanout_takes_a_ledgers_events_and_an_engines_alerts() -> None:
    async def main() -> None:
        events: Fanout[LedgerEvent] = Fanout()
        alerts: Fanout[Alert] = Fanout()
        ledger = AsyncPoolLedger(clock=ManualClock(T0))
        engine = AsyncAlertEngine([ThresholdRule(limit=D(1000))], sinks=[alerts.publish],
                                  clock=ManualClock(T0))
        ledger.subscribe(events.publish)
        async with events.listen() as seen_events, alerts.listen() as seen_alerts:
            await ledger.create_pool(Pool("p", "m"), actor="m")
            await ledger.register_investor(Investor("a"))
            await ledger.admit("p", "a", actor="m")
            tx = await ledger.invest("p", "a", D(5000), actor="a", idempotency_key="k")
            raised = await engine.process(tx)
            assert [type(await anext(seen_events)).__name__ for _ in range(4)] == [
                "PoolCreated", "InvestorRegistered", "InvestorAdmitted", "Invested"]
            assert [await anext(seen_alerts)] == raised
        await engine.close()

    asyncio.run(main())


# -- server-sent events -------------------------------------------------------------------------


def test_an_sse_message_splits_its_lines_and_refuses_line_breaks_in_id_and_event() -> None:
    assert sse_message("a\nb", event="E", id="7", retry=1500) == (
        b"id: 7\nevent: E\nretry: 1500\ndata: a\ndata: b\n\n")
    assert sse_message("") == b"data: \n\n"
    for field, value in (("id", "a\nb"), ("event", "x\ry"), ("id", "a\0b")):
        with pytest.raises(ValidationError) as caught:
            sse_message("d", **{field: value})  # type: ignore[arg-type]
        assert caught.value.field == field


def _frames(chunks: list[bytes]) -> list[dict[str, str]]:
    found = []
    for chunk in chunks:
        if chunk == KEEP_ALIVE:
            found.append({"comment": "keep-alive"})
            continue
        fields = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n"))
        found.append(fields)
    return found


def test_the_change_stream_resumes_after_last_event_id(tmp_path: Path) -> None:
    async def main() -> None:
        url = f"sqlite+aiosqlite:///{tmp_path}/sse.db"
        async with AsyncPoolLedger.from_url(url, clock=ManualClock(T0)) as ledger:
            await ledger.create_pool(Pool("p", "m"), actor="m")
            await ledger.register_investor(Investor("a"))
            changes = await ledger.changes()

            stream = await change_stream(ledger, None, heartbeat=5)
            first = _frames([await anext(stream), await anext(stream)])
            await stream.aclose()  # type: ignore[attr-defined]
            assert [f["id"] for f in first] == [c.cursor for c in changes]
            assert [f["event"] for f in first] == ["PoolCreated", "InvestorRegistered"]
            assert Change.from_dict(json.loads(first[1]["data"])) == changes[1]

            # A client that reconnects sends the last id it saw and gets what came after.
            resumed = await change_stream(ledger, first[0]["id"], heartbeat=0.05)
            await ledger.admit("p", "a", actor="m")
            got = _frames([await anext(resumed) for _ in range(3)])
            await resumed.aclose()  # type: ignore[attr-defined]
            assert [f.get("event") for f in got] == [
                "InvestorRegistered", "InvestorAdmitted", None]
            assert got[2] == {"comment": "keep-alive"}

            with pytest.raises(ValidationError) as caught:
                await change_stream(ledger, "c1.0000000000000000.1")
            assert http_status(caught.value) == 422
            with pytest.raises(PermissionDenied):
                await change_stream(ledger, None, actor="m")

    asyncio.run(main())


def test_an_event_stream_of_alerts_sends_heartbeats_while_quiet() -> None:
    async def main() -> None:
        alerts: Fanout[Alert] = Fanout()
        engine = AsyncAlertEngine([ThresholdRule(limit=D(10))], sinks=[alerts],
                                  clock=ManualClock(T0))
        listener = alerts.listen()
        stream = event_stream(listener, lambda a: sse_message(json.dumps(a.to_dict())),
                              heartbeat=0.02)
        assert await anext(stream) == KEEP_ALIVE
        await engine.process(Transaction("t1", "a", "p", D(11), T0))
        frame = await anext(stream)
        assert json.loads(frame.decode().removeprefix("data: "))["transaction_id"] == "t1"
        await stream.aclose()  # type: ignore[attr-defined]
        listener.close()
        await engine.close()

    asyncio.run(main())


# -- errors as HTTP answers ---------------------------------------------------------------------


def test_each_error_has_its_http_status() -> None:
    cases = [
        (UnknownPool("unknown pool 'z'"), 404), (UnknownInvestor("unknown investor 'z'"), 404),
        (PermissionDenied("bob", "distribute"), 403), (IdempotencyConflict("k"), 409),
        (ValidationError("amount", "must be positive"), 422),
        (LedgerValidationError("total", "no capital"), 422),
        (InvalidURL("x://", "no backend"), 422),
        (StoreUnavailable("redis down"), 503), (StoreError("odd reply"), 500),
        (AuditError("entry 3 edited"), 500), (LedgerError("db error"), 500),
        (RuntimeError("bug"), 500),
    ]
    assert [(type(e).__name__, http_status(e)) for e, _ in cases] == [
        (type(e).__name__, status) for e, status in cases]


def test_a_problem_report_hides_server_side_details() -> None:
    assert problem(ValidationError("amount", "must be positive")) == {
        "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
        "detail": "amount: must be positive", "error": "ValidationError", "field": "amount"}
    hidden = problem(StoreUnavailable("cannot reach db.internal:5432 as app"))
    assert hidden["status"] == 503 and "db.internal" not in json.dumps(hidden)
    assert problem(KeyError("x"))["error"] == "Error"
