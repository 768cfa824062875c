"""Risk figures (Signal.risk) from the last RISK_BARS + 1 closes of a symbol.

Log returns over the last RISK_BARS closed candles, annualized with the
interval's candles per year (core_rs volatility, sharpe, sortino); the
maximum drawdown over the same RISK_BARS + 1 closes; VaR 95% as the loss
fraction ``1 - exp(-q)`` where ``q`` is core_rs's historical VaR (a log
return), so drawdown and VaR both read as positive fractions (0.12 = 12%).
NaN until RISK_BARS + 1 closes exist, or when one of them is missing.

They are computed on demand with the core_rs batch kernels over a window
the book keeps, instead of carrying five more incremental states per
symbol: GetSignal needs them for one symbol, screens not at all, and that
halves the per-candle cost of the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import core_rs
from services.signals.features import RISK_BARS

YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True)
class RiskFigures:
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    var_95: float


def periods_per_year(interval_ms: int) -> float:
    return YEAR_MS / interval_ms


def volatilities(closes: np.ndarray, interval_ms: int) -> np.ndarray:
    """Annualized volatility per row of ``closes`` (rows: symbols, oldest first)."""
    if len(closes) == 0:
        return np.empty(0)
    out = core_rs.batch(
        "volatility", closes, timeperiod=RISK_BARS, periods_per_year=periods_per_year(interval_ms)
    )
    return out[:, -1]


def risk_figures(closes: np.ndarray, interval_ms: int) -> RiskFigures:
    """From one symbol's last RISK_BARS + 1 closes, oldest first."""
    ppy = periods_per_year(interval_ms)
    c = np.ascontiguousarray(closes, dtype=np.float64)
    var_log = float(core_rs.historical_var(c, timeperiod=RISK_BARS, confidence=0.95)[-1])
    return RiskFigures(
        volatility=float(core_rs.volatility(c, timeperiod=RISK_BARS, periods_per_year=ppy)[-1]),
        sharpe=float(core_rs.sharpe(c, timeperiod=RISK_BARS, periods_per_year=ppy)[-1]),
        sortino=float(core_rs.sortino(c, timeperiod=RISK_BARS, periods_per_year=ppy)[-1]),
        max_drawdown=float(core_rs.max_drawdown(c, timeperiod=RISK_BARS + 1)[-1]),
        var_95=float(-np.expm1(-var_log)),
    )
