"""Risk figures of a symbol from its bundle row (Signal.risk).

Log returns over the last RISK_BARS closed candles, annualized with the
interval's candles per year (core_rs volatility, sharpe, sortino); the
maximum drawdown over the same RISK_BARS + 1 closes; VaR 95% as the loss
fraction ``1 - exp(-q)`` where ``q`` is core_rs's historical VaR (a log
return), so both drawdown and VaR read as positive fractions (0.12 = 12%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.signals.features import COL


@dataclass(frozen=True)
class RiskFigures:
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    var_95: float


def risk_from_row(row: np.ndarray) -> RiskFigures:
    """From one closed bundle row; NaN where the window is not full yet."""
    var_log = float(row[COL["historical_var"]])
    return RiskFigures(
        volatility=float(row[COL["volatility"]]),
        sharpe=float(row[COL["sharpe"]]),
        sortino=float(row[COL["sortino"]]),
        max_drawdown=float(row[COL["max_drawdown"]]),
        var_95=-math.expm1(-var_log) if math.isfinite(var_log) else math.nan,
    )
