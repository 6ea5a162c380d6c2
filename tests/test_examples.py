"""Every script in examples/ runs to the end, and the notebook executes from top to bottom.

Each script is run as a subprocess, the way a reader would run it, from a temporary working
directory so that nothing is written into the repository. Scripts that need a server get the
URL of one started by the fixtures in the environment (``REDIS_URL``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
NEEDS_REDIS = {"redis_workers.py"}
SERVICES = {"fastapi_app.py"}  # a server: tests/test_asgi.py runs it under uvicorn
TIMEOUT = 120


def _param(script: Path) -> object:
    marks = [pytest.mark.redis] if script.name in NEEDS_REDIS else []
    return pytest.param(script, id=script.name, marks=marks)


def test_the_examples_are_there() -> None:
    names = {script.name for script in SCRIPTS}
    assert {"engine_quickstart.py", "sqlalchemy_observer.py", "ledger_alerts.py",
            "redis_workers.py", "fastapi_app.py"} <= names
    assert "exploration.ipynb" in {notebook.name for notebook in NOTEBOOKS}


@pytest.mark.parametrize("script", [_param(script) for script in SCRIPTS
                                    if script.name not in SERVICES])
def test_example_script_runs(script: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    args = [sys.executable, str(script)]
    if script.name in NEEDS_REDIS:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT, check=False)
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
    assert result.stdout.strip(), f"{script.name} printed nothing"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_executes(notebook: Path, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    document = nbformat.read(notebook, as_version=4)
    client = NotebookClient(document, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [output for cell in document.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert images, "the notebook drew no picture"
