"""RunPortfolioBacktest: the top K tokens by trader grade, equal weights,
rebalanced every N bars, in the stablecoin while the market regime is BEAR.

Every candidate's history is fetched (with warm-up bars), graded bar by bar
with the others as its market context (BTC and sector peers), and each
token's direction is replayed from its grades. The regime at each bar is
breadth's: the bullish share of the graded candidates with breadth's
hysteresis. core_rs runs the bars (``core_rs.portfolio_backtest``).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core_rs import backtest as engine
from core_rs import portfolio_backtest as portfolio_engine
from marketmesh.v1 import backtest_pb2, common_pb2
from services.common.errors import InvalidArgument
from services.common.intervals import NAME_BY_ENUM
from services.common.validation import ms_to_timestamp, parse_symbol
from services.signals import breadth
from services.signals.backtest import results
from services.signals.backtest.data import GRADE_WARMUP_BARS, Bars, fetch_bars, tested_from
from services.signals.backtest.grades import engine_direction, grade_histories
from services.signals.backtest.single import Market
from services.signals.backtest.spec import (
    DataSpec,
    Violations,
    parse_execution,
    parse_interval,
    parse_range,
)
from services.signals.direction import DEFAULT_CONFIRM_BARS
from services.signals.universe import SignalsUniverse

Response = backtest_pb2.RunPortfolioBacktestResponse
MAX_SYMBOLS = 200
MAX_TOP_K = 50
DEFAULT_TOP_K = 5
DEFAULT_REBALANCE = 7
MAX_REBALANCE = 100_000
DEFAULT_BARS = 365
FETCH_CONCURRENCY = 8
_TICKER = re.compile(r"[A-Z0-9]{1,20}")


@dataclass(frozen=True)
class PortfolioSpec:
    symbols: tuple[str, ...]  # empty: pricing's whole universe
    data: DataSpec  # symbol unset; the range and interval
    top_k: int
    rebalance_every: int
    min_grade: float
    follow_regime: bool
    stablecoin: str
    config: dict[str, Any]
    chart: bool


def parse(request: backtest_pb2.RunPortfolioBacktestRequest) -> PortfolioSpec:
    v = Violations()
    symbols: list[str] = []
    if len(request.symbols) > MAX_SYMBOLS:
        v.add("symbols", f"at most {MAX_SYMBOLS} symbols; got {len(request.symbols)}")
    for i, raw in enumerate(request.symbols[:MAX_SYMBOLS]):
        symbol = v.guard(lambda raw=raw, i=i: parse_symbol(raw, f"symbols[{i}]"))
        if symbol is not None and symbol not in symbols:
            symbols.append(symbol)
    interval = v.guard(lambda: parse_interval(request.interval, common_pb2.INTERVAL_1D))
    start = end = None
    if interval is not None:
        start, end = parse_range(request, interval, v)
    top_k = request.top_k if request.HasField("top_k") else DEFAULT_TOP_K
    v.check(1 <= top_k <= MAX_TOP_K, "top_k", f"must be between 1 and {MAX_TOP_K}; got {top_k}")
    every = request.rebalance_every if request.HasField("rebalance_every") else DEFAULT_REBALANCE
    v.check(
        1 <= every <= MAX_REBALANCE,
        "rebalance_every",
        f"must be between 1 and {MAX_REBALANCE:,} bars; got {every}",
    )
    min_grade = request.min_grade if request.HasField("min_grade") else 0.0
    v.check(0.0 <= min_grade <= 100.0, "min_grade", f"must be from 0 to 100; got {min_grade:g}")
    stablecoin = request.stablecoin.strip().upper() or "USDC"
    v.check(
        bool(_TICKER.fullmatch(stablecoin)),
        "stablecoin",
        f"{request.stablecoin!r} is not a ticker such as USDC",
    )
    config, _ = parse_execution(request.execution, v, single=False)
    v.raise_any()
    spec_data = DataSpec("", interval, start, end)
    return PortfolioSpec(
        tuple(symbols),
        spec_data,
        top_k,
        every,
        min_grade,
        not request.ignore_regime,
        stablecoin,
        config,
        not request.skip_chart,
    )


@dataclass(frozen=True)
class Panel:
    """The candidates' bars aligned on one time grid (NaN: no candle)."""

    symbols: list[str]
    time_ms: np.ndarray
    open: np.ndarray  # [bars, symbols]
    close: np.ndarray
    score: np.ndarray  # trader grade at each bar's close
    bear: np.ndarray  # bool per bar: the regime was BEAR at its close
    first: int  # first tested bar


