"""The SQL ledger's engines made from URLs: one reading of a URL and one set of engine options
for the sync repository (:meth:`SqlLedgerRepository.from_url
<auptimate_core.backends.sql.ledger.SqlLedgerRepository.from_url>`) and the asyncio storage
(:meth:`SqlStorage.from_url <auptimate_core.aio.sql.SqlStorage.from_url>`).

What every engine gets: parameters hidden from errors and logs (no personal data there); a
bare scheme on the ledger's driver (:data:`SYNC_DRIVERS`, :data:`ASYNC_DRIVERS`); on MySQL and
MariaDB the settings of :func:`~auptimate_core.backends.sql.mysql.engine_options`; on SQLite a
connection any thread may use (the repository sets its isolation itself, from whichever thread
runs the unit of work), one shared connection for an in-memory database, and a 30-second wait
for a locked file. A driver that is not installed is a :class:`MissingExtra` naming the extra
to install.

>>> engine = new_engine("sqlite://", None, sa.create_engine, SYNC_DRIVERS)
>>> engine.hide_parameters, type(engine.pool).__name__
(True, 'StaticPool')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from ...errors import InvalidURL, MissingExtra
from ...urls import redact
from . import mysql as mysql_sql

try:
    import sqlalchemy as sa
    from sqlalchemy.pool import StaticPool
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["ASYNC_DRIVERS", "SYNC_DRIVERS", "new_engine"]

E = TypeVar("E")

SYNC_DRIVERS: Final = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
"""The sync ledger's driver for each bare scheme (``mysql://`` and ``mariadb://``: PyMySQL, see
:func:`~auptimate_core.backends.sql.mysql.engine_url`)."""

ASYNC_DRIVERS: Final = {**SYNC_DRIVERS, "sqlite": "sqlite+aiosqlite"}
"""The asyncio ledger's driver for each bare scheme."""

_EXTRAS: Final = {"psycopg": "postgres", "pymysql": "mysql", "aiosqlite": "aio"}


def new_engine(url: str, engine_options: Mapping[str, Any] | None, create: Callable[..., E],
               drivers: Mapping[str, str]) -> E:
    """The engine ``create`` (:func:`sqlalchemy.create_engine` or
    :func:`~sqlalchemy.ext.asyncio.create_async_engine`) makes for ``url``, its bare scheme
    named by ``drivers``, with ``engine_options`` over the ledger's defaults (module notes)."""
    options = dict(engine_options or {})
    options.setdefault("hide_parameters", True)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        shown = redact(url)
        raise InvalidURL(shown, f"{shown!r} is not a database URL: {error}") from None
    parsed = parsed.set(drivername=drivers.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() in mysql_sql.NAMES:
        parsed = mysql_sql.engine_url(parsed)
        options = mysql_sql.engine_options(options)
    if parsed.get_backend_name() == "sqlite":
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        if parsed.database in (None, "", ":memory:"):
            options.setdefault("poolclass", StaticPool)
        else:
            connect_args.setdefault("timeout", 30)
        options["connect_args"] = connect_args
    try:
        return create(parsed, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as error:
        driver = parsed.get_driver_name()
        raise MissingExtra(driver, _EXTRAS.get(driver, "sql")) from error
