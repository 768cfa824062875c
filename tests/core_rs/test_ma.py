"""Moving averages, STDDEV and BBANDS against TA-Lib (the reference), plus
the NaN policy, edge lengths, parameters and the incremental states."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import core_rs
from core_rs import incremental
from tests.core_rs.indicator_data import EXTREME, SCALES, assert_close, flat, ohlcv, per_segment

talib = pytest.importorskip("talib")

# name -> (lookback for the default/given params, non-default params)
SINGLE = ["sma", "ema", "wma", "dema", "tema", "trima", "kama"]
MATYPES = range(7)


def lookback(name: str, p: int) -> int:
    if p == 1:
        return 0
    return {"dema": 2 * (p - 1), "tema": 3 * (p - 1), "kama": p}.get(name, p - 1)


def ours(name: str, *args, **kw):
    return getattr(core_rs, name)(*args, **kw)


def theirs(name: str, *args, **kw):
    return getattr(talib, name.upper())(*args, **kw)


def check_all(a, b, what: str) -> None:
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, what=f"{what}[{k}]")
    else:
        assert_close(a, b, what=what)


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_ma_matches_talib(name: str, scale: float, seed: int) -> None:
    x = ohlcv(3000, seed, start=scale)["close"]
    check_all(ours(name, x), theirs(name, x), f"{name} default")
    for p in (1, 2, 3, 4, 9, 14):
        check_all(ours(name, x, timeperiod=p), theirs(name, x, timeperiod=p), f"{name}({p})")


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("seed", [0, 1])
def test_stddev_matches_talib(scale: float, seed: int) -> None:
    x = ohlcv(3000, seed, start=scale)["close"]
    check_all(core_rs.stddev(x), talib.STDDEV(x), "stddev default")
    for p, nb in [(2, 1.0), (3, 2.5), (14, -1.0), (50, 0.5)]:
        check_all(core_rs.stddev(x, p, nb), talib.STDDEV(x, p, nb), f"stddev({p}, {nb})")


@pytest.mark.parametrize("matype", MATYPES)
@pytest.mark.parametrize("scale", SCALES)
def test_bbands_every_matype_matches_talib(matype: int, scale: float) -> None:
    x = ohlcv(2000, matype, start=scale)["close"]
    check_all(core_rs.bbands(x, matype=matype), talib.BBANDS(x, matype=matype), "bbands")
    for p, up, dn in [(2, 2.0, 2.0), (5, 1.0, 3.0), (13, 2.5, 1.0), (30, -1.0, 0.5)]:
        check_all(
            core_rs.bbands(x, p, up, dn, matype),
            talib.BBANDS(x, p, up, dn, matype),
            f"bbands({p}, {up}, {dn}, {matype})",
        )


def test_defaults_equal_talib() -> None:
    x = ohlcv(500, 4)["close"]
    for name in SINGLE:
        check_all(ours(name, x), theirs(name, x), name)
    check_all(core_rs.stddev(x), talib.STDDEV(x), "stddev")
    # TA-Lib 0.8's BBANDS default period is 20.
    check_all(core_rs.bbands(x), talib.BBANDS(x), "bbands")
    assert np.isnan(core_rs.bbands(x)[1][18]) and not np.isnan(core_rs.bbands(x)[1][19])


def test_long_series_stays_within_tolerance() -> None:
    x = ohlcv(300_000, 9)["close"]
    for name in SINGLE:
        check_all(ours(name, x, 10), theirs(name, x, 10), name)
    check_all(core_rs.stddev(x, 10), talib.STDDEV(x, 10), "stddev")
    check_all(core_rs.bbands(x, 10), talib.BBANDS(x, 10), "bbands")


def test_flat_series() -> None:
    for value in (42.0, 0.1, 1e-6, 12345.678):
        x = flat(300, value)["close"]
        for name in SINGLE:
            check_all(ours(name, x, 10), theirs(name, x, 10), name)
        sd = core_rs.stddev(x, 7)
        assert np.all(sd[6:] == 0.0)
        check_all(sd, talib.STDDEV(x, 7), "stddev flat")
        for matype in MATYPES:
            check_all(core_rs.bbands(x, 7, matype=matype), talib.BBANDS(x, 7, matype=matype), "bb")


def test_tiny_variance_like_talib() -> None:
    # Sub-cent prices and tiny spreads: TA-Lib 0.8 keeps tiny variances (no
    # epsilon clamp), and so do we.
    rng = np.random.default_rng(5)
    for base, spread in [(1e-6, 1e-9), (1.0, 1e-8), (1e5, 1e-7), (1e-6, 1e-12)]:
        x = base + spread * rng.integers(0, 3, 400).astype(float)
        a, b = core_rs.stddev(x, 5), talib.STDDEV(x, 5)
        assert_close(a, b, rel=1e-6, what=f"stddev {base} {spread}")
        assert np.all(a[4:] >= 0)
        assert_close(core_rs.bbands(x, 5)[0], talib.BBANDS(x, 5)[0], what="bbands tiny")


def test_quiet_after_volatile_stays_accurate() -> None:
    rng = np.random.default_rng(6)
    loud = 1e5 * np.exp(np.cumsum(rng.normal(0, 0.05, 5000)))
    quiet = 123.456 + 1e-6 * rng.normal(size=500)
    x = np.concatenate([loud, quiet])
    got = core_rs.stddev(x, 5)[-480:]
    win = np.lib.stride_tricks.sliding_window_view(x, 5)[-480:]
    assert_close(got, win.std(axis=1), rel=1e-6, what="quiet stddev")


@pytest.mark.parametrize("name", [*SINGLE, "stddev", "bbands"])
def test_gaps_follow_the_nan_policy(name: str) -> None:
    x = ohlcv(400, 3)["close"].copy()
    x[[50, 51, 120, 300]] = np.nan
    x[200] = np.inf
    p = 5
    fn = getattr(talib, name.upper())
    n_out = 3 if name == "bbands" else 1
    want = per_segment(lambda v: fn(v, p), [x], n_out)
    got = ours(name, x, p)
    got_list = list(got) if isinstance(got, tuple) else [got]
    for k, (a, b) in enumerate(zip(got_list, want, strict=True)):
        assert_close(a, b, what=f"{name} gaps [{k}]")


@pytest.mark.parametrize("name", [*SINGLE, "stddev", "bbands"])
def test_extreme_values_do_not_crash(name: str) -> None:
    for v in EXTREME:
        x = v * (1 + 0.01 * np.sin(np.arange(200)))
        got = ours(name, x, 5)
        for out in got if isinstance(got, tuple) else (got,):
            assert out.shape == x.shape
            assert np.all(np.isnan(out[:4]))


@pytest.mark.parametrize("name", [*SINGLE, "stddev", "bbands"])
def test_edge_lengths(name: str) -> None:
    p = 6
    lb = 5 if name in ("stddev", "bbands") else lookback(name, p)
    x = ohlcv(60, 8)["close"]
    fn = getattr(talib, name.upper())
    for n in sorted({0, 1, max(lb - 1, 0), lb, lb + 1}):
        got = ours(name, x[:n], p)
        got_list = list(got) if isinstance(got, tuple) else [got]
        if n == 0:
            assert all(o.shape == (0,) for o in got_list)
            continue
        want = fn(x[:n], p)
        want_list = list(want) if isinstance(want, tuple) else [want]
        for a, b in zip(got_list, want_list, strict=True):
            assert_close(a, b, what=f"{name} n={n}")


@pytest.mark.parametrize(
    ("name", "kwargs", "bad"),
    [
        *[(n, {"timeperiod": 0}, "timeperiod") for n in SINGLE],
        *[(n, {"timeperiod": 100_001}, "timeperiod") for n in SINGLE],
        ("stddev", {"timeperiod": 1}, "timeperiod"),
        ("stddev", {"nbdev": 4e37}, "nbdev"),
        ("bbands", {"timeperiod": 1}, "timeperiod"),
        ("bbands", {"nbdevup": -4e37}, "nbdevup"),
        ("bbands", {"nbdevdn": float("nan")}, "nbdevdn"),
        ("bbands", {"matype": 7}, "matype"),
        ("bbands", {"matype": -1}, "matype"),
        ("wma", {"timeperiod": 2.5}, "timeperiod"),
    ],
)
def test_bad_parameters_name_the_parameter(name: str, kwargs: dict, bad: str) -> None:
    x = ohlcv(50, 0)["close"]
    with pytest.raises(ValueError, match=bad):
        ours(name, x, **kwargs)


def incremental_cases():
    for name in SINGLE:
        yield name, {"timeperiod": 7}
        yield name, {"timeperiod": 1}
    yield "stddev", {"timeperiod": 6, "nbdev": 2.0}
    for matype in MATYPES:
        yield "bbands", {"timeperiod": 6, "nbdevup": 2.0, "nbdevdn": 1.5, "matype": matype}


@pytest.mark.parametrize(("name", "kwargs"), list(incremental_cases()))
def test_incremental_equals_batch(name: str, kwargs: dict) -> None:
    x = ohlcv(700, 12, start=50.0)["close"].copy()
    x[300] = np.nan
    batch = ours(name, x, **kwargs)
    batch_list = list(batch) if isinstance(batch, tuple) else [batch]
    cls = getattr(incremental, incremental.class_name(name))
    st = cls(**kwargs)
    for i, v in enumerate(x):
        if i == 450:
            st = pickle.loads(pickle.dumps(st))
        peeked = st.peek(v)
        again = st.peek(v)
        got = st.update(v)
        got_t = got if isinstance(got, tuple) else (got,)
        peek_t = peeked if isinstance(peeked, tuple) else (peeked,)
        again_t = again if isinstance(again, tuple) else (again,)
        for k, g in enumerate(got_t):
            want = batch_list[k][i]
            assert (np.isnan(g) and np.isnan(want)) or g == pytest.approx(want, rel=1e-12), (
                name,
                i,
                k,
            )
            assert (np.isnan(g) and np.isnan(peek_t[k])) or g == peek_t[k]
            assert (np.isnan(g) and np.isnan(again_t[k])) or g == again_t[k]
