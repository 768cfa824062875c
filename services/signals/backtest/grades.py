"""The trader grade and the service's direction over a history, bar by bar.

A backtest must see at each bar only what GetSignal could have said then, so
the grades come from a throwaway IntervalBook (the same code that warms the
live book) with a market context that has no present-day inputs: no regime,
sentiment or on-chain figures (they have no history here and would leak the
present into the past), only the tokens' own prices and their strength
against BTC and their sector peers among the histories given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.signals.book import IntervalBook
from services.signals.candles import CandleSeries
from services.signals.context import MarketContext
from services.signals.direction import BEARISH, BULLISH, direction_series
from services.signals.weights import GradeWeights


def grade_histories(
    histories: Sequence[CandleSeries],
    interval_ms: int,
    weights: GradeWeights,
    *,
    btc_index: int | None = None,
    sector_members: Sequence[np.ndarray] = (),
) -> list[np.ndarray]:
    """The closed grade of every candle of each history (NaN while too short)."""
    book = IntervalBook(len(histories), interval_ms, weights)
    context = MarketContext(
        btc_sid=btc_index,
        sector_names=[f"sector{i}" for i in range(len(sector_members))],
        sector_members=[np.asarray(m, dtype=np.int64) for m in sector_members],
    )
    graded = book.grade_histories(np.arange(len(histories)), histories, context)
    if graded is None:
        return [np.empty(0) for _ in histories]
    return [
        graded.grades[s : s + n]
        for s, n in zip(graded.starts.tolist(), graded.lengths.tolist(), strict=True)
    ]


def engine_direction(grades: np.ndarray, confirm_bars: int) -> np.ndarray:
    """The direction after each bar as core_rs's Direction strategy reads it:
    1 bullish, -1 bearish, 0 none yet."""
    d = direction_series(grades, confirm_bars)
    return np.where(d == BULLISH, 1, np.where(d == BEARISH, -1, 0)).astype(np.int8)
