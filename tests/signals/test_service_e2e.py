"""End to end through real servers: ticks into pricing, candles over
StreamCandles into signals, events out of StreamSignalEvents."""

import asyncio
import math
import socket

import grpc
import numpy as np
import pytest

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.validation import now_ms
from tests.pricing.conftest import StartPricing
from tests.signals.conftest import (
    ALICE,
    BOB,
    HOUR_MS,
    StartSignals,
    hourly_ticks,
    publish,
    wait_for,
)

H1 = common_pb2.INTERVAL_1H


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def trend(start: float, n: int, step: float, seed: int, noise: float = 0.002) -> list[float]:
    rng = np.random.default_rng(seed)
    returns = step + rng.normal(0.0, noise, n)
    return (start * np.exp(np.cumsum(returns))).tolist()


DAY_MS = 24 * HOUR_MS


def day_floor(ms: int) -> int:
    # Phases of ticks start on a day boundary: pricing's sweep closes a past
    # day's candle as soon as ticks stop, so a later phase must not go back
    # into that day.
    return ms - ms % DAY_MS


async def _collect(call, into: list, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        message = await call.read()
        if message is grpc.aio.EOF:
            return
        into.extend(message.events)


async def test_a_flip_gives_one_event_and_one_alert(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    symbol = "ETH-USD"
    sid = signals.app.universe.sid_by_symbol[symbol]
    book = signals.app.books[H1]
    start = day_floor(now_ms()) - 20 * DAY_MS
    up = trend(2000.0, 312, 0.004, seed=1)
    await publish(pricing.stub, hourly_ticks(symbol, start, up))
    await wait_for(lambda: book.last_open_ms[sid] >= start + 311 * HOUR_MS, what="uptrend graded")
    assert book.direction[sid] == signals_pb2.DIRECTION_BULLISH
    response = await signals.stub.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))
    assert response.signal.trader_grade >= 70

    created = await signals.stub.CreateAlert(
        signals_pb2.CreateAlertRequest(
            symbol=symbol,
            condition=signals_pb2.AlertCondition(
                kind=signals_pb2.ALERT_CONDITION_KIND_DIRECTION_FLIP
            ),
        ),
        metadata=auth(ALICE),
    )
    call = signals.stub.StreamSignalEvents(
        signals_pb2.StreamSignalEventsRequest(
            symbols=[symbol],
            event_types=[
                signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP,
                signals_pb2.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED,
            ],
        ),
        metadata=auth(ALICE),
    )
    first = await call.read()  # the subscription is live once this arrives
    assert first.heartbeat
    events: list[signals_pb2.SignalEvent] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(_collect(call, events, stop))

    down = trend(up[-1], 120, -0.006, seed=2)
    await publish(pricing.stub, hourly_ticks(symbol, start + 312 * HOUR_MS, down))
    await wait_for(lambda: len(events) >= 2, what="flip and alert events")
    await asyncio.sleep(1.5)  # anything else that would arrive (a duplicate) has time to
    stop.set()
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)

    flips = [e for e in events if e.type == signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP]
    fired = [e for e in events if e.type == signals_pb2.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED]
    assert len(flips) == 1, events
    assert len(fired) == 1, events
    assert flips[0].direction == signals_pb2.DIRECTION_BEARISH
    assert fired[0].alert_id == created.alert.id
    assert [e.id for e in events] == sorted(e.id for e in events)

    # Resume: from the event before the flip, the same events again.
    replay = signals.stub.StreamSignalEvents(
        signals_pb2.StreamSignalEventsRequest(
            symbols=[symbol],
            event_types=[signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP],
            from_event_id=flips[0].id - 1,
        ),
        metadata=auth(ALICE),
    )
    seen: list[signals_pb2.SignalEvent] = []
    async for message in replay:
        seen.extend(message.events)
        if seen:
            break
    replay.cancel()
    assert seen[0].id == flips[0].id and seen[0].direction == signals_pb2.DIRECTION_BEARISH

    signal = (await signals.stub.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))).signal
    assert signal.direction == signals_pb2.DIRECTION_BEARISH
    assert signal.trader_grade <= 30
    assert signal.recent_flips[0].direction == signals_pb2.DIRECTION_BEARISH
    assert signal.recent_flips[0].time == flips[0].time
    assert math.isclose(signal.last_flip_price, flips[0].price)
    assert not signal.stale

    # Bob sees neither alice's alert nor its firing.
    bob_alerts = await signals.stub.ListAlerts(signals_pb2.ListAlertsRequest(), metadata=auth(BOB))
    assert list(bob_alerts.alerts) == []
    alice_alerts = await signals.stub.ListAlerts(
        signals_pb2.ListAlertsRequest(), metadata=auth(ALICE)
    )
    assert [a.id for a in alice_alerts.alerts] == [created.alert.id]
    assert alice_alerts.alerts[0].trigger_count == 1


