"""`auptimate worker` and `auptimate publish`: transactions through Redis Streams (issue 6)."""

from __future__ import annotations

import json
import signal
import sys
from datetime import timedelta, tzinfo
from types import FrameType
from typing import Any

import click

from ..alerts import Alert, SpikeRule, ThresholdRule
from ._common import Duration, Input, input_options, observability_options, rule_options

DEFAULT_STREAM = "auptimate:transactions"


def _redis_only(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter("workers share their state in Redis: give a redis:// URL",
                                 param_hint="--store")
    return url


def _print_alert(alert: Alert) -> None:
    click.echo(json.dumps(alert.to_dict(), sort_keys=True))
    sys.stdout.flush()


@click.command("worker")
@observability_options
@click.option("--store", "store_url", required=True,
              help="redis://host:port/db: the Redis holding the stream, windows and alert log.")
@click.option("--stream", default=DEFAULT_STREAM, show_default=True,
              help="The transaction stream (its shards are STREAM:0, STREAM:1 ...).")
@click.option("--group", default="auptimate", show_default=True, help="The consumer group.")
@click.option("--consumer", default=None, help="This worker's name (default: host-pid).")
@click.option("--namespace", default="auptimate", show_default=True,
              help="Key prefix of the shared windows and alert lifecycle.")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Shard count of a new stream (default 16; an existing stream keeps its own).")
@rule_options
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Entries read per shard at a time.")
@click.option("--lease", type=Duration(), default="10s", show_default=True,
              help="How long a dead worker's shards wait before another worker takes them.")
@click.option("--until-idle", type=Duration(), default=None,
              help="Exit once nothing has arrived for this long (default: run until SIGTERM).")
@click.option("--quiet", is_flag=True, help="Do not print alerts (they are in the alert log).")
def worker_command(
    store_url: str, stream: str, group: str, consumer: str | None, namespace: str,
    shards: int | None, rules: list[ThresholdRule | SpikeRule], batch_size: int, lease: timedelta,
    until_idle: timedelta | None, quiet: bool,
) -> None:
    """Consume transactions from a Redis Stream through a consumer group and raise alerts.

    Run as many as you like on one --store: each shard of the stream is worked by one worker
    at a time, so the alerts are exactly those of one engine over the whole stream. Every
    alert goes once into the alert log ({STREAM}:alerts) and, unless --quiet, is printed as
    a JSON line. SIGTERM or Ctrl-C: the batch in hand is finished and acknowledged, exit 0.
    """
    from ..integrations.redis_streams import StreamWorker, run_worker

    _redis_only(store_url)

    def on_ready(worker: StreamWorker) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"worker {worker.consumer} on {stream} ({worker.shards} shards), "
                   f"group {group}", err=True)

    options: dict[str, Any] = {"shards": shards, "batch_size": batch_size,
                               "lease": lease.total_seconds()}
    try:
        worker = run_worker(
            store_url, rules, stream=stream, group=group, namespace=namespace,
            consumer=consumer, sinks=() if quiet else (_print_alert,),
            until_idle=until_idle.total_seconds() if until_idle else None,
            on_ready=on_ready, **options)
    except Exception as error:  # connection refused and the like: say it plainly
        from ..errors import AuptimateError

        if isinstance(error, (AuptimateError, OSError)) or "redis" in type(error).__module__:
            raise click.ClickException(f"worker stopped: {error}") from None
        raise
    click.echo(f"worker {worker.consumer} stopped after {worker.processed:,} entries", err=True)


@click.command("publish")
@click.argument("file", type=str)
@click.option("--store", "store_url", required=True, help="redis://host:port/db")
@click.option("--stream", default=DEFAULT_STREAM, show_default=True)
@click.option("--shards", type=click.IntRange(min=1), default=16, show_default=True,
              help="Shard count of a new stream (an existing stream must agree).")
@input_options
def publish_command(file: str, store_url: str, stream: str, shards: int, skip_invalid: bool,
                    rejects: str | None, assume_tz: tzinfo | None) -> None:
    """Append the transactions of FILE (CSV or JSON Lines, - for stdin) to a Redis Stream,
    sharded by pool, for `auptimate worker` to consume."""
    from ..errors import ValidationError
    from ..integrations.redis_streams import StreamProducer

    _redis_only(store_url)
    try:
        producer = StreamProducer(store_url, stream, shards=shards)
    except ValidationError as error:
        raise click.BadParameter(str(error), param_hint="--shards") from None
    with Input(file, skip_invalid=skip_invalid, rejects=rejects, assume_tz=assume_tz) as source:
        sent = len(producer.send(source.transactions()))
        source.summary()
    producer.close()
    click.echo(f"{sent:,} transactions appended to {stream} ({producer.shards} shards)",
               err=True)
