"""IntervalBook: incremental equals warm, the forming candle, persistence,
indicator values against TA-Lib and risk figures against numpy."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import talib

from marketmesh.v1 import signals_pb2
from services.signals.book import IntervalBook, MarketContext
from services.signals.candles import CandleSeries
from services.signals.features import COLUMNS
from services.signals.weights import GradeWeights
from tests.signals.markets import HOUR, bars, candles, flat, trend

N = 420
K = 260  # warm on the first K candles, then candle by candle


def universe() -> tuple[list[CandleSeries], MarketContext]:
    """Six symbols: BTC, a sector of four (one outperforming), one loner; with
    regime, sentiment and on-chain data for some."""
    market = trend(N, 0.001, noise=0.006, seed=1)
    rng = np.random.default_rng(2)
    closes = [market]
    for extra in (0.002, 0.0, -0.001, 0.0005):
        closes.append(market * np.exp(np.cumsum(extra + rng.normal(0, 0.003, N))))
    closes.append(flat(N, seed=3))
    series = [candles(c, seed=10 + i) for i, c in enumerate(closes)]
    nan = np.nan
    ctx = MarketContext(
        btc_sid=0,
        sector_names=["defi", "l1"],
        sector_members=[np.array([1, 2, 3, 4]), np.array([0, 1, 5])],
        circulating=np.full(6, 1e7),
        regime=signals_pb2.REGIME_BULL,
        metrics={
            "social_score": np.array([60, nan, 40, nan, nan, 80.0]),
            "exchange_net_flow": np.array([nan, -1000, 2000, nan, nan, nan]),
        },
        metrics_baseline={},
    )
    return series, ctx


def state_of(book: IntervalBook, ctx: MarketContext) -> dict[str, np.ndarray]:
    return {
        "closed_grade": book.closed_grade.copy(),
        "grade": book.grade.copy(),
        "direction": book.direction.copy(),
        "since": book.direction_since_ms.copy(),
        "flip_price": book.last_flip_price.copy(),
        "momentum": book.momentum.copy(),
        "last_open_ms": book.last_open_ms.copy(),
        "high": book.high_close.copy(),
        **{c: book.column(c).copy() for c in COLUMNS},
    }


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        np.testing.assert_allclose(value, b[key], rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=key)


def test_incremental_equals_warm_on_all_candles() -> None:
    series, ctx = universe()
    full = IntervalBook(6, HOUR, GradeWeights())
    full.warm(np.arange(6), series, ctx)

    inc = IntervalBook(6, HOUR, GradeWeights())
    inc.warm(np.arange(6), [s.take(slice(0, K)) for s in series], ctx)
    for i in range(K, N):
        upd = inc.apply_closed(np.arange(6), *bars(series, i), ctx)
        assert len(upd.sids) == 6
    assert_same(state_of(inc, ctx), state_of(full, ctx))
    for sid in range(6):
        a, b = inc.signal_fields(sid, ctx), full.signal_fields(sid, ctx)
        assert a.trader_grade == pytest.approx(b.trader_grade, rel=1e-9)
        assert a.indicators == pytest.approx(b.indicators, rel=1e-9)
        assert [f.reason for f in a.factors] == [f.reason for f in b.factors]
        assert vars(a.risk) == pytest.approx(vars(b.risk), rel=1e-9)
        assert a.momentum == b.momentum
    assert not np.isnan(full.closed_grade).any()


def test_replayed_candles_are_skipped() -> None:
    series, ctx = universe()
    book = IntervalBook(6, HOUR, GradeWeights())
    book.warm(np.arange(6), [s.take(slice(0, K)) for s in series], ctx)
    before = state_of(book, ctx)
    upd = book.apply_closed(np.arange(6), *bars(series, K - 1), ctx)
    assert len(upd.sids) == 0
    assert_same(state_of(book, ctx), before)
    # Half new, half old: only the new ones are applied.
    fields = list(bars(series, K))
    fields[0] = np.where(np.arange(6) % 2 == 0, fields[0], series[0].open_ms[K - 2])
    upd = book.apply_closed(np.arange(6), *fields, ctx)
    assert list(upd.sids) == [0, 2, 4]
    with pytest.raises(ValueError, match="twice"):
        book.apply_closed(
            np.array([1, 1]), *(np.repeat(f[:1], 2) for f in bars(series, K + 1)), ctx
        )


def test_forming_candle_is_peeked_without_changing_closed_state() -> None:
    series, ctx = universe()
    book = IntervalBook(6, HOUR, GradeWeights())
    book.warm(np.arange(6), [s.take(slice(0, K)) for s in series], ctx)
    closed = state_of(book, ctx)
    # A forming candle that moves symbol 5 sharply up.
    o, h, lo, c, v = (
        np.array([getattr(series[5], f)[K]]) for f in ("open", "high", "low", "close", "volume")
    )
    c2 = c * 1.08
    book.set_forming(np.array([5]), series[5].open_ms[K : K + 1], o, np.maximum(h, c2), lo, c2, v)
    book.regrade_live(ctx)
    after = state_of(book, ctx)
    for key in ("closed_grade", "direction", "since", "momentum", "last_open_ms", "high"):
        np.testing.assert_array_equal(after[key], closed[key])
    for col in COLUMNS:
        np.testing.assert_array_equal(book.column(col, live=False), closed[col])
    assert book.grade[5] > book.closed_grade[5]
    assert book.last_price[5] == pytest.approx(c2[0])
    assert book.as_of_ms[5] >= series[5].open_ms[K]
    live = book.grade[5]
    live_rsi = book.rsi[5]
    # That candle closing as it was peeked gives the same numbers.
    book.apply_closed(
        np.array([5]), series[5].open_ms[K : K + 1], o, np.maximum(h, c2), lo, c2, v, ctx
    )
    assert book.closed_grade[5] == pytest.approx(live, rel=1e-12)
    assert book.column("rsi", live=False)[5] == pytest.approx(live_rsi, rel=1e-12)
    assert not book.forming[5]


def test_round_trip_mid_series_then_continuing_equals_uninterrupted() -> None:
    series, ctx = universe()
    a = IntervalBook(6, HOUR, GradeWeights(), confirm_bars=4)
    a.warm(np.arange(6), [s.take(slice(0, K)) for s in series], ctx)
    for i in range(K, K + 20):
        a.apply_closed(np.arange(6), *bars(series, i), ctx)
    a.set_forming(np.arange(6), *bars(series, K + 20))
    b = IntervalBook.from_bytes(a.to_bytes(), GradeWeights())
    assert b.confirm_bars == 4 and b.interval_ms == HOUR and b.n_symbols == 6
    for book in (a, b):
        book.regrade_live(ctx)
        for i in range(K + 20, N):
            book.apply_closed(np.arange(6), *bars(series, i), ctx)
    assert_same(state_of(b, ctx), state_of(a, ctx))
    with pytest.raises(ValueError, match="magic"):
        IntervalBook.from_bytes(b"nope", GradeWeights())


def test_add_symbols_keeps_existing_state() -> None:
    series, ctx = universe()
    book = IntervalBook(6, HOUR, GradeWeights())
    book.warm(np.arange(6), series, ctx)
    grades = book.closed_grade.copy()
    book.add_symbols(2)
    assert book.n_symbols == 8
    np.testing.assert_array_equal(book.closed_grade[:6], grades)
    assert np.isnan(book.closed_grade[6:]).all() and not book.has_data[6:].any()
    assert (book.last_open_ms[6:] == -1).all()
    new = candles(trend(50, 0.002, seed=9), seed=9)
    book.warm(np.array([7]), [new], ctx)
    assert book.has_data[7] and not math.isnan(book.closed_grade[7])
    np.testing.assert_array_equal(book.closed_grade[:6], grades)


def test_indicators_equal_talib() -> None:
    s = candles(trend(400, 0.001, noise=0.01, seed=21), seed=21)
    book = IntervalBook(1, HOUR, GradeWeights())
    book.warm(np.arange(1), [s], MarketContext())
    ind = book.signal_fields(0, MarketContext()).indicators
    upper, _, lower = talib.BBANDS(s.close, 20, 2.0, 2.0)
    _, _, hist = talib.MACD(s.close, 12, 26, 9)
    expected = {
        "ema_20": talib.EMA(s.close, 20)[-1],
        "ema_200": talib.EMA(s.close, 200)[-1],
        "sma_200": talib.SMA(s.close, 200)[-1],
        "rsi_14": talib.RSI(s.close, 14)[-1],
        "macd_hist": hist[-1],
        "bb_upper": upper[-1],
        "bb_lower": lower[-1],
        "atr_14": talib.ATR(s.high, s.low, s.close, 14)[-1],
        "obv": talib.OBV(s.close, s.volume)[-1],
        "roc_10": talib.ROC(s.close, 10)[-1],
        "volume_sma_20": talib.SMA(s.volume, 20)[-1],
    }
    for key, value in expected.items():
        assert ind[key] == pytest.approx(value, rel=1e-9), key
    assert ind["bb_percent_b"] == pytest.approx((s.close[-1] - lower[-1]) / (upper[-1] - lower[-1]))


def test_risk_figures_against_numpy() -> None:
    s = candles(trend(300, 0.0005, noise=0.02, seed=31), seed=31)
    book = IntervalBook(1, HOUR, GradeWeights())
    book.warm(np.arange(1), [s], MarketContext())
    risk = book.signal_fields(0, MarketContext()).risk
    ppy = 365 * 24
    r = np.diff(np.log(s.close))[-90:]
    assert risk.volatility == pytest.approx(r.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
    assert risk.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    assert risk.sortino == pytest.approx(r.mean() / downside * math.sqrt(ppy), rel=1e-9)
    window = s.close[-91:]
    drawdown = np.max(1.0 - window / np.maximum.accumulate(window))
    assert risk.max_drawdown == pytest.approx(drawdown, rel=1e-9)
    assert risk.var_95 == pytest.approx(1.0 - math.exp(np.quantile(r, 0.05)), rel=1e-9)


def test_timing_6000_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion on speed: prints where a universe-wide regrade stands."""
    n, hist = 6000, 240
    rng = np.random.default_rng(0)
    steps = rng.normal(0.0002, 0.01, (n, hist + 2))
    close = 100 * np.exp(np.cumsum(steps, axis=1))
    t = 1_700_000_000_000 // HOUR * HOUR + np.arange(hist + 2) * HOUR
    series = [
        CandleSeries(
            t[:hist],
            close[i, :hist],
            close[i, :hist] * 1.004,
            close[i, :hist] * 0.996,
            close[i, :hist],
            np.full(hist, 1000.0),
        )
        for i in range(n)
    ]
    sectors = [np.arange(i, n, 40) for i in range(40)]
    ctx = MarketContext(
        btc_sid=0,
        sector_names=[f"s{i}" for i in range(40)],
        sector_members=sectors,
        circulating=np.full(n, 1e8),
        regime=signals_pb2.REGIME_NEUTRAL,
        metrics={"social_score": rng.uniform(0, 100, n)},
    )
    book = IntervalBook(n, HOUR, GradeWeights())
    t0 = time.perf_counter()
    book.warm(np.arange(n), series, ctx)
    t_warm = time.perf_counter() - t0
    ids = np.arange(n)
    c = close[:, hist]
    t0 = time.perf_counter()
    book.apply_closed(ids, np.full(n, t[hist]), c, c * 1.004, c * 0.996, c, np.full(n, 1000.0), ctx)
    t_apply = time.perf_counter() - t0
    c2 = close[:, hist + 1]
    book.set_forming(ids, np.full(n, t[hist + 1]), c, c2 * 1.004, c2 * 0.996, c2, np.full(n, 500.0))
    t0 = time.perf_counter()
    book.regrade_live(ctx)
    t_live = time.perf_counter() - t0
    t0 = time.perf_counter()
    book.signal_fields(123, ctx)
    t_one = time.perf_counter() - t0
    with capsys.disabled():
        print(
            f"\n[timing] {n} symbols: warm {hist} candles {t_warm * 1e3:.0f} ms; "
            f"apply_closed {t_apply * 1e3:.1f} ms; regrade_live {t_live * 1e3:.1f} ms; "
            f"apply+regrade {(t_apply + t_live) * 1e3:.1f} ms; signal_fields {t_one * 1e3:.1f} ms"
        )
    assert not np.isnan(book.grade).any()


