"""The worker: consumes shards of a transaction stream through a consumer group, decides them
on an :class:`~auptimate_core.alerts.AlertEngine` and logs its alerts before acknowledging.

Each shard is leased to one worker at a time (``S:lease:<shard>``, renewed on every pass) and
the live workers (``S:workers``, by heartbeat) share the shards evenly. A worker that takes a
shard claims what its previous holder read and did not acknowledge (XAUTOCLAIM) and decides it
again under the same delivery names, in :func:`slices` of at most the store's ``retain`` events
per pool, so the store answers it as the first time and the alert log keeps each alert once.
See :mod:`auptimate_core.integrations.redis_streams` for the whole design and its keys.

Thread safety: a worker runs in one thread (stop it from another with
:meth:`StreamWorker.stop`); :func:`lag` may be called from anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .. import metrics
from ..alerts import Alert, AlertEngine
from ..alerts.dead_letters import DeadLetterDestination
from ..alerts.delivery import Dispatcher
from ..alerts.sinks import AlertCallback
from ..backends.redis_client import decoded
from ..domain import Transaction
from ..errors import AuptimateError, MissingExtra, StoreError, ValidationError
from ..store import RetainsRuns
from .alert_log import AlertLog
from .stream_shards import DEFAULT_STREAM, decode, redis_client, shard_count, shard_stream

try:
    import redis
    from redis.exceptions import ResponseError
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "redis") from error

__all__ = ["Lag", "StreamWorker", "lag", "run_worker", "slices"]

# The name the worker has always logged under.
logger = logging.getLogger("auptimate_core.integrations.redis_streams")


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
    client = redis_client(client)
    shards = shard_count(client, stream, None)
    pending = unread = 0
    for shard in range(shards):
        name = shard_stream(stream, shard)
        try:
            groups = client.xinfo_groups(name)
        except ResponseError:  # no such stream yet
            continue
        mine = [info for info in groups if decoded(info.get("name")) == group]
        if not mine:  # no worker has read this shard yet: all of it is unread
            unread += int(client.xlen(name))
            continue
        pending += int(mine[0].get("pending") or 0)
        unread += int(mine[0].get("lag") or 0)
    return Lag(pending, unread)


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
        dead_letter: str | os.PathLike[str] | DeadLetterDestination | None = None,
    ) -> None:
        self.client = redis_client(client)
        self.engine = engine
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        if shards is None and self.client.hget(f"{stream}:config", "shards") is None:
            shards = 16  # a new stream, and no count asked for
        self.shards = shard_count(self.client, stream, shards)
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
        self._alert_log = AlertLog(self.client, stream)
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
            start, ids = decoded(reply[0]), reply[1]  # (cursor, entries, deleted ids)
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
        return [(decoded(entry_id), fields) for entry_id, fields in reply[0][1]]

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
        return self._alert_log.record(alerts, memory_ms=self.alert_memory_ms)

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
