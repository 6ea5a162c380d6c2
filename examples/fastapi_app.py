"""A pool service on FastAPI: invest, distribute, positions, live updates, alerts, /metrics.

    LEDGER_URL=postgresql+psycopg://user@host/pools uvicorn fastapi_app:app --app-dir examples

Any number of server processes on one ledger: ``GET /changes`` streams every process's
commits as server-sent events (resuming after ``Last-Event-ID``), ``GET /alerts`` this
process's alerts. ``X-Actor`` stands in for your authentication. Errors answer as problem
JSON: an unknown pool 404, a bad amount 422, a stranger's request 403.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from fastapi import FastAPI, Header, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from auptimate_core import Investor, Pool, ThresholdRule
from auptimate_core.aio import AsyncAlertEngine, AsyncPoolLedger, Fanout
from auptimate_core.alerts import Alert
from auptimate_core.errors import AuptimateError
from auptimate_core.integrations.asgi import AlertFeed, ChangeFeed, problem_handler
from auptimate_core.metrics import disable_metrics, enable_metrics


class Money(BaseModel):
    amount: Decimal
    key: str  # the client's idempotency key: a retried request is recorded once


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
    app.add_exception_handler(RequestValidationError, problem_handler)
    app.add_route("/changes", ChangeFeed(ledger, start="now"), methods=["GET"])
    app.add_route("/alerts", AlertFeed(alerts), methods=["GET"])

    @app.put("/pools/{pool_id}", status_code=201)
    async def create_pool(pool_id: str, x_actor: str = Header()) -> None:
        await ledger.create_pool(Pool(pool_id, manager_id=x_actor), actor=x_actor)

    @app.put("/pools/{pool_id}/members/{investor_id}", status_code=204)
    async def admit(pool_id: str, investor_id: str, x_actor: str = Header()) -> None:
        await ledger.register_investor(Investor(investor_id))
        await ledger.admit(pool_id, investor_id, actor=x_actor)

    @app.post("/pools/{pool_id}/investments", status_code=201)
    async def invest(pool_id: str, body: Money, x_actor: str = Header()) -> dict[str, object]:
        tx = await ledger.invest(pool_id, x_actor, body.amount, actor=x_actor,
                                 idempotency_key=body.key)
        raised = await engine.process(tx)
        return {"id": tx.id, "amount": str(tx.amount), "alerts": [a.to_dict() for a in raised]}

    @app.post("/pools/{pool_id}/distributions", status_code=201)
    async def distribute(pool_id: str, body: Money, x_actor: str = Header()) -> dict[str, str]:
        txs = await ledger.distribute(pool_id, body.amount, actor=x_actor,
                                      idempotency_key=body.key)
        await engine.process_many(txs)
        return {tx.investor_id: str(tx.amount) for tx in txs}

    @app.get("/pools/{pool_id}/positions")
    async def positions(pool_id: str) -> list[dict[str, str]]:
        return [position.to_dict() for position in await ledger.positions(pool_id)]

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app(os.environ.get("LEDGER_URL", "sqlite+aiosqlite:///pools.db"))

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