async def test_pricing_restart_stale_then_fresh(
    start_pricing_server: StartPricing, start_signals_server: StartSignals, tmp_path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    data = tmp_path / "pricing"
    pricing = await start_pricing_server(backfill_days=0, address=address, data_dir=data)
    signals = await start_signals_server(address, stale_after_s=1.0)
    symbol = "BTC-USD"
    start = day_floor(now_ms()) - 12 * DAY_MS
    prices = trend(50_000.0, 216, 0.002, seed=3)
    await publish(pricing.stub, hourly_ticks(symbol, start, prices))
    sid = signals.app.universe.sid_by_symbol[symbol]
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + 215 * HOUR_MS, what="graded")
    fresh = (await signals.stub.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))).signal
    assert not fresh.stale

    await pricing.stop()
    await wait_for(signals.app.is_stale, seconds=10, what="stale")
    stale = (await signals.stub.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))).signal
    assert stale.stale
    assert stale.trader_grade == pytest.approx(fresh.trader_grade)
    assert stale.as_of == fresh.as_of

    # Candles published while signals was cut off arrive after the reconnect.
    pricing2 = await start_pricing_server(backfill_days=0, address=address, data_dir=data)
    more = trend(prices[-1], 24, 0.002, seed=4)
    await publish(pricing2.stub, hourly_ticks(symbol, start + 216 * HOUR_MS, more))
    await wait_for(
        lambda: book.last_open_ms[sid] >= start + 239 * HOUR_MS and not signals.app.is_stale(),
        seconds=20,
        what="fresh again with the missed candles",
    )
    again = (await signals.stub.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))).signal
    assert not again.stale
    assert again.as_of.ToMilliseconds() > fresh.as_of.ToMilliseconds()


async def test_alert_auth_rules(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    request = signals_pb2.CreateAlertRequest(
        symbol="BTC-USD",
        condition=signals_pb2.AlertCondition(
            kind=signals_pb2.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=100_000
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signals.stub.CreateAlert(request)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signals.stub.CreateAlert(request, metadata=auth("not-a-token-at-all-xx"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    alert = (await signals.stub.CreateAlert(request, metadata=auth(ALICE))).alert
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signals.stub.DeleteAlert(
            signals_pb2.DeleteAlertRequest(alert_id=alert.id), metadata=auth(BOB)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    missing = signals_pb2.DeleteAlertRequest(alert_id="0" * 32)
    with pytest.raises(grpc.aio.AioRpcError) as err2:
        await signals.stub.DeleteAlert(missing, metadata=auth(BOB))
    # Another owner's alert and one that never existed look the same.
    assert (
        err2.value.code() == err.value.code()
        and err2.value.details().replace("0" * 32, alert.id) == err.value.details()
    )
    await signals.stub.DeleteAlert(
        signals_pb2.DeleteAlertRequest(alert_id=alert.id), metadata=auth(ALICE)
    )
    listed = await signals.stub.ListAlerts(signals_pb2.ListAlertsRequest(), metadata=auth(ALICE))
    assert list(listed.alerts) == []
    # Market data needs no token.
    await signals.stub.GetMarketBreadth(signals_pb2.GetMarketBreadthRequest())
