"""The webhook sink against a real HTTP server on loopback; the SQLAlchemy commit observer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, CollectingSink, ThresholdRule
from auptimate_core.integrations.sqlalchemy import watch_model
from auptimate_core.integrations.webhook import WebhookError, WebhookSink

from .naive_store import NaiveWindowStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Receiver:
    """A loopback HTTP server answering with the next scripted status codes."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.keys: list[str] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.keys.append(self.headers["Idempotency-Key"])
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def big(i: int) -> Transaction:
    return Transaction(f"t{i}", "inv", "p", Decimal("300000"), T0)


# The engine's close() waits for its sinks' deliveries (up to a timeout), so the webhook tests
# read what the receiver got after it.


def test_webhook_posts_json_and_retries_server_errors(receiver: Receiver) -> None:
    receiver.script = [503, 500]
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01, sleep=lambda _: None)
    engine = AlertEngine(
        [ThresholdRule(limit=Decimal("250000"))], store=NaiveWindowStore(), sinks=[sink]
    )
    (alert,) = engine.process(big(1))
    engine.close()
    assert len(receiver.bodies) == 3  # two failures, then delivered
    assert receiver.bodies[-1] == alert.to_dict()
    assert set(receiver.keys) == {alert.key}
    assert engine.stats.sink_failures == 0


def test_webhook_gives_up_and_the_engine_goes_on(receiver: Receiver) -> None:
    receiver.script = [400]
    collected = CollectingSink()
    errors: list[BaseException] = []
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01, sleep=lambda _: None)
    engine = AlertEngine(
        [ThresholdRule(limit=Decimal("250000"))], store=NaiveWindowStore(),
        sinks=[sink, collected],
        on_sink_error=lambda s, a, e: errors.append(e),
    )
    engine.process_many([big(1), big(2)])
    engine.close()
    assert len(receiver.bodies) == 2  # a 400 is not retried; the second alert is delivered
    assert len(collected) == 2
    assert len(errors) == 1 and isinstance(errors[0], WebhookError)
    assert "HTTP 400" in str(errors[0])


def test_webhook_unreachable_is_reported() -> None:
    from auptimate_core.testing.servers import free_port

    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/", retries=1, backoff=0.01, timeout=1,
                       sleep=lambda _: None)
    engine = AlertEngine([ThresholdRule(limit=1)], store=NaiveWindowStore(), sinks=[sink])
    assert len(engine.process(big(1))) == 1
    engine.close()
    assert engine.stats.sink_failures == 1


class Base(DeclarativeBase):
    pass


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    investor_id: Mapped[str]
    pool_id: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 2))
    timestamp: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


def test_sqlalchemy_rows_reach_the_engine_only_after_commit() -> None:
    db = sa.create_engine("sqlite://")
    Base.metadata.create_all(db)
    factory = sessionmaker(db)
    collected = CollectingSink()
    engine = AlertEngine([ThresholdRule(limit=Decimal("1000"))], store=NaiveWindowStore(),
                         sinks=[collected])
    watch = watch_model(factory, Payment, engine)

    def payment(i: int, amount: str) -> Payment:
        return Payment(id=f"p{i}", investor_id="inv", pool_id="fund",
                       amount=Decimal(amount), timestamp=T0)

    with factory() as session:
        session.add(payment(1, "5000"))
        session.flush()
        assert len(collected) == 0  # flushed, not committed
        session.rollback()
    assert len(collected) == 0

    with factory() as session:
        session.add_all([payment(2, "5000"), payment(3, "10")])
        session.commit()
    assert [a.transaction_id for a in collected] == ["p2"]

    # Writing the same row again (an update, not a new row) is not counted twice.
    with factory() as other:
        other.merge(payment(2, "5000"))
        other.commit()
    assert engine.stats.processed == 2
    watch.remove()
    with factory() as session:
        session.add(payment(4, "9999"))
        session.commit()
    assert len(collected) == 1
