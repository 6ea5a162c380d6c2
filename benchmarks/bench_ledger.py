"""Ledger writes against hand-written transactions and pgbench, on memory, SQLite and PostgreSQL.

    python -m benchmarks.bench_ledger [--quick] [--big] [--writes N] [--rounds R] [--batch B]
                                      [--out DIR]

Four measures, each with its peers in the same run:

1. Sequential investments from one client, with distinct idempotency keys, in a pool of 1,000
   members: ``ledger.invest`` on each backend against the same row changes written by hand (lock
   the pool's row, read the member, update the pool's head and totals, insert the entry with its
   SHA-256, update the member, insert the receipt, number the change and insert it in the feed)
   through SQLAlchemy Core and through the bare driver (psycopg, sqlite3), and on PostgreSQL
   against pgbench's TPC-B-like transaction (three balance updates, a select and a history
   insert) on the same server. In memory the peer is the same changes made to plain
   dictionaries under a lock.
2. Investments against the pool's size: the same on pools of 10 and 1,000 members (10,000 with
   ``--big``): the figures should not move with the size.
3. A distribution over 100 and 1,000 members (10,000 with ``--big``), against a hand-written
   set-based distribution in SQL (one UPDATE and one INSERT ... SELECT over the members, integer
   pro rata, no exact split and no audit hashes: a floor).
4. Concurrent clients on PostgreSQL, each its own process with its own connection: 1, 8 and 32
   clients investing in one pool, and in 100 pools; pgbench's TPC-B with as many clients on
   scale 1 (one branch row every transaction updates: the same queue as one pool).

On PostgreSQL the ledger also runs with ``pipeline=False`` (each write's commit sent after its
statement rather than with it), one client and over 100 pools.

5. Batches: ``invest_many`` of 1,000 investments (``--batch``) against the same investments one
   by one, on each backend, with the client's CPU time per investment of each (the rest of the
   wall clock is the server's and the wait for it).

Rounds are interleaved (every peer once a round, :func:`benchmarks.timing.staged`) and each
peer's median round is kept; latencies (p50, p99) are every write of every round. Answers are
checked after the runs: ``verify()`` and the pool's totals for the ledger, the sums of the
tables for the hand-written peers, TPC-B's balances for pgbench.

Results go to benchmarks/results/ledger.{md,json} (``--out`` for another directory).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from auptimate_core import Investor, Pool, PoolLedger
from auptimate_core.backends.sql.tables import ledger_tables
from auptimate_core.testing.servers import PostgresServer

from .timing import staged

RESULTS = Path(__file__).parent / "results"
AMOUNT = Decimal("25.00")
UNITS = 250_000  # AMOUNT in the tables' units (1/10,000)
MANAGER = "m"

Timed = tuple[float, list[float]]  # (seconds, latency of each write)


def _quantiles(latencies: list[float]) -> dict[str, float]:
    kept = sorted(latencies)
    if len(kept) < 2:
        return {"p50_ms": round(kept[0] * 1000, 3) if kept else 0.0, "p99_ms": 0.0}
    cuts = statistics.quantiles(kept, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def _figures(best: float, writes: int, latencies: list[float], checked: bool) -> dict[str, Any]:
    return {"seconds": round(best / writes, 9), "per_second": round(writes / best, 1),
            "writes": writes, **_quantiles(latencies), "checked": checked}


def _timed(write: Callable[[int], None], first: int, n: int) -> Timed:
    latencies = []
    start = time.perf_counter()
    for k in range(first, first + n):
        began = time.perf_counter()
        write(k)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - start, latencies


class Rounds:
    """A peer that writes ``n`` more each time it is called, keeping every latency."""

    def __init__(self, write: Callable[[int], None], n: int) -> None:
        self.write, self.n, self.done, self.latencies = write, n, 0, list[float]()

    def __call__(self) -> None:
        _, latencies = _timed(self.write, self.done, self.n)
        self.done += self.n
        self.latencies += latencies


def run_peers(peers: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each peer's round over interleaved rounds (every peer once a round:
    a slow spell of the machine falls on every peer alike)."""
    def ready(peer: Callable[[], Any]) -> Callable[[], Callable[[], Any]]:
        return lambda: peer

    timings = staged({name: ready(peer) for name, peer in peers.items()}, rounds)
    return {name: timing.median for name, timing in timings.items()}


# -- the ledger ---------------------------------------------------------------------------------


def member_id(pool_id: str, n: int) -> str:
    return f"{pool_id}-i{n:05}"


def seed_pool(ledger: PoolLedger, pool_id: str, members: int) -> None:
    """A pool of ``members`` investors who each invested 100."""
    ledger.create_pool(Pool(pool_id, MANAGER), actor=MANAGER)
    for n in range(members):
        investor = member_id(pool_id, n)
        ledger.register_investor(Investor(investor))
        ledger.admit(pool_id, investor, actor=MANAGER)
        ledger.invest(pool_id, investor, Decimal(100), actor=investor,
                      idempotency_key=f"{pool_id}/seed/{n}")


