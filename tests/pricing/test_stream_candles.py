"""StreamCandles against a real server started from an empty market
(MM_BACKFILL_DAYS=0), fed with PublishTicks at past times, checked against
candles computed here by brute force from the ticks: snapshot, updates,
closes (by a tick, and by the sweep), equality with GetCandles, resume,
conflation of a slow consumer, heartbeats, splitting, filters, bad input."""

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from marketmesh.v1 import common_pb2, pricing_pb2, pricing_pb2_grpc
from services.pricing import candle_feed
from services.pricing.settings import load_pricing_settings
from tests.pricing.conftest import PricingHarness, StartPricing
from tests.pricing.streams import list_assets, now_ms, publish, tick, ts_ms

M = 60_000
WIDTHS: dict[int, int] = {
    common_pb2.INTERVAL_1M: M,
    common_pb2.INTERVAL_5M: 5 * M,
    common_pb2.INTERVAL_15M: 15 * M,
    common_pb2.INTERVAL_1H: 60 * M,
    common_pb2.INTERVAL_4H: 240 * M,
    common_pb2.INTERVAL_1D: 1440 * M,
}
ALL_INTERVALS = tuple(WIDTHS)
HEARTBEAT_S = 0.5

# (symbol, time_ms, price, volume), in publishing order.
Tick = tuple[str, int, float, float]
# (symbol, interval, open_ms)
Key = tuple[str, int, int]
# open_ms, open, high, low, close, volume, quote_volume, trades, closed
Row = tuple[int, float, float, float, float, float, float, int, bool]


def base_minute() -> int:
    """A minute far enough in the past that a few minutes after it are past
    too, and recent enough that the sweep (grace 10 min) leaves it alone."""
    return (now_ms() - 8 * M) // M * M


