"""The ``auptimate`` command: parses, calls the library, prints. Nothing imports it."""

from __future__ import annotations

import click

from .. import __version__
from .demo import demo_command
from .generate import generate_command
from .monitor import monitor_command
from .relay import relay_command
from .top_investors import top_investors_command
from .worker import publish_command, worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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

    FILE arguments are CSV (the brief's or the library's headers) or JSON Lines; - is stdin.
    """


for command in (demo_command, generate_command, top_investors_command, monitor_command,
                publish_command, worker_command, relay_command):
    main.add_command(command)
