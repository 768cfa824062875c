"""GetCandles: validation, keyset pagination, rows to messages."""

from dataclasses import dataclass

from marketmesh.v1 import common_pb2, pricing_pb2
from services.common.errors import InvalidArgument
from services.common.pagination import decode_page_token, encode_page_token
from services.common.validation import ms_to_timestamp, optional_timestamp_ms, parse_limit
from services.pricing.candles import CandleArrays
from services.pricing.intervals import MS_BY_ENUM
from services.pricing.store import MarketStore
from services.pricing.universe import Universe

DEFAULT_LIMIT = 500
MAX_LIMIT = 5_000


@dataclass(frozen=True)
class CandleQuery:
    symbol: str
    sid: int
    interval: int
    interval_ms: int
    start_ms: int | None
    end_ms: int | None
    after_ms: int | None
    limit: int

    def page_token_after(self, last_open_ms: int) -> str:
        return encode_page_token(
            {
                "kind": "candles",
                "symbol": self.symbol,
                "interval": self.interval,
                "start": self.start_ms,
                "end": self.end_ms,
                "after": last_open_ms,
            }
        )


def parse_candle_request(request: pricing_pb2.GetCandlesRequest, universe: Universe) -> CandleQuery:
    symbol, sid = universe.sid_of(request.symbol)
    if request.interval == common_pb2.INTERVAL_UNSPECIFIED:
        raise InvalidArgument("interval", "is required (INTERVAL_1M ... INTERVAL_1D)")
    interval_ms = MS_BY_ENUM.get(request.interval)
    if interval_ms is None:
        raise InvalidArgument("interval", f"unknown interval value {request.interval}")
    start_ms = optional_timestamp_ms(request, "start_time")
    end_ms = optional_timestamp_ms(request, "end_time")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise InvalidArgument("start_time", "must be before end_time")
    limit = parse_limit(request.limit, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    after_ms = None
    if request.page_token:
        token = decode_page_token(request.page_token)
        expected = {
            "kind": "candles",
            "symbol": symbol,
            "interval": request.interval,
            "start": start_ms,
            "end": end_ms,
        }
        if any(token.get(key) != value for key, value in expected.items()):
            raise InvalidArgument(
                "page_token",
                "was issued for a different query; keep symbol, interval, start_time "
                "and end_time unchanged while paging",
            )
        after = token.get("after")
        if not isinstance(after, int):
            raise InvalidArgument("page_token", "malformed page token")
        after_ms = after
    return CandleQuery(
        symbol, sid, request.interval, interval_ms, start_ms, end_ms, after_ms, limit
    )


def candles_to_pb(rows: CandleArrays) -> list[pricing_pb2.Candle]:
    out = []
    open_ms = rows.open_ms.tolist()
    opens, highs, lows, closes = (
        rows.open.tolist(),
        rows.high.tolist(),
        rows.low.tolist(),
        rows.close.tolist(),
    )
    volumes, quote_volumes = rows.volume.tolist(), rows.quote_volume.tolist()
    trades, closed = rows.trades.tolist(), rows.closed.tolist()
    for i, ms in enumerate(open_ms):
        out.append(
            pricing_pb2.Candle(
                open_time=ms_to_timestamp(ms),
                open=opens[i],
                high=highs[i],
                low=lows[i],
                close=closes[i],
                volume=volumes[i],
                trades=trades[i],
                closed=bool(closed[i]),
                quote_volume=quote_volumes[i],
            )
        )
    return out


async def get_candles(store: MarketStore, query: CandleQuery) -> pricing_pb2.GetCandlesResponse:
    # One extra row tells whether another page exists.
    rows = await store.aquery_candles(
        query.sid,
        query.interval_ms,
        start_ms=query.start_ms,
        end_ms=query.end_ms,
        after_ms=query.after_ms,
        limit=query.limit + 1,
    )
    paged = query.start_ms is not None or query.after_ms is not None
    token = ""
    if paged and len(rows) > query.limit:
        rows = rows.take(slice(None, query.limit))
        token = query.page_token_after(int(rows.open_ms[-1]))
    elif not paged and len(rows) > query.limit:
        rows = rows.take(slice(-query.limit, None))
    return pricing_pb2.GetCandlesResponse(
        symbol=query.symbol,
        interval=query.interval,
        candles=candles_to_pb(rows),
        next_page_token=token,
    )
