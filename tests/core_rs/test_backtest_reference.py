"""core_rs.backtest against backtesting.py 0.6.6, the independent reference.

The reference runs the same rule on the same daily bars: its strategies
compute their signals with TA-Lib and plain numpy (never our engine), with
``commission=fee, spread=0, trade_on_close=False, exclusive_orders=True,
finalize_trades=True`` and whole units. Trades and every statistic both
define must agree to 1e-6 relative (bars_per_year = 365: backtesting.py's
day-based annualization then equals our per-bar one).

Two conventions are aligned in the reference strategy rather than in the
data of the comparison (docs/backtest.md, "backtesting.py"):

- our stop and target levels are set from the entry fill; backtesting.py
  takes them with the order, so the reference computes them from the next
  bar's open (the fill, as there is no spread);
- a decision on the last bar cannot fill with us; the reference makes none.

And one in the data: backtesting.py's ``finalize_trades`` closes at the
last bar's open, we close at its close, so each data set's last bar opens
at its close.

Strategies: MA cross (SMA, EMA), RSI reversion, Bollinger breakout, and the
threshold and direction rules over stand-in grade and direction series.
Configurations: with and without commission, long only and with shorts
(reversals), % and ATR stops and targets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_rs import backtest as ours

backtesting = pytest.importorskip("backtesting")
talib = pytest.importorskip("talib")

from backtesting import Backtest, Strategy  # noqa: E402

DAY_MS = 86_400_000
N = 700


def dataset(name: str, freq: str = "D") -> pd.DataFrame:
    """Daily bars (weekends included): a random walk with opening gaps, a
    trending and a choppy series; hourly with ``freq="h"``."""
    rng = np.random.default_rng({"walk": 11, "trend": 12, "chop": 13}[name])
    i = np.arange(N)
    if name == "walk":
        log_c = np.cumsum(rng.normal(0, 0.02, N))
    elif name == "trend":
        log_c = np.cumsum(rng.normal(0.003, 0.015, N))
    else:
        log_c = 0.15 * np.sin(i / 9.0) + rng.normal(0, 0.01, N)
    c = 100 * np.exp(log_c)
    o = np.r_[c[0], c[:-1]] * np.exp(rng.normal(0, 0.006, N))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.02, N))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.02, N))
    # The last bar opens at its close (see the module docstring), and at the
    # previous close, so an entry there is no big gap (backtesting.py
    # refuses stop levels on the wrong side of the decision bar's close).
    o[-1] = h[-1] = lo[-1] = c[-1] = c[-2]
    index = pd.date_range("2023-01-01", periods=N, freq=freq)
    return pd.DataFrame({"Open": o, "High": h, "Low": lo, "Close": c}, index=index)


def grade(df: pd.DataFrame) -> np.ndarray:
    """A stand-in for the trader grade: 0..100 from the close's RSI, NaN
    during its warm-up."""
    return talib.RSI(df.Close.to_numpy(), 10) * 0.6 + 20 * (1 + np.sin(np.arange(len(df)) / 11))


def direction(df: pd.DataFrame) -> np.ndarray:
    """A stand-in for the confirmed direction: the sign of a 5-bar change
    when it exceeds 3 %, else none."""
    c = df.Close.to_numpy()
    change = np.r_[np.zeros(5), c[5:] / c[:-5] - 1]
    return np.where(change > 0.03, 1, np.where(change < -0.03, -1, 0)).astype(np.int8)


# The rules of docs/backtest.md, "Strategies", written again from TA-Lib.
def crossed(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prev_a, prev_b = np.r_[np.nan, a[:-1]], np.r_[np.nan, b[:-1]]
    with np.errstate(invalid="ignore"):
        up = (a > b) & (prev_a <= prev_b)
        down = (a < b) & (prev_a >= prev_b)
    return up, down


def reference_signals(strategy: dict, df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    c = df.Close.to_numpy()
    kind = strategy["kind"]
    with np.errstate(invalid="ignore"):
        if kind == "ma_cross":
            ma = talib.SMA if strategy["ma"] == "sma" else talib.EMA
            up, down = crossed(ma(c, strategy["fast"]), ma(c, strategy["slow"]))
            return up, down, down, up
        if kind == "rsi":
            r = talib.RSI(c, strategy["period"])
            enter, leave = r < strategy["lower"], r > strategy["upper"]
            return enter, leave, leave, enter
        if kind == "threshold":
            g = grade(df)
            enter, leave = g > strategy["enter_above"], g < strategy["exit_below"]
            return enter, leave, leave, enter
        if kind == "direction":
            d = direction(df)
            return d == 1, d == -1, d == -1, d == 1
        upper, middle, lower = talib.BBANDS(c, strategy["period"], strategy["k"], strategy["k"], 0)
        return c > upper, c < middle, c < lower, c > middle


class Reference(Strategy):
    signals: tuple[np.ndarray, ...] = ()
    opens: np.ndarray = np.empty(0)
    atr: np.ndarray = np.empty(0)
    allow_short = False
    stop_loss: tuple[str, float] | None = None
    take_profit: tuple[str, float] | None = None

    def init(self) -> None:
        pass

    def level(self, rule: tuple[str, float] | None, fill: float, d: float, away: float, i: int):
        if rule is None:
            return None
        how, x = rule
        level = fill * (1 + away * d * x) if how == "pct" else fill + away * d * x * self.atr[i]
        return None if np.isnan(level) else level  # the ATR's warm-up: no level

    def order(self, d: float, i: int) -> None:
        fill = self.opens[i + 1]
        kw = {
            "sl": self.level(self.stop_loss, fill, d, -1.0, i),
            "tp": self.level(self.take_profit, fill, d, 1.0, i),
        }
        (self.buy if d > 0 else self.sell)(**kw)

    def next(self) -> None:
        i = len(self.data) - 1
        if i == len(self.opens) - 1:
            return
        enter_long, exit_long, enter_short, exit_short = (s[i] for s in self.signals)
        if not self.position:
            if enter_long:
                self.order(1.0, i)
            elif self.allow_short and enter_short:
                self.order(-1.0, i)
        elif self.position.is_long:
            if self.allow_short and enter_short:
                self.order(-1.0, i)  # exclusive orders: closes the long first
            elif exit_long:
                self.position.close()
        elif enter_long:
            self.order(1.0, i)
        elif exit_short:
            self.position.close()


def run_reference(df: pd.DataFrame, strategy: dict, config: dict) -> pd.Series:
    atr = talib.ATR(
        df.High.to_numpy(), df.Low.to_numpy(), df.Close.to_numpy(), config.get("atr_period", 14)
    )
    bt = Backtest(
        df,
        Reference,
        cash=config.get("cash", 10_000),
        commission=config.get("fee", 0.0),
        spread=0.0,
        trade_on_close=False,
        exclusive_orders=True,
        finalize_trades=True,
    )
    return bt.run(
        signals=reference_signals(strategy, df),
        opens=df.Open.to_numpy(),
        atr=atr,
        allow_short=config.get("allow_short", False),
        stop_loss=config.get("stop_loss"),
        take_profit=config.get("take_profit"),
    )


def run_ours(df: pd.DataFrame, strategy: dict, config: dict, bars_per_year: float = 365.0) -> dict:
    t = df.index.as_unit("ms").asi8.astype(np.int64)
    return ours.run_backtest(
        t,
        df.Open.to_numpy(),
        df.High.to_numpy(),
        df.Low.to_numpy(),
        df.Close.to_numpy(),
        strategy,
        {**config, "whole_units": True, "bars_per_year": bars_per_year},
        series=grade(df) if strategy["kind"] == "threshold" else None,
        direction=direction(df) if strategy["kind"] == "direction" else None,
    )


def ms(td: pd.Timedelta) -> float:
    return float("nan") if pd.isna(td) else td / pd.Timedelta(milliseconds=1)


def ceil_days(x_ms: float) -> float:
    """backtesting.py rounds mean durations up to the data's period."""
    return float("nan") if np.isnan(x_ms) else np.ceil(x_ms / DAY_MS) * DAY_MS


