"""Structured logs through the standard :mod:`logging` module: JSON lines or readable text.

The library logs with ``extra={...}`` fields (``pool_id``, ``alert_rule``, ``alert_state``,
``transaction_id``, ``store``, ``operation``, ``stream``, ``group`` ...). These formatters put
those fields into the output: :class:`JsonFormatter` as one JSON object per line, for log
shippers; :class:`TextFormatter` as ``key=value`` pairs after the message, for people.

No personal data leaves through them: a field whose name speaks of personal data or money
(``investor``, ``email``, ``amount``, ``name``, ``password``, ``token``, ``secret``) is
dropped, anything that looks like an e-mail address in the message or a field is replaced
by ``<email>``, and credentials are hidden (:func:`redact_secrets`: a URL's user part and query,
``token=...`` and the like, a bearer token).

>>> import logging
>>> record = logging.LogRecord("auptimate_core.alerts", logging.WARNING, __file__, 1,
...     "spike firing for %s (ops@example.com)", ("p1",), None)
>>> record.pool_id, record.investor_id = "p1", "inv-7"
>>> line = JsonFormatter().format(record)
>>> import json; fields = json.loads(line)
>>> fields["message"], fields["pool_id"], "investor_id" in fields
('spike firing for p1 (<email>)', 'p1', False)
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "configure_logging", "redact_secrets",
           "scrub", "structured_fields"]

FORMATS = ("text", "json")

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}
_PERSONAL = re.compile(r"investor|e_?mail|amount|name|password|token|secret", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s@<>\"'(),;:/*]+@[^\s@<>\"'(),;:/]+\.[A-Za-z]{2,}")
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#'\"<>]*@)?([^\s?#'\"<>]*)"
                  r"([?#][^\s'\"<>]*)?")
_SECRET_FIELD = re.compile(
    r"(?i)\b((?:access_?|api_?|auth_?|refresh_?)?(?:token|key|secret|password|passwd|pwd|"
    r"signature|sig|credentials?)\s*[=:]\s*)[^\s&,;'\"]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")


def _hide_url(match: re.Match[str]) -> str:
    scheme, user, rest, query = match.groups()
    return scheme + ("***@" if user else "") + rest + ("?***" if query else "")


def redact_secrets(text: str) -> str:
    """``text`` with credentials hidden: every URL's user part (``user:password@``) and query
    (``?token=...``) as ``***``, ``token=...``/``api_key: ...`` values and bearer tokens too.

    >>> redact_secrets("POST https://bot:pw@hooks.example/a?token=s3cret failed")
    'POST https://***@hooks.example/a?*** failed'
    >>> redact_secrets("refused: token=abc123, Authorization: Bearer xyz")
    'refused: token=***, Authorization: Bearer ***'
    """
    if "://" in text:
        text = _URL.sub(_hide_url, text)
    text = _SECRET_FIELD.sub(r"\1***", text)
    return _BEARER.sub(r"\1 ***", text)


def scrub(text: str) -> str:
    """``text`` with every e-mail-like substring replaced by ``<email>`` and credentials
    hidden (:func:`redact_secrets`).

    >>> scrub("mail a.b+c@fund.example now")
    'mail <email> now'
    """
    text = redact_secrets(text)
    return _EMAIL.sub("<email>", text) if "@" in text else text


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


def structured_fields(record: logging.LogRecord) -> dict[str, object]:
    """The ``extra`` fields of ``record`` that may be shown: no personal data, e-mails scrubbed.

    Values are JSON-ready: numbers and booleans as they are, anything else as text.
    """
    return {
        key: _plain(value)
        for key, value in record.__dict__.items()
        if key not in _STANDARD and not key.startswith("_") and not _PERSONAL.search(key)
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the structured fields, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in structured_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = scrub(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2024-01-01T00:00:00.000+00:00 WARNING auptimate_core.alerts: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{when} {record.levelname} {record.name}: {scrub(record.getMessage())}"
        fields = structured_fields(record)
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_installed: logging.Handler | None = None


def configure_logging(
    fmt: str = "text",
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Send ``logger`` (the root logger by default) to ``stream`` (stderr) in ``fmt``.

    ``fmt`` is ``"text"`` or ``"json"``. Calling it again replaces the handler it installed
    before, so a process (or a test calling the CLI many times) never doubles its lines.
    Returns the handler.
    """
    global _installed
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler: logging.Handler = (
        _StderrHandler() if stream is None else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    target = logger or logging.getLogger()
    if _installed is not None:
        for known in (target, logging.getLogger()):
            known.removeHandler(_installed)
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    _installed = handler
    return handler
