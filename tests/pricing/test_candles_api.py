"""GetCandles through real gRPC stubs: limits, bounds, keyset pagination (also
while ticks form new candles) and the consistency of the backfilled history
across intervals, recomputed with pandas."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pytest import approx

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from tests.pricing.conftest import StartPricing
from tests.pricing.reference import OHLCV_AGG

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WIDTH_MS = {
    common_pb2.INTERVAL_1M: MINUTE_MS,
    common_pb2.INTERVAL_5M: 5 * MINUTE_MS,
    common_pb2.INTERVAL_15M: 15 * MINUTE_MS,
    common_pb2.INTERVAL_1H: HOUR_MS,
    common_pb2.INTERVAL_4H: 4 * HOUR_MS,
    common_pb2.INTERVAL_1D: DAY_MS,
}
M1, H1, D1 = common_pb2.INTERVAL_1M, common_pb2.INTERVAL_1H, common_pb2.INTERVAL_1D

Stub = pricing_pb2_grpc.PricingServiceStub


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def open_ms(candle: pricing_pb2.Candle) -> int:
    return candle.open_time.seconds * 1000 + candle.open_time.nanos // 1_000_000


def opens(candles: Sequence[pricing_pb2.Candle]) -> list[int]:
    return [open_ms(c) for c in candles]


async def publish(stub: Stub, *batches: list[pricing_pb2.Tick]) -> pricing_pb2.PublishTicksResponse:
    async def requests() -> AsyncIterator[pricing_pb2.PublishTicksRequest]:
        for ticks in batches:
            yield pricing_pb2.PublishTicksRequest(ticks=ticks)

    return await stub.PublishTicks(requests())


def tick(symbol: str, price: float, volume: float, time_ms: int) -> pricing_pb2.Tick:
    return pricing_pb2.Tick(symbol=symbol, price=price, volume=volume, time=ts(time_ms))


async def candles(
    stub: Stub, symbol: str, interval: int, **fields: object
) -> pricing_pb2.GetCandlesResponse:
    return await stub.GetCandles(
        pricing_pb2.GetCandlesRequest(symbol=symbol, interval=interval, **fields)  # type: ignore[arg-type]
    )


async def page_through(
    stub: Stub,
    symbol: str,
    interval: int,
    start: int,
    *,
    limit: int,
    between: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[list[pricing_pb2.Candle], int]:
    """Every page from `start`; `between(page_number)` runs before each next page."""
    got: list[pricing_pb2.Candle] = []
    token = ""
    pages = 0
    while True:
        page = await candles(
            stub, symbol, interval, start_time=ts(start), limit=limit, page_token=token
        )
        pages += 1
        assert len(page.candles) <= limit
        assert page.symbol == symbol and page.interval == interval
        got += page.candles
        token = page.next_page_token
        if not token:
            return got, pages
        assert len(page.candles) == limit, "a page with a token is full"
        assert pages < 1000
        if between is not None:
            await between(pages)


def assert_contiguous(open_times: list[int], width: int) -> None:
    assert open_times, "no candles"
    assert all(t % width == 0 for t in open_times), "aligned to the width"
    assert open_times == list(range(open_times[0], open_times[-1] + width, width)), (
        "no gap, no repeat"
    )


async def test_default_and_maximum_limit(start_pricing_server: StartPricing) -> None:
    # Four days of minute history: more 1m candles than the 5,000 maximum.
    server = await start_pricing_server(universe_size=2, backfill_days=4, backfill_fine_days=4)
    stub = server.stub
    t = now_ms()
    assert (await publish(stub, [tick("BTC-USD", 99_000.0, 0.5, t)])).accepted == 1

    default = await candles(stub, "BTC-USD", M1)
    assert len(default.candles) == 500
    assert default.next_page_token == "", "no token without start_time"
    at_max = await candles(stub, "BTC-USD", M1, limit=5_000)
    assert len(at_max.candles) == 5_000
    assert_contiguous(opens(at_max.candles), MINUTE_MS)
    # Both are the most recent candles, ascending, ending in the forming one.
    assert list(default.candles) == list(at_max.candles[-500:])
    last = at_max.candles[-1]
    assert open_ms(last) == t - t % MINUTE_MS
    assert last.close == 99_000.0
    assert not last.closed
    assert all(c.closed for c in at_max.candles[:-1])
    one = await candles(stub, "BTC-USD", M1, limit=1)
    assert list(one.candles) == [last]

    # From a start time: the first 5,000 after it, and a token for the rest.
    start = open_ms(at_max.candles[0]) - 3 * HOUR_MS
    first = await candles(stub, "BTC-USD", M1, start_time=ts(start), limit=5_000)
    assert len(first.candles) == 5_000 and first.next_page_token
    assert open_ms(first.candles[0]) >= start
    rest = await candles(
        stub, "BTC-USD", M1, start_time=ts(start), limit=5_000, page_token=first.next_page_token
    )
    everything = [*first.candles, *rest.candles]
    assert_contiguous(opens(everything), MINUTE_MS)
    assert everything[-1] == last
    assert rest.next_page_token == ""


async def test_last_candle_of_every_interval_is_the_forming_one(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=2)
    t = now_ms()
    assert (await publish(server.stub, [tick("ETH-USD", 2_345.5, 3.0, t)])).accepted == 1
    for interval, width in WIDTH_MS.items():
        reply = await candles(server.stub, "ETH-USD", interval, limit=5_000)
        series = list(reply.candles)
        assert len(series) >= 2, interval
        assert opens(series) == sorted(set(opens(series))), "ascending, once each"
        assert open_ms(series[-1]) == t - t % width
        assert not series[-1].closed
        assert all(c.closed for c in series[:-1]), interval
        assert series[-1].close == 2_345.5
        assert series[-1].high >= 2_345.5 >= series[-1].low


async def test_start_is_inclusive_and_end_exclusive(start_pricing_server: StartPricing) -> None:
    server = await start_pricing_server(universe_size=2)
    stub = server.stub
    series = list((await candles(stub, "BTC-USD", H1, limit=5_000)).candles)
    assert len(series) >= 48
    t = open_ms(series[20])
    window = series[20:25]

    exact = await candles(stub, "BTC-USD", H1, start_time=ts(t), end_time=ts(t + 5 * HOUR_MS))
    assert list(exact.candles) == window
    assert exact.next_page_token == ""
    # One millisecond either way moves the bound past a candle or not.
    later = await candles(stub, "BTC-USD", H1, start_time=ts(t + 1), end_time=ts(t + 5 * HOUR_MS))
    assert list(later.candles) == window[1:]
    earlier = await candles(
        stub, "BTC-USD", H1, start_time=ts(t - 1), end_time=ts(t + 5 * HOUR_MS + 1)
    )
    assert list(earlier.candles) == [*window, series[25]]
    just_one = await candles(stub, "BTC-USD", H1, start_time=ts(t), end_time=ts(t + 1))
    assert list(just_one.candles) == [series[20]]
    none = await candles(stub, "BTC-USD", H1, start_time=ts(t + 1), end_time=ts(t + HOUR_MS))
    assert list(none.candles) == []
    # Unaligned bounds.
    mid = await candles(
        stub, "BTC-USD", H1, start_time=ts(t + HOUR_MS // 2), end_time=ts(t + 3 * HOUR_MS + 1)
    )
    assert list(mid.candles) == series[21:24]
    # Only an end: the latest `limit` candles before it.
    before_end = await candles(stub, "BTC-USD", H1, end_time=ts(t), limit=4)
    assert list(before_end.candles) == series[16:20]
    # A page that stops at end_time tells there is more only within the bounds.
    paged = await candles(
        stub, "BTC-USD", H1, start_time=ts(t), end_time=ts(t + 5 * HOUR_MS), limit=3
    )
    assert list(paged.candles) == window[:3] and paged.next_page_token
    tail = await candles(
        stub,
        "BTC-USD",
        H1,
        start_time=ts(t),
        end_time=ts(t + 5 * HOUR_MS),
        limit=3,
        page_token=paged.next_page_token,
    )
    assert list(tail.candles) == window[3:]
    assert tail.next_page_token == ""


async def test_pagination_over_three_days_of_1h_visits_each_candle_once(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=2, backfill_days=3)
    stub = server.stub
    start = now_ms() - 3 * DAY_MS
    price = [50_000.0]

    async def extend_forming_candle(page: int) -> None:
        price[0] += 10.0
        reply = await publish(stub, [tick("BTC-USD", price[0], 0.25, now_ms())])
        assert reply.accepted == 1

    got, pages = await page_through(
        stub, "BTC-USD", H1, start, limit=10, between=extend_forming_candle
    )
    reference = list(
        (await candles(stub, "BTC-USD", H1, start_time=ts(start), limit=5_000)).candles
    )
    assert 72 <= len(reference) <= 74
    assert pages == -(-len(reference) // 10)
    assert opens(got) == opens(reference)
    assert_contiguous(opens(got), HOUR_MS)
    assert open_ms(got[0]) >= start > open_ms(got[0]) - HOUR_MS
    # Closed candles never change; the forming one carries every tick.
    assert got[:-1] == reference[:-1]
    assert got[-1].close == price[0] == reference[-1].close
    assert not got[-1].closed


async def test_pagination_is_stable_while_ticks_form_new_candles(
    start_pricing_server: StartPricing,
) -> None:
    """Ticks between pages extend the forming 1m candle and open a new one;
    keyset paging neither repeats nor skips a candle and ends with the new one."""
    server = await start_pricing_server(universe_size=2)
    stub = server.stub
    t0 = now_ms()
    start = t0 - t0 % MINUTE_MS - 35 * MINUTE_MS
    new_open: list[int] = []
    last_price = [0.0]

    async def between(page: int) -> None:
        # Never older than the candle opened below (that would be rejected).
        t = max([now_ms(), *new_open])
        if page == 2:
            # Open the next minute's candle: a tick may be up to 5 s ahead of
            # the server clock, so wait until the boundary is 4 s away.
            boundary = t - t % MINUTE_MS + MINUTE_MS
            if boundary - t > 4_000:
                await asyncio.sleep((boundary - t - 4_000) / 1000)
            t = boundary
            new_open.append(boundary)
        last_price[0] = 3_000.0 + page
        reply = await publish(stub, [tick("ETH-USD", last_price[0], 1.0, t)])
        assert (reply.accepted, reply.rejected) == (1, 0), reply

    got, _ = await page_through(stub, "ETH-USD", M1, start, limit=10, between=between)
    got_opens = opens(got)
    assert len(got_opens) == len(set(got_opens)), "no candle twice"
    assert_contiguous(got_opens, MINUTE_MS)
    assert got_opens[0] == start
    assert got_opens[-1] == new_open[0], "the candle opened while paging is on the last page"
    assert got[-1].close == last_price[0]
    reference = (await candles(stub, "ETH-USD", M1, start_time=ts(start), limit=5_000)).candles
    assert opens(reference) == got_opens


def frame(series: Sequence[pricing_pb2.Candle]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_ms": opens(series),
            "open": [c.open for c in series],
            "high": [c.high for c in series],
            "low": [c.low for c in series],
            "close": [c.close for c in series],
            "volume": [c.volume for c in series],
            "quote_volume": [c.quote_volume for c in series],
            "trades": [c.trades for c in series],
            "closed": [c.closed for c in series],
        }
    )


def resample(fine: pd.DataFrame, fine_ms: int, width: int) -> pd.DataFrame:
    """Aggregate `fine` candles into `width` buckets with pandas; keep only the
    buckets whose fine candles cover them from their start (the first bucket of
    a shorter history is partial) and fully (but for the forming last one)."""
    index = pd.to_datetime(fine["open_ms"], unit="ms", utc=True)
    data = fine.set_index(index).drop(columns="open_ms")
    rule = f"{width // MINUTE_MS}min"
    out = data.resample(rule, origin="epoch", label="left", closed="left").agg(
        {**OHLCV_AGG, "closed": "all"}
    )
    first = data.index.to_series().resample(rule, origin="epoch").min()
    count = data["open"].resample(rule, origin="epoch").count()
    out["open_ms"] = out.index.as_unit("ms").asi8
    complete = (first == out.index) & ((count == width // fine_ms) | (out.index == out.index[-1]))
    return out[complete.to_numpy()].reset_index(drop=True)


def assert_aggregates(fine: pd.DataFrame, fine_ms: int, coarse: pd.DataFrame, width: int) -> int:
    expected = resample(fine, fine_ms, width)
    actual = coarse.set_index("open_ms").loc[expected["open_ms"]].reset_index()
    for col in ("open", "high", "low", "close", "trades"):
        assert actual[col].tolist() == expected[col].tolist(), (width, col)
    for col in ("volume", "quote_volume"):
        assert actual[col].to_numpy() == approx(expected[col].to_numpy(), rel=1e-9), (width, col)
    # Closed flags of all but the newest bucket (the sweep may close it any time).
    assert actual["closed"].tolist()[:-1] == expected["closed"].tolist()[:-1]
    return len(expected)


@pytest.mark.parametrize("symbol", ["BTC-USD", "USDT-USD", "SOL-USD"])
async def test_backfilled_intervals_aggregate_consistently(
    start_pricing_server: StartPricing, symbol: str
) -> None:
    """1m -> 5m/15m/1h and 1h -> 4h/1d, where both exist, with live ticks in
    the forming candles too."""
    server = await start_pricing_server(universe_size=8, backfill_days=3, backfill_fine_days=1)
    stub = server.stub
    quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
    t = now_ms()
    ticks = [tick(symbol, quote.price * f, 2.0, t) for f in (1.001, 0.999, 1.0005)]
    assert (await publish(stub, ticks)).accepted == 3

    series = {}
    for interval in WIDTH_MS:
        reply = await candles(stub, symbol, interval, start_time=ts(t - 5 * DAY_MS), limit=5_000)
        assert reply.next_page_token == ""
        series[interval] = frame(reply.candles)
    assert len(series[M1]) >= 1_440
    compared = {
        "5m": assert_aggregates(
            series[M1], MINUTE_MS, series[common_pb2.INTERVAL_5M], 5 * MINUTE_MS
        ),
        "15m": assert_aggregates(
            series[M1], MINUTE_MS, series[common_pb2.INTERVAL_15M], 15 * MINUTE_MS
        ),
        "1h": assert_aggregates(series[M1], MINUTE_MS, series[H1], HOUR_MS),
        "4h": assert_aggregates(series[H1], HOUR_MS, series[common_pb2.INTERVAL_4H], 4 * HOUR_MS),
        "1d": assert_aggregates(series[H1], HOUR_MS, series[D1], DAY_MS),
    }
    assert compared["1h"] >= 23 and compared["5m"] >= 280 and compared["4h"] >= 12
    assert compared["1d"] >= 3, compared
