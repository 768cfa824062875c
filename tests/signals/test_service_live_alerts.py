"""Alerts on the forming candle: ticks published at the current time move the
live price and RSI; each crossing fires once, subject to the cooldown."""

import asyncio
from collections import Counter

from google.protobuf.duration_pb2 import Duration

from marketmesh.v1 import common_pb2, pricing_pb2, signals_pb2
from services.common.validation import ms_to_timestamp, now_ms
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import DAY_MS, auth, day_floor, read_events, walk
from tests.signals.conftest import ALICE, HOUR_MS, StartSignals, hourly_ticks, publish, wait_for

S = signals_pb2
H1 = common_pb2.INTERVAL_1H
Kind = S.AlertConditionKind
# Long enough for pricing's stream batch (50 ms) and the live regrade (100 ms).
SETTLE_S = 0.4


async def test_live_alerts_fire_once_per_crossing(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    symbol = "ETH-USD"
    start = day_floor(now_ms()) - 10 * DAY_MS
    history = walk(2_000.0, 240, 0.004, 11)
    await publish(pricing.stub, hourly_ticks(symbol, start, history))
    sid = signals.app.universe.sid_by_symbol[symbol]
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + 239 * HOUR_MS, what="graded")
    p0 = history[-1]
    rsi0 = (await signals.stub.GetSignal(S.GetSignalRequest(symbol=symbol))).signal.indicators[
        "rsi_14"
    ]
    assert rsi0 > 50  # an uptrend: the RSI alert below starts false

    async def tick(sym: str, price: float) -> None:
        await publish(
            pricing.stub,
            [pricing_pb2.Tick(symbol=sym, price=price, volume=1.0, time=ms_to_timestamp(now_ms()))],
        )
        await asyncio.sleep(SETTLE_S)

    # Starting points for the sector's symbols (a first value only sets the state).
    await tick(symbol, p0)
    await tick("DOGE-USD", 0.18)
    await tick("PEPE-USD", 0.5)

    async def create(**fields: object) -> str:
        response = await signals.stub.CreateAlert(
            S.CreateAlertRequest(**fields),  # type: ignore[arg-type]
            metadata=auth(ALICE),
        )
        return response.alert.id

    level = p0 * 1.05
    above = S.AlertCondition(kind=Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=level)
    hourly = await create(symbol=symbol, condition=above, name="cooldown 1h")
    every = await create(symbol=symbol, condition=above, cooldown=Duration(seconds=0))
    rsi = await create(
        symbol=symbol,
        condition=S.AlertCondition(kind=Kind.ALERT_CONDITION_KIND_RSI_BELOW, threshold=30),
    )
    meme = await create(
        sector="meme",
        condition=S.AlertCondition(kind=Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=1.0),
    )

    call = signals.stub.StreamSignalEvents(
        S.StreamSignalEventsRequest(event_types=[S.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED]),
        metadata=auth(ALICE),
    )
    assert (await call.read()).heartbeat
    events: list[S.SignalEvent] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(read_events(call, events, stop))

    await tick(symbol, p0 * 1.01)  # below the level: nothing
    await tick(symbol, p0 * 1.06)  # crosses: both price alerts
    await tick(symbol, p0 * 1.08)  # stays above: nothing
    await tick(symbol, p0 * 1.02)  # back below
    await tick(symbol, p0 * 1.07)  # crosses again: only the alert without cooldown
    await tick("DOGE-USD", 1.5)  # the sector alert, for DOGE
    await tick("DOGE-USD", 1.6)  # still above: nothing
    await tick("PEPE-USD", 2.0)  # and for PEPE
    await tick(symbol, p0 * 0.6)  # a crash: the forming candle's RSI drops below 30
    await tick(symbol, p0 * 0.59)  # still below: nothing
    await wait_for(lambda: len(events) >= 6, seconds=5, what="alert events")
    await asyncio.sleep(SETTLE_S)
    stop.set()
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)

    fired = Counter((e.alert_id, e.symbol) for e in events)
    assert fired == {
        (hourly, symbol): 1,
        (every, symbol): 2,
        (rsi, symbol): 1,
        (meme, "DOGE-USD"): 1,
        (meme, "PEPE-USD"): 1,
    }, events
    rsi_event = next(e for e in events if e.alert_id == rsi)
    assert rsi_event.threshold == 30 and "rsi" in rsi_event.message
    first_hourly = next(e for e in events if e.alert_id == hourly)
    assert first_hourly.price == p0 * 1.06 and "cooldown 1h" in first_hourly.message

    listed = await signals.stub.ListAlerts(S.ListAlertsRequest(), metadata=auth(ALICE))
    counts = {a.id: a.trigger_count for a in listed.alerts}
    assert counts == {hourly: 1, every: 2, rsi: 1, meme: 2}
    signal = (await signals.stub.GetSignal(S.GetSignalRequest(symbol=symbol))).signal
    assert signal.price == p0 * 0.59
    assert signal.indicators["rsi_14"] < 30
