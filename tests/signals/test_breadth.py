"""Breadth figures checked by hand on a small universe; regime hysteresis."""

import math

import numpy as np

from marketmesh.v1 import signals_pb2
from services.signals import breadth

B, S = signals_pb2.DIRECTION_BULLISH, signals_pb2.DIRECTION_BEARISH


def test_figures_by_hand() -> None:
    # Six tokens, one without a grade (not counted).
    grade = np.array([85.0, 70.0, 30.0, 90.0, 50.0, np.nan])
    direction = np.array([B, B, S, B, S, B])
    above = np.array([True, True, False, True, False, True])
    has_ma = np.array([True, True, True, False, True, True])
    f = breadth.figures(grade, direction, above, has_ma)
    assert f.token_count == 5
    assert f.bullish_share == 3 / 5
    # Of the 4 graded tokens with a 200-period average, 2 are above it.
    assert f.above_ma200_share == 2 / 4
    assert f.strong_share == 2 / 5  # 85 and 90
    assert math.isclose(f.average_grade, (85 + 70 + 30 + 90 + 50) / 5)
    sector = np.array([True, False, True, False, False, False])
    g = breadth.figures(grade, direction, above, has_ma, sector)
    assert (g.token_count, g.bullish_share, g.average_grade) == (2, 0.5, 57.5)


def test_no_graded_token_gives_zeros() -> None:
    f = breadth.figures(np.array([np.nan]), np.array([0]), np.array([False]), np.array([False]))
    assert f.token_count == 0 and f.bullish_share == 0.0


def test_regime_hysteresis() -> None:
    seq = [0.55, 0.61, 0.55, 0.51, 0.49, 0.45, 0.41, 0.40, 0.45, 0.50, 0.52, 0.60]
    regime = signals_pb2.REGIME_UNSPECIFIED
    out = []
    for share in seq:
        regime = breadth.next_regime(regime, share)
        out.append(signals_pb2.Regime.Name(regime).removeprefix("REGIME_"))
    assert out == [
        "NEUTRAL",  # 0.55: neither threshold
        "BULL",  # 0.61 >= 0.60
        "BULL",  # stays while >= 0.50
        "BULL",
        "NEUTRAL",  # 0.49 < 0.50 leaves BULL
        "NEUTRAL",
        "NEUTRAL",  # 0.41 > 0.40
        "BEAR",  # 0.40 <= 0.40
        "BEAR",  # stays while <= 0.50
        "BEAR",
        "NEUTRAL",  # 0.52 > 0.50 leaves BEAR
        "BULL",
    ]
