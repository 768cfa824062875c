"""Momentum kernels (RSI, MACD, MOM, ROC, STOCHRSI) against TA-Lib, the NaN
policy, edge lengths, and the incremental states against the batch."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib

import core_rs
from core_rs import incremental
from tests.core_rs.indicator_data import EXTREME, SCALES, assert_close, flat, ohlcv, per_segment

# name -> (ours, talib's, default params, non-default params, outputs, lookback(params))
CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict, dict, int, Callable]] = {
    "rsi": (
        core_rs.rsi,
        talib.RSI,
        {"timeperiod": 14},
        {"timeperiod": 5},
        1,
        lambda p: p["timeperiod"],
    ),
    "macd": (
        core_rs.macd,
        talib.MACD,
        {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
        {"fastperiod": 5, "slowperiod": 13, "signalperiod": 4},
        3,
        lambda p: max(p["fastperiod"], p["slowperiod"]) + p["signalperiod"] - 2,
    ),
    "mom": (
        core_rs.mom,
        talib.MOM,
        {"timeperiod": 10},
        {"timeperiod": 3},
        1,
        lambda p: p["timeperiod"],
    ),
    "roc": (
        core_rs.roc,
        talib.ROC,
        {"timeperiod": 10},
        {"timeperiod": 1},
        1,
        lambda p: p["timeperiod"],
    ),
    "stochrsi": (
        core_rs.stochrsi,
        talib.STOCHRSI,
        {"timeperiod": 14, "fastk_period": 5, "fastd_period": 3, "fastd_matype": 0},
        {"timeperiod": 9, "fastk_period": 40, "fastd_period": 4, "fastd_matype": 1},
        2,
        lambda p: p["timeperiod"] + p["fastk_period"] - 1 + p["fastd_period"] - 1,
    ),
}
NAMES = list(CASES)


def outputs(res: Any) -> list[np.ndarray]:
    return list(res) if isinstance(res, tuple) else [res]


def compare(name: str, x: np.ndarray, params: dict, what: str = "") -> None:
    ours, theirs, *_ = CASES[name]
    for k, (a, b) in enumerate(
        zip(outputs(ours(x, **params)), outputs(theirs(x, **params)), strict=True)
    ):
        assert_close(a, b, what=f"{name}[{k}] {what}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", SCALES)
def test_matches_talib_on_random_walks(name: str, seed: int, scale: float) -> None:
    x = ohlcv(3000, seed)["close"] * scale / 100.0
    compare(name, x, CASES[name][2], f"seed {seed} scale {scale}")


@pytest.mark.parametrize("name", NAMES)
def test_matches_talib_with_other_params(name: str) -> None:
    x = ohlcv(2000, 7)["close"]
    compare(name, x, CASES[name][3], "non-default")


def test_long_series_stays_within_tolerance() -> None:
    # Reordered arithmetic (RSI in pairs, MACD's (1 - k) form) must not drift.
    x = ohlcv(1_000_000, 3, vol=0.01)["close"]
    for name in ("rsi", "macd", "stochrsi"):
        compare(name, x, CASES[name][2], "1e6 points")


@pytest.mark.parametrize(
    "params",
    [
        {"fastperiod": 26, "slowperiod": 12, "signalperiod": 9},  # swapped, as TA-Lib
        {"fastperiod": 10, "slowperiod": 10, "signalperiod": 1},
        {"fastperiod": 2, "slowperiod": 3, "signalperiod": 2},
    ],
)
def test_macd_period_rules(params: dict) -> None:
    compare("macd", ohlcv(500, 4)["close"], params, str(params))


def test_macd_swap_equals_unswapped() -> None:
    x = ohlcv(400, 5)["close"]
    for a, b in zip(core_rs.macd(x, 26, 12, 9), core_rs.macd(x, 12, 26, 9), strict=True):
        assert_close(a, b, rel=0.0)


@pytest.mark.parametrize("matype", range(7))
def test_stochrsi_every_matype(matype: int) -> None:
    x = ohlcv(1500, 6)["close"]
    params = {"timeperiod": 14, "fastk_period": 5, "fastd_period": 3, "fastd_matype": matype}
    compare("stochrsi", x, params, f"matype {matype}")
    compare("stochrsi", x, {**params, "fastk_period": 14, "fastd_period": 1}, "fastd 1")


@pytest.mark.parametrize("name", NAMES)
def test_flat_series(name: str) -> None:
    # RSI and STOCHRSI are 0 on a flat series (TA-Lib's convention), MOM and
    # ROC 0, MACD 0.
    x = flat(200)["close"]
    compare(name, x, CASES[name][2], "flat")
    compare(name, np.concatenate([x, ohlcv(100, 1)["close"]]), CASES[name][2], "flat then moving")


def test_roc_zero_divisor_is_zero() -> None:
    x = np.array([0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0])
    assert_close(core_rs.roc(x, 1), talib.ROC(x, 1))
    assert_close(core_rs.roc(x, 2), talib.ROC(x, 2))


@pytest.mark.parametrize("name", NAMES)
def test_gaps_restart_each_segment(name: str) -> None:
    ours, theirs, defaults, _, n_out, _ = CASES[name]
    x = ohlcv(600, 8)["close"]
    x[[5, 150, 151, 300, 599]] = [np.nan, np.nan, np.inf, -np.inf, np.nan]
    want = per_segment(lambda v: theirs(v, **defaults), [x], n_out)
    for k, (a, b) in enumerate(zip(outputs(ours(x, **defaults)), want, strict=True)):
        assert_close(a, b, what=f"{name}[{k}] gaps")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_values(name: str, value: float) -> None:
    ours, _, defaults, _, _, lookback = CASES[name]
    x = value * (1.0 + 0.01 * np.sin(np.arange(300.0)))
    for out in outputs(ours(x, **defaults)):
        lb = lookback(defaults)
        assert np.all(np.isnan(out[:lb]))
        assert np.all(np.isfinite(out[lb:])), name


@pytest.mark.parametrize("name", NAMES)
def test_edge_lengths(name: str) -> None:
    ours, theirs, defaults, _, n_out, lookback = CASES[name]
    lb = lookback(defaults)
    full = ohlcv(lb + 5, 9)["close"]
    for n in sorted({0, 1, lb - 1, lb, lb + 1}):
        x = full[:n]
        got = outputs(ours(x, **defaults))
        assert len(got) == n_out
        for out in got:
            assert out.shape == (n,)
            assert np.all(np.isnan(out[: min(n, lb)]))
            if n > lb:
                assert np.isfinite(out[lb])
        if n > 0:
            for a, b in zip(got, outputs(theirs(x, **defaults)), strict=True):
                assert_close(a, b, what=f"{name} n={n}")


def stream(ind: Any, x: np.ndarray) -> np.ndarray:
    rows = []
    for v in x:
        rows.append(np.atleast_1d(np.asarray(ind.update(v), dtype=np.float64)))
    return np.array(rows).T


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", [2, 3])
def test_incremental_equals_batch(name: str, which: int) -> None:
    ours, _, *rest = CASES[name]
    params = rest[which - 2]
    cls = getattr(incremental, incremental.class_name(name))
    x = ohlcv(400, 11)["close"]
    x[200] = np.nan
    batch = outputs(ours(x, **params))
    ind = cls(**params)
    half = len(x) // 2 + 17
    got_rows = []
    for i, v in enumerate(x):
        if i == half:
            # pickle round-trip mid-series, after a peek that must not change state
            before = ind.peek(v)
            ind = pickle.loads(pickle.dumps(ind))
            assert_close(np.atleast_1d(before), np.atleast_1d(ind.peek(v)), rel=0.0)
        peeked = ind.peek(v)
        value = ind.update(v)
        assert_close(np.atleast_1d(peeked), np.atleast_1d(value), rel=0.0, what="peek")
        got_rows.append(np.atleast_1d(np.asarray(value, dtype=np.float64)))
    got = np.array(got_rows).T
    for k, b in enumerate(batch):
        assert_close(got[k], b, rel=1e-12, what=f"{name}[{k}] incremental")


@pytest.mark.parametrize(
    ("fn", "kwargs", "param"),
    [
        (core_rs.rsi, {"timeperiod": 1}, "timeperiod"),
        (core_rs.rsi, {"timeperiod": 0}, "timeperiod"),
        (core_rs.macd, {"fastperiod": 1}, "fastperiod"),
        (core_rs.macd, {"slowperiod": 1}, "slowperiod"),
        (core_rs.macd, {"signalperiod": 0}, "signalperiod"),
        (core_rs.mom, {"timeperiod": 0}, "timeperiod"),
        (core_rs.roc, {"timeperiod": -1}, "timeperiod"),
        (core_rs.roc, {"timeperiod": 2.5}, "timeperiod"),
        (core_rs.stochrsi, {"timeperiod": 1}, "timeperiod"),
        (core_rs.stochrsi, {"fastk_period": 0}, "fastk_period"),
        (core_rs.stochrsi, {"fastd_period": 0}, "fastd_period"),
        (core_rs.stochrsi, {"fastd_matype": 9}, "fastd_matype"),
        (core_rs.stochrsi, {"fastd_matype": -1}, "fastd_matype"),
    ],
)
def test_bad_parameters_name_the_parameter(
    fn: Callable[..., Any], kwargs: dict, param: str
) -> None:
    with pytest.raises(ValueError, match=param):
        fn(np.arange(50.0), **kwargs)


def test_signatures_match_talib_defaults() -> None:
    for name, (ours, _, defaults, *_) in CASES.items():
        sig = inspect.signature(ours)
        got = {
            k: p.default
            for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        assert got == defaults, name
        assert name in core_rs.__all__
