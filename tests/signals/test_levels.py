"""Support and resistance on hand-made series whose levels are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.signals.candles import CandleSeries
from services.signals.levels import (
    FIBONACCI,
    RESISTANCE,
    SUPPORT,
    SWING_PIVOT,
    VOLUME_ZONE,
    Candidate,
    build_response,
    fib_candidates,
    find_levels,
    merge_candidates,
    parse_levels_request,
    pivot_k,
    swing_pivots,
    touch_counts,
    volume_candidates,
)

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def series(
    close: list[float] | np.ndarray,
    high: list[float] | np.ndarray | None = None,
    low: list[float] | np.ndarray | None = None,
    volume: list[float] | np.ndarray | None = None,
    spread: float = 0.5,
) -> CandleSeries:
    c = np.asarray(close, dtype=np.float64)
    n = c.size
    return CandleSeries(
        open_ms=T0 + np.arange(n, dtype=np.int64) * HOUR,
        open=np.r_[c[:1], c[:-1]],
        high=c + spread if high is None else np.asarray(high, dtype=np.float64),
        low=c - spread if low is None else np.asarray(low, dtype=np.float64),
        close=c,
        volume=np.ones(n) if volume is None else np.asarray(volume, dtype=np.float64),
    )


def zigzag(n: int) -> np.ndarray:
    # 100, 102, ..., 110, 108, ..., 100, 102, ...: peaks at 5, 15, 25, ...;
    # troughs at 0, 10, 20, ...
    phase = np.arange(n) % 10
    return 100.0 + 2.0 * np.where(phase <= 5, phase, 10 - phase)


def test_pivot_width_scales_with_lookback() -> None:
    assert [pivot_k(n) for n in (20, 149, 150, 200, 249, 250, 5000)] == [2, 2, 3, 4, 4, 5, 5]


def test_swing_pivots_of_a_zigzag() -> None:
    c = zigzag(40)
    highs, lows = swing_pivots(c + 0.5, c - 0.5, k=2)
    # Bar 0 is a trough but has no bars before it; 39 has no bars after.
    assert highs.tolist() == [5, 15, 25, 35]
    assert lows.tolist() == [10, 20, 30]
    # With k=5 a peak needs five bars each side: 35 has only four after it.
    highs, lows = swing_pivots(c + 0.5, c - 0.5, k=5)
    assert highs.tolist() == [5, 15, 25]
    assert lows.tolist() == [10, 20, 30]


def test_flat_top_is_one_pivot_at_its_first_bar() -> None:
    high = np.array([1, 2, 3, 5, 5, 3, 2, 1], dtype=np.float64)
    highs, _ = swing_pivots(high, high - 1, k=2)
    assert highs.tolist() == [3]


def test_zigzag_levels_by_hand() -> None:
    # True range is 2.5 on every bar after the first (|high - previous close|
    # rising, |low - previous close| falling), so ATR(14) = 2.5, band 1.25.
    c = series(zigzag(40), volume=np.zeros(40))
    report = find_levels(c, lookback=40)
    assert report.band == pytest.approx(1.25)
    assert report.last_close == 102.0  # bar 39: phase 9
    # Swing: L = 99.5 (last at bar 30), H = 110.5 (last at 35): up swing,
    # retracements 110.5 - r * 11.
    fibs = [110.5 - r * 11 for r in (0.236, 0.382, 0.5, 0.618, 0.786)]
    expected = sorted([99.5, 110.5, *fibs])
    assert sorted(lv.price for lv in report.levels) == pytest.approx(expected)
    by_price = {round(lv.price, 3): lv for lv in report.levels}
    top, bottom = by_price[110.5], by_price[99.5]
    assert top.methods == (SWING_PIVOT,) and top.kind == RESISTANCE
    assert bottom.methods == (SWING_PIVOT,) and bottom.kind == SUPPORT
    # Four swing highs, the newest three named: bars 35, 25, 15.
    assert top.description == (
        "swing highs of 2026-01-02 11:00 UTC, 2026-01-02 01:00 UTC, 2026-01-01 15:00 UTC and 1 more"
    )
    # Highs within the band of 110.5 (high >= 109.25): the four peaks, each
    # coming from 108 and closing at 110, below the level.
    assert (top.touches, top.respected, top.respect_rate) == (4, 4, 1.0)
    # Lows within the band of 99.5 (low <= 100.75): troughs 10, 20, 30 (bar 0
    # has no previous close), each from 102 back to 100, above the level.
    assert (bottom.touches, bottom.respected) == (3, 3)
    assert report.nearest_support is not None and report.nearest_resistance is not None
    assert report.nearest_support.price == pytest.approx(110.5 - 0.786 * 11)  # 101.854
    assert report.nearest_support.methods == (FIBONACCI,)
    assert report.nearest_resistance.price == pytest.approx(110.5 - 0.618 * 11)  # 103.702
    assert report.nearest_support.distance_pct == pytest.approx((101.854 - 102) / 102 * 100)
    # Nearest first.
    distances = [abs(lv.price - 102.0) for lv in report.levels]
    assert distances == sorted(distances)


def test_fibonacci_of_a_down_swing() -> None:
    # High 200 at bar 3, then a fall to a low of 100 at bar 30 and a bounce:
    # the swing is down, retracements are L + r * (H - L).
    close = np.r_[np.linspace(180, 199, 4), np.linspace(195, 101, 27), np.linspace(105, 120, 10)]
    high, low = close + 1, close - 1
    high[3], low[30] = 200.0, 100.0
    cands = fib_candidates(series(close, high, low))
    assert [cd.price for cd in cands] == pytest.approx([123.6, 138.2, 150.0, 161.8, 178.6])
    assert all(cd.method == FIBONACCI for cd in cands)
    assert "100-200 swing down" in cands[0].description


def test_fibonacci_of_an_up_swing() -> None:
    close = np.r_[np.linspace(60, 41, 10), np.linspace(42, 79, 30), np.linspace(78, 70, 5)]
    high, low = close + 0.5, close - 0.5
    low[9], high[39] = 40.0, 80.0
    cands = fib_candidates(series(close, high, low))
    assert [cd.price for cd in cands] == pytest.approx([70.56, 64.72, 60.0, 55.28, 48.56])
    assert "swing up" in cands[0].description


def test_volume_spike_makes_a_zone_at_its_price() -> None:
    n = 100
    close = 100 + 20 * np.sin(np.arange(n) / 7)
    volume = np.ones(n)
    spike = 40
    volume[spike] = 1e6
    c = series(close, volume=volume)
    typical = close[spike]  # high and low are symmetric around the close
    zones = volume_candidates(c)
    assert zones[0].method == VOLUME_ZONE
    assert zones[0].price == pytest.approx(typical, rel=1e-4)
    report = find_levels(c, lookback=n)
    near = [lv for lv in report.levels if abs(lv.price - typical) <= report.band]
    assert any(VOLUME_ZONE in lv.methods for lv in near)


def test_volume_zone_is_volume_weighted_within_its_bin() -> None:
    # Range 0..24 in 24 bins of width 1: typical prices 10.2 (volume 3) and
    # 10.8 (volume 1) share bin 10 -> 10.2 * 0.75 + 10.8 * 0.25 = 10.35.
    close = np.array([0.0, 10.2, 10.8, 24.0])
    c = series(close, high=close, low=close, volume=[0.5, 3, 1, 0.5])
    zones = volume_candidates(c)
    assert zones[0].price == pytest.approx(10.35)
    assert "(80% of the volume)" in zones[0].description


def test_respect_counting_by_hand() -> None:
    # Level 100, band 0.5 (within band: low - 0.5 <= 100 <= high + 0.5).
    close = [105, 101, 99, 103, 100.2, 97, 96, 99.9, 104, 100.0, 102]
    high = [106, 102, 101, 104, 101, 100.4, 99.4, 100.2, 105, 101, 103]
    low = [104, 100.3, 98, 99, 99.8, 96, 95, 96, 99, 99, 101]
    # bar 1: low 100.3 - 0.5 <= 100 touch; from 105 to 101: respected
    # bar 2: 98..101 touch; from 101 to 99: broke through
    # bar 3: 99..104 touch; from 99 to 103: broke through
    # bar 4: touch; from 103 to 100.2: respected
    # bar 5: high 100.4 touch; from 100.2 to 97: broke through
    # bar 6: high 99.4 + 0.5 < 100: no touch
    # bar 7: touch; from 96 to 99.9: respected (stayed below)
    # bar 8: touch; from 99.9 to 104: broke through
    # bar 9: touch; from 104 to exactly 100: not strictly above: broke
    # bar 10: low 101 - 0.5 > 100: no touch
    c = series(close, high, low)
    touches, respected = touch_counts(c, np.array([100.0]), 0.5)
    assert touches.tolist() == [8]
    assert respected.tolist() == [3]
    # Band 1.5: bar 6 now touches (99.4 + 1.5 >= 100; 97 -> 96, respected);
    # bar 10 reaches too but comes from a close exactly at the level: no side,
    # never counted.
    touches, respected = touch_counts(c, np.array([100.0]), 1.5)
    assert touches.tolist() == [9]
    assert respected.tolist() == [4]


def test_merge_keeps_every_method_and_averages() -> None:
    cands = [
        Candidate(100.0, SWING_PIVOT, "2026-01-01", "swing low"),
        Candidate(100.8, FIBONACCI, "61.8% retracement"),
        Candidate(101.2, VOLUME_ZONE, "zone"),  # 1.2 from the group's first: out
        Candidate(100.4, SWING_PIVOT, "2026-01-03", "swing low"),
    ]
    merged = merge_candidates(cands, band=1.0)
    assert len(merged) == 2
    price, methods, words = merged[0]
    assert price == pytest.approx((100.0 + 100.4 + 100.8) / 3)
    assert methods == (SWING_PIVOT, FIBONACCI)
    assert words == "swing lows of 2026-01-03 and 2026-01-01, 61.8% retracement"
    assert merged[1] == (101.2, (VOLUME_ZONE,), "zone")


def test_describe_single_pivot() -> None:
    merged = merge_candidates(
        [Candidate(5.0, SWING_PIVOT, "2026-01-01 05:00 UTC", "swing high")], 1
    )
    assert merged == [(5.0, (SWING_PIVOT,), "swing high of 2026-01-01 05:00 UTC")]


def test_flat_series_has_no_levels() -> None:
    c = series(np.full(50, 100.0), spread=0.0)
    report = find_levels(c, lookback=50)
    assert report.levels == []
    assert report.nearest_support is None and report.nearest_resistance is None
    response = build_response("BTC-USD", common_pb2.INTERVAL_1H, report)
    assert response.last_close == 100.0
    assert not response.HasField("nearest_support")
    assert not response.HasField("nearest_resistance")


def test_too_short_series() -> None:
    with pytest.raises(FailedPrecondition, match="at least 5"):
        find_levels(series([1.0, 2.0, 3.0, 2.0]), lookback=200)
    report = find_levels(series([1.0, 2.0, 3.0, 2.0, 1.0]), lookback=200)
    assert report.last_close == 1.0


def test_only_the_lookback_window_counts() -> None:
    # A swing high at 500 long before the window must not show up.
    close = np.r_[np.full(5, 100.0), [500.0], np.full(5, 100.0), zigzag(40)]
    report = find_levels(series(close), lookback=40)
    assert max(lv.price for lv in report.levels) == pytest.approx(110.5)


def test_build_response() -> None:
    report = find_levels(series(zigzag(40), volume=np.zeros(40)), lookback=40)
    response = build_response("ETH-USD", common_pb2.INTERVAL_4H, report)
    assert response.symbol == "ETH-USD"
    assert response.interval == common_pb2.INTERVAL_4H
    assert len(response.levels) == len(report.levels)
    assert response.nearest_support.price == pytest.approx(101.854)
    assert response.nearest_support.kind == signals_pb2.LEVEL_KIND_SUPPORT
    assert list(response.nearest_support.methods) == [signals_pb2.LEVEL_METHOD_FIBONACCI]
    assert response.nearest_resistance.kind == signals_pb2.LEVEL_KIND_RESISTANCE
    assert response.levels[0].price == response.nearest_support.price


def test_request_validation() -> None:
    req = signals_pb2.GetSupportResistanceRequest
    q = parse_levels_request(req(symbol="btc-usd"))
    assert (q.symbol, q.interval, q.lookback) == ("BTC-USD", common_pb2.INTERVAL_1H, 200)
    assert parse_levels_request(req(symbol="BTC-USD", lookback=20)).lookback == 20
    assert parse_levels_request(req(symbol="BTC-USD", lookback=5000)).lookback == 5000
    for bad in (19, 5001, -1):
        with pytest.raises(InvalidArgument) as err:
            parse_levels_request(req(symbol="BTC-USD", lookback=bad))
        assert err.value.violations[0][0] == "lookback"
    with pytest.raises(InvalidArgument) as err:
        parse_levels_request(req(symbol="BTC-USD", interval=99))
    assert err.value.violations[0][0] == "interval"
    with pytest.raises(InvalidArgument) as err:
        parse_levels_request(req(symbol=""))
    assert err.value.violations[0][0] == "symbol"
    with pytest.raises(NotFound):
        parse_levels_request(req(symbol="NOPE-USD"), {"BTC-USD": 0})
    assert parse_levels_request(req(symbol="BTC-USD"), {"BTC-USD": 0}).symbol == "BTC-USD"
