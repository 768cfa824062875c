"""A signals restart on the same data directory keeps directions, flips and
the event log; event ids keep increasing and no flip is reported twice."""

import asyncio

import grpc
from google.protobuf.duration_pb2 import Duration

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.validation import now_ms
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import DAY_MS, day_floor, read_events, walk
from tests.signals.conftest import HOUR_MS, StartSignals, hourly_ticks, publish, wait_for

S = signals_pb2
H1 = common_pb2.INTERVAL_1H
FLIP = S.SIGNAL_EVENT_TYPE_DIRECTION_FLIP
SYMBOL = "ETH-USD"


async def _replay(stub, from_id: int, until_id: int) -> list[S.SignalEvent]:  # type: ignore[no-untyped-def]
    """Every event after from_id up to until_id, from a resumed stream."""
    call = stub.StreamSignalEvents(
        S.StreamSignalEventsRequest(symbols=[SYMBOL], from_event_id=from_id)
    )
    seen: list[S.SignalEvent] = []
    first = await call.read()  # a heartbeat opens every stream
    assert first.heartbeat
    async with asyncio.timeout(10):
        while (message := await call.read()) is not grpc.aio.EOF:
            seen.extend(message.events)
            # A heartbeat: the backlog has been sent.
            if (seen and seen[-1].id >= until_id) or message.heartbeat:
                break
    call.cancel()
    return seen


async def _last_event_id(stub) -> int:  # type: ignore[no-untyped-def]
    call = stub.StreamSignalEvents(S.StreamSignalEventsRequest())
    first = await call.read()
    call.cancel()
    assert first.heartbeat
    return first.last_event_id