def candidates(spec: PortfolioSpec, universe: SignalsUniverse) -> list[str]:
    if not spec.symbols:
        if universe.size > MAX_SYMBOLS:
            raise InvalidArgument(
                "symbols",
                f"pricing lists {universe.size} assets; name at most {MAX_SYMBOLS} candidates",
            )
        return list(universe.symbols)
    for i, symbol in enumerate(spec.symbols):
        if symbol not in universe.sid_by_symbol:
            raise InvalidArgument(f"symbols[{i}]", f"unknown symbol {symbol!r} (see ListAssets)")
    return list(spec.symbols)


def regime_bear(direction: np.ndarray, graded: np.ndarray) -> np.ndarray:
    """BEAR at each bar from the bullish share of the graded tokens, with
    breadth's hysteresis (``direction``/``graded``: [bars, tokens])."""
    count = graded.sum(axis=1)
    bullish = ((direction == 1) & graded).sum(axis=1)
    share = np.where(count > 0, bullish / np.maximum(count, 1), np.nan)
    out = np.zeros(len(share), dtype=bool)
    regime = breadth.NEUTRAL
    for i, s in enumerate(share.tolist()):
        if not math.isnan(s):  # no graded token: the regime holds
            regime = breadth.next_regime(regime, s)
        out[i] = regime == breadth.BEAR
    return out


def build_panel(
    symbols: list[str],
    bars: Sequence[Bars],
    btc: Bars | None,
    universe: SignalsUniverse,
    market: Market,
    interval_ms: int,
    first_ms: int,
) -> Panel:
    histories = [b.candles for b in bars] + ([btc.candles] if btc is not None else [])
    names = symbols + ([btc.symbol] if btc is not None else [])
    local = {s: i for i, s in enumerate(names)}
    btc_index = local.get(market.btc_symbol) if market.btc_symbol else None
    sectors = [
        np.array(
            [local[universe.symbols[sid]] for sid in m.tolist() if universe.symbols[sid] in local]
        )
        for m in universe.sector_members
    ]
    grades = grade_histories(
        histories, interval_ms, market.weights, btc_index=btc_index, sector_members=sectors
    )
    times = np.unique(np.concatenate([b.candles.open_ms for b in bars]))
    n, m = len(times), len(symbols)
    open_, close, score = (np.full((n, m), np.nan) for _ in range(3))
    direction = np.zeros((n, m), dtype=np.int8)
    for j, b in enumerate(bars):
        rows = np.searchsorted(times, b.candles.open_ms)
        open_[rows, j] = b.candles.open
        close[rows, j] = b.candles.close
        score[rows, j] = grades[j]
        direction[rows, j] = engine_direction(grades[j], DEFAULT_CONFIRM_BARS)
    bear = regime_bear(direction, np.isfinite(score))
    first = int(np.searchsorted(times, first_ms))
    return Panel(symbols, times, open_, close, score, bear, first)


async def fetch_all(
    symbols: list[str], spec: PortfolioSpec, market: Market
) -> AsyncIterator[tuple[int, Bars]]:
    """Each candidate's bars as they arrive (index into ``symbols``)."""
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(i: int) -> tuple[int, Bars]:
        async with gate:
            data = DataSpec(symbols[i], spec.data.interval, spec.data.start_ms, spec.data.end_ms)
            return i, await fetch_bars(data, market.link, GRADE_WARMUP_BARS)

    for task in asyncio.as_completed([one(i) for i in range(len(symbols))]):
        yield await task


def simulate(panel: Panel, spec: PortfolioSpec) -> dict[str, Any]:
    bear = panel.bear if spec.follow_regime else np.zeros_like(panel.bear)
    config = {
        "cash": spec.config["cash"],
        "fee": spec.config["fee"],
        "slippage": spec.config["slippage"],
        "whole_units": spec.config["whole_units"],
        "top_k": spec.top_k,
        "rebalance_every": spec.rebalance_every,
        "min_score": spec.min_grade,
        "start": panel.first,
        "end": len(panel.time_ms),
    }
    out = portfolio_engine.portfolio_backtest(
        panel.time_ms, panel.open, panel.close, panel.score, bear, config
    )
    tested = slice(panel.first, len(panel.time_ms))
    trades = dict(out["trades"])
    for key in ("entry_bar", "exit_bar"):  # indices into the tested arrays
        trades[key] = np.asarray(trades[key]) - panel.first
    out["stats"] = dict(
        engine.statistics(
            panel.time_ms[tested],
            np.asarray(out["equity"])[tested],
            np.asarray(out["benchmark"])[tested],
            trades,
            spec.data.bars_per_year,
        )
    )
    out["bear_used"] = bear
    return out


