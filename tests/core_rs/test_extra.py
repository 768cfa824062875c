"""The extra indicators (no TA-Lib equivalent) against independent,
plainly written numpy/pandas references."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

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

DAY = 86_400_000
SEEDS = (0, 1, 2)
N = 600
# Cap near 2e-12: the references add in a different order.
REL = 1e-9


def _tp(h, low, c):
    return (h + low + c) / 3.0


def _times(n: int, seed: int = 0, start: int = 1_700_000_000_000) -> np.ndarray:
    """Irregular bar open times (int64 ms), crossing many UTC days."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(60_000, 4 * 3_600_000, n)
    return start + np.cumsum(steps)


# ----------------------------------------------------------------------------
# References


def ref_vwap(h, low, c, v, ts, session_ms=DAY):
    ts = np.asarray(ts, dtype=np.float64)
    out = np.full(len(c), np.nan)
    session = None
    pv = vs = 0.0
    for i in range(len(c)):
        s = np.floor(ts[i] / session_ms)
        if s != session:
            session, pv, vs = s, 0.0, 0.0
        tp = _tp(h[i], low[i], c[i])
        pv += tp * v[i]
        vs += v[i]
        out[i] = tp if vs == 0 else pv / vs
    return out


def ref_rolling_vwap(h, low, c, v, timeperiod=20):
    tp = _tp(h, low, c)
    out = np.full(len(c), np.nan)
    for i in range(timeperiod - 1, len(c)):
        w = slice(i - timeperiod + 1, i + 1)
        sv = v[w].sum()
        out[i] = tp[i] if sv == 0 else (tp[w] * v[w]).sum() / sv
    return out


def _mid(h, low, p):
    return (pd.Series(h).rolling(p).max() + pd.Series(low).rolling(p).min()).to_numpy() / 2


def ref_ichimoku(h, low, c, tenkan_period=9, kijun_period=26, senkou_b_period=52, displacement=26):
    d = displacement
    t = _mid(h, low, tenkan_period)
    k = _mid(h, low, kijun_period)
    a = pd.Series((t + k) / 2).shift(d).to_numpy()
    b = pd.Series(_mid(h, low, senkou_b_period)).shift(d).to_numpy()
    chikou = pd.Series(c).shift(-d).to_numpy()
    return t, k, a, b, chikou


def ref_donchian(h, low, timeperiod=20):
    up = pd.Series(h).rolling(timeperiod).max().to_numpy()
    lo = pd.Series(low).rolling(timeperiod).min().to_numpy()
    return up, (up + lo) / 2, lo


def ref_ema(x, p):
    out = np.full(len(x), np.nan)
    if len(x) < p:
        return out
    k = 2 / (p + 1)
    out[p - 1] = x[:p].mean()
    for i in range(p, len(x)):
        out[i] = out[i - 1] + k * (x[i] - out[i - 1])
    return out


def ref_atr(h, low, c, p):
    n = len(c)
    tr = np.full(n, np.nan)
    for i in range(1, n):
        tr[i] = max(h[i] - low[i], abs(h[i] - c[i - 1]), abs(low[i] - c[i - 1]))
    if p == 1:
        return tr
    out = np.full(n, np.nan)
    if n <= p:
        return out
    out[p] = tr[1 : p + 1].mean()
    for i in range(p + 1, n):
        out[i] = (out[i - 1] * (p - 1) + tr[i]) / p
    return out


def ref_keltner(h, low, c, timeperiod=20, atr_period=10, multiplier=2.0):
    mid = ref_ema(c, timeperiod)
    atr = ref_atr(h, low, c, atr_period)
    lb = max(timeperiod - 1, atr_period)
    up, lo = mid + multiplier * atr, mid - multiplier * atr
    mid = mid.copy()
    for x in (up, mid, lo):
        x[:lb] = np.nan
    return up, mid, lo


RATIOS = (0.0, 0.236, 0.382, 0.5, 0.618, 0.786, 1.0)


