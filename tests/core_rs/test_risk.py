"""Risk kernels (core_rs._risk) against independent numpy/pandas references.

There is no TA-Lib counterpart: each reference below computes the statistic
directly from its definition, window by window (two-pass moments, sorted
quantiles, brute-force drawdowns).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import core_rs
from core_rs import incremental
from tests.core_rs.indicator_data import (
    EXTREME,
    SCALES,
    Array,
    assert_close,
    flat,
    ohlcv,
    per_segment,
)

SEEDS = (0, 1, 2)
N = 1500


# --- references -------------------------------------------------------------


def _returns(x: Array) -> Array:
    return np.log(x[1:] / x[:-1])


def _over_return_windows(x: Array, p: int, fn: Callable[[Array], Array]) -> Array:
    """``fn`` over every window of ``p`` log returns (one row each), placed
    at the window's last price; NaN before."""
    out = np.full(len(x), np.nan)
    r = _returns(x) if len(x) > 1 else np.empty(0)
    if len(r) >= p:
        out[p:] = fn(sliding_window_view(r, p))
    return out


def ref_log_returns(x: Array) -> Array:
    out = np.full(len(x), np.nan)
    out[1:] = _returns(x)
    return out


def ref_volatility(x: Array, timeperiod: int = 30, periods_per_year: float = 365.0) -> Array:
    out = np.full(len(x), np.nan)
    if len(x) > 1:
        std = pd.Series(_returns(x)).rolling(timeperiod).std(ddof=1).to_numpy()
        out[1:] = std * np.sqrt(periods_per_year)
    return out


def ref_volatility_two_pass(x: Array, timeperiod: int, periods_per_year: float) -> Array:
    return _over_return_windows(
        x, timeperiod, lambda w: w.std(axis=1, ddof=1) * np.sqrt(periods_per_year)
    )


def ref_sharpe(
    x: Array, timeperiod: int = 30, risk_free: float = 0.0, periods_per_year: float = 365.0
) -> Array:
    rf = risk_free / periods_per_year

    def fn(w: Array) -> Array:
        std = w.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (w.mean(axis=1) - rf) / std * np.sqrt(periods_per_year)
        return np.where(std > 0, s, np.nan)

    return _over_return_windows(x, timeperiod, fn)


def ref_sortino(
    x: Array, timeperiod: int = 30, risk_free: float = 0.0, periods_per_year: float = 365.0
) -> Array:
    rf = risk_free / periods_per_year

    def fn(w: Array) -> Array:
        dd = np.sqrt(np.mean(np.minimum(w - rf, 0.0) ** 2, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (w.mean(axis=1) - rf) / dd * np.sqrt(periods_per_year)
        return np.where(dd > 0, s, np.nan)

    return _over_return_windows(x, timeperiod, fn)


def ref_max_drawdown(x: Array, timeperiod: int = 30) -> Array:
    out = np.full(len(x), np.nan)
    if len(x) >= timeperiod:
        w = sliding_window_view(x, timeperiod)
        peak = np.maximum.accumulate(w, axis=1)
        out[timeperiod - 1 :] = np.max((peak - w) / peak, axis=1)
    return out


def ref_historical_var(x: Array, timeperiod: int = 100, confidence: float = 0.95) -> Array:
    return _over_return_windows(x, timeperiod, lambda w: -np.quantile(w, 1 - confidence, axis=1))


def ref_historical_cvar(x: Array, timeperiod: int = 100, confidence: float = 0.95) -> Array:
    def fn(w: Array) -> Array:
        q = np.quantile(w, 1 - confidence, axis=1)
        return np.array([-row[row <= v].mean() for row, v in zip(w, q, strict=True)])

    return _over_return_windows(x, timeperiod, fn)


# name -> (reference, default params, non-default params, lookback at defaults)
KERNELS: dict[str, tuple[Callable[..., Array], dict[str, Any], dict[str, Any], int]] = {
    "log_returns": (ref_log_returns, {}, {}, 1),
    "volatility": (ref_volatility, {}, {"timeperiod": 7, "periods_per_year": 252.0}, 30),
    "sharpe": (
        ref_sharpe,
        {},
        {"timeperiod": 12, "risk_free": 0.05, "periods_per_year": 8760.0},
        30,
    ),
    "sortino": (
        ref_sortino,
        {},
        {"timeperiod": 12, "risk_free": 0.05, "periods_per_year": 8760.0},
        30,
    ),
    "max_drawdown": (ref_max_drawdown, {}, {"timeperiod": 2}, 29),
    "historical_var": (ref_historical_var, {}, {"timeperiod": 37, "confidence": 0.99}, 100),
    "historical_cvar": (ref_historical_cvar, {}, {"timeperiod": 37, "confidence": 0.8}, 100),
}
NAMES = list(KERNELS)


def ours(name: str) -> Callable[..., Array]:
    return getattr(core_rs, name)


# --- against the references ---------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_matches_reference_on_random_walks(name: str, seed: int, scale: float) -> None:
    ref, _, _, _ = KERNELS[name]
    x = ohlcv(N, seed, start=100.0 * scale)["close"]
    assert_close(ours(name)(x), ref(x), what=f"{name} seed {seed} scale {scale}")


@pytest.mark.parametrize("name", NAMES)
def test_non_default_params(name: str) -> None:
    ref, _, params, _ = KERNELS[name]
    x = ohlcv(N, 5, vol=0.05)["close"]
    assert_close(ours(name)(x, **params), ref(x, **params), what=name)


@pytest.mark.parametrize("name", ["sharpe", "sortino"])
def test_risk_free_shifts_the_threshold(name: str) -> None:
    ref, _, _, _ = KERNELS[name]
    x = ohlcv(N, 6)["close"]
    for rf in (-0.5, 0.02, 3.0):
        assert_close(ours(name)(x, 20, rf, 52.0), ref(x, 20, rf, 52.0), what=f"{name} rf {rf}")


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.975, 0.99, 0.999, 0.01])
@pytest.mark.parametrize("name", ["historical_var", "historical_cvar"])
def test_var_confidences(name: str, confidence: float) -> None:
    ref, _, _, _ = KERNELS[name]
    x = ohlcv(800, 8)["close"]
    assert_close(ours(name)(x, 50, confidence), ref(x, 50, confidence), what=name)


