"""The top-investors ranking pinned to literal values: bounds, filters, order, texts.

Every expected line is written out by hand; the ranking's own code never computes an expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auptimate_core import Transaction
from auptimate_core.errors import InvalidKind, ValidationError
from auptimate_core.ranking import (
    ADDS,
    COUNTED,
    SUBTRACTS,
    WITHOUT_KIND,
    InvestorRank,
    RankFilter,
    TopInvestors,
    check_n,
    rank_totals,
    tally,
    top_investors,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def _tx(tx_id: str, investor: str, pool: str, amount: str, seconds: int = 0,
        kind: str = "investment") -> Transaction:
    return Transaction(tx_id, investor, pool, D(amount), T0 + timedelta(seconds=seconds), kind)


def _raises(error: type[Exception], call: Callable[[], object], text: str) -> None:
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == text


def test_kind_sets() -> None:
    assert sorted(ADDS) == ["investment"]
    assert sorted(SUBTRACTS) == ["refund"]
    assert sorted(COUNTED) == ["investment", "refund"]
    assert WITHOUT_KIND == "investment"


def test_n_must_be_a_positive_int() -> None:
    assert check_n(1) == 1
    _raises(ValidationError, lambda: check_n(0), "n: must be a positive integer, not 0")
    _raises(ValidationError, lambda: check_n(-1), "n: must be a positive integer, not -1")
    _raises(ValidationError, lambda: check_n(True), "n: must be a positive integer, not bool True")
    _raises(ValidationError, lambda: check_n("5"), "n: must be a positive integer, not str '5'")
    _raises(ValidationError, lambda: check_n(1.0),
            "n: must be a positive integer, not float 1.0")
    _raises(ValidationError, lambda: TopInvestors().top(0),
            "n: must be a positive integer, not 0")
    _raises(ValidationError, lambda: rank_totals([], 0), "n: must be a positive integer, not 0")


def test_filter_bounds_and_messages() -> None:
    _raises(ValidationError, lambda: RankFilter(T0, T0),
            "until: must be after since (2026-01-01T00:00:00+00:00)")
    _raises(InvalidKind, lambda: RankFilter(kinds=[]),
            "kinds: must name at least one kind (or be None for all)")
    _raises(InvalidKind, lambda: RankFilter(kinds=["gift", "x", "refund"]),
            "kinds: unknown kinds ['gift', 'x']; known: ['carry', 'distribution', 'fee', "
            "'investment', 'refund']")
    _raises(ValidationError, lambda: RankFilter(since=datetime(2026, 1, 1)),
            "since: must be timezone-aware (naive datetimes are ambiguous)")
    _raises(ValidationError, lambda: RankFilter(until=datetime(2026, 1, 1)),
            "until: must be timezone-aware (naive datetimes are ambiguous)")
    assert RankFilter(T0, T0 + timedelta(microseconds=1)).everything is False
    assert RankFilter().everything is True
    assert RankFilter(since=T0).everything is False
    assert RankFilter(until=T0).everything is False
    assert RankFilter(kinds="refund").everything is False
    assert RankFilter(kinds="refund").kinds == frozenset({"refund"})


def test_since_is_inclusive_and_until_exclusive() -> None:
    window = RankFilter(T0, T0 + timedelta(seconds=10))
    assert window.accepts(_tx("a", "i", "p", "1", 0)) is True
    assert window.accepts(_tx("a", "i", "p", "1", -1)) is False
    assert window.accepts(_tx("a", "i", "p", "1", 9)) is True
    assert window.accepts(_tx("a", "i", "p", "1", 10)) is False
    assert RankFilter(since=T0).accepts(_tx("a", "i", "p", "1", 10**9)) is True
    assert RankFilter(until=T0).accepts(_tx("a", "i", "p", "1", -(10**9))) is True
    kinds = RankFilter(kinds=["refund"])
    assert kinds.accepts(_tx("a", "i", "p", "1", 0, "refund")) is True
    assert kinds.accepts(_tx("a", "i", "p", "1", 0)) is False
    txs = [_tx("1", "ann", "p1", "5", -1), _tx("2", "ann", "p2", "7", 0),
           _tx("3", "bob", "p1", "11", 9), _tx("4", "cy", "p1", "13", 10)]
    assert top_investors(txs, since=T0, until=T0 + timedelta(seconds=10)) == [
        InvestorRank("bob", 1, D("11")), InvestorRank("ann", 1, D("7"))]
    ranking = TopInvestors(since=T0, until=T0 + timedelta(seconds=10))
    assert ranking.add_many(txs) == 2
    assert ranking.filtered == 2
    assert ranking.top() == [InvestorRank("bob", 1, D("11")), InvestorRank("ann", 1, D("7"))]


def test_order_pools_then_total_then_id() -> None:
    txs = [_tx("1", "b", "p1", "10"), _tx("2", "a", "p1", "10"), _tx("3", "c", "p1", "10.01"),
           _tx("4", "d", "p1", "1"), _tx("5", "d", "p2", "1"), _tx("6", "e", "p1", "9.99")]
    expected = [InvestorRank("d", 2, D("2")), InvestorRank("c", 1, D("10.01")),
                InvestorRank("a", 1, D("10")), InvestorRank("b", 1, D("10")),
                InvestorRank("e", 1, D("9.99"))]
    assert top_investors(txs, n=5) == expected
    assert top_investors(txs) == expected
    assert top_investors(txs, n=2) == expected[:2]
    assert top_investors(txs, n=100) == [*expected]
    # The default n is 5, with more than 5 investors to choose from.
    more = [*txs, _tx("7", "f", "p1", "9.98"), _tx("8", "g", "p1", "9.97")]
    assert top_investors(more) == expected
    assert len(top_investors(more, n=6)) == 6
    ranking = TopInvestors()
    for tx in txs:
        assert ranking.add(tx) is True
    assert ranking.top() == expected
    assert ranking.top(1) == expected[:1]
    assert ranking.top(6) == expected
    ranking.add_many([_tx("7", "f", "p1", "9.98"), _tx("8", "g", "p1", "9.97")])
    assert ranking.top() == expected
    assert [ranking.position(r.investor_id) for r in expected] == [1, 2, 3, 4, 5]
    assert ranking.get("a") == InvestorRank("a", 1, D("10"))
    assert ranking.get("zed") is None
    assert ranking.position("zed") is None
    assert len(ranking) == 7
    batch = TopInvestors()
    assert batch.add_many(txs) == 6
    assert batch.top() == expected


def test_refunds_fees_and_kinds_in_every_form() -> None:
    txs = [_tx("1", "ann", "p1", "100"), _tx("2", "ann", "p2", "30", kind="refund"),
           _tx("3", "ann", "p3", "5", kind="fee"), _tx("4", "ann", "p4", "9", kind="carry"),
           _tx("5", "ann", "p5", "8", kind="distribution"),
           _tx("6", "bob", "p1", "10", kind="refund")]
    expected = [InvestorRank("ann", 1, D("70"))]
    assert top_investors(txs) == expected
    assert tally([(t.investor_id, t.pool_id, t.kind, t.amount) for t in txs]) == [
        ("ann", 1, D("70"))]
    one = TopInvestors()
    assert [one.add(t) for t in txs] == [True] * 6
    assert one.top() == expected
    assert one.get("bob") is None
    assert one.position("bob") is None
    assert one.transactions == 6
    many = TopInvestors()
    assert many.add_many(txs) == 6
    assert many.top() == expected
    # bob's refund came before any investment: taken off once he invests.
    for ranking in (one, many):
        ranking.add(_tx("7", "bob", "p2", "25"))
        assert ranking.top() == [InvestorRank("ann", 1, D("70")), InvestorRank("bob", 1, D("15"))]
        assert ranking.position("bob") == 2
        ranking._check()


def test_only_refunds_and_investments_in_a_batch() -> None:
    ranking = TopInvestors()
    assert ranking.add_many([_tx("1", "ann", "p1", "10", kind="refund"),
                             _tx("2", "ann", "p2", "50"), _tx("3", "ann", "p3", "5", kind="fee"),
                             _tx("4", "ann", "p2", "1"), _tx("1", "ann", "p1", "10")]) == 4
    assert ranking.duplicates == 1
    assert ranking.top() == [InvestorRank("ann", 1, D("41"))]
    assert ranking.add_many([_tx("5", "ann", "p9", "1"), _tx("6", "bob", "p9", "2")]) == 2
    assert ranking.top() == [InvestorRank("ann", 2, D("42")), InvestorRank("bob", 1, D("2"))]
    ranking._check()


def test_duplicates_and_filtered_count_apart() -> None:
    ranking = TopInvestors(kinds="investment")
    assert ranking.add(_tx("1", "ann", "p1", "10")) is True
    assert ranking.add(_tx("1", "ann", "p1", "10")) is False
    assert ranking.add(_tx("2", "ann", "p1", "10", kind="refund")) is False
    assert (ranking.duplicates, ranking.filtered, ranking.transactions) == (1, 1, 1)
    assert repr(ranking) == (
        "TopInvestors(investors=1, transactions=1, filter=RankFilter(since=None, until=None, "
        "kinds=frozenset({'investment'})))")
    assert repr(TopInvestors()) == (
        "TopInvestors(investors=0, transactions=0, filter=RankFilter(since=None, until=None, "
        "kinds=None))")


def test_only_transactions_are_ranked() -> None:
    _raises(TypeError, lambda: TopInvestors().add("x"),  # type: ignore[arg-type]
            "expected a Transaction, not str")
    ranking = TopInvestors()
    _raises(TypeError, lambda: ranking.add_many([_tx("1", "a", "p", "1"), 5]),  # type: ignore[list-item]
            "expected a Transaction, not int")
    assert ranking.transactions == 0
    _raises(TypeError, lambda: top_investors([None]),  # type: ignore[list-item]
            "expected a Transaction, not NoneType")


def test_rank_texts() -> None:
    assert InvestorRank("a", 1, D("1E+3")).to_dict() == {
        "investor_id": "a", "unique_pools": 1, "total_amount": "1000"}
    assert InvestorRank("a", 1, D("0.10")).to_dict()["total_amount"] == "0.10"
    assert repr(InvestorRank("a", 2, D("3"))) == (
        "InvestorRank(investor_id='a', unique_pools=2, total_amount=Decimal('3'))")
    # Negation is exact: a total with more digits than the context's precision keeps them all.
    long = D("12345678901234567890123456789012345.5")
    assert rank_totals([("a", 1, long), ("b", 1, D(1))], 1) == [InvestorRank("a", 1, long)]
