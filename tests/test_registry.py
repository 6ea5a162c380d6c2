"""The registry of storage URLs: built-in schemes, bad URLs, entry points, missing drivers."""

from __future__ import annotations

import ast
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import auptimate_core
from auptimate_core import Investor, Pool, PoolLedger
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.registry import ledger_repository_from_url, window_store_from_url
from auptimate_core.errors import InvalidURL, MissingExtra, ValidationError
from auptimate_core.pools import MemoryLedgerRepository
from auptimate_core.store import Interval
from auptimate_core.urls import LEDGER_REPOSITORIES, WINDOW_STORES, Backend, Registry, redact

SRC = Path(auptimate_core.__file__).parent


# -- built-in schemes --------------------------------------------------------------------------


def test_builtin_schemes_open_their_backends() -> None:
    assert isinstance(window_store_from_url("memory://"), MemoryWindowStore)
    assert window_store_from_url("memory://?window=ring").window == "ring"
    assert window_store_from_url("MEMORY://").window == "exact"
    assert isinstance(ledger_repository_from_url("memory://"), MemoryLedgerRepository)
    assert type(ledger_repository_from_url("sqlite://")).__name__ == "SqlLedgerRepository"
    assert {"memory", "redis", "rediss", "redis+cluster", "unix"} <= set(
        WINDOW_STORES.schemes())
    assert {"memory", "sqlite", "postgresql", "postgresql+psycopg"} <= set(
        LEDGER_REPOSITORIES.schemes())


def test_a_bare_scheme_stands_for_its_url() -> None:
    assert isinstance(window_store_from_url("memory"), MemoryWindowStore)
    assert isinstance(PoolLedger.from_url("memory").repository, MemoryLedgerRepository)


def test_options_reach_the_backend() -> None:
    store = window_store_from_url("memory://", window="ring")
    assert store.window == "ring"
    with pytest.raises(ValidationError, match="options: memory:// takes no options"):
        PoolLedger.from_url("memory://", schema="x")


@pytest.mark.redis
def test_a_redis_url_opens_a_redis_store(redis_url: str) -> None:
    store = window_store_from_url(redis_url, namespace=f"reg{uuid.uuid4().hex[:8]}")
    assert type(store).__name__ == "RedisWindowStore" and store.namespace.startswith("reg")
    assert store.tally("p", 1, [Interval(0, 60_000_000)])[0].count == 0
    store.close()


@pytest.mark.postgres
def test_a_postgresql_url_opens_a_sql_ledger(postgres_url: str) -> None:
    schema = f"reg_{uuid.uuid4().hex[:8]}"
    ledger = PoolLedger.from_url(postgres_url.replace("postgresql+psycopg://", "postgres://"),
                                 schema=schema)
    ledger.create_pool(Pool("p", "m"), actor="m")
    assert type(ledger.repository).__name__ == "SqlLedgerRepository"
    assert ledger.verify() == 1
    ledger.close()


def test_the_ledger_uses_the_registry_for_every_url(tmp_path: Path) -> None:
    ledger = PoolLedger.from_url(f"sqlite:///{tmp_path / 'pools.db'}")
    ledger.create_pool(Pool("p", "m"), actor="m")
    assert ledger.verify() == 1
    ledger.close()


# -- unknown and malformed URLs ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["mongodb://db.example/x", "ftp://example", "memory+x://"])
def test_an_unknown_scheme_names_the_url_and_the_known_schemes(url: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        window_store_from_url(url)
    error = caught.value
    assert isinstance(error, ValidationError) and isinstance(error, ValueError)
    assert error.field == "url" and error.url == url
    assert f"{url!r} names no window store" in str(error)
    assert "memory://" in str(error) and "redis://" in str(error)
    assert {"memory", "redis"} <= set(error.schemes)
    with pytest.raises(InvalidURL, match="names no ledger; known schemes: .*sqlite://"):
        PoolLedger.from_url(url)


@pytest.mark.parametrize("url", ["", "not a url", "sqlite:/pools.db", "://host", "1redis://h",
                                 "redis://cache:port/0", "postgresql://u@[::1/db"])
def test_a_malformed_url_is_refused_by_name(url: str) -> None:
    with pytest.raises(InvalidURL, match="^url: "):
        window_store_from_url(url)
    with pytest.raises(InvalidURL, match="^url: "):
        PoolLedger.from_url(url)


def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidURL, match="URL is a string such as memory://, not int"):
        window_store_from_url(6379)  # type: ignore[arg-type]


def test_passwords_never_appear_in_errors() -> None:
    for url in ("mongodb://admin:hunter2@db:27017/x", "redis://:hunter2@cache:notaport/0",
                "postgresql+psycopg://app:hunter2@db:5x/pools",
                "memory://?window=ring&password=hunter2", "mongodb://db?password=hunter2"):
        with pytest.raises(InvalidURL) as caught:
            window_store_from_url(url)
        assert "hunter2" not in str(caught.value) and "hunter2" not in caught.value.url
        assert "***" in caught.value.url
    assert redact("postgresql://app:p%40ss@db/pools") == "postgresql://app:***@db/pools"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact("sqlite:///a:b@c.db") == "sqlite:///a:b@c.db"


def test_memory_store_options_in_the_url_are_checked() -> None:
    with pytest.raises(InvalidURL, match=r"memory:// takes only a window= option, not \['size'\]"):
        window_store_from_url("memory://?size=3")
    with pytest.raises(InvalidURL, match="memory:// takes no options"):
        PoolLedger.from_url("memory://?size=3")


# -- other packages' backends, by entry point --------------------------------------------------

