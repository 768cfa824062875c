"""SweepBacktest: a parameter grid run in parallel in core_rs, ranked in
sample and scored out of sample (walk-forward).

The tested range is cut into ``folds + 1`` equal parts. Fold k ranks every
combination on parts 0..k (in sample) and scores it on part k + 1, which it
has not seen. A combination's in-sample figure is its metric averaged over
the folds, likewise out of sample; the walk-forward statistics chain each
fold's in-sample winner over that fold's unseen part, starting each fold with
the equity the previous one ended with: what choosing by the past would have
earned.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core_rs import backtest as engine
from marketmesh.v1 import backtest_pb2
from services.common.errors import InvalidArgument
from services.common.validation import ms_to_timestamp
from services.signals.backtest import results
from services.signals.backtest.data import Bars
from services.signals.backtest.single import Market, load, strategy_inputs
from services.signals.backtest.spec import (
    BOLLINGER,
    DIRECTION,
    MA_CROSS,
    MAX_PERIOD,
    RSI,
    THRESHOLD,
    BacktestSpec,
    Violations,
    parse_data,
    parse_execution,
    parse_strategy,
)

Response = backtest_pb2.SweepBacktestResponse
MAX_COMBINATIONS = 10_000
MAX_FOLDS = 20
DEFAULT_TOP = 20
MAX_TOP = 1_000
POLL_S = 0.25

# Sweepable parameter -> (core_rs key, integer?, low, high) per strategy kind.
_STRATEGY_PARAMS: dict[str, dict[str, tuple[str, bool, float, float]]] = {
    MA_CROSS: {"fast": ("fast", True, 1, MAX_PERIOD), "slow": ("slow", True, 2, MAX_PERIOD)},
    RSI: {
        "period": ("period", True, 2, MAX_PERIOD),
        "enter_below": ("lower", False, 0, 100),
        "exit_above": ("upper", False, 0, 100),
    },
    BOLLINGER: {"period": ("period", True, 2, MAX_PERIOD), "num_std": ("k", False, 0, 10)},
    THRESHOLD: {
        "enter_above": ("enter_above", False, 0, 100),
        "exit_below": ("exit_below", False, 0, 100),
    },
    DIRECTION: {},
}
# Execution parameters any strategy can sweep: (config key, level kind, high).
_EXECUTION_PARAMS: dict[str, tuple[str, str, float]] = {
    "stop_loss_fraction": ("stop_loss", "pct", 1.0),
    "take_profit_fraction": ("take_profit", "pct", 100.0),
    "stop_loss_atr": ("stop_loss", "atr", 100.0),
    "take_profit_atr": ("take_profit", "atr", 100.0),
}
# SweepMetric -> the core_rs statistic it ranks by.
_METRICS: dict[int, str] = {
    backtest_pb2.SWEEP_METRIC_UNSPECIFIED: "sharpe",
    backtest_pb2.SWEEP_METRIC_SHARPE: "sharpe",
    backtest_pb2.SWEEP_METRIC_RETURN: "return_pct",
    backtest_pb2.SWEEP_METRIC_SORTINO: "sortino",
    backtest_pb2.SWEEP_METRIC_CALMAR: "calmar",
    backtest_pb2.SWEEP_METRIC_PROFIT_FACTOR: "profit_factor",
    backtest_pb2.SWEEP_METRIC_SQN: "sqn",
}


@dataclass(frozen=True)
class SweepSpec:
    base: BacktestSpec
    names: tuple[str, ...]  # swept parameters, request order
    grid: list[tuple[float, ...]]  # valid combinations, values in `names` order
    skipped: int  # combinations the strategy's rules exclude (fast >= slow, ...)
    metric: int
    folds: int
    top: int


def _values(rng: backtest_pb2.ParameterRange, field: str, v: Violations) -> list[float]:
    which = rng.WhichOneof("values")
    if which == "list":
        values = list(rng.list.values)
        if not values:
            v.add(f"{field}.list.values", "needs at least one value")
        return values
    if which == "step":
        s = rng.step
        if not (math.isfinite(s.start) and math.isfinite(s.stop) and math.isfinite(s.step)):
            v.add(f"{field}.step", "start, stop and step must be finite")
            return []
        if s.step <= 0 or s.stop < s.start:
            v.add(f"{field}.step", "needs step > 0 and stop >= start")
            return []
        count = math.floor((s.stop - s.start) / s.step + 1e-9) + 1
        if count > MAX_COMBINATIONS:
            v.add(f"{field}.step", f"gives {count:,} values; at most {MAX_COMBINATIONS:,}")
            return []
        return [s.start + i * s.step for i in range(count)]
    v.add(field, "needs values: a list or a step range")
    return []


def parse_sweep(request: backtest_pb2.SweepBacktestRequest) -> SweepSpec:
    v = Violations()
    data = parse_data(request, v)
    strategy = parse_strategy(request.strategy, v)
    config, echo = parse_execution(request.execution, v)
    if request.metric not in _METRICS:
        v.add("metric", f"unknown metric {request.metric}")
    folds = 1
    if request.HasField("folds"):
        folds = request.folds
        v.check(1 <= folds <= MAX_FOLDS, "folds", f"must be between 1 and {MAX_FOLDS}")
    top = DEFAULT_TOP
    if request.HasField("top"):
        top = request.top
        v.check(1 <= top <= MAX_TOP, "top", f"must be between 1 and {MAX_TOP:,}")
    if not request.parameters:
        v.add("parameters", "name at least one parameter to sweep")
    names: list[str] = []
    axes: list[list[float]] = []
    allowed = _STRATEGY_PARAMS.get(strategy.kind, {}) if strategy else {}
    for i, rng in enumerate(request.parameters):
        field = f"parameters[{i}]"
        name = rng.name.strip()
        if name in names:
            v.add(f"{field}.name", f"{name!r} is swept twice")
            continue
        if strategy is not None and name not in allowed and name not in _EXECUTION_PARAMS:
            known = ", ".join([*allowed, *_EXECUTION_PARAMS])
            v.add(f"{field}.name", f"{name!r} is not a parameter of this strategy ({known})")
            continue
        values = _values(rng, field, v)
        bad = _check_values(name, values, allowed)
        if bad:
            v.add(f"{field}", bad)
        names.append(name)
        axes.append(values)
    total = math.prod(len(a) for a in axes) if axes else 0
    if total > MAX_COMBINATIONS:
        v.add("parameters", f"the grid has {total:,} combinations; at most {MAX_COMBINATIONS:,}")
    v.raise_any()
    assert data is not None and strategy is not None
    grid, skipped = [], 0
    for combo in itertools.product(*axes):
        if _combination_ok(strategy.engine | _strategy_values(names, combo, allowed)):
            grid.append(tuple(combo))
        else:
            skipped += 1
    if not grid:
        raise InvalidArgument(
            "parameters", "no combination is valid (for example fast must be less than slow)"
        )
    base = BacktestSpec(data, strategy, config, echo, chart=False)
    return SweepSpec(base, tuple(names), grid, skipped, request.metric, folds, top)


def _check_values(name: str, values: Sequence[float], allowed: Mapping[str, Any]) -> str:
    if name in allowed:
        _, integer, lo, hi = allowed[name]
        for x in values:
            if not lo <= x <= hi:
                return f"{name} {x:g} is out of range {lo:g}..{hi:g}"
            if integer and x != int(x):
                return f"{name} takes whole bars; {x:g} is not"
        return ""
    _, _, hi = _EXECUTION_PARAMS[name]
    for x in values:
        if not 0 < x < hi:
            return f"{name} {x:g} is out of range (above 0 and below {hi:g})"
    return ""


def _strategy_values(
    names: Sequence[str], combo: Sequence[float], allowed: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, x in zip(names, combo, strict=True):
        if name in allowed:
            key, integer, _, _ = allowed[name]
            out[key] = int(x) if integer else float(x)
    return out


def _combination_ok(s: Mapping[str, Any]) -> bool:
    kind = s["kind"]
    if kind == MA_CROSS:
        return bool(s["fast"] < s["slow"])
    if kind == RSI:
        return bool(0 < s["lower"] < s["upper"] < 100)
    if kind == BOLLINGER:
        return bool(s["k"] > 0)
    if kind == THRESHOLD:
        return bool(s["exit_below"] <= s["enter_above"])
    return True


def combination_params(spec: SweepSpec, combo: Sequence[float]) -> dict[str, Any]:
    """One core_rs parameter set: the strategy's values plus any execution ones."""
    allowed = _STRATEGY_PARAMS[spec.base.strategy.kind]
    params = spec.base.strategy.engine | _strategy_values(spec.names, combo, allowed)
    del params["kind"]  # the sweep's, not each set's
    for name, x in zip(spec.names, combo, strict=True):
        if name in _EXECUTION_PARAMS:
            key, level, _ = _EXECUTION_PARAMS[name]
            params[key] = (level, float(x))
    return params


