"""Support and resistance: where price turned before, and how often it did.

Three methods propose candidate prices over the last ``lookback`` closed
candles; candidates closer than the band are merged into one level that keeps
every method; each level is then scored by how price behaved near it.

* **Swing pivots** (fractals): bar i is a swing high when its high is above
  the highs of the ``k`` bars before it and not below the highs of the ``k``
  bars after it (a flat top counts once, at its first bar); swing lows
  mirror that. ``k`` grows with the window so a long lookback keeps only the
  larger swings: ``k = clip(n // 50, 2, 5)`` for n candles (2 up to 149
  candles, 4 at the default 200, 5 from 250). Pivots in the last ``k`` bars are
  not confirmed yet and are left out.
* **Fibonacci**: the last major swing runs between the highest high H and the
  lowest low L of the window (core_rs ``fibonacci``: for equal values the most
  recent bar). If H came at or after L the swing is up and the retracements
  are ``H - r (H - L)``, otherwise ``L + r (H - L)``, for r = 23.6%, 38.2%,
  50%, 61.8% and 78.6%.
* **Volume zones**: a volume profile over ``VOLUME_BINS`` equal price bins from
  the lowest low to the highest high, each candle's volume put in the bin of
  its typical price (high + low + close) / 3. The ``VOLUME_ZONES`` bins with
  the most volume become levels at the volume-weighted typical price of their
  candles (so a spike of volume at one price puts the level at that price).

Band: half the ATR(14) of the window's last bar, at least ``MIN_BAND_FRACTION``
of the last close (so a quiet market still merges near-equal prices). With
fewer than 15 candles ATR has no value and the mean high-low range stands in.

Merging: candidates sorted by price join the current group while within one
band of the group's lowest price; the level's price is the group's mean.

Touches and respect, for a level at price P with band b: candle i (from the
window's second candle) touches P when ``low_i - b <= P <= high_i + b`` and the
previous close is not exactly P. The side it came from is the side of the
previous close; the touch is *respected* when candle i also closes on that
side (strictly), i.e. price tested the level and turned back instead of
closing through it.

A level at or below the last close is support, above it resistance. The
``MAX_LEVELS`` levels nearest the last close are kept, nearest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

import core_rs
from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.intervals import MS_BY_ENUM
from services.common.validation import parse_symbol
from services.signals.candles import CandleSeries

DEFAULT_LOOKBACK = 200
MIN_LOOKBACK = 20
MAX_LOOKBACK = 5_000
# Below this many candles not even a k=2 pivot can be confirmed.
MIN_CANDLES = 5
FIB_RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)
VOLUME_BINS = 24
VOLUME_ZONES = 3
ATR_PERIOD = 14
BAND_ATR_FRACTION = 0.5
MIN_BAND_FRACTION = 0.001
MAX_LEVELS = 20
# Pivot dates named in a merged level's description.
MAX_DATES = 3

SUPPORT = signals_pb2.LEVEL_KIND_SUPPORT
RESISTANCE = signals_pb2.LEVEL_KIND_RESISTANCE
SWING_PIVOT = signals_pb2.LEVEL_METHOD_SWING_PIVOT
FIBONACCI = signals_pb2.LEVEL_METHOD_FIBONACCI
VOLUME_ZONE = signals_pb2.LEVEL_METHOD_VOLUME_ZONE


@dataclass(frozen=True)
class LevelsQuery:
    symbol: str
    interval: int
    lookback: int


@dataclass(frozen=True)
class Candidate:
    """A price one method proposed, with the words that explain it.

    Pivots have a ``label`` ("swing low") and their date as description, so a
    merged level reads "swing lows of <date>, <date> and <date>".
    """

    price: float
    method: int
    description: str
    label: str = ""


@dataclass(frozen=True)
class Level:
    price: float
    kind: int
    methods: tuple[int, ...]
    description: str
    touches: int
    respected: int
    respect_rate: float
    distance_pct: float


@dataclass(frozen=True)
class LevelReport:
    last_close: float
    levels: list[Level]
    nearest_support: Level | None
    nearest_resistance: Level | None
    band: float


def parse_levels_request(
    request: signals_pb2.GetSupportResistanceRequest,
    sid_by_symbol: dict[str, int] | None = None,
) -> LevelsQuery:
    """Validated request; with ``sid_by_symbol`` an unknown symbol is NOT_FOUND."""
    symbol = parse_symbol(request.symbol)
    if sid_by_symbol is not None and symbol not in sid_by_symbol:
        raise NotFound(f"unknown symbol {symbol!r}: not in the asset universe")
    interval = request.interval or common_pb2.INTERVAL_1H
    if interval not in MS_BY_ENUM:
        raise InvalidArgument("interval", f"unknown interval value {request.interval}")
    lookback = request.lookback or DEFAULT_LOOKBACK
    if not MIN_LOOKBACK <= lookback <= MAX_LOOKBACK:
        raise InvalidArgument(
            "lookback",
            f"must be between {MIN_LOOKBACK} and {MAX_LOOKBACK:,} "
            f"(0 means {DEFAULT_LOOKBACK}); got {request.lookback:,}",
        )
    return LevelsQuery(symbol, interval, lookback)


def pivot_k(n: int) -> int:
    """Bars on each side of a swing pivot for a window of ``n`` candles."""
    return int(np.clip(n // 50, 2, 5))


def swing_pivots(
    high: NDArray[np.float64], low: NDArray[np.float64], k: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Indices of confirmed swing highs and swing lows (see the module doc)."""
    n = high.size
    if n < 2 * k + 1:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    # Row j of a window view covers bars j .. j+2k; its centre is bar j+k.
    hw = sliding_window_view(high, 2 * k + 1)
    lw = sliding_window_view(low, 2 * k + 1)
    centre_h = hw[:, k]
    centre_l = lw[:, k]
    is_high = (centre_h > hw[:, :k].max(axis=1)) & (centre_h >= hw[:, k + 1 :].max(axis=1))
    is_low = (centre_l < lw[:, :k].min(axis=1)) & (centre_l <= lw[:, k + 1 :].min(axis=1))
    return np.flatnonzero(is_high) + k, np.flatnonzero(is_low) + k


