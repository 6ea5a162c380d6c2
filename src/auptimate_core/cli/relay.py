"""`auptimate relay`: a ledger's committed transactions into the workers' Redis Stream."""

from __future__ import annotations

import signal
from datetime import timedelta
from types import FrameType

import click

from ._common import Duration, observability_options

DEFAULT_STREAM = "auptimate:transactions"


class Seconds(Duration):
    """A duration: plain seconds (``5``, ``0.5``) or with a unit (``30s``, ``1m``)."""

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        try:
            seconds = float(str(value))
        except ValueError:
            return super().convert(value, param, ctx)
        if not seconds > 0:
            self.fail(f"{value!r} must be more than 0 seconds", param, ctx)
        return timedelta(seconds=seconds)


@click.command("relay")
@observability_options
@click.option("--ledger", "ledger_url", required=True,
              help="The ledger: sqlite:///pools.db or postgresql+psycopg://user@host/db.")
@click.option("--redis", "redis_url", required=True,
              help="redis://host:port/db: the Redis of the workers' stream.")
@click.option("--stream", default=DEFAULT_STREAM, show_default=True,
              help="The transaction stream the workers read (shards STREAM:0, STREAM:1 ...).")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Shard count of a new stream (default 16; an existing stream keeps its own).")
@click.option("--name", default="relay", show_default=True,
              help="The relay's cursors are kept under this name: give each ledger feeding "
                   "one stream its own.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="At most this many changes (and transactions) per round trip to Redis.")
@click.option("--until-idle", type=Seconds(), default=None,
              help="Exit once no change has come for this long (seconds, or 30s, 1m ...; "
                   "default: run until SIGTERM).")
def relay_command(ledger_url: str, redis_url: str, stream: str, shards: int | None, name: str,
                  batch: int, until_idle: timedelta | None) -> None:
    """Forward every committed transaction of a ledger to the workers' Redis Stream, once.

    Follows the ledger's change feed and appends each investment, refund, fee, distribution
    and carry to the shard of its pool, as `auptimate publish` would. Its cursors live in
    Redis, moved in the same step as the entries: killed at any point (even kill -9) and
    started again, it neither skips nor repeats a transaction. SIGTERM or Ctrl-C: the batch in
    hand is sent, exit 0.
    """
    from ..errors import AuptimateError
    from ..integrations.relay import LedgerRelay
    from ..pools import PoolLedger

    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter("the workers' stream is in Redis: give a redis:// URL",
                                 param_hint="--redis")
    if ledger_url.split("://", 1)[0].lower() == "memory":
        raise click.BadParameter("a memory:// ledger lives in one process and has nothing to "
                                 "relay to others: give its database's URL",
                                 param_hint="--ledger")
    try:
        ledger = PoolLedger.from_url(ledger_url)
    except AuptimateError as error:
        raise click.ClickException(f"cannot open the ledger: {error}") from None
    try:
        relay = LedgerRelay(ledger, redis_url, stream, name=name, shards=shards, batch=batch)

        def stop(signum: int, frame: FrameType | None) -> None:
            relay.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"relay {name} into {stream} ({relay.shards} shards)", err=True)
        position = relay.run(until_idle=until_idle.total_seconds() if until_idle else None)
    except AuptimateError as error:
        raise click.ClickException(f"relay stopped: {error}") from None
    finally:
        ledger.close()
    click.echo(f"relay {name} stopped after change {position.count:,}: "
               f"{relay.appended:,} entries appended, {relay.already:,} found already there",
               err=True)
