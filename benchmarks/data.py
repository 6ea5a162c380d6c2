"""Benchmark data: the library's synthetic generator with injected anomalies, made once per run.

Every benchmark that needs a transaction stream takes it from here, so peers in one run see the
same data.
"""

from __future__ import annotations

from typing import Any

from auptimate_core import Transaction


def anomalous_stream(transactions: int, seed: int = 7) -> tuple[list[Transaction], dict[str, Any]]:
    """``(transactions, manifest)`` where the manifest has ``large`` (ids of transactions over
    the 250,000 threshold) and ``bursts`` (each with ``pool_id`` and ``ids``)."""
    from auptimate_core.generate import generate_stream

    stream = generate_stream(transactions=transactions, seed=seed, anomalies=True)
    txs = list(stream.transactions())
    large = [a.transaction_ids[0] for a in stream.anomalies if a.kind == "large"]
    bursts = [
        {"pool_id": a.pool_id, "ids": set(a.transaction_ids)}
        for a in stream.anomalies if a.kind == "burst"
    ]
    return txs, {"large": large, "bursts": bursts}