# (ours, backtesting.py, conversion of ours before comparing)
STATS = [
    ("start_ms", "Start", None),
    ("end_ms", "End", None),
    ("duration_ms", "Duration", None),
    ("exposure_pct", "Exposure Time [%]", None),
    ("equity_final", "Equity Final [$]", None),
    ("equity_peak", "Equity Peak [$]", None),
    ("return_pct", "Return [%]", None),
    ("buy_hold_return_pct", "Buy & Hold Return [%]", None),
    ("return_ann_pct", "Return (Ann.) [%]", None),
    ("volatility_ann_pct", "Volatility (Ann.) [%]", None),
    ("cagr_pct", "CAGR [%]", None),
    ("sharpe", "Sharpe Ratio", None),
    ("sortino", "Sortino Ratio", None),
    ("calmar", "Calmar Ratio", None),
    ("max_drawdown_pct", "Max. Drawdown [%]", None),
    ("avg_drawdown_pct", "Avg. Drawdown [%]", None),
    ("max_drawdown_duration_ms", "Max. Drawdown Duration", None),
    ("avg_drawdown_duration_ms", "Avg. Drawdown Duration", ceil_days),
    ("n_trades", "# Trades", None),
    ("win_rate_pct", "Win Rate [%]", None),
    ("best_trade_pct", "Best Trade [%]", None),
    ("worst_trade_pct", "Worst Trade [%]", None),
    ("avg_trade_pct", "Avg. Trade [%]", None),
    ("max_trade_duration_ms", "Max. Trade Duration", None),
    ("avg_trade_duration_ms", "Avg. Trade Duration", ceil_days),
    ("profit_factor", "Profit Factor", None),
    ("expectancy_pct", "Expectancy [%]", None),
    ("sqn", "SQN", None),
    ("kelly", "Kelly Criterion", None),
]


