"""Timing peers against each other on a machine whose speed drifts.

A shared two-core machine can run a whole peer 30% slower one minute than the next. Timing
each peer's repeats back to back lets that drift fall on one peer and not on another, so the
ratios between peers say more about the minute than about the code. :func:`interleaved` runs the
peers in rounds instead, every peer once a round, and keeps each peer's best round: a slow spell
costs every peer a round, and no peer's figure depends on when in the run it was taken. Every
peer runs every round, however slow: the same number of tries for ours and for the peers.

:func:`staged` does the same for peers that need an untimed preparation each round (an engine
fed a history first, a table loaded): the preparation runs, then only the call it returns is
timed.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timing:
    """One peer's rounds: every round's seconds in order, and the result of its first run."""

    result: Any
    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """How much slower the worst round was than the best (0.08: 8%): the run's noise."""
        return max(self.times) / self.best - 1


def staged(
    peers: Mapping[str, Callable[[], Callable[[], Any]]], rounds: int
) -> dict[str, Timing]:
    """Each peer's :class:`Timing` over ``rounds`` rounds, every peer once a round in the order
    given: ``peers[name]()`` prepares (untimed) and returns the call that is timed."""
    timings: dict[str, Timing] = {}
    for _ in range(max(rounds, 1)):
        for name, prepare in peers.items():
            call = prepare()
            gc.collect()
            start = time.perf_counter()
            result = call()
            seconds = time.perf_counter() - start
            timing = timings.get(name)
            if timing is None:
                timing = timings[name] = Timing(result)
            timing.times.append(seconds)
    return timings


def interleaved(
    peers: Mapping[str, Callable[[], Any]], rounds: int
) -> dict[str, tuple[float, Any]]:
    """``{name: (best seconds, result of its first run)}`` over ``rounds`` rounds, every peer
    once a round in the order given."""
    def ready(peer: Callable[[], Any]) -> Callable[[], Callable[[], Any]]:
        return lambda: peer

    timings = staged({name: ready(peer) for name, peer in peers.items()}, rounds)
    return {name: (timing.best, timing.result) for name, timing in timings.items()}