def reference(ticks: Sequence[Tick]) -> dict[Key, Row]:
    """Every candle the ticks make, by brute force: per symbol and interval,
    group by aligned bucket; open/close follow tick time (ties: arrival);
    every bucket but the newest is closed."""
    out: dict[Key, Row] = {}
    for symbol in {t[0] for t in ticks}:
        mine = [t for t in ticks if t[0] == symbol]
        for interval, width in WIDTHS.items():
            buckets: dict[int, list[Tick]] = {}
            for t in mine:
                buckets.setdefault(t[1] // width * width, []).append(t)
            newest = max(buckets)
            for open_ms, group in buckets.items():
                first = min(range(len(group)), key=lambda i: (group[i][1], i))
                last = max(range(len(group)), key=lambda i: (group[i][1], i))
                prices = [t[2] for t in group]
                out[(symbol, interval, open_ms)] = (
                    open_ms,
                    group[first][2],
                    max(prices),
                    min(prices),
                    group[last][2],
                    sum(t[3] for t in group),
                    sum(t[2] * t[3] for t in group),
                    len(group),
                    open_ms != newest,
                )
    return out


def row_of(candle: pricing_pb2.Candle) -> Row:
    return (
        ts_ms(candle.open_time),
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.quote_volume,
        candle.trades,
        candle.closed,
    )


def updates_of(messages: Iterable[pricing_pb2.StreamCandlesResponse]) -> dict[Key, Row]:
    """Newest state per key over messages (in order)."""
    out: dict[Key, Row] = {}
    for message in messages:
        for u in message.updates:
            out[(u.symbol, u.interval, ts_ms(u.candle.open_time))] = row_of(u.candle)
    return out


def keys_in_order(message: pricing_pb2.StreamCandlesResponse) -> list[Key]:
    return [(u.symbol, u.interval, ts_ms(u.candle.open_time)) for u in message.updates]


def assert_sorted_unique(message: pricing_pb2.StreamCandlesResponse) -> None:
    """Within a message: each candle once, ascending open time per series."""
    keys = keys_in_order(message)
    assert len(set(keys)) == len(keys)
    last: dict[tuple[str, int], int] = {}
    for symbol, interval, open_ms in keys:
        assert open_ms > last.get((symbol, interval), -(2**62))
        last[(symbol, interval)] = open_ms


def ticks_pb(ticks: Sequence[Tick]) -> list[pricing_pb2.Tick]:
    return [tick(s, p, t, v) for s, t, p, v in ticks]


class CandleStream:
    """A StreamCandles call pumped into a queue by a background task."""

    def __init__(
        self, stub: pricing_pb2_grpc.PricingServiceStub, request: pricing_pb2.StreamCandlesRequest
    ) -> None:
        self.call = stub.StreamCandles(request)
        self.queue: asyncio.Queue[pricing_pb2.StreamCandlesResponse | BaseException] = (
            asyncio.Queue()
        )
        self.arrivals: list[float] = []
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for message in self.call:
                self.arrivals.append(time.monotonic())
                self.queue.put_nowait(message)
        except BaseException as exc:
            self.queue.put_nowait(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def next(self, within: float = 5.0) -> pricing_pb2.StreamCandlesResponse:
        item = await asyncio.wait_for(self.queue.get(), within)
        if isinstance(item, BaseException):
            raise item
        return item

    async def group(self, within: float = 5.0) -> list[pricing_pb2.StreamCandlesResponse]:
        """The messages of one sequence: up to the one with more = false."""
        out = [await self.next(within)]
        while out[-1].more:
            out.append(await self.next(within))
        assert len({m.sequence for m in out}) == 1
        return out

    async def until(self, predicate, within: float = 5.0) -> pricing_pb2.StreamCandlesResponse:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(deadline - time.monotonic(), 0.001))
            if predicate(message):
                return message

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def request(**fields: object) -> pricing_pb2.StreamCandlesRequest:
    return pricing_pb2.StreamCandlesRequest(**fields)  # type: ignore[arg-type]


async def empty_market(start: StartPricing, **overrides: object) -> PricingHarness:
    settings: dict[str, object] = {
        "backfill_days": 0,
        "candle_close_grace_ms": 600_000,
        "stream_batch_ms": 50,
        "stream_heartbeat_s": HEARTBEAT_S,
        **overrides,
    }
    return await start(**settings)


def cut_now(server: PricingHarness) -> None:
    """Publish what PublishTicks ingested now rather than at the next cadence
    cut, so a snapshot taken next includes it (a snapshot is the state as
    of its sequence; ticks not yet in a batch come after it as updates)."""
    server.app.feed.cut_batch()


async def get_candles(
    stub: pricing_pb2_grpc.PricingServiceStub, symbol: str, interval: int
) -> list[Row]:
    reply = await stub.GetCandles(
        pricing_pb2.GetCandlesRequest(symbol=symbol, interval=interval, limit=5000)
    )
    return [row_of(c) for c in reply.candles]


def current_of(candles: dict[Key, Row]) -> dict[Key, Row]:
    """The newest candle of each series: what a snapshot carries."""
    newest: dict[tuple[str, int], int] = {}
    for symbol, interval, open_ms in candles:
        newest[(symbol, interval)] = max(open_ms, newest.get((symbol, interval), open_ms))
    return {(s, i, o): candles[(s, i, o)] for (s, i), o in newest.items()}


# -- MM_BACKFILL_DAYS=0 -------------------------------------------------------------


async def test_backfill_days_zero_starts_from_an_empty_market(
    start_pricing_server: StartPricing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_BACKFILL_DAYS", "0")
    assert load_pricing_settings().backfill_days == 0
    server = await empty_market(start_pricing_server)
    reply = await server.stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=["BTC-USD"]))
    assert list(reply.unpriced_symbols) == ["BTC-USD"] and not reply.quotes
    for interval in ALL_INTERVALS:
        assert await get_candles(server.stub, "BTC-USD", interval) == []
    # Ticks with past times are accepted into the empty market.
    b = base_minute()
    response = await publish(server.stub, ticks_pb([("BTC-USD", b, 10.0, 1.0)]))
    assert response.accepted == 1
    assert await get_candles(server.stub, "BTC-USD", common_pb2.INTERVAL_1M) == [
        (b, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1, False)
    ]


# -- snapshot and updates ----------------------------------------------------------


