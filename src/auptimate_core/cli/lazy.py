"""A click group that knows its commands by name and one line of help, and imports a
command's module only when that command is run (or its own help is asked for).

``auptimate --help`` then lists every command without importing any of them, and
``auptimate top-investors`` imports what ranking needs and nothing of the alert engine.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from typing import Any, Final, NamedTuple

import click

_PROGRAM_ENVIRONMENT: Final = {"OPENBLAS_NUM_THREADS": "1", "POLARS_MAX_HOT_TABLE_SIZE": "0"}
"""Set when run as the program, unless already set (see :meth:`LazyGroup.main`)."""

_as_program = False
"""Whether this process runs a :class:`LazyGroup` as the program (see :meth:`LazyGroup.main`)."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector off for a block that imports a large library and makes few other
    objects and no cycles: the import makes tens of thousands of objects, all kept, which the
    collector would walk again and again (and once more at the first collection after the
    block, as they are all young). Run as the program, what the block made is then frozen, as
    the command's own imports are; otherwise the collector is put back as it was."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if _as_program:
            gc.freeze()
        gc.enable()


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
        self.program = False
        """Whether the group runs as the program (see :meth:`main`)."""
        self._collect_after_import = False

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """click's ``main``. Run as the program (no arguments given: they come from the
        command line), it

        - keeps numpy's BLAS to one thread unless told otherwise (no command multiplies
          matrices large enough to gain from more, and idle BLAS threads spin on the cores the
          file reader and the engine use);
        - turns off polars' table of hot keys in its streaming group-by unless told otherwise
          (``POLARS_MAX_HOT_TABLE_SIZE=0``): grouping a file's rows by investor, with keys that
          seldom repeat close together, it costs more than it saves;
        - imports the command with the garbage collector off (imports make many objects and
          no garbage), then freezes what they made, so that no collection of the run walks
          them again;
        - ends the process with :func:`os._exit` once the command has exited with a status
          and everything written is flushed (see :func:`_leave`): the interpreter's teardown,
          which frees every object and module of the run one by one, is nothing anyone sees.
        """
        if args or kwargs:
            return super().main(*args, **kwargs)
        for name, value in _PROGRAM_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        global _as_program
        self.program = _as_program = True
        self._collect_after_import = gc.isenabled()
        gc.disable()
        try:
            return super().main()
        except SystemExit as done:
            _leave(done)
            raise
        finally:
            if self._collect_after_import:
                gc.enable()
            gc.freeze()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            command = self._load(cmd_name)
        if self._collect_after_import:
            gc.freeze()
            gc.enable()
            self._collect_after_import = False
        return command

    def _load(self, cmd_name: str) -> click.Command:
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


def _leave(done: SystemExit) -> None:
    """End the process now with ``done``'s status, as the interpreter would end it, but for
    its teardown: the threads it would wait for are gone, the ``atexit`` functions run (logging
    flushes its handlers there), and standard output and error are flushed. Returns (and the
    exit goes the usual way) when the status is not a number, a thread the interpreter would
    wait for still runs, or a stream does not flush (a closed pipe), so that what is printed
    and the status are the interpreter's own in those cases."""
    status = 0 if done.code is None else done.code
    if not isinstance(status, int):
        return
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(status)
