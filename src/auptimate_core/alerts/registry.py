"""The rules by name: what a command line (or a settings file) can build without knowing them.

Each rule is described once by a :class:`RuleSpec`: its name, its parameters (each with a
kind, a default written as text, the option a command line shows for it, and a line of help)
and a function that builds the rule from parsed values. :func:`build_rules` parses text values
and builds the rules asked for, so every registered rule is reachable from ``auptimate monitor``
and ``auptimate worker``. A rule of your own is one :func:`register_rule` call.

>>> [rule.name for rule in build_rules(["threshold"], {"threshold": "100"})]
['threshold']
>>> build_rules(["spike"], {"spike_factor": "0"})
Traceback (most recent call last):
...
auptimate_core.errors.ValidationError: spike_factor: must be greater than 0, not 0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import attrs

from ..errors import ValidationError
from ..money import MAX_AMOUNT
from .rules import AmountSpikeRule, SpikeRule, ThresholdRule, TransactionRule, WindowRule

Kind = Literal["money", "factor", "duration", "count"]
"""money: an amount from 0 to MAX_AMOUNT; factor: a number above 0; duration: 30s, 1m, ...;
count: a whole number of at least 1."""
Rule = TransactionRule | WindowRule

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS: Final = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60),
                   "h": Decimal(3_600), "d": Decimal(86_400)}


def parse_duration(text: str, field: str = "duration") -> timedelta:
    """``250ms``, ``30s``, ``1m``, ``1h30m``, ``2d`` as a positive timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    spec = text.strip().lower()
    at, seconds = 0, Decimal(0)
    for match in _DURATION.finditer(spec):
        if match.start() != at:
            break
        seconds += Decimal(match.group(1)) * _SECONDS[match.group(2)]
        at = match.end()
    if not spec or at != len(spec) or seconds <= 0:
        raise ValidationError(field, f"must be a positive duration such as 30s, 1m or 1h30m, "
                                     f"not {text!r}")
    return timedelta(microseconds=int(seconds * 1_000_000))


def _parse(kind: Kind, text: str, field: str) -> Any:
    if kind == "duration":
        return parse_duration(text, field)
    if kind == "count":
        if not text.strip().isdigit() or int(text) < 1:
            raise ValidationError(field, f"must be a whole number of at least 1, not {text!r}")
        return int(text)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValidationError(field, f"must be a number, not {text!r}") from None
    if kind == "money":
        if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
            raise ValidationError(field, f"must be an amount from 0 to {MAX_AMOUNT:,}, not "
                                         f"{text.strip()}")
        return value
    if not value.is_finite() or value <= 0:
        raise ValidationError(field, f"must be greater than 0, not {text.strip()}")
    return value


@attrs.frozen
class Param:
    """One parameter of a rule: ``name`` (the key of the values, also the command line's
    ``--name`` with dashes), its ``kind``, its ``default`` as text, and ``help``."""

    name: str
    kind: Kind
    default: str
    help: str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


@attrs.frozen
class RuleSpec:
    """A rule by name: its parameters, and ``build(**values)`` that makes it."""

    name: str
    help: str
    params: tuple[Param, ...]
    build: Callable[..., Rule]


RULES: dict[str, RuleSpec] = {}
"""Every rule a command line can build, by name (in the order they were registered)."""

DEFAULT_RULES: Final = ("threshold", "spike")
"""The rules a command runs when none is named."""


def register_rule(spec: RuleSpec) -> None:
    """Make ``spec`` buildable by name. Parameter names are shared by all rules (they become
    the command line's options), so a new rule must not reuse another rule's."""
    if spec.name in RULES:
        raise ValidationError("name", f"a rule named {spec.name!r} is already registered")
    taken = {param.name for other in RULES.values() for param in other.params}
    clash = next((param.name for param in spec.params if param.name in taken), None)
    if clash is not None:
        raise ValidationError("params", f"{clash!r} is already a parameter of another rule")
    RULES[spec.name] = spec


def build_rules(names: Iterable[str], values: Mapping[str, str | None]) -> list[Rule]:
    """The rules ``names`` (in that order), built from text ``values`` by parameter name; a
    missing or ``None`` value takes the parameter's default."""
    rules: list[Rule] = []
    for name in names:
        spec = RULES.get(name)
        if spec is None:
            raise ValidationError("rule", f"no rule is named {name!r}; known: {sorted(RULES)}")
        parsed = {}
        for param in spec.params:
            text = values.get(param.name)
            parsed[param.name] = _parse(param.kind, param.default if text is None else text,
                                        param.name)
        rules.append(spec.build(**parsed))
    return rules


register_rule(RuleSpec(
    "threshold", "a transaction over a limit",
    (Param("threshold", "money", "250000",
           "Alert on every transaction strictly greater than this amount."),),
    lambda threshold: ThresholdRule(limit=threshold)))
register_rule(RuleSpec(
    "spike", "a sudden rise in the number of a pool's transactions",
    (Param("spike_factor", "factor", "10",
           "Spike when the recent count reaches this multiple of the baseline rate."),
     Param("spike_window", "duration", "1m", "The recent window: 30s, 1m, 5m ..."),
     Param("baseline", "duration", "1h", "The baseline period just before the recent window."),
     Param("min_count", "count", "5",
           "A spike needs at least this many transactions in the window.")),
    lambda spike_factor, spike_window, baseline, min_count: SpikeRule(
        window=spike_window, baseline=baseline, factor=spike_factor, min_count=min_count)))
register_rule(RuleSpec(
    "amount_spike", "a sudden rise in the money flowing into a pool",
    (Param("amount_factor", "factor", "10",
           "Amount spike when the recent total reaches this multiple of the baseline's."),
     Param("amount_window", "duration", "1m", "The amount spike's recent window."),
     Param("amount_baseline", "duration", "1h", "The amount spike's baseline period."),
     Param("min_total", "money", "100000",
           "An amount spike needs at least this much money in the window.")),
    lambda amount_factor, amount_window, amount_baseline, min_total: AmountSpikeRule(
        window=amount_window, baseline=amount_baseline, factor=amount_factor,
        min_total=min_total)))