def fold_bounds(first: int, n: int, folds: int) -> list[int]:
    """Bar indices cutting [first, n) into folds + 1 near-equal parts."""
    return [first + (n - first) * k // (folds + 1) for k in range(folds + 2)]


def windows(bounds: Sequence[int]) -> list[tuple[int, int]]:
    """In-sample windows of the folds, their out-of-sample windows, the whole
    out-of-sample stretch and the whole range, in that order."""
    folds = len(bounds) - 2
    ins = [(bounds[0], bounds[k + 1]) for k in range(folds)]
    outs = [(bounds[k + 1], bounds[k + 2]) for k in range(folds)]
    return [*ins, *outs, (bounds[1], bounds[-1]), (bounds[0], bounds[-1])]


def _ranking_key(value: float) -> float:
    return -value if math.isfinite(value) else math.inf


def stats_row(row: np.ndarray) -> dict[str, float]:
    return dict(zip(engine.STAT_NAMES, row.tolist(), strict=True))


def _sweep(bars: Bars, spec: SweepSpec, inputs: dict[str, np.ndarray], control: Any) -> np.ndarray:
    c = bars.candles
    config = spec.base.config | {"bars_per_year": spec.base.data.bars_per_year}
    params = [combination_params(spec, combo) for combo in spec.grid]
    wanted = windows(fold_bounds(bars.first, len(c), spec.folds))
    # With one fold its unseen part is the whole out-of-sample stretch: run
    # each distinct window once.
    distinct = sorted(set(wanted))
    out, _ = engine.sweep(
        c.open_ms,
        c.open,
        c.high,
        c.low,
        c.close,
        spec.base.strategy.kind,
        params,
        config,
        distinct,
        control,
        **inputs,
    )
    return np.asarray(out)[:, [distinct.index(w) for w in wanted]]


def _walk_forward(
    bars: Bars,
    spec: SweepSpec,
    inputs: dict[str, np.ndarray],
    winners: Sequence[int],
    bounds: Sequence[int],
) -> dict[str, float]:
    """Each fold's winner traded on its unseen part, equity carried over."""
    c = bars.candles
    cash = spec.base.config["cash"]
    equity_parts, trade_parts = [], []
    for k, winner in enumerate(winners):
        lo, hi = bounds[k + 1], bounds[k + 2]
        params = combination_params(spec, spec.grid[winner])
        strategy = {"kind": spec.base.strategy.kind} | {
            key: value for key, value in params.items() if key not in _CONFIG_KEYS
        }
        config = spec.base.config | {key: params[key] for key in _CONFIG_KEYS if key in params}
        config |= {
            "cash": cash,
            "bars_per_year": spec.base.data.bars_per_year,
            "start": lo,
            "end": hi,
        }
        out = engine.run_backtest(
            c.open_ms, c.open, c.high, c.low, c.close, strategy, config, **inputs
        )
        equity = np.asarray(out["equity"])[lo:hi]
        equity_parts.append(equity)
        trade_parts.append(out["trades"])
        cash = float(equity[-1])
    lo = bounds[1]
    equity = np.concatenate(equity_parts)
    trades = {k: np.concatenate([t[k] for t in trade_parts]) for k in trade_parts[0]}
    for key in ("entry_bar", "exit_bar"):  # indices into the arrays passed below
        trades[key] = trades[key] - lo
    return dict(
        engine.statistics(
            c.open_ms[lo:], equity, c.close[lo:], trades, spec.base.data.bars_per_year
        )
    )


_CONFIG_KEYS = ("stop_loss", "take_profit")


def build_result(
    bars: Bars,
    spec: SweepSpec,
    table: np.ndarray,
    winners: Sequence[int],
    wf: dict[str, float],
) -> backtest_pb2.SweepResult:
    m = _metric_index(spec)
    folds = spec.folds
    ins = table[:, :folds, m]
    outs = table[:, folds : 2 * folds, m]
    with np.errstate(invalid="ignore"):
        in_avg = np.nanmean(np.where(np.isfinite(ins), ins, np.nan), axis=1)
        out_avg = np.nanmean(np.where(np.isfinite(outs), outs, np.nan), axis=1)
    order = sorted(range(len(spec.grid)), key=lambda i: (_ranking_key(in_avg[i]), i))
    c = bars.candles
    bounds = fold_bounds(bars.first, len(c), folds)
    bpy = spec.base.data.bars_per_year

    def t(i: int) -> int:
        return int(c.open_ms[min(i, len(c) - 1)])

    result = backtest_pb2.SweepResult(
        symbol=bars.symbol,
        interval=bars.interval,  # type: ignore[arg-type]
        metric=spec.metric or backtest_pb2.SWEEP_METRIC_SHARPE,  # type: ignore[arg-type]
        combinations=len(spec.grid),
    )
    for k, best in enumerate(winners):
        fold = result.folds.add()
        fold.in_sample_start.CopyFrom(ms_to_timestamp(t(bounds[0])))
        fold.out_of_sample_start.CopyFrom(ms_to_timestamp(t(bounds[k + 1])))
        fold.out_of_sample_end.CopyFrom(ms_to_timestamp(t(bounds[k + 2] - 1)))
        fold.best_parameters.update(dict(zip(spec.names, spec.grid[best], strict=True)))
        fold.best_in_sample = float(table[best, k, m])
        fold.best_out_of_sample = float(table[best, folds + k, m])
    for rank, i in enumerate(order[: spec.top], start=1):
        combo = result.ranked.add(
            rank=rank, in_sample=float(in_avg[i]), out_of_sample=float(out_avg[i])
        )
        combo.parameters.update(dict(zip(spec.names, spec.grid[i], strict=True)))
        combo.out_of_sample_statistics.CopyFrom(
            results.statistics_pb(stats_row(table[i, 2 * folds]), t(bounds[1]), t(len(c) - 1), bpy)
        )
        combo.full_statistics.CopyFrom(
            results.statistics_pb(
                stats_row(table[i, 2 * folds + 1]), t(bounds[0]), t(len(c) - 1), bpy
            )
        )
    result.walk_forward_statistics.CopyFrom(
        results.statistics_pb(wf, t(bounds[1]), t(len(c) - 1), bpy)
    )
    return result


def _metric_index(spec: SweepSpec) -> int:
    return engine.STAT_NAMES.index(_METRICS[spec.metric])


def winners_of(table: np.ndarray, spec: SweepSpec) -> list[int]:
    """Each fold's in-sample winner (ties: the first combination)."""
    m = _metric_index(spec)
    return [
        min(range(len(spec.grid)), key=lambda i: (_ranking_key(table[i, k, m]), i))
        for k in range(spec.folds)
    ]


async def run(spec: SweepSpec, market: Market) -> AsyncIterator[Response]:
    yield Response(progress=results.progress("fetching candles", 0.0))
    bars, btc = await load(spec.base.data, spec.base.strategy, market)
    n = len(bars)
    inputs = await asyncio.to_thread(
        strategy_inputs, bars, btc, spec.base.strategy, market.weights, spec.base.data.interval_ms
    )
    bounds = fold_bounds(bars.first, n, spec.folds)
    if min(b - a for a, b in itertools.pairwise(bounds)) < 2:
        raise InvalidArgument(
            "folds", f"{spec.folds} folds leave fewer than 2 bars per part of {bars.tested} bars"
        )
    control = engine.SweepControl()
    task = asyncio.ensure_future(asyncio.to_thread(_sweep, bars, spec, inputs, control))
    total = len(spec.grid)
    try:
        while not task.done():
            done = control.done()
            yield Response(
                progress=results.progress("combinations", 0.1 + 0.8 * done / total, n, done)
            )
            await asyncio.wait([task], timeout=POLL_S)
        table = task.result()
        yield Response(progress=results.progress("walk-forward", 0.9, n, total))
        winners = winners_of(table, spec)
        wf = await asyncio.to_thread(_walk_forward, bars, spec, inputs, winners, bounds)
        yield Response(result=build_result(bars, spec, table, winners, wf))
    finally:
        # A caller who cancels stops the sweep between combinations; its
        # ValueError("cancelled") is expected and read here, not logged later
        # as an exception nobody retrieved.
        control.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
