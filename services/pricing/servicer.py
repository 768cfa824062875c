"""marketmesh.v1.PricingService: requests in, plain functions, responses out."""

from collections.abc import AsyncIterator, Sequence

import grpc
import numpy as np

from marketmesh.v1 import pricing_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.validation import now_ms, parse_symbol
from services.pricing import asset_query, candle_query, overview
from services.pricing.app import PricingApp
from services.pricing.ingest import IngestTally, apply_ticks, ticks_to_columns
from services.pricing.intervals import INTERVALS

MAX_QUOTES_PER_CALL = 10_000
MAX_STREAM_RATE = 1_000.0
_INTERVAL_INDEX = {enum: i for i, (enum, _) in enumerate(INTERVALS)}


def stream_intervals(intervals: Sequence[int]) -> np.ndarray | None:
    """Indices into INTERVALS of the requested intervals (None: all of them)."""
    if not intervals:
        return None
    out = []
    for i, value in enumerate(intervals):
        index = _INTERVAL_INDEX.get(value)
        if index is None:
            raise InvalidArgument(
                f"intervals[{i}]",
                f"unknown interval value {value}; use INTERVAL_1M ... INTERVAL_1D",
            )
        out.append(index)
    return np.unique(np.asarray(out, dtype=np.int64))


class PricingServicer:
    def __init__(self, app: PricingApp) -> None:
        self.app = app

    async def GetQuote(
        self, request: pricing_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.GetQuoteResponse:
        symbol, sid = self.app.market.universe.sid_of(request.symbol)
        quotes = self.app.market.quotes_pb(np.asarray([sid], dtype=np.int32), now_ms())
        if not quotes:
            raise NotFound(f"no trade has been seen for {symbol} yet")
        return pricing_pb2.GetQuoteResponse(quote=quotes[0])

    async def GetQuotes(
        self, request: pricing_pb2.GetQuotesRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.GetQuotesResponse:
        if len(request.symbols) > MAX_QUOTES_PER_CALL:
            raise InvalidArgument(
                "symbols", f"at most {MAX_QUOTES_PER_CALL} per call, got {len(request.symbols)}"
            )
        known = self.app.market.universe.sid_by_symbol
        sids: list[int] = []
        unknown: list[str] = []
        seen: set[str] = set()
        for i, raw in enumerate(request.symbols):
            symbol = parse_symbol(raw, f"symbols[{i}]")
            if symbol in seen:
                continue
            seen.add(symbol)
            sid = known.get(symbol)
            if sid is None:
                unknown.append(symbol)
            else:
                sids.append(sid)
        quotes = self.app.market.quotes_pb(np.asarray(sids, dtype=np.int32), now_ms())
        priced = {q.symbol for q in quotes}
        unpriced = [s for s in seen if s in known and s not in priced]
        return pricing_pb2.GetQuotesResponse(
            quotes=quotes, unknown_symbols=unknown, unpriced_symbols=sorted(unpriced)
        )

    async def GetCandles(
        self, request: pricing_pb2.GetCandlesRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.GetCandlesResponse:
        query = candle_query.parse_candle_request(request, self.app.market.universe)
        return await candle_query.get_candles(self.app.candle_store, query)

    async def StreamQuotes(
        self, request: pricing_pb2.StreamQuotesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        feed = self.app.feed
        rate = request.max_updates_per_second
        if not (0 <= rate <= MAX_STREAM_RATE):  # also rejects NaN
            raise InvalidArgument(
                "max_updates_per_second", f"must be between 0 and {MAX_STREAM_RATE:g}, got {rate}"
            )
        sids = self._stream_sids(request)
        async for message in feed.subscribe(
            sids, max_updates_per_second=rate, from_sequence=request.from_sequence
        ):
            yield message

    async def StreamCandles(
        self, request: pricing_pb2.StreamCandlesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        feed = self.app.candle_feed
        sids = self._stream_sids(request)
        intervals = stream_intervals(request.intervals)
        async for message in feed.subscribe(sids, intervals, from_sequence=request.from_sequence):
            yield message

    def _stream_sids(
        self, request: pricing_pb2.StreamQuotesRequest | pricing_pb2.StreamCandlesRequest
    ) -> np.ndarray | None:
        if not request.symbols and not request.sectors:
            return None
        universe = self.app.market.universe
        parts = [universe.sid_of(raw, f"symbols[{i}]")[1] for i, raw in enumerate(request.symbols)]
        sector_sids = universe.sector_sids(list(request.sectors), "sectors")
        return np.unique(np.concatenate([np.asarray(parts, dtype=np.int32), sector_sids])).astype(
            np.int32
        )

    async def PublishTicks(
        self,
        request_iterator: AsyncIterator[pricing_pb2.PublishTicksRequest],
        context: grpc.aio.ServicerContext,
    ) -> pricing_pb2.PublishTicksResponse:
        market = self.app.market
        persister = self.app.persister
        tally = IngestTally()
        async for request in request_iterator:
            if not request.ticks:
                continue
            now = now_ms()
            symbols, sids, times, prices, volumes = ticks_to_columns(
                request.ticks, market.universe.sid_by_symbol, now
            )
            apply_ticks(market, tally, symbols, sids, times, prices, volumes, now)
            self.app.after_ingest()
        if tally.accepted:
            await persister.commit()
        return tally.to_response()

    async def ListAssets(
        self, request: pricing_pb2.ListAssetsRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.ListAssetsResponse:
        return asset_query.list_assets(self.app.market, request, now_ms())

    async def GetAsset(
        self, request: pricing_pb2.GetAssetRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.GetAssetResponse:
        return asset_query.get_asset(self.app.market, request)

    async def GetMarketOverview(
        self, request: pricing_pb2.GetMarketOverviewRequest, context: grpc.aio.ServicerContext
    ) -> pricing_pb2.GetMarketOverviewResponse:
        return overview.market_overview(self.app.market, request, now_ms())