def ref_fibonacci(h, low, timeperiod=55):
    n = len(h)
    outs = [np.full(n, np.nan) for _ in RATIOS]
    for i in range(timeperiod - 1, n):
        wh, wl = h[i - timeperiod + 1 : i + 1], low[i - timeperiod + 1 : i + 1]
        hi, lo = wh.max(), wl.min()
        # the most recent bar holding each extreme
        ih = len(wh) - 1 - np.argmax(wh[::-1])
        il = len(wl) - 1 - np.argmin(wl[::-1])
        for out, r in zip(outs, RATIOS, strict=True):
            out[i] = hi - r * (hi - lo) if ih >= il else lo + r * (hi - lo)
    return tuple(outs)


def ref_supertrend(h, low, c, timeperiod=10, multiplier=3.0):
    n = len(c)
    atr = ref_atr(h, low, c, timeperiod)
    st, dr = np.full(n, np.nan), np.full(n, np.nan)
    fu = fl = None
    up = True
    for i in range(timeperiod, n):
        hl2 = (h[i] + low[i]) / 2
        bu, bl = hl2 + multiplier * atr[i], hl2 - multiplier * atr[i]
        if fu is None:
            fu, fl, up = bu, bl, True
        else:
            fu = bu if (bu < fu or c[i - 1] > fu) else fu
            fl = bl if (bl > fl or c[i - 1] < fl) else fl
            if up and c[i] < fl:
                up = False
            elif not up and c[i] > fu:
                up = True
        st[i], dr[i] = (fl, 1.0) if up else (fu, -1.0)
    return st, dr


# ----------------------------------------------------------------------------
# Cases: name -> (our function, reference, input names, non-default params)

CASES = {
    "vwap": (
        core_rs.vwap,
        ref_vwap,
        ("high", "low", "close", "volume", "ts"),
        {"session_ms": 3_600_000},
    ),
    "rolling_vwap": (
        core_rs.rolling_vwap,
        ref_rolling_vwap,
        ("high", "low", "close", "volume"),
        {"timeperiod": 7},
    ),
    "ichimoku": (
        core_rs.ichimoku,
        ref_ichimoku,
        ("high", "low", "close"),
        {"tenkan_period": 5, "kijun_period": 3, "senkou_b_period": 20, "displacement": 0},
    ),
    "donchian": (core_rs.donchian, ref_donchian, ("high", "low"), {"timeperiod": 3}),
    "keltner": (
        core_rs.keltner,
        ref_keltner,
        ("high", "low", "close"),
        {"timeperiod": 5, "atr_period": 14, "multiplier": 1.5},
    ),
    "fibonacci": (core_rs.fibonacci, ref_fibonacci, ("high", "low"), {"timeperiod": 13}),
    "supertrend": (
        core_rs.supertrend,
        ref_supertrend,
        ("high", "low", "close"),
        {"timeperiod": 7, "multiplier": 2.0},
    ),
}
NAMES = sorted(CASES)
STATEFUL = [n for n in NAMES if n != "ichimoku"]


def _inputs(name, bars, ts=None):
    names = CASES[name][2]
    n = len(bars["close"])
    if ts is None:
        ts = _times(n)
    return [ts if k == "ts" else bars[k] for k in names]


def _as_list(res):
    return list(res) if isinstance(res, tuple) else [res]


def _compare(name, inputs, **params):
    ours, ref = CASES[name][0], CASES[name][1]
    got = _as_list(ours(*inputs, **params))
    want = _as_list(ref(*inputs, **params))
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_close(a, b, REL, f"{name}[{k}] {params}")


def _lookback(name, params=None):
    spec = core_rs._kernels.spec(name)
    values = [(params or {}).get(p["name"], p["default"]) for p in spec["params"]]
    return core_rs._core.lookback(name, [float(v) for v in values])


# ----------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_matches_reference_on_random_walks(name, seed, scale):
    bars = ohlcv(N, seed, start=100.0 * scale)
    _compare(name, _inputs(name, bars, _times(N, seed)))


@pytest.mark.parametrize("name", NAMES)
def test_non_default_params(name):
    bars = ohlcv(N, 5)
    _compare(name, _inputs(name, bars), **CASES[name][3])


