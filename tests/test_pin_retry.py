"""A batch retried after its lifecycle change was applied but its reply lost: the engine
raises the alerts of that change again, from the states its batch found the first time.
On a real redis-server (the memory store cannot lose a reply)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, SpikeRule
from auptimate_core.backends.redis import RedisWindowStore
from auptimate_core.errors import StoreUnavailable
from auptimate_core.store import Transition

pytestmark = pytest.mark.redis

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _LostReply(RedisWindowStore):
    """Applies a lifecycle change, then (once, when told) loses the server's reply."""

    lose_next = False

    def transition(self, transitions: Sequence[Transition]) -> list[bool]:
        applied = super().transition(transitions)
        if self.lose_next:
            self.lose_next = False
            raise StoreUnavailable("the reply was lost")
        return applied


@pytest.fixture
def store(redis_url: str) -> Iterator[_LostReply]:
    s = _LostReply.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    assert isinstance(s, _LostReply)
    yield s
    s.flush_namespace()
    s.close()


def _tx(tx_id: str, seconds: int) -> Transaction:
    return Transaction(tx_id, "i", "p", Decimal(1), T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize("lost", ["firing", "resolved"])
def test_a_lost_reply_of_a_lifecycle_change_is_raised_again(
    store: _LostReply, lost: str
) -> None:
    rule = SpikeRule(window=timedelta(minutes=1), baseline=timedelta(hours=1), factor=10,
                     min_count=3)
    engine = AlertEngine([rule], store=store)
    burst = [_tx(f"b{k}", k) for k in range(3)]
    later = [_tx("q1", 300)]
    if lost == "firing":
        assert engine.process_many(burst[:2]) == []
        batch, expected = burst[2:], [("firing", "b2")]
    else:
        assert [(a.state, a.transaction_id) for a in engine.process_many(burst)] == [
            ("firing", "b2")]
        batch, expected = later, [("resolved", "q1")]
    store.lose_next = True
    with pytest.raises(StoreUnavailable):
        engine.process_many(batch)
    assert [(a.state, a.transaction_id) for a in engine.process_many(batch)] == expected
    assert engine.process_many(batch) == []  # once