_PLUGIN = '''
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.pools import MemoryLedgerRepository
from auptimate_core.store import Interval

opened = []


class Stores:
    @staticmethod
    def open(url, **options):
        opened.append((url, options))
        return MemoryWindowStore(**options)


def open_ledger(url, **options):
    opened.append((url, options))
    return MemoryLedgerRepository()


def hijack(url, **options):
    raise AssertionError("an entry point never replaces a built-in scheme")
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An installed distribution (a module and its dist-info) registering three backends."""
    name = f"auptimate_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(_PLUGIN)
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[auptimate_core.window_stores]\n"
        f"plugin+store = {name}:Stores.open\n"
        f"memory = {name}:hijack\n"
        "[auptimate_core.ledger_repositories]\n"
        f"plugin+ledger = {name}:open_ledger\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_an_entry_point_adds_a_window_store(plugin: str) -> None:
    assert "plugin+store" in WINDOW_STORES.schemes()
    store = window_store_from_url("plugin+store://somewhere?x=1", window="ring")
    assert isinstance(store, MemoryWindowStore) and store.window == "ring"
    assert sys.modules[plugin].opened == [("plugin+store://somewhere?x=1", {"window": "ring"})]
    assert WINDOW_STORES.backend("plugin+store://").source == plugin


def test_an_entry_point_adds_a_ledger_repository(plugin: str) -> None:
    ledger = PoolLedger.from_url("plugin+ledger://")
    ledger.create_pool(Pool("p", "m"), actor="m")
    ledger.register_investor(Investor("ann"))
    ledger.admit("p", "ann", actor="m")
    ledger.invest("p", "ann", Decimal("10"), actor="ann", idempotency_key="k")
    assert ledger.verify() == 3
    assert "plugin+ledger" in LEDGER_REPOSITORIES.schemes()
    assert "plugin+store" not in LEDGER_REPOSITORIES.schemes()


def test_an_entry_point_never_replaces_a_builtin(plugin: str) -> None:
    assert isinstance(window_store_from_url("memory://"), MemoryWindowStore)
    assert WINDOW_STORES.backend("memory://").source == "auptimate-core"


def test_without_the_distribution_its_schemes_are_unknown() -> None:
    with pytest.raises(InvalidURL, match="names no window store"):
        window_store_from_url("plugin+store://")


# -- registering in code, missing drivers ------------------------------------------------------


def _registry() -> Registry:
    return Registry("window store", "auptimate_core.tests_no_such_group", {})


def test_register_serves_a_new_scheme_and_refuses_a_taken_one() -> None:
    registry = _registry()
    registry.register("inproc", "auptimate_core.backends.memory:MemoryWindowStore",
                      takes_url=False)
    assert isinstance(registry.open("inproc://", window="ring"), MemoryWindowStore)
    with pytest.raises(InvalidURL, match="inproc:// takes nothing after the scheme"):
        registry.open("inproc://elsewhere")
    with pytest.raises(ValueError, match="inproc:// already names a window store"):
        registry.register("INPROC", "auptimate_core.backends.registry:memory_window_store")
    registry.register("inproc", "auptimate_core.backends.registry:memory_window_store",
                      replace=True)
    assert registry.open("inproc://?window=ring").window == "ring"
    with pytest.raises(ValueError, match="is not a URL scheme"):
        registry.register("in proc", "auptimate_core.backends.memory:MemoryWindowStore")
    with pytest.raises(ValueError, match="expected 'module:attribute'"):
        registry.register("other", "auptimate_core.backends.memory.MemoryWindowStore")


def test_a_missing_driver_names_the_extra(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"auptimate_needs_driver_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("import auptimate_no_such_driver\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = _registry()
    registry.register("needs", f"{name}:open", extra="speed")
    with pytest.raises(MissingExtra) as caught:
        registry.open("needs://")
    assert caught.value.module == "auptimate_no_such_driver"
    assert caught.value.extra == "speed"
    assert "pip install 'auptimate-core[speed]'" in str(caught.value)


def test_a_missing_backend_module_is_not_blamed_on_an_extra() -> None:
    registry = _registry()
    registry.register("gone", "auptimate_core.backends.no_such_module:open", extra="redis")
    with pytest.raises(ModuleNotFoundError) as caught:
        registry.open("gone://")
    assert not isinstance(caught.value, MissingExtra)


def test_backend_sources_are_checked() -> None:
    with pytest.raises(TypeError, match="is not callable"):
        Backend("auptimate_core.urls:WINDOW_STORES.kind").load()


# -- the arrows --------------------------------------------------------------------------------

_DOMAIN = ("domain", "money", "store", "pools", "ranking", "windows", "alerts")


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, by statement or by ``importlib.import_module("...")``."""
    package = ".".join(("auptimate_core", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    if path.name == "__init__.py":
        package = ".".join(("auptimate_core", *path.relative_to(SRC).parts[:-1]))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(filter(None, [*parent, base]))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value


def test_no_module_of_the_domain_imports_a_backend() -> None:
    found = []
    for room in _DOMAIN:
        paths = [SRC / f"{room}.py"] if (SRC / f"{room}.py").exists() else sorted(
            (SRC / room).rglob("*.py"))
        for path in paths:
            found += [f"{path.relative_to(SRC)} -> {name}" for name in _imports(path)
                      if name.startswith(("auptimate_core.backends", "auptimate_core.cli",
                                          "auptimate_core.integrations"))]
    assert found == []


def test_opening_a_memory_ledger_imports_no_backend() -> None:
    code = ("import sys\nfrom auptimate_core import PoolLedger\n"
            "PoolLedger.from_url('memory://')\n"
            "print(sorted(m for m in sys.modules if m.startswith('auptimate_core.backends')"
            " or m in ('sqlalchemy', 'redis')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
