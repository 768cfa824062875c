"""GetQuote, GetQuotes, ListAssets, GetAsset and GetMarketOverview through real
gRPC stubs, checked against the assets CSV (read with the csv module) and
against aggregates recomputed here from GetQuotes.

One server (no live feed, short backfill) serves the module: only
test_tier_thresholds publishes ticks, and every test reads its own snapshot."""

import csv
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
import pytest_asyncio
from pytest import approx

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from services.pricing.app import PricingApp
from services.pricing.server import start_pricing
from tests.pricing.conftest import PricingHarness, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

ASSETS_CSV = Path(__file__).resolve().parents[2] / "services" / "pricing" / "data" / "assets.csv"
LARGE, MID, SMALL = common_pb2.TIER_LARGE, common_pb2.TIER_MID, common_pb2.TIER_SMALL
REL = 1e-12  # products and ratios of doubles: a few ulps
SUM_REL = 1e-9  # sums over ~100 assets in another order

T = TypeVar("T")


@dataclass(frozen=True)
class CsvAsset:
    symbol: str
    name: str
    sectors: tuple[str, ...]
    circulating: float
    total: float
    max_supply: float | None


def read_assets_csv() -> dict[str, CsvAsset]:
    lines = [
        line
        for line in ASSETS_CSV.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    out = {}
    for row in csv.DictReader(lines):
        out[row["symbol"]] = CsvAsset(
            symbol=row["symbol"],
            name=row["name"],
            sectors=tuple(s.strip() for s in row["sectors"].split(";")),
            circulating=float(row["circulating_supply"]),
            total=float(row["total_supply"]),
            max_supply=float(row["max_supply"]) if row["max_supply"].strip() else None,
        )
    return out


CSV_ASSETS = read_assets_csv()


def expected_tier(market_cap: float) -> int:
    if market_cap >= 1e10:
        return LARGE
    if market_cap >= 1e9:
        return MID
    return SMALL


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PricingHarness]:
    settings = make_settings(tmp_path_factory.mktemp("unary") / "var")
    app = PricingApp(settings)
    running = await start_pricing(app, settings.address)
    await app.start()
    await running.set_serving()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    harness = PricingHarness(app, running, channel, pricing_pb2_grpc.PricingServiceStub(channel))
    yield harness
    await harness.stop()


async def in_one_minute(read: Callable[[], Awaitable[T]]) -> T:
    """Run `read` until it starts and ends in the same UTC minute: the 24h
    statistics slide once a minute, so reads compared with each other must not
    straddle a minute boundary."""
    for _ in range(5):
        before = time.time() // 60
        result = await read()
        if time.time() // 60 == before:
            return result
    raise AssertionError("could not read within one minute")


async def all_symbols(stub: pricing_pb2_grpc.PricingServiceStub) -> list[str]:
    reply = await stub.ListAssets(pricing_pb2.ListAssetsRequest(page_size=1000))
    assert not reply.next_page_token
    return [a.symbol for a in reply.assets]


async def all_quotes(stub: pricing_pb2_grpc.PricingServiceStub) -> dict[str, pricing_pb2.Quote]:
    reply = await stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=await all_symbols(stub)))
    assert not reply.unknown_symbols
    return {q.symbol: q for q in reply.quotes}


# -- quotes ----------------------------------------------------------------


async def test_get_quote_fields_follow_from_price_and_supply(server: PricingHarness) -> None:
    assert len(CSV_ASSETS) >= 50
    tiers_seen = set()
    for symbol, asset in CSV_ASSETS.items():
        q = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
        assert q.symbol == symbol
        assert q.price > 0
        assert q.market_cap == approx(q.price * asset.circulating, rel=REL)
        fdv_supply = asset.max_supply if asset.max_supply is not None else asset.total
        assert q.fully_diluted_valuation == approx(q.price * fdv_supply, rel=REL)
        assert q.tier == expected_tier(q.price * asset.circulating), symbol
        tiers_seen.add(q.tier)
        assert q.open_24h > 0
        assert q.change_24h_pct == approx((q.price / q.open_24h - 1.0) * 100.0, rel=1e-9, abs=1e-9)
        assert q.high_24h >= q.price >= q.low_24h > 0
        assert q.high_24h >= q.open_24h >= q.low_24h
        assert q.volume_24h > 0 and q.quote_volume_24h > 0
        # Quote volume is price x volume summed: it lies between low and high x volume.
        assert q.low_24h * q.volume_24h * (1 - 1e-9) <= q.quote_volume_24h
        assert q.quote_volume_24h <= q.high_24h * q.volume_24h * (1 + 1e-9)
        assert q.time.seconds > 0
    assert tiers_seen == {LARGE, MID, SMALL}


