"""The top-investors ranking computed by a database, through SQLAlchemy Core.

What counts is :mod:`auptimate_core.ranking.invested`'s definition (investments less refunds,
pools invested in), as one ``GROUP BY`` query with the contract's tie-break::

    SELECT investor_id,
           COUNT(DISTINCT CASE WHEN kind = 'investment' THEN pool_id END) AS unique_pools,
           SUM(CASE WHEN kind = 'refund' THEN -amount ELSE amount END) AS total
    FROM transactions WHERE kind IN ('investment', 'refund') GROUP BY investor_id
    HAVING unique_pools > 0
    ORDER BY unique_pools DESC, total DESC, investor_id ASC LIMIT 5

A row whose kind is NULL, or every row of a table without a kind column (a syndicate-style
table), is an investment.

It runs on SQLite, PostgreSQL (psycopg) and DuckDB (duckdb-engine), on the library's own tables
or on a user's existing table described by a :class:`TransactionsTable`. The answer equals
:func:`auptimate_core.top_investors` on the same rows, with exact Decimal totals:

- amounts kept as integer minor units (``scale=2`` for cents) are summed as integers everywhere;
- otherwise PostgreSQL sums ``NUMERIC`` (exact), DuckDB sums ``DECIMAL``/integer columns natively;
- where the database could only sum floats (SQLite's non-integer ``NUMERIC`` and text values,
  DuckDB text or floating-point columns), the rows are grouped exactly in Python instead, from
  each amount's text. Note that SQLite itself keeps non-integer ``NUMERIC`` values as floats, so
  read back they have at most 15 significant digits: store minor units or text for exactness.

Investor ids are ordered by code point (``COLLATE "C"`` on PostgreSQL), as Python orders strings.
Driver errors are mapped: an unreachable server is
:class:`~auptimate_core.errors.StoreUnavailable`, any other failure
:class:`~auptimate_core.errors.StoreError`.

The parts live beside this module: the table description in
:mod:`~auptimate_core.backends.sql.transactions_table`, each database's sums, collations and time
bounds in :mod:`~auptimate_core.backends.sql.ranking_dialects`, the queries in
:mod:`~auptimate_core.backends.sql.ranking_queries`, the loader in
:mod:`~auptimate_core.backends.sql.loading`.

>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> with engine.begin() as conn:
...     _ = conn.exec_driver_sql(
...         "CREATE TABLE payments (investor_id TEXT, syndicate_id TEXT, "
...         "transaction_amount TEXT, transaction_date TEXT)")
...     _ = conn.exec_driver_sql(
...         "INSERT INTO payments VALUES ('ann', 's1', '10.50', '2024-01-01'), "
...         "('ann', 's2', '5', '2024-01-02'), ('bob', 's1', '99', '2024-01-03')")
>>> top_investors_sql(engine, TransactionsTable.brief("payments"), n=2)
[InvestorRank(investor_id='ann', unique_pools=2, total_amount=Decimal('15.50')), \
InvestorRank(investor_id='bob', unique_pools=1, total_amount=Decimal('99'))]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ...errors import MissingExtra
from ...ranking import InvestorRank, RankFilter, check_n
from .connections import connected
from .loading import load_transactions
from .ranking_dialects import exact_total
from .ranking_queries import counted_kinds, filter_clauses, rank_in_database, rank_in_python
from .transactions_table import TransactionsTable, as_table

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["TransactionsTable", "load_transactions", "top_investors_sql"]


def top_investors_sql(
    bind: Engine | Connection,
    source: TransactionsTable | str | sa.Table,
    n: int = 5,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[InvestorRank]:
    """The ``n`` top investors of a transactions table, as :func:`~auptimate_core.top_investors`.

    ``bind`` is an Engine or a Connection (a Connection is used as is, inside whatever
    transaction it is in). ``source`` describes the table (a bare name or Table means the
    library's column names). ``since``/``until``/``kinds`` filter as in
    :class:`~auptimate_core.ranking.RankFilter`, through the table's timestamp and kind columns.
    Every row counts, as in a ``GROUP BY`` query (a table with a unique id counts each id once).

    One ``GROUP BY`` query, ``LIMIT n`` in the database; where the database cannot sum exactly
    (see the module notes) one scan grouped in Python instead, ``O(rows)``.
    """
    check_n(n)
    src = as_table(source).resolve()
    accept = RankFilter(since, until, None if kinds is None else kinds)
    if not counted_kinds(src, accept):
        return []
    with connected(bind) as conn:
        dialect = conn.dialect.name
        where = filter_clauses(src, accept, dialect)
        total = exact_total(src, conn)
        if total is None:
            return rank_in_python(conn, src, where, n)
        return rank_in_database(conn, src, where, total, n)
