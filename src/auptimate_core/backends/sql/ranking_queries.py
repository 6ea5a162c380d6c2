"""The SQL ranking's queries: the rows a :class:`~auptimate_core.ranking.RankFilter` keeps, the
``GROUP BY`` query that ranks them in the database, and the scan grouped in Python where the
database cannot sum exactly."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ...errors import InvalidAmount, MissingExtra, ValidationError
from ...io.schema import parse_amount
from ...ranking import ADDS, COUNTED, WITHOUT_KIND, InvestorRank, RankFilter, rank_totals, tally
from .ranking_dialects import MYSQL, code_point_order, time_bind, to_decimal
from .transactions_table import ResolvedTable

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("sqlalchemy", "sql") from error

__all__ = ["counted_kinds", "filter_clauses", "rank_in_database", "rank_in_python"]


def counted_kinds(src: ResolvedTable, accept: RankFilter) -> frozenset[str]:
    """The kinds the ranking counts under ``accept`` (empty: no row can count)."""
    if accept.kinds is None:
        return COUNTED
    if src.spec.kind is None:
        raise ValidationError("kinds", "filtering on kinds needs the table's kind column")
    return COUNTED & accept.kinds


def filter_clauses(src: ResolvedTable, accept: RankFilter,
                   dialect: str) -> list[sa.ColumnElement[Any]]:
    """The WHERE clauses keeping the rows ``accept`` counts."""
    clauses: list[sa.ColumnElement[Any]] = [src.column("investor_id").is_not(None)]
    kind = src.kind()
    if kind is not None:
        clauses.append(kind.in_(sorted(counted_kinds(src, accept))))
    for bound, name in ((accept.since, "since"), (accept.until, "until")):
        if bound is None:
            continue
        if src.spec.timestamp is None:
            raise ValidationError(name, f"filtering on {name} needs the table's timestamp column")
        column = src.column("timestamp")
        value = time_bind(bound, column, dialect)
        clauses.append(column >= value if name == "since" else column < value)
    return clauses


def _unique_pools(src: ResolvedTable, dialect: sa.Dialect) -> sa.ColumnElement[Any]:
    pool = src.column("pool_id")
    if dialect.name in MYSQL:
        pool = code_point_order(pool, dialect)
    kind = src.kind()
    if kind is None:
        return sa.func.count(sa.distinct(pool))
    return sa.func.count(sa.distinct(sa.case((kind.in_(sorted(ADDS)), pool))))


def rank_in_database(
    conn: Connection, src: ResolvedTable, where: list[sa.ColumnElement[Any]],
    total: sa.ColumnElement[Any], n: int,
) -> list[InvestorRank]:
    """The ``n`` top investors by one ``GROUP BY`` query summing ``total``."""
    investor = src.column("investor_id")
    pools = _unique_pools(src, conn.dialect)
    unique_pools = pools.label("unique_pools")
    total_label = total.label("total_amount")
    tie_break = code_point_order(investor, conn.dialect)
    grouped = tie_break if conn.dialect.name in MYSQL else investor
    query = (
        sa.select(grouped.label(investor.name), unique_pools, total_label)
        .select_from(src.table)
        .where(*where)
        .group_by(grouped)
        .having(pools > 0)
        .order_by(unique_pools.desc(), total_label.desc(), tie_break.asc())
        .limit(n)
    )
    return [
        InvestorRank(str(inv), int(count), to_decimal(amount, src.spec.scale, str(inv)))
        for inv, count, amount in conn.execute(query)
    ]


def rank_in_python(
    conn: Connection, src: ResolvedTable, where: list[sa.ColumnElement[Any]], n: int,
) -> list[InvestorRank]:
    """Group the rows in Python from each amount's text: exact where the database is not."""
    kind = src.kind()
    query = (
        sa.select(src.column("investor_id"), src.column("pool_id"),
                  sa.cast(src.column("amount"), sa.String),
                  sa.literal(WITHOUT_KIND) if kind is None else kind)
        .select_from(src.table)
        .where(*where)
    )
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)

    def rows() -> Iterator[tuple[str, str, str, Decimal]]:
        for investor, pool, text, row_kind in result:
            if text is None:
                continue
            try:
                amount = parse_amount(text)
            except ValueError:
                raise InvalidAmount(
                    src.spec.amount, f"investor {investor!r} has an amount that is not a number: "
                    f"{text!r}") from None
            yield str(investor), str(pool), str(row_kind), amount

    return rank_totals(tally(rows()), n)
