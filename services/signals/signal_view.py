"""Signal messages from the books: GetSignal's full view and the lighter rows
ScreenSignals returns."""

import math

import numpy as np

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.validation import ms_to_timestamp
from services.signals.book import IntervalBook, MarketContext
from services.signals.grading import label_of
from services.signals.investor import explain_investor
from services.signals.universe import SignalsUniverse, tiers_of


def parse_interval(value: int, graded: list[int], field: str = "interval") -> int:
    interval = value or common_pb2.INTERVAL_1H
    if interval not in graded:
        names = ", ".join(common_pb2.Interval.Name(i) for i in graded)
        if interval not in common_pb2.Interval.values():
            raise InvalidArgument(field, f"unknown interval value {value}")
        raise InvalidArgument(
            field, f"{common_pb2.Interval.Name(interval)} is not graded here; graded: {names}"
        )
    return interval


def market_caps(book: IntervalBook, universe: SignalsUniverse) -> np.ndarray:
    return book.last_price * universe.circulating[: book.n_symbols]


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def signal_row(
    book: IntervalBook,
    sid: int,
    interval: int,
    universe: SignalsUniverse,
    *,
    stale: bool,
    caps: np.ndarray,
    tiers: np.ndarray,
) -> signals_pb2.Signal:
    """The fields every Signal carries (no factors, indicators or investor grade)."""
    grade = float(book.grade[sid])
    closed = float(book.closed_grade[sid])
    signal = signals_pb2.Signal(
        symbol=universe.symbols[sid],
        interval=interval,
        trader_grade=_finite(grade),
        closed_grade=_finite(closed),
        label=book_label(grade),
        direction=int(book.direction[sid]),
        last_flip_price=_finite(float(book.last_flip_price[sid])),
        stale=stale,
        price=_finite(float(book.last_price[sid])),
        market_cap=_finite(float(caps[sid])),
        tier=int(tiers[sid]),
        sectors=list(universe.sectors_of[sid]),
    )
    if book.direction_since_ms[sid] > 0:
        signal.direction_since.CopyFrom(ms_to_timestamp(int(book.direction_since_ms[sid])))
    if book.as_of_ms[sid] > 0:
        signal.as_of.CopyFrom(ms_to_timestamp(int(book.as_of_ms[sid])))
    return signal


def book_label(grade: float) -> int:
    return label_of(grade) if math.isfinite(grade) else signals_pb2.GRADE_LABEL_UNSPECIFIED


def full_signal(
    book: IntervalBook,
    daily: IntervalBook | None,
    sid: int,
    interval: int,
    universe: SignalsUniverse,
    context: MarketContext,
    daily_context: MarketContext | None,
    *,
    stale: bool,
    flips: list[signals_pb2.DirectionFlip],
) -> signals_pb2.Signal:
    if not book.has_data[sid]:
        raise FailedPrecondition(
            f"no signal for {universe.symbols[sid]} at "
            f"{common_pb2.Interval.Name(interval)} yet: not enough closed candles"
        )
    caps = market_caps(book, universe)
    signal = signal_row(book, sid, interval, universe, stale=stale, caps=caps, tiers=tiers_of(caps))
    fields = book.signal_fields(sid, context)
    signal.trader_grade = _finite(fields.trader_grade)
    signal.label = book_label(fields.trader_grade)
    signal.momentum = fields.momentum
    for f in fields.factors:
        signal.factors.add(name=f.name, score=_finite(f.score), weight=f.weight, reason=f.reason)
    for name, value in fields.indicators.items():
        if math.isfinite(value):
            signal.indicators[name] = value
    r = fields.risk
    signal.risk.CopyFrom(
        signals_pb2.RiskMetrics(
            volatility=_finite(r.volatility),
            sharpe=_finite(r.sharpe),
            sortino=_finite(r.sortino),
            max_drawdown=_finite(r.max_drawdown),
            var_95=_finite(r.var_95),
        )
    )
    if daily is not None and daily_context is not None and daily.has_data[sid]:
        grade, label, factors = explain_investor(daily, sid, daily_context)
        signal.investor_grade = _finite(grade)
        signal.investor_label = label
        for f in factors:
            signal.investor_factors.add(
                name=f.name, score=_finite(f.score), weight=f.weight, reason=f.reason
            )
    signal.recent_flips.extend(flips)
    return signal