async def test_empty_market_snapshot_then_updates(start_pricing_server: StartPricing) -> None:
    server = await empty_market(start_pricing_server)
    b = base_minute()
    first: list[Tick] = [("BTC-USD", b + 1_000, 100.0, 1.0), ("BTC-USD", b + 2_000, 102.0, 0.5)]
    await publish(server.stub, ticks_pb(first))
    cut_now(server)
    sub = CandleStream(server.stub, request(symbols=["BTC-USD", "ETH-USD"]))
    try:
        snapshot = await sub.group()
        assert all(m.snapshot and not m.heartbeat for m in snapshot)
        # ETH never traded: no candle. BTC: one forming candle per interval.
        assert updates_of(snapshot) == reference(first)
        assert len(keys_in_order(snapshot[0])) == len(ALL_INTERVALS)

        second: list[Tick] = [("BTC-USD", b + 3_000, 99.0, 2.0)]
        await publish(server.stub, ticks_pb(second))
        update = await sub.until(lambda m: len(m.updates) > 0)
        assert not update.snapshot and not update.more
        assert update.sequence > snapshot[0].sequence
        assert_sorted_unique(update)
        assert updates_of([update]) == reference(first + second)
    finally:
        await sub.close()


async def test_snapshot_of_backfilled_market_is_each_series_newest(
    start_pricing_server: StartPricing,
) -> None:
    # A long grace: the sweep closes nothing while the test compares.
    server = await start_pricing_server(
        backfill_days=2, backfill_fine_days=1, candle_close_grace_ms=600_000
    )
    sub = CandleStream(server.stub, request(symbols=["ETH-USD"]))
    try:
        snapshot = await sub.group()
    finally:
        await sub.close()
    got = updates_of(snapshot)
    assert {k[1] for k in got} == set(ALL_INTERVALS)
    for (symbol, interval, _), row in got.items():
        history = await get_candles(server.stub, symbol, interval)
        assert history[-1] == row  # the forming one, or the last closed


async def test_closing_tick_delivers_closed_and_new_forming_candle_early(
    start_pricing_server: StartPricing,
) -> None:
    # A 5 s cadence: three closes each delivered within 0.5 s of publishing
    # show the early cut (the cadence would be that quick ~10% of the time).
    server = await empty_market(start_pricing_server, stream_batch_ms=5_000, stream_heartbeat_s=5)
    b = base_minute()
    opening: list[Tick] = [("SOL-USD", b + 10_000, 20.0, 1.0), ("SOL-USD", b + 20_000, 21.0, 1.0)]
    await publish(server.stub, ticks_pb(opening))
    cut_now(server)
    sub = CandleStream(
        server.stub, request(symbols=["SOL-USD"], intervals=[common_pb2.INTERVAL_1M])
    )
    messages = []
    try:
        await sub.group()
        for minute in (1, 2, 3):
            closing = [("SOL-USD", b + minute * M + 5_000, 21.0 + minute, 2.0)]
            started = time.monotonic()
            await publish(server.stub, ticks_pb(closing))
            messages.append(await sub.until(lambda m: len(m.updates) > 0, within=6))
            assert sub.arrivals[-1] - started < 0.5
    finally:
        await sub.close()
    # Hand-worked: 20 then 21 (volume 1 each); then 22, 23, 24 x 2, a minute each.
    one_minute = common_pb2.INTERVAL_1M
    assert keys_in_order(messages[0]) == [
        ("SOL-USD", one_minute, b),
        ("SOL-USD", one_minute, b + M),
    ]
    assert [row_of(u.candle) for u in messages[0].updates] == [
        (b, 20.0, 21.0, 20.0, 21.0, 2.0, 41.0, 2, True),
        (b + M, 22.0, 22.0, 22.0, 22.0, 2.0, 44.0, 1, False),
    ]
    assert [row_of(u.candle) for u in messages[2].updates] == [
        (b + 2 * M, 23.0, 23.0, 23.0, 23.0, 2.0, 46.0, 1, True),
        (b + 3 * M, 24.0, 24.0, 24.0, 24.0, 2.0, 48.0, 1, False),
    ]


