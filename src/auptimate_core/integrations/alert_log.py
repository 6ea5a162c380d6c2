"""The workers' alert log: every alert once, as JSON, in the order it was logged.

For a stream ``S`` the log is the stream ``{S}:alerts``; each logged alert's key is marked by
``{S}:alert:<key>`` for as long as a redelivery may raise it again. One Lua script
(``lua/record_alerts.lua``) marks and appends in one step, so an alert raised again (its worker
died after raising it, before acknowledging its transactions) is logged once.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import quote

from ..alerts import Alert
from ..backends.redis_client import decoded
from .stream_shards import DEFAULT_STREAM, redis_client

__all__ = ["AlertLog", "alerts_key", "read_alerts"]


def alerts_key(stream: str) -> str:
    """The key of the alert log of ``stream``.

    >>> alerts_key("tx")
    '{tx}:alerts'
    """
    return f"{{{stream}}}:alerts"


def _mark_key(stream: str, key: str) -> str:
    return f"{{{stream}}}:alert:{quote(key, safe='')}"


class AlertLog:
    """Appends alerts to the alert log of ``stream`` on ``client``, each key once."""

    def __init__(self, client: Any, stream: str) -> None:
        self.client = client
        self.stream = stream
        source = resources.files("auptimate_core.integrations").joinpath(
            "lua", "record_alerts.lua").read_text()
        self._record = client.register_script(source)

    def record(self, alerts: list[Alert], *, memory_ms: int) -> list[Alert]:
        """Append the alerts, each key once (a key is remembered for ``memory_ms``); return
        those logged now."""
        if not alerts:
            return []
        keys = [alerts_key(self.stream)] + [_mark_key(self.stream, a.key) for a in alerts]
        payloads = [json.dumps(a.to_dict(), sort_keys=True) for a in alerts]
        flags = self._record(keys=keys, args=[memory_ms, *payloads])
        return [alert for alert, flag in zip(alerts, flags) if int(flag)]


def read_alerts(client: Any, stream: str = DEFAULT_STREAM) -> list[Alert]:
    """Every alert in the stream's alert log, in the order they were logged."""
    client = redis_client(client)
    return [Alert.from_dict(json.loads(decoded(fields[b"alert"] if b"alert" in fields
                                               else fields["alert"])))
            for _, fields in client.xrange(alerts_key(stream))]
