"""The relay: a ledger's committed transactions into the alert workers' streams, exactly once.

:class:`LedgerRelay` follows a ledger's change feed (:meth:`~auptimate_core.PoolLedger.follow`)
and appends the transactions of every change that records some (investments, refunds, fees,
distributions, carry) to the sharded Redis Stream that :class:`~.redis_streams.StreamWorker`
processes consume: the same entries, in the same shards, as a
:class:`~.redis_streams.StreamProducer` would write. A pool's transactions reach its shard in
feed order, which is commit order.

Exactly once, across crashes. The relay numbers the feed's changes 1, 2, 3 ... from its start
(the feed never misses or repeats a change, so every run numbers them alike). Each shard has
a cursor of the relay, ``{S:<shard>}:cursor:<name>`` for a stream ``S``: a hash holding the
``count`` of the last change relayed to that shard and that change's feed ``cursor``. A batch of
changes goes out as one Lua script per shard (``lua/relay_append.lua``) that appends the
shard's entries of the changes past its cursor and moves the cursor to the batch's last change,
atomically, and refuses a batch that starts past the cursor (it would skip the changes
between). So, for every shard and at every moment, an entry is in the stream exactly when the
shard's cursor has passed its change. A relay that starts, or restarts after being killed
at any point (mid-batch, between two shards' scripts, before a reply), resumes after the least
advanced shard's cursor: each shard appends only the changes past its own cursor, so nothing
is skipped and nothing is appended twice. Every batch moves every shard's cursor (shards
without entries in it too), so the least advanced one is never far behind.

Redis Cluster: a script may only touch keys of one hash slot, and the shard streams are spread
over the slots on purpose. A cursor shared by all shards could therefore not move in the same
step as the entries; each shard's cursor carries the shard stream's hash slot (its name is the
stream's in braces, or shares the stream's own hash tag) and no step needs two slots. (A
cluster pipeline refuses scripts, so there a batch costs one round trip per shard.)

Two relays of one ledger on one stream (a restart while the old process still runs, say) stay
correct: a shard's cursor only moves forward and entries are appended only past it, so a
pool's entries keep feed order and none is doubled; they only do the same work twice.
Several ledgers may feed one stream, each relay under a ``name`` of its own.

Thread safety: a relay runs in one thread (:meth:`LedgerRelay.run`; stop it from another, or
from a signal handler, with :meth:`LedgerRelay.stop`); it reads the feed in a second thread of
its own.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from importlib import resources
from typing import Any, Protocol

import attrs

from ..errors import StoreError, StoreUnavailable, ValidationError
from ..pools.changes import Change
from .redis_streams import DEFAULT_STREAM, StreamProducer, encode, shard_of, shard_stream

try:
    import redis
    from redis.cluster import RedisCluster
    from redis.crc import key_slot
    from redis.exceptions import NoScriptError
except ImportError as error:  # pragma: no cover - depends on the environment
    from ..errors import MissingExtra

    raise MissingExtra("redis", "redis") from error

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
"""The largest ``batch``: a batch stops growing once it holds that many changes or
transactions."""


class ChangeFeed(Protocol):
    """What the relay reads: a ledger's change feed (:class:`~auptimate_core.PoolLedger`)."""

    def changes(self, after: str | None = None, limit: int = 1000) -> list[Change]: ...

    def follow(self, after: str | None = None,
               timeout: float | None = None) -> Iterator[Change]: ...


@attrs.frozen(slots=True)
class RelayPosition:
    """Where a relay stands: ``count`` changes of the feed relayed to every shard, the last of
    them at ``cursor`` (``None`` before the first)."""

    count: int
    cursor: str | None


class CursorGap(ValidationError):
    """A shard's cursor is before the first change of a batch: the changes between were never
    appended to it (or Redis lost them), and appending the batch would skip them."""


