"""Large batches: on PostgreSQL a batch's appends to one pool are written in runs of statements
sent ahead in one pipeline. A batch of many runs over two pools records exactly what the same
commands record one by one (positions, totals, history, the change feed, the audit); a command
refused after runs were sent, or a statement that fails in any run (one sent ahead, or the
last, sent with the commit), writes nothing at all."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from auptimate_core import Investor, LedgerError, PoolLedger
from auptimate_core.pools.unit import scoped_key
from auptimate_core.testing.schemas import scratch_schema
from tests.test_ledger_batch import Command, Opener, batched, one_by_one, open_ledger, setup, state

__all__ = ["open_ledger"]

D = Decimal
RUNS = 700  # commands of one batch: several runs of statements on PostgreSQL


def _commands(investors: int) -> list[Command]:
    """Admissions of ``investors`` new investors to p1, then investments and refunds in p1
    and p2, each investor several times."""
    found: list[Command] = [("admit", "p1", f"n{k}", "m", D(0), "") for k in range(investors)]
    for k in range(RUNS - investors - 20):
        investor = f"n{k % investors}"
        found.append(("invest", "p1", investor, investor, D(1 + k % 7), f"i{k}"))
    for k in range(10):
        found.append(("invest", "p2", "a", "a", D(3), f"j{k}"))
        found.append(("refund", "p1", "a", "m", D(1), f"r{k}"))
    return found


def _registered(ledger: PoolLedger, investors: int) -> PoolLedger:
    setup(ledger)
    for k in range(investors):
        ledger.register_investor(Investor(f"n{k}"))
    return ledger


def test_a_batch_of_many_runs_records_what_one_by_one_records(open_ledger: Opener) -> None:
    # The last command replays a key of the setup: its receipt's entry is read after runs
    # were sent.
    found = [*_commands(150), ("invest", "p1", "a", "a", D(100), "setup0")]
    model, ledger = _registered(open_ledger(), 150), _registered(open_ledger(), 150)
    before = len(ledger.changes(limit=10_000))
    seen: list[object] = []
    ledger.subscribe(seen.append)
    assert batched(ledger, found) == one_by_one(model, found)
    assert state(ledger) == state(model)
    assert seen == [change.event for change in model.changes(limit=10_000)][before:]
    assert ledger.verify() == model.verify()


def test_a_command_refused_after_runs_were_sent_writes_nothing(open_ledger: Opener) -> None:
    ledger = _registered(open_ledger(), 150)
    found = _commands(150)
    found[-1] = ("refund", "p1", "a", "m", D(10**6), "too-much")  # more than a's balance
    before = state(ledger)
    seen: list[object] = []
    ledger.subscribe(seen.append)
    with pytest.raises(LedgerError) as refused:
        batched(ledger, found)
    assert any(f"command {RUNS - 1} of the batch" in note for note in refused.value.__notes__)
    assert state(ledger) == before and seen == []
    found[-1] = ("refund", "p1", "a", "m", D(1), "fine")
    assert len(batched(ledger, found)) == RUNS
    assert ledger.verify() > RUNS


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A new schema of the test server, dropped after."""
    with scratch_schema(postgres_url, "runs") as name:
        yield name


@pytest.mark.postgres
@pytest.mark.parametrize("failing", [160, 400, RUNS - 2, RUNS - 1])
def test_a_statement_failing_in_any_run_writes_nothing(postgres_url: str, schema: str,
                                                       failing: int) -> None:
    ledger = _registered(PoolLedger.from_url(postgres_url, schema=schema), 150)
    found = _commands(150)
    action, pool_id, investor, actor, amount, _ = found[failing]
    found[failing] = (action, pool_id, investor, actor, amount, "boom")
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # a trigger refusing the receipt of the key "boom"
        conn.execute(sa.text(
            f"CREATE FUNCTION {schema}.refuse() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.key = '{scoped_key(actor, 'boom')}' THEN RAISE EXCEPTION 'refused'; "
            "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
        conn.execute(sa.text(f"CREATE TRIGGER refuse BEFORE INSERT ON {schema}.auptimate_receipts "
                             f"FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()"))
    engine.dispose()
    before = state(ledger)
    with pytest.raises(LedgerError, match="ledger database error"):
        batched(ledger, found)
    assert state(ledger) == before
    found[failing] = (action, pool_id, investor, actor, amount, "fine")
    assert len(batched(ledger, found)) == RUNS
    assert ledger.verify() > RUNS
    ledger.close()
