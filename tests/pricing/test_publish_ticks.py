"""PublishTicks through a real client stream: accepted ticks move the quote and
every forming candle exactly as computed by hand here; each rejection reason
comes back with its stream index, code and a sentence and changes nothing;
the response comes only after the ticks are committed to SQLite."""

import asyncio
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pytest import approx

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from services.pricing.app import DB_FILE, PricingApp
from services.pricing.server import start_pricing
from tests.pricing.conftest import StartPricing, make_settings

MINUTE_MS = 60_000
WIDTH_MS = {
    common_pb2.INTERVAL_1M: 60_000,
    common_pb2.INTERVAL_5M: 300_000,
    common_pb2.INTERVAL_15M: 900_000,
    common_pb2.INTERVAL_1H: 3_600_000,
    common_pb2.INTERVAL_4H: 14_400_000,
    common_pb2.INTERVAL_1D: 86_400_000,
}
UNKNOWN_SYMBOL = pricing_pb2.TICK_REJECTION_REASON_UNKNOWN_SYMBOL
NON_POSITIVE = pricing_pb2.TICK_REJECTION_REASON_NON_POSITIVE_PRICE
NON_FINITE = pricing_pb2.TICK_REJECTION_REASON_NON_FINITE_PRICE
BAD_VOLUME = pricing_pb2.TICK_REJECTION_REASON_INVALID_VOLUME
FUTURE = pricing_pb2.TICK_REJECTION_REASON_TIME_IN_FUTURE
BEFORE_CLOSED = pricing_pb2.TICK_REJECTION_REASON_TIME_BEFORE_CLOSED_CANDLE

Stub = pricing_pb2_grpc.PricingServiceStub


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ms_of(stamp: Timestamp) -> int:
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000


def tick(
    symbol: str, price: float, volume: float = 1.0, time_ms: int | None = None
) -> pricing_pb2.Tick:
    t = pricing_pb2.Tick(symbol=symbol, price=price, volume=volume, source="test")
    if time_ms is not None:
        t.time.CopyFrom(ts(time_ms))
    return t


async def publish(
    stub: Stub, *batches: Sequence[pricing_pb2.Tick]
) -> pricing_pb2.PublishTicksResponse:
    """One client stream, one request message per batch."""

    async def requests() -> AsyncIterator[pricing_pb2.PublishTicksRequest]:
        for ticks in batches:
            yield pricing_pb2.PublishTicksRequest(ticks=list(ticks))

    return await stub.PublishTicks(requests())


async def mid_minute() -> None:
    """Wait until the clock is well inside a minute. Before/after reads of the
    24h statistics must not straddle a minute boundary (the window slides), and
    the close sweep runs 5 s after each boundary."""
    into = now_ms() % MINUTE_MS
    if into < 7_000:
        await asyncio.sleep((7_000 - into) / 1000)
    elif into > 45_000:
        await asyncio.sleep((MINUTE_MS - into + 7_000) / 1000)


@dataclass
class Snapshot:
    quote: pricing_pb2.Quote
    latest: dict[int, pricing_pb2.Candle]


async def snapshot(stub: Stub, symbol: str) -> Snapshot:
    quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
    latest = {}
    for interval in WIDTH_MS:
        reply = await stub.GetCandles(
            pricing_pb2.GetCandlesRequest(symbol=symbol, interval=interval, limit=1)
        )
        latest[interval] = reply.candles[-1]
    return Snapshot(quote, latest)


def expected_candle(
    before: pricing_pb2.Candle, width: int, ticks: list[tuple[int, float, float]]
) -> tuple[int, float, float, float, float, float, float, int]:
    """(open_ms, open, high, low, close, volume, quote_volume, trades) after the
    ticks (time, price, volume), all in one bucket, by the candle rules: open at
    the earliest time, close at the latest (ties: later arrival)."""
    bucket = ticks[0][0] - ticks[0][0] % width
    assert all(t - t % width == bucket for t, _, _ in ticks)
    prices = [p for _, p, _ in ticks]
    latest = max(range(len(ticks)), key=lambda i: (ticks[i][0], i))
    earliest = min(range(len(ticks)), key=lambda i: (ticks[i][0], i))
    volume = sum(v for _, _, v in ticks)
    quote_volume = sum(p * v for _, p, v in ticks)
    if ms_of(before.open_time) == bucket:
        # Extends the forming candle; restored candles count as opened at their open.
        return (
            bucket,
            before.open,
            max(before.high, *prices),
            min(before.low, *prices),
            prices[latest],
            before.volume + volume,
            before.quote_volume + quote_volume,
            before.trades + len(ticks),
        )
    return (
        bucket,
        prices[earliest],
        max(prices),
        min(prices),
        prices[latest],
        volume,
        quote_volume,
        len(ticks),
    )


