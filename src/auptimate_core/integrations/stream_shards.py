"""The sharded transaction stream: which shard a pool's transactions go to, the shard streams'
names, the shard count every producer and worker agrees on, and a transaction as an entry.

A stream named ``S`` is split into ``S:0`` ... ``S:<shards - 1>``; a pool's transactions all go
to one shard (a hash of its id), so one worker at a time reads them in the order they were
sent. The count is fixed in ``S:config`` by whoever uses the stream first and checked by
everyone after.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..backends.redis_client import decoded
from ..domain import Transaction
from ..errors import MissingExtra, ValidationError
from ..io.schema import transaction_from

try:
    import redis
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "redis") from error

__all__ = [
    "DEFAULT_STREAM",
    "decode",
    "encode",
    "redis_client",
    "shard_count",
    "shard_of",
    "shard_stream",
]

DEFAULT_STREAM = "auptimate:transactions"


def shard_of(pool_id: str, shards: int) -> int:
    """The shard of a pool: stable across processes and runs (CRC-32 of its id).

    >>> shard_of("pool-7", 16)
    15
    """
    return zlib.crc32(pool_id.encode()) % shards


def shard_stream(stream: str, shard: int) -> str:
    """The name of a shard's stream (``S:<shard>``)."""
    return f"{stream}:{shard}"


def encode(tx: Transaction) -> dict[str, str]:
    """A transaction as stream entry fields (amount as exact text, time as ISO 8601)."""
    return {"id": tx.id, "investor_id": tx.investor_id, "pool_id": tx.pool_id,
            "amount": str(tx.amount), "timestamp": tx.timestamp.isoformat(), "kind": tx.kind}


def decode(fields: dict[Any, Any]) -> Transaction:
    """The transaction of an entry's fields, read by the one input pipeline (the same rules as
    a file's rows); a :class:`ValidationError` names what is wrong."""
    return transaction_from({decoded(k): decoded(v) for k, v in fields.items()})


def redis_client(url_or_client: Any) -> Any:
    """A ``redis.Redis`` on a URL (10 s socket timeout, 5 s to connect), or the client given."""
    if isinstance(url_or_client, str):
        return redis.Redis.from_url(url_or_client, socket_timeout=10, socket_connect_timeout=5)
    return url_or_client


def shard_count(client: Any, stream: str, wanted: int | None) -> int:
    """The stream's shard count: fixed by whoever came first, checked by everyone after.

    ``wanted`` is set if the stream has no count yet and must equal the one it has; ``None``
    reads the count, which must then exist.
    """
    if wanted is not None:
        if wanted < 1:
            raise ValidationError("shards", f"must be at least 1, not {wanted}")
        client.hsetnx(f"{stream}:config", "shards", wanted)
    stored = client.hget(f"{stream}:config", "shards")
    if stored is None:
        raise ValidationError("shards", f"stream {stream!r} has no shard count yet: give one")
    shards = int(stored)
    if wanted is not None and shards != wanted:
        raise ValidationError(
            "shards", f"stream {stream!r} already has {shards} shards, not {wanted}")
    return shards
