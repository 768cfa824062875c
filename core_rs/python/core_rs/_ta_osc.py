"""Oscillators and volume kernels with TA-Lib's names, keyword arguments,
defaults and outputs: STOCH, STOCHF, WILLR, CCI, AROON, MFI, OBV.

``matype`` arguments take TA-Lib's codes 0 (SMA) to 6 (KAMA); TA-Lib's 7
(MAMA) and 8 (T3) are not provided and raise ValueError."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["aroon", "cci", "mfi", "obv", "stoch", "stochf", "willr"]


def stoch(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowk_matype: int = 0,
    slowd_period: int = 3,
    slowd_matype: int = 0,
) -> tuple[Array, Array]:
    """Slow stochastic (TA-Lib ``STOCH``): fast %K = 100 * (close - lowest
    low) / (highest high - lowest low) over ``fastk_period`` bars (0 for a
    flat window); slowk = MA(``slowk_matype``) of fast %K over
    ``slowk_period``; slowd = MA(``slowd_matype``) of slowk over
    ``slowd_period``. Returns (slowk, slowd); the first ``fastk_period - 1``
    plus both MA lookbacks outputs are NaN."""
    return call(
        "stoch",
        (high, low, close),
        (fastk_period, slowk_period, slowk_matype, slowd_period, slowd_matype),
    )


def stochf(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    fastk_period: int = 5,
    fastd_period: int = 3,
    fastd_matype: int = 0,
) -> tuple[Array, Array]:
    """Fast stochastic (TA-Lib ``STOCHF``): fastk = 100 * (close - lowest
    low) / (highest high - lowest low) over ``fastk_period`` bars (0 for a
    flat window, not clamped); fastd = MA(``fastd_matype``) of fastk over
    ``fastd_period``. Returns (fastk, fastd); both start after
    ``fastk_period - 1`` plus the MA lookback NaNs."""
    return call("stochf", (high, low, close), (fastk_period, fastd_period, fastd_matype))


def willr(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Williams' %R (TA-Lib ``WILLR``): -100 * (highest high - close) /
    (highest high - lowest low) over ``timeperiod`` bars, clamped to
    [-100, 0], 0 for a flat window. The first ``timeperiod - 1`` outputs are
    NaN."""
    return call("willr", (high, low, close), (timeperiod,))


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Commodity channel index (TA-Lib ``CCI``) of the typical price
    (h + l + c) / 3: (tp - mean) / (0.015 * mean absolute deviation) over
    ``timeperiod`` bars; 0 when the window is flat (deviations within 1e-14 of
    the mean, as TA-Lib). The first ``timeperiod - 1`` outputs are NaN."""
    return call("cci", (high, low, close), (timeperiod,))


def aroon(high: ArrayLike, low: ArrayLike, timeperiod: int = 14) -> tuple[Array, Array]:
    """Aroon (TA-Lib ``AROON``): over the last ``timeperiod + 1`` bars,
    100 * (timeperiod - bars since the extreme) / timeperiod for the lowest
    low (aroondown) and the highest high (aroonup); on a tie the latest bar
    is the extreme. Returns (aroondown, aroonup); the first ``timeperiod``
    outputs are NaN."""
    return call("aroon", (high, low), (timeperiod,))


def mfi(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    timeperiod: int = 14,
) -> Array:
    """Money flow index (TA-Lib ``MFI``): 100 * positive / (positive +
    negative) money flow (typical price * volume, signed by the typical
    price's change) over ``timeperiod`` bars; 0 for a window without flow.
    The first ``timeperiod`` outputs are NaN."""
    return call("mfi", (high, low, close, volume), (timeperiod,))


def obv(real: ArrayLike, volume: ArrayLike) -> Array:
    """On-balance volume (TA-Lib ``OBV``): starts at ``volume[0]``, then adds
    the volume when ``real`` rose, subtracts it when it fell. No warm-up (a
    gap restarts it at the next bar's volume)."""
    return call("obv", (real, volume), ())
