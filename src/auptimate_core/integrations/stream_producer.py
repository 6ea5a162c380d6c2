"""The producer: transactions appended to the shard streams of their pools."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..backends.redis_client import decoded
from ..domain import Transaction
from .stream_shards import DEFAULT_STREAM, encode, redis_client, shard_count, shard_of, shard_stream

__all__ = ["StreamProducer"]


class StreamProducer:
    """Appends transactions to a sharded Redis Stream (one pipelined round trip per call).

    ``client`` is a ``redis.Redis`` or a URL. ``shards`` fixes the shard count the first time
    a stream is used (16 by default) and must agree with it afterwards; ``None`` takes the
    stream's own count (16 for a new stream). ``maxlen`` caps each
    shard approximately (XADD MAXLEN ~), for streams that must not grow without bound: set it
    well above what workers can fall behind by, or entries are trimmed before they are read.
    """

    def __init__(self, client: Any, stream: str = DEFAULT_STREAM, *, shards: int | None = 16,
                 maxlen: int | None = None) -> None:
        self.client = redis_client(client)
        self.stream = stream
        if shards is None and self.client.hget(f"{stream}:config", "shards") is None:
            shards = 16
        self.shards = shard_count(self.client, stream, shards)
        self.maxlen = maxlen

    def send(self, transactions: Iterable[Transaction], *, batch: int = 5_000) -> list[str]:
        """Append ``transactions`` in order; return their entry ids."""
        ids: list[str] = []
        pending: list[Transaction] = []
        for tx in transactions:
            pending.append(tx)
            if len(pending) >= batch:
                ids += self._send(pending)
                pending = []
        if pending:
            ids += self._send(pending)
        return ids

    def _send(self, txs: Sequence[Transaction]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for tx in txs:
            pipe.xadd(shard_stream(self.stream, shard_of(tx.pool_id, self.shards)),
                      encode(tx),
                      maxlen=self.maxlen, approximate=True)
        return [decoded(entry) for entry in pipe.execute()]

    def close(self) -> None:
        self.client.close()