async def test_sweep_closes_candle_without_a_tick(start_pricing_server: StartPricing) -> None:
    server = await empty_market(start_pricing_server, candle_close_grace_ms=0)
    b = (now_ms() - 3 * M) // M * M
    await publish(server.stub, ticks_pb([("ADA-USD", b + 1_000, 0.5, 4.0)]))
    cut_now(server)
    sub = CandleStream(
        server.stub, request(symbols=["ADA-USD"], intervals=[common_pb2.INTERVAL_1M])
    )
    try:
        snapshot = await sub.group()
        [(key, row)] = updates_of(snapshot).items()
        if not row[-1]:  # the sweep had not run yet: its close comes as an update
            message = await sub.until(lambda m: len(m.updates) > 0, within=3)
            [(key, row)] = updates_of([message]).items()
    finally:
        await sub.close()
    assert key == ("ADA-USD", common_pb2.INTERVAL_1M, b)
    assert row == (b, 0.5, 0.5, 0.5, 0.5, 4.0, 2.0, 1, True)


async def test_stream_equals_get_candles_after_commit(start_pricing_server: StartPricing) -> None:
    server = await empty_market(start_pricing_server)
    symbols = ["BTC-USD", "ETH-USD"]
    sub = CandleStream(server.stub, request(symbols=symbols))
    b = base_minute()
    ticks: list[Tick] = []
    try:
        seen = list(await sub.group())
        for minute in range(4):
            batch: list[Tick] = [
                (s, b + minute * M + j * 7_000, 100.0 + i * 10 + minute + j * 0.5, 0.25 * (j + 1))
                for i, s in enumerate(symbols)
                for j in range(3)
            ]
            ticks += batch
            await publish(server.stub, ticks_pb(batch))
        expected = reference(ticks)
        deadline = time.monotonic() + 5
        while updates_of(seen) != expected and time.monotonic() < deadline:
            seen.append(await sub.next())
    finally:
        await sub.close()
    streamed = updates_of(seen)
    assert streamed == expected
    for symbol in symbols:
        for interval in ALL_INTERVALS:
            stored = await get_candles(server.stub, symbol, interval)
            mine = sorted(
                row for (s, i, _), row in streamed.items() if (s, i) == (symbol, interval)
            )
            assert stored == mine


# -- resume, conflation, heartbeats, splitting --------------------------------------


async def test_resume_delivers_exactly_the_missed_candles(
    start_pricing_server: StartPricing,
) -> None:
    server = await empty_market(start_pricing_server)
    b = base_minute()
    before: list[Tick] = [("BTC-USD", b + 1_000, 50.0, 1.0), ("ETH-USD", b + 1_000, 5.0, 1.0)]
    await publish(server.stub, ticks_pb(before))
    cut_now(server)
    sub = CandleStream(server.stub, request(symbols=["BTC-USD", "ETH-USD"]))
    try:
        resume_from = (await sub.group())[-1].sequence
    finally:
        await sub.close()
    missed: list[Tick] = []
    for minute in range(1, 5):  # closes four BTC 1m candles, one per call
        batch: list[Tick] = [("BTC-USD", b + minute * M + 2_000, 50.0 + minute, 2.0)]
        missed += batch
        await publish(server.stub, ticks_pb(batch))
        cut_now(server)  # one batch each: the resume spans several
    sub = CandleStream(
        server.stub, request(symbols=["BTC-USD", "ETH-USD"], from_sequence=resume_from)
    )
    try:
        messages = await sub.group()
    finally:
        await sub.close()
    assert not any(m.snapshot for m in messages)
    assert messages[-1].sequence > resume_from
    for m in messages:
        assert_sorted_unique(m)
    # Every BTC series changed (ticks added, or closed and reopened); ETH
    # did not change at all.
    got = updates_of(messages)
    assert got == {k: row for k, row in reference(before + missed).items() if k[0] == "BTC-USD"}
    closed_1m = sorted(k for k, row in got.items() if k[1] == common_pb2.INTERVAL_1M and row[-1])
    assert closed_1m == [("BTC-USD", common_pb2.INTERVAL_1M, b + i * M) for i in range(4)]


async def test_unknown_or_future_sequence_gets_a_snapshot(
    start_pricing_server: StartPricing,
) -> None:
    server = await empty_market(start_pricing_server)
    b = base_minute()
    await publish(server.stub, ticks_pb([("BTC-USD", b, 10.0, 1.0)]))
    cut_now(server)
    for from_sequence in (0, 10**12):
        sub = CandleStream(server.stub, request(symbols=["BTC-USD"], from_sequence=from_sequence))
        try:
            messages = await sub.group()
        finally:
            await sub.close()
        assert all(m.snapshot for m in messages)
        assert len(updates_of(messages)) == len(ALL_INTERVALS)


