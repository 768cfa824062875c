"""core_rs's backtest output as protobuf messages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

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


def add_trades(
    into: Any, trades: Mapping[str, np.ndarray], symbols: Sequence[str] | None = None
) -> None:
    """Appends one BacktestTrade per trade to the repeated field ``into``;
    ``symbols`` names a portfolio trade's asset column. Fields are set in
    place (no intermediate messages): thousands of trades stay cheap."""
    n = len(trades["entry_time_ms"])
    if n == 0:
        return
    entry_s, entry_ms = np.divmod(np.asarray(trades["entry_time_ms"], dtype=np.int64), 1000)
    exit_s, exit_ms = np.divmod(np.asarray(trades["exit_time_ms"], dtype=np.int64), 1000)
    dur_s, dur_ms = np.divmod(np.asarray(trades["duration_ms"], dtype=np.int64), 1000)
    # core_rs keeps backtesting.py's fraction; the contract says percent.
    pct = np.asarray(trades["return_pct"], dtype=np.float64) * 100.0
    columns = zip(
        entry_s.tolist(),
        (entry_ms * 1_000_000).tolist(),
        exit_s.tolist(),
        (exit_ms * 1_000_000).tolist(),
        np.asarray(trades["entry_price"]).tolist(),
        np.asarray(trades["exit_price"]).tolist(),
        np.asarray(trades["size"]).tolist(),
        np.asarray(trades["pnl"]).tolist(),
        pct.tolist(),
        np.asarray(trades["fees"]).tolist(),
        dur_s.tolist(),
        (dur_ms * 1_000_000).tolist(),
        np.asarray(trades["exit_reason"]).tolist(),
        strict=True,
    )
    assets = np.asarray(trades["asset"]).tolist() if symbols is not None else None
    for i, (es, en, xs, xn, ep, xp, size, pnl, ret, fees, ds, dn, reason) in enumerate(columns):
        t = into.add()
        t.entry_time.seconds, t.entry_time.nanos = es, en
        t.exit_time.seconds, t.exit_time.nanos = xs, xn
        t.entry_price, t.exit_price, t.size = ep, xp, size
        t.pnl, t.return_pct, t.fees = pnl, ret, fees
        t.duration.seconds, t.duration.nanos = ds, dn
        t.exit_reason = reason
        if assets is not None and symbols is not None:
            t.symbol = symbols[assets[i]]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def packed_fields(fields: Sequence[tuple[int, np.ndarray]]) -> bytes:
    """Wire bytes of packed fixed-width repeated fields (double as float64,
    sfixed64 as int64): each array's little-endian bytes as they are, which
    is ~20x faster than extending a repeated field from Python numbers."""
    parts = []
    for number, values in fields:
        dtype = "<f8" if values.dtype.kind == "f" else "<i8"
        raw = np.ascontiguousarray(values, dtype=dtype).tobytes()
        if raw:
            parts += [_varint(number << 3 | 2), _varint(len(raw)), raw]
    return b"".join(parts)


def fill_curve(
    into: backtest_pb2.EquityCurve,
    time_ms: np.ndarray,
    equity: np.ndarray,
    buy_and_hold: np.ndarray,
    drawdown: np.ndarray,
) -> None:
    """Parses the curves straight into ``into`` (no intermediate message to
    copy: four 87,600-point curves are 2.8 MB)."""
    into.MergeFromString(
        packed_fields(
            [
                (1, np.asarray(time_ms, dtype=np.int64)),
                (2, np.asarray(equity, dtype=np.float64)),
                (3, np.asarray(buy_and_hold, dtype=np.float64)),
                (4, np.asarray(drawdown, dtype=np.float64)),
            ]
        )
    )


def buy_and_hold_curve(close: np.ndarray, cash: float) -> np.ndarray:
    """The starting cash in the asset at the first tested close, held."""
    return cash * close / close[0]


def drawdown_of(equity: np.ndarray) -> np.ndarray:
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak


def progress(
    stage: str, fraction: float, bars: int = 0, done: int = 0
) -> backtest_pb2.BacktestProgress:
    """A progress message of any of the three backtest streams."""
    return backtest_pb2.BacktestProgress(
        stage=stage, fraction_done=fraction, bars_processed=bars, combinations_done=done
    )
