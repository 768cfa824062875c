"""A seeded live crypto market: batches of ticks for the pricing service's default feed.

Model (shared with the history backfill in ``history.py``):

* A common market factor ``F`` (BTC's log price) is a Brownian motion with drift.
  Every other asset's log price moves by ``beta * dF`` plus its own idiosyncratic
  Brownian noise, so correlation with BTC rises with beta.
* A market regime (bull, bear, sideways) sets the factor's drift and a volatility and
  volume multiplier; it ends after an exponentially distributed time (hours) and then
  jumps to another regime by a Markov transition matrix.
* Idiosyncratic volatility grows as market cap falls (small caps are wilder).
* Stablecoins ignore all that: an Ornstein-Uhlenbeck deviation around 1.00, clamped to
  a +-0.5% band.
* Base volume per unit time is a fixed share of circulating supply (turnover), so quote
  volume is proportional to market cap, shaped by a UTC-hour intraday curve, the regime
  and log-normal noise.

Which assets tick: a fifth of every batch cycles round-robin through the universe so
every asset ticks regularly, the rest is drawn with probability proportional to
sqrt(market cap) so large caps trade most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.pricing.assets import AssetInfo

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
YEAR_MS = 365.25 * DAY_MS

BTC_SYMBOL = "BTC-USD"
# Annualised volatility of the market factor (BTC) in a regime with vol_mult 1.
FACTOR_ANNUAL_VOL = 0.55
FACTOR_SIGMA = FACTOR_ANNUAL_VOL / math.sqrt(YEAR_MS)  # per sqrt(ms)
STABLE_SD = 0.0006  # stationary std of a stablecoin's deviation from 1.00
STABLE_BAND = 0.005  # hard clamp of that deviation
STABLE_TAU_MS = 120_000.0  # mean-reversion time constant
STABLE_TICK_NOISE = 0.00005
TURNOVER_PER_DAY = 0.04  # share of circulating supply traded per day
STABLE_TURNOVER_PER_DAY = 0.25
ROUND_ROBIN_SHARE = 0.2  # share of every batch that cycles through all assets
VOLUME_NOISE_SIGMA = 0.8


@dataclass(frozen=True)
class Regime:
    name: str
    drift_per_day: float  # log drift of the market factor
    vol_mult: float
    volume_mult: float
    mean_hours: float  # mean time before the regime ends


REGIMES: tuple[Regime, ...] = (
    Regime("bull", 0.03, 1.0, 1.15, 9.0),
    Regime("bear", -0.035, 1.35, 1.35, 8.0),
    Regime("sideways", 0.0, 0.7, 0.75, 14.0),
)
# Where a regime goes when it ends (row: from, column: to). With the mean durations
# above the long-run drift of the factor is ~0, so a year of history neither explodes
# nor collapses on average.
REGIME_TRANSITIONS = np.array(
    [
        [0.0, 0.35, 0.65],
        [0.4, 0.0, 0.6],
        [0.5, 0.5, 0.0],
    ]
)
REGIME_DRIFT_PER_MS = np.array([r.drift_per_day / DAY_MS for r in REGIMES])
REGIME_VOL_MULT = np.array([r.vol_mult for r in REGIMES])
REGIME_VOLUME_MULT = np.array([r.volume_mult for r in REGIMES])
_REGIME_MEAN_MS = np.array([r.mean_hours * HOUR_MS for r in REGIMES])
_REGIME_CDF = np.cumsum(REGIME_TRANSITIONS, axis=1)


def idiosyncratic_annual_vol(market_cap: np.ndarray) -> np.ndarray:
    """Annualised idiosyncratic volatility by size: 0.25 for >= $100B ... 1.0 at $1M."""
    log_cap = np.log10(np.maximum(np.asarray(market_cap, dtype=np.float64), 1.0))
    return np.clip(0.4 + 0.15 * (10.0 - log_cap), 0.25, 1.2)


def intraday_volume_factor(times_ms: np.ndarray) -> np.ndarray:
    """Volume multiplier by UTC time of day: peaks ~15:00 (US/EU overlap), mean 1."""
    hours = (np.asarray(times_ms) % DAY_MS) / HOUR_MS
    return 1.0 + 0.35 * np.cos(2.0 * np.pi * (hours - 15.0) / 24.0)


def next_regime(regime: int, u_end: float, u_to: float, dt_ms: float) -> int:
    """The regime after ``dt_ms`` given two uniforms (one switch at most per call)."""
    if u_end < -math.expm1(-dt_ms / _REGIME_MEAN_MS[regime]):
        return int(min(np.searchsorted(_REGIME_CDF[regime], u_to, side="right"), 2))
    return regime


@dataclass(frozen=True)
class ModelParams:
    """Per-asset model constants, arrays aligned with the asset list."""

    beta: np.ndarray  # float64
    idio_sigma: np.ndarray  # idiosyncratic std per sqrt(ms), regime vol_mult 1
    stable: np.ndarray  # bool
    circulating: np.ndarray  # float64
    market_cap: np.ndarray  # float64, at the prices the params were built with
    turnover_per_ms: np.ndarray  # share of circulating supply traded per ms


def model_params(assets: Sequence[AssetInfo], prices: np.ndarray) -> ModelParams:
    stable = np.array([a.is_stablecoin for a in assets], dtype=bool)
    circulating = np.array([a.circulating_supply for a in assets], dtype=np.float64)
    market_cap = circulating * np.asarray(prices, dtype=np.float64)
    idio = idiosyncratic_annual_vol(market_cap) / math.sqrt(YEAR_MS)
    # BTC is the factor itself; stablecoins follow their own process.
    idio[[a.symbol == BTC_SYMBOL for a in assets]] = 0.0
    idio[stable] = 0.0
    beta = np.array([a.beta for a in assets], dtype=np.float64)
    beta[stable] = 0.0
    turnover = np.where(stable, STABLE_TURNOVER_PER_DAY, TURNOVER_PER_DAY) / DAY_MS
    return ModelParams(beta, idio, stable, circulating, market_cap, turnover)


@dataclass
class TickBatch:
    symbol_idx: np.ndarray  # int32 indices into the simulator's assets
    times_ms: np.ndarray  # int64, ascending
    prices: np.ndarray  # float64
    volumes: np.ndarray  # float64, base-asset units

    def __len__(self) -> int:
        return len(self.symbol_idx)


class MarketSimulator:
    """Generates ticks for ``assets`` step by step; deterministic for a seed and the same
    sequence of ``step`` calls.
    """

    def __init__(
        self,
        assets: Sequence[AssetInfo],
        *,
        seed: int,
        start_prices: np.ndarray,
        start_ms: int,
    ) -> None:
        prices = np.array(start_prices, dtype=np.float64)
        if len(assets) == 0:
            raise ValueError("the simulator needs at least one asset")
        if prices.shape != (len(assets),):
            raise ValueError(f"start_prices must have one price per asset ({len(assets)})")
        if not np.all(np.isfinite(prices) & (prices > 0)):
            raise ValueError("start_prices must be positive and finite")
        self.assets = list(assets)
        self._n = len(assets)
        self._p = model_params(assets, prices)
        self._rng = np.random.default_rng([seed, 0x51_4D])  # own stream, not history's
        self._now = int(start_ms)
        self._prices = prices
        self._log_p = np.log(prices)
        self._last_t = np.full(self._n, self._now, dtype=np.int64)
        self._factor = 0.0
        self._factor_at_last = np.zeros(self._n)
        self._regime = int(self._rng.integers(len(REGIMES)))
        self._stable_dev = np.where(
            self._p.stable, np.clip(prices - 1.0, -STABLE_BAND, STABLE_BAND), 0.0
        )
        weights = np.sqrt(np.maximum(self._p.market_cap, 1.0))
        weights /= weights.sum()
        self._cdf = np.cumsum(weights)
        self._cdf[-1] = 1.0
        # Expected share of a batch per asset (round-robin part + weighted part).
        self._share = ROUND_ROBIN_SHARE / self._n + (1.0 - ROUND_ROBIN_SHARE) * weights
        self._cursor = 0
        self._rr_carry = 0.0
        self._idx_dtype = np.int16 if self._n <= np.iinfo(np.int16).max else np.int32

    @property
    def current_prices(self) -> np.ndarray:
        """Last traded price of every asset (a copy)."""
        return self._prices.copy()

    @property
    def regime(self) -> str:
        return REGIMES[self._regime].name

    @property
    def now_ms(self) -> int:
        """The ``now_ms`` of the last step (or ``start_ms``)."""
        return self._now

    def step(self, now_ms: int, n_ticks: int) -> TickBatch:
        """``n_ticks`` ticks time-stamped in (previous now_ms, now_ms], sorted by time.

        A ``now_ms`` at or before the previous one (no time passed, or a wall clock that
        stepped back) yields an empty batch and leaves the state alone: the feed never
        emits ticks out of time order.
        """
        now_ms = int(now_ms)
        if n_ticks < 0:
            raise ValueError(f"n_ticks must be >= 0, got {n_ticks}")
        dt = now_ms - self._now
        if dt <= 0:
            return _empty_batch()
        rng = self._rng
        u_end, u_to = rng.random(2)
        self._regime = next_regime(self._regime, u_end, u_to, dt)
        regime = self._regime
        drift = REGIME_DRIFT_PER_MS[regime]
        vol = REGIME_VOL_MULT[regime]
        factor_sigma = FACTOR_SIGMA * vol

        # Stablecoin deviations move once per step (exact OU update over dt); ticks in
        # between interpolate, which keeps them in the band for any step length.
        a = math.exp(-dt / STABLE_TAU_MS)
        dev_old = self._stable_dev
        dev_new = dev_old * a + STABLE_SD * math.sqrt(1.0 - a * a) * rng.standard_normal(self._n)
        dev_new = np.where(self._p.stable, np.clip(dev_new, -STABLE_BAND, STABLE_BAND), 0.0)
        self._stable_dev = dev_new

        t0 = self._now
        self._now = now_ms
        if n_ticks == 0:
            self._advance_factor(dt, drift, factor_sigma)
            return _empty_batch()

        times = rng.integers(t0 + 1, now_ms + 1, size=n_ticks, dtype=np.int64)
        # The round-robin share carries its fraction over, so tiny batches still cycle.
        self._rr_carry += n_ticks * ROUND_ROBIN_SHARE
        n_rr = min(int(self._rr_carry), n_ticks)
        self._rr_carry -= n_rr
        rr = (self._cursor + np.arange(n_rr, dtype=np.int64)) % self._n
        self._cursor = int((self._cursor + n_rr) % self._n)
        drawn = np.searchsorted(self._cdf, rng.random(n_ticks - n_rr), side="right")
        idx = np.concatenate([rr, np.minimum(drawn, self._n - 1)]).astype(self._idx_dtype)
        order = np.argsort(times, kind="stable")
        times = times[order]
        idx = idx[order]

        # Market factor sampled at every tick time.
        step_dt = np.diff(times, prepend=t0).astype(np.float64)
        d_factor = drift * step_dt + factor_sigma * np.sqrt(step_dt) * rng.standard_normal(n_ticks)
        factor_at = self._factor + np.cumsum(d_factor)
        self._factor = float(factor_at[-1])
        self._advance_factor(float(now_ms - times[-1]), drift, factor_sigma)

        # Per asset (grouped, time order kept): log price moves by beta * factor change
        # since its previous tick plus idiosyncratic noise over that gap.
        grouped = np.argsort(idx, kind="stable")
        g_idx = idx[grouped].astype(np.intp)
        g_t = times[grouped]
        g_f = factor_at[grouped]
        starts = np.flatnonzero(np.concatenate(([True], g_idx[1:] != g_idx[:-1])))
        lengths = np.diff(np.append(starts, n_ticks))
        ends = starts + lengths - 1
        first_assets = g_idx[starts]
        prev_t = np.empty_like(g_t)
        prev_t[1:] = g_t[:-1]
        prev_t[starts] = self._last_t[first_assets]
        prev_f = np.empty_like(g_f)
        prev_f[1:] = g_f[:-1]
        prev_f[starts] = self._factor_at_last[first_assets]
        gap = (g_t - prev_t).astype(np.float64)
        idio_sd = self._p.idio_sigma[g_idx] * vol * np.sqrt(gap)
        d_log = self._p.beta[g_idx] * (g_f - prev_f) + idio_sd * rng.standard_normal(n_ticks)
        csum = np.cumsum(d_log)
        base = csum[starts] - d_log[starts]
        log_p = np.repeat(self._log_p[first_assets] - base, lengths) + csum
        # exp() of a log price outside +-700 would overflow or hit 0: keep it finite.
        np.clip(log_p, -700.0, 700.0, out=log_p)
        last_assets = g_idx[ends]
        self._log_p[last_assets] = log_p[ends]
        self._last_t[last_assets] = g_t[ends]
        self._factor_at_last[last_assets] = g_f[ends]

        prices = np.empty(n_ticks)
        prices[grouped] = np.exp(log_p)
        idx_p = idx.astype(np.intp)
        stable_ticks = self._p.stable[idx_p]
        if stable_ticks.any():
            s_idx = idx_p[stable_ticks]
            frac = (times[stable_ticks] - t0) / dt
            dev = dev_old[s_idx] + (dev_new[s_idx] - dev_old[s_idx]) * frac
            dev += STABLE_TICK_NOISE * rng.standard_normal(len(s_idx))
            prices[stable_ticks] = 1.0 + np.clip(dev, -STABLE_BAND, STABLE_BAND)
        self._prices[last_assets] = prices[grouped[ends]]

        # Base volume: the asset's traded supply over this step, split over its expected
        # tick count, shaped by time of day, regime and noise (log-normal with mean 1).
        per_tick = (self._p.turnover_per_ms * self._p.circulating * dt) / (n_ticks * self._share)
        noise = rng.lognormal(-0.5 * VOLUME_NOISE_SIGMA**2, VOLUME_NOISE_SIGMA, n_ticks)
        volumes = per_tick[idx_p] * intraday_volume_factor(times) * noise
        volumes *= REGIME_VOLUME_MULT[regime]
        return TickBatch(idx.astype(np.int32), times, prices, volumes)

    def _advance_factor(self, dt: float, drift: float, sigma: float) -> None:
        if dt > 0:
            z = float(self._rng.standard_normal())
            self._factor += drift * dt + sigma * math.sqrt(dt) * z


def _empty_batch() -> TickBatch:
    return TickBatch(
        np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0)
    )
