"""Market breadth: how much of the market is bullish, overall and per sector,
and the regime it implies.

Shares are over the tokens with a grade (enough history). The regime moves
with hysteresis on the bullish share of closed candles: BULL is entered at
>= 60% bullish and left below 50%; BEAR entered at <= 40% and left above 50%;
otherwise NEUTRAL. A market hovering around one threshold therefore does not
flip its regime on every candle.
"""

from dataclasses import dataclass

import numpy as np

from marketmesh.v1 import signals_pb2

ENTER_BULL = 0.60
EXIT_BULL = 0.50
ENTER_BEAR = 0.40
EXIT_BEAR = 0.50
STRONG_GRADE = 80.0

BULL = signals_pb2.REGIME_BULL
BEAR = signals_pb2.REGIME_BEAR
NEUTRAL = signals_pb2.REGIME_NEUTRAL


@dataclass(frozen=True)
class BreadthFigures:
    bullish_share: float
    above_ma200_share: float
    strong_share: float
    average_grade: float
    token_count: int


def figures(
    grade: np.ndarray,
    direction: np.ndarray,
    above_ma200: np.ndarray,
    has_ma200: np.ndarray,
    mask: np.ndarray | None = None,
) -> BreadthFigures:
    graded = np.isfinite(grade)
    if mask is not None:
        graded &= mask
    n = int(graded.sum())
    if n == 0:
        return BreadthFigures(0.0, 0.0, 0.0, 0.0, 0)
    with_ma = graded & has_ma200
    n_ma = int(with_ma.sum())
    return BreadthFigures(
        bullish_share=float((direction[graded] == signals_pb2.DIRECTION_BULLISH).sum() / n),
        above_ma200_share=float(above_ma200[with_ma].sum() / n_ma) if n_ma else 0.0,
        strong_share=float((grade[graded] >= STRONG_GRADE).sum() / n),
        average_grade=float(grade[graded].mean()),
        token_count=n,
    )


def next_regime(current: int, bullish_share: float) -> int:
    if current == BULL:
        if bullish_share >= EXIT_BULL:
            return BULL
        return BEAR if bullish_share <= ENTER_BEAR else NEUTRAL
    if current == BEAR:
        if bullish_share <= EXIT_BEAR:
            return BEAR
        return BULL if bullish_share >= ENTER_BULL else NEUTRAL
    if bullish_share >= ENTER_BULL:
        return BULL
    if bullish_share <= ENTER_BEAR:
        return BEAR
    return NEUTRAL


def to_pb(f: BreadthFigures, regime: int, time_pb: object | None = None) -> signals_pb2.Breadth:
    out = signals_pb2.Breadth(
        bullish_share=f.bullish_share,
        above_ma200_share=f.above_ma200_share,
        strong_share=f.strong_share,
        average_grade=f.average_grade,
        regime=regime,
        token_count=f.token_count,
    )
    if time_pb is not None:
        out.time.CopyFrom(time_pb)  # type: ignore[arg-type]
    return out
