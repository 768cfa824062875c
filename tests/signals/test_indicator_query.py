"""ComputeIndicators specs: validation naming fields, every kernel, warm-up trimming."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import talib

import core_rs
from core_rs._kernels import KERNELS
from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import InvalidArgument, NotFound
from services.signals.candles import CandleSeries
from services.signals.indicator_query import (
    MAX_SPECS,
    build_response,
    compute,
    parse_indicator_request,
    parse_specs,
    warmup_bars,
)

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def random_walk(n: int, seed: int = 7) -> CandleSeries:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    return CandleSeries(
        open_ms=T0 + np.arange(n, dtype=np.int64) * HOUR,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=rng.lognormal(3, 1, n),
    )


def request(*specs: tuple[str, dict[str, float]]) -> signals_pb2.ComputeIndicatorsRequest:
    return signals_pb2.ComputeIndicatorsRequest(
        symbol="BTC-USD",
        indicators=[signals_pb2.IndicatorSpec(name=n, params=p) for n, p in specs],
    )


def violation(specs: tuple[tuple[str, dict[str, float]], ...]) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as err:
        parse_specs(request(*specs))
    return err.value.violations[0]


def direct(name: str, c: CandleSeries) -> tuple[np.ndarray, ...]:
    """The kernel through core_rs's public function, inputs by TA-Lib's names."""
    fields = {
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "volume": c.volume,
        "real": c.close,
        "timestamp": c.open_ms,
    }
    out = getattr(core_rs, name)(*(fields[i] for i in KERNELS[name]["inputs"]))
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_with_defaults_equals_core_rs(name: str) -> None:
    c = random_walk(400)
    specs = parse_specs(request((name, {})))
    series = compute(specs, c, 0)
    expected = direct(name, c)
    outputs = KERNELS[name]["outputs"]
    assert len(series) == len(outputs) == len(expected)
    for s, out, want in zip(series, outputs, expected, strict=True):
        assert s.name == (name if len(outputs) == 1 else f"{name}.{out}")
        assert s.spec_index == 0
        np.testing.assert_array_equal(np.array(s.values), want)


def test_talib_agreement() -> None:
    c = random_walk(500)
    specs = parse_specs(
        request(
            ("rsi", {"timeperiod": 10}),
            ("MACD", {}),
            ("bbands", {"timeperiod": 15, "nbdevup": 1.5}),
        )
    )
    got = {s.name: np.array(s.values) for s in compute(specs, c, 0)}
    assert sorted(got) == [
        "bbands.lowerband",
        "bbands.middleband",
        "bbands.upperband",
        "macd.macd",
        "macd.macdhist",
        "macd.macdsignal",
        "rsi",
    ]
    np.testing.assert_allclose(got["rsi"], talib.RSI(c.close, 10), rtol=1e-9, equal_nan=True)
    macd, signal, hist = talib.MACD(c.close, 12, 26, 9)
    np.testing.assert_allclose(got["macd.macd"], macd, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["macd.macdsignal"], signal, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["macd.macdhist"], hist, rtol=1e-9, atol=1e-12, equal_nan=True)
    up, mid, low = talib.BBANDS(c.close, 15, 1.5, 2.0, 0)
    np.testing.assert_allclose(got["bbands.upperband"], up, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["bbands.middleband"], mid, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["bbands.lowerband"], low, rtol=1e-9, equal_nan=True)


def test_params_bound_with_defaults() -> None:
    (spec,) = parse_specs(request(("macd", {"fastperiod": 5})))
    assert spec.params == {"fastperiod": 5.0, "slowperiod": 26.0, "signalperiod": 9.0}
    assert spec.ordered_params == [5.0, 26.0, 9.0]


def test_unknown_name_names_its_index() -> None:
    field, reason = violation((("rsi", {}), ("sma", {}), ("foo", {})))
    assert field == "indicators[2].name"
    assert "unknown indicator 'foo'" in reason
    assert "rsi" in reason and "macd" in reason  # lists the known ones
    field, reason = violation((("", {}),))
    assert field == "indicators[0].name"
    assert "required" in reason


def test_unknown_param() -> None:
    field, reason = violation((("rsi", {"foo": 3}),))
    assert field == "indicators[0].params.foo"
    assert "timeperiod" in reason
    field, _ = violation((("obv", {"timeperiod": 3}),))
    assert field == "indicators[0].params.timeperiod"


@pytest.mark.parametrize("value", [1.0, 100_001.0, 14.5, math.nan, math.inf, -math.inf])
def test_bad_period(value: float) -> None:
    field, reason = violation((("sma", {}), ("rsi", {"timeperiod": value})))
    assert field == "indicators[1].params.timeperiod"
    assert "an integer from 2 to 100000" in reason


def test_bad_float_param() -> None:
    field, reason = violation((("historical_var", {"confidence": 1.5}),))
    assert field == "indicators[0].params.confidence"
    assert "a number from 0 to 1" in reason


def test_every_violation_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_specs(request(("nope", {}), ("rsi", {"timeperiod": 0, "x": 1})))
    fields = [f for f, _ in err.value.violations]
    assert fields == [
        "indicators[0].name",
        "indicators[1].params.timeperiod",
        "indicators[1].params.x",
    ]


def test_spec_count() -> None:
    field, _ = violation(())
    assert field == "indicators"
    field, reason = violation(tuple(("sma", {}) for _ in range(MAX_SPECS + 1)))
    assert field == "indicators"
    assert "at most 20" in reason
    assert len(parse_specs(request(*(("sma", {}) for _ in range(MAX_SPECS))))) == MAX_SPECS


def test_core_rs_error_becomes_invalid_argument_naming_the_spec() -> None:
    c = random_walk(50)
    # CandleSeries refuses ragged columns, so a stand-in carries one to core_rs.
    broken = SimpleNamespace(**{**vars(c), "high": c.high[:-1]})
    specs = parse_specs(request(("rsi", {}), ("atr", {})))
    with pytest.raises(InvalidArgument) as err:
        compute(specs, broken, 0)
    assert err.value.violations[0][0] == "indicators[1]"


def test_warmup_bars_is_the_longest_lookback() -> None:
    # TA-Lib's lookbacks: RSI(14) 14, MACD(12, 26, 9) 25 + 8 = 33, SMA(50) 49.
    assert warmup_bars(parse_specs(request(("rsi", {}), ("macd", {})))) == 33
    assert warmup_bars(parse_specs(request(("rsi", {}), ("sma", {"timeperiod": 50})))) == 49
    assert warmup_bars([]) == 0


def test_ichimoku_warmup_counts_the_shifted_cloud() -> None:
    # senkou_b: senkou_b_period - 1 + displacement leading NaNs (52 - 1 + 26).
    assert warmup_bars(parse_specs(request(("ichimoku", {})))) == 77
    params = {"senkou_b_period": 10, "kijun_period": 30, "displacement": 5}
    assert warmup_bars(parse_specs(request(("ichimoku", params)))) == 34


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_warmup_is_enough_for_every_kernel(name: str) -> None:
    c = random_walk(400, seed=11)
    specs = parse_specs(request((name, {})))
    first = warmup_bars(specs)
    for s in compute(specs, c, first):
        values = np.array(s.values)
        if s.name == "ichimoku.chikou":
            # A later close: NaN for the last `displacement` bars, by design.
            values = values[:-26]
        assert not np.isnan(values).any(), s.name


def test_sma_trimmed_by_hand() -> None:
    close = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    c = CandleSeries(
        T0 + np.arange(6, dtype=np.int64) * HOUR, close, close, close, close, np.ones(6)
    )
    specs = parse_specs(request(("sma", {"timeperiod": 3})))
    assert warmup_bars(specs) == 2
    (s,) = compute(specs, c, 2)
    assert s.values == pytest.approx([7 / 3, 14 / 3, 28 / 3, 56 / 3])


def test_warm_values_from_first_index() -> None:
    c = random_walk(300)
    specs = parse_specs(request(("rsi", {}), ("macd", {}), ("bbands", {"timeperiod": 30})))
    first = warmup_bars(specs)
    trimmed = compute(specs, c, first)
    full = compute(specs, c, 0)
    for t, f in zip(trimmed, full, strict=True):
        assert len(t.values) == 300 - first
        assert not np.isnan(t.values).any()
        assert list(t.values) == list(f.values)[first:]
    # Without that history the first values are warm-up NaN.
    assert math.isnan(full[1].values[0])


def test_build_response() -> None:
    c = random_walk(60)
    specs = parse_specs(
        request(
            ("rsi", {}),
        )
    )
    response = build_response("BTC-USD", common_pb2.INTERVAL_1H, specs, c, 14)
    assert response.symbol == "BTC-USD"
    assert len(response.open_times) == 46 == len(response.series[0].values)
    assert response.open_times[0].seconds * 1000 == T0 + 14 * HOUR
    assert not math.isnan(response.series[0].values[0])


def test_whole_request() -> None:
    req = request(("rsi", {}))
    q = parse_indicator_request(req)
    assert (q.symbol, q.interval) == ("BTC-USD", common_pb2.INTERVAL_1H)
    assert q.start_ms is None and q.end_ms is None
    assert [s.name for s in q.specs] == ["rsi"]
    req.start_time.FromMilliseconds(T0)
    req.end_time.FromMilliseconds(T0 + HOUR)
    req.interval = common_pb2.INTERVAL_1D
    q = parse_indicator_request(req, {"BTC-USD": 0})
    assert (q.interval, q.start_ms, q.end_ms) == (common_pb2.INTERVAL_1D, T0, T0 + HOUR)
    with pytest.raises(NotFound):
        parse_indicator_request(req, {"ETH-USD": 0})
    req.end_time.FromMilliseconds(T0)
    with pytest.raises(InvalidArgument) as err:
        parse_indicator_request(req)
    assert err.value.violations[0][0] == "start_time"
    req.ClearField("end_time")
    req.interval = 42
    with pytest.raises(InvalidArgument) as err:
        parse_indicator_request(req)
    assert err.value.violations[0][0] == "interval"
    req.interval = 0
    req.symbol = "nonsense"
    with pytest.raises(InvalidArgument) as err:
        parse_indicator_request(req)
    assert err.value.violations[0][0] == "symbol"
