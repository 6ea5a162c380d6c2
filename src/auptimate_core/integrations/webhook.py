"""A sink that POSTs each alert as JSON to a URL, with a timeout and bounded retries.

It uses only the standard library. A delivery that still fails after the retries raises
:class:`WebhookError`, which the engine reports (the other sinks still get the alert).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from ..alerts.alert import Alert
from ..errors import AuptimateError


class WebhookError(AuptimateError):
    """An alert could not be delivered to the webhook after all retries."""


class WebhookSink:
    """POST ``alert.to_dict()`` as JSON to ``url``.

    Retries up to ``retries`` more times on connection errors, timeouts and 5xx or 429 answers,
    waiting ``backoff * 2**attempt`` seconds between tries; a 4xx answer other than 429 is not
    retried. The header ``Idempotency-Key`` carries ``alert.key`` so a receiver can drop a
    repeated delivery. Safe to share between threads.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: must be an http:// or https:// URL, not {url!r}")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = dict(headers or {})
        self._sleep = sleep

    def __call__(self, alert: Alert) -> None:
        body = json.dumps(alert.to_dict()).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": alert.key,
            **self.headers,
        }
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                    return
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}"
                if error.code < 500 and error.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                last = str(getattr(error, "reason", error))
        raise WebhookError(f"webhook {self.url} failed for alert {alert.key}: {last}")

    def __repr__(self) -> str:
        return f"WebhookSink({self.url!r})"
