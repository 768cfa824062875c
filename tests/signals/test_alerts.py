"""Alert rules: once per crossing, cooldown, validation naming the field."""

import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import InvalidArgument
from services.signals import alerts

Kind = signals_pb2.AlertConditionKind


def rule(kind: int, threshold: float, cooldown_s: int = 0) -> alerts.AlertRule:
    alert = signals_pb2.Alert(
        id="a1",
        symbol="BTC-USD",
        condition=signals_pb2.AlertCondition(kind=kind, threshold=threshold),
        cooldown=Duration(seconds=cooldown_s),
    )
    return alerts.AlertRule(alert, "alice")


def run(r: alerts.AlertRule, values: list[float], step_ms: int = 1000) -> list[int]:
    """Indices of the values at which the rule fired."""
    fired = []
    for i, v in enumerate(values):
        if alerts.evaluate(r, ["BTC-USD"], np.array([v]), i * step_ms):
            fired.append(i)
    return fired


def test_fires_once_per_crossing_not_while_it_holds() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, 100.0)
    assert run(r, [90, 95, 101, 105, 110, 99, 98, 102, 103]) == [2, 7]


def test_first_value_is_the_starting_point() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_GRADE_BELOW, 40.0)
    # Already below when first seen: no crossing yet.
    assert run(r, [30, 35, 45, 39]) == [3]


def test_cooldown_absorbs_crossings() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_RSI_ABOVE, 70.0, cooldown_s=5)
    # Crossings at t=1 s, 3 s (inside the cooldown), 7 s (after it).
    assert run(r, [60, 71, 60, 72, 60, 60, 60, 73]) == [1, 7]


def test_nan_is_no_data_and_changes_nothing() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_PRICE_BELOW, 10.0)
    assert run(r, [12, float("nan"), 9]) == [2]


def test_initialize_records_without_firing() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, 100.0)
    assert alerts.evaluate(r, ["BTC-USD"], np.array([50.0]), 0, initialize=True) == []
    assert alerts.evaluate(r, ["BTC-USD"], np.array([150.0]), 1) == [("BTC-USD", 150.0)]


def test_state_round_trips() -> None:
    r = rule(Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, 100.0, cooldown_s=60)
    run(r, [90, 110])
    copy = rule(Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, 100.0, cooldown_s=60)
    copy.load_state(r.state_json())
    assert copy.previous == r.previous and copy.fired_ms == r.fired_ms


def _validate(**fields: object) -> signals_pb2.Alert:
    return alerts.validate_create(
        signals_pb2.CreateAlertRequest(**fields),  # type: ignore[arg-type]
        symbol_of=lambda raw, field: raw.upper(),
        sector_of=lambda raw, field: raw,
        intervals={common_pb2.INTERVAL_1H},
        now_ms=0,
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"condition": {"kind": 1, "threshold": 50}}, "symbol"),
        (
            {"symbol": "BTC-USD", "sector": "AI", "condition": {"kind": 1, "threshold": 50}},
            "symbol",
        ),
        ({"symbol": "BTC-USD"}, "condition.kind"),
        ({"symbol": "BTC-USD", "condition": {"kind": 99}}, "condition.kind"),
        ({"symbol": "BTC-USD", "condition": {"kind": 1, "threshold": 120}}, "condition.threshold"),
        ({"symbol": "BTC-USD", "condition": {"kind": 3, "threshold": -1}}, "condition.threshold"),
        (
            {"symbol": "BTC-USD", "condition": {"kind": 6, "threshold": float("nan")}},
            "condition.threshold",
        ),
        ({"symbol": "BTC-USD", "condition": {"kind": 5}, "interval": 6}, "interval"),
        ({"symbol": "BTC-USD", "condition": {"kind": 5}, "cooldown": {"seconds": -1}}, "cooldown"),
        ({"symbol": "BTC-USD", "condition": {"kind": 5}, "name": "x" * 201}, "name"),
    ],
)
def test_bad_requests_name_the_field(fields: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidArgument) as err:
        _validate(**fields)
    assert field in [f for f, _ in err.value.violations]


def test_valid_request_defaults() -> None:
    alert = _validate(symbol="btc-usd", condition={"kind": 5, "threshold": 3})
    assert alert.symbol == "BTC-USD"
    assert alert.interval == common_pb2.INTERVAL_1H
    assert alert.cooldown.seconds == 3600
    assert alert.condition.threshold == 0.0  # a flip has no level
    assert len(alert.id) == 32
