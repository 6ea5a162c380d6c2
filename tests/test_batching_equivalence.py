"""How a stream is cut into calls changes nothing: one call per event and batches of any size
give the same statuses, counts, first-seen times and alerts, on streams long enough for the
stores' upkeep to run (quiet pools given back, idle pools dropped) between a pool's events.

The streams are hostile on purpose: gaps longer than the windows and than the dedup horizon,
pools that come back in order for themselves but far behind the rest of the stream, late events,
redeliveries under old and new timestamps, and events ahead of the clock.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.domain import to_micros
from auptimate_core.store import Interval, Status, WindowStore

T0 = datetime(2026, 5, 1, tzinfo=UTC)
CLOCK = T0 + timedelta(days=40)  # the engines' clock: events after it plus max_ahead are FUTURE
US = 1_000_000


class FixedClock:
    def now(self) -> datetime:
        return CLOCK


def hostile_stream(seed: int, pools: int, events: int) -> list[Transaction]:
    """``events`` transactions over ``pools`` pools (a few busy, most sparse) whose clock
    mostly creeps forward and sometimes jumps (past the windows, past the dedup horizon);
    among them pools that come back one second after their own last event however far the
    stream has moved on, late events, redeliveries and events past the clock."""
    rng = random.Random(seed)
    at = T0
    last: dict[str, datetime] = {}
    out: list[Transaction] = []
    for i in range(events):
        roll = rng.random()
        if roll < 0.002:
            at += timedelta(hours=rng.choice((2, 12, 30)))
        elif roll < 0.02:
            at += timedelta(minutes=rng.randrange(1, 90))
        else:
            at += timedelta(milliseconds=rng.randrange(0, 3_000))
        pool = f"p{min(int(rng.paretovariate(0.8)), pools) - 1}"
        moment = at
        kind = rng.random()
        if kind < 0.03 and last:
            pool = rng.choice(sorted(last))  # back in order for itself, behind the stream
            moment = last[pool] + timedelta(seconds=1)
        elif kind < 0.05:
            moment = at - timedelta(seconds=rng.randrange(0, 900))  # late, or nearly
        elif kind < 0.06:
            moment = CLOCK + timedelta(minutes=rng.randrange(6, 30))  # ahead of the clock
        if kind > 0.985 and out:
            again = out[rng.randrange(len(out))]  # a redelivery, old or new timestamp
            out.append(Transaction(again.id, again.investor_id, again.pool_id, again.amount,
                                   again.timestamp if rng.random() < 0.5 else moment))
            continue
        amount = Decimal(rng.choice((100, 2_000, 900_000)))
        out.append(Transaction(f"t{i}", f"i{rng.randrange(9)}", pool, amount, moment))
        if moment <= CLOCK and moment > last.get(pool, moment - timedelta(1)):
            last[pool] = moment
    return out


INTERVALS = (Interval(0, 60 * US), Interval(60 * US, 3_600 * US))
NOT_AFTER = to_micros(CLOCK) + 300 * US

Answer = tuple[Status, tuple[int, ...], int | None]


def answer(status: Status, counts: Sequence[int], first: int | None) -> Answer:
    """An answer as the tests compare it: counts only for a NEW event (other statuses count
    nothing, and stores give them as zeros or not at all)."""
    return status, tuple(counts) if status is Status.NEW else (), first


def per_event(store: WindowStore, txs: list[Transaction]) -> list[Answer]:
    out: list[Answer] = []
    for tx in txs:
        got = store.observe_many([tx.pool_id], [tx.id], [to_micros(tx.timestamp)], [0], INTERVALS,
                                 not_after=NOT_AFTER)
        out.append(answer(got.statuses[0], [c[0] for c in got.counts], got.first_seen[0]))
    return out


def inline(store: MemoryWindowStore, txs: list[Transaction]) -> list[Answer]:
    """The memory store's own per-event path (what ``AlertEngine.process`` calls)."""
    store.observe_many([], [], [], [], INTERVALS)  # the shape it then decides inline
    out: list[Answer] = []
    for tx in txs:
        status, counts, _, first = store.observe_event(
            tx.pool_id, tx.id, to_micros(tx.timestamp), 0, INTERVALS, False, NOT_AFTER)
        out.append(answer(status, counts, first))
    return out


def batched(store: WindowStore, txs: list[Transaction], size: int) -> list[Answer]:
    out: list[Answer] = []
    for start in range(0, len(txs), size):
        part = txs[start:start + size]
        got = store.observe_many([t.pool_id for t in part], [t.id for t in part],
                                 [to_micros(t.timestamp) for t in part], [0] * len(part),
                                 INTERVALS, not_after=NOT_AFTER)
        for i in range(len(part)):
            out.append(answer(got.statuses[i], [c[i] for c in got.counts], got.first_seen[i]))
    return out


