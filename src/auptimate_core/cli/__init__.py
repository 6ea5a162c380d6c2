"""The ``auptimate`` command: parses, calls the library, prints. Nothing imports it.

Each subcommand lives in a module of its own, imported only when it runs (see
:mod:`auptimate_core.cli.lazy`), so a command pays at start-up for what it uses alone.
"""

from __future__ import annotations

from typing import Final

import click

from .. import __version__
from .lazy import LazyCommand, LazyGroup

COMMANDS: Final = {
    "demo": LazyCommand(
        "auptimate_core.cli.demo:demo_command",
        "Generate a stream, raise alerts, rank investors and run a pool, with no server."),
    "generate": LazyCommand(
        "auptimate_core.cli.generate:generate_command",
        "Write a realistic synthetic stream of transactions to OUT (CSV or JSON Lines)."),
    "top-investors": LazyCommand(
        "auptimate_core.cli.top_investors:top_investors_command",
        "Rank the investors of FILE by distinct pools invested in, then total invested "
        "(investments less refunds; fees, distributions and carry are not investments)."),
    "monitor": LazyCommand(
        "auptimate_core.cli.monitor:monitor_command",
        "Replay FILE (CSV or JSON Lines, - for stdin) through the alert engine on event time."),
    "publish": LazyCommand(
        "auptimate_core.cli.worker:publish_command",
        "Append the transactions of FILE (CSV or JSON Lines, - for stdin) to a Redis Stream, "
        "sharded by pool, for `auptimate worker` to consume."),
    "worker": LazyCommand(
        "auptimate_core.cli.worker:worker_command",
        "Consume transactions from a Redis Stream through a consumer group and raise alerts."),
    "relay": LazyCommand(
        "auptimate_core.cli.relay:relay_command",
        "Forward every committed transaction of a ledger to the workers' Redis Stream, once."),
}
"""Every subcommand: where it lives and its help line."""


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="auptimate")
def main() -> None:
    """auptimate: top investors, real-time alerts and investment pools.

    \b
    Start here:
      auptimate demo                              the whole story, no server needed
      auptimate generate --out tx.csv --anomalies a synthetic stream to play with
      auptimate top-investors tx.csv -n 5         who backs the most pools
      auptimate monitor tx.csv                    replay the stream through the alerts
      auptimate publish tx.csv --store redis://.. then many `auptimate worker`s share it

    FILE arguments are CSV (syndicate-style or the library's headers) or JSON Lines; - is stdin.
    """
