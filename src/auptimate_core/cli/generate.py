"""`auptimate generate`: write a seeded synthetic stream, optionally with anomalies."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..generate import SyntheticStream


@click.command("generate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write the stream ('-' for standard output).")
@click.option("--transactions", "-n", type=click.IntRange(min=1), default=100_000,
              show_default=True, help="How many transactions.")
@click.option("--seed", type=int, default=0, show_default=True, help="The random seed.")
@click.option("--anomalies", is_flag=True,
              help="Inject large transactions and bursts (listed by --manifest).")
@click.option("--manifest", type=click.Path(dir_okay=False),
              help="Write what was injected as JSON to this file.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Default: from the file's extension (.jsonl, .ndjson), else csv.")
def generate_command(
    out: str, transactions: int, seed: int, anomalies: bool, manifest: str | None,
    fmt: str | None,
) -> None:
    """Write a realistic synthetic stream of transactions to OUT (CSV or JSON Lines).

    Investors put money in many pools with skewed activity; with --anomalies the stream also
    holds transactions over 250,000 and bursts of 15-40 transactions within a minute.
    """
    started = time.perf_counter()
    stream = SyntheticStream(transactions, seed=seed, anomalies=anomalies)
    kind = fmt or ("jsonl" if Path(out).suffix.lower() in {".jsonl", ".ndjson"} else "csv")
    if out == "-":
        _write(stream, kind, sys.stdout)
    else:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            _write(stream, kind, handle)
    if manifest:
        with open(manifest, "w", encoding="utf-8") as handle:
            stream.write_manifest(handle)
    click.echo(
        f"wrote {transactions:,} transactions ({len(stream.anomalies)} anomalies) over "
        f"{len(stream.pool_ids):,} pools and {len(stream.investor_ids):,} investors in "
        f"{time.perf_counter() - started:.1f} s",
        err=True,
    )


def _write(stream: SyntheticStream, kind: str, handle: object) -> None:
    if kind == "jsonl":
        stream.write_jsonl(handle)  # type: ignore[arg-type]
    else:
        stream.write_csv(handle)  # type: ignore[arg-type]
