"""The command group loads each command on use: help lists them all without importing them, an
unknown command is refused as before, and start-up imports nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from click.utils import make_default_short_help

from auptimate_core.cli import COMMANDS, main

HEAVY = ("numpy", "polars", "duckdb", "sqlalchemy", "redis", "prometheus_client", "pyarrow",
         "pandas")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_lists_every_command_with_its_help_line() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = result.stdout.split("Commands:")[1].splitlines()
    for name, lazy in COMMANDS.items():
        line = next(row for row in listed if row.split() and row.split()[0] == name)
        assert make_default_short_help(lazy.help, 200)[:40] in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_lazy_entry_loads_its_command_with_the_same_help_line(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name
    for limit in (30, 45, 60, 200):
        assert make_default_short_help(COMMANDS[name].help, limit) == (
            command.get_short_help_str(limit))


def test_help_before_and_after_loading_every_command_is_the_same() -> None:
    for name in COMMANDS:
        main.get_command(click.Context(main), name)
    loaded = CliRunner().invoke(main, ["--help"], terminal_width=100).stdout
    code = ("from click.testing import CliRunner\nfrom auptimate_core.cli import "
            "main\nprint(CliRunner().invoke(main, ['--help'], terminal_width=100).stdout, "
            "end='')\n")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, check=False)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout == loaded


def test_an_unknown_command_is_refused_with_status_2() -> None:
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.stderr


def test_importing_the_command_line_imports_nothing_heavy() -> None:
    modules = _modules_after("import auptimate_core.cli")
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    assert not [m for m in modules if m.startswith("auptimate_core.cli.")
                and m != "auptimate_core.cli.lazy"]


def test_help_imports_no_command() -> None:
    modules = _modules_after(
        "import sys\nfrom auptimate_core.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n")
    assert not [m for m in modules if m.startswith("auptimate_core.cli.")
                and m != "auptimate_core.cli.lazy"]
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []


def test_top_investors_on_a_small_file_imports_nothing_heavy(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("investor_id,syndicate_id,transaction_amount,transaction_date\n"
                    "ann,s1,100,2026-03-01\nbob,s2,50.5,2026-03-01\n")
    modules = _modules_after(
        "from auptimate_core.cli import main\n"
        f"try:\n    main(['top-investors', {str(path)!r}])\nexcept SystemExit:\n    pass\n")
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    assert "auptimate_core.alerts.engine" not in modules


@pytest.mark.parametrize("name", ["OPENBLAS_NUM_THREADS", "POLARS_MAX_HOT_TABLE_SIZE"])
@pytest.mark.parametrize(("given", "expected"), [(None, "default"), ("4", "4")])
def test_run_as_the_program_the_libraries_are_tuned_unless_told(
    name: str, given: str | None, expected: str
) -> None:
    """numpy's BLAS keeps to one thread and polars' hot-key table is off, unless set."""
    env = {k: v for k, v in os.environ.items() if k != name}
    if given is not None:
        env[name] = given
    # The program ends with os._exit once the command is done, after the atexit functions.
    code = ("import atexit, os, sys\nfrom auptimate_core.cli import main\n"
            f"atexit.register(lambda: print(os.environ[{name!r}]))\n"
            "sys.argv = ['auptimate', '--help']\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    defaults = {"OPENBLAS_NUM_THREADS": "1", "POLARS_MAX_HOT_TABLE_SIZE": "0"}
    assert done.stdout.splitlines()[-1] == (defaults[name] if expected == "default"
                                            else expected)


def test_called_with_arguments_the_group_leaves_the_environment_alone() -> None:
    code = ("import os\nfrom click.testing import CliRunner\nfrom auptimate_core.cli import "
            "main\nCliRunner().invoke(main, ['--help'])\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), "
            "os.environ.get('POLARS_MAX_HOT_TABLE_SIZE'))")
    env = {k: v for k, v in os.environ.items()
           if k not in {"OPENBLAS_NUM_THREADS", "POLARS_MAX_HOT_TABLE_SIZE"}}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "None None"
