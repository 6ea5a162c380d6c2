"""The ASGI integration: the change feed and the alerts as server-sent events, and the errors
as problem answers; then examples/fastapi_app.py served by two uvicorn processes on one
ledger, driven by a real HTTP client.

The endpoints are driven in process by a small ASGI client (:class:`Exchange`) that can leave
mid-stream; the service runs as real servers on loopback ports the system picks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from auptimate_core import Investor, ManualClock, Pool, ThresholdRule, Transaction
from auptimate_core.aio import AsyncAlertEngine, AsyncPoolLedger, Fanout, problem
from auptimate_core.alerts import Alert
from auptimate_core.errors import (
    AuptimateError,
    IdempotencyConflict,
    LedgerValidationError,
    PermissionDenied,
    StoreUnavailable,
    UnknownPool,
    ValidationError,
)
from auptimate_core.integrations.asgi import (
    AlertFeed,
    ChangeFeed,
    ProblemResponse,
    Receive,
    Scope,
    Send,
    problem_handler,
)
from auptimate_core.pools import Change

D = Decimal
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
App = Any  # an ASGI callable


class Exchange:
    """One request to an ASGI app, run as a task: what the app sends, and a client that can
    leave (``leave()`` makes ``receive`` answer ``http.disconnect``)."""

    def __init__(self, app: App, method: str = "GET", query: str = "",
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        scope: Scope = {
            "type": "http", "method": method, "path": "/", "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        }
        self._sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._asked = False
        receive: Receive = self._receive
        send: Send = self._send
        self.task = asyncio.ensure_future(app(scope, receive, send))

    async def _receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Any) -> None:
        await self._sent.put(dict(message))

    async def start(self) -> tuple[int, dict[str, str]]:
        message = await asyncio.wait_for(self._sent.get(), 5)
        assert message["type"] == "http.response.start"
        return message["status"], {k.decode(): v.decode() for k, v in message["headers"]}

    async def chunk(self) -> bytes | None:
        """The next piece of a streamed body; ``None`` once it has ended."""
        message = await asyncio.wait_for(self._sent.get(), 5)
        assert message["type"] == "http.response.body"
        if not message.get("more_body", False):
            assert message.get("body", b"") == b""
            return None
        return bytes(message["body"])

    async def frame(self) -> dict[str, str]:
        """The next server-sent event (or comment) of the stream."""
        chunk = await self.chunk()
        assert chunk is not None, "the stream ended"
        return _frame(chunk)

    async def event(self) -> dict[str, str]:
        """The next server-sent event, heartbeats skipped."""
        while "comment" in (found := await self.frame()):
            pass
        return found

    async def body(self) -> bytes:
        """The whole body of a plain answer."""
        message = await asyncio.wait_for(self._sent.get(), 5)
        assert message["type"] == "http.response.body" and not message.get("more_body")
        return bytes(message["body"])

    def leave(self) -> None:
        self._gone.set()


def _frame(chunk: bytes) -> dict[str, str]:
    text = chunk.decode()
    assert text.endswith("\n\n"), text
    if text.startswith(":"):
        return {"comment": text[1:].strip()}
    return dict(line.split(": ", 1) for line in text.strip().split("\n"))


async def _seeded(ledger: AsyncPoolLedger) -> list[Change]:
    await ledger.create_pool(Pool("p", "m"), actor="m")
    await ledger.register_investor(Investor("a"))
    await ledger.admit("p", "a", actor="m")
    return await ledger.changes()


def test_the_module_imports_no_framework_and_no_driver() -> None:
    code = ("import sys, auptimate_core.integrations.asgi; print(sorted({m.split('.')[0] for m "
            "in sys.modules} & {'fastapi', 'starlette', 'uvicorn', 'httpx', 'anyio', "
            "'pydantic', 'sqlalchemy', 'aiosqlite', 'redis'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


# -- errors as problem answers --------------------------------------------------------------


def test_a_problem_response_carries_the_errors_status_and_report(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        for error, status in [(UnknownPool("unknown pool 'z'"), 404),
                              (PermissionDenied("bob", "invest"), 403),
                              (IdempotencyConflict("k1"), 409),
                              (LedgerValidationError("total", "no capital"), 422),
                              (StoreUnavailable("cannot reach db.internal:5432"), 503)]:
            exchange = Exchange(ProblemResponse(error))
            got, headers = await exchange.start()
            body = await exchange.body()
            await exchange.task
            assert got == status
            assert headers["content-type"] == "application/problem+json"
            assert int(headers["content-length"]) == len(body)
            assert json.loads(body) == problem(error)

    with caplog.at_level(logging.ERROR, logger="auptimate_core.integrations.asgi"):
        asyncio.run(main())
    # Only the 503 is logged, with the error (whose detail the answer itself hides).
    [record] = caplog.records
    assert record.exc_info is not None and isinstance(record.exc_info[1], StoreUnavailable)


def test_the_problem_handler_answers_a_frameworks_requests() -> None:
    import httpx
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError

    app = FastAPI()
    app.add_exception_handler(AuptimateError, problem_handler)
    app.add_exception_handler(RequestValidationError, problem_handler)
    errors: dict[str, Exception] = {
        "unknown": UnknownPool("unknown pool 'fund-z'"),
        "denied": PermissionDenied("bob", "distribute"),
        "invalid": LedgerValidationError("total", "the pool has no capital"),
        "down": StoreUnavailable("cannot reach db.internal:5432"),
    }

    @app.get("/{name}")
    async def fail(name: str) -> None:
        raise errors[name]

    @app.get("/pools/{pool_id}/page")
    async def page(pool_id: str, number: int) -> None: ...

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = {name: await client.get(f"/{name}") for name in errors}
        assert {name: r.status_code for name, r in answers.items()} == {
            "unknown": 404, "denied": 403, "invalid": 422, "down": 503}
        for name, answer in answers.items():
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json() == problem(errors[name])
        assert answers["invalid"].json()["field"] == "total"
        assert "db.internal" not in answers["down"].text
        # A request the framework finds malformed: the library's 422, naming the field.
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            malformed = await client.get("/pools/fund-a/page", params={"number": "x"})
        assert malformed.status_code == 422
        assert malformed.headers["content-type"] == "application/problem+json"
        assert (malformed.json()["error"], malformed.json()["field"]) == (
            "ValidationError", "number")

    asyncio.run(main())


# -- the change feed --------------------------------------------------------------------------


def test_the_change_feed_streams_every_change_and_resumes_after_last_event_id() -> None:
    async def main() -> None:
        ledger = AsyncPoolLedger(clock=ManualClock(T0))
        changes = await _seeded(ledger)
        feed = ChangeFeed(ledger, heartbeat=0.05)

        whole = Exchange(feed)
        status, headers = await whole.start()
        assert status == 200
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["cache-control"] == "no-cache"
        frames = [await whole.frame() for _ in range(3)]
        assert [f["id"] for f in frames] == [c.cursor for c in changes]
        assert [f["event"] for f in frames] == [
            "PoolCreated", "InvestorRegistered", "InvestorAdmitted"]
        assert [Change.from_dict(json.loads(f["data"])) for f in frames] == changes
        assert await whole.frame() == {"comment": "keep-alive"}

        # A reconnecting browser sends the last id it saw; a first visit may pass ?after=.
        resumed = Exchange(feed, headers=[("Last-Event-ID", changes[0].cursor)])
        after = Exchange(feed, query=f"after={changes[1].cursor}")
        for exchange in (resumed, after):
            assert (await exchange.start())[0] == 200
        tx = await ledger.invest("p", "a", D(100), actor="a", idempotency_key="k1")
        got = [await resumed.event() for _ in range(3)]
        assert [f["event"] for f in got] == ["InvestorRegistered", "InvestorAdmitted",
                                             "Invested"]
        assert [f["event"] for f in [await after.event() for _ in range(2)]] \
            == ["InvestorAdmitted", "Invested"]
        invested = json.loads(got[2]["data"])["event"]
        assert invested["transaction"]["id"] == tx.id
        assert (await whole.event())["id"] == got[2]["id"]

        # A client that leaves ends its stream, and the ledger's follower with it.
        for exchange in (whole, resumed, after):
            exchange.leave()
        await asyncio.wait_for(asyncio.gather(whole.task, resumed.task, after.task), 5)
        assert ledger._wakeups._followers == 0

    asyncio.run(main())


def test_the_change_feed_can_start_at_the_changes_to_come() -> None:
    async def main() -> None:
        ledger = AsyncPoolLedger(clock=ManualClock(T0))
        await _seeded(ledger)
        exchange = Exchange(ChangeFeed(ledger, start="now"))
        assert (await exchange.start())[0] == 200
        await ledger.invest("p", "a", D(5), actor="a", idempotency_key="k1")
        assert (await exchange.event())["event"] == "Invested"
        exchange.leave()
        await asyncio.wait_for(exchange.task, 5)

    asyncio.run(main())


def test_bad_settings_are_refused_naming_the_setting() -> None:
    ledger, alerts = AsyncPoolLedger(), Fanout[Alert]()
    for make, field in [
        (lambda: ChangeFeed(ledger, start="later"), "start"),  # type: ignore[arg-type]
        (lambda: ChangeFeed(ledger, heartbeat=0), "heartbeat"),
        (lambda: AlertFeed(alerts, heartbeat=float("nan")), "heartbeat"),
        (lambda: AlertFeed(alerts, maxsize=0), "maxsize"),
    ]:
        with pytest.raises(ValidationError) as caught:
            make()
        assert caught.value.field == field


def test_the_change_feed_refuses_a_bad_cursor_and_other_methods_before_streaming() -> None:
    async def main() -> None:
        ledger = AsyncPoolLedger(clock=ManualClock(T0))
        await _seeded(ledger)
        feed = ChangeFeed(ledger)
        for cursor in ("not-a-cursor", "c1.0000000000000000.1"):
            exchange = Exchange(feed, headers=[("last-event-id", cursor)])
            status, headers = await exchange.start()
            answer = json.loads(await exchange.body())
            await exchange.task
            assert (status, headers["content-type"]) == (422, "application/problem+json")
            assert answer["status"] == 422 and answer["error"] == "ValidationError"
        posted = Exchange(feed, method="POST")
        status, headers = await posted.start()
        answer = json.loads(await posted.body())
        assert (status, headers["allow"], answer["error"]) == (405, "GET", "MethodNotAllowed")
        assert ledger._wakeups._followers == 0

    asyncio.run(main())


def test_the_feeds_refuse_a_scope_other_than_http() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        raise AssertionError(message)

    for app in (ChangeFeed(AsyncPoolLedger()), AlertFeed(Fanout())):
        with pytest.raises(ValueError, match="scope: .* not 'websocket'"):
            asyncio.run(app({"type": "websocket"}, receive, send))


# -- the alerts -------------------------------------------------------------------------------


def _alert(n: int) -> Alert:
    return Alert(rule="threshold", state="firing", pool_id="p", at=T0, transaction_id=f"t{n}",
                 observed=D(n), limit=D(0), message=f"alert {n}")


def test_the_alert_feed_streams_an_engines_alerts_from_when_it_connects() -> None:
    async def main() -> None:
        alerts: Fanout[Alert] = Fanout()
        async with AsyncAlertEngine([ThresholdRule(limit=D(1000))], sinks=[alerts],
                                    clock=ManualClock(T0)) as engine:
            await engine.process(Transaction("t0", "a", "p", D(5000), T0))  # nobody listens
            exchange = Exchange(AlertFeed(alerts, heartbeat=0.05))
            status, headers = await exchange.start()
            assert status == 200 and headers["content-type"].startswith("text/event-stream")
            assert await exchange.frame() == {"comment": "keep-alive"}
            raised = await engine.process(Transaction("t1", "a", "p", D(5000), T0))
            frame = await exchange.frame()
            assert frame["event"] == "firing"
            assert json.loads(frame["data"]) == raised[0].to_dict()
            exchange.leave()
            await asyncio.wait_for(exchange.task, 5)
            assert alerts.listeners == 0

    asyncio.run(main())


def test_a_client_that_falls_behind_is_told_and_its_stream_ends() -> None:
    async def main() -> None:
        alerts: Fanout[Alert] = Fanout()
        exchange = Exchange(AlertFeed(alerts, maxsize=2))
        assert (await exchange.start())[0] == 200
        for n in range(4):  # published at once, before the stream's next turn
            alerts.publish(_alert(n))
        frames = [await exchange.frame() for _ in range(3)]
        assert [f["event"] for f in frames] == ["firing", "firing", "overflow"]
        assert [json.loads(f["data"])["transaction_id"] for f in frames[:2]] == ["t0", "t1"]
        assert json.loads(frames[2]["data"])["error"] == "Overflow"
        assert await exchange.chunk() is None
        await asyncio.wait_for(exchange.task, 5)
        assert alerts.listeners == 0

    asyncio.run(main())


# -- the example service under uvicorn, two processes on one ledger ------------------------


class Served:
    """``examples/fastapi_app.py`` under uvicorn in its own process, on a port the system
    picks (read from uvicorn's start-up line)."""

    def __init__(self, ledger_url: str) -> None:
        env = {**os.environ, "LEDGER_URL": ledger_url, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir",
             str(ROOT / "examples"), "--host", "127.0.0.1", "--port", "0", "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = ""

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_started(self, deadline: float) -> str:
        while not self.url:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"uvicorn did not start:\n{''.join(self.log)}") from None
            self.log.append(line)
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
        return self.url

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@contextmanager
def _two_servers(ledger_url: str) -> Iterator[tuple[str, str]]:
    servers = [Served(ledger_url), Served(ledger_url)]
    try:
        deadline = time.monotonic() + 60
        yield servers[0].wait_started(deadline), servers[1].wait_started(deadline)
    finally:
        for server in servers:
            server.stop()


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """The server-sent events of a stream, as dicts of their fields (comments skipped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def _across_processes(a: str, b: str) -> None:
    import httpx

    manager, ann = {"X-Actor": "m1"}, {"X-Actor": "ann"}
    # 30 s a request: under the whole suite on a loaded machine, one write took over 10 s.
    async with httpx.AsyncClient(timeout=30) as client:
        (await client.put(f"{a}/pools/fund-a", headers=manager)).raise_for_status()
        (await client.put(f"{b}/pools/fund-a/members/ann", headers=manager)).raise_for_status()
        async with client.stream("GET", f"{b}/changes") as on_b, \
                client.stream("GET", f"{a}/alerts") as alerts_on_a:
            assert on_b.status_code == 200
            seen_on_b = _events(on_b.aiter_lines())
            alerted = asyncio.ensure_future(anext(_events(alerts_on_a.aiter_lines())))
            made = await client.post(f"{a}/pools/fund-a/investments", headers=ann,
                                     json={"amount": "300000", "key": "ann-1"})
            assert made.status_code == 201, made.text
            # A client following process B's stream receives what was made through A.
            event = await asyncio.wait_for(anext(seen_on_b), 10)
            assert event["event"] == "Invested"
            change = Change.from_dict(json.loads(event["data"]))
            assert change.cursor == event["id"]
            assert change.event.transactions[0].id == made.json()["id"]
            assert change.event.transactions[0].amount == D("300000")
            firing = await asyncio.wait_for(alerted, 10)
            assert firing["event"] == "firing"
            assert json.loads(firing["data"])["transaction_id"] == made.json()["id"]
            assert [alert["rule"] for alert in made.json()["alerts"]] == ["threshold"]

        # A resumes after the Last-Event-ID B's client saw; the feed is one across processes.
        again = await client.post(f"{b}/pools/fund-a/investments", headers=ann,
                                  json={"amount": "20", "key": "ann-2"})
        async with client.stream("GET", f"{a}/changes",
                                 headers={"Last-Event-ID": change.cursor}) as on_a:
            event = await asyncio.wait_for(anext(_events(on_a.aiter_lines())), 10)
        assert Change.from_dict(json.loads(event["data"])).event.transactions[0].id == \
            again.json()["id"]
        retried = await client.post(f"{a}/pools/fund-a/investments", headers=ann,
                                    json={"amount": "20", "key": "ann-2"})
        assert retried.json()["id"] == again.json()["id"]  # recorded once

        # Validation errors are 422 problem answers, from the library or from the request.
        for body in ({"amount": "-5", "key": "ann-3"}, {"amount": "many", "key": "ann-4"},
                     {"key": "ann-5"}):
            refused = await client.post(f"{b}/pools/fund-a/investments", headers=ann,
                                        json=body)
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["status"] == 422 and refused.json()["field"] == "amount"
        unknown = await client.post(f"{a}/pools/fund-z/investments", headers=ann,
                                    json={"amount": "5", "key": "ann-6"})
        assert (unknown.status_code, unknown.json()["error"]) == (404, "UnknownPool")
        stranger = await client.put(f"{a}/pools/fund-a/members/eve",
                                    headers={"X-Actor": "eve"})
        assert (stranger.status_code, stranger.json()["error"]) == (403, "PermissionDenied")

        paid = await client.post(f"{b}/pools/fund-a/distributions", headers=manager,
                                 json={"amount": "1500.00", "key": "d-1"})
        assert (paid.status_code, paid.json()) == (201, {"ann": "1500.00"})
        positions = (await client.get(f"{a}/pools/fund-a/positions")).json()
        assert [(p["investor_id"], p["invested"], p["distributed"]) for p in positions] == [
            ("ann", "300020.00", "1500.00")]
        scraped = (await client.get(f"{b}/metrics")).text
        assert 'auptimate_ledger_writes_total{kind="distribute"} 1.0' in scraped


def test_two_uvicorn_processes_on_one_sqlite_ledger(tmp_path: Path) -> None:
    with _two_servers(f"sqlite+aiosqlite:///{tmp_path}/pools.db") as (a, b):
        asyncio.run(_across_processes(a, b))


@pytest.mark.postgres
def test_two_uvicorn_processes_on_one_postgresql_ledger(postgres_url: str) -> None:
    import sqlalchemy as sa

    name = f"asgi_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
        with _two_servers(url) as (a, b):
            asyncio.run(_across_processes(a, b))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
