"""PublishTicks over gRPC: committed ticks per second into a separate server process.

The server is `python -m services.pricing` (feed none, a 500-asset universe,
short backfill). Several client streams each send batches of 1,000 ticks
(valid symbols, times = now) and await the response, which arrives only after
the ticks are committed to SQLite. Two call shapes: one batch per call (every
1,000 ticks acknowledged on their own) and ten batches per call.

Ticks are prebuilt PublishTicksRequest messages, serialised once per wall
second with the current time, so the client spends its CPU on sending, not
building. Figures: acknowledged ticks/s, calls, the server's commits (from its
/metrics), call latency, and the CPU seconds each process used.

    .venv/bin/python -m bench.publish_ticks [--seconds S] [--streams N]
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

import services  # noqa: F401  (puts the generated stubs on sys.path)
from bench.common import (
    REPO,
    cpu_seconds,
    fmt_rate,
    free_port,
    machine_info,
    machine_line,
    md_table,
    pricing_server,
    thread_cpu_seconds,
    thread_cpu_split,
    verdict,
    wait_quiet,
    write_results,
)
from marketmesh.v1 import pricing_pb2, pricing_pb2_grpc

GOAL_TICKS_PER_S = 100_000
BATCH = 1_000
UNIVERSE = 500
TEMPLATES = 16
PUBLISH = "/marketmesh.v1.PricingService/PublishTicks"
# (streams, batches per call)
SHAPES: tuple[tuple[int, int], ...] = ((4, 1), (8, 1), (4, 10))


class StampedBatches:
    """TEMPLATES batches of ticks, re-stamped and re-serialised once per second."""

    def __init__(self, symbols: list[str], prices: dict[str, float], seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self._templates: list[pricing_pb2.PublishTicksRequest] = []
        for _ in range(TEMPLATES):
            idx = rng.integers(0, len(symbols), BATCH)
            jitter = np.exp(rng.normal(0.0, 1e-3, BATCH))
            volumes = rng.exponential(1.0, BATCH)
            self._templates.append(
                pricing_pb2.PublishTicksRequest(
                    ticks=[
                        pricing_pb2.Tick(
                            symbol=symbols[i],
                            price=prices[symbols[i]] * float(j),
                            volume=float(v),
                            source="bench",
                        )
                        for i, j, v in zip(idx.tolist(), jitter, volumes, strict=True)
                    ]
                )
            )
        self._second = -1
        self._wire: list[bytes] = []
        self._next = 0

    def _restamp(self, now_ns: int) -> None:
        seconds, nanos = divmod(now_ns, 1_000_000_000)
        nanos -= nanos % 1_000_000  # millisecond times, like real feeds
        wire = []
        for message in self._templates:
            for tick in message.ticks:
                tick.time.seconds = seconds
                tick.time.nanos = nanos
            wire.append(message.SerializeToString())
        self._wire = wire
        self._second = seconds

    def take(self, n: int) -> list[bytes]:
        now_ns = time.time_ns()
        if now_ns // 1_000_000_000 != self._second:
            self._restamp(now_ns)
        out = []
        for _ in range(n):
            out.append(self._wire[self._next % TEMPLATES])
            self._next += 1
        return out


@dataclass
class Tally:
    calls: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""


def _channel(target: str) -> grpc.aio.Channel:
    # A connection per stream, as separate publishers would have.
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
        ],
    )


async def _publisher(
    channel: grpc.aio.Channel,
    batches: StampedBatches,
    per_call: int,
    stop_at: float,
    tally: Tally,
) -> None:
    publish = channel.stream_unary(
        PUBLISH,
        request_serializer=None,  # the messages are bytes already
        response_deserializer=pricing_pb2.PublishTicksResponse.FromString,
    )
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        try:
            response = await publish(iter(batches.take(per_call)), timeout=30)
        except grpc.aio.AioRpcError as err:
            tally.errors += 1
            tally.first_error = tally.first_error or f"{err.code().name}: {err.details()}"
            await asyncio.sleep(0.1)
            continue
        tally.latencies.append(time.perf_counter() - t0)
        tally.calls += 1
        tally.accepted += response.accepted
        tally.rejected += response.rejected


def _scrape_commits(metrics_port: int) -> tuple[float, float] | None:
    """(commits, seconds spent committing) from the server's /metrics, if exported."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    count = re.search(r"^marketmesh_pricing_commit_duration_seconds_count\S* (\S+)$", text, re.M)
    total = re.search(r"^marketmesh_pricing_commit_duration_seconds_sum\S* (\S+)$", text, re.M)
    if count is None or total is None:
        return None
    return float(count.group(1)), float(total.group(1))