@pytest.mark.parametrize("name", ["historical_var", "historical_cvar"])
def test_var_with_many_ties(name: str) -> None:
    # Prices on a coarse tick grid: many equal returns, the quantile often
    # falls on a tie, the sorted window replaces equal values.
    ref, _, _, _ = KERNELS[name]
    x = np.round(ohlcv(1000, 9)["close"])
    assert_close(ours(name)(x, 40, 0.9), ref(x, 40, 0.9), what=name)


def test_cvar_is_at_least_var() -> None:
    x = ohlcv(N, 10)["close"]
    var, cvar = core_rs.historical_var(x), core_rs.historical_cvar(x)
    ok = ~np.isnan(var)
    assert np.all(cvar[ok] >= var[ok])


def test_max_drawdown_long_window() -> None:
    x = ohlcv(5000, 11, vol=0.05)["close"]
    for p in (500, 1000):
        assert_close(core_rs.max_drawdown(x, p), ref_max_drawdown(x, p), what=f"p={p}")


def test_volatility_two_pass_on_long_series_with_offset() -> None:
    # 1e6 returns of 5e-4 +- 1e-6 (mean / std ~ 1e3: a running sum of
    # squares would lose ~6 digits), and prices near 1e9 moving by ~1.
    n, p = 1_000_000, 30
    rng = np.random.default_rng(12)
    trend = np.exp(np.cumsum(5e-4 + rng.uniform(-1e-6, 1e-6, n)))
    offset = 1e9 + np.cumsum(rng.normal(0.0, 1.0, n))
    for x in (trend, offset):
        got = core_rs.volatility(x, p, 1.0)
        r = _returns(x)
        rows = np.arange(0, n - p, 97)
        w = r[rows[:, None] + np.arange(p)]
        want = w.std(axis=1, ddof=1)
        assert_close(got[rows + p], want, what="two-pass")
        assert np.isnan(got[:p]).all()


# --- special series -------------------------------------------------------------


def test_flat_series() -> None:
    x = flat(300)["close"]
    assert_close(core_rs.log_returns(x)[1:], np.zeros(299))
    assert np.all(core_rs.volatility(x)[30:] == 0.0)
    assert np.all(core_rs.max_drawdown(x)[29:] == 0.0)
    assert np.all(core_rs.historical_var(x)[100:] == 0.0)
    assert np.all(core_rs.historical_cvar(x)[100:] == 0.0)
    # Undefined ratios: no deviation, no downside.
    assert np.isnan(core_rs.sharpe(x)).all()
    assert np.isnan(core_rs.sortino(x)).all()


def test_flat_window_after_moves_is_exact() -> None:
    x = np.concatenate([ohlcv(100, 13)["close"], np.full(100, 50.0)])
    vol = core_rs.volatility(x, 10)
    assert np.all(vol[111:] == 0.0)
    assert np.isnan(core_rs.sharpe(x, 10)[111:]).all()


def test_rising_prices() -> None:
    x = np.linspace(1.0, 2.0, 200)
    assert np.all(core_rs.max_drawdown(x, 10)[9:] == 0.0)
    assert np.isnan(core_rs.sortino(x, 10)).all()


