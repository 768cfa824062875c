"""Direction: hysteresis, confirmation, flips on synthetic markets."""

from __future__ import annotations

import numpy as np
import pytest

from marketmesh.v1 import signals_pb2
from services.signals.book import IntervalBook, MarketContext
from services.signals.direction import (
    DIRECTION_SPAN,
    ENTER_BEARISH,
    ENTER_BULLISH,
    step,
)
from services.signals.weights import GradeWeights
from tests.signals.markets import HOUR, bar, candles, flat, trend

BULL, BEAR = signals_pb2.DIRECTION_BULLISH, signals_pb2.DIRECTION_BEARISH
CTX = MarketContext()


def run_steps(grades: list[float], confirm: int) -> tuple[list[int], list[bool]]:
    score = np.array([np.nan])
    d = np.zeros(1, np.int8)
    bull = np.zeros(1, np.int32)
    bear = np.zeros(1, np.int32)
    dirs, flips = [], []
    for g in grades:
        st = step(np.array([g]), score, d, bull, bear, confirm)
        score, d, bull, bear = st.score, st.direction, st.bull_run, st.bear_run
        dirs.append(int(d[0]))
        flips.append(bool(st.flipped[0]))
    return dirs, flips


def test_confirmation_and_hysteresis_by_hand() -> None:
    assert (ENTER_BULLISH, ENTER_BEARISH, DIRECTION_SPAN) == (60.0, 40.0, 10)
    # A constant 70 scores 70 from the first candle: bullish on the 3rd, not a flip.
    dirs, flips = run_steps([70, 70, 70], confirm=3)
    assert dirs == [0, 0, BULL] and flips == [False, False, False]
    # Two bullish readings, then a 0 pulls the score to 70 - 70 * 2/11 = 57.3: the count
    # restarts; the next 70s give 59.6 (< 60) and 61.5 (one reading).
    dirs, _ = run_steps([70, 70, 0, 70, 70], confirm=3)
    assert dirs == [0, 0, 0, 0, 0]
    # Bullish, then grade 20: the smoothed score 20 + 50 * (9/11)^k (k candles of 20)
    # is <= 40 from k = 5 on (47.4, 42.4, 38.3 for k = 3, 4, 5); confirmed after 3 such readings.
    seq = [70.0] * 3 + [20.0] * 10
    dirs, flips = run_steps(seq, confirm=3)
    first_bear = dirs.index(BEAR)
    assert first_bear == 3 + 5 + 2 - 1
    assert flips[first_bear] and sum(flips) == 1
    # A grade between the thresholds never flips a held direction.
    dirs, flips = run_steps([70.0] * 3 + [45.0] * 50, confirm=3)
    assert set(dirs[2:]) == {BULL} and not any(flips)


def test_uptrend_is_bullish_and_downtrend_bearish() -> None:
    book = IntervalBook(2, HOUR, GradeWeights())
    book.warm(
        np.arange(2),
        [candles(trend(500, 0.004, seed=1)), candles(trend(500, -0.004, seed=2), 1)],
        CTX,
    )
    assert list(book.direction) == [BULL, BEAR]


def test_flat_noisy_market_stays_neutral_with_few_flips() -> None:
    series = candles(flat(2000, noise=0.01, seed=3), seed=3)
    book = IntervalBook(1, HOUR, GradeWeights())
    flips = book.warm(np.arange(1), [series], CTX)
    assert len(flips.sids) <= 2
    # The same run candle by candle.
    book2 = IntervalBook(1, HOUR, GradeWeights())
    book2.warm(np.arange(1), [series.take(slice(0, 30))], CTX)
    grades, n_flips = [], 0
    for i in range(30, len(series)):
        up = book2.apply_closed(np.array([0]), *bar(series, i), CTX)
        n_flips += int(up.flipped.sum())
        grades.append(up.grade_after[0])
    assert n_flips <= 2
    grades = np.array(grades)
    assert 45 <= grades.mean() <= 55
    assert np.mean((grades >= 40) & (grades < 60)) > 0.7
    assert 40 <= book2.direction_score[0] < 60