async def test_resume_after_ring_eviction_gets_a_snapshot(
    start_pricing_server: StartPricing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candle_feed, "MAX_RING_ROWS", 10)
    server = await empty_market(start_pricing_server)
    b = base_minute()
    await publish(server.stub, ticks_pb([("BTC-USD", b, 10.0, 1.0)]))
    cut_now(server)
    sub = CandleStream(server.stub, request(symbols=["BTC-USD"]))
    try:
        resume_from = (await sub.group())[-1].sequence
    finally:
        await sub.close()
    for minute in range(1, 4):  # 7+ rows a call: the ring keeps only the newest
        await publish(server.stub, ticks_pb([("BTC-USD", b + minute * M, 11.0, 1.0)]))
        cut_now(server)  # one batch each
    sub = CandleStream(server.stub, request(symbols=["BTC-USD"], from_sequence=resume_from))
    try:
        messages = await sub.group()
    finally:
        await sub.close()
    assert all(m.snapshot for m in messages)
    got = updates_of(messages)
    assert got[("BTC-USD", common_pb2.INTERVAL_1M, b + 3 * M)][-1] is False
    assert len(got) == len(ALL_INTERVALS)


async def test_slow_consumer_gets_conflated_messages_with_every_closed_candle(
    start_pricing_server: StartPricing,
) -> None:
    server = await empty_market(start_pricing_server)
    symbols = sorted(a.symbol for a in await list_assets(server.stub))
    b = base_minute()
    # Unfiltered: ~700 updates (~70 kB) per batch, so an unread stream soon
    # fills its flow-control window and the server stops writing to it.
    call = server.stub.StreamCandles(request())
    ticks: list[Tick] = []
    messages: list[pricing_pb2.StreamCandlesResponse] = []
    try:
        snapshot = [await call.read()]
        while snapshot[-1].more:
            snapshot.append(await call.read())
        rounds = 6
        for minute in range(rounds):  # each round closes every 1m candle
            batch = [(s, b + minute * M + 1_000, 10.0 + minute, 1.0) for s in symbols]
            ticks += batch
            await publish(server.stub, ticks_pb(batch))
        await asyncio.sleep(0.3)  # the last round's batch is cut
        expected = reference(ticks)
        last_seq = server.app.candle_feed.sequence
        while True:
            message = await asyncio.wait_for(call.read(), 5)
            messages.append(message)
            assert not message.snapshot and not message.heartbeat
            assert_sorted_unique(message)
            if message.sequence >= last_seq and not message.more:
                break
    finally:
        call.cancel()
    assert snapshot[0].sequence < messages[0].sequence
    # Fewer messages than batches: some carried several batches (conflated).
    assert len({m.sequence for m in messages}) < rounds
    streamed = updates_of(messages)
    assert streamed == expected  # every closed candle, newest forming state
    closed = [k for k, row in streamed.items() if k[1] == common_pb2.INTERVAL_1M and row[-1]]
    assert len(closed) == len(symbols) * (rounds - 1)


async def test_idle_stream_sends_heartbeats(start_pricing_server: StartPricing) -> None:
    server = await empty_market(start_pricing_server)
    sub = CandleStream(server.stub, request(symbols=["BTC-USD"]))
    try:
        snapshot = await sub.group()
        assert snapshot[0].snapshot and not snapshot[0].updates  # never traded
        beats = [await sub.next(within=HEARTBEAT_S * 4) for _ in range(2)]
    finally:
        await sub.close()
    for beat in beats:
        assert beat.heartbeat and not beat.updates and not beat.snapshot and not beat.more
    assert snapshot[0].sequence <= beats[0].sequence < beats[1].sequence
    assert sub.arrivals[2] - sub.arrivals[1] >= HEARTBEAT_S * 0.5


