"""Signals benchmarks: the issue's goals for the signals service.

1. Regrade of the whole universe (6,000 tokens, 1h): in-process, an
   IntervalBook warmed with ~300 hourly candles per token, then
   ``apply_closed`` of one new candle for all, ``regrade_live`` of all after
   ``set_forming``, and both; goal <= 250 ms.
2. Tick to signal event: pricing and signals as separate processes, this
   process the 6,000-token market in fast-forward (past hours, PublishTicks);
   latency from the start of the PublishTicks call whose tick closed the
   flipping candle to the DIRECTION_FLIP event on StreamSignalEvents; goal
   p99 <= 100 ms. The hour boundary: all 6,000 candles close at once.
2b. (--sim) The same latency for ~50 fast-forwarded tokens while pricing's
   simulator streams the other 5,950 live at 2,000 ticks/s (MM_SIM_EXCLUDE).
3. ScreenSignals over 6,000 graded tokens, a mix of screens, sequential
   calls through a real stub; goal p99 <= 20 ms.

GetSignal under ghz (goal 4) is in bench.loadtest (`make loadtest`); its rows
are copied into signals.md when bench/results/loadtest.json has them.

    .venv/bin/python -m bench.signals [--quick] [--wait-quiet S] [--warm-hours 240] [--sim]
    .venv/bin/python -m bench.signals --sim-only   # 2b alone, merged into the results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

import services  # noqa: F401  (puts the generated stubs on sys.path)
from bench.common import (
    RESULTS_DIR,
    ServerProcess,
    cpu_seconds,
    free_port,
    machine_info,
    machine_line,
    md_table,
    pricing_server,
    server_process,
    service_command,
    verdict,
    wait_quiet,
    write_results,
)
from marketmesh.v1 import (
    common_pb2,
    pricing_pb2,
    pricing_pb2_grpc,
    signals_pb2,
    signals_pb2_grpc,
)

N_TOKENS = 6_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
GOAL_REGRADE_MS = 250.0
GOAL_FLIP_P99_MS = 100.0
GOAL_SCREEN_P99_MS = 20.0
GOAL_GET_SIGNAL_RPS = 2_000.0
BENCH_TOKEN = "bench-token-0123456789abcdef"
AUTH = (("authorization", f"Bearer {BENCH_TOKEN}"),)
SECTORS = ("layer-1", "defi", "gaming", "meme", "ai", "infra", "payments", "storage")


def _pct(values: list[float] | np.ndarray, q: float) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return round(float(np.percentile(arr, q)), 3) if arr.size else float("nan")


def _stats(values_ms: list[float]) -> dict[str, Any]:
    return {
        "count": len(values_ms),
        "p50_ms": _pct(values_ms, 50),
        "p95_ms": _pct(values_ms, 95),
        "p99_ms": _pct(values_ms, 99),
        "max_ms": round(max(values_ms), 3) if values_ms else float("nan"),
    }


# ----- 1. in-process regrade --------------------------------------------------------


def _walks(rng: np.random.Generator, n: int, bars: int) -> np.ndarray:
    """Closes of n random walks (a market factor, a sector factor, own noise)."""
    sector = np.arange(n) % len(SECTORS)
    market = rng.normal(0.0, 0.004, bars)
    sector_moves = rng.normal(0.0, 0.004, (len(SECTORS), bars))
    own = rng.normal(0.0, 0.008, (n, bars)) + rng.normal(0.0, 0.001, (n, 1))
    returns = market[None, :] + sector_moves[sector] + own
    start = np.exp(rng.uniform(np.log(0.05), np.log(50_000.0), n))
    return start[:, None] * np.exp(np.cumsum(returns, axis=1))


def _ohlcv(
    rng: np.random.Generator, closes: np.ndarray, prev: np.ndarray
) -> tuple[np.ndarray, ...]:
    wick = 1.0 + np.abs(rng.normal(0.0, 0.003, closes.shape))
    high = np.maximum(prev, closes) * wick
    low = np.minimum(prev, closes) / wick
    volume = rng.uniform(100.0, 10_000.0, closes.shape)
    return prev, high, low, closes, volume


def measure_regrade(
    n: int = N_TOKENS, bars: int = 300, repetitions: int = 20, seed: int = 7
) -> dict[str, Any]:
    """Goal 1, in-process: apply_closed / regrade_live of every token."""
    from services.signals.book import IntervalBook, MarketContext  # noqa: PLC0415
    from services.signals.candles import CandleSeries  # noqa: PLC0415
    from services.signals.weights import GradeWeights  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    closes = _walks(rng, n, bars + repetitions + 1)
    prev = np.concatenate([closes[:, :1], closes[:, :-1]], axis=1)
    o, h, lo, c, v = _ohlcv(rng, closes, prev)
    sector = np.arange(n) % len(SECTORS)
    context = MarketContext(
        btc_sid=0,
        sector_names=list(SECTORS),
        sector_members=[np.flatnonzero(sector == k) for k in range(len(SECTORS))],
        circulating=rng.uniform(1e6, 1e10, n),
        regime=signals_pb2.REGIME_NEUTRAL,
    )
    book = IntervalBook(n, HOUR_MS, GradeWeights.from_override())
    t0_ms = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
    open_ms = t0_ms + np.arange(closes.shape[1], dtype=np.int64) * HOUR_MS
    sids = np.arange(n, dtype=np.int64)
    started = time.perf_counter()
    histories = [
        CandleSeries(
            open_ms[:bars], o[i, :bars], h[i, :bars], lo[i, :bars], c[i, :bars], v[i, :bars]
        )
        for i in range(n)
    ]
    book.warm(sids, histories, context)
    warm_s = time.perf_counter() - started

    closed_ms: list[float] = []
    live_ms: list[float] = []
    both_ms: list[float] = []
    forming_ms: list[float] = []
    flips = 0
    for r in range(repetitions):
        k = bars + r
        stamp = np.full(n, open_ms[k], dtype=np.int64)
        t0 = time.perf_counter()
        update = book.apply_closed(
            sids, stamp, o[:, k], h[:, k], lo[:, k], c[:, k], v[:, k], context
        )
        t1 = time.perf_counter()
        # The next candle forming, half-way: its close between the two.
        half = 0.5 * (c[:, k] + c[:, k + 1])
        book.set_forming(
            sids,
            stamp + HOUR_MS,
            c[:, k],
            np.maximum(c[:, k], half),
            np.minimum(c[:, k], half),
            half,
            v[:, k + 1] / 2,
        )
        t2 = time.perf_counter()
        book.regrade_live(context)
        t3 = time.perf_counter()
        flips += int(update.flipped.sum())
        closed_ms.append((t1 - t0) * 1e3)
        forming_ms.append((t2 - t1) * 1e3)
        live_ms.append((t3 - t2) * 1e3)
        both_ms.append((t1 - t0 + t3 - t2) * 1e3)
    assert np.isfinite(book.grade).sum() >= 0.99 * n, "tokens left ungraded after warm-up"

    def row(case: str, values: list[float]) -> dict[str, Any]:
        p50, p95 = _pct(values, 50), _pct(values, 95)
        return {
            "case": case,
            "median_ms": p50,
            "p95_ms": p95,
            "max_ms": round(max(values), 3),
            "goal_ms": GOAL_REGRADE_MS,
            "met": p95 <= GOAL_REGRADE_MS,
        }

    return {
        "tokens": n,
        "warm_bars": bars,
        "repetitions": repetitions,
        "warm_s": round(warm_s, 2),
        "flips_seen": flips,
        "set_forming_median_ms": _pct(forming_ms, 50),
        "rows": [
            row(
                "apply_closed, one closed 1h candle for every token (indicators, grade, direction)",
                closed_ms,
            ),
            row("regrade_live of every token after set_forming (peek + grade)", live_ms),
            row("both together", both_ms),
        ],
    }


# ----- processes ---------------------------------------------------------------------


@contextmanager
def signals_process(
    pricing_target: str,
    env: Mapping[str, str] | None = None,
    *,
    startup_timeout_s: float = 120.0,
    profile_to: Path | None = None,
) -> Iterator[ServerProcess]:
    """`python -m services.signals` following pricing_target, on a free port
    (under cProfile, stats written to profile_to when it stops, if given)."""
    with tempfile.TemporaryDirectory(prefix="mm-bench-signals-") as tmp:
        tmp_dir = Path(tmp)
        port = free_port()
        full_env = {
            **os.environ,
            "MM_PRICING_ADDR": pricing_target,
            "MM_SIGNALS_ADDR": f"127.0.0.1:{port}",
            "MM_SIGNALS_METRICS_PORT": "0",
            "MM_SIGNALS_INTERVALS": "1h",
            "MM_METRICS_FEED": "none",
            "MM_DATA_DIR": str(tmp_dir / "var"),
            "MM_AUTH_TOKENS": f"bench={BENCH_TOKEN}",
            "MM_LOG_FORMAT": "json",
            **(env or {}),
        }
        command = service_command("services.signals", profile_to)
        with server_process(command, full_env, port, tmp_dir, startup_timeout_s) as server:
            yield server


PRICING_ENV = {
    "MM_FEED": "none",
    "MM_BACKFILL_DAYS": "0",
    "MM_BACKFILL_FINE_DAYS": "1",
    "MM_UNIVERSE_SIZE": str(N_TOKENS),
}


def resync_count(log_path: Path) -> dict[str, int]:
    """How often signals re-read history (pricing sent a snapshot: it was too
    far behind) or lost its candle stream, from its JSON log."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return {}
    return {
        "resyncs": text.count('"resynced with pricing"'),
        "stream_lost": text.count('"candle stream lost; reconnecting"'),
    }


