"""Rolling risk statistics over prices (e.g. closes), for the signals service.

There is no TA-Lib counterpart: the names and parameters are ours, in
TA-Lib's style (lower case, ``real`` input, ``timeperiod``). Inside, returns
are log returns ``r[i] = ln(p[i] / p[i-1])``; ``timeperiod`` counts returns
(``timeperiod + 1`` prices) except for ``max_drawdown``, which counts prices.

Prices must be positive: a price that is zero or negative has no log return
and is treated like a gap (NaN, infinity): NaN there, and the statistic
starts over after it with a fresh warm-up.

Annualization: ``periods_per_year`` is the number of bars per year (365 for
daily crypto bars, 252 for daily equity bars, 365 * 24 for hourly crypto
bars); ``risk_free`` is an annual rate as a fraction (0.05 = 5 %), taken per
bar as ``risk_free / periods_per_year``.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = [
    "historical_cvar",
    "historical_var",
    "log_returns",
    "max_drawdown",
    "sharpe",
    "sortino",
    "volatility",
]


def log_returns(real: ArrayLike) -> Array:
    """Log returns ``ln(p[i] / p[i-1])`` (unitless; 0.01 is about +1 %).

    The first output is NaN, and so is the output at a non-positive price and
    at the price after it.
    """
    return call("log_returns", (real,), ())


def volatility(real: ArrayLike, timeperiod: int = 30, periods_per_year: float = 365.0) -> Array:
    """Annualized volatility: the sample standard deviation (ddof=1) of the
    last ``timeperiod`` log returns times ``sqrt(periods_per_year)``.

    A fraction per year (0.8 is 80 %). The first ``timeperiod`` outputs are
    NaN (``timeperiod`` returns need ``timeperiod + 1`` prices); a flat
    window gives exactly 0. ``timeperiod`` >= 2. The deviation is computed
    from Welford/Chan aggregates over blocks of the window, never from a
    running sum of squares, so it does not drift over long series.
    """
    return call("volatility", (real,), (timeperiod, periods_per_year))


def sharpe(
    real: ArrayLike,
    timeperiod: int = 30,
    risk_free: float = 0.0,
    periods_per_year: float = 365.0,
) -> Array:
    """Annualized Sharpe ratio of the last ``timeperiod`` log returns:
    ``(mean(r) - risk_free / periods_per_year) / std(r, ddof=1) *
    sqrt(periods_per_year)``.

    Unitless. The first ``timeperiod`` outputs are NaN. A window whose returns
    are all equal (zero deviation, e.g. flat prices) gives NaN: the ratio is
    undefined there, and 0 would wrongly read as "no edge".
    """
    return call("sharpe", (real,), (timeperiod, risk_free, periods_per_year))


def sortino(
    real: ArrayLike,
    timeperiod: int = 30,
    risk_free: float = 0.0,
    periods_per_year: float = 365.0,
) -> Array:
    """Annualized Sortino ratio of the last ``timeperiod`` log returns:
    ``(mean(r) - rf) / dd * sqrt(periods_per_year)`` with
    ``rf = risk_free / periods_per_year`` and the downside deviation
    ``dd = sqrt(mean(min(r - rf, 0) ** 2))`` over all the window's returns
    (the population form, the standard definition).

    Unitless. The first ``timeperiod`` outputs are NaN. A window with no
    return below ``rf`` has no downside deviation and gives NaN, not +inf:
    the ratio is undefined there (0/0 when every return equals ``rf``), and
    an infinity would break averages, rankings and JSON downstream.
    """
    return call("sortino", (real,), (timeperiod, risk_free, periods_per_year))


def max_drawdown(real: ArrayLike, timeperiod: int = 30) -> Array:
    """The largest peak-to-trough fall within the last ``timeperiod`` prices,
    as a positive fraction of the peak: ``max((p[i] - p[j]) / p[i])`` over
    ``i <= j`` in the window (0.25 is a fall of 25 %, 0 a window that only
    rises).

    The first ``timeperiod - 1`` outputs are NaN. O(n) overall: O(1)
    amortized per price, O(``timeperiod``) memory.
    """
    return call("max_drawdown", (real,), (timeperiod,))


def historical_var(real: ArrayLike, timeperiod: int = 100, confidence: float = 0.95) -> Array:
    """Historical value at risk of the last ``timeperiod`` log returns:
    ``-np.quantile(r, 1 - confidence)`` (numpy's default linear
    interpolation).

    A one-bar log return, positive for a loss (0.03: a return of -3 % or
    worse has probability ``1 - confidence``). The first ``timeperiod``
    outputs are NaN. ``0 < confidence < 1``.
    """
    return call("historical_var", (real,), (timeperiod, confidence))


def historical_cvar(real: ArrayLike, timeperiod: int = 100, confidence: float = 0.95) -> Array:
    """Historical conditional value at risk (expected shortfall) of the last
    ``timeperiod`` log returns: ``-mean(r[r <= q])`` with ``q`` the quantile
    of ``historical_var``.

    A one-bar log return, positive for a loss; at least the VaR. The first
    ``timeperiod`` outputs are NaN. ``0 < confidence < 1``.
    """
    return call("historical_cvar", (real,), (timeperiod, confidence))
