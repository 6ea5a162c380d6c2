"""The asyncio API against the sync one on the same work: what awaiting costs.

    python -m benchmarks.bench_aio [--quick] [--writes N] [--transactions N] [--rounds R]
                                   [--no-servers] [--out DIR]

Each peer once a round in interleaved rounds (best round each, see benchmarks/timing.py), on
one event loop made for the run:

1. Ledger investments, each peer on a ledger of its own seeded alike (a pool of 100 members
   who invested once): ``AsyncPoolLedger`` awaited one write after the other, the same with
   the writes gathered ten at a time (they take turns on the ledger object), and
   ``PoolLedger`` called in a loop. Each round writes the next ``--writes`` investments
   (distinct idempotency keys, the members in turn); afterwards every peer's ledger verifies
   and holds the same positions and totals. On SQLite (a file per peer; aiosqlite for the
   async peers, the standard driver for the sync one) and on PostgreSQL (a schema per peer;
   psycopg, its asyncio driver for the async peers).
2. The alert engine over the generated stream with its anomalies (the threshold and spike
   rules of the command line): ``AsyncAlertEngine`` against ``AlertEngine``, per batch
   (``process_many``) and, on the memory store, per transaction (``process`` on each), a
   fresh engine and store each round (made untimed), each engine at its default batch size
   (the async engine's batches are smaller: it gives the loop a turn between them). On the
   memory store and on Redis (redis-py's asyncio client for the async engine). Both engines
   raise the same alerts, checked.

PostgreSQL and Redis are servers started for the run (``--no-servers`` leaves them out).
Results go to benchmarks/results/aio.{md,json} (``--out DIR``: elsewhere): one table a
measure, ``{"ledger": {"peers": ...}, "engine process_many": ..., "engine process per
transaction": ..., "ledger on PostgreSQL": ..., "engine process_many on Redis": ...}``, the
async peer first in each."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import PoolLedger, Transaction
from auptimate_core.aio import AsyncAlertEngine, AsyncPoolLedger, window_store_from_url
from auptimate_core.aio.stores import AsyncWindowStore
from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.store import WindowStore
from auptimate_core.testing.servers import PostgresServer, RedisServer, ServerError

from .bench_ledger import AMOUNT, member_id, seed_pool
from .data import anomalous_stream
from .timing import interleaved, staged

RESULTS = Path(__file__).parent / "results"
POOL = "bench"
MEMBERS = 100
GATHERED = 10


def _rules() -> list[ThresholdRule | SpikeRule]:
    return [ThresholdRule(limit=Decimal("250000")),
            SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                      min_count=5)]


# -- the ledger -------------------------------------------------------------------------------


def _key(k: int) -> tuple[str, str]:
    return member_id(POOL, k % MEMBERS), f"{POOL}/aio/{k}"


class SyncWrites:
    """``PoolLedger.invest`` in a loop: each call writes the next ``n``."""

    def __init__(self, ledger: PoolLedger, n: int) -> None:
        self.ledger, self.n, self.done = ledger, n, 0

    def __call__(self) -> None:
        for k in range(self.done, self.done + self.n):
            investor, key = _key(k)
            self.ledger.invest(POOL, investor, AMOUNT, actor=investor, idempotency_key=key)
        self.done += self.n


class AsyncWrites:
    """``AsyncPoolLedger.invest`` awaited, ``at_once`` writes gathered at a time: each call
    writes the next ``n`` on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ledger: AsyncPoolLedger, n: int,
                 at_once: int) -> None:
        self.loop, self.ledger, self.n, self.at_once, self.done = loop, ledger, n, at_once, 0

    async def _write(self, k: int) -> Transaction:
        investor, key = _key(k)
        return await self.ledger.invest(POOL, investor, AMOUNT, actor=investor,
                                        idempotency_key=key)

    async def _writes(self) -> None:
        end = self.done + self.n
        for first in range(self.done, end, self.at_once):
            last = min(first + self.at_once, end)
            if self.at_once == 1:
                await self._write(first)
            else:
                await asyncio.gather(*(self._write(k) for k in range(first, last)))

    def __call__(self) -> None:
        self.loop.run_until_complete(self._writes())
        self.done += self.n


State = tuple[int, list[dict[str, str]], dict[str, str]]


def _state(ledger: PoolLedger) -> State:
    return (ledger.verify(), [p.to_dict() for p in ledger.positions(POOL)],
            ledger.pool_totals(POOL).to_dict())


async def _async_state(ledger: AsyncPoolLedger) -> State:
    return (await ledger.verify(), [p.to_dict() for p in await ledger.positions(POOL)],
            (await ledger.pool_totals(POOL)).to_dict())


