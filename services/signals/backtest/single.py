"""RunBacktest: bars, grades if the strategy needs them, the core_rs run, the chart.

Each stage reports progress; the heavy ones run in worker threads (core_rs
releases the GIL), so the event loop keeps serving other calls meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from core_rs import backtest as engine
from marketmesh.v1 import backtest_pb2
from services.common.intervals import NAME_BY_ENUM
from services.signals.backtest import results
from services.signals.backtest.data import GRADE_WARMUP_BARS, Bars, fetch_bars, inline_bars
from services.signals.backtest.grades import engine_direction, grade_histories
from services.signals.backtest.spec import (
    BOLLINGER,
    DIRECTION,
    MA_CROSS,
    RSI,
    THRESHOLD,
    BacktestSpec,
    DataSpec,
    StrategySpec,
)
from services.signals.pricing_link import PricingLink
from services.signals.weights import GradeWeights

Response = backtest_pb2.RunBacktestResponse


def warmup_bars(strategy: StrategySpec) -> int:
    """Bars fetched before the tested range so the strategy's indicators have
    settled on its first bar (EMA and Wilder smoothing need several periods)."""
    e = strategy.engine
    if strategy.kind in (THRESHOLD, DIRECTION):
        return GRADE_WARMUP_BARS
    if strategy.kind == MA_CROSS:
        return int(e["slow"]) * (3 if e["ma"] == "ema" else 1) + 1
    if strategy.kind == RSI:
        return int(e["period"]) * 10 + 1
    assert strategy.kind == BOLLINGER
    return int(e["period"]) + 1


@dataclass(frozen=True)
class Market:
    """What a backtest reads from the live service: pricing, the grade weights
    and which symbol is BTC (for the relative-strength factor)."""

    link: PricingLink
    weights: GradeWeights
    btc_symbol: str | None


async def load(data: DataSpec, strategy: StrategySpec, market: Market) -> tuple[Bars, Bars | None]:
    """The symbol's bars, and BTC's over the same range when the grade needs them."""
    if data.inline is not None:
        return inline_bars(data), None
    warmup = warmup_bars(strategy)
    want_btc = strategy.needs_grades and market.btc_symbol not in (None, data.symbol)
    if not want_btc:
        return await fetch_bars(data, market.link, warmup), None
    assert market.btc_symbol is not None
    btc_spec = DataSpec(market.btc_symbol, data.interval, data.start_ms, data.end_ms)
    bars, btc = await asyncio.gather(
        fetch_bars(data, market.link, warmup),
        fetch_bars(btc_spec, market.link, warmup),
        return_exceptions=True,
    )
    if isinstance(bars, BaseException):
        raise bars
    # BTC only sharpens one factor: without it the grade still stands.
    return bars, (btc if isinstance(btc, Bars) else None)


def strategy_inputs(
    bars: Bars, btc: Bars | None, strategy: StrategySpec, weights: GradeWeights, interval_ms: int
) -> dict[str, np.ndarray]:
    """The series a grade strategy reads (nothing for the indicator ones)."""
    if not strategy.needs_grades:
        return {}
    histories = [bars.candles] + ([btc.candles] if btc is not None else [])
    grades = grade_histories(
        histories, interval_ms, weights, btc_index=1 if btc is not None else None
    )[0]
    if strategy.kind == THRESHOLD:
        return {"series": grades}
    return {"direction": engine_direction(grades, strategy.confirm_bars)}


def simulate(bars: Bars, spec: BacktestSpec, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    c = bars.candles
    config = spec.config | {
        "bars_per_year": spec.data.bars_per_year,
        "start": bars.first,
        "end": len(c),
    }
    return engine.run_backtest(
        c.open_ms, c.open, c.high, c.low, c.close, spec.strategy.engine, config, **inputs
    )


def build_result(
    into: backtest_pb2.BacktestResult,
    bars: Bars,
    spec: BacktestSpec,
    out: dict[str, Any],
    png: bytes,
) -> None:
    """Fills ``into`` in place: the result is megabytes, a copy costs."""
    c = bars.candles
    tested = slice(bars.first, len(c))
    times = c.open_ms[tested]
    equity = out["equity"][tested]
    hold = results.buy_and_hold_curve(c.close[tested], spec.config["cash"])
    into.symbol = bars.symbol
    into.interval = bars.interval  # type: ignore[assignment]
    into.strategy.CopyFrom(spec.strategy.message)
    into.execution.CopyFrom(spec.execution)
    into.statistics.CopyFrom(
        results.statistics_pb(out["stats"], int(times[0]), int(times[-1]), spec.data.bars_per_year)
    )
    results.fill_curve(into.equity, times, equity, hold, results.drawdown_of(equity))
    into.chart_png = png
    results.add_trades(into.trades, out["trades"])


def draw(bars: Bars, spec: BacktestSpec, out: dict[str, Any]) -> bytes:
    # matplotlib takes ~2 s to import: only a call that draws pays for it, not
    # every start of the signals service.
    from services.signals.backtest import chart  # noqa: PLC0415

    c = bars.candles
    tested = slice(bars.first, len(c))
    first = bars.first
    trades = out["trades"]
    size = np.asarray(trades["size"])
    entries = np.asarray(trades["entry_bar"]) - first
    equity = out["equity"][tested]
    return chart.single_chart(
        symbol=bars.symbol,
        interval_name=NAME_BY_ENUM[bars.interval],
        time_ms=c.open_ms[tested],
        close=c.close[tested],
        entry_bars=entries[size > 0],
        exit_bars=np.asarray(trades["exit_bar"]) - first,
        short_entry_bars=entries[size < 0],
        equity=equity,
        buy_and_hold=results.buy_and_hold_curve(c.close[tested], spec.config["cash"]),
        drawdown=results.drawdown_of(equity),
        title_stats=out["stats"],
    )


async def run(spec: BacktestSpec, market: Market) -> AsyncIterator[Response]:
    """Progress messages, then the result."""
    yield Response(progress=results.progress("fetching candles", 0.0))
    bars, btc = await load(spec.data, spec.strategy, market)
    n = len(bars)
    if spec.strategy.needs_grades:
        yield Response(progress=results.progress("grading", 0.3, 0))
    inputs = await asyncio.to_thread(
        strategy_inputs, bars, btc, spec.strategy, market.weights, spec.data.interval_ms
    )
    yield Response(progress=results.progress("simulating", 0.6, n))
    out = await asyncio.to_thread(simulate, bars, spec, inputs)
    png = b""
    if spec.chart:
        yield Response(progress=results.progress("charting", 0.8, n))
        png = await asyncio.to_thread(draw, bars, spec, out)
    response = Response()
    build_result(response.result, bars, spec, out, png)
    yield response