def as_tuple(c: pricing_pb2.Candle) -> tuple[int, float, float, float, float, float, float, int]:
    return (ms_of(c.open_time), c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades)


async def test_ticks_move_quote_and_every_forming_candle_by_hand(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=3)
    stub = server.stub
    symbol = "ETH-USD"
    circulating = (
        await stub.GetAsset(pricing_pb2.GetAssetRequest(symbol=symbol))
    ).asset.circulating_supply
    await mid_minute()
    before = await snapshot(stub, symbol)
    p = before.quote.price
    assert p * 1.5 > before.quote.high_24h and p * 0.5 < before.quote.low_24h
    t0 = now_ms()
    assert t0 > ms_of(before.quote.time)
    # Two request messages; the latest time arrives second, the earliest last,
    # one tick sets a new 24h high and one a new low.
    first = [tick(symbol, p * 1.5, 2.0, t0 + 1), tick(symbol, p * 1.01, 0.5, t0 + 3)]
    second = [tick(symbol, p * 0.5, 4.0, t0), tick(symbol, p * 0.9, 0.0, t0 + 2)]
    reply = await publish(stub, first, [], second)
    assert (reply.accepted, reply.rejected, list(reply.rejections)) == (4, 0, [])
    after = await snapshot(stub, symbol)
    assert now_ms() // MINUTE_MS == t0 // MINUTE_MS, "mid_minute() left too little time"

    sent = [(ms_of(t.time), t.price, t.volume) for t in [*first, *second]]
    for interval, width in WIDTH_MS.items():
        want = expected_candle(before.latest[interval], width, sent)
        got = as_tuple(after.latest[interval])
        assert got[:5] == want[:5], interval
        assert got[5:7] == approx(want[5:7], rel=1e-12), interval
        assert got[7] == want[7], interval
        assert not after.latest[interval].closed

    q, b = after.quote, before.quote
    assert q.price == p * 1.01, "the price of the latest tick time, not the last arrival"
    assert ms_of(q.time) == t0 + 3
    assert q.high_24h == max(b.high_24h, p * 1.5)
    assert q.low_24h == min(b.low_24h, p * 0.5)
    assert q.open_24h == b.open_24h
    assert q.volume_24h == approx(b.volume_24h + 6.5, rel=1e-12)
    expected_qv = b.quote_volume_24h + p * 1.5 * 2.0 + p * 1.01 * 0.5 + p * 0.5 * 4.0
    assert q.quote_volume_24h == approx(expected_qv, rel=1e-12)
    assert q.change_24h_pct == approx((p * 1.01 / b.open_24h - 1) * 100, rel=1e-9)
    assert q.market_cap == approx(p * 1.01 * circulating, rel=1e-12)


async def test_tick_without_time_takes_the_server_clock(start_pricing_server: StartPricing) -> None:
    server = await start_pricing_server(universe_size=2)
    sent_after = now_ms()
    reply = await publish(server.stub, [tick("BTC-USD", 77_777.0)])
    received_before = now_ms()
    assert reply.accepted == 1
    q = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
    assert q.price == 77_777.0
    assert sent_after <= ms_of(q.time) <= received_before


