"""A pool service on FastAPI: pools, members, investments, distributions, positions, metrics,
and the ledger's changes and the alerts pushed to browsers as server-sent events.

    LEDGER_URL=sqlite+aiosqlite:///pools.db uvicorn fastapi_service:app --app-dir examples

Run as many server processes as you like on one ledger (``--workers 4``, or
``postgresql+psycopg://...`` for many machines): an investment made through any of them
reaches the ``/changes`` stream of every one. ``/alerts`` streams the alerts of the process's
own engine. ``X-Actor`` stands in for your authentication. The library's errors answer as
problem JSON (RFC 9457): an unknown pool 404, a bad amount 422, a stranger's request 403.

Run as a script (``python examples/fastapi_service.py``) it serves itself on a free loopback
port, on a ledger in a temporary directory, and checks what a client sees.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from auptimate_core import Investor, Pool, ThresholdRule
from auptimate_core.aio import AsyncAlertEngine, AsyncPoolLedger, Fanout
from auptimate_core.alerts import Alert
from auptimate_core.errors import AuptimateError, ValidationError
from auptimate_core.integrations.asgi import (
    AlertFeed,
    ChangeFeed,
    ProblemResponse,
    problem_handler,
)
from auptimate_core.metrics import disable_metrics, enable_metrics


class NewPool(BaseModel):
    id: str
    name: str = ""


class Member(BaseModel):
    investor: str


class Investment(BaseModel):
    amount: Decimal
    key: str  # the client's idempotency key: a retried request is recorded once


class Distribution(BaseModel):
    total: Decimal
    key: str


async def malformed(request: Request, error: RequestValidationError) -> ProblemResponse:
    """A missing or mistyped field: the same 422 problem answer as a bad value."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"][1:]) or "body"
    return ProblemResponse(ValidationError(field, first["msg"]))


def create_app(ledger_url: str) -> FastAPI:
    ledger = AsyncPoolLedger.from_url(ledger_url)
    alerts: Fanout[Alert] = Fanout()
    engine = AsyncAlertEngine([ThresholdRule(limit=Decimal("250000"))], sinks=[alerts])

    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ledger.open()  # an unreachable database fails the start, not a request
        enable_metrics(registry)
        yield
        disable_metrics()
        await engine.close()
        await ledger.close()

    app = FastAPI(title="pools", lifespan=lifespan)
    app.add_exception_handler(AuptimateError, problem_handler)
    app.add_exception_handler(RequestValidationError, malformed)
    app.add_route("/changes", ChangeFeed(ledger, start="now"), methods=["GET"])
    app.add_route("/alerts", AlertFeed(alerts), methods=["GET"])

    @app.post("/pools", status_code=201)
    async def create_pool(body: NewPool, x_actor: str = Header()) -> dict[str, str]:
        pool = await ledger.create_pool(Pool(body.id, x_actor, body.name), actor=x_actor)
        return {"id": pool.id, "manager_id": pool.manager_id}

    @app.post("/pools/{pool_id}/members", status_code=204)
    async def admit(pool_id: str, body: Member, x_actor: str = Header()) -> None:
        await ledger.register_investor(Investor(body.investor))
        await ledger.admit(pool_id, body.investor, actor=x_actor)

    @app.post("/pools/{pool_id}/investments", status_code=201)
    async def invest(pool_id: str, body: Investment, x_actor: str = Header()) -> dict[str, Any]:
        tx = await ledger.invest(pool_id, x_actor, body.amount, actor=x_actor,
                                 idempotency_key=body.key)
        raised = await engine.process(tx)
        return {"id": tx.id, "amount": str(tx.amount), "at": tx.timestamp.isoformat(),
                "alerts": [alert.to_dict() for alert in raised]}

    @app.post("/pools/{pool_id}/distributions", status_code=201)
    async def distribute(pool_id: str, body: Distribution,
                         x_actor: str = Header()) -> list[dict[str, str]]:
        txs = await ledger.distribute(pool_id, body.total, actor=x_actor,
                                      idempotency_key=body.key)
        await engine.process_many(txs)
        return [{"investor_id": tx.investor_id, "amount": str(tx.amount)} for tx in txs]

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/pools/{pool_id}/positions")
    async def positions(pool_id: str) -> list[dict[str, str]]:
        return [position.to_dict() for position in await ledger.positions(pool_id)]

    return app


app = create_app(os.environ.get("LEDGER_URL", "sqlite+aiosqlite:///pools.db"))


# -- run as a script: serve on a free port and check what a client sees ---------------------


async def _events(lines: AsyncIterator[str], n: int) -> list[str]:
    """The types of the next ``n`` server-sent events (heartbeats skipped)."""
    found: list[str] = []
    async for line in lines:
        if line.startswith("event: "):
            found.append(line.removeprefix("event: "))
            if len(found) == n:
                break
    return found


async def _check(base: str) -> None:
    import asyncio

    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        manager, ann = {"X-Actor": "m1"}, {"X-Actor": "ann"}
        (await client.post("/pools", json={"id": "fund-a"}, headers=manager)).raise_for_status()
        (await client.post("/pools/fund-a/members", json={"investor": "ann"},
                           headers=manager)).raise_for_status()
        async with client.stream("GET", "/changes") as changes, \
                client.stream("GET", "/alerts") as alerting:
            seen = asyncio.ensure_future(_events(changes.aiter_lines(), 1))
            fired = asyncio.ensure_future(_events(alerting.aiter_lines(), 1))
            made = await client.post("/pools/fund-a/investments", headers=ann,
                                     json={"amount": "300000", "key": "ann-1"})
            print("invest:", made.status_code, made.json()["amount"],
                  [alert["rule"] for alert in made.json()["alerts"]])
            print("/changes:", await asyncio.wait_for(seen, 10))
            print("/alerts:", await asyncio.wait_for(fired, 10))
        refused = await client.post("/pools/fund-a/investments", headers=ann,
                                    json={"amount": "-5", "key": "ann-2"})
        print("negative amount:", refused.status_code, refused.headers["content-type"],
              refused.json()["field"])
        unknown = await client.get("/changes", headers={"Last-Event-ID": "not-a-cursor"})
        print("bad Last-Event-ID:", unknown.status_code, unknown.json()["title"])
        held = (await client.get("/pools/fund-a/positions")).json()
        print("positions:", [(p["investor_id"], p["invested"]) for p in held])
        paid = await client.post("/pools/fund-a/distributions", headers=manager,
                                 json={"total": "1500.00", "key": "d-1"})
        print("distribution:", paid.status_code, paid.json())
        scraped = (await client.get("/metrics")).text
        writes = [line for line in scraped.splitlines()
                  if line.startswith("auptimate_ledger_writes_total")]
        print("/metrics:", writes)
        assert made.status_code == 201 and refused.status_code == 422
        assert unknown.status_code == 422 and held[0]["invested"] == "300000.00"
        assert paid.status_code == 201 and paid.json() == [
            {"investor_id": "ann", "amount": "1500.00"}]
        assert any('kind="invest"' in line for line in writes)


def main() -> None:
    import asyncio
    import tempfile
    import threading
    import time

    import uvicorn

    with tempfile.TemporaryDirectory() as where:
        served = create_app(f"sqlite+aiosqlite:///{where}/pools.db")
        server = uvicorn.Server(uvicorn.Config(served, host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run)
        thread.start()
        while not server.started and thread.is_alive():
            time.sleep(0.01)
        if not server.started:
            raise SystemExit("the server did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            asyncio.run(_check(f"http://127.0.0.1:{port}"))
        finally:
            server.should_exit = True
            thread.join()


if __name__ == "__main__":
    main()
