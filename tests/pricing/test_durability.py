"""What the pricing service keeps across a clean restart and a kill -9, and
how it answers before it is ready."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from services.pricing.intervals import INTERVALS
from tests.pricing.conftest import PricingHarness, StartPricing
from tests.pricing.streams import (
    SERVICE_NAME,
    Subscriber,
    all_symbols,
    now_ms,
    publish,
    start_server_process,
    tick,
    ts_ms,
    wait_serving,
)

# As in conftest.make_settings and the server's default: a forming candle is
# closed by the sweep this long after its end.
CLOSE_GRACE_MS = 5000
NAMES = {
    common_pb2.INTERVAL_1M: "1m",
    common_pb2.INTERVAL_5M: "5m",
    common_pb2.INTERVAL_15M: "15m",
    common_pb2.INTERVAL_1H: "1h",
    common_pb2.INTERVAL_4H: "4h",
    common_pb2.INTERVAL_1D: "1d",
}
WIDTH_MS = dict(INTERVALS)


async def candles(
    stub: pricing_pb2_grpc.PricingServiceStub, symbol: str, interval: int
) -> list[pricing_pb2.Candle]:
    reply = await stub.GetCandles(
        pricing_pb2.GetCandlesRequest(symbol=symbol, interval=interval, limit=500)
    )
    assert len(reply.candles) > 0
    return list(reply.candles)


def assert_same_candles(
    before: list[pricing_pb2.Candle],
    after: list[pricing_pb2.Candle],
    interval: int,
    between_ms: tuple[int, int],
) -> None:
    """Equal, except that a candle whose time ran out between the two reads
    (from..to) may since have been closed by the sweep."""
    name = NAMES[interval]
    assert [ts_ms(c.open_time) for c in after] == [ts_ms(c.open_time) for c in before], name
    for old, new in zip(before, after, strict=True):
        if old == new:
            continue
        closes_at = ts_ms(old.open_time) + WIDTH_MS[interval] + CLOSE_GRACE_MS
        assert not old.closed and new.closed, (name, old, new)
        assert between_ms[0] <= closes_at <= between_ms[1] + 2000, (name, old, new)
        reopened = pricing_pb2.Candle()
        reopened.CopyFrom(new)
        reopened.closed = False
        assert reopened == old, (name, old, new)


# -- (a) clean restart -----------------------------------------------------------


async def _quiet_simulator(app_tasks: list[asyncio.Task[None]]) -> None:
    """Stop the simulator task (the only way to freeze a simulator feed)."""
    for task in app_tasks:
        if task.get_name() == "simulator":
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
    raise AssertionError("no simulator task")


async def test_clean_restart_keeps_quotes_candles_and_sequence(
    start_pricing_server: StartPricing, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    # The background commit is slow on purpose: what the simulator did in the
    # last seconds is only in memory when the server stops.
    first = await start_pricing_server(
        data_dir=data_dir,
        feed="simulator",
        sim_ticks_per_second=2000,
        backfill_days=1,
        commit_interval_ms=10_000,
    )
    symbols = await all_symbols(first.stub)
    watch = Subscriber(first.stub, pricing_pb2.StreamQuotesRequest())
    await asyncio.sleep(1.5)
    await _quiet_simulator(first.app._tasks)
    await asyncio.sleep(0.3)  # the last ticks go out in a batch
    quotes_before = {
        q.symbol: q
        for q in (
            await first.stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=sorted(symbols)))
        ).quotes
    }
    assert len(quotes_before) == len(symbols)
    await watch.close()
    sequence_before = max(r.message.sequence for r in watch.received)
    await first.stop()

    second = await start_pricing_server(data_dir=data_dir, feed="none")
    quotes_after = {
        q.symbol: q
        for q in (
            await second.stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=sorted(symbols)))
        ).quotes
    }
    for symbol, quote in quotes_before.items():
        after = quotes_after[symbol]
        assert (after.price, after.time) == (quote.price, quote.time), symbol
    # The forming candles were written at shutdown too: their close is the
    # last tick's price (the store had the backfill's last price before).
    for symbol in ("BTC-USD", "ETH-USD"):
        for interval in (common_pb2.INTERVAL_1M, common_pb2.INTERVAL_1H, common_pb2.INTERVAL_1D):
            latest = (await candles(second.stub, symbol, interval))[-1]
            assert latest.close == quotes_before[symbol].price, (symbol, NAMES[interval])
            assert latest.trades > 0

    probe = Subscriber(second.stub, pricing_pb2.StreamQuotesRequest(symbols=["BTC-USD"]))
    sequence_after = (await probe.next()).sequence
    await probe.close()
    assert sequence_after > sequence_before

    # A second restart, without a feed in between: every interval's candles
    # and every quote are the same afterwards.
    symbol = "SOL-USD"
    read_before = now_ms()
    before = {i: await candles(second.stub, symbol, i) for i in NAMES}
    await second.stop()
    third = await start_pricing_server(data_dir=data_dir, feed="none")
    after = {i: await candles(third.stub, symbol, i) for i in NAMES}
    read_after = now_ms()
    for interval in NAMES:
        assert_same_candles(before[interval], after[interval], interval, (read_before, read_after))
    again = (await third.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
    assert (again.price, again.time) == (quotes_before[symbol].price, quotes_before[symbol].time)

    # The engine was restored too, not just the table: a new tick extends the
    # forming hour and day candles from where they were.
    price = round(quotes_before[symbol].price * 1.02, 6)
    tick_ms = now_ms()
    assert (await publish(third.stub, [tick(symbol, price, tick_ms, volume=3.0)])).accepted == 1
    checked = 0
    for interval in (common_pb2.INTERVAL_1H, common_pb2.INTERVAL_1D):
        old = before[interval][-1]
        new = (await candles(third.stub, symbol, interval))[-1]
        if ts_ms(new.open_time) != ts_ms(old.open_time):
            continue  # the tick opened a new period (an hour just turned)
        checked += 1
        assert new.open == old.open
        assert new.high == max(old.high, price)
        assert new.low == min(old.low, price)
        assert new.close == price
        assert new.trades == old.trades + 1
        assert abs(new.volume - (old.volume + 3.0)) < 1e-9 * max(1.0, old.volume)
    assert checked >= 1


# -- (b) kill -9 --------------------------------------------------------------------


async def test_acknowledged_ticks_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "MM_FEED": "none",
        "MM_BACKFILL_DAYS": "1",
        "MM_BACKFILL_FINE_DAYS": "1",
        # No background commit in the test's time: only PublishTicks' own
        # commit can have put the ticks on disk.
        "MM_COMMIT_INTERVAL_MS": "10000",
    }
    server = start_server_process(data_dir, tmp_path / "first.log", **env)
    channel = grpc.aio.insecure_channel(server.address)
    kept = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD"]
    last_ones = ["DOGE-USD", "AVAX-USD", "LINK-USD"]
    last_tick: dict[str, pricing_pb2.Tick] = {}
    try:
        await wait_serving(server, channel)
        stub = pricing_pb2_grpc.PricingServiceStub(channel)
        base = {
            q.symbol: q.price
            for q in (
                await stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=kept + last_ones))
            ).quotes
        }

        clock = now_ms() - 100

        def batch(symbols: list[str], step: int) -> list[pricing_pb2.Tick]:
            # Strictly rising times, so "the last tick" of a symbol is one tick.
            nonlocal clock
            ticks = []
            for symbol in symbols:
                for j in range(3):
                    clock = max(clock + 1, now_ms() - 50)
                    price = round(base[symbol] * (1 + 0.001 * (step * 3 + j + 1)), 8)
                    ticks.append(tick(symbol, price, clock, volume=0.5 + j))
                    last_tick[symbol] = ticks[-1]
            return ticks

        # Rounds of three calls at once (each on its own symbols, so the order
        # the server takes them in does not matter), each call several
        # messages; every acknowledgement is checked.
        for round_ in range(3):
            calls = [
                [batch(part, round_ * 10 + k), batch(part[:1], round_ * 10 + k + 5)]
                for k, part in enumerate((kept[0::3], kept[1::3], kept[2::3]))
            ]
            acks = await asyncio.gather(*(publish(stub, *c) for c in calls))
            for sent, ack in zip(calls, acks, strict=True):
                assert ack.accepted == sum(len(b) for b in sent) and ack.rejected == 0

        snapshot = {
            (s, i): await candles(stub, s, i)
            for s in kept
            for i in (common_pb2.INTERVAL_1M, common_pb2.INTERVAL_1H)
        }
        snapshot_ms = now_ms()
        final = batch(last_ones, 1000)
        ack = await publish(stub, final)
        server.kill()  # at once: no shutdown code runs
        assert ack.accepted == len(final)
    finally:
        await channel.close()
        server.kill()

    restarted = start_server_process(data_dir, tmp_path / "second.log", **env)
    channel = grpc.aio.insecure_channel(restarted.address)
    try:
        await wait_serving(restarted, channel)
        read_ms = now_ms()
        stub = pricing_pb2_grpc.PricingServiceStub(channel)
        for symbol, t in last_tick.items():
            quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
            assert (quote.price, ts_ms(quote.time)) == (t.price, ts_ms(t.time)), symbol
        for (symbol, interval), before in snapshot.items():
            after = await candles(stub, symbol, interval)
            assert_same_candles(before, after, interval, (snapshot_ms, read_ms))
            assert before[-1].close == last_tick[symbol].price
        for symbol in last_ones:
            t = last_tick[symbol]
            for interval in (common_pb2.INTERVAL_1M, common_pb2.INTERVAL_1H):
                width = WIDTH_MS[interval]
                series = await candles(stub, symbol, interval)
                bucket = [c for c in series if ts_ms(c.open_time) == ts_ms(t.time) // width * width]
                assert bucket, (symbol, NAMES[interval])
                assert bucket[0].close == t.price
                assert bucket[0].high >= max(x.price for x in final if x.symbol == symbol)
    finally:
        await channel.close()
        assert restarted.terminate() == 0, restarted.log_tail()


# -- (c) health ------------------------------------------------------------------------


async def test_not_ready_until_started(start_pricing_server: StartPricing) -> None:
    server: PricingHarness = await start_pricing_server(ready=False, backfill_days=1)
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in (SERVICE_NAME, ""):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING

    stub = server.stub

    async def stream_first() -> pricing_pb2.StreamQuotesResponse:
        return await stub.StreamQuotes(pricing_pb2.StreamQuotesRequest()).read()

    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD")),
        lambda: stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=["BTC-USD"])),
        lambda: stub.GetCandles(
            pricing_pb2.GetCandlesRequest(symbol="BTC-USD", interval=common_pb2.INTERVAL_1H)
        ),
        lambda: stub.ListAssets(pricing_pb2.ListAssetsRequest()),
        lambda: stub.GetMarketOverview(pricing_pb2.GetMarketOverviewRequest()),
        stream_first,
        lambda: publish(stub, [tick("BTC-USD", 100_000.0)]),
    ]
    for attempt in attempts:
        try:
            await attempt()
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        else:
            raise AssertionError("answered before start-up finished")

    await server.app.start()
    await server.running.set_serving()
    reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
    assert quote.price > 0
    sub = Subscriber(stub, pricing_pb2.StreamQuotesRequest(symbols=["BTC-USD"]))
    try:
        assert (await sub.next()).snapshot
    finally:
        await sub.close()
