"""What portfolio asks PricingService and SignalsService, over gRPC only.

Quotes, market caps and historical prices come from pricing; trader grades,
ATR and the market regime from signals. Prices cross as doubles (market data
is double in the contract) and become Decimals here, once, through their
shortest repr, so "61234.5" stays exactly that. A dependency that is down is
:class:`~services.common.errors.Unavailable` naming it, never a made-up
number.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import grpc
import structlog

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc, signals_pb2, signals_pb2_grpc
from services.common.errors import Unavailable
from services.common.validation import ms_to_timestamp

log = structlog.get_logger(__name__)

ASSET_REFRESH_S = 300.0
# The price at a time is the close of the last candle that opened at or
# before it, on the finest interval that has one recently enough: a minute
# candle within the hour, else an hourly within the day, else a daily within
# the week. (interval, width ms, how far back it may be)
_PRICE_INTERVALS = (
    (common_pb2.INTERVAL_1M, 60_000, 3_600_000),
    (common_pb2.INTERVAL_1H, 3_600_000, 86_400_000),
    (common_pb2.INTERVAL_1D, 86_400_000, 7 * 86_400_000),
)
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def to_decimal(x: float) -> Decimal:
    if not math.isfinite(x):
        raise ValueError(f"not a finite price: {x!r}")
    return Decimal(repr(x))


@dataclass(frozen=True)
class Quote:
    price: Decimal
    market_cap: Decimal


@dataclass(frozen=True)
class SignalView:
    grade: float
    atr: float | None
    price: float


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 20_000),
            # Reconnect quickly after the dependency restarts.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ],
    )


class MarketLink:
    def __init__(
        self,
        pricing_address: str,
        signals_address: str,
        base_currency: str,
        timeout_s: float,
        token: str = "",
    ) -> None:
        self.pricing_address = pricing_address
        self.signals_address = signals_address
        self.base = base_currency
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._pricing_channel = _channel(pricing_address)
        self._signals_channel = _channel(signals_address)
        self.pricing = pricing_pb2_grpc.PricingServiceStub(self._pricing_channel)
        self.signals = signals_pb2_grpc.SignalsServiceStub(self._signals_channel)
        self._assets: frozenset[str] | None = None
        self._assets_at = 0.0
        self._assets_lock = asyncio.Lock()
        self._price_cache: dict[tuple[str, int], Decimal] = {}

    async def close(self) -> None:
        await self._pricing_channel.close()
        await self._signals_channel.close()

    def symbol(self, asset: str) -> str:
        return f"{asset}-{self.base}"

    def _pricing_down(self, err: grpc.aio.AioRpcError, what: str) -> Unavailable:
        return Unavailable(
            f"pricing at {self.pricing_address} did not answer {what} "
            f"({err.code().name}: {err.details()}); retry shortly"
        )

    def _signals_down(self, err: grpc.aio.AioRpcError, what: str) -> Unavailable:
        return Unavailable(
            f"signals at {self.signals_address} did not answer {what} "
            f"({err.code().name}: {err.details()}); retry shortly"
        )

    # -- the asset directory ---------------------------------------------

    async def refresh_assets(self) -> frozenset[str]:
        assets: set[str] = set()
        token = ""
        suffix = "-" + self.base
        try:
            while True:
                page = await self.pricing.ListAssets(
                    pricing_pb2.ListAssetsRequest(page_size=1000, page_token=token),
                    timeout=self.timeout_s,
                    metadata=self._metadata,
                )
                assets.update(
                    a.symbol.removesuffix(suffix) for a in page.assets if a.symbol.endswith(suffix)
                )
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as err:
            raise self._pricing_down(err, "ListAssets") from None
        self._assets = frozenset(assets)
        self._assets_at = time.monotonic()
        return self._assets

    async def known_assets(self) -> frozenset[str]:
        """The assets pricing quotes in the base currency (refreshed every 5 minutes)."""
        stale = time.monotonic() - self._assets_at > ASSET_REFRESH_S
        if self._assets is not None and not stale:
            return self._assets
        async with self._assets_lock:
            if self._assets is not None and time.monotonic() - self._assets_at <= ASSET_REFRESH_S:
                return self._assets
            try:
                return await self.refresh_assets()
            except Unavailable:
                if self._assets is not None:
                    return self._assets  # keep using the last list while pricing is away
                raise

    # -- prices ----------------------------------------------------------

    async def quotes(self, assets: Iterable[str]) -> tuple[dict[str, Quote], list[str]]:
        """Current quotes, and the assets pricing has no price for."""
        wanted = sorted(set(assets))
        if not wanted:
            return {}, []
        try:
            response = await self.pricing.GetQuotes(
                pricing_pb2.GetQuotesRequest(symbols=[self.symbol(a) for a in wanted]),
                timeout=self.timeout_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as err:
            raise self._pricing_down(err, "GetQuotes") from None
        suffix = "-" + self.base
        out = {
            q.symbol.removesuffix(suffix): Quote(to_decimal(q.price), to_decimal(q.market_cap))
            for q in response.quotes
            if q.price > 0
        }
        missing = [a for a in wanted if a not in out]
        return out, missing

    async def price_at(self, asset: str, time_ms: int) -> Decimal | None:
        """The last price at ``time_ms`` (see _PRICE_INTERVALS); None when pricing has none."""
        for interval, width, reach in _PRICE_INTERVALS:
            end = time_ms - time_ms % width + width  # exclusive: the candle containing time_ms
            key = (asset, interval * 10**15 + end)
            cached = self._price_cache.get(key)
            if cached is not None:
                return cached
            request = pricing_pb2.GetCandlesRequest(
                symbol=self.symbol(asset), interval=interval, limit=1
            )
            request.end_time.CopyFrom(ms_to_timestamp(end))
            try:
                response = await self.pricing.GetCandles(
                    request, timeout=self.timeout_s, metadata=self._metadata
                )
            except grpc.aio.AioRpcError as err:
                if err.code() in _UNREACHABLE:
                    raise self._pricing_down(err, "GetCandles") from None
                return None  # e.g. NOT_FOUND: pricing does not know the symbol
            price = None
            closed = False
            if response.candles:
                candle = response.candles[-1]
                opened = candle.open_time.seconds * 1000 + candle.open_time.nanos // 1_000_000
                if candle.close > 0 and opened >= time_ms - reach:
                    price = to_decimal(candle.close)
                    closed = candle.closed
            if price is None:
                continue  # not cached: history can still arrive (an import of old ticks)
            if closed:
                # A forming candle's close still moves: only closed answers are cached.
                if len(self._price_cache) > 100_000:
                    self._price_cache.clear()
                self._price_cache[key] = price
            return price
        return None

    async def prices_at(
        self, needs: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Decimal | None]:
        """price_at for many (asset, time) pairs, a few at a time."""
        unique = list(dict.fromkeys(needs))
        semaphore = asyncio.Semaphore(16)

        async def one(asset: str, time_ms: int) -> Decimal | None:
            async with semaphore:
                return await self.price_at(asset, time_ms)

        results = await asyncio.gather(*(one(a, t) for a, t in unique))
        return dict(zip(unique, results, strict=True))

    # -- signals ---------------------------------------------------------

    async def signal(self, asset: str) -> SignalView | None:
        """The 1h signal, or None when signals does not grade the asset."""
        try:
            response = await self.signals.GetSignal(
                signals_pb2.GetSignalRequest(
                    symbol=self.symbol(asset), interval=common_pb2.INTERVAL_1H
                ),
                timeout=self.timeout_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as err:
            # FAILED_PRECONDITION: signals knows the symbol but has too few candles
            # to grade it yet; that is "no grade", not signals being down.
            if err.code() in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                return None
            raise self._signals_down(err, "GetSignal") from None
        s = response.signal
        atr = s.indicators.get("atr_14")
        return SignalView(
            grade=s.trader_grade,
            atr=atr if atr is not None and math.isfinite(atr) and atr > 0 else None,
            price=s.price,
        )

    async def signals_for(self, assets: Iterable[str]) -> dict[str, SignalView]:
        wanted = sorted(set(assets))
        views = await asyncio.gather(*(self.signal(a) for a in wanted))
        return {a: v for a, v in zip(wanted, views, strict=True) if v is not None}

    async def regime(self) -> int:
        try:
            response = await self.signals.GetMarketBreadth(
                signals_pb2.GetMarketBreadthRequest(interval=common_pb2.INTERVAL_1H),
                timeout=self.timeout_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as err:
            raise self._signals_down(err, "GetMarketBreadth") from None
        return response.market.regime
