"""Ledger batches (``PoolLedger.batch()``, ``invest_many``) on memory, SQLite and PostgreSQL.

The one-by-one ledger is the model: a batch of commands leaves the same positions, totals,
entries and change feed as the same commands called one at a time, or, when one of them is
refused, nothing at all (no row, no change, no subscriber called). Retries replay by key,
authorization refuses the whole batch, and batches over several pools never deadlock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from auptimate_core import (
    IdempotencyConflict,
    Investor,
    LedgerError,
    PermissionDenied,
    Pool,
    PoolLedger,
    UnknownInvestor,
    UnknownPool,
)
from auptimate_core.clock import ManualClock
from auptimate_core.errors import ValidationError
from auptimate_core.pools.batch import Investment
from auptimate_core.testing.ledger.harness import START

D = Decimal
Command = tuple[str, str, str, str, Decimal, str]  # action, pool, investor, actor, amount, key
Opener = Callable[[], PoolLedger]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_ledger(request: pytest.FixtureRequest) -> Iterator[Opener]:
    """A factory of new, empty ledgers on one backend (each its own storage), closed after."""
    opened: list[PoolLedger] = []
    schemas: list[str] = []
    url = "memory://"
    if request.param == "sqlite":
        url = "sqlite://"
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")

    def make() -> PoolLedger:
        options: dict[str, Any] = {}
        if request.param == "postgres":
            schemas.append(f"batch_{uuid.uuid4().hex[:12]}")
            options["schema"] = schemas[-1]
        ledger = PoolLedger.from_url(url, clock=ManualClock(START), **options)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()
    if schemas:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def setup(ledger: PoolLedger) -> None:
    """Pools p1 (USD) and p2 (JPY) of manager m; investors a, b, c; all three in p1, a and b in
    p2, each with money in."""
    ledger.create_pool(Pool("p1", "m"), actor="m")
    ledger.create_pool(Pool("p2", "m", currency="JPY"), actor="m")
    for n, (pool_id, investor) in enumerate([("p1", "a"), ("p1", "b"), ("p1", "c"), ("p2", "a"),
                                             ("p2", "b")]):
        if pool_id == "p1":
            ledger.register_investor(Investor(investor))
        ledger.admit(pool_id, investor, actor="m")
        ledger.invest(pool_id, investor, D(100 * (n + 1)), actor=investor,
                      idempotency_key=f"setup{n}")


def one_by_one(ledger: PoolLedger, commands: list[Command]) -> list[Any]:
    results: list[Any] = []
    for action, pool_id, investor_id, actor, amount, key in commands:
        if action == "admit":
            ledger.admit(pool_id, investor_id, actor=actor)
            results.append(None)
        elif action == "invest":
            results.append(ledger.invest(pool_id, investor_id, amount, actor=actor,
                                         idempotency_key=key))
        else:
            results.append(ledger.refund(pool_id, investor_id, amount, actor=actor,
                                         idempotency_key=key))
    return results


def batched(ledger: PoolLedger, commands: list[Command]) -> list[Any]:
    batch = ledger.batch()
    for action, pool_id, investor_id, actor, amount, key in commands:
        if action == "admit":
            batch.admit(pool_id, investor_id, actor=actor)
        elif action == "invest":
            batch.invest(pool_id, investor_id, amount, actor=actor, idempotency_key=key)
        else:
            batch.refund(pool_id, investor_id, amount, actor=actor, idempotency_key=key)
    return batch.commit()


def state(ledger: PoolLedger) -> dict[str, Any]:
    """Everything a reader can see: positions, totals, history, the feed's events."""
    ledger.verify()
    return {
        "positions": {p: ledger.positions(p) for p in ("p1", "p2")},
        "totals": {p: ledger.pool_totals(p) for p in ("p1", "p2")},
        "history": ledger.history(),
        "events": [change.event.to_dict() for change in ledger.changes(limit=10_000)],
    }


def _drawn(*values: Any, odd: Any) -> st.SearchStrategy[Any]:
    """One of ``values`` mostly, ``odd`` (a value to be refused) about one time in fifteen."""
    common = st.sampled_from(values)
    return st.integers(0, 14).flatmap(lambda n: st.just(odd) if n == 0 else common)


commands = st.lists(st.one_of(
    st.tuples(st.just("admit"), _drawn("p1", "p2", odd="nope"), _drawn("a", "b", "c", odd="ghost"),
              _drawn("m", odd="a"), st.just(D(0)), st.just("")),
    st.tuples(st.just("invest"), _drawn("p1", "p2", odd="nope"),
              _drawn("a", "b", "c", odd="ghost"), _drawn("", odd="b"),
              _drawn(D(1), D(25), D(300), odd=D("0.5")),
              _drawn(*(f"k{n}" for n in range(40)), odd="k0")),
    st.tuples(st.just("refund"), st.sampled_from(["p1", "p2"]),
              st.sampled_from(["a", "b", "c"]), _drawn("m", odd="a"),
              _drawn(D(1), D(10), odd=D(5_000)), _drawn(*(f"k{n}" for n in range(40)), odd="k0")),
), min_size=1, max_size=10)


