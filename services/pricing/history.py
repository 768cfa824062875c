"""First-start backfill: a year of consistent OHLCV candles per asset, ending "now".

The price path uses the simulator's model (``simulator.py``): a common market factor
with regime-dependent drift and volatility, ``beta`` exposure to it, idiosyncratic
noise by size, stablecoins mean-reverting around 1.00. To keep 6,000 assets affordable
the path is simulated on a mixed grid: one-hour bars from the start of the coarse window
to the start of the fine window, then one-minute bars up to ``end_ms``. Each bar's high
and low are drawn from the exact distribution of a Brownian bridge's extremes, so they
are consistent with the bar's open, close and volatility.

Candles come out consistent by construction: 1m candles are the minute bars; 5m, 15m
and the fine window's 1h are aggregated from them; 4h and 1d are aggregated from the
whole 1h series. The path is built backwards from each asset's reference price, so the
last close (``last_price``) is the reference price and the live simulator can start
there. Only candles whose bucket contains ``end_ms`` are open (closed=False).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from services.pricing.assets import AssetInfo
from services.pricing.candles import CandleArrays
from services.pricing.simulator import (
    DAY_MS,
    FACTOR_SIGMA,
    HOUR_MS,
    MINUTE_MS,
    REGIME_DRIFT_PER_MS,
    REGIME_VOL_MULT,
    REGIME_VOLUME_MULT,
    REGIMES,
    STABLE_BAND,
    STABLE_SD,
    STABLE_TAU_MS,
    ModelParams,
    intraday_volume_factor,
    model_params,
    next_regime,
)

INTERVALS_MS: tuple[int, ...] = (60_000, 300_000, 900_000, 3_600_000, 14_400_000, 86_400_000)
FINE_INTERVALS_MS: tuple[int, ...] = (60_000, 300_000, 900_000)
COARSE_INTERVALS_MS: tuple[int, ...] = (3_600_000, 14_400_000, 86_400_000)

_HISTORY_STREAM = 0x4849_5354  # "HIST": keeps history's random streams apart from others
_ACTIVITY_SIGMA = 0.45
# exp(-x) below ~1e-13 of a stablecoin deviation is noise: past this the OU state resets.
_OU_RESET = 30.0


@dataclass
class AssetHistory:
    symbol_idx: int
    candles: dict[int, CandleArrays]  # interval width in ms -> candles
    last_price: float  # the last close: where the live feed continues
    last_time_ms: int  # time of the last generated trade (end_ms - 1)


def aggregate(
    candles: CandleArrays, from_ms: int, to_ms: int, *, now_ms: int | None = None
) -> CandleArrays:
    """Aggregate ``from_ms``-wide candles into ``to_ms``-wide ones (epoch-aligned, UTC).

    open = first open, high = max, low = min, close = last close, volume, quote_volume
    and trades are sums. An output candle is closed when all its parts are; with
    ``now_ms`` it must also have ended by then (its bucket does not contain ``now_ms``).
    """
    if from_ms <= 0 or to_ms <= 0 or to_ms % from_ms:
        raise ValueError(f"to_ms ({to_ms}) must be a positive multiple of from_ms ({from_ms})")
    n = len(candles)
    if n == 0:
        return CandleArrays.empty()
    open_ms = candles.open_ms
    if np.any(open_ms % from_ms):
        raise ValueError(f"candle open times are not aligned to {from_ms} ms")
    if n > 1 and np.any(np.diff(open_ms) <= 0):
        raise ValueError("candle open times must be strictly ascending")
    return _aggregate(candles, to_ms, now_ms)


def _aggregate(candles: CandleArrays, to_ms: int, now_ms: int | None) -> CandleArrays:
    """``aggregate`` without the input checks, for series built here (ascending, aligned)."""
    n = len(candles)
    if n == 0:
        return CandleArrays.empty()
    bucket = candles.open_ms // to_ms
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.append(starts[1:], n) - 1
    out_open_ms = bucket[starts] * to_ms
    closed = np.logical_and.reduceat(candles.closed, starts)
    if now_ms is not None:
        closed &= out_open_ms + to_ms <= now_ms
    return CandleArrays(
        open_ms=out_open_ms.astype(np.int64),
        open=candles.open[starts],
        high=np.maximum.reduceat(candles.high, starts),
        low=np.minimum.reduceat(candles.low, starts),
        close=candles.close[ends],
        volume=np.add.reduceat(candles.volume, starts),
        quote_volume=np.add.reduceat(candles.quote_volume, starts),
        trades=np.add.reduceat(candles.trades, starts).astype(np.int64),
        closed=closed,
    )


def _floor(t_ms: int, width: int) -> int:
    return (t_ms // width) * width


def _days_ms(days: float, name: str) -> int:
    if not (math.isfinite(days) and days >= 0):
        raise ValueError(f"{name} must be >= 0, got {days!r}")
    return round(days * DAY_MS)


@dataclass(frozen=True)
class _Grid:
    """The bars every asset shares: times, regime and market-factor increments."""

    bar_start: np.ndarray  # int64
    dt: np.ndarray  # float64 ms (the last minute bar may be partial)
    n_hourly: int  # bars before this index are 1h bars, the rest 1m bars
    d_factor: np.ndarray
    vol_mult: np.ndarray
    volume_mult: np.ndarray  # regime x intraday
    sqrt_dt: np.ndarray
    var_unit: np.ndarray  # bar variance per unit of (variance per ms): vol_mult^2 * dt
    bar_closed: np.ndarray  # bool: the bar's whole interval lies before end_ms


def _build_grid(seed: int, end_ms: int, path_start: int, fine_start: int) -> _Grid:
    hourly = np.arange(path_start, fine_start, HOUR_MS, dtype=np.int64)
    minutes = np.arange(fine_start, end_ms, MINUTE_MS, dtype=np.int64)
    bar_start = np.concatenate([hourly, minutes])
    bar_end = np.minimum(np.concatenate([hourly + HOUR_MS, minutes + MINUTE_MS]), end_ms)
    dt = (bar_end - bar_start).astype(np.float64)

    rng = np.random.default_rng([seed, _HISTORY_STREAM])
    n_hours = max(1, -(-(end_ms - path_start) // HOUR_MS))
    u = rng.random((n_hours, 2))
    regimes = np.empty(n_hours, np.intp)
    regime = int(rng.integers(len(REGIMES)))
    for h in range(n_hours):  # a Markov chain: sequential, but only ~9k hours a year
        regime = next_regime(regime, u[h, 0], u[h, 1], HOUR_MS)
        regimes[h] = regime
    bar_regime = regimes[(bar_start - path_start) // HOUR_MS]
    vol_mult = REGIME_VOL_MULT[bar_regime]
    factor_sd = FACTOR_SIGMA * vol_mult * np.sqrt(dt)
    d_factor = REGIME_DRIFT_PER_MS[bar_regime] * dt + factor_sd * rng.standard_normal(len(dt))
    mid = bar_start + (dt / 2).astype(np.int64)
    volume_mult = REGIME_VOLUME_MULT[bar_regime] * intraday_volume_factor(mid)
    widths = np.where(np.arange(len(dt)) < len(hourly), HOUR_MS, MINUTE_MS)
    return _Grid(
        bar_start=bar_start,
        dt=dt,
        n_hourly=len(hourly),
        d_factor=d_factor,
        vol_mult=vol_mult,
        volume_mult=volume_mult,
        sqrt_dt=np.sqrt(dt),
        var_unit=vol_mult**2 * dt,
        bar_closed=bar_start + widths <= end_ms,
    )


def _bridge_extremes(
    o: np.ndarray, c: np.ndarray, var: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """High and low of a Brownian bridge from o to c with total variance var (exact)."""
    u = 1.0 - rng.random((2, len(o)))  # in (0, 1]: log() finite
    span2 = (c - o) ** 2
    high = 0.5 * (o + c + np.sqrt(span2 - 2.0 * var * np.log(u[0])))
    low = 0.5 * (o + c - np.sqrt(span2 - 2.0 * var * np.log(u[1])))
    return high, low


def _ou_path(dt: np.ndarray, z: np.ndarray, x0: float) -> np.ndarray:
    """Exact OU deviations at bar ends: x_k = a_k x_(k-1) + e_k, a_k = exp(-dt_k / tau),
    vectorised in chunks.
    """
    decay = dt / STABLE_TAU_MS
    e = STABLE_SD * np.sqrt(-np.expm1(-2.0 * decay)) * z
    out = e.copy()  # bars with a huge decay forget the past: x = e
    linked = decay < _OU_RESET
    if not linked.any():
        return out
    # Runs of linked bars; within a run x_k = P_k (x_start + sum_j e_j / P_j), with P
    # the running product of a, restarted per chunk so it never underflows.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], linked.view(np.int8), [0]))))
    for run_start, run_end in zip(edges[::2], edges[1::2], strict=True):
        x = out[run_start - 1] if run_start > 0 else x0
        chunk_id = np.floor(np.cumsum(decay[run_start:run_end]) / _OU_RESET).astype(np.int64)
        cuts = np.flatnonzero(np.diff(chunk_id)) + 1 + run_start
        for s, t in itertools.pairwise([run_start, *cuts.tolist(), run_end]):
            p = np.exp(-np.cumsum(decay[s:t]))
            out[s:t] = p * (x + np.cumsum(e[s:t] / p))
            x = out[t - 1]
    return out


def _trade_rate_per_ms(market_cap: float) -> float:
    # ~900 trades/min for BTC, a few per minute for a $10M token (scales like tick weights).
    return (2.0 + 200.0 * math.sqrt(max(market_cap, 0.0) / 1e11)) / MINUTE_MS


def _asset_bars(
    grid: _Grid, params: ModelParams, i: int, reference_price: float, rng: np.random.Generator
) -> CandleArrays:
    """One asset's bars on the shared grid (1h bars, then 1m bars), as candles."""
    n_bars = len(grid.dt)
    z = rng.standard_normal(n_bars)
    if params.stable[i]:
        x0 = float(np.clip(STABLE_SD * rng.standard_normal(), -STABLE_BAND, STABLE_BAND))
        close = 1.0 + np.clip(_ou_path(grid.dt, z, x0), -STABLE_BAND, STABLE_BAND)
        open_ = np.concatenate(([1.0 + x0], close[:-1]))
        var = STABLE_SD**2 * np.minimum(2.0 * grid.dt / STABLE_TAU_MS, 1.0)
        high, low = _bridge_extremes(open_, close, var, rng)
        high = np.minimum(high, 1.0 + STABLE_BAND)
        low = np.maximum(low, 1.0 - STABLE_BAND)
        surprise: np.ndarray | float = 1.0
    else:
        beta = params.beta[i]
        idio = params.idio_sigma[i]
        d = beta * grid.d_factor + idio * grid.vol_mult * grid.sqrt_dt * z
        csum = np.cumsum(d)
        # Backwards from the reference price: the last close is the reference price.
        log_close = math.log(reference_price) + (csum - csum[-1])
        log_open = log_close - d
        var = (beta * beta * FACTOR_SIGMA**2 + idio * idio) * grid.var_unit
        log_high, log_low = _bridge_extremes(log_open, log_close, var, rng)
        open_, close = np.exp(log_open), np.exp(log_close)
        high, low = np.exp(log_high), np.exp(log_low)
        # Bars that move more than usual trade more.
        surprise = 0.6 + 0.4 * np.abs(d) / np.maximum(np.sqrt(2.0 / np.pi * var), 1e-300)

    activity = surprise * rng.lognormal(-0.5 * _ACTIVITY_SIGMA**2, _ACTIVITY_SIGMA, n_bars)
    activity *= grid.volume_mult
    volume = (params.turnover_per_ms[i] * params.circulating[i]) * grid.dt * activity
    rate = _trade_rate_per_ms(params.market_cap[i])
    return CandleArrays(
        open_ms=grid.bar_start,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=volume * (high + low + close) / 3.0,
        trades=np.maximum(np.rint(rate * grid.dt * activity), 1.0).astype(np.int64),
        closed=grid.bar_closed,
    )