async def wait_idle(pids: list[int], timeout_s: float, max_cores: float = 0.15) -> float:
    """Waits until the server processes are done with earlier work (pricing
    persists the warm-up's candles long after PublishTicks returned); returns
    the cores they used in the last 2 s."""
    deadline = time.monotonic() + timeout_s
    while True:
        t0, cpu0 = time.monotonic(), sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(2.0)
        cores = (sum(cpu_seconds(p) for p in pids) - cpu0) / (time.monotonic() - t0)
        if cores <= max_cores or time.monotonic() > deadline:
            return round(cores, 2)


# ----- 2. the fast-forward market ----------------------------------------------------


@dataclass
class Market:
    """Prices of every token, one column per bar (warm-up bars, then two
    bars per measured step)."""

    symbols: list[str]
    prices: np.ndarray  # (tokens, bars)
    flippers: np.ndarray  # indices of the engineered tokens


def _engineered(rng: np.random.Generator, n_bars: int, start: float) -> np.ndarray:
    """Alternating strong up and down trends (16-24 bars each), staggered."""
    seg = int(rng.integers(16, 25))
    offset = int(rng.integers(0, 2 * seg))
    t = np.arange(n_bars) + offset
    sign = np.where((t // seg) % 2 == 0, 1.0, -1.0)
    returns = 0.012 * sign + rng.normal(0.0, 0.002, n_bars)
    return start * np.exp(np.cumsum(returns))


def build_market(symbols: list[str], n_bars: int, n_flippers: int, seed: int = 11) -> Market:
    rng = np.random.default_rng(seed)
    n = len(symbols)
    prices = _walks(rng, n, n_bars)
    if "BTC-USD" in symbols:
        i = symbols.index("BTC-USD")
        prices[i] = prices[i] / prices[i, 0] * 50_000.0
    others = [i for i, s in enumerate(symbols) if s != "BTC-USD"]
    flippers = rng.choice(others, size=n_flippers, replace=False)
    for i in flippers:
        prices[i] = _engineered(rng, n_bars, float(prices[i, 0]))
    return Market(symbols, prices, np.sort(flippers))


def _tick(symbol: str, price: float, ms: int) -> pricing_pb2.Tick:
    tick = pricing_pb2.Tick(symbol=symbol, price=price, volume=10.0)
    tick.time.FromMilliseconds(ms)
    return tick


async def _list_symbols(stub: pricing_pb2_grpc.PricingServiceStub) -> list[str]:
    symbols: list[str] = []
    token = ""
    while True:
        page = await stub.ListAssets(
            pricing_pb2.ListAssetsRequest(page_size=1000, page_token=token)
        )
        symbols += [a.symbol for a in page.assets]
        token = page.next_page_token
        if not token:
            return symbols


async def publish_history(
    pricing: pricing_pb2_grpc.PricingServiceStub, market: Market, start_ms: int, hours: int
) -> None:
    """`hours` contiguous hourly ticks of every token from start_ms (a day
    boundary), token by token so a close sweep between messages never cuts a
    token's day short."""
    per_message = max(1, 24_000 // hours)

    async def requests() -> AsyncIterator[pricing_pb2.PublishTicksRequest]:
        times = start_ms + np.arange(hours, dtype=np.int64) * HOUR_MS + HOUR_MS // 2
        for lo in range(0, len(market.symbols), per_message):
            ticks = [
                _tick(market.symbols[i], float(p), int(ms))
                for i in range(lo, min(lo + per_message, len(market.symbols)))
                for p, ms in zip(market.prices[i, :hours], times, strict=True)
            ]
            yield pricing_pb2.PublishTicksRequest(ticks=ticks)

    response = await pricing.PublishTicks(requests())
    if response.rejected:
        raise RuntimeError(f"warm-up ticks rejected: {list(response.rejections[:3])}")


async def wait_graded(
    signals: signals_pb2_grpc.SignalsServiceStub, symbols: list[str], target: int, timeout_s: float
) -> None:
    """Until signals' grades of a sample of tokens are as of `target` (the
    last warm-up hour is closed by pricing's sweep)."""
    sample = symbols[:: max(1, len(symbols) // 40)] + symbols[-3:]
    deadline = time.monotonic() + timeout_s
    while True:
        done = 0
        for symbol in sample:
            try:
                reply = await signals.GetSignal(signals_pb2.GetSignalRequest(symbol=symbol))
            except grpc.aio.AioRpcError:
                continue
            if reply.signal.as_of.ToMilliseconds() >= target:
                done += 1
        if done == len(sample):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"signals did not grade the warm-up ({done}/{len(sample)})")
        await asyncio.sleep(0.5)


async def _read_events(
    call: Any, into: list[tuple[float, signals_pb2.SignalEvent]], live: asyncio.Event
) -> None:
    async for message in call:
        now = time.monotonic()
        live.set()
        into.extend((now, e) for e in message.events)


async def _watch_candles(call: Any, seen: dict[int, float], first_day_ms: int) -> None:
    """First arrival of each step's closed 00:00 candle (by step)."""
    async for message in call:
        now = time.monotonic()
        for u in message.updates:
            c = u.candle
            if not c.closed:
                continue
            k, within = divmod(c.open_time.ToMilliseconds() - first_day_ms, DAY_MS)
            if within == 0 and k >= 0:
                seen.setdefault(int(k), now)


async def flip_latency(
    pricing: pricing_pb2_grpc.PricingServiceStub,
    signals: signals_pb2_grpc.SignalsServiceStub,
    market: Market,
    first_day_ms: int,
    warm_hours: int,
    steps: int,
    step_s: float,
    server_pids: list[int],
) -> dict[str, Any]:
    """Measured steps, one per day after the warm-up (see `markdown` for why):
    one PublishTicks of two ticks per token, 00:30 and 01:30, so the call's
    own second tick closes every token's 00:00 candle."""
    events: list[tuple[float, signals_pb2.SignalEvent]] = []
    live = asyncio.Event()
    call = signals.StreamSignalEvents(
        signals_pb2.StreamSignalEventsRequest(
            event_types=[signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP]
        ),
        metadata=AUTH,
    )
    reader = asyncio.create_task(_read_events(call, events, live))
    await asyncio.wait_for(live.wait(), 30)  # first heartbeat: subscribed
    # The closed 00:00 candles of the engineered tokens as a client of
    # pricing sees them: splits each latency into pricing's part (tick to
    # closed candle on StreamCandles) and signals' part (candle to event).
    candles: dict[int, float] = {}
    candle_call = pricing.StreamCandles(
        pricing_pb2.StreamCandlesRequest(
            symbols=[market.symbols[i] for i in market.flippers],
            intervals=[common_pb2.INTERVAL_1H],
        )
    )
    watcher = asyncio.create_task(_watch_candles(candle_call, candles, first_day_ms))
    # Built before the clock starts: the client's own protobuf work is not
    # part of the service's latency.
    requests = []
    for k in range(steps):
        day = first_day_ms + k * DAY_MS
        col = warm_hours + 2 * k
        ticks = [
            _tick(symbol, float(market.prices[i, col + j]), day + j * HOUR_MS + HOUR_MS // 2)
            for i, symbol in enumerate(market.symbols)
            for j in (0, 1)
        ]
        requests.append(pricing_pb2.PublishTicksRequest(ticks=ticks))
    started: dict[int, float] = {}
    call_ms: list[float] = []
    cpu0 = [cpu_seconds(pid) for pid in server_pids]
    for k, request in enumerate(requests):
        t0 = time.monotonic()
        started[k] = t0
        response = await pricing.PublishTicks(iter([request]))
        call_ms.append((time.monotonic() - t0) * 1e3)
        if response.rejected:
            raise RuntimeError(f"step {k}: ticks rejected: {list(response.rejections[:3])}")
        await asyncio.sleep(max(0.0, step_s - (time.monotonic() - t0)))
    await asyncio.sleep(2.0)
    cpu = [
        round(cpu_seconds(pid) - before, 2) for pid, before in zip(server_pids, cpu0, strict=True)
    ]
    call.cancel()
    candle_call.cancel()
    await asyncio.gather(reader, watcher, return_exceptions=True)

    by_tick: list[float] = []
    by_sweep: list[float] = []
    pricing_part: list[float] = []
    signals_part: list[float] = []
    per_step: dict[int, list[float]] = {}
    other = 0
    flipper_symbols = {market.symbols[i] for i in market.flippers}
    from_flippers = 0
    for received, event in events:
        if event.interval != common_pb2.INTERVAL_1H:
            continue
        offset = event.time.ToMilliseconds() - first_day_ms
        k, within = divmod(offset, DAY_MS)
        if not 0 <= k < steps:
            other += 1
            continue
        latency = (received - started[int(k)]) * 1e3
        from_flippers += event.symbol in flipper_symbols
        if within == HOUR_MS:
            by_tick.append(latency)  # closed by this step's 01:30 tick
            per_step.setdefault(int(k), []).append(latency)
            if int(k) in candles:
                pricing_part.append((candles[int(k)] - started[int(k)]) * 1e3)
                signals_part.append((received - candles[int(k)]) * 1e3)
        elif within == 2 * HOUR_MS:
            by_sweep.append(latency)  # the 01:00 candle, closed by pricing's sweep
        else:
            other += 1
    tick = _stats(by_tick)
    return {
        "steps": steps,
        "step_s": step_s,
        "ticks_per_call": 2 * len(market.symbols),
        "publish_call_ms": {"p50": _pct(call_ms, 50), "p99": _pct(call_ms, 99)},
        "flip_events": len(events),
        "from_flippers": from_flippers,
        "tick_closed": tick,
        "sweep_closed": _stats(by_sweep),
        "unmapped_events": other,
        # Of the tick-closed flips: call start -> closed candle seen on
        # pricing's StreamCandles, and that -> the event.
        "pricing_part": _stats(pricing_part),
        "signals_part": _stats(signals_part),
        "candle_seen_ms": _stats([(candles[k] - started[k]) * 1e3 for k in sorted(candles)]),
        "server_cpu_s": {"pricing": cpu[0], "signals": cpu[1]},
        # A step's flips arrive together (one apply round), so the percentiles
        # above move in whole steps: per step, its first and its last flip.
        "step_first_flip": _stats([min(v) for v in per_step.values()]),
        "step_last_flip": _stats([max(v) for v in per_step.values()]),
        "goal_p99_ms": GOAL_FLIP_P99_MS,
        "met": bool(by_tick) and tick["p99_ms"] <= GOAL_FLIP_P99_MS,
    }


# ----- 3. ScreenSignals ----------------------------------------------------------------


def screens() -> list[tuple[str, signals_pb2.ScreenSignalsRequest]]:
    d = signals_pb2
    three_days = {"flipped_within": {"seconds": 3 * 86_400}}
    return [
        (
            "grade > 80, bullish, flipped within 3 days",
            d.ScreenSignalsRequest(min_grade=80.0, direction=d.DIRECTION_BULLISH, **three_days),
        ),
        ("sectors defi + ai, limit 50", d.ScreenSignalsRequest(sectors=["defi", "ai"], limit=50)),
        (
            "tiers mid + large, by market cap, limit 500",
            d.ScreenSignalsRequest(
                tiers=[common_pb2.TIER_MID, common_pb2.TIER_LARGE],
                order_by=d.SCREEN_ORDER_MARKET_CAP_DESC,
                limit=500,
            ),
        ),
        (
            "all, by market cap, limit 500",
            d.ScreenSignalsRequest(order_by=d.SCREEN_ORDER_MARKET_CAP_DESC, limit=500),
        ),
        (
            "grade 40-60, bearish, limit 50",
            d.ScreenSignalsRequest(min_grade=40.0, max_grade=60.0, direction=d.DIRECTION_BEARISH),
        ),
        (
            "flipped within 3 days, newest flip first, limit 500",
            d.ScreenSignalsRequest(order_by=d.SCREEN_ORDER_FLIP_TIME_DESC, limit=500, **three_days),
        ),
    ]


async def screen_latency(
    signals: signals_pb2_grpc.SignalsServiceStub, calls: int
) -> dict[str, Any]:
    mix = screens()
    for _, request in mix:  # warm-up, and the sizes of the answers
        await signals.ScreenSignals(request)
    per_case: dict[str, list[float]] = {name: [] for name, _ in mix}
    sizes: dict[str, int] = {}
    every: list[float] = []
    for i in range(calls):
        name, request = mix[i % len(mix)]
        t0 = time.perf_counter()
        reply = await signals.ScreenSignals(request)
        ms = (time.perf_counter() - t0) * 1e3
        per_case[name].append(ms)
        every.append(ms)
        sizes[name] = reply.total_size
    overall = _stats(every)
    return {
        "calls": calls,
        "all": overall,
        "cases": [
            {"screen": name, "total_size": sizes[name], **_stats(v)} for name, v in per_case.items()
        ],
        "goal_p99_ms": GOAL_SCREEN_P99_MS,
        "met": overall["p99_ms"] <= GOAL_SCREEN_P99_MS,
    }


# ----- the service part --------------------------------------------------------------


async def _publish_warm(
    pricing_target: str,
    warm_hours: int,
    steps: int,
    *,
    symbols: list[str] | None = None,
    n_flippers: int = 50,
) -> tuple[Market, int, float]:
    """The market (of `symbols`, default every asset pricing lists) and its
    warm-up history in pricing; returns the market, the first step's day and
    the seconds the publishing took."""
    async with grpc.aio.insecure_channel(pricing_target) as channel:
        pricing = pricing_pb2_grpc.PricingServiceStub(channel)
        if symbols is None:
            symbols = await _list_symbols(pricing)
        market = build_market(symbols, warm_hours + 2 * steps, n_flippers=n_flippers)
        today = int(time.time() * 1000) // DAY_MS * DAY_MS
        first_day = today - (warm_hours // 24 + steps + 1) * DAY_MS
        t0 = time.monotonic()
        await publish_history(pricing, market, first_day, warm_hours)
        return market, first_day, round(time.monotonic() - t0, 2)


async def _service_run(
    pricing_target: str,
    signals_target: str,
    market: Market,
    first_day: int,
    *,
    warm_hours: int,
    steps: int,
    step_s: float,
    screen_calls: int,
    quiet_s: float,
    server_pids: list[int],
    signals_log: Path,
) -> dict[str, Any]:
    async with (
        grpc.aio.insecure_channel(pricing_target) as pch,
        grpc.aio.insecure_channel(signals_target) as sch,
    ):
        pricing = pricing_pb2_grpc.PricingServiceStub(pch)
        signals = signals_pb2_grpc.SignalsServiceStub(sch)
        t0 = time.monotonic()
        await wait_graded(signals, market.symbols, first_day + warm_hours * HOUR_MS, 300.0)
        warm: dict[str, Any] = {"signals_graded_s": round(time.monotonic() - t0, 2)}
        t0 = time.monotonic()
        warm["servers_cores_left"] = await wait_idle(server_pids, 300.0)
        warm["servers_busy_after_s"] = round(time.monotonic() - t0, 1)
        busy = wait_quiet(quiet_s, max_busy_cores=0.3) if quiet_s else None
        log_before = resync_count(signals_log)
        flips = await flip_latency(
            pricing,
            signals,
            market,
            first_day + warm_hours * HOUR_MS,
            warm_hours,
            steps,
            step_s,
            server_pids,
        )
        after = resync_count(signals_log)
        flips["signals_log_during_steps"] = {k: v - log_before.get(k, 0) for k, v in after.items()}
        warm["signals_log"] = log_before
        await asyncio.sleep(1.0)
        busy_screen = wait_quiet(quiet_s, max_busy_cores=0.3) if quiet_s else None
        screen = await screen_latency(signals, screen_calls)
        return {
            "tokens": len(market.symbols),
            "warm_hours": warm_hours,
            "warm": warm,
            "flip_latency": flips | {"busy_cores_before": busy},
            "screen": screen | {"busy_cores_before": busy_screen},
        }


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark to run."""

    warm_hours: int = 120  # whole days: the measured steps start on a day boundary
    steps: int = 20
    step_s: float = 3.5
    screen_calls: int = 500
    repetitions: int = 20
    # With the simulator running (2b): only the ~50 flippers are fast-forwarded,
    # ~2.5 flips on tick-closed candles per step, so ~40 steps for ~100 flips.
    sim_warm_hours: int = 120
    sim_steps: int = 45
    sim_step_s: float = 1.5


QUICK = Plan(warm_hours=72, steps=8, screen_calls=120, repetitions=8, sim_steps=12)
# `make bench` (bench.run): about 3 min on 2 cores; the default plan takes ~4.5.
# Case 2b is not in it: ~110 s on its own (signals' first resync alone is ~30 s).
BENCH_PLAN = Plan(warm_hours=96, steps=12)


def measure(
    plan: Plan = Plan(),
    *,
    quick: bool = False,
    quiet_s: float = 0.0,
    profile_to: Path | None = None,
    sim: bool = False,
) -> dict[str, Any]:
    """Every signals benchmark (`quick`: the QUICK plan); quiet_s: wait up to
    this long for an idle machine before each measurement; profile_to: run
    the signals server of the hour-boundary case under cProfile and write its
    stats there; sim: also the case with pricing's simulator running."""
    plan = QUICK if quick else plan
    machine = machine_info()
    busy = wait_quiet(quiet_s) if quiet_s else None
    regrade = measure_regrade(repetitions=plan.repetitions)
    regrade["busy_cores_before"] = busy
    # Signals starts once the history is in pricing and backfills it with
    # GetCandles: following a 1.4M-tick burst live made it resync repeatedly
    # and once left most tokens ungraded (see the report).
    with pricing_server(PRICING_ENV) as pricing:
        market, first_day, publish_s = asyncio.run(
            _publish_warm(pricing.target, plan.warm_hours, plan.steps)
        )
        with signals_process(pricing.target, profile_to=profile_to) as sig:
            service = asyncio.run(
                _service_run(
                    pricing.target,
                    sig.target,
                    market,
                    first_day,
                    warm_hours=plan.warm_hours,
                    steps=plan.steps,
                    step_s=plan.step_s,
                    screen_calls=plan.screen_calls,
                    quiet_s=quiet_s,
                    server_pids=[pricing.pid, sig.pid],
                    signals_log=sig.log_path,
                )
            )
            service["warm"]["publish_s"] = publish_s
            service["pricing_startup_s"] = round(pricing.startup_s, 2)
            service["signals_startup_s"] = round(sig.startup_s, 2)
    result = {
        "name": "signals",
        "machine": machine,
        "quick": quick,
        "plan": plan.__dict__,
        "regrade": regrade,
        "service": service,
        "loadtest": _loadtest_rows(),
    }
    if sim:
        result["sim"] = measure_sim(plan)
    return result


# ----- 2b. flips with pricing's simulator streaming the rest of the market ------------


def sim_pricing_env(flippers: list[str]) -> dict[str, str]:
    """Pricing with its simulator live (default rate) on every token but the
    flippers, which this process owns through PublishTicks."""
    return {
        "MM_FEED": "simulator",
        "MM_BACKFILL_DAYS": "0",
        "MM_BACKFILL_FINE_DAYS": "1",
        "MM_UNIVERSE_SIZE": str(N_TOKENS),
        "MM_SIM_EXCLUDE": ",".join(flippers),
    }


def pick_flippers(n: int = 50, seed: int = 11) -> list[str]:
    """n synthetic symbols of the 6,000-token universe (named before pricing
    starts: MM_SIM_EXCLUDE is read once at start-up)."""
    from services.pricing.assets import build_universe  # noqa: PLC0415

    # Symbol names do not depend on the seed; only the synthetic attributes do.
    synthetic = [a.symbol for a in build_universe(N_TOKENS, 42) if a.symbol.startswith("SYN")]
    rng = np.random.default_rng(seed)
    return sorted(str(s) for s in rng.choice(synthetic, size=n, replace=False))


async def wait_signals_settled(
    pid: int, log_path: Path, timeout_s: float, max_cores: float = 0.15
) -> dict[str, Any]:
    """Until signals has finished a resync and stays light (following the
    live stream costs it ~0.05 cores; a resync ~0.3+) with no further resync
    finishing over the last 6 s: measuring during one would time the resync."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    last = resync_count(log_path).get("resyncs", 0)
    cores = float("nan")
    while time.monotonic() < deadline:
        cores = await wait_idle([pid], 0.0)
        now = resync_count(log_path).get("resyncs", 0)
        quiet = quiet + 1 if now >= 1 and now == last and cores <= max_cores else 0
        last = now
        if quiet >= 3:
            break
    return {"signals_settled": quiet >= 3, "resyncs_before_steps": last, "signals_cores": cores}


async def _sim_run(
    pricing_target: str,
    signals_target: str,
    market: Market,
    first_day: int,
    *,
    warm_hours: int,
    steps: int,
    step_s: float,
    server_pids: list[int],
    signals_log: Path,
) -> dict[str, Any]:
    async with (
        grpc.aio.insecure_channel(pricing_target) as pch,
        grpc.aio.insecure_channel(signals_target) as sch,
    ):
        pricing = pricing_pb2_grpc.PricingServiceStub(pch)
        signals = signals_pb2_grpc.SignalsServiceStub(sch)
        t0 = time.monotonic()
        await wait_graded(signals, market.symbols, first_day + warm_hours * HOUR_MS, 300.0)
        warm: dict[str, Any] = {"signals_graded_s": round(time.monotonic() - t0, 2)}
        # Graded is not in sync: the books are warmed half-way through the
        # resync, which then goes on fetching (the simulated tokens have no
        # closed candles, so all 12,000 series every time).
        t0 = time.monotonic()
        warm |= await wait_signals_settled(server_pids[1], signals_log, 300.0)
        warm["signals_settled_s"] = round(time.monotonic() - t0, 1)
        # The simulator keeps pricing busy, so waiting for it to idle would
        # never end: one 2 s sample of what both use while it streams.
        warm["servers_cores_before"] = await wait_idle(server_pids, 0.0)
        warm["loadavg_1m"] = round(os.getloadavg()[0], 2)
        log_before = resync_count(signals_log)
        flips = await flip_latency(
            pricing,
            signals,
            market,
            first_day + warm_hours * HOUR_MS,
            warm_hours,
            steps,
            step_s,
            server_pids,
        )
        after = resync_count(signals_log)
        flips["signals_log_during_steps"] = {k: v - log_before.get(k, 0) for k, v in after.items()}
        warm["signals_log"] = log_before
        return {
            "tokens": N_TOKENS,
            "flippers": len(market.symbols),
            "warm_hours": warm_hours,
            "warm": warm,
            "flip_latency": flips,
        }


def measure_sim(
    plan: Plan,
    *,
    profile_to: Path | None = None,
    signals_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Tick -> flip event for ~50 PublishTicks-fed tokens while pricing's
    simulator streams the other 5,950 live (its default 2,000 ticks/s);
    signals_env: overrides for the signals process (A/B of its settings)."""
    flippers = pick_flippers()
    with pricing_server(sim_pricing_env(flippers)) as pricing:
        market, first_day, publish_s = asyncio.run(
            _publish_warm(
                pricing.target,
                plan.sim_warm_hours,
                plan.sim_steps,
                symbols=flippers,
                n_flippers=len(flippers),
            )
        )
        with signals_process(pricing.target, signals_env, profile_to=profile_to) as sig:
            result = asyncio.run(
                _sim_run(
                    pricing.target,
                    sig.target,
                    market,
                    first_day,
                    warm_hours=plan.sim_warm_hours,
                    steps=plan.sim_steps,
                    step_s=plan.sim_step_s,
                    server_pids=[pricing.pid, sig.pid],
                    signals_log=sig.log_path,
                )
            )
            result["warm"]["publish_s"] = publish_s
            result["pricing_startup_s"] = round(pricing.startup_s, 2)
            result["signals_startup_s"] = round(sig.startup_s, 2)
    return result


def _loadtest_rows() -> list[dict[str, Any]]:
    """GetSignal rows of the last `make loadtest` (bench/results/loadtest.json)."""
    try:
        data = json.loads((RESULTS_DIR / "loadtest.json").read_text())
    except (OSError, ValueError):
        return []
    signals = data.get("signals", {})
    machine = signals.get("machine") or data.get("machine", {})
    return [r | {"measured_at": machine.get("date")} for r in signals.get("results", [])]


# ----- results ---------------------------------------------------------------------------


def summary_rows(result: dict[str, Any]) -> list[list[object]]:
    """Rows for bench.run's summary: benchmark, case, result, goal, verdict."""
    rows: list[list[object]] = []
    for r in result["regrade"]["rows"]:
        rows.append(
            [
                "signals regrade (in-process)",
                f"{result['regrade']['tokens']:,} tokens: {r['case']}",
                f"median {r['median_ms']} ms, p95 {r['p95_ms']} ms",
                f"≤ {GOAL_REGRADE_MS:g} ms",
                verdict(r["met"]),
            ]
        )
    flips = result["service"]["flip_latency"]
    t = flips["tick_closed"]
    rows.append(
        [
            "signals tick → flip event, hour boundary",
            f"{result['service']['tokens']:,}-token fast-forward market, all candles close "
            f"at once, {t['count']} flips",
            f"p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms, max {t['max_ms']} ms",
            f"p99 ≤ {GOAL_FLIP_P99_MS:g} ms",
            verdict(flips["met"]),
        ]
    )
    if "sim" in result:
        sim = result["sim"]
        t = sim["flip_latency"]["tick_closed"]
        rows.append(
            [
                "signals tick → flip event, simulator running",
                f"{sim['flippers']} PublishTicks-fed tokens, the other "
                f"{sim['tokens'] - sim['flippers']:,} simulated live, {t['count']} flips",
                f"p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms, max {t['max_ms']} ms",
                f"p99 ≤ {GOAL_FLIP_P99_MS:g} ms",
                verdict(sim["flip_latency"]["met"]),
            ]
        )
    s = result["service"]["screen"]
    rows.append(
        [
            "ScreenSignals",
            f"mix of {len(s['cases'])} screens, {s['calls']} sequential calls",
            f"p50 {s['all']['p50_ms']} ms, p99 {s['all']['p99_ms']} ms",
            f"p99 ≤ {GOAL_SCREEN_P99_MS:g} ms",
            verdict(s["met"]),
        ]
    )
    for r in result.get("loadtest", []):
        rows.append(
            [
                "GetSignal (ghz, `make loadtest`)",
                f"{r['run']}; {r.get('server', '')}",
                f"{r['rps']:,.0f} req/s, p99 {r['p99_ms']} ms",
                f"≥ {GOAL_GET_SIGNAL_RPS:,.0f} req/s",
                verdict(r["rps"] >= GOAL_GET_SIGNAL_RPS and not r["errors"]),
            ]
        )
    return rows


METHOD = """\
**How the tick → event latency is measured.** Pricing (`python -m services.pricing`,
MM_FEED=none, MM_BACKFILL_DAYS=0, MM_UNIVERSE_SIZE=6000) and signals (`python -m
services.signals`, MM_SIGNALS_INTERVALS=1h, MM_METRICS_FEED=none) run as separate
processes; this process is the 6,000-token market, in fast-forward through past hours.
Warm-up: {warm_hours} contiguous hourly ticks per token (random walks with market and
sector factors; 50 "flipper" tokens on alternating ±1.2 %/bar trends of 16–24 bars,
staggered), published before signals starts, so signals backfills it with GetCandles as
on a first start. Measured steps: one PublishTicks call each, {step_s:g} s apart, subscribed
to StreamSignalEvents (DIRECTION_FLIP) beforehand. Latency = time the event is received
minus the start of the PublishTicks call whose tick closed the flipping candle (mapped
from event.time, the candle's close). A step's flips come out of one apply round and
arrive together, so the percentiles over flips move in whole steps; the per-step rows
count each step once.

Deviation from the brief's "one tick per token per step, the next hour": pricing's close
sweep (every 1 s) closes any candle whose end is past `now - 5 s`, which for a
past-hours market is every forming candle, and it also closes the *day* candle, moving
the token's watermark to the day's end. So between two separate calls the sweep closes
the previous step's candle (no tick would close it) and rejects later ticks of the same
day. Each measured step therefore uses a new day and carries **two ticks per token**
(00:30 and 01:30, 12,000 ticks per call): the call's own 01:30 tick closes the 00:00
candle of all 6,000 tokens — those flips are the goal's figure ("closed by the call's
tick"). The 01:00 candle is then closed by pricing's sweep up to ~1 s later; flips on
it are reported separately ("closed by the sweep", latency still from the call start,
so it includes the sweep's wait) and are not the goal's figure. Bars are consecutive
for the indicators (they count bars, not hours).

**Why not pricing's own simulator (MM_FEED=simulator).** Its ticks are at "now": an
hourly candle closes once an hour, so a run of minutes would see no 1h flip at all,
and PublishTicks of past times cannot close candles of a market that the simulator
keeps at the present. The fast-forward market exercises the same path (PublishTicks →
candle engine → StreamCandles → signals apply_closed for 6,000 tokens → event hub →
StreamSignalEvents) with a full universe close on every step, which is the heavy case:
a real hour boundary closes all 6,000 candles at once exactly like one step here.
"""


# Profiles behind the misses (2026-11-29, this machine; reproduce with
# `python -m bench.loadtest --profile-signals PATH` and the stack under
# bench.signals.signals_process(profile_to=...)). Static text: re-profile
# after a service change.
FINDINGS = """\
## Where the time goes (cProfile of the signals event-loop thread, 2026-11-29)

What the first profiles found, and what was done about it (the figures above are after):

* **GetSignal**: a cache miss regraded the one symbol against the sector medians of all
  6,000 tokens (2.6 ms). Now the peer returns of the last regrade are reused, and the
  answer is cached serialized per live-regrade period and sent preserialized; a hit is
  the gRPC and interceptor cost only. A miss (round-robin over 6,000 symbols) still
  builds the factors and reasons of one symbol (~5 ms on this machine).
* **ScreenSignals**: rows were built one by one, each reading whole-universe columns.
  Now the page's columns are read once and the rows built from lists; what remains for
  a 500-row page is protobuf construction (~15 ms here).
* **Tick → event at the hour boundary**: signals read every CandleUpdate through Python
  protobuf objects (~5 µs each, 0.15-0.26 s per 12,000-update batch). Now the bytes are
  decoded by `core_rs.decode_stream_candles` in one pass (~3 ms) and events are built
  only for the rows that flipped or crossed a level. What remains when all 6,000 candles
  close at once: pricing's share (ingest and six intervals of candles for 12,000 ticks,
  ~200 ms), apply_closed and breadth (~25 ms), ~1,500 GRADE_CROSSED events built and
  written before streaming (~30 ms), and the live regrade of 6,000 tokens when it falls
  on the same moment.
* **State snapshot**: writing the books of 6,000 tokens (~365 ms) ran on the event loop
  every 30 s and set the p99 of the simulator case. Now it runs on a thread, right after
  a batch of closed candles once its events are out.
* **Following a history burst live**: with an empty market (MM_BACKFILL_DAYS=0) every
  resync fetched 12,000 empty histories (~30 s), long enough to fall out of pricing's
  candle ring and start over; a failed resync could also leave symbols ungraded. Now
  empty histories are not refetched while their current candle has not moved, and a
  failed resync starts the next connection from a snapshot.
"""


def flip_table(flips: Mapping[str, Any]) -> str:
    rows = []
    for label, key in (
        ("closed by the call's tick (goal)", "tick_closed"),
        ("closed by pricing's sweep (≤ 1 s later)", "sweep_closed"),
        ("… per step (count = steps): its first flip", "step_first_flip"),
        ("… per step: its last flip", "step_last_flip"),
        ("… of the goal's: call start → closed candle on pricing's StreamCandles", "pricing_part"),
        ("… of the goal's: closed candle on StreamCandles → event (signals)", "signals_part"),
    ):
        s = flips[key]
        rows.append([label, s["count"], s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"]])
    return md_table(("flips on candles", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"), rows)


SIM_METHOD = """\
**How.** Pricing with its simulator on (MM_FEED=simulator at the default 2,000 ticks/s,
MM_UNIVERSE_SIZE=6000, MM_BACKFILL_DAYS=0) and MM_SIM_EXCLUDE set to {flippers} synthetic
symbols; signals as in section 2. This process publishes, for those tokens only, {warm_hours}
hourly ticks each of the engineered alternating trends (section 2's flipper paths) in the
past, then starts signals (which backfills them), waits until signals has finished its resync
and follows the live stream quietly, and runs {steps} measured steps {step_s:g} s apart: one
PublishTicks call of {ticks:,} ticks (two per flipper, 00:30 and 01:30 of a new day, for the
sweep reason given in section 2), while the simulator streams the other 5,950 tokens at the
present. Latency as in section 2: the flips on the 00:00 candle, closed by the call's own
01:30 tick, are the goal's figure.

**Signals' first resync with the simulator running.** With MM_BACKFILL_DAYS=0 the simulated
tokens have no closed candles, so every resync of signals fetches all 12,000 series (1h and
1d of 6,000 tokens, ~30 s here) without reading StreamCandles meanwhile. In one trial run
the bench started its steps while that first resync was still going (the flippers were
already graded: the books are warmed half-way through it); pricing's candle ring had moved
on by then, so signals got another snapshot and resynced again (11,992 series, 32.9 s), and
no step was applied live. The benchmark therefore waits until signals is settled (a resync
logged, ~0.05 cores, no new one for 6 s). Here: {resyncs_before} resync(s) before the steps,
{resyncs_during} during them.
"""


def sim_section(sim: Mapping[str, Any] | None) -> list[str]:
    """Section 2b of the markdown (empty without the case)."""
    if sim is None:
        return []
    flips = sim["flip_latency"]
    warm = sim["warm"]
    machine = sim.get("machine")
    return [
        "## 2b. Tick → DIRECTION_FLIP event with the simulator running",
        (f"Measured separately: {machine_line(machine)} " if machine else "")
        + f"{sim['flippers']} PublishTicks-fed tokens of {sim['tokens']:,} (the rest simulated "
        f"live), warm-up {sim['warm_hours']} h (published in {warm['publish_s']} s; signals "
        f"graded it {warm['signals_graded_s']} s after starting and was settled "
        f"{warm['signals_settled_s']} s later), {flips['steps']} steps of "
        f"{flips['ticks_per_call']:,} ticks, PublishTicks call p50 "
        f"{flips['publish_call_ms']['p50']} ms / p99 {flips['publish_call_ms']['p99']} ms; "
        f"{flips['flip_events']} flip events, {flips['from_flippers']} of them 1h flips of the "
        f"fast-forwarded tokens. Server CPU over the steps ({flips['steps']} × "
        f"{flips['step_s']:g} s + 2 s): pricing {flips['server_cpu_s']['pricing']} s, signals "
        f"{flips['server_cpu_s']['signals']} s; both servers used {warm['servers_cores_before']} "
        f"cores just before (load average {warm['loadavg_1m']}).",
        flip_table(flips),
        SIM_METHOD.format(
            flippers=sim["flippers"],
            warm_hours=sim["warm_hours"],
            steps=flips["steps"],
            step_s=flips["step_s"],
            ticks=flips["ticks_per_call"],
            resyncs_before=warm.get("resyncs_before_steps"),
            resyncs_during=flips["signals_log_during_steps"].get("resyncs"),
        ),
    ]


# Behind 2b's misses (2026-11-29, this machine; static text like FINDINGS).
SIM_FINDINGS = """\
## Where 2b's tail comes from (2026-11-29)

* Pricing's part is small and steady with the simulator running: call start → closed
  candle on StreamCandles p99 ~35 ms for a 100-tick call. The median tick → event is
  ~35–40 ms. The misses are single steps at 0.3–1.1 s, all in signals' part.
* **Signals' periodic state snapshot** (`SignalsApp._snapshot_loop`, every
  MM_SIGNALS_SNAPSHOT_INTERVAL_S = 30 s) runs `save_state` on the event loop: cProfile of
  a 2b run (`measure_sim(..., profile_to=...)`) has 4 saves costing 1.46 s of loop-thread
  CPU, ~365 ms each: `core_rs BundleSet.to_bytes` ~104 ms per book (1h and 1d), `np.savez`
  ~38 ms per book, the universe ~32 ms. A step whose closed candle arrives during a save
  waits for it; ~70 s of steps meet 2–3 saves, so 2–3 of 43 steps are late and p99 of the
  flips is one of them. A/B with nothing else changed: MM_SIGNALS_SNAPSHOT_INTERVAL_S=3600
  (no save during the steps) gave tick → event p50 36.3 ms, p95 48.4 ms, **p99 58.7 ms,
  max 59.3 ms** (107 flips, goal met); the default gave p99 614 and 1,088 ms in two
  unprofiled runs (344 ms in a profiled one).
  Done since: the save runs on a thread, right after a batch of closed candles once its
  events are out, never on a timer in the middle of one (the figures above are after it).
* `IntervalBook.regrade_live` from the live loop: ~25 ms of loop time per 1 s period
  (89 calls, 2.26 s) for only the 50 graded tokens; a smaller share of the p95.
* **First resync with the simulator live** (see the method note): signals fetches all
  12,000 series (~30 s) for tokens that pricing has no closed candles for, every resync,
  and does not read StreamCandles meanwhile; when that outlasts pricing's candle ring
  (MAX_RING_ROWS, ~17–30 s at 2,000 ticks/s) it gets another snapshot and starts over
  (seen once: a second resync of 11,992 series, 32.9 s). Done since: empty histories
  are not refetched while their current candle has not moved.
"""


def markdown(result: dict[str, Any]) -> str:
    regrade = result["regrade"]
    service = result["service"]
    flips = service["flip_latency"]
    screen = service["screen"]
    headers = ("benchmark", "case", "result", "goal", "")
    regrade_table = md_table(
        ("case", "median ms", "p95 ms", "max ms", "goal", ""),
        [
            [
                r["case"],
                r["median_ms"],
                r["p95_ms"],
                r["max_ms"],
                f"≤ {GOAL_REGRADE_MS:g} ms",
                verdict(r["met"]),
            ]
            for r in regrade["rows"]
        ],
    )
    screen_table = md_table(
        ("screen", "matches", "calls", "p50 ms", "p99 ms", "max ms"),
        [
            [c["screen"], c["total_size"], c["count"], c["p50_ms"], c["p99_ms"], c["max_ms"]]
            for c in screen["cases"]
        ]
        + [
            [
                "all",
                "",
                screen["all"]["count"],
                screen["all"]["p50_ms"],
                screen["all"]["p99_ms"],
                screen["all"]["max_ms"],
            ]
        ],
    )
    parts = [
        "# Signals benchmarks (`python -m bench.signals`)"
        + (" — quick run" if result["quick"] else ""),
        machine_line(result["machine"]),
        md_table(headers, summary_rows(result)),
        "## 1. Regrade of the whole universe (in-process)",
        f"IntervalBook of {regrade['tokens']:,} tokens warmed with {regrade['warm_bars']} hourly "
        f"candles each (random walks, {len(SECTORS)} sectors, BTC at sid 0; warm-up "
        f"{regrade['warm_s']} s), then {regrade['repetitions']} repetitions of: apply_closed of "
        f"one new closed candle for every token; set_forming of the next (median "
        f"{regrade['set_forming_median_ms']} ms, not in the figures); regrade_live of every "
        f"token. Busy cores before: {regrade['busy_cores_before']}.",
        regrade_table,
        "## 2. Tick → DIRECTION_FLIP event at the hour boundary (all 6,000 candles close at once)",
        f"{service['tokens']:,} tokens, warm-up {service['warm_hours']} h "
        f"(published in {service['warm']['publish_s']} s before signals started; signals "
        f"backfilled and graded it in {service['warm']['signals_graded_s']} s), "
        f"{flips['steps']} measured steps of {flips['ticks_per_call']:,} ticks, PublishTicks call "
        f"p50 {flips['publish_call_ms']['p50']} ms / p99 {flips['publish_call_ms']['p99']} ms; "
        f"{flips['flip_events']} flip events ({flips['from_flippers']} from the engineered "
        "tokens). "
        f"Server CPU over the steps: pricing {flips['server_cpu_s']['pricing']} s, signals "
        f"{flips['server_cpu_s']['signals']} s. Signals re-read history (resync after a "
        f"pricing snapshot) {flips['signals_log_during_steps'].get('resyncs')} times during the "
        f"steps, {service['warm']['signals_log'].get('resyncs')} times during its backfill. "
        f"Busy cores before: {flips['busy_cores_before']}. "
        "The split rows time the same step's closed candle reaching this process on a "
        "StreamCandles subscription to the 50 engineered tokens (first arrival per step).",
        flip_table(flips),
        METHOD.format(warm_hours=service["warm_hours"], step_s=flips["step_s"]),
        *sim_section(result.get("sim")),
        "## 3. ScreenSignals",
        f"Same signals server after the steps ({service['tokens']:,} graded tokens), "
        f"{screen['calls']} sequential calls through a grpc.aio stub cycling over the screens. "
        f"Busy cores before: {screen['busy_cores_before']}.",
        screen_table,
        "## 4. GetSignal under ghz",
    ]
    if result.get("loadtest"):
        rows = [
            [
                f"{r['run']}; {r.get('server', '')}",
                f"{r['rps']:,.0f}",
                r["p50_ms"],
                r["p99_ms"],
                sum(r["errors"].values()) if r["errors"] else 0,
                r["server_cpu_ms_per_call"],
                f"≥ {GOAL_GET_SIGNAL_RPS:,.0f}: {verdict(r['rps'] >= GOAL_GET_SIGNAL_RPS)}",
            ]
            for r in result["loadtest"]
        ]
        parts += [
            f"From `make loadtest` (bench/results/loadtest.md, measured "
            f"{result['loadtest'][0].get('measured_at')}).",
            md_table(
                ("run", "req/s", "p50 ms", "p99 ms", "errors", "server CPU ms/call", "goal"), rows
            ),
        ]
    else:
        parts.append("Not measured yet: run `make loadtest` (bench.loadtest), then this again.")
    parts.append(FINDINGS)
    if "sim" in result:
        parts.append(SIM_FINDINGS)
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and steps")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    parser.add_argument("--warm-hours", type=int, default=Plan.warm_hours, help="a multiple of 24")
    parser.add_argument("--steps", type=int, default=Plan.steps)
    parser.add_argument(
        "--profile-signals", type=Path, metavar="PATH", help="cProfile the signals server"
    )
    parser.add_argument(
        "--sim", action="store_true", help="also 2b, the simulator running (~2 min more)"
    )
    parser.add_argument(
        "--sim-only",
        action="store_true",
        help="only 2b, merged into the existing bench/results/signals.json",
    )
    parser.add_argument("--sim-steps", type=int, default=Plan.sim_steps)
    args = parser.parse_args(argv)
    if args.warm_hours % 24:
        parser.error("--warm-hours must be a multiple of 24 (steps start on a day boundary)")
    plan = Plan(warm_hours=args.warm_hours, steps=args.steps, sim_steps=args.sim_steps)
    if args.sim_only:
        return _sim_only(plan, args.profile_signals)
    result = measure(
        plan,
        quick=args.quick,
        quiet_s=args.wait_quiet,
        profile_to=args.profile_signals,
        sim=args.sim,
    )
    if args.profile_signals is not None:  # profiled figures are not results
        print(f"signals profile in {args.profile_signals}")
        return result
    write_results("signals", result, markdown(result))
    print(md_table(("benchmark", "case", "result", "goal", ""), summary_rows(result)))
    return result


def _sim_only(plan: Plan, profile_to: Path | None) -> dict[str, Any]:
    """Case 2b alone; its figures replace the "sim" part of the last full run's
    results (kept with their own machine line)."""
    sim = measure_sim(plan, profile_to=profile_to)
    sim["machine"] = machine_info()
    if profile_to is not None:
        print(f"signals profile in {profile_to}")
        return sim
    result = json.loads((RESULTS_DIR / "signals.json").read_text())
    result["sim"] = sim
    write_results("signals", result, markdown(result))
    print(md_table(("benchmark", "case", "result", "goal", ""), summary_rows(result)))
    return result


if __name__ == "__main__":
    main()
