"""SignalsService through real stubs: bad input on every call, indicators
against TA-Lib, support and resistance on a zig-zag, and metrics feeding the
sentiment factor."""

import asyncio
import math

import grpc
import numpy as np
import talib
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import common_pb2, pricing_pb2, signals_pb2
from services.common.validation import ms_to_timestamp, now_ms
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import DAY_MS, Failure, auth, day_floor, expect_failure, walk
from tests.signals.conftest import (
    ALICE,
    BOB,
    HOUR_MS,
    StartSignals,
    hourly_ticks,
    publish,
    wait_for,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
H1 = common_pb2.INTERVAL_1H
S = signals_pb2
Kind = S.AlertConditionKind


def _metric(symbol: str, name: str, value: float, **kw: object) -> S.MetricPoint:
    return S.MetricPoint(symbol=symbol, name=name, value=value, **kw)  # type: ignore[arg-type]


async def test_bad_input_is_invalid_argument_naming_the_field(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    stub = signals.stub
    start = day_floor(now_ms()) - 10 * DAY_MS
    await publish(pricing.stub, hourly_ticks("BTC-USD", start, walk(50_000.0, 100, 0.001, 1)))
    ts = Timestamp
    spec = S.IndicatorSpec
    ci = S.ComputeIndicatorsRequest
    sc = S.ScreenSignalsRequest
    ca = S.CreateAlertRequest
    above = S.AlertCondition(kind=Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=1.0)
    cases: dict[str, tuple[object, grpc.StatusCode, str | None]] = {
        # GetSignal
        "signal-malformed": (
            stub.GetSignal(S.GetSignalRequest(symbol="BTC/USD")),
            INVALID,
            "symbol",
        ),
        "signal-empty": (stub.GetSignal(S.GetSignalRequest(symbol="")), INVALID, "symbol"),
        "signal-unknown": (stub.GetSignal(S.GetSignalRequest(symbol="ZZZ-USD")), NOT_FOUND, None),
        "signal-interval-value": (
            stub.GetSignal(S.GetSignalRequest(symbol="BTC-USD", interval=99)),
            INVALID,
            "interval",
        ),
        "signal-interval-not-graded": (
            stub.GetSignal(S.GetSignalRequest(symbol="BTC-USD", interval=common_pb2.INTERVAL_1M)),
            INVALID,
            "interval",
        ),
        # ScreenSignals
        "screen-min-gt-max": (
            stub.ScreenSignals(sc(min_grade=70, max_grade=30)),
            INVALID,
            "min_grade",
        ),
        "screen-min-range": (stub.ScreenSignals(sc(min_grade=-1)), INVALID, "min_grade"),
        "screen-max-range": (stub.ScreenSignals(sc(max_grade=101)), INVALID, "max_grade"),
        "screen-nan": (stub.ScreenSignals(sc(min_grade=math.nan)), INVALID, "min_grade"),
        "screen-max-nan": (stub.ScreenSignals(sc(max_grade=math.nan)), INVALID, "max_grade"),
        "screen-tier": (
            stub.ScreenSignals(sc(tiers=[common_pb2.TIER_LARGE, 9])),
            INVALID,
            "tiers[1]",
        ),
        "screen-tier-unspecified": (stub.ScreenSignals(sc(tiers=[0])), INVALID, "tiers[0]"),
        "screen-order": (stub.ScreenSignals(sc(order_by=42)), INVALID, "order_by"),
        "screen-direction": (stub.ScreenSignals(sc(direction=7)), INVALID, "direction"),
        "screen-flipped-negative": (
            stub.ScreenSignals(sc(flipped_within=Duration(seconds=-60))),
            INVALID,
            "flipped_within",
        ),
        "screen-sector": (stub.ScreenSignals(sc(sectors=["Meme", "Nope"])), INVALID, "sectors[1]"),
        "screen-page-token": (stub.ScreenSignals(sc(page_token="garbage!")), INVALID, "page_token"),
        "screen-limit": (stub.ScreenSignals(sc(limit=1001)), INVALID, "limit"),
        "screen-limit-negative": (stub.ScreenSignals(sc(limit=-1)), INVALID, "limit"),
        "screen-cap-nan": (
            stub.ScreenSignals(sc(min_market_cap=math.nan)),
            INVALID,
            "min_market_cap",
        ),
        "screen-interval": (
            stub.ScreenSignals(sc(interval=common_pb2.INTERVAL_5M)),
            INVALID,
            "interval",
        ),
        # GetMarketBreadth
        "breadth-negative": (
            stub.GetMarketBreadth(S.GetMarketBreadthRequest(history_window=Duration(seconds=-1))),
            INVALID,
            "history_window",
        ),
        "breadth-interval": (
            stub.GetMarketBreadth(S.GetMarketBreadthRequest(interval=77)),
            INVALID,
            "interval",
        ),
        # GetSupportResistance
        "levels-lookback-low": (
            stub.GetSupportResistance(S.GetSupportResistanceRequest(symbol="BTC-USD", lookback=5)),
            INVALID,
            "lookback",
        ),
        "levels-lookback-high": (
            stub.GetSupportResistance(
                S.GetSupportResistanceRequest(symbol="BTC-USD", lookback=5001)
            ),
            INVALID,
            "lookback",
        ),
        "levels-lookback-negative": (
            stub.GetSupportResistance(S.GetSupportResistanceRequest(symbol="BTC-USD", lookback=-3)),
            INVALID,
            "lookback",
        ),
        "levels-symbol": (
            stub.GetSupportResistance(S.GetSupportResistanceRequest(symbol="nope")),
            INVALID,
            "symbol",
        ),
        "levels-unknown": (
            stub.GetSupportResistance(S.GetSupportResistanceRequest(symbol="ZZZ-USD")),
            NOT_FOUND,
            None,
        ),
        # ComputeIndicators
        "ind-name": (
            stub.ComputeIndicators(ci(symbol="BTC-USD", indicators=[spec(name="nope")])),
            INVALID,
            "indicators[0].name",
        ),
        "ind-param": (
            stub.ComputeIndicators(
                ci(symbol="BTC-USD", indicators=[spec(name="rsi", params={"bogus": 3})])
            ),
            INVALID,
            "indicators[0].params.bogus",
        ),
        "ind-param-range": (
            stub.ComputeIndicators(
                ci(
                    symbol="BTC-USD",
                    indicators=[spec(name="sma"), spec(name="rsi", params={"timeperiod": -4})],
                )
            ),
            INVALID,
            "indicators[1].params.timeperiod",
        ),
        "ind-too-many": (
            stub.ComputeIndicators(ci(symbol="BTC-USD", indicators=[spec(name="rsi")] * 21)),
            INVALID,
            "indicators",
        ),
        "ind-none": (stub.ComputeIndicators(ci(symbol="BTC-USD")), INVALID, "indicators"),
        "ind-start-after-end": (
            stub.ComputeIndicators(
                ci(
                    symbol="BTC-USD",
                    indicators=[spec(name="rsi")],
                    start_time=ts(seconds=2_000_000),
                    end_time=ts(seconds=1_000_000),
                )
            ),
            INVALID,
            "start_time",
        ),
        "ind-start-equals-end": (
            stub.ComputeIndicators(
                ci(
                    symbol="BTC-USD",
                    indicators=[spec(name="rsi")],
                    start_time=ts(seconds=2_000_000),
                    end_time=ts(seconds=2_000_000),
                )
            ),
            INVALID,
            "start_time",
        ),
        "ind-range-too-long": (
            stub.ComputeIndicators(
                ci(symbol="BTC-USD", indicators=[spec(name="rsi")], start_time=ts(seconds=0))
            ),
            INVALID,
            "start_time",
        ),
        "ind-bad-timestamp": (
            stub.ComputeIndicators(
                ci(
                    symbol="BTC-USD",
                    indicators=[spec(name="rsi")],
                    start_time=ts(seconds=1_000, nanos=-1),
                )
            ),
            INVALID,
            "start_time",
        ),
        "ind-interval": (
            stub.ComputeIndicators(
                ci(symbol="BTC-USD", interval=99, indicators=[spec(name="rsi")])
            ),
            INVALID,
            "interval",
        ),
        "levels-interval": (
            stub.GetSupportResistance(S.GetSupportResistanceRequest(symbol="BTC-USD", interval=99)),
            INVALID,
            "interval",
        ),
        "ind-unknown": (
            stub.ComputeIndicators(ci(symbol="ZZZ-USD", indicators=[spec(name="rsi")])),
            NOT_FOUND,
            None,
        ),
        # CreateAlert: each field
        "alert-neither": (
            stub.CreateAlert(ca(condition=above), metadata=auth(ALICE)),
            INVALID,
            "symbol",
        ),
        "alert-both": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", sector="Meme", condition=above), metadata=auth(ALICE)
            ),
            INVALID,
            "symbol",
        ),
        "alert-bad-symbol": (
            stub.CreateAlert(ca(symbol="BTC/USD", condition=above), metadata=auth(ALICE)),
            INVALID,
            "symbol",
        ),
        "alert-sector": (
            stub.CreateAlert(ca(sector="Nope", condition=above), metadata=auth(ALICE)),
            INVALID,
            "sector",
        ),
        "alert-kind": (
            stub.CreateAlert(ca(symbol="BTC-USD"), metadata=auth(ALICE)),
            INVALID,
            "condition.kind",
        ),
        "alert-kind-value": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", condition=S.AlertCondition(kind=99, threshold=1)),
                metadata=auth(ALICE),
            ),
            INVALID,
            "condition.kind",
        ),
        "alert-grade-threshold": (
            stub.CreateAlert(
                ca(
                    symbol="BTC-USD",
                    condition=S.AlertCondition(
                        kind=Kind.ALERT_CONDITION_KIND_GRADE_ABOVE, threshold=100
                    ),
                ),
                metadata=auth(ALICE),
            ),
            INVALID,
            "condition.threshold",
        ),
        "alert-rsi-threshold": (
            stub.CreateAlert(
                ca(
                    symbol="BTC-USD",
                    condition=S.AlertCondition(
                        kind=Kind.ALERT_CONDITION_KIND_RSI_BELOW, threshold=0
                    ),
                ),
                metadata=auth(ALICE),
            ),
            INVALID,
            "condition.threshold",
        ),
        "alert-price-threshold": (
            stub.CreateAlert(
                ca(
                    symbol="BTC-USD",
                    condition=S.AlertCondition(
                        kind=Kind.ALERT_CONDITION_KIND_PRICE_BELOW, threshold=-5
                    ),
                ),
                metadata=auth(ALICE),
            ),
            INVALID,
            "condition.threshold",
        ),
        "alert-nan-threshold": (
            stub.CreateAlert(
                ca(
                    symbol="BTC-USD",
                    condition=S.AlertCondition(
                        kind=Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=math.nan
                    ),
                ),
                metadata=auth(ALICE),
            ),
            INVALID,
            "condition.threshold",
        ),
        "alert-interval": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", condition=above, interval=common_pb2.INTERVAL_5M),
                metadata=auth(ALICE),
            ),
            INVALID,
            "interval",
        ),
        "alert-cooldown-negative": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", condition=above, cooldown=Duration(seconds=-1)),
                metadata=auth(ALICE),
            ),
            INVALID,
            "cooldown",
        ),
        "alert-cooldown-long": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", condition=above, cooldown=Duration(seconds=31 * 86_400)),
                metadata=auth(ALICE),
            ),
            INVALID,
            "cooldown",
        ),
        "alert-name": (
            stub.CreateAlert(
                ca(symbol="BTC-USD", condition=above, name="x" * 201), metadata=auth(ALICE)
            ),
            INVALID,
            "name",
        ),
        "alert-unknown-symbol": (
            stub.CreateAlert(ca(symbol="ZZZ-USD", condition=above), metadata=auth(ALICE)),
            NOT_FOUND,
            None,
        ),
        # DeleteAlert / ListAlerts
        "delete-missing-id": (
            stub.DeleteAlert(S.DeleteAlertRequest(), metadata=auth(ALICE)),
            INVALID,
            "alert_id",
        ),
        "list-page-size": (
            stub.ListAlerts(S.ListAlertsRequest(page_size=1001), metadata=auth(ALICE)),
            INVALID,
            "page_size",
        ),
        "list-page-token": (
            stub.ListAlerts(S.ListAlertsRequest(page_token="xx"), metadata=auth(ALICE)),
            INVALID,
            "page_token",
        ),
    }
    wrong: dict[str, Failure | str] = {}
    for name, (call, code, field) in cases.items():
        failure = await expect_failure(call)  # type: ignore[arg-type]
        if failure.code != code or (field is not None and field not in failure.fields):
            wrong[name] = failure
    assert not wrong, wrong

    # Extreme but valid values answer normally.
    await stub.GetMarketBreadth(S.GetMarketBreadthRequest(history_window=Duration(seconds=10**11)))
    await stub.ScreenSignals(sc(flipped_within=Duration(seconds=10**11), min_market_cap=1e300))
    await stub.ScreenSignals(sc(min_grade=0, max_grade=0, limit=1000))

    # StreamSignalEvents: the error comes on the first read.
    stream_cases = {
        "events-unknown-symbol": (S.StreamSignalEventsRequest(symbols=["ZZZ-USD"]), "symbols[0]"),
        "events-malformed-symbol": (S.StreamSignalEventsRequest(symbols=["a/b"]), "symbols[0]"),
        "events-unknown-sector": (S.StreamSignalEventsRequest(sectors=["Nope"]), "sectors[0]"),
        "events-bad-type": (
            S.StreamSignalEventsRequest(event_types=[S.SIGNAL_EVENT_TYPE_DIRECTION_FLIP, 9]),
            "event_types[1]",
        ),
        "events-unspecified-type": (S.StreamSignalEventsRequest(event_types=[0]), "event_types[0]"),
    }
    for name, (request, field) in stream_cases.items():
        call = stub.StreamSignalEvents(request)
        failure = await expect_failure(call.read())
        if failure.code != INVALID or field not in failure.fields:
            wrong[name] = failure
    assert not wrong, wrong

    # PublishMetrics: each rejection reason comes back with its index, not an error.
    now = now_ms()
    batches = [
        [
            _metric("BTC-USD", "social_score", 55.0),  # 0 ok
            _metric("ZZZ-USD", "social_score", 55.0),  # 1 unknown symbol
            _metric("BTC-USD", "karma", 1.0),  # 2 unknown metric
            _metric("BTC-USD", "social_score", math.nan),  # 3 not finite
        ],
        [
            _metric("BTC-USD", "social_score", 101.0),  # 4 out of range
            _metric("BTC-USD", "mention_volume", -1.0),  # 5 out of range
            _metric("BTC-USD", "exchange_net_flow", -5.0, time=ms_to_timestamp(now)),  # 6 ok
            _metric("BTC-USD", "active_addresses", 10.0, time=Timestamp(seconds=1, nanos=-5)),  # 7
            _metric("BTC-USD", "dex_liquidity", 10.0, time=ms_to_timestamp(now + 60_000)),  # 8
        ],
    ]

    async def requests():  # type: ignore[no-untyped-def]
        for points in batches:
            yield S.PublishMetricsRequest(points=points)

    response = await stub.PublishMetrics(requests())
    assert response.accepted == 2 and response.rejected == 7
    got = {r.index: r.reason for r in response.rejections}
    assert sorted(got) == [1, 2, 3, 4, 5, 7, 8]
    assert "unknown symbol" in got[1]
    assert "unknown metric" in got[2]
    assert "finite" in got[3]
    assert "social_score" in got[4] and "mention_volume" in got[5]
    assert "nanos" in got[7]
    assert "ahead" in got[8]
    assert [(r.symbol, r.name) for r in response.rejections][:2] == [
        ("ZZZ-USD", "social_score"),
        ("BTC-USD", "karma"),
    ]


