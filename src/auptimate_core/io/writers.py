"""Writing transactions (CSV or JSON Lines, the library's header set) and rejected rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO

from ..domain import Transaction
from .schema import LIBRARY_HEADER, RejectedRow


def transaction_dict(tx: Transaction) -> dict[str, str]:
    """JSON-ready fields of a transaction: the amount as a string, the time as ISO 8601."""
    return {
        "id": tx.id, "investor_id": tx.investor_id, "pool_id": tx.pool_id,
        "amount": str(tx.amount), "timestamp": tx.timestamp.isoformat(), "kind": tx.kind,
    }


def write_csv(transactions: Iterable[Transaction], out: IO[str]) -> int:
    """Write a header and one row per transaction; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LIBRARY_HEADER)
    count = 0
    for tx in transactions:
        writer.writerow((tx.id, tx.investor_id, tx.pool_id, str(tx.amount),
                         tx.timestamp.isoformat(), tx.kind))
        count += 1
    return count


def write_jsonl(transactions: Iterable[Transaction], out: IO[str]) -> int:
    """Write one JSON object per line; returns the number of lines."""
    count = 0
    for tx in transactions:
        out.write(json.dumps(transaction_dict(tx)) + "\n")
        count += 1
    return count


class RejectsWriter:
    """Writes rejected rows as CSV (``line, field, reason, row``: the row's text as read),
    flushing each one."""

    HEADER = ("line", "field", "reason", "row")

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(self.HEADER)
        self.count = 0

    def __call__(self, rejected: RejectedRow) -> None:
        self._writer.writerow((rejected.line, rejected.field, rejected.message, rejected.raw))
        self._out.flush()
        self.count += 1
