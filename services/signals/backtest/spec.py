"""Backtest requests, validated into plain specs.

Every violation names its proto field (``strategy.moving_average_cross.slow``,
``execution.fee``, ``candles.high[17]``) and all of a request's violations are
reported at once. The specs carry what core_rs takes: a strategy dict and a
config dict (see ``core_rs.backtest``), defaults filled in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketmesh.v1 import backtest_pb2, common_pb2
from services.common.errors import InvalidArgument
from services.common.intervals import MS_BY_ENUM
from services.common.validation import Violations, optional_timestamp_ms, parse_symbol
from services.signals.direction import DEFAULT_CONFIRM_BARS

YEAR_MS = 365 * 86_400_000  # crypto trades every day of the year
# The result carries four curve points per bar: 200,000 bars is ~6.4 MB of
# curves, well inside the 16 MiB message limit with the trades and the chart.
MAX_BARS = 200_000
DEFAULT_BARS = 1_000
MIN_BARS = 2
MAX_PERIOD = 1_000
DEFAULT_CASH = 10_000.0
# Fee and slippage per fill, as core_rs accepts them (10% is no market).
MAX_COST_FRACTION = 0.1
MAX_CASH = 1e15

# Strategy kinds as core_rs names them; GRADE and SIGNAL need the grade series.
MA_CROSS, RSI, BOLLINGER, THRESHOLD, DIRECTION = (
    "ma_cross",
    "rsi",
    "bollinger",
    "threshold",
    "direction",
)


@dataclass(frozen=True)
class StrategySpec:
    """A strategy for core_rs (``engine``) and as the result echoes it (``message``)."""

    kind: str
    engine: dict[str, Any]
    message: backtest_pb2.Strategy
    confirm_bars: int = DEFAULT_CONFIRM_BARS

    @property
    def needs_grades(self) -> bool:
        return self.kind in (THRESHOLD, DIRECTION)


@dataclass(frozen=True)
class DataSpec:
    """pricing's history of ``symbol`` over [start_ms, end_ms), or inline candles."""

    symbol: str
    interval: int
    start_ms: int | None = None
    end_ms: int | None = None
    inline: dict[str, np.ndarray] | None = None

    @property
    def interval_ms(self) -> int:
        return MS_BY_ENUM[self.interval]

    @property
    def bars_per_year(self) -> float:
        return YEAR_MS / self.interval_ms


@dataclass(frozen=True)
class BacktestSpec:
    data: DataSpec
    strategy: StrategySpec
    config: dict[str, Any]
    execution: backtest_pb2.Execution
    chart: bool = True


def _int_param(
    v: Violations, msg: Any, name: str, prefix: str, default: int, lo: int, hi: int
) -> int:
    if not msg.HasField(name):
        return default
    value = int(getattr(msg, name))
    v.check(lo <= value <= hi, f"{prefix}.{name}", f"must be between {lo} and {hi:,}; got {value}")
    return value


def _float_param(
    v: Violations,
    msg: Any,
    name: str,
    prefix: str,
    default: float,
    lo: float,
    hi: float,
    *,
    open_low: bool = False,
) -> float:
    if not msg.HasField(name):
        return default
    value = float(getattr(msg, name))
    low_ok = value > lo if open_low else value >= lo
    v.check(
        math.isfinite(value) and low_ok and value <= hi,
        f"{prefix}.{name}",
        f"must be {'above' if open_low else 'at least'} {lo:g} and at most {hi:g}; got {value:g}",
    )
    return value


def parse_interval(value: int, default: int, field_name: str = "interval") -> int:
    if value == common_pb2.INTERVAL_UNSPECIFIED:
        return default
    if value not in MS_BY_ENUM:
        raise InvalidArgument(field_name, f"unknown interval {value}")
    return value


