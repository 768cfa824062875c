"""Backtests through real pricing and signals servers: hand-worked trades,
stops and gaps, the history path with its warm-up, the grade strategies on a
market that turns, sweeps against single runs (walk-forward included),
cancellation, and every bad input naming its field."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from marketmesh.v1 import backtest_pb2 as B
from marketmesh.v1 import common_pb2, pricing_pb2
from services.common.validation import ms_to_timestamp, now_ms
from services.signals.backtest import sweep as sweep_module
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import DAY_MS, day_floor, failure_of, walk
from tests.signals.conftest import HOUR_MS, StartSignals, hourly_ticks, publish

INVALID = grpc.StatusCode.INVALID_ARGUMENT
D1 = common_pb2.INTERVAL_1D
H1 = common_pb2.INTERVAL_1H
T0 = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS

# A market with one moving-average cross up and one down (SMA 2 over SMA 3).
#   i:      0     1     2     3     4     5     6     7     8    9
CLOSE = [10.0, 10.0, 10.0, 13.0, 14.0, 15.0, 12.0, 9.0, 8.0, 8.0]
OPEN = [10.0, 10.0, 10.0, 10.5, 13.5, 14.5, 14.5, 11.5, 8.5, 8.0]
# SMA2 / SMA3: i=2 10/10, i=3 11.5/11 (cross up: buy at open[4]),
# i=4 13.5/12.33, i=5 14.5/14, i=6 13.5/13.67 (cross down: sell at open[7]).


def columns(
    close: Sequence[float], open_: Sequence[float], *, step_ms: int = DAY_MS, pad: float = 0.2
) -> B.CandleColumns:
    high = [max(o, c) + pad for o, c in zip(open_, close, strict=True)]
    low = [min(o, c) - pad for o, c in zip(open_, close, strict=True)]
    return B.CandleColumns(
        open_time_unix_ms=[T0 + i * step_ms for i in range(len(close))],
        open=list(open_),
        high=high,
        low=low,
        close=list(close),
        volume=[100.0] * len(close),
    )


def ma_cross(fast: int = 2, slow: int = 3, ema: bool = False) -> B.Strategy:
    average = B.MOVING_AVERAGE_TYPE_EMA if ema else B.MOVING_AVERAGE_TYPE_SMA
    return B.Strategy(
        moving_average_cross=B.MovingAverageCrossStrategy(fast=fast, slow=slow, average=average)
    )


async def run(
    stub: Any, request: B.RunBacktestRequest
) -> tuple[list[B.BacktestProgress], B.BacktestResult]:
    messages = [m async for m in stub.RunBacktest(request)]
    assert messages[-1].WhichOneof("message") == "result"
    progress = [m.progress for m in messages[:-1]]
    assert all(m.WhichOneof("message") == "progress" for m in messages[:-1])
    return progress, messages[-1].result


async def signals_only(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> Any:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target, sync=False)
    return pricing, signals


async def test_one_trade_with_fee_and_slippage_worked_by_hand(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    fee, slip, cash = 0.001, 0.002, 10_000.0
    progress, result = await run(
        signals.stub,
        B.RunBacktestRequest(
            symbol="TEST-USD",
            interval=D1,
            candles=columns(CLOSE, OPEN),
            strategy=ma_cross(),
            execution=B.Execution(fee=fee, slippage=slip),
            skip_chart=True,
        ),
    )
    fractions = [p.fraction_done for p in progress]
    assert progress and fractions == sorted(fractions)
    assert [t.exit_reason for t in result.trades] == [B.EXIT_REASON_SIGNAL]
    (trade,) = result.trades
    entry = 13.5 * (1 + slip)  # bar 4's open, against the buyer
    exit_ = 11.5 * (1 - slip)  # bar 7's open, against the seller
    size = cash / (entry * (1 + fee))  # all the cash, the fee included
    final = size * exit_ * (1 - fee)
    assert trade.entry_time.ToMilliseconds() == T0 + 4 * DAY_MS
    assert trade.exit_time.ToMilliseconds() == T0 + 7 * DAY_MS
    assert trade.entry_price == pytest.approx(entry, rel=1e-12)
    assert trade.exit_price == pytest.approx(exit_, rel=1e-12)
    assert trade.size == pytest.approx(size, rel=1e-12)
    assert trade.fees == pytest.approx(fee * size * (entry + exit_), rel=1e-9)
    assert trade.pnl == pytest.approx(final - cash, rel=1e-9)
    assert trade.duration.ToMilliseconds() == 3 * DAY_MS
    s = result.statistics
    assert s.trade_count == 1
    assert s.final_equity == pytest.approx(final, rel=1e-12)
    assert s.return_pct == pytest.approx((final / cash - 1) * 100, rel=1e-9)
    assert s.buy_and_hold_return_pct == pytest.approx(-20.0, rel=1e-12)
    assert s.win_rate_pct == 0.0
    assert s.bars_per_year == 365.0
    assert s.start.ToMilliseconds() == T0 and s.end.ToMilliseconds() == T0 + 9 * DAY_MS
    # The equity curve: cash until the entry, marked to market, then cash again.
    eq = list(result.equity.equity)
    assert len(eq) == 10 and eq[:4] == [cash] * 4
    assert eq[4] == pytest.approx(size * CLOSE[4], rel=1e-12)
    assert eq[9] == pytest.approx(final, rel=1e-12)
    hold = list(result.equity.buy_and_hold)
    assert hold == pytest.approx([cash * c / CLOSE[0] for c in CLOSE], rel=1e-12)
    assert result.execution.cash == cash and result.execution.position_fraction == 1.0
    assert result.strategy.moving_average_cross.average == B.MOVING_AVERAGE_TYPE_SMA
    assert result.chart_png == b""


async def test_stop_loss_inside_a_bar_and_a_gap_through_it(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    stop = B.ExitLevel(fraction=0.05)
    request = B.RunBacktestRequest(
        interval=D1,
        candles=columns(CLOSE, OPEN),
        strategy=ma_cross(),
        execution=B.Execution(stop_loss=stop),
        skip_chart=True,
    )
    # Entry at 13.5 (bar 4); stop 12.825. Bar 6 opens at 14.5 and trades down
    # to 11.8: the stop is touched inside the bar and fills at its level.
    _, result = await run(signals.stub, request)
    (trade,) = result.trades
    assert trade.exit_reason == B.EXIT_REASON_STOP_LOSS
    assert trade.exit_time.ToMilliseconds() == T0 + 6 * DAY_MS
    assert trade.exit_price == pytest.approx(13.5 * 0.95, rel=1e-12)
    # Bar 6 gaps down to open at 12.5, below the stop: the fill is the open.
    gapped = list(OPEN)
    gapped[6] = 12.5
    request.candles.CopyFrom(columns(CLOSE, gapped))
    _, result = await run(signals.stub, request)
    (trade,) = result.trades
    assert trade.exit_reason == B.EXIT_REASON_STOP_LOSS
    assert trade.exit_price == pytest.approx(12.5, rel=1e-12)
    assert trade.pnl == pytest.approx(10_000.0 / 13.5 * 12.5 - 10_000.0, rel=1e-9)


async def test_a_cross_on_the_last_bar_is_not_traded(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    # The cross up happens at bar 3, the last one: there is no bar to fill it.
    _, result = await run(
        signals.stub,
        B.RunBacktestRequest(
            interval=D1,
            candles=columns(CLOSE[:4], OPEN[:4]),
            strategy=ma_cross(),
            skip_chart=True,
        ),
    )
    assert len(result.trades) == 0 and result.statistics.trade_count == 0
    assert result.statistics.final_equity == 10_000.0
    assert math.isnan(result.statistics.win_rate_pct)


async def test_the_chart_is_a_png(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    _, result = await run(
        signals.stub,
        B.RunBacktestRequest(interval=D1, candles=columns(CLOSE, OPEN), strategy=ma_cross()),
    )
    assert result.chart_png.startswith(b"\x89PNG\r\n\x1a\n") and len(result.chart_png) > 10_000


def _random_columns(n: int, seed: int, step_ms: int = HOUR_MS) -> B.CandleColumns:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.002, n))
    return columns(close.tolist(), open_.tolist(), step_ms=step_ms, pad=0.3)


async def test_history_from_pricing_is_warmed_up_and_equals_the_same_candles_inline(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    start = day_floor(now_ms()) - 20 * DAY_MS
    prices = walk(2_000.0, 400, 0.0, 7, noise=0.01)
    await publish(pricing.stub, hourly_ticks("ETH-USD", start, prices))
    tested_from = start + 200 * HOUR_MS
    strategy = ma_cross(5, 20, ema=True)
    request = B.RunBacktestRequest(
        symbol="ETH-USD",
        interval=H1,
        start_time=ms_to_timestamp(tested_from),
        strategy=strategy,
        execution=B.Execution(fee=0.001),
        skip_chart=True,
    )
    _, from_history = await run(signals.stub, request)
    times = list(from_history.equity.time_unix_ms)
    assert times[0] == tested_from
    assert from_history.statistics.start.ToMilliseconds() == tested_from
    assert from_history.trades, "a random walk crosses its averages"
    # The same candles, warm-up included, sent inline and tested from the same bar.
    warmup = 20 * 3 + 1
    page = await pricing.stub.GetCandles(
        pricing_pb2.GetCandlesRequest(
            symbol="ETH-USD",
            interval=H1,
            start_time=ms_to_timestamp(tested_from - warmup * HOUR_MS),
            limit=5_000,
        )
    )
    closed = [c for c in page.candles if c.closed]
    inline = B.CandleColumns(
        open_time_unix_ms=[c.open_time.ToMilliseconds() for c in closed],
        open=[c.open for c in closed],
        high=[c.high for c in closed],
        low=[c.low for c in closed],
        close=[c.close for c in closed],
        volume=[c.volume for c in closed],
    )
    _, inline_result = await run(
        signals.stub,
        B.RunBacktestRequest(
            interval=H1,
            candles=inline,
            strategy=strategy,
            execution=B.Execution(fee=0.001),
            skip_chart=True,
        ),
    )
    # Inline candles have no warm-up: compare the trades decided after tested_from.
    later = [t for t in inline_result.trades if t.entry_time.ToMilliseconds() > tested_from]
    assert [t.entry_time for t in from_history.trades[-len(later) :]] == [
        t.entry_time for t in later
    ]
    assert [t.exit_price for t in from_history.trades[-len(later) :]] == [
        t.exit_price for t in later
    ]


async def test_grade_strategies_buy_the_uptrend_and_leave_in_the_downtrend(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    start = day_floor(now_ms()) - 40 * DAY_MS
    up = walk(100.0, 400, 0.004, 3, noise=0.003)
    down = walk(up[-1], 300, -0.004, 4, noise=0.003)
    await publish(pricing.stub, hourly_ticks("SOL-USD", start, up + down))
    turn = start + 400 * HOUR_MS
    for strategy in (
        B.Strategy(grade_threshold=B.GradeThresholdStrategy(enter_above=65, exit_below=45)),
        B.Strategy(signal=B.SignalStrategy()),
    ):
        _, result = await run(
            signals.stub,
            B.RunBacktestRequest(
                symbol="SOL-USD",
                interval=H1,
                start_time=ms_to_timestamp(start + 250 * HOUR_MS),
                strategy=strategy,
                skip_chart=True,
            ),
        )
        kind = strategy.WhichOneof("kind")
        assert result.trades, kind
        first = result.trades[0]
        assert first.entry_time.ToMilliseconds() < turn, kind
        last = result.trades[-1]
        assert turn < last.exit_time.ToMilliseconds(), kind
        assert last.exit_reason == B.EXIT_REASON_SIGNAL, kind
        assert result.statistics.return_pct > result.statistics.buy_and_hold_return_pct, kind


async def test_sweep_ranks_like_single_runs_and_walks_forward(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    data = _random_columns(2_000, 11)
    request = B.SweepBacktestRequest(
        interval=H1,
        candles=data,
        strategy=ma_cross(),
        execution=B.Execution(fee=0.0005),
        parameters=[
            B.ParameterRange(name="fast", step=B.ValueStep(start=5, stop=20, step=5)),
            B.ParameterRange(name="slow", list=B.ValueList(values=[10, 30, 60])),
        ],
        metric=B.SWEEP_METRIC_RETURN,
        folds=2,
        top=100,
    )
    messages = [m async for m in signals.stub.SweepBacktest(request)]
    result = messages[-1].result
    # fast 5..20 x slow {10, 30, 60}, without fast >= slow (10/10, 15/10, 20/10).
    assert result.combinations == 4 * 3 - 3
    assert len(result.ranked) == result.combinations
    ins = [c.in_sample for c in result.ranked]
    assert ins == sorted(ins, reverse=True) and [c.rank for c in result.ranked] == list(
        range(1, 10)
    )
    bounds = [2_000 * k // 3 for k in range(4)]
    fold0: dict[tuple[int, int], float] = {}
    for combo in result.ranked:
        fast, slow = int(combo.parameters["fast"]), int(combo.parameters["slow"])
        # The whole range equals a single run with those parameters.
        _, single = await run(
            signals.stub,
            B.RunBacktestRequest(
                interval=H1,
                candles=data,
                strategy=ma_cross(fast, slow),
                execution=B.Execution(fee=0.0005),
                skip_chart=True,
            ),
        )
        assert combo.full_statistics == single.statistics
        # In sample, fold k is the prefix up to bounds[k + 1]: a run on those candles.
        per_fold = []
        for k in range(2):
            prefix = _prefix(data, bounds[k + 1])
            _, part = await run(
                signals.stub,
                B.RunBacktestRequest(
                    interval=H1,
                    candles=prefix,
                    strategy=ma_cross(fast, slow),
                    execution=B.Execution(fee=0.0005),
                    skip_chart=True,
                ),
            )
            per_fold.append(part.statistics.return_pct)
        assert combo.in_sample == pytest.approx(sum(per_fold) / 2, rel=1e-9)
        fold0[(fast, slow)] = per_fold[0]
    # Fold 0's winner is the best on its in-sample prefix.
    best = max(fold0.values())
    winner = result.folds[0].best_parameters
    assert fold0[(int(winner["fast"]), int(winner["slow"]))] == pytest.approx(best, rel=1e-12)
    assert result.folds[0].best_in_sample == pytest.approx(best, rel=1e-9)
    walk_start = result.walk_forward_statistics.start.ToMilliseconds()
    assert walk_start == data.open_time_unix_ms[bounds[1]]


def _prefix(data: B.CandleColumns, n: int) -> B.CandleColumns:
    return B.CandleColumns(
        open_time_unix_ms=data.open_time_unix_ms[:n],
        open=data.open[:n],
        high=data.high[:n],
        low=data.low[:n],
        close=data.close[:n],
        volume=data.volume[:n],
    )


async def test_cancelling_a_sweep_stops_it(
    start_pricing_server: StartPricing,
    start_signals_server: StartSignals,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, signals = await signals_only(start_pricing_server, start_signals_server)
    controls: list[Any] = []
    real = sweep_module.engine.SweepControl

    def recording() -> Any:
        controls.append(real())
        return controls[-1]

    monkeypatch.setattr(sweep_module.engine, "SweepControl", recording)
    call = signals.stub.SweepBacktest(
        B.SweepBacktestRequest(
            interval=H1,
            candles=_random_columns(50_000, 5),
            strategy=ma_cross(),
            parameters=[
                B.ParameterRange(name="fast", step=B.ValueStep(start=2, stop=100, step=1)),
                B.ParameterRange(name="slow", step=B.ValueStep(start=101, stop=200, step=1)),
            ],
        )
    )
    async for message in call:
        if message.progress.stage == "combinations":
            break
    call.cancel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (controls and controls[0].cancelled()):
        assert loop.time() < deadline, "the sweep was not told to stop"
        await asyncio.sleep(0.05)
    done = controls[0].done()
    await asyncio.sleep(1.0)
    assert controls[0].done() <= done + 2 * 4, "the sweep went on after the cancel"
    assert controls[0].done() < 99 * 100


async def _failure(call: AsyncIterator[Any]) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    f = failure_of(info.value)
    return f.code, f.fields


async def test_bad_backtest_requests_name_the_field(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing, signals = await signals_only(start_pricing_server, start_signals_server)
    good = columns(CLOSE, OPEN)

    def req(**kw: Any) -> B.RunBacktestRequest:
        base: dict[str, Any] = {"interval": D1, "candles": good, "strategy": ma_cross()}
        base.update(kw)
        return B.RunBacktestRequest(**{k: v for k, v in base.items() if v is not None})

    def with_candles(**changes: Any) -> B.CandleColumns:
        c = B.CandleColumns()
        c.CopyFrom(good)
        for name, (i, value) in changes.items():
            getattr(c, name)[i] = value
        return c

    short = B.CandleColumns()
    short.CopyFrom(good)
    del short.high[-1]
    ex = B.Execution
    cases: dict[str, tuple[B.RunBacktestRequest, str]] = {
        "no strategy": (req(strategy=B.Strategy()), "strategy"),
        "fast >= slow": (req(strategy=ma_cross(30, 10)), "strategy.moving_average_cross.slow"),
        "fast 0": (req(strategy=ma_cross(0, 10)), "strategy.moving_average_cross.fast"),
        "ma type": (
            req(strategy=B.Strategy(moving_average_cross=B.MovingAverageCrossStrategy(average=9))),
            "strategy.moving_average_cross.average",
        ),
        "rsi bounds": (
            req(
                strategy=B.Strategy(
                    rsi_reversion=B.RsiReversionStrategy(enter_below=70, exit_above=30)
                )
            ),
            "strategy.rsi_reversion.exit_above",
        ),
        "rsi period": (
            req(strategy=B.Strategy(rsi_reversion=B.RsiReversionStrategy(period=1))),
            "strategy.rsi_reversion.period",
        ),
        "bollinger std": (
            req(strategy=B.Strategy(bollinger_breakout=B.BollingerBreakoutStrategy(num_std=0))),
            "strategy.bollinger_breakout.num_std",
        ),
        "grade order": (
            req(
                strategy=B.Strategy(
                    grade_threshold=B.GradeThresholdStrategy(enter_above=50, exit_below=60)
                )
            ),
            "strategy.grade_threshold.exit_below",
        ),
        "grade range": (
            req(strategy=B.Strategy(grade_threshold=B.GradeThresholdStrategy(enter_above=101))),
            "strategy.grade_threshold.enter_above",
        ),
        "confirm bars": (
            req(strategy=B.Strategy(signal=B.SignalStrategy(confirm_bars=0))),
            "strategy.signal.confirm_bars",
        ),
        "fee negative": (req(execution=ex(fee=-0.1)), "execution.fee"),
        "fee nan": (req(execution=ex(fee=math.nan)), "execution.fee"),
        "slippage": (req(execution=ex(slippage=0.6)), "execution.slippage"),
        "fee too high": (req(execution=ex(fee=0.2)), "execution.fee"),
        "cash": (req(execution=ex(cash=0)), "execution.cash"),
        "fraction": (req(execution=ex(position_fraction=1.5)), "execution.position_fraction"),
        "stop fraction": (
            req(execution=ex(stop_loss=B.ExitLevel(fraction=1.2))),
            "execution.stop_loss.fraction",
        ),
        "take atr": (
            req(execution=ex(take_profit=B.ExitLevel(atr_multiple=0))),
            "execution.take_profit.atr_multiple",
        ),
        "symbol": (req(symbol="BTC/USD", candles=None), "symbol"),
        "no data": (req(candles=None), "symbol"),
        "interval": (req(interval=99), "interval"),
        "range": (
            req(
                symbol="BTC-USD",
                candles=None,
                start_time=ms_to_timestamp(T0 + DAY_MS),
                end_time=ms_to_timestamp(T0),
            ),
            "end_time",
        ),
        "lengths": (req(candles=short), "candles.high"),
        "order": (
            req(candles=with_candles(open_time_unix_ms=(2, T0))),
            "candles.open_time_unix_ms[2]",
        ),
        "price": (req(candles=with_candles(close=(1, -1.0))), "candles.close[1]"),
        "high": (req(candles=with_candles(high=(0, 9.0))), "candles.high[0]"),
        "inline with range": (req(start_time=ms_to_timestamp(T0)), "start_time"),
        "one bar": (req(candles=_prefix(good, 1)), "candles.open_time_unix_ms"),
    }
    for name, (request, field) in cases.items():
        code, fields = await _failure(signals.stub.RunBacktest(request))
        assert code == INVALID, name
        assert field in fields, (name, fields)
    code, _ = await _failure(signals.stub.RunBacktest(req(symbol="ZZZ-USD", candles=None)))
    assert code == grpc.StatusCode.NOT_FOUND

    def sweep(**kw: Any) -> B.SweepBacktestRequest:
        base: dict[str, Any] = {
            "interval": D1,
            "candles": good,
            "strategy": ma_cross(),
            "parameters": [B.ParameterRange(name="fast", list=B.ValueList(values=[2]))],
        }
        base.update(kw)
        return B.SweepBacktestRequest(**base)

    step = B.ValueStep
    sweep_cases: dict[str, tuple[B.SweepBacktestRequest, str]] = {
        "nothing swept": (sweep(parameters=[]), "parameters"),
        "unknown": (
            sweep(parameters=[B.ParameterRange(name="nope", list=B.ValueList(values=[1]))]),
            "parameters[0].name",
        ),
        "step 0": (
            sweep(parameters=[B.ParameterRange(name="fast", step=step(start=1, stop=5, step=0))]),
            "parameters[0].step",
        ),
        "whole bars": (
            sweep(parameters=[B.ParameterRange(name="fast", list=B.ValueList(values=[2.5]))]),
            "parameters[0]",
        ),
        "too many": (
            sweep(
                parameters=[
                    B.ParameterRange(name="fast", step=step(start=1, stop=200, step=1)),
                    B.ParameterRange(name="slow", step=step(start=2, stop=201, step=1)),
                ]
            ),
            "parameters",
        ),
        "folds": (sweep(folds=0), "folds"),
        "metric": (sweep(metric=99), "metric"),
        "no values": (sweep(parameters=[B.ParameterRange(name="fast")]), "parameters[0]"),
    }
    for name, (request, field) in sweep_cases.items():
        code, fields = await _failure(signals.stub.SweepBacktest(request))
        assert code == INVALID, name
        assert field in fields, (name, fields)

    pb = B.RunPortfolioBacktestRequest
    portfolio_cases: dict[str, tuple[B.RunPortfolioBacktestRequest, str]] = {
        "top_k": (pb(top_k=0), "top_k"),
        "rebalance": (pb(rebalance_every=0), "rebalance_every"),
        "min grade": (pb(min_grade=120), "min_grade"),
        "symbol": (pb(symbols=["BTC/USD"]), "symbols[0]"),
        "stops": (pb(execution=ex(stop_loss=B.ExitLevel(fraction=0.1))), "execution.stop_loss"),
        "short": (pb(execution=ex(allow_short=True)), "execution.allow_short"),
        "stablecoin": (pb(stablecoin="us dollar"), "stablecoin"),
    }
    for name, (request, field) in portfolio_cases.items():
        code, fields = await _failure(signals.stub.RunPortfolioBacktest(request))
        assert code == INVALID, name
        assert field in fields, (name, fields)
    del pricing


async def test_portfolio_holds_the_best_graded_token_and_goes_to_cash_in_a_bear_market(
    start_pricing_server: StartPricing, start_signals_server: StartSignals
) -> None:
    pricing = await start_pricing_server(backfill_days=0)
    signals = await start_signals_server(pricing.target)
    start = day_floor(now_ms()) - 40 * DAY_MS
    n = 700
    markets = {
        "SOL-USD": walk(100.0, n, 0.003, 21, noise=0.003),  # up all the way
        "ADA-USD": walk(1.0, n, -0.003, 22, noise=0.003),  # down all the way
        "DOT-USD": walk(10.0, n, 0.0, 23, noise=0.003),  # flat
        "BTC-USD": walk(50_000.0, n, 0.001, 24, noise=0.003),
    }
    ticks = [t for symbol, prices in markets.items() for t in hourly_ticks(symbol, start, prices)]
    await publish(pricing.stub, sorted(ticks, key=lambda t: t.time.ToMilliseconds()))
    tested_from = start + 300 * HOUR_MS
    request = B.RunPortfolioBacktestRequest(
        symbols=["SOL-USD", "ADA-USD", "DOT-USD"],
        interval=H1,
        start_time=ms_to_timestamp(tested_from),
        top_k=1,
        rebalance_every=24,
        ignore_regime=True,
        execution=B.Execution(fee=0.001),
    )
    messages = [m async for m in signals.stub.RunPortfolioBacktest(request)]
    result = messages[-1].result
    assert [m.WhichOneof("message") for m in messages[:-1]] == ["progress"] * (len(messages) - 1)
    assert list(result.symbols) == ["SOL-USD", "ADA-USD", "DOT-USD"]
    assert result.equity.time_unix_ms[0] == tested_from
    tested = len(result.equity.time_unix_ms)
    assert tested == n - 300 - 1  # the last hour's candle is still forming
    # A rebalance every 24 bars from the first tested bar (filled a bar later).
    assert len(result.rebalances) == (tested - 2) // 24 + 1
    held = {symbol for r in result.rebalances for symbol, w in r.weights.items() if w > 0}
    assert held == {"SOL-USD"}, [dict(r.weights) for r in result.rebalances]
    assert all(not r.bear for r in result.rebalances)
    s = result.statistics
    pnl = sum(t.pnl for t in result.trades)
    assert s.final_equity == pytest.approx(10_000.0 + pnl, rel=1e-9)
    assert s.return_pct == pytest.approx((s.final_equity / 10_000.0 - 1) * 100, rel=1e-9)
    assert s.return_pct > 50
    assert result.trades[-1].exit_reason == B.EXIT_REASON_END_OF_DATA
    assert result.chart_png.startswith(b"\x89PNG")
    # Everything falling: the regime turns BEAR and the portfolio sits in cash.
    falling = {
        f"{base}-USD": walk(p, n, -0.004, seed, noise=0.002)
        for base, p, seed in (("LINK", 20.0, 31), ("AVAX", 30.0, 32), ("XRP", 0.5, 33))
    }
    ticks = [t for symbol, prices in falling.items() for t in hourly_ticks(symbol, start, prices)]
    await publish(pricing.stub, sorted(ticks, key=lambda t: t.time.ToMilliseconds()))
    request.symbols[:] = list(falling)
    request.ignore_regime = False
    request.stablecoin = "usdt"
    result = [m async for m in signals.stub.RunPortfolioBacktest(request)][-1].result
    bear = [r for r in result.rebalances if r.bear]
    assert bear and all(dict(r.weights) == {"USDT": 1.0} for r in bear)
    assert result.statistics.return_pct > result.statistics.buy_and_hold_return_pct + 20


async def test_the_command_line_tool_against_the_service(
    start_pricing_server: StartPricing,
    start_signals_server: StartSignals,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.signals import backtest_cli  # noqa: PLC0415

    _, signals = await signals_only(start_pricing_server, start_signals_server)
    csv = tmp_path / "candles.csv"
    lines = ["time,open,high,low,close,volume"]
    for i, (o, c) in enumerate(zip(OPEN, CLOSE, strict=True)):
        lines.append(f"{T0 + i * DAY_MS},{o},{max(o, c) + 0.2},{min(o, c) - 0.2},{c},100")
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "chart.png"
    argv = [
        "--csv", str(csv), "--symbol", "TEST-USD", "--interval", "1d",
        "--strategy", "ma-cross", "--fast", "2", "--slow", "3", "--fee", "0.1%",
        "--out", str(out), "--address", f"127.0.0.1:{signals.running.port}",
    ]  # fmt: skip
    assert await asyncio.to_thread(backtest_cli.main, argv) == 0
    printed = capsys.readouterr().out
    assert "Trades: 1" in printed
    assert out.read_bytes().startswith(b"\x89PNG")
    bad = [*argv[:-2], "--slow", "1", "--address", f"127.0.0.1:{signals.running.port}"]
    assert await asyncio.to_thread(backtest_cli.main, bad) == 2
    assert "strategy.moving_average_cross.slow" in capsys.readouterr().err
