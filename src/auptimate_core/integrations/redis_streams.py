"""Many workers, one truth: transactions through Redis Streams, alerts logged exactly once.

A :class:`StreamProducer` appends transactions to a stream split into shards by pool
(``<stream>:<shard>``, the shard a hash of the pool id), so that every transaction of one pool
goes through one shard in the order it was sent. :class:`StreamWorker` processes runs of those
shards: each shard is leased to one worker at a time, read through a consumer group, fed to an
:class:`~auptimate_core.alerts.AlertEngine` on a shared store (the Redis store), and
acknowledged only after its alerts are in the alert log. Because a pool's transactions are
decided in order by one worker at a time, many workers raise exactly the alerts one engine
would raise on the whole stream.

Keys, for a stream named ``S``::

    S:<shard>            STREAM  transactions of the pools hashed to that shard
    S:config             HASH    shards (fixed when the first producer or worker starts)
    S:lease:<shard>      STRING  the consumer that holds the shard, with a time to live
    S:workers            ZSET    consumer -> last heartbeat (ms), to share the shards fairly
    {S}:alerts           STREAM  the alert log: every alert once, as JSON
    {S}:alert:<key>      STRING  marks an alert key as logged (kept for ``alert_memory``)
    S:rejected           STREAM  entries that could not be read
    S:late               STREAM  transactions kept out of the windows (late, or ahead of the
                                 clock); their threshold alerts were raised all the same

Failures: a worker that dies (even SIGKILL) stops renewing its leases; when they expire the
others take its shards and claim its unacknowledged entries (XAUTOCLAIM). Those are decided
again under the same delivery names: the store counts them once, the engine raises again the
alerts they caused, and the alert log keeps each alert key once. Alerts reach a worker's own
sinks after they are logged, so a sink sees each alert at most once per worker; read the alert
log (:func:`read_alerts`, or a consumer group of your own on it) for at-least-once delivery
with the alert key as idempotency key.

A worker that stalls longer than its lease while another has taken its shard may process the
same entries twice: counts stay exact (idempotent ids) and the log keeps each alert once.

Thread safety: a producer may be shared; a worker runs in one thread (stop it from another
with :meth:`StreamWorker.stop`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote

import attrs

from .. import metrics
from ..alerts import Alert, AlertEngine
from ..alerts.delivery import DeadLetter, Dispatcher
from ..alerts.sinks import AlertCallback
from ..domain import Transaction
from ..errors import AuptimateError, MissingExtra, StoreError, ValidationError
from ..io.schema import transaction_from
from ..store import RetainsRuns

try:
    import redis
    from redis.exceptions import ResponseError
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "redis") from error

logger = logging.getLogger(__name__)

DEFAULT_STREAM = "auptimate:transactions"
_FIELDS = ("id", "investor_id", "pool_id", "amount", "timestamp", "kind")


def shard_of(pool_id: str, shards: int) -> int:
    """The shard of a pool: stable across processes and runs (CRC-32 of its id)."""
    return zlib.crc32(pool_id.encode()) % shards


def shard_stream(stream: str, shard: int) -> str:
    return f"{stream}:{shard}"


def encode(tx: Transaction) -> dict[str, str]:
    """A transaction as stream entry fields (amount as exact text, time as ISO 8601)."""
    return {"id": tx.id, "investor_id": tx.investor_id, "pool_id": tx.pool_id,
            "amount": str(tx.amount), "timestamp": tx.timestamp.isoformat(), "kind": tx.kind}


def decode(fields: dict[Any, Any]) -> Transaction:
    """The transaction of an entry's fields, read by the one input pipeline (the same rules as
    a file's rows); a :class:`ValidationError` names what is wrong."""
    return transaction_from({_text(k): _text(v) for k, v in fields.items()})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def slices(txs: Sequence[Transaction], per_pool: int) -> list[tuple[int, int]]:
    """Split a run of transactions into consecutive ``(start, stop)`` slices holding at most
    ``per_pool`` transactions of any one pool. O(n).

    A worker acknowledges one slice at a time, and a slice it died in is decided again by the
    next. The Redis store answers a redelivered run as the first time when it still holds its
    events: it keeps the newest ``retain`` of each pool, whatever their age, so slices of at
    most that many per pool are always answered alike.
    """
    out: list[tuple[int, int]] = []
    start = 0
    count: dict[str, int] = {}
    for i, tx in enumerate(txs):
        n = count.get(tx.pool_id, 0) + 1
        if n > per_pool:
            out.append((start, i))
            start, count, n = i, {}, 1
        count[tx.pool_id] = n
    if start < len(txs):
        out.append((start, len(txs)))
    return out


