"""`auptimate worker`: a Redis Streams consumer feeding the alert engine (issue 6)."""

from __future__ import annotations

import click


@click.command("worker")
@click.option("--store", "store_url", required=True, help="redis://host:port/db")
@click.option("--stream", required=True, help="The Redis Stream to read.")
@click.option("--group", required=True, help="The consumer group.")
def worker_command(store_url: str, stream: str, group: str) -> None:
    """Consume transactions from a Redis Stream through a consumer group and raise alerts."""
    click.echo("auptimate worker is not built yet (issue 6)", err=True)
    raise SystemExit(3)