def ledger_writer(ledger: PoolLedger, pool_id: str, members: int) -> Callable[[int], None]:
    def write(k: int) -> None:
        investor = member_id(pool_id, k % members)
        ledger.invest(pool_id, investor, AMOUNT, actor=investor,
                      idempotency_key=f"{pool_id}/bench/{k}")

    return write


def check_ledger(ledger: PoolLedger, pool_id: str, members: int, writes: int) -> bool:
    ledger.verify()
    totals = ledger.pool_totals(pool_id)
    positions = ledger.positions(pool_id)
    return (totals.invested == Decimal(100) * members + AMOUNT * writes
            and sum(p.invested for p in positions) == totals.invested
            and len(positions) == members)


# -- hand-written peers ------------------------------------------------------------------------


def _entry_hash(pool_id: str, seq: int, investor: str, prev: str) -> str:
    text = json.dumps([pool_id, seq, "investment", investor, UNITS, prev])
    return hashlib.sha256(text.encode()).hexdigest()


class DictPeer:
    """The changes of an investment made to plain dictionaries under a lock (the floor)."""

    def __init__(self, members: int) -> None:
        self.lock = threading.Lock()
        self.members = {member_id("d", n): Decimal(100) for n in range(members)}
        self.totals = {"invested": Decimal(100) * members, "seq": 0, "hash": "0" * 64}
        self.entries: list[tuple[Any, ...]] = []
        self.receipts: dict[str, int] = {}
        self.feed: list[str] = []

    def write(self, k: int) -> None:
        investor = member_id("d", k % len(self.members))
        with self.lock:
            if f"d/{k}" in self.receipts or investor not in self.members:
                raise ValueError("a peer's write refused")
            seq = int(self.totals["seq"]) + 1
            digest = _entry_hash("d", seq, investor, str(self.totals["hash"]))
            self.entries.append((seq, investor, AMOUNT, digest))
            self.members[investor] += AMOUNT
            self.totals.update(invested=self.totals["invested"] + AMOUNT, seq=seq, hash=digest)
            self.receipts[f"d/{k}"] = seq
            self.feed.append(json.dumps({"pool_id": "d", "investor_id": investor,
                                         "amount": str(AMOUNT)}))

    def check(self, members: int, writes: int) -> bool:
        return (sum(self.members.values()) == self.totals["invested"]
                == Decimal(100) * members + AMOUNT * writes and len(self.entries) == writes)


