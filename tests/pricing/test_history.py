"""The first-start backfill: coverage, alignment, open candles, continuity, and
consistency across intervals checked against an independent pandas resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.pricing.assets import AssetInfo, build_universe
from services.pricing.history import (
    COARSE_INTERVALS_MS,
    FINE_INTERVALS_MS,
    INTERVALS_MS,
    AssetHistory,
    CandleArrays,
    aggregate,
    generate_history,
)
from tests.pricing.reference import OHLCV_AGG

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
END_MS = 1_750_000_123_456  # not aligned to anything: every interval has an open candle
ALIGNED_END_MS = 1_749_945_600_000 + 5 * HOUR_MS  # 05:00 UTC: minute/hour aligned, not 4h
COARSE_DAYS = 20
FINE_DAYS = 1
SEED = 17
COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "trades")


def _universe() -> list[AssetInfo]:
    # BTC, ETH, USDT, XRP, BNB, SOL, USDC, ... plus two synthetic small caps.
    named = build_universe(0, seed=1)
    return [*named[:12], *build_universe(len(named) + 2, seed=1)[-2:]]


def _histories(end_ms: int = END_MS, seed: int = SEED) -> list[AssetHistory]:
    return list(
        generate_history(
            _universe(), seed=seed, end_ms=end_ms, coarse_days=COARSE_DAYS, fine_days=FINE_DAYS
        )
    )


@pytest.fixture(scope="module")
def histories() -> list[AssetHistory]:
    return _histories()


@pytest.fixture(scope="module")
def aligned_histories() -> list[AssetHistory]:
    return _histories(ALIGNED_END_MS)


def _frame(c: CandleArrays) -> pd.DataFrame:
    data = {name: getattr(c, name) for name in COLUMNS}
    return pd.DataFrame(data, index=pd.to_datetime(c.open_ms, unit="ms"))


def _pandas_resample(fine: CandleArrays, fine_ms: int, coarse_ms: int) -> pd.DataFrame:
    """Independent reference: pandas buckets and OHLCV rules, with a part count."""
    grouped = _frame(fine).resample(
        pd.Timedelta(milliseconds=coarse_ms), origin="epoch", label="left", closed="left"
    )
    out = grouped.agg(OHLCV_AGG)
    out["parts"] = grouped.size()
    return out[out["parts"] > 0]


def _assert_matches_resample(
    fine: CandleArrays, coarse: CandleArrays, fine_ms: int, coarse_ms: int, end_ms: int
) -> int:
    """Compare every coarse candle the fine data covers completely; return how many."""
    expected = _pandas_resample(fine, fine_ms, coarse_ms)
    actual = _frame(coarse)
    first_fine = int(fine.open_ms[0])
    compared = 0
    for when, row in expected.iterrows():
        start = int(pd.Timestamp(when).value // 1_000_000)
        if start < first_fine:
            continue  # the fine data starts inside this bucket: not fully covered
        full = row["parts"] == coarse_ms // fine_ms
        holds_end = start <= end_ms < start + coarse_ms  # the open candle: covered to now
        if not (full or holds_end):
            continue
        got = actual.loc[when]
        for name in COLUMNS:
            assert got[name] == pytest.approx(row[name], rel=1e-12), (coarse_ms, when, name)
        compared += 1
    return compared


def test_every_interval_is_present(histories: list[AssetHistory]) -> None:
    assert [h.symbol_idx for h in histories] == list(range(len(_universe())))
    for h in histories:
        assert sorted(h.candles) == sorted(INTERVALS_MS)


@pytest.mark.parametrize("end_ms", [END_MS, ALIGNED_END_MS])
def test_coverage_and_alignment(
    end_ms: int, histories: list[AssetHistory], aligned_histories: list[AssetHistory]
) -> None:
    hs = histories if end_ms == END_MS else aligned_histories
    for h in hs:
        for width, candles in h.candles.items():
            days = FINE_DAYS if width in FINE_INTERVALS_MS else COARSE_DAYS
            first = (end_ms - days * DAY_MS) // width * width
            last = (end_ms - 1) // width * width
            assert candles.open_ms[0] == first
            assert candles.open_ms[-1] == last
            assert len(candles) == (last - first) // width + 1
            assert np.all(np.diff(candles.open_ms) == width)  # contiguous, no gaps
            assert np.all(candles.open_ms % width == 0)


def test_only_the_candle_holding_now_is_open(
    histories: list[AssetHistory], aligned_histories: list[AssetHistory]
) -> None:
    for end_ms, hs in ((END_MS, histories), (ALIGNED_END_MS, aligned_histories)):
        for h in hs:
            for width, c in h.candles.items():
                assert c.closed[:-1].all()
                holds_now = c.open_ms[-1] <= end_ms < c.open_ms[-1] + width
                assert bool(c.closed[-1]) == (not holds_now), (end_ms, width)
    # The unaligned end leaves every interval open; 05:00 UTC only 4h and 1d.
    assert not any(c.closed[-1] for c in histories[0].candles.values())
    aligned_open = {w for w, c in aligned_histories[0].candles.items() if not c.closed[-1]}
    assert aligned_open == {14_400_000, DAY_MS}


def test_fine_intervals_are_the_resampled_minutes(histories: list[AssetHistory]) -> None:
    for h in histories:
        minutes = h.candles[MINUTE_MS]
        for width in (300_000, 900_000, HOUR_MS):
            coarse = h.candles[width]
            compared = _assert_matches_resample(minutes, coarse, MINUTE_MS, width, END_MS)
            assert compared >= FINE_DAYS * DAY_MS // width - 1


def test_coarse_intervals_are_the_resampled_hours(
    histories: list[AssetHistory], aligned_histories: list[AssetHistory]
) -> None:
    for end_ms, hs in ((END_MS, histories), (ALIGNED_END_MS, aligned_histories)):
        for h in hs:
            hours = h.candles[HOUR_MS]
            for width in (14_400_000, DAY_MS):
                compared = _assert_matches_resample(hours, h.candles[width], HOUR_MS, width, end_ms)
                assert compared >= COARSE_DAYS * DAY_MS // width - 1


def test_candles_are_sane_and_continuous(histories: list[AssetHistory]) -> None:
    universe = _universe()
    for h in histories:
        for width, c in h.candles.items():
            assert np.all(c.low > 0)
            assert np.all(c.low <= np.minimum(c.open, c.close))
            assert np.all(c.high >= np.maximum(c.open, c.close))
            assert np.all(np.isfinite(c.high))
            assert np.all(c.volume > 0) and np.all(c.quote_volume > 0)
            assert np.all(c.trades >= 1)
            typical_low, typical_high = c.volume * c.low, c.volume * c.high
            assert np.all(c.quote_volume >= typical_low * (1 - 1e-9))
            assert np.all(c.quote_volume <= typical_high * (1 + 1e-9))
            # Each candle opens where the previous one closed.
            np.testing.assert_allclose(c.open[1:], c.close[:-1], rtol=1e-9, err_msg=str(width))
            assert c.close[-1] == pytest.approx(h.last_price, rel=1e-12)
        asset = universe[h.symbol_idx]
        if asset.is_stablecoin:
            for c in h.candles.values():
                assert np.all(np.abs(c.high - 1.0) <= 0.01) and np.all(np.abs(c.low - 1.0) <= 0.01)
        else:
            assert h.last_price == pytest.approx(asset.reference_price, rel=1e-9)
        assert h.last_time_ms == END_MS - 1


def test_the_path_is_continuous_where_the_grid_changes(histories: list[AssetHistory]) -> None:
    # The 1h series switches from simulated hours to aggregated minutes one day back.
    for h in histories:
        hours = h.candles[HOUR_MS]
        jumps = np.abs(np.log(hours.open[1:] / hours.close[:-1]))
        assert jumps.max() < 1e-9


def test_returns_follow_beta(histories: list[AssetHistory]) -> None:
    universe = _universe()
    symbols = [a.symbol for a in universe]

    def hourly_returns(symbol: str) -> np.ndarray:
        close = histories[symbols.index(symbol)].candles[HOUR_MS].close
        return np.diff(np.log(close))

    btc = hourly_returns("BTC-USD")
    eth = float(np.corrcoef(btc, hourly_returns("ETH-USD"))[0, 1])
    usdt = float(np.corrcoef(btc, hourly_returns("USDT-USD"))[0, 1])
    assert eth > 0.6
    assert abs(usdt) < 0.2


def test_history_is_deterministic(histories: list[AssetHistory]) -> None:
    again = _histories()
    other = _histories(seed=SEED + 1)
    for a, b in zip(histories, again, strict=True):
        assert a.last_price == b.last_price
        for width in INTERVALS_MS:
            for name in (*COLUMNS, "open_ms", "closed"):
                np.testing.assert_array_equal(
                    getattr(a.candles[width], name), getattr(b.candles[width], name)
                )
    assert not np.array_equal(histories[0].candles[HOUR_MS].close, other[0].candles[HOUR_MS].close)


def test_an_assets_history_does_not_depend_on_the_universe_size(
    histories: list[AssetHistory],
) -> None:
    first = next(
        generate_history(
            _universe()[:1],
            seed=SEED,
            end_ms=END_MS,
            coarse_days=COARSE_DAYS,
            fine_days=FINE_DAYS,
        )
    )
    np.testing.assert_array_equal(first.candles[DAY_MS].close, histories[0].candles[DAY_MS].close)


def test_default_windows() -> None:
    h = next(generate_history(_universe()[:1], seed=1, end_ms=END_MS))
    assert len(h.candles[HOUR_MS]) in (365 * 24, 365 * 24 + 1)
    assert len(h.candles[DAY_MS]) in (365, 366)
    assert len(h.candles[MINUTE_MS]) in (2 * 1440, 2 * 1440 + 1)
    assert all(w in h.candles for w in COARSE_INTERVALS_MS + FINE_INTERVALS_MS)


def test_bad_windows_are_rejected() -> None:
    with pytest.raises(ValueError):
        next(generate_history(_universe()[:1], seed=1, end_ms=END_MS, coarse_days=1, fine_days=2))
    with pytest.raises(ValueError):
        next(generate_history(_universe()[:1], seed=1, end_ms=END_MS, fine_days=-1))


def _candles(open_ms: list[int], closed: list[bool] | None = None) -> CandleArrays:
    n = len(open_ms)
    rng = np.random.default_rng(0)
    close = 100 + rng.standard_normal(n).cumsum()
    open_ = np.concatenate(([100.0], close[:-1]))
    return CandleArrays(
        open_ms=np.array(open_ms, dtype=np.int64),
        open=open_,
        high=np.maximum(open_, close) + rng.random(n),
        low=np.minimum(open_, close) - rng.random(n),
        close=close,
        volume=rng.random(n) + 0.1,
        quote_volume=rng.random(n) * 100 + 1,
        trades=rng.integers(1, 50, n),
        closed=np.array(closed if closed is not None else [True] * n, dtype=bool),
    )


def test_aggregate_matches_pandas_with_gaps() -> None:
    # Minutes with a gap; 5-minute buckets built from whatever parts exist.
    minutes = [m * MINUTE_MS for m in [*range(0, 7), *range(12, 23)]]
    fine = _candles(minutes)
    out = aggregate(fine, MINUTE_MS, 300_000)
    expected = _pandas_resample(fine, MINUTE_MS, 300_000)
    np.testing.assert_array_equal(out.open_ms, expected.index.as_unit("ms").asi8)
    for name in COLUMNS:
        np.testing.assert_allclose(getattr(out, name), expected[name].to_numpy(), rtol=1e-12)
    assert out.trades.dtype == np.int64


def test_aggregate_closed_rule() -> None:
    fine = _candles([0, MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS], [True, True, False, True])
    out = aggregate(fine, MINUTE_MS, 300_000)
    assert out.closed.tolist() == [False, True]  # closed only if every part is
    out = aggregate(fine, MINUTE_MS, 300_000, now_ms=7 * MINUTE_MS)
    assert out.closed.tolist() == [False, False]  # the second bucket still holds now


def test_aggregate_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        aggregate(_candles([0, MINUTE_MS]), MINUTE_MS, 90_000)  # not a multiple
    with pytest.raises(ValueError):
        aggregate(_candles([0, 30_000]), MINUTE_MS, 300_000)  # misaligned
    with pytest.raises(ValueError):
        aggregate(_candles([MINUTE_MS, 0]), MINUTE_MS, 300_000)  # descending
    assert len(aggregate(CandleArrays.empty(), MINUTE_MS, 300_000)) == 0
