"""Kernels over high/low/close(/volume) bars, with TA-Lib's names, keyword
arguments, defaults and outputs."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["atr", "trange"]


def trange(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> Array:
    """True range: max(high - low, |high - previous close|, |low - previous
    close|) (TA-Lib ``TRANGE``). The first output is NaN."""
    return call("trange", (high, low, close), ())


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, timeperiod: int = 14) -> Array:
    """Wilder's average true range (TA-Lib ``ATR``): the mean of the first
    ``timeperiod`` true ranges, then atr = (atr * (n - 1) + tr) / n. The first
    ``timeperiod`` outputs are NaN; a period of 1 is ``trange``."""
    return call("atr", (high, low, close), (timeperiod,))
