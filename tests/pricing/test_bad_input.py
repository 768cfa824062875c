"""Bad input on every PricingService RPC: INVALID_ARGUMENT with a
google.rpc.BadRequest naming the field, or NOT_FOUND for an unknown symbol;
never UNKNOWN or INTERNAL.

The requests are read-only, so one server serves the whole module."""

import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from services.pricing.app import PricingApp
from services.pricing.server import start_pricing
from tests.pricing.conftest import PricingHarness, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
HOUR_S = 3600


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PricingHarness]:
    data_dir: Path = tmp_path_factory.mktemp("bad-input") / "var"
    settings = make_settings(data_dir)
    app = PricingApp(settings)
    running = await start_pricing(app, settings.address)
    await app.start()
    await running.set_serving()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    harness = PricingHarness(app, running, channel, pricing_pb2_grpc.PricingServiceStub(channel))
    yield harness
    await harness.stop()


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    fields: list[str]


async def call_error(
    stub: pricing_pb2_grpc.PricingServiceStub, method: str, request: Message
) -> Failure:
    """Make the call, expect it to fail, and return code, message and BadRequest fields."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if method == "StreamQuotes":
            async for _ in stub.StreamQuotes(request):
                pass
        else:
            await getattr(stub, method)(request)
    return failure_of(info.value)


def failure_of(err: grpc.aio.AioRpcError) -> Failure:
    status = rpc_status.from_call(err)
    fields: list[str] = []
    if status is not None:
        assert status.code == err.code().value[0]
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                fields += [v.field for v in bad_request.field_violations]
                assert all(v.description for v in bad_request.field_violations)
    return Failure(err.code(), err.details() or "", fields)


def ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def tamper(token: str) -> str:
    """The token with one character in the middle changed (still valid base64url)."""
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


# (method, request, expected code, field named in the BadRequest or None)
Case = tuple[str, Message, grpc.StatusCode, str | None]
Q = pricing_pb2.GetQuoteRequest
QS = pricing_pb2.GetQuotesRequest
C = pricing_pb2.GetCandlesRequest
LA = pricing_pb2.ListAssetsRequest
GA = pricing_pb2.GetAssetRequest
OV = pricing_pb2.GetMarketOverviewRequest
SQ = pricing_pb2.StreamQuotesRequest
M1 = common_pb2.INTERVAL_1M
H1 = common_pb2.INTERVAL_1H

STATIC_CASES: dict[str, Case] = {
    # GetQuote
    "quote-empty-symbol": ("GetQuote", Q(symbol=""), INVALID, "symbol"),
    "quote-blank-symbol": ("GetQuote", Q(symbol="   "), INVALID, "symbol"),
    "quote-slash-symbol": ("GetQuote", Q(symbol="BTC/USD"), INVALID, "symbol"),
    "quote-no-dash": ("GetQuote", Q(symbol="BTCUSD"), INVALID, "symbol"),
    "quote-non-ascii": ("GetQuote", Q(symbol="ВТС-USD"), INVALID, "symbol"),
    "quote-too-long": ("GetQuote", Q(symbol="A" * 21 + "-USD"), INVALID, "symbol"),
    "quote-unknown": ("GetQuote", Q(symbol="ZZZQ-USD"), NOT_FOUND, None),
    # GetQuotes
    "quotes-empty-entry": ("GetQuotes", QS(symbols=["BTC-USD", ""]), INVALID, "symbols[1]"),
    "quotes-malformed-entry": ("GetQuotes", QS(symbols=["BTC USD"]), INVALID, "symbols[0]"),
    "quotes-too-many": ("GetQuotes", QS(symbols=["BTC-USD"] * 10_001), INVALID, "symbols"),
    # GetCandles
    "candles-empty-symbol": ("GetCandles", C(symbol="", interval=M1), INVALID, "symbol"),
    "candles-malformed-symbol": ("GetCandles", C(symbol="BTC_USD", interval=M1), INVALID, "symbol"),
    "candles-unknown-symbol": ("GetCandles", C(symbol="ZZZQ-USD", interval=M1), NOT_FOUND, None),
    "candles-interval-unspecified": ("GetCandles", C(symbol="BTC-USD"), INVALID, "interval"),
    "candles-interval-out-of-enum": (
        "GetCandles",
        C(symbol="BTC-USD", interval=99),
        INVALID,
        "interval",
    ),
    "candles-start-after-end": (
        "GetCandles",
        C(symbol="BTC-USD", interval=H1, start_time=ts(2_000_000), end_time=ts(1_000_000)),
        INVALID,
        "start_time",
    ),
    "candles-start-equals-end": (
        "GetCandles",
        C(symbol="BTC-USD", interval=H1, start_time=ts(2_000_000), end_time=ts(2_000_000)),
        INVALID,
        "start_time",
    ),
    "candles-start-bad-nanos": (
        "GetCandles",
        C(symbol="BTC-USD", interval=H1, start_time=ts(2_000_000, -1)),
        INVALID,
        "start_time",
    ),
    "candles-end-beyond-year-9999": (
        "GetCandles",
        C(symbol="BTC-USD", interval=H1, end_time=ts(10**15)),
        INVALID,
        "end_time",
    ),
    "candles-limit-negative": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, limit=-1),
        INVALID,
        "limit",
    ),
    "candles-limit-min-int": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, limit=-(2**31)),
        INVALID,
        "limit",
    ),
    "candles-limit-too-big": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, limit=5_001),
        INVALID,
        "limit",
    ),
    "candles-token-garbage": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, page_token="not a token!"),
        INVALID,
        "page_token",
    ),
    "candles-token-unsigned-base64": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, page_token="eyJraW5kIjoiY2FuZGxlcyJ9"),
        INVALID,
        "page_token",
    ),
    "candles-token-huge": (
        "GetCandles",
        C(symbol="BTC-USD", interval=M1, page_token="A" * 100_000),
        INVALID,
        "page_token",
    ),
    # ListAssets
    "assets-unknown-sector": ("ListAssets", LA(sector="Astrology"), INVALID, "sector"),
    "assets-page-size-too-big": ("ListAssets", LA(page_size=1_001), INVALID, "page_size"),
    "assets-page-size-negative": ("ListAssets", LA(page_size=-5), INVALID, "page_size"),
    "assets-unknown-tier": ("ListAssets", LA(tier=42), INVALID, "tier"),
    "assets-token-garbage": ("ListAssets", LA(page_token="%%%"), INVALID, "page_token"),
    # GetAsset
    "asset-empty-symbol": ("GetAsset", GA(symbol=""), INVALID, "symbol"),
    "asset-malformed-symbol": ("GetAsset", GA(symbol="-USD"), INVALID, "symbol"),
    "asset-unknown-symbol": ("GetAsset", GA(symbol="ZZZQ-USD"), NOT_FOUND, None),
    # GetMarketOverview
    "overview-top-n-too-big": ("GetMarketOverview", OV(top_n=51), INVALID, "top_n"),
    "overview-top-n-negative": ("GetMarketOverview", OV(top_n=-1), INVALID, "top_n"),
    # StreamQuotes
    "stream-malformed-symbol": (
        "StreamQuotes",
        SQ(symbols=["BTC-USD", "??"]),
        INVALID,
        "symbols[1]",
    ),
    "stream-unknown-symbol": ("StreamQuotes", SQ(symbols=["ZZZQ-USD"]), NOT_FOUND, None),
    "stream-unknown-sector": ("StreamQuotes", SQ(sectors=["Astrology"]), INVALID, "sectors"),
    "stream-negative-rate": (
        "StreamQuotes",
        SQ(max_updates_per_second=-1.0),
        INVALID,
        "max_updates_per_second",
    ),
    "stream-nan-rate": (
        "StreamQuotes",
        SQ(max_updates_per_second=math.nan),
        INVALID,
        "max_updates_per_second",
    ),
}


@pytest.mark.parametrize("case", list(STATIC_CASES), ids=list(STATIC_CASES))
async def test_bad_request_is_rejected_naming_the_field(server: PricingHarness, case: str) -> None:
    method, request, code, field = STATIC_CASES[case]
    failure = await call_error(server.stub, method, request)
    assert failure.code == code, failure
    assert failure.message, "the status carries a sentence"
    if code == INVALID:
        assert field in failure.fields, failure
    else:
        assert "ZZZQ-USD" in failure.message


async def test_the_limits_themselves_are_accepted(server: PricingHarness) -> None:
    """The boundaries next to the rejected values are fine: 10,000 symbols,
    limit 5,000, page_size 1,000, top_n 50."""
    stub = server.stub
    quotes = await stub.GetQuotes(QS(symbols=["BTC-USD"] * 9_999 + ["eth-usd"]))
    assert sorted(q.symbol for q in quotes.quotes) == ["BTC-USD", "ETH-USD"]
    candles = await stub.GetCandles(C(symbol="BTC-USD", interval=M1, limit=5_000))
    assert len(candles.candles) > 500
    assets = await stub.ListAssets(LA(page_size=1_000))
    assert len(assets.assets) == assets.total_size
    overview = await stub.GetMarketOverview(OV(top_n=50))
    assert len(overview.top_gainers) == 50


async def _candle_token(stub: pricing_pb2_grpc.PricingServiceStub, start_s: int) -> str:
    page = await stub.GetCandles(C(symbol="BTC-USD", interval=H1, start_time=ts(start_s), limit=5))
    assert page.next_page_token
    return page.next_page_token


async def test_tampered_candle_page_token(server: PricingHarness) -> None:
    start_s = int(time.time()) - 2 * 24 * HOUR_S
    token = await _candle_token(server.stub, start_s)
    request = C(symbol="BTC-USD", interval=H1, start_time=ts(start_s), limit=5)
    for bad in (tamper(token), token[:-4], token + "AAAA"):
        request.page_token = bad
        failure = await call_error(server.stub, "GetCandles", request)
        assert (failure.code, failure.fields) == (INVALID, ["page_token"]), failure


async def test_candle_page_token_reused_with_another_query(server: PricingHarness) -> None:
    stub = server.stub
    start_s = int(time.time()) - 2 * 24 * HOUR_S
    token = await _candle_token(stub, start_s)
    # The token is good for its own query...
    ok = await stub.GetCandles(
        C(symbol="BTC-USD", interval=H1, start_time=ts(start_s), limit=5, page_token=token)
    )
    assert len(ok.candles) == 5
    changed = {
        "other-interval": C(
            symbol="BTC-USD",
            interval=common_pb2.INTERVAL_4H,
            start_time=ts(start_s),
            page_token=token,
        ),
        "other-symbol": C(symbol="ETH-USD", interval=H1, start_time=ts(start_s), page_token=token),
        "other-start": C(
            symbol="BTC-USD", interval=H1, start_time=ts(start_s + 1), page_token=token
        ),
        "added-end": C(
            symbol="BTC-USD",
            interval=H1,
            start_time=ts(start_s),
            end_time=ts(start_s + 10 * 24 * HOUR_S),
            page_token=token,
        ),
        "dropped-start": C(symbol="BTC-USD", interval=H1, page_token=token),
    }
    for name, request in changed.items():
        failure = await call_error(stub, "GetCandles", request)
        assert (failure.code, failure.fields) == (INVALID, ["page_token"]), name


async def test_list_assets_page_token_tampered_or_reused(server: PricingHarness) -> None:
    stub = server.stub
    first = await stub.ListAssets(LA(page_size=7))
    token = first.next_page_token
    assert token
    second = await stub.ListAssets(LA(page_size=7, page_token=token))
    assert second.assets[0].symbol > first.assets[-1].symbol
    for request in (
        LA(page_size=7, page_token=tamper(token)),
        LA(page_size=7, page_token=token, sector="DeFi"),
        LA(page_size=7, page_token=token, tier=common_pb2.TIER_LARGE),
    ):
        failure = await call_error(stub, "ListAssets", request)
        assert (failure.code, failure.fields) == (INVALID, ["page_token"]), request
    # A ListAssets token is no GetCandles token, and the other way round.
    failure = await call_error(
        stub, "GetCandles", C(symbol="BTC-USD", interval=M1, page_token=token)
    )
    assert (failure.code, failure.fields) == (INVALID, ["page_token"])
    candle_token = await _candle_token(stub, int(time.time()) - 2 * 24 * HOUR_S)
    failure = await call_error(stub, "ListAssets", LA(page_token=candle_token))
    assert (failure.code, failure.fields) == (INVALID, ["page_token"])


def _random_text(rng: random.Random) -> str:
    alphabet = "ABCXYZabc0189-_/ .\u00e9\u0411\x00\t"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))


def _random_requests(rng: random.Random) -> list[tuple[str, Message]]:
    symbols = ["BTC-USD", "eth-usd", "ZZZQ-USD", "", "BTC-", _random_text(rng)]

    def symbol() -> str:
        return rng.choice(symbols) if rng.random() < 0.7 else _random_text(rng)

    def stamp() -> Timestamp:
        return ts(
            rng.choice([0, -1, 1, 2**40, -(2**40), int(time.time())]), rng.choice([0, 1, -1, 10**9])
        )

    def number() -> int:
        return rng.choice([0, 1, -1, 7, 50, 51, 1_000, 1_001, 5_000, 5_001, 2**31 - 1, -(2**31)])

    candles = C(symbol=symbol(), interval=rng.randint(-1, 8), limit=number())
    if rng.random() < 0.5:
        candles.start_time.CopyFrom(stamp())
    if rng.random() < 0.5:
        candles.end_time.CopyFrom(stamp())
    if rng.random() < 0.3:
        candles.page_token = _random_text(rng)
    return [
        ("GetQuote", Q(symbol=symbol())),
        ("GetQuotes", QS(symbols=[symbol() for _ in range(rng.randint(0, 5))])),
        ("GetCandles", candles),
        (
            "ListAssets",
            LA(
                sector=rng.choice(["", "defi", "AI", " meme ", _random_text(rng)]),
                tier=rng.randint(-1, 5),
                page_size=number(),
                page_token=rng.choice(["", _random_text(rng)]),
            ),
        ),
        ("GetAsset", GA(symbol=symbol())),
        ("GetMarketOverview", OV(top_n=number())),
    ]


async def test_random_garbage_never_gets_unknown_or_internal(server: PricingHarness) -> None:
    rng = random.Random(20240607)
    allowed = {grpc.StatusCode.OK, INVALID, NOT_FOUND}
    seen: dict[grpc.StatusCode, int] = {}
    for _ in range(60):
        for method, request in _random_requests(rng):
            try:
                await getattr(server.stub, method)(request)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                code = err.code()
                if code == INVALID:
                    assert failure_of(err).fields, (method, request)
            assert code in allowed, (method, request, code)
            seen[code] = seen.get(code, 0) + 1
    assert set(seen) == allowed, seen
