"""A seeded synthetic stream of transactions, with injected anomalies and their manifest.

It feeds the demo, the examples and the benchmarks. Investors pick pools by a skewed popularity
(a few pools are busy, most are quiet) and investors are skewed too (a few invest often, and so
in many pools); amounts are log-normal, in cents, capped at 200,000; event times are spread so
that no pool's ordinary traffic is ever faster than about one transaction in twenty minutes,
which the default spike rule (5 in a minute, 10x the hour's rate) never mistakes for a burst.

With ``anomalies=True`` the stream also holds large transactions (300,000 to 2,000,000, over
the default 250,000 threshold) and bursts (15 to 40 transactions of one pool within a minute),
each recorded in :attr:`SyntheticStream.anomalies`.

>>> stream = SyntheticStream(transactions=1000, seed=1, anomalies=True)
>>> txs = list(stream.transactions())
>>> len(txs), txs[0].id, sorted({a.kind for a in stream.anomalies})
(1000, 't0000001', ['burst', 'large'])
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, Any, Final

import attrs

from .domain import Investor, Pool, Transaction, from_micros, to_micros

START: Final = datetime(2026, 1, 1, tzinfo=UTC)
_MINUTE: Final = 60_000_000
_DAY: Final = 86_400_000_000
QUIET_GAP: Final = 20 * _MINUTE
"""The shortest mean gap between two ordinary transactions of the busiest pool."""


@attrs.frozen(slots=True)
class Anomaly:
    """An injected anomaly: ``kind`` is ``"large"`` or ``"burst"``."""

    kind: str
    pool_id: str
    transaction_ids: tuple[str, ...]
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "pool_id": self.pool_id,
            "transaction_ids": list(self.transaction_ids),
            "start": self.start.isoformat(), "end": self.end.isoformat(),
        }


# A row: (event time in microseconds, pool index, investor index, cents, anomaly index or -1).
Row = tuple[int, int, int, int, int]


class SyntheticStream:
    """``transactions`` rows over ``pools`` pools and ``investors`` investors, from ``seed``.

    Building it draws every row (about a second per million); :meth:`transactions`,
    :meth:`write_csv` and :meth:`write_jsonl` then replay them as often as asked.
    """

    def __init__(
        self,
        transactions: int = 10_000,
        *,
        seed: int = 0,
        anomalies: bool = False,
        investors: int | None = None,
        pools: int | None = None,
        start: datetime = START,
    ) -> None:
        if transactions < 1:
            raise ValueError(f"transactions: must be at least 1, not {transactions}")
        self.size = transactions
        self.seed = seed
        self.start = start
        n_pools = pools or max(5, transactions // 200)
        n_investors = investors or max(10, transactions // 20)
        self.pool_ids = [f"pool-{i:04d}" for i in range(n_pools)]
        self.investor_ids = [f"inv-{i:05d}" for i in range(n_investors)]
        n_managers = max(3, n_pools // 10)
        self.managers = {pool: f"mgr-{i % n_managers:03d}" for i, pool in enumerate(self.pool_ids)}
        rng = random.Random(seed)
        n_large = max(2, transactions // 20_000) if anomalies else 0
        n_bursts = min(n_pools, max(2, transactions // 50_000)) if anomalies else 0
        burst_sizes = [rng.randint(15, 40) for _ in range(n_bursts)]
        n_normal = transactions - n_large - sum(burst_sizes)
        if n_normal < 1:
            raise ValueError(f"transactions: {transactions} is too few for the anomalies")
        self._rows, self.anomalies = self._draw(
            rng, n_normal, n_large, burst_sizes, n_pools, n_investors
        )

    # -- drawing ------------------------------------------------------------------------------

    def _draw(
        self, rng: random.Random, n_normal: int, n_large: int, burst_sizes: list[int],
        n_pools: int, n_investors: int,
    ) -> tuple[list[Row], list[Anomaly]]:
        pool_weights = list(itertools.accumulate(1 / (k + 1) ** 0.6 for k in range(n_pools)))
        busiest = n_normal / pool_weights[-1]  # expected rows of pool 0
        span = max(30 * _DAY, math.ceil(busiest) * QUIET_GAP)
        self.span = timedelta(microseconds=span)
        origin = to_micros(self.start)
        investor_weights = list(
            itertools.accumulate(1 / (k + 1) ** 0.9 for k in range(n_investors))
        )
        pools = rng.choices(range(n_pools), cum_weights=pool_weights, k=n_normal)
        investors = rng.choices(range(n_investors), cum_weights=investor_weights, k=n_normal)
        times = sorted(rng.randrange(span) for _ in range(n_normal))
        lognorm = rng.lognormvariate
        rows: list[Row] = [
            (origin + t, p, i, min(20_000_000, max(10_000, int(lognorm(13.1, 1.1)))), -1)
            for t, p, i in zip(times, pools, investors)
        ]
        kinds: list[tuple[str, int]] = []
        for _ in range(n_large):
            at = origin + rng.randrange(span)
            pool = rng.randrange(n_pools)
            cents = rng.randint(30_000_000, 200_000_000)
            rows.append((at, pool, rng.randrange(n_investors), cents, len(kinds)))
            kinds.append(("large", pool))
        # Bursts hit distinct quiet pools, hours apart from each other.
        quiet = list(range(n_pools // 3, n_pools)) or list(range(n_pools))
        burst_pools = rng.sample(quiet, min(len(quiet), len(burst_sizes)))
        slots = rng.sample(range(2, max(3, span // (6 * 60 * _MINUTE))), len(burst_pools))
        for size, pool, slot in zip(burst_sizes, burst_pools, slots):
            begin = origin + slot * 6 * 60 * _MINUTE + rng.randrange(60 * _MINUTE)
            length = rng.randint(30, 55) * 1_000_000
            for k in range(size):
                rows.append((begin + k * length // size, pool, rng.randrange(n_investors),
                             rng.randint(10_000, 5_000_000), len(kinds)))
            kinds.append(("burst", pool))
        rows.sort()
        members: list[list[tuple[str, int]]] = [[] for _ in kinds]
        for number, row in enumerate(rows, start=1):
            if row[4] >= 0:
                members[row[4]].append((f"t{number:07d}", row[0]))
        anomalies = [
            Anomaly(kind, self.pool_ids[pool], tuple(i for i, _ in ids),
                    from_micros(ids[0][1]), from_micros(ids[-1][1]))
            for (kind, pool), ids in zip(kinds, members)
        ]
        return rows, anomalies

    # -- reading back -------------------------------------------------------------------------

    def transactions(self) -> Iterator[Transaction]:
        """The stream as Transactions, in event-time order."""
        pools, investors = self.pool_ids, self.investor_ids
        for number, (at, pool, investor, cents, _) in enumerate(self._rows, start=1):
            yield Transaction(
                f"t{number:07d}", investors[investor], pools[pool],
                Decimal(cents).scaleb(-2), from_micros(at),
            )

    def pools(self) -> list[Pool]:
        """The pools of the stream, each with its manager."""
        return [Pool(pid, self.managers[pid], name=f"Pool {pid[5:]}") for pid in self.pool_ids]

    def investors(self) -> list[Investor]:
        return [Investor(iid, name=f"Investor {iid[4:]}") for iid in self.investor_ids]

    def manifest(self) -> dict[str, Any]:
        """What was injected, JSON-ready."""
        return {
            "transactions": self.size, "seed": self.seed,
            "anomalies": [a.to_dict() for a in self.anomalies],
        }

    def write_manifest(self, out: IO[str]) -> None:
        json.dump(self.manifest(), out, indent=2)
        out.write("\n")

    def _text_rows(self) -> Iterator[tuple[str, str, str, str, str]]:
        pools, investors = self.pool_ids, self.investor_ids
        day_text: dict[int, str] = {}
        for number, (at, pool, investor, cents, _) in enumerate(self._rows, start=1):
            day, rest = divmod(at, _DAY)
            date = day_text.get(day)
            if date is None:
                date = day_text[day] = from_micros(day * _DAY).date().isoformat()
            seconds, micros = divmod(rest, 1_000_000)
            hours, seconds = divmod(seconds, 3600)
            minutes, seconds = divmod(seconds, 60)
            stamp = f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}+00:00"
            units, sub = divmod(cents, 100)
            yield f"t{number:07d}", investors[investor], pools[pool], f"{units}.{sub:02d}", stamp

    def write_csv(self, out: IO[str]) -> int:
        """Write the stream as CSV with the library's header; returns the number of rows."""
        out.write("id,investor_id,pool_id,amount,timestamp,kind\n")
        out.writelines(f"{i},{inv},{pool},{amount},{stamp},investment\n"
                       for i, inv, pool, amount, stamp in self._text_rows())
        return self.size

    def write_jsonl(self, out: IO[str]) -> int:
        """Write the stream as JSON Lines; returns the number of lines."""
        out.writelines(
            f'{{"id": "{i}", "investor_id": "{inv}", "pool_id": "{pool}", "amount": "{amount}", '
            f'"timestamp": "{stamp}", "kind": "investment"}}\n'
            for i, inv, pool, amount, stamp in self._text_rows()
        )
        return self.size


def generate_stream(
    transactions: int = 10_000, *, seed: int = 0, anomalies: bool = False, **options: Any
) -> SyntheticStream:
    """A :class:`SyntheticStream`; see its options."""
    return SyntheticStream(transactions, seed=seed, anomalies=anomalies, **options)