async def test_indicators_match_talib_and_levels_bracket_the_close(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    symbol = "SOL-USD"
    start = day_floor(now_ms()) - 12 * DAY_MS
    n = 260
    i = np.arange(n)
    # A zig-zag: swings of +-12% with a 40-candle period, a little noise.
    rng = np.random.default_rng(5)
    prices = (150.0 * (1 + 0.12 * np.sin(2 * np.pi * i / 40)) + rng.normal(0, 0.3, n)).tolist()
    await publish(pricing.stub, hourly_ticks(symbol, start, prices))
    sid = signals.app.universe.sid_by_symbol[symbol]
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + (n - 1) * HOUR_MS, what="graded")
    # ComputeIndicators reads pricing's GetCandles, which can report the last
    # candle closed a moment after StreamCandles did.
    for _ in range(100):
        last = await pricing.stub.GetCandles(
            pricing_pb2.GetCandlesRequest(symbol=symbol, interval=H1, limit=1)
        )
        if last.candles[0].closed:
            break
        await asyncio.sleep(0.05)

    response = await signals.stub.ComputeIndicators(
        S.ComputeIndicatorsRequest(
            symbol=symbol,
            interval=H1,
            start_time=ms_to_timestamp(start),
            end_time=ms_to_timestamp(start + n * HOUR_MS),
            indicators=[
                S.IndicatorSpec(name="rsi"),
                S.IndicatorSpec(name="rsi", params={"timeperiod": 7}),
            ],
        )
    )
    opens = [t.ToMilliseconds() for t in response.open_times]
    assert opens == [start + k * HOUR_MS for k in range(n)]
    closes = np.asarray(prices)
    by_spec = {s.spec_index: np.asarray(s.values) for s in response.series}
    for index, period in ((0, 14), (1, 7)):
        expected = talib.RSI(closes, timeperiod=period)
        got = by_spec[index]
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-9)

    # A window in the middle: the documented warm-up is the kernel's lookback
    # (14 candles for rsi) before start_time, so the values are TA-Lib's over
    # closes[100 - 14 : 150] (Wilder smoothing starts there, not at the first candle).
    mid = await signals.stub.ComputeIndicators(
        S.ComputeIndicatorsRequest(
            symbol=symbol,
            start_time=ms_to_timestamp(start + 100 * HOUR_MS),
            end_time=ms_to_timestamp(start + 150 * HOUR_MS),
            indicators=[S.IndicatorSpec(name="rsi")],
        )
    )
    assert [t.ToMilliseconds() for t in mid.open_times] == opens[100:150]
    np.testing.assert_allclose(
        mid.series[0].values, talib.RSI(closes[86:150], timeperiod=14)[14:], rtol=1e-9
    )

    # No start_time: the last candles up to the latest closed one; a
    # multi-output kernel gives one series per output, named kernel.output.
    latest = await signals.stub.ComputeIndicators(
        S.ComputeIndicatorsRequest(
            symbol=symbol,
            indicators=[
                S.IndicatorSpec(name="macd"),
                S.IndicatorSpec(name="bbands", params={"timeperiod": 10, "nbdevup": 1.5}),
            ],
        )
    )
    assert [t.ToMilliseconds() for t in latest.open_times] == opens
    series = {(x.spec_index, x.name): np.asarray(x.values) for x in latest.series}
    macd = talib.MACD(closes)
    bands = talib.BBANDS(closes, timeperiod=10, nbdevup=1.5, nbdevdn=2.0)
    expected_series = {
        (0, "macd.macd"): macd[0],
        (0, "macd.macdsignal"): macd[1],
        (0, "macd.macdhist"): macd[2],
        (1, "bbands.upperband"): bands[0],
        (1, "bbands.middleband"): bands[1],
        (1, "bbands.lowerband"): bands[2],
    }
    assert set(series) == set(expected_series)
    for key, want in expected_series.items():
        np.testing.assert_allclose(series[key], want, rtol=1e-9, equal_nan=True, err_msg=str(key))

    levels = await signals.stub.GetSupportResistance(
        S.GetSupportResistanceRequest(symbol=symbol, lookback=200)
    )
    assert levels.last_close == prices[-1]
    assert levels.levels
    support, resistance = levels.nearest_support, levels.nearest_resistance
    assert levels.HasField("nearest_support") and levels.HasField("nearest_resistance")
    assert support.kind == S.LEVEL_KIND_SUPPORT and support.price < prices[-1]
    assert resistance.kind == S.LEVEL_KIND_RESISTANCE and resistance.price > prices[-1]
    # The swings top out near 168 and bottom near 132: levels lie inside the range.
    lo, hi = min(prices[-201:]), max(prices[-201:])
    assert all(lo * 0.99 <= lv.price <= hi * 1.01 for lv in levels.levels)
    for lv in levels.levels:
        expected_pct = (lv.price / prices[-1] - 1) * 100
        assert math.isclose(lv.distance_pct, expected_pct, rel_tol=1e-6, abs_tol=1e-9)
        below = lv.price < prices[-1]
        assert lv.kind == (S.LEVEL_KIND_SUPPORT if below else S.LEVEL_KIND_RESISTANCE)
        assert 0 <= lv.respected <= lv.touches
        assert lv.respect_rate == (lv.respected / lv.touches if lv.touches else 0)
        assert lv.methods and lv.description
        if S.LEVEL_METHOD_SWING_PIVOT in lv.methods:
            # One tick per candle: a swing level sits at (within the merge band
            # of) a close that is a local extreme of the zig-zag.
            window = prices[-201:]
            assert min(abs(p / lv.price - 1) for p in window) < 0.01
    assert any(S.LEVEL_METHOD_SWING_PIVOT in lv.methods for lv in levels.levels)
    distances = [abs(lv.distance_pct) for lv in levels.levels]
    assert distances == sorted(distances)


