"""The rule registry builds every rule by name from text, and refuses what is wrong by name."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from auptimate_core.alerts import AmountSpikeRule, SpikeRule, ThresholdRule
from auptimate_core.alerts.registry import (
    DEFAULT_RULES,
    RULES,
    Param,
    RuleSpec,
    build_rules,
    parse_duration,
    register_rule,
)
from auptimate_core.errors import ValidationError


def test_every_registered_rule_builds_from_its_defaults() -> None:
    rules = build_rules(list(RULES), {})
    assert [type(rule) for rule in rules] == [ThresholdRule, SpikeRule, AmountSpikeRule]
    assert DEFAULT_RULES == ("threshold", "spike")
    threshold, spike, amount = rules
    assert threshold.limit == Decimal("250000")  # type: ignore[union-attr]
    assert (spike.window, spike.baseline, spike.factor, spike.min_count) == (  # type: ignore[union-attr]
        timedelta(minutes=1), timedelta(hours=1), 10, 5)
    assert amount.min_total == Decimal("100000")  # type: ignore[union-attr]


def test_values_are_parsed_from_text() -> None:
    (spike,) = build_rules(["spike"], {"spike_factor": "2.5", "spike_window": "30s",
                                      "baseline": "2h", "min_count": "3"})
    assert isinstance(spike, SpikeRule)
    assert (spike.window, spike.baseline, spike.min_count) == (
        timedelta(seconds=30), timedelta(hours=2), 3)
    assert parse_duration("250ms") == timedelta(milliseconds=250)


@pytest.mark.parametrize(("name", "values", "field"), [
    ("threshold", {"threshold": "abc"}, "threshold"),
    ("threshold", {"threshold": "1E+308"}, "threshold"),
    ("spike", {"spike_factor": "-1"}, "spike_factor"),
    ("spike", {"spike_window": "1 fortnight"}, "spike_window"),
    ("spike", {"min_count": "0"}, "min_count"),
    ("nope", {}, "rule"),
])
def test_bad_values_name_their_field(name: str, values: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        build_rules([name], values)


def test_a_new_rule_may_not_reuse_a_name_or_a_parameter() -> None:
    with pytest.raises(ValidationError, match="already registered"):
        register_rule(RuleSpec("spike", "", (), SpikeRule))
    with pytest.raises(ValidationError, match="baseline"):
        register_rule(RuleSpec("mine", "", (Param("baseline", "duration", "1h", ""),),
                               SpikeRule))
    assert "mine" not in RULES