async def _universe(target: str) -> tuple[list[str], dict[str, float]]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pricing_pb2_grpc.PricingServiceStub(channel)
        assets = await stub.ListAssets(pricing_pb2.ListAssetsRequest(page_size=1000))
        symbols = [a.symbol for a in assets.assets]
        quotes = await stub.GetQuotes(pricing_pb2.GetQuotesRequest(symbols=symbols))
        return symbols, {q.symbol: q.price for q in quotes.quotes}


async def _run_shape(
    target: str,
    batches: StampedBatches,
    *,
    streams: int,
    per_call: int,
    seconds: float,
    server_pid: int,
    metrics_port: int,
) -> dict[str, Any]:
    channels = [_channel(target) for _ in range(streams)]
    try:
        # Warm-up: connections up, code paths hot, then the measured window.
        warm = Tally()
        stop = time.monotonic() + 1.0
        await asyncio.gather(*(_publisher(c, batches, per_call, stop, warm) for c in channels))
        before = _scrape_commits(metrics_port)
        threads0 = thread_cpu_seconds(server_pid)
        server_cpu0, client_cpu0 = cpu_seconds(server_pid), time.process_time()
        tallies = [Tally() for _ in channels]
        t0 = time.perf_counter()
        stop = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _publisher(c, batches, per_call, stop, tally)
                for c, tally in zip(channels, tallies, strict=True)
            )
        )
        elapsed = time.perf_counter() - t0
        server_cpu = cpu_seconds(server_pid) - server_cpu0
        client_cpu = time.process_time() - client_cpu0
        threads = thread_cpu_split(server_pid, threads0, thread_cpu_seconds(server_pid))
        after = _scrape_commits(metrics_port)
    finally:
        for channel in channels:
            await channel.close()
    lat = np.asarray([x for t in tallies for x in t.latencies]) * 1000
    accepted = sum(t.accepted for t in tallies)
    row: dict[str, Any] = {
        "streams": streams,
        "batches_per_call": per_call,
        "ticks_per_call": per_call * BATCH,
        "seconds": round(elapsed, 3),
        "calls": sum(t.calls for t in tallies),
        "accepted": accepted,
        "rejected": sum(t.rejected for t in tallies),
        "errors": sum(t.errors for t in tallies),
        "first_error": next((t.first_error for t in tallies if t.first_error), ""),
        "ticks_per_s": round(accepted / elapsed),
        "call_ms_p50": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "call_ms_p99": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
        "server_cpu_s": round(server_cpu, 3),
        "client_cpu_s": round(client_cpu, 3),
        # Under PublishTicks the busiest other thread is the store's writer.
        "server_threads": threads,
        # Ticks per CPU-second of the server (all threads): steadier than
        # ticks/s when other work shares the machine.
        "ticks_per_server_cpu_s": round(accepted / server_cpu) if server_cpu > 0 else None,
    }
    if before is not None and after is not None:
        commits = after[0] - before[0]
        row["commits"] = int(commits)
        busy = after[1] - before[1]
        row["commit_ms_mean"] = round(busy / commits * 1000, 2) if commits else None
    return row


async def _measure(
    server: Any, metrics_port: int, seconds: float, shapes: Any, quiet_s: float
) -> list[dict[str, Any]]:
    symbols, prices = await _universe(server.target)
    batches = StampedBatches(symbols, prices)
    rows = []
    for streams, per_call in shapes:
        if quiet_s:
            await asyncio.to_thread(wait_quiet, quiet_s)
        rows.append(
            await _run_shape(
                server.target,
                batches,
                streams=streams,
                per_call=per_call,
                seconds=seconds,
                server_pid=server.pid,
                metrics_port=metrics_port,
            )
        )
    return rows


