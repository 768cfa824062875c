"""Oscillator and volume kernels (STOCH, STOCHF, WILLR, CCI, AROON, MFI, OBV)
against TA-Lib, plus the NaN policy, edge lengths, incremental states and
parameter errors."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import talib
from talib import abstract

import core_rs
from core_rs import incremental
from tests.core_rs.indicator_data import (
    EXTREME,
    SCALES,
    assert_close,
    flat,
    ohlcv,
    per_segment,
)


@dataclass(frozen=True)
class Kernel:
    name: str
    inputs: tuple[str, ...]
    n_out: int
    # Non-default parameters, as keywords.
    other: dict[str, int] = field(default_factory=dict)
    # Bad parameter values: (keyword, value).
    bad: tuple[tuple[str, Any], ...] = ()

    @property
    def ours(self) -> Callable[..., Any]:
        return getattr(core_rs, self.name)

    @property
    def theirs(self) -> Callable[..., Any]:
        return getattr(talib, self.name.upper())

    def lookback(self, **kw: int) -> int:
        return int(abstract.Function(self.name.upper(), **kw).lookback)

    def args(self, bars: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [bars["close" if k == "real" else k] for k in self.inputs]


HLC = ("high", "low", "close")
KERNELS = [
    Kernel(
        "stoch",
        HLC,
        2,
        {"fastk_period": 9, "slowk_period": 4, "slowk_matype": 1, "slowd_period": 5},
        (("fastk_period", 0), ("slowk_period", 0), ("slowd_matype", 9), ("slowk_matype", -1)),
    ),
    Kernel(
        "stochf",
        HLC,
        2,
        {"fastk_period": 3, "fastd_period": 6, "fastd_matype": 1},
        (("fastk_period", 0), ("fastd_period", 100_001), ("fastd_matype", 7)),
    ),
    Kernel("willr", HLC, 1, {"timeperiod": 2}, (("timeperiod", 1),)),
    Kernel("cci", HLC, 1, {"timeperiod": 40}, (("timeperiod", 1),)),
    Kernel("aroon", ("high", "low"), 2, {"timeperiod": 3}, (("timeperiod", 1),)),
    Kernel("mfi", (*HLC, "volume"), 1, {"timeperiod": 5}, (("timeperiod", 1),)),
    Kernel("obv", ("real", "volume"), 1),
]
IDS = [k.name for k in KERNELS]


def as_tuple(x: Any) -> tuple[np.ndarray, ...]:
    return x if isinstance(x, tuple) else (x,)


def compare(k: Kernel, bars: dict[str, np.ndarray], what: str, **kw: int) -> None:
    args = k.args(bars)
    ours, theirs = as_tuple(k.ours(*args, **kw)), as_tuple(k.theirs(*args, **kw))
    assert len(ours) == len(theirs) == k.n_out
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(a, b, what=f"{k.name}[{i}] {what}")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_walks_match_talib(k: Kernel, scale: float, seed: int) -> None:
    compare(k, ohlcv(3000, seed, start=100 * scale), f"scale {scale} seed {seed}")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_other_parameters_match_talib(k: Kernel) -> None:
    bars = ohlcv(2000, 7)
    compare(k, bars, "other params", **k.other)


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_long_series_match_talib(k: Kernel) -> None:
    compare(k, ohlcv(100_000, 11), "long")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_flat_series_match_talib(k: Kernel) -> None:
    compare(k, flat(60), "flat")
    # Flat stretches inside a moving series (zero-range windows, no flow).
    bars = ohlcv(400, 3)
    for key in ("high", "low", "close", "open"):
        bars[key][100:160] = bars["close"][99]
    compare(k, bars, "flat stretch")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_ties_and_steps_match_talib(k: Kernel) -> None:
    # Few distinct price levels: many equal highs/lows (AROON's tie rule) and
    # many unchanged typical prices (MFI, OBV).
    rng = np.random.default_rng(5)
    close = np.round(rng.normal(100, 1, 500))
    bars = {
        "close": close,
        "high": close + np.round(rng.uniform(0, 2, 500)),
        "low": close - np.round(rng.uniform(0, 2, 500)),
        "volume": np.round(rng.uniform(1, 5, 500)),
    }
    compare(k, bars, "ties")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_gaps_restart_like_talib_per_segment(k: Kernel) -> None:
    bars = ohlcv(600, 4)
    args = k.args(bars)
    args[0][[50, 51, 300]] = np.nan
    args[-1][[52, 400]] = np.inf
    args[0][590:] = np.nan
    ours = as_tuple(k.ours(*args))
    want = per_segment(k.theirs, args, k.n_out)
    for a, b in zip(ours, want, strict=True):
        assert_close(a, b, what=f"{k.name} gaps")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_values_are_finite(k: Kernel, value: float) -> None:
    bars = ohlcv(300, 6, start=value)
    if value > 1:
        bars["volume"] = bars["volume"] * 1e-10  # money flow stays finite
    for out in as_tuple(k.ours(*k.args(bars))):
        lb = k.lookback()
        assert np.isnan(out[:lb]).all()
        assert np.isfinite(out[lb:]).all(), k.name


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_edge_lengths(k: Kernel) -> None:
    lb = k.lookback()
    for n in sorted({0, 1, max(lb - 1, 0), lb, lb + 1}):
        bars = ohlcv(n, 8)
        args = k.args(bars)
        ours = as_tuple(k.ours(*args))
        for out in ours:
            assert out.shape == (n,)
            assert np.isnan(out[: min(lb, n)]).all()
            assert np.isfinite(out[lb:]).all()
        if n > 0:
            theirs = as_tuple(k.theirs(*args))
            for a, b in zip(ours, theirs, strict=True):
                assert_close(a, b, what=f"{k.name} n={n}")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_incremental_equals_batch(k: Kernel) -> None:
    bars = ohlcv(200, 9)
    args = k.args(bars)
    args[0][120] = np.nan  # a gap bar restarts the state
    want = np.array([as_tuple(k.ours(*args))]).reshape(k.n_out, -1)
    cls = getattr(incremental, incremental.class_name(k.name))
    state = cls()
    got = []
    for i in range(len(args[0])):
        bar = [float(x[i]) for x in args]
        before = state.to_bytes()
        peeked = as_tuple(state.peek(*bar))
        assert state.to_bytes() == before, "peek changed the state"
        if i == 80:
            state = pickle.loads(pickle.dumps(state))
        out = as_tuple(state.update(*bar))
        np.testing.assert_array_equal(np.array(peeked), np.array(out))
        got.append(out)
    got_arr = np.array(got).T
    for j in range(k.n_out):
        assert_close(got_arr[j], want[j], rel=1e-12, what=f"{k.name} incremental")


@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_incremental_non_default_parameters(k: Kernel) -> None:
    bars = ohlcv(120, 10)
    args = k.args(bars)
    want = np.array([as_tuple(k.ours(*args, **k.other))]).reshape(k.n_out, -1)
    state = getattr(incremental, incremental.class_name(k.name))(**k.other)
    got = np.array([as_tuple(state.update(*[float(x[i]) for x in args])) for i in range(120)]).T
    for j in range(k.n_out):
        assert_close(got[j], want[j], rel=1e-12, what=f"{k.name} incremental params")


@pytest.mark.parametrize(
    ("k", "param", "value"),
    [(k, p, v) for k in KERNELS for p, v in k.bad],
    ids=[f"{k.name}-{p}={v}" for k in KERNELS for p, v in k.bad],
)
def test_bad_parameters_name_the_parameter(k: Kernel, param: str, value: Any) -> None:
    args = k.args(ohlcv(50, 1))
    with pytest.raises(ValueError, match=param):
        k.ours(*args, **{param: value})


def test_period_minimums_match_talib() -> None:
    bars = ohlcv(50, 2)
    hi, lo, c = bars["high"], bars["low"], bars["close"]
    # TA-Lib accepts 1 for the stochastic periods, 2 for the others.
    compare(KERNELS[0], bars, "period 1", fastk_period=1, slowk_period=1, slowd_period=1)
    compare(KERNELS[1], bars, "period 1", fastk_period=1, fastd_period=1)
    for name in ("willr", "cci"):
        with pytest.raises(ValueError, match="timeperiod"):
            getattr(core_rs, name)(hi, lo, c, timeperiod=1)
        with pytest.raises(Exception, match="Bad Parameter"):
            getattr(talib, name.upper())(hi, lo, c, timeperiod=1)


@pytest.mark.parametrize("matype", range(7))
def test_stoch_matypes(matype: int) -> None:
    """TA-Lib's matype 0..6."""
    bars = ohlcv(1500, 12)
    hi, lo, c = bars["high"], bars["low"], bars["close"]
    cases = [
        (core_rs.stoch, talib.STOCH, {"slowk_matype": matype, "slowd_matype": matype}),
        (core_rs.stoch, talib.STOCH, {"slowk_matype": matype, "slowk_period": 5}),
        (core_rs.stochf, talib.STOCHF, {"fastd_matype": matype, "fastd_period": 4}),
    ]
    for ours_fn, theirs_fn, kw in cases:
        ours = ours_fn(hi, lo, c, **kw)
        theirs = theirs_fn(hi, lo, c, **kw)
        for a, b in zip(ours, theirs, strict=True):
            assert_close(a, b, what=f"matype {matype} {kw}")


def test_mfi_small_quotes_are_not_zeroed() -> None:
    # TA-Lib 0.8.1 no longer zeroes MFI when the money flow sums are < 1.
    bars = ohlcv(300, 13, start=1e-7)
    bars["volume"] = np.full(300, 1e-3)
    ours = core_rs.mfi(bars["high"], bars["low"], bars["close"], bars["volume"])
    assert np.nanmax(ours) > 0
    compare(KERNELS[5], bars, "small quotes")


def test_willr_clamps_a_close_outside_its_bar() -> None:
    hi, lo, c = np.array([2.0, 2.0, 2.0]), np.array([1.0, 1.0, 1.0]), np.array([1.5, 1.5, 3.0])
    assert_close(core_rs.willr(hi, lo, c, timeperiod=2), talib.WILLR(hi, lo, c, timeperiod=2))
    k = core_rs.stochf(hi, lo, c, fastk_period=2, fastd_period=1)
    assert_close(k[0], talib.STOCHF(hi, lo, c, fastk_period=2, fastd_period=1)[0])