def fib_candidates(c: CandleSeries) -> list[Candidate]:
    n = c.high.size
    levels = core_rs.fibonacci(c.high, c.low, timeperiod=n)
    lo, hi = float(np.min(c.low)), float(np.max(c.high))
    if not hi > lo:
        return []
    up = levels[0][-1] == hi  # level_0 is H for an up swing, L for a down swing
    swing = f"{_num(lo)}-{_num(hi)} swing {'up' if up else 'down'}"
    # Outputs 1..5 are the 23.6 ... 78.6% levels, in FIB_RATIOS order.
    return [
        Candidate(float(levels[i + 1][-1]), FIBONACCI, f"{r * 100:g}% retracement of the {swing}")
        for i, r in enumerate(FIB_RATIOS)
    ]


def volume_candidates(c: CandleSeries) -> list[Candidate]:
    lo, hi = float(np.min(c.low)), float(np.max(c.high))
    total = float(np.sum(c.volume))
    if not hi > lo or not total > 0:
        return []
    typical = (c.high + c.low + c.close) / 3.0
    width = (hi - lo) / VOLUME_BINS
    bins = np.clip(((typical - lo) / width).astype(np.intp), 0, VOLUME_BINS - 1)
    vol = np.bincount(bins, weights=c.volume, minlength=VOLUME_BINS)
    weighted = np.bincount(bins, weights=c.volume * typical, minlength=VOLUME_BINS)
    # Stable sort: among equal volumes the lower price bin comes first.
    top = np.argsort(-vol, kind="stable")[:VOLUME_ZONES]
    out = []
    for b in top.tolist():
        if vol[b] <= 0:
            continue
        zone_lo, zone_hi = lo + b * width, lo + (b + 1) * width
        out.append(
            Candidate(
                float(weighted[b] / vol[b]),
                VOLUME_ZONE,
                f"high-volume zone {_num(zone_lo)}-{_num(zone_hi)} "
                f"({vol[b] / total * 100:.0f}% of the volume)",
            )
        )
    return out


def pivot_candidates(c: CandleSeries, k: int) -> list[Candidate]:
    highs, lows = swing_pivots(c.high, c.low, k)
    out = [
        Candidate(float(c.high[i]), SWING_PIVOT, _when(int(c.open_ms[i])), "swing high")
        for i in highs.tolist()
    ]
    out += [
        Candidate(float(c.low[i]), SWING_PIVOT, _when(int(c.open_ms[i])), "swing low")
        for i in lows.tolist()
    ]
    return out


def band_width(c: CandleSeries) -> float:
    """Half an ATR at the last bar, at least MIN_BAND_FRACTION of the last close."""
    if c.close.size > ATR_PERIOD:
        atr = float(core_rs.atr(c.high, c.low, c.close, timeperiod=ATR_PERIOD)[-1])
    else:
        atr = float(np.mean(c.high - c.low))
    return max(BAND_ATR_FRACTION * atr, MIN_BAND_FRACTION * abs(float(c.close[-1])))


def merge_candidates(
    candidates: list[Candidate], band: float
) -> list[tuple[float, tuple[int, ...], str]]:
    """(price, methods, description) per group of candidates within one band."""
    ordered = sorted(candidates, key=lambda cand: cand.price)
    groups: list[list[Candidate]] = []
    for cand in ordered:
        if groups and cand.price - groups[-1][0].price <= band:
            groups[-1].append(cand)
        else:
            groups.append([cand])
    out = []
    for group in groups:
        price = float(np.mean([cand.price for cand in group]))
        methods = tuple(sorted({cand.method for cand in group}))
        out.append((price, methods, describe(group)))
    return out


