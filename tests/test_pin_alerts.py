"""The alert value and the spike rules' significance test pinned to literal values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import comb

import pytest

from auptimate_core.alerts.alert import FIRING, RESOLVED, Alert
from auptimate_core.alerts.significance import EXACT_UP_TO, rate_ratio_p_value

AT = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))


def _p(recent: int, base: int, factor: Fraction | int = 1, window: int = 1,
       baseline: int = 1) -> float:
    return rate_ratio_p_value(recent, base, window=window, baseline=baseline, factor=factor)


def test_exact_binomial_tails() -> None:
    assert EXACT_UP_TO == 400
    # p = 1/2: P(K >= k) for K ~ Binomial(n, 1/2), as sixteenths and so on.
    assert _p(2, 2) == 0.6875  # 11/16
    assert _p(3, 1) == 0.3125  # 5/16
    assert _p(3, 3) == 0.65625  # 42/64, the lower side summed
    assert _p(4, 3) == 0.5  # 64/128, the upper side summed
    assert _p(1, 0, factor=10, baseline=60) == 1 / 7
    assert _p(1, 1, factor=Fraction(1, 3)) == 0.4375  # p = 1/4: 1 - (3/4)**2
    assert round(_p(3, 1, factor=10, baseline=60), 4) == 0.0104
    assert _p(0, 5) == 1.0
    assert _p(-1, 5) == 1.0


def test_exact_up_to_four_hundred_events_then_floating_point() -> None:
    exact = float(Fraction(1, 2) + Fraction(comb(400, 200), 2**401))
    assert _p(200, 200) == exact  # 400 events: still exact, to the last bit
    assert _p(201, 200) == pytest.approx(0.5, abs=1e-12)  # 401: the floating-point tail
    assert _p(300, 101) == pytest.approx(2.585318018838444e-24, rel=1e-9)
    # The floating-point tail's last terms: P(K >= 400) = 402 / 2**401, P(K = 401) = 2**-401.
    assert _p(400, 1) == pytest.approx(402 * 2.0**-401, rel=1e-9)
    assert _p(401, 0) == pytest.approx(2.0**-401, rel=1e-9)
    assert _p(1, 500, factor=10**20) == 1.0  # p rounds to 1.0 in floating point
    assert _p(0, 500) == 1.0  # no recent event: 1.0 exactly, not a floating-point sum


def test_alert_texts() -> None:
    alert = Alert("threshold", "firing", "p1", AT, "t9", Decimal("300000.50"),
                  Decimal("250000"), "amount 300000.50 > limit 250000 in pool p1",
                  investor_id="inv", context=(("a", "1"), ("b", "x")))
    assert (FIRING, RESOLVED) == ("firing", "resolved")
    assert alert.name == "threshold"
    assert alert.key == "threshold|firing|p1|t9"
    assert alert.to_dict() == {
        "rule": "threshold", "name": "threshold", "state": "firing", "pool_id": "p1",
        "at": "2026-01-01T12:00:00+01:00", "transaction_id": "t9", "investor_id": "inv",
        "observed": "300000.50", "limit": "250000",
        "message": "amount 300000.50 > limit 250000 in pool p1", "context": {"a": "1", "b": "x"}}
    assert Alert.from_dict(alert.to_dict()) == alert
    resolved = Alert("spike", "resolved", "p2", datetime(1969, 7, 20, 20, 17, tzinfo=UTC), None,
                     Decimal("2"), Decimal("4"), "m", name="fast")
    assert resolved.key == "fast|resolved|p2|1969-07-20T20:17:00+00:00"
    data = resolved.to_dict()
    assert (data["name"], data["transaction_id"], data["investor_id"], data["context"]) == (
        "fast", None, None, {})
    assert Alert.from_dict(data) == resolved
    minimal = {k: v for k, v in data.items() if k not in ("name", "transaction_id",
                                                          "investor_id", "context")}
    assert Alert.from_dict(minimal) == Alert("spike", "resolved", "p2", resolved.at, None,
                                             Decimal("2"), Decimal("4"), "m")
    unsorted = {**data, "context": {"z": 1, "a": 2}}
    assert Alert.from_dict(unsorted).context == (("a", "2"), ("z", "1"))