def test_warming_one_new_symbol_compares_it_with_peers_already_in_the_book() -> None:
    series, ctx = universe()
    book = IntervalBook(7, HOUR, GradeWeights())
    book.warm(np.arange(6), series, ctx)
    # Symbol 6 joins the defi sector; it tracks symbol 1 (the outperformer) closely.
    rng = np.random.default_rng(99)
    close = series[1].close * np.exp(rng.normal(0, 0.001, N))
    joined = MarketContext(
        btc_sid=0,
        sector_names=ctx.sector_names,
        sector_members=[np.array([1, 2, 3, 4, 6]), np.array([0, 1, 5])],
        circulating=np.full(7, 1e7),
        regime=ctx.regime,
    )
    book.warm(np.array([6]), [candles(close, seed=99)], joined)
    rs = next(f for f in book.signal_fields(6, joined).factors if f.name == "relative_strength")
    assert rs.weight > 0 and "sector median" in rs.reason and "BTC" in rs.reason
    assert rs.score > 50


def test_above_ma200_needs_200_candles() -> None:
    up = trend(260, 0.003, seed=41)
    book = IntervalBook(2, HOUR, GradeWeights())
    book.warm(np.arange(2), [candles(up, seed=41), candles(up[:150], seed=42)], MarketContext())
    assert bool(book.above_ma200[0]) and not bool(book.above_ma200[1])
    assert book.last_price[0] == up[-1]
    assert book.rsi[0] == pytest.approx(talib.RSI(up, 14)[-1], rel=1e-9)


def test_bad_calls_raise_value_error_and_change_nothing() -> None:
    series, ctx = universe()
    book = IntervalBook(6, HOUR, GradeWeights())
    book.warm(np.arange(6), [s.take(slice(0, K)) for s in series], ctx)
    before = state_of(book, ctx)
    fields = bars(series, K)
    with pytest.raises(ValueError, match=r"0\.\.5"):
        book.apply_closed(np.array([0, 6]), *(f[:2] for f in fields), ctx)
    with pytest.raises(ValueError, match="one length"):
        book.apply_closed(np.arange(6), fields[0][:3], *fields[1:], ctx)
    with pytest.raises(ValueError, match="one history per symbol"):
        book.warm(np.arange(2), series[:1], ctx)
    assert_same(state_of(book, ctx), before)
    with pytest.raises(ValueError, match="confirm_bars"):
        IntervalBook(1, HOUR, GradeWeights(), confirm_bars=0)
