"""Moving averages and single-series momentum kernels, with TA-Lib's names,
keyword arguments, defaults and outputs."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["bbands", "dema", "ema", "kama", "sma", "stddev", "tema", "trima", "wma"]


def sma(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Simple moving average over ``timeperiod`` values (TA-Lib ``SMA``).

    The first ``timeperiod - 1`` outputs are NaN.
    """
    return call("sma", (real,), (timeperiod,))


def ema(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Exponential moving average, k = 2 / (timeperiod + 1), seeded with the
    SMA of the first ``timeperiod`` values (TA-Lib ``EMA``).

    The first ``timeperiod - 1`` outputs are NaN.
    """
    return call("ema", (real,), (timeperiod,))


def wma(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Linearly weighted moving average, weights 1..timeperiod with the newest
    bar weighing most (TA-Lib ``WMA``).

    The first ``timeperiod - 1`` outputs are NaN; a period of 1 copies the
    input.
    """
    return call("wma", (real,), (timeperiod,))


def dema(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Double EMA, 2 * EMA - EMA(EMA) (TA-Lib ``DEMA``). Each EMA is seeded
    with the SMA of the first ``timeperiod`` values of its input, as TA-Lib
    does.

    The first ``2 * (timeperiod - 1)`` outputs are NaN.
    """
    return call("dema", (real,), (timeperiod,))


def tema(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Triple EMA, 3 * (EMA1 - EMA2) + EMA3 where each EMA smooths the previous
    one (TA-Lib ``TEMA``), each seeded with an SMA as in TA-Lib.

    The first ``3 * (timeperiod - 1)`` outputs are NaN.
    """
    return call("tema", (real,), (timeperiod,))


def trima(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Triangular moving average: weights 1, 2, ..., 2, 1 peaking mid-window,
    i.e. an SMA of an SMA (odd n: both of length (n + 1) / 2; even n: n / 2
    then n / 2 + 1) (TA-Lib ``TRIMA``).

    The first ``timeperiod - 1`` outputs are NaN.
    """
    return call("trima", (real,), (timeperiod,))


def kama(real: ArrayLike, timeperiod: int = 30) -> Array:
    """Kaufman adaptive moving average (TA-Lib ``KAMA``): the efficiency ratio
    of the last ``timeperiod`` bars sets the smoothing between 2/31 and 2/3
    (squared). The first ``timeperiod`` outputs are NaN; a period of 1 copies
    the input, as TA-Lib 0.8 does.
    """
    return call("kama", (real,), (timeperiod,))


def stddev(real: ArrayLike, timeperiod: int = 5, nbdev: float = 1.0) -> Array:
    """Population standard deviation over ``timeperiod`` values times ``nbdev``
    (TA-Lib ``STDDEV``; timeperiod >= 2).

    The first ``timeperiod - 1`` outputs are NaN. Computed with a stable
    rolling variance (Welford add/remove on anchored values plus periodic exact
    passes), so it stays accurate for tiny spreads, sub-cent prices (~1e-6)
    and after a volatile stretch; a flat window gives exactly 0. TA-Lib 0.8.1
    behaves the same (no epsilon clamp of small variances), so there is no
    known deviation beyond rounding.
    """
    return call("stddev", (real,), (timeperiod, nbdev))


def bbands(
    real: ArrayLike,
    timeperiod: int = 20,
    nbdevup: float = 2.0,
    nbdevdn: float = 2.0,
    matype: int = 0,
) -> tuple[Array, Array, Array]:
    """Bollinger bands (TA-Lib ``BBANDS``): ``(upperband, middleband,
    lowerband)``. The middle band is the moving average ``matype`` (0 SMA,
    1 EMA, 2 WMA, 3 DEMA, 4 TEMA, 5 TRIMA, 6 KAMA) over ``timeperiod``
    (>= 2); the bands add ``nbdevup`` and subtract ``nbdevdn`` population
    standard deviations of the same window (around its plain mean, whatever
    the matype, as TA-Lib does).

    The default ``timeperiod`` is 20, TA-Lib 0.8's default (older TA-Lib
    used 5). Warm-up: the moving average's (``timeperiod - 1``; DEMA
    ``2 * (timeperiod - 1)``, TEMA ``3 * (timeperiod - 1)``, KAMA
    ``timeperiod``). TA-Lib's matype 7 (MAMA) and 8 (T3) are not provided.
    The deviation uses the same stable rolling variance as ``stddev``.
    """
    return call("bbands", (real,), (timeperiod, nbdevup, nbdevdn, matype))
