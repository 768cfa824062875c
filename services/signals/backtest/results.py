"""core_rs's backtest output as protobuf messages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from google.protobuf.duration_pb2 import Duration

from marketmesh.v1 import backtest_pb2
from services.common.validation import ms_to_timestamp

# BacktestStatistics field <- core_rs statistic (core_rs.backtest.STAT_NAMES).
_FLOAT_STATS: dict[str, str] = {
    "exposure_time_pct": "exposure_pct",
    "final_equity": "equity_final",
    "peak_equity": "equity_peak",
    "return_pct": "return_pct",
    "buy_and_hold_return_pct": "buy_hold_return_pct",
    "annualized_return_pct": "return_ann_pct",
    "annualized_volatility_pct": "volatility_ann_pct",
    "cagr_pct": "cagr_pct",
    "sharpe_ratio": "sharpe",
    "sortino_ratio": "sortino",
    "calmar_ratio": "calmar",
    "max_drawdown_pct": "max_drawdown_pct",
    "avg_drawdown_pct": "avg_drawdown_pct",
    "win_rate_pct": "win_rate_pct",
    "best_trade_pct": "best_trade_pct",
    "worst_trade_pct": "worst_trade_pct",
    "avg_trade_pct": "avg_trade_pct",
    "profit_factor": "profit_factor",
    "expectancy_pct": "expectancy_pct",
    "sqn": "sqn",
    "kelly_criterion": "kelly",
}
# Duration fields <- core_rs statistic in milliseconds.
_DURATION_STATS: dict[str, str] = {
    "max_drawdown_duration": "max_drawdown_duration_ms",
    "avg_drawdown_duration": "avg_drawdown_duration_ms",
    "max_trade_duration": "max_trade_duration_ms",
    "avg_trade_duration": "avg_trade_duration_ms",
}


def duration_of(ms: float) -> Duration:
    """A Duration from milliseconds; an undefined one (NaN) is left at zero."""
    d = Duration()
    if math.isfinite(ms):
        d.FromMilliseconds(round(ms))
    return d


def statistics_pb(
    stats: Mapping[str, float], start_ms: int, end_ms: int, bars_per_year: float
) -> backtest_pb2.BacktestStatistics:
    out = backtest_pb2.BacktestStatistics(
        start=ms_to_timestamp(start_ms),
        end=ms_to_timestamp(end_ms),
        duration=duration_of(end_ms - start_ms),
        trade_count=int(stats["n_trades"]),
        bars_per_year=bars_per_year,
    )
    for field, key in _FLOAT_STATS.items():
        setattr(out, field, float(stats[key]))
    for field, key in _DURATION_STATS.items():
        getattr(out, field).CopyFrom(duration_of(float(stats[key])))
    return out


def trades_pb(
    trades: Mapping[str, np.ndarray], symbols: Sequence[str] | None = None
) -> list[backtest_pb2.BacktestTrade]:
    """One message per trade; ``symbols`` names a portfolio trade's asset column."""
    cols = {name: np.asarray(values).tolist() for name, values in trades.items()}
    out = []
    for i in range(len(cols["entry_time_ms"])):
        t = backtest_pb2.BacktestTrade(
            entry_time=ms_to_timestamp(cols["entry_time_ms"][i]),
            exit_time=ms_to_timestamp(cols["exit_time_ms"][i]),
            entry_price=cols["entry_price"][i],
            exit_price=cols["exit_price"][i],
            size=cols["size"][i],
            pnl=cols["pnl"][i],
            # core_rs keeps backtesting.py's fraction; the contract says percent.
            return_pct=cols["return_pct"][i] * 100.0,
            fees=cols["fees"][i],
            duration=duration_of(cols["duration_ms"][i]),
            exit_reason=int(cols["exit_reason"][i]),  # type: ignore[arg-type]
        )
        if symbols is not None:
            t.symbol = symbols[int(cols["asset"][i])]
        out.append(t)
    return out


def curve_pb(
    time_ms: np.ndarray, equity: np.ndarray, buy_and_hold: np.ndarray, drawdown: np.ndarray
) -> backtest_pb2.EquityCurve:
    curve = backtest_pb2.EquityCurve()
    curve.time_unix_ms.extend(np.asarray(time_ms, dtype=np.int64).tolist())
    curve.equity.extend(np.asarray(equity, dtype=np.float64).tolist())
    curve.buy_and_hold.extend(np.asarray(buy_and_hold, dtype=np.float64).tolist())
    curve.drawdown.extend(np.asarray(drawdown, dtype=np.float64).tolist())
    return curve


def buy_and_hold_curve(close: np.ndarray, cash: float) -> np.ndarray:
    """The starting cash in the asset at the first tested close, held."""
    return cash * close / close[0]


def drawdown_of(equity: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak
