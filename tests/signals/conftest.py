"""Real pricing and signals servers, in-process on ephemeral ports.

Pricing starts with no simulated history and no live feed (unless a test asks),
so a test writes the market it needs with PublishTicks, in the past and in
fast-forward: each tick an hour after the previous closes an hourly candle."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from marketmesh.v1 import pricing_pb2, signals_pb2_grpc
from services.common.auth import AuthSettings
from services.common.config import CommonSettings
from services.common.server import RunningServer
from services.common.validation import ms_to_timestamp
from services.signals.app import SignalsApp
from services.signals.server import start_signals
from services.signals.settings import SignalsSettings
from tests.pricing.conftest import PricingHarness, StartPricing, start_pricing_server  # noqa: F401

HOUR_MS = 3_600_000
ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"


def signals_settings(data_dir: Path, pricing_target: str, **overrides: object) -> SignalsSettings:
    settings = SignalsSettings(
        common=CommonSettings(
            log_level="warning",
            log_format="json",
            data_dir=data_dir,
            shutdown_grace_s=1.0,
            auth=AuthSettings(tokens=(("alice", ALICE), ("bob", BOB))),
        ),
        address="127.0.0.1:0",
        metrics_port=0,
        pricing_address=pricing_target,
        intervals=("1h", "1d"),
        history_bars=400,
        confirm_bars=2,
        weights="",
        live_regrade_ms=100,
        metrics_feed="none",
        stale_after_s=2.0,
        snapshot_interval_s=3600.0,
        backfill_concurrency=4,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@dataclass
class SignalsHarness:
    app: SignalsApp
    running: RunningServer
    channel: grpc.aio.Channel
    stub: signals_pb2_grpc.SignalsServiceStub

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0.5)
        await self.app.stop()


StartSignals = Callable[..., Awaitable[SignalsHarness]]


@pytest.fixture
async def start_signals_server(tmp_path: Path) -> AsyncIterator[StartSignals]:
    started: list[SignalsHarness] = []

    async def start(
        pricing_target: str, *, data_dir: Path | None = None, sync: bool = True, **overrides: object
    ) -> SignalsHarness:
        settings = signals_settings(data_dir or tmp_path / "signals", pricing_target, **overrides)
        app = SignalsApp(settings)
        running = await start_signals(app, settings.address)
        await app.start()
        await running.set_serving()
        if sync:
            await asyncio.wait_for(app.synced.wait(), 30)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        harness = SignalsHarness(
            app, running, channel, signals_pb2_grpc.SignalsServiceStub(channel)
        )
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        with contextlib.suppress(Exception):
            await harness.stop()


def hourly_ticks(symbol: str, start_ms: int, prices: list[float], volume: float = 10.0) -> list:
    """One tick per hour from start_ms (mid-hour, so each closes the previous candle)."""
    return [
        pricing_pb2.Tick(
            symbol=symbol,
            price=p,
            volume=volume,
            time=ms_to_timestamp(start_ms + i * HOUR_MS + HOUR_MS // 2),
        )
        for i, p in enumerate(prices)
    ]


async def publish(stub, ticks: list, batch: int = 5_000) -> pricing_pb2.PublishTicksResponse:  # type: ignore[no-untyped-def]
    async def requests():  # type: ignore[no-untyped-def]
        for i in range(0, len(ticks), batch):
            yield pricing_pb2.PublishTicksRequest(ticks=ticks[i : i + batch])

    response = await stub.PublishTicks(requests())
    assert response.rejected == 0, response.rejections[:3]
    return response


async def wait_for(predicate: Callable[[], bool], seconds: float = 15.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)
