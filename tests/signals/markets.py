"""Synthetic markets with known shapes for the signals tests."""

from __future__ import annotations

import numpy as np

from services.signals.candles import CandleSeries

HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_700_000_000_000 // HOUR * HOUR


def candles(
    close: np.ndarray, seed: int = 0, interval: int = HOUR, start: int = T0
) -> CandleSeries:
    """Candles around a close path: open at the previous close, a small
    random wick either side, volume around 1,000."""
    rng = np.random.default_rng(seed)
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    return CandleSeries(
        start + np.arange(n) * interval, open_, high, low, close, rng.uniform(900, 1100, n)
    )


def trend(
    n: int, drift: float, noise: float = 0.004, seed: int = 0, start: float = 100.0
) -> np.ndarray:
    """A log-price random walk with drift per candle."""
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(drift + rng.normal(0.0, noise, n)))


def flat(n: int, noise: float = 0.01, seed: int = 0, level: float = 100.0) -> np.ndarray:
    """Noise around a constant level: no trend at all."""
    rng = np.random.default_rng(seed)
    return level * np.exp(rng.normal(0.0, noise, n))


def bar(series: CandleSeries, i: int) -> tuple[np.ndarray, ...]:
    """Candle i as the one-element arrays apply_closed takes."""
    return tuple(
        np.array([getattr(series, f)[i]])
        for f in ("open_ms", "open", "high", "low", "close", "volume")
    )


def bars(series: list[CandleSeries], i: int) -> tuple[np.ndarray, ...]:
    """Candle i of every series, for one apply_closed call over all of them."""
    return tuple(
        np.array([getattr(s, f)[i] for s in series])
        for f in ("open_ms", "open", "high", "low", "close", "volume")
    )
