"""StreamQuotes against a real server: snapshot, sequence, changes only,
heartbeats, resume, rate cap and conflation, bad input, slow subscribers and
bounded memory (see the feed contract in pricing.proto)."""

import asyncio
import itertools
import math
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import psutil
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from marketmesh.v1 import pricing_pb2, pricing_pb2_grpc
from services.pricing.app import PricingApp
from tests.pricing.conftest import PricingHarness, StartPricing, make_settings
from tests.pricing.streams import (
    FeedModel,
    Subscriber,
    all_symbols,
    list_assets,
    now_ms,
    publish,
    start_server_process,
    symbols_of,
    tick,
    ts_ms,
    wait_serving,
)

HEARTBEAT_S = 0.5
BATCH_MS = 50
# Simulator tests check that a subscriber reading as fast as it can sees every
# batch; batches far apart keep that true on a loaded machine too (the test's
# client and the server share one event loop).
LIVE = {"feed": "simulator", "sim_ticks_per_second": 1000, "stream_batch_ms": 200}

MIB = 1024 * 1024

StartServer = Callable[..., Awaitable[PricingHarness]]


@pytest.fixture(scope="module")
def backfilled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with history already generated, copied by each test so the
    servers start in about a second instead of backfilling every time."""
    data_dir = tmp_path_factory.mktemp("pricing-template")

    async def build() -> None:
        app = PricingApp(
            make_settings(data_dir, backfill_days=1, backfill_fine_days=1, stream_heartbeat_s=0.1)
        )
        await app.start()
        # A few heartbeat batches, so the copies restart with a feed sequence
        # that does not begin at 0 (resume tests need sequences before it).
        await asyncio.sleep(0.5)
        await app.stop()

    asyncio.run(build())
    return data_dir


@pytest.fixture
def start_server(
    start_pricing_server: StartPricing, backfilled_dir: Path, tmp_path: Path
) -> StartServer:
    count = 0

    async def start(**overrides: object) -> PricingHarness:
        nonlocal count
        count += 1
        data_dir = tmp_path / f"data-{count}"
        shutil.copytree(backfilled_dir, data_dir)
        settings: dict[str, object] = {
            "stream_batch_ms": BATCH_MS,
            "stream_heartbeat_s": HEARTBEAT_S,
            **overrides,
        }
        return await start_pricing_server(data_dir=data_dir, **settings)

    return start


def request(**fields: object) -> pricing_pb2.StreamQuotesRequest:
    return pricing_pb2.StreamQuotesRequest(**fields)  # type: ignore[arg-type]


async def quotes_now(stub: pricing_pb2_grpc.PricingServiceStub, symbols: set[str]) -> dict:
    reply = await stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=sorted(symbols)))
    return {q.symbol: q for q in reply.quotes}


# -- snapshot -------------------------------------------------------------------


async def test_unfiltered_snapshot_has_every_asset(start_server: StartServer) -> None:
    server = await start_server()
    universe = await all_symbols(server.stub)
    assert len(universe) > 50
    sub = Subscriber(server.stub, request())
    try:
        first = await sub.next()
    finally:
        await sub.close()
    assert first.snapshot and not first.heartbeat
    assert sorted(symbols_of(first)) == sorted(universe)  # each once
    # The feed is quiet (no simulator): the snapshot equals the unary quotes.
    expected = await quotes_now(server.stub, universe)
    for quote in first.quotes:
        assert quote.price == expected[quote.symbol].price
        assert quote.time == expected[quote.symbol].time
        assert quote.sequence <= first.sequence


async def test_snapshot_of_listed_symbols_is_exactly_those(start_server: StartServer) -> None:
    server = await start_server()
    sub = Subscriber(server.stub, request(symbols=["btc-usd", "ETH-USD", " ETH-USD", "SOL-USD"]))
    try:
        first = await sub.next()
    finally:
        await sub.close()
    assert first.snapshot
    assert sorted(symbols_of(first)) == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert all(q.price > 0 for q in first.quotes)


async def test_snapshot_of_sectors_is_their_assets(start_server: StartServer) -> None:
    server = await start_server()
    assets = await list_assets(server.stub)
    # The reference: every asset whose reference data names the sector.
    defi = {a.symbol for a in assets if "DeFi" in a.sectors}
    meme = {a.symbol for a in assets if "Meme" in a.sectors}
    assert defi and meme
    assert {a.symbol for a in await list_assets(server.stub, sector="DeFi")} == defi
    for symbol in sorted(defi)[:3]:
        asset = (await server.stub.GetAsset(pricing_pb2.GetAssetRequest(symbol=symbol))).asset
        assert "DeFi" in asset.sectors
    outsider = "BTC-USD"
    assert outsider not in defi | meme

    cases = [
        (request(sectors=["DeFi"]), defi),
        (request(sectors=["DeFi", "Meme"]), defi | meme),
        (request(sectors=["DeFi"], symbols=[outsider]), defi | {outsider}),
    ]
    for req, expected in cases:
        sub = Subscriber(server.stub, req)
        try:
            first = await sub.next()
        finally:
            await sub.close()
        assert first.snapshot
        assert sorted(symbols_of(first)) == sorted(expected), req


# -- sequence and changes ------------------------------------------------------


async def test_sequence_rises_by_one_on_a_live_feed(start_server: StartServer) -> None:
    server = await start_server(**LIVE)
    sub = Subscriber(server.stub, request())
    try:
        first = await sub.next()
        assert first.snapshot
        previous = first.sequence
        for _ in range(12):
            message = await sub.next()
            assert not message.snapshot
            assert message.sequence == previous + 1
            previous = message.sequence
            if not message.heartbeat:
                assert message.quotes
                # Every quote in an up-to-date message changed in this very batch.
                assert {q.sequence for q in message.quotes} == {message.sequence}
                assert len(set(symbols_of(message))) == len(message.quotes)
    finally:
        await sub.close()


async def test_sequence_rises_by_one_across_heartbeats_and_ticks(
    start_server: StartServer,
) -> None:
    """An idle feed mixes heartbeats with the odd batch; an unfiltered
    subscriber still sees every sequence exactly once, in order."""
    server = await start_server()
    sub = Subscriber(server.stub, request())
    try:
        first = await sub.next()
        previous = first.sequence
        price = 100.0
        deadline = time.monotonic() + 4 * HEARTBEAT_S
        messages = []
        while time.monotonic() < deadline:
            # Ticks now and then, idle long enough in between for heartbeats.
            price += 1
            await publish(server.stub, [tick("ADA-USD", price, now_ms())])
            await asyncio.sleep(HEARTBEAT_S * 1.3)
        await asyncio.sleep(HEARTBEAT_S * 1.3)
        while not sub.queue.empty():
            messages.append(await sub.next())
        assert any(m.heartbeat for m in messages)
        assert any(not m.heartbeat for m in messages)
        for message in messages:
            assert message.sequence == previous + 1, [m.sequence for m in messages]
            previous = message.sequence
    finally:
        await sub.close()


async def test_after_snapshot_only_changed_quotes_arrive(start_server: StartServer) -> None:
    server = await start_server()
    everything = Subscriber(server.stub, request())
    following = Subscriber(server.stub, request(symbols=["SOL-USD", "BTC-USD"]))
    elsewhere = Subscriber(server.stub, request(symbols=["ETH-USD"]))
    try:
        for sub in (everything, following, elsewhere):
            assert (await sub.next()).snapshot
        old = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="SOL-USD"))).quote
        new_price = round(old.price * 1.01, 6)
        tick_ms = now_ms()
        ack = await publish(server.stub, [tick("SOL-USD", new_price, tick_ms)])
        assert ack.accepted == 1

        for sub in (everything, following):
            message = await sub.until(lambda m: not m.heartbeat)
            assert not message.snapshot
            assert symbols_of(message) == ["SOL-USD"]
            quote = message.quotes[0]
            assert quote.price == new_price
            assert ts_ms(quote.time) == tick_ms
            assert quote.sequence == message.sequence
        # GetQuote agrees, and names the same feed sequence.
        now = (await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="SOL-USD"))).quote
        assert (now.price, now.sequence) == (new_price, quote.sequence)

        # A subscriber of another symbol only hears heartbeats meanwhile.
        while True:
            message = await elsewhere.next(within=HEARTBEAT_S + 2)
            assert message.heartbeat and not message.quotes
            if message.sequence >= quote.sequence:
                break
    finally:
        for sub in (everything, following, elsewhere):
            await sub.close()


async def test_heartbeats_when_idle(start_server: StartServer) -> None:
    """Heartbeats come at least every stream_heartbeat_s, also to a filtered
    subscriber whose symbols stay quiet while other symbols trade."""
    server = await start_server()
    unfiltered = Subscriber(server.stub, request())
    filtered = Subscriber(server.stub, request(symbols=["XRP-USD"]))
    slack = 1.0
    try:
        for sub in (unfiltered, filtered):
            assert (await sub.next()).snapshot

        async def trade_elsewhere() -> None:
            price = 50.0
            while True:
                price += 0.5
                await publish(server.stub, [tick("LINK-USD", price, now_ms())])
                await asyncio.sleep(0.1)

        trader = asyncio.create_task(trade_elsewhere())
        try:
            # The filtered one: nothing but heartbeats, each within the period.
            last = time.monotonic()
            beats = 0
            end = last + 4 * HEARTBEAT_S
            while time.monotonic() < end:
                message = await filtered.next(within=HEARTBEAT_S + slack)
                assert message.heartbeat and not message.quotes and not message.snapshot
                assert time.monotonic() - last <= HEARTBEAT_S + slack
                last = time.monotonic()
                beats += 1
            assert beats >= 3
        finally:
            trader.cancel()
            await asyncio.gather(trader, return_exceptions=True)

        # Now nothing trades at all: the unfiltered one gets heartbeats only.
        # A publish cancelled in flight may still land, and a batch cut for
        # candle changes alone (the close sweep) reads as a heartbeat to a
        # quote subscriber: let the last trade through before looking.
        await asyncio.sleep(0.5)
        await unfiltered.until(
            lambda m: m.heartbeat and unfiltered.queue.empty(), within=2 * HEARTBEAT_S + slack
        )
        last_seq = None
        for _ in range(3):
            started = time.monotonic()
            message = await unfiltered.next(within=HEARTBEAT_S + slack)
            assert time.monotonic() - started <= HEARTBEAT_S + slack
            assert message.heartbeat and not message.quotes
            if last_seq is not None:
                assert message.sequence == last_seq + 1
            last_seq = message.sequence
    finally:
        await unfiltered.close()
        await filtered.close()


# -- resume ---------------------------------------------------------------------


async def test_resume_carries_exactly_what_changed(start_server: StartServer) -> None:
    server = await start_server()
    watcher = Subscriber(server.stub, request())
    first = Subscriber(server.stub, request())
    try:
        snapshot = await first.next()
        assert snapshot.snapshot
        resume_from = snapshot.sequence
        await first.close()
        await watcher.next()

        t0 = now_ms()
        await publish(server.stub, [tick("DOGE-USD", 0.2, t0), tick("AVAX-USD", 30.0, t0)])
        await publish(server.stub, [tick("DOGE-USD", 0.21, t0 + 1)])
        newest = {"DOGE-USD": 0.21, "AVAX-USD": 30.0}
        # Wait until the feed has put them in a batch (the watcher sees the last one).
        await watcher.until(
            lambda m: any(q.symbol == "DOGE-USD" and q.price == 0.21 for q in m.quotes)
        )

        resumed = Subscriber(server.stub, request(from_sequence=resume_from))
        try:
            message = await resumed.next()
        finally:
            await resumed.close()
        assert not message.snapshot and not message.heartbeat
        assert sorted(symbols_of(message)) == sorted(newest)
        for quote in message.quotes:
            assert quote.price == newest[quote.symbol]
            assert resume_from < quote.sequence <= message.sequence

        # A filtered resume gets only its own symbols.
        resumed = Subscriber(
            server.stub, request(symbols=["AVAX-USD", "BTC-USD"], from_sequence=resume_from)
        )
        try:
            message = await resumed.next()
        finally:
            await resumed.close()
        assert not message.snapshot
        assert symbols_of(message) == ["AVAX-USD"]
        assert message.quotes[0].price == 30.0
    finally:
        await watcher.close()


async def test_resume_from_unknown_sequence_gets_snapshot(start_server: StartServer) -> None:
    server = await start_server()
    probe = Subscriber(server.stub, request(symbols=["BTC-USD"]))
    try:
        current = (await probe.next()).sequence
    finally:
        await probe.close()
    # Ahead of the feed, and (after a restart) before the feed's first sequence.
    for from_sequence in (current + 1_000_000_000, 1):
        sub = Subscriber(
            server.stub, request(symbols=["BTC-USD", "ETH-USD"], from_sequence=from_sequence)
        )
        try:
            message = await sub.next()
        finally:
            await sub.close()
        assert message.snapshot, from_sequence
        assert sorted(symbols_of(message)) == ["BTC-USD", "ETH-USD"]


# -- rate cap and conflation -------------------------------------------------------


async def test_rate_cap_conflates_to_the_newest_price(start_server: StartServer) -> None:
    server = await start_server()
    capped = Subscriber(server.stub, request(symbols=["BNB-USD"], max_updates_per_second=2))
    try:
        assert (await capped.next()).snapshot
        started = time.monotonic()
        published: list[float] = []
        t0 = now_ms()
        for i in range(60):  # ~3 s of ticks, each cut into its own batch
            price = 600.0 + i
            await publish(server.stub, [tick("BNB-USD", price, t0 + i)])
            published.append(price)
            await asyncio.sleep(BATCH_MS / 1000)
        # The newest price arrives, in time.
        await capped.until(lambda m: any(q.price == published[-1] for q in m.quotes), within=3)
        elapsed = time.monotonic() - started
        updates = [r.message for r in capped.received[1:]]
        assert len(updates) <= 2 * elapsed + 1, (len(updates), elapsed)
        # Fewer messages than batches: changes were merged, not queued.
        sequences = [m.sequence for m in updates]
        assert any(b - a > 1 for a, b in itertools.pairwise(sequences))
        for message in updates:
            for quote in message.quotes:
                assert quote.symbol == "BNB-USD"
                assert quote.price in published
    finally:
        await capped.close()


async def test_rate_cap_on_live_feed_sends_newest_of_each(start_server: StartServer) -> None:
    server = await start_server(**LIVE)
    reference = Subscriber(server.stub, request())
    capped = Subscriber(server.stub, request(max_updates_per_second=2))
    try:
        await reference.next()
        first = await capped.next()
        await asyncio.sleep(3)
        end_seq = capped.received[-1].message.sequence
        await reference.until(lambda m: m.sequence >= end_seq, within=5)
        model = FeedModel()
        model.extend(r.message for r in reference.received[1:])
        assert model.sequences == list(range(model.sequences[0], model.sequences[-1] + 1))
        updates = [r.message for r in capped.received[1:]]
        span = capped.received[-1].at - capped.received[0].at
        assert 2 <= len(updates) <= 2 * span + 1, (len(updates), span)
        previous = first.sequence
        for message in updates:
            assert message.sequence > previous + 1  # batches were merged
            if message.sequence <= model.sequences[0]:
                previous = message.sequence
                continue
            # Exactly the symbols that changed since the previous message ...
            assert set(symbols_of(message)) == model.changed_between(previous, message.sequence)
            # ... each at its newest price as of this sequence.
            for quote in message.quotes:
                assert quote.price == model.price_at(quote.symbol, message.sequence), quote.symbol
            previous = message.sequence
    finally:
        await reference.close()
        await capped.close()


# -- bad input ------------------------------------------------------------------


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None, "INVALID_ARGUMENT carries google.rpc.Status details"
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


async def _stream_error(
    stub: pricing_pb2_grpc.PricingServiceStub, req: pricing_pb2.StreamQuotesRequest
) -> grpc.aio.AioRpcError:
    call = stub.StreamQuotes(req, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    return info.value


@pytest.mark.parametrize(
    ("fields", "code", "violation"),
    [
        ({"symbols": ["BTC-USD", "NOPE-USD"]}, grpc.StatusCode.NOT_FOUND, None),
        ({"symbols": ["BTC-USD", "not a symbol"]}, grpc.StatusCode.INVALID_ARGUMENT, "symbols[1]"),
        ({"symbols": [""]}, grpc.StatusCode.INVALID_ARGUMENT, "symbols[0]"),
        ({"sectors": ["DeFi", "Quantum Yoga"]}, grpc.StatusCode.INVALID_ARGUMENT, "sectors"),
        (
            {"max_updates_per_second": -1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_updates_per_second",
        ),
        (
            {"max_updates_per_second": math.nan},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_updates_per_second",
        ),
        (
            {"max_updates_per_second": math.inf},
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_updates_per_second",
        ),
    ],
)
async def test_bad_requests_are_rejected(
    start_server: StartServer, fields: dict, code: grpc.StatusCode, violation: str | None
) -> None:
    server = await start_server()
    error = await _stream_error(server.stub, request(**fields))
    assert error.code() == code, error.details()
    if code == grpc.StatusCode.NOT_FOUND:
        assert "NOPE-USD" in (error.details() or "")
    if violation is not None:
        assert _violations(error) == [violation]


# -- slow subscribers ---------------------------------------------------------------


async def test_slow_subscriber_is_conflated_and_does_not_hold_back_others(
    start_server: StartServer,
) -> None:
    server = await start_server(**LIVE)
    fast = Subscriber(server.stub, request())
    # Its own connection, without BDP probing: the receive window stays at the
    # HTTP/2 default (64 KiB) instead of growing to hold seconds of messages, so
    # the server feels the back-pressure within the pause.
    slow_channel = grpc.aio.insecure_channel(server.target, options=[("grpc.http2.bdp_probe", 0)])
    slow_call = pricing_pb2_grpc.PricingServiceStub(slow_channel).StreamQuotes(request())
    try:
        assert (await fast.next()).snapshot
        slow_first = await asyncio.wait_for(slow_call.read(), 5)
        assert slow_first.snapshot

        # The slow one stops reading for 5 s; the fast one carries on.
        pause_start = len(fast.received)
        await asyncio.sleep(5)
        during = fast.received[pause_start:]
        assert len(during) > 10
        sequences = [r.message.sequence for r in during]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
        for item in during:
            if item.message.quotes:
                newest = max(ts_ms(q.time) for q in item.message.quotes)
                assert abs(item.at * 1000 - newest) < 2000

        # The slow one resumes: after what the transport had buffered comes a
        # message that merges many batches, carrying the newest prices.
        previous = slow_first.sequence
        stale = 0
        while True:
            message = await asyncio.wait_for(slow_call.read(), 5)
            if message.sequence > previous + 1:
                break
            stale += 1
            previous = message.sequence
        # The jump merges most of the pause: the subscriber was not queued for.
        assert message.sequence - previous > len(during) / 2, (stale, len(during))
        await fast.until(lambda m: m.sequence >= message.sequence)
        model = FeedModel()
        model.extend(r.message for r in fast.received[1:])
        assert set(symbols_of(message)) == model.changed_between(previous, message.sequence)
        for quote in message.quotes:
            assert quote.price == model.price_at(quote.symbol, message.sequence)

        # GetQuote agrees, unless a newer tick has come in since. (GetQuote
        # reads the live market: its price may be newer than its sequence.)
        for quote in message.quotes[:10]:
            now = (
                await server.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=quote.symbol))
            ).quote
            assert now.sequence >= quote.sequence
            assert ts_ms(now.time) >= ts_ms(quote.time)
            if ts_ms(now.time) == ts_ms(quote.time):
                assert now.price == quote.price

        # And it catches up: consecutive messages again.
        following = [await asyncio.wait_for(slow_call.read(), 5) for _ in range(3)]
        assert following[-1].sequence == following[-2].sequence + 1
    finally:
        slow_call.cancel()
        await slow_channel.close()
        await fast.close()


# -- bounded memory -------------------------------------------------------------------


async def test_memory_stays_bounded_with_stalled_subscribers(tmp_path: Path) -> None:
    server = start_server_process(
        tmp_path / "data",
        tmp_path / "server.log",
        MM_FEED="simulator",
        MM_BACKFILL_DAYS="2",
        MM_BACKFILL_FINE_DAYS="1",
        MM_SIM_TICKS_PER_SECOND="20000",
        MM_UNIVERSE_SIZE="500",
        MM_STREAM_BATCH_MS="50",
    )
    # No BDP probing: the stalled streams' receive windows stay small, so the
    # server meets back-pressure during the warm-up rather than after it.
    channels = [
        grpc.aio.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)])
        for _ in range(5)
    ]
    reader_channel = grpc.aio.insecure_channel(server.address)
    stalled = []
    reader = None
    try:
        await wait_serving(server, reader_channel)
        process = psutil.Process(server.process.pid)
        reader = Subscriber(pricing_pb2_grpc.PricingServiceStub(reader_channel), request())
        assert (await reader.next(within=10)).snapshot
        for i in range(100):
            stub = pricing_pb2_grpc.PricingServiceStub(channels[i % len(channels)])
            call = stub.StreamQuotes(request())
            stalled.append(call)
        # Each reads its snapshot, then never reads again.
        for call in stalled:
            assert (await asyncio.wait_for(call.read(), 10)).snapshot

        await asyncio.sleep(4)  # warm-up: flow-control windows and buffers fill
        samples = []
        for _ in range(30):
            samples.append(process.memory_info().rss / MIB)
            await asyncio.sleep(0.4)
        # Flat after the warm-up: the median of the last few samples is within
        # a couple of MiB of the first few (a queue per subscriber grows by tens
        # of MiB a second here, keeping every batch once by a few hundred KiB),
        # and the whole stays far below a cap.
        growth = statistics.median(samples[-8:]) - statistics.median(samples[:8])
        assert growth < 2.5, [round(x) for x in samples]
        assert max(samples) < 600, [round(x) for x in samples]

        # The reader kept up all along: (nearly) every batch, no silences,
        # fresh quotes. A batch now and then may merge into the next when the
        # machine is busy; a reader held back by the stalled ones would fall
        # far behind instead.
        received = reader.received[1:]
        sequences = [r.message.sequence for r in received]
        assert sequences == sorted(set(sequences))
        assert len(sequences) >= 0.9 * (sequences[-1] - sequences[0] + 1)
        times = [r.at for r in received]
        assert max(b - a for a, b in itertools.pairwise(times)) < 2.0
        for item in received[-20:]:
            newest = max(ts_ms(q.time) for q in item.message.quotes)
            assert abs(item.at * 1000 - newest) < 3000

        # A stalled subscriber that reads again gets what its transport held,
        # then one message merging everything it missed: nothing was queued.
        call = stalled[0]
        previous = (await asyncio.wait_for(call.read(), 5)).sequence
        for _ in range(50):
            message = await asyncio.wait_for(call.read(), 5)
            if message.sequence > previous + 1:
                break
            previous = message.sequence
        assert message.sequence - previous > 100
        assert len(message.quotes) > 400
    finally:
        for call in stalled:
            call.cancel()
        if reader is not None:
            await reader.close()
        for channel in (*channels, reader_channel):
            await channel.close()
        server.kill()