Place = Callable[[str], tuple[str, dict[str, Any]]]
"""A backend: the URL (as the sync ledger names it) and the options of the ledger of a peer."""


def ledger_peers(loop: asyncio.AbstractEventLoop, place: Place, writes: int,
                 rounds: int) -> dict[str, Any]:
    """Seconds per investment of each peer, each on a ledger of its own at ``place``, and
    whether their ledgers agree afterwards."""
    where = {name: place(name) for name in ("awaited", "gathered", "sync")}
    for url, options in where.values():
        seeding = PoolLedger.from_url(url, **options)
        seed_pool(seeding, POOL, MEMBERS)
        seeding.close()
    awaited = AsyncPoolLedger.from_url(where["awaited"][0], **where["awaited"][1])
    gathered = AsyncPoolLedger.from_url(where["gathered"][0], **where["gathered"][1])
    sync = PoolLedger.from_url(where["sync"][0], **where["sync"][1])
    peers: dict[str, Callable[[], Any]] = {
        "AsyncPoolLedger.invest, awaited one by one": AsyncWrites(loop, awaited, writes, 1),
        f"AsyncPoolLedger.invest, {GATHERED} gathered at a time":
            AsyncWrites(loop, gathered, writes, GATHERED),
        "PoolLedger.invest (sync)": SyncWrites(sync, writes),
    }
    try:
        timed = interleaved(peers, rounds)
        states = [loop.run_until_complete(_async_state(awaited)),
                  loop.run_until_complete(_async_state(gathered)), _state(sync)]
    finally:
        for ledger in (awaited, gathered):
            loop.run_until_complete(ledger.close())
        sync.close()
    agree = all(state == states[0] for state in states)
    assert agree, "the ledgers disagree after the same investments"
    total = writes * max(rounds, 1)
    assert Decimal(states[0][2]["invested"]) == Decimal(100) * MEMBERS + AMOUNT * total
    return {
        "writes_per_round": writes, "members": MEMBERS, "checked": agree,
        "peers": {name: {"seconds": seconds / writes, "writes_per_second": writes / seconds}
                  for name, (seconds, _) in timed.items()},
    }


# -- the engine -------------------------------------------------------------------------------


Stores = tuple[Callable[[], WindowStore], Callable[[], AsyncWindowStore | WindowStore]]
"""New, empty stores for a sync engine and for an async one."""


def engine_peers(loop: asyncio.AbstractEventLoop, txs: list[Transaction], rounds: int,
                 stores: Stores, where: str = "",
                 per_transaction: bool = True) -> dict[str, dict[str, Any]]:
    """Transactions per second of the async and the sync engine, per batch and (with
    ``per_transaction``) per transaction, each on new ``stores`` a round, and whether they
    raised the same alerts; ``where`` ends the tables' titles."""
    made: list[AlertEngine | AsyncAlertEngine] = []
    sync_store, async_store = stores

    def fresh_sync() -> AlertEngine:
        close_made()
        engine = AlertEngine(_rules(), store=sync_store())
        made.append(engine)
        return engine

    def fresh_async() -> AsyncAlertEngine:
        close_made()
        engine = AsyncAlertEngine(_rules(), async_store())
        made.append(engine)
        return engine

    def close_made() -> None:
        while made:
            engine = made.pop()
            if isinstance(engine, AsyncAlertEngine):
                loop.run_until_complete(engine.close())
            else:
                engine.close()

    def on_loop(work: Callable[[], Coroutine[Any, Any, list[Alert]]]
                ) -> Callable[[], list[Alert]]:
        return lambda: loop.run_until_complete(work())

    def async_many() -> Callable[[], list[Alert]]:
        engine = fresh_async()
        return on_loop(lambda: engine.process_many(txs))

    def sync_many() -> Callable[[], list[Alert]]:
        engine = fresh_sync()
        return lambda: engine.process_many(txs)

    def async_each() -> Callable[[], list[Alert]]:
        engine = fresh_async()

        async def each() -> list[Alert]:
            return [alert for tx in txs for alert in await engine.process(tx)]
        return on_loop(each)

    def sync_each() -> Callable[[], list[Alert]]:
        engine = fresh_sync()
        return lambda: [alert for tx in txs for alert in engine.process(tx)]

    tables = {
        f"engine process_many{where}": {"AsyncAlertEngine.process_many": async_many,
                                        "AlertEngine.process_many (sync)": sync_many},
    }
    if per_transaction:
        tables[f"engine process per transaction{where}"] = {
            "AsyncAlertEngine.process": async_each, "AlertEngine.process (sync)": sync_each}
    out: dict[str, dict[str, Any]] = {}
    alerts: list[list[Alert]] = []
    for title, peers in tables.items():
        timings = staged(peers, rounds)
        close_made()
        alerts += [timing.result for timing in timings.values()]
        out[title] = {"peers": {
            name: {"seconds": timing.best, "transactions_per_second": len(txs) / timing.best,
                   "spread": round(timing.spread, 3)}
            for name, timing in timings.items()}}
    agree = all(found == alerts[0] for found in alerts)
    assert agree, "the engines raised different alerts"
    for table in out.values():
        table.update(transactions=len(txs), alerts=len(alerts[0]), checked=agree)
    return out


