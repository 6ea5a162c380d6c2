"""`auptimate` run as the program ends with :func:`os._exit` once the command has exited: all
it printed arrives, its status is the command's, ``atexit`` functions run, and the usual exit
is kept when a thread still runs or the status is not a number."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from auptimate_core.io.plain import VECTORISE_FROM

HEADER = "investor_id,syndicate_id,transaction_amount,transaction_date\n"


def program(*args: str, before: str = "", after: str = "") -> subprocess.CompletedProcess[str]:
    """``auptimate ARGS`` in a fresh interpreter as the console script runs it (``main()`` with
    no arguments), with ``before`` run first and ``after`` run if ``main`` returns."""
    code = (f"import sys\n{before}\nsys.argv = ['auptimate', *{list(args)!r}]\n"
            "from auptimate_core.cli import main\nmain()\n" + after)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


def many_investors(path: Path, investors: int, rows_each: int = 1) -> Path:
    """A plain file of ``investors`` investors with ``rows_each`` investments of 1.25 each in
    distinct pools, large enough for the vectorised path."""
    lines = [f"inv{i:07d},p{j},1.25,2026-03-01\n" for i in range(investors)
             for j in range(rows_each)]
    path.write_text(HEADER + "".join(lines))
    assert path.stat().st_size >= VECTORISE_FROM
    return path


def test_a_long_ranking_arrives_whole_with_status_0(tmp_path: Path) -> None:
    path = many_investors(tmp_path / "tx.csv", 60_000)
    done = program("top-investors", str(path), "-n", "60000", "--format", "csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "investor_id,unique_pools,total_amount"
    assert len(lines) == 60_001
    assert lines[1] == "inv0000000,1,1.25" and lines[-1] == "inv0059999,1,1.25"
    assert sum(Decimal(line.split(",")[2]) for line in lines[1:]) == Decimal("75000.00")


def test_a_bad_row_exits_2_naming_line_and_field(tmp_path: Path) -> None:
    path = many_investors(tmp_path / "tx.csv", 50_000)
    with path.open("a") as handle:
        handle.write("zed,p1,-5,2026-03-01\n")
    done = program("top-investors", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "Error: line 50002: amount: must be greater than zero, not -5\n"


def test_a_usage_error_exits_2() -> None:
    done = program("top-investors", "--top", "0", "x.csv")
    assert done.returncode == 2
    assert "Usage:" in done.stderr


def test_atexit_functions_run_and_what_they_print_arrives(tmp_path: Path) -> None:
    path = many_investors(tmp_path / "tx.csv", 50_000)
    done = program("top-investors", str(path), "--format", "csv",
                   before="import atexit\natexit.register(lambda: print('atexit ran'))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "atexit ran"
    assert done.stdout.count("atexit ran") == 1


def test_a_running_thread_keeps_the_usual_exit(tmp_path: Path) -> None:
    """The interpreter waits for a thread that is not a daemon; so does the program. The
    thread prints once the main thread is done, however long the command took."""
    path = many_investors(tmp_path / "tx.csv", 50_000)
    before = ("import threading\n"
              "threading.Thread(target=lambda: (threading.main_thread().join(), "
              "print('thread done', flush=True))).start()")
    done = program("top-investors", str(path), "--format", "csv", before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "thread done"


@pytest.mark.parametrize(("status", "expected"), [("'stopped'", 1), ("None", 0), ("3", 3)])
def test_the_status_of_system_exit_is_kept(status: str, expected: int) -> None:
    """A command that raises SystemExit itself: a number is the status; a text is printed on
    standard error and the status is 1, as the interpreter does."""
    before = ("import click\nfrom auptimate_core.cli import main as group\n"
              "@group.command('stop')\ndef stop():\n"
              f"    print('partial', end='')\n    raise SystemExit({status})\n")
    done = program("stop", before=before)
    assert done.returncode == expected
    assert done.stdout == "partial"
    if status == "'stopped'":
        assert done.stderr.strip() == "stopped"


def test_a_loaded_command_runs_with_the_collector_on() -> None:
    before = ("import gc\nfrom auptimate_core.cli import main as group\n"
              "@group.command('probe')\ndef probe():\n"
              "    print(gc.isenabled(), gc.get_freeze_count() > 0)\n")
    done = program("probe", before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_a_lazy_command_is_imported_without_the_collector_then_frozen() -> None:
    """The command's module is imported with the collector off; what the import made is frozen
    and the collector is back on when the command runs."""
    before = ("import gc, importlib\nimport auptimate_core.cli.lazy as lazy\n"
              "seen = []\n"
              "def spy(name):\n"
              "    seen.append(gc.isenabled())\n"
              "    return importlib.import_module(name)\n"
              "lazy.import_module = spy\n"
              "import auptimate_core.cli.generate as generate\n"
              "body = generate.generate_command.callback\n"
              "def wrapped(*args, **kwargs):\n"
              "    print(seen, gc.isenabled(), gc.get_freeze_count() > 0)\n"
              "generate.generate_command.callback = wrapped\n")
    done = program("generate", "--out", "-", before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[False]", "True", "True"]


def test_the_vectorised_ranking_leaves_the_collector_on_and_its_import_frozen(
    tmp_path: Path,
) -> None:
    """As the program, what polars' import made is frozen once the ranking is done, so that the
    first collection after it does not walk it; the collector is on again."""
    path = many_investors(tmp_path / "tx.csv", 50_000)
    before = ("import atexit, gc, sys\n"
              "atexit.register(lambda: print(gc.isenabled(), 'polars' in sys.modules, "
              "gc.get_count()[0] < 10_000))\n")
    done = program("top-investors", str(path), "--format", "csv", "-n", "1", before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True True True"


def test_collector_paused_outside_the_program_puts_the_collector_back() -> None:
    import gc

    from auptimate_core.cli.lazy import collector_paused

    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_vectorised_path_imports_no_other_form_of_the_ranking(tmp_path: Path) -> None:
    path = many_investors(tmp_path / "tx.csv", 50_000)
    before = ("import atexit, sys\n"
              "atexit.register(lambda: print(sorted(m for m in sys.modules if m in {"
              "'attrs', 'auptimate_core.domain', 'auptimate_core.io.readers', "
              "'auptimate_core.ranking.ranks', 'sortedcontainers', 'polars'})))\n")
    done = program("top-investors", str(path), "--format", "json", "-n", "2", before=before)
    assert done.returncode == 0, done.stderr
    *ranking, modules = done.stdout.splitlines()
    assert modules == "['polars']"
    assert "".join(ranking).replace(" ", "") == (
        '[{"investor_id":"inv0000000","unique_pools":1,"total_amount":"1.25"},'
        '{"investor_id":"inv0000001","unique_pools":1,"total_amount":"1.25"}]')
