"""Timing peers against each other on a machine whose speed drifts.

A shared two-core machine can run a whole peer 30% slower one minute than the next. Timing
each peer's repeats back to back lets that drift fall on one peer and not on another, so the
ratios between peers say more about the minute than about the code. :func:`interleaved` runs the
peers in rounds instead, every peer once a round, and keeps each peer's best round: a slow spell
costs every peer a round, and no peer's figure depends on when in the run it was taken.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import Any

SLOW = 5.0  # seconds: a peer slower than this in the first round runs only once


def interleaved(
    peers: Mapping[str, Callable[[], Any]], rounds: int, slow: float = SLOW
) -> dict[str, tuple[float, Any]]:
    """``{name: (best seconds, result of its first run)}`` over ``rounds`` rounds, every peer
    once a round in the order given; a peer slower than ``slow`` seconds runs once."""
    best: dict[str, tuple[float, Any]] = {}
    for round_ in range(max(rounds, 1)):
        for name, peer in peers.items():
            if round_ and best[name][0] > slow:
                continue
            gc.collect()
            start = time.perf_counter()
            result = peer()
            seconds = time.perf_counter() - start
            if name not in best:
                best[name] = (seconds, result)
            elif seconds < best[name][0]:
                best[name] = (seconds, best[name][1])
    return best
