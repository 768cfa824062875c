"""ScreenSignals and GetMarketBreadth on a small universe the test drives,
against brute force over GetSignal answers."""

import asyncio
import itertools
import math
from collections.abc import Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from marketmesh.v1 import common_pb2, pricing_pb2, signals_pb2
from services.common.validation import now_ms
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import DAY_MS, day_floor, walk
from tests.signals.conftest import HOUR_MS, StartSignals, hourly_ticks, publish, wait_for

S = signals_pb2
H1 = common_pb2.INTERVAL_1H
N = 300


def _legs(start: float, legs: list[tuple[int, float]], seed: int) -> list[float]:
    out: list[float] = []
    price = start
    for k, (n, step) in enumerate(legs):
        part = walk(price, n, step, seed * 10 + k)
        out += part
        price = part[-1]
    return out


# Trends chosen so directions, grades, flip times, caps and sectors differ.
MARKET: dict[str, list[float]] = {
    "BTC-USD": _legs(50_000.0, [(N, 0.003)], 1),
    "ETH-USD": _legs(2_500.0, [(N, 0.0015)], 2),
    "SOL-USD": _legs(150.0, [(N, -0.003)], 3),
    "XRP-USD": _legs(2.2, [(N, 0.0)], 4),
    "DOGE-USD": _legs(0.18, [(240, 0.004), (60, -0.008)], 5),
    "ADA-USD": _legs(0.65, [(240, -0.004), (60, 0.008)], 6),
    "LINK-USD": _legs(14.5, [(N, 0.004)], 7),
    "AVAX-USD": _legs(20.0, [(N, -0.004)], 8),
    "PEPE-USD": _legs(1e-5, [(100, 0.005), (200, -0.004)], 9),
    "LTC-USD": _legs(88.0, [(150, -0.004), (150, 0.004)], 10),
}


def _tier(cap: float) -> int:
    if cap >= 10e9:
        return common_pb2.TIER_LARGE
    if cap >= 1e9:
        return common_pb2.TIER_MID
    return common_pb2.TIER_SMALL


async def _screen_all(stub, request: S.ScreenSignalsRequest) -> tuple[list[S.Signal], int]:  # type: ignore[no-untyped-def]
    rows: list[S.Signal] = []
    token = ""
    totals = set()
    for _ in range(100):
        page = S.ScreenSignalsRequest()
        page.CopyFrom(request)
        page.page_token = token
        response = await stub.ScreenSignals(page)
        assert len(response.signals) <= (request.limit or 50)
        rows += response.signals
        totals.add(response.total_size)
        token = response.next_page_token
        if not token:
            break
    assert len(totals) == 1
    return rows, totals.pop()


