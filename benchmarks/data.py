"""Benchmark data: the library's synthetic generator, and variants of its streams made for one
question each (how many transactions alert, how many pools alerted before). Made once per run,
so peers in one run see the same data.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from auptimate_core import Transaction
from auptimate_core.generate import START, SyntheticStream

OVER = Decimal("300000.00")  # over the default threshold of 250,000


def anomalous_stream(
    transactions: int, seed: int = 7, pools: int | None = None,
) -> tuple[list[Transaction], dict[str, Any]]:
    """``(transactions, manifest)`` where the manifest has ``large`` (ids of transactions over
    the 250,000 threshold) and ``bursts`` (each with ``pool_id`` and ``ids``). ``pools`` is the
    generator's default (one pool per 200 transactions) unless given."""
    stream = SyntheticStream(transactions, seed=seed, anomalies=True, pools=pools)
    txs = list(stream.transactions())
    large = [a.transaction_ids[0] for a in stream.anomalies if a.kind == "large"]
    bursts = [
        {"pool_id": a.pool_id, "ids": set(a.transaction_ids)}
        for a in stream.anomalies if a.kind == "burst"
    ]
    return txs, {"large": large, "bursts": bursts}


def quiet_stream(transactions: int, pools: int, seed: int = 7) -> list[Transaction]:
    """The generator's stream without anomalies: no transaction over the threshold, no burst."""
    return list(SyntheticStream(transactions, seed=seed, pools=pools).transactions())


def with_share_over(txs: list[Transaction], share: float) -> list[Transaction]:
    """``txs`` with the amount of an evenly spread ``share`` of them (0 to 1) set over the
    threshold; everything else (ids, pools, times) unchanged."""
    out = []
    for i, tx in enumerate(txs):
        over = int((i + 1) * share) > int(i * share)
        out.append(attrs.evolve(tx, amount=OVER) if over else tx)
    return out


def history(pools: int, before: timedelta = timedelta(days=1)) -> list[Transaction]:
    """A history in which each of ``pools`` pools (``hist-0``, ...) fired a spike and saw it
    resolve: five transactions within a second of each other (a spike on an empty baseline),
    then one more two minutes later (the window holds one: resolved). It ends ``before`` the
    generator's start, so a generated stream can follow it."""
    origin = START - before - timedelta(minutes=3)
    txs = []
    for k in range(5):
        for p in range(pools):
            at = origin + timedelta(microseconds=k * pools + p)
            txs.append(Transaction(f"h{k}-{p}", "inv-h", f"hist-{p}", Decimal("100.00"), at))
    later = origin + timedelta(minutes=2)
    for p in range(pools):
        txs.append(Transaction(f"h5-{p}", "inv-h", f"hist-{p}", Decimal("100.00"),
                               later + timedelta(microseconds=p)))
    return txs
