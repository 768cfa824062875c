"""The backtest command line (services.signals.backtest_cli) against a small
fake SignalsService: the request built from the flags and from a CSV file,
the printed tables, the chart file, exit codes, and Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2

from marketmesh.v1 import backtest_pb2, common_pb2, signals_pb2_grpc
from services.common.validation import ms_to_timestamp
from services.signals import backtest_cli
from services.signals.backtest.chart import single_chart

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TOKEN = "cli-token-0123456789"
NAN = float("nan")


def _chart() -> bytes:
    n = 50
    close = 100.0 + np.arange(n, dtype=np.float64)
    equity = 10_000.0 * close / close[0]
    return single_chart(
        symbol="BTC-USD",
        interval_name="1h",
        time_ms=T0 + np.arange(n, dtype=np.int64) * HOUR_MS,
        close=close,
        entry_bars=np.array([5]),
        exit_bars=np.array([20]),
        short_entry_bars=None,
        equity=equity,
        buy_and_hold=equity,
        drawdown=np.zeros(n),
        title_stats={"return_pct": 12.5},
    )


CHART = _chart()


def _trade(i: int, size: float, symbol: str = "") -> backtest_pb2.BacktestTrade:
    return backtest_pb2.BacktestTrade(
        symbol=symbol,
        entry_time=ms_to_timestamp(T0 + (10 * i) * HOUR_MS),
        exit_time=ms_to_timestamp(T0 + (10 * i + 5) * HOUR_MS),
        entry_price=101_250.5,
        exit_price=0.00012345,
        size=size,
        pnl=-1234.5,
        return_pct=-2.5,
        fees=1.25,
        duration=duration_pb2.Duration(seconds=5 * 3600),
        exit_reason=backtest_pb2.EXIT_REASON_STOP_LOSS,
    )


def _statistics() -> backtest_pb2.BacktestStatistics:
    return backtest_pb2.BacktestStatistics(
        start=ms_to_timestamp(T0),
        end=ms_to_timestamp(T0 + 49 * HOUR_MS),
        duration=duration_pb2.Duration(seconds=2 * 86_400 + 3_600),
        exposure_time_pct=40.0,
        final_equity=11_250.0,
        peak_equity=11_500.125,
        return_pct=12.5,
        buy_and_hold_return_pct=-3.25,
        sharpe_ratio=1.23456,
        win_rate_pct=NAN,
        profit_factor=float("inf"),
        trade_count=25,
        bars_per_year=8760.0,
    )


def single_result(trades: int = 25) -> backtest_pb2.BacktestResult:
    return backtest_pb2.BacktestResult(
        symbol="BTC-USD",
        interval=common_pb2.INTERVAL_1H,
        statistics=_statistics(),
        trades=[_trade(i, 0.5 if i % 2 else -0.5) for i in range(trades)],
        chart_png=CHART,
    )


def portfolio_result() -> backtest_pb2.PortfolioBacktestResult:
    return backtest_pb2.PortfolioBacktestResult(
        symbols=["BTC-USD", "ETH-USD"],
        interval=common_pb2.INTERVAL_1D,
        statistics=_statistics(),
        trades=[_trade(0, 1.0, "ETH-USD"), _trade(1, 2.0, "BTC-USD")],
        rebalances=[
            backtest_pb2.PortfolioRebalance(time=ms_to_timestamp(T0), weights={"BTC-USD": 1.0}),
            backtest_pb2.PortfolioRebalance(time=ms_to_timestamp(T0 + 7 * 86_400_000), bear=True),
        ],
        chart_png=CHART,
    )


@dataclass
class FakeSignals(signals_pb2_grpc.SignalsServiceServicer):
    """RunBacktest and RunPortfolioBacktest: two progress messages, then the
    result; or an error status, or a call that waits to be cancelled."""

    fail: tuple[grpc.StatusCode, str] | None = None
    hang: bool = False
    requests: list[Any] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def _stream(
        self, request: Any, context: Any, response: Any, result: Any
    ) -> AsyncIterator[Any]:
        self.requests.append(request)
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        if self.fail is not None:
            await context.abort(*self.fail)
        yield response(progress=backtest_pb2.BacktestProgress(stage="fetching candles"))
        yield response(
            progress=backtest_pb2.BacktestProgress(
                fraction_done=0.5, bars_processed=25, stage="simulating"
            )
        )
        if self.hang:
            self.waiting.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        yield response(result=result)

    async def RunBacktest(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for message in self._stream(
            request, context, backtest_pb2.RunBacktestResponse, single_result()
        ):
            yield message

    async def RunPortfolioBacktest(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for message in self._stream(
            request, context, backtest_pb2.RunPortfolioBacktestResponse, portfolio_result()
        ):
            yield message


def _pngs(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.png"))


@dataclass
class Fake:
    servicer: FakeSignals
    address: str

    async def run(self, *argv: str) -> int:
        # main() runs its own event loop: a thread keeps this one serving.
        return await asyncio.to_thread(backtest_cli.main, [*argv, "--address", self.address])


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    servicer = FakeSignals()
    server = grpc.aio.server()
    # Only the two methods are served, as a real partial build would be.
    generic = grpc.method_handlers_generic_handler(
        "marketmesh.v1.SignalsService",
        {
            "RunBacktest": grpc.unary_stream_rpc_method_handler(
                servicer.RunBacktest,
                request_deserializer=backtest_pb2.RunBacktestRequest.FromString,
                response_serializer=backtest_pb2.RunBacktestResponse.SerializeToString,
            ),
            "RunPortfolioBacktest": grpc.unary_stream_rpc_method_handler(
                servicer.RunPortfolioBacktest,
                request_deserializer=backtest_pb2.RunPortfolioBacktestRequest.FromString,
                response_serializer=backtest_pb2.RunPortfolioBacktestResponse.SerializeToString,
            ),
        },
    )
    server.add_generic_rpc_handlers((generic,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Fake(servicer, f"127.0.0.1:{port}")
    await server.stop(0)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MM_TOKEN", raising=False)
    monkeypatch.delenv("MM_SIGNALS_ADDR", raising=False)
    monkeypatch.chdir(tmp_path)  # the default chart file lands here


# ----- the request -----


async def test_flags_map_to_the_request(fake: Fake, tmp_path: Path) -> None:
    code = await fake.run(
        *("--symbol", "btc-usd", "--interval", "4h"),
        *("--start", "2025-01-01", "--end", "2025-02-01T12:00:00+01:00"),
        *("--strategy", "ma-cross", "--fast", "5", "--slow", "20", "--ma", "ema"),
        *("--cash", "2500", "--fee", "0.1%", "--slippage", "0.0005", "--whole-units"),
        *("--short", "--position-fraction", "50%", "--stop-loss", "5%", "--take-profit", "2.5atr"),
        *("--token", TOKEN, "--no-chart"),
    )
    assert code == 0
    (request,) = fake.servicer.requests
    assert isinstance(request, backtest_pb2.RunBacktestRequest)
    assert request.symbol == "btc-usd"
    assert request.interval == common_pb2.INTERVAL_4H
    assert request.start_time.ToMilliseconds() == T0
    assert request.end_time.ToMilliseconds() == T0 + 31 * 86_400_000 + 11 * HOUR_MS
    assert not request.HasField("candles")
    ma = request.strategy.moving_average_cross
    assert request.strategy.WhichOneof("kind") == "moving_average_cross"
    assert (ma.fast, ma.slow, ma.average) == (5, 20, backtest_pb2.MOVING_AVERAGE_TYPE_EMA)
    ex = request.execution
    assert ex.cash == 2500.0
    assert ex.fee == pytest.approx(0.001)
    assert ex.slippage == 0.0005
    assert ex.whole_units and ex.allow_short
    assert ex.position_fraction == 0.5
    assert ex.stop_loss.WhichOneof("distance") == "fraction"
    assert ex.stop_loss.fraction == pytest.approx(0.05)
    assert ex.take_profit.WhichOneof("distance") == "atr_multiple"
    assert ex.take_profit.atr_multiple == 2.5
    assert request.skip_chart
    assert fake.servicer.metadata[0]["authorization"] == f"Bearer {TOKEN}"
    assert _pngs(tmp_path) == []


async def test_defaults_are_left_to_the_service(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_TOKEN", " from-the-environment-1\n")
    assert await fake.run("--symbol", "ETH-USD") == 0
    (request,) = fake.servicer.requests
    assert request.interval == common_pb2.INTERVAL_UNSPECIFIED
    assert not request.HasField("start_time") and not request.HasField("end_time")
    assert request.strategy.WhichOneof("kind") == "signal"
    assert not request.strategy.signal.HasField("confirm_bars")
    ex = request.execution
    assert not ex.HasField("cash") and not ex.HasField("position_fraction")
    assert not ex.HasField("stop_loss") and not ex.HasField("take_profit")
    assert (ex.fee, ex.slippage, ex.whole_units, ex.allow_short) == (0.0, 0.0, False, False)
    assert not request.skip_chart
    assert fake.servicer.metadata[0]["authorization"] == "Bearer from-the-environment-1"


@pytest.mark.parametrize(
    ("flags", "kind", "fields"),
    [
        (["--strategy", "signal", "--confirm-bars", "4"], "signal", {"confirm_bars": 4}),
        (
            ["--strategy", "grade", "--enter-above", "75", "--exit-below", "45.5"],
            "grade_threshold",
            {"enter_above": 75.0, "exit_below": 45.5},
        ),
        (
            ["--strategy", "rsi", "--period", "7", "--enter-below", "25", "--exit-above", "80"],
            "rsi_reversion",
            {"period": 7, "enter_below": 25.0, "exit_above": 80.0},
        ),
        (
            ["--strategy", "bollinger", "--period", "30", "--num-std", "2.5"],
            "bollinger_breakout",
            {"period": 30, "num_std": 2.5},
        ),
        (["--strategy", "ma-cross"], "moving_average_cross", {"fast": 0, "slow": 0}),
    ],
)
async def test_each_strategy_and_its_parameters(
    fake: Fake, flags: list[str], kind: str, fields: dict[str, float]
) -> None:
    assert await fake.run("--symbol", "SOL-USD", "--no-chart", *flags) == 0
    strategy = fake.servicer.requests[0].strategy
    assert strategy.WhichOneof("kind") == kind
    sub = getattr(strategy, kind)
    assert {name: getattr(sub, name) for name in fields} == fields


CSV = (
    "Close,TIME,open,High,low,Volume,trades\n"
    "101,2025-01-01T00:00:00Z,100,102,99,5.5,7\n"
    "102,2025-01-01T02:00:00+01:00,101,103,100,6,8\n"  # 01:00 UTC
    "\n"
    "103,2025-01-01 02:00:00,102,104,101,0,9\n"  # no offset: UTC
    "104,1735700400,103,105,102,1.25,1\n"  # epoch seconds: 03:00
    "105,1735704000000,104,106,103,2,2\n"  # epoch ms: 04:00
)


async def test_csv_becomes_candle_columns(fake: Fake, tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(CSV, encoding="utf-8")
    assert await fake.run("--csv", str(path), "--symbol", "MINE", "--no-chart") == 0
    (request,) = fake.servicer.requests
    c = request.candles
    assert list(c.open_time_unix_ms) == [T0 + h * HOUR_MS for h in (0, 1, 2, 3, 4)]
    assert list(c.open) == [100, 101, 102, 103, 104]
    assert list(c.high) == [102, 103, 104, 105, 106]
    assert list(c.low) == [99, 100, 101, 102, 103]
    assert list(c.close) == [101, 102, 103, 104, 105]
    assert list(c.volume) == [5.5, 6, 0, 1.25, 2]
    assert request.symbol == "MINE"


async def test_csv_newest_first_is_reversed_and_volume_is_optional(
    fake: Fake, tmp_path: Path
) -> None:
    path = tmp_path / "desc.csv"
    path.write_text(
        "time,open,high,low,close\n1735696800,3,3,3,3\n1735693200,2,2,2,2\n1735689600,1,1,1,1\n",
        encoding="utf-8",
    )
    assert await fake.run("--csv", str(path), "--no-chart") == 0
    c = fake.servicer.requests[0].candles
    assert list(c.open_time_unix_ms) == [T0, T0 + HOUR_MS, T0 + 2 * HOUR_MS]
    assert list(c.close) == [1, 2, 3]
    assert list(c.volume) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("time,open,high,low\n1,1,1,1\n", "header: no close column"),
        ("when,open,high,low,close\n1,1,1,1,1\n", "header: no time column"),
        ("time,open,high,low,close\n1735689600,1,1,1,1\n\n2025-13-01,1,1,1,1\n", "line 4: time"),
        ("time,open,high,low,close\n1735689600,1,1,x,1\n", "line 2: low: 'x' is not a number"),
        ("time,open,high,low,close\n", "no candles"),
        ("time,open,high,low,close\n1735689600,1,1,,1\n", "line 2: low: empty"),
        ("time,open,high,low,close\n1735689600,1,1,1,1\n,1,1,1,1\n", "line 3: time: empty"),
        ("time,open,high,low,close\n2025-01-01,1,1,1,1\nsoon,1,1,1,1\n", "line 3: time: 'soon'"),
    ],
)
async def test_bad_csv_exits_2_before_any_call(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    assert await fake.run("--csv", str(path)) == 2
    assert words in capsys.readouterr().err
    assert fake.servicer.requests == []


async def test_a_csv_too_big_for_one_request_is_refused_locally(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_text(
        "time,open,high,low,close\n"
        + "".join(f"{1735689600 + 3600 * i},1,1,1,1\n" for i in range(40)),
        encoding="utf-8",
    )
    # 40 candles: 40 open times of 6 varint bytes and 4 x 40 doubles, plus tags.
    monkeypatch.setattr(backtest_cli, "MAX_REQUEST_BYTES", 1_000)
    assert await fake.run("--csv", str(path)) == 2
    err = capsys.readouterr().err
    assert "40 candles make a 0.0 MiB request" in err
    assert fake.servicer.requests == []


async def test_portfolio_flags_map_to_the_request(fake: Fake) -> None:
    code = await fake.run(
        *("--portfolio", "--symbols", "btc-usd, eth-usd,SOL-USD", "--interval", "1d"),
        *("--top-k", "2", "--rebalance-every", "14", "--min-grade", "60", "--ignore-regime"),
        *("--stablecoin", "USDT", "--cash", "5000", "--fee", "0.002", "--no-chart"),
        *("--start", "2025-01-01"),
    )
    assert code == 0
    (request,) = fake.servicer.requests
    assert isinstance(request, backtest_pb2.RunPortfolioBacktestRequest)
    assert list(request.symbols) == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert request.interval == common_pb2.INTERVAL_1D
    assert (request.top_k, request.rebalance_every, request.min_grade) == (2, 14, 60.0)
    assert request.ignore_regime and request.stablecoin == "USDT"
    assert request.execution.cash == 5000.0 and request.execution.fee == 0.002
    assert not request.execution.allow_short
    assert request.start_time.ToMilliseconds() == T0
    assert request.skip_chart


# ----- what it prints and writes -----


async def test_prints_statistics_and_trades_and_writes_the_chart(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await fake.run("--symbol", "BTC-USD") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "Backtest: BTC-USD, 1h"
    table = lines[2 : lines.index("", 2)]
    width = len(table[0])
    assert all(len(row) == width for row in table)  # values right-aligned in one column
    rows = {row[:24].strip(): row[24:].strip() for row in table}
    assert rows["Start (UTC)"] == "2025-01-01 00:00"
    assert rows["End (UTC)"] == "2025-01-03 01:00"
    assert rows["Duration"] == "2d 01:00"
    assert rows["Final equity"] == "11,250.00"
    assert rows["Peak equity"] == "11,500.12"
    assert rows["Return"] == "12.50%"
    assert rows["Buy & hold return"] == "-3.25%"
    assert rows["Sharpe ratio"] == "1.235"
    assert rows["Win rate"] == "n/a"
    assert rows["Profit factor"] == "inf"
    assert rows["Trades"] == "25"
    assert rows["Bars per year"] == "8,760"

    trades_at = lines.index("Trades: 25")
    head = lines[trades_at + 1].split()
    assert head[:4] == ["#", "side", "entry", "(UTC)"]
    first = lines[trades_at + 2]
    assert first.split() == [
        *("1", "short", "2025-01-01", "00:00", "2025-01-01", "05:00"),
        *("101,250.50", "0.00012345", "0.5", "-1,234.50", "-2.50%", "1.25", "stop", "loss"),
    ]
    assert lines[trades_at + 3].split()[1] == "long"
    assert lines[trades_at + 22] == "... 5 more (--trades all lists them)"
    assert lines[-1] == "Chart: backtest-BTC-USD.png"
    assert (tmp_path / "backtest-BTC-USD.png").read_bytes() == CHART

    # Progress on stderr, one plain line per stage (stderr is not a terminal here).
    assert captured.err.splitlines() == [
        "fetching candles: 0%",
        "simulating: 50% (25 bars)",
    ]


async def test_trades_all_and_out_path(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "charts" / "mine.png"
    out.parent.mkdir()
    assert await fake.run("--symbol", "BTC-USD", "--trades", "all", "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "more (--trades all" not in text
    assert sum(1 for line in text.splitlines() if "stop loss" in line) == 25
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert out.read_bytes() == CHART


async def test_portfolio_output(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await fake.run("--portfolio", "--symbols", "BTC-USD,ETH-USD") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Backtest: portfolio of 2 symbols, 1d"
    assert "Rebalances: 2 (1 into the stablecoin)" in lines
    trades_at = lines.index("Trades: 2")
    assert lines[trades_at + 1].split()[:2] == ["#", "symbol"]
    assert lines[trades_at + 2].split()[:3] == ["1", "ETH-USD", "long"]
    assert (tmp_path / "backtest-portfolio.png").read_bytes() == CHART


# ----- failures -----


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 2),
        (grpc.StatusCode.NOT_FOUND, 2),
        (grpc.StatusCode.UNAVAILABLE, 1),
        (grpc.StatusCode.UNAUTHENTICATED, 1),
    ],
)
async def test_status_codes_print_one_line_and_exit(
    fake: Fake,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: grpc.StatusCode,
    exit_code: int,
) -> None:
    details = "strategy.moving_average_cross.slow: must be more than fast (5 <= 10)"
    fake.servicer.fail = (code, details)
    assert await fake.run("--symbol", "BTC-USD", "--strategy", "ma-cross") == exit_code
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {code.name}: {details}"]
    assert _pngs(tmp_path) == []


async def test_unreachable_service_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["--symbol", "BTC-USD", "--address", f"127.0.0.1:{port}"]
    assert await asyncio.to_thread(backtest_cli.main, argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--symbol", "BTC-USD", "--stop-loss", "5x"], "argument --stop-loss: '5x' is not a"),
        (["--symbol", "BTC-USD", "--fee", "abc"], "argument --fee: 'abc' is not a number"),
        (["--symbol", "BTC-USD", "--interval", "2h"], "argument --interval: invalid choice"),
        (["--symbol", "BTC-USD", "--start", "yesterday"], "'yesterday' is not an ISO 8601"),
        (["--symbol", "BTC-USD", "--fast", "5"], "--fast is a parameter of --strategy ma-cross"),
        (["--symbol", "X", "--strategy", "rsi", "--num-std", "2"], "--strategy bollinger, not"),
        (["--strategy", "rsi"], "give --symbol"),
        (["--symbol", "X", "--top-k", "3"], "--top-k: only with --portfolio"),
        (["--portfolio", "--stop-loss", "5%"], "--stop-loss: not for --portfolio"),
        (["--portfolio", "--fast", "3"], "--fast: not for --portfolio"),
        (["--portfolio", "--symbol", "BTC-USD"], "--symbol: not for --portfolio"),
        (["--portfolio", "--strategy", "rsi"], "--strategy: not for --portfolio"),
        (["--portfolio", "--position-fraction", "0"], "--position-fraction: not for --portfolio"),
        (["--symbol", "X", "--min-grade", "0"], "--min-grade: only with --portfolio"),
        (["--csv", "x.csv", "--start", "2025-01-01"], "--start/--end select pricing's history"),
        (["--symbol", "X", "--start", "2025-02-01", "--end", "2025-01-01"], "after --start"),
        (["--symbol", "X", "--out", "no/such/dir/c.png"], "no such directory"),
        (["--symbol", "X", "--trades", "some"], "'some' is not a whole number"),
        (["--csv", "missing.csv"], "missing.csv: cannot read"),
    ],
)
async def test_usage_errors_exit_2_before_any_call(
    fake: Fake, capsys: pytest.CaptureFixture[str], flags: list[str], words: str
) -> None:
    assert await fake.run(*flags) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
    assert fake.servicer.requests == []


async def test_ctrl_c_cancels_the_call_and_exits_130(fake: Fake) -> None:
    fake.servicer.hang = True
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "services.signals.backtest_cli", "--symbol", "BTC-USD", "--address", fake.address),
        cwd=os.getcwd(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(fake.servicer.waiting.wait(), 60)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130
    await asyncio.wait_for(fake.servicer.cancelled.wait(), 10)
    assert b"interrupted" in err and b"Traceback" not in err
    assert out == b""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_bar_redrawn() -> None:
    screen = _Terminal()
    progress = backtest_cli.Progress(screen, min_interval=0.0)
    for fraction, stage in ((0.0, "fetching candles"), (0.25, "grading"), (0.75, "simulating")):
        progress.update(
            backtest_pb2.BacktestProgress(fraction_done=fraction, stage=stage, bars_processed=900)
        )
    text = screen.getvalue()
    assert "\n" not in text  # one line, redrawn after carriage returns
    frames = [frame for frame in text.split("\r") if frame]
    assert frames[0].startswith("fetching candles:   0%|")
    assert frames[-1].startswith("simulating:  75%|")
    assert frames[-1].endswith("900 bars")
    progress.close()
    assert screen.getvalue().split("\r")[-2].strip() == ""  # the bar is wiped at the end


# ----- argument parsers -----


def test_argument_parsers_by_hand() -> None:
    assert backtest_cli.fraction_arg("0.1%") == pytest.approx(0.001)
    assert backtest_cli.fraction_arg("0.25") == 0.25
    assert backtest_cli.exit_level_arg("5%").fraction == pytest.approx(0.05)
    assert backtest_cli.exit_level_arg("0.05").fraction == 0.05
    assert backtest_cli.exit_level_arg("2ATR").atr_multiple == 2.0
    assert backtest_cli.exit_level_arg(" 1.5 atr").atr_multiple == 1.5
    for bad in ("5x", "atr", "", "5%%"):
        with pytest.raises(Exception, match="is not a distance"):
            backtest_cli.exit_level_arg(bad)
    assert backtest_cli.time_arg("2025-01-01").ToMilliseconds() == T0
    assert backtest_cli.time_arg("2025-01-01T01:30:00+01:30").ToMilliseconds() == T0
    assert backtest_cli.time_arg("2024-12-31T23:00:00.5Z").ToMilliseconds() == T0 - HOUR_MS + 500
    assert backtest_cli.trades_arg("ALL") is None
    assert backtest_cli.trades_arg("3") == 3
