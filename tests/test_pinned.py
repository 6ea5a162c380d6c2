"""Behaviour pinned to literal values: boundaries, defaults, tables, encodings and messages.

Every expected value here is written out by hand, never computed with the library, so a change
to a limit, a default, a table or a message fails a test instead of moving both sides at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from auptimate_core import Transaction
from auptimate_core.alerts import AlertEngine, AmountSpikeRule, SpikeRule, ThresholdRule
from auptimate_core.alerts.alert import Alert
from auptimate_core.alerts.rules import _decimal, _span_text
from auptimate_core.backends.memory import MemoryWindowStore
from auptimate_core.errors import ValidationError
from auptimate_core.money import allocate, minor_digits, minor_unit, quantize
from auptimate_core.ranking import TopInvestors
from auptimate_core.store import IDLE, LifecycleState

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _raises(call: object, text: str) -> None:
    assert callable(call)
    with pytest.raises(ValidationError) as caught:
        call()
    assert str(caught.value) == text


# -- boundaries of validation ----------------------------------------------------------------


def test_threshold_limit_zero_is_allowed_and_negative_refused() -> None:
    rule = ThresholdRule(limit=0)
    assert rule.limit == Decimal("0")
    assert rule.check(Transaction("t", "i", "p", Decimal("0.01"), T0)) is not None
    _raises(lambda: ThresholdRule(limit=Decimal("-0.01")),
            "limit: must be a finite amount >= 0, not -0.01")
    _raises(lambda: ThresholdRule(limit=True), "limit: must be a Decimal or an int, not bool")
    _raises(lambda: ThresholdRule(limit=Decimal("NaN")),
            "limit: must be a finite amount >= 0, not NaN")


def test_threshold_is_strictly_greater() -> None:
    rule = ThresholdRule(limit=Decimal("100"))
    assert rule.check(Transaction("t", "i", "p", Decimal("100"), T0)) is None
    assert rule.check(Transaction("t", "i", "p", Decimal("100.01"), T0)) is not None
    assert rule.flagged([Transaction("t", "i", "p", Decimal("100"), T0)]) == []
    big = [Transaction("a", "i", "p", Decimal("100"), T0),
           Transaction("b", "i", "p", Decimal("100.01"), T0)]
    assert rule.flagged(big) == [1]
    per_pool = ThresholdRule(limit=Decimal("100"), per_pool={"q": Decimal("5")})
    assert per_pool.flagged([Transaction("a", "i", "q", Decimal("5"), T0),
                             Transaction("b", "i", "q", Decimal("5.01"), T0)]) == [1]


def test_spike_min_count_one_is_allowed_and_zero_refused() -> None:
    assert SpikeRule(min_count=1).min_count == 1
    assert SpikeRule(min_count=1).holds(1, 0) is True
    _raises(lambda: SpikeRule(min_count=0), "min_count: must be an int >= 1, not 0")
    _raises(lambda: SpikeRule(min_count=True), "min_count: must be an int >= 1, not True")


def test_spike_significance_is_open_between_zero_and_one() -> None:
    _raises(lambda: SpikeRule(significance=0), "significance: must be between 0 and 1, not 0")
    _raises(lambda: SpikeRule(significance=1), "significance: must be between 0 and 1, not 1")
    assert SpikeRule(significance=0.05).significance == 0.05


@pytest.mark.parametrize("rule", [SpikeRule, AmountSpikeRule])
def test_factor_refuses_bools_strings_and_non_positive(rule: type[SpikeRule]) -> None:
    _raises(lambda: rule(factor=True), "factor: must be a number, not bool")
    _raises(lambda: rule(factor="2"), "factor: must be a number, not str")
    _raises(lambda: rule(factor=0), "factor: must be positive, not 0")
    _raises(lambda: rule(factor=-1.5), "factor: must be positive, not -1.5")
    assert rule(factor=0.1).factor == Fraction(1, 10)


def test_spans_must_be_positive() -> None:
    _raises(lambda: SpikeRule(window=timedelta(0)), "window: must be positive, not 0:00:00")
    _raises(lambda: SpikeRule(baseline=timedelta(0)), "baseline: must be positive, not 0:00:00")


def test_allocate_boundaries() -> None:
    _raises(lambda: allocate(Decimal("-0.01"), {"a": Decimal(1)}, "USD"),
            "total: must not be negative, not -0.01")
    _raises(lambda: allocate(Decimal("1"), {"a": Decimal("-0.5"), "b": Decimal(1)}, "USD"),
            "weights: must not be negative")
    _raises(lambda: allocate(Decimal("1"), {"a": Decimal(0), "b": Decimal(0)}, "USD"),
            "weights: must have a positive sum to allocate pro rata")
    _raises(lambda: allocate(Decimal("0.001"), {"a": Decimal(1)}, "USD"),
            "total: 0.001 has more digits than the USD minor unit allows")
    assert allocate(Decimal("0"), {"a": Decimal(0), "b": Decimal(1)}, "USD") == {
        "a": Decimal("0.00"), "b": Decimal("0.00")}
    assert allocate(Decimal("0.01"), {"a": Decimal(0), "b": Decimal(1)}, "USD") == {
        "a": Decimal("0.00"), "b": Decimal("0.01")}


def test_allocate_largest_remainder_and_ties() -> None:
    assert allocate(Decimal("10.00"), {"c": Decimal(1), "a": Decimal(1), "b": Decimal(1)},
                    "USD") == {"c": Decimal("3.33"), "a": Decimal("3.34"), "b": Decimal("3.33")}
    assert allocate(Decimal("100"), {"a": Decimal(1), "b": Decimal(2)}, "JPY") == {
        "a": Decimal("33"), "b": Decimal("67")}
    assert allocate(Decimal("1.000"), {"a": Decimal(1), "b": Decimal(2)}, "KWD") == {
        "a": Decimal("0.333"), "b": Decimal("0.667")}


# -- defaults -------------------------------------------------------------------------------


def test_spike_defaults() -> None:
    rule = SpikeRule()
    assert rule.window == timedelta(minutes=1)
    assert rule.baseline == timedelta(hours=1)
    assert rule.factor == 10
    assert rule.min_count == 5
    assert rule.name == "spike"
    assert rule.significance is None


def test_amount_spike_defaults() -> None:
    rule = AmountSpikeRule()
    assert rule.window == timedelta(minutes=1)
    assert rule.baseline == timedelta(hours=1)
    assert rule.factor == 10
    assert rule.min_total == Decimal("100000")
    assert rule.name == "amount_spike"
    # The floor is min_total in store units (1/10,000).
    assert rule.holds(1_000_000_000, 0) is True
    assert rule.holds(999_999_999, 0) is False


def test_top_investors_default_n_and_filtered_counter() -> None:
    ranking = TopInvestors(kinds="investment")
    for i in range(7):
        ranking.add(Transaction(f"t{i}", f"inv{i}", "p", Decimal(100 + i), T0))
    ranking.add(Transaction("r", "inv0", "p", Decimal(1), T0, "refund"))
    ranking.add(Transaction("f", "inv0", "p", Decimal(1), T0, "fee"))
    ranking.add(Transaction("t0", "inv0", "p", Decimal(100), T0))
    assert [r.investor_id for r in ranking.top()] == ["inv6", "inv5", "inv4", "inv3", "inv2"]
    assert ranking.filtered == 2
    assert ranking.duplicates == 1
    assert ranking.transactions == 7


# -- fixed tables and encodings -------------------------------------------------------------

ISO_4217_MINOR_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2,
}

ISO_4217_MINOR_UNIT = {
    "BIF": "1", "CLP": "1", "DJF": "1", "GNF": "1", "ISK": "1", "JPY": "1", "KMF": "1",
    "KRW": "1", "PYG": "1", "RWF": "1", "UGX": "1", "UYI": "1", "VND": "1", "VUV": "1",
    "XAF": "1", "XOF": "1", "XPF": "1",
    "BHD": "0.001", "IQD": "0.001", "JOD": "0.001", "KWD": "0.001", "LYD": "0.001",
    "OMR": "0.001", "TND": "0.001",
    "CLF": "0.0001", "UYW": "0.0001",
    "USD": "0.01", "EUR": "0.01", "GBP": "0.01", "CHF": "0.01",
}


@pytest.mark.parametrize("currency", sorted(ISO_4217_MINOR_DIGITS))
def test_minor_units_follow_iso_4217(currency: str) -> None:
    assert minor_digits(currency) == ISO_4217_MINOR_DIGITS[currency]
    unit = minor_unit(currency)
    assert str(unit) == ISO_4217_MINOR_UNIT[currency]
    assert unit == Decimal(ISO_4217_MINOR_UNIT[currency])


def test_minor_unit_of_usd_and_rounding() -> None:
    assert minor_unit("USD") == Decimal("0.01")
    assert str(minor_unit("USD")) == "0.01"
    assert str(quantize(Decimal("2.345"), "USD")) == "2.34"
    assert str(quantize(Decimal("2.355"), "USD")) == "2.36"
    assert str(quantize(Decimal("2.5"), "JPY")) == "2"
    assert str(quantize(Decimal("1.0005"), "KWD")) == "1.000"


@pytest.mark.parametrize(("micros", "text"), [
    (3_600_000_000, "1h"), (90_000_000, "90s"), (60_000_000, "1m"), (300_000_000, "5m"),
    (86_400_000_000, "24h"), (1_500_000, "1.5s"), (59_000_000, "59s"), (7_260_000_000, "121m"),
])
def test_durations_are_printed_short(micros: int, text: str) -> None:
    assert _span_text(micros) == text


@pytest.mark.parametrize(("value", "text"), [
    (Fraction(1_000_000), "1000000"), (Fraction(1, 10), "0.1"), (Fraction(1, 12), "0.0833"),
    (Fraction(5, 2), "2.5"), (Fraction(100), "100"), (Fraction(49000), "49000"),
    (Fraction(1, 3), "0.3333"), (Fraction(2, 3), "0.6667"),
])
def test_figures_are_never_in_exponent_form(value: Fraction, text: str) -> None:
    assert str(_decimal(value)) == text


def test_reprs() -> None:
    assert repr(ThresholdRule(limit=Decimal("250000"), per_pool={"small": Decimal("1000")})) == (
        "ThresholdRule(limit=Decimal('250000'), per_pool={'small': Decimal('1000')})")
    assert repr(SpikeRule()) == (
        "SpikeRule(window=datetime.timedelta(seconds=60), "
        "baseline=datetime.timedelta(seconds=3600), factor=10, min_count=5)")
    assert repr(SpikeRule(window=timedelta(seconds=90), factor=Decimal("2.5"), min_count=3)) == (
        "SpikeRule(window=datetime.timedelta(seconds=90), "
        "baseline=datetime.timedelta(seconds=3600), factor=5/2, min_count=3)")
    assert repr(AmountSpikeRule()) == (
        "AmountSpikeRule(window=datetime.timedelta(seconds=60), "
        "baseline=datetime.timedelta(seconds=3600), factor=10, min_total=100000)")
    assert repr(AmountSpikeRule(factor=Fraction(3, 2), min_total=Decimal("5000.50"))) == (
        "AmountSpikeRule(window=datetime.timedelta(seconds=60), "
        "baseline=datetime.timedelta(seconds=3600), factor=3/2, min_total=5000.50)")


# -- what people read: alerts of each rule, built through the engine --------------------------


def _tx(i: int, seconds: int, amount: str, pool: str = "p1") -> Transaction:
    return Transaction(f"t{i}", f"inv{i}", pool, Decimal(amount), T0 + timedelta(seconds=seconds))


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


STREAM = [
    _tx(1, -3000, "2000"), _tx(2, -2000, "1000.50"), _tx(3, -1000, "3000"), _tx(4, -500, "1000"),
    _tx(5, 0, "250000.01"), _tx(6, 30, "9000"), _tx(7, 60, "40000"), _tx(8, 80, "500"),
    _tx(9, 150, "1500"),
]


def _alerts() -> list[Alert]:
    rules = [
        ThresholdRule(limit=Decimal("250000")),
        SpikeRule(window=timedelta(seconds=90), baseline=timedelta(hours=1), factor=2,
                  min_count=4),
        AmountSpikeRule(window=timedelta(seconds=90), baseline=timedelta(hours=1),
                        factor=Decimal("2.5"), min_total=Decimal("100000")),
    ]
    engine = AlertEngine(rules, store=MemoryWindowStore())
    out: list[Alert] = []
    for tx in STREAM:
        out.extend(engine.process(tx))
    return out


def _one(rule: str, state: str) -> Alert:
    found = [a for a in _alerts() if a.rule == rule and a.state == state]
    assert len(found) == 1, found
    return found[0]


def test_threshold_alert_text() -> None:
    assert _one("threshold", "firing") == Alert(
        rule="threshold", state="firing", pool_id="p1", at=_at(0), transaction_id="t5",
        observed=Decimal("250000.01"), limit=Decimal("250000"),
        message="amount 250000.01 > limit 250000 in pool p1", name="threshold",
        investor_id="inv5", context=())
    assert [a.rule for a in _alerts() if a.state == "resolved"].count("threshold") == 0


def test_spike_firing_and_resolved_text() -> None:
    firing = _one("spike", "firing")
    assert firing == Alert(
        rule="spike", state="firing", pool_id="p1", at=_at(80), transaction_id="t8",
        observed=Decimal("4"), limit=Decimal("4"),
        message="spike in pool p1: 4 transactions in the last 90s against 0.1 expected from 4 "
                "in the 1h before",
        name="spike", investor_id="inv8",
        context=(("baseline", "4"), ("baseline_span", "1h"), ("expected", "0.1"),
                 ("factor", "2"), ("recent", "4"), ("window", "90s")))
    assert str(firing.limit) == "4"
    resolved = _one("spike", "resolved")
    assert resolved == Alert(
        rule="spike", state="resolved", pool_id="p1", at=_at(150), transaction_id="t9",
        observed=Decimal("2"), limit=Decimal("4"),
        message="spike over in pool p1: 2 transactions in the last 90s against 0.175 expected "
                "from 7 in the 1h before",
        name="spike", investor_id="inv9",
        context=(("baseline", "7"), ("baseline_span", "1h"), ("expected", "0.175"),
                 ("factor", "2"), ("recent", "2"), ("window", "90s")))


def test_amount_spike_firing_text() -> None:
    firing = _one("amount_spike", "firing")
    assert firing == Alert(
        rule="amount_spike", state="firing", pool_id="p1", at=_at(0), transaction_id="t5",
        observed=Decimal("250000.01"), limit=Decimal("100000"),
        message="amount spike in pool p1: 250000.01 invested in the last 90s against 175.0125 "
                "expected from 7000.5 in the 1h before",
        name="amount_spike", investor_id="inv5",
        context=(("baseline", "7000.5"), ("baseline_span", "1h"), ("expected", "175.0125"),
                 ("factor", "2.5"), ("recent", "250000.01"), ("window", "90s")))
    assert str(firing.limit) == "100000"


def test_amount_spike_resolved_text() -> None:
    resolved = _one("amount_spike", "resolved")
    assert str(resolved.observed) == "2000"
    assert resolved.message == (
        "amount spike over in pool p1: 2000 invested in the last 90s against 7650.0128 "
        "expected from 306000.51 in the 1h before")
    assert resolved.context == (
        ("baseline", "306000.51"), ("baseline_span", "1h"), ("expected", "7650.0128"),
        ("factor", "2.5"), ("recent", "2000"), ("window", "90s"))


def test_amount_spike_resolved_fields_other_than_the_recent_total() -> None:
    resolved = _one("amount_spike", "resolved")
    assert (resolved.name, resolved.pool_id, resolved.at, resolved.transaction_id,
            resolved.investor_id) == ("amount_spike", "p1", _at(150), "t9", "inv9")
    assert resolved.observed == Decimal("2000")
    assert resolved.limit == Decimal("100000")
    assert str(resolved.limit) == "100000"
    context = dict(resolved.context)
    assert context["baseline"] == "306000.51"
    assert context["expected"] == "7650.0128"
    assert context["factor"] == "2.5"
    assert context["window"] == "90s"
    assert context["baseline_span"] == "1h"
    assert resolved.message.startswith("amount spike over in pool p1: ")
    assert resolved.message.endswith(
        " invested in the last 90s against 7650.0128 expected from 306000.51 in the 1h before")


def test_spike_with_significance_carries_a_p_value() -> None:
    rule = SpikeRule(window=timedelta(hours=1), baseline=timedelta(hours=24),
                     factor=Decimal("1.5"), min_count=2, significance=0.05)
    engine = AlertEngine([rule], store=MemoryWindowStore())
    out: list[Alert] = []
    for i, seconds in enumerate([-80_000, -40_000, 0, 60, 120, 180, 14_400]):
        out.extend(engine.process(_tx(i, seconds, "1", pool="p2")))
    assert [(a.state, a.transaction_id) for a in out] == [("firing", "t3"), ("resolved", "t6")]
    firing, resolved = out
    assert firing.message == ("spike in pool p2: 2 transactions in the last 1h against 0.0833 "
                              "expected from 2 in the 24h before")
    assert firing.context == (
        ("baseline", "2"), ("baseline_span", "24h"), ("expected", "0.0833"), ("factor", "1.5"),
        ("p_value", "0.0192"), ("recent", "2"), ("window", "1h"))
    assert (firing.observed, firing.limit) == (Decimal("2"), Decimal("2"))
    assert dict(resolved.context)["p_value"] == "0.305"
    assert resolved.message.startswith("spike over in pool p2: 1 transaction in the last 1h")


# -- survivors of the mutation run (scripts/mutation) ----------------------------------------


def test_threshold_limit_for_a_pool() -> None:
    rule = ThresholdRule(limit=Decimal("100"), per_pool={"q": Decimal("5")})
    assert rule.limit_for("q") == Decimal("5")
    assert rule.limit_for("other") == Decimal("100")


def test_cooldown_and_min_history_boundaries() -> None:
    rule = SpikeRule(cooldown=timedelta(seconds=10), min_history=timedelta(seconds=20))
    resolved_at = LifecycleState(False, 1_000_000, None)
    assert rule.may_fire(30_000_000, 0, resolved_at) is True
    assert rule.may_fire(10_999_999, -20_000_000, resolved_at) is False
    assert rule.may_fire(11_000_000, -20_000_000, resolved_at) is True
    assert rule.may_fire(19_999_999, 0, IDLE) is False
    assert rule.may_fire(20_000_000, 0, IDLE) is True
    assert rule.may_fire(20_000_000, None, IDLE) is False


def test_amount_spike_floor_is_at_least_one_unit() -> None:
    rule = AmountSpikeRule(min_total=0)
    assert rule.holds(0, 0) is False
    assert rule.holds(1, 0) is True


def test_durations_under_a_second() -> None:
    assert _span_text(999_999) == "0.999999s"


def test_durations_never_print_in_exponent_form() -> None:
    from auptimate_core.alerts.rules import _span_text

    assert [_span_text(us) for us in (1, 1_000_001, 999_999, 90_000_000)] == [
        "0.000001s", "1.000001s", "0.999999s", "90s"]


def test_one_microsecond_is_a_positive_span() -> None:
    rule = SpikeRule(window=timedelta(microseconds=1), baseline=timedelta(microseconds=1),
                     min_history=timedelta(microseconds=1), cooldown=timedelta(microseconds=1))
    assert rule.window == timedelta(microseconds=1)
    _raises(lambda: SpikeRule(min_history=timedelta(0)),
            "min_history: must be positive, not 0:00:00")
    _raises(lambda: SpikeRule(cooldown=timedelta(microseconds=-1)),
            "cooldown: must be positive, not -1 day, 23:59:59.999999")
    _raises(lambda: SpikeRule(window=60), "window: must be a timedelta, not int")


def test_threshold_flags_nothing_in_an_empty_batch() -> None:
    assert ThresholdRule(limit=Decimal("100")).flagged([]) == []
    assert ThresholdRule(limit=Decimal("100"), per_pool={"q": Decimal("5")}).flagged([]) == []


def test_significance_holds_at_exactly_its_level() -> None:
    probe = SpikeRule(factor=2, min_count=2, significance=0.5)
    level = probe.p_value(6, 30)
    assert 0 < level < 1
    assert SpikeRule(factor=2, min_count=2, significance=level).holds(6, 30) is True
    below = level * (1 - 2**-40)
    assert SpikeRule(factor=2, min_count=2, significance=below).holds(6, 30) is False


def test_linear_form_of_the_spike_rules() -> None:
    # recent >= floor and recent * a >= base * b, with a = baseline * den, b = window * num.
    assert SpikeRule().linear == (5, 3_600_000_000, 600_000_000)
    assert SpikeRule(factor=Decimal("2.5"), min_count=3).linear == (
        3, 7_200_000_000, 300_000_000)
    assert AmountSpikeRule().linear == (1_000_000_000, 3_600_000_000, 600_000_000)
    assert SpikeRule(significance=0.05).linear is None


def test_a_rule_name_names_its_alerts() -> None:
    tx = Transaction("t", "i", "p", Decimal("2"), T0)
    named = ThresholdRule(limit=1, name="big")
    assert named.name == "big"
    alert = named.check(tx)
    assert alert is not None
    assert (alert.rule, alert.name) == ("threshold", "big")
    unnamed = ThresholdRule(limit=1, name="").check(tx)
    assert unnamed is not None
    assert (unnamed.rule, unnamed.name) == ("threshold", "threshold")
