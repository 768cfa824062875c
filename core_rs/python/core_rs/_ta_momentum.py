"""Momentum kernels over one price series, with TA-Lib's names, keyword
arguments, defaults and outputs."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["macd", "mom", "roc", "rsi", "stochrsi"]


def rsi(real: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's relative strength index (TA-Lib ``RSI``): the means of the
    first ``timeperiod`` gains and losses, then avg = (avg * (n - 1) + x) / n
    for each, and rsi = 100 * gain / (gain + loss); a flat stretch (no gain
    and no loss at all) gives 0, as in TA-Lib.

    The first ``timeperiod`` outputs are NaN. ``timeperiod`` is 2 or more.
    """
    return call("rsi", (real,), (timeperiod,))


def macd(
    real: ArrayLike, fastperiod: int = 12, slowperiod: int = 26, signalperiod: int = 9
) -> tuple[Array, Array, Array]:
    """Moving average convergence/divergence (TA-Lib ``MACD``): returns
    ``(macd, macdsignal, macdhist)`` with macd = EMA(fast) - EMA(slow),
    macdsignal = EMA(signalperiod) of macd, macdhist = macd - macdsignal.

    Seeded as TA-Lib: the slow EMA with the mean of the first ``slowperiod``
    values, the fast one with the mean of the last ``fastperiod`` of those
    (both start on the same bar), the signal with the mean of the first
    ``signalperiod`` MACD values. If ``slowperiod < fastperiod`` they are
    swapped, as TA-Lib does. The first ``slowperiod - 1 + signalperiod - 1``
    outputs of all three are NaN.
    """
    return call("macd", (real,), (fastperiod, slowperiod, signalperiod))  # type: ignore[no-any-return]


def mom(real: ArrayLike, timeperiod: int = 10) -> Array:
    """Momentum (TA-Lib ``MOM``): real[i] - real[i - timeperiod].

    The first ``timeperiod`` outputs are NaN.
    """
    return call("mom", (real,), (timeperiod,))


def roc(real: ArrayLike, timeperiod: int = 10) -> Array:
    """Rate of change in percent (TA-Lib ``ROC``):
    (real[i] / real[i - timeperiod] - 1) * 100, and 0 where the earlier
    value is exactly 0 (TA-Lib's convention, not infinity).

    The first ``timeperiod`` outputs are NaN.
    """
    return call("roc", (real,), (timeperiod,))


def stochrsi(
    real: ArrayLike,
    timeperiod: int = 14,
    fastk_period: int = 5,
    fastd_period: int = 3,
    fastd_matype: int = 0,
) -> tuple[Array, Array]:
    """Stochastic RSI (TA-Lib ``STOCHRSI``): returns ``(fastk, fastd)``.
    fastk = 100 * (rsi - min) / (max - min) over the last ``fastk_period``
    RSI(``timeperiod``) values (0 when they are all equal); fastd is the
    moving average ``fastd_matype`` (0 SMA, 1 EMA, 2 WMA, 3 DEMA, 4 TEMA,
    5 TRIMA, 6 KAMA) of fastk over ``fastd_period``.

    Both outputs are NaN for the first ``timeperiod + fastk_period - 1``
    bars plus the moving average's warm-up (``fastd_period - 1`` for SMA and
    EMA). Deviation: TA-Lib's ``fastd_matype`` 7 (MAMA) and 8 (T3) are not
    provided (ValueError).
    """
    return call(  # type: ignore[no-any-return]
        "stochrsi", (real,), (timeperiod, fastk_period, fastd_period, fastd_matype)
    )