@pytest.mark.parametrize("name", NAMES)
def test_flat_series(name):
    bars = flat(300)
    _compare(name, _inputs(name, bars))
    out = _as_list(CASES[name][0](*_inputs(name, bars)))
    lb = _lookback(name)
    if name == "supertrend":
        # zero ATR: both bands at 42, direction up
        assert np.all(out[0][lb:] == 42.0) and np.all(out[1][lb:] == 1.0)
    elif name != "ichimoku":
        for o in out:
            assert np.all(o[lb:] == 42.0), name


@pytest.mark.parametrize("name", NAMES)
def test_gaps_restart_the_warm_up(name):
    bars = ohlcv(N, 9)
    inputs = [np.array(x, dtype=np.float64) for x in _inputs(name, bars)]
    inputs[0][[50, 51, 300]] = np.nan
    inputs[-1][[120, 599]] = np.inf
    ref = CASES[name][1]
    want = per_segment(ref, inputs, len(_as_list(CASES[name][0](*inputs))))
    got = _as_list(CASES[name][0](*inputs))
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_close(a, b, REL, f"{name}[{k}] with gaps")
        assert np.isnan(a[[50, 51, 120, 300, 599]]).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_values(name, value):
    bars = ohlcv(400, 3, start=1.0)
    # prices only: tp * volume is the natural overflow bound of the VWAPs
    scaled = {k: v if k == "volume" else v * value for k, v in bars.items()}
    out = _as_list(CASES[name][0](*_inputs(name, scaled)))
    lb = _lookback(name)
    for o in out[:2]:
        assert np.isfinite(o[lb + 60 : 300]).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_edge_lengths(name):
    lb = _lookback(name)
    for n in sorted({0, 1, max(lb - 1, 0), lb, lb + 1}):
        bars = ohlcv(n, 4)
        inputs = _inputs(name, bars)
        got = _as_list(CASES[name][0](*inputs))
        want = _as_list(CASES[name][1](*inputs))
        for a, b in zip(got, want, strict=True):
            assert a.shape == (n,)
            assert_close(a, b, REL, f"{name} n={n}")


# ----------------------------------------------------------------------------
# vwap specifics


def test_vwap_timestamp_types_agree():
    bars = ohlcv(500, 2)
    ts = _times(500, 2)
    args = (bars["high"], bars["low"], bars["close"], bars["volume"])
    as_int = core_rs.vwap(*args, ts)
    assert_close(core_rs.vwap(*args, ts.astype(np.float64)), as_int, 0.0, "float ms")
    assert_close(core_rs.vwap(*args, ts.astype("datetime64[ms]")), as_int, 0.0, "datetime64")
    assert_close(
        core_rs.vwap(*args, ts.astype("datetime64[ms]").astype("datetime64[ns]")), as_int, 0.0, "ns"
    )
    nat = ts.astype("datetime64[ms]")
    nat[10] = np.datetime64("NaT")
    out = core_rs.vwap(*args, nat)
    assert np.isnan(out[10]) and np.isfinite(out[11])


def test_vwap_sessions_are_utc_days_by_default():
    # 00:00 and 23:59 of one day share a session; the next midnight starts one.
    ts = np.array([0, DAY - 60_000, DAY, DAY + 1], dtype=np.int64) + 19_000 * DAY
    p = np.array([10.0, 20.0, 30.0, 40.0])
    v = np.array([1.0, 1.0, 1.0, 3.0])
    out = core_rs.vwap(p, p, p, v, ts)
    assert_close(out, np.array([10.0, 15.0, 30.0, 37.5]), 1e-15, "days")
    hourly = core_rs.vwap(p, p, p, v, ts, session_ms=3_600_000)
    assert_close(hourly, np.array([10.0, 20.0, 30.0, 37.5]), 1e-15, "hours")


def test_vwap_zero_volume_is_typical_price():
    h, low, c = np.array([3.0, 6.0, 9.0]), np.array([0.0, 3.0, 6.0]), np.array([3.0, 3.0, 3.0])
    out = core_rs.vwap(h, low, c, np.zeros(3), np.zeros(3, dtype=np.int64))
    assert_close(out, np.array([2.0, 4.0, 6.0]), 1e-15, "zero volume")


