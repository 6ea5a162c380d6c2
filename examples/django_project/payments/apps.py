"""Wiring, once per process: an engine whose alerts are kept for the event stream, the watch on
Payment (alerts after commit only), and a pools ledger whose change feed the stream follows."""

import threading
from decimal import Decimal

from django.apps import AppConfig

from auptimate_core import AlertEngine, Pool, ThresholdRule
from auptimate_core.alerts.alert import Alert
from auptimate_core.pools.ledger import PoolLedger

ALERTS: list[Alert] = []
ALERTS_LOCK = threading.Lock()
LEDGER = PoolLedger()
MANAGER = "m1"


def keep(alert: Alert) -> None:
    with ALERTS_LOCK:
        ALERTS.append(alert)


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from auptimate_core.integrations.django import watch_model

        from .models import Payment

        engine = AlertEngine(rules=[ThresholdRule(limit=Decimal("250000"))], sinks=[keep])
        watch_model(Payment, engine=engine)
        LEDGER.create_pool(Pool("p1", manager_id=MANAGER, name="Seed fund"), actor=MANAGER)