async def test_published_metrics_give_the_sentiment_factor_weight(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    symbol = "LINK-USD"
    start = day_floor(now_ms()) - 8 * DAY_MS
    await publish(pricing.stub, hourly_ticks(symbol, start, walk(14.0, 150, 0.002, 9)))
    sid = signals.app.universe.sid_by_symbol[symbol]
    book = signals.app.books[H1]
    await wait_for(lambda: book.last_open_ms[sid] >= start + 149 * HOUR_MS, what="graded")

    def sentiment(signal: S.Signal) -> S.Factor:
        return next(f for f in signal.factors if f.name == "sentiment")

    before = sentiment((await signals.stub.GetSignal(S.GetSignalRequest(symbol=symbol))).signal)
    assert before.weight == 0
    assert "no sentiment data" in before.reason

    async def requests():  # type: ignore[no-untyped-def]
        yield S.PublishMetricsRequest(
            points=[
                _metric(symbol, "social_score", 90.0),
                _metric(symbol, "mention_volume", 1200.0),
            ]
        )

    response = await signals.stub.PublishMetrics(requests())
    assert response.accepted == 2 and response.rejected == 0
    await asyncio.sleep(0.25)  # past the GetSignal cache period (live_regrade_ms=100)
    after = sentiment((await signals.stub.GetSignal(S.GetSignalRequest(symbol=symbol))).signal)
    assert after.weight > 0
    assert after.score > 50
    assert "no sentiment data" not in after.reason and "90" in after.reason


async def test_list_alerts_pages_through_the_owners_alerts(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    stub = signals.stub
    made = []
    for k in range(5):
        made.append(
            (
                await stub.CreateAlert(
                    S.CreateAlertRequest(
                        symbol="BTC-USD",
                        condition=S.AlertCondition(
                            kind=Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, threshold=1_000.0 * (k + 1)
                        ),
                        name=f"a{k}",
                    ),
                    metadata=auth(ALICE),
                )
            ).alert
        )
    await stub.CreateAlert(
        S.CreateAlertRequest(
            sector="meme",
            condition=S.AlertCondition(kind=Kind.ALERT_CONDITION_KIND_DIRECTION_FLIP),
        ),
        metadata=auth(BOB),
    )
    seen: list[S.Alert] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListAlerts(
            S.ListAlertsRequest(page_size=2, page_token=token), metadata=auth(ALICE)
        )
        assert len(page.alerts) <= 2
        seen += page.alerts
        pages += 1
        token = page.next_page_token
        if not token:
            break
        # Another owner cannot continue alice's listing.
        if pages == 1:
            failure = await expect_failure(
                stub.ListAlerts(S.ListAlertsRequest(page_token=token), metadata=auth(BOB))
            )
            assert failure.code == INVALID and failure.fields == ["page_token"]
    assert pages == 3
    assert sorted(a.id for a in seen) == sorted(a.id for a in made)
    assert [a.id for a in seen] == sorted(a.id for a in seen)
    by_id = {a.id: a for a in made}
    for a in seen:
        assert a.condition == by_id[a.id].condition and a.name == by_id[a.id].name
        assert a.cooldown.seconds == 3600 and a.interval == H1
    bob = await stub.ListAlerts(S.ListAlertsRequest(), metadata=auth(BOB))
    assert [a.sector for a in bob.alerts] == ["Meme"]
    assert bob.alerts[0].condition.threshold == 0