def describe(group: list[Candidate]) -> str:
    """One phrase per label ("swing lows of a and b"), then the rest, deduplicated."""
    by_label: dict[str, list[str]] = {}
    for cand in group:
        items = by_label.setdefault(cand.label, [])
        if cand.description not in items:
            items.append(cand.description)
    phrases: list[str] = []
    for label, items in by_label.items():
        if not label:
            phrases.extend(items)
            continue
        # Newest first, at most MAX_DATES of them: the recent tests matter most.
        newest = sorted(items, reverse=True)
        shown = newest[:MAX_DATES]
        if len(newest) > MAX_DATES:
            shown.append(f"{len(newest) - MAX_DATES} more")
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        phrases.append(f"{label}{'s' if len(items) > 1 else ''} of {listed}")
    return ", ".join(phrases)


def touch_counts(
    c: CandleSeries, prices: NDArray[np.float64], band: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(touches, respected) per level price (see the module doc)."""
    if c.close.size < 2 or prices.size == 0:
        zeros = np.zeros(prices.size, dtype=np.int64)
        return zeros, zeros
    p = prices[:, None]
    prev = c.close[None, :-1] - p
    now = c.close[None, 1:] - p
    touched = (c.low[None, 1:] - band <= p) & (p <= c.high[None, 1:] + band) & (prev != 0)
    respected = touched & (np.sign(prev) == np.sign(now))
    return touched.sum(axis=1), respected.sum(axis=1)


def find_levels(candles: CandleSeries, *, lookback: int, k: int | None = None) -> LevelReport:
    """Levels over the last ``lookback`` candles of ``candles`` (closed, ascending).

    ``k`` overrides the pivot width (default :func:`pivot_k` of the window).
    """
    c = _tail(candles, lookback)
    n = c.close.size
    if n < MIN_CANDLES:
        raise FailedPrecondition(
            f"support and resistance need at least {MIN_CANDLES} closed candles; "
            f"this series has {n}"
        )
    last_close = float(c.close[-1])
    band = band_width(c)
    candidates = (
        pivot_candidates(c, pivot_k(n) if k is None else k)
        + fib_candidates(c)
        + volume_candidates(c)
    )
    merged = merge_candidates(candidates, band)
    # Nearest first; the price breaks ties so the order is deterministic.
    merged.sort(key=lambda m: (abs(m[0] - last_close), m[0]))
    merged = merged[:MAX_LEVELS]
    prices = np.array([m[0] for m in merged], dtype=np.float64)
    touches, respected = touch_counts(c, prices, band)
    levels = [
        Level(
            price=price,
            kind=SUPPORT if price <= last_close else RESISTANCE,
            methods=methods,
            description=description,
            touches=int(t),
            respected=int(r),
            respect_rate=float(r / t) if t else 0.0,
            distance_pct=(price - last_close) / last_close * 100.0 if last_close else 0.0,
        )
        for (price, methods, description), t, r in zip(merged, touches, respected, strict=True)
    ]
    supports = [lv for lv in levels if lv.kind == SUPPORT]
    resistances = [lv for lv in levels if lv.kind == RESISTANCE]
    return LevelReport(
        last_close=last_close,
        levels=levels,
        nearest_support=max(supports, key=lambda lv: lv.price) if supports else None,
        nearest_resistance=min(resistances, key=lambda lv: lv.price) if resistances else None,
        band=band,
    )


def level_to_pb(level: Level) -> signals_pb2.PriceLevel:
    return signals_pb2.PriceLevel(
        price=level.price,
        kind=level.kind,
        methods=list(level.methods),
        description=level.description,
        touches=level.touches,
        respected=level.respected,
        respect_rate=level.respect_rate,
        distance_pct=level.distance_pct,
    )


def build_response(
    symbol: str, interval: int, report: LevelReport
) -> signals_pb2.GetSupportResistanceResponse:
    response = signals_pb2.GetSupportResistanceResponse(
        symbol=symbol,
        interval=interval,
        last_close=report.last_close,
        levels=[level_to_pb(lv) for lv in report.levels],
    )
    if report.nearest_support is not None:
        response.nearest_support.CopyFrom(level_to_pb(report.nearest_support))
    if report.nearest_resistance is not None:
        response.nearest_resistance.CopyFrom(level_to_pb(report.nearest_resistance))
    return response


def _tail(c: CandleSeries, lookback: int) -> CandleSeries:
    start = max(c.close.size - lookback, 0)
    return CandleSeries(
        open_ms=np.asarray(c.open_ms[start:], dtype=np.int64),
        open=np.asarray(c.open[start:], dtype=np.float64),
        high=np.asarray(c.high[start:], dtype=np.float64),
        low=np.asarray(c.low[start:], dtype=np.float64),
        close=np.asarray(c.close[start:], dtype=np.float64),
        volume=np.asarray(c.volume[start:], dtype=np.float64),
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(x: float) -> str:
    """Prices as people write them: 48,900 / 95.719 / 0.000012345."""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.5g}"
