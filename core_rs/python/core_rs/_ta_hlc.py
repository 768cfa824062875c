"""Kernels over high/low/close(/volume) bars, with TA-Lib's names, keyword
arguments, defaults and outputs."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["adx", "atr", "minus_di", "natr", "plus_di", "sar", "trange"]


def trange(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> Array:
    """True range: max(high - low, |high - previous close|, |low - previous
    close|) (TA-Lib ``TRANGE``). The first output is NaN."""
    return call("trange", (high, low, close), ())


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's average true range (TA-Lib ``ATR``): the mean of the first
    ``timeperiod`` true ranges, then atr = (atr * (n - 1) + tr) / n. The first
    ``timeperiod`` outputs are NaN; a period of 1 is ``trange``."""
    return call("atr", (high, low, close), (timeperiod,))


def natr(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Normalized ATR (TA-Lib ``NATR``): 100 * atr / close, 0 where the close
    is 0. The first ``timeperiod`` outputs are NaN. As in TA-Lib, a period of
    1 returns the raw true range (not divided by the close)."""
    return call("natr", (high, low, close), (timeperiod,))


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's average directional index (TA-Lib ``ADX``). The +DM, -DM and
    TR of bars 1 to ``timeperiod - 1`` are summed, then smoothed as
    sum - sum / n + x; DX = 100 * |+DI - -DI| / (+DI + -DI); the first ADX
    is the mean of the next ``timeperiod`` DX, then adx = (adx * (n - 1) +
    dx) / n. The first ``2 * timeperiod - 1`` outputs are NaN. As in TA-Lib a
    DX is skipped (counts 0 in the first mean, leaves the ADX unchanged
    later) when the TR sum is 0 or +DI + -DI is below 1e-14. ``timeperiod``
    from 2."""
    return call("adx", (high, low, close), (timeperiod,))


def plus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's plus directional indicator (TA-Lib ``PLUS_DI``): 100 times the
    smoothed +DM over the smoothed TR (seeded with the sums of bars 1 to
    ``timeperiod - 1``), 0 where the TR sum is 0. The first ``timeperiod``
    outputs are NaN. As in TA-Lib, ``timeperiod=1`` gives +DM / TR per bar
    WITHOUT the factor 100."""
    return call("plus_di", (high, low, close), (timeperiod,))


def minus_di(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's minus directional indicator (TA-Lib ``MINUS_DI``): 100 times
    the smoothed -DM over the smoothed TR (seeded with the sums of bars 1 to
    ``timeperiod - 1``), 0 where the TR sum is 0. The first ``timeperiod``
    outputs are NaN. As in TA-Lib, ``timeperiod=1`` gives -DM / TR per bar
    WITHOUT the factor 100."""
    return call("minus_di", (high, low, close), (timeperiod,))


def sar(high: ArrayLike, low: ArrayLike, acceleration: float = 0.02, maximum: float = 0.2) -> Array:
    """Wilder's parabolic SAR (TA-Lib ``SAR``, same algorithm and results):
    the first bar seeds (initial direction short if the second bar's -DM is
    positive, else long; first SAR the first bar's low or high), reversals
    output the extreme point clamped outside the last two bars' range, the
    acceleration factor grows by ``acceleration`` on each new extreme up to
    ``maximum``. The first output is NaN. An ``acceleration`` above
    ``maximum`` is lowered to it, as in TA-Lib."""
    return call("sar", (high, low), (acceleration, maximum))