def test_flips_are_recorded_with_time_price_and_grade_and_warm_ones_are_not_new() -> None:
    # Up for 300 candles, then down for 300: one flip to bearish.
    up = trend(300, 0.004, seed=5)
    down = up[-1] * trend(300, -0.004, seed=6, start=1.0)
    path = np.r_[up, down]
    series = candles(path, seed=5)
    book = IntervalBook(1, HOUR, GradeWeights())
    flips = book.warm(np.arange(1), [series], CTX)
    assert list(flips.direction) == [BEAR]
    i = int(np.flatnonzero(series.open_ms + HOUR == flips.time_ms[0])[0])
    assert 300 < i < 360
    assert flips.price[0] == series.close[i]
    assert flips.grade[0] <= ENTER_BEARISH + 20  # a confirming candle of a falling market
    assert book.direction_since_ms[0] == flips.time_ms[0]
    assert book.last_flip_price[0] == series.close[i]
    # The same history applied candle by candle reports that flip as it happens.
    book2 = IntervalBook(1, HOUR, GradeWeights())
    book2.warm(np.arange(1), [series.take(slice(0, 300))], CTX)
    seen = []
    for k in range(300, len(series)):
        upd = book2.apply_closed(np.array([0]), *bar(series, k), CTX)
        if upd.flipped[0]:
            seen.append((k, int(upd.direction_before[0]), int(upd.direction_after[0])))
    assert seen == [(i, BULL, BEAR)]
    # After warm, the next candle does not report the historic flip again.
    more = candles(
        down[-1] * trend(5, -0.004, seed=7, start=1.0), seed=7, start=int(series.open_ms[-1]) + HOUR
    )
    upd = book.apply_closed(np.array([0]), *bar(more, 0), CTX)
    assert not upd.flipped[0]
    assert upd.direction_before[0] == upd.direction_after[0] == BEAR


@pytest.mark.parametrize("confirm", [1, 3, 6])
def test_more_confirmation_never_flips_more(confirm: int) -> None:
    series = candles(flat(1500, noise=0.01, seed=11), seed=11)
    counts = {}
    for c in (1, confirm):
        book = IntervalBook(1, HOUR, GradeWeights(), confirm_bars=c)
        counts[c] = len(book.warm(np.arange(1), [series], CTX).sids)
    assert counts[confirm] <= counts[1]


def test_momentum_label_follows_the_closed_grade_change_over_five_candles() -> None:
    path = np.r_[flat(200, noise=0.004, seed=12), 100 * np.exp(np.cumsum(np.full(60, 0.004)))]
    path = np.r_[path, path[-1] * np.exp(-np.cumsum(np.full(60, 0.004)))]
    series = candles(path, seed=12)
    book = IntervalBook(1, HOUR, GradeWeights())
    book.warm(np.arange(1), [series.take(slice(0, 40))], CTX)
    history: list[float] = []
    seen = set()
    for i in range(40, len(series)):
        upd = book.apply_closed(np.array([0]), *bar(series, i), CTX)
        history.append(float(upd.grade_after[0]))
        if len(history) <= 5:
            continue
        change = history[-1] - history[-6]
        if upd.direction_after[0] == BEAR:
            change = -change
        expected = (
            signals_pb2.MOMENTUM_ACCELERATING
            if change >= 5
            else signals_pb2.MOMENTUM_FADING
            if change <= -5
            else signals_pb2.MOMENTUM_STEADY
        )
        assert book.momentum[0] == expected, i
        seen.add(expected)
    assert seen == {
        signals_pb2.MOMENTUM_ACCELERATING,
        signals_pb2.MOMENTUM_FADING,
        signals_pb2.MOMENTUM_STEADY,
    }
