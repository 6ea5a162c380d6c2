"""The asyncio API against the sync one on the same work: what awaiting costs.

    python -m benchmarks.bench_aio [--quick] [--writes N] [--transactions N] [--rounds R]
                                   [--out DIR]

Two measures, each peer once a round in interleaved rounds (best round each, see
benchmarks/timing.py), on one event loop made for the run:

1. Ledger investments on SQLite, one file per peer, each seeded alike (a pool of 100 members
   who invested once): ``AsyncPoolLedger`` (``sqlite+aiosqlite``) awaited one write after the
   other, the same with the writes gathered ten at a time (they take turns on the ledger
   object), and ``PoolLedger`` (``sqlite``, the standard driver) called in a loop. Each round
   writes the next ``--writes`` investments (distinct idempotency keys, the members in turn);
   afterwards every peer's ledger verifies and holds the same positions and totals.
2. The alert engine on the memory store, over the generated stream with its anomalies (the
   threshold and spike rules of the command line): ``AsyncAlertEngine`` against
   ``AlertEngine``, per batch (``process_many``) and per transaction (``process`` on each), a
   fresh engine each round (made untimed), each at its default batch size (the async
   engine's batches are smaller: it gives the loop a turn between them). Both raise the same
   alerts, checked.

Results go to benchmarks/results/aio.{md,json} (``--out DIR``: elsewhere): ``{"ledger":
{"peers": ...}, "engine process_many": {"peers": ...}, "engine process per transaction":
{"peers": ...}}``, the async peer first in each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
from collections.abc import Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auptimate_core import PoolLedger, Transaction
from auptimate_core.aio import AsyncAlertEngine, AsyncPoolLedger
from auptimate_core.alerts import Alert, AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.backends.memory import MemoryWindowStore

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


def ledger_peers(loop: asyncio.AbstractEventLoop, where: Path, writes: int,
                 rounds: int) -> dict[str, Any]:
    """Seconds per investment of each peer, and whether their ledgers agree afterwards."""
    paths = {name: where / f"{name}.db" for name in ("awaited", "gathered", "sync")}
    for path in paths.values():
        seeding = PoolLedger.from_url(f"sqlite:///{path}")
        seed_pool(seeding, POOL, MEMBERS)
        seeding.close()
    awaited = AsyncPoolLedger.from_url(f"sqlite+aiosqlite:///{paths['awaited']}")
    gathered = AsyncPoolLedger.from_url(f"sqlite+aiosqlite:///{paths['gathered']}")
    sync = PoolLedger.from_url(f"sqlite:///{paths['sync']}")
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


def engine_peers(loop: asyncio.AbstractEventLoop, txs: list[Transaction],
                 rounds: int) -> dict[str, dict[str, Any]]:
    """Transactions per second of the async and the sync engine, per batch and per
    transaction, and whether they raised the same alerts."""
    made: list[AlertEngine | AsyncAlertEngine] = []

    def fresh_sync() -> AlertEngine:
        close_made()
        engine = AlertEngine(_rules(), store=MemoryWindowStore())
        made.append(engine)
        return engine

    def fresh_async() -> AsyncAlertEngine:
        close_made()
        engine = AsyncAlertEngine(_rules(), MemoryWindowStore())
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
        "engine process_many": {"AsyncAlertEngine.process_many": async_many,
                                "AlertEngine.process_many (sync)": sync_many},
        "engine process per transaction": {"AsyncAlertEngine.process": async_each,
                                           "AlertEngine.process (sync)": sync_each},
    }
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
    for title in ("ledger", "engine process_many", "engine process per transaction"):
        table = report[title]
        rate = "writes_per_second" if title == "ledger" else "transactions_per_second"
        peers = table["peers"]
        ours = next(iter(peers.values()))[rate]
        if title == "ledger":
            about = (f"{table['writes_per_round']:,} investments a round on SQLite, a pool of "
                     f"{table['members']} members; ledgers checked equal: "
                     f"{'yes' if table['checked'] else 'NO'}")
        else:
            about = (f"{table['transactions']:,} transactions, memory store, {table['alerts']} "
                     f"alerts; alerts checked equal: {'yes' if table['checked'] else 'NO'}")
        lines += [f"## {title}", "", about, "", f"| peer | {rate.replace('_', ' ')} | ratio |",
                  "|---|---:|---:|"]
        lines += [f"| {name} | {peer[rate]:,.0f} | {ours / peer[rate]:.2f}x |"
                  for name, peer in peers.items()]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two rounds")
    parser.add_argument("--writes", type=int, default=1_000, help="investments a round")
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="where aio.md and aio.json go (benchmarks/results/)")
    args = parser.parse_args()
    out = args.out or RESULTS
    writes = 200 if args.quick else args.writes
    n = 20_000 if args.quick else args.transactions
    rounds = 2 if args.quick else args.rounds
    txs, _ = anomalous_stream(n)
    loop = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory() as where:
            ledger = ledger_peers(loop, Path(where), writes, rounds)
        engine = engine_peers(loop, txs, rounds)
    finally:
        loop.close()
    report = {"benchmark": "aio", "rounds": rounds, "python": platform.python_version(),
              "ledger": ledger, **engine}
    out.mkdir(parents=True, exist_ok=True)
    (out / "aio.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = _lines(report)
    (out / "aio.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
