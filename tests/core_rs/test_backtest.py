"""core_rs.backtest through Python: hand-worked runs (numbers worked in the
comments), no look-ahead, the sweep against single runs, cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core_rs import backtest as bt

HOUR = 3_600_000


def bars(rows: list[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    a = np.array(rows, dtype=np.float64)
    t = np.arange(len(rows), dtype=np.int64) * HOUR
    return t, a[:, 0], a[:, 1], a[:, 2], a[:, 3]


def flat(p: float) -> tuple[float, float, float, float]:
    return (p, p, p, p)


def signals(n: int, enter: list[int], exit: list[int] = ()) -> dict:
    el = np.zeros(n, bool)
    xl = np.zeros(n, bool)
    el[list(enter)] = True
    xl[list(exit)] = True
    return {"kind": "conditions", "enter_long": el, "exit_long": xl}


def random_walk(n: int, seed: int, gap: float = 0.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[c[0], c[:-1]] * np.exp(rng.normal(0, gap, n))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    t = np.arange(n, dtype=np.int64) * HOUR
    return t, o, h, lo, c


def test_single_trade_with_fee_and_slippage() -> None:
    data = bars(
        [flat(100), (100, 102, 99, 101), (110, 112, 108, 110), (120, 121, 119, 120), flat(130)]
    )
    r = bt.run_backtest(*data, signals(5, [0], [2]), {"fee": 0.01, "slippage": 0.001})
    tr = r["trades"]
    # Buy at bar 1's open 100 * 1.001 = 100.1; 10000 buys 10000 / (100.1 *
    # 1.01) = 98.91099 units (fee included). Sell at bar 3's open 120 * 0.999
    # = 119.88. Fees: 1 % of 98.91099 * 100.1 (= 99.00990) + 1 % of 98.91099
    # * 119.88 (= 118.57450); pnl = 98.91099 * 19.78 (= 1956.45940) - 217.58440
    # = 1738.87500.
    units = 10_000 / (100.1 * 1.01)
    fees = 0.01 * units * 100.1 + 0.01 * units * 119.88
    assert list(tr["entry_bar"]) == [1] and list(tr["exit_bar"]) == [3]
    assert tr["entry_price"][0] == pytest.approx(100.1, rel=1e-12)
    assert tr["exit_price"][0] == pytest.approx(119.88, rel=1e-12)
    assert tr["size"][0] == pytest.approx(units, rel=1e-12)
    assert tr["fees"][0] == pytest.approx(fees, rel=1e-12)
    assert tr["pnl"][0] == pytest.approx(units * 19.78 - fees, rel=1e-12)
    assert tr["pnl"][0] == pytest.approx(1738.875, abs=1e-4)
    assert tr["return_pct"][0] == pytest.approx(
        119.88 / 100.1 - 1 - fees / (units * 100.1), rel=1e-12
    )
    assert tr["duration_ms"][0] == 2 * HOUR
    assert tr["exit_reason"][0] == bt.SIGNAL
    assert r["equity"][-1] == pytest.approx(10_000 + units * 19.78 - fees, rel=1e-12)
    assert r["stats"]["n_trades"] == 1
    assert r["stats"]["fees_total"] == pytest.approx(fees, rel=1e-12)
    # In the market from bar 1 to bar 3: 3 of 5 bars.
    assert r["stats"]["exposure_pct"] == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("bar2", "price", "reason"),
    [
        ((99, 100, 94, 96), 95.0, bt.STOP_LOSS),  # touched: the level 100 * 0.95
        ((90, 92, 88, 91), 90.0, bt.STOP_LOSS),  # gapped through: the open
        ((105, 111, 104, 106), 110.0, bt.TAKE_PROFIT),  # target 100 * 1.1
        ((100, 111, 94, 100), 95.0, bt.STOP_LOSS),  # both touched: the stop
    ],
)
def test_stops_and_targets(bar2: tuple, price: float, reason: int) -> None:
    data = bars([flat(100), (100, 101, 99, 100), bar2, flat(100)])
    cfg = {"stop_loss": ("pct", 0.05), "take_profit": ("pct", 0.1)}
    r = bt.run_backtest(*data, signals(4, [0]), cfg)
    assert r["trades"]["exit_bar"][0] == 2
    assert r["trades"]["exit_price"][0] == pytest.approx(price, rel=1e-12)
    assert r["trades"]["exit_reason"][0] == reason
    # 100 units from 100: pnl 100 * (price - 100).
    assert r["trades"]["pnl"][0] == pytest.approx(100 * (price - 100), rel=1e-12)


def test_no_trade_on_the_last_bar_and_end_exit_at_the_close() -> None:
    data = bars([flat(100), flat(101), flat(102)])
    r = bt.run_backtest(*data, signals(3, [2]), {})
    assert len(r["trades"]["pnl"]) == 0
    assert np.all(r["equity"] == 10_000)
    data = bars([flat(100), (100, 105, 99, 104)])
    r = bt.run_backtest(*data, signals(2, [0]), {})
    assert r["trades"]["exit_reason"][0] == bt.END
    assert r["trades"]["exit_price"][0] == 104.0
    assert r["equity"][-1] == pytest.approx(10_400.0)


def test_whole_units_short_and_window() -> None:
    data = bars([flat(300), flat(300), flat(330)])
    r = bt.run_backtest(*data, signals(3, [0]), {"cash": 1000, "whole_units": True})
    # floor(1000 / 300) = 3 units, +30 each.
    assert r["trades"]["size"][0] == 3 and r["trades"]["pnl"][0] == 90
    data = bars([flat(100), flat(100), flat(90), flat(90)])
    cond = {"kind": "conditions", "enter_short": [True, False, False, False]}
    r = bt.run_backtest(*data, cond, {"allow_short": True})
    # Short 100 units at 100, covered at the last close 90: +1000.
    assert r["trades"]["size"][0] == -100 and r["trades"]["pnl"][0] == pytest.approx(1000)
    data = bars([flat(100), flat(100), flat(100), flat(110), flat(120), flat(130)])
    r = bt.run_backtest(*data, signals(6, [0, 2]), {"start": 2, "end": 5})
    assert np.isnan(r["equity"][:2]).all() and np.isnan(r["equity"][5])
    # Entered at bar 3's open 110, closed at close[4] = 120 by the window end.
    assert list(r["trades"]["entry_bar"]) == [3] and list(r["trades"]["exit_bar"]) == [4]
    assert r["stats"]["buy_hold_return_pct"] == pytest.approx(20.0)  # 100 -> 120


def test_bad_settings_name_the_field() -> None:
    data = random_walk(50, 1)
    with pytest.raises(ValueError, match=r"^fast: must be less than slow"):
        bt.run_backtest(*data, {"kind": "ma_cross", "fast": 20, "slow": 10}, {})
    with pytest.raises(ValueError, match=r"^lower: "):
        bt.run_backtest(*data, {"kind": "rsi", "lower": 80, "upper": 70}, {})
    with pytest.raises(ValueError, match=r"^k: "):
        bt.run_backtest(*data, {"kind": "bollinger", "k": 0}, {})
    with pytest.raises(ValueError, match=r"^feee: not a config key"):
        bt.run_backtest(*data, {"kind": "rsi"}, {"feee": 0.1})
    with pytest.raises(ValueError, match=r"^stop_loss: "):
        bt.run_backtest(*data, {"kind": "rsi"}, {"stop_loss": ("pct", 1.5)})
    with pytest.raises(ValueError, match=r"^series: "):
        bt.run_backtest(*data, {"kind": "threshold"}, {})
    with pytest.raises(ValueError, match=r"^end: "):
        bt.run_backtest(*data, {"kind": "rsi"}, {"end": 51})


def test_threshold_and_direction_strategies() -> None:
    data = bars([flat(100), flat(100), flat(110), flat(120), flat(130)])
    grade = np.array([85.0, 70, 40, 90, 90])
    r = bt.run_backtest(*data, {"kind": "threshold"}, {}, series=grade)
    # Enter after 85 (bar 0) at 100, exit after 40 (bar 2) at 120; enter
    # after 90 (bar 3) at 130, closed at the end (130).
    assert list(r["trades"]["entry_bar"]) == [1, 4]
    assert list(r["trades"]["exit_reason"]) == [bt.SIGNAL, bt.END]
    d = np.array([1, 0, -1, 0, 0], dtype=np.int8)
    r = bt.run_backtest(*data, {"kind": "direction"}, {}, direction=d)
    assert list(r["trades"]["entry_bar"]) == [1] and list(r["trades"]["exit_bar"]) == [3]


def test_a_peeking_strategy_does_not_win() -> None:
    # Closes alternate +10 % / -10 % and every bar opens at the previous
    # close. "Enter after an up bar, always exit" would earn 10 % a trade
    # if the decision could fill at the open of the bar it looked at (a
    # look-ahead engine); here it fills at the next open, just before a
    # -10 % bar, so every trade loses 10 %.
    n = 41
    c = 100 * np.cumprod(np.r_[1.0, np.where(np.arange(1, n) % 2 == 1, 1.1, 0.9)])
    o = np.r_[c[0], c[:-1]]
    t = np.arange(n, dtype=np.int64) * HOUR
    cond = {"kind": "conditions", "enter_long": c > o, "exit_long": np.ones(n, bool)}
    r = bt.run_backtest(t, o, np.maximum(o, c), np.minimum(o, c), c, cond, {})
    rets = r["trades"]["return_pct"]
    assert len(rets) >= 15
    assert np.allclose(rets, -0.1)
    assert r["stats"]["return_pct"] < 0
    # On a random walk the same rule earns about nothing (the next bar is
    # independent), far from what peeking would earn.
    t, o, h, lo, c = random_walk(5000, 7)
    cond = {"kind": "conditions", "enter_long": c > o, "exit_long": np.ones(5000, bool)}
    r = bt.run_backtest(t, o, h, lo, c, cond, {})
    up = c > o
    peeking = np.prod(np.where(up, c / o, 1.0)) - 1
    assert peeking > 1e3
    assert r["stats"]["return_pct"] / 100 < 0.01 * peeking


CONFIGS = [
    {"fee": 0.001},
    {"fee": 0.002, "slippage": 0.0005, "stop_loss": ("pct", 0.02), "take_profit": ("atr", 3.0)},
    {"whole_units": True, "allow_short": True, "stop_loss": ("atr", 2.0), "atr_period": 10},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_sweep_equals_single_runs_bit_for_bit(config: dict) -> None:
    data = random_walk(3000, 3, gap=0.003)
    params = [
        {"fast": 5, "slow": 20},
        {"fast": 8, "slow": 30, "ma": "ema"},
        {"fast": 5, "slow": 50, "fee": 0.0, "stop_loss": ("pct", 0.01)},
        {"fast": 12, "slow": 26, "take_profit": None},
    ]
    windows = [(0, 3000), (100, 1700), (2500, 2999)]
    values, names = bt.sweep(*data, "ma_cross", params, config, windows)
    assert values.shape == (4, 3, len(names)) and names == bt.STAT_NAMES
    for i, p in enumerate(params):
        strat = {"kind": "ma_cross", **{k: v for k, v in p.items() if k in ("fast", "slow", "ma")}}
        cfg = {**config, **{k: v for k, v in p.items() if k not in strat}}
        for w, (s, e) in enumerate(windows):
            r = bt.run_backtest(*data, strat, {**cfg, "start": s, "end": e})
            single = np.array([r["stats"][k] for k in names])
            assert np.array_equal(values[i, w], single, equal_nan=True), (i, w)


def test_sweep_over_rsi_and_bollinger_and_threshold() -> None:
    data = random_walk(2000, 4)
    grade = np.linspace(0, 100, 2000) % 97
    for kind, params, kw in [
        ("rsi", [{"period": 10}, {"period": 14, "lower": 25, "upper": 75}], {}),
        ("bollinger", [{"period": 20, "k": 1.5}], {"allow_short": True}),
        ("threshold", [{"enter_above": 70, "exit_below": 30}], {}),
    ]:
        series = grade if kind == "threshold" else None
        values, names = bt.sweep(*data, kind, params, kw, [(0, 2000)], series=series)
        for i, p in enumerate(params):
            r = bt.run_backtest(*data, {"kind": kind, **p}, kw, series=series)
            single = np.array([r["stats"][k] for k in names])
            assert np.array_equal(values[i, 0], single, equal_nan=True)


def test_cancel_stops_a_long_sweep() -> None:
    data = random_walk(87_600, 5)
    params = [{"fast": f, "slow": s} for f in range(2, 52) for s in range(60, 160)]
    control = bt.SweepControl()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            bt.sweep(*data, "ma_cross", params, {}, [(0, 87_600)], control=control)
        except ValueError as e:
            errors.append(e)

    th = threading.Thread(target=work)
    th.start()
    while control.done() == 0 and th.is_alive():
        th.join(0.01)
    control.cancel()
    th.join(60)
    assert not th.is_alive()
    assert control.cancelled()
    assert [str(e) for e in errors] == ["cancelled"]
    assert 0 < control.done() < len(params)


def test_statistics_binding_equals_the_run() -> None:
    data = random_walk(1500, 6)
    r = bt.run_backtest(*data, {"kind": "ma_cross", "fast": 5, "slow": 20}, {"fee": 0.001})
    s = bt.statistics(data[0], r["equity"], data[4], r["trades"], 8760)
    assert s == r["stats"] or all(
        (np.isnan(s[k]) and np.isnan(r["stats"][k])) or s[k] == r["stats"][k] for k in s
    )
    assert set(s) == set(bt.STAT_NAMES)
