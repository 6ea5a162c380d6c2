"""The relay puts every committed ledger transaction into the workers' stream exactly once.

The main test writes a ledger (a SQLite file, then PostgreSQL) from several OS processes while
an `auptimate relay` process, killed with SIGKILL twice and started again, forwards it to four
`auptimate worker` processes: every transaction is in its shard once, in feed order, and the
alert log equals what one engine raises over the ledger's whole history. The others put a
relay's crash between two shards' scripts, replay batches, lose the script cache, point a relay
at another ledger's cursors, and run it on a Redis Cluster.
"""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner

from auptimate_core import Investor, Pool, PoolLedger, Transaction, ValidationError
from auptimate_core.alerts import AlertEngine, SpikeRule, ThresholdRule
from auptimate_core.cli import main as cli_main
from auptimate_core.integrations.redis_streams import decode, lag, read_alerts, shard_of
from auptimate_core.integrations.relay import LedgerRelay, cursor_key
from auptimate_core.testing.servers import RedisClusterServers, RedisServer

pytestmark = pytest.mark.redis

D = Decimal
RULES = [
    ThresholdRule(limit=D("250000")),
    SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=D(10),
              min_count=5),
]
CLI = [sys.executable, "-c", "from auptimate_core.cli import main; main()"]
SHARDS = 8
WRITERS = 3
WRITES = 30
SHARED = [f"p{n}" for n in range(4)]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def stream() -> str:
    return f"relay-{uuid.uuid4().hex[:10]}"


def feed_transactions(ledger: PoolLedger) -> list[Transaction]:
    """Every transaction of the ledger's whole history, in feed order."""
    txs: list[Transaction] = []
    after = None
    while page := ledger.changes(after=after, limit=100):
        txs += [tx for change in page for tx in change.event.transactions]
        after = page[-1].cursor
    return txs


def assert_exactly_once(client: Any, stream: str, ledger: PoolLedger, shards: int) -> None:
    """Each of the ledger's transactions is in its pool's shard once, in feed order."""
    txs = feed_transactions(ledger)
    found: list[Transaction] = []
    for shard in range(shards):
        entries = [decode(fields) for _, fields in client.xrange(f"{stream}:{shard}")]
        assert entries == [tx for tx in txs if shard_of(tx.pool_id, shards) == shard], shard
        found += entries
    counts = Counter(tx.id for tx in found)
    assert all(n == 1 for n in counts.values())
    assert set(counts) == {tx.id for tx in txs}


def small_ledger(pools: int = 6, each: int = 3) -> PoolLedger:
    ledger = PoolLedger()
    ledger.register_investor(Investor("a"))
    for p in range(pools):
        ledger.create_pool(Pool(f"pool-{p}", "m"), actor="m")
        ledger.admit(f"pool-{p}", "a", actor="m")
        for i in range(each):
            ledger.invest(f"pool-{p}", "a", D(100 + i), actor="a", idempotency_key=f"{p}/{i}")
    ledger.distribute("pool-1", D("30"), actor="m", idempotency_key="d1")
    ledger.charge_fee("pool-2", D("3"), actor="m", idempotency_key="f1")
    ledger.refund("pool-3", "a", D("5"), actor="m", idempotency_key="r1")
    return ledger


# -- the keys -----------------------------------------------------------------------------------


def test_each_cursor_shares_its_shard_streams_hash_slot() -> None:
    from redis.crc import key_slot

    for shard_key in ("tx:0", "auptimate:transactions:15", "{tx}:3", "a{b}c:2", "x{:1",
                      "{{x}:2"):
        key = cursor_key(shard_key, "relay")
        assert key_slot(key.encode()) == key_slot(shard_key.encode()), shard_key
    assert cursor_key("tx:3", "relay") == "{tx:3}:cursor:relay"
    for untagged in ("a}b:1", "x{}:4", "x{}y}:5"):  # hashed whole, and no tag can wrap them
        with pytest.raises(ValidationError, match="stream"):
            cursor_key(untagged, "relay")


def test_bad_arguments_are_refused_by_name(client: redis.Redis, stream: str) -> None:
    ledger = PoolLedger()
    with pytest.raises(ValidationError, match="batch"):
        LedgerRelay(ledger, client, stream, batch=0)
    with pytest.raises(ValidationError, match="name"):
        LedgerRelay(ledger, client, stream, name="")
    with pytest.raises(ValidationError, match="wake"):
        LedgerRelay(ledger, client, stream, wake=0)
    LedgerRelay(ledger, client, stream, shards=4, wake=0.2)
    with pytest.raises(ValidationError, match="shards"):
        LedgerRelay(ledger, client, stream, shards=8)
    assert LedgerRelay(ledger, client, stream).shards == 4


