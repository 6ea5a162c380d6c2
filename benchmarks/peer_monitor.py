"""The peer of ``auptimate monitor``: a hand-written script of the two default rules.

    python benchmarks/peer_monitor.py FILE

Reads a CSV file of the library's header (``id, investor_id, pool_id, amount, timestamp,
kind``) with ``csv.reader``, amounts as ``Decimal`` and times with ``datetime.fromisoformat``,
and applies the threshold rule (an amount over 250,000) and the spike rule (at each transaction
of a pool: at least 5 in the last minute and at least 10 times the rate of the hour before,
firing once, then resolved once) over per-pool deques. It prints one line per alert:
``rule,state,pool_id,transaction_id``. It checks nothing and assumes the file is in time order:
the floor a whole ``auptimate monitor`` process is measured against.
"""

from __future__ import annotations

import csv
import sys
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

LIMIT = Decimal(250_000)
WINDOW = timedelta(minutes=1)
BASELINE = timedelta(hours=1)
FACTOR = 10
MIN_COUNT = 5


def main(path: str) -> None:
    recent_of: dict[str, deque[datetime]] = {}
    base_of: dict[str, deque[datetime]] = {}
    firing: set[str] = set()
    out = []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        next(rows)
        for tx_id, _investor, pool, amount, stamp, _kind in rows:
            if Decimal(amount) > LIMIT:
                out.append(f"threshold,firing,{pool},{tx_id}")
            at = datetime.fromisoformat(stamp)
            recent = recent_of.get(pool)
            if recent is None:
                recent = recent_of[pool] = deque()
                base_of[pool] = deque()
            base = base_of[pool]
            recent.append(at)
            edge = at - WINDOW
            while recent[0] <= edge:
                base.append(recent.popleft())
            far = edge - BASELINE
            while base and base[0] <= far:
                base.popleft()
            n = len(recent)
            holds = n >= MIN_COUNT and n * BASELINE >= FACTOR * len(base) * WINDOW
            if holds != (pool in firing):
                if holds:
                    firing.add(pool)
                else:
                    firing.discard(pool)
                out.append(f"spike,{'firing' if holds else 'resolved'},{pool},{tx_id}")
    sys.stdout.write("".join(line + "\n" for line in out))


if __name__ == "__main__":
    main(sys.argv[1])