def generate_history(
    assets: Sequence[AssetInfo],
    *,
    seed: int,
    end_ms: int,
    coarse_days: float = 365,
    fine_days: float = 2,
) -> Iterator[AssetHistory]:
    """Yield each asset's candles: 1h/4h/1d over ``coarse_days``, 1m/5m/15m over
    ``fine_days``, ending at ``end_ms`` (now; candles containing it are still open).

    Deterministic for a seed; an asset's history depends on its index and the seed, not
    on how many assets follow it.
    """
    end_ms = int(end_ms)
    coarse_span = _days_ms(coarse_days, "coarse_days")
    fine_span = _days_ms(fine_days, "fine_days")
    if fine_span > coarse_span:
        raise ValueError(f"fine_days ({fine_days}) must not exceed coarse_days ({coarse_days})")
    if end_ms - coarse_span < 0:
        raise ValueError("the history window must not start before the epoch")
    # The path starts early enough that every output candle is built from complete parts.
    path_start = _floor(end_ms - coarse_span, DAY_MS)
    fine_start = _floor(end_ms - fine_span, HOUR_MS)
    starts = {w: _floor(end_ms - fine_span, w) for w in FINE_INTERVALS_MS}
    starts |= {w: _floor(end_ms - coarse_span, w) for w in COARSE_INTERVALS_MS}
    grid = _build_grid(seed, end_ms, path_start, fine_start)
    ref_prices = np.array([a.reference_price for a in assets], dtype=np.float64)
    params = model_params(assets, ref_prices)

    for i, asset in enumerate(assets):
        if len(grid.dt) == 0:
            empty = {w: CandleArrays.empty() for w in INTERVALS_MS}
            yield AssetHistory(i, empty, asset.reference_price, end_ms - 1)
            continue
        rng = np.random.default_rng([seed, _HISTORY_STREAM, i])
        bars = _asset_bars(grid, params, i, asset.reference_price, rng)
        # 1h bars map onto themselves and minute bars group by hour: one pass gives the
        # whole 1h series, built from 1m wherever minute bars exist.
        one_hour = _aggregate(bars, HOUR_MS, end_ms)
        minute = bars.take(slice(grid.n_hourly, None))
        candles: dict[int, CandleArrays] = {MINUTE_MS: minute, HOUR_MS: one_hour}
        for width in (300_000, 900_000):
            candles[width] = _aggregate(minute, width, end_ms)
        for width in (14_400_000, DAY_MS):
            candles[width] = _aggregate(one_hour, width, end_ms)
        for width, c in candles.items():
            first = int(np.searchsorted(c.open_ms, starts[width]))
            if first:
                candles[width] = c.take(slice(first, None))
        yield AssetHistory(
            symbol_idx=i,
            candles={w: candles[w] for w in INTERVALS_MS},
            last_price=float(bars.close[-1]),
            last_time_ms=end_ms - 1,
        )
