"""Position sizing against hand-worked numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.common.errors import InvalidArgument
from services.portfolio.sizing import atr_stop, grade_scale, size_position

D = Decimal


def size(
    *,
    equity: str = "10000",
    entry: str = "100",
    stop: str = "95",
    risk: str = "0.01",
    grade: str = "100",
    cap: str = "0.25",
):
    return size_position(
        D(equity),
        D(entry),
        D(stop),
        risk_per_trade=D(risk),
        grade=D(grade),
        max_fraction=D(cap),
    )


@pytest.mark.parametrize(
    ("grade", "scale"),
    [
        ("0", "0"),
        ("49", "0"),
        ("49.999", "0"),
        ("50", "0.5"),
        ("80", "0.8"),
        ("73.25", "0.7325"),
        ("100", "1"),
        ("120", "1"),
        ("NaN", "0"),
    ],
)
def test_grade_scale(grade: str, scale: str) -> None:
    assert grade_scale(D(grade)) == D(scale)


# Equity 10,000, 1% at risk, entry 100, stop 95 (5 a unit), cap 25% of equity = 2,500.
@pytest.mark.parametrize(
    ("grade", "risk_amount", "quantity", "value"),
    [
        # 10,000 x 0.01 x 0.5 = 50 at risk; 50 / 5 = 10 units; 10 x 100 = 1,000.
        ("50", "50", "10", "1000"),
        # x 0.8 = 80; 16 units; 1,600.
        ("80", "80", "16", "1600"),
        # x 1 = 100; 20 units; 2,000 (under the 2,500 cap).
        ("100", "100", "20", "2000"),
    ],
)
def test_size_by_grade(grade: str, risk_amount: str, quantity: str, value: str) -> None:
    got = size(grade=grade)
    assert got.risk_amount == D(risk_amount)
    assert got.quantity == D(quantity)
    assert got.value == D(value)
    assert got.grade_scale == D(grade) / 100
    assert not got.capped
    assert (got.entry_price, got.stop_price, got.equity) == (D(100), D(95), D(10000))


def test_grade_below_50_sizes_nothing_and_says_why() -> None:
    got = size(grade="49")
    assert (got.quantity, got.value, got.risk_amount, got.grade_scale) == (0, 0, 0, 0)
    assert not got.capped
    assert any("49" in note and "below 50" in note for note in got.notes)


def test_tight_stop_is_capped_and_risk_recomputed() -> None:
    # Stop 99: 100 at risk / 1 a unit = 100 units worth 10,000 > 2,500 cap.
    # Cut to 2,500 / 100 = 25 units; risk becomes 25 x (100 - 99) = 25.
    got = size(stop="99")
    assert got.capped
    assert got.quantity == D(25)
    assert got.value == D(2500)
    assert got.risk_amount == D(25)
    assert any("25%" in note for note in got.notes)


def test_cap_rounds_quantity_down() -> None:
    # Equity 1,000, cap 0.1 = 100, entry 3, stop 2.99: 10 / 0.01 = 1,000 units worth 3,000.
    # Cut to 100 / 3 = 33.333333333333333333 (down); value 99.999999999999999999;
    # risk 33.333333333333333333 x 0.01 = 0.33333333333333333333 -> 0.333333333333333333.
    got = size(equity="1000", entry="3", stop="2.99", cap="0.1")
    assert got.capped
    assert got.quantity == D("33.333333333333333333")
    assert got.value == D("99.999999999999999999")
    assert got.risk_amount == D("0.333333333333333333")


def test_quantity_rounds_down_never_risking_more() -> None:
    # Equity 1,000 x 1% = 10 at risk; 7 - 4 = 3 a unit: 3.333... -> 3.333333333333333333;
    # value 3.333333333333333333 x 7 = 23.333333333333333331 (under the 250 cap).
    got = size(equity="1000", entry="7", stop="4")
    assert got.quantity == D("3.333333333333333333")
    assert got.value == D("23.333333333333333331")
    assert got.risk_amount == D(10)
    assert got.quantity * 3 <= got.risk_amount


def test_full_cap_and_full_risk() -> None:
    # risk_per_trade 1 and cap 1 are allowed: 10,000 at risk / 50 = 200 units = 20,000 > 10,000.
    got = size(stop="50", risk="1", cap="1")
    assert got.capped
    assert got.quantity == D(100)
    assert got.risk_amount == D(5000)


def test_atr_stop() -> None:
    assert atr_stop(D(100), D("2.5"), D(2)) == D(95)
    # Floats from signals, converted once: 1.5 x 0.1 = 0.15 exactly in Decimal.
    assert atr_stop(D("10"), D(repr(0.1)), D(repr(1.5))) == D("9.85")


@pytest.mark.parametrize(
    ("entry", "atr", "multiple"),
    [
        ("100", "60", "2"),  # 100 - 120 = -20
        ("100", "50", "2"),  # exactly 0
        ("100", "2", "0"),
        ("100", "2", "-1"),
        ("100", "0", "2"),
        ("100", "NaN", "2"),
    ],
)
def test_atr_stop_unusable_names_atr_multiple(entry: str, atr: str, multiple: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        atr_stop(D(entry), D(atr), D(multiple))
    assert [f for f, _ in err.value.violations] == ["atr_multiple"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stop": "100"}, "stop_price"),
        ({"stop": "101"}, "stop_price"),
        ({"stop": "0"}, "stop_price"),
        ({"stop": "-5"}, "stop_price"),
        ({"risk": "0"}, "risk_per_trade"),
        ({"risk": "-0.01"}, "risk_per_trade"),
        ({"risk": "1.01"}, "risk_per_trade"),
        ({"equity": "0"}, "equity"),
        ({"equity": "-1"}, "equity"),
        ({"entry": "0", "stop": "-1"}, "entry_price"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        size(**kwargs)
    assert [f for f, _ in err.value.violations] == [field]


def test_stop_above_entry_says_long_only() -> None:
    with pytest.raises(InvalidArgument) as err:
        size(stop="105")
    assert "long" in err.value.violations[0][1]


def test_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        size(equity="0", risk="2", stop="200")
    assert [f for f, _ in err.value.violations] == ["equity", "risk_per_trade", "stop_price"]


def test_bad_configured_cap_is_a_bug() -> None:
    with pytest.raises(ValueError, match="max_fraction"):
        size(cap="0")
