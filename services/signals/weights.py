"""The one weights configuration of the signals grades, and what each factor means.

Trader grade (per symbol and interval, 0-100)
=============================================

Every factor gives a score from 0 (bearish) to 100 (bullish), 50 being
neutral, and a one-line reason. The grade is the weighted mean of the factors
that have data: a factor without data gets weight 0 (its reason says so) and
the weights of the others are scaled up so they still sum to 1. Fewer than
30 closed candles: no grade at all.

``sq(x) = 50 + 50 * tanh(x)`` maps a signed, unit-free reading onto 0-100 (0
maps to 50, +1 to about 88, -1 to about 12). Distances and slopes are measured
in ATR(14) units so the same thresholds fit a stable coin and a meme coin.
A factor's score is the mean of its components that have data; a component
whose indicator still warms up is left out and the reason says how many
candles it needs.

- ``trend`` (default weight 0.25): price against the 20-, 50- and 200-period
  EMAs and their slopes. Position: ``sq((close - ema) / (k * ATR))`` with
  k = 2, 3, 4 for 20, 50, 200 (slower averages sit farther away). Slope over
  the last 5 candles per candle in ATRs: ``sq(((ema - ema[5 ago]) / 5 / ATR) / s)``
  with s = 0.2, 0.1, 0.05. The 200-EMA needs 200 candles.
- ``momentum`` (0.20): RSI(14) as is (70 scores 70; a window without any
  move, where TA-Lib's RSI reads 0, scores 50); MACD(12, 26, 9) line
  ``sq(macd / (2 ATR))`` and histogram ``sq(hist / (0.5 ATR))``; ROC(10)
  ``sq((roc / 100) / (ATR% * sqrt(10)) / 1.5)``: the 10-candle change against
  the change ATR would explain.
- ``volatility`` (0.10): position in the Bollinger range (20, 2): ``100 * %B``
  clipped to 0-100 (at the upper band: 100), pulled toward 50 by
  ``min(1, 5% / ATR%)`` when one candle's ATR exceeds 5% of price (a wild
  market makes the position less telling).
- ``volume`` (0.10): OBV slope over 10 candles against the volume traded,
  ``sq(2 * (obv - obv[10 ago]) / (10 * volume SMA 20))`` (all volume on up
  candles: about 98); volume against its 20-candle average, confirming the
  candle's direction: ``50 + 50 * sign(close - open) * tanh(max(volume / avg - 1, 0))``
  (a quiet candle scores 50).
- ``relative_strength`` (0.15): the 20-candle log return against BTC's and
  against the median of the token's sector peers (itself excluded; a token in
  several sectors takes the mean of those medians), each ``sq(diff / 0.10)``:
  10% better than the sector scores about 88. BTC has no "vs BTC" part; a
  token with no sector peers no sector part.
- ``regime`` (0.05): the market regime of the interval: bull 80, neutral 50,
  bear 20; unknown (REGIME_UNSPECIFIED) is no data.
- ``sentiment`` (0.075): social score (0-100) as is; mention volume against
  its trailing mean ``sq(ln(mentions / mean))`` (twice the usual: about 80).
- ``onchain`` (0.075): active addresses against their trailing mean
  ``sq(2 ln(now / mean))``; exchange net flow, outflow being bullish,
  ``sq(-flow / (0.1% of circulating supply))``; DEX liquidity against its
  trailing mean ``sq(2 ln(now / mean))``.

Labels: Strong Sell < 20 <= Sell < 40 <= Neutral < 60 <= Buy < 80 <= Strong
Buy. Momentum compares the closed grade with the one 5 closed candles before,
in the direction held (for a bearish token a falling grade accelerates): a
change of 5 points or more is Accelerating, -5 or less Fading, else Steady.

Direction (``services.signals.direction``): the closed grade smoothed by an
EMA of 10 candles; BULLISH after ``confirm_bars`` consecutive closed candles
with that score >= 60, BEARISH after as many <= 40; in between it holds
(hysteresis). A symbol's first direction is set by its first confirmed
reading; that is not a flip.

Override: ``MM_SIGNAL_WEIGHTS="trend=0.3,momentum=0.2"`` replaces the listed
weights, keeps the defaults of the others and rescales all to sum 1.

Investor grade (daily candles, 0-100)
=====================================

Same blending rules; fewer than 30 daily candles: no grade.

- ``trend`` (0.25): close against the 200-day SMA, ``sq((close / sma - 1) / 0.2)``;
  with fewer than 200 days the 50-day EMA stands in (the reason says so).
- ``drawdown`` (0.20): the fall from the highest close seen,
  ``100 * (1 - drawdown / 0.8)`` clipped (at the high 100, 40% down 50, 80% down 0).
- ``volatility`` (0.15): annualized volatility of 90 daily log returns,
  ``100 * (1.5 - vol) / 1.2`` clipped (30% a year or less 100, 150% or more 0).
- ``liquidity`` (0.15): daily volume (20-day mean) against market cap, i.e.
  the share of supply traded per day, ``50 + 25 * log10(turnover / 1%)``
  clipped (1% a day 50, 10% 75); needs the circulating supply.
- ``market_cap`` (0.15): tier of circulating supply x price: >= 10B 100,
  >= 1B 80, >= 100M 60, >= 10M 40, else 20; needs the circulating supply.
- ``history`` (0.10): days of history, ``100 * days / 1095`` capped at 100
  (three years or more: 100).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

TRADER_FACTORS: tuple[str, ...] = (
    "trend",
    "momentum",
    "volatility",
    "volume",
    "relative_strength",
    "regime",
    "sentiment",
    "onchain",
)
TRADER_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {
        "trend": 0.25,
        "momentum": 0.20,
        "volatility": 0.10,
        "volume": 0.10,
        "relative_strength": 0.15,
        "regime": 0.05,
        "sentiment": 0.075,
        "onchain": 0.075,
    }
)
INVESTOR_FACTORS: tuple[str, ...] = (
    "trend",
    "drawdown",
    "volatility",
    "liquidity",
    "market_cap",
    "history",
)
INVESTOR_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {
        "trend": 0.25,
        "drawdown": 0.20,
        "volatility": 0.15,
        "liquidity": 0.15,
        "market_cap": 0.15,
        "history": 0.10,
    }
)


def _normalized(weights: Mapping[str, float], order: tuple[str, ...]) -> dict[str, float]:
    total = sum(weights[name] for name in order)
    if not total > 0:
        raise ValueError("the weights sum to 0: give at least one factor a positive weight")
    return {name: weights[name] / total for name in order}


def parse_weights(text: str, defaults: Mapping[str, float] = TRADER_DEFAULTS) -> dict[str, float]:
    """Weights from an override like ``"trend=0.3,momentum=0.2"``: the listed
    factors take the given weights, the others keep their defaults, and all
    are rescaled to sum 1. An empty string gives the defaults.

    Raises ValueError naming the offending entry: an unknown factor, a value
    that is not a finite number, a negative one, a factor given twice, an
    entry without ``=``, or weights summing to 0.
    """
    order = tuple(defaults)
    merged = dict(defaults)
    seen: set[str] = set()
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{entry!r}: expected factor=weight")
        if name not in defaults:
            raise ValueError(f"unknown factor {name!r}; known: {', '.join(order)}")
        if name in seen:
            raise ValueError(f"factor {name!r} given twice")
        seen.add(name)
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{name}: weight {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{name}: weight {value.strip()!r} is not a finite number")
        if number < 0:
            raise ValueError(f"{name}: weight {number} is negative")
        merged[name] = number
    return _normalized(merged, order)


@dataclass(frozen=True)
class GradeWeights:
    """Weights of the trader and investor factors, each summing to 1."""

    trader: Mapping[str, float] = field(default_factory=lambda: dict(TRADER_DEFAULTS))
    investor: Mapping[str, float] = field(default_factory=lambda: dict(INVESTOR_DEFAULTS))

    def __post_init__(self) -> None:
        for label, weights, order in (
            ("trader", self.trader, TRADER_FACTORS),
            ("investor", self.investor, INVESTOR_FACTORS),
        ):
            if set(weights) != set(order):
                raise ValueError(f"{label} weights must name exactly: {', '.join(order)}")
            if any(not (w >= 0 and math.isfinite(w)) for w in weights.values()):
                raise ValueError(f"{label} weights must be finite and >= 0")
            object.__setattr__(self, label, MappingProxyType(_normalized(weights, order)))

    @classmethod
    def from_override(cls, trader: str = "", investor: str = "") -> GradeWeights:
        """From override strings (see :func:`parse_weights`)."""
        return cls(
            parse_weights(trader, TRADER_DEFAULTS), parse_weights(investor, INVESTOR_DEFAULTS)
        )


def effective_weights(
    weights: Mapping[str, float], scores: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-symbol weights after the no-data rule: a factor whose score is NaN
    gets 0 and the others are scaled so the available ones sum to 1 (all 0
    when no factor has data)."""
    present = {name: np.where(np.isnan(s), 0.0, weights[name]) for name, s in scores.items()}
    total = sum(present.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.where(total > 0, w / total, 0.0) for name, w in present.items()}


def blend(weights: Mapping[str, float], scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """Weighted mean of the factor scores that have data; NaN where none has."""
    eff = effective_weights(weights, scores)
    total = sum(np.where(np.isnan(scores[n]), 0.0, weights[n]) for n in scores)
    grade = sum(eff[n] * np.nan_to_num(scores[n]) for n in scores)
    return np.where(total > 0, grade, np.nan)
