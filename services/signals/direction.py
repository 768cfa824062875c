"""Bullish / bearish direction with smoothing, hysteresis and confirmation.

The directional score is an EMA (span DIRECTION_SPAN) of the closed grade, so
one noisy candle moves it little. A score >= ENTER_BULLISH (the top of the
Neutral band) is a bullish reading, <= ENTER_BEARISH a bearish one, anything
between (or no grade) neither. The direction turns BULLISH after
``confirm_bars`` consecutive bullish readings and BEARISH after as many
bearish ones; between the two thresholds it holds (hysteresis), which keeps a
market that hovers around 50 from flipping back and forth. A missing grade
restarts the score. A symbol's first direction is set by its first confirmed
reading and is not a flip (there was nothing to flip from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from marketmesh.v1 import signals_pb2

DIRECTION_SPAN = 10
ENTER_BULLISH = 60.0
ENTER_BEARISH = 40.0
DEFAULT_CONFIRM_BARS = 3
BULLISH = signals_pb2.DIRECTION_BULLISH
BEARISH = signals_pb2.DIRECTION_BEARISH
_ALPHA = 2.0 / (DIRECTION_SPAN + 1)


@dataclass
class Step:
    """One closed candle of hysteresis for many symbols."""

    score: np.ndarray  # smoothed directional score after the candle
    direction: np.ndarray  # int8, after the candle
    bull_run: np.ndarray  # int32 consecutive bullish readings
    bear_run: np.ndarray
    changed: np.ndarray  # bool: direction set or changed on this candle
    flipped: np.ndarray  # bool: changed from one direction to the other


def step(
    grade: np.ndarray,
    score: np.ndarray,
    direction: np.ndarray,
    bull_run: np.ndarray,
    bear_run: np.ndarray,
    confirm_bars: int,
) -> Step:
    """Advances every symbol by one closed candle with this closed grade."""
    new_score = np.where(np.isnan(score), grade, score + _ALPHA * (grade - score))
    with np.errstate(invalid="ignore"):
        bull = np.where(new_score >= ENTER_BULLISH, bull_run + 1, 0).astype(np.int32)
        bear = np.where(new_score <= ENTER_BEARISH, bear_run + 1, 0).astype(np.int32)
    to_bull = (bull >= confirm_bars) & (direction != BULLISH)
    to_bear = (bear >= confirm_bars) & (direction != BEARISH)
    new = np.where(to_bull, BULLISH, np.where(to_bear, BEARISH, direction)).astype(np.int8)
    changed = new != direction
    return Step(new_score, new, bull, bear, changed, changed & (direction != 0))


def direction_series(grades: np.ndarray, confirm_bars: int = DEFAULT_CONFIRM_BARS) -> np.ndarray:
    """The direction (int8) after each closed candle of one symbol's grade
    history: :func:`step` applied candle by candle, as a scalar loop (one
    symbol's history is long and narrow; numpy per candle would cost more
    than the arithmetic). The float operations are step's, so the two agree
    exactly."""
    if confirm_bars < 1:
        raise ValueError(f"confirm_bars must be at least 1, got {confirm_bars}")
    out = np.zeros(len(grades), dtype=np.int8)
    score = math.nan
    direction = 0
    bull = bear = 0
    for i, grade in enumerate(np.asarray(grades, dtype=np.float64).tolist()):
        score = grade if math.isnan(score) else score + _ALPHA * (grade - score)
        bull = bull + 1 if score >= ENTER_BULLISH else 0
        bear = bear + 1 if score <= ENTER_BEARISH else 0
        if bull >= confirm_bars and direction != BULLISH:
            direction = BULLISH
        elif bear >= confirm_bars and direction != BEARISH:
            direction = BEARISH
        out[i] = direction
    return out
