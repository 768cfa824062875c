"""core_rs's high/low/close kernels (TRANGE, ATR, ADX, PLUS_DI, MINUS_DI,
SAR) against TA-Lib, the NaN-gap policy, edge lengths, the incremental
classes and parameter validation."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import talib

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
class Case:
    name: str
    talib_fn: Callable[..., Any]
    inputs: tuple[str, ...]
    # non-default parameters to try, as keyword arguments
    variants: tuple[dict[str, Any], ...]
    lookback: Callable[[dict[str, Any]], int]

    def ours(self, data: dict[str, np.ndarray], **kw: Any) -> np.ndarray:
        return getattr(core_rs, self.name)(*[data[i] for i in self.inputs], **kw)

    def theirs(self, data: dict[str, np.ndarray], **kw: Any) -> np.ndarray:
        return self.talib_fn(*[data[i] for i in self.inputs], **kw)

    def defaults(self) -> dict[str, Any]:
        return incremental.__dict__[incremental.class_name(self.name)]().kwargs


HLC = ("high", "low", "close")
CASES = [
    Case("trange", talib.TRANGE, HLC, ({},), lambda p: 1),
    Case(
        "atr",
        talib.ATR,
        HLC,
        ({"timeperiod": 1}, {"timeperiod": 2}, {"timeperiod": 30}),
        lambda p: p["timeperiod"],
    ),
    Case(
        "adx",
        talib.ADX,
        HLC,
        ({"timeperiod": 2}, {"timeperiod": 5}, {"timeperiod": 40}),
        lambda p: 2 * p["timeperiod"] - 1,
    ),
    Case(
        "plus_di",
        talib.PLUS_DI,
        HLC,
        ({"timeperiod": 1}, {"timeperiod": 2}, {"timeperiod": 30}),
        lambda p: p["timeperiod"],
    ),
    Case(
        "minus_di",
        talib.MINUS_DI,
        HLC,
        ({"timeperiod": 1}, {"timeperiod": 2}, {"timeperiod": 30}),
        lambda p: p["timeperiod"],
    ),
    Case(
        "sar",
        talib.SAR,
        ("high", "low"),
        (
            {"acceleration": 0.05, "maximum": 0.5},
            {"acceleration": 0.3, "maximum": 0.1},  # lowered to the maximum
            {"acceleration": 0.0, "maximum": 0.0},
            {"acceleration": 0.01, "maximum": 0.01},
        ),
        lambda p: 1,
    ),
]
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_talib_on_random_walks(case: Case, scale: float, seed: int) -> None:
    data = ohlcv(3000, seed, start=100.0 * scale)
    assert_close(case.ours(data), case.theirs(data), what=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_non_default_parameters(case: Case) -> None:
    data = ohlcv(2000, 7, vol=0.05)
    for kw in case.variants:
        assert_close(case.ours(data, **kw), case.theirs(data, **kw), what=f"{case.name}{kw}")


def test_sar_is_bit_identical_to_talib() -> None:
    # Reversals are exact comparisons with the SAR: TA-Lib's own rounding
    # (fused on FMA CPUs) is reproduced, so whole series are equal.
    for seed in range(3):
        data = ohlcv(20_000, seed, vol=0.03)
        for acc, mx in [(0.02, 0.2), (0.07, 0.4)]:
            ours = core_rs.sar(data["high"], data["low"], acc, mx)
            theirs = talib.SAR(data["high"], data["low"], acc, mx)
            np.testing.assert_array_equal(ours, theirs)


def test_long_series_stay_within_tolerance() -> None:
    data = ohlcv(1_000_000, 11)
    for case in CASES:
        assert_close(case.ours(data), case.theirs(data), what=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_flat_series(case: Case) -> None:
    data = flat(200)
    ours = case.ours(data)
    assert_close(ours, case.theirs(data), what=case.name)
    lb = case.lookback(case.defaults())
    assert np.all(np.isfinite(ours[lb:]))


def test_directional_kernels_after_a_flat_start() -> None:
    # Zero TR sums: DIs are 0, DX skipped (the ADX keeps its value), then moves.
    data = flat(60)
    for key, bump in [("high", 1.0), ("low", -1.0)]:
        data[key][40:] += bump
    data["close"][45:] += 0.5
    for name in ["adx", "plus_di", "minus_di"]:
        case = next(c for c in CASES if c.name == name)
        for kw in [{}, {"timeperiod": 2}, {"timeperiod": 5}]:
            assert_close(case.ours(data, **kw), case.theirs(data, **kw), what=f"{name}{kw}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gaps_restart_the_kernel(case: Case) -> None:
    data = ohlcv(600, 3)
    data["high"][[50, 51, 300]] = np.nan
    data["low"][[52, 420]] = np.inf
    if "close" in case.inputs:
        data["close"][[100, 599]] = np.nan
    inputs = [data[i] for i in case.inputs]
    (want,) = per_segment(case.talib_fn, inputs, 1)
    assert_close(case.ours(data), want, what=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_values(case: Case, value: float) -> None:
    data = ohlcv(300, 5, start=1.0)
    data = {k: v * value for k, v in data.items()}
    out = case.ours(data)
    lb = case.lookback(case.defaults())
    assert np.all(np.isnan(out[:lb]))
    assert np.all(np.isfinite(out[lb:]))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_edge_lengths(case: Case) -> None:
    lb = case.lookback(case.defaults())
    for n in sorted({0, 1, 2, max(lb - 1, 0), lb, lb + 1}):
        data = ohlcv(n, 9)
        ours = case.ours(data)
        assert ours.shape == (n,)
        assert_close(ours, case.theirs(data), what=f"{case.name} n={n}")
        assert np.all(np.isnan(ours[:lb]))
        assert np.all(np.isfinite(ours[lb:]))


def _bars(data: dict[str, np.ndarray], case: Case) -> list[tuple[float, ...]]:
    return list(zip(*[data[i].tolist() for i in case.inputs], strict=True))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_incremental_equals_batch(case: Case) -> None:
    data = ohlcv(400, 4)
    data["high"][150] = np.nan
    kw = case.variants[0]
    want = case.ours(data, **kw)
    cls = getattr(incremental, incremental.class_name(case.name))
    state = cls(**kw)
    bars = _bars(data, case)
    for i, bar in enumerate(bars):
        before = state.to_bytes()
        peeked = state.peek(*bar)
        assert state.to_bytes() == before, "peek changed the state"
        if i == 200:
            state = pickle.loads(pickle.dumps(state))
            assert state.kwargs == cls(**kw).kwargs
        got = state.update(*bar)
        assert np.isnan(got) == np.isnan(want[i]), (case.name, i, got, want[i])
        if not np.isnan(want[i]):
            assert got == pytest.approx(want[i], rel=1e-12, abs=1e-300), (case.name, i)
            assert peeked == got
    state.reset()
    assert np.isnan(state.update(*bars[0]))


@pytest.mark.parametrize(
    ("fn", "kw", "param"),
    [
        (core_rs.atr, {"timeperiod": 0}, "timeperiod"),
        (core_rs.adx, {"timeperiod": 1}, "timeperiod"),
        (core_rs.adx, {"timeperiod": 100_001}, "timeperiod"),
        (core_rs.plus_di, {"timeperiod": 0}, "timeperiod"),
        (core_rs.minus_di, {"timeperiod": 2.5}, "timeperiod"),
        (core_rs.sar, {"acceleration": -0.01}, "acceleration"),
        (core_rs.sar, {"maximum": -1.0}, "maximum"),
        (core_rs.sar, {"acceleration": 1e38}, "acceleration"),
    ],
)
def test_bad_parameters_name_the_parameter(
    fn: Callable[..., Any], kw: dict[str, Any], param: str
) -> None:
    data = ohlcv(50, 1)
    args = (
        (data["high"], data["low"])
        if fn is core_rs.sar
        else (
            data["high"],
            data["low"],
            data["close"],
        )
    )
    with pytest.raises(ValueError, match=param):
        fn(*args, **kw)


def test_parameter_ranges_match_talib() -> None:
    data = ohlcv(50, 1)
    hlc = (data["high"], data["low"], data["close"])
    # the smallest periods TA-Lib accepts
    assert_close(core_rs.adx(*hlc, timeperiod=2), talib.ADX(*hlc, timeperiod=2))
    assert_close(core_rs.plus_di(*hlc, timeperiod=1), talib.PLUS_DI(*hlc, timeperiod=1))
    big = 3e37
    assert_close(
        core_rs.sar(data["high"], data["low"], big, big),
        talib.SAR(data["high"], data["low"], big, big),
    )