# -- crashes at the points a SIGKILL may land -----------------------------------------------------


def test_a_crash_between_two_shards_scripts_is_completed_once(client: redis.Redis,
                                                               stream: str) -> None:
    ledger = small_ledger()
    changes = ledger.changes()
    first = LedgerRelay(ledger, client, stream, shards=4, wake=0.2)
    assert first.send(changes[:8], after=0) > 0
    # The next batch reached two shards before the relay died: their scripts ran, the
    # others' did not.
    calls = first._calls(changes[8:20], after=8)
    done = [0, 2]
    for shard in done:
        client.evalsha(first._sha, 2, first._streams[shard], first._cursors[shard],
                       *calls[shard])
    assert first.position().count == 8
    partial = sum(len(client.xrange(first._streams[shard])) for shard in done)

    again = LedgerRelay(ledger, client, stream, wake=0.2)
    end = again.run(until_idle=0.2)
    assert end.count == len(changes) and end.cursor == changes[-1].cursor
    assert again.position() == end
    assert_exactly_once(client, stream, ledger, 4)
    assert 0 < again.already <= partial
    assert again.appended + again.already + first.appended == len(feed_transactions(ledger))


def test_a_batch_sent_again_appends_nothing_twice(client: redis.Redis, stream: str) -> None:
    ledger = small_ledger()
    changes = ledger.changes()
    relay = LedgerRelay(ledger, client, stream, shards=4, wake=0.2)
    total = len(feed_transactions(ledger))
    assert relay.send(changes[:15], after=0) > 0
    assert relay.send(changes[:15], after=0) == 0  # the reply was lost: sent again
    assert relay.send(changes[:10], after=0) == 0  # an older batch: nothing moves back
    with pytest.raises(ValidationError, match="after: .*at change 15, before this batch"):
        relay.send(changes[20:], after=20)  # changes 16 to 20 would be skipped
    with pytest.raises(ValidationError, match="after"):
        relay.send(changes, after=-1)
    relay.send(changes, after=0)  # overlapping: only what is past each cursor
    assert relay.appended == total
    assert_exactly_once(client, stream, ledger, 4)
    client.script_flush()  # a restarted Redis has no scripts: loaded again on NOSCRIPT
    ledger.invest("pool-0", "a", D(9), actor="a", idempotency_key="after-flush")
    assert relay.run(until_idle=0.2).count == len(ledger.changes())
    assert_exactly_once(client, stream, ledger, 4)


def test_a_second_relay_on_the_same_stream_doubles_nothing(client: redis.Redis,
                                                           stream: str) -> None:
    import threading

    ledger = small_ledger(pools=4, each=2)
    relays = [LedgerRelay(ledger, client, stream, shards=4, batch=2, wake=0.2)
              for _ in range(2)]
    threads = [threading.Thread(target=r.run, kwargs={"until_idle": 0.5}) for r in relays]
    for thread in threads:
        thread.start()
    for n in range(20):
        ledger.invest(f"pool-{n % 4}", "a", D(10 + n), actor="a", idempotency_key=f"x{n}")
    for thread in threads:
        thread.join(30)
    assert_exactly_once(client, stream, ledger, 4)
    assert sum(r.appended for r in relays) == len(feed_transactions(ledger))


def _relaying(relay: LedgerRelay) -> Any:
    import threading

    thread = threading.Thread(target=relay.run)
    thread.start()
    return thread


