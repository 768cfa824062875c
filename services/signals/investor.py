"""Investor grade: the long-term view of a symbol from its daily book.

Factors and their scoring are documented in ``services.signals.weights``;
the daily :class:`~services.signals.book.IntervalBook` already keeps what
they read (SMA 200, EMA 50, highest close, candle count, the last 91 closes
for the volatility, 20-day volume average), so the grade of the whole
universe is a handful of numpy operations and one core_rs batch call.
"""

from __future__ import annotations

import math

import numpy as np

from services.signals.book import IntervalBook
from services.signals.context import MarketContext
from services.signals.features import MIN_BARS, RISK_BARS, sq
from services.signals.grading import FactorScore, label_of
from services.signals.risk import volatilities
from services.signals.weights import INVESTOR_FACTORS, blend, effective_weights

TREND_SCALE = 0.2
DRAWDOWN_ZERO = 0.8  # a fall this deep scores 0
VOL_BEST, VOL_WORST = 0.3, 1.5  # annualized volatility scoring 100 and 0
TURNOVER_MID = 0.01  # daily volume / market cap scoring 50
HISTORY_FULL_DAYS = 1095
CAP_TIERS = ((10e9, 100.0), (1e9, 80.0), (100e6, 60.0), (10e6, 40.0))
CAP_FLOOR = 20.0


def _readings(book: IntervalBook, context: MarketContext) -> dict[str, np.ndarray]:
    sids = np.arange(book.n_symbols)
    close = book.last_close
    sma = book.column("sma_200", live=False)
    ema50 = book.column("ema_50", live=False)
    supply = context.circulating_of(sids)
    with np.errstate(invalid="ignore", divide="ignore"):
        supply = np.where(supply > 0, supply, np.nan)
        return {
            "close": close,
            "sma_200": sma,
            "ema_50": ema50,
            "average": np.where(np.isnan(sma), ema50, sma),
            "drawdown": np.clip(1.0 - close / book.high_close, 0.0, 1.0),
            "volatility": volatilities(book.recent_closes(sids), book.interval_ms),
            "turnover": book.column("vol_sma", live=False) / supply,
            "market_cap": supply * close,
            "days": book.bar_count.astype(np.float64),
        }


def _scores(r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        cap = r["market_cap"]
        tier = np.full(cap.shape, CAP_FLOOR)
        for edge, score in reversed(CAP_TIERS):
            tier = np.where(cap >= edge, score, tier)
        turnover = np.where(r["turnover"] > 0, r["turnover"], np.nan)
        return {
            "trend": sq((r["close"] / r["average"] - 1.0) / TREND_SCALE),
            "drawdown": np.clip(100.0 * (1.0 - r["drawdown"] / DRAWDOWN_ZERO), 0.0, 100.0),
            "volatility": np.clip(
                100.0 * (VOL_WORST - r["volatility"]) / (VOL_WORST - VOL_BEST), 0.0, 100.0
            ),
            "liquidity": np.clip(50.0 + 25.0 * np.log10(turnover / TURNOVER_MID), 0.0, 100.0),
            "market_cap": np.where(np.isnan(cap), np.nan, tier),
            "history": np.minimum(100.0, 100.0 * r["days"] / HISTORY_FULL_DAYS),
        }


def investor_grades(book_1d: IntervalBook, context: MarketContext) -> np.ndarray:
    """Investor grade of every symbol (NaN with fewer than MIN_BARS days)."""
    scores = _scores(_readings(book_1d, context))
    grade = blend(book_1d.weights.investor, scores)
    return np.where(book_1d.bar_count >= MIN_BARS, grade, np.nan)


def _reason(name: str, r: dict[str, float], days: int) -> str:
    if name == "trend":
        if math.isnan(r["average"]):
            return f"no trend reading yet: the 50-day EMA needs 50 days ({days} so far)"
        d = r["close"] / r["average"] - 1.0
        which = (
            "200-day average"
            if not math.isnan(r["sma_200"])
            else (f"50-day EMA (the 200-day average needs 200 days, {days} so far)")
        )
        return f"close {abs(d) * 100:.1f}% {'above' if d >= 0 else 'below'} the {which}"
    if name == "drawdown":
        return f"{r['drawdown'] * 100:.1f}% below the highest close of the last {days} days"
    if name == "volatility":
        if math.isnan(r["volatility"]):
            return f"no volatility yet: needs {RISK_BARS + 1} days ({days} so far)"
        return f"annualized volatility {r['volatility'] * 100:.0f}%"
    if name == "liquidity":
        if math.isnan(r["turnover"]):
            return "no liquidity reading: circulating supply or volume average unknown"
        return f"daily volume {r['turnover'] * 100:.2f}% of market cap"
    if name == "market_cap":
        if math.isnan(r["market_cap"]):
            return "no market cap: circulating supply unknown"
        return f"market cap {r['market_cap'] / 1e6:,.0f}M"
    return f"{days} days of history"


def explain_investor(
    book_1d: IntervalBook, sid: int, context: MarketContext
) -> tuple[float, int, list[FactorScore]]:
    """Investor grade, its GradeLabel and every factor with a reason for one symbol."""
    if not 0 <= sid < book_1d.n_symbols:
        raise ValueError(f"symbol id {sid} is not in 0..{book_1d.n_symbols - 1}")
    readings = _readings(book_1d, context)
    one = {k: v[sid : sid + 1] for k, v in readings.items()}
    scores = _scores(one)
    days = int(book_1d.bar_count[sid])
    enough = days >= MIN_BARS
    grade = float(blend(book_1d.weights.investor, scores)[0]) if enough else math.nan
    eff = effective_weights(book_1d.weights.investor, scores)
    scalars = {k: float(v[0]) for k, v in one.items()}
    factors = []
    for name in INVESTOR_FACTORS:
        reason = _reason(name, scalars, days)
        if not enough:
            reason = f"not graded yet: {days} days, {MIN_BARS} needed; {reason}"
        factors.append(
            FactorScore(
                name, float(scores[name][0]), float(eff[name][0]) if enough else 0.0, reason
            )
        )
    return grade, label_of(grade), factors