class SqlPeer:
    """The rows of an investment written by hand on the ledger's table definitions, in their own
    schema (PostgreSQL) or file (SQLite)."""

    POOL = "h"

    def __init__(self, url: str, members: int, schema: str | None) -> None:
        self.engine = sa.create_engine(url)
        self.t = ledger_tables(schema, prefix="peer_")
        if schema is not None:
            with self.engine.begin() as conn:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        self.t.metadata.create_all(self.engine)
        t = self.t
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.pools).values(
                id=self.POOL, manager_id=MANAGER, name="", currency="USD", head_seq=0,
                head_hash="0" * 64, invested=1_000_000 * members))
            conn.execute(sa.insert(t.members), [
                {"pool_id": self.POOL, "investor_id": member_id(self.POOL, n),
                 "invested": 1_000_000} for n in range(members)])
            conn.execute(sa.insert(t.feed_head).values(id=1, identity="peer", position=0))
        self.members = members
        self.postgres = self.engine.dialect.name == "postgresql"
        self.name = {name: self.engine.dialect.identifier_preparer.format_table(table)
                     for name, table in (("pools", t.pools), ("members", t.members),
                                         ("entries", t.entries), ("receipts", t.receipts),
                                         ("head", t.feed_head), ("feed", t.feed))}

    def _event(self, investor: str, seq: int) -> str:
        return json.dumps({"type": "Invested", "pool_id": self.POOL, "seq": seq,
                           "investor_id": investor, "amount": str(AMOUNT)})

    def core(self, k: int) -> None:
        """One investment through SQLAlchemy Core, statements written inline."""
        t, pool_id = self.t, self.POOL
        investor = member_id(pool_id, k % self.members)
        with self.engine.begin() as conn:
            pool = conn.execute(sa.select(t.pools).where(t.pools.c.id == pool_id)
                                .with_for_update()).one()
            member = conn.execute(sa.select(t.members).where(
                t.members.c.pool_id == pool_id, t.members.c.investor_id == investor)).one()
            seq = pool.head_seq + 1
            digest = _entry_hash(pool_id, seq, investor, pool.head_hash)
            conn.execute(sa.update(t.pools).where(t.pools.c.id == pool_id).values(
                head_seq=seq, head_hash=digest, invested=pool.invested + UNITS))
            conn.execute(sa.insert(t.entries).values(
                pool_id=pool_id, seq=seq, kind="investment", investor_id=investor,
                amount=UNITS, at_us=int(time.time() * 1e6), actor=investor, detail="",
                prev_hash=pool.head_hash, hash=digest))
            conn.execute(sa.update(t.members).where(
                t.members.c.pool_id == pool_id, t.members.c.investor_id == investor)
                .values(invested=member.invested + UNITS))
            conn.execute(sa.insert(t.receipts).values(
                key=f"core/{k}", fingerprint=digest, action="invest", pool_id=pool_id,
                first_seq=seq, count=1))
            position = conn.execute(sa.update(t.feed_head).where(t.feed_head.c.id == 1)
                                    .values(position=t.feed_head.c.position + 1)
                                    .returning(t.feed_head.c.position)).scalar_one()
            conn.execute(sa.insert(t.feed).values(
                position=position, at_us=int(time.time() * 1e6), type="Invested",
                pool_id=pool_id, event=self._event(investor, seq)))

    def driver(self) -> Callable[[int], None]:
        """One investment on the bare driver's connection (psycopg or sqlite3), SQL by hand."""
        raw: Any = self.engine.raw_connection().driver_connection
        n, pool_id = self.name, self.POOL
        mark = "%s" if self.postgres else "?"
        lock = " FOR UPDATE" if self.postgres else ""
        begin = "BEGIN" if self.postgres else "BEGIN IMMEDIATE"
        if not self.postgres:
            raw.isolation_level = None  # explicit BEGIN IMMEDIATE, like the ledger's

        def sql(text: str) -> str:
            return text.replace("?", mark)

        statements = {
            "pool": sql(f"SELECT head_seq, head_hash, invested FROM {n['pools']} "
                        f"WHERE id = ?{lock}"),
            "member": sql(f"SELECT invested FROM {n['members']} "
                          "WHERE pool_id = ? AND investor_id = ?"),
            "head": sql(f"UPDATE {n['pools']} SET head_seq = ?, head_hash = ?, invested = ? "
                        "WHERE id = ?"),
            "entry": sql(f"INSERT INTO {n['entries']} (pool_id, seq, kind, investor_id, "
                         "amount, at_us, actor, detail, prev_hash, hash) "
                         "VALUES (?, ?, 'investment', ?, ?, ?, ?, '', ?, ?)"),
            "held": sql(f"UPDATE {n['members']} SET invested = ? "
                        "WHERE pool_id = ? AND investor_id = ?"),
            "receipt": sql(f'INSERT INTO {n["receipts"]} ("key", fingerprint, action, '
                           "pool_id, first_seq, count) VALUES (?, ?, 'invest', ?, ?, 1)"),
            "position": f"UPDATE {n['head']} SET position = position + 1 WHERE id = 1 "
                        "RETURNING position",
            "feed": sql(f"INSERT INTO {n['feed']} (position, at_us, type, pool_id, event) "
                        "VALUES (?, ?, 'Invested', ?, ?)"),
        }

        def write(k: int) -> None:
            investor = member_id(pool_id, k % self.members)
            with contextlib.closing(raw.cursor()) as cur:
                _write(cur, k, investor)

        def _write(cur: Any, k: int, investor: str) -> None:
            if not self.postgres:
                cur.execute(begin)
            try:
                seq, prev, invested = cur.execute(statements["pool"], (pool_id,)).fetchone()
                (held,) = cur.execute(statements["member"], (pool_id, investor)).fetchone()
                seq += 1
                digest = _entry_hash(pool_id, seq, investor, prev)
                now = int(time.time() * 1e6)
                cur.execute(statements["head"], (seq, digest, invested + UNITS, pool_id))
                cur.execute(statements["entry"], (pool_id, seq, investor, UNITS, now, investor,
                                                  prev, digest))
                cur.execute(statements["held"], (held + UNITS, pool_id, investor))
                cur.execute(statements["receipt"], (f"driver/{k}", digest, pool_id, seq))
                (position,) = cur.execute(statements["position"]).fetchone()
                cur.execute(statements["feed"], (position, now, pool_id,
                                                 self._event(investor, seq)))
                raw.commit() if self.postgres else cur.execute("COMMIT")
            except BaseException:
                raw.rollback() if self.postgres else cur.execute("ROLLBACK")
                raise

        return write

    def check(self, writes: int) -> bool:
        t = self.t
        with self.engine.connect() as conn:
            held = conn.execute(sa.select(sa.func.sum(t.members.c.invested))).scalar_one()
            pool = conn.execute(sa.select(t.pools.c.invested)).scalar_one()
            entries = conn.execute(sa.select(sa.func.count()).select_from(t.entries)).scalar()
            changes = conn.execute(sa.select(sa.func.count()).select_from(t.feed)).scalar()
        return (held == pool == 1_000_000 * self.members + UNITS * writes
                and entries == writes and changes == writes)

    def close(self) -> None:
        self.engine.dispose()


# -- pgbench ----------------------------------------------------------------------------------


