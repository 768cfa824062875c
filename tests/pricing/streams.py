"""Helpers for pricing tests that follow StreamQuotes, publish ticks, or run
the server as a separate process (memory and crash tests)."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketmesh.v1 import pricing_pb2, pricing_pb2_grpc

SERVICE_NAME = "marketmesh.v1.PricingService"
REPO_ROOT = Path(__file__).resolve().parents[2]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ts_ms(stamp: Timestamp) -> int:
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000


def tick(
    symbol: str, price: float, time_ms: int | None = None, volume: float = 1.0
) -> pricing_pb2.Tick:
    message = pricing_pb2.Tick(symbol=symbol, price=price, volume=volume, source="test")
    if time_ms is not None:
        message.time.CopyFrom(ts(time_ms))
    return message


async def publish(
    stub: pricing_pb2_grpc.PricingServiceStub, *batches: Sequence[pricing_pb2.Tick]
) -> pricing_pb2.PublishTicksResponse:
    """One PublishTicks call with one request message per batch."""

    async def requests() -> AsyncIterator[pricing_pb2.PublishTicksRequest]:
        for batch in batches:
            yield pricing_pb2.PublishTicksRequest(ticks=list(batch))

    response: pricing_pb2.PublishTicksResponse = await stub.PublishTicks(requests(), timeout=10)
    return response


async def list_assets(
    stub: pricing_pb2_grpc.PricingServiceStub, sector: str = ""
) -> list[pricing_pb2.Asset]:
    """Every asset (of a sector), over all ListAssets pages."""
    assets: list[pricing_pb2.Asset] = []
    token = ""
    while True:
        page = await stub.ListAssets(
            pricing_pb2.ListAssetsRequest(sector=sector, page_size=1000, page_token=token)
        )
        assets.extend(page.assets)
        token = page.next_page_token
        if not token:
            return assets


async def all_symbols(stub: pricing_pb2_grpc.PricingServiceStub) -> set[str]:
    return {a.symbol for a in await list_assets(stub)}


def symbols_of(message: pricing_pb2.StreamQuotesResponse) -> list[str]:
    return [q.symbol for q in message.quotes]


@dataclass
class Received:
    message: pricing_pb2.StreamQuotesResponse
    at: float  # time.time() when the client got it


class Subscriber:
    """A StreamQuotes call read by a background task into a queue, so tests
    can wait for the next message with a timeout without cancelling reads."""

    def __init__(
        self, stub: pricing_pb2_grpc.PricingServiceStub, request: pricing_pb2.StreamQuotesRequest
    ) -> None:
        self.call = stub.StreamQuotes(request)
        self.queue: asyncio.Queue[Received | BaseException | None] = asyncio.Queue()
        self.received: list[Received] = []
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for message in self.call:
                item = Received(message, time.time())
                self.received.append(item)
                self.queue.put_nowait(item)
        except BaseException as exc:  # the test decides whether it was expected
            self.queue.put_nowait(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            self.queue.put_nowait(None)

    async def next(self, within: float = 5.0) -> pricing_pb2.StreamQuotesResponse:
        return (await self.next_received(within)).message

    async def next_received(self, within: float = 5.0) -> Received:
        item = await asyncio.wait_for(self.queue.get(), within)
        if isinstance(item, BaseException):
            raise item
        if item is None:
            raise AssertionError("stream ended")
        return item

    async def until(
        self,
        predicate,
        within: float = 5.0,  # type: ignore[no-untyped-def]
    ) -> pricing_pb2.StreamQuotesResponse:
        """The first message satisfying predicate, within `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(deadline - time.monotonic(), 0.001))
            if predicate(message):
                return message

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@dataclass
class FeedModel:
    """What an unfiltered subscriber that keeps up has seen: per symbol the
    (sequence, price) of every update. The reference other subscribers'
    conflated messages are checked against."""

    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    sequences: list[int] = field(default_factory=list)

    def add(self, message: pricing_pb2.StreamQuotesResponse) -> None:
        self.sequences.append(message.sequence)
        for quote in message.quotes:
            self.history.setdefault(quote.symbol, []).append((message.sequence, quote.price))

    def extend(self, messages: Iterable[pricing_pb2.StreamQuotesResponse]) -> None:
        for message in messages:
            self.add(message)

    def price_at(self, symbol: str, sequence: int) -> float | None:
        """The symbol's price as of feed sequence `sequence`."""
        price = None
        for seq, value in self.history.get(symbol, ()):
            if seq > sequence:
                break
            price = value
        return price

    def changed_between(self, after: int, upto: int) -> set[str]:
        """Symbols with an update in batches after..upto (exclusive, inclusive)."""
        return {
            s for s, updates in self.history.items() if any(after < q <= upto for q, _ in updates)
        }


# -- the server as a separate process ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start_server_process(data_dir: Path, log_path: Path, **env: str) -> ServerProcess:
    """`python -m services.pricing` on a free port with its own data dir."""
    address = f"127.0.0.1:{free_port()}"
    full_env = {
        **os.environ,
        "MM_DATA_DIR": str(data_dir),
        "MM_PRICING_ADDR": address,
        "MM_PRICING_METRICS_PORT": "0",
        "MM_LOG_LEVEL": "warning",
        "MM_LOG_FORMAT": "json",
        **env,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.pricing"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(process, address, log_path)


async def wait_serving(
    server: ServerProcess, channel: grpc.aio.Channel, within: float = 90
) -> None:
    """Until health says SERVING; fails early when the process exits."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1
            )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"server not SERVING after {within} s:\n{server.log_tail()}")