def reference_value(ref: pd.Series, key: str) -> float:
    v = ref[key]
    if isinstance(v, pd.Timestamp):
        return ms(v - pd.Timestamp(0))
    if isinstance(v, pd.Timedelta) or v is pd.NaT:
        return ms(v)
    return float(v)


def same(a: float, b: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) <= 1e-9


STRATEGIES = [
    {"kind": "ma_cross", "fast": 5, "slow": 20, "ma": "sma"},
    {"kind": "ma_cross", "fast": 8, "slow": 21, "ma": "ema"},
    {"kind": "rsi", "period": 14, "lower": 35, "upper": 65},
    {"kind": "bollinger", "period": 20, "k": 1.5},
    {"kind": "threshold", "enter_above": 70, "exit_below": 45},
    {"kind": "direction"},
]
CONFIGS = [
    {"fee": 0.0},
    {"fee": 0.002},
    {"fee": 0.001, "stop_loss": ("pct", 0.04), "take_profit": ("pct", 0.08)},
    {"fee": 0.001, "allow_short": True},
    {"fee": 0.001, "allow_short": True, "stop_loss": ("atr", 2.0), "take_profit": ("pct", 0.1)},
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("data", ["walk", "trend", "chop"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: f"{s['kind']}-{s.get('ma', '')}")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_same_trades_and_statistics_as_backtesting_py(
    data: str, strategy: dict, config: dict
) -> None:
    df = dataset(data)
    ref = run_reference(df, strategy, config)
    got = run_ours(df, strategy, config)
    rt = ref["_trades"]
    tr = got["trades"]
    assert len(rt) == len(tr["pnl"]) > 0
    assert list(rt.EntryBar) == list(tr["entry_bar"])
    assert list(rt.ExitBar) == list(tr["exit_bar"])
    np.testing.assert_array_equal(rt.Size.to_numpy(), tr["size"])
    for col, key in [
        ("EntryPrice", "entry_price"),
        ("ExitPrice", "exit_price"),
        ("PnL", "pnl"),
        ("ReturnPct", "return_pct"),
    ]:
        np.testing.assert_allclose(tr[key], rt[col].to_numpy(), rtol=1e-6, atol=1e-9, err_msg=col)
    np.testing.assert_array_equal(
        tr["duration_ms"], (rt.Duration / pd.Timedelta(milliseconds=1)).to_numpy()
    )
    np.testing.assert_allclose(got["equity"], ref["_equity_curve"].Equity.to_numpy(), rtol=1e-9)
    stats = got["stats"]
    if config["fee"]:
        assert same(stats["fees_total"], float(ref["Commissions [$]"]))
    bad = []
    for key, ref_key, convert in STATS:
        mine = stats[key] if convert is None else convert(stats[key])
        theirs = reference_value(ref, ref_key)
        if not same(mine, theirs):
            bad.append(f"{key}: ours {mine!r} != backtesting.py {theirs!r}")
    assert not bad, "\n".join(bad)


def test_reference_conditions_match_our_strategies() -> None:
    # The signal rules themselves, on every data set: our conditions (seen
    # through a conditions-kind run) trade exactly like the built-in kinds.
    for data in ("walk", "trend", "chop"):
        df = dataset(data)
        for strategy in STRATEGIES:
            el, xl, es, xs = reference_signals(strategy, df)
            given = {
                "kind": "conditions",
                "enter_long": el,
                "exit_long": xl,
                "enter_short": es,
                "exit_short": xs,
            }
            cfg = {"allow_short": True}
            a = run_ours(df, strategy, cfg)
            b = run_ours(df, given, cfg)
            assert list(a["trades"]["entry_bar"]) == list(b["trades"]["entry_bar"])
            assert list(a["trades"]["exit_bar"]) == list(b["trades"]["exit_bar"])


def test_the_compared_runs_exercise_every_exit() -> None:
    # The configurations above do reach stops, targets (at the level and
    # through a gap), reversals and end-of-data exits: the comparison is not
    # vacuous on any of them.
    reasons: dict[int, int] = {}
    gapped = 0
    for data in ("walk", "trend", "chop"):
        df = dataset(data)
        for strategy in STRATEGIES:
            for config in CONFIGS:
                tr = run_ours(df, strategy, config)["trades"]
                for r in tr["exit_reason"]:
                    reasons[int(r)] = reasons.get(int(r), 0) + 1
                stops = tr["exit_reason"] == ours.STOP_LOSS
                opens = df.Open.to_numpy()[tr["exit_bar"][stops]]
                gapped += int(np.sum(tr["exit_price"][stops] == opens))
    for reason in (ours.SIGNAL, ours.STOP_LOSS, ours.TAKE_PROFIT, ours.END, ours.REVERSE):
        assert reasons.get(reason, 0) > 0, reason
    assert gapped > 0


# Statistics that depend on annualization (or are rounded): on hourly bars
# backtesting.py resamples to days, we use the bars (docs/backtest.md).
ANNUALIZED_OR_ROUNDED = {
    "return_ann_pct",
    "volatility_ann_pct",
    "sharpe",
    "sortino",
    "calmar",
    "avg_drawdown_duration_ms",
    "avg_trade_duration_ms",
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("data", ["walk", "chop"])
@pytest.mark.parametrize("strategy", STRATEGIES[:3], ids=lambda s: f"{s['kind']}-{s.get('ma', '')}")
def test_hourly_bars_agree_where_annualization_does_not_enter(data: str, strategy: dict) -> None:
    df = dataset(data, freq="h")
    config = {"fee": 0.001, "stop_loss": ("pct", 0.04), "take_profit": ("pct", 0.08)}
    ref = run_reference(df, strategy, config)
    got = run_ours(df, strategy, config, bars_per_year=8760.0)
    rt, tr = ref["_trades"], got["trades"]
    assert list(rt.EntryBar) == list(tr["entry_bar"]) and len(rt) > 0
    assert list(rt.ExitBar) == list(tr["exit_bar"])
    np.testing.assert_allclose(tr["pnl"], rt.PnL.to_numpy(), rtol=1e-6, atol=1e-9)
    hour = 3_600_000
    bad = []
    for key, ref_key, _ in STATS:
        if key in ANNUALIZED_OR_ROUNDED:
            continue
        if not same(got["stats"][key], reference_value(ref, ref_key)):
            bad.append(f"{key}: {got['stats'][key]!r} != {reference_value(ref, ref_key)!r}")
    # Mean durations: backtesting.py rounds them up to the hour.
    for key, ref_key in [
        ("avg_drawdown_duration_ms", "Avg. Drawdown Duration"),
        ("avg_trade_duration_ms", "Avg. Trade Duration"),
    ]:
        mine = np.ceil(got["stats"][key] / hour) * hour
        if not same(mine, reference_value(ref, ref_key)):
            bad.append(f"{key}: {mine!r} != {reference_value(ref, ref_key)!r}")
    assert not bad, "\n".join(bad)
