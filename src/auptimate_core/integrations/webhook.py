"""A sink that POSTs each alert as JSON to a URL: one deadline per attempt, no redirects.

It uses only the standard library (``socket``, ``ssl``) and speaks just enough HTTP/1.1 to
send one request and read the status of the answer, so that an attempt's deadline holds
against a server that answers slowly or trickles a byte at a time: the time left is checked
before each read and write and bounds each of them, and a name is resolved in a helper thread
that is not waited for past the deadline.

A redirect (any 3xx) is a failed attempt, not followed: the alert is not sent to the new
location, nor is the ``Authorization`` header (or any other header). Only an answer of 2xx
delivers the alert. As a :class:`~auptimate_core.alerts.sinks.BackgroundSink`, the sink is
delivered from a dispatcher's worker thread, retried and dead-lettered there.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import string
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from ..alerts.alert import Alert
from ..alerts.sinks import BackgroundSink, DeliveryError, DeliveryTimeout, RetryPolicy
from ..errors import ValidationError

__all__ = ["WebhookError", "WebhookSink"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_RESERVED = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_KEY_SAFE = "".join(c for c in string.punctuation if c != "%")
_MAX_HEAD = 64 * 1024
_RETRYABLE = frozenset({408, 425, 429})


class WebhookError(DeliveryError):
    """An attempt to POST an alert failed: no connection, no answer by the deadline, or an
    answer other than 2xx (``status`` holds it). Its message names the URL without its query
    and never carries a header's value."""


class WebhookSink(BackgroundSink):
    """POST ``alert.to_dict()`` as JSON to ``url``; 2xx delivers, anything else fails.

    ``timeout`` bounds each attempt, from connecting to the status line, as a deadline (not per
    read). Retries (``retries`` more attempts, waiting ``backoff * 2**n`` seconds) follow
    connection errors, timeouts, 5xx, 408, 425 and 429; a redirect or another 4xx is not
    retried. Leaving ``retries`` and ``backoff`` out uses the dispatcher's
    :class:`~auptimate_core.alerts.sinks.RetryPolicy`. The header ``Idempotency-Key`` carries
    ``alert.key`` (percent-encoded where it is not printable ASCII) so a receiver can drop a
    repeated delivery. ``headers`` are sent with every request (``Authorization`` goes here,
    never in the URL, whose user and password are refused). ``name`` labels the sink in logs,
    metrics and dead letters: ``webhook:<host>`` by default. ``ssl_context`` verifies
    ``https://`` servers (the system's default context if not given). Proxies are not used.
    Safe to share between threads.

    >>> sink = WebhookSink("https://hooks.example/alerts?token=s3cret", timeout=2)
    >>> sink, sink.name
    (WebhookSink('https://hooks.example/alerts'), 'webhook:hooks.example')
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int | None = None,
        backoff: float | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(url, str) or not url.isascii() or any(
                c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise ValidationError(
                "url", f"must be an ASCII URL (percent-encoded, the host in punycode) without "
                       f"spaces or control characters, not {url!r}")
        parts = urlsplit(url)
        hostname = parts.hostname
        if parts.scheme not in ("http", "https") or not hostname:
            raise ValidationError("url", f"must be an http:// or https:// URL, not {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValidationError(
                "url", "credentials in the URL are not sent; pass them in headers= "
                       "(e.g. {'Authorization': ...})")
        try:
            port = parts.port
        except ValueError:
            raise ValidationError("url", f"has an invalid port: {url!r}") from None
        retry = None
        if retries is not None or backoff is not None:
            retry = RetryPolicy(attempts=(3 if retries is None else retries) + 1,
                                backoff=0.5 if backoff is None else backoff)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = hostname
        self.port = port or (443 if self.https else 80)
        super().__init__(name=name or f"webhook:{self.host}", timeout=timeout, retry=retry,
                         sleep=sleep)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if port is None else f"{host}:{port}"
        self._shown = f"{parts.scheme}://{self._host_header}{parts.path or '/'}"
        self.headers = _checked_headers(headers or {})
        self._ssl = ssl_context if ssl_context is not None or not self.https \
            else ssl.create_default_context()

    def send(self, alert: Alert, deadline: float) -> None:
        """POST ``alert`` once; raise :class:`WebhookError` unless the answer is 2xx by
        ``deadline`` (a :func:`time.monotonic` value)."""
        body = json.dumps(alert.to_dict()).encode()
        fields = {"Content-Type": "application/json", "User-Agent": "auptimate-core",
                  "Idempotency-Key": quote(alert.key, safe=_KEY_SAFE), **self.headers}
        head = "".join(
            [f"POST {self._target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
            + [f"{key}: {value}\r\n" for key, value in fields.items()]
            + [f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"])
        try:
            status, location = self._exchange(head.encode("latin-1") + body, deadline)
        except DeliveryError as error:
            if isinstance(error, WebhookError):
                raise
            raise WebhookError(f"webhook {self._shown}: {error}",
                               retryable=error.retryable) from error
        except OSError as error:
            kind = "timed out" if isinstance(error, TimeoutError) else "connection failed"
            raise WebhookError(
                f"webhook {self._shown}: {kind}: {error}",
                retryable=not isinstance(error, ssl.SSLCertVerificationError)) from error
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            where = f" to {_shown(location)}" if location else ""
            raise WebhookError(
                f"webhook {self._shown} answered HTTP {status}, a redirect{where}: not followed",
                retryable=False, status=status)
        raise WebhookError(
            f"webhook {self._shown} answered HTTP {status}",
            retryable=status >= 500 or status in _RETRYABLE, status=status)

    def __repr__(self) -> str:
        return f"WebhookSink({self._shown!r})"

    # -- one exchange, every step bounded by the deadline -------------------------------------

    def _exchange(self, request: bytes, deadline: float) -> tuple[int, str | None]:
        sock = self._connect(deadline)
        try:
            view = memoryview(request)
            while view:
                sock.settimeout(_left(deadline))
                view = view[sock.send(view):]
            return _read_status(sock, deadline)
        finally:
            sock.close()

    def _connect(self, deadline: float) -> socket.socket:
        error: OSError | None = None
        for family, kind, proto, _, address in _resolve(self.host, self.port, deadline):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(_left(deadline))
                sock.connect(address)
                if self._ssl is None:
                    return sock
                sock.settimeout(_left(deadline))  # the handshake is bounded as a whole
                return self._ssl.wrap_socket(sock, server_hostname=self.host)
            except OSError as failed:
                sock.close()
                error = failed
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"no address for {self.host}")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeliveryTimeout("no answer by the deadline")
    return left


def _resolve(host: str, port: int, deadline: float) -> list[Any]:
    """``getaddrinfo`` for TCP, given up on (not waited for) at the deadline."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                  flags=socket.AI_NUMERICHOST)
    found: list[Any] = []
    failed: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            failed.append(error)
        finally:
            done.set()

    threading.Thread(target=lookup, name="auptimate-webhook-resolve", daemon=True).start()
    if not done.wait(_left(deadline)):
        raise DeliveryTimeout(f"{host} not resolved by the deadline")
    if failed:
        raise failed[0]
    return found


