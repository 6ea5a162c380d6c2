"""A database driver's errors as the SQL ledger passes them on: described and scrubbed, never
with a statement's parameters or the rows they concerned.

The library's error (:class:`~auptimate_core.errors.StoreUnavailable`,
:class:`~auptimate_core.errors.LedgerError`) is raised *outside* the ``except`` that caught the
driver's, ``from driver_error(error)``: the driver's own error is then neither the cause nor the
context of the library's. :func:`bare` gives the errors a driver raises outside SQLAlchemy's
statements (a listening connection, a connection's settings) the same treatment.

>>> import sqlalchemy as sa
>>> refused = ValueError("duplicate key\\nDETAIL: Key (email)=(ann@example.com)")
>>> seen = sa.exc.IntegrityError("INSERT ...", {"email": "ann@example.com"}, refused)
>>> describe(seen)
'ValueError: duplicate key'
>>> passed_on = driver_error(seen)
>>> passed_on.params is None, type(passed_on.orig).__name__
(True, 'DriverError')
"""

from __future__ import annotations

try:
    import sqlalchemy as sa
except ImportError as error:  # pragma: no cover - depends on the environment
    from ...errors import MissingExtra

    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["DriverError", "bare", "describe", "driver_error"]


class DriverError(Exception):
    """A database driver's error as the ledger passes it on (the ``orig`` of the cause of its
    :class:`~auptimate_core.errors.LedgerError`): the driver's error class, its SQLSTATE and
    the first line of its message, never the statement's parameters nor the row it concerned
    (PostgreSQL's ``DETAIL`` lines can quote a whole row, a name and an e-mail with it)."""


def describe(error: sa.exc.DBAPIError) -> str:
    """``error`` as :class:`DriverError` shows it: ``UniqueViolation [23505]: duplicate key
    value violates unique constraint "..."``."""
    orig = error.orig
    if orig is None:
        return type(error).__name__
    state = getattr(orig, "sqlstate", None)
    lines = str(orig).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(orig).__name__}{f' [{state}]' if state else ''}: {first}"


def driver_error(error: sa.exc.DBAPIError) -> sa.exc.DBAPIError:
    """``error`` without its parameters, to chain in its place (see the module notes): the
    same SQLAlchemy class and statement, parameters hidden, its ``orig`` a
    :class:`DriverError`."""
    return type(error)(error.statement, None, DriverError(describe(error)),
                       hide_parameters=True,
                       connection_invalidated=error.connection_invalidated, code=error.code)


def bare(orig: Exception) -> sa.exc.DBAPIError:
    """A driver's error raised outside SQLAlchemy's statements (on a connection that is lost,
    as a rule) as SQLAlchemy's: an ``OperationalError``, its connection invalidated, ready for
    :func:`describe` and :func:`driver_error`."""
    return sa.exc.OperationalError(None, None, orig, connection_invalidated=True)