def test_rolling_vwap_does_not_drift():
    n = 200_000
    bars = ohlcv(n, 8)
    v = bars["volume"].copy()
    v[1000] = 1e15
    out = core_rs.rolling_vwap(bars["high"], bars["low"], bars["close"], v, timeperiod=20)
    tail = slice(n - 500, n)
    want = ref_rolling_vwap(bars["high"][tail], bars["low"][tail], bars["close"][tail], v[tail], 20)
    assert_close(out[tail][19:], want[19:], 1e-13, "tail")


def test_ichimoku_shifts_and_looks_ahead():
    bars = ohlcv(200, 6)
    t, k, a, _b, ch = core_rs.ichimoku(bars["high"], bars["low"], bars["close"])
    assert_close(a[26 + 25 :], ((t + k) / 2)[25:-26], REL, "senkou_a shifted")
    assert_close(ch[:-26], bars["close"][26:], 0.0, "chikou is a later close")
    assert np.isnan(ch[-26:]).all()
    assert not hasattr(incremental, "Ichimoku")


def test_supertrend_flips_both_ways():
    bars = ohlcv(2000, 11)
    _, d = core_rs.supertrend(bars["high"], bars["low"], bars["close"])
    assert d[10] == 1.0
    assert set(np.unique(d[10:])) == {-1.0, 1.0}
    assert (np.diff(d[10:]) != 0).sum() > 10


# ----------------------------------------------------------------------------
# Incremental


def _bars_for(name, n, seed):
    bars = ohlcv(n, seed)
    inputs = _inputs(name, bars, _times(n, seed))
    return [np.asarray(x, dtype=np.float64) for x in inputs]


@pytest.mark.parametrize("name", STATEFUL)
def test_incremental_equals_batch(name):
    n = 260
    inputs = _bars_for(name, n, 13)
    inputs[0][140] = np.nan
    params = CASES[name][3]
    want = _as_list(CASES[name][0](*inputs, **params))
    cls = getattr(incremental, incremental.class_name(name))
    state = cls(**params)
    for i in range(n):
        bar = [float(x[i]) for x in inputs]
        if i == 200:
            state = pickle.loads(pickle.dumps(state))
        peeked = _as_list(state.peek(*bar))
        again = _as_list(state.peek(*bar))
        got = _as_list(state.update(*bar))
        for k, g in enumerate(got):
            w = want[k][i]
            assert (np.isnan(g) and np.isnan(w)) or g == pytest.approx(w, rel=1e-12, abs=0), (
                name,
                k,
                i,
            )
            assert (np.isnan(peeked[k]) and np.isnan(g)) or peeked[k] == g
            assert (np.isnan(again[k]) and np.isnan(g)) or again[k] == g


# ----------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    ("name", "params", "bad"),
    [
        ("vwap", {"session_ms": 1000}, "session_ms"),
        ("vwap", {"session_ms": 2e12}, "session_ms"),
        ("rolling_vwap", {"timeperiod": 0}, "timeperiod"),
        ("ichimoku", {"tenkan_period": 0}, "tenkan_period"),
        ("ichimoku", {"kijun_period": 2.5}, "kijun_period"),
        ("ichimoku", {"senkou_b_period": 0}, "senkou_b_period"),
        ("ichimoku", {"displacement": -1}, "displacement"),
        ("donchian", {"timeperiod": 0}, "timeperiod"),
        ("keltner", {"timeperiod": 0}, "timeperiod"),
        ("keltner", {"atr_period": 0}, "atr_period"),
        ("keltner", {"multiplier": -1.0}, "multiplier"),
        ("fibonacci", {"timeperiod": 0}, "timeperiod"),
        ("supertrend", {"timeperiod": 0}, "timeperiod"),
        ("supertrend", {"multiplier": float("nan")}, "multiplier"),
    ],
)
def test_bad_params_name_the_parameter(name, params, bad):
    inputs = _inputs(name, ohlcv(30, 0))
    with pytest.raises(ValueError, match=bad):
        CASES[name][0](*inputs, **params)
    if name != "ichimoku":
        with pytest.raises(ValueError, match=bad):
            getattr(incremental, incremental.class_name(name))(**params)