def measure(
    seconds: float = 6.0,
    shapes: tuple[tuple[int, int], ...] = SHAPES,
    *,
    profile_to: Path | None = None,
    repo: Path = REPO,
    quiet_s: float = 0.0,
) -> dict[str, Any]:
    machine = machine_info()
    metrics_port = free_port()
    env = {
        "MM_FEED": "none",
        "MM_UNIVERSE_SIZE": str(UNIVERSE),
        "MM_PRICING_METRICS_PORT": str(metrics_port),
    }
    with pricing_server(env, profile_to=profile_to, repo=repo) as server:
        rows = asyncio.run(_measure(server, metrics_port, seconds, shapes, quiet_s))
        startup_s = server.startup_s
    return {
        "name": "publish_ticks",
        "machine": machine,
        "setup": {
            "server": "python -m services.pricing (separate process)",
            "server_env": env | {"MM_BACKFILL_DAYS": "2", "MM_BACKFILL_FINE_DAYS": "1"},
            "server_startup_s": round(startup_s, 2),
            "universe": UNIVERSE,
            "ticks_per_batch": BATCH,
            "seconds_per_shape": seconds,
            "client": "grpc.aio, one connection per stream, prebuilt serialised requests",
        },
        "goal_ticks_per_s": GOAL_TICKS_PER_S,
        "results": rows,
        "goal_met": any(r["ticks_per_s"] >= GOAL_TICKS_PER_S for r in rows),
    }


HEADERS = (
    "streams",
    "ticks/call",
    "ticks/s",
    "calls",
    "commits",
    "call p50 ms",
    "call p99 ms",
    "server CPU (loop / writer)",
    "ticks/server-CPU-s",
    "goal ≥ 100k/s",
)


def table_rows(result: dict[str, Any]) -> list[list[object]]:
    out: list[list[object]] = []
    for r in result["results"]:
        share = 100 / r["seconds"]
        threads = r["server_threads"]
        cpu = (
            f"{r['server_cpu_s'] * share:.0f}% "
            f"({threads['main_thread_cpu_s'] * share:.0f}% / "
            f"{threads['busiest_other_thread_cpu_s'] * share:.0f}%)"
        )
        out.append(
            [
                r["streams"],
                f"{r['ticks_per_call']:,}",
                fmt_rate(r["ticks_per_s"]),
                f"{r['calls']:,}",
                f"{r['commits']:,}" if "commits" in r else "n/a",
                r["call_ms_p50"],
                r["call_ms_p99"],
                cpu,
                fmt_rate(r["ticks_per_server_cpu_s"] or 0),
                verdict(r["ticks_per_s"] >= GOAL_TICKS_PER_S),
            ]
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    notes = [
        f"Server: {setup['server']}, {setup['universe']} assets, feed none; "
        f"batches of {setup['ticks_per_batch']:,} ticks, {setup['seconds_per_shape']} s per row; "
        "a response arrives only after its ticks are committed.",
    ]
    errors = [r for r in result["results"] if r["errors"] or r["rejected"]]
    if errors:
        notes.append(
            "Errors/rejections: "
            + "; ".join(f"{r['errors']} errors, {r['rejected']} rejected" for r in errors)
        )
    return "\n\n".join(
        [
            "# PublishTicks over gRPC",
            machine_line(result["machine"]),
            *notes,
            md_table(HEADERS, table_rows(result)),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--streams", type=int, nargs="*", help="concurrent streams per row (default 4)"
    )
    parser.add_argument(
        "--per-call", type=int, nargs="*", help="batches per call per row (default 1 and 10)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each row wait up to S seconds for the rest of the machine to go idle",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the server under cProfile, save the stats here, print the top entries "
        "(results are then not written: the profiler slows the server down)",
    )
    args = parser.parse_args()
    shapes = SHAPES
    if args.streams or args.per_call:
        shapes = tuple((s, c) for s in (args.streams or [4]) for c in (args.per_call or [1, 10]))
    result = measure(args.seconds, shapes, profile_to=args.profile, quiet_s=args.wait_quiet)
    print(md_table(HEADERS, table_rows(result)))
    if args.profile:
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        return
    write_results("publish_ticks", result, markdown(result))


if __name__ == "__main__":
    main()
