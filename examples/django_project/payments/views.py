"""Record a payment (the Django row and the ledger's investment in one request) and stream the
ledger's change feed and the alerts as server-sent events."""

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from auptimate_core import Investor
from auptimate_core.aio.sse import change_message, sse_message
from auptimate_core.errors import InvalidAmount

from .apps import ALERTS, ALERTS_LOCK, LEDGER, MANAGER
from .models import Payment


@csrf_exempt
@require_POST
def pay(request: HttpRequest) -> HttpResponse:
    investor, pool = request.POST["investor"], request.POST.get("pool", "p1")
    try:
        amount = Decimal(request.POST["amount"])
    except InvalidOperation:
        raise InvalidAmount("amount", f"not a number: {request.POST['amount']!r}") from None
    with transaction.atomic():
        payment = Payment.objects.create(investor_id=investor, pool_id=pool, amount=amount,
                                         timestamp=timezone.now())
        LEDGER.register_investor(Investor(investor))
        LEDGER.admit(pool, investor, actor=MANAGER)
        LEDGER.invest(pool, investor, amount, actor=investor,
                      idempotency_key=f"payment-{payment.pk}")
    return JsonResponse({"id": payment.pk}, status=201)


@require_GET
def events(request: HttpRequest) -> HttpResponse:
    """``?after=<cursor>`` (or the ``Last-Event-ID`` header) resumes; ``?timeout=`` seconds of
    quiet end the stream (none: it follows for ever)."""
    after = request.GET.get("after") or request.headers.get("Last-Event-ID") or None
    timeout = float(request.GET["timeout"]) if "timeout" in request.GET else None
    LEDGER.changes(after=after, limit=1)  # a bad cursor is a 422 here, before the stream starts
    return StreamingHttpResponse(_stream(after, timeout), content_type="text/event-stream")


def _stream(after: str | None, timeout: float | None) -> Iterator[bytes]:
    sent = 0
    for change in LEDGER.follow(after=after, timeout=timeout):
        yield change_message(change)
        with ALERTS_LOCK:
            fresh, sent = ALERTS[sent:], len(ALERTS)
        for alert in fresh:
            yield sse_message(json.dumps(alert.to_dict()), event="alert")
