"""The documentation builds, links every page, and its Python examples run.

- ``mkdocs build --strict`` (into a temporary directory): a broken link, a missing nav target
  or a docstring mkdocstrings cannot render fails the build.
- Every page under docs/ is reachable from the nav.
- Every fenced ```` ```python ```` block of the pages in ``RUN_PAGES`` (and of the README's
  tour) runs, the page's blocks in order in one namespace (as a reader would paste them).
  Blocks that need a server are fenced ```` ```py ```` instead: shown, not run. A page joins
  ``RUN_PAGES`` once its Python blocks are complete programs rather than fragments.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUN_PAGES = (
    "index.md", "getting-started.md", "concepts.md", "backends.md", "cli.md", "ledger.md",
    "asyncio.md",
)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _nav_files(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [name for item in nav for name in _nav_files(item)]
    if isinstance(nav, dict):
        return [name for value in nav.values() for name in _nav_files(value)]
    return []


def test_docs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    engine_page = (site / "reference" / "alerts" / "index.html").read_text()
    assert "AlertEngine" in engine_page and "process_many" in engine_page
    for reference in (site / "reference").rglob("*.html"):
        # Doctests must come out as code, not as nested block quotes (see docs/griffe_rst.py).
        assert "<blockquote>" not in reference.read_text(), reference
    for page in ("getting-started", "concepts", "backends", "cli"):
        assert (site / page / "index.html").exists(), page


def test_every_page_is_in_the_nav() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = set(_nav_files(config["nav"]))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert pages - listed == set(), "pages missing from the nav in mkdocs.yml"


def _pages_with_code() -> list[Path]:
    pages = [DOCS / name for name in RUN_PAGES]
    return [page for page in pages if page.exists() and PYTHON_BLOCK.search(page.read_text())]


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda path: path.name)
def test_python_examples_in_the_docs_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes lands here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for number, match in enumerate(PYTHON_BLOCK.finditer(page.read_text()), start=1):
        code = compile(match.group(1), f"{page.name} block {number}", "exec")
        exec(code, namespace)
    capsys.readouterr()


def test_the_readme_tour_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import auptimate_core

    if not hasattr(auptimate_core, "PoolLedger"):
        pytest.skip("the tour's last part needs auptimate_core.PoolLedger (the pools ledger)")
    monkeypatch.chdir(tmp_path)
    blocks = PYTHON_BLOCK.findall((ROOT / "README.md").read_text())
    assert blocks, "the README has no Python tour"
    namespace: dict[str, Any] = {"__name__": "readme"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md block {number}", "exec"), namespace)
    assert "alice" in capsys.readouterr().out