async def test_fdv_uses_total_supply_when_there_is_no_max(server: PricingHarness) -> None:
    # ETH has no hard cap in the CSV; BTC has one that differs from its total supply.
    eth, btc = CSV_ASSETS["ETH-USD"], CSV_ASSETS["BTC-USD"]
    assert eth.max_supply is None and btc.max_supply is not None
    assert btc.max_supply != btc.total
    for asset in (eth, btc):
        q = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=asset.symbol))).quote
        supply = asset.max_supply or asset.total
        assert q.fully_diluted_valuation == approx(q.price * supply, rel=REL)


async def test_get_quotes_answers_each_known_symbol_once_and_lists_unknown(
    server: PricingHarness,
) -> None:
    stub = server.stub
    request = pricing_pb2.GetQuotesRequest(
        symbols=["btc-usd", "BTC-USD", " eth-usd ", "ZZZQ-USD", "zzzq-usd", "NOPE-USD", "Eth-Usd"]
    )

    async def read() -> tuple[pricing_pb2.GetQuotesResponse, pricing_pb2.Quote, pricing_pb2.Quote]:
        reply = await stub.GetQuotes(request)
        btc = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))).quote
        eth = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="ETH-USD"))).quote
        return reply, btc, eth

    reply, btc, eth = await in_one_minute(read)
    assert sorted(q.symbol for q in reply.quotes) == ["BTC-USD", "ETH-USD"]
    assert sorted(reply.unknown_symbols) == ["NOPE-USD", "ZZZQ-USD"]
    by_symbol = {q.symbol: q for q in reply.quotes}
    assert by_symbol["BTC-USD"] == btc
    assert by_symbol["ETH-USD"] == eth

    only_unknown = await stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=["NOPE-USD"]))
    assert list(only_unknown.quotes) == [] and list(only_unknown.unknown_symbols) == ["NOPE-USD"]
    empty = await stub.GetQuotes(pricing_pb2.GetQuotesRequest())
    assert list(empty.quotes) == [] and list(empty.unknown_symbols) == []


async def test_get_quotes_of_every_asset(server: PricingHarness) -> None:
    quotes = await all_quotes(server.stub)
    assert set(quotes) == set(CSV_ASSETS)


async def test_tier_thresholds(server: PricingHarness) -> None:
    """THETA has exactly 1e9 circulating, so these prices put its market cap
    exactly on and just below both thresholds."""
    stub = server.stub
    assert CSV_ASSETS["THETA-USD"].circulating == 1e9
    for price, cap, tier in [
        (10.0, 1e10, LARGE),
        (9.999, 9.999e9, MID),
        (1.0, 1e9, MID),
        (0.999, 0.999e9, SMALL),
        (25.0, 2.5e10, LARGE),
    ]:
        request = pricing_pb2.PublishTicksRequest(
            ticks=[pricing_pb2.Tick(symbol="THETA-USD", price=price)]
        )
        reply = await stub.PublishTicks(iter([request]))
        assert reply.accepted == 1
        q = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="THETA-USD"))).quote
        assert q.price == price
        assert q.market_cap == approx(cap, rel=REL)
        assert q.tier == tier, price
        listed = await stub.ListAssets(pricing_pb2.ListAssetsRequest(tier=tier, page_size=1000))
        assert "THETA-USD" in {a.symbol for a in listed.assets}
        for other in {LARGE, MID, SMALL} - {tier}:
            listed = await stub.ListAssets(
                pricing_pb2.ListAssetsRequest(tier=other, page_size=1000)
            )
            assert "THETA-USD" not in {a.symbol for a in listed.assets}


# -- assets ----------------------------------------------------------------


