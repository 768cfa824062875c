"""Signal messages from the books: GetSignal's full view and the lighter rows
ScreenSignals returns."""

import math

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.tiers import tiers_of
from services.signals.book import IntervalBook, MarketContext
from services.signals.grading import label_of, labels
from services.signals.investor import explain_investor
from services.signals.universe import SignalsUniverse


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


def _timestamps(ms: np.ndarray) -> list[Timestamp | None]:
    return [
        Timestamp(seconds=t // 1000, nanos=(t % 1000) * 1_000_000) if t > 0 else None
        for t in ms.tolist()
    ]


def signal_rows(
    book: IntervalBook,
    sids: np.ndarray,
    interval: int,
    universe: SignalsUniverse,
    *,
    stale: bool,
    caps: np.ndarray,
    tiers: np.ndarray,
) -> list[signals_pb2.Signal]:
    """The fields every Signal carries (no factors, indicators or investor
    grade), for many symbols: columns are read once, not per row."""
    sids = np.asarray(sids, dtype=np.int64)

    def col(values: np.ndarray) -> list[float]:
        return np.nan_to_num(values[sids], nan=0.0, posinf=0.0, neginf=0.0).tolist()

    grade = book.grade[sids]
    rows = zip(
        sids.tolist(),
        col(book.grade),
        col(book.closed_grade),
        labels(grade).tolist(),
        book.direction[sids].tolist(),
        col(book.last_flip_price),
        col(book.last_price),
        col(caps),
        tiers[sids].tolist(),
        _timestamps(book.direction_since_ms[sids]),
        _timestamps(book.as_of_ms[sids]),
        strict=True,
    )
    symbols, sectors = universe.symbols, universe.sectors_of
    return [
        signals_pb2.Signal(
            symbol=symbols[sid],
            interval=interval,
            trader_grade=g,
            closed_grade=cg,
            label=label,
            direction=direction,
            last_flip_price=flip_price,
            stale=stale,
            price=price,
            market_cap=cap,
            tier=tier,
            sectors=sectors[sid],
            direction_since=since,
            as_of=as_of,
        )
        for sid, g, cg, label, direction, flip_price, price, cap, tier, since, as_of in rows
    ]


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
    signal = signal_rows(
        book, np.array([sid]), interval, universe, stale=stale, caps=caps, tiers=tiers_of(caps)
    )[0]
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
