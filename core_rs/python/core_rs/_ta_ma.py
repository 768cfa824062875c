"""Moving averages and single-series momentum kernels, with TA-Lib's names,
keyword arguments, defaults and outputs."""

from __future__ import annotations

from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = ["ema", "sma"]


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
