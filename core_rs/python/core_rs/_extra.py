"""Indicators beyond TA-Lib: session and rolling VWAP, Ichimoku, Donchian
and Keltner channels, Fibonacci retracements, Supertrend.

There is no TA-Lib function to match; the signatures follow TA-Lib's style
(lower-case name, price inputs positional, ``timeperiod`` keywords) and the
NaN policy is the package's (a gap restarts the warm-up)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from core_rs._kernels import Array, call

__all__ = [
    "donchian",
    "fibonacci",
    "ichimoku",
    "keltner",
    "rolling_vwap",
    "supertrend",
    "vwap",
]


def _epoch_ms(timestamp: ArrayLike) -> Array:
    """Bar open times as float64 epoch milliseconds, from int64 or float
    milliseconds or numpy datetime64 (NaT becomes NaN, a gap)."""
    ts = np.asarray(timestamp)
    if ts.dtype.kind == "M":
        ms = ts.astype("datetime64[ms]")
        out = ms.astype(np.int64).astype(np.float64)
        out[np.isnat(ms)] = np.nan
        return out
    if ts.dtype.kind in "iub":
        return ts.astype(np.float64)
    return ts  # float ms (or anything the kernel's dtype check names)


def vwap(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    timestamp: ArrayLike,
    session_ms: int = 86_400_000,
) -> Array:
    """Session-anchored VWAP: sum(tp * volume) / sum(volume) of the typical
    price tp = (high + low + close) / 3, cumulative from the session's first
    bar.

    A session starts at every multiple of ``session_ms`` milliseconds since
    the Unix epoch (60_000 to 1e12; default the UTC day); ``timestamp`` is
    each bar's open time, as int64 or float epoch milliseconds or numpy
    datetime64. The sums restart at each bar whose session differs from the
    previous bar's. No warm-up (lookback 0). While the session's volume is
    still zero the output is the bar's typical price. A gap (NaN in any
    input, NaT timestamp) also restarts the sums.
    """
    ts = _epoch_ms(timestamp)
    return call("vwap", (high, low, close, volume, ts), (session_ms,))


def rolling_vwap(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, timeperiod: int = 20
) -> Array:
    """Rolling VWAP: sum(tp * volume) / sum(volume) over the last
    ``timeperiod`` bars, tp = (high + low + close) / 3. The first
    ``timeperiod - 1`` outputs are NaN. Where the window's volume is zero the
    output is the bar's typical price.

    The window sums never drift: each is a suffix sum of the previous block
    of ``timeperiod`` bars (recomputed once per block) plus a prefix sum of
    the current block, so nothing is subtracted and a volume spike leaves no
    residue after it leaves the window.
    """
    return call("rolling_vwap", (high, low, close, volume), (timeperiod,))


def ichimoku(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    tenkan_period: int = 9,
    kijun_period: int = 26,
    senkou_b_period: int = 52,
    displacement: int = 26,
) -> tuple[Array, Array, Array, Array, Array]:
    """Ichimoku Kinko Hyo: (tenkan, kijun, senkou_a, senkou_b, chikou), each
    as long as the input.

    - tenkan: (highest high + lowest low) / 2 over ``tenkan_period`` bars;
      NaN for the first ``tenkan_period - 1``.
    - kijun: the same over ``kijun_period``; NaN for ``kijun_period - 1``.
    - senkou_a: (tenkan + kijun) / 2, shifted FORWARD by ``displacement``:
      senkou_a[i] was computed at bar i - displacement (the cloud in force at
      bar i); NaN for max(tenkan_period, kijun_period) - 1 + displacement.
      The cloud projected beyond the last bar is not returned.
    - senkou_b: the midpoint over ``senkou_b_period``, shifted the same way;
      NaN for ``senkou_b_period - 1 + displacement``.
    - chikou: close[i + displacement]; NaN for the LAST ``displacement``
      bars.

    WARNING: chikou LOOKS AHEAD: its value at bar i is a later close. Use it
    for plotting only, never for signals or backtests. For the same reason
    there is no incremental form (``core_rs.incremental`` has no Ichimoku).
    ``displacement`` may be 0 (no shift).
    """
    return call(
        "ichimoku",
        (high, low, close),
        (tenkan_period, kijun_period, senkou_b_period, displacement),
    )


def donchian(high: ArrayLike, low: ArrayLike, timeperiod: int = 20) -> tuple[Array, Array, Array]:
    """Donchian channel: (upperband, middleband, lowerband) = (highest high,
    (upper + lower) / 2, lowest low) of the last ``timeperiod`` bars. The
    first ``timeperiod - 1`` outputs are NaN."""
    return call("donchian", (high, low), (timeperiod,))


def keltner(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    timeperiod: int = 20,
    atr_period: int = 10,
    multiplier: float = 2.0,
) -> tuple[Array, Array, Array]:
    """Keltner channel: (upperband, middleband, lowerband) with middle =
    EMA(close, timeperiod) (as ``core_rs.ema``, SMA-seeded) and bands =
    middle +/- multiplier * ATR(atr_period) (as ``core_rs.atr``, Wilder's).
    Every output is NaN for the first max(timeperiod - 1, atr_period) bars.
    """
    return call("keltner", (high, low, close), (timeperiod, atr_period, multiplier))


def fibonacci(
    high: ArrayLike, low: ArrayLike, timeperiod: int = 55
) -> tuple[Array, Array, Array, Array, Array, Array, Array]:
    """Fibonacci retracement levels of the swing in the trailing window:
    (level_0, level_236, level_382, level_500, level_618, level_786,
    level_1000).

    Over the last ``timeperiod`` bars take the highest high H and the lowest
    low L (for equal values, the most recent bar). If H came at or after L
    the swing is up and level_r = H - r * (H - L) (level_0 = H, level_1000 =
    L); otherwise level_r = L + r * (H - L) (level_0 = L, level_1000 = H).
    The first ``timeperiod - 1`` outputs are NaN.
    """
    return call("fibonacci", (high, low), (timeperiod,))


def supertrend(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    timeperiod: int = 10,
    multiplier: float = 3.0,
) -> tuple[Array, Array]:
    """Supertrend: (supertrend, direction), direction +1 up / -1 down.

    Basic bands hl2 +/- multiplier * ATR(timeperiod), hl2 = (high + low) / 2,
    ATR Wilder's (as ``core_rs.atr``). Final bands carry as in TradingView's
    ``ta.supertrend``: the upper band takes the basic one if it is lower
    than the previous final upper or the previous close was above that,
    else keeps the previous; the lower band mirrors it. From up, the trend
    turns down when the close falls below the final lower band; from down,
    up when the close rises above the final upper band. supertrend is the
    final lower band when up, the final upper band when down. The first
    value (bar ``timeperiod``) uses the basic bands and is up, as in
    pandas-ta. (TradingView's signs are reversed, -1 meaning up, and its
    first bar is down: the upper band.) The first ``timeperiod`` outputs are
    NaN.
    """
    return call("supertrend", (high, low, close), (timeperiod, multiplier))
