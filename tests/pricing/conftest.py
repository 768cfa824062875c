"""A real pricing server, in-process on an ephemeral port, with its own data
directory and a short backfill so start-up takes a second or two."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from marketmesh.v1 import pricing_pb2_grpc
from services.common.config import CommonSettings
from services.common.server import RunningServer
from services.pricing.app import PricingApp
from services.pricing.server import start_pricing
from services.pricing.settings import PricingSettings


def make_settings(data_dir: Path, **overrides: object) -> PricingSettings:
    settings = PricingSettings(
        common=CommonSettings(
            log_level="warning", log_format="json", data_dir=data_dir, shutdown_grace_s=1.0
        ),
        address="127.0.0.1:0",
        metrics_port=0,
        feed="none",
        seed=7,
        universe_size=0,
        sim_ticks_per_second=2000,
        backfill_days=3,
        backfill_fine_days=1,
        stream_batch_ms=50,
        stream_heartbeat_s=1.0,
        candle_close_grace_ms=5000,
        commit_interval_ms=100,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@dataclass
class PricingHarness:
    app: PricingApp
    running: RunningServer
    channel: grpc.aio.Channel
    stub: pricing_pb2_grpc.PricingServiceStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0.5)
        await self.app.stop()


StartPricing = Callable[..., Awaitable[PricingHarness]]


@pytest.fixture
async def start_pricing_server(tmp_path: Path) -> AsyncIterator[StartPricing]:
    """Factory: `await start_pricing_server(feed="simulator", ...)` starts a
    ready server (health SERVING); every server started is stopped at the end.
    Pass `data_dir=` to reuse a directory (restart tests), `ready=False` to get
    it before start-up (health NOT_SERVING)."""
    started: list[PricingHarness] = []

    async def start(
        *, data_dir: Path | None = None, ready: bool = True, **overrides: object
    ) -> PricingHarness:
        settings = make_settings(data_dir or tmp_path / "var", **overrides)
        app = PricingApp(settings)
        running = await start_pricing(app, settings.address)
        if ready:
            await app.start()
            await running.set_serving()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        harness = PricingHarness(
            app, running, channel, pricing_pb2_grpc.PricingServiceStub(channel)
        )
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        with contextlib.suppress(Exception):  # already stopped by the test
            await harness.stop()


@pytest.fixture
async def pricing(start_pricing_server: StartPricing) -> PricingHarness:
    """A ready pricing server with no live feed (ticks only via PublishTicks)."""
    return await start_pricing_server()