def rejection_cases(t: int) -> list[tuple[pricing_pb2.Tick, int, str]]:
    """(tick, expected code, a word its reason must contain) for every reason."""
    return [
        (tick("NOPE-USD", 10.0, 1.0, t), UNKNOWN_SYMBOL, "NOPE-USD"),
        (tick("SOL-USD", 0.0, 1.0, t), NON_POSITIVE, "price"),
        (tick("SOL-USD", -3.0, 1.0, t), NON_POSITIVE, "price"),
        (tick("SOL-USD", math.nan, 1.0, t), NON_FINITE, "price"),
        (tick("SOL-USD", math.inf, 1.0, t), NON_FINITE, "price"),
        (tick("SOL-USD", -math.inf, 1.0, t), NON_FINITE, "price"),
        (tick("SOL-USD", 150.0, -1.0, t), BAD_VOLUME, "volume"),
        (tick("SOL-USD", 150.0, math.nan, t), BAD_VOLUME, "volume"),
        (tick("SOL-USD", 150.0, math.inf, t), BAD_VOLUME, "volume"),
        (tick("SOL-USD", 150.0, 1.0, t + 30_000), FUTURE, "ahead"),
        # Before the forming minute (opened by the accepted tick at t).
        (tick("SOL-USD", 150.0, 1.0, t - 90_000), BEFORE_CLOSED, "closed"),
    ]


async def test_every_rejection_reason_with_index_code_and_sentence(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=8)
    t = now_ms()
    cases = rejection_cases(t)
    good = [tick("SOL-USD", 151.0, 1.0, t), tick("SOL-USD", 152.0, 0.0, t + 4_000)]
    # Messages: [good], [], [bad x 5], [bad x 6, good]
    messages = [[good[0]], [], [c[0] for c in cases[:5]], [*(c[0] for c in cases[5:]), good[1]]]
    reply = await publish(server.stub, *messages)
    assert reply.accepted == 2
    assert reply.rejected == len(cases)
    assert [r.index for r in reply.rejections] == list(range(1, 1 + len(cases)))
    for rejection, (sent, code, word) in zip(reply.rejections, cases, strict=True):
        assert rejection.code == code, rejection
        assert rejection.symbol == sent.symbol
        assert word in rejection.reason, rejection
        assert len(rejection.reason.split()) >= 4, "a sentence a person can act on"
    q = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="SOL-USD"))).quote
    assert (q.price, ms_of(q.time)) == (152.0, t + 4_000)


async def test_rejected_ticks_change_nothing(start_pricing_server: StartPricing) -> None:
    server = await start_pricing_server(universe_size=8)
    stub = server.stub
    await mid_minute()
    start_seq = (await snapshot(stub, "SOL-USD")).quote.sequence
    t = now_ms()
    assert (await publish(stub, [tick("SOL-USD", 149.0, 1.0, t)])).accepted == 1
    # The feed stamps the changed quote with its next sequence within a batch
    # period; let that happen before taking the reference snapshot.
    before = await snapshot(stub, "SOL-USD")
    for _ in range(250):
        if before.quote.sequence != start_seq:
            break
        await asyncio.sleep(0.02)
        before = await snapshot(stub, "SOL-USD")
    assert before.quote.sequence != start_seq, "the feed never stamped the new quote"
    assert before.quote.price == 149.0
    cases = rejection_cases(now_ms())
    reply = await publish(stub, [c[0] for c in cases], [c[0] for c in cases[::-1]])
    assert (reply.accepted, reply.rejected) == (0, 2 * len(cases))
    after = await snapshot(stub, "SOL-USD")
    assert now_ms() // MINUTE_MS == t // MINUTE_MS, "mid_minute() left too little time"
    assert after.quote == before.quote
    assert after.latest == before.latest


async def test_more_than_1000_rejections_are_counted_and_1000_listed(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=2)
    t = now_ms()
    batches = []
    expected_indices = []
    index = 0
    for _ in range(3):
        batch = []
        for j in range(900):
            if j % 100 == 0:
                batch.append(tick("BTC-USD", 100_000.0 + j, 0.1, t))
            else:
                batch.append(tick("BTC-USD", -1.0, 0.1, t))
                expected_indices.append(index)
            index += 1
        batches.append(batch)
    reply = await publish(server.stub, *batches)
    assert reply.accepted == 27
    assert reply.rejected == len(expected_indices) == 2_673
    assert len(reply.rejections) == 1_000
    assert [r.index for r in reply.rejections] == expected_indices[:1_000]
    assert {r.code for r in reply.rejections} == {NON_POSITIVE}