# -- the report -------------------------------------------------------------------------------


def _lines(report: dict[str, Any]) -> list[str]:
    lines = [
        "# asyncio against the sync API",
        "",
        f"Interleaved rounds ({report['rounds']}), best round each; one event loop for the "
        "run. The ratio is the async peer's speed against each peer's.",
        "",
    ]
    for title, table in report.items():
        if not isinstance(table, dict) or "peers" not in table:
            continue
        ledger = "writes_per_round" in table
        rate = "writes_per_second" if ledger else "transactions_per_second"
        peers = table["peers"]
        ours = next(iter(peers.values()))[rate]
        if ledger:
            about = (f"{table['writes_per_round']:,} investments a round on {table['on']}, a "
                     f"pool of {table['members']} members; ledgers checked equal: "
                     f"{'yes' if table['checked'] else 'NO'}")
        else:
            about = (f"{table['transactions']:,} transactions, {table['on']} store, "
                     f"{table['alerts']} alerts; alerts checked equal: "
                     f"{'yes' if table['checked'] else 'NO'}")
        lines += [f"## {title}", "", about, "", f"| peer | {rate.replace('_', ' ')} | ratio |",
                  "|---|---:|---:|"]
        lines += [f"| {name} | {peer[rate]:,.0f} | {ours / peer[rate]:.2f}x |"
                  for name, peer in peers.items()]
        lines.append("")
    return lines


def _on(tables: dict[str, dict[str, Any]], where: str) -> dict[str, dict[str, Any]]:
    for table in tables.values():
        table["on"] = where
    return tables


def _with_servers(loop: asyncio.AbstractEventLoop, txs: list[Transaction], writes: int,
                  rounds: int) -> dict[str, dict[str, Any]]:
    """The ledger on PostgreSQL (psycopg, its asyncio driver for the async peers) and the
    engine on Redis (redis-py, its asyncio client for the async peer), on servers started for
    the run."""
    tables: dict[str, dict[str, Any]] = {}
    with PostgresServer() as postgres:
        url = postgres.url()
        tables["ledger on PostgreSQL"] = ledger_peers(
            loop, lambda name: (url, {"schema": f"aio_{name}"}), writes, rounds)
        tables["ledger on PostgreSQL"]["on"] = "PostgreSQL"
    with RedisServer() as redis:
        def sync_store() -> WindowStore:
            return RedisWindowStore.from_url(redis.url, namespace=_namespace())

        def async_store() -> AsyncWindowStore:
            return window_store_from_url(redis.url, namespace=_namespace())

        tables |= _on(engine_peers(loop, txs, rounds, (sync_store, async_store),
                                   " on Redis", per_transaction=False), "Redis")
    return tables


def _namespace() -> str:
    return f"aio{uuid.uuid4().hex[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two rounds")
    parser.add_argument("--writes", type=int, default=1_000, help="investments a round")
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-servers", action="store_true",
                        help="leave out PostgreSQL and Redis (SQLite and memory only)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where aio.md and aio.json go (benchmarks/results/)")
    args = parser.parse_args()
    out = args.out or RESULTS
    writes = 200 if args.quick else args.writes
    n = 20_000 if args.quick else args.transactions
    rounds = 2 if args.quick else args.rounds
    txs, _ = anomalous_stream(n)
    report: dict[str, Any] = {"benchmark": "aio", "rounds": rounds,
                              "python": platform.python_version()}
    loop = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory() as where:
            report["ledger"] = ledger_peers(
                loop, lambda name: (f"sqlite:///{where}/{name}.db", {}), writes, rounds)
            report["ledger"]["on"] = "SQLite"
        report |= _on(engine_peers(loop, txs, rounds, (MemoryWindowStore, MemoryWindowStore)),
                      "memory")
        if not args.no_servers:
            try:
                report |= _with_servers(loop, txs, writes, rounds)
            except ServerError as error:
                print(f"PostgreSQL and Redis left out: {error}")
    finally:
        loop.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "aio.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = _lines(report)
    (out / "aio.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
