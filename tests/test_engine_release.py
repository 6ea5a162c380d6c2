"""A dropped engine is freed at once, with what its store holds: nothing in it is a reference
cycle left for the cyclic garbage collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import AlertEngine, SpikeRule, ThresholdRule, Transaction
from auptimate_core.alerts import Alert


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _txs(n: int) -> list[Transaction]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [Transaction(f"t{i}", "inv", f"p{i % 3}", Decimal(10 ** (i % 7)),
                        start + timedelta(seconds=i)) for i in range(n)]


def _failing_sink(alert: Alert) -> None:
    raise RuntimeError("down")


@pytest.mark.usefixtures("no_cyclic_gc")
@pytest.mark.parametrize("sinks", [(), (_failing_sink,)], ids=["no sink", "failing sink"])
def test_a_dropped_engine_is_freed_without_the_cyclic_collector(sinks: tuple[object, ...]) -> None:
    engine = AlertEngine([ThresholdRule(limit=Decimal(1000)), SpikeRule(min_count=2)],
                         sinks=sinks)  # type: ignore[arg-type]
    engine.process_many(_txs(50))
    for tx in _txs(60)[50:]:
        engine.process(tx)
    if sinks:
        assert engine.stats.sink_failures > 0  # the failure handler reached the engine
    engine.close()
    gone, store = weakref.ref(engine), weakref.ref(engine.store)
    del engine
    assert gone() is None and store() is None
