"""Target-weight strategies against hand-worked weights and an exact water-filling reference."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import InvalidArgument
from services.portfolio.target_weights import (
    Weights,
    defensive,
    equal_weight,
    grade_weight,
    market_cap_weight,
    validate_targets,
)

D = Decimal
Q = Fraction(1, 10**18)


def fields(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [field for field, _ in err.value.violations]


# --- equal weight ---------------------------------------------------------------------------


def test_equal_weight_thirds_last_takes_the_remainder() -> None:
    # 1/3 = 0.333...3|33 -> 0.333333333333333333 twice; the last is 1 - 0.666666666666666666.
    got = equal_weight(["BTC", "ETH", "SOL"])
    assert got.weights == {
        "BTC": D("0.333333333333333333"),
        "ETH": D("0.333333333333333333"),
        "SOL": D("0.333333333333333334"),
    }
    assert list(got.weights) == ["BTC", "ETH", "SOL"]


def test_equal_weight_sixths_round_half_even_then_remainder() -> None:
    # 1/6 = 0.166...6|67 -> 0.166666666666666667 (five of them = 0.833333333333333335);
    # the last is 1 - 0.833333333333333335 = 0.166666666666666665.
    got = equal_weight(list("ABCDEF")).weights
    assert [got[a] for a in "ABCDE"] == [D("0.166666666666666667")] * 5
    assert got["F"] == D("0.166666666666666665")
    assert sum(got.values()) == 1


def test_equal_weight_one_asset_and_none() -> None:
    assert equal_weight(["BTC"]).weights == {"BTC": D(1)}
    empty = equal_weight([])
    assert empty.weights == {}
    assert any("cash" in note for note in empty.notes)


def test_equal_weight_counts_a_repeated_asset_once() -> None:
    got = equal_weight(["BTC", "ETH", "BTC", "ETH"])
    assert got.weights == {"BTC": D("0.5"), "ETH": D("0.5")}
    assert any("once" in note for note in got.notes)


# --- market cap -----------------------------------------------------------------------------


def test_market_cap_caps_and_redistributes() -> None:
    # 70/20/10 of 100: A wants 0.7 > 0.5 -> 0.5; the other 0.5 goes to B and C as 20:10,
    # 1/3 and 1/6 -> 0.333333333333333333 (rem .33) and 0.166666666666666666 (rem .67);
    # one quantum is missing and goes to C, the larger remainder.
    got = market_cap_weight({"A": D(70), "B": D(20), "C": D(10)}, D("0.5"))
    assert got.weights == {
        "A": D("0.5"),
        "B": D("0.333333333333333333"),
        "C": D("0.166666666666666667"),
    }
    assert sum(got.weights.values()) == 1
    assert any("capped at 0.5: A" in note for note in got.notes)


def test_market_cap_capping_cascades() -> None:
    # 40/30/20/10 capped at 0.3. Round 1: 0.4 > 0.3 caps A. Round 2: 0.7 over 30/20/10 gives
    # B 0.35 > 0.3, capped. Round 3: 0.4 over 20/10: C 4/15 = 0.2666..., D 2/15 = 0.1333...
    # Floors .266666666666666666 (rem .67) and .133333333333333333 (rem .33): C takes the quantum.
    got = market_cap_weight({"A": D(40), "B": D(30), "C": D(20), "D": D(10)}, D("0.3"))
    assert got.weights == {
        "A": D("0.3"),
        "B": D("0.3"),
        "C": D("0.266666666666666667"),
        "D": D("0.133333333333333333"),
    }


def test_market_cap_proportional_when_nothing_exceeds_the_cap() -> None:
    # 50/30/20: A sits exactly at the 0.5 cap, which is not above it.
    got = market_cap_weight({"A": D(50), "B": D(30), "C": D(20)}, D("0.5"))
    assert got.weights == {"A": D("0.5"), "B": D("0.3"), "C": D("0.2")}
    assert not any("capped" in note for note in got.notes)


def test_market_cap_too_few_assets_for_the_cap_leaves_cash() -> None:
    # 3 x 0.2 = 0.6 < 1: each gets 0.2 and 0.4 stays in cash.
    got = market_cap_weight({"A": D(900), "B": D(90), "C": D(10)}, D("0.2"))
    assert got.weights == {"A": D("0.2"), "B": D("0.2"), "C": D("0.2")}
    assert any("0.4 stays in cash" in note for note in got.notes)


def test_market_cap_drops_assets_without_a_positive_cap() -> None:
    got = market_cap_weight({"A": D(3), "B": D(0), "C": D(-5), "E": D(1)}, D(1))
    assert got.weights == {"A": D("0.75"), "E": D("0.25")}
    assert any("B, C" in note for note in got.notes)
    none = market_cap_weight({"B": D(0)}, D(1))
    assert none.weights == {}
    assert any("cash" in note for note in none.notes)


@pytest.mark.parametrize("bad", ["0", "-0.1", "1.5"])
def test_market_cap_max_weight_out_of_range(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        market_cap_weight({"A": D(1)}, D(bad))
    assert fields(err) == ["max_weight"]


def _water_fill(caps: dict[str, int], cap: Fraction) -> dict[str, Fraction]:
    """Exact reference: find the level k with w = min(cap, k x mcap) summing to 1.

    Tries every number m of largest assets held at the cap (independent of the
    iterative algorithm under test).
    """
    order = sorted(caps, key=lambda a: -caps[a])
    for m in range(len(order) + 1):
        rest = order[m:]
        total = sum(caps[a] for a in rest)
        if total == 0:
            continue
        level = (1 - m * cap) / total
        if level <= 0:
            continue
        if all(level * caps[a] <= cap for a in rest) and all(
            level * caps[a] >= cap for a in order[:m]
        ):
            return {a: (cap if a in order[:m] else level * caps[a]) for a in order}
    raise AssertionError("no level found")


@settings(max_examples=200, deadline=None)
@given(
    caps=st.lists(st.integers(1, 10**12), min_size=1, max_size=8),
    cap_bp=st.integers(1, 10_000),
)
def test_market_cap_matches_exact_water_filling(caps: list[int], cap_bp: int) -> None:
    named = {f"A{i}": c for i, c in enumerate(caps)}
    cap = Fraction(cap_bp, 10_000)
    got = market_cap_weight({a: D(c) for a, c in named.items()}, D(cap_bp) / 10_000).weights
    if cap * len(named) < 1:
        assert all(Fraction(w) == cap for w in got.values())
        return
    want = _water_fill(named, cap)
    assert sum(got.values()) == 1
    for a, w in got.items():
        assert abs(Fraction(w) - want[a]) <= Q
        assert Fraction(w) <= cap


# --- grade ----------------------------------------------------------------------------------


def test_grade_weight_over_the_threshold() -> None:
    # A 80 and B 60 qualify (60 >= 60), C 59.9 does not. 80/140 = 0.571428571428571428|57,
    # 60/140 = 0.428571428571428571|43: floors sum to 0.999999999999999999, A has the larger
    # remainder and takes the quantum.
    got = grade_weight({"A": D(80), "B": D(60), "C": D("59.9")}, D(60))
    assert got.weights == {"A": D("0.571428571428571429"), "B": D("0.428571428571428571")}
    assert any("C (59.9)" in note for note in got.notes)


def test_grade_weight_none_qualifies_is_all_cash() -> None:
    got = grade_weight({"A": D(59), "B": D("12.5")}, D(60))
    assert got.weights == {}
    assert any("no asset graded at least 60" in note for note in got.notes)
    assert grade_weight({}, D(60)).weights == {}


def test_grade_weight_leaves_out_ungraded() -> None:
    got = grade_weight({"A": D(75), "B": D("NaN")}, D(60))
    assert got.weights == {"A": D(1)}
    assert any("no grade" in note and "B" in note for note in got.notes)


def test_grade_weight_from_float_grades() -> None:
    # Grades come from signals as floats, converted once with Decimal(repr(x)).
    grades = {"A": D(repr(70.5)), "B": D(repr(29.5)), "C": D(repr(100.0))}
    got = grade_weight(grades, D(repr(25.0)))
    # 70.5 + 29.5 + 100 = 200: 0.3525, 0.1475, 0.5 exactly.
    assert got.weights == {"A": D("0.3525"), "B": D("0.1475"), "C": D("0.5")}


@pytest.mark.parametrize("bad", ["-1", "100.5", "NaN"])
def test_grade_weight_min_grade_out_of_range(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        grade_weight({"A": D(70)}, D(bad))
    assert fields(err) == ["min_grade"]


def test_defensive_is_all_stablecoin() -> None:
    got = defensive("USDC")
    assert isinstance(got, Weights)
    assert got.weights == {"USDC": D(1)}
    assert any("BEAR" in note for note in got.notes)


# --- validate_targets -----------------------------------------------------------------------


def test_validate_targets_accepts_weights_summing_to_at_most_one() -> None:
    got = validate_targets([("BTC", "0.5"), ("ETH", "0.3"), ("SOL", "0")])
    assert got == {"BTC": D("0.5"), "ETH": D("0.3"), "SOL": D(0)}
    assert validate_targets([("BTC", "1")]) == {"BTC": D(1)}
    assert validate_targets([]) == {}


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        ([("BTC", "abc")], "targets[0].weight"),
        ([("BTC", "0.5"), ("ETH", "")], "targets[1].weight"),
        ([("BTC", "1e-3")], "targets[0].weight"),
        ([("BTC", "0.1234567890123456789")], "targets[0].weight"),
        ([("BTC", "-0.1")], "targets[0].weight"),
        ([("BTC", "1.01")], "targets[0].weight"),
        ([("BTC", "0.2"), ("BTC", "0.3")], "targets[1].asset"),
        ([("  ", "0.2")], "targets[0].asset"),
        ([("BTC", "0.7"), ("ETH", "0.5")], "targets"),
    ],
)
def test_validate_targets_names_the_bad_field(targets: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_targets(targets)
    assert fields(err) == [field]


def test_validate_targets_sum_message() -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_targets([("BTC", "0.7"), ("ETH", "0.5")])
    assert err.value.violations == (("targets", "weights sum to 1.2; at most 1"),)


def test_validate_targets_reports_every_bad_item_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_targets([("BTC", "x"), ("ETH", "0.1"), ("ETH", "2")])
    assert fields(err) == ["targets[0].weight", "targets[2].asset", "targets[2].weight"]
