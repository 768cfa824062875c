"""Rebalancing plans against hand-worked trades, and a property test of the whole plan."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import grpc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.common.errors import FailedPrecondition, InvalidArgument, to_rpc_status
from services.portfolio.rebalance import (
    BUY,
    SELL,
    MissingPrice,
    Plan,
    Position,
    TaxImpact,
    plan_rebalance,
)

D = Decimal
Q = D("1e-18")


def pos(asset: str, quantity: str, price: str) -> Position:
    return Position(asset, D(quantity), D(price))


def weights(targets: dict[str, str]) -> dict[str, Decimal]:
    return {a: D(w) for a, w in targets.items()}


def trade_rows(plan: Plan) -> list[tuple[str, str, Decimal, Decimal, Decimal]]:
    return [(t.side, t.asset, t.quantity, t.value, t.fee) for t in plan.trades]


def gap(values: dict[str, Fraction], cash: Fraction, targets: dict[str, Fraction]) -> Fraction:
    """Reference drift: sum of |weight - target| / 2 over assets and cash, exactly."""
    total = cash + sum(values.values())
    cash_target = 1 - sum(targets.values())
    out = abs(cash / total - cash_target)
    for asset in values.keys() | targets.keys():
        out += abs(values.get(asset, Fraction(0)) / total - targets.get(asset, Fraction(0)))
    return out / 2


# 60/30/10 -> 40/40/20: A 6 @ 100 = 600, B 6 @ 50 = 300, C 10 @ 10 = 100; V = 1,000, no cash.
SIXTY_THIRTY_TEN = [pos("A", "6", "100"), pos("B", "6", "50"), pos("C", "10", "10")]
FORTY_FORTY_TWENTY = weights({"A": "0.4", "B": "0.4", "C": "0.2"})


def test_three_assets_without_fees() -> None:
    # Sell A 600 - 400 = 200 (2 units); buy B 100 (2 units), C 100 (10 units); nothing left over.
    plan = plan_rebalance(SIXTY_THIRTY_TEN, D(0), FORTY_FORTY_TWENTY, {})
    assert trade_rows(plan) == [
        (SELL, "A", D(2), D(200), D(0)),
        # Equal values: ties go by asset.
        (BUY, "B", D(2), D(100), D(0)),
        (BUY, "C", D(10), D(100), D(0)),
    ]
    assert plan.portfolio_value == D(1000)
    assert plan.drift_before == D("0.2")  # (0.2 + 0.1 + 0.1 + 0) / 2
    assert plan.drift_after == 0
    assert [(d.asset, d.target, d.before, d.after) for d in plan.drift] == [
        ("A", D("0.4"), D("0.6"), D("0.4")),
        ("B", D("0.4"), D("0.3"), D("0.4")),
        ("C", D("0.2"), D("0.1"), D("0.2")),
    ]
    assert plan.total_fees == 0
    assert plan.notes == []


def test_three_assets_with_10bp_fees() -> None:
    # Sell A: 2 units = 200, fee 0.2, net 199.8 -- all the cash there is.
    # Buys want B 100 and C 100, 200.2 with fees > 199.8: scaled by 199.8 / 200.2, so each gets
    # a budget of 99.9 for value + fee, i.e. value <= 99.9 / 1.001.
    # B: 99.9 / (50 x 1.001) = 1.996003996003996003|996 -> 1.996003996003996003 units,
    #    value 99.80019980019980015, fee 0.09980019980019980015 -> 0.099800199800199800;
    #    cost 99.89999999999999995 <= 99.9.
    # C: 99.9 / (10 x 1.001) = 9.980019980019980019|98 -> 9.980019980019980019 units,
    #    value 99.80019980019980019, fee 0.09980019980019980019 -> 0.099800199800199800;
    #    cost 99.89999999999999999 <= 99.9.
    # C's value is the larger, so C is listed first among the buys.
    plan = plan_rebalance(SIXTY_THIRTY_TEN, D(0), FORTY_FORTY_TWENTY, {}, fee_rate=D("0.001"))
    assert trade_rows(plan) == [
        (SELL, "A", D(2), D(200), D("0.2")),
        (BUY, "C", D("9.980019980019980019"), D("99.80019980019980019"), D("0.0998001998001998")),
        (BUY, "B", D("1.996003996003996003"), D("99.80019980019980015"), D("0.0998001998001998")),
    ]
    # 0.2 + 2 x 0.0998001998001998
    assert plan.total_fees == D("0.3996003996003996")
    assert plan.drift_before == D("0.2")
    # Cash left: 199.8 - 99.89999999999999999 - 99.89999999999999995 = 0.00000000000000006.
    after = {
        "A": Fraction(400),
        "B": Fraction(D("7.996003996003996003")) * 50,
        "C": Fraction(D("19.980019980019980019")) * 10,
    }
    cash_after = Fraction(D("0.00000000000000006"))
    targets = {a: Fraction(w) for a, w in FORTY_FORTY_TWENTY.items()}
    want = gap(after, cash_after, targets)
    assert abs(Fraction(plan.drift_after) - want) <= Fraction(Q) / 2
    assert plan.drift_after < D("0.0002")
    assert any("scaled down" in note for note in plan.notes)


def test_asset_not_in_targets_is_sold_and_target_not_held_is_bought() -> None:
    # DOGE (100 @ 1) has no target: sold entirely; SOL is bought at its quoted price 20.
    # V = 100 + 100 (BTC 1 @ 100) = 200; SOL target 0.5 = 100 -> 5 units.
    plan = plan_rebalance(
        [pos("BTC", "1", "100"), pos("DOGE", "100", "1")],
        D(0),
        weights({"BTC": "0.5", "SOL": "0.5"}),
        {"SOL": D(20)},
    )
    assert trade_rows(plan) == [
        (SELL, "DOGE", D(100), D(100), D(0)),
        (BUY, "SOL", D(5), D(100), D(0)),
    ]
    assert [d.asset for d in plan.drift] == ["BTC", "DOGE", "SOL"]


def test_target_zero_sells_the_whole_holding_exactly() -> None:
    # 0.123456789012345678 @ 3: all of it goes, no rounding of the quantity.
    plan = plan_rebalance([pos("X", "0.123456789012345678", "3")], D(1), {}, {})
    assert plan.trades[0].quantity == D("0.123456789012345678")
    assert plan.trades[0].value == D("0.370370367037037034")


def test_cash_keeps_its_target() -> None:
    # Targets A 0.5, B 0.3: cash's target is 0.2. V = 600 + 200 + 200 = 1,000.
    # Sell A 100, buy B 100; cash stays 200 = 0.2.
    plan = plan_rebalance(
        [pos("A", "600", "1"), pos("B", "200", "1")], D(200), weights({"A": "0.5", "B": "0.3"}), {}
    )
    assert trade_rows(plan) == [(SELL, "A", D(100), D(100), D(0)), (BUY, "B", D(100), D(100), D(0))]
    assert plan.drift_after == 0


def test_drift_band_skips_assets_inside_it() -> None:
    # A 30 @ 20 = 600 (target 0.5, off by 0.10), B 110 @ 3 = 330 (0.35, off by 0.02),
    # C 10 @ 7 = 70 (0.15, off by 0.08); V = 1,000. Band 0.05 leaves B alone.
    # Sell A 100 = 5 units. Buy C 150 - 70 = 80: 80 / 7 = 11.428571428571428571|43 units,
    # value 79.999999999999999997. Cash left 100 - 79.999999999999999997.
    positions = [pos("A", "30", "20"), pos("B", "110", "3"), pos("C", "10", "7")]
    targets = weights({"A": "0.5", "B": "0.35", "C": "0.15"})
    plan = plan_rebalance(positions, D(0), targets, {}, drift_band=D("0.05"))
    assert trade_rows(plan) == [
        (SELL, "A", D(5), D(100), D(0)),
        (BUY, "C", D("11.428571428571428571"), D("79.999999999999999997"), D(0)),
    ]
    assert any("drift band" in note and "B" in note for note in plan.notes)
    # After: A 0.5, B 0.33, C 0.149999999999999999997, cash 0.020000000000000000003:
    # (0 + 0.02 + 0.000000000000000000003 + 0.020000000000000000003) / 2 = 0.020000000000000000003.
    assert plan.drift_after == D("0.02")
    # A weight exactly on the band's edge is inside it.
    edge = plan_rebalance(positions, D(0), targets, {}, drift_band=D("0.1"))
    assert [t.asset for t in edge.trades] == []


def test_drift_band_scales_buys_without_spending_the_cash_target() -> None:
    # A 600 (target 0.5, off by 0.1 = the band: not sold), B 150 (target 0.3, off by 0.15),
    # cash 250 with a target of 0.2 = 200: only 50 may be spent. B wants 150: scaled to 1/3.
    plan = plan_rebalance(
        [pos("A", "600", "1"), pos("B", "150", "1")],
        D(250),
        weights({"A": "0.5", "B": "0.3"}),
        {},
        drift_band=D("0.1"),
    )
    assert trade_rows(plan) == [(BUY, "B", D(50), D(50), D(0))]
    assert any("33.33%" in note and "target of 200" in note for note in plan.notes)


def test_buy_only_deploys_cash_in_proportion_to_shortfall() -> None:
    # A 100 @ 5 = 500 (target 0.6: short 100), B 200 @ 1 (0.4: short 200), C 200 @ 1 (no target,
    # not sold), cash 100; V = 1,000. 100 to spend for 300 of shortfall: scaled to 1/3.
    # A: budget 100 x 100 / 300 = 33.333333333333333333|3, / 5 = 6.666666666666666666 units,
    #    value 33.33333333333333333; B: 66.666666666666666666 units at 1.
    plan = plan_rebalance(
        [pos("A", "100", "5"), pos("B", "200", "1"), pos("C", "200", "1")],
        D(100),
        weights({"A": "0.6", "B": "0.4"}),
        {},
        buy_only=True,
    )
    assert trade_rows(plan) == [
        (BUY, "B", D("66.666666666666666666"), D("66.666666666666666666"), D(0)),
        (BUY, "A", D("6.666666666666666666"), D("33.33333333333333333"), D(0)),
    ]
    assert any("not sold: C" in note for note in plan.notes)
    assert any("scaled down to 33.33%" in note for note in plan.notes)


def test_buy_only_with_enough_cash_fills_every_shortfall() -> None:
    # A 300, B 650, cash 350: V = 1,300, targets 650 each. A is short 350, cash pays it.
    plan = plan_rebalance(
        [pos("A", "300", "1"), pos("B", "650", "1")],
        D(350),
        weights({"A": "0.5", "B": "0.5"}),
        {},
        buy_only=True,
    )
    assert trade_rows(plan) == [(BUY, "A", D(350), D(350), D(0))]
    assert plan.drift_after == 0
    assert plan.notes == []


# A 500 -> 0.2 (sell 300), B 100 -> 0.3 (buy 200), C 100 -> 0.2 (buy 100),
# D 300 -> 0.25 (sell 50), E 0 -> 0.05 (buy 50); V = 1,000, all at price 1.
FIVE = [pos("A", "500", "1"), pos("B", "100", "1"), pos("C", "100", "1"), pos("D", "300", "1")]
FIVE_TARGETS = weights({"A": "0.2", "B": "0.3", "C": "0.2", "D": "0.25", "E": "0.05"})


def test_max_trades_keeps_the_largest() -> None:
    full = plan_rebalance(FIVE, D(0), FIVE_TARGETS, {"E": D(1)})
    assert [(t.side, t.asset, t.value) for t in full.trades] == [
        (SELL, "A", D(300)),
        (SELL, "D", D(50)),
        (BUY, "B", D(200)),
        (BUY, "C", D(100)),
        (BUY, "E", D(50)),
    ]
    # Two trades: sell A 300 and buy B 200; the rest stays in cash.
    two = plan_rebalance(FIVE, D(0), FIVE_TARGETS, {"E": D(1)}, max_trades=2)
    assert [(t.side, t.asset, t.value) for t in two.trades] == [
        (SELL, "A", D(300)),
        (BUY, "B", D(200)),
    ]
    assert any("max_trades 2" in n and "SELL D" in n and "BUY C" in n for n in two.notes)
    # Four: the 50s tie; the sell (which funds) ranks first, so E is left out.
    four = plan_rebalance(FIVE, D(0), FIVE_TARGETS, {"E": D(1)}, max_trades=4)
    assert [t.asset for t in four.trades] == ["A", "D", "B", "C"]
    assert plan_rebalance(FIVE, D(0), FIVE_TARGETS, {"E": D(1)}, max_trades=5).trades == full.trades


def test_max_trades_rescales_buys_to_the_kept_sells() -> None:
    # A 600 -> 0.3 (sell 300), C 400 -> 0.3 (sell 100), B 0 -> 0.4 (buy 400); V = 1,000.
    # Two trades: B 400 and A 300 are kept. Without C's sale only 300 is raised, so the
    # buy of B is scaled to 300 / 400 = 75%.
    plan = plan_rebalance(
        [pos("A", "600", "1"), pos("C", "400", "1")],
        D(0),
        weights({"A": "0.3", "B": "0.4", "C": "0.3"}),
        {"B": D(1)},
        max_trades=2,
    )
    assert trade_rows(plan) == [(SELL, "A", D(300), D(300), D(0)), (BUY, "B", D(300), D(300), D(0))]
    assert any("scaled down to 75%" in note for note in plan.notes)
    assert any("left out SELL C (value 100)" in note for note in plan.notes)


def test_tax_preview_sees_net_proceeds_and_sums_the_gain() -> None:
    calls: list[tuple[str, Decimal, Decimal]] = []

    def preview(asset: str, quantity: Decimal, net: Decimal) -> TaxImpact:
        calls.append((asset, quantity, net))
        return TaxImpact(short_gain=D("10.5"), long_gain=D(-3))

    plan = plan_rebalance(
        SIXTY_THIRTY_TEN, D(0), FORTY_FORTY_TWENTY, {}, fee_rate=D("0.001"), tax_preview=preview
    )
    # One sale: A 2 units for 200 - 0.2 fee.
    assert calls == [("A", D(2), D("199.8"))]
    assert plan.trades[0].tax == TaxImpact(D("10.5"), D(-3))
    assert plan.trades[0].tax.gain == D("7.5")
    assert all(t.tax is None for t in plan.trades if t.side == BUY)
    assert plan.realized_gain == D("7.5")


def test_missing_price_is_a_failed_precondition() -> None:
    with pytest.raises(MissingPrice) as err:
        plan_rebalance([pos("BTC", "1", "100")], D(0), weights({"BTC": "0.5", "SOL": "0.5"}), {})
    assert err.value.asset == "SOL"
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, FailedPrecondition)
    assert to_rpc_status(err.value).code == grpc.StatusCode.FAILED_PRECONDITION
    # A held target asset whose price is 0 is just as unusable.
    with pytest.raises(MissingPrice):
        plan_rebalance([pos("BTC", "1", "0")], D(10), weights({"BTC": "0.5"}), {})


def test_target_of_zero_needs_no_price_and_unpriced_holdings_are_left_alone() -> None:
    plan = plan_rebalance(
        [pos("BTC", "1", "100"), pos("DEAD", "1000", "0")],
        D(0),
        weights({"BTC": "1", "SOL": "0"}),
        {},
    )
    assert plan.trades == []
    assert plan.portfolio_value == D(100)
    assert any("DEAD" in note for note in plan.notes)


def test_positions_of_one_asset_are_added_up() -> None:
    plan = plan_rebalance(
        [pos("A", "1", "10"), pos("A", "2", "10")], D(0), weights({"A": "0.5"}), {}
    )
    # 3 units = 30; target 15: sell 1.5.
    assert trade_rows(plan) == [(SELL, "A", D("1.5"), D(15), D(0))]
    with pytest.raises(ValueError, match="different prices"):
        plan_rebalance([pos("A", "1", "10"), pos("A", "2", "11")], D(0), {}, {})


def test_worthless_portfolio_plans_nothing() -> None:
    plan = plan_rebalance([], D(0), weights({"BTC": "1"}), {"BTC": D(100)})
    assert plan.trades == []
    assert plan.portfolio_value == 0
    assert plan.drift_before == D("0.5")
    assert any("worth nothing" in note for note in plan.notes)


def test_only_cash_buys_everything() -> None:
    # 1,000 cash into BTC 0.6 @ 30,000 and ETH 0.4 @ 3,000: 0.02 BTC and 0.133...3 ETH.
    plan = plan_rebalance(
        [], D(1000), weights({"BTC": "0.6", "ETH": "0.4"}), {"BTC": D(30000), "ETH": D(3000)}
    )
    assert trade_rows(plan) == [
        (BUY, "BTC", D("0.02"), D(600), D(0)),
        (BUY, "ETH", D("0.133333333333333333"), D("399.999999999999999"), D(0)),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cash": D(-1)}, "cash"),
        ({"drift_band": D("-0.01")}, "drift_band"),
        ({"drift_band": D(1)}, "drift_band"),
        ({"max_trades": -1}, "max_trades"),
        ({"fee_rate": D("-0.001")}, "fee_rate"),
        ({"fee_rate": D(1)}, "fee_rate"),
        ({"targets": weights({"A": "0.7", "B": "0.5"})}, "targets"),
        ({"targets": weights({"A": "-0.1"})}, "targets"),
        ({"targets": weights({"A": "1.1"})}, "targets"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"cash": D(0), "targets": weights({"A": "1"})} | kwargs
    cash, targets = args.pop("cash"), args.pop("targets")
    with pytest.raises(InvalidArgument) as err:
        plan_rebalance([pos("A", "1", "1")], cash, targets, {}, **args)  # type: ignore[arg-type]
    assert [f for f, _ in err.value.violations] == [field]


def test_every_bad_parameter_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        plan_rebalance([], D(-1), {}, {}, drift_band=D(2), fee_rate=D(-1), max_trades=-3)
    assert [f for f, _ in err.value.violations] == ["cash", "drift_band", "max_trades", "fee_rate"]


# --- property -------------------------------------------------------------------------------

ASSETS = ["A", "B", "C", "D", "E"]


@st.composite
def portfolios(
    draw: st.DrawFn,
) -> tuple[list[Position], Decimal, dict[str, Decimal], dict[str, Decimal]]:
    positions = []
    prices: dict[str, Decimal] = {}
    for asset in ASSETS:
        price = D(draw(st.integers(1, 10**9))).scaleb(-draw(st.integers(0, 8)))
        if draw(st.booleans()):
            quantity = D(draw(st.integers(0, 10**12))).scaleb(-draw(st.integers(0, 18)))
            positions.append(Position(asset, quantity, price))
        else:
            prices[asset] = price
    cash = D(draw(st.integers(0, 10**10))).scaleb(-draw(st.integers(0, 18)))
    # Integer parts of 10,000 (the last is cash), so weights have 4 places and sum <= 1.
    parts = draw(st.lists(st.integers(0, 100), min_size=len(ASSETS) + 1, max_size=len(ASSETS) + 1))
    total = sum(parts) or 1
    targets = {
        a: (D(p * 10_000 // total) / 10_000) for a, p in zip(ASSETS, parts, strict=False) if p
    }
    return positions, cash, targets, prices


@settings(max_examples=300, deadline=None)
@given(portfolios())
# Found by CI: a holding worth 1e-19 rounds to a portfolio value of 0.
@example(
    (
        [Position("A", Decimal("1E-18"), Decimal("0.1"))],
        Decimal(0),
        {},
        {"B": Decimal(1), "C": Decimal(1), "D": Decimal(1), "E": Decimal(1)},
    )
)
def test_plan_reaches_the_targets_within_rounding(
    case: tuple[list[Position], Decimal, dict[str, Decimal], dict[str, Decimal]],
) -> None:
    """No fees, no band: every asset lands on its target value, give or take rounding.

    Each quantity is rounded down to 18 places (at most one quantity quantum, worth
    price x 1e-18) and each value half-even (half a money quantum); buys may also be
    scaled down by what the sales' rounding lost. So every asset ends within
    sum over assets of (2 x price x 1e-18 + 2e-18) of its target value, buys never spend cash's
    target share, cash never goes negative, and no sale exceeds the holding.
    """
    positions, cash, targets, prices = case
    held = {p.asset: Fraction(p.quantity) for p in positions}
    price = {p.asset: Fraction(p.price) for p in positions} | {
        a: Fraction(v) for a, v in prices.items()
    }
    total = Fraction(cash) + sum(held[a] * price[a] for a in held)
    if total == 0:
        return
    plan = plan_rebalance(positions, cash, targets, prices)

    q = Fraction(1, 10**18)
    quantity = dict(held)
    cash_after = Fraction(cash)
    for t in plan.trades:
        assert t.quantity > 0
        assert t.fee == 0
        assert abs(Fraction(t.value) - Fraction(t.quantity) * Fraction(t.price)) <= q / 2
        if t.side == SELL:
            assert t.quantity <= held[t.asset]
            quantity[t.asset] -= Fraction(t.quantity)
            cash_after += Fraction(t.value)
        else:
            quantity[t.asset] = quantity.get(t.asset, Fraction(0)) + Fraction(t.quantity)
            cash_after -= Fraction(t.value)
    cash_target = (1 - sum(Fraction(w) for w in targets.values())) * total
    proceeds = sum(Fraction(t.value) for t in plan.trades if t.side == SELL)
    spent = sum(Fraction(t.value) for t in plan.trades if t.side == BUY)
    # Buys never dip into cash's target share; sales rounded down may leave cash a
    # little short of it, never below zero.
    assert spent <= max(Fraction(0), Fraction(cash) + proceeds - cash_target)
    assert cash_after >= 0

    tolerance = sum(2 * price[a] * q + 2 * q for a in price)
    for asset in price:
        want = Fraction(targets.get(asset, D(0))) * total
        got = quantity.get(asset, Fraction(0)) * price[asset]
        assert abs(got - want) <= tolerance, (asset, got, want)
    assert abs(cash_after - cash_target) <= tolerance * len(price)
    assert Fraction(plan.drift_after) <= tolerance * (len(price) + 1) / total + q


@settings(max_examples=200, deadline=None)
@given(
    portfolios(),
    st.integers(0, 100),  # fee in bp
    st.integers(0, 2_000),  # band in bp
    st.booleans(),
    st.integers(0, 6),
)
def test_plan_invariants_with_fees_band_and_limits(
    case: tuple[list[Position], Decimal, dict[str, Decimal], dict[str, Decimal]],
    fee_bp: int,
    band_bp: int,
    buy_only: bool,
    max_trades: int,
) -> None:
    """Whatever the options: cash never negative, no oversell, limits and band respected."""
    positions, cash, targets, prices = case
    fee_rate, band = D(fee_bp) / 10_000, D(band_bp) / 10_000
    held = {p.asset: Fraction(p.quantity) for p in positions}
    value = {p.asset: Fraction(p.quantity) * Fraction(p.price) for p in positions}
    total = Fraction(cash) + sum(value.values())
    if total == 0:
        return
    plan = plan_rebalance(
        positions,
        cash,
        targets,
        prices,
        drift_band=band,
        buy_only=buy_only,
        max_trades=max_trades,
        fee_rate=fee_rate,
    )
    q = Fraction(1, 10**18)
    if max_trades:
        assert len(plan.trades) <= max_trades
    assert len({t.asset for t in plan.trades}) == len(plan.trades)
    cash_after = Fraction(cash)
    for t in plan.trades:
        assert abs(Fraction(t.fee) - Fraction(t.value) * Fraction(fee_rate)) <= q / 2
        weight = value.get(t.asset, Fraction(0)) / total
        target = Fraction(targets.get(t.asset, D(0)))
        assert abs(weight - target) > Fraction(band)
        if t.side == SELL:
            assert not buy_only
            assert weight > target
            assert 0 < t.quantity <= held[t.asset]
            cash_after += Fraction(t.value) - Fraction(t.fee)
        else:
            assert weight < target
            cash_after -= Fraction(t.value) + Fraction(t.fee)
    assert cash_after >= 0
    assert Fraction(plan.total_fees) == sum(Fraction(t.fee) for t in plan.trades)
    # Sells come first, then buys, each by value descending.
    sides = [t.side for t in plan.trades]
    assert sides == sorted(sides, key=lambda s: s != SELL)
    for side in (SELL, BUY):
        values = [t.value for t in plan.trades if t.side == side]
        assert values == sorted(values, reverse=True)
