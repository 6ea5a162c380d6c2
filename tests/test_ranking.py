"""The list and incremental forms of the top-investors ranking against a brute-force model."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auptimate_core import (
    InvalidKind,
    InvalidTimestamp,
    InvestorRank,
    TopInvestors,
    Transaction,
    ValidationError,
    top_investors,
)
from tests.ranking_model import BASE, KIND_LIST, as_rows, model_top, transactions


def tx(tx_id: str, investor: str, pool: str, amount: str, hours: int = 0,
       kind: str = "investment") -> Transaction:
    return Transaction(tx_id, investor, pool, Decimal(amount), BASE + timedelta(hours=hours), kind)


@given(transactions(), st.integers(1, 8))
@settings(max_examples=100)
def test_list_form_matches_model(txs: list[Transaction], n: int) -> None:
    assert as_rows(top_investors(txs, n)) == model_top(txs, n)


@given(transactions(id_space=25), st.integers(1, 8), st.integers(1, 7))
@settings(max_examples=100)
def test_incremental_form_matches_model_after_every_step(
    txs: list[Transaction], n: int, batch: int
) -> None:
    ranking = TopInvestors()
    done: list[Transaction] = []
    rng = random.Random(len(txs) * 31 + batch)
    i = 0
    while i < len(txs):
        if rng.random() < 0.5:
            ranking.add(txs[i])
            done.append(txs[i])
            i += 1
        else:
            ranking.add_many(txs[i:i + batch])
            done.extend(txs[i:i + batch])
            i += batch
        ranking._check()
        assert as_rows(ranking.top(n)) == model_top(done, n, dedupe=True)
    assert ranking.transactions == len({t.id for t in txs})


@given(transactions(), st.integers(1, 8))
@settings(max_examples=60)
def test_incremental_and_list_forms_agree_on_unique_ids(txs: list[Transaction], n: int) -> None:
    ranking = TopInvestors()
    assert ranking.add_many(txs) == len(txs)
    assert ranking.top(n) == top_investors(txs, n)


@given(
    transactions(id_space=30), st.integers(1, 6),
    st.none() | st.integers(0, 10), st.none() | st.integers(0, 11),
    st.none() | st.sets(st.sampled_from(KIND_LIST), min_size=1),
)
@settings(max_examples=100)
def test_filters_match_model(
    txs: list[Transaction], n: int, since_h: int | None, until_h: int | None,
    kinds: set[str] | None,
) -> None:
    since = None if since_h is None else BASE + timedelta(hours=since_h)
    until = None if until_h is None else BASE + timedelta(hours=until_h)
    if since is not None and until is not None and until <= since:
        with pytest.raises(ValidationError, match="until"):
            TopInvestors(since=since, until=until)
        return
    expected = model_top(txs, n, dedupe=True, since=since, until=until, kinds=kinds)
    ranking = TopInvestors(since=since, until=until, kinds=kinds)
    for t in txs:
        ranking.add(t)
    assert as_rows(ranking.top(n)) == expected
    assert as_rows(top_investors(txs, n, since=since, until=until, kinds=kinds)) == model_top(
        txs, n, since=since, until=until, kinds=kinds)


def test_order_is_pools_then_total_then_id() -> None:
    txs = [
        tx("1", "zed", "p1", "10"), tx("2", "zed", "p2", "10"),
        tx("3", "amy", "p1", "5"), tx("4", "amy", "p2", "15"),
        tx("5", "bob", "p1", "30"), tx("6", "bob", "p2", "1"), tx("7", "bob", "p3", "1"),
        tx("8", "cat", "p1", "1000"),
    ]
    assert top_investors(txs, 5) == [
        InvestorRank("bob", 3, Decimal("32")),
        InvestorRank("amy", 2, Decimal("20")),
        InvestorRank("zed", 2, Decimal("20")),
        InvestorRank("cat", 1, Decimal("1000")),
    ]


def test_list_form_counts_every_transaction_given_and_incremental_counts_ids_once() -> None:
    t = tx("1", "ann", "p1", "10")
    assert top_investors([t, t]) == [InvestorRank("ann", 1, Decimal("20"))]
    ranking = TopInvestors()
    assert ranking.add(t) is True
    assert ranking.add(tx("1", "ann", "p2", "99")) is False
    assert ranking.top() == [InvestorRank("ann", 1, Decimal("10"))]
    assert ranking.duplicates == 1


def test_totals_are_exact_beyond_default_decimal_precision() -> None:
    # Amounts are at most 10**15 each; their sum needs 36 digits, the default context has 28.
    txs = [tx("1", "ann", "p1", "1E+15"), tx("2", "ann", "p2", "1E-20"),
           tx("3", "ann", "p2", "1E-21", kind="refund")]
    [rank] = top_investors(txs)
    assert rank.total_amount == Decimal("1000000000000000.000000000000000000009")
    ranking = TopInvestors()
    ranking.add_many(txs[:1])
    ranking.add(txs[1])
    ranking.add(txs[2])
    assert ranking.top() == [rank]
    assert rank.to_dict()["total_amount"] == "1000000000000000.000000000000000000009"


def test_total_invested_is_investments_less_refunds_and_pools_are_those_invested_in() -> None:
    txs = [
        tx("1", "ann", "p1", "100"), tx("2", "ann", "p1", "30", kind="refund"),
        tx("3", "ann", "p2", "5", kind="fee"), tx("4", "ann", "p3", "50", kind="distribution"),
        tx("5", "ann", "p4", "7", kind="carry"), tx("6", "ann", "p5", "1", kind="refund"),
        tx("7", "bob", "p1", "10", kind="refund"),  # refunded, never invested: not ranked
        tx("8", "cy", "p1", "20", kind="refund"), tx("9", "cy", "p2", "50"),  # refund first
    ]
    expected = [InvestorRank("ann", 1, Decimal("69")), InvestorRank("cy", 1, Decimal("30"))]
    assert top_investors(txs) == expected
    ranking = TopInvestors()
    for t in txs:
        assert ranking.add(t) is True
        ranking._check()
    assert ranking.top() == expected and len(ranking) == 2
    assert ranking.get("bob") is None and ranking.position("bob") is None
    assert ranking.get("cy") == expected[1] and ranking.position("ann") == 1
    batch = TopInvestors()
    assert batch.add_many(txs) == len(txs)
    batch._check()
    assert batch.top() == expected


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "5", None])
def test_n_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValidationError, match="^n: must be a positive integer"):
        top_investors([], bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n: "):
        TopInvestors().top(bad)  # type: ignore[arg-type]


def test_bad_filters_are_named() -> None:
    with pytest.raises(InvalidKind, match="kinds: unknown kinds \\['gift'\\]"):
        TopInvestors(kinds=["investment", "gift"])
    with pytest.raises(InvalidKind, match="kinds"):
        TopInvestors(kinds=[])
    with pytest.raises(InvalidTimestamp, match="since"):
        TopInvestors(since=BASE.replace(tzinfo=None))
    assert TopInvestors(kinds="fee").filter.kinds == frozenset({"fee"})


def test_a_bad_item_in_a_batch_changes_nothing() -> None:
    ranking = TopInvestors()
    with pytest.raises(TypeError, match="expected a Transaction, not dict"):
        ranking.add_many([tx("1", "ann", "p1", "10"), {"id": "2"}])  # type: ignore[list-item]
    assert ranking.top() == [] and ranking.transactions == 0
    with pytest.raises(TypeError):
        top_investors([{"id": "2"}])  # type: ignore[list-item]


def test_get_and_position() -> None:
    ranking = TopInvestors()
    ranking.add_many([tx("1", "ann", "p1", "5"), tx("2", "bob", "p1", "7"),
                      tx("3", "bob", "p2", "1")])
    assert ranking.get("ann") == InvestorRank("ann", 1, Decimal("5"))
    assert ranking.position("bob") == 1 and ranking.position("ann") == 2
    assert ranking.get("nobody") is None and ranking.position("nobody") is None
    assert len(ranking) == 2


def test_threads_sharing_one_ranking_lose_nothing() -> None:
    rng = random.Random(7)
    txs = [tx(str(i), f"i{rng.randrange(40)}", f"p{rng.randrange(15)}",
              str(rng.randrange(1, 10_000)) + ".25") for i in range(4000)]
    ranking = TopInvestors()
    chunks = [txs[k::8] for k in range(8)]

    def feed(chunk: list[Transaction]) -> None:
        for start in range(0, len(chunk), 50):
            if start % 100:
                ranking.add_many(chunk[start:start + 50])
            else:
                for t in chunk[start:start + 50]:
                    ranking.add(t)
            ranking.top(3)

    threads = [threading.Thread(target=feed, args=(c,)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ranking._check()
    assert ranking.top(40) == top_investors(txs, 40)