def build_result(
    panel: Panel, spec: PortfolioSpec, out: dict[str, Any], png: bytes
) -> backtest_pb2.PortfolioBacktestResult:
    tested = slice(panel.first, len(panel.time_ms))
    times = panel.time_ms[tested]
    equity = np.asarray(out["equity"])[tested]
    result = backtest_pb2.PortfolioBacktestResult(
        symbols=panel.symbols,
        interval=spec.data.interval,  # type: ignore[arg-type]
        statistics=results.statistics_pb(
            out["stats"], int(times[0]), int(times[-1]), spec.data.bars_per_year
        ),
        chart_png=png,
    )
    results.fill_curve(
        result.equity,
        times,
        equity,
        np.asarray(out["benchmark"])[tested],
        results.drawdown_of(equity),
    )
    results.add_trades(result.trades, _contract_reasons(out["trades"]), panel.symbols)
    bear = out["bear_used"]
    for bar, weights in zip(
        np.asarray(out["rebalance_bars"]).tolist(), np.asarray(out["target_weights"]), strict=True
    ):
        decided = max(int(bar) - 1, 0)  # filled at this bar's open, decided at the last close
        r = result.rebalances.add(
            time=ms_to_timestamp(int(panel.time_ms[bar])), bear=bool(bear[decided])
        )
        for j in np.flatnonzero(weights > 0).tolist():
            r.weights[panel.symbols[j]] = float(weights[j])
        held = float(weights.sum())
        if held < 1.0 - 1e-9:
            r.weights[spec.stablecoin] = 1.0 - held
    return result


def _contract_reasons(trades: dict[str, Any]) -> dict[str, Any]:
    """core_rs's reason flags (rebalance 1, regime 2, end 4) as ExitReason."""
    reason = np.asarray(trades["exit_reason"])
    end = (reason & portfolio_engine.END) != 0
    mapped = np.where(end, backtest_pb2.EXIT_REASON_END_OF_DATA, backtest_pb2.EXIT_REASON_REBALANCE)
    return {**trades, "exit_reason": mapped}


def draw(panel: Panel, spec: PortfolioSpec, out: dict[str, Any]) -> bytes:
    # matplotlib takes ~2 s to import: only a call that draws pays for it.
    from services.signals.backtest import chart  # noqa: PLC0415

    tested = slice(panel.first, len(panel.time_ms))
    equity = np.asarray(out["equity"])[tested]
    return chart.portfolio_chart(
        symbols=panel.symbols,
        interval_name=NAME_BY_ENUM[spec.data.interval],
        time_ms=panel.time_ms[tested],
        equity=equity,
        buy_and_hold=np.asarray(out["benchmark"])[tested],
        drawdown=results.drawdown_of(equity),
        bear=out["bear_used"][tested],
        rebalance_bars=np.asarray(out["rebalance_bars"]) - panel.first,
        title_stats=out["stats"],
    )


async def run(
    spec: PortfolioSpec, market: Market, universe: SignalsUniverse
) -> AsyncIterator[Response]:
    symbols = candidates(spec, universe)
    start = tested_from(spec.data, DEFAULT_BARS)
    dated = replace(spec, data=replace(spec.data, start_ms=start))
    yield Response(progress=results.progress("fetching candles", 0.0))
    fetched: dict[int, Bars] = {}
    async for i, bars in fetch_all(symbols, dated, market):
        fetched[i] = bars
        yield Response(
            progress=results.progress("fetching candles", 0.5 * len(fetched) / len(symbols))
        )
    btc = None
    if market.btc_symbol and market.btc_symbol not in symbols:
        btc_data = DataSpec(market.btc_symbol, spec.data.interval, start, spec.data.end_ms)
        btc = await fetch_bars(btc_data, market.link, GRADE_WARMUP_BARS)
    yield Response(progress=results.progress("grading", 0.5))
    panel = await asyncio.to_thread(
        build_panel,
        symbols,
        [fetched[i] for i in range(len(symbols))],
        btc,
        universe,
        market,
        spec.data.interval_ms,
        start,
    )
    n = len(panel.time_ms)
    yield Response(progress=results.progress("simulating", 0.7, n))
    out = await asyncio.to_thread(simulate, panel, spec)
    png = b""
    if spec.chart:
        yield Response(progress=results.progress("charting", 0.85, n))
        png = await asyncio.to_thread(draw, panel, spec, out)
    yield Response(result=build_result(panel, spec, out, png))