async def test_list_assets_pages_visit_every_asset_exactly_once(server: PricingHarness) -> None:
    stub = server.stub
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = await stub.ListAssets(pricing_pb2.ListAssetsRequest(page_size=7, page_token=token))
        pages += 1
        assert reply.total_size == len(CSV_ASSETS)
        assert 1 <= len(reply.assets) <= 7
        seen += [a.symbol for a in reply.assets]
        token = reply.next_page_token
        if not token:
            break
        assert len(reply.assets) == 7
        assert pages < 100
    assert len(seen) == len(set(seen)), "an asset came twice"
    assert set(seen) == set(CSV_ASSETS)
    assert len(seen) >= 50
    assert pages == -(-len(CSV_ASSETS) // 7)
    assert seen == sorted(seen), "pages follow one stable order"
    default = await stub.ListAssets(pricing_pb2.ListAssetsRequest())
    assert len(default.assets) == min(100, len(CSV_ASSETS))
    assert default.total_size == len(CSV_ASSETS)


async def test_list_assets_sector_filter_is_case_insensitive(server: PricingHarness) -> None:
    sectors = sorted({s for a in CSV_ASSETS.values() for s in a.sectors})
    assert len(sectors) >= 10
    for sector in sectors:
        expected = {a.symbol for a in CSV_ASSETS.values() if sector in a.sectors}
        for spelling in (sector, sector.lower(), sector.upper(), f"  {sector.swapcase()} "):
            reply = await server.stub.ListAssets(
                pricing_pb2.ListAssetsRequest(sector=spelling, page_size=1000)
            )
            assert {a.symbol for a in reply.assets} == expected, spelling
            assert reply.total_size == len(expected)
            assert all(sector in a.sectors for a in reply.assets)


async def test_list_assets_sector_pages_with_small_page_size(server: PricingHarness) -> None:
    expected = {a.symbol for a in CSV_ASSETS.values() if "DeFi" in a.sectors}
    assert len(expected) > 7
    seen: list[str] = []
    token = ""
    while True:
        reply = await server.stub.ListAssets(
            pricing_pb2.ListAssetsRequest(sector="defi", page_size=3, page_token=token)
        )
        assert reply.total_size == len(expected)
        seen += [a.symbol for a in reply.assets]
        token = reply.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)


async def test_list_assets_tier_filter_matches_quote_tiers(server: PricingHarness) -> None:
    stub = server.stub

    async def read() -> tuple[dict[str, pricing_pb2.Quote], dict[int, set[str]]]:
        quotes = await all_quotes(stub)
        by_tier = {}
        for tier in (LARGE, MID, SMALL):
            reply = await stub.ListAssets(pricing_pb2.ListAssetsRequest(tier=tier, page_size=1000))
            assert reply.total_size == len(reply.assets)
            by_tier[tier] = {a.symbol for a in reply.assets}
        return quotes, by_tier

    quotes, by_tier = await in_one_minute(read)
    for tier, symbols in by_tier.items():
        assert symbols, f"tier {tier} is empty"
        assert symbols == {s for s, q in quotes.items() if q.tier == tier}
        assert symbols == {
            s
            for s, q in quotes.items()
            if expected_tier(q.price * CSV_ASSETS[s].circulating) == tier
        }
    assert by_tier[LARGE] | by_tier[MID] | by_tier[SMALL] == set(CSV_ASSETS)
    # Sector and tier combine.
    reply = await stub.ListAssets(
        pricing_pb2.ListAssetsRequest(sector="Layer 1", tier=LARGE, page_size=1000)
    )
    assert {a.symbol for a in reply.assets} == {
        s for s in by_tier[LARGE] if "Layer 1" in CSV_ASSETS[s].sectors
    }


async def test_get_asset_equals_csv_row(server: PricingHarness) -> None:
    for symbol, row in CSV_ASSETS.items():
        for spelling in (symbol, symbol.lower()):
            asset = (await server.stub.GetAsset(pricing_pb2.GetAssetRequest(symbol=spelling))).asset
            assert asset.symbol == row.symbol
            assert asset.name == row.name
            assert tuple(asset.sectors) == row.sectors
            assert asset.circulating_supply == row.circulating
            assert asset.total_supply == row.total
            if row.max_supply is None:
                assert not asset.HasField("max_supply"), symbol
            else:
                assert asset.HasField("max_supply")
                assert asset.max_supply == row.max_supply


