"""Ticks in: validate, apply to the market, explain every rejection."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat

import numpy as np

from marketmesh.v1 import pricing_pb2
from services.pricing.market import Market

MAX_FUTURE_MS = 5_000
# Timestamp's valid range (years 1-9999) in ms.
MIN_TIME_MS = -62_135_596_800_000
MAX_TIME_MS = 253_402_300_799_999
# Bounds that keep every candle sum (price x volume, added up) finite: a
# finite but absurd tick would otherwise persist an infinite quote_volume.
MAX_PRICE = 1e12
MAX_VOLUME = 1e16
# Rejections listed in one PublishTicks response; `rejected` counts them all.
MAX_LISTED_REJECTIONS = 1_000

UNKNOWN_SYMBOL = pricing_pb2.TICK_REJECTION_REASON_UNKNOWN_SYMBOL
NON_POSITIVE_PRICE = pricing_pb2.TICK_REJECTION_REASON_NON_POSITIVE_PRICE
NON_FINITE_PRICE = pricing_pb2.TICK_REJECTION_REASON_NON_FINITE_PRICE
INVALID_VOLUME = pricing_pb2.TICK_REJECTION_REASON_INVALID_VOLUME
TIME_IN_FUTURE = pricing_pb2.TICK_REJECTION_REASON_TIME_IN_FUTURE
TIME_BEFORE_CLOSED = pricing_pb2.TICK_REJECTION_REASON_TIME_BEFORE_CLOSED_CANDLE
PRICE_OUT_OF_RANGE = pricing_pb2.TICK_REJECTION_REASON_PRICE_OUT_OF_RANGE
INVALID_TIME = pricing_pb2.TICK_REJECTION_REASON_INVALID_TIME
# Marks a tick whose Timestamp is malformed in the times column.
INVALID_TIME_MS = np.iinfo(np.int64).min


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def rejection_reason(
    code: int, symbol: str, price: float, volume: float, time_ms: int, now_ms: int
) -> str:
    if code == UNKNOWN_SYMBOL:
        return f"unknown symbol {symbol!r}: not in the asset universe (see ListAssets)"
    if code == NON_FINITE_PRICE:
        return f"price must be a finite number, got {price}"
    if code == NON_POSITIVE_PRICE:
        return f"price must be greater than 0, got {price}"
    if code == INVALID_VOLUME:
        return f"volume must be a finite number between 0 and {MAX_VOLUME:g}, got {volume}"
    if code == INVALID_TIME:
        return "time is not a valid Timestamp: nanos must be between 0 and 999,999,999"
    if code == PRICE_OUT_OF_RANGE:
        return f"price must be at most {MAX_PRICE:g}, got {price}"
    if code == TIME_IN_FUTURE:
        ahead = (time_ms - now_ms) / 1000
        return (
            f"time {_iso(time_ms)} is {ahead:.3f} s ahead of the server clock; "
            f"at most {MAX_FUTURE_MS / 1000:g} s is allowed"
        )
    if code == TIME_BEFORE_CLOSED:
        return (
            f"time {_iso(time_ms)} falls in a candle of {symbol} that is already closed; "
            "ticks must not be older than the forming 1m candle"
        )
    return f"rejected (code {code})"


@dataclass
class IngestTally:
    """What a PublishTicks stream did, accumulated over its messages."""

    accepted: int = 0
    rejected: int = 0
    rejections: list[pricing_pb2.TickRejection] = field(default_factory=list)
    seen: int = 0

    def to_response(self) -> pricing_pb2.PublishTicksResponse:
        return pricing_pb2.PublishTicksResponse(
            accepted=self.accepted, rejected=self.rejected, rejections=self.rejections
        )


def symbols_to_sids(symbols: Sequence[str], sid_by_symbol: dict[str, int]) -> np.ndarray:
    """Sid per symbol, -1 for a symbol not in the universe."""
    get = sid_by_symbol.get
    sids = np.fromiter(map(get, symbols, repeat(-2)), dtype=np.int32, count=len(symbols))
    # A second chance for sloppy spelling ("btc-usd ") before calling it unknown.
    for i in np.flatnonzero(sids == -2).tolist():
        sids[i] = get(symbols[i].strip().upper(), -1)
    return sids


def ticks_to_columns(
    ticks: Sequence[pricing_pb2.Tick], sid_by_symbol: dict[str, int], now_ms: int
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column arrays of a batch of ticks; unknown symbols get sid -1 and an
    unset time means "now"."""
    # One pass over the ticks: every element access builds a wrapper object, so
    # four passes (one per column) cost ~30% more than this loop.
    symbols: list[str] = []
    prices: list[float] = []
    volumes: list[float] = []
    stamps: list[int] = []
    for t in ticks:
        symbols.append(t.symbol)
        prices.append(t.price)
        volumes.append(t.volume)
        if t.HasField("time"):
            stamp = t.time
            if 0 <= stamp.nanos < 1_000_000_000:
                stamps.append(stamp.seconds * 1000 + stamp.nanos // 1_000_000)
            else:
                stamps.append(INVALID_TIME_MS)
        else:
            stamps.append(now_ms)
    sids = symbols_to_sids(symbols, sid_by_symbol)
    # Float first: a time far outside Timestamp's range would overflow int64
    # (an INTERNAL error); clamped to the range's ends it is rejected as too far
    # in the future or the past. Valid times (|ms| < 2^53) convert exactly.
    raw = np.array(stamps, dtype=np.float64)
    times = np.clip(raw, MIN_TIME_MS, MAX_TIME_MS).astype(np.int64)
    times[raw == float(INVALID_TIME_MS)] = INVALID_TIME_MS
    return (
        symbols,
        sids,
        times,
        np.array(prices, dtype=np.float64),
        np.array(volumes, dtype=np.float64),
    )


def apply_ticks(
    market: Market,
    tally: IngestTally,
    symbols: Sequence[str],
    sids: np.ndarray,
    times: np.ndarray,
    prices: np.ndarray,
    volumes: np.ndarray,
    now_ms: int,
) -> None:
    # Out-of-range ticks go to the engine as unknown symbols, so it leaves
    # them out, and get their own code here.
    # Infinite values keep the engine's own codes (non-finite price / volume).
    price_high = np.isfinite(prices) & (prices > MAX_PRICE)
    volume_high = np.isfinite(volumes) & (volumes > MAX_VOLUME)
    bad_time = times == INVALID_TIME_MS
    out_of_range = (price_high | volume_high | bad_time) & (sids >= 0)
    engine_sids = sids
    if out_of_range.any():
        engine_sids = sids.copy()
        engine_sids[out_of_range] = -1
    codes = market.ingest(engine_sids, times, prices, volumes, now_ms)
    if out_of_range.any():
        codes[out_of_range & volume_high] = INVALID_VOLUME
        codes[out_of_range & price_high] = PRICE_OUT_OF_RANGE
        codes[out_of_range & bad_time] = INVALID_TIME
    bad = np.flatnonzero(codes)
    tally.rejected += int(bad.size)
    tally.accepted += len(symbols) - int(bad.size)
    room = MAX_LISTED_REJECTIONS - len(tally.rejections)
    for i in bad[: max(room, 0)].tolist():
        code = int(codes[i])
        price = float(prices[i])
        volume = float(volumes[i])
        tally.rejections.append(
            pricing_pb2.TickRejection(
                index=tally.seen + i,
                symbol=symbols[i],
                code=code,
                reason=rejection_reason(code, symbols[i], price, volume, int(times[i]), now_ms),
            )
        )
    tally.seen += len(symbols)
