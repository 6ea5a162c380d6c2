"""A click group that knows its commands by name and one line of help, and imports a
command's module only when that command is run (or its own help is asked for).

``auptimate --help`` then lists every command without importing any of them, and
``auptimate top-investors`` imports what ranking needs and nothing of the alert engine.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from importlib import import_module
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a command lives (``"package.module:attribute"``) and its help line, as the
    command's docstring begins (a test holds the two to the same words)."""

    target: str
    help: str


class LazyGroup(click.Group):
    """A :class:`click.Group` whose ``lazy`` commands are imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """click's ``main``. Run as the program (no arguments given: they come from the
        command line), it keeps numpy's BLAS to one thread unless told otherwise (no command
        multiplies matrices large enough to gain from more, and idle BLAS threads spin on the
        cores the file reader and the engine use), and freezes what is left when the command
        is done, so that the interpreter's teardown skips a last collection over every object
        of the run."""
        if args or kwargs:
            return super().main(*args, **kwargs)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            return super().main()
        finally:
            gc.freeze()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        module, _, attribute = self.lazy[cmd_name].target.partition(":")
        loaded = vars(import_module(module))[attribute]
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{self.lazy[cmd_name].target} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their help lines, as click writes them, without importing the
        commands not loaded yet."""
        names = [name for name in self.list_commands(ctx)
                 if name not in self.commands or not self.commands[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            rows.append((name, loaded.get_short_help_str(limit) if loaded is not None
                         else _short_help(self.lazy[name].help, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _short_help(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` as click shortens a loaded command's help (through a
    throwaway command: click's own helper for this is deprecated)."""
    return click.Command(None, help=text).get_short_help_str(limit)
