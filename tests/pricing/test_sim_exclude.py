"""MM_SIM_EXCLUDE: the simulator leaves some symbols to another feed."""

import asyncio

from marketmesh.v1 import pricing_pb2
from services.common.config import ConfigError
from services.common.validation import now_ms
from tests.pricing.conftest import StartPricing


async def test_excluded_symbols_get_no_simulated_ticks(
    start_pricing_server: StartPricing,
) -> None:
    pricing = await start_pricing_server(
        feed="simulator",
        backfill_days=0,
        sim_ticks_per_second=5000,
        sim_exclude=("ETH-USD",),
    )
    await asyncio.sleep(1.5)
    quotes = await pricing.stub.GetQuotes(
        pricing_pb2.GetQuotesRequest(symbols=["BTC-USD", "ETH-USD"])
    )
    # BTC trades on the simulator; ETH, with no history and excluded, has no quote.
    assert [q.symbol for q in quotes.quotes] == ["BTC-USD"]
    assert list(quotes.unpriced_symbols) == ["ETH-USD"]

    # The excluded symbol is free for PublishTicks, even in the past.
    async def one():  # type: ignore[no-untyped-def]
        tick = pricing_pb2.Tick(symbol="ETH-USD", price=3000.0, volume=1.0)
        tick.time.FromMilliseconds(now_ms() - 3 * 3_600_000)
        yield pricing_pb2.PublishTicksRequest(ticks=[tick])

    response = await pricing.stub.PublishTicks(one())
    assert response.accepted == 1


async def test_unknown_excluded_symbol_stops_start_up(
    start_pricing_server: StartPricing,
) -> None:
    try:
        await start_pricing_server(feed="simulator", backfill_days=0, sim_exclude=("NOPE-USD",))
    except ConfigError as err:
        assert err.name == "MM_SIM_EXCLUDE" and "NOPE-USD" in str(err)
    else:
        raise AssertionError("an unknown symbol in MM_SIM_EXCLUDE was accepted")
