"""The ledger scenarios about the change feed: pages, cursors, JSON, following."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from ...clock import ManualClock
from ...domain import Investor, Pool
from ...errors import PermissionDenied, ValidationError
from ...pools import Change, Distributed, Invested, LedgerEvent, PoolCreated
from .harness import START, D, LedgerHarness


class FeedScenarios(LedgerHarness):
    """The ledger scenarios about the change feed: pages, cursors, JSON, following."""

    def test_the_feed_holds_each_committed_change_once_in_order(self) -> None:
        clock = ManualClock(START)
        ledger = self.ledger(clock=clock)
        assert ledger.changes() == []
        events: list[LedgerEvent] = []
        ledger.subscribe(events.append)
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300)})
        clock.advance(timedelta(minutes=1))
        ledger.distribute("p", D(40), actor="m", idempotency_key="d", carry=D("0.1"))
        ledger.distribute("p", D(40), actor="m", idempotency_key="d", carry=D("0.1"))
        with pytest.raises(PermissionDenied):
            ledger.charge_fee("p", D(1), actor="a", idempotency_key="f")
        ledger.admit("p", "a", actor="m")
        changes = ledger.changes()
        # Refused, replayed and no-op requests are not changes; the feed is what subscribers saw.
        assert [change.event for change in changes] == events
        assert len(changes) == 8
        assert len({change.cursor for change in changes}) == 8
        assert [change.at for change in changes] == [START] * 7 + [START + timedelta(minutes=1)]
        for n, change in enumerate(changes):
            assert ledger.changes(after=change.cursor) == changes[n + 1:]
        assert ledger.changes(after=changes[-1].cursor) == []
        assert ledger.cursor() == changes[-1].cursor

    def test_the_feed_reads_in_pages(self) -> None:
        ledger = self.worked_example()
        everything = ledger.changes(limit=10_000)
        assert len(everything) == 1 + 3 * 10
        pages: list[Change] = []
        cursor = None
        while True:
            page = ledger.changes(after=cursor, limit=7)
            if not page:
                break
            assert len(page) <= 7
            pages += page
            cursor = page[-1].cursor
        assert pages == everything
        assert ledger.changes(limit=1) == everything[:1]
        assert ledger.changes(after=everything[4].cursor, limit=2) == everything[5:7]

    def test_a_bad_limit_is_refused(self) -> None:
        ledger = self.ledger()
        for limit in (0, -1, 10_001, True, 2.0, "5", None):
            with pytest.raises(ValidationError) as caught:
                ledger.changes(limit=limit)  # type: ignore[arg-type]
            assert caught.value.field == "limit"
        assert ledger.changes(limit=10_000) == []

    def test_a_cursor_of_another_ledger_or_garbage_is_refused(self) -> None:
        ledger = self.worked_example()
        other = self.ledger()
        other.create_pool(Pool("q", "m"), actor="m")
        theirs = other.changes()[0].cursor
        ours = ledger.changes()[-1].cursor
        head = ours.rsplit(".", 1)[0]
        bad: list[Any] = [theirs, "", "0", "garbage", ours + "0", ours[:-1] + "g",
                          ours.upper(), f"{head}.{10**6:x}", 17, b"c1"]
        for cursor in bad:
            for read in (ledger.changes, ledger.follow):
                with pytest.raises(ValidationError) as caught:
                    read(after=cursor)
                assert caught.value.field == "after"
        with pytest.raises(ValidationError, match="another ledger"):
            ledger.changes(after=theirs)
        with pytest.raises(ValidationError, match="past the end"):
            ledger.changes(after=f"{head}.{10**6:x}")

    def test_only_the_host_reads_the_feed(self) -> None:
        ledger = self.worked_example()
        for call in (lambda: ledger.changes(actor="lead"), lambda: ledger.cursor(actor="inv01"),
                     lambda: ledger.follow(actor="lead", timeout=0)):
            with pytest.raises(PermissionDenied):
                call()

    def test_every_change_round_trips_through_json(self) -> None:
        ledger = self.worked_example()
        ledger.refund("seed", "inv03", D("0.01"), actor="lead", idempotency_key="r")
        ledger.charge_fee("seed", D("1000"), actor="lead", idempotency_key="f")
        ledger.distribute("seed", D("500000"), actor="lead", idempotency_key="x",
                          carry=D("0.2"))
        ledger.register_investor(Investor("zed", "Zed", "zed@example.com"))
        changes = ledger.changes()
        for change in changes:
            text = json.dumps(change.to_dict())
            assert Change.from_dict(json.loads(text)) == change
            assert type(LedgerEvent.from_dict(change.event.to_dict())) is type(change.event)

    def test_events_carry_what_changed_and_the_totals(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(100), "b": D(300), "c": D(0)})
        tx = ledger.invest("p", "a", D(100), actor="a", idempotency_key="more")
        invested = ledger.changes()[-1].event
        assert isinstance(invested, Invested) and invested.transaction == tx
        assert invested.positions == tuple(p for p in ledger.positions("p")
                                           if p.investor_id == "a")
        assert invested.totals == ledger.pool_totals("p")
        ledger.distribute("p", D(50), actor="m", idempotency_key="d")
        paid = ledger.changes()[-1].event
        assert isinstance(paid, Distributed)
        # c has no capital, so no distribution: untouched, not in the event.
        assert [p.investor_id for p in paid.positions] == ["a", "b"]
        assert paid.totals.distributed == D("50.00")
        created = ledger.changes(limit=1)[0].event
        assert isinstance(created, PoolCreated) and created.positions == ()
        assert created.totals.invested == 0

    def test_follow_yields_changes_committed_by_other_threads(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(1)})
        start = ledger.cursor()
        writes = 12
        seen: list[Change] = []
        listening = threading.Event()

        def follower() -> None:
            # Follows from before the writes; stops once it has them all (or after 20 s).
            iterator = ledger.follow(after=start, timeout=20)
            listening.set()
            for change in iterator:
                seen.append(change)
                if len(seen) == writes:
                    break

        thread = threading.Thread(target=follower)
        thread.start()
        listening.wait(10)
        for n in range(writes):
            ledger.invest("p", "a", D(n + 1), actor="a", idempotency_key=f"k{n}")
        thread.join(30)
        assert not thread.is_alive()
        assert seen == ledger.changes(after=start)
        assert [c.event.transactions[0].amount for c in seen] == [D(n + 1) for n in
                                                                   range(writes)]

    def test_follow_ends_after_the_timeout_without_news(self) -> None:
        ledger = self.ledger()
        self.members(ledger, Pool("p", "m"), {"a": D(1)})
        everything = ledger.changes()
        assert list(ledger.follow(timeout=0)) == everything
        assert list(ledger.follow(after=everything[1].cursor, timeout=0.05)) == everything[2:]
        assert list(ledger.follow(after=ledger.cursor(), timeout=0.01)) == []
        for timeout in (-1, float("nan"), float("inf"), True, "1"):
            with pytest.raises(ValidationError, match="timeout"):
                ledger.follow(timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="batch"):
            ledger.follow(batch=0)

    def test_follow_reads_in_batches(self) -> None:
        ledger = self.worked_example()
        assert list(ledger.follow(timeout=0, batch=4)) == ledger.changes()
