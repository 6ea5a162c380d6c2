"""Domain value types validate at construction and name the field at fault."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auptimate_core import (
    InvalidAmount,
    InvalidId,
    InvalidKind,
    InvalidTimestamp,
    Investor,
    Pool,
    Transaction,
    ValidationError,
)
from auptimate_core.money import allocate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tx(**changes: object) -> Transaction:
    fields: dict[str, object] = dict(
        id="t1", investor_id="i1", pool_id="p1", amount=Decimal("10"), timestamp=T0
    )
    fields.update(changes)
    return Transaction(**fields)  # type: ignore[arg-type]


def test_int_amount_is_converted() -> None:
    assert tx(amount=5).amount == Decimal(5)
    assert type(tx(amount=5).amount) is Decimal


@pytest.mark.parametrize(
    "amount",
    [1.5, "10", Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
     Decimal(0), Decimal("-0.01"), -3, 0, True, None],
)
def test_bad_amounts_are_rejected_naming_the_field(amount: object) -> None:
    with pytest.raises(InvalidAmount, match="^amount: ") as info:
        tx(amount=amount)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "amount"


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(InvalidTimestamp, match="timestamp: must be timezone-aware"):
        tx(timestamp=datetime(2026, 1, 1))


@pytest.mark.parametrize("field", ["id", "investor_id", "pool_id"])
@pytest.mark.parametrize("value", ["", "   ", None, 7])
def test_empty_or_non_string_ids_are_rejected(field: str, value: object) -> None:
    with pytest.raises(InvalidId, match=f"^{field}: "):
        tx(**{field: value})


def test_kind_is_checked() -> None:
    assert tx(kind="carry").kind == "carry"
    with pytest.raises(InvalidKind, match="^kind: "):
        tx(kind="withdrawal")


def test_email_never_shown() -> None:
    investor = Investor("i1", "Ada", "ada@example.com")
    assert "ada@example.com" not in repr(investor)
    assert "ada@example.com" not in str(investor)
    assert investor.email == "ada@example.com"


def test_pool_currency_is_checked() -> None:
    assert Pool("p", "m").currency == "USD"
    with pytest.raises(ValidationError, match="^currency: "):
        Pool("p", "m", currency="usd")


def test_values_are_frozen() -> None:
    t = tx()
    with pytest.raises(AttributeError):
        t.amount = Decimal(1)  # type: ignore[misc]


weights = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.integers(0, 10**6).map(Decimal),
    min_size=1,
    max_size=12,
).filter(lambda w: sum(w.values()) > 0)


@given(st.integers(0, 10**9), weights, st.sampled_from(["USD", "JPY", "KWD"]))
def test_allocation_is_exact_and_fair(
    total: int, weights: dict[str, Decimal], currency: str
) -> None:
    from auptimate_core.money import minor_digits

    amount = Decimal(total).scaleb(-minor_digits(currency))
    shares = allocate(amount, weights, currency)
    assert sum(shares.values()) == amount
    unit = Decimal(1).scaleb(-minor_digits(currency))
    weight_sum = sum(weights.values())
    for key, share in shares.items():
        ideal = amount * weights[key] / weight_sum
        assert abs(share - ideal) < unit
        assert share >= 0


def test_the_top_level_is_light_and_gives_the_engine_on_first_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, auptimate_core\n"
        "heavy = ('redis', 'sqlalchemy', 'numpy', 'click', 'auptimate_core.alerts')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from auptimate_core import AlertEngine, AmountSpikeRule, SpikeRule, ThresholdRule\n"
        "from auptimate_core import window_store_from_url\n"
        "print(AlertEngine.__module__, type(window_store_from_url('memory://')).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "auptimate_core.alerts.engine MemoryWindowStore"]
