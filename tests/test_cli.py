"""The `auptimate` command: generate, monitor, and the shared bad-row handling."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from auptimate_core import __version__
from auptimate_core.cli import main


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_help_and_version() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "auptimate demo" in out and "monitor" in out
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_generate_then_monitor_finds_every_anomaly_and_nothing_else(tmp_path: Path) -> None:
    data, manifest = tmp_path / "tx.csv", tmp_path / "truth.json"
    code, _, err = run("generate", "--out", str(data), "--transactions", "60000", "--seed", "5",
                       "--anomalies", "--manifest", str(manifest))
    assert code == 0, err
    code, out, err = run("monitor", str(data), "--format", "jsonl")
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    truth = json.loads(manifest.read_text())["anomalies"]
    large = {a["transaction_ids"][0] for a in truth if a["kind"] == "large"}
    bursts = [set(a["transaction_ids"]) for a in truth if a["kind"] == "burst"]
    firing = [a for a in alerts if a["state"] == "firing"]
    assert {a["transaction_id"] for a in firing if a["rule"] == "threshold"} == large
    spikes = [a["transaction_id"] for a in firing if a["rule"] == "spike"]
    assert len(spikes) == len(bursts)
    assert all(any(s in burst for s in spikes) for burst in bursts)
    assert "60,000 transactions" in err


def test_generate_is_deterministic_and_writes_jsonl(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        assert run("generate", "--out", str(path), "-n", "500", "--seed", "9")[0] == 0
    assert a.read_text() == b.read_text()
    first = json.loads(a.read_text().splitlines()[0])
    assert set(first) == {"id", "investor_id", "pool_id", "amount", "timestamp", "kind"}


BRIEF = ("investor_id,syndicate_id,transaction_amount,transaction_date\n"
         "ann,s1,300000.01,2023-01-15\nbob,s1,100,2023-01-15\n")


def test_monitor_reads_the_brief_header_from_stdin() -> None:
    code, out, _ = run("monitor", "-", "--format", "jsonl", input=BRIEF)
    assert code == 0
    (alert,) = [json.loads(line) for line in out.splitlines()]
    assert alert["rule"] == "threshold" and alert["transaction_id"] == "1"


def test_a_bad_row_stops_with_status_2_naming_line_and_field() -> None:
    bad = BRIEF + "cy,s2,lots,2023-01-16\n"
    code, _, err = run("monitor", "-", input=bad)
    assert code == 2
    assert "line 4: amount:" in err


def test_skip_invalid_reports_and_writes_every_rejected_row(tmp_path: Path) -> None:
    bad = BRIEF + "cy,s2,lots,2023-01-16\ndee,,5,2023-01-16\n"
    rejects = tmp_path / "rejects.csv"
    code, _, err = run("monitor", "-", "--format", "jsonl", "--skip-invalid", "--rejects",
                         str(rejects), input=bad)
    assert code == 0
    assert "line 4: amount" in err and "line 5: pool_id" in err
    assert "2 rows rejected" in err
    lines = rejects.read_text().splitlines()
    assert lines[0] == "line,field,reason,row" and len(lines) == 3


def test_monitor_validates_its_options() -> None:
    code, _, err = run("monitor", "-", "--spike-window", "soon", input=BRIEF)
    assert code == 2 and "--spike-window" in err and "must be a positive duration" in err
    code, _, err = run("monitor", "-", "--rule", "amount_spike", "--min-total", "-5", input=BRIEF)
    assert code == 2 and "--min-total" in err
    code, out, _ = run("monitor", "-", "--rule", "amount_spike", "--rule", "threshold",
                       "--threshold", "100", "--format", "jsonl", input=BRIEF)
    assert code == 0 and '"rule": "threshold"' in out
    code, _, err = run("monitor", "-", "--store", "carrier-pigeon://x", input=BRIEF)
    assert code == 2 and "names no window store" in err
