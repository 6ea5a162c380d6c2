"""The one-shot top-investors ranking of a large CSV file, vectorised in polars or DuckDB.

Reading every row into a :class:`~auptimate_core.Transaction` in Python (the input pipeline of
:mod:`auptimate_core.io`) costs seconds per million rows. This module answers the same question
in one vectorised pass: the engine (polars, extra ``fast``, or DuckDB, extra ``duckdb``) reads
the file as text, checks every row, sums amounts as ``DECIMAL(38, 6)``, exactly, counting what
:mod:`auptimate_core.ranking.invested` counts (investments less refunds), and picks the top
``n`` itself, so that only ``n`` lines of the ranking come back to Python.

It only ever answers for files that the input pipeline reads without rejecting a row, and that
it reads the same way: every row must be *plain* (see :mod:`auptimate_core.io.plain`). When any
row is not plain, or the file has a byte-order mark, a header the pipeline would refuse or
columns other than the ranking's, or a line the engine cannot split into the header's fields
(quotes are read as characters, so a quoted field is never plain),
:class:`NotVectorised` says why and the caller reads the file through the pipeline instead,
which accepts or rejects each such row and reports the line. So the answer, and every error,
is the pipeline's; only the time differs. A file with blank lines goes to the pipeline too,
and so does a file the pipeline reads as JSON Lines by its name.

The engines' pass lives in :mod:`auptimate_core.ranking.engines`, which starts it in a thread
(:func:`start_ranking`) and imports neither attrs nor the ranking's other forms, for a caller
that has other work to do meanwhile; :func:`finish_ranking` waits for it.

Totals carry the exponent a Decimal sum of the same amounts would have (the most fraction digits
among the investor's counted amounts), so they print the same as
:func:`auptimate_core.top_investors`'s.
"""

from __future__ import annotations

import os

import attrs

from ..io.plain import NotVectorised
from .engines import ENGINES, Started, start_ranking
from .ranks import InvestorRank

__all__ = ["ENGINES", "FastRanking", "NotVectorised", "fast_top_investors", "finish_ranking",
           "start_ranking"]


@attrs.frozen(slots=True)
class FastRanking:
    """The ranking of a file, how many rows were read (all of them valid), and the header's
    style (``brief`` or ``library``)."""

    ranks: list[InvestorRank]
    rows: int
    style: str


def fast_top_investors(
    path: str | os.PathLike[str], n: int = 5, *, engine: str = "auto"
) -> FastRanking:
    """Rank a CSV file's investors in polars or DuckDB, exactly as reading it through the input
    pipeline and :func:`~auptimate_core.top_investors` would.

    ``engine`` is ``"polars"``, ``"duckdb"`` or ``"auto"`` (the first of them installed).
    Raises :class:`NotVectorised` when the file needs the input pipeline (see the module
    notes), and :class:`~auptimate_core.errors.MissingExtra` when no engine is installed.
    One pass over the file (on all cores); ``n`` lines come back to Python.
    """
    return finish_ranking(start_ranking(path, n, engine=engine))


def finish_ranking(started: Started) -> FastRanking:
    """The ranking a :func:`~auptimate_core.ranking.engines.start_ranking` started, once its
    engine is done (see :func:`fast_top_investors`)."""
    lines, rows = started.lines()
    return FastRanking([InvestorRank(*line) for line in lines], rows, started.style)
