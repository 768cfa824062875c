"""Run a backtest on the signals service from the command line.

    python -m services.signals.backtest_cli --symbol BTC-USD --interval 1h \\
        --start 2025-01-01 --end 2025-07-01 --strategy ma-cross --fast 10 --slow 30 --ma ema \\
        --fee 0.1% --stop-loss 5% --take-profit 3atr
    python -m services.signals.backtest_cli --csv candles.csv --symbol MYCOIN --strategy rsi
    python -m services.signals.backtest_cli --portfolio --symbols BTC-USD,ETH-USD,SOL-USD \\
        --interval 1d --top-k 2 --rebalance-every 7

Calls ``SignalsService.RunBacktest`` (``--portfolio``: ``RunPortfolioBacktest``)
and shows its progress on stderr (a bar on a terminal, a line per stage and
per 10% otherwise). On stdout: the statistics as an aligned table, then the
trades (the first 20; ``--trades all`` or ``--trades N``). The chart goes to
``--out`` (default ``backtest-<symbol>.png``, ``backtest-portfolio.png``);
``--no-chart`` asks the service not to draw it.

Data: pricing's history of ``--symbol`` at ``--interval`` over
[``--start``, ``--end``) (ISO dates or times; no offset means UTC; unset: the
service's defaults), or ``--csv FILE``: your own candles, sent with the request.
The file has a header row with ``time,open,high,low,close`` and optionally
``volume`` (any order, any case; other columns are ignored); ``time`` is ISO
8601 (no offset: UTC) or epoch seconds or milliseconds (numbers from 1e11 up
are milliseconds). A file listed newest first is reversed.

Strategies and their parameters (unset: the service's defaults):
  signal      --confirm-bars                   the service's bullish/bearish direction
  grade       --enter-above --exit-below       trader grade thresholds
  ma-cross    --fast --slow --ma sma|ema       moving-average cross
  rsi         --period --enter-below --exit-above
  bollinger   --period --num-std               breakout above the upper band

Execution: ``--cash``, ``--fee`` and ``--slippage`` (fractions, or percent:
``0.001`` = ``0.1%``), ``--whole-units``, ``--short``, ``--position-fraction``,
``--stop-loss`` and ``--take-profit`` (``5%`` or ``0.05`` of the entry price,
or ``2atr``: two ATR(14)). Portfolio: ``--symbols a,b,c`` (empty: every
asset), ``--top-k``, ``--rebalance-every``, ``--min-grade``,
``--ignore-regime``, ``--stablecoin``; stops, shorts and the position fraction
do not apply there.

``--address`` defaults to ``$MM_SIGNALS_ADDR``, else 127.0.0.1:50052. The
token goes as ``authorization: Bearer <token>``; prefer ``MM_TOKEN=...`` in
the environment to ``--token`` (other users of the machine see arguments).

Exit status: 0 done; 2 for usage errors (found before any call) and for the
service's INVALID_ARGUMENT and NOT_FOUND; 1 for any other failure (the service
unreachable, the chart not writable, ...); 130 when interrupted (Ctrl-C cancels
the call). A failed call prints one line: ``error: CODE: details``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import grpc
import numpy as np
import pandas as pd
from google.protobuf import duration_pb2, timestamp_pb2
from tqdm import tqdm

from marketmesh.v1 import backtest_pb2, common_pb2, signals_pb2_grpc
from services.catalog import SERVICES
from services.common.cli import (
    EXIT_INTERRUPTED,
    TOKEN_ENV,
    address_arg,
    bearer_metadata,
    resolve_token,
    rpc_error_line,
)
from services.common.intervals import ENUM_BY_NAME
from services.common.validation import ms_to_timestamp

_SIGNALS = next(s for s in SERVICES if s.name == "signals")
ADDRESS_ENV = _SIGNALS.address_env
DEFAULT_ADDRESS = _SIGNALS.default_address
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# Codes that say the request itself is wrong: fixing the arguments is the cure.
USAGE_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND})
DEFAULT_TRADES = 20
_MIB = 1024 * 1024
# The service's receive limit (services.common.server); a bigger --csv request
# would be refused after the whole upload.
MAX_REQUEST_BYTES = 16 * _MIB
# The result carries the curves of every bar (the service takes up to 200,000
# bars) and every trade: allow more than the default 4 MiB.
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 64 * _MIB),
    ("grpc.max_send_message_length", 64 * _MIB),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MS_FROM = 1e11  # as seconds that is the year 5138; as ms, 1973

# --strategy name -> (oneof field, the flags (argparse dests) that belong to it)
STRATEGIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "signal": ("signal", ("confirm_bars",)),
    "grade": ("grade_threshold", ("enter_above", "exit_below")),
    "ma-cross": ("moving_average_cross", ("fast", "slow", "ma")),
    "rsi": ("rsi_reversion", ("period", "enter_below", "exit_above")),
    "bollinger": ("bollinger_breakout", ("period", "num_std")),
}
DEFAULT_STRATEGY = "signal"
STRATEGY_FLAGS = tuple(dict.fromkeys(d for _, dests in STRATEGIES.values() for d in dests))
SINGLE_ONLY = (
    "symbol",
    "csv",
    "strategy",
    "short",
    "position_fraction",
    "stop_loss",
    "take_profit",
)
PORTFOLIO_ONLY = ("symbols", "top_k", "rebalance_every", "min_grade", "stablecoin")
PORTFOLIO_SWITCHES = ("ignore_regime",)


class UsageError(Exception):
    """Arguments or an input file that cannot make a request; nothing was sent."""


# ----- argument types -----


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def fraction_arg(text: str) -> float:
    """``0.001`` or ``0.1%``."""
    raw = text.strip()
    if raw.endswith("%"):
        return _number(raw[:-1]) / 100.0
    return _number(raw)


_ATR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*atr\s*$", re.IGNORECASE)


def exit_level_arg(text: str) -> backtest_pb2.ExitLevel:
    """``5%`` or ``0.05`` (of the entry price), or ``2atr`` (multiples of ATR(14))."""
    atr = _ATR.match(text)
    if atr:
        return backtest_pb2.ExitLevel(atr_multiple=float(atr.group(1)))
    try:
        return backtest_pb2.ExitLevel(fraction=fraction_arg(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a distance: 5% or 0.05 (of the entry price), or 2atr (ATR(14) "
            "multiples)"
        ) from None


def time_arg(text: str) -> timestamp_pb2.Timestamp:
    """An ISO 8601 date or time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (2025-01-31, 2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ms_to_timestamp((moment - EPOCH) // timedelta(milliseconds=1))


def symbols_arg(text: str) -> list[str]:
    return [s.strip().upper() for s in text.split(",") if s.strip()]


def trades_arg(text: str) -> int | None:
    """``all`` (None) or how many trades to list."""
    if text.strip().lower() == "all":
        return None
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more, or 'all'")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m services.signals.backtest_cli",
        description="Backtest a signal strategy (or a graded portfolio) on the signals service.",
        epilog="Details and the CSV format: "
        "python -c 'import services.signals.backtest_cli as m; help(m)'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--symbol", metavar="SYMBOL", help="BASE-QUOTE (BTC-USD); with --csv a label")
    data.add_argument("--interval", choices=tuple(ENUM_BY_NAME), help="default 1h (portfolio 1d)")
    data.add_argument(
        "--start", metavar="TIME", type=time_arg, help="inclusive, ISO date/time (UTC if no offset)"
    )
    data.add_argument("--end", metavar="TIME", type=time_arg, help="exclusive")
    data.add_argument(
        "--csv",
        metavar="FILE",
        type=Path,
        help="your own candles: time,open,high,low,close[,volume]",
    )

    strat = p.add_argument_group("strategy")
    strat.add_argument("--strategy", choices=tuple(STRATEGIES), help="default signal")
    strat.add_argument("--confirm-bars", metavar="N", type=_whole, help="signal")
    strat.add_argument("--enter-above", metavar="GRADE", type=_number, help="grade")
    strat.add_argument("--exit-below", metavar="GRADE", type=_number, help="grade")
    strat.add_argument("--fast", metavar="N", type=_whole, help="ma-cross")
    strat.add_argument("--slow", metavar="N", type=_whole, help="ma-cross")
    strat.add_argument("--ma", choices=("sma", "ema"), help="ma-cross")
    strat.add_argument("--period", metavar="N", type=_whole, help="rsi, bollinger")
    strat.add_argument("--enter-below", metavar="RSI", type=_number, help="rsi")
    strat.add_argument("--exit-above", metavar="RSI", type=_number, help="rsi")
    strat.add_argument("--num-std", metavar="K", type=_number, help="bollinger")

    ex = p.add_argument_group("execution")
    ex.add_argument("--cash", metavar="AMOUNT", type=_number, help="starting cash (default 10,000)")
    ex.add_argument("--fee", metavar="FRACTION", type=fraction_arg, help="per fill: 0.001 or 0.1%%")
    ex.add_argument(
        "--slippage",
        metavar="FRACTION",
        type=fraction_arg,
        help="per fill, against you: 0.0005 or 0.05%%",
    )
    ex.add_argument("--whole-units", action="store_true", help="trade whole units only")
    ex.add_argument("--short", action="store_true", help="also go short")
    ex.add_argument(
        "--position-fraction",
        metavar="FRACTION",
        type=fraction_arg,
        help="share of equity per entry",
    )
    ex.add_argument(
        "--stop-loss", metavar="DISTANCE", type=exit_level_arg, help="5%%, 0.05 or 2atr"
    )
    ex.add_argument(
        "--take-profit", metavar="DISTANCE", type=exit_level_arg, help="10%%, 0.1 or 3atr"
    )

    pf = p.add_argument_group("portfolio")
    pf.add_argument("--portfolio", action="store_true", help="RunPortfolioBacktest")
    pf.add_argument(
        "--symbols",
        metavar="A,B,C",
        type=symbols_arg,
        help="candidates a,b,c (default: every asset)",
    )
    pf.add_argument("--top-k", metavar="K", type=_whole, help="hold the K best graded (default 5)")
    pf.add_argument(
        "--rebalance-every", metavar="N", type=_whole, help="bars between rebalances (default 7)"
    )
    pf.add_argument(
        "--min-grade", metavar="GRADE", type=_number, help="hold only tokens graded at least this"
    )
    pf.add_argument("--ignore-regime", action="store_true", help="stay invested in BEAR regimes")
    pf.add_argument(
        "--stablecoin",
        metavar="TICKER",
        help="the stablecoin's ticker in the result (default USDC)",
    )

    out = p.add_argument_group("connection and output")
    out.add_argument(
        "--address",
        type=address_arg,
        metavar="HOST:PORT",
        default=os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS,
        help=f"signals host:port (default ${ADDRESS_ENV} or {DEFAULT_ADDRESS})",
    )
    out.add_argument(
        "--token", metavar="TOKEN", help=f"bearer token (default ${TOKEN_ENV}; prefer the variable)"
    )
    out.add_argument(
        "--out", metavar="PNG", type=Path, help="chart file (default backtest-<symbol>.png)"
    )
    out.add_argument("--no-chart", action="store_true", help="no chart (the service skips it)")
    out.add_argument(
        "--trades",
        type=trades_arg,
        default=DEFAULT_TRADES,
        metavar="N|all",
        help=f"trades to list (default {DEFAULT_TRADES})",
    )
    return p


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_args(args: argparse.Namespace) -> None:
    """What argparse cannot see: flags that do not go together. Raises UsageError;
    fills in the default strategy."""
    dests = (*STRATEGY_FLAGS, *SINGLE_ONLY, *PORTFOLIO_ONLY, *PORTFOLIO_SWITCHES)
    # Unset options are None, unset switches False (and 0 is a value).
    given = [d for d in dests if getattr(args, d) is not None and getattr(args, d) is not False]
    if args.portfolio:
        wrong = [d for d in given if d in SINGLE_ONLY or d in STRATEGY_FLAGS]
        if wrong:
            raise UsageError(
                f"{', '.join(_flag(d) for d in dict.fromkeys(wrong))}: not for --portfolio "
                "(it holds the best-graded of --symbols; strategies, stops and shorts are "
                "for single symbols)"
            )
    else:
        _check_single(args, given)
    if (
        args.start is not None
        and args.end is not None
        and args.end.ToMilliseconds() <= args.start.ToMilliseconds()
    ):
        raise UsageError("--end must be after --start")
    if args.out is not None and not args.no_chart and not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: no such directory {args.out.parent}")


def _check_single(args: argparse.Namespace, given: list[str]) -> None:
    wrong = [d for d in given if d in PORTFOLIO_ONLY or d in PORTFOLIO_SWITCHES]
    if wrong:
        raise UsageError(f"{', '.join(_flag(d) for d in wrong)}: only with --portfolio")
    args.strategy = args.strategy or DEFAULT_STRATEGY
    allowed = STRATEGIES[args.strategy][1]
    for dest in STRATEGY_FLAGS:
        if getattr(args, dest) is not None and dest not in allowed:
            owners = [name for name, (_, own) in STRATEGIES.items() if dest in own]
            raise UsageError(
                f"{_flag(dest)} is a parameter of --strategy {' or '.join(owners)}, "
                f"not {args.strategy}"
            )
    if not args.symbol and args.csv is None:
        raise UsageError("give --symbol (pricing's history) or --csv FILE (your candles)")
    if args.csv is not None and (args.start is not None or args.end is not None):
        raise UsageError("--start/--end select pricing's history; cut the --csv file instead")


# ----- the candle file -----


TIME_COLUMNS = ("time", "timestamp", "date", "open_time")
PRICE_COLUMNS = ("open", "high", "low", "close")


def read_candles(path: Path) -> backtest_pb2.CandleColumns:
    """The candles of a CSV file as columns; UsageError naming the line and
    column of the first problem."""
    try:
        frame = pd.read_csv(
            path,
            keep_default_na=False,
            na_values=[""],  # only an empty cell is missing ("NaN" is not a price)
            skip_blank_lines=False,  # keeps index + 2 == the line in the file
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    time_col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if time_col is None or missing:
        need = (["time"] if time_col is None else []) + missing
        raise UsageError(
            f"{path}: header: no {', '.join(need)} column (have: {', '.join(frame.columns)})"
        )
    frame = frame.dropna(how="all")  # blank lines
    if frame.empty:
        raise UsageError(f"{path}: no candles after the header")

    def where(column: str) -> Callable[[int], str]:
        return lambda i: f"{path}: line {int(frame.index[i]) + 2}: {column}"

    times = _time_ms(frame[time_col], where(time_col))
    columns = {name: _numbers(frame[name], where(name)) for name in PRICE_COLUMNS}
    volume = np.empty(0)
    if "volume" in frame.columns and frame["volume"].notna().any():
        volume = _numbers(frame["volume"], where("volume"))
    if len(times) > 1 and bool(np.all(np.diff(times) < 0)):
        times, volume = times[::-1], volume[::-1]
        columns = {k: v[::-1] for k, v in columns.items()}
    return backtest_pb2.CandleColumns(
        open_time_unix_ms=times.tolist(),
        volume=volume.tolist(),
        **{k: v.tolist() for k, v in columns.items()},
    )


def _numbers(cells: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    # pandas' C parser has already read a clean column as numbers; text is the
    # exception (a stray word, trailing spaces), parsed here cell by cell.
    if cells.dtype.kind in "fiu":
        values = cells.to_numpy(dtype=np.float64)
    else:
        text = cells.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        cell = cells.iloc[bad[0]]
        shown = "empty" if pd.isna(cell) else f"{str(cell).strip()!r} is not a number"
        raise UsageError(f"{where(int(bad[0]))}: {shown}")
    return values


def _time_ms(cells: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    if cells.dtype.kind in "fiu":
        numbers = cells.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise UsageError(f"{where(int(bad[0]))}: empty")
        return _epoch_ms(numbers)
    text = cells.astype(str).str.strip()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    ms = np.zeros(len(cells), dtype=np.int64)
    iso = parsed.notna().to_numpy()
    if iso.any():
        since = (parsed[iso] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        ms[iso] = since.to_numpy(dtype=np.int64)
    if not iso.all():  # epoch numbers among ISO times
        numbers = pd.to_numeric(text[~iso], errors="coerce").to_numpy(dtype=np.float64)
        rows = np.flatnonzero(~iso)
        bad = rows[~np.isfinite(numbers)]
        if len(bad):
            i = int(bad[0])
            raise UsageError(
                f"{where(i)}: {text.iloc[i]!r} is not an ISO 8601 time or epoch seconds/ms"
            )
        ms[rows] = _epoch_ms(numbers)
    return ms


def _epoch_ms(numbers: np.ndarray) -> np.ndarray:
    # Per value, so a file that switches units part way is still read right.
    ms = np.where(np.abs(numbers) >= EPOCH_MS_FROM, numbers, numbers * 1000.0)
    return np.round(ms).astype(np.int64)


# ----- the request -----


def build_strategy(args: argparse.Namespace) -> backtest_pb2.Strategy:
    field, dests = STRATEGIES[args.strategy]
    strategy = backtest_pb2.Strategy()
    sub = getattr(strategy, field)
    sub.SetInParent()  # the kind is chosen even with every parameter at its default
    for dest in dests:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "ma":
            sub.average = (
                backtest_pb2.MOVING_AVERAGE_TYPE_EMA
                if value == "ema"
                else backtest_pb2.MOVING_AVERAGE_TYPE_SMA
            )
        else:
            setattr(sub, dest, value)
    return strategy


def build_execution(args: argparse.Namespace) -> backtest_pb2.Execution:
    ex = backtest_pb2.Execution(whole_units=args.whole_units)
    if args.cash is not None:
        ex.cash = args.cash
    if args.fee is not None:
        ex.fee = args.fee
    if args.slippage is not None:
        ex.slippage = args.slippage
    if not args.portfolio:
        ex.allow_short = args.short
        if args.position_fraction is not None:
            ex.position_fraction = args.position_fraction
        if args.stop_loss is not None:
            ex.stop_loss.CopyFrom(args.stop_loss)
        if args.take_profit is not None:
            ex.take_profit.CopyFrom(args.take_profit)
    return ex


def _interval(args: argparse.Namespace) -> int:
    return ENUM_BY_NAME[args.interval] if args.interval else common_pb2.INTERVAL_UNSPECIFIED


def build_request(
    args: argparse.Namespace,
) -> backtest_pb2.RunBacktestRequest | backtest_pb2.RunPortfolioBacktestRequest:
    """The request the flags describe (reads --csv). Raises UsageError."""
    request: Any
    if args.portfolio:
        request = backtest_pb2.RunPortfolioBacktestRequest(
            symbols=args.symbols or [],
            interval=_interval(args),
            ignore_regime=args.ignore_regime,
            stablecoin=args.stablecoin or "",
            execution=build_execution(args),
            skip_chart=args.no_chart,
        )
        for dest in ("top_k", "rebalance_every", "min_grade"):
            if getattr(args, dest) is not None:
                setattr(request, dest, getattr(args, dest))
    else:
        request = backtest_pb2.RunBacktestRequest(
            symbol=(args.symbol or "").strip(),
            interval=_interval(args),
            strategy=build_strategy(args),
            execution=build_execution(args),
            skip_chart=args.no_chart,
        )
        if args.csv is not None:
            request.candles.CopyFrom(read_candles(args.csv))
            size = request.ByteSize()
            if size > MAX_REQUEST_BYTES:
                bars = len(request.candles.open_time_unix_ms)
                fit = int(bars * MAX_REQUEST_BYTES / size)
                raise UsageError(
                    f"{args.csv}: {bars:,} candles make a {size / _MIB:.1f} MiB request; the "
                    f"service takes {MAX_REQUEST_BYTES // _MIB} MiB (about {fit:,} candles)"
                )
    if args.start is not None:
        request.start_time.CopyFrom(args.start)
    if args.end is not None:
        request.end_time.CopyFrom(args.end)
    return request  # type: ignore[no-any-return]


# ----- progress -----


class Progress:
    """The service's progress messages on stderr: one bar redrawn in place on a
    terminal; elsewhere (a log, a pipe) a line per stage and per 10%."""

    def __init__(self, stream: TextIO, min_interval: float = 0.1) -> None:
        self._stream = stream
        self._min_interval = min_interval  # between redraws of the bar
        self._bar: tqdm | None = None
        self._tty = bool(getattr(stream, "isatty", None) and stream.isatty())
        self._last: tuple[str, int] | None = None

    def update(self, progress: backtest_pb2.BacktestProgress) -> None:
        fraction = min(max(progress.fraction_done, 0.0), 1.0)
        stage = progress.stage or "working"
        if self._tty:
            if self._bar is None:
                self._bar = tqdm(
                    total=1000,
                    desc=stage,
                    file=self._stream,
                    mininterval=self._min_interval,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
                    leave=False,
                )
            self._bar.set_description_str(stage, refresh=False)
            if progress.bars_processed:
                self._bar.set_postfix_str(f"{progress.bars_processed:,} bars", refresh=False)
            self._bar.update(round(fraction * 1000) - self._bar.n)
            return
        step = (stage, int(fraction * 10))
        if step != self._last:
            self._last = step
            bars = f" ({progress.bars_processed:,} bars)" if progress.bars_processed else ""
            print(f"{stage}: {fraction:.0%}{bars}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ----- the result as text -----


def _pct(v: float) -> str:
    return f"{v:,.2f}%" if math.isfinite(v) else _odd(v)


def _money(v: float) -> str:
    return f"{v:,.2f}" if math.isfinite(v) else _odd(v)


def _ratio(v: float) -> str:
    return f"{v:,.3f}" if math.isfinite(v) else _odd(v)


def _odd(v: float) -> str:
    return "n/a" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _price(v: float) -> str:
    if not math.isfinite(v):
        return _odd(v)
    if abs(v) >= 1000:
        return f"{v:,.2f}"
    return f"{v:.4f}" if abs(v) >= 1 else f"{v:.6g}"


def _when(ts: timestamp_pb2.Timestamp) -> str:
    return datetime.fromtimestamp(ts.ToMilliseconds() / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _span(d: duration_pb2.Duration) -> str:
    seconds = d.seconds
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    clock = f"{hours:02d}:{rest // 60:02d}" + (f":{rest % 60:02d}" if rest % 60 else "")
    return f"{days}d {clock}" if days else clock


# (field, label, format): the order people read a backtest report in.
STATISTICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("start", "Start (UTC)", _when),
    ("end", "End (UTC)", _when),
    ("duration", "Duration", _span),
    ("exposure_time_pct", "Exposure time", _pct),
    ("final_equity", "Final equity", _money),
    ("peak_equity", "Peak equity", _money),
    ("return_pct", "Return", _pct),
    ("buy_and_hold_return_pct", "Buy & hold return", _pct),
    ("annualized_return_pct", "Return (annualized)", _pct),
    ("annualized_volatility_pct", "Volatility (annualized)", _pct),
    ("cagr_pct", "CAGR", _pct),
    ("sharpe_ratio", "Sharpe ratio", _ratio),
    ("sortino_ratio", "Sortino ratio", _ratio),
    ("calmar_ratio", "Calmar ratio", _ratio),
    ("max_drawdown_pct", "Max drawdown", _pct),
    ("max_drawdown_duration", "Max drawdown duration", _span),
    ("avg_drawdown_pct", "Avg drawdown", _pct),
    ("avg_drawdown_duration", "Avg drawdown duration", _span),
    ("trade_count", "Trades", lambda v: f"{v:,}"),
    ("win_rate_pct", "Win rate", _pct),
    ("best_trade_pct", "Best trade", _pct),
    ("worst_trade_pct", "Worst trade", _pct),
    ("avg_trade_pct", "Avg trade", _pct),
    ("max_trade_duration", "Max trade duration", _span),
    ("avg_trade_duration", "Avg trade duration", _span),
    ("profit_factor", "Profit factor", _ratio),
    ("expectancy_pct", "Expectancy", _pct),
    ("sqn", "SQN", _ratio),
    ("kelly_criterion", "Kelly criterion", _ratio),
    ("bars_per_year", "Bars per year", lambda v: f"{v:,.0f}"),
)


def format_statistics(stats: backtest_pb2.BacktestStatistics) -> list[str]:
    """Label and value per line, labels left-aligned and values right-aligned."""
    rows = [(label, fmt(getattr(stats, name))) for name, label, fmt in STATISTICS]
    left = max(len(label) for label, _ in rows)
    right = max(len(value) for _, value in rows)
    return [f"{label:<{left}}  {value:>{right}}" for label, value in rows]


def _reason(value: int) -> str:
    name = backtest_pb2.ExitReason.Name(value) if value in backtest_pb2.ExitReason.values() else ""
    return name.removeprefix("EXIT_REASON_").replace("_", " ").lower() or str(value)


def format_trades(
    trades: Sequence[backtest_pb2.BacktestTrade], limit: int | None, *, with_symbol: bool
) -> list[str]:
    """The trades as an aligned table (the first ``limit``; None: all)."""
    head = ["#", *(["symbol"] if with_symbol else []), "side", "entry (UTC)", "exit (UTC)"]
    head += ["entry", "exit", "size", "P&L", "return", "fees", "exit reason"]
    shown = trades if limit is None else trades[:limit]
    rows = [
        [
            str(i),
            *([t.symbol] if with_symbol else []),
            "short" if t.size < 0 else "long",
            _when(t.entry_time),
            _when(t.exit_time),
            _price(t.entry_price),
            _price(t.exit_price),
            f"{abs(t.size):.8g}",
            _money(t.pnl),
            _pct(t.return_pct),
            _money(t.fees),
            _reason(t.exit_reason),
        ]
        for i, t in enumerate(shown, 1)
    ]
    text_columns = {
        c
        for c, name in enumerate(head)
        if name in {"symbol", "side", "exit reason"} or "UTC" in name
    }
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if c in text_columns else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [line(head), *(line(r) for r in rows)]
    if len(shown) < len(trades):
        lines.append(f"... {len(trades) - len(shown):,} more (--trades all lists them)")
    return lines


def _report(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    portfolio = isinstance(result, backtest_pb2.PortfolioBacktestResult)
    what = f"portfolio of {len(result.symbols)} symbols" if portfolio else result.symbol
    interval = next((n for n, e in ENUM_BY_NAME.items() if e == result.interval), "?")
    print(f"Backtest: {what}, {interval}", file=out)
    print(file=out)
    for row in format_statistics(result.statistics):
        print(row, file=out)
    if portfolio:
        bear = sum(1 for r in result.rebalances if r.bear)
        print(f"\nRebalances: {len(result.rebalances):,} ({bear:,} into the stablecoin)", file=out)
    print(f"\nTrades: {len(result.trades):,}", file=out)
    if result.trades:
        for row in format_trades(result.trades, args.trades, with_symbol=portfolio):
            print(row, file=out)


# ----- the call -----


def _chart_path(args: argparse.Namespace, result: Any) -> Path:
    if args.out is not None:
        return Path(args.out)
    if isinstance(result, backtest_pb2.PortfolioBacktestResult):
        return Path("backtest-portfolio.png")
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.symbol or args.symbol or "custom")
    return Path(f"backtest-{label}.png")


async def _run(args: argparse.Namespace, request: Any, token: str) -> int:
    progress = Progress(sys.stderr)
    result: Any = None
    try:
        async with grpc.aio.insecure_channel(args.address, options=CHANNEL_OPTIONS) as channel:
            stub = signals_pb2_grpc.SignalsServiceStub(channel)
            method = stub.RunPortfolioBacktest if args.portfolio else stub.RunBacktest
            call = method(request, metadata=bearer_metadata(token))
            try:
                async for message in call:
                    if message.HasField("progress"):
                        progress.update(message.progress)
                    elif message.HasField("result"):
                        result = message.result
            except grpc.aio.AioRpcError as exc:
                progress.close()
                print(f"error: {rpc_error_line(exc)}", file=sys.stderr)
                return EXIT_USAGE if exc.code() in USAGE_CODES else EXIT_FAILED
            except asyncio.CancelledError:
                call.cancel()  # Ctrl-C: tell the service to stop, then go
                raise
    finally:
        progress.close()
    if result is None:
        print("error: the service ended the call without a result", file=sys.stderr)
        return EXIT_FAILED
    _report(result, args, sys.stdout)
    if not args.no_chart:
        path = _chart_path(args, result)
        if not result.chart_png:
            print("\nChart: the service sent none", file=sys.stdout)
            return EXIT_OK
        try:
            path.write_bytes(result.chart_png)
        except OSError as exc:
            print(f"error: cannot write the chart: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"\nChart: {path}", file=sys.stdout)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (or --help)
        return int(exc.code or 0)
    try:
        try:
            check_args(args)
            request = build_request(args)
        except UsageError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return asyncio.run(_run(args, request, resolve_token(args.token)))
    except KeyboardInterrupt:
        print("interrupted: the backtest was cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
