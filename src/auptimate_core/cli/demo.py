"""`auptimate demo`: the whole story on embedded defaults (issue 9)."""

from __future__ import annotations

import click


@click.command("demo")
def demo_command() -> None:
    """Generate a stream, raise alerts, rank investors and run a pool, with no server."""
    click.echo("auptimate demo is not built yet (issue 9)", err=True)
    raise SystemExit(3)