def _client(url_or_client: Any) -> Any:
    if isinstance(url_or_client, str):
        return redis.Redis.from_url(url_or_client, socket_timeout=10, socket_connect_timeout=5)
    return url_or_client


def _shards(client: Any, stream: str, wanted: int | None) -> int:
    """The stream's shard count: fixed by whoever came first, checked by everyone after."""
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
        self.client = _client(client)
        self.stream = stream
        if shards is None and self.client.hget(f"{stream}:config", "shards") is None:
            shards = 16
        self.shards = _shards(self.client, stream, shards)
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
        return [_text(entry) for entry in pipe.execute()]

    def close(self) -> None:
        self.client.close()


@attrs.frozen(slots=True)
class Lag:
    """How far the consumer group is behind: entries delivered but not acknowledged
    (``pending``) and entries not delivered yet (``unread``), over all shards."""

    pending: int
    unread: int

    @property
    def total(self) -> int:
        return self.pending + self.unread


def lag(client: Any, stream: str = DEFAULT_STREAM, group: str = "auptimate") -> Lag:
    """The group's :class:`Lag` on every shard of ``stream`` (XINFO GROUPS; Redis 7+)."""
    client = _client(client)
    shards = _shards(client, stream, None)
    pending = unread = 0
    for shard in range(shards):
        name = shard_stream(stream, shard)
        try:
            groups = client.xinfo_groups(name)
        except ResponseError:  # no such stream yet
            continue
        mine = [info for info in groups if _text(info.get("name")) == group]
        if not mine:  # no worker has read this shard yet: all of it is unread
            unread += int(client.xlen(name))
            continue
        pending += int(mine[0].get("pending") or 0)
        unread += int(mine[0].get("lag") or 0)
    return Lag(pending, unread)


def read_alerts(client: Any, stream: str = DEFAULT_STREAM) -> list[Alert]:
    """Every alert in the stream's alert log, in the order they were logged."""
    client = _client(client)
    return [Alert.from_dict(json.loads(_text(fields[b"alert"] if b"alert" in fields
                                             else fields["alert"])))
            for _, fields in client.xrange(_alerts_key(stream))]


def _alerts_key(stream: str) -> str:
    return f"{{{stream}}}:alerts"


def _mark_key(stream: str, key: str) -> str:
    return f"{{{stream}}}:alert:{quote(key, safe='')}"