def cursor_key(shard_key: str, name: str) -> str:
    """The key of relay ``name``'s cursor for the shard stream ``shard_key``, in its hash slot.

    >>> cursor_key("tx:3", "relay")
    '{tx:3}:cursor:relay'
    >>> cursor_key("{tx}:3", "relay")
    '{tx}:3:cursor:relay'
    """
    opening = shard_key.find("{")
    tagged = opening >= 0 and shard_key.find("}", opening + 1) > opening + 1
    key = f"{shard_key}:cursor:{name}" if tagged else f"{{{shard_key}}}:cursor:{name}"
    if key_slot(key.encode()) != key_slot(shard_key.encode()):
        raise ValidationError("stream", f"no key can share the hash slot of {shard_key!r}: "
                                        "a stream name with '}' needs a hash tag ({...})")
    return key


class LedgerRelay:
    """Forwards every committed ledger transaction to the workers' sharded stream, once.

    ``feed`` is the ledger (any process's view of it: SQLite, PostgreSQL); ``client`` a
    ``redis.Redis`` (or ``RedisCluster``) or a URL. ``stream``, ``shards`` (``None``: the
    stream's own count, 16 for a new stream) and ``maxlen`` mean what they mean to
    :class:`~.redis_streams.StreamProducer`. ``name`` tells apart the cursors of relays of
    different ledgers feeding one stream. A batch, sent in one round trip, stops growing once
    it holds ``batch`` changes or ``batch`` transactions. ``wake`` (seconds) is how long the
    feed reader waits for a commit before it opens its wait again (and notices a stop).

    See the module notes for why a relay killed at any point and started again neither skips
    nor duplicates an entry.
    """

    def __init__(self, feed: ChangeFeed, client: Any, stream: str = DEFAULT_STREAM, *,
                 name: str = "relay", shards: int | None = None, maxlen: int | None = None,
                 batch: int = 500, wake: float = 1.0) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError("name", f"must be a non-empty string, not {name!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
            raise ValidationError("batch", f"must be an int from 1 to {MAX_BATCH:,}, not "
                                           f"{batch!r}")
        if (isinstance(wake, bool) or not isinstance(wake, int | float) or not wake > 0
                or not math.isfinite(wake)):
            raise ValidationError("wake", f"must be seconds > 0, not {wake!r}")
        self.feed = feed
        self.name = name
        self.batch = batch
        self.wake = float(wake)
        self.poll = 0.1
        try:
            self.producer = StreamProducer(client, stream, shards=shards, maxlen=maxlen)
            self.client = self.producer.client
            self._cluster = isinstance(self.client, RedisCluster)
            self._source = resources.files("auptimate_core.integrations").joinpath(
                "lua", "relay_append.lua").read_text()
            self._sha = self._load()
        except redis.RedisError as error:
            raise _store_error(error) from error
        self.stream = stream
        self.shards = self.producer.shards
        self._streams = [shard_stream(stream, shard) for shard in range(self.shards)]
        self._cursors = [cursor_key(key, name) for key in self._streams]
        self.appended = 0
        """Entries this object appended."""
        self.already = 0
        """Entries this object found already appended (by a run it resumed, or another relay)."""
        self._stop = threading.Event()

    def _load(self) -> str:
        sha: Any = self.client.script_load(self._source)
        if isinstance(sha, dict):  # a cluster answers per node, with the same digest
            sha = next(iter(sha.values()))
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    # -- where it stands ----------------------------------------------------------------------

    def position(self) -> RelayPosition:
        """Where a run resumes: the least advanced shard's cursor (the feed's start when a
        shard has none yet)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._cursors:
                pipe.hmget(key, "count", "cursor")
            found = pipe.execute()
        except redis.RedisError as error:
            raise _store_error(error) from error
        least: RelayPosition | None = None
        for key, (count, cursor) in zip(self._cursors, found):
            if count is None or cursor is None:
                return RelayPosition(0, None)
            try:
                here = RelayPosition(int(count), _text(cursor))
            except ValueError:
                raise ValidationError("stream", f"relay cursor {key!r} holds "
                                                f"{count!r}, not a change number") from None
            if least is None or here.count < least.count:
                least = here
        assert least is not None  # a stream has at least one shard
        return least

    def check(self) -> RelayPosition:
        """:meth:`position`, after asking the feed whether every shard's cursor is one of its
        own: a cursor of another ledger (or of this database before a restore from an older
        copy) is a :class:`~auptimate_core.errors.ValidationError`, never a silent restart."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._cursors:
                pipe.hget(key, "cursor")
            cursors = {_text(c) for c in pipe.execute() if c is not None}
        except redis.RedisError as error:
            raise _store_error(error) from error
        for cursor in sorted(cursors):
            self.feed.changes(after=cursor, limit=1)
        return self.position()

    # -- sending ------------------------------------------------------------------------------

    def send(self, changes: Sequence[Change], after: int) -> int:
        """Append the transactions of ``changes``, the feed's changes numbered ``after + 1``
        onwards in order, and move every shard's cursor to the last of them. Entries a shard
        already holds (its cursor is past their change) are not appended again. Returns the
        number of entries appended now.

        Atomic per shard, not across shards: a failure part-way (:class:`StoreUnavailable`)
        leaves some shards done and others not, and sending the same changes again completes
        them. A shard whose cursor is before change ``after`` (the changes between have not
        been sent) refuses the batch: a :class:`CursorGap` (a ``ValidationError``) naming
        ``after``. Raises :class:`~auptimate_core.errors.StoreError` for any other
        Redis error.
        """
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError("after", f"must be a change number >= 0, not {after!r}")
        if not changes:
            return 0
        calls = self._calls(changes, after)
        try:
            try:
                replies = self._execute(calls)
            except NoScriptError:  # the server lost its scripts (a restart): load, send again
                self._sha = self._load()
                replies = self._execute(calls)
        except redis.ResponseError as error:
            reply = str(error).rsplit("caused error: ", 1)[-1]  # a pipeline names the command
            if reply.startswith("GAP "):
                raise CursorGap("after", reply[4:]) from None
            raise _store_error(error) from error
        except redis.RedisError as error:
            raise _store_error(error) from error
        added = sum(int(reply[0]) for reply in replies)
        wanted = sum(len(change.event.transactions) for change in changes)
        self.appended += added
        self.already += wanted - added
        return added

    def _calls(self, changes: Sequence[Change], after: int) -> list[list[str]]:
        """The script's arguments for each shard, in shard order (see ``relay_append.lua``)."""
        head = [str(self.producer.maxlen or 0), str(after), str(after + len(changes)),
                changes[-1].cursor]
        calls = [list(head) for _ in range(self.shards)]
        for number, change in enumerate(changes, start=after + 1):
            for tx in change.event.transactions:
                fields = encode(tx)
                args = calls[shard_of(tx.pool_id, self.shards)]
                args += [str(number), str(len(fields))]
                for field, value in fields.items():
                    args += [field, value]
        return calls

    def _execute(self, calls: list[list[str]]) -> list[Any]:
        shards = zip(self._streams, self._cursors, calls)
        if self._cluster:  # a cluster pipeline refuses scripts: one round trip per shard
            return [self.client.evalsha(self._sha, 2, stream_key, cursor, *args)
                    for stream_key, cursor, args in shards]
        pipe = self.client.pipeline(transaction=False)
        for stream_key, cursor, args in shards:
            pipe.evalsha(self._sha, 2, stream_key, cursor, *args)
        replies: list[Any] = pipe.execute()
        return replies

    # -- running ------------------------------------------------------------------------------

    def run(self, *, until_idle: float | None = None) -> RelayPosition:
        """Relay until :meth:`stop` (or, with ``until_idle``, until that many seconds pass with
        no new change); return where it stopped.

        Starts at :meth:`check`. While Redis cannot be reached the batch in hand is sent again
        (with growing pauses), and while the ledger's database cannot be reached the feed is
        read again: both are logged, neither loses a change. When Redis comes back having lost
        writes (a restart without persistence, a failover), a shard refuses the next batch
        (:class:`CursorGap`) and the relay resumes from the cursors Redis still holds, sending
        again what was lost.
        """
        position = self.check()
        idle_since = time.monotonic()
        while True:
            logger.info("relay resumes after change %d", position.count, extra={
                "stream": self.stream, "relay": self.name})
            reader = _Reader(self.feed, position.cursor, self.wake, 4 * self.batch)
            reader.start()
            try:
                while not self._stop.is_set():
                    changes = reader.take(self.batch, self.poll)
                    if changes:
                        if not self._send_until_done(changes, position.count):
                            break
                        position = RelayPosition(position.count + len(changes),
                                                 changes[-1].cursor)
                        idle_since = time.monotonic()
                    elif until_idle is not None and time.monotonic() - idle_since >= until_idle:
                        break
                return position
            except CursorGap as gap:
                logger.warning("redis lost some of the relay's writes (%s); resuming from the "
                               "cursors it holds", gap, extra={"stream": self.stream,
                                                               "relay": self.name})
            finally:
                reader.close(self.wake + 5.0)
            position = self.check()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    def _send_until_done(self, changes: Sequence[Change], after: int) -> bool:
        failures = 0
        while True:
            try:
                self.send(changes, after)
                return True
            except StoreUnavailable as error:
                failures += 1
                logger.warning("redis unavailable, sending the batch again: %s", error, extra={
                    "stream": self.stream, "relay": self.name})
                if self._stop.wait(min(5.0, 0.05 * 2 ** failures)):
                    return False  # what was not sent is sent by the next run


_END = object()


class _Reader(threading.Thread):
    """Follows the feed into a bounded queue, so that the relay sends whatever has arrived
    as one batch and waits only when there is nothing."""

    def __init__(self, feed: ChangeFeed, after: str | None, wake: float, size: int) -> None:
        super().__init__(name="auptimate-relay-feed", daemon=True)
        self.feed = feed
        self.after = after
        self.wake = wake
        self.queue: queue.Queue[object] = queue.Queue(maxsize=size)
        self.error: BaseException | None = None
        self._failed = False
        self._stopped = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                changes = self.feed.follow(after=self.after, timeout=self.wake)
                try:
                    for change in changes:
                        if not self._put(change):
                            return
                        self.after = change.cursor
                        failures = 0
                finally:
                    if isinstance(changes, Generator):
                        changes.close()  # lets go of its wake-up (a connection on PostgreSQL)
            except StoreUnavailable as error:
                failures += 1
                logger.warning("the ledger's database is unavailable, reading again: %s", error)
                self._stopped.wait(min(5.0, 0.05 * 2 ** failures))
            except BaseException as error:
                self.error = error
                self._put(_END)
                return

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, limit: int, timeout: float) -> list[Change]:
        """The changes that have arrived (waiting up to ``timeout`` for a first one), until
        they number ``limit`` or hold ``limit`` transactions."""
        if self._failed:
            assert self.error is not None
            raise self.error
        found: list[Change] = []
        transactions = 0
        try:
            item = self.queue.get(timeout=timeout)
            while True:
                if item is _END:
                    self._failed = True
                    break
                assert isinstance(item, Change)
                found.append(item)
                transactions += len(item.event.transactions)
                if len(found) >= limit or transactions >= limit:
                    break
                item = self.queue.get_nowait()
        except queue.Empty:
            pass
        if self._failed and not found:
            return self.take(limit, timeout)
        return found

    def close(self, timeout: float) -> None:
        self._stopped.set()
        self.join(timeout)


def _store_error(error: Exception) -> StoreError:
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        return StoreUnavailable(f"redis cannot be reached: {error}")
    return StoreError(f"redis refused the relay's command: {error}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["ChangeFeed", "CursorGap", "LedgerRelay", "RelayPosition", "cursor_key"]
