"""The bars a backtest runs on: pricing's history (with warm-up bars before
the tested range, so indicators are settled on its first bar) or the caller's
own candles."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np

from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.validation import now_ms
from services.signals.backtest.spec import DEFAULT_BARS, MAX_BARS, MIN_BARS, DataSpec
from services.signals.candles import CandleSeries
from services.signals.pricing_link import PricingLink

# Bars fetched before the tested range for the trader grade to settle: its
# slowest inputs are the 200-bar EMA and SMA.
GRADE_WARMUP_BARS = 250


@dataclass(frozen=True)
class Bars:
    """Candles of one symbol, and the first bar of the tested range (the ones
    before it only warm the indicators up)."""

    symbol: str
    interval: int
    candles: CandleSeries
    first: int

    def __len__(self) -> int:
        return len(self.candles)

    @property
    def tested(self) -> int:
        return len(self.candles) - self.first


def inline_bars(spec: DataSpec) -> Bars:
    assert spec.inline is not None
    c = spec.inline
    series = CandleSeries(c["open_ms"], c["open"], c["high"], c["low"], c["close"], c["volume"])
    return Bars(spec.symbol, spec.interval, series, 0)


def tested_from(spec: DataSpec, default_bars: int = DEFAULT_BARS) -> int:
    """The first tested time: start_time, else ``default_bars`` bars before
    end_time (or now)."""
    if spec.start_ms is not None:
        return spec.start_ms
    width = spec.interval_ms
    end = spec.end_ms if spec.end_ms is not None else now_ms()
    return end // width * width - default_bars * width


async def fetch_bars(spec: DataSpec, link: PricingLink, warmup: int) -> Bars:
    """pricing's closed candles over the spec's range (see :func:`tested_from`)
    plus ``warmup`` bars before it."""
    width = spec.interval_ms
    end = spec.end_ms
    first_ms = tested_from(spec)
    try:
        history = await link.candles(
            spec.symbol, spec.interval, start_ms=first_ms - warmup * width, end_ms=end
        )
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"unknown symbol {spec.symbol!r}: pricing has no such market") from None
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument("symbol", err.details() or "rejected by pricing") from None
        raise Unavailable(
            f"candle history comes from pricing, which did not answer ({err.code().name}); "
            "retry shortly"
        ) from None
    candles = history.closed
    if len(candles) > MAX_BARS + warmup:
        raise InvalidArgument(
            "start_time", f"at most {MAX_BARS:,} bars per backtest; narrow the range"
        )
    first = int(np.searchsorted(candles.open_ms, first_ms))
    if len(candles) - first < MIN_BARS:
        raise InvalidArgument(
            "start_time",
            f"pricing has {len(candles) - first} closed {spec.symbol} candles in the range; "
            f"a backtest needs at least {MIN_BARS}",
        )
    return Bars(spec.symbol, spec.interval, candles, first)