class StreamWorker:
    """Consumes a sharded transaction stream through a consumer group and raises alerts.

    ``engine`` should run on a store shared by all workers (a
    :class:`~auptimate_core.backends.redis.RedisWindowStore`): counts and the alert lifecycle
    live there. Its late transactions (and those ahead of the clock) are decided like any other
    (their transaction rules run), kept out of the windows and written to the ``late`` stream.
    Entries are decided and acknowledged in slices of at most the store's ``retain`` events
    per pool, so that a slice decided again after a crash is answered as the first time.
    ``sinks`` receive each alert once it is in the alert log (background sinks through a
    :class:`~auptimate_core.alerts.delivery.Dispatcher`, never holding the worker up; what they
    cannot deliver goes to ``dead_letter``). ``batch_size`` entries are read
    per shard at a time; ``lease`` (seconds) is how long a dead worker's shards wait before
    another takes them.
    """

    def __init__(
        self,
        client: Any,
        engine: AlertEngine,
        *,
        stream: str = DEFAULT_STREAM,
        group: str = "auptimate",
        consumer: str | None = None,
        shards: int | None = None,
        sinks: Iterable[AlertCallback] = (),
        batch_size: int = 1_000,
        lease: float = 10.0,
        poll: float = 0.05,
        alert_memory: float = 7 * 86_400.0,
        dead_letter: str | os.PathLike[str] | Callable[[DeadLetter], object] | None = None,
    ) -> None:
        self.client = _client(client)
        self.engine = engine
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        if shards is None and self.client.hget(f"{stream}:config", "shards") is None:
            shards = 16  # a new stream, and no count asked for
        self.shards = _shards(self.client, stream, shards)
        self._dispatcher = Dispatcher(sinks, dead_letter=dead_letter)
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        self.lease_ms = int(lease * 1000)
        self.poll = poll
        self.alert_memory_ms = int(alert_memory * 1000)
        self.lag_every = 5.0
        store = engine.store
        retain = store.retain if isinstance(store, RetainsRuns) else 0
        self.per_pool = retain if retain > 0 else batch_size
        self.held: set[int] = set()
        self._unfinished: set[int] = set()  # held shards that may have entries of ours pending
        self.processed = 0
        self._stop = threading.Event()
        self._late: list[Transaction] = []
        engine.on_late = self._late.append
        engine.on_future = self._late.append
        source = resources.files("auptimate_core.integrations").joinpath(
            "lua", "record_alerts.lua").read_text()
        self._record = self.client.register_script(source)
        self._renew = self.client.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end")
        self._release = self.client.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('DEL', KEYS[1]) else return 0 end")

    # -- running ------------------------------------------------------------------------------

    def run(self, *, until_idle: float | None = None) -> None:
        """Work until :meth:`stop` (or, with ``until_idle``, until that many seconds pass with
        nothing to do); then finish the batch in hand, acknowledge it and give the shards up."""
        idle_since = lag_checked = time.monotonic()
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    done = self.step()
                    failures = 0
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    # Redis is away: unacknowledged entries stay pending; try again later.
                    failures += 1
                    logger.warning("redis unavailable, retrying: %s", error, extra={
                        "stream": self.stream, "consumer": self.consumer})
                    self._stop.wait(min(5.0, self.poll * 2 ** failures))
                    continue
                if time.monotonic() - lag_checked >= self.lag_every:
                    lag_checked = time.monotonic()
                    self.lag()  # keeps the lag gauges current for the operator
                if done:
                    idle_since = time.monotonic()
                elif until_idle is not None and time.monotonic() - idle_since >= until_idle:
                    break
                else:
                    self._stop.wait(self.poll)
        finally:
            with contextlib.suppress(redis.RedisError):
                self.release_all()
            self._dispatcher.flush(timeout=5.0)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    def step(self) -> int:
        """One pass: share the shards, then process one batch of each held shard."""
        self._balance()
        done = 0
        for shard in sorted(self.held):
            if self._stop.is_set():
                break
            done += self._process_shard(shard)
        return done

    def release_all(self) -> None:
        """Give up every shard and leave the group of live workers."""
        for shard in list(self.held):
            self._release(keys=[self._lease_key(shard)], args=[self.consumer])
        self.held.clear()
        self.client.zrem(f"{self.stream}:workers", self.consumer)

    def lag(self) -> Lag:
        found = lag(self.client, self.stream, self.group)
        metrics.worker_lag(self.stream, self.group, found.pending, found.unread)
        return found

    # -- shards -------------------------------------------------------------------------------

    def _lease_key(self, shard: int) -> str:
        return f"{self.stream}:lease:{shard}"

    def _balance(self) -> None:
        now = int(time.time() * 1000)
        workers = f"{self.stream}:workers"
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(workers, {self.consumer: now})
        pipe.zremrangebyscore(workers, "-inf", now - 3 * self.lease_ms)
        pipe.zcard(workers)
        live = max(1, int(pipe.execute()[2]))
        for shard in list(self.held):
            if not self._renew(keys=[self._lease_key(shard)], args=[self.consumer,
                                                                   self.lease_ms]):
                self.held.discard(shard)
                logger.warning("lost the lease of a shard", extra={
                    "stream": self.stream, "shard": shard, "consumer": self.consumer})
        target = math.ceil(self.shards / live)
        while len(self.held) > target:
            shard = max(self.held)
            self._release(keys=[self._lease_key(shard)], args=[self.consumer])
            self.held.discard(shard)
        if len(self.held) < target:
            free = [s for s in range(self.shards) if s not in self.held]
            random.shuffle(free)
            for shard in free:
                if len(self.held) >= target:
                    break
                if self.client.set(self._lease_key(shard), self.consumer, nx=True,
                                   px=self.lease_ms):
                    self._take(shard)

    def _take(self, shard: int) -> None:
        name = shard_stream(self.stream, shard)
        try:
            self.client.xgroup_create(name, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        # Whatever the shard's previous holder read and did not acknowledge is ours now.
        start, claimed = "0-0", 0
        while True:
            reply = self.client.xautoclaim(name, self.group, self.consumer, 0, start,
                                           count=1000)
            start, ids = _text(reply[0]), reply[1]  # (cursor, entries, deleted ids)
            claimed += len(ids)
            if start == "0-0" or not ids:
                break
        self._unfinished.add(shard)
        if claimed:
            metrics.worker_reclaimed(claimed, self.stream, self.group)
            logger.info("claimed unacknowledged entries", extra={
                "stream": self.stream, "shard": shard, "entries": claimed,
                "consumer": self.consumer})
        self.held.add(shard)

    # -- processing ---------------------------------------------------------------------------

    def _read(self, name: str, start: str) -> list[tuple[str, dict[Any, Any]]]:
        reply = self.client.xreadgroup(self.group, self.consumer, {name: start},
                                       count=self.batch_size)
        if not reply:
            return []
        return [(_text(entry_id), fields) for entry_id, fields in reply[0][1]]

    def _process_shard(self, shard: int) -> int:
        name = shard_stream(self.stream, shard)
        # Our own unacknowledged entries first (claimed, or left by a batch that failed), then
        # new ones; a shard with nothing left over costs one read, not two.
        entries = self._read(name, "0") if shard in self._unfinished else []
        leftovers = bool(entries)  # there may be more of them than one read returns
        if not entries:
            self._unfinished.discard(shard)
            entries = self._read(name, ">")
        if not entries:
            return 0
        self._unfinished.add(shard)  # until every slice is acknowledged
        txs: list[Transaction] = []
        names: list[str] = []
        ids: list[str] = []
        rejected: list[dict[str, str]] = []
        for entry_id, fields in entries:
            try:
                txs.append(decode(fields))
                names.append(f"{shard}/{entry_id}")
                ids.append(entry_id)
            except (AuptimateError, ValueError) as error:
                rejected.append({"entry": entry_id, "error": str(error)})
        if rejected:
            self._finish(shard, [], [r["entry"] for r in rejected], rejected)
        for start, stop in slices(txs, self.per_pool):
            if self._stop.is_set() and start:
                break  # the rest stays pending for whoever reads this shard next
            if not self._decide(shard, txs[start:stop], names[start:stop], ids[start:stop]):
                break
        else:
            if not leftovers:
                self._unfinished.discard(shard)
        return len(entries)

    def _decide(self, shard: int, txs: list[Transaction], names: list[str],
                ids: list[str]) -> bool:
        """Decide, log, acknowledge one slice; False if the store failed (left pending)."""
        self._late.clear()
        try:
            alerts = self.engine.process_many(txs, deliveries=names)
        except StoreError:
            logger.exception("store failed; the batch stays pending and is retried", extra={
                "stream": self.stream, "shard": shard})
            return False
        held = [{"transaction_id": tx.id, "pool_id": tx.pool_id,
                 "timestamp": tx.timestamp.isoformat()} for tx in self._late]
        fresh = self._log(alerts)
        self._finish(shard, ids, [], [], held)
        self._deliver(fresh)
        return True

    def _finish(self, shard: int, ids: list[str], bad: list[str],
                rejected: list[dict[str, str]], held: Sequence[dict[str, str]] = ()) -> None:
        """Acknowledge entries, writing what could not be used to the rejected stream and
        what was kept out of the windows (late, or ahead of the clock) to the late stream."""
        pipe = self.client.pipeline(transaction=False)
        for fields in rejected:
            pipe.xadd(f"{self.stream}:rejected", {"shard": str(shard), **fields})
        for fields in held:
            pipe.xadd(f"{self.stream}:late", {"shard": str(shard), **fields})
        pipe.xack(shard_stream(self.stream, shard), self.group, *ids, *bad)
        pipe.execute()
        if rejected:
            metrics.worker_rejected(len(rejected), self.stream, self.group)
            logger.warning("entries rejected", extra={
                "stream": self.stream, "shard": shard, "entries": len(rejected)})
        metrics.worker_processed(len(ids) + len(bad), self.stream, self.group)
        self.processed += len(ids) + len(bad)

    def _log(self, alerts: list[Alert]) -> list[Alert]:
        """Append the alerts to the alert log, each key once; return those logged now."""
        if not alerts:
            return []
        keys = [_alerts_key(self.stream)] + [_mark_key(self.stream, a.key) for a in alerts]
        payloads = [json.dumps(a.to_dict(), sort_keys=True) for a in alerts]
        flags = self._record(keys=keys, args=[self.alert_memory_ms, *payloads])
        return [alert for alert, flag in zip(alerts, flags) if int(flag)]

    @property
    def sinks(self) -> list[AlertCallback]:
        return self._dispatcher.sinks

    def _deliver(self, alerts: list[Alert]) -> None:
        self._dispatcher.submit(alerts)


def run_worker(
    url: str,
    rules: Sequence[Any],
    *,
    stream: str = DEFAULT_STREAM,
    group: str = "auptimate",
    namespace: str = "auptimate",
    consumer: str | None = None,
    sinks: Iterable[AlertCallback] = (),
    until_idle: float | None = None,
    on_ready: Callable[[StreamWorker], object] | None = None,
    **options: Any,
) -> StreamWorker:
    """Run a worker on ``url`` with an engine of ``rules`` on the Redis store: the function
    behind ``auptimate worker``. Returns the worker once it has stopped."""
    from ..backends.redis import RedisWindowStore

    store = RedisWindowStore.from_url(url, namespace=namespace)
    engine = AlertEngine(rules, store=store)
    worker = StreamWorker(url, engine, stream=stream, group=group, consumer=consumer,
                          sinks=sinks, **options)
    if on_ready is not None:
        on_ready(worker)
    try:
        worker.run(until_idle=until_idle)
    finally:
        engine.close()
    return worker