class Pgbench:
    """pgbench's built-in TPC-B-like script on the test server, scale 1."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        found = sorted(glob.glob(str(server.bindir / "pgbench")))
        if not found:
            raise RuntimeError(f"no pgbench beside {server.bindir}/postgres")
        self.exe = found[0]
        self.logs = server.directory / "pgbench"
        self.logs.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.logs, "postgres", "postgres")
        self.run("-i", "-s", "1", "-q")
        self.transactions = 0

    def run(self, *args: str) -> str:
        command = [self.exe, "-h", "127.0.0.1", "-p", str(self.server.port), "-U", "postgres",
                   *args, self.server.database]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
        return done.stdout

    def tpcb(self, clients: int, per_client: int) -> tuple[float, list[float]]:
        """(transactions per second without connecting, latencies in seconds)."""
        for old in self.logs.glob("log*"):
            old.unlink()
        out = self.run("-n", "-c", str(clients), "-j", str(min(clients, 2)), "-t",
                       str(per_client), "-l", f"--log-prefix={self.logs}/log")
        found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
        done = re.search(r"number of transactions actually processed: (\d+)", out)
        if found is None or done is None:
            raise RuntimeError(f"pgbench said: {out[-2000:]}")
        self.transactions += int(done.group(1))
        latencies = [int(line.split()[2]) / 1e6 for path in self.logs.glob("log*")
                     for line in path.read_text().splitlines() if line.strip()]
        return float(found.group(1)), latencies

    def check(self) -> bool:
        engine = sa.create_engine(self.server.url())
        with engine.connect() as conn:
            history = conn.execute(sa.text("SELECT count(*), coalesce(sum(delta), 0) "
                                           "FROM pgbench_history")).one()
            sums = [conn.execute(sa.text(f"SELECT sum({c}balance) FROM pgbench_{t}")).scalar()
                    for c, t in (("a", "accounts"), ("b", "branches"), ("t", "tellers"))]
        engine.dispose()
        return history[0] == self.transactions and len(set([*sums, history[1]])) == 1


# -- 1 and 2: sequential investments ----------------------------------------------------------


def sequential(backend: str, url: str | None, sizes: list[int], writes: int, rounds: int,
               server: PostgresServer | None, directory: Path) -> dict[str, Any]:
    """Our investments at each pool size, and the peers at the largest, interleaved."""
    ledgers: dict[int, PoolLedger] = {}
    peers: dict[str, Rounds] = {}
    names: dict[int, str] = {}
    for size in sizes:
        where = url if url is not None else "memory://"
        if backend == "sqlite":
            where = f"sqlite:///{directory / f'ledger-{size}.db'}"
        options: dict[str, Any] = {"schema": f"ledger_{size}"} if backend == "postgresql" else {}
        ledger = PoolLedger.from_url(where, **options)
        seed_pool(ledger, "p", size)
        ledgers[size] = ledger
        names[size] = f"ledger.invest, {size:,}-member pool"
        peers[names[size]] = Rounds(ledger_writer(ledger, "p", size), writes)
    largest = max(sizes)
    apart = f"ledger.invest, {largest:,}-member pool, commit sent apart (pipeline=False)"
    if backend == "postgresql":
        ledger = PoolLedger.from_url(str(url), schema="ledger_apart", pipeline=False)
        seed_pool(ledger, "p", largest)
        ledgers[-1] = ledger
        peers[apart] = Rounds(ledger_writer(ledger, "p", largest), writes)
    sql_peers: dict[str, SqlPeer] = {}
    dict_peer: DictPeer | None = None
    bench: Pgbench | None = None
    if backend == "memory":
        dict_peer = DictPeer(largest)
        peers["hand-written: plain dicts under a lock"] = Rounds(dict_peer.write, writes)
    else:
        driver = "psycopg" if backend == "postgresql" else "sqlite3"
        for kind in ("core", "driver"):
            peer_url = (f"sqlite:///{directory / f'peer-{kind}.db'}" if backend == "sqlite"
                        else str(url))
            sql_peers[kind] = SqlPeer(peer_url, largest,
                                      f"peer_{kind}" if backend == "postgresql" else None)
        peers["hand-written: SQLAlchemy Core transaction"] = Rounds(sql_peers["core"].core,
                                                                   writes)
        peers[f"hand-written: {driver} transaction"] = Rounds(sql_peers["driver"].driver(),
                                                             writes)
    pgbench_rates: list[float] = []
    pgbench_latencies: list[float] = []
    everyone: dict[str, Callable[[], Any]] = dict(peers)
    if server is not None:
        bench = Pgbench(server)

        def tpcb() -> None:
            rate, latencies = bench.tpcb(1, writes)  # type: ignore[union-attr]
            pgbench_rates.append(rate)
            pgbench_latencies.extend(latencies)

        everyone["pgbench TPC-B-like, 1 client"] = tpcb
    best = run_peers(everyone, rounds)
    rows: dict[str, dict[str, Any]] = {}
    by_size: dict[str, dict[str, Any]] = {}
    for size in sizes:
        peer = peers[names[size]]
        row = _figures(best[names[size]], writes, peer.latencies,
                       check_ledger(ledgers[size], "p", size, peer.done))
        by_size[str(size)] = row
        if size == largest:
            rows[names[size]] = row
    if apart in peers:
        rows[apart] = _figures(best[apart], writes, peers[apart].latencies,
                               check_ledger(ledgers[-1], "p", largest, peers[apart].done))
    for name, peer in peers.items():
        if name.startswith("hand-written"):
            kind = "core" if "SQLAlchemy" in name else "driver"
            checked = (dict_peer.check(largest, peer.done) if dict_peer is not None
                       else sql_peers[kind].check(peer.done))
            rows[name] = _figures(best[name], writes, peer.latencies, checked)
    if bench is not None:
        rate = statistics.median(pgbench_rates)
        rows["pgbench TPC-B-like, 1 client"] = {
            "seconds": round(1 / rate, 9), "per_second": round(rate, 1), "writes": writes,
            **_quantiles(pgbench_latencies), "checked": bench.check()}
    for ledger in ledgers.values():
        ledger.close()
    for sql_peer in sql_peers.values():
        sql_peer.close()
    return {"peers": rows, "sizes": by_size}


# -- batches --------------------------------------------------------------------------------


def batches(backend: str, url: str | None, members: int, writes: int, batch: int,
            rounds: int, directory: Path) -> dict[str, Any]:
    """Investments one by one against ``invest_many`` batches of ``batch``, interleaved, each on
    a pool of ``members`` members in its own storage: ``writes`` one by one and ``batch * 4``
    in batches a round."""
    ledgers: dict[str, PoolLedger] = {}
    for kind in ("one", "many"):
        where = url if url is not None else "memory://"
        if backend == "sqlite":
            where = f"sqlite:///{directory / f'batch-{kind}.db'}"
        options: dict[str, Any] = {"schema": f"batch_{kind}"} if backend == "postgresql" else {}
        ledgers[kind] = PoolLedger.from_url(where, **options)
        seed_pool(ledgers[kind], "p", members)
    one = Rounds(ledger_writer(ledgers["one"], "p", members), writes)
    done = [0]
    latencies: list[float] = []

    def many(ledger: PoolLedger = ledgers["many"]) -> None:
        for _ in range(4):
            first = done[0]
            items = [("p", member_id("p", k % members), AMOUNT, member_id("p", k % members),
                      f"p/batch/{k}") for k in range(first, first + batch)]
            began = time.perf_counter()
            ledger.invest_many(items)
            latencies.append(time.perf_counter() - began)
            done[0] += batch

    by_one = f"ledger.invest, one by one, {members:,}-member pool"
    batched = f"ledger.invest_many, batches of {batch:,}, {members:,}-member pool"
    cpu = {batched: 0.0, by_one: 0.0}

    def on_cpu(name: str, peer: Callable[[], Any]) -> Callable[[], None]:
        """``peer``, adding the CPU time of this process it takes to ``cpu[name]``."""
        def run() -> None:
            start = time.process_time()
            peer()
            cpu[name] += time.process_time() - start
        return run

    median = run_peers({batched: on_cpu(batched, many), by_one: on_cpu(by_one, one)}, rounds)
    rows = {
        batched: {**_figures(median[batched], batch * 4, [], check_ledger(
            ledgers["many"], "p", members, done[0])), **{
            f"batch_{k}": v for k, v in _quantiles(latencies).items()},
            "client_cpu_us": round(cpu[batched] / done[0] * 1e6, 1)},
        by_one: {**_figures(median[by_one], writes, one.latencies,
                            check_ledger(ledgers["one"], "p", members, one.done)),
                 "client_cpu_us": round(cpu[by_one] / one.done * 1e6, 1)},
    }
    for ledger in ledgers.values():
        ledger.close()
    return {"peers": rows, "batch": batch, "members": members}


# -- 3: distributions -------------------------------------------------------------------------


class SetBasedDistribution:
    """A distribution written as two set-based statements over the members (the floor)."""

    def __init__(self, peer: SqlPeer) -> None:
        self.peer = peer
        n = peer.name
        self.update = sa.text(
            f"UPDATE {n['members']} SET distributed = distributed + "
            "(invested - refunded) * :total / :capital WHERE pool_id = :pid")
        self.insert = sa.text(
            f"INSERT INTO {n['entries']} (pool_id, seq, kind, investor_id, amount, at_us, "
            "actor, detail, prev_hash, hash) SELECT pool_id, :head + row_number() OVER "
            "(ORDER BY investor_id), 'distribution', investor_id, "
            "(invested - refunded) * :total / :capital, :now, :actor, '', '', '' "
            f"FROM {n['members']} WHERE pool_id = :pid")
        self.done = 0

    def __call__(self) -> None:
        t, pool_id, total = self.peer.t, SqlPeer.POOL, 10_000 * 1_000 * self.peer.members
        with self.peer.engine.begin() as conn:
            pool = conn.execute(sa.select(t.pools).where(t.pools.c.id == pool_id)
                                .with_for_update()).one()
            capital = pool.invested - pool.refunded
            conn.execute(self.update, {"total": total, "capital": capital, "pid": pool_id})
            conn.execute(self.insert, {"total": total, "capital": capital, "pid": pool_id,
                                       "head": pool.head_seq, "now": int(time.time() * 1e6),
                                       "actor": MANAGER})
            conn.execute(sa.update(t.pools).where(t.pools.c.id == pool_id).values(
                head_seq=pool.head_seq + self.peer.members,
                distributed=pool.distributed + total))
            position = conn.execute(sa.update(t.feed_head).where(t.feed_head.c.id == 1)
                                    .values(position=t.feed_head.c.position + 1)
                                    .returning(t.feed_head.c.position)).scalar_one()
            conn.execute(sa.insert(t.feed).values(position=position, at_us=0,
                                                  type="Distributed", pool_id=pool_id,
                                                  event="{}"))
        self.done += 1

    def check(self) -> bool:
        t = self.peer.t
        with self.peer.engine.connect() as conn:
            paid = conn.execute(sa.select(sa.func.sum(t.members.c.distributed))).scalar_one()
            entries = conn.execute(sa.select(sa.func.count()).select_from(t.entries)).scalar()
        total = 10_000 * 1_000 * self.peer.members * self.done
        return paid <= total and entries == self.peer.members * self.done


def distributions(backend: str, url: str | None, sizes: list[int], rounds: int,
                  directory: Path) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for size in sizes:
        where = url if url is not None else "memory://"
        if backend == "sqlite":
            where = f"sqlite:///{directory / f'distribute-{size}.db'}"
        options: dict[str, Any] = ({"schema": f"distribute_{size}"} if backend == "postgresql"
                                   else {})
        ledger = PoolLedger.from_url(where, **options)
        seed_pool(ledger, "p", size)
        done = [0]
        latencies: list[float] = []

        def ours(ledger: PoolLedger = ledger, done: list[int] = done,
                 latencies: list[float] = latencies, size: int = size) -> None:
            began = time.perf_counter()
            txs = ledger.distribute("p", Decimal(1_000 * size), actor=MANAGER,
                                    idempotency_key=f"d/{done[0]}")
            latencies.append(time.perf_counter() - began)
            done[0] += 1
            assert len(txs) == size and sum(tx.amount for tx in txs) == 1_000 * size

        peers: dict[str, Callable[[], Any]] = {f"ledger.distribute, {size:,} members": ours}
        floor: SetBasedDistribution | None = None
        if backend != "memory":
            peer_url = (f"sqlite:///{directory / f'peer-distribute-{size}.db'}"
                        if backend == "sqlite" else str(url))
            floor = SetBasedDistribution(SqlPeer(peer_url, size, f"peer_distribute_{size}"
                                                 if backend == "postgresql" else None))
            peers[f"hand-written set-based SQL, {size:,} members"] = floor
        best = run_peers(peers, rounds)
        ledger.verify()
        paid = ledger.pool_totals("p").distributed
        rows[f"ledger.distribute, {size:,} members"] = {
            "seconds": round(best[f"ledger.distribute, {size:,} members"], 6),
            "members": size, **_quantiles(latencies),
            "checked": paid == Decimal(1_000 * size * done[0])}
        ledger.close()
        if floor is not None:
            rows[f"hand-written set-based SQL, {size:,} members"] = {
                "seconds": round(best[f"hand-written set-based SQL, {size:,} members"], 6),
                "members": size, "checked": floor.check()}
            floor.peer.close()
    return {"peers": rows}


# -- 4: concurrent clients on PostgreSQL -----------------------------------------------------


def _client(url: str, schema: str, client: int, pools: list[str], writes: int, ready: Any,
            go: Any, out: Any, pipeline: bool) -> None:
    ledger = PoolLedger.from_url(url, schema=schema, pipeline=pipeline)
    investor = f"c{client:02}"
    ledger.invest(pools[0], investor, AMOUNT, actor=investor,
                  idempotency_key=f"{investor}/warm")  # connects before the clock starts
    ready.put(client)
    go.wait(120)
    latencies, errors = [], 0
    start = time.monotonic()
    for k in range(writes):
        pool_id = pools[(client + k) % len(pools)]
        began = time.perf_counter()
        try:
            ledger.invest(pool_id, investor, AMOUNT, actor=investor,
                          idempotency_key=f"{investor}/{k}")
        except Exception:  # counted and reported: a failed write is a finding
            errors += 1
        latencies.append(time.perf_counter() - began)
    out.put((start, time.monotonic(), latencies, errors))
    ledger.close()


def concurrent_clients(url: str, clients: int, pools: int, writes: int,
                       schema: str, pipeline: bool = True) -> dict[str, Any]:
    """``clients`` processes investing ``writes`` times each, spread over ``pools`` pools."""
    setup = PoolLedger.from_url(url, schema=schema)
    names = [f"q{n:03}" for n in range(pools)]
    investors = [f"c{n:02}" for n in range(clients)]
    for investor in investors:
        setup.register_investor(Investor(investor))
    for name in names:
        setup.create_pool(Pool(name, MANAGER), actor=MANAGER)
        for investor in investors:
            setup.admit(name, investor, actor=MANAGER)
    spawn = multiprocessing.get_context("spawn")
    ready, go, out = spawn.Queue(), spawn.Event(), spawn.Queue()
    procs = [spawn.Process(target=_client,
                           args=(url, schema, n, names, writes, ready, go, out, pipeline))
             for n in range(clients)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(60)
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = [x for r in results for x in r[2]]
    errors = sum(r[3] for r in results)
    setup.verify()
    expected = AMOUNT * (writes + 1) * clients
    invested = sum((setup.pool_totals(name).invested for name in names), Decimal(0))
    setup.close()
    total = writes * clients
    return {"seconds": round(seconds / total, 9), "per_second": round(total / seconds, 1),
            "clients": clients, "pools": pools, "writes": total, "errors": errors,
            **_quantiles(latencies), "checked": invested == expected and errors == 0}


def concurrency(server: PostgresServer, client_counts: list[int], writes: int,
                bench: Pgbench) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for clients in client_counts:
        per_client = max(writes // clients, 20)
        who = f"{clients} client{'s' * (clients > 1)}"
        for pools in (1, 100):
            rows[f"ledger.invest, {who}, {pools} pool{'s' * (pools > 1)}"] = (
                concurrent_clients(server.url(), clients, pools, per_client,
                                   f"clients_{clients}_{pools}"))
        rows[f"ledger.invest, {who}, 100 pools, commit sent apart (pipeline=False)"] = (
            concurrent_clients(server.url(), clients, 100, per_client,
                               f"clients_{clients}_apart", pipeline=False))
        rate, latencies = bench.tpcb(clients, per_client)
        rows[f"pgbench TPC-B-like, {who}, scale 1"] = {
            "seconds": round(1 / rate, 9), "per_second": round(rate, 1), "clients": clients,
            "pools": 1, "writes": per_client * clients, "errors": 0,
            **_quantiles(latencies), "checked": bench.check()}
    return {"peers": rows, "note": _scaling_note(rows)}


def _scaling_note(rows: dict[str, dict[str, Any]]) -> str:
    """Each client count's rate on 100 pools against one client's, ours and pgbench's, and
    the cores they shared."""
    said = []
    for prefix, pools in (("ledger.invest", ", 100 pools"), ("pgbench TPC-B-like", ", scale 1")):
        one = rows.get(f"{prefix}, 1 client{pools}")
        if one is None:
            continue
        said += [f"{name}: {row['per_second'] / one['per_second']:.2f}x"
                 for name, row in rows.items()
                 if name.startswith(f"{prefix}, ") and name.endswith(f"clients{pools}")]
    return (f"Each rate against one client's in the same run: {'; '.join(said)}. The machine "
            f"has {os.cpu_count()} cores, shared by the clients and the server; each of our "
            "clients spends its time in Python, pgbench's C client almost none.")


# -- statements per investment ----------------------------------------------------------------


def statements_per_investment(url: str, sizes: list[int], options: dict[str, Any]) -> dict[
        str, int]:
    """SQL statements one investment sends (a SQLAlchemy event listener), per pool size."""
    counts: dict[str, int] = {}
    for size in sizes:
        ledger = PoolLedger.from_url(url, **{k: (f"{v}_{size}" if k == "schema" else v)
                                              for k, v in options.items()})
        engine = ledger.repository.engine  # type: ignore[attr-defined]
        seen: list[str] = []

        def count(*args: Any, seen: list[str] = seen) -> None:
            seen.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", count)
        ledger.invest("p", member_id("p", 0), AMOUNT, actor=member_id("p", 0),
                      idempotency_key="count")
        sa.event.remove(engine, "before_cursor_execute", count)
        counts[str(size)] = len(seen)
        ledger.close()
    return counts


# -- the run ----------------------------------------------------------------------------------


def run(writes: int, rounds: int, sizes: list[int], spread: list[int],
        clients: list[int], batch: int = 1_000) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "writes": writes, "rounds": rounds, "sizes": sizes, "distribution_sizes": spread,
        "sequential": {}, "distribution": {}, "statements": {}, "batches": {}}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
        directory = Path(tmp)
        sqlite = {size: f"sqlite:///{directory / f'ledger-{size}.db'}" for size in sizes}
        for backend, url in (("memory", None), ("sqlite", ""), ("postgresql", server.url())):
            print(f"{backend}: sequential investments", flush=True)
            report["sequential"][backend] = sequential(
                backend, url, sizes, writes, rounds,
                server if backend == "postgresql" else None, directory)
            if backend == "sqlite":
                report["statements"][backend] = {
                    str(size): statements_per_investment(sqlite[size], [size], {})[str(size)]
                    for size in sizes}
            elif backend == "postgresql":
                report["statements"][backend] = statements_per_investment(
                    server.url(), sizes, {"schema": "ledger"})
            print(f"{backend}: batches against one by one", flush=True)
            report["batches"][backend] = batches(backend, url, max(sizes), writes, batch,
                                                 rounds, directory)
            print(f"{backend}: distributions", flush=True)
            report["distribution"][backend] = distributions(backend, url, spread, rounds,
                                                            directory)
        print("postgresql: concurrent clients", flush=True)
        report["concurrency"] = concurrency(server, clients, writes, Pgbench(server))
    return report


def _ratio(ours: float, theirs: float) -> str:
    ratio = theirs / ours
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ledger.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Ledger writes: investments, distributions and concurrent clients",
        "",
        f"Machine: {report['machine']}. {report['writes']:,} writes a round, "
        f"{report['rounds']} interleaved rounds (the median round kept; p50 and p99 over every "
        "write). Ratios are peer time over ours: above 1 ours is faster.",
        "",
    ]
    for backend, section in report["sequential"].items():
        peers = section["peers"]
        ours = next(iter(peers.values()))
        lines += [f"## Sequential investments, one client: {backend}", "",
                  "| peer | writes/s | p50 ms | p99 ms | answers checked | ours is faster by |",
                  "|---|---:|---:|---:|---|---:|"]
        for name, row in peers.items():
            lines.append(f"| {name} | {row['per_second']:,.0f} | {row['p50_ms']} | "
                         f"{row['p99_ms']} | {'yes' if row['checked'] else 'NO'} | "
                         f"{_ratio(ours['seconds'], row['seconds'])} |")
        lines.append("")
    lines += ["## Investments against the pool's size", "",
              "| backend | " + " | ".join(f"{size:,} members: writes/s" for size in
                                         report["sizes"]) + " | statements per investment |",
              "|---|" + "---:|" * (len(report["sizes"]) + 1)]
    for backend, section in report["sequential"].items():
        counts = report["statements"].get(backend, {})
        lines.append(f"| {backend} | " + " | ".join(
            f"{section['sizes'][str(size)]['per_second']:,.0f}" for size in report["sizes"])
            + " | " + (" / ".join(str(counts[str(s)]) for s in report["sizes"]) if counts
                       else "-") + " |")
    if report.get("batches"):
        lines += ["", "## Batches (invest_many) against one by one, one client", "",
                  "| backend | peer | writes/s | p50 ms | p99 ms | client CPU µs a write | "
                  "answers checked | batches are faster by |",
                  "|---|---|---:|---:|---:|---:|---|---:|"]
        for backend, section in report["batches"].items():
            peers = section["peers"]
            batched = next(iter(peers.values()))
            for name, row in peers.items():
                p50 = row.get("batch_p50_ms", row["p50_ms"])
                p99 = row.get("batch_p99_ms", row["p99_ms"])
                lines.append(f"| {backend} | {name} | {row['per_second']:,.0f} | {p50} | {p99} | "
                             f"{row.get('client_cpu_us', '-')} | "
                             f"{'yes' if row['checked'] else 'NO'} | "
                             f"{_ratio(batched['seconds'], row['seconds'])} |")
        lines.append("")
        lines.append("Latencies of a batch are those of the whole batch (every investment in it). "
                     "Client CPU is this process's CPU time (all rounds) over the writes made: "
                     "what a write costs the client, beside the server's time in the wall clock.")
    lines += ["", "## Distributions", "",
              "| backend | peer | members | ms per distribution | answers checked |",
              "|---|---|---:|---:|---|"]
    for backend, section in report["distribution"].items():
        for name, row in section["peers"].items():
            lines.append(f"| {backend} | {name} | {row['members']:,} | "
                         f"{row['seconds'] * 1000:.1f} | {'yes' if row['checked'] else 'NO'} |")
    if "concurrency" in report:
        lines += ["", "## Concurrent clients on PostgreSQL (one process each)", "",
                  "| peer | writes/s | p50 ms | p99 ms | errors | answers checked |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, row in report["concurrency"]["peers"].items():
            lines.append(f"| {name} | {row['per_second']:,.0f} | {row['p50_ms']} | "
                         f"{row['p99_ms']} | {row['errors']} | "
                         f"{'yes' if row['checked'] else 'NO'} |")
        lines += ["", report["concurrency"].get("note", "")]
    lines += [
        "",
        "The hand-written transactions write the same rows as an investment on the ledger's "
        "own table definitions and check nothing (no policy, no idempotency lookup, no "
        "event); pgbench's TPC-B-like transaction is five statements run by a C client. The "
        "set-based distribution is a floor: integer pro rata with no exact split and no "
        "audit hashes.",
    ]
    (out / "ledger.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke check")
    parser.add_argument("--big", action="store_true",
                        help="add 10,000-member pools and a distribution over 10,000")
    parser.add_argument("--writes", type=int, default=None, help="writes a round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="investments per batch")
    parser.add_argument("--out", type=Path, default=None,
                        help="where ledger.md and ledger.json go (benchmarks/results/)")
    args = parser.parse_args()
    writes = args.writes or (100 if args.quick else 500)
    rounds = args.rounds or (2 if args.quick else 5)
    sizes = [10, 1_000] + ([10_000] if args.big else [])
    spread = [100, 1_000] + ([10_000] if args.big else [])
    clients = [1, 2, 8] if args.quick else [1, 2, 8, 32]
    if args.quick:
        sizes, spread = [10, 200], [100, 200]
    batch = args.batch or (200 if args.quick else 1_000)
    out = args.out or RESULTS
    write(run(writes, rounds, sizes, spread, clients, batch), out)
    print((out / "ledger.md").read_text())


if __name__ == "__main__":
    main()