async def test_large_snapshot_and_update_are_split_with_more(
    start_pricing_server: StartPricing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candle_feed, "MAX_UPDATES_PER_MESSAGE", 50)
    server = await empty_market(start_pricing_server)
    symbols = sorted(a.symbol for a in await list_assets(server.stub))
    b = base_minute()
    batch: list[Tick] = [(s, b + 1_000, 3.0, 1.0) for s in symbols]
    await publish(server.stub, ticks_pb(batch))
    cut_now(server)
    sub = CandleStream(server.stub, request())
    try:
        snapshot = await sub.group()
        second: list[Tick] = [(s, b + M + 1_000, 4.0, 1.0) for s in symbols]
        await publish(server.stub, ticks_pb(second))
        update = await sub.group()
    finally:
        await sub.close()
    total = len(symbols) * len(ALL_INTERVALS)
    assert [len(m.updates) for m in snapshot] == [50] * (total // 50) + [total % 50]
    assert [m.more for m in snapshot] == [True] * (len(snapshot) - 1) + [False]
    assert all(m.snapshot for m in snapshot)
    assert updates_of(snapshot) == reference(batch)
    # The update: every series' candle again, plus the closed 1m (and maybe
    # the coarser closed, if the minute crossed a boundary).
    assert all(len(m.updates) == 50 for m in update[:-1]) and 0 < len(update[-1].updates) <= 50
    assert [m.more for m in update] == [True] * (len(update) - 1) + [False]
    # The update: the new candle of every series, and the ones it closed.
    full = reference(batch + second)
    expected = {k: full[k] for k in reference(second)}
    expected |= {k: full[k] for k in reference(batch) if full[k][-1]}
    assert updates_of(update) == expected


# -- filters and bad input ---------------------------------------------------------


async def test_sector_symbol_and_interval_filters(start_pricing_server: StartPricing) -> None:
    server = await empty_market(start_pricing_server)
    universe = sorted(a.symbol for a in await list_assets(server.stub))
    defi = sorted(a.symbol for a in await list_assets(server.stub, sector="DeFi"))
    assert defi and "BTC-USD" not in defi
    followed = [*defi, "BTC-USD"]
    outside = next(s for s in universe if s not in followed)
    b = base_minute()
    everyone: list[Tick] = [(s, b + 1_000, 7.0, 1.0) for s in universe]
    await publish(server.stub, ticks_pb(everyone))
    cut_now(server)
    wanted = (common_pb2.INTERVAL_1H, common_pb2.INTERVAL_1D)

    def key(symbol: str, interval: int) -> Key:
        return (symbol, interval, b // WIDTHS[interval] * WIDTHS[interval])

    sub = CandleStream(
        server.stub, request(sectors=["defi"], symbols=["BTC-USD"], intervals=list(wanted))
    )
    try:
        snapshot = await sub.group()
        assert set(updates_of(snapshot)) == {key(s, i) for s in followed for i in wanted}
        later: list[Tick] = [(outside, b + 2_000, 8.0, 1.0), (defi[0], b + 2_000, 9.0, 1.0)]
        await publish(server.stub, ticks_pb(later))
        update = await sub.until(lambda m: len(m.updates) > 0)
    finally:
        await sub.close()
    full = reference(everyone + later)
    assert updates_of([update]) == {key(defi[0], i): full[key(defi[0], i)] for i in wanted}


def failure(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, list[str]]:
    status = rpc_status.from_call(err)
    fields: list[str] = []
    if status is not None:
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                fields += [v.field for v in bad_request.field_violations]
    return err.code(), fields


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        (
            {"intervals": [common_pb2.INTERVAL_1M, 99]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "intervals[1]",
        ),
        (
            {"intervals": [common_pb2.INTERVAL_UNSPECIFIED]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "intervals[0]",
        ),
        ({"sectors": ["Astrology"]}, grpc.StatusCode.INVALID_ARGUMENT, "sectors"),
        ({"symbols": ["BTC-USD", "??"]}, grpc.StatusCode.INVALID_ARGUMENT, "symbols[1]"),
        ({"symbols": ["ZZZQ-USD"]}, grpc.StatusCode.NOT_FOUND, None),
    ],
    ids=["interval-99", "interval-unspecified", "sector", "malformed-symbol", "unknown-symbol"],
)
async def test_bad_input_names_the_field(
    start_pricing_server: StartPricing, fields: dict, code: grpc.StatusCode, field: str | None
) -> None:
    server = await empty_market(start_pricing_server)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in server.stub.StreamCandles(request(**fields), timeout=5):
            pass
    got_code, got_fields = failure(info.value)
    assert got_code == code
    if field is not None:
        assert got_fields == [field]
