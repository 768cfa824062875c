"""Real portfolio servers (and the pricing/signals they call) for service tests.

``start_portfolio`` starts a PortfolioApp on an ephemeral port against the
``database_url`` fixture (SQLite or PostgreSQL: tests using it run on both),
pricing is a real pricing server with no simulated history whose prices the
test sets with PublishTicks, and signals is either absent (a closed port:
UNAVAILABLE) or a real signals server when a test asks for one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from marketmesh.v1 import portfolio_pb2, portfolio_pb2_grpc, pricing_pb2
from services.common.auth import AuthSettings
from services.common.config import CommonSettings
from services.common.server import RunningServer
from services.common.validation import ms_to_timestamp, now_ms
from services.portfolio.app import PortfolioApp
from services.portfolio.server import start_portfolio as start_portfolio_server
from services.portfolio.settings import PortfolioSettings

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
ALICE_MD = (("authorization", f"Bearer {ALICE}"),)
BOB_MD = (("authorization", f"Bearer {BOB}"),)
# Nothing listens here: a dependency that is down.
DEAD_ADDRESS = "127.0.0.1:1"
DAY_MS = 86_400_000
K = portfolio_pb2


def portfolio_settings(data_dir: Path, database_url: str, **overrides: object) -> PortfolioSettings:
    settings = PortfolioSettings(
        common=CommonSettings(
            log_level="warning",
            log_format="json",
            data_dir=data_dir,
            shutdown_grace_s=1.0,
            auth=AuthSettings(tokens=(("alice", ALICE), ("bob", BOB))),
        ),
        address="127.0.0.1:0",
        metrics_port=0,
        pricing_address=DEAD_ADDRESS,
        signals_address=DEAD_ADDRESS,
        database_url=database_url,
        cache_legs=1_000_000,
        max_batch=5_000,
        market_timeout_s=2.0,
        max_position_fraction=Decimal("0.2"),
        future_skew_s=300.0,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@dataclass
class PortfolioHarness:
    app: PortfolioApp
    running: RunningServer
    channel: grpc.aio.Channel
    stub: portfolio_pb2_grpc.PortfolioServiceStub

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0.5)
        await self.app.stop()


StartPortfolio = Callable[..., Awaitable[PortfolioHarness]]


@pytest.fixture
async def start_portfolio(tmp_path: Path, database_url: str) -> AsyncIterator[StartPortfolio]:
    started: list[PortfolioHarness] = []

    async def start(**overrides: object) -> PortfolioHarness:
        settings = portfolio_settings(tmp_path / "portfolio", database_url, **overrides)
        app = PortfolioApp(settings)
        running = await start_portfolio_server(app, settings.address)
        await app.start()
        await running.set_serving()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        harness = PortfolioHarness(
            app, running, channel, portfolio_pb2_grpc.PortfolioServiceStub(channel)
        )
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        with contextlib.suppress(Exception):
            await harness.stop()


def ms(year: int, month: int = 1, day: int = 1, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp() * 1000)


def tx(
    kind: int,
    asset: str,
    quantity: str,
    time_ms: int,
    *,
    price: str = "",
    value: str = "",
    fee: tuple[str, str] | tuple[str, str, str] | None = None,
    wallet: str = "",
    to_wallet: str = "",
    to_asset: str = "",
    to_quantity: str = "",
    income_kind: int = 0,
    lots: list[tuple[str, str]] | None = None,
    client_id: str = "",
) -> portfolio_pb2.Transaction:
    msg = portfolio_pb2.Transaction(
        kind=kind,  # type: ignore[arg-type]
        time=ms_to_timestamp(time_ms),
        asset=asset,
        quantity=quantity,
        price=price,
        value=value,
        wallet=wallet,
        to_wallet=to_wallet,
        to_asset=to_asset,
        to_quantity=to_quantity,
        income_kind=income_kind,  # type: ignore[arg-type]
        lots=[portfolio_pb2.LotSelection(lot_id=lot, quantity=q) for lot, q in (lots or [])],
        client_transaction_id=client_id,
    )
    if fee is not None:
        msg.fee.asset = fee[0]
        msg.fee.amount = fee[1]
        if len(fee) > 2:
            msg.fee.value = fee[2]  # type: ignore[misc]
    return msg


async def set_prices(
    pricing_stub: object, prices: dict[str, float], time_ms: int | None = None
) -> None:
    """One tick per asset (ASSET-USD) at time_ms (default now)."""
    when = now_ms() if time_ms is None else time_ms
    ticks = [
        pricing_pb2.Tick(symbol=f"{asset}-USD", price=price, volume=1.0, time=ms_to_timestamp(when))
        for asset, price in prices.items()
    ]

    async def requests():  # type: ignore[no-untyped-def]
        yield pricing_pb2.PublishTicksRequest(ticks=ticks)

    response = await pricing_stub.PublishTicks(requests())  # type: ignore[attr-defined]
    assert response.rejected == 0, response.rejections[:3]


class Client:
    """Alice's (or Bob's) calls, with the token attached."""

    def __init__(
        self, stub: portfolio_pb2_grpc.PortfolioServiceStub, metadata: tuple = ALICE_MD
    ) -> None:
        self.stub = stub
        self.md = metadata
        self._n = 0

    async def create(self, name: str = "main", **fields: object) -> str:
        response = await self.stub.CreatePortfolio(
            portfolio_pb2.CreatePortfolioRequest(name=name, **fields),
            metadata=self.md,  # type: ignore[arg-type]
        )
        return response.portfolio.id

    async def record(
        self, pid: str, transaction: portfolio_pb2.Transaction, client_id: str = ""
    ) -> portfolio_pb2.Transaction:
        self._n += 1
        cid = client_id or transaction.client_transaction_id or f"c{self._n}"
        response = await self.stub.RecordTransaction(
            portfolio_pb2.RecordTransactionRequest(
                portfolio_id=pid, client_transaction_id=cid, transaction=transaction
            ),
            metadata=self.md,
        )
        return response.transaction

    async def gains(self, pid: str, **fields: object) -> portfolio_pb2.GetRealizedGainsResponse:
        return await self.stub.GetRealizedGains(
            portfolio_pb2.GetRealizedGainsRequest(portfolio_id=pid, **fields),
            metadata=self.md,  # type: ignore[arg-type]
        )

    async def holdings(
        self, pid: str, skip_market: bool = False
    ) -> portfolio_pb2.GetHoldingsResponse:
        return await self.stub.GetHoldings(
            portfolio_pb2.GetHoldingsRequest(portfolio_id=pid, skip_market=skip_market),
            metadata=self.md,
        )

    async def lots(
        self, pid: str, asset: str = "", wallet: str = "", as_of_ms: int | None = None
    ) -> list[portfolio_pb2.Lot]:
        request = portfolio_pb2.ListLotsRequest(portfolio_id=pid, asset=asset, wallet=wallet)
        if as_of_ms is not None:
            request.as_of.FromMilliseconds(as_of_ms)
        response = await self.stub.ListLots(request, metadata=self.md)
        return list(response.lots)


def D(text: str) -> Decimal:
    return Decimal(text)