@pytest.mark.parametrize("name", NAMES)
def test_gaps_restart(name: str) -> None:
    ref, _, params, _ = KERNELS[name]
    x = ohlcv(N, 14)["close"]
    x[[5, 300, 301, 302, 900]] = [np.nan, np.inf, np.nan, -np.inf, np.nan]
    want = per_segment(lambda v: ref(v, **params), [x], 1)[0]
    assert_close(ours(name)(x, **params), want, what=name)


@pytest.mark.parametrize("name", NAMES)
def test_non_positive_prices_are_gaps(name: str) -> None:
    ref, _, params, _ = KERNELS[name]
    x = ohlcv(N, 15)["close"]
    x[[40, 500, 501, 1200]] = [0.0, -1.0, 0.0, -0.0]
    as_gaps = np.where(x > 0, x, np.nan)
    want = per_segment(lambda v: ref(v, **params), [as_gaps], 1)[0]
    assert_close(ours(name)(x, **params), want, what=name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_values(name: str, value: float) -> None:
    x = ohlcv(400, 16)["close"] / 100.0 * value
    out = ours(name)(x)
    _, _, _, lb = KERNELS[name]
    assert np.isnan(out[:lb]).all()
    assert np.isfinite(out[lb:]).all()
    # Jumps between the extremes: returns of ~ +-1381, still finite.
    jumps = np.where(np.arange(400) % 3 == 0, EXTREME[0], EXTREME[1])
    assert np.isfinite(ours(name)(jumps)[lb:]).all()


@pytest.mark.parametrize("name", NAMES)
def test_edge_lengths(name: str) -> None:
    ref, _, _, lb = KERNELS[name]
    for n in sorted({0, 1, max(lb - 1, 0), lb, lb + 1}):
        x = ohlcv(n, 17)["close"]
        out = ours(name)(x)
        assert out.shape == (n,)
        assert np.isnan(out[:lb]).all()
        assert_close(out, ref(x), what=f"{name} n={n}")
        if n > lb:
            assert np.isfinite(out[lb])


# --- parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "param"),
    [
        ("volatility", {"timeperiod": 1}, "timeperiod"),
        ("volatility", {"timeperiod": 2.5}, "timeperiod"),
        ("volatility", {"periods_per_year": 0.0}, "periods_per_year"),
        ("volatility", {"periods_per_year": -1.0}, "periods_per_year"),
        ("sharpe", {"timeperiod": 0}, "timeperiod"),
        ("sharpe", {"risk_free": np.nan}, "risk_free"),
        ("sharpe", {"risk_free": -2.0}, "risk_free"),
        ("sortino", {"periods_per_year": np.inf}, "periods_per_year"),
        ("max_drawdown", {"timeperiod": 1}, "timeperiod"),
        ("max_drawdown", {"timeperiod": 100_001}, "timeperiod"),
        ("historical_var", {"confidence": 1.0}, "confidence"),
        ("historical_var", {"confidence": 0.0}, "confidence"),
        ("historical_cvar", {"confidence": 1.5}, "confidence"),
        ("historical_cvar", {"timeperiod": 1}, "timeperiod"),
    ],
)
def test_bad_parameters(name: str, kwargs: dict[str, Any], param: str) -> None:
    x = ohlcv(50, 18)["close"]
    with pytest.raises(ValueError, match=param):
        ours(name)(x, **kwargs)
    with pytest.raises(ValueError, match=param):
        getattr(incremental, incremental.class_name(name))(**kwargs)


def test_minimum_periods() -> None:
    x = ohlcv(300, 19)["close"]
    for name in ("volatility", "sharpe", "sortino", "historical_var", "historical_cvar"):
        ref, _, _, _ = KERNELS[name]
        assert_close(ours(name)(x, 2), ref(x, 2), what=name)
    assert_close(core_rs.max_drawdown(x, 2), ref_max_drawdown(x, 2))


# --- incremental ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_incremental_equals_batch(name: str) -> None:
    _, _, params, _ = KERNELS[name]
    x = ohlcv(400, 20)["close"]
    x[150] = np.nan
    x[260] = 0.0
    want = ours(name)(x, **params)
    cls = getattr(incremental, incremental.class_name(name))
    state = cls(**params)
    for i, v in enumerate(x):
        if i == 200:
            state = pickle.loads(pickle.dumps(state))
        before = state.to_bytes()
        peeked = state.peek(v)
        assert state.to_bytes() == before, "peek changed the state"
        got = state.update(v)
        assert_close(np.array([peeked]), np.array([got]), rel=0.0, what=f"{name} peek at {i}")
        assert_close(np.array([got]), want[i : i + 1], rel=1e-12, what=f"{name} at {i}")
