from django.db import transaction
from django.test import TransactionTestCase

from .apps import ALERTS
from .models import Payment


class PaymentAlerts(TransactionTestCase):
    def setUp(self) -> None:
        ALERTS.clear()

    def test_a_committed_payment_alerts_and_streams(self) -> None:
        response = self.client.post("/payments", {"investor": "ann", "amount": "300000"})
        self.assertEqual(response.status_code, 201)
        self.assertEqual([a.transaction_id for a in ALERTS], [str(response.json()["id"])])
        stream = self.client.get("/events", {"timeout": "0.05"})
        self.assertEqual(stream["Content-Type"], "text/event-stream")
        body = b"".join(stream.streaming_content).decode()
        self.assertIn("event: Invested", body)
        self.assertIn("event: alert", body)

    def test_a_rolled_back_block_raises_nothing(self) -> None:
        with self.assertRaises(RuntimeError), transaction.atomic():
            Payment.objects.create(investor_id="bob", pool_id="p1", amount=900000,
                                   timestamp="2026-01-01T00:00:00Z")
            raise RuntimeError("abort")
        self.assertEqual(ALERTS, [])

    def test_errors_carry_their_http_status(self) -> None:
        self.assertEqual(self.client.get("/events", {"after": "not-a-cursor"}).status_code, 422)
        bad = self.client.post("/payments", {"investor": "cid", "amount": "lots"})
        self.assertEqual(bad.status_code, 422)
        self.assertEqual(bad.json()["error"], "InvalidAmount")
