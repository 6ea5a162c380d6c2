"""Structured logs: JSON lines that parse and carry the fields, readable text, no personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import Alert, AlertEngine, LoggingSink, SpikeRule, ThresholdRule
from auptimate_core.logs import JsonFormatter, TextFormatter, configure_logging, scrub

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EMAIL = "ada.lovelace@fund.example"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    """A logger writing to a JSON stream and a text stream."""
    logger = logging.getLogger("test_logs.engine")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    as_json, as_text = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((as_json, JsonFormatter()), (as_text, TextFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        handlers.append(handler)
    yield logger, as_json, as_text
    for handler in handlers:
        logger.removeHandler(handler)


def stream() -> list[Transaction]:
    txs = [Transaction(id=f"t{i}", investor_id=f"investor-{EMAIL}", pool_id="pool-7",
                       amount=Decimal("100"), timestamp=T0 + timedelta(minutes=i))
           for i in range(8)]
    txs.append(Transaction(id="big", investor_id="inv-9", pool_id="pool-7",
                           amount=Decimal("987654.32"), timestamp=T0 + timedelta(minutes=9)))
    txs += [Transaction(id=f"b{k}", investor_id="inv-9", pool_id="pool-7", amount=Decimal("5"),
                        timestamp=T0 + timedelta(minutes=10, seconds=k)) for k in range(5)]
    return txs


def engine_with(logger: logging.Logger, *sinks: object) -> AlertEngine:
    return AlertEngine(
        [ThresholdRule(limit=Decimal("250000")),
         SpikeRule(window=timedelta(minutes=1), baseline=timedelta(minutes=8), factor=3,
                   min_count=4)],
        sinks=[LoggingSink(logger, level=logging.WARNING), *sinks],  # type: ignore[list-item]
    )


def test_alert_log_lines_parse_as_json_and_carry_the_structured_fields(
    log: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, as_json, as_text = log
    engine = engine_with(logger)
    alerts = engine.process_many(stream())
    alerts += engine.evaluate(T0 + timedelta(hours=1))
    lines = [json.loads(line) for line in as_json.getvalue().splitlines()]
    assert len(lines) == len(alerts) == 3
    for line, alert in zip(lines, alerts):
        assert line["pool_id"] == "pool-7"
        assert line["alert_rule"] == alert.name and line["alert_state"] == alert.state
        assert line["transaction_id"] == alert.transaction_id
        assert line["logger"] == "test_logs.engine"
        assert line["level"] == ("WARNING" if alert.state == "firing" else "INFO")
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    assert [line["alert_state"] for line in lines] == ["firing", "firing", "resolved"]
    assert lines[-1]["transaction_id"] is None  # resolved by evaluate(now)
    text = as_text.getvalue().splitlines()
    assert "alert_rule=threshold alert_state=firing pool_id=pool-7 transaction_id=big" in text[0]
    everything = as_json.getvalue() + as_text.getvalue()
    assert EMAIL not in everything and "investor-" not in everything


def test_a_failing_sink_is_logged_with_fields_and_without_personal_data(
    log: tuple[logging.Logger, io.StringIO, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    def leaky_sink(alert: Alert) -> None:
        raise RuntimeError(f"could not mail {EMAIL}")

    formatter = JsonFormatter()
    with caplog.at_level(logging.ERROR, logger="auptimate_core.alerts"):
        alerts = engine_with(log[0], leaky_sink).process_many(stream())
    errors = [json.loads(formatter.format(r)) for r in caplog.records
              if r.name == "auptimate_core.alerts"]
    assert len(errors) == len(alerts) == 2
    first = errors[0]
    assert first["level"] == "ERROR" and "leaky_sink" in first["message"]
    assert first["sink"].endswith("leaky_sink")
    assert (first["alert_rule"], first["alert_state"], first["pool_id"],
            first["transaction_id"]) == ("threshold", "firing", "pool-7", "big")
    assert EMAIL not in json.dumps(errors) and "<email>" in first["message"]


def test_fields_that_speak_of_personal_data_or_money_are_dropped() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "invest by %s", (EMAIL,), None)
    extra = {"investor_id": "inv-1", "email": EMAIL, "amount": "100.00", "investor_name": "Ada",
             "api_token": "s3cret", "pool_id": "p1", "note": f"contact {EMAIL}", "count": 3,
             "ok": True}
    record.__dict__.update(extra)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "invest by <email>"
    assert line["pool_id"] == "p1" and line["count"] == 3 and line["ok"] is True
    assert line["note"] == "contact <email>"
    for key in ("investor_id", "email", "amount", "investor_name", "api_token"):
        assert key not in line
    text = TextFormatter().format(record)
    assert "inv-1" not in text and EMAIL not in text and "100.00" not in text


def test_exceptions_are_kept_and_scrubbed() -> None:
    try:
        raise ValueError(f"bad address {EMAIL}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad address <email>" in line["exception"]
    assert "Traceback" in TextFormatter().format(record)


def test_scrub_leaves_text_without_addresses_alone() -> None:
    assert scrub("pool p1 @ noon") == "pool p1 @ noon"
    assert scrub("to a@b.example, c.d@e.example.org") == "to <email>, <email>"


def test_configure_logging_replaces_its_own_handler() -> None:
    logger = logging.getLogger("test_logs.configured")
    logger.propagate = False
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "INFO", stream=first, logger=logger)
    handler = configure_logging("text", logging.DEBUG, stream=second, logger=logger)
    try:
        logger.debug("hello", extra={"pool_id": "p1"})
        assert logger.handlers == [handler] and first.getvalue() == ""
        assert second.getvalue().rstrip().endswith("test_logs.configured: hello pool_id=p1")
        with pytest.raises(ValueError, match="log format 'xml'"):
            configure_logging("xml", stream=second, logger=logger)
    finally:
        logger.removeHandler(handler)


def test_monitor_log_format_json_writes_parseable_lines_on_stderr(tmp_path: object) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from auptimate_core.cli import main

    path = Path(str(tmp_path)) / "tx.csv"
    rows = ["id,investor_id,pool_id,amount,timestamp"]
    rows += [f"t{i},{EMAIL},p{i % 3},{'900000' if i == 5 else '10'},"
             f"2026-03-01T09:{i:02d}:00+00:00" for i in range(12)]
    path.write_text("\n".join(rows) + "\n")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    result = CliRunner().invoke(main, ["monitor", str(path), "--log-format", "json"])
    assert result.exit_code == 0, result.output
    assert root.handlers == handlers and root.level == level  # undone when the command ends
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    summary = [line for line in lines if line["message"] == "monitor finished"]
    assert summary and summary[0]["transactions"] == 12 and summary[0]["alerts"] == 1
    assert summary[0]["store"] == "MemoryWindowStore"
    assert EMAIL not in result.stderr
