"""``RedisWindowStore``: the WindowStore shared by many processes, durable across restarts.

Each key (pool) owns a few Redis keys carrying the same hash tag, so that in a Redis Cluster
they live in one slot and one Lua script may touch them all::

    {namespace}:{<pool id, percent-encoded>}:ev   ZSET  event id -> record time (below)
    {namespace}:{<pool id, percent-encoded>}:am   HASH  event id -> "units:token:tallies", or
                                                        "L:token:record" / "F:token:record";
                                                        "" -> the pool's state (no id is empty)
    {namespace}:{<pool id, percent-encoded>}:lc   HASH  rule -> "1:since[:cause]" / "0:..."
    {namespace}:{<pool id, percent-encoded>}:lb   HASH  rule -> batch, state before its changes

plus one set per rule, ``{namespace}:firing:<rule>``, indexing the pools that are firing. The
pool's state is its newest and first event times, where trimming stands and its version (below).

Recording and tallying is one server-side Lua script (``lua/observe.lua`` and its two parts,
loaded once, called by SHA, reloaded after ``NOSCRIPT``) that takes the runs of many pools (a
pool's events of a batch, in order) and handles each atomically: concurrent processes never
double-count, lose an event, or see half an update. A batch costs one script call per
``batch_size`` events (on a Redis Cluster, per hash slot), the calls streamed over one
connection (pipelined per node on a cluster) while the next is encoded.

A run is usually answered by the client itself and checked by the server (see
:mod:`~auptimate_core.backends.redis_batch`): the store keeps a copy of each pool's windows at
the pool's *version* (every run that records anything gives the pool a new one); the server
records a run as the client answered it when the pool is at the version the copy assumes and
every id is new, and otherwise answers it on its own and tells the client the pool's windows.
So the server's work per event is one sorted-set and one hash insert, and a copy that another
process made stale costs a round of the server's own answering, never a wrong answer.

Ids are remembered for the dedup horizon (``dedup_horizon``, a day by default, at least the
allowed lateness plus the longest window) of the pool's event time from their record time, in
the same sorted set as the windows: an event in the windows is scored by its event time, a late
or future one (remembered, outside the windows) by its record time shifted far below every
event time, so a new event still costs one sorted-set insert. Each id's amount, delivery token
and answer (its tallies, or late or future) live beside it as long as it does. An id past the
horizon is answered as forgotten at once; its memory is given back by the trim that runs as the
pool's newest event advances (every eighth of the horizon), except for the pool's newest
``retain`` events, kept for redeliveries. A pool's keys expire (PEXPIRE) when it stays idle for
``idle_ttl`` of wall-clock time (at least the dedup horizon).

Redis keeps a small hash or sorted set as a listpack, which it scans to find an entry: the
pool's state is written long enough (and the sorted set given one long member no query reaches)
that both are a hash table and a skip list from their first write. A pool then costs more
memory while it holds few ids, and each id costs the same time however many the pool holds.

Amounts are stored as integer units of 1/10,000; window sums come back in four parts of six
decimal digits that Lua's doubles add exactly whatever the number of events, and Python joins
them: totals are exact for amounts below 10**24 units.

Failures: connection errors and timeouts are retried (bounded, with backoff, by
:class:`~auptimate_core.backends.redis_client.RedisCaller`), which is safe because a retried
batch carries the same token and is answered as it would have been the first time; after the
last try the error is :class:`~auptimate_core.errors.StoreUnavailable`. A call named by
``batch`` can be retried by its caller after that, with the same answers.

Persistence is Redis's own. A server that persists nothing (no RDB ``save`` points and
``appendonly no``) loses, when it restarts, every pool's windows, its remembered ids (a
redelivered transaction then counts and alerts again) and the alert lifecycle (which rules are
firing: a burst in progress alerts again, and one that had fired is never resolved). The store
logs one warning when it first connects to such a server.

Thread-safe: redis-py clients are (a connection pool); the store's other mutable state is its
script SHAs, whether it has checked the server's persistence, the names of the pools' keys and
the copies of their windows (under a lock).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from ..errors import MissingExtra, ValidationError
from ..store import (
    IDLE,
    Interval,
    LifecycleState,
    Observation,
    Observed,
    ObservedBatch,
    Tally,
    Transition,
    observe_one,
)

try:
    import redis
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - depends on the environment
    raise MissingExtra("redis", "redis") from error

from .redis_batch import BatchCall, WindowCopies
from .redis_client import Call, RedisCaller, decoded, lua_source

logger = logging.getLogger(__name__)

_US = timedelta(microseconds=1)
_LIMB = 10**6
"""Window sums come back in parts of six decimal digits (see ``lua/observe.lua``)."""
MAX_UNITS = 10**24 - 1
"""The largest amount (in 1/10,000 units) whose window sums stay exact: four parts."""
MAX_TIME = 2**60 - 1
"""Event times (microseconds) lie within +-MAX_TIME: the scripts keep late and future ids
below every event time in the same sorted set."""
_NAMES = 100_000
"""Pools whose key names a store remembers (then it starts again)."""


class RedisWindowStore:
    """A :class:`~auptimate_core.store.WindowStore` on Redis (or a Redis Cluster).

    ``client`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster``; ``namespace`` prefixes
    every key (engines sharing a namespace share counts and the alert lifecycle).
    ``allowed_lateness`` and ``dedup_horizon`` are as for the memory store: an id is
    remembered for the dedup horizon (or the allowed lateness plus the longest window, if
    longer) of its pool's event time. ``idle_ttl`` is the wall-clock time after which an
    untouched pool's keys expire (at least the dedup horizon). ``retries`` and ``backoff``
    bound the retries of a failed call. ``retain``: the newest events of a pool kept even past
    the horizon, so that a redelivered run (see ``deliveries`` of :meth:`observe_many`) of up to
    that many events per pool is answered as the first time. ``batch_size``: the events one
    script call carries at most (a pool's run is never split), so that the client encodes the
    next call while the server runs one and no call holds the server for long. ``copies``:
    keep copies of the pools' windows and answer runs from them (checked by the server); with
    ``False`` the server answers every run (for pools that many processes write at once, whose
    copies would keep going stale).
    """

    def __init__(
        self,
        client: Any,
        namespace: str = "auptimate",
        *,
        allowed_lateness: timedelta = timedelta(minutes=5),
        dedup_horizon: timedelta = timedelta(days=1),
        idle_ttl: timedelta = timedelta(days=1),
        retries: int = 3,
        backoff: float = 0.05,
        batch_size: int = 500,
        retain: int = 256,
        copies: bool = True,
    ) -> None:
        if not namespace or any(c in namespace for c in "{} "):
            raise ValidationError("namespace", f"must be non-empty without braces or spaces, "
                                  f"not {namespace!r}")
        if allowed_lateness < timedelta(0):
            raise ValidationError(
                "allowed_lateness", f"must not be negative, not {allowed_lateness}")
        if dedup_horizon < _US:
            raise ValidationError(
                "dedup_horizon", f"must be at least a microsecond, not {dedup_horizon}")
        if retain < 0:
            raise ValidationError("retain", f"must not be negative, not {retain}")
        self.client = client
        scripts = {name: lua_source(f"{name}.lua") for name in ("tally", "transition")}
        scripts["observe"] = "".join(  # one script in three files
            lua_source(f"{name}.lua") for name in ("observe_setup", "observe_answer", "observe"))
        self._redis = RedisCaller(client, scripts, retries=retries, backoff=backoff,
                                  on_volatile=_warn_volatile)
        self.owns_client = False
        self.namespace = namespace
        self.allowed_lateness = allowed_lateness
        self._lateness = allowed_lateness // _US
        self.dedup_horizon = dedup_horizon
        self._horizon = dedup_horizon // _US
        self._idle_ttl_ms = max(1, idle_ttl // timedelta(milliseconds=1))
        self._reach = 0
        self.batch_size = batch_size
        self.retain = retain
        self.copies = copies
        self._names: dict[str, list[str]] = {}
        self._copies = WindowCopies()
        self._nonce = secrets.token_hex(8)  # this store's, and a count of its calls
        self._calls = itertools.count()
        self._slots: dict[str, int] = {}

    @property
    def retries(self) -> int:
        """How many times a failed call is tried again."""
        return self._redis.retries

    @retries.setter
    def retries(self, value: int) -> None:
        self._redis.retries = value

    @property
    def backoff(self) -> float:
        """Seconds before the first retry, doubled before each next one."""
        return self._redis.backoff

    @backoff.setter
    def backoff(self, value: float) -> None:
        self._redis.backoff = value

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisWindowStore:
        """A store on ``redis://[:password@]host:port/db``, ``rediss://`` (TLS) or
        ``redis+cluster://host:port`` (a Redis Cluster, discovered from that node)."""
        client_options = {
            key: options.pop(key) for key in ("socket_timeout", "socket_connect_timeout")
            if key in options
        }
        client_options.setdefault("socket_timeout", 10.0)
        client_options.setdefault("socket_connect_timeout", 5.0)
        if url.startswith("redis+cluster://"):
            from redis.cluster import RedisCluster

            client: Any = RedisCluster.from_url(
                "redis://" + url[len("redis+cluster://"):], **client_options
            )
        elif url.startswith(("redis://", "rediss://", "unix://")):
            client = redis.Redis.from_url(url, **client_options)
        else:
            raise ValueError(f"url: {url!r} is not a redis://, rediss:// or "
                             "redis+cluster:// URL")
        store = cls(client, **options)
        store.owns_client = True
        return store

    # -- keys ---------------------------------------------------------------------------------

    def _base(self, key: str) -> str:
        # quote() encodes every byte outside [A-Za-z0-9_.-~], braces, colons and spaces among
        # them, so two different pool ids never share a hash tag or a key.
        return f"{self.namespace}:{{{quote(key, safe='')}}}"

    def _keys(self, key: str) -> list[str]:
        base = self._base(key)
        return [f"{base}:ev", f"{base}:am"]

    def _pool_keys(self, key: str) -> list[str]:
        """:meth:`_keys`, remembered for the pools seen lately (quoting is dear per event)."""
        keys = self._names.get(key)
        if keys is None:
            if len(self._names) >= _NAMES:
                self._names.clear()
            keys = self._names[key] = self._keys(key)
        return keys

    def _slot(self, key: str) -> int:
        """The Redis Cluster hash slot of ``key``'s keys."""
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= _NAMES:
                self._slots.clear()
            slot = self._slots[key] = int(self.client.keyslot(self._pool_keys(key)[0]))
        return slot

    def _firing_set(self, rule: str) -> str:
        return f"{self.namespace}:firing:{quote(rule, safe='')}"

    # -- recording and tallying ---------------------------------------------------------------

    def observe(
        self, observation: Observation, intervals: Sequence[Interval], *,
        not_after: int | None = None,
    ) -> Observed:
        return observe_one(self, observation, intervals, not_after)

    def observe_many(
        self,
        keys: Sequence[str],
        event_ids: Sequence[str],
        ats: Sequence[int],
        amounts: Sequence[int],
        intervals: Sequence[Interval],
        *,
        totals: bool = False,
        deliveries: Sequence[str] | None = None,
        batch: str | None = None,
        not_after: int | None = None,
    ) -> ObservedBatch:
        """See :meth:`WindowStore.observe_many`. ``deliveries`` name each event's delivery; else
        ``batch`` names the call, and an event keeps the token ``batch.run.place`` (its pool's
        run in the call, its place in the run); else the call gets a name of its own (the
        store's random prefix and a count of its calls)."""
        n = len(keys)
        if not len(event_ids) == len(ats) == len(amounts) == n:
            raise ValidationError("observe_many", f"{n} keys, {len(event_ids)} event ids, "
                                  f"{len(ats)} times and {len(amounts)} amounts")
        tokens = deliveries
        if tokens is not None:
            if len(tokens) != n:
                raise ValidationError("deliveries", f"{len(tokens)} for {n} events")
            bad = next((t for t in tokens if not _is_token(t)), None)
            if bad is not None:
                raise ValidationError("deliveries", f"{bad!r} is empty or has a space or a colon")
        if batch is not None and not _is_token(batch):
            raise ValidationError("batch", f"{batch!r} is empty or has a space or a colon")
        if n:
            _check_range("ats", min(ats), max(ats), -MAX_TIME, MAX_TIME)
            _check_range("amounts", min(amounts), max(amounts), 0, MAX_UNITS)
        if not_after is not None:
            _check_range("not_after", not_after, not_after, -MAX_TIME, MAX_TIME)
        if "" in event_ids:
            raise ValidationError("event_ids", "an id is empty")
        if intervals:
            self._reach = max(self._reach, max(iv.reach for iv in intervals))
        keep = self._lateness + self._reach
        memory = max(self._horizon, keep)
        ttl = max(self._idle_ttl_ms, -(-memory // 1000))
        nonce = f"{self._nonce}{next(self._calls):x}"  # unique to this call
        call_token = "" if tokens is not None else batch or nonce
        head: list[Any] = [self._lateness, keep, memory, "1" if totals else "0", ttl,
                           self.retain, "" if not_after is None else not_after, nonce,
                           len(intervals)]
        for iv in intervals:
            head += [iv.offset, iv.reach]
        head.append(call_token)  # an empty one says each event brings its own
        call = BatchCall(self._copies if self.copies else None, keys, event_ids, ats, amounts,
                         intervals, totals=totals, tokens=tokens, call_token=call_token,
                         nonce=nonce, not_after=not_after, lateness=self._lateness, keep=keep)
        items = call.items
        in_calls: list[list[int]] = []  # the runs of each script call made, by its place

        def chunks() -> Iterator[list[Call]]:
            in_calls.clear()
            calls: list[Call] = []
            size = 0
            for group in self._groups(items):
                call_keys: list[str] = []
                args = head.copy()
                with self._copies.lock:
                    for number in group:
                        call_keys += self._pool_keys(items[number][0])
                        args += call.encode(number)
                        size += len(items[number][1])
                calls.append((call_keys, args))
                in_calls.append(group)
                if size >= self.batch_size:
                    yield calls
                    calls, size = [], 0
            if calls:
                yield calls

        self._redis.evalsha_stream(
            "observe", chunks, lambda index, reply: call.read(in_calls[index], reply))
        return ObservedBatch(call.statuses, call.counts, call.sums, call.first_seen)

    def _groups(self, items: list[tuple[str, list[int]]]) -> Iterator[list[int]]:
        """The runs (by place in ``items``) of each script call: consecutive runs of up to
        ``batch_size`` events; on a Redis Cluster only runs whose keys share a hash slot."""
        limit = self.batch_size
        if self._redis.cluster:
            by_slot: dict[int, list[int]] = {}
            for number, (key, _) in enumerate(items):
                by_slot.setdefault(self._slot(key), []).append(number)
            groups: Iterable[Sequence[int]] = by_slot.values()
        else:
            groups = (range(len(items)),)
        for numbers in groups:
            group: list[int] = []
            size = 0
            for number in numbers:
                group.append(number)
                size += len(items[number][1])
                if size >= limit:
                    yield group
                    group, size = [], 0
            if group:
                yield group

    def tally(self, key: str, at: int, intervals: Sequence[Interval]) -> tuple[Tally, ...]:
        args: list[Any] = [at, "1"]
        for iv in intervals:
            args += [iv.offset, iv.reach]
        (reply,) = self._redis.evalsha_many("tally", [(self._keys(key)[:2], args)])
        out = []
        for j in range(len(intervals)):
            count, a, b, c, d = (int(x) for x in reply[5 * j:5 * j + 5])
            out.append(Tally(count, ((a * _LIMB + b) * _LIMB + c) * _LIMB + d))
        return tuple(out)

    # -- lifecycle ----------------------------------------------------------------------------

    def states(
        self, pairs: Iterable[tuple[str, str]], *, batch: str | None = None
    ) -> dict[tuple[str, str], LifecycleState]:
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for key, rule in wanted:
                pipe.hget(f"{self._base(key)}:lc", rule)
                if batch is not None:
                    pipe.hget(f"{self._base(key)}:lb", rule)
            results: list[Any] = pipe.execute()
            return results

        replies = self._redis.call("states", run)
        step = 1 if batch is None else 2
        out: dict[tuple[str, str], LifecycleState] = {}
        for n, pair in enumerate(wanted):
            raw = replies[n * step]
            if batch is not None and replies[n * step + 1] is not None:
                tag, _, before = decoded(replies[n * step + 1]).partition("\n")
                if tag == batch:
                    raw = before or None
            out[pair] = IDLE if raw is None else _parse_state(raw)
        return out

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        if not transitions:
            return []
        calls = [
            ([f"{self._base(t.key)}:lc", f"{self._base(t.key)}:lb"],
             [t.rule, "1" if t.firing else "0", f"{t.at}:{t.cause}" if t.cause else t.at,
              t.batch or ""])
            for t in transitions
        ]
        applied = [bool(int(r)) for r in self._redis.evalsha_many("transition", calls)]
        changed = [t for t, ok in zip(transitions, applied) if ok]
        if changed:
            def index() -> None:
                pipe = self.client.pipeline(transaction=False)
                for t in changed:
                    target = self._firing_set(t.rule)
                    (pipe.sadd if t.firing else pipe.srem)(target, t.key)
                pipe.execute()

            self._redis.call("firing index", index)
        return applied

    def firing(self, rule: str) -> frozenset[str]:
        members = self._redis.call("firing", lambda: self.client.smembers(self._firing_set(rule)))
        keys = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        # The index is written after the state; trust the state where they disagree.
        states = self.states((key, rule) for key in keys)
        return frozenset(key for (key, _), state in states.items() if state.firing)

    def close(self) -> None:
        """Close the client if this store made it (``from_url``); a given client is the
        caller's to close."""
        if self.owns_client:
            with contextlib.suppress(RedisError):  # a server already gone is no error here
                self.client.close()

    def flush_namespace(self) -> int:
        """Delete every key of this namespace (for tests and resets); returns how many."""
        def run() -> int:
            deleted = 0
            for key in self.client.scan_iter(match=f"{self.namespace}:*", count=1000):
                deleted += int(self.client.delete(key))
            return deleted

        return self._redis.call("flush", run)


def _is_token(text: str) -> bool:
    return bool(text) and ":" not in text and not any(c.isspace() for c in text)


def _check_range(field: str, low: int, high: int, least: int, most: int) -> None:
    if low < least or high > most:
        bad = low if low < least else high
        raise ValidationError(field, f"{bad} is outside the Redis store's range "
                              f"[{least}, {most}]")


def _parse_state(raw: Any) -> LifecycleState:
    text = decoded(raw)
    flag, _, rest = text.partition(":")
    since, _, cause = rest.partition(":")
    return LifecycleState(flag == "1", int(since) if since else None, cause or None)


def _warn_volatile(servers: list[str]) -> None:
    logger.warning(
        "redis %s persists nothing (no save points, appendonly no): a restart loses "
        "every pool's windows, the remembered transaction ids (redeliveries then count "
        "and alert again) and the alert firing states (bursts alert again, and "
        "resolutions are missed)", ", ".join(servers))