def parse_strategy(
    msg: backtest_pb2.Strategy, v: Violations, prefix: str = "strategy"
) -> StrategySpec | None:
    """The strategy with its defaults, or None (violations recorded)."""
    kind = msg.WhichOneof("kind")
    if kind is None:
        v.add(
            prefix,
            "is required: signal, grade_threshold, moving_average_cross, rsi_reversion "
            "or bollinger_breakout",
        )
        return None
    p = f"{prefix}.{kind}"
    sub = getattr(msg, kind)
    out = backtest_pb2.Strategy()
    n = len(v.items)
    if kind == "signal":
        confirm = _int_param(v, sub, "confirm_bars", p, DEFAULT_CONFIRM_BARS, 1, 50)
        out.signal.confirm_bars = confirm
        spec = StrategySpec(DIRECTION, {"kind": DIRECTION}, out, confirm)
    elif kind == "grade_threshold":
        enter = _float_param(v, sub, "enter_above", p, 80.0, 0.0, 100.0)
        leave = _float_param(v, sub, "exit_below", p, 50.0, 0.0, 100.0)
        v.check(
            leave <= enter,
            f"{p}.exit_below",
            f"must be at most enter_above ({leave:g} > {enter:g})",
        )
        out.grade_threshold.enter_above, out.grade_threshold.exit_below = enter, leave
        spec = StrategySpec(
            THRESHOLD, {"kind": THRESHOLD, "enter_above": enter, "exit_below": leave}, out
        )
    elif kind == "moving_average_cross":
        fast = _int_param(v, sub, "fast", p, 10, 1, MAX_PERIOD)
        slow = _int_param(v, sub, "slow", p, 30, 2, MAX_PERIOD)
        v.check(fast < slow, f"{p}.slow", f"must be more than fast ({slow} <= {fast})")
        average = sub.average or backtest_pb2.MOVING_AVERAGE_TYPE_SMA
        if average not in (
            backtest_pb2.MOVING_AVERAGE_TYPE_SMA,
            backtest_pb2.MOVING_AVERAGE_TYPE_EMA,
        ):
            v.add(f"{p}.average", f"unknown moving average type {sub.average}")
        out.moving_average_cross.fast, out.moving_average_cross.slow = fast, slow
        out.moving_average_cross.average = average  # type: ignore[assignment]
        ma = "ema" if average == backtest_pb2.MOVING_AVERAGE_TYPE_EMA else "sma"
        spec = StrategySpec(MA_CROSS, {"kind": MA_CROSS, "fast": fast, "slow": slow, "ma": ma}, out)
    elif kind == "rsi_reversion":
        period = _int_param(v, sub, "period", p, 14, 2, MAX_PERIOD)
        lower = _float_param(v, sub, "enter_below", p, 30.0, 0.0, 100.0, open_low=True)
        upper = _float_param(v, sub, "exit_above", p, 70.0, 0.0, 100.0, open_low=True)
        v.check(
            lower < upper, f"{p}.exit_above", f"must be above enter_below ({upper:g} <= {lower:g})"
        )
        r = out.rsi_reversion
        r.period, r.enter_below, r.exit_above = period, lower, upper
        spec = StrategySpec(
            RSI, {"kind": RSI, "period": period, "lower": lower, "upper": upper}, out
        )
    else:
        period = _int_param(v, sub, "period", p, 20, 2, MAX_PERIOD)
        num_std = _float_param(v, sub, "num_std", p, 2.0, 0.0, 10.0, open_low=True)
        out.bollinger_breakout.period, out.bollinger_breakout.num_std = period, num_std
        spec = StrategySpec(BOLLINGER, {"kind": BOLLINGER, "period": period, "k": num_std}, out)
    return spec if len(v.items) == n else None


def _exit_level(
    v: Violations, msg: backtest_pb2.ExitLevel, name: str, max_fraction: float
) -> tuple[str, float] | None:
    which = msg.WhichOneof("distance")
    if which is None:
        return None
    f = f"execution.{name}.{which}"
    value = getattr(msg, which)
    if which == "fraction":
        v.check(
            math.isfinite(value) and 0 < value < max_fraction,
            f,
            f"must be above 0 and below {max_fraction:g} (0.05 = 5%); got {value:g}",
        )
        return ("pct", value)
    v.check(
        math.isfinite(value) and 0 < value <= 100,
        f,
        f"must be above 0 and at most 100; got {value:g}",
    )
    return ("atr", value)


def parse_execution(
    msg: backtest_pb2.Execution, v: Violations, *, single: bool = True
) -> tuple[dict[str, Any], backtest_pb2.Execution]:
    """core_rs's config (bars_per_year and the window are the caller's) and the
    execution with its defaults, as the result echoes it."""
    p = "execution"
    cash = _float_param(v, msg, "cash", p, DEFAULT_CASH, 0.0, MAX_CASH, open_low=True)
    fraction = _float_param(v, msg, "position_fraction", p, 1.0, 0.0, 1.0, open_low=True)
    for name in ("fee", "slippage"):
        value = getattr(msg, name)
        v.check(
            math.isfinite(value) and 0 <= value < MAX_COST_FRACTION,
            f"{p}.{name}",
            f"must be a fraction from 0 to below {MAX_COST_FRACTION:g} (0.001 = 0.1%); "
            f"got {value:g}",
        )
    stop = _exit_level(v, msg.stop_loss, "stop_loss", 1.0)
    take = _exit_level(v, msg.take_profit, "take_profit", 100.0)
    if not single:
        for name in ("stop_loss", "take_profit"):
            if msg.HasField(name):
                v.add(f"{p}.{name}", "applies to single-symbol backtests only")
        if msg.allow_short:
            v.add(f"{p}.allow_short", "applies to single-symbol backtests only")
        if msg.HasField("position_fraction"):
            v.add(f"{p}.position_fraction", "applies to single-symbol backtests only")
    echo = backtest_pb2.Execution()
    echo.CopyFrom(msg)
    echo.cash = cash
    if single:
        echo.position_fraction = fraction
    config = {
        "cash": cash,
        "fee": float(msg.fee),
        "slippage": float(msg.slippage),
        "whole_units": bool(msg.whole_units),
        "allow_short": bool(msg.allow_short),
        "size_fraction": fraction,
        "stop_loss": stop,
        "take_profit": take,
    }
    return config, echo