async def test_screens_and_breadth_match_brute_force(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    start = day_floor(now_ms()) - 13 * DAY_MS
    ticks = [t for symbol, prices in MARKET.items() for t in hourly_ticks(symbol, start, prices)]
    ticks.sort(key=lambda t: (t.time.seconds, t.symbol))
    await publish(pricing.stub, ticks)
    book = signals.app.books[H1]
    sids = [signals.app.universe.sid_by_symbol[s] for s in MARKET]
    last_open = start + (N - 1) * HOUR_MS
    await wait_for(lambda: all(book.last_open_ms[s] >= last_open for s in sids), what="graded")

    # Reference data from pricing, independent of signals.
    assets: dict[str, pricing_pb2.Asset] = {}
    order: list[str] = []
    token = ""
    while True:
        page = await pricing.stub.ListAssets(
            pricing_pb2.ListAssetsRequest(page_size=1000, page_token=token)
        )
        for a in page.assets:
            assets[a.symbol] = a
            order.append(a.symbol)
        token = page.next_page_token
        if not token:
            break
    rank = {s: i for i, s in enumerate(signals.app.universe.symbols)}

    # Every symbol's GetSignal; those never driven have no signal yet.
    answers: dict[str, S.Signal] = {}
    for symbol in order:
        try:
            answers[symbol] = (
                await signals.stub.GetSignal(S.GetSignalRequest(symbol=symbol))
            ).signal
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, (symbol, err)
    assert set(answers) == set(MARKET)
    for symbol, sig in answers.items():
        assert sig.price == MARKET[symbol][-1]
        cap = sig.price * assets[symbol].circulating_supply
        assert math.isclose(sig.market_cap, cap, rel_tol=1e-12)
        assert sig.tier == _tier(cap)
        assert list(sig.sectors) == list(assets[symbol].sectors)
    directions = {s: a.direction for s, a in answers.items()}
    assert directions["BTC-USD"] == S.DIRECTION_BULLISH
    assert directions["SOL-USD"] == S.DIRECTION_BEARISH
    assert directions["DOGE-USD"] == S.DIRECTION_BEARISH
    assert directions["ADA-USD"] == S.DIRECTION_BULLISH

    now = now_ms()

    def since(sig: S.Signal) -> int:
        return sig.direction_since.ToMilliseconds() if sig.HasField("direction_since") else -1

    def flipped_since(sig: S.Signal) -> int:
        """Time of the last flip; a first direction is no flip (recent_flips is empty)."""
        return sig.recent_flips[0].time.ToMilliseconds() if sig.recent_flips else -(2**62)

    for a in answers.values():
        if a.recent_flips:  # the current direction came from the last flip
            assert a.recent_flips[0].time == a.direction_since
            assert a.recent_flips[0].direction == a.direction
    never = [s for s, a in answers.items() if not a.recent_flips]
    assert "BTC-USD" in never and "DOGE-USD" not in never

    def brute(keep: Callable[[S.Signal], bool], order_by: int, *, within_ms: int = 0) -> list[str]:
        rows = [
            a
            for a in answers.values()
            if keep(a) and (not within_ms or flipped_since(a) >= now - within_ms)
        ]
        keys: dict[int, Callable[[S.Signal], tuple]] = {  # type: ignore[type-arg]
            S.SCREEN_ORDER_UNSPECIFIED: lambda a: (-a.trader_grade, rank[a.symbol]),
            S.SCREEN_ORDER_GRADE_DESC: lambda a: (-a.trader_grade, rank[a.symbol]),
            S.SCREEN_ORDER_GRADE_ASC: lambda a: (a.trader_grade, rank[a.symbol]),
            S.SCREEN_ORDER_MARKET_CAP_DESC: lambda a: (-a.market_cap, rank[a.symbol]),
            S.SCREEN_ORDER_FLIP_TIME_DESC: lambda a: (-since(a), rank[a.symbol]),
            S.SCREEN_ORDER_SYMBOL: lambda a: (a.symbol,),
        }
        return [a.symbol for a in sorted(rows, key=keys[order_by])]

    def sectors_any(names: list[str]) -> Callable[[S.Signal], bool]:
        wanted = {n.lower() for n in names}
        return lambda a: any(s.lower() in wanted for s in a.sectors)

    def everything(a: S.Signal) -> bool:
        return True

    day = 86_400
    cases: list[tuple[S.ScreenSignalsRequest, Callable[[S.Signal], bool], int]] = [
        (S.ScreenSignalsRequest(limit=3), everything, 0),
        (
            S.ScreenSignalsRequest(
                min_grade=35, max_grade=75, order_by=S.SCREEN_ORDER_GRADE_ASC, limit=2
            ),
            lambda a: 35 <= a.trader_grade <= 75,
            0,
        ),
        (
            S.ScreenSignalsRequest(max_grade=50, order_by=S.SCREEN_ORDER_GRADE_DESC, limit=4),
            lambda a: a.trader_grade <= 50,
            0,
        ),
        (
            S.ScreenSignalsRequest(
                direction=S.DIRECTION_BULLISH, order_by=S.SCREEN_ORDER_MARKET_CAP_DESC, limit=2
            ),
            lambda a: a.direction == S.DIRECTION_BULLISH,
            0,
        ),
        (
            S.ScreenSignalsRequest(
                direction=S.DIRECTION_BEARISH, order_by=S.SCREEN_ORDER_SYMBOL, limit=3
            ),
            lambda a: a.direction == S.DIRECTION_BEARISH,
            0,
        ),
        (
            S.ScreenSignalsRequest(sectors=["layer 1", "MEME"], limit=3),
            sectors_any(["layer 1", "meme"]),
            0,
        ),
        (
            S.ScreenSignalsRequest(sectors=["Payments"], order_by=S.SCREEN_ORDER_SYMBOL, limit=1),
            sectors_any(["payments"]),
            0,
        ),
        (
            S.ScreenSignalsRequest(tiers=[common_pb2.TIER_LARGE], limit=2),
            lambda a: a.tier == common_pb2.TIER_LARGE,
            0,
        ),
        (
            S.ScreenSignalsRequest(
                tiers=[common_pb2.TIER_MID, common_pb2.TIER_SMALL],
                order_by=S.SCREEN_ORDER_MARKET_CAP_DESC,
                limit=3,
            ),
            lambda a: a.tier in (common_pb2.TIER_MID, common_pb2.TIER_SMALL),
            0,
        ),
        (
            S.ScreenSignalsRequest(min_market_cap=5e9, order_by=S.SCREEN_ORDER_GRADE_ASC, limit=2),
            lambda a: a.market_cap >= 5e9,
            0,
        ),
    ]
    for days in (3, 6, 30):
        cases.append(
            (
                S.ScreenSignalsRequest(
                    flipped_within=Duration(seconds=days * day),
                    order_by=S.SCREEN_ORDER_FLIP_TIME_DESC,
                    limit=2,
                ),
                everything,
                days * DAY_MS,
            )
        )
        cases.append(
            (
                S.ScreenSignalsRequest(
                    flipped_within=Duration(seconds=days * day),
                    direction=S.DIRECTION_BEARISH,
                    order_by=S.SCREEN_ORDER_FLIP_TIME_DESC,
                    limit=1,
                ),
                lambda a: a.direction == S.DIRECTION_BEARISH,
                days * DAY_MS,
            )
        )
    sizes = set()
    for request, keep, within in cases:
        rows, total = await _screen_all(signals.stub, request)
        expected = brute(keep, request.order_by, within_ms=within)
        got = [r.symbol for r in rows]
        assert got == expected, (request, got, expected)
        assert total == len(expected)
        sizes.add(len(expected))
        for r in rows:
            a = answers[r.symbol]
            assert not r.factors and not r.indicators
            assert (r.trader_grade, r.closed_grade, r.direction) == (
                a.trader_grade,
                a.closed_grade,
                a.direction,
            )
            assert (r.price, r.market_cap, r.tier, since(r)) == (
                a.price,
                a.market_cap,
                a.tier,
                since(a),
            )
    # The screens do select: not every one matched everything or nothing.
    assert len(sizes) >= 4, sizes

    # Breadth by hand: closed grade and direction of every graded token.
    def figures(rows: list[S.Signal]) -> tuple[float, float, float, int]:
        n = len(rows)
        return (
            sum(a.direction == S.DIRECTION_BULLISH for a in rows) / n,
            sum(a.closed_grade >= 80 for a in rows) / n,
            sum(a.closed_grade for a in rows) / n,
            n,
        )

    breadth = await signals.stub.GetMarketBreadth(
        S.GetMarketBreadthRequest(history_window=Duration(seconds=30 * day))
    )
    m = breadth.market
    want = figures(list(answers.values()))
    assert (m.bullish_share, m.strong_share, m.token_count) == pytest.approx(
        (want[0], want[1], want[3])
    )
    assert m.average_grade == pytest.approx(want[2], rel=1e-12)
    # Above the 200-candle SMA, from the closes the test published.
    above = [p[-1] > sum(p[-200:]) / 200 for p in MARKET.values()]
    assert m.above_ma200_share == pytest.approx(sum(above) / len(above))
    assert 0 < m.bullish_share < 1
    by_sector: dict[str, list[S.Signal]] = {}
    for a in answers.values():
        for sector in a.sectors:
            by_sector.setdefault(sector, []).append(a)
    got_sectors = {s.sector: s.breadth for s in breadth.sectors}
    assert set(got_sectors) == set(by_sector)
    for name, rows in by_sector.items():
        b = got_sectors[name]
        want = figures(rows)
        assert (b.bullish_share, b.strong_share, b.average_grade, b.token_count) == pytest.approx(
            want, rel=1e-12
        ), name
    # One point per closed candle round, oldest first, the newest over all ten tokens.
    history = list(breadth.history)
    # (the first candles grade nobody: a grade needs a few dozen candles)
    assert len(history) >= N - 40
    times = [p.time.ToMilliseconds() for p in history]
    assert all(b - a == HOUR_MS for a, b in itertools.pairwise(times))
    assert times[-1] == last_open + HOUR_MS
    assert history[-1].token_count == len(MARKET)
    assert history[-1].bullish_share == pytest.approx(m.bullish_share)
    # The regime follows the documented hysteresis over the bullish shares.
    regime = S.REGIME_UNSPECIFIED
    changes = []
    for point in history:
        share, was = point.bullish_share, regime
        if (regime == S.REGIME_BULL and share >= 0.5) or (regime == S.REGIME_BEAR and share <= 0.5):
            pass
        elif share >= 0.6:
            regime = S.REGIME_BULL
        elif share <= 0.4:
            regime = S.REGIME_BEAR
        else:
            regime = S.REGIME_NEUTRAL
        assert point.regime == regime, point
        if was not in (regime, S.REGIME_UNSPECIFIED):
            changes.append((point.time.ToMilliseconds(), was, regime))
    assert m.regime == regime
    store = signals.app.store
    assert store is not None
    regime_events = [
        S.SignalEvent.FromString(e.body)
        for e in await store.run(store.events_after, 0, 100_000)
        if e.type == S.SIGNAL_EVENT_TYPE_REGIME_CHANGE
    ]
    assert [
        (e.time.ToMilliseconds(), e.previous_regime, e.regime) for e in regime_events
    ] == changes
    short = await signals.stub.GetMarketBreadth(
        S.GetMarketBreadthRequest(history_window=Duration(seconds=1))
    )
    assert list(short.history) == []

    # StreamSignalEvents filtered by sector and type replays exactly the
    # matching part of the event log.
    types = [S.SIGNAL_EVENT_TYPE_DIRECTION_FLIP, S.SIGNAL_EVENT_TYPE_GRADE_CROSSED]
    call = signals.stub.StreamSignalEvents(
        S.StreamSignalEventsRequest(sectors=["MEME"], event_types=types, from_event_id=1)
    )
    assert (await call.read()).heartbeat
    streamed: list[S.SignalEvent] = []
    while True:
        try:
            message = await asyncio.wait_for(call.read(), 1.0)
        except TimeoutError:
            break
        streamed += message.events
    call.cancel()
    logged = [
        (e.id, S.SignalEvent.FromString(e.body))
        for e in await store.run(store.events_after, 1, 100_000)
    ]
    meme = {s for s, a in assets.items() if "meme" in (x.lower() for x in a.sectors)}
    expected_ids = [i for i, e in logged if e.symbol in meme and e.type in types]
    assert [e.id for e in streamed] == expected_ids
    assert {e.symbol for e in streamed} == {"DOGE-USD", "PEPE-USD"}
    assert any(e.type == S.SIGNAL_EVENT_TYPE_DIRECTION_FLIP for e in streamed)