async def test_list_assets_carry_the_same_reference_data(server: PricingHarness) -> None:
    reply = await server.stub.ListAssets(pricing_pb2.ListAssetsRequest(page_size=1000))
    for asset in reply.assets:
        one = (await server.stub.GetAsset(pricing_pb2.GetAssetRequest(symbol=asset.symbol))).asset
        assert asset == one


# -- market overview ---------------------------------------------------------


def basket_change(quotes: list[pricing_pb2.Quote]) -> float:
    """Change of the basket's total market cap over 24h, from open_24h."""
    now = sum(q.price * CSV_ASSETS[q.symbol].circulating for q in quotes)
    before = sum(q.open_24h * CSV_ASSETS[q.symbol].circulating for q in quotes)
    return (now / before - 1.0) * 100.0


@pytest.mark.parametrize("top_n", [0, 1, 7, 50])
async def test_market_overview_equals_recomputation_from_quotes(
    server: PricingHarness, top_n: int
) -> None:
    stub = server.stub

    async def read() -> tuple[pricing_pb2.GetMarketOverviewResponse, dict[str, pricing_pb2.Quote]]:
        overview = await stub.GetMarketOverview(pricing_pb2.GetMarketOverviewRequest(top_n=top_n))
        return overview, await all_quotes(stub)

    ov, quotes = await in_one_minute(read)
    qs = list(quotes.values())
    caps = {s: q.price * CSV_ASSETS[s].circulating for s, q in quotes.items()}
    total = sum(caps.values())

    assert ov.asset_count == len(CSV_ASSETS)
    assert ov.total_market_cap == approx(total, rel=SUM_REL)
    assert ov.total_market_cap == approx(sum(q.market_cap for q in qs), rel=SUM_REL)
    assert ov.total_volume_24h == approx(sum(q.quote_volume_24h for q in qs), rel=SUM_REL)
    assert ov.btc_dominance_pct == approx(caps["BTC-USD"] / total * 100, rel=SUM_REL)
    assert ov.eth_dominance_pct == approx(caps["ETH-USD"] / total * 100, rel=SUM_REL)
    assert 0 < ov.eth_dominance_pct < ov.btc_dominance_pct < 100
    assert ov.total_market_cap_change_24h_pct == approx(basket_change(qs), rel=1e-6, abs=1e-9)
    assert ov.time.seconds > 0

    # Tiers: every tier once, counts and caps from the quotes' own tiers.
    assert [t.tier for t in ov.tiers] == [LARGE, MID, SMALL]
    for summary in ov.tiers:
        members = [s for s, q in quotes.items() if expected_tier(caps[s]) == summary.tier]
        assert summary.asset_count == len(members)
        assert summary.market_cap == approx(sum(caps[s] for s in members), rel=SUM_REL)
    assert sum(t.asset_count for t in ov.tiers) == len(CSV_ASSETS)

    # Sectors: every sector of the CSV once, largest first.
    sectors = {s for a in CSV_ASSETS.values() for s in a.sectors}
    assert sorted(s.sector for s in ov.sectors) == sorted(sectors)
    assert [s.market_cap for s in ov.sectors] == sorted(
        (s.market_cap for s in ov.sectors), reverse=True
    )
    for summary in ov.sectors:
        members = [s for s, a in CSV_ASSETS.items() if summary.sector in a.sectors]
        assert summary.asset_count == len(members)
        assert summary.market_cap == approx(sum(caps[s] for s in members), rel=SUM_REL)
        assert summary.volume_24h == approx(
            sum(quotes[s].quote_volume_24h for s in members), rel=SUM_REL
        )
        assert summary.change_24h_pct == approx(
            basket_change([quotes[s] for s in members]), rel=1e-6, abs=1e-9
        )

    # Movers: top_n of them, the largest / smallest changes, sorted, and the
    # same quotes GetQuotes gives.
    n = top_n or 5
    changes = sorted(q.change_24h_pct for q in qs)
    assert len(ov.top_gainers) == n and len(ov.top_losers) == n
    assert [q.change_24h_pct for q in ov.top_gainers] == changes[::-1][:n]
    assert [q.change_24h_pct for q in ov.top_losers] == changes[:n]
    for q in [*ov.top_gainers, *ov.top_losers]:
        assert q == quotes[q.symbol]
    assert len({q.symbol for q in ov.top_gainers}) == n
