"""Alert delivery against real HTTP servers on loopback: slow, trickling, redirecting, failing.

Deadlines are fractions of a second; a server's "slow" is a few seconds, released at teardown.
The times measured are bounds of what must not happen (a caller held for the server's delay,
an attempt outliving its deadline), never throughput.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from auptimate_core import Transaction, metrics
from auptimate_core.alerts import Alert, AlertEngine, CollectingSink, ThresholdRule
from auptimate_core.alerts.delivery import (
    DeadLetter,
    Dispatcher,
    JsonLinesDeadLetters,
    read_dead_letters,
    sink_name,
)
from auptimate_core.alerts.sinks import (
    AlertCallback,
    BackgroundCall,
    DeliveryError,
    DeliveryTimeout,
    RetryPolicy,
)
from auptimate_core.errors import ValidationError
from auptimate_core.integrations.webhook import WebhookError, WebhookSink

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SLOW = 3.0  # seconds a slow endpoint takes to answer (or to trickle its answer)
SECRET = "Bearer s3cret-token"


def alert(i: int, pool: str = "p1") -> Alert:
    return Alert("threshold", "firing", pool, T0, f"t{i}", Decimal("300000"),
                 Decimal("250000"), "amount 300000 > limit 250000")


class Request:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path, self.headers, self.body = path, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class Endpoint:
    """A loopback HTTP server whose paths behave: ``/ok``, ``/sleep`` (answers after SLOW),
    ``/trickle`` (one byte every 0.1 s), ``/redirect/<code>`` (to ``redirect_to``),
    ``/flaky`` (500 for the first ``flaky`` requests, then 200), ``/fail`` (500), ``/slowish``
    (answers after 0.05 s), ``/reject`` (400)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self.flaky = 0
        self.trickled = 0
        self.redirect_to = ""
        self.release = threading.Event()
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint._lock:
                    endpoint.requests.append(Request(self.path, dict(self.headers), body))
                    flaky = endpoint.flaky > 0 and self.path == "/flaky"
                    if flaky:
                        endpoint.flaky -= 1
                if self.path == "/sleep":
                    endpoint.release.wait(SLOW)
                elif self.path == "/slowish":
                    time.sleep(0.05)
                elif self.path == "/trickle":
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 40:
                        if endpoint.release.wait(0.1):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        endpoint.trickled += 1
                    return
                if self.path.startswith("/redirect/"):
                    self.send_response(int(self.path.split("?")[0].rsplit("/", 1)[1]))
                    self.send_header("Location", endpoint.redirect_to)
                elif self.path == "/fail" or flaky:
                    self.send_response(500)
                elif self.path == "/reject":
                    self.send_response(400)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the client hung up at its deadline: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def elsewhere() -> Iterator[Endpoint]:
    """A second server: where redirects point."""
    server = Endpoint()
    yield server
    server.close()


def letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the caller is never held -----------------------------------------------------------------


def test_submit_returns_before_a_slow_endpoint_answers(endpoint: Endpoint, tmp_path: Path) -> None:
    sink = WebhookSink(endpoint.url("/sleep"), timeout=0.3, retries=1, backoff=0.01)
    dead = tmp_path / "dead.jsonl"
    dispatcher = Dispatcher([sink], dead_letter=dead)
    start = time.monotonic()
    dispatcher.submit([alert(1)])
    assert time.monotonic() - start < SLOW / 4
    stats = dispatcher.close(timeout=5)
    assert time.monotonic() - start < SLOW  # each attempt gave up at its deadline
    assert len(endpoint.seen("/sleep")) == 2
    assert (stats.delivered, stats.retried, stats.failed, stats.dead_lettered) == (0, 1, 1, 1)
    (letter,) = letters(dead)
    assert letter["alert"] == alert(1).to_dict() and letter["attempts"] == 2
    assert letter["sink"] == sink.name == "webhook:127.0.0.1"
    assert "timed out" in letter["error"] or "deadline" in letter["error"]


