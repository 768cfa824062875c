"""The live market simulator: determinism, sane prices, stablecoins, beta, coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from services.pricing.assets import AssetInfo, build_universe
from services.pricing.simulator import REGIMES, MarketSimulator, TickBatch

START_MS = 1_750_000_000_000


def _simulator(assets: list[AssetInfo], seed: int = 42) -> MarketSimulator:
    prices = np.array([a.reference_price for a in assets])
    return MarketSimulator(assets, seed=seed, start_prices=prices, start_ms=START_MS)


def _run(sim: MarketSimulator, steps: int, step_ms: int, ticks: int) -> list[TickBatch]:
    now = sim.now_ms
    batches = []
    for _ in range(steps):
        now += step_ms
        batches.append(sim.step(now, ticks))
    return batches


def _asset(symbol: str, beta: float, *, cap: float = 1e9, stable: bool = False) -> AssetInfo:
    price = 1.0 if stable else 10.0
    return AssetInfo(
        symbol=symbol,
        name=symbol,
        sectors=("Stablecoin",) if stable else ("Layer 1",),
        circulating_supply=cap / price,
        total_supply=cap / price,
        max_supply=None,
        reference_price=price,
        beta=beta,
    )


def test_same_seed_same_ticks() -> None:
    assets = build_universe(0, seed=1)
    a = _run(_simulator(assets, seed=9), 50, 100, 300)
    b = _run(_simulator(assets, seed=9), 50, 100, 300)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.symbol_idx, y.symbol_idx)
        np.testing.assert_array_equal(x.times_ms, y.times_ms)
        np.testing.assert_array_equal(x.prices, y.prices)
        np.testing.assert_array_equal(x.volumes, y.volumes)
    c = _run(_simulator(assets, seed=10), 50, 100, 300)
    assert not np.array_equal(a[-1].prices, c[-1].prices)


def test_batches_are_well_formed() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets)
    previous = sim.now_ms
    for now in (previous + 1, previous + 100, previous + 5_000, previous + 65_000):
        batch = sim.step(now, 1_000)
        assert len(batch) == 1_000
        assert batch.symbol_idx.dtype == np.int32
        assert batch.times_ms.dtype == np.int64
        assert batch.prices.dtype == np.float64 and batch.volumes.dtype == np.float64
        assert batch.times_ms.min() > previous and batch.times_ms.max() <= now
        assert np.all(np.diff(batch.times_ms) >= 0)
        assert batch.symbol_idx.min() >= 0 and batch.symbol_idx.max() < len(assets)
        assert np.all(np.isfinite(batch.prices) & (batch.prices > 0))
        assert np.all(np.isfinite(batch.volumes) & (batch.volumes > 0))
        previous = now
    assert sim.now_ms == previous


def test_current_prices_are_the_last_ticks() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets)
    before = sim.current_prices
    batch = sim.step(sim.now_ms + 1_000, 5_000)
    expected = before.copy()
    for idx, price in zip(batch.symbol_idx, batch.prices, strict=True):
        expected[idx] = price  # time order: the last tick of each asset wins
    np.testing.assert_array_equal(sim.current_prices, expected)


def test_empty_steps_and_bad_calls() -> None:
    sim = _simulator(build_universe(0, seed=1))
    assert len(sim.step(sim.now_ms, 100)) == 0  # no time passed: nothing to stamp
    assert len(sim.step(sim.now_ms + 1_000, 0)) == 0
    now, prices = sim.now_ms, sim.current_prices
    assert len(sim.step(now - 500, 100)) == 0  # a clock stepping back emits nothing
    assert sim.now_ms == now
    np.testing.assert_array_equal(sim.current_prices, prices)
    assert sim.step(now + 10, 100).times_ms.min() > now
    with pytest.raises(ValueError):
        sim.step(sim.now_ms + 10, -1)
    with pytest.raises(ValueError):
        MarketSimulator(
            build_universe(3, seed=1), seed=1, start_prices=np.ones(2), start_ms=START_MS
        )
    with pytest.raises(ValueError):
        MarketSimulator(
            build_universe(2, seed=1),
            seed=1,
            start_prices=np.array([1.0, 0.0]),
            start_ms=START_MS,
        )


def test_prices_stay_positive_and_finite_over_a_wild_run() -> None:
    # Hour-long steps over two months of a universe full of small caps.
    assets = build_universe(400, seed=3)
    sim = _simulator(assets, seed=3)
    for batch in _run(sim, 24 * 60, 3_600_000, 2_000):
        assert np.all(np.isfinite(batch.prices) & (batch.prices > 0))
        assert np.all(np.isfinite(batch.volumes) & (batch.volumes > 0))
    assert np.all(np.isfinite(sim.current_prices) & (sim.current_prices > 0))


def test_stablecoins_stay_within_one_percent_of_a_dollar() -> None:
    assets = build_universe(0, seed=1)
    stable = np.array([a.is_stablecoin for a in assets])
    assert stable.sum() >= 4
    sim = _simulator(assets, seed=5)
    # Two days: one-second steps for a while, then minute and hour steps.
    batches = _run(sim, 600, 1_000, 500) + _run(sim, 2_000, 60_000, 500)
    batches += _run(sim, 24, 3_600_000, 500)
    seen = 0
    for batch in batches:
        prices = batch.prices[stable[batch.symbol_idx]]
        seen += len(prices)
        assert np.all(np.abs(prices - 1.0) <= 0.01)
    assert seen > 10_000
    assert np.all(np.abs(sim.current_prices[stable] - 1.0) <= 0.01)


def test_correlation_with_btc_grows_with_beta() -> None:
    betas = [0.3, 0.8, 1.3, 1.8]
    assets = [_asset("BTC-USD", 1.0, cap=1e12)]
    assets += [_asset(f"B{i}-USD", b) for i, b in enumerate(betas)]
    assets.append(_asset("USDX-USD", 0.0, stable=True))
    sim = _simulator(assets, seed=11)
    samples = [sim.current_prices]
    for _ in range(3_000):
        sim.step(sim.now_ms + 60_000, 500)
        samples.append(sim.current_prices)
    returns = np.diff(np.log(np.array(samples)), axis=0)
    corr = [float(np.corrcoef(returns[:, 0], returns[:, i + 1])[0, 1]) for i in range(len(betas))]
    assert all(b > a + 0.05 for a, b in itertools.pairwise(corr)), corr
    # A $1B asset has idiosyncratic volatility equal to the factor's: corr = b / sqrt(b^2 + 1).
    theory = [b / np.sqrt(b * b + 1.0) for b in betas]
    np.testing.assert_allclose(corr, theory, atol=0.1)
    stable_corr = np.corrcoef(returns[:, 0], returns[:, -1])[0, 1]
    assert abs(stable_corr) < 0.15


def test_every_asset_ticks_every_few_seconds() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets)
    batches = _run(sim, 600, 100, 200)  # 2,000 ticks/s for a minute
    idx = np.concatenate([b.symbol_idx for b in batches])
    times = np.concatenate([b.times_ms for b in batches])
    for i in range(len(assets)):
        t = np.concatenate(([START_MS], times[idx == i], [sim.now_ms]))
        assert np.max(np.diff(t)) <= 3_000, assets[i].symbol


def test_tiny_batches_still_reach_every_asset() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets)
    batches = _run(sim, 3_000, 10, 2)  # 200 ticks/s in batches of two
    idx = np.concatenate([b.symbol_idx for b in batches])
    assert set(idx.tolist()) == set(range(len(assets)))


def test_large_caps_tick_more_than_small_caps() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets)
    idx = np.concatenate([b.symbol_idx for b in _run(sim, 100, 1_000, 2_000)])
    counts = np.bincount(idx, minlength=len(assets))
    caps = np.array([a.reference_market_cap for a in assets])
    large, small = counts[caps >= 10e9].mean(), counts[caps < 1e9].mean()
    assert large > 3 * small


def test_quote_volume_is_proportional_to_market_cap() -> None:
    assets = build_universe(0, seed=1)
    sim = _simulator(assets, seed=2)
    quote = np.zeros(len(assets))
    for b in _run(sim, 1_440, 60_000, 400):  # one day
        np.add.at(quote, b.symbol_idx, b.volumes * b.prices)
    caps = np.array([a.reference_market_cap for a in assets])
    stable = np.array([a.is_stablecoin for a in assets])
    slope = np.polyfit(np.log(caps[~stable]), np.log(quote[~stable]), 1)[0]
    assert 0.85 < slope < 1.15
    turnover = quote[~stable] / caps[~stable]
    assert np.all((turnover > 0.005) & (turnover < 0.5))


def test_regimes_switch_over_hours() -> None:
    sim = _simulator(build_universe(10, seed=1), seed=4)
    names = {r.name for r in REGIMES}
    seen = []
    for _ in range(14 * 24 * 12):  # two weeks of 5-minute steps
        sim.step(sim.now_ms + 300_000, 10)
        seen.append(sim.regime)
    assert set(seen) <= names
    assert len(set(seen)) == len(names)
    switches = sum(a != b for a, b in itertools.pairwise(seen))
    assert 10 < switches < 200  # hours-long regimes, not minutes or weeks
