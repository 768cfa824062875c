"""Investor grade from the daily book: every factor against hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from marketmesh.v1 import signals_pb2
from services.signals.book import IntervalBook, MarketContext
from services.signals.candles import CandleSeries
from services.signals.grading import label_of
from services.signals.investor import explain_investor, investor_grades
from services.signals.weights import INVESTOR_DEFAULTS, GradeWeights
from tests.signals.markets import DAY, T0, candles, trend


def daily(close: np.ndarray, volume: float = 1e5) -> CandleSeries:
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    return CandleSeries(
        T0 // DAY * DAY + np.arange(n) * DAY,
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        np.full(n, volume),
    )


def book_of(series: list[CandleSeries], ctx: MarketContext) -> IntervalBook:
    book = IntervalBook(len(series), DAY, GradeWeights())
    book.warm(np.arange(len(series)), series, ctx)
    return book


def rise_and_fall() -> np.ndarray:
    # 250 days from 100 to 200, then 50 days back to 100: high 200, last close 100.
    return np.r_[np.linspace(100, 200, 250), np.linspace(200, 100, 51)[1:]]


def test_every_factor_by_hand() -> None:
    close = rise_and_fall()
    ctx = MarketContext(circulating=np.array([1e7]))  # market cap 1e7 x 100 = 1B exactly
    book = book_of([daily(close)], ctx)
    grade, label, factors = explain_investor(book, 0, ctx)
    by = {f.name: f for f in factors}
    sma = close[-200:].mean()
    trend_score = 50 + 50 * math.tanh((100 / sma - 1) / 0.2)
    r = np.diff(np.log(close))[-90:]
    vol = r.std(ddof=1) * math.sqrt(365)
    vol_score = min(100.0, max(0.0, 100 * (1.5 - vol) / 1.2))
    expected = {
        "trend": trend_score,
        "drawdown": 100 * (1 - 0.5 / 0.8),  # 50% below the high
        "volatility": vol_score,
        "liquidity": 50.0,  # 1e5 a day / 1e7 supply = 1% turnover
        "market_cap": 80.0,  # >= 1B
        "history": 100 * 300 / 1095,
    }
    for name, value in expected.items():
        assert by[name].score == pytest.approx(value, rel=1e-9), name
        assert by[name].weight == pytest.approx(INVESTOR_DEFAULTS[name])
    assert grade == pytest.approx(sum(expected[n] * INVESTOR_DEFAULTS[n] for n in expected))
    assert label == label_of(grade)
    assert "50.0% below the highest close" in by["drawdown"].reason
    assert "below the 200-day average" in by["trend"].reason
    assert "1.00% of market cap" in by["liquidity"].reason
    assert investor_grades(book, ctx)[0] == pytest.approx(grade, rel=1e-12)


def test_short_history_uses_the_50_day_ema_and_says_so() -> None:
    close = trend(150, 0.003, noise=0.01, seed=1)
    ctx = MarketContext(circulating=np.array([1e6]))
    book = book_of([daily(close)], ctx)
    _, _, factors = explain_investor(book, 0, ctx)
    by = {f.name: f for f in factors}
    ema = talib.EMA(close, 50)[-1]
    assert by["trend"].score == pytest.approx(50 + 50 * math.tanh((close[-1] / ema - 1) / 0.2))
    assert "50-day EMA (the 200-day average needs 200 days, 150 so far)" in by["trend"].reason


def test_too_little_history_has_no_grade() -> None:
    ctx = MarketContext(circulating=np.array([1e6]))
    book = book_of([daily(trend(29, 0.001, seed=2))], ctx)
    grade, label, factors = explain_investor(book, 0, ctx)
    assert math.isnan(grade) and label == signals_pb2.GRADE_LABEL_UNSPECIFIED
    assert all(f.weight == 0.0 for f in factors)
    assert "29 days, 30 needed" in factors[0].reason
    assert math.isnan(investor_grades(book, ctx)[0])


def test_unknown_supply_gives_liquidity_and_market_cap_no_weight() -> None:
    close = rise_and_fall()
    ctx = MarketContext()
    book = book_of([daily(close)], ctx)
    grade, _, factors = explain_investor(book, 0, ctx)
    by = {f.name: f for f in factors}
    for name in ("liquidity", "market_cap"):
        assert by[name].weight == 0.0 and "circulating supply" in by[name].reason
    rest = ("trend", "drawdown", "volatility", "history")
    total = sum(INVESTOR_DEFAULTS[n] for n in rest)
    assert grade == pytest.approx(sum(by[n].score * INVESTOR_DEFAULTS[n] for n in rest) / total)


def test_market_cap_tiers_at_their_edges_and_grades_vectorized() -> None:
    close = np.full(60, 100.0) * np.exp(np.linspace(0, 0.01, 60))
    last = close[-1]
    caps = [10e9, 9.99e9, 1e9, 100e6, 10e6, 9e6]
    ctx = MarketContext(circulating=np.array([c / last for c in caps]))
    book = book_of([daily(close) for _ in caps], ctx)
    tiers = [
        next(f for f in explain_investor(book, sid, ctx)[2] if f.name == "market_cap").score
        for sid in range(len(caps))
    ]
    assert tiers == pytest.approx([100, 80, 80, 60, 40, 20])
    grades = investor_grades(book, ctx)
    for sid in range(len(caps)):
        assert grades[sid] == pytest.approx(explain_investor(book, sid, ctx)[0], rel=1e-12)


def test_uptrend_token_outgrades_a_crashed_one() -> None:
    ctx = MarketContext(circulating=np.array([1e7, 1e7]))
    up = candles(trend(400, 0.002, noise=0.02, seed=3), seed=3, interval=DAY)
    down = candles(trend(400, -0.004, noise=0.02, seed=4), seed=4, interval=DAY)
    grades = investor_grades(book_of([up, down], ctx), ctx)
    assert grades[0] > 60
    assert grades[1] < 40