def test_redis_away_then_back_the_relay_sends_again(tmp_path: Path) -> None:
    ledger = small_ledger()
    stream = "away"
    with RedisServer(persistent=True, directory=tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        relay = LedgerRelay(ledger, server.url, stream, shards=4, batch=2, wake=0.2)
        thread = _relaying(relay)
        try:
            _wait_for("the backlog", lambda: relay.position().count == len(ledger.changes()))
            server.kill()
            for n in range(6):
                ledger.invest(f"pool-{n % 3}", "a", D(20 + n), actor="a",
                              idempotency_key=f"away/{n}")
            time.sleep(0.5)  # the relay retries meanwhile
            server.start()
            _wait_for("the relay to catch up", lambda: relay.position().count
                      == len(ledger.changes()), timeout=30)
        finally:
            relay.stop()
            thread.join(30)
        assert_exactly_once(client, stream, ledger, 4)
        client.close()


def test_when_redis_lost_the_relays_writes_it_sends_them_again(client: redis.Redis,
                                                              stream: str) -> None:
    ledger = small_ledger()
    relay = LedgerRelay(ledger, client, stream, shards=4, wake=0.2)
    thread = _relaying(relay)
    try:
        _wait_for("the backlog", lambda: relay.position().count == len(ledger.changes()))
        # A restart without persistence: the streams and the cursors are gone, not the relay.
        client.delete(*[f"{stream}:{shard}" for shard in range(4)], *relay._cursors)
        ledger.invest("pool-0", "a", D(7), actor="a", idempotency_key="after-loss")
        _wait_for("the relay to send everything again",
                  lambda: relay.position().count == len(ledger.changes()), timeout=30)
    finally:
        relay.stop()
        thread.join(30)
    assert_exactly_once(client, stream, ledger, 4)


def test_cursors_of_another_ledger_are_refused(client: redis.Redis, stream: str) -> None:
    LedgerRelay(small_ledger(), client, stream, shards=4, wake=0.2).run(until_idle=0.1)
    other = LedgerRelay(small_ledger(), client, stream, wake=0.2)
    with pytest.raises(ValidationError, match="another ledger"):
        other.run(until_idle=0.1)
    # Under a name of its own, the other ledger feeds the same stream.
    assert LedgerRelay(small_ledger(), client, stream, name="second", wake=0.2).run(
        until_idle=0.1).count > 0


def test_the_command_refuses_what_it_cannot_relay(redis_url: str) -> None:
    runner = CliRunner()
    done = runner.invoke(cli_main, ["relay", "--ledger", "memory://", "--redis", redis_url])
    assert done.exit_code == 2 and "--ledger" in done.output
    done = runner.invoke(cli_main, ["relay", "--ledger", "sqlite:///x.db", "--redis",
                                    "http://localhost"])
    assert done.exit_code == 2 and "--redis" in done.output
    done = runner.invoke(cli_main, ["relay", "--ledger", "sqlite:///x.db", "--redis", redis_url,
                                    "--until-idle", "soon"])
    assert done.exit_code == 2 and "--until-idle" in done.output


# -- the whole path: writer processes, a relay killed twice, four workers -----------------------


def _setup(ledger: PoolLedger) -> None:
    for pool in [*SHARED, "burst"]:
        ledger.create_pool(Pool(pool, "m"), actor="m")
    for w in range(WRITERS):
        ledger.register_investor(Investor(f"w{w}"))
        for pool in SHARED:
            ledger.admit(pool, f"w{w}", actor="m")
    ledger.admit("burst", "w0", actor="m")


def _write(url: str, writer: int, start: str) -> None:
    """One writer process: investments every 30 s of event time in the shared pools, a few
    large ones; writer 0 also keeps a quiet pool that bursts once half-way."""
    t0 = datetime.fromisoformat(start)
    ledger = PoolLedger.from_url(url)
    me = f"w{writer}"
    try:
        for i in range(WRITES):
            at = t0 + timedelta(seconds=30 * i + writer)
            amount = D(300_000) if i in (7, 21) else D(1_000 + 10 * writer + i)
            ledger.invest(SHARED[(writer + i) % 4], me, amount, actor=me,
                          idempotency_key=f"{me}/{i}", at=at)
            if writer == 0 and i % 3 == 0:
                ledger.invest("burst", me, D(50), actor=me, idempotency_key=f"b/{i}",
                              at=at + timedelta(milliseconds=500))
            if writer == 0 and i == 15:
                for k in range(7):
                    ledger.invest("burst", me, D(60 + k), actor=me, idempotency_key=f"burst/{k}",
                                  at=at + timedelta(seconds=1 + 2 * k))
            time.sleep(0.02)
    finally:
        ledger.close()


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(what: str, condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _ledger_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    admin_url = request.getfixturevalue("postgres_url")
    name = f"relay_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _ledger_url(request.param, tmp_path, request)


def test_a_relay_killed_twice_feeds_four_workers_the_alerts_of_one_engine(
        ledger_url: str, redis_url: str, client: redis.Redis, stream: str) -> None:
    ledger = PoolLedger.from_url(ledger_url)
    _setup(ledger)
    setup_changes = len(ledger.changes())
    relay_args = ["relay", "--ledger", ledger_url, "--redis", redis_url, "--stream", stream,
                  "--shards", str(SHARDS), "--batch", "3"]
    probe = LedgerRelay(ledger, client, stream, shards=SHARDS)
    namespace = f"ns-{stream}"
    workers = [_start(["worker", "--store", redis_url, "--stream", stream, "--quiet",
                       "--namespace", namespace, "--consumer", f"w{n}", "--lease", "1s"])
               for n in range(4)]
    relay = _start(relay_args)
    spawn = multiprocessing.get_context("spawn")
    start = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    writers = [spawn.Process(target=_write, args=(ledger_url, w, start)) for w in range(WRITERS)]
    killed_at: list[int] = []
    try:
        _wait_for("the relay to forward the setup", lambda: probe.position().count
                  >= setup_changes)
        for writer in writers:
            writer.start()
        # First kill: while the writers write.
        _wait_for("investments to be relayed", lambda: probe.position().count
                  >= setup_changes + 12)
        relay.kill()
        relay.wait()
        killed_at.append(probe.position().count)
        # Second kill: a backlog piled up meanwhile; the next relay dies catching up on it.
        time.sleep(0.5)
        relay = _start(relay_args)
        _wait_for("the second relay to move", lambda: probe.position().count > killed_at[0])
        relay.kill()
        relay.wait()
        killed_at.append(probe.position().count)
        relay = _start(relay_args)
        for writer in writers:
            writer.join(60)
            assert writer.exitcode == 0
        # The manager's own moves, as transactions of other kinds.
        at = datetime.fromisoformat(start) + timedelta(minutes=16)
        ledger.charge_fee("p2", D("30"), actor="m", idempotency_key="fee", at=at)
        ledger.distribute("p1", D("1500000"), actor="m", idempotency_key="exit", at=at,
                          carry=D("0.20"))
        total = len(ledger.changes(limit=10_000))
        assert killed_at[0] < total
        _wait_for("the relay to catch up", lambda: probe.position().count == total)
        _wait_for("the workers to drain", lambda: lag(client, stream).total == 0)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0, relay.stderr.read().decode() if relay.stderr else ""
    finally:
        for process in [relay, *workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [relay, *workers]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for writer in writers:
            if writer.is_alive():
                writer.kill()
    for worker in workers:
        assert worker.returncode == 0, worker.stderr.read().decode() if worker.stderr else ""

    assert_exactly_once(client, stream, ledger, SHARDS)
    history = feed_transactions(ledger)
    assert {tx.kind for tx in history} == {"investment", "fee", "distribution", "carry"}
    expected = AlertEngine(RULES).process_many(history)
    logged = read_alerts(client, stream)

    def keys(alerts: list[Any]) -> list[tuple[str, str, str, str | None]]:
        return sorted((a.rule, a.state, a.pool_id, a.transaction_id) for a in alerts)

    assert keys(logged) == keys(expected)
    assert sorted(a.key for a in logged) == sorted(a.key for a in expected)
    assert {(a.rule, a.state) for a in expected} >= {("threshold", "firing"),
                                                     ("spike", "firing"),
                                                     ("spike", "resolved")}
    ledger.close()


# -- Redis Cluster ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(redis_cluster: RedisClusterServers) -> Iterator[Any]:
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
    try:
        yield client
    finally:
        client.close()


def test_on_a_redis_cluster_each_shard_keeps_its_cursor_in_its_slot(cluster: Any) -> None:
    ledger = small_ledger(pools=12, each=2)
    stream = f"c{uuid.uuid4().hex[:8]}"
    relay = LedgerRelay(ledger, cluster, stream, shards=6, batch=4, wake=0.2)
    calls = relay._calls(ledger.changes()[:20], after=0)
    cluster.evalsha(relay._sha, 2, relay._streams[1], relay._cursors[1], *calls[1])  # a crash
    assert relay.run(until_idle=0.2).count == len(ledger.changes())
    nodes = set()
    for shard in range(6):
        stream_key, key = relay._streams[shard], relay._cursors[shard]
        assert cluster.keyslot(key) == cluster.keyslot(stream_key)
        nodes.add(cluster.get_node_from_key(stream_key).name)
    assert len(nodes) > 1  # the shards are spread over the nodes, each with its cursor
    assert_exactly_once(cluster, stream, ledger, 6)