def actors(found: list[Command]) -> list[Command]:
    """Investments made by their investor unless the strategy drew another actor."""
    return [(a, p, i, actor or i, amount, key) for a, p, i, actor, amount, key in found]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=commands)
def test_a_batch_records_what_the_same_commands_record_one_by_one(
        open_ledger: Opener, drawn: list[Command]) -> None:
    found = actors(drawn)
    model, ledger = open_ledger(), open_ledger()
    setup(model)
    setup(ledger)
    before = state(ledger)
    try:
        expected: list[Any] | Exception = one_by_one(model, found)
    except (LedgerError, ValidationError) as error:
        expected = error
    seen: list[Any] = []
    ledger.subscribe(seen.append)
    event("refused" if isinstance(expected, Exception) else "recorded")
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as refused:
            batched(ledger, found)
        assert any("of the batch" in note for note in refused.value.__notes__)
        assert state(ledger) == before
        assert seen == []
        return
    assert batched(ledger, found) == expected
    assert state(ledger) == state(model)
    assert seen == [change.event for change in model.changes(limit=10_000)][len(before["events"]):]


# -- all or nothing ------------------------------------------------------------------------


def test_a_refused_command_in_the_middle_writes_nothing_and_publishes_nothing(
        open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    before, cursor = state(ledger), ledger.cursor()
    seen: list[Any] = []
    ledger.subscribe(seen.append)
    batch = (ledger.batch().admit("p1", "b", actor="m")
             .invest("p1", "b", D(50), actor="b", idempotency_key="x1")
             .refund("p1", "a", D(1_000), actor="m", idempotency_key="x2")  # more than held
             .invest("p1", "a", D(5), actor="a", idempotency_key="x3"))
    with pytest.raises(ValidationError, match="exceeds") as refused:
        batch.commit()
    assert refused.value.__notes__ == [
        "command 2 of the batch, refund of 'a' in pool 'p1' (idempotency key 'x2'): the batch "
        "wrote nothing"]
    assert state(ledger) == before
    assert ledger.changes(after=cursor) == []
    assert seen == []
    # The refused keys stay unused: a corrected request with them is recorded.
    assert ledger.invest("p1", "a", D(5), actor="a", idempotency_key="x2").amount == D("5.00")


@pytest.mark.parametrize("bad", [
    lambda b: b.invest("nope", "a", D(1), actor="a", idempotency_key="y"),
    lambda b: b.invest("p1", "ghost", D(1), actor="ghost", idempotency_key="y"),
    lambda b: b.invest("p2", "c", D(1), actor="c", idempotency_key="y"),  # not a member
    lambda b: b.invest("p1", "a", D("0.001"), actor="a", idempotency_key="y"),
    lambda b: b.admit("p1", "ghost", actor="m"),
])
def test_every_kind_of_refusal_refuses_the_whole_batch(
        open_ledger: Opener, bad: Callable[[Any], Any]) -> None:
    ledger = open_ledger()
    setup(ledger)
    before = state(ledger)
    batch = ledger.batch().invest("p1", "a", D(1), actor="a", idempotency_key="ok")
    bad(batch)
    with pytest.raises((UnknownPool, UnknownInvestor, PermissionDenied, ValidationError)):
        batch.commit()
    assert state(ledger) == before


def test_arguments_are_checked_when_queued() -> None:
    batch = PoolLedger().batch()
    with pytest.raises(ValidationError, match="amount"):
        batch.invest("p1", "a", D(-1), actor="a", idempotency_key="k")
    with pytest.raises(ValidationError, match="idempotency_key"):
        batch.invest("p1", "a", D(1), actor="a", idempotency_key="")
    with pytest.raises(ValidationError, match="pool_id"):
        batch.admit("", "a", actor="m")
    assert len(batch) == 0


# -- authorization ---------------------------------------------------------------------------


def test_an_actor_the_policy_refuses_refuses_the_whole_batch(open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    before = state(ledger)
    with pytest.raises(PermissionDenied, match="'b' may not invest"):
        ledger.invest_many([Investment("p1", "a", D(5), "a", "z1"),
                            Investment("p1", "a", D(5), "b", "z2")])
    with pytest.raises(PermissionDenied, match="'a' may not refund"):
        ledger.batch().refund("p1", "a", D(1), actor="a", idempotency_key="z3").commit()
    with pytest.raises(PermissionDenied, match="'a' may not admit"):
        ledger.batch().admit("p1", "b", actor="a").commit()
    assert state(ledger) == before


# -- idempotency -----------------------------------------------------------------------------


def test_a_retried_batch_returns_the_same_results_and_writes_nothing(
        open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    items = [("p1", "a", D(n), "a", f"r{n}") for n in range(1, 30)]
    first = ledger.invest_many(items)
    after = state(ledger)
    assert ledger.invest_many(items) == first
    assert state(ledger) == after
    # One by one, the same keys replay too; a batch with some keys new records only those.
    assert ledger.invest("p1", "a", D(3), actor="a", idempotency_key="r3") == first[2]
    mixed = ledger.invest_many([items[0], ("p1", "a", D(7), "a", "new")])
    assert mixed[0] == first[0] and mixed[1].amount == D("7.00")
    assert len(ledger.changes(limit=10_000)) == len(after["events"]) + 1


def test_a_key_used_for_another_request_refuses_the_whole_batch(open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    before = state(ledger)
    with pytest.raises(IdempotencyConflict, match="'setup0' was already used"):
        ledger.invest_many([("p1", "a", D(5), "a", "fresh"), ("p1", "a", D(99), "a", "setup0")])
    with pytest.raises(IdempotencyConflict, match="'twice' was already used"):
        ledger.invest_many([("p1", "a", D(5), "a", "twice"), ("p1", "a", D(6), "a", "twice")])
    assert state(ledger) == before
    # The same request twice in one batch is recorded once, as one by one.
    once = ledger.invest_many([("p1", "a", D(5), "a", "twice"), ("p1", "a", D(5), "a", "twice")])
    assert once[0] == once[1]
    assert ledger.pool_totals("p1").invested == D(605)


# -- the batch object ------------------------------------------------------------------------


def test_a_batch_commits_once_and_as_a_context_manager(open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    with ledger.batch() as batch:
        batch.admit("p2", "b", actor="m").invest("p2", "b", D(700), actor="b",
                                                  idempotency_key="j1")
    assert [None if r is None else r.amount for r in batch.results] == [None, D(700)]
    assert batch.commit() == batch.results
    with pytest.raises(LedgerError, match="committed"):
        batch.admit("p2", "c", actor="m")
    assert ledger.batch().commit() == []
    with pytest.raises(LedgerError, match="not committed"):
        _ = ledger.batch().results
    with pytest.raises(RuntimeError), ledger.batch() as dropped:
        dropped.admit("p2", "c", actor="m")
        raise RuntimeError("the block failed: nothing is committed")
    assert [p.investor_id for p in ledger.positions("p2")] == ["a", "b"]


def test_a_batch_over_many_members_and_pools_verifies(open_ledger: Opener) -> None:
    ledger = open_ledger()
    setup(ledger)
    pools = [f"q{n}" for n in range(3)]
    batch = ledger.batch()
    for pool_id in pools:
        ledger.create_pool(Pool(pool_id, "m"), actor="m")
    for n in range(120):
        ledger.register_investor(Investor(f"i{n}"))
    for n in range(120):
        batch.admit(pools[n % 3], f"i{n}", actor="m")
        batch.invest(pools[n % 3], f"i{n}", D(10 + n), actor=f"i{n}", idempotency_key=f"m{n}")
    batch.refund("q0", "i0", D(4), actor="m", idempotency_key="back")
    results = batch.commit()
    assert len(results) == 241
    assert ledger.verify() > 240
    assert sum(ledger.pool_totals(p).capital for p in pools) == sum(
        D(10 + n) for n in range(120)) - 4
    positions = ledger.changes(limit=10_000)
    assert [c.event.seq for c in positions[-241:] if c.event.to_dict()["pool_id"] == "q0"][:3] \
        == [2, 3, 4]


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_batches_and_single_writes_over_the_same_pools_never_deadlock(
        postgres_url: str) -> None:
    schema = f"batch_{uuid.uuid4().hex[:12]}"
    ledgers = [PoolLedger.from_url(postgres_url, schema=schema) for _ in range(4)]
    pools = ["p1", "p2", "p3"]
    setup_ledger = ledgers[0]
    for pool_id in pools:
        setup_ledger.create_pool(Pool(pool_id, "m"), actor="m")
    for n in range(4):
        setup_ledger.register_investor(Investor(f"w{n}"))
        for pool_id in pools:
            setup_ledger.admit(pool_id, f"w{n}", actor="m")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        ledger, investor = ledgers[n], f"w{n}"
        order = pools if n % 2 else list(reversed(pools))
        try:
            for k in range(15):
                if n == 3:
                    ledger.invest(order[k % 3], investor, D(1), actor=investor,
                                  idempotency_key=f"{investor}/{k}")
                    continue
                ledger.invest_many([(pool_id, investor, D(1), investor, f"{investor}/{k}/{pool_id}")
                                    for pool_id in order])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(setup_ledger.pool_totals(p).invested for p in pools) == D(3 * 15 * 3 + 15)
    setup_ledger.verify()
    positions = [c.cursor for c in setup_ledger.changes(limit=10_000)]
    assert len(positions) == len(set(positions))
    for ledger in ledgers:
        ledger.close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