def parse_inline(msg: backtest_pb2.CandleColumns, v: Violations) -> dict[str, np.ndarray] | None:
    """Your own candles as float64/int64 columns, or None (violations recorded)."""
    n = len(msg.open_time_unix_ms)
    p = "candles"
    n0 = len(v.items)
    if n < MIN_BARS:
        v.add(f"{p}.open_time_unix_ms", f"at least {MIN_BARS} candles are needed; got {n}")
    elif n > MAX_BARS:
        v.add(f"{p}.open_time_unix_ms", f"at most {MAX_BARS:,} candles; got {n:,}")
    for name in ("open", "high", "low", "close"):
        if len(getattr(msg, name)) != n:
            v.add(f"{p}.{name}", f"has {len(getattr(msg, name)):,} values for {n:,} open times")
    if len(msg.volume) not in (0, n):
        v.add(
            f"{p}.volume",
            f"has {len(msg.volume):,} values for {n:,} open times (or leave it empty)",
        )
    if len(v.items) > n0:
        return None
    t = np.asarray(msg.open_time_unix_ms, dtype=np.int64)
    cols = {
        name: np.asarray(getattr(msg, name), dtype=np.float64)
        for name in ("open", "high", "low", "close")
    }
    cols["volume"] = (
        np.asarray(msg.volume, dtype=np.float64)
        if len(msg.volume)
        else np.zeros(n, dtype=np.float64)
    )

    def first_bad(name: str, bad: np.ndarray, reason: str) -> None:
        if bad.any():
            i = int(np.argmax(bad))
            v.add(f"{p}.{name}[{i}]", reason)

    first_bad(
        "open_time_unix_ms", np.r_[False, np.diff(t) <= 0], "open times must be strictly ascending"
    )
    for name in ("open", "high", "low", "close"):
        x = cols[name]
        first_bad(name, ~np.isfinite(x) | (x <= 0), "must be a finite price above 0")
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    with np.errstate(invalid="ignore"):
        first_bad("high", h < np.maximum(np.maximum(o, c), lo), "is below the open, close or low")
        first_bad("low", lo > np.minimum(o, c), "is above the open or close")
        first_bad(
            "volume",
            ~np.isfinite(cols["volume"]) | (cols["volume"] < 0),
            "must be finite and not negative",
        )
    if len(v.items) > n0:
        return None
    cols["open_ms"] = t
    return cols


def parse_data(
    request: Any, v: Violations, *, default_interval: int = common_pb2.INTERVAL_1H
) -> DataSpec | None:
    """The data of a RunBacktest or SweepBacktest request."""
    interval = v.guard(lambda: parse_interval(request.interval, default_interval))
    inline = request.HasField("candles")
    symbol = ""
    if request.symbol.strip() or not inline:
        symbol = v.guard(lambda: parse_symbol(request.symbol), "")
    if inline:
        for name in ("start_time", "end_time"):
            v.check(
                not request.HasField(name),
                name,
                "applies to pricing's history, not to inline candles",
            )
        columns = parse_inline(request.candles, v)
        if interval is None or columns is None:
            return None
        return DataSpec(symbol or "CUSTOM", interval, inline=columns)
    if interval is None:
        return None
    start, end = parse_range(request, interval, v)
    return DataSpec(symbol, interval, start, end)


def parse_range(request: Any, interval: int, v: Violations) -> tuple[int | None, int | None]:
    """``start_time`` and ``end_time`` of a history request (None: unset)."""
    start = v.guard(lambda: optional_timestamp_ms(request, "start_time"))
    end = v.guard(lambda: optional_timestamp_ms(request, "end_time"))
    if start is not None and end is not None:
        if end <= start:
            v.add("end_time", "must be after start_time")
        elif (end - start) // MS_BY_ENUM[interval] > MAX_BARS:
            v.add("start_time", f"at most {MAX_BARS:,} bars per backtest; narrow the range")
    return start, end


def parse_run(request: backtest_pb2.RunBacktestRequest) -> BacktestSpec:
    v = Violations()
    data = parse_data(request, v)
    strategy = parse_strategy(request.strategy, v)
    config, echo = parse_execution(request.execution, v)
    v.raise_any()
    assert data is not None and strategy is not None
    return BacktestSpec(data, strategy, config, echo, chart=not request.skip_chart)