async def test_restart_keeps_direction_flips_and_events(
    start_pricing_server: StartPricing, start_signals_server: StartSignals, tmp_path
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    data_dir = tmp_path / "signals-state"
    signals = await start_signals_server(pricing.target, data_dir=data_dir)
    sid = signals.app.universe.sid_by_symbol[SYMBOL]
    start = day_floor(now_ms()) - 20 * DAY_MS
    prices = walk(2_000.0, 200, 0.004, 1) + walk(1.0, 120, -0.006, 2)
    prices[200:] = [p * prices[199] for p in prices[200:]]
    await publish(pricing.stub, hourly_ticks(SYMBOL, start, prices))
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + 319 * HOUR_MS, what="graded")
    before = (await signals.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert before.direction == S.DIRECTION_BEARISH
    assert before.recent_flips and before.recent_flips[0].direction == S.DIRECTION_BEARISH
    last_before = await _last_event_id(signals.stub)
    old = await _replay(signals.stub, 1, last_before)
    old_flips = [e for e in old if e.type == FLIP]
    assert old_flips and old_flips[-1].direction == S.DIRECTION_BEARISH

    await signals.stop()
    again = await start_signals_server(pricing.target, data_dir=data_dir)
    after = (await again.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert after.direction == before.direction
    assert after.direction_since == before.direction_since
    assert after.last_flip_price == before.last_flip_price
    assert list(after.recent_flips) == list(before.recent_flips)
    assert after.closed_grade == before.closed_grade
    assert await _last_event_id(again.stub) == last_before
    # Which symbols have flipped is known again (it comes from the store).
    screened = await again.stub.ScreenSignals(
        S.ScreenSignalsRequest(flipped_within=Duration(seconds=40 * 86_400))
    )
    assert [r.symbol for r in screened.signals] == [SYMBOL]
    # Resuming from event 1 replays the same events: nothing lost, nothing doubled.
    replayed = await _replay(again.stub, 1, last_before)
    assert [(e.id, e.type, e.time) for e in replayed] == [(e.id, e.type, e.time) for e in old]

    # New candles: new events get ids past the old ones, the flip back up is
    # reported once, and no old flip is reported again.
    call = again.stub.StreamSignalEvents(S.StreamSignalEventsRequest(symbols=[SYMBOL]))
    first = await call.read()
    assert first.heartbeat and first.last_event_id == last_before
    events: list[S.SignalEvent] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(read_events(call, events, stop))
    start2 = day_floor(now_ms()) - 5 * DAY_MS
    await publish(pricing.stub, hourly_ticks(SYMBOL, start2, walk(prices[-1], 100, 0.007, 3)))
    await wait_for(lambda: any(e.type == FLIP for e in events), what="flip back up")
    await wait_for(lambda: book_done(again, sid, start2 + 99 * HOUR_MS), what="caught up")
    await asyncio.sleep(0.5)
    stop.set()
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert events and min(e.id for e in events) > last_before
    new_flips = [e for e in events if e.type == FLIP]
    assert len(new_flips) == 1 and new_flips[0].direction == S.DIRECTION_BULLISH
    assert new_flips[0].time.ToMilliseconds() > start2

    everything = await _replay(again.stub, 1, max(e.id for e in events))
    flip_times = [e.time.ToMilliseconds() for e in everything if e.type == FLIP]
    assert len(flip_times) == len(set(flip_times)) == len(old_flips) + 1
    ids = [e.id for e in everything]
    assert ids == sorted(set(ids))

    latest = (await again.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert latest.direction == S.DIRECTION_BULLISH
    assert latest.recent_flips[0].time == new_flips[0].time
    assert (
        list(latest.recent_flips[1:]) == list(before.recent_flips)[: len(latest.recent_flips) - 1]
    )


def book_done(harness, sid: int, open_ms: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(harness.app.books[H1].last_open_ms[sid] >= open_ms)


async def test_first_start_records_the_flips_found_in_history(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    # The market is in pricing before signals first starts: signals grades it
    # from GetCandles history, where the flip happened.
    pricing = await start_pricing_server(backfill_days=0)
    start = day_floor(now_ms()) - 20 * DAY_MS
    prices = walk(2_000.0, 200, 0.004, 1) + walk(1.0, 120, -0.006, 2)
    prices[200:] = [p * prices[199] for p in prices[200:]]
    await publish(pricing.stub, hourly_ticks(SYMBOL, start, prices))
    await asyncio.sleep(0.3)  # pricing's sweep closes the last candle
    signals = await start_signals_server(pricing.target)
    sid = signals.app.universe.sid_by_symbol[SYMBOL]
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + 318 * HOUR_MS, what="graded")
    signal = (await signals.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert signal.direction == S.DIRECTION_BEARISH
    # The current direction came from a flip in the history: it is listed.
    assert signal.recent_flips, "flips found in the history are not recorded"
    flip = signal.recent_flips[0]
    assert flip.direction == S.DIRECTION_BEARISH
    assert flip.time == signal.direction_since
    assert flip.price == signal.last_flip_price
    # A flip the price path had between candle 200 and the end (the turn).
    assert start + 200 * HOUR_MS < flip.time.ToMilliseconds() <= start + 320 * HOUR_MS
    # History is not news: no flip event for it (read from the store: the
    # stream cannot replay event 1, as from_event_id=0 means "only new").
    store = signals.app.store
    assert store is not None
    stored = await store.run(store.events_after, 0, 10_000)
    assert not [e for e in stored if e.type == FLIP]


async def test_crash_replay_reports_no_flip_twice(
    start_pricing_server: StartPricing, start_signals_server: StartSignals, tmp_path
) -> None:
    # The last state snapshot is older than the last flip (signals died
    # without its final snapshot): the restart re-applies the candles after
    # the snapshot, and the flip they contain is already in the event log.
    pricing = await start_pricing_server(backfill_days=0)
    data_dir = tmp_path / "crashy"
    signals = await start_signals_server(pricing.target, data_dir=data_dir)
    sid = signals.app.universe.sid_by_symbol[SYMBOL]
    book = signals.app.books[H1]
    start = day_floor(now_ms()) - 20 * DAY_MS
    up = walk(2_000.0, 200, 0.004, 1)
    await publish(pricing.stub, hourly_ticks(SYMBOL, start, up))
    await wait_for(lambda: book.last_open_ms[sid] >= start + 199 * HOUR_MS, what="uptrend")
    await signals.app.save_state()  # the last snapshot before the "crash"
    snapshot_sequence = signals.app.sequence
    start2 = day_floor(now_ms()) - 10 * DAY_MS
    await publish(pricing.stub, hourly_ticks(SYMBOL, start2, walk(up[-1], 120, -0.006, 2)))
    await wait_for(lambda: book.last_open_ms[sid] >= start2 + 119 * HOUR_MS, what="downtrend")
    before = (await signals.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert before.direction == S.DIRECTION_BEARISH and len(before.recent_flips) >= 1
    store = signals.app.store
    assert store is not None
    events_before = await store.run(store.events_after, 0, 10_000)

    async def no_snapshot() -> None:
        return None

    signals.app.save_state = no_snapshot  # type: ignore[method-assign]
    assert signals.app.sequence > snapshot_sequence  # the flip came after the snapshot
    await signals.stop()

    again = await start_signals_server(pricing.target, data_dir=data_dir)
    book2 = again.app.books[H1]
    await wait_for(lambda: book2.last_open_ms[sid] >= start2 + 119 * HOUR_MS, what="replayed")
    await asyncio.sleep(0.5)
    after = (await again.stub.GetSignal(S.GetSignalRequest(symbol=SYMBOL))).signal
    assert after.direction == before.direction
    assert after.direction_since == before.direction_since
    assert list(after.recent_flips) == list(before.recent_flips)
    store2 = again.app.store
    assert store2 is not None
    events_after = await store2.run(store2.events_after, 0, 10_000)
    assert [(e.id, e.type, e.body) for e in events_after] == [
        (e.id, e.type, e.body) for e in events_before
    ]