def test_a_trickling_server_is_cut_at_the_deadline(endpoint: Endpoint) -> None:
    sink = WebhookSink(endpoint.url("/trickle"), timeout=0.5)
    start = time.monotonic()
    with pytest.raises(WebhookError) as caught:
        sink.send(alert(1), time.monotonic() + 0.5)
    # A byte comes every 0.1 s for SLOW seconds: a timeout per read would never fire.
    assert time.monotonic() - start < SLOW / 2
    assert endpoint.trickled > 0 and caught.value.retryable
    assert "deadline" in str(caught.value) or "timed out" in str(caught.value)


def test_a_trickling_server_is_dead_lettered_after_the_retries(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    sink = WebhookSink(endpoint.url("/trickle"), timeout=0.3, retries=1, backoff=0.01)
    dead = tmp_path / "dead.jsonl"
    start = time.monotonic()
    with Dispatcher([sink], dead_letter=dead) as dispatcher:
        dispatcher.submit([alert(1)])
        assert dispatcher.flush(timeout=SLOW)
    assert time.monotonic() - start < SLOW
    assert [letter["attempts"] for letter in letters(dead)] == [2]


def test_a_slow_endpoint_changes_neither_the_engines_results_nor_holds_it(
    endpoint: Endpoint,
) -> None:
    txs = [Transaction(f"t{i}", "inv", "p1", Decimal("300000"), T0) for i in range(2)]
    expected = AlertEngine([ThresholdRule(limit=Decimal("250000"))]).process_many(txs)
    collected = CollectingSink()
    webhook = WebhookSink(endpoint.url("/sleep"), timeout=0.3, retries=0)
    engine = AlertEngine([ThresholdRule(limit=Decimal("250000"))], sinks=[webhook, collected])
    start = time.monotonic()
    alerts = engine.process_many(txs)
    held = time.monotonic() - start
    engine.close()
    assert alerts == expected == collected.alerts
    assert held < 0.3  # less than one attempt's deadline: the engine waited on no endpoint
    assert engine.stats.sink_failures == 2


# -- retries, dead letters --------------------------------------------------------------------


def test_a_failing_endpoint_is_retried_until_it_recovers(endpoint: Endpoint) -> None:
    endpoint.flaky = 2
    sink = WebhookSink(endpoint.url("/flaky"), retries=3, backoff=0.01)
    with Dispatcher([sink]) as dispatcher:
        dispatcher.submit([alert(1)])
        assert dispatcher.flush(timeout=5)
        stats = dispatcher.stats
    requests = endpoint.seen("/flaky")
    assert len(requests) == 3
    assert all(r.json() == alert(1).to_dict() for r in requests)
    assert {r.headers["Idempotency-Key"] for r in requests} == {alert(1).key}
    assert requests[0].headers["Content-Type"] == "application/json"
    assert requests[0].headers["User-Agent"] == "auptimate-core"
    assert (stats.delivered, stats.retried, stats.failed, stats.pending) == (1, 2, 0, 0)


def test_what_always_fails_reaches_the_dead_letter_file_one_line_each(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    errors: list[tuple[AlertCallback, Alert, BaseException]] = []
    sink = WebhookSink(endpoint.url("/fail"), timeout=1, retries=2, backoff=0.01)
    dispatcher = Dispatcher([sink], dead_letter=dead,
                            on_error=lambda s, a, e: errors.append((s, a, e)))
    alerts = [alert(i) for i in range(3)]
    dispatcher.submit(alerts)
    stats = dispatcher.close(timeout=5)
    assert len(endpoint.seen("/fail")) == 9
    assert (stats.failed, stats.dead_lettered, stats.lost, stats.retried) == (3, 3, 0, 6)
    lines = letters(dead)
    assert [line["alert"] for line in lines] == [a.to_dict() for a in alerts]
    for line in lines:
        assert set(line) == {"alert", "sink", "error", "attempts", "at"}
        assert line["attempts"] == 3 and "HTTP 500" in line["error"]
        assert datetime.fromisoformat(line["at"]).tzinfo is not None
    assert [letter.alert for letter in read_dead_letters(dead)] == alerts
    assert [(s, a) for s, a, _ in errors] == [(sink, a) for a in alerts]
    assert all(isinstance(e, WebhookError) and e.status == 500 for _, _, e in errors)


def test_a_4xx_answer_is_not_retried(endpoint: Endpoint) -> None:
    seen: list[DeadLetter] = []
    sink = WebhookSink(endpoint.url("/reject"), retries=3, backoff=0.01)
    with Dispatcher([sink], dead_letter=seen.append) as dispatcher:
        dispatcher.submit([alert(1), alert(2)])
        assert dispatcher.flush(timeout=5)
    assert len(endpoint.seen("/reject")) == 2
    assert [(letter.attempts, "HTTP 400" in letter.error) for letter in seen] == [(1, True)] * 2


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_attempt_and_nothing_follows_it(
    code: int, endpoint: Endpoint, elsewhere: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.redirect_to = elsewhere.url("/target?token=leak")
    seen: list[DeadLetter] = []
    sink = WebhookSink(endpoint.url(f"/redirect/{code}?token=leak"), retries=3, backoff=0.01,
                       headers={"Authorization": SECRET})
    with (caplog.at_level(logging.WARNING, logger="auptimate_core.alerts"),
          Dispatcher([sink], dead_letter=seen.append) as dispatcher):
        dispatcher.submit([alert(1)])
        assert dispatcher.flush(timeout=5)
    (request,) = endpoint.seen(f"/redirect/{code}")  # a redirect is not retried
    assert request.headers["Authorization"] == SECRET
    assert elsewhere.requests == []  # neither the alert nor the header went there
    (letter,) = seen
    assert f"HTTP {code}" in letter.error and "not followed" in letter.error
    assert letter.attempts == 1
    (record,) = [r for r in caplog.records if r.name == "auptimate_core.alerts"]
    assert record.levelno == logging.ERROR and record.status == code  # type: ignore[attr-defined]
    assert record.alert_key == alert(1).key  # type: ignore[attr-defined]
    everything = letter.error + "".join(
        r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "s3cret" not in everything and "leak" not in everything


def test_a_redirect_called_directly_raises_without_following(
    endpoint: Endpoint, elsewhere: Endpoint
) -> None:
    endpoint.redirect_to = elsewhere.url("/target")
    sink = WebhookSink(endpoint.url("/redirect/302"), retries=3, sleep=lambda _: None,
                       headers={"Authorization": SECRET})
    with pytest.raises(WebhookError) as caught:
        sink(alert(1))
    assert caught.value.status == 302 and not caught.value.retryable
    assert len(endpoint.seen("/redirect/302")) == 1 and elsewhere.requests == []


# -- close, full queues -----------------------------------------------------------------------


def test_close_delivers_what_is_queued(endpoint: Endpoint, tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(endpoint.url("/slowish"), timeout=1)
    dispatcher = Dispatcher([sink], dead_letter=dead)
    dispatcher.submit([alert(i) for i in range(10)])
    stats = dispatcher.close(timeout=5)
    assert (stats.delivered, stats.pending, stats.failed) == (10, 0, 0)
    assert [r.json()["transaction_id"] for r in endpoint.seen("/slowish")] == [
        f"t{i}" for i in range(10)]  # in order
    assert not dead.exists()


def test_close_dead_letters_what_it_cannot_deliver_in_time(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(endpoint.url("/sleep"), timeout=2)
    dispatcher = Dispatcher([sink], dead_letter=dead)
    dispatcher.submit([alert(i) for i in range(4)])
    start = time.monotonic()
    stats = dispatcher.close(timeout=0.3)
    assert time.monotonic() - start < 1.5  # not the 2 s of the attempt in flight
    assert (stats.failed, stats.dead_lettered, stats.pending) == (4, 4, 0)
    lines = letters(dead)
    assert [line["alert"]["transaction_id"] for line in lines] == [f"t{i}" for i in range(4)]
    assert all("closed" in line["error"] for line in lines)
    dispatcher.submit([alert(9)])  # after close: dead-lettered, never dropped
    assert dispatcher.stats.dead_lettered == 5
    assert "after the dispatcher closed" in letters(dead)[-1]["error"]
    assert dispatcher.close() == dispatcher.stats  # closing again does nothing


def test_a_full_queue_dead_letters_and_counts_instead_of_dropping(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(endpoint.url("/sleep"), timeout=0.2, retries=0)
    dispatcher = Dispatcher([sink], dead_letter=dead, capacity=2)
    start = time.monotonic()
    dispatcher.submit([alert(i) for i in range(5)])
    assert time.monotonic() - start < SLOW / 4  # the caller did not wait for room
    assert dispatcher.stats.overflowed == 3
    overflowed = letters(dead)
    assert [line["alert"]["transaction_id"] for line in overflowed] == ["t2", "t3", "t4"]
    assert all("queue full" in line["error"] and line["attempts"] == 0 for line in overflowed)
    stats = dispatcher.close(timeout=2)
    assert (stats.failed, stats.dead_lettered, stats.overflowed, stats.lost) == (5, 5, 3, 0)
    assert sorted(line["alert"]["transaction_id"] for line in letters(dead)) == [
        f"t{i}" for i in range(5)]


def test_overflow_wait_holds_the_producer_until_there_is_room(endpoint: Endpoint) -> None:
    sink = WebhookSink(endpoint.url("/ok"), timeout=1)
    with Dispatcher([sink], capacity=1, overflow_wait=5) as dispatcher:
        dispatcher.submit([alert(i) for i in range(5)])
        assert dispatcher.flush(timeout=5)
        stats = dispatcher.stats
    assert (stats.delivered, stats.overflowed, stats.failed) == (5, 0, 0)


# -- plain sinks, wrapped callables, destinations ---------------------------------------------


def test_plain_sinks_are_called_in_the_callers_thread_and_their_failures_dead_lettered(
    endpoint: Endpoint,
) -> None:
    collected = CollectingSink()
    threads: set[int] = set()
    seen: list[DeadLetter] = []
    errors: list[BaseException] = []

    def broken(alert: Alert) -> None:
        threads.add(threading.get_ident())
        raise RuntimeError("sink down")

    webhook = WebhookSink(endpoint.url("/slowish"), timeout=1)
    dispatcher = Dispatcher([collected, webhook, broken], dead_letter=seen.append,
                            on_error=lambda s, a, e: errors.append(e))
    dispatcher.submit([alert(1), alert(2)])
    assert collected.alerts == [alert(1), alert(2)]  # before any background delivery
    assert threads == {threading.get_ident()}
    assert [str(e) for e in errors] == ["sink down"] * 2
    assert [(letter.sink, letter.attempts) for letter in seen] == [(sink_name(broken), 1)] * 2
    assert "RuntimeError: sink down" in seen[0].error
    stats = dispatcher.close(timeout=5)
    assert (stats.delivered, stats.failed) == (2 + 2, 2)
    assert dispatcher.sinks == [collected, webhook, broken]


def test_sinks_are_added_and_removed(endpoint: Endpoint) -> None:
    collected = CollectingSink()
    webhook = WebhookSink(endpoint.url("/ok"), timeout=1)
    with Dispatcher() as dispatcher:
        dispatcher.submit([alert(0)])  # no sinks: nothing to do
        remove = dispatcher.add(webhook)
        dispatcher.add(collected)
        dispatcher.submit([alert(1)])
        remove()  # what is queued for it is still delivered
        dispatcher.submit([alert(2)])
        assert dispatcher.flush(timeout=5)
        assert dispatcher.sinks == [collected]
        dispatcher.remove(webhook)  # not there any more: nothing happens
    assert [r.json()["transaction_id"] for r in endpoint.seen("/ok")] == ["t1"]
    assert collected.alerts == [alert(1), alert(2)]


def test_background_call_bounds_a_callable_that_blocks() -> None:
    release = threading.Event()
    calls: list[Alert] = []

    def stuck(alert: Alert) -> None:
        calls.append(alert)
        release.wait(SLOW)

    seen: list[DeadLetter] = []
    sink = BackgroundCall(stuck, timeout=0.2, retry=RetryPolicy(attempts=2, backoff=0.01),
                          max_running=1)
    dispatcher = Dispatcher([sink], dead_letter=seen.append)
    start = time.monotonic()
    dispatcher.submit([alert(1)])
    assert dispatcher.flush(timeout=SLOW)
    assert time.monotonic() - start < SLOW / 2
    release.set()
    (letter,) = seen
    assert letter.sink == "test_background_call_bounds_a_callable_that_blocks.<locals>.stuck"
    assert letter.attempts == 2 and "still running" in letter.error
    assert len(calls) == 1  # the second attempt did not start another thread
    dispatcher.close()


def test_background_call_delivers_off_the_callers_thread() -> None:
    threads: list[int] = []
    sink = BackgroundCall(lambda alert: threads.append(threading.get_ident()), name="pager")
    with Dispatcher([sink]) as dispatcher:
        dispatcher.submit([alert(1), alert(2)])
        assert dispatcher.flush(timeout=5)
        assert dispatcher.stats.delivered == 2
    assert len(threads) == 2 and threading.get_ident() not in threads
    assert sink_name(sink) == "pager"


def test_a_background_sink_called_directly_retries_in_the_callers_thread() -> None:
    failures = iter([ConnectionError("down"), DeliveryTimeout("slow")])
    delivered: list[Alert] = []

    def flaky(alert: Alert) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        delivered.append(alert)

    sink = BackgroundCall(flaky, retry=RetryPolicy(attempts=3, backoff=0.01))
    sink(alert(1))
    assert delivered == [alert(1)]
    with pytest.raises(RuntimeError, match="no"):
        BackgroundCall(failing, retry=RetryPolicy(attempts=2, backoff=0.01))(alert(2))


def failing(alert: Alert) -> None:
    raise RuntimeError("no")


def test_a_dead_letter_destination_that_fails_is_counted_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unwritable(letter: DeadLetter) -> None:
        raise OSError("disk full")

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    with (caplog.at_level(logging.CRITICAL, logger="auptimate_core.alerts"),
          Dispatcher([broken], dead_letter=unwritable) as dispatcher):
        dispatcher.submit([alert(1)])
        stats = dispatcher.stats
    assert (stats.failed, stats.dead_lettered, stats.lost) == (1, 0, 1)
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert alert(1).key in record.getMessage()


def test_without_a_destination_dead_letters_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    with (caplog.at_level(logging.ERROR, logger="auptimate_core.alerts.dead_letters"),
          Dispatcher([broken]) as dispatcher):
        dispatcher.submit([alert(1)])
    (record,) = [r for r in caplog.records if r.name == "auptimate_core.alerts.dead_letters"]
    assert alert(1).key in record.getMessage()
    assert record.pool_id == "p1" and record.transaction_id == "t1"  # type: ignore[attr-defined]
    assert dispatcher.stats.dead_lettered == 1


def test_the_dead_letter_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dead.jsonl"
    path.parent.mkdir()
    write = JsonLinesDeadLetters(path, fsync=True)
    letter = DeadLetter(alert(1, pool="pool é"), "webhook:x", "WebhookError: HTTP 500", 4, T0)
    write(letter)
    write(letter)
    assert read_dead_letters(path) == [letter, letter]


def test_metrics_count_deliveries_and_failures(endpoint: Endpoint) -> None:
    registry = CollectorRegistry()
    metrics.enable_metrics(registry)
    try:
        good = WebhookSink(endpoint.url("/ok"), timeout=1, name="good")
        bad = WebhookSink(endpoint.url("/fail"), timeout=1, retries=1, backoff=0.01, name="bad")
        with Dispatcher([good, bad], dead_letter=lambda letter: None) as dispatcher:
            dispatcher.submit([alert(1), alert(2)])
            assert dispatcher.flush(timeout=5)
        text = generate_latest(registry).decode()
    finally:
        metrics.disable_metrics()
    assert 'auptimate_sink_deliveries_total{sink="good"} 2.0' in text
    assert 'auptimate_sink_failures_total{sink="bad"} 2.0' in text


# -- the webhook's own checks -----------------------------------------------------------------


@pytest.mark.parametrize(("url", "fault"), [
    ("ftp://hooks.example/", "http:// or https://"),
    ("https://user:pw@hooks.example/", "credentials"),
    ("https://hooks.example/a b", "spaces"),
    ("https://hooks.example/\r\nX: y", "control"),
    ("https://hooks.example/café", "ASCII"),
    ("https://hooks.example:99999/", "port"),
])
def test_bad_urls_are_refused_naming_the_field(url: str, fault: str) -> None:
    with pytest.raises(ValidationError, match="url") as caught:
        WebhookSink(url)
    assert fault in str(caught.value) and "pw" not in str(caught.value)


@pytest.mark.parametrize("headers", [
    {"X-Token": "a\r\nInjected: 1"}, {"Bad Name": "x"}, {"Host": "elsewhere"},
    {"Content-Length": "0"}, {"X-Name": "é"},
])
def test_bad_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="headers"):
        WebhookSink("https://hooks.example/", headers=headers)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="timeout"):
        WebhookSink("https://hooks.example/", timeout=0)
    with pytest.raises(ValidationError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValidationError, match="max_backoff"):
        RetryPolicy(backoff=5, max_backoff=1)
    with pytest.raises(ValidationError, match="capacity"):
        Dispatcher(capacity=0)
    with pytest.raises(ValidationError, match="dead_letter"):
        Dispatcher(dead_letter=42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sinks"):
        Dispatcher(["not callable"])  # type: ignore[list-item]


def test_an_odd_alert_key_travels_percent_encoded(endpoint: Endpoint) -> None:
    odd = alert(1, pool="pool 7\r\nX-Injected: é")
    WebhookSink(endpoint.url("/ok"))(odd)
    (request,) = endpoint.seen("/ok")
    assert "X-Injected" not in request.headers
    assert request.headers["Idempotency-Key"] == (
        "threshold|firing|pool%207%0D%0AX-Injected:%20%C3%A9|t1")
    assert request.json() == odd.to_dict()


def test_an_unreachable_endpoint_is_a_retryable_failure() -> None:
    from auptimate_core.testing.servers import free_port

    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/", timeout=1)
    with pytest.raises(WebhookError, match="connection failed") as caught:
        sink.send(alert(1), time.monotonic() + 1)
    assert caught.value.retryable and caught.value.status is None
    with pytest.raises(DeliveryError, match="deadline"):
        sink.send(alert(1), time.monotonic() - 1)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def test_https_is_verified(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    secure = Endpoint(tls=server_side)
    try:
        trusting = WebhookSink(secure.url("/ok"), timeout=2,
                               ssl_context=ssl.create_default_context(cafile=str(cert)))
        trusting(alert(1))
        assert [r.json() for r in secure.seen("/ok")] == [alert(1).to_dict()]
        with pytest.raises(WebhookError, match="connection failed") as caught:
            WebhookSink(secure.url("/ok"), timeout=2).send(alert(2), time.monotonic() + 2)
        assert not caught.value.retryable  # an unknown certificate stays unknown
    finally:
        secure.close()