STORES: dict[str, Callable[[], WindowStore]] = {
    "memory": MemoryWindowStore,
    "memory-ring": lambda: MemoryWindowStore(window="ring"),
}

# A stream is drawn as its generator's arguments (a readable failing example); shrinking a
# seed means nothing, so examples are not shrunk.
shapes = st.tuples(st.integers(0, 10**6), st.integers(1, 40), st.integers(4_500, 9_000))
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.mark.parametrize("name", sorted(STORES))
@settings(max_examples=12, deadline=None, phases=NO_SHRINK)
@given(shape=shapes, size=st.sampled_from([1, 7, 500, 4_096, 10_000]))
def test_a_store_answers_alike_however_the_stream_is_cut(
    name: str, shape: tuple[int, int, int], size: int
) -> None:
    txs = hostile_stream(*shape)
    one = per_event(STORES[name](), txs)
    assert batched(STORES[name](), txs, size) == one
    assert Status.LATE in {status for status, _, _ in one}


@settings(max_examples=5, deadline=None, phases=NO_SHRINK)
@given(shape=shapes, size=st.sampled_from([7, 500, 10_000]))
def test_the_redis_store_answers_alike_however_the_stream_is_cut(
    redis_url: str, shape: tuple[int, int, int], size: int
) -> None:
    import redis

    from auptimate_core.backends.redis import RedisWindowStore

    client = redis.Redis.from_url(redis_url)
    txs = hostile_stream(*shape)
    one = per_event(RedisWindowStore(client, f"cut-{uuid.uuid4().hex}"), txs)
    assert batched(RedisWindowStore(client, f"cut-{uuid.uuid4().hex}"), txs, size) == one


@settings(max_examples=12, deadline=None, phases=NO_SHRINK)
@given(shape=shapes, size=st.sampled_from([7, 500, 10_000]))
def test_the_memory_stores_own_per_event_path_answers_as_its_batches(
    shape: tuple[int, int, int], size: int
) -> None:
    txs = hostile_stream(*shape)
    assert inline(MemoryWindowStore(), txs) == batched(MemoryWindowStore(), txs, size)


def engine() -> tuple[AlertEngine, tuple[list[str], list[str]]]:
    """An engine on the default store, and the ids it reported late and ahead of the clock
    (each in order; a batch reports its late ones before its future ones)."""
    held: tuple[list[str], list[str]] = ([], [])
    engine = AlertEngine(
        [ThresholdRule(limit=Decimal("250000")),
         SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                   min_count=3)],
        clock=FixedClock(), on_late=lambda tx: held[0].append(tx.id),
        on_future=lambda tx: held[1].append(tx.id))
    return engine, held


@settings(max_examples=12, deadline=None, phases=NO_SHRINK)
@given(shape=shapes, size=st.sampled_from([1, 7, 500, 4_096, 10_000]))
def test_process_and_process_many_give_the_same_alerts(
    shape: tuple[int, int, int], size: int
) -> None:
    """The contract's "process_many(txs): the same result as calling process() in order"."""
    txs = hostile_stream(*shape)
    one, one_held = engine()
    alerts = [alert for tx in txs for alert in one.process(tx)]
    many, many_held = engine()
    many.batch_size = size
    assert many.process_many(txs) == alerts
    assert many_held == one_held
    assert many.stats.as_dict() == one.stats.as_dict()


def test_a_pool_dropped_while_quiet_is_not_counted_again_from_nothing() -> None:
    """A pool idle for longer than the dedup horizon is dropped whole; an event of it that
    comes back in order for itself but a day behind the stream would need the events it had,
    so it is LATE, not counted against windows that lost them. A new pool's event at the
    stream's own time is counted as ever."""
    back = Transaction("a-back", "i", "a", Decimal(1), T0 + timedelta(seconds=61))
    txs = [Transaction(f"a{k}", "i", "a", Decimal(1), T0 + timedelta(seconds=k))
           for k in range(60)]
    txs += [Transaction(f"o{k}", "i", f"o{k % 7}", Decimal(1),
                        T0 + timedelta(days=2, seconds=k)) for k in range(5_000)]
    now = Transaction("b-now", "i", "b", Decimal(1), T0 + timedelta(days=2, hours=2))
    for cut in (1, 9_999):
        store = MemoryWindowStore()
        answers = batched(store, [*txs, back, now], cut)
        assert answers[-2] == (Status.LATE, (), None)  # a new key to the store: no first
        assert answers[-1][:2] == (Status.NEW, (1, 0))
        assert store.size()["keys"] <= 9