def stored(db: Path, symbol: str) -> tuple[tuple[float, int] | None, tuple[float, int] | None]:
    """The quote row and the forming 1m candle row of `symbol`, read read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        quote = conn.execute(
            "SELECT q.price, q.time_ms FROM quotes q JOIN assets a ON a.sid = q.sid "
            "WHERE a.symbol = ?",
            (symbol,),
        ).fetchone()
        candle = conn.execute(
            "SELECT c.close, c.open_ms FROM candles c JOIN assets a ON a.sid = c.sid "
            "WHERE a.symbol = ? AND c.interval_ms = 60000 ORDER BY c.open_ms DESC LIMIT 1",
            (symbol,),
        ).fetchone()
        return quote, candle
    finally:
        conn.close()


async def test_response_comes_after_commit(start_pricing_server: StartPricing) -> None:
    # A background commit only every 10 s: what the file holds right after the
    # response was written by PublishTicks' own commit.
    server = await start_pricing_server(universe_size=3, commit_interval_ms=10_000)
    db = server.app.settings.common.data_dir / DB_FILE
    for i in range(5):
        t = now_ms()
        price = 2_500.0 + i + 0.125
        reply = await publish(server.stub, [tick("ETH-USD", price, 1.0, t)])
        assert reply.accepted == 1
        quote, candle = stored(db, "ETH-USD")
        assert quote == (price, t), i
        assert candle == (price, t - t % MINUTE_MS), i


async def test_times_outside_the_timestamp_range_are_rejected_not_internal(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=2)
    t = now_ms()
    far = [
        pricing_pb2.Tick(symbol="BTC-USD", price=1.0, volume=1.0, time=Timestamp(seconds=2**62)),
        pricing_pb2.Tick(symbol="BTC-USD", price=1.0, volume=1.0, time=Timestamp(seconds=-(2**62))),
        pricing_pb2.Tick(
            symbol="BTC-USD", price=1.0, volume=1.0, time=Timestamp(seconds=253_402_300_799)
        ),
    ]
    reply = await publish(server.stub, [tick("BTC-USD", 64_000.0, 1.0, t)], far)
    assert reply.accepted == 1
    assert [(r.index, r.code) for r in reply.rejections] == [
        (1, FUTURE),
        (2, BEFORE_CLOSED),
        (3, FUTURE),
    ]
    q = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
    assert (q.price, ms_of(q.time)) == (64_000.0, t)


async def test_an_accepted_tick_never_prevents_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    for attempt in range(2):
        settings = make_settings(data_dir, universe_size=2)
        app = PricingApp(settings)
        running = await start_pricing(app, settings.address)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            await app.start()
            await running.set_serving()
            stub = pricing_pb2_grpc.PricingServiceStub(channel)
            if attempt == 0:
                # Finite, but price x volume overflows: out of range, rejected.
                reply = await publish(
                    stub,
                    [
                        tick("BTC-USD", 1e308, 2.0, now_ms()),
                        tick("BTC-USD", 100.0, 1e300, now_ms()),
                    ],
                )
                assert reply.rejected == 2
                codes = [r.code for r in reply.rejections]
                assert codes == [
                    pricing_pb2.TICK_REJECTION_REASON_PRICE_OUT_OF_RANGE,
                    pricing_pb2.TICK_REJECTION_REASON_INVALID_VOLUME,
                ]
            else:
                quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
                assert math.isfinite(quote.quote_volume_24h)
        finally:
            await channel.close()
            await running.stop(0.5)
            await app.stop()


async def test_malformed_timestamp_is_rejected_and_changes_nothing(
    start_pricing_server: StartPricing,
) -> None:
    server = await start_pricing_server(universe_size=2)
    before = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
    bad = []
    for nanos in (-1, 1_000_000_000):
        t = pricing_pb2.Tick(symbol="BTC-USD", price=12_345.0, volume=1.0)
        t.time.seconds = now_ms() // 1000
        t.time.nanos = nanos
        bad.append(t)
    reply = await publish(server.stub, bad)
    assert (reply.accepted, reply.rejected) == (0, 2)
    assert [r.code for r in reply.rejections] == [
        pricing_pb2.TICK_REJECTION_REASON_INVALID_TIME
    ] * 2
    assert all("nanos" in r.reason for r in reply.rejections)
    after = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
    assert after.price == before.price