def _read_status(sock: socket.socket, deadline: float) -> tuple[int, str | None]:
    """The status and ``Location`` of the first final answer (1xx skipped)."""
    buffer = b""
    while True:
        end, size = buffer.find(b"\r\n\r\n"), 4
        if end < 0:
            end, size = buffer.find(b"\n\n"), 2
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                raise DeliveryError("answer headers too large")
            sock.settimeout(_left(deadline))
            chunk = sock.recv(4096)
            if not chunk:
                raise DeliveryError("connection closed before an answer")
            buffer += chunk
            continue
        lines = buffer[:end].decode("latin-1").splitlines() or [""]
        buffer = buffer[end + size:]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit() or rest[3:4] not in ("", " "):
            raise DeliveryError(f"not an HTTP answer: {lines[0][:40]!r}")
        status = int(code)
        if 100 <= status < 200:
            continue
        location = None
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "location":
                location = value.strip()
        return status, location


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not _TOKEN.match(key):
            raise ValidationError("headers", f"{key!r} is not a valid header name")
        if key.lower() in _RESERVED:
            raise ValidationError("headers", f"{key} is set by the sink itself")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0") \
                or not value.isascii():
            raise ValidationError("headers", f"the value of {key} must be ASCII on one line")
        checked[key] = value
    return checked


def _shown(url: str) -> str:
    """``url`` as logs may show it: without user, password, query or fragment."""
    parts = urlsplit(url)
    where = parts.hostname or ""
    try:
        if parts.port is not None:
            where = f"{where}:{parts.port}"
    except ValueError:
        pass
    prefix = f"{parts.scheme}://{where}" if parts.scheme else ""
    return prefix + parts.path
