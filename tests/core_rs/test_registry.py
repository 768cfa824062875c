"""Contract checks over every registered indicator: the Python signature
matches the registry, the NaN policy, bad input, incremental == batch, and
(where TA-Lib has the function) the values and warm-up equal TA-Lib's."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import numpy as np
import pytest
import talib
import talib.abstract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core_rs
from core_rs import _core, incremental
from core_rs._kernels import KERNELS
from tests.core_rs.indicator_data import assert_close, ohlcv, per_segment

NAMES = sorted(KERNELS)
STATEFUL = [n for n in NAMES if KERNELS[n]["has_state"]]
# The issue's TA-Lib set: same names, arguments, defaults and values.
TALIB_SET = [
    "sma",
    "ema",
    "wma",
    "dema",
    "tema",
    "trima",
    "kama",
    "rsi",
    "macd",
    "bbands",
    "stoch",
    "stochf",
    "stochrsi",
    "atr",
    "natr",
    "trange",
    "adx",
    "plus_di",
    "minus_di",
    "cci",
    "mfi",
    "obv",
    "willr",
    "roc",
    "mom",
    "stddev",
    "aroon",
    "sar",
]
EXTRAS = [
    "vwap",
    "rolling_vwap",
    "ichimoku",
    "donchian",
    "keltner",
    "fibonacci",
    "supertrend",
    "log_returns",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "historical_var",
    "historical_cvar",
]
TALIB_NAMES = [n for n in TALIB_SET if n in KERNELS]


def inputs_for(name: str, n: int, seed: int = 0) -> list[np.ndarray]:
    bars = ohlcv(n, seed)
    bars["real"] = bars["close"]
    bars["timestamp"] = 1.7e12 + np.arange(n) * 3_600_000.0
    return [bars[i].copy() for i in KERNELS[name]["inputs"]]


def defaults(name: str) -> dict[str, Any]:
    return {
        p["name"]: int(p["default"]) if p["integer"] else p["default"]
        for p in KERNELS[name]["params"]
    }


def outputs(result: Any) -> list[np.ndarray]:
    return list(result) if isinstance(result, tuple) else [result]


def lookback(name: str) -> int:
    return _core.lookback(name, [float(v) for v in defaults(name).values()])


def test_every_kernel_of_the_issue_is_registered_and_exported() -> None:
    assert sorted(TALIB_SET + EXTRAS) == NAMES
    for name in NAMES:
        assert callable(getattr(core_rs, name)), name
        assert name in core_rs.__all__


@pytest.mark.parametrize("name", ["donchian", "supertrend"])
def test_extras_that_talib_also_has_agree_with_it(name: str) -> None:
    # TA-Lib 0.8 added these two; the values agree (its SUPERTREND trend
    # output is an int array without a NaN warm-up, so only the line is compared).
    xs = inputs_for(name, 2000, seed=4)
    ours, theirs = outputs(getattr(core_rs, name)(*xs)), outputs(getattr(talib, name.upper())(*xs))
    n = 1 if name == "supertrend" else len(ours)
    for g, w in zip(ours[:n], theirs[:n], strict=True):
        assert_close(g, w, what=name)


@pytest.mark.parametrize("name", NAMES)
def test_python_signature_matches_registry(name: str) -> None:
    sig = inspect.signature(getattr(core_rs, name))
    spec = KERNELS[name]
    params = list(sig.parameters.values())
    n_in = len(spec["inputs"])
    assert [p.name for p in params[:n_in]] == [
        i if i != "timestamp" else "timestamp" for i in spec["inputs"]
    ]
    assert {p.name: p.default for p in params[n_in:]} == defaults(name)


@pytest.mark.parametrize("name", NAMES)
def test_edge_lengths_and_empty(name: str) -> None:
    fn = getattr(core_rs, name)
    lb = lookback(name)
    for n in sorted({0, 1, 2, max(lb - 1, 0), lb, lb + 1}):
        outs = outputs(fn(*inputs_for(name, n)))
        assert len(outs) == len(KERNELS[name]["outputs"])
        for out in outs:
            assert out.dtype == np.float64 and out.shape == (n,)
        if n > lb:
            assert np.isfinite(outs[0][lb])
        assert np.isnan(outs[0][: min(lb, n)]).all()


@pytest.mark.parametrize("name", NAMES)
def test_gaps_restart_the_indicator(name: str) -> None:
    lb = lookback(name)
    n = 3 * lb + 60
    xs = inputs_for(name, n, seed=3)
    xs[0][lb + 10] = np.nan
    xs[-1][2 * lb + 30 : 2 * lb + 33] = np.inf
    fn = getattr(core_rs, name)
    got = outputs(fn(*xs))
    want = per_segment(fn, xs, len(got))
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rel=0.0, what=name)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_value_error(name: str) -> None:
    fn = getattr(core_rs, name)
    xs = inputs_for(name, 50)
    with pytest.raises(ValueError, match="1-D"):
        fn(*[np.vstack([x, x]) for x in xs])
    with pytest.raises(ValueError, match="real numbers"):
        fn(*[x.astype(str) for x in xs])
    if len(xs) > 1:
        with pytest.raises(ValueError, match="same length"):
            fn(*xs[:-1], xs[-1][:-1])
    for p in KERNELS[name]["params"]:
        if p["integer"]:
            with pytest.raises(ValueError, match=p["name"]):
                fn(*xs, **{p["name"]: int(p["max"]) + 1})
            with pytest.raises(ValueError, match=p["name"]):
                fn(*xs, **{p["name"]: int(p["min"]) - 1})


@pytest.mark.parametrize("name", NAMES)
def test_dtypes_and_strides_are_accepted(name: str) -> None:
    fn = getattr(core_rs, name)
    xs = inputs_for(name, 200)
    want = outputs(fn(*xs))
    strided = [np.repeat(x, 2)[::2] for x in xs]
    assert not strided[0].flags.c_contiguous
    for g, w in zip(outputs(fn(*strided)), want, strict=True):
        assert_close(g, w, rel=0.0, what=name)
    rounded = [np.round(x * 1000).astype(np.int64) for x in xs]
    as_float = [r.astype(np.float64) for r in rounded]
    for g, w in zip(outputs(fn(*rounded)), outputs(fn(*as_float)), strict=True):
        assert_close(g, w, rel=0.0, what=name)
    lists = [x.tolist() for x in xs]
    for g, w in zip(outputs(fn(*lists)), want, strict=True):
        assert_close(g, w, rel=0.0, what=name)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single_series(name: str) -> None:
    fn = getattr(core_rs, name)
    series = [inputs_for(name, n, seed=n) for n in (300, 120, 0, 299)]
    per_input = [[s[k] for s in series] for k in range(len(series[0]))]
    got = outputs(core_rs.batch(name, *per_input))
    for row, s in enumerate(series):
        want = outputs(fn(*s))
        for g, w in zip(got, want, strict=True):
            n = len(w)
            assert np.isnan(g[row, : 300 - n]).all()
            assert_close(g[row, 300 - n :], w, rel=0.0, what=name)


@pytest.mark.parametrize("name", STATEFUL)
def test_incremental_equals_batch_with_peek_and_pickle(name: str) -> None:
    lb = lookback(name)
    n = 2 * lb + 200
    xs = inputs_for(name, n, seed=11)
    xs[0][lb + 50] = np.nan
    want = outputs(getattr(core_rs, name)(*xs))
    cls = getattr(incremental, incremental.class_name(name))
    state = cls()
    assert repr(state).startswith(cls.__name__ + "(")
    for i in range(n):
        bar = [float(x[i]) for x in xs]
        peeked = state.peek(*bar)
        if i == n // 2:
            state = pickle.loads(pickle.dumps(state))
        got = state.update(*bar)
        got_list = list(got) if isinstance(got, tuple) else [got]
        peek_list = list(peeked) if isinstance(peeked, tuple) else [peeked]
        for k, (g, p) in enumerate(zip(got_list, peek_list, strict=True)):
            assert_close(np.array([g]), want[k][i : i + 1], rel=1e-12, what=f"{name}[{i}]")
            assert_close(np.array([p]), np.array([g]), rel=0.0, what=f"{name} peek[{i}]")


@pytest.mark.parametrize("name", STATEFUL)
def test_incremental_bad_input(name: str) -> None:
    cls = getattr(incremental, incremental.class_name(name))
    n_in = len(KERNELS[name]["inputs"])
    with pytest.raises(ValueError, match="one value per input"):
        cls().update(*([1.0] * (n_in + 1)))
    with pytest.raises(ValueError, match="must be a number"):
        cls().update(*(["x"] * n_in))
    with pytest.raises(ValueError, match="no parameter"):
        cls(nonsense=3)
    with pytest.raises(ValueError, match="state"):
        cls()._restore(b"\x01garbage")


@pytest.mark.parametrize("name", TALIB_NAMES)
def test_matches_talib_on_random_walks(name: str) -> None:
    ours, theirs = getattr(core_rs, name), getattr(talib, name.upper())
    for seed, scale in [(1, 1.0), (2, 1e-6), (3, 1e5)]:
        xs = inputs_for(name, 2000, seed)
        xs = [x * scale if KERNELS[name]["inputs"][k] != "volume" else x for k, x in enumerate(xs)]
        for g, w in zip(outputs(ours(*xs)), outputs(theirs(*xs)), strict=True):
            assert_close(g, w, what=f"{name} seed {seed} scale {scale}")


@pytest.mark.parametrize("name", TALIB_NAMES)
def test_lookback_equals_talib(name: str) -> None:
    fn = talib.abstract.Function(name.upper())
    assert lookback(name) == fn.lookback


@pytest.mark.parametrize("name", TALIB_NAMES)
def test_nan_policy_differs_from_talib_only_after_the_gap(name: str) -> None:
    xs = inputs_for(name, 500, seed=5)
    cut = lookback(name) + 40
    xs[0][cut] = np.nan
    ours = outputs(getattr(core_rs, name)(*xs))
    clean = outputs(getattr(talib, name.upper())(*[x[:cut] for x in xs]))
    for g, w in zip(ours, clean, strict=True):
        assert_close(g[:cut], w, what=name)
        assert np.isnan(g[cut])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    n=st.integers(0, 120),
    period=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    gap=st.one_of(st.none(), st.integers(0, 119)),
)
def test_property_no_panic_nan_prefix_and_incremental(
    name: str, n: int, period: int, seed: int, gap: int | None
) -> None:
    params = defaults(name)
    for p in KERNELS[name]["params"]:
        if p["integer"] and p["name"].endswith(("period", "timeperiod")):
            params[p["name"]] = int(min(max(period, p["min"]), p["max"]))
    values = [float(v) for v in params.values()]
    try:
        _core.Incremental(name, values) if KERNELS[name]["has_state"] else None
        lb = _core.lookback(name, values)
    except ValueError:
        return  # a cross-parameter rule refused this combination
    xs = inputs_for(name, n, seed)
    if gap is not None and gap < n:
        xs[0][gap] = np.nan
    outs = outputs(getattr(core_rs, name)(*xs, **params))
    first_gap = gap if gap is not None and gap < n else n
    for out in outs[:1]:
        assert np.isnan(out[: min(lb, first_gap)]).all()
        # Sharpe/Sortino are NaN by design where the window has no spread
        # or no downside, which short random windows can have.
        if first_gap > lb and name not in ("sharpe", "sortino"):
            assert np.isfinite(out[lb])
    if KERNELS[name]["has_state"]:
        state = _core.Incremental(name, values)
        for i in range(n):
            got = state.update(*[float(x[i]) for x in xs])
            got_list = list(got) if isinstance(got, tuple) else [got]
            for k, g in enumerate(got_list):
                assert_close(np.array([g]), outs[k][i : i + 1], rel=1e-12, what=name)
